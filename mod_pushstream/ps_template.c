/* ps_template.c - message templates (~text~, ~id~ ...).  Core: no httpd types.
 *
 * A template is compiled once into an array of parts: literal spans of the
 * (copied) source, and tokens with an optional escaping.  Rendering is two
 * passes over the parts - measure, then write - so a render allocates
 * nothing but the output buffer; numbers and the date are formatted into
 * stack buffers.
 *
 * Scanning follows push-stream: at each '~' the known tokens are tried
 * (case-insensitively); when none matches, that '~' is literal and the
 * scan resumes at the next byte, so "~foo~text~" is "~foo" + ~text~.
 */
#include <string.h>

#include <apr_strings.h>
#include <apr_tables.h>

#include "ps_template.h"
#include "ps_util.h"

typedef enum {
    PS_TPL_LITERAL = 0,
    PS_TPL_ID,
    PS_TPL_TEXT,
    PS_TPL_SIZE,
    PS_TPL_CHANNEL,
    PS_TPL_TIME,
    PS_TPL_TAG,
    PS_TPL_EVENT_ID,
    PS_TPL_EVENT_TYPE
} ps_tpl_kind_e;

typedef enum {
    PS_TPL_ESC_NONE = 0,
    PS_TPL_ESC_JSON,
    PS_TPL_ESC_HTML,
    PS_TPL_ESC_JS
} ps_tpl_esc_e;

typedef struct ps_tpl_part_t {
    ps_tpl_kind_e kind;
    ps_tpl_esc_e esc;
    apr_size_t off;          /* literal: span of the source copy */
    apr_size_t len;
} ps_tpl_part_t;

struct ps_template_t {
    const char *src;         /* NUL-terminated pool copy (may hold NULs) */
    apr_size_t src_len;
    const ps_tpl_part_t *parts;
    int nparts;
    int literal;             /* 1 when no token was found */
};

typedef struct ps_tpl_name_t {
    const char *name;
    apr_size_t len;
    int value;
} ps_tpl_name_t;

static const ps_tpl_name_t ps_tpl_tokens[] = {
    { "id",         2,  PS_TPL_ID },
    { "text",       4,  PS_TPL_TEXT },
    { "size",       4,  PS_TPL_SIZE },
    { "channel",    7,  PS_TPL_CHANNEL },
    { "time",       4,  PS_TPL_TIME },
    { "tag",        3,  PS_TPL_TAG },
    { "event-id",   8,  PS_TPL_EVENT_ID },
    { "event-type", 10, PS_TPL_EVENT_TYPE },
};

static const ps_tpl_name_t ps_tpl_escapes[] = {
    { "json", 4, PS_TPL_ESC_JSON },
    { "html", 4, PS_TPL_ESC_HTML },
    { "js",   2, PS_TPL_ESC_JS },
};

/* ---- compile ------------------------------------------------------------ */

/* ASCII-only case folding: no locale may change what a token is. */
static int ps_tpl_ieq(const char *s, const char *lower, apr_size_t len)
{
    apr_size_t i;

    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];

        if (c >= 'A' && c <= 'Z')
            c = (unsigned char)(c + ('a' - 'A'));
        if (c != (unsigned char)lower[i])
            return 0;
    }
    return 1;
}

/* Which entry of tbl is exactly s[0..len), case-insensitively; -1 if none. */
static int ps_tpl_lookup(const ps_tpl_name_t *tbl, apr_size_t n,
                         const char *s, apr_size_t len)
{
    apr_size_t i;

    for (i = 0; i < n; i++)
        if (tbl[i].len == len && ps_tpl_ieq(s, tbl[i].name, len))
            return tbl[i].value;
    return -1;
}

/* Try to read a token at s[0] == '~' (rem bytes available).  Returns the
 * bytes consumed (both tildes included) or 0 when s starts no token. */
static apr_size_t ps_tpl_match(const char *s, apr_size_t rem,
                               ps_tpl_part_t *part)
{
    const char *end, *bar;
    apr_size_t inner, name_len;
    int kind, esc = PS_TPL_ESC_NONE;

    /* the longest valid token body is "event-type|json" (15 bytes) */
    end = memchr(s + 1, '~', rem - 1 < 17 ? rem - 1 : 17);
    if (!end)
        return 0;
    inner = (apr_size_t)(end - s - 1);
    bar = memchr(s + 1, '|', inner);
    name_len = bar ? (apr_size_t)(bar - s - 1) : inner;
    kind = ps_tpl_lookup(ps_tpl_tokens,
                         sizeof(ps_tpl_tokens) / sizeof(ps_tpl_tokens[0]),
                         s + 1, name_len);
    if (kind < 0)
        return 0;
    if (bar) {
        esc = ps_tpl_lookup(ps_tpl_escapes,
                            sizeof(ps_tpl_escapes) / sizeof(ps_tpl_escapes[0]),
                            bar + 1, inner - name_len - 1);
        if (esc < 0)
            return 0;
    }
    part->kind = (ps_tpl_kind_e)kind;
    part->esc = (ps_tpl_esc_e)esc;
    part->off = part->len = 0;
    return inner + 2;
}

