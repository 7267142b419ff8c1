/* ps_metrics.c - Prometheus text and server-status figures. */

#include <string.h>

#include <httpd.h>
#include <http_protocol.h>
#include <apr_strings.h>
#include <mod_status.h>

#include "ps_redis.h"
#include "ps_config.h"
#include "ps_expr.h"
#include "ps_http.h"
#include "ps_metrics.h"
#include "ps_reactor.h"

#define PS_METRICS_MAX_WORKERS 4096

int ps_metrics_wanted(request_rec *r)
{
    const char *accept = apr_table_get(r->headers_in, "Accept");

    return !strcmp(ps_query_arg(r, "format"), "prometheus")
           || (accept && strstr(accept, "version=0.0.4"));
}

int ps_metrics_read(apr_pool_t *p, ps_child_t *child, ps_metrics_t *m)
{
    m->w = apr_pcalloc(p, PS_METRICS_MAX_WORKERS * sizeof(*m->w));
    if (ps_store_lock(child->store, NULL) != APR_SUCCESS) {
        return -1;
    }
    ps_store_stats_locked(child->store, &m->s);
    m->nw = ps_store_workers_locked(child->store, m->w, PS_METRICS_MAX_WORKERS);
    ps_store_unlock(child->store);
    ps_redis_summary(&m->s);          /* several servers: every node's */
    return 0;
}

static void ps_metric(apr_bucket_brigade *bb, const char *name,
                      const char *type, const char *help, apr_uint64_t v)
{
    apr_brigade_printf(bb, NULL, NULL, "# HELP pushstream_%s %s\n"
                       "# TYPE pushstream_%s %s\npushstream_%s %"
                       APR_UINT64_T_FMT "\n", name, help, name, type, name, v);
}

int ps_metrics_answer(request_rec *r, ps_child_t *child)
{
    apr_bucket_brigade *bb = apr_brigade_create(r->pool,
                                                r->connection->bucket_alloc);
    apr_int64_t now = ps_now_sec();
    ps_metrics_t m;
    apr_off_t len;
    int i;

    if (ps_metrics_read(r->pool, child, &m) < 0) {
        return ps_http_explain(r, HTTP_INTERNAL_SERVER_ERROR, NULL);
    }
    ps_metric(bb, "channels", "gauge", "Live channels.", m.s.channels);
    ps_metric(bb, "wildcard_channels", "gauge", "Live wildcard channels.",
              m.s.wildcard_channels);
    ps_metric(bb, "published_messages_total", "counter",
              "Messages published (events channel excluded).",
              m.s.published_messages);
    ps_metric(bb, "stored_messages", "gauge", "Messages stored.",
              m.s.stored_messages);
    ps_metric(bb, "messages_in_trash", "gauge",
              "Removed messages waiting to be freed.", m.s.messages_in_trash);
    ps_metric(bb, "channels_in_delete", "gauge",
              "Deleted channels that still have subscribers.",
              m.s.channels_in_delete);
    ps_metric(bb, "channels_in_trash", "gauge",
              "Removed channels waiting to be freed.", m.s.channels_in_trash);
    ps_metric(bb, "subscribers", "gauge", "Subscriber connections.",
              m.s.subscribers);
    ps_metric(bb, "shm_size_bytes", "gauge", "Shared segment size.", m.s.size);
    ps_metric(bb, "shm_free_bytes", "gauge", "Shared segment bytes free.",
              m.s.free_bytes);
    ps_metric(bb, "segment_repairs_total", "counter",
              "Repairs after a process died holding the segment lock.",
              m.s.recoveries);
    apr_brigade_printf(bb, NULL, NULL, "# HELP pushstream_auth_refusals_total "
                       "Requests refused by PushStreamAuth.\n"
                       "# TYPE pushstream_auth_refusals_total counter\n"
                       "pushstream_auth_refusals_total{error=\"invalid_token\"} "
                       "%" APR_UINT64_T_FMT "\n"
                       "pushstream_auth_refusals_total{error=\"insufficient_"
                       "scope\"} %" APR_UINT64_T_FMT "\n",
                       m.s.auth_invalid_token, m.s.auth_insufficient_scope);
    ps_metric(bb, "uptime_seconds", "gauge", "Seconds since the segment was "
              "created.", (apr_uint64_t)(now - m.s.created));
    if (ps_redis_enabled()) {
        ps_redis_stats_t rs;
        ps_redis_stats(&rs);
        ps_metric(bb, "redis_up", "gauge", "1 while this node reaches Redis "
                  "(PushStreamRedis).", !strcmp(rs.state, "up"));
        ps_metric(bb, "redis_disconnects_total", "counter", "Redis pub/sub "
                  "connections of this node lost.", rs.disconnects);
        ps_metric(bb, "redis_data_lost_total", "counter", "Times Redis was "
                  "found without its data (new epoch).", rs.data_lost);
        ps_metric(bb, "redis_gaps_filled_total", "counter", "Id jumps filled "
                  "from the messages stored in Redis.", rs.gaps_filled);
        ps_metric(bb, "redis_publish_failures_total", "counter", "Publisher "
                  "requests (publish, DELETE, port GET) answered 503 because "
                  "Redis did not answer.",
                  rs.publish_failures);
    }
    apr_brigade_puts(bb, NULL, NULL, "# HELP pushstream_worker_subscribers "
                     "Subscriber connections per httpd child.\n"
                     "# TYPE pushstream_worker_subscribers gauge\n");
    for (i = 0; i < m.nw; i++) {
        apr_brigade_printf(bb, NULL, NULL, "pushstream_worker_subscribers"
                           "{pid=\"%d\"} %" APR_UINT64_T_FMT "\n", m.w[i].pid,
                           m.w[i].subscribers);
    }
    apr_brigade_length(bb, 1, &len);
    r->status = HTTP_OK;
    ap_set_content_type(r, "text/plain; version=0.0.4; charset=utf-8");
    ap_set_content_length(r, len);
    ap_pass_brigade(r->output_filters, bb);
    return DONE;
}

