/* ps_http.h - response helpers shared by the publisher and subscriber
 * handlers: header-only answers with the push-stream explain header, the
 * no-cache headers, and the channel path of a request. */
#ifndef PS_HTTP_H
#define PS_HTTP_H

#include <string.h>
#include <httpd.h>
#include "ps_conf_types.h"
#include "ps_path.h"
#include "ps_info.h"
#include "ps_publish.h"

#define PS_EXPLAIN_HEADER "X-Nginx-PushStream-Explain"

/* Expires / Cache-Control that every push-stream answer carries. */
void ps_http_nocache(request_rec *r);

/* Answers return DONE (the handler returns it as is); helpers that
 * check something return OK to go on, or DONE when they answered. */

/* Header-only answer: status, Content-Length: 0, explain (may be NULL). */
int ps_http_explain(request_rec *r, int status, const char *explain);

/* CORS (PushStreamAllowedOrigins): the Access-Control-* headers when the
 * expression gives a value; methods is the Allow-Methods list. */
void ps_http_cors(request_rec *r, const ps_dir_conf_t *d, const char *methods);

/* 405 with Allow. */
int ps_http_not_allowed(request_rec *r, const char *allow);

/* A complete answer with a body. */
int ps_http_body(request_rec *r, const char *ctype, const char *data,
                 apr_size_t len);

/* Evaluate, unescape and parse the location's channel path; an empty
 * path gives an empty array.  OK, or DONE after a 500 answer. */
int ps_http_parse_path(request_rec *r, const ps_dir_conf_t *d,
                       apr_array_header_t **out);

/* Evaluate, unescape and parse the location's channel path.  Returns OK
 * with *out (ps_path_channel_t, maybe empty), or an answer already made. */
int ps_http_channels(request_rec *r, const ps_dir_conf_t *d,
                     apr_array_header_t **out);

/* Check every id: ALL/'*' (403) and the length limit (400).  OK or the
 * answer already made. */
int ps_http_check_ids(request_rec *r, const ps_srv_conf_t *sc,
                      const apr_array_header_t *chans);

/* The response of a core answer (ps_publish.h), logging what it asks. */
int ps_http_answer(request_rec *r, const ps_answer_t *a);

/* Log what an answer asks (PS0050, PS0070); r may be NULL. */
void ps_http_answer_log(server_rec *s, request_rec *r, const ps_answer_t *a);

/* Value of an optional expression, or of a request header when the
 * expression is not configured (NULL when neither gives anything). */
const char *ps_http_value(request_rec *r, ap_expr_info_t *expr,
                          const char *header);

/* The group info document of n channels, format chosen by Accept. */
int ps_http_info_group(request_rec *r, ps_store_t *st,
                       const ps_chinfo_t *infos, int n);

/* Info of the listed channels that exist (request order); 404 if none. */
int ps_http_existing_info(request_rec *r, ps_store_t *st,
                          const apr_array_header_t *chans);

#endif