static void ps_tpl_push_literal(apr_array_header_t *parts, apr_size_t off,
                                apr_size_t len)
{
    ps_tpl_part_t *part;

    if (len == 0)
        return;
    part = apr_array_push(parts);
    part->kind = PS_TPL_LITERAL;
    part->esc = PS_TPL_ESC_NONE;
    part->off = off;
    part->len = len;
}

ps_template_t *ps_template_compile(apr_pool_t *p, const char *src,
                                   apr_size_t len)
{
    ps_template_t *t = apr_pcalloc(p, sizeof(*t));
    apr_array_header_t *parts = apr_array_make(p, 4, sizeof(ps_tpl_part_t));
    apr_size_t i = 0, lit = 0;

    if (!src)
        len = 0;
    t->src = src ? apr_pstrmemdup(p, src, len) : "";
    t->src_len = len;
    t->literal = 1;
    while (i < len) {
        const char *tilde = memchr(t->src + i, '~', len - i);
        ps_tpl_part_t tok;
        apr_size_t used;

        if (!tilde)
            break;
        i = (apr_size_t)(tilde - t->src);
        used = ps_tpl_match(tilde, len - i, &tok);
        if (!used) {
            i++;                 /* this '~' is literal; look further */
            continue;
        }
        ps_tpl_push_literal(parts, lit, i - lit);
        *(ps_tpl_part_t *)apr_array_push(parts) = tok;
        t->literal = 0;
        i += used;
        lit = i;
    }
    ps_tpl_push_literal(parts, lit, len - lit);
    t->parts = (const ps_tpl_part_t *)parts->elts;
    t->nparts = parts->nelts;
    return t;
}

int ps_template_is_literal(const ps_template_t *t)
{
    return t->literal;
}

const char *ps_template_source(const ps_template_t *t, apr_size_t *len)
{
    if (len)
        *len = t->src_len;
    return t->src;
}

/* ---- escaping ----------------------------------------------------------- */

/* Escaping is written once, as a function that both measures and (when
 * out is not NULL) writes, so the two passes can never disagree. */

static apr_size_t ps_tpl_put(char *out, const char *s, apr_size_t n)
{
    if (out)
        memcpy(out, s, n);
    return n;
}

static apr_size_t ps_tpl_put_u(char *out, unsigned cp)
{
    static const char ps_hex[] = "0123456789abcdef";
    char b[6] = { '\\', 'u', ps_hex[(cp >> 12) & 15], ps_hex[(cp >> 8) & 15],
                  ps_hex[(cp >> 4) & 15], ps_hex[cp & 15] };

    return ps_tpl_put(out, b, 6);
}

/* JSON string body: '"', '\\' and every control byte; other bytes (also
 * >= 0x80) are copied.  js additionally hides <, >, & and the two line
 * separators U+2028/U+2029, which end a JavaScript string literal. */
static apr_size_t ps_tpl_esc_json_byte(char *out, const unsigned char *s,
                                       apr_size_t rem, int js,
                                       apr_size_t *used)
{
    unsigned char c = s[0];

    *used = 1;
    switch (c) {
    case '"':  return ps_tpl_put(out, "\\\"", 2);
    case '\\': return ps_tpl_put(out, "\\\\", 2);
    case '\n': return ps_tpl_put(out, "\\n", 2);
    case '\r': return ps_tpl_put(out, "\\r", 2);
    case '\t': return ps_tpl_put(out, "\\t", 2);
    case '\b': return ps_tpl_put(out, "\\b", 2);
    case '\f': return ps_tpl_put(out, "\\f", 2);
    default: break;
    }
    if (c < 0x20)
        return ps_tpl_put_u(out, c);
    if (js && (c == '<' || c == '>' || c == '&'))
        return ps_tpl_put_u(out, c);
    if (js && c == 0xe2 && rem >= 3 && s[1] == 0x80
        && (s[2] == 0xa8 || s[2] == 0xa9)) {
        *used = 3;
        return ps_tpl_put_u(out, s[2] == 0xa8 ? 0x2028 : 0x2029);
    }
    return ps_tpl_put(out, (const char *)s, 1);
}

