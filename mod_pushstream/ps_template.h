/* ps_template.h - message templates (~text~, ~id~ ...).  Core: no httpd types.
 *
 * Tokens, matched case-insensitively: ~id~ ~text~ ~size~ ~channel~ ~time~
 * ~tag~ ~event-id~ ~event-type~.  Extension (not in push-stream): an escaped
 * variant of any token, ~NAME|json~ (JSON string body, no quotes added),
 * ~NAME|html~ (& < > " ' as entities) and ~NAME|js~ (like json, plus <, >,
 * & and U+2028/2029 as \uXXXX so it is safe inside <script>).
 * Anything else between tildes is literal text.  Tokens found inside the
 * substituted values are never expanded again.
 */
#ifndef PS_TEMPLATE_H
#define PS_TEMPLATE_H

#include <apr_pools.h>
#include "ps_msgview.h"

typedef struct ps_template_t ps_template_t;

/* Compile src (len bytes, may contain any byte).  Never fails; allocation
 * from p.  A NULL src compiles to the empty template. */
ps_template_t *ps_template_compile(apr_pool_t *p, const char *src,
                                   apr_size_t len);

/* 1 when the template has no tokens (it renders to the same bytes always). */
int ps_template_is_literal(const ps_template_t *t);

/* The literal source text of the template as compiled. */
const char *ps_template_source(const ps_template_t *t, apr_size_t *len);

/* Exact number of bytes ps_template_render_to() will write for m. */
apr_size_t ps_template_measure(const ps_template_t *t, const ps_msgview_t *m);

/* Render into buf (at least ps_template_measure() bytes); returns the
 * number of bytes written.  No NUL is appended. */
apr_size_t ps_template_render_to(const ps_template_t *t, const ps_msgview_t *m,
                                 char *buf);

/* Convenience: render into a new pool buffer (NUL-terminated, the NUL not
 * counted in *out_len). */
char *ps_template_render(apr_pool_t *p, const ps_template_t *t,
                         const ps_msgview_t *m, apr_size_t *out_len);

/* A renderer of m with t: the byte count it writes into buf, written only
 * when buf is not NULL (NULL: measure). */
typedef apr_size_t ps_template_run_fn(const ps_template_t *t, const ps_msgview_t *m,
                                      char *buf);

/* run measured, then rendered into a new pool buffer (NUL-terminated, the
 * NUL not counted in *out_len): the convenience of every such renderer. */
char *ps_template_render_pool(apr_pool_t *p, ps_template_run_fn *run,
                              const ps_template_t *t, const ps_msgview_t *m,
                              apr_size_t *out_len);

#endif
