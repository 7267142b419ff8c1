/* pswt_stats.c - shared tunnel counters and the server-status section. */

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include <httpd.h>
#include <http_config.h>
#include <http_log.h>
#include <http_protocol.h>
#include <ap_mpm.h>
#include <apr_atomic.h>
#include <apr_shm.h>
#include <mod_status.h>

#include "pswt_stats.h"

APLOG_USE_MODULE(pushstream_wstunnel);

#define PSWT_STATS_KEY   "mod_pushstream_wstunnel-stats"
#define PSWT_STATS_MAGIC 0x70737774u       /* "pswt" */

typedef struct pswt_slot_t {
    volatile apr_uint32_t pid;
    volatile apr_uint32_t open;
    volatile apr_uint64_t c[PSWT_C_MAX];
} pswt_slot_t;

typedef struct pswt_segment_t {
    apr_uint32_t magic;
    apr_uint32_t nslots;
    pswt_slot_t slots[1];
} pswt_segment_t;

typedef struct pswt_retained_t {
    apr_shm_t *shm;
    pswt_segment_t *seg;
} pswt_retained_t;

static pswt_segment_t *pswt_seg;           /* this process */
static pswt_slot_t *pswt_my_slot;          /* this child's */

static int pswt_pid_alive(apr_uint32_t pid)
{
    return pid && (kill((pid_t)pid, 0) == 0 || errno == EPERM);
}

apr_status_t pswt_stats_init(server_rec *s)
{
    pswt_retained_t *ret = ap_retained_data_get(PSWT_STATS_KEY);
    apr_size_t size;
    int limit = 0, n;
    apr_status_t rv;

    if (!ret) {
        ret = ap_retained_data_create(PSWT_STATS_KEY, sizeof(*ret));
    }
    if (!ret->seg) {
        ap_mpm_query(AP_MPMQ_HARD_LIMIT_DAEMONS, &limit);
        n = limit * 2 + 8;            /* old and new generations overlap */
        n = n < 16 ? 16 : (n > 4096 ? 4096 : n);
        size = APR_OFFSETOF(pswt_segment_t, slots) + (apr_size_t)n
               * sizeof(pswt_slot_t);
        rv = apr_shm_create(&ret->shm, size, NULL, s->process->pool);
        if (rv != APR_SUCCESS) {
            ap_log_error(APLOG_MARK, APLOG_ERR, rv, s, "PSWT0001: cannot "
                         "create the shared segment for tunnel counters "
                         "(server-status will show this child only)");
            return rv;
        }
        ret->seg = apr_shm_baseaddr_get(ret->shm);
        memset(ret->seg, 0, size);
        ret->seg->nslots = (apr_uint32_t)n;
        ret->seg->magic = PSWT_STATS_MAGIC;
    }
    pswt_seg = ret->seg;
    return APR_SUCCESS;
}

static apr_status_t pswt_stats_child_exit(void *data)
{
    pswt_slot_t *slot = data;

    apr_atomic_set32(&slot->open, 0);
    apr_atomic_set32(&slot->pid, 0);
    pswt_my_slot = NULL;
    return APR_SUCCESS;
}

void pswt_stats_child_init(apr_pool_t *pchild, server_rec *s)
{
    static pswt_slot_t local;                  /* no segment: this child only */
    apr_uint32_t me = (apr_uint32_t)getpid(), i, pid;

    pswt_my_slot = &local;
    if (!pswt_seg) {
        return;
    }
    for (i = 0; i < pswt_seg->nslots; i++) {
        pswt_slot_t *slot = &pswt_seg->slots[i];
        pid = apr_atomic_read32(&slot->pid);
        if (pid && pswt_pid_alive(pid)) {
            continue;
        }
        if (apr_atomic_cas32(&slot->pid, me, pid) == pid) {
            /* a dead child's slot: its open tunnels are gone, its totals
             * stay in the sums */
            apr_atomic_set32(&slot->open, 0);
            pswt_my_slot = slot;
            apr_pool_cleanup_register(pchild, slot, pswt_stats_child_exit,
                                      apr_pool_cleanup_null);
            return;
        }
    }
    ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, "PSWT0002: no slot left for "
                 "this child's tunnel counters");
}

void pswt_stats_add(pswt_counter_e which, apr_uint64_t n)
{
    if (pswt_my_slot && which < PSWT_C_MAX) {
        apr_atomic_add64(&pswt_my_slot->c[which], n);
    }
}

void pswt_stats_open(int delta)
{
    if (pswt_my_slot) {
        apr_atomic_add32(&pswt_my_slot->open, (apr_uint32_t)delta);
    }
}

