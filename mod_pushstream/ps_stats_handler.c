/* ps_stats_handler.c - the statistics location (protocol B12).
 *
 * Empty path: summarized figures of the whole segment with one entry per
 * httpd child (by_worker); ALL or prefix*: every (matching) channel in
 * creation order; otherwise the listed channels in request order. */

#include <string.h>

#include <httpd.h>
#include <http_protocol.h>
#include <apr_strings.h>
#include <apr_network_io.h>

#include "ps_redis.h"
#include "ps_config.h"
#include "ps_child.h"
#include "ps_http.h"
#include "ps_handlers.h"
#include "ps_metrics.h"

#define PS_STATS_TAG     "0.5.5"
#define PS_STATS_COMMIT  "3bc016f811d50374251960db091557571dfd7393"

static const char *ps_hostname(request_rec *r)
{
    char host[256];

    if (apr_gethostname(host, sizeof(host), r->pool) != APR_SUCCESS) {
        return "localhost";
    }
    return apr_pstrdup(r->pool, host);
}

static int ps_stats_summary(request_rec *r, ps_child_t *child)
{
    ps_metrics_t m;
    ps_info_worker_t *iw;
    ps_info_summary_t sum;
    const char *ctype;
    ps_fmt_e fmt = ps_info_format_from_accept(apr_table_get(r->headers_in,
                                                            "Accept"), &ctype);
    apr_size_t len;
    int i;
    char *doc;

    if (ps_metrics_read(r->pool, child, &m) < 0) {
        return ps_http_explain(r, HTTP_INTERNAL_SERVER_ERROR, NULL);
    }
    memset(&sum, 0, sizeof(sum));
    sum.hostname = ps_hostname(r);
    sum.now = ps_now_sec();
    sum.channels = m.s.channels;
    sum.wildcard_channels = m.s.wildcard_channels;
    sum.published_messages = m.s.published_messages;
    sum.stored_messages = m.s.stored_messages;
    sum.messages_in_trash = m.s.messages_in_trash;
    sum.channels_in_delete = m.s.channels_in_delete;
    sum.channels_in_trash = m.s.channels_in_trash;
    sum.subscribers = m.s.subscribers;
    sum.uptime = (apr_uint64_t)(sum.now - m.s.created);
    sum.auth = ps_srv(r->server)->auth != NULL;
    sum.auth_invalid_token = m.s.auth_invalid_token;
    sum.auth_insufficient_scope = m.s.auth_insufficient_scope;
    iw = apr_pcalloc(r->pool, (m.nw + 1) * sizeof(*iw));
    for (i = 0; i < m.nw; i++) {
        iw[i].pid = m.w[i].pid;
        iw[i].subscribers = m.w[i].subscribers;
        iw[i].uptime = (apr_uint64_t)(sum.now - m.w[i].started);
    }
    if (ps_redis_enabled()) {
        ps_redis_stats_t rs;
        ps_redis_stats(&rs);
        apr_table_setn(r->headers_out, "X-PushStream-Redis", apr_psprintf(
            r->pool, "state=%s connected=%d disconnects=%" APR_UINT64_T_FMT
            " data_lost=%" APR_UINT64_T_FMT " gaps_filled=%" APR_UINT64_T_FMT
            " publish_failures=%" APR_UINT64_T_FMT " counts_writer=%d",
            rs.state, rs.connected, rs.disconnects, rs.data_lost,
            rs.gaps_filled, rs.publish_failures, rs.counts_writer));
    }
    doc = ps_info_summarized(r->pool, fmt, &sum, iw, m.nw, &len);
    return ps_http_body(r, ctype, doc, len);
}

/* Channel figures as Prometheus text (?format=prometheus with a list). */
static int ps_stats_prometheus(request_rec *r, const ps_chinfo_t *items,
                               int n)
{
    apr_size_t len;
    char *doc = ps_info_prometheus(r->pool, items, n, &len);

    return ps_http_body(r, "text/plain; version=0.0.4; charset=utf-8", doc,
                        len);
}

typedef struct ps_collect_t {
    request_rec *r;
    const char *prefix;            /* NULL = all */
    apr_size_t prefix_len;
    apr_array_header_t *items;     /* ps_chinfo_t */
} ps_collect_t;

