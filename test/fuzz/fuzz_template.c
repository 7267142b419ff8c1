/* fuzz_template.c - message templates (ps_template.c) and the EventSource
 * message / header / footer formatting built on them (ps_eventsource.c).
 *
 * Input fields (0x1F-separated): template, text, channel, event id, event
 * type, numbers (id, time, tag: 8 bytes each, missing bytes are 0).
 * Invariants:
 *   - measure == bytes written, into an exact-size heap buffer;
 *   - the compiled source is the input; a literal template renders to it;
 *   - "~text~" renders the text verbatim; the escaped forms |json, |html,
 *     |js produce no byte their context forbids and stay within 6x;
 *   - EventSource messages: measure == written, end in "\n";
 *   - the subscriber encoder (ps_encode.c), each form: measure == written,
 *     a stream's replay == its intro + each message as live delivery
 *     writes it, a JSONP body's measure == written.
 */
#include "ps_fuzz.h"
#include "ps_template.h"
#include "ps_eventsource.h"
#include "ps_util.h"
#include "ps_encode.h"

/* Render into an exact-size heap buffer (checks measure == written). */
static char *ps_fz_render(const ps_template_t *t, const ps_msgview_t *m,
                          size_t *len)
{
    apr_size_t n = ps_template_measure(t, m);
    char *buf = malloc(n ? n : 1);

    ps_fuzz_assert(buf != NULL);
    ps_fuzz_assert(ps_template_render_to(t, m, buf) == n);
    *len = n;
    return buf;
}

static apr_int64_t ps_fz_num(const char *s, size_t n, size_t at)
{
    apr_uint64_t v = 0;
    size_t i;

    for (i = 0; i < 8; i++)
        v = (v << 8) | (at + i < n ? (unsigned char)s[at + i] : 0);
    return (apr_int64_t)v;
}

/* JSON string body: no raw control byte, no bare '"', escapes well formed. */
static void ps_fz_check_json(const char *s, size_t n, int js)
{
    size_t i;

    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];

        ps_fuzz_assert(c >= 0x20 && c != '"');
        if (js)
            ps_fuzz_assert(c != '<' && c != '>' && c != '&');
        if (js && c == 0xe2 && i + 2 < n && (unsigned char)s[i + 1] == 0x80)
            ps_fuzz_assert((unsigned char)s[i + 2] != 0xa8
                           && (unsigned char)s[i + 2] != 0xa9);
        if (c != '\\')
            continue;
        ps_fuzz_assert(i + 1 < n);
        if (s[i + 1] == 'u') {
            ps_fuzz_assert(i + 5 < n);
            i += 5;
        }
        else {
            ps_fuzz_assert(strchr("\"\\nrtbf", s[i + 1]) != NULL);
            i++;
        }
    }
}

/* HTML: no < > " ' and every & starts one of our entities. */
static void ps_fz_check_html(const char *s, size_t n)
{
    static const char *const ents[] = { "&amp;", "&lt;", "&gt;", "&quot;",
                                        "&#39;" };
    size_t i, k;

    for (i = 0; i < n; i++) {
        ps_fuzz_assert(!memchr("<>\"'", s[i], 4));
        if (s[i] != '&')
            continue;
        for (k = 0; k < 5; k++)
            if (n - i >= strlen(ents[k]) && !memcmp(s + i, ents[k], strlen(ents[k])))
                break;
        ps_fuzz_assert(k < 5);
    }
}

/* The escaped forms of one field, rendered alone. */
static void ps_fz_escapes(apr_pool_t *p, const ps_msgview_t *m)
{
    static const char *const tpls[] = { "~text|json~", "~text|js~",
                                        "~TEXT|HTML~", "~text~",
                                        "~event-type|json~" };
    size_t i, n;

    for (i = 0; i < sizeof(tpls) / sizeof(tpls[0]); i++) {
        ps_template_t *t = ps_template_compile(p, tpls[i], strlen(tpls[i]));
        char *out = ps_fz_render(t, m, &n);
        size_t in = i == 4 ? m->event_type_len : m->text_len;

        ps_fuzz_assert(!ps_template_is_literal(t));
        ps_fuzz_assert(n >= in && n <= 6 * in);
        if (i <= 1 || i == 4)
            ps_fz_check_json(out, n, i == 1);
        else if (i == 2)
            ps_fz_check_html(out, n);
        else
            ps_fuzz_assert(n == in && memcmp(out, m->text, n) == 0);
        free(out);
    }
}