static apr_size_t ps_tpl_esc_html_byte(char *out, unsigned char c)
{
    switch (c) {
    case '&':  return ps_tpl_put(out, "&amp;", 5);
    case '<':  return ps_tpl_put(out, "&lt;", 4);
    case '>':  return ps_tpl_put(out, "&gt;", 4);
    case '"':  return ps_tpl_put(out, "&quot;", 6);
    case '\'': return ps_tpl_put(out, "&#39;", 5);
    default:   return ps_tpl_put(out, (const char *)&c, 1);
    }
}

/* Emit s[0..n) with escaping esc into out (or only measure when out is
 * NULL).  Returns the number of output bytes. */
static apr_size_t ps_tpl_emit(char *out, ps_tpl_esc_e esc, const char *s,
                              apr_size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    apr_size_t i = 0, o = 0, used;

    if (esc == PS_TPL_ESC_NONE)
        return ps_tpl_put(out, s, n);
    while (i < n) {
        if (esc == PS_TPL_ESC_HTML) {
            o += ps_tpl_esc_html_byte(out ? out + o : NULL, u[i]);
            used = 1;
        }
        else {
            o += ps_tpl_esc_json_byte(out ? out + o : NULL, u + i, n - i,
                                      esc == PS_TPL_ESC_JS, &used);
        }
        i += used;
    }
    return o;
}

/* ---- render ------------------------------------------------------------- */

/* Big enough for an int64 in decimal and for the RFC 1123 date. */
#define PS_TPL_SCRATCH 32

/* The raw bytes a part stands for; numbers and the date go to scratch. */
static const char *ps_tpl_value(const ps_template_t *t, const ps_tpl_part_t *pt,
                                const ps_msgview_t *m,
                                char scratch[PS_TPL_SCRATCH], apr_size_t *n)
{
    switch (pt->kind) {
    case PS_TPL_LITERAL:
        *n = pt->len;
        return t->src + pt->off;
    case PS_TPL_ID:
        *n = (apr_size_t)apr_snprintf(scratch, PS_TPL_SCRATCH,
                                      "%" APR_INT64_T_FMT, m->id);
        return scratch;
    case PS_TPL_TAG:
        *n = (apr_size_t)apr_snprintf(scratch, PS_TPL_SCRATCH,
                                      "%" APR_INT64_T_FMT, m->tag);
        return scratch;
    case PS_TPL_SIZE:
        *n = (apr_size_t)apr_snprintf(scratch, PS_TPL_SCRATCH,
                                      "%" APR_SIZE_T_FMT, m->text_len);
        return scratch;
    case PS_TPL_TIME:
        ps_format_http_time(scratch, m->time);
        *n = PS_HTTP_TIME_LEN;
        return scratch;
    case PS_TPL_TEXT:
        *n = m->text ? m->text_len : 0;
        return m->text;
    case PS_TPL_CHANNEL:
        *n = m->channel ? m->channel_len : 0;
        return m->channel;
    case PS_TPL_EVENT_ID:
        *n = m->event_id ? m->event_id_len : 0;
        return m->event_id;
    case PS_TPL_EVENT_TYPE:
        *n = m->event_type ? m->event_type_len : 0;
        return m->event_type;
    }
    *n = 0;
    return NULL;
}

/* Stands in for a NULL message: every token renders empty / zero. */
static const ps_msgview_t ps_tpl_no_message;

/* Measure (out == NULL) or write the whole template. */
static apr_size_t ps_tpl_run(const ps_template_t *t, const ps_msgview_t *m,
                             char *out)
{
    char scratch[PS_TPL_SCRATCH];
    apr_size_t o = 0;
    int i;

    if (!m)
        m = &ps_tpl_no_message;

    for (i = 0; i < t->nparts; i++) {
        const ps_tpl_part_t *pt = &t->parts[i];
        apr_size_t n;
        const char *v = ps_tpl_value(t, pt, m, scratch, &n);

        if (n)
            o += ps_tpl_emit(out ? out + o : NULL, pt->esc, v, n);
    }
    return o;
}

apr_size_t ps_template_measure(const ps_template_t *t, const ps_msgview_t *m)
{
    return ps_tpl_run(t, m, NULL);
}

apr_size_t ps_template_render_to(const ps_template_t *t, const ps_msgview_t *m,
                                 char *buf)
{
    return ps_tpl_run(t, m, buf);
}

char *ps_template_render_pool(apr_pool_t *p, ps_template_run_fn *run,
                              const ps_template_t *t, const ps_msgview_t *m,
                              apr_size_t *out_len)
{
    apr_size_t n = run(t, m, NULL);
    char *buf = apr_palloc(p, n + 1);

    n = run(t, m, buf);
    buf[n] = '\0';
    if (out_len)
        *out_len = n;
    return buf;
}

char *ps_template_render(apr_pool_t *p, const ps_template_t *t,
                         const ps_msgview_t *m, apr_size_t *out_len)
{
    return ps_template_render_pool(p, ps_tpl_run, t, m, out_len);
}
