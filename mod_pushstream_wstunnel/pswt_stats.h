/* pswt_stats.h - tunnel counters shared by all children, for mod_status.
 *
 * An anonymous shared segment (created once by the parent, kept across
 * graceful restarts) with one slot per child process: the open tunnels of
 * children that are gone do not count, their totals do. */
#ifndef PSWT_STATS_H
#define PSWT_STATS_H

#include <httpd.h>

typedef enum {
    PSWT_END_NONE = 0,
    PSWT_END_CLIENT_CLOSED,  /* EOF from the client */
    PSWT_END_CLIENT_ERROR,
    PSWT_END_BACKEND_CLOSED,
    PSWT_END_BACKEND_ERROR,
    PSWT_END_IDLE,
    PSWT_END_SHUTDOWN,       /* child stopping (restart, stop) */
    PSWT_END_TOO_BIG,
    PSWT_END_PROTOCOL,
    PSWT_END_COUNT
} pswt_end_e;

typedef enum {
    PSWT_C_OPENED = 0,       /* tunnels established (101 relayed) */
    PSWT_C_CLOSED,
    PSWT_C_BYTES_C2B,        /* client -> back end */
    PSWT_C_BYTES_B2C,
    PSWT_C_NO_UPGRADE,       /* refused with 426 */
    PSWT_C_BACKEND_FAIL,     /* connect / handshake failed (5xx) */
    PSWT_C_NOT_101,          /* back end answered something else: relayed */
    PSWT_C_BLOCKING,         /* ran on a worker thread (no suspend) */
    PSWT_C_END_BASE          /* + pswt_end_e: closes by cause */
} pswt_counter_e;

#define PSWT_C_MAX (PSWT_C_END_BASE + 16)

/* post_config (parent). */
apr_status_t pswt_stats_init(server_rec *s);
/* child_init / child exit. */
void pswt_stats_child_init(apr_pool_t *pchild, server_rec *s);

void pswt_stats_add(pswt_counter_e which, apr_uint64_t n);
void pswt_stats_open(int delta);

/* mod_status hook. */
int pswt_stats_status_hook(request_rec *r, int flags);

#endif