static void ps_fz_eventsource(apr_pool_t *p, const ps_template_t *t,
                              const ps_msgview_t *m, const char *tpl,
                              size_t tlen)
{
    apr_size_t n = ps_es_message_measure(t, m), len;
    char *buf = malloc(n ? n : 1);
    const char *hf;

    ps_fuzz_assert(buf != NULL && n > 0);
    ps_fuzz_assert(ps_es_message_render_to(t, m, buf) == n);
    ps_fuzz_assert(buf[n - 1] == '\n');
    free(buf);
    ps_fuzz_assert(ps_es_message_measure(NULL, m) > 0);
    hf = ps_es_header(p, tpl, tlen, &len);
    ps_fuzz_assert(hf != NULL && len > 0 && hf[len] == '\0');
    hf = ps_es_footer(p, tpl, tlen, &len);
    ps_fuzz_assert(hf != NULL && hf[len] == '\0');
}

/* The encoder of each form: exact sizes; replay == intro + live. */
static void ps_fz_encode(apr_pool_t *p, const ps_template_t *t,
                         const ps_msgview_t *m, const char *tpl, size_t tlen)
{
    ps_msgview_t two[2];
    int kind;

    two[0] = two[1] = *m;
    for (kind = PS_ENC_PLAIN; kind <= PS_ENC_WS; kind++) {
        ps_enc_t e = { kind, t, (apr_size_t)(m->tag & 0xfff), 1024 };
        ps_enc_body_t b = { tpl, tpl, tlen, tlen, kind ? NULL : "cb" };
        apr_size_t n = ps_enc_measure(&e, m), il, rl;
        char *live = malloc(n ? n : 1), *body;
        const char *intro, *replay;

        ps_fuzz_assert(live != NULL && ps_enc_render_to(&e, m, live) == n);
        intro = ps_enc_intro(p, &e, tpl, tlen, (apr_size_t)(m->id & 0xfff),
                             NULL, 0, &il);
        replay = ps_enc_intro(p, &e, tpl, tlen, (apr_size_t)(m->id & 0xfff),
                              two, 2, &rl);
        ps_fuzz_assert(rl == il + 2 * n && memcmp(replay, intro, il) == 0
                       && (!n || (memcmp(replay + il, live, n) == 0
                                  && memcmp(replay + il + n, live, n) == 0)));
        free(live);
        n = ps_enc_body_measure(&e, &b, two, 2);
        body = malloc(n ? n : 1);
        ps_fuzz_assert(body != NULL
                       && ps_enc_body_render_to(&e, &b, two, 2, body) == n);
        free(body);
    }
}

/* ---- reference renderer ----------------------------------------------------
 * Written differently on purpose: at each '~' every spelled-out token
 * "~name~" / "~name|esc~" is compared (ASCII case-insensitively); the
 * output goes through a growing buffer. */

typedef struct ps_fz_buf_t {
    char *p;
    size_t n, cap;
} ps_fz_buf_t;

static void ps_fz_put(ps_fz_buf_t *b, const char *s, size_t n)
{
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 16;
        b->p = realloc(b->p, b->cap);
        ps_fuzz_assert(b->p != NULL);
    }
    if (n)
        memcpy(b->p + b->n, s, n);
    b->n += n;
}

static void ps_fz_put_esc(ps_fz_buf_t *b, const char *s, size_t n, int esc)
{
    size_t i;
    char u[8];

    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];

        if (esc == 2) {                      /* html */
            const char *e = c == '&' ? "&amp;" : c == '<' ? "&lt;"
                          : c == '>' ? "&gt;" : c == '"' ? "&quot;"
                          : c == '\'' ? "&#39;" : NULL;
            ps_fz_put(b, e ? e : (const char *)&c, e ? strlen(e) : 1);
            continue;
        }
        if (esc == 0) {
            ps_fz_put(b, (const char *)&c, 1);
            continue;
        }
        if (esc == 3 && c == 0xe2 && i + 2 < n && (unsigned char)s[i + 1] == 0x80
            && ((unsigned char)s[i + 2] == 0xa8 || (unsigned char)s[i + 2] == 0xa9)) {
            ps_fz_put(b, (unsigned char)s[i + 2] == 0xa8 ? "\\u2028" : "\\u2029", 6);
            i += 2;
            continue;
        }
        switch (c) {
        case '"': ps_fz_put(b, "\\\"", 2); continue;
        case '\\': ps_fz_put(b, "\\\\", 2); continue;
        case '\n': ps_fz_put(b, "\\n", 2); continue;
        case '\r': ps_fz_put(b, "\\r", 2); continue;
        case '\t': ps_fz_put(b, "\\t", 2); continue;
        case '\b': ps_fz_put(b, "\\b", 2); continue;
        case '\f': ps_fz_put(b, "\\f", 2); continue;
        default: break;
        }
        if (c < 0x20 || (esc == 3 && (c == '<' || c == '>' || c == '&'))) {
            snprintf(u, sizeof(u), "\\u%04x", c);
            ps_fz_put(b, u, 6);
        }
        else {
            ps_fz_put(b, (const char *)&c, 1);
        }
    }
}