int ps_metrics_status_hook(request_rec *r, int flags)
{
    ps_child_t *child = ps_srv(r->server)->child;
    ps_metrics_t m;
    int i;

    if (!child || ps_metrics_read(r->pool, child, &m) < 0) {
        return OK;
    }
    if (flags & AP_STATUS_SHORT) {
        ap_rprintf(r, "PushStreamChannels: %" APR_UINT64_T_FMT "\n"
                   "PushStreamSubscribers: %" APR_UINT64_T_FMT "\n"
                   "PushStreamPublishedMessages: %" APR_UINT64_T_FMT "\n"
                   "PushStreamStoredMessages: %" APR_UINT64_T_FMT "\n"
                   "PushStreamShmFreeBytes: %" APR_UINT64_T_FMT "\n",
                   m.s.channels, m.s.subscribers, m.s.published_messages,
                   m.s.stored_messages, m.s.free_bytes);
        return OK;
    }
    ap_rprintf(r, "<hr /><h2>mod_pushstream</h2>\n<dl>"
               "<dt>Channels: %" APR_UINT64_T_FMT " (wildcard %"
               APR_UINT64_T_FMT ")</dt>\n<dt>Subscribers: %" APR_UINT64_T_FMT
               "</dt>\n<dt>Published messages: %" APR_UINT64_T_FMT
               ", stored: %" APR_UINT64_T_FMT ", in trash: %" APR_UINT64_T_FMT
               "</dt>\n<dt>Shared memory: %" APR_UINT64_T_FMT " of %"
               APR_UINT64_T_FMT " bytes free</dt>\n</dl>\n"
               "<table><tr><th>child pid</th><th>subscribers</th></tr>\n",
               m.s.channels, m.s.wildcard_channels, m.s.subscribers,
               m.s.published_messages, m.s.stored_messages,
               m.s.messages_in_trash, m.s.free_bytes, m.s.size);
    for (i = 0; i < m.nw; i++) {
        ap_rprintf(r, "<tr><td>%d</td><td>%" APR_UINT64_T_FMT "</td></tr>\n",
                   m.w[i].pid, m.w[i].subscribers);
    }
    ap_rputs("</table>\n", r);
    return OK;
}
