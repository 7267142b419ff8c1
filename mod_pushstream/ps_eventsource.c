/* ps_eventsource.c - EventSource formatting.  Core: no httpd types.
 *
 * Every formatter runs twice over its input - once to measure (out NULL),
 * once to write - so rendering allocates nothing but the output buffer.
 */
#include <string.h>

#include <apr_strings.h>

#include "ps_eventsource.h"

#define PS_ES_COMMENT_PREFIX   ": "
#define PS_ES_DATA_PREFIX      "data: "
#define PS_ES_EMPTY_HEADER     ": \n"

/* Next non-empty line of [*cur, end): sets *line / *n, advances *cur past
 * the line and its terminator.  0 when no line is left. */
static int ps_es_next_line(const char **cur, const char *end,
                           const char **line, apr_size_t *n)
{
    const char *s = *cur;

    while (s < end) {
        const char *e = s;

        while (e < end && *e != '\r' && *e != '\n')
            e++;
        *line = s;
        *n = (apr_size_t)(e - s);
        if (e < end)
            e += (*e == '\r' && e + 1 < end && e[1] == '\n') ? 2 : 1;
        s = e;
        if (*n) {
            *cur = s;
            return 1;
        }
    }
    *cur = s;
    return 0;
}

/* Copy (when out is not NULL) and count. */
static apr_size_t ps_es_put(char *out, const char *s, apr_size_t n)
{
    if (out && n)
        memcpy(out, s, n);
    return n;
}

static int ps_es_starts_with(const char *s, apr_size_t len, const char *lit)
{
    apr_size_t n = strlen(lit);

    return s && len >= n && memcmp(s, lit, n) == 0;
}

/* ---- header / footer ---------------------------------------------------- */

/* Each line -> ": <line>\n".  Measures when out is NULL. */
static apr_size_t ps_es_comment_lines(const char *tpl, apr_size_t len,
                                      char *out)
{
    const char *cur = tpl, *end = tpl + len, *line;
    apr_size_t o = 0, n;

    while (ps_es_next_line(&cur, end, &line, &n)) {
        o += ps_es_put(out ? out + o : NULL, PS_ES_COMMENT_PREFIX, 2);
        o += ps_es_put(out ? out + o : NULL, line, n);
        o += ps_es_put(out ? out + o : NULL, "\n", 1);
    }
    return o;
}

/* Shared by header and footer; empty_value is what "no line" gives. */
static const char *ps_es_comment(apr_pool_t *p, const char *tpl,
                                 apr_size_t len, const char *empty_value,
                                 apr_size_t *out_len)
{
    apr_size_t n;
    char *out;

    if (!tpl)
        len = 0;
    if (ps_es_starts_with(tpl, len, PS_ES_COMMENT_PREFIX)) {
        *out_len = len;
        return apr_pstrmemdup(p, tpl, len);
    }
    n = len ? ps_es_comment_lines(tpl, len, NULL) : 0;
    if (!n) {
        *out_len = strlen(empty_value);
        return empty_value;
    }
    out = apr_palloc(p, n + 1);
    ps_es_comment_lines(tpl, len, out);
    out[n] = '\0';
    *out_len = n;
    return out;
}

const char *ps_es_header(apr_pool_t *p, const char *tpl, apr_size_t len,
                         apr_size_t *out_len)
{
    return ps_es_comment(p, tpl, len, PS_ES_EMPTY_HEADER, out_len);
}

const char *ps_es_footer(apr_pool_t *p, const char *tpl, apr_size_t len,
                         apr_size_t *out_len)
{
    return ps_es_comment(p, tpl, len, "", out_len);
}

/* ---- messages ----------------------------------------------------------- */

/* "<name>: <value>\n" when value is non-empty. */
static apr_size_t ps_es_field(char *out, const char *name, const char *value,
                              apr_size_t n)
{
    apr_size_t o = 0;

    if (!value || !n)
        return 0;
    o += ps_es_put(out, name, strlen(name));
    o += ps_es_put(out ? out + o : NULL, ": ", 2);
    o += ps_es_put(out ? out + o : NULL, value, n);
    o += ps_es_put(out ? out + o : NULL, "\n", 1);
    return o;
}

/* One data line: [prefix] template(line) "\n". */
static apr_size_t ps_es_data_line(const ps_template_t *t, const ps_msgview_t *m,
                                  int prefix, const char *line, apr_size_t n,
                                  char *out)
{
    ps_msgview_t lm = *m;
    apr_size_t o = 0;

    if (prefix)
        o += ps_es_put(out, PS_ES_DATA_PREFIX, sizeof(PS_ES_DATA_PREFIX) - 1);
    if (t) {
        lm.text = line;
        lm.text_len = n;
        o += out ? ps_template_render_to(t, &lm, out + o)
                 : ps_template_measure(t, &lm);
    }
    else {
        o += ps_es_put(out ? out + o : NULL, line, n);
    }
    o += ps_es_put(out ? out + o : NULL, "\n", 1);
    return o;
}

/* Whether lines need the "data: " prefix (decided on the template). */
static int ps_es_needs_prefix(const ps_template_t *t)
{
    apr_size_t len;
    const char *src;

    if (!t)
        return 1;
    src = ps_template_source(t, &len);
    return !ps_es_starts_with(src, len, PS_ES_DATA_PREFIX);
}

static apr_size_t ps_es_message(const ps_template_t *t, const ps_msgview_t *m,
                                char *out)
{
    const char *text = m->text ? m->text : "";
    const char *cur = text, *end = text + (m->text ? m->text_len : 0), *line;
    int prefix = ps_es_needs_prefix(t), lines = 0;
    apr_size_t o = 0, n;

    o += ps_es_field(out, "id", m->event_id, m->event_id_len);
    o += ps_es_field(out ? out + o : NULL, "event", m->event_type,
                     m->event_type_len);
    while (ps_es_next_line(&cur, end, &line, &n)) {
        o += ps_es_data_line(t, m, prefix, line, n, out ? out + o : NULL);
        lines++;
    }
    if (!lines)
        o += ps_es_data_line(t, m, prefix, "", 0, out ? out + o : NULL);
    o += ps_es_put(out ? out + o : NULL, "\n", 1);
    return o;
}

apr_size_t ps_es_message_measure(const ps_template_t *t, const ps_msgview_t *m)
{
    return ps_es_message(t, m, NULL);
}

apr_size_t ps_es_message_render_to(const ps_template_t *t,
                                   const ps_msgview_t *m, char *buf)
{
    return ps_es_message(t, m, buf);
}

char *ps_es_message_render(apr_pool_t *p, const ps_template_t *t,
                           const ps_msgview_t *m, apr_size_t *out_len)
{
    return ps_template_render_pool(p, ps_es_message, t, m, out_len);
}