static void ps_stats_collect(void *baton, const ps_chinfo_t *info, int wildcard)
{
    ps_collect_t *c = baton;
    ps_chinfo_t *it;

    if (!ps_path_has_prefix(info->id, info->id_len, c->prefix,
                            c->prefix_len)) {
        return;
    }
    it = apr_array_push(c->items);
    *it = *info;
    it->id = apr_pstrmemdup(c->r->pool, info->id, info->id_len);
}

/* ALL or prefix*: every matching channel, detailed format. */
static int ps_stats_all(request_rec *r, ps_child_t *child, const char *prefix,
                        apr_size_t prefix_len)
{
    ps_collect_t c;

    c.r = r;
    c.prefix = prefix;
    c.prefix_len = prefix_len;
    c.items = apr_array_make(r->pool, 16, sizeof(ps_chinfo_t));
    if (ps_store_lock(child->store, NULL) != APR_SUCCESS) {
        return ps_http_explain(r, HTTP_INTERNAL_SERVER_ERROR, NULL);
    }
    ps_store_foreach_channel_locked(child->store, r->pool, ps_stats_collect,
                                    &c);
    ps_store_unlock(child->store);
    ps_redis_subscribers(r->pool, (ps_chinfo_t *)c.items->elts,
                         c.items->nelts);          /* several servers */
    if (ps_metrics_wanted(r)) {
        return ps_stats_prometheus(r, (ps_chinfo_t *)c.items->elts,
                                   c.items->nelts);
    }
    return ps_http_info_group(r, child->store,
                              (ps_chinfo_t *)c.items->elts, c.items->nelts);
}

/* Listed channels as Prometheus text: those that exist, in list order. */
static int ps_stats_list_prometheus(request_rec *r, ps_child_t *child,
                                    const apr_array_header_t *chans)
{
    ps_chinfo_t *items = apr_pcalloc(r->pool, (chans->nelts + 1)
                                              * sizeof(*items));
    int i, n = 0;

    if (ps_store_lock(child->store, NULL) != APR_SUCCESS) {
        return ps_http_explain(r, HTTP_INTERNAL_SERVER_ERROR, NULL);
    }
    for (i = 0; i < chans->nelts; i++) {
        const ps_path_channel_t *pc = &APR_ARRAY_IDX(chans, i,
                                                     ps_path_channel_t);
        ps_channel_t *ch = ps_store_find_locked(child->store, pc->id, pc->len);
        if (ch) {
            ps_store_channel_info_locked(child->store, ch, &items[n]);
            items[n].id = pc->id;
            n++;
        }
    }
    ps_store_unlock(child->store);
    ps_redis_subscribers(r->pool, items, n);       /* several servers */
    return ps_stats_prometheus(r, items, n);
}

int ps_stats_handle(request_rec *r, ps_child_t *child, const ps_dir_conf_t *d,
                    const ps_srv_conf_t *sc)
{
    apr_array_header_t *chans;
    const char *prefix;
    apr_size_t prefix_len;
    int rc;

    ps_http_nocache(r);
    apr_table_setn(r->headers_out, "X-Nginx-PushStream-Tag", PS_STATS_TAG);
    apr_table_setn(r->headers_out, "X-Nginx-PushStream-Commit",
                   PS_STATS_COMMIT);
    if (r->method_number != M_GET || r->header_only) {
        return ps_http_not_allowed(r, "GET");
    }
    if ((rc = ps_http_parse_path(r, d, &chans)) != OK) {
        return rc;
    }
    /* The selection is core code (ps_path.c), unit-tested and fuzzed. */
    switch (ps_path_stats_select(chans, sc->max_channel_id_length, &prefix,
                                 &prefix_len)) {
    case PS_STATS_SUMMARY:
        return ps_metrics_wanted(r) ? ps_metrics_answer(r, child)
                                    : ps_stats_summary(r, child);
    case PS_STATS_ALL:
        return ps_stats_all(r, child, prefix, prefix_len);
    case PS_STATS_TOO_LONG:
        return ps_http_explain(r, HTTP_BAD_REQUEST, "Channel id is too large.");
    default:
        if (ps_metrics_wanted(r)) {
            return ps_stats_list_prometheus(r, child, chans);
        }
        return ps_http_existing_info(r, child->store, chans);
    }
}
