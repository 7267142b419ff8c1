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

#define PS_PUB_ALLOW        "GET, POST, PUT"
#define PS_PUB_ALLOW_ADMIN  "GET, POST, PUT, DELETE"

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

static int ps_pub_full(request_rec *r)
{
    ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "PS0050: shared memory is "
                  "full: unable to allocate message in shared memory; raise "
                  "PushStreamSharedMemorySize (or lower PushStreamMessageTtl / "
                  "PushStreamMaxMessagesStoredPerChannel)");
    return ps_http_explain(r, HTTP_INTERNAL_SERVER_ERROR,
                           "Shared memory is full.");
}

static int ps_pub_post(request_rec *r, ps_child_t *child,
                       const ps_dir_conf_t *d, const ps_srv_conf_t *sc,
                       apr_array_header_t *chans)
{
    ps_channel_t **chs = apr_pcalloc(r->pool, chans->nelts * sizeof(*chs));
    ps_chinfo_t *infos = apr_pcalloc(r->pool, chans->nelts * sizeof(*infos));
    const char *eid = apr_table_get(r->headers_in, "Event-Id");
    const char *etype = apr_table_get(r->headers_in, "Event-Type");
    apr_int64_t now = ps_now_sec();
    apr_size_t len = 0;
    char *body = NULL;
    int i, rc;

    rc = ps_read_body(r, sc->max_message_size, &body, &len);
    if (rc != OK) {
        r->connection->keepalive = AP_CONN_CLOSE;
        return ps_http_explain(r, rc, rc == HTTP_REQUEST_ENTITY_TOO_LARGE
                               ? "Message is too large." : NULL);
    }
    if (!len) {
        return ps_http_explain(r, HTTP_BAD_REQUEST,
                               "Empty post requests are not allowed.");
    }
    if (ps_store_lock(child->store, NULL) != APR_SUCCESS) {
        return ps_http_explain(r, HTTP_INTERNAL_SERVER_ERROR, NULL);
    }
    for (i = 0; i < chans->nelts; i++) {
        ps_path_channel_t *pc = &APR_ARRAY_IDX(chans, i, ps_path_channel_t);
        apr_status_t rv = ps_store_get_or_create_locked(child->store, pc->id,
                                                        pc->len,
                                                        ps_is_wildcard(sc, pc),
                                                        &sc->limits, now,
                                                        &chs[i]);
        if (rv != APR_SUCCESS) {
            ps_store_unlock(child->store);
            return rv == PS_E_LIMIT
                   ? ps_http_explain(r, HTTP_FORBIDDEN,
                                     "Number of channels were exceeded.")
                   : ps_pub_full(r);
        }
    }
    for (i = 0; i < chans->nelts; i++) {
        apr_status_t rv = ps_store_publish_locked(child->store, chs[i], body,
                              len, eid, eid ? strlen(eid) : 0, etype,
                              etype ? strlen(etype) : 0, ps_dir_store(d),
                              &sc->limits, now, NULL);
        if (rv != APR_SUCCESS) {
            ps_store_unlock(child->store);
            ps_store_notify(child->store);
            return ps_pub_full(r);
        }
        ps_store_channel_info_locked(child->store, chs[i], &infos[i]);
        infos[i].id = APR_ARRAY_IDX(chans, i, ps_path_channel_t).id;
    }
    ps_store_unlock(child->store);
    {
        /* Wake the children's loops only when a channel has subscribers (or
         * an events channel may have got a channel_created): a publish to a
         * channel nobody listens to costs 2 wake-ups and a lock per child.
         * (A loop also reads the log every 500 ms anyway.) */
        int wake = sc->events_channel != NULL;
        for (i = 0; !wake && i < chans->nelts; i++) {
            wake = infos[i].subscribers > 0;
        }
        if (wake) {
            ps_store_notify(child->store);
        }
    }
    if (!ps_dir_info_on_publish(d)) {
        return ps_http_explain(r, HTTP_OK, NULL);
    }
    return ps_http_info(r, child->store, infos, chans->nelts);
}

static int ps_pub_delete(request_rec *r, ps_child_t *child,
                         const ps_srv_conf_t *sc, apr_array_header_t *chans)
{
    const char *text = sc->deleted_text;
    apr_size_t len = strlen(text);
    apr_int64_t now = ps_now_sec();
    char *body = NULL;
    apr_size_t blen = 0;
    int i, deleted = 0;

    if (ps_read_body(r, sc->max_message_size, &body, &blen) == OK && blen) {
        text = body;            /* a body replaces the deleted text */
        len = blen;
    }
    if (ps_store_lock(child->store, NULL) != APR_SUCCESS) {
        return ps_http_explain(r, HTTP_INTERNAL_SERVER_ERROR, NULL);
    }
    for (i = 0; i < chans->nelts; i++) {
        ps_path_channel_t *pc = &APR_ARRAY_IDX(chans, i, ps_path_channel_t);
        ps_channel_t *ch = ps_store_find_locked(child->store, pc->id, pc->len);
        if (ch) {
            ps_store_delete_locked(child->store, ch, text, len, now);
            deleted++;
        }
    }
    ps_store_unlock(child->store);
    if (!deleted) {
        return ps_http_explain(r, HTTP_NOT_FOUND, NULL);
    }
    ps_store_notify(child->store);
    return ps_http_explain(r, HTTP_OK, "Channel deleted.");
}

static int ps_has_events_channel(const ps_srv_conf_t *sc,
                                 const apr_array_header_t *chans)
{
    int i;

    for (i = 0; sc->events_channel && i < chans->nelts; i++) {
        const ps_path_channel_t *pc = &APR_ARRAY_IDX(chans, i,
                                                     ps_path_channel_t);
        if (!strcmp(pc->id, sc->events_channel)) {
            return 1;
        }
    }
    return 0;
}

int ps_pub_handle(request_rec *r, ps_child_t *child, const ps_dir_conf_t *d,
                  const ps_srv_conf_t *sc)
{
    apr_array_header_t *chans;
    int rc;

    ps_http_nocache(r);
    ps_http_cors(r, d, d->publisher_admin ? PS_PUB_ALLOW_ADMIN : PS_PUB_ALLOW);
    if (r->method_number == M_OPTIONS) {
        return ps_http_explain(r, HTTP_OK, NULL);
    }
    if (r->header_only
        || (r->method_number != M_GET && r->method_number != M_POST
            && r->method_number != M_PUT
            && !(r->method_number == M_DELETE && d->publisher_admin))) {
        return ps_http_not_allowed(r, d->publisher_admin ? PS_PUB_ALLOW_ADMIN
                                                         : PS_PUB_ALLOW);
    }
    if ((rc = ps_http_channels(r, d, &chans)) != OK
        || (rc = ps_http_check_ids(r, sc, chans)) != OK) {
        return rc;
    }
    if (r->method_number != M_GET && ps_has_events_channel(sc, chans)) {
        return ps_http_explain(r, HTTP_FORBIDDEN,
                               "Only internal routines can change events "
                               "channel.");
    }
    switch (r->method_number) {
    case M_GET:
        return ps_http_existing_info(r, child->store, chans);
    case M_DELETE:
        return ps_pub_delete(r, child, sc, chans);
    default:
        return ps_pub_post(r, child, d, sc, chans);
    }
}
