/* ps_metrics.h - the module's figures for monitoring: Prometheus text on
 * the statistics location, and a section of mod_status's server-status. */
#ifndef PS_METRICS_H
#define PS_METRICS_H

#include <httpd.h>
#include "ps_child.h"

/* 1 when the request asks the statistics location for Prometheus text
 * (?format=prometheus, or Accept: text/plain; version=0.0.4). */
int ps_metrics_wanted(request_rec *r);

/* Everything a report needs (Prometheus, server-status, the summarized
 * statistics document), read under one lock. */
typedef struct ps_metrics_t {
    ps_store_stats_t s;           /* with PushStreamRedis: every node's */
    ps_worker_info_t *w;          /* this server's children, from p */
    int nw;
} ps_metrics_t;

/* Fill m; -1 when the segment's lock could not be taken. */
int ps_metrics_read(apr_pool_t *p, ps_child_t *child, ps_metrics_t *m);

/* Answer with the Prometheus exposition of the segment's figures. */
int ps_metrics_answer(request_rec *r, ps_child_t *child);

/* mod_status hook. */
int ps_metrics_status_hook(request_rec *r, int flags);

#endif
