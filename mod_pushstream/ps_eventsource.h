/* ps_eventsource.h - EventSource (text/event-stream) formatting of the
 * header, messages, ping and footer.  Core: no httpd types.
 *
 * Lines: text is split on "\r\n", "\r" and "\n"; empty lines are dropped
 * (so "a\n\nb" is two lines).  Any other byte, NUL included, is kept.
 *
 * Header and footer are fixed per location: they come back as pool
 * strings, to be computed once.  Messages are per subscriber and hot:
 * measure + render_to write into a caller-provided buffer of exactly the
 * measured size (e.g. apr_bucket_alloc'ed, as ps_sub_queue_msg does), with
 * a pool convenience on top.
 */
#ifndef PS_EVENTSOURCE_H
#define PS_EVENTSOURCE_H

#include <apr_pools.h>

#include "ps_msgview.h"
#include "ps_template.h"

/* Ping: a comment line (ping text / template are not used). */
#define PS_ES_PING      ": -1\n"
#define PS_ES_PING_LEN  (sizeof(PS_ES_PING) - 1)

/* Header template -> comment lines: a template that already starts with
 * ": " is used as-is; otherwise each line becomes ": <line>\n".  An empty
 * or NULL template - or one with no non-empty line - gives ": \n".
 * Returns a NUL-terminated pool string (NUL not counted in *out_len). */
const char *ps_es_header(apr_pool_t *p, const char *tpl, apr_size_t len,
                         apr_size_t *out_len);

/* Footer template: same as the header, except that an empty / NULL
 * template (or one with no non-empty line) gives "" (nothing to send). */
const char *ps_es_footer(apr_pool_t *p, const char *tpl, apr_size_t len,
                         apr_size_t *out_len);

/* One message:
 *   "id: <event-id>\n"       when m->event_id is non-empty
 *   "event: <event-type>\n"  when m->event_type is non-empty
 *   for each line of m->text: "data: " + t rendered with ~text~ = the line
 *     and ~size~ = its length + "\n"; "data: " is left out when the
 *     template source itself starts with "data: " (push-stream checks the
 *     template, not the rendered line, so published text that happens to
 *     start with "data: " is still delivered verbatim)
 *   "\n"
 * A text without any non-empty line (empty, "\n" ...) is rendered as one
 * empty line - ~text~ = "" - so the client still gets an event (with the
 * default template: "data: \n\n"); push-stream would send a bare "\n",
 * which EventSource ignores.  t NULL = the default template "~text~". */
apr_size_t ps_es_message_measure(const ps_template_t *t, const ps_msgview_t *m);

/* Write the message into buf (at least ps_es_message_measure() bytes);
 * returns the bytes written.  No NUL is appended. */
apr_size_t ps_es_message_render_to(const ps_template_t *t,
                                   const ps_msgview_t *m, char *buf);

/* Convenience: a NUL-terminated pool copy (NUL not counted in *out_len). */
char *ps_es_message_render(apr_pool_t *p, const ps_template_t *t,
                           const ps_msgview_t *m, apr_size_t *out_len);

#endif
