/* ps_pub_handler.c - the publisher location (protocol B3).
 *
 * GET: channel info; POST/PUT: publish the body to every channel of the
 * path; DELETE (admin): delete the channels, telling their subscribers. */

#include <string.h>

#include <httpd.h>
#include <http_protocol.h>
#include <http_request.h>
#include <http_log.h>
#include <apr_strings.h>

#include "ps_config.h"
#include "ps_child.h"
#include "ps_http.h"
#include "ps_handlers.h"

APLOG_USE_MODULE(pushstream);

/* Read the whole body, at most max bytes.  Returns OK, or an HTTP status
 * (413 too large, 400 unreadable). */
static int ps_read_body(request_rec *r, apr_off_t max, char **out,
                        apr_size_t *len)
{
    conn_rec *c = r->connection;
    apr_bucket_brigade *body = apr_brigade_create(r->pool, c->bucket_alloc);
    apr_bucket_brigade *bb = apr_brigade_create(r->pool, c->bucket_alloc);
    apr_off_t total = 0;
    int eos = 0;

    if (r->remaining > max) {
        return HTTP_REQUEST_ENTITY_TOO_LARGE;
    }
    while (!eos) {
        apr_bucket *b;
        apr_status_t rv = ap_get_brigade(r->input_filters, bb, AP_MODE_READBYTES,
                                         APR_BLOCK_READ, 65536);
        if (rv != APR_SUCCESS) {
            return ap_map_http_request_error(rv, HTTP_BAD_REQUEST);
        }
        for (b = APR_BRIGADE_FIRST(bb); b != APR_BRIGADE_SENTINEL(bb);
             b = APR_BUCKET_NEXT(b)) {
            if (APR_BUCKET_IS_EOS(b)) {
                eos = 1;
            }
        }
        APR_BRIGADE_CONCAT(body, bb);
        apr_brigade_length(body, 1, &total);
        if (total > max) {
            return HTTP_REQUEST_ENTITY_TOO_LARGE;
        }
    }
    *len = (apr_size_t)total;
    *out = apr_palloc(r->pool, *len + 1);
    apr_brigade_flatten(body, *out, len);
    (*out)[*len] = '\0';
    apr_brigade_cleanup(body);
    return OK;
}

int ps_pub_handle(request_rec *r, ps_child_t *child, const ps_dir_conf_t *d,
                  const ps_srv_conf_t *sc)
{
    apr_array_header_t *chans;
    ps_answer_t a;
    char *body = NULL;
    apr_size_t len = 0;
    int rc, op;

    ps_http_nocache(r);
    ps_http_cors(r, d, d->publisher_admin ? PS_PUB_ALLOW_ADMIN : PS_PUB_ALLOW);
    if ((rc = ps_http_parse_path(r, d, &chans)) != OK) {
        return rc;
    }
    /* httpd answers HEAD through GET's handler: not a publisher method */
    op = ps_pub_prepare(d, sc, r->header_only ? "HEAD" : r->method, chans, &a);
    switch (op) {
    case PS_PUB_GET:
        return ps_http_existing_info(r, child->store, chans);
    case PS_PUB_DELETE:
        if (ps_read_body(r, sc->max_message_size, &body, &len) != OK) {
            len = 0;                /* a body only replaces the text */
        }
        ps_pub_delete(r->pool, child->store, sc, chans, body, len, &a);
        break;
    case PS_PUB_POST:
        rc = ps_read_body(r, sc->max_message_size, &body, &len);
        if (rc != OK) {
            r->connection->keepalive = AP_CONN_CLOSE;
            return ps_http_explain(r, rc, rc == HTTP_REQUEST_ENTITY_TOO_LARGE
                                   ? "Message is too large." : NULL);
        }
        /* several servers: through the child's loop when it can */
        if (!ps_pub_publish_relay(r->pool, child->store, d, sc, chans, body,
                                  len,
                                  apr_table_get(r->headers_in, "Event-Id"),
                                  apr_table_get(r->headers_in, "Event-Type"),
                                  apr_table_get(r->headers_in, "Accept"),
                                  &a)) {
            ps_pub_publish(r->pool, child->store, d, sc, chans, body, len,
                           apr_table_get(r->headers_in, "Event-Id"),
                           apr_table_get(r->headers_in, "Event-Type"),
                           apr_table_get(r->headers_in, "Accept"), &a);
        }
        break;
    default:
        break;
    }
    return ps_http_answer(r, &a);
}