typedef struct pswt_sums_t {
    apr_uint64_t open;
    int children;
    apr_uint64_t c[PSWT_C_MAX];
} pswt_sums_t;

static void pswt_sum(pswt_sums_t *sum)
{
    apr_uint32_t i;
    int k;

    memset(sum, 0, sizeof(*sum));
    if (!pswt_seg) {
        if (pswt_my_slot) {
            sum->open = pswt_my_slot->open;
            sum->children = 1;
            for (k = 0; k < PSWT_C_MAX; k++) {
                sum->c[k] = pswt_my_slot->c[k];
            }
        }
        return;
    }
    for (i = 0; i < pswt_seg->nslots; i++) {
        pswt_slot_t *slot = &pswt_seg->slots[i];
        apr_uint32_t pid = apr_atomic_read32(&slot->pid);
        if (pid && pswt_pid_alive(pid)) {
            sum->open += apr_atomic_read32(&slot->open);
            sum->children++;
        }
        for (k = 0; k < PSWT_C_MAX; k++) {
            sum->c[k] += apr_atomic_read64(&slot->c[k]);
        }
    }
}

static const struct {
    const char *key;           /* ?auto name */
    const char *label;         /* HTML */
    int which;
} pswt_rows[] = {
    { "WstunnelOpened", "Tunnels opened", PSWT_C_OPENED },
    { "WstunnelClosed", "Tunnels closed", PSWT_C_CLOSED },
    { "WstunnelBytesClientToBackend", "Bytes client &rarr; back end",
      PSWT_C_BYTES_C2B },
    { "WstunnelBytesBackendToClient", "Bytes back end &rarr; client",
      PSWT_C_BYTES_B2C },
    { "WstunnelRefusedNoUpgrade", "Refused without Upgrade (426)",
      PSWT_C_NO_UPGRADE },
    { "WstunnelBackendFailures", "Back end connect/handshake failures",
      PSWT_C_BACKEND_FAIL },
    { "WstunnelBackendNot101", "Back end answers other than 101 (relayed)",
      PSWT_C_NOT_101 },
    { "WstunnelBlocking", "Tunnels that held a worker thread",
      PSWT_C_BLOCKING },
    { "WstunnelClosedByClient", "Closed by the client",
      PSWT_C_END_BASE + PSWT_END_CLIENT_CLOSED },
    { "WstunnelClosedByClientError", "Client connection errors",
      PSWT_C_END_BASE + PSWT_END_CLIENT_ERROR },
    { "WstunnelClosedByBackend", "Closed by the back end",
      PSWT_C_END_BASE + PSWT_END_BACKEND_CLOSED },
    { "WstunnelClosedByBackendError", "Back end connection errors",
      PSWT_C_END_BASE + PSWT_END_BACKEND_ERROR },
    { "WstunnelClosedIdle", "Idle timeouts",
      PSWT_C_END_BASE + PSWT_END_IDLE },
    { "WstunnelClosedShutdown", "Closed by a stopping child",
      PSWT_C_END_BASE + PSWT_END_SHUTDOWN },
    { "WstunnelClosedTooBig", "Closed for a too large message (1009)",
      PSWT_C_END_BASE + PSWT_END_TOO_BIG },
    { "WstunnelClosedProtocol", "Closed for a protocol error (1002)",
      PSWT_C_END_BASE + PSWT_END_PROTOCOL },
};

int pswt_stats_status_hook(request_rec *r, int flags)
{
    pswt_sums_t sum;
    apr_size_t i;

    pswt_sum(&sum);
    if (flags & AP_STATUS_SHORT) {
        ap_rprintf(r, "WstunnelOpen: %" APR_UINT64_T_FMT "\n", sum.open);
        for (i = 0; i < sizeof(pswt_rows) / sizeof(pswt_rows[0]); i++) {
            ap_rprintf(r, "%s: %" APR_UINT64_T_FMT "\n", pswt_rows[i].key,
                       sum.c[pswt_rows[i].which]);
        }
        return OK;
    }
    ap_rputs("<hr />\n<h2>mod_pushstream_wstunnel</h2>\n<table border=\"0\">"
             "\n", r);
    ap_rprintf(r, "<tr><th align=\"left\">Open tunnels</th><td>%"
               APR_UINT64_T_FMT "</td></tr>\n", sum.open);
    for (i = 0; i < sizeof(pswt_rows) / sizeof(pswt_rows[0]); i++) {
        ap_rprintf(r, "<tr><th align=\"left\">%s</th><td>%" APR_UINT64_T_FMT
                   "</td></tr>\n", pswt_rows[i].label,
                   sum.c[pswt_rows[i].which]);
    }
    ap_rputs("</table>\n", r);
    return OK;
}