static int ps_fz_ieq(const char *s, size_t n, const char *lit)
{
    size_t i, l = strlen(lit);

    if (n < l)
        return 0;
    for (i = 0; i < l; i++) {
        char c = s[i];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if (c != lit[i])
            return 0;
    }
    return 1;
}

/* Token at s ("~...~"): its value in *v / *vn, escaping in *esc, length
 * of the spelling returned (0 = none). */
static size_t ps_fz_token(const char *s, size_t n, const ps_msgview_t *m,
                          char *scratch, const char **v, size_t *vn, int *esc)
{
    static const char *const names[] = { "id", "text", "size", "channel",
                                         "time", "tag", "event-id",
                                         "event-type" };
    static const char *const escs[] = { "", "|json", "|html", "|js" };
    char spell[32];
    size_t k, e, l;

    for (k = 0; k < 8; k++) {
        for (e = 0; e < 4; e++) {
            l = (size_t)snprintf(spell, sizeof(spell), "~%s%s~", names[k], escs[e]);
            if (!ps_fz_ieq(s, n, spell))
                continue;
            *esc = (int)e;
            switch (k) {
            case 0: *vn = (size_t)sprintf(scratch, "%" APR_INT64_T_FMT, m->id); *v = scratch; break;
            case 1: *v = m->text; *vn = m->text_len; break;
            case 2: *vn = (size_t)sprintf(scratch, "%" APR_SIZE_T_FMT, m->text_len); *v = scratch; break;
            case 3: *v = m->channel; *vn = m->channel_len; break;
            case 4: ps_format_http_time(scratch, m->time); *v = scratch; *vn = strlen(scratch); break;
            case 5: *vn = (size_t)sprintf(scratch, "%" APR_INT64_T_FMT, m->tag); *v = scratch; break;
            case 6: *v = m->event_id; *vn = m->event_id_len; break;
            default: *v = m->event_type; *vn = m->event_type_len; break;
            }
            return l;
        }
    }
    return 0;
}

static void ps_fz_reference(const char *tpl, size_t n, const ps_msgview_t *m,
                            const char *got, size_t got_len)
{
    ps_fz_buf_t b = { 0 };
    char scratch[64];
    size_t i = 0, l, vn;
    const char *v;
    int esc;

    while (i < n) {
        if (tpl[i] == '~'
            && (l = ps_fz_token(tpl + i, n - i, m, scratch, &v, &vn, &esc))) {
            ps_fz_put_esc(&b, v, vn, esc);
            i += l;
        }
        else {
            ps_fz_put(&b, tpl + i++, 1);
        }
    }
    ps_fuzz_assert(b.n == got_len && (!b.n || memcmp(b.p, got, b.n) == 0));
    free(b.p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ps_fuzz_in_t in = { (const char *)data, size };
    apr_pool_t *p = ps_fuzz_pool();
    const char *tpl, *nums, *src;
    size_t tlen, nlen, n;
    apr_size_t slen;
    ps_msgview_t m;
    ps_template_t *t;
    char *out, *pooled, *tcopy;

    memset(&m, 0, sizeof(m));
    tpl = ps_fuzz_field(&in, &tlen);
    m.text = ps_fuzz_field(&in, &m.text_len);
    m.channel = ps_fuzz_field(&in, &m.channel_len);
    m.event_id = ps_fuzz_field(&in, &m.event_id_len);
    m.event_type = ps_fuzz_field(&in, &m.event_type_len);
    nums = ps_fuzz_field(&in, &nlen);
    m.id = ps_fz_num(nums, nlen, 0);
    m.time = ps_fz_num(nums, nlen, 8);
    m.tag = ps_fz_num(nums, nlen, 16);

    tcopy = ps_fuzz_dup(tpl, tlen);
    t = ps_template_compile(p, tcopy, tlen);
    free(tcopy);               /* the template must have its own copy */
    src = ps_template_source(t, &slen);
    ps_fuzz_assert(slen == tlen && memcmp(src, tpl, tlen) == 0);
    out = ps_fz_render(t, &m, &n);
    ps_fz_reference(tpl, tlen, &m, out, n);
    if (ps_template_is_literal(t))
        ps_fuzz_assert(n == tlen && memcmp(out, tpl, n) == 0);
    pooled = ps_template_render(p, t, &m, &slen);
    ps_fuzz_assert(slen == n && pooled[n] == '\0' && memcmp(pooled, out, n) == 0);
    free(out);
    /* a NULL message renders every token empty / zero */
    free(ps_fz_render(t, NULL, &n));

    ps_fz_escapes(p, &m);
    ps_fz_eventsource(p, t, &m, tpl, tlen);
    ps_fz_encode(p, t, &m, tpl, tlen);
    ps_fuzz_assert(ps_template_measure(ps_template_compile(p, NULL, 3), &m) == 0);
    apr_pool_destroy(p);
    return 0;
}
