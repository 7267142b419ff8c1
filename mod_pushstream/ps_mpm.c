/* ps_mpm.c - the event MPM settings that many waiting subscribers need.
 *
 * A suspended connection (long-poll, TLS stream, WebSocket tunnel) counts
 * against the event MPM's per-child limit
 *   ThreadsPerChild + idle threads x AsyncRequestWorkerFactor
 * (connections_above_limit() in event.c, 2.4.71); past it the child stops
 * accepting.  A child full of idle subscribers also has idle threads and is
 * stopped by MaxSpareThreads, and MaxConnectionsPerChild recycles it: both
 * end its subscribers.  The factor is not queryable: it is read from the
 * configuration tree, as the last AsyncRequestWorkerFactor seen. */

#include <stdlib.h>
#include <string.h>

#include <httpd.h>
#include <http_config.h>
#include <http_log.h>
#include <ap_mpm.h>
#include <apr_strings.h>

#include "ps_mpm.h"

APLOG_USE_MODULE(pushstream);

/* Suspended connections a child must be able to hold before we stay quiet
 * (the factor a thread-full child needs to reach it is recommended). */
#define PS_MPM_MIN_CONNS   1000
#define PS_MPM_FACTOR      1000
/* event's default AsyncRequestWorkerFactor */
#define PS_MPM_DEF_FACTOR  2

static const ap_directive_t *ps_mpm_find_last(const ap_directive_t *d,
                                              const char *name,
                                              const ap_directive_t *found)
{
    for (; d; d = d->next) {
        if (d->directive && !strcasecmp(d->directive, name)) {
            found = d;
        }
        if (d->first_child) {
            found = ps_mpm_find_last(d->first_child, name, found);
        }
    }
    return found;
}

void ps_mpm_check(apr_pool_t *ptemp, server_rec *s)
{
    const ap_directive_t *f;
    int async = 0, threads = 0, daemons = 0, spare = 0, per_child = 0;
    double factor = PS_MPM_DEF_FACTOR;
    const char *advice = "";

    if (ap_mpm_query(AP_MPMQ_IS_ASYNC, &async) != APR_SUCCESS || !async
        || strcmp(ap_show_mpm(), "event")) {
        return;
    }
    ap_mpm_query(AP_MPMQ_MAX_THREADS, &threads);
    ap_mpm_query(AP_MPMQ_MAX_DAEMONS, &daemons);
    ap_mpm_query(AP_MPMQ_MAX_SPARE_THREADS, &spare);
    ap_mpm_query(AP_MPMQ_MAX_REQUESTS_DAEMON, &per_child);
    f = ps_mpm_find_last(ap_conftree, "AsyncRequestWorkerFactor", NULL);
    if (f && f->args) {
        factor = strtod(f->args, NULL);
    }
    if (threads > 0 && threads * (1.0 + factor) < PS_MPM_MIN_CONNS) {
        advice = apr_psprintf(ptemp, "%s AsyncRequestWorkerFactor %d (now %g: "
                              "a child stops accepting at about %d suspended "
                              "connections);", advice, PS_MPM_FACTOR, factor,
                              (int)(threads * (1.0 + factor)));
    }
    if (threads > 0 && daemons > 0 && spare < threads * daemons) {
        advice = apr_psprintf(ptemp, "%s MaxSpareThreads %d (now %d: a child "
                              "of idle subscribers looks spare and is "
                              "stopped);", advice, threads * daemons, spare);
    }
    if (per_child > 0) {
        advice = apr_psprintf(ptemp, "%s MaxConnectionsPerChild 0 (now %d: "
                              "recycling a child ends its subscribers);",
                              advice, per_child);
    }
    if (*advice) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, "PS0110: the event MPM "
                     "settings cannot hold many waiting subscribers; set in "
                     "<IfModule mpm_event_module> (conf.d/pushstream.conf, "
                     "what a2enmod pushstream enables, does):%s see the "
                     "README, \"Event MPM settings\"", advice);
    }
}
