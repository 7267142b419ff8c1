/* mod_pushstream.c - module declaration and hooks.
 *
 * The shared segment is created once by the parent (post_config) from the
 * process pool and remembered in retained data, so it survives graceful
 * restarts: stored messages stay, and children of the new generation reach
 * subscribers still held by old ones.  Each child attaches to it and starts
 * its reactor in child_init; the parent's monitor hook removes what crashed
 * children leave behind. */

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include <httpd.h>
#include <http_config.h>
#include <http_core.h>
#include <http_log.h>
#include <http_main.h>
#include <http_protocol.h>
#include <http_request.h>
#include <ap_mpm.h>
#include <mpm_common.h>
#include <apr_shm.h>

#include "ps_config.h"
#include "ps_directives.h"
#include "ps_child.h"
#include "ps_expr.h"
#include "ps_handlers.h"
#include "ps_auth.h"
#include "ps_http.h"
#include "ps_reactor.h"
#include "ps_sub.h"
#include "ps_pubport.h"
#include "ps_metrics.h"
#include "ps_mpm.h"
#include "ps_redis.h"
#include <mod_status.h>

APLOG_USE_MODULE(pushstream);

#define PS_RETAINED_KEY "mod_pushstream-segment"

typedef struct ps_retained_t {
    apr_shm_t *shm;
    void *base;
    apr_size_t size;
    ps_store_t *store;              /* the parent's handle */
} ps_retained_t;

static int ps_check_config(apr_pool_t *pconf, apr_pool_t *plog,
                           apr_pool_t *ptemp, server_rec *s)
{
    int bad = ps_pubport_check(pconf, s);
    int rv = ps_config_check(pconf, s);

    /* a PushStreamAuth location needs a key in its server */
    if (ps_config_in_use(pconf) && ps_auth_check_config(pconf, s)) {
        rv = HTTP_INTERNAL_SERVER_ERROR;
    }
    return bad ? HTTP_INTERNAL_SERVER_ERROR : rv;
}

static int ps_worker_slots(void)
{
    int limit = 0;

    ap_mpm_query(AP_MPMQ_HARD_LIMIT_DAEMONS, &limit);
    limit = limit * 2 + 8;            /* old and new generations overlap */
    return limit < 16 ? 16 : (limit > 4096 ? 4096 : limit);
}

static apr_status_t ps_segment_create(ps_retained_t *ret, apr_size_t size,
                                      server_rec *s)
{
    apr_status_t rv = apr_shm_create(&ret->shm, size, NULL, s->process->pool);

    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, rv, s, "PS0004: cannot create "
                     "the shared memory segment (PushStreamSharedMemorySize %"
                     APR_SIZE_T_FMT ")", size);
        return rv;
    }
    ret->base = apr_shm_baseaddr_get(ret->shm);
    ret->size = apr_shm_size_get(ret->shm);
    rv = ps_store_format(ret->base, ret->size, ps_worker_slots(), ps_now_sec());
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, rv, s, "PS0005: cannot lay out "
                     "the shared memory segment");
        return rv;
    }
    ret->store = ps_store_attach(s->process->pool, ret->base);
    ap_log_error(APLOG_MARK, APLOG_INFO, 0, s, "PS0006: shared memory segment "
                 "of %" APR_SIZE_T_FMT " bytes ready", ret->size);
    return APR_SUCCESS;
}

/* Leak check when the parent drops a configuration (stop, restart): every
 * in-use block must be reachable and the counters must match a recount.
 * Registered on pconf, so it runs before the error log (opened earlier on
 * pconf) closes; children never destroy pconf, the pid check is a guard. */
typedef struct ps_leak_check_t {
    server_rec *s;
    pid_t parent;
} ps_leak_check_t;

static apr_status_t ps_leak_check(void *data)
{
    ps_leak_check_t *lc = data;
    ps_retained_t *ret = ap_retained_data_get(PS_RETAINED_KEY);
    apr_uint64_t leaked = 0;
    const char *why = NULL;
    int bad;

    if (getpid() != lc->parent || !ret || !ret->store
        || ps_store_lock(ret->store, NULL) != APR_SUCCESS) {
        return APR_SUCCESS;
    }
    bad = ps_store_leaks_locked(ret->store, &leaked, &why);
    ps_store_unlock(ret->store);
    if (bad) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, 0, lc->s, "PS0060: shared "
                     "segment leaked %" APR_UINT64_T_FMT " block(s) or its "
                     "counters are out of step: %s", leaked, why);
    }
    else {
        ap_log_error(APLOG_MARK, APLOG_DEBUG, 0, lc->s, "PS0061: shared "
                     "segment leak check: every block reachable");
    }
    return APR_SUCCESS;
}

static void ps_leak_check_register(apr_pool_t *pconf, server_rec *s)
{
    ps_leak_check_t *lc = apr_palloc(pconf, sizeof(*lc));

    lc->s = s;
    lc->parent = getpid();
    apr_pool_cleanup_register(pconf, lc, ps_leak_check, apr_pool_cleanup_null);
}

static int ps_post_config(apr_pool_t *pconf, apr_pool_t *plog,
                          apr_pool_t *ptemp, server_rec *s)
{
    ps_retained_t *ret;
    apr_size_t size;
    int async = 0;

    if (ap_state_query(AP_SQ_MAIN_STATE) == AP_SQ_MS_CREATE_PRE_CONFIG) {
        return OK;
    }
    ps_config_finish(pconf, s);
    if (!ps_config_in_use(pconf)) {
        return OK;
    }
    size = (apr_size_t)ps_srv(s)->shm_size;
    ret = ap_retained_data_get(PS_RETAINED_KEY);
    if (!ret) {
        ret = ap_retained_data_create(PS_RETAINED_KEY, sizeof(*ret));
    }
    if (ret->shm && ret->size != size) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, "PS0007: "
                     "PushStreamSharedMemorySize changed; the segment keeps its "
                     "%" APR_SIZE_T_FMT " bytes until a full restart",
                     ret->size);
    }
    if (!ret->shm && ps_segment_create(ret, size, s) != APR_SUCCESS) {
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    ps_leak_check_register(pconf, s);
    if (ps_pubport_open(pconf, s) != OK) {
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    if (ps_srv(s)->events_channel
        && ps_store_lock(ret->store, NULL) == APR_SUCCESS) {
        const char *id = ps_srv(s)->events_channel;
        if (ps_store_events_channel_locked(ret->store, id, strlen(id),
                                           &ps_srv(s)->limits, ps_now_sec())
            != APR_SUCCESS) {
            ap_log_error(APLOG_MARK, APLOG_ERR, 0, s, "PS0017: cannot create "
                         "the events channel \"%s\"", id);
        }
        ps_store_unlock(ret->store);
    }
    ap_mpm_query(AP_MPMQ_IS_ASYNC, &async);
    if (!async) {
        ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, s, "PS0008: the %s MPM is "
                     "not asynchronous: each waiting subscriber holds a worker "
                     "thread (blocking fallback); use the event MPM for many "
                     "subscribers", ap_show_mpm());
    }
    ps_mpm_check(ptemp, s);
    return ps_redis_post_config(s);
}

static ps_child_t *ps_child_of(server_rec *s)
{
    return s ? ps_srv(s)->child : NULL;
}

static apr_status_t ps_child_cleanup(void *data)
{
    ps_child_t *child = data;

    if (child->reactor) {
        ps_reactor_stop(child->reactor);
        child->reactor = NULL;
    }
    if (ps_store_lock(child->store, NULL) == APR_SUCCESS) {
        ps_store_worker_release_locked(child->store, child->slot);
        ps_store_unlock(child->store);
    }
    return APR_SUCCESS;
}

/* What the child's loop serves besides subscribers: the publisher port,
 * the loop's Redis connection. */
static void ps_child_attach(ps_child_t *child, ps_reactor_t *re)
{
    ps_pubport_attach(child, re);
    ps_redis_attach(child, re);
}

static void ps_child_init(apr_pool_t *pchild, server_rec *s)
{
    ps_retained_t *ret = ap_retained_data_get(PS_RETAINED_KEY);
    ps_child_t *child;
    server_rec *sv;
    int repaired = 0;
    apr_status_t rv;

    if (!ret || !ret->shm) {
        return;
    }
    child = apr_pcalloc(pchild, sizeof(*child));
    child->pool = pchild;
    child->s = s;
    child->store = ps_store_attach(pchild, ret->base);
    child->started = ps_now_sec();
    child->default_tpl = ps_template_compile(pchild, "~text~", 6);
    ap_mpm_query(AP_MPMQ_IS_ASYNC, &child->async);
    child->slot = -1;
    if (ps_store_lock(child->store, &repaired) == APR_SUCCESS) {
        child->slot = ps_store_worker_claim_locked(child->store, getpid(),
                                                   child->started);
        ps_store_unlock(child->store);
    }
    if (child->slot < 0) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, "PS0009: no worker slot "
                     "left in the shared segment for this child");
    }
    ps_redis_child_init(pchild, s, child->store);
    rv = ps_reactor_start(child, &ps_sub_reactor_subs, ps_child_attach,
                          &child->reactor);
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, rv, s, "PS0010: cannot start the "
                     "subscriber loop of this child");
        child->reactor = NULL;
    }
    for (sv = s; sv; sv = sv->next) {
        ps_srv(sv)->child = child;
    }
    /* A pre-cleanup: it must stop the loop threads before APR destroys
     * pchild's sub-pools (the threads' own pools among them). */
    apr_pool_pre_cleanup_register(pchild, child, ps_child_cleanup);
}

/* A stopping child (graceful restart, graceful-stop, MaxConnectionsPerChild)
 * waits for its connections to reach zero: end our subscribers now. */
static void ps_child_stopping(apr_pool_t *pchild, int graceful)
{
    ps_child_t *child = ps_child_of(ap_server_conf);

    if (child && child->reactor) {
        ps_reactor_shutdown(child->reactor, graceful);
    }
}

static int ps_parent_alive(apr_int32_t pid)
{
    return kill((pid_t)pid, 0) == 0 || errno == EPERM;
}

/* Parent, about once a second: forget subscriptions of dead children. */
static int ps_monitor(apr_pool_t *p, server_rec *s)
{
    ps_retained_t *ret = ap_retained_data_get(PS_RETAINED_KEY);
    int repaired = 0, reaped, bad = 0;
    const char *why = NULL;

    if (!ret || !ret->store
        || ps_store_lock(ret->store, &repaired) != APR_SUCCESS) {
        return DECLINED;
    }
    reaped = ps_store_reap_dead_locked(ret->store, ps_parent_alive);
    ps_store_cleanup_locked(ret->store, ps_now_sec());
    /* After a repair, and at debug level every tick, prove the segment is
     * sound: a failed check is logged (and what tests look for). */
    if (repaired || APLOG_IS_LEVEL(s, APLOG_DEBUG)) {
        bad = ps_store_check_locked(ret->store, &why);
    }
    ps_store_unlock(ret->store);
    if (repaired) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, "PS0011: a process died "
                     "holding the shared segment lock; the segment was "
                     "repaired");
    }
    if (bad) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, 0, s, "PS0014: shared segment "
                     "check failed: %s", why);
    }
    if (reaped) {
        ap_log_error(APLOG_MARK, APLOG_INFO, 0, s, "PS0012: removed the "
                     "subscriptions of %d dead child process(es)", reaped);
    }
    return DECLINED;
}

static int ps_handler(request_rec *r)
{
    ps_dir_conf_t *d = ps_dir(r);
    ps_srv_conf_t *sc;

    if (!d || !d->kind || r->main) {
        return DECLINED;
    }
    sc = ps_srv(r->server);
    if (!sc->child || !sc->child->reactor) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "PS0013: mod_pushstream is "
                      "not initialised in this process");
        return ps_http_explain(r, HTTP_INTERNAL_SERVER_ERROR, NULL);
    }
    if (d->auth_mode > 0) {           /* PushStreamAuth: the token first */
        int rc = ps_auth_request(r, d, sc->child->store);
        if (rc != OK) {
            return rc;
        }
    }
    switch (d->kind) {
    case PS_LOC_PUBLISHER:
        return ps_pub_handle(r, sc->child, d, sc);
    case PS_LOC_SUBSCRIBER:
        return ps_sub_handle(r, sc->child, d, sc);
    default:
        return ps_stats_handle(r, sc->child, d, sc);
    }
}

/* Publisher, subscriber and statistics locations map to no file: skip
 * ap_directory_walk()'s stat() of every level of the DocumentRoot (what
 * mod_proxy does for its URLs; 8 % of a publisher's CPU in perf).
 * <Directory> sections and .htaccess do not apply to them; <Location> ones
 * do.  map_to_storage runs with the server's default config (the
 * <Location> merge is redone after it), so translate_name, which sees the
 * <Location> config, leaves the verdict in a note. */
#define PS_NOTE_NOFILE "pushstream-location"

static int ps_translate(request_rec *r)
{
    ps_dir_conf_t *d = ps_dir(r);

    if (d && d->kind && !r->main) {
        apr_table_setn(r->notes, PS_NOTE_NOFILE, "1");
    }
    return DECLINED;
}

static int ps_map_to_storage(request_rec *r)
{
    return apr_table_get(r->notes, PS_NOTE_NOFILE) ? OK : DECLINED;
}

static void ps_register_hooks(apr_pool_t *p)
{
    ap_hook_check_config(ps_check_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_post_config(ps_post_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_child_init(ps_child_init, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_child_stopping(ps_child_stopping, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_monitor(ps_monitor, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_handler(ps_handler, NULL, NULL, APR_HOOK_FIRST);
    ap_hook_translate_name(ps_translate, NULL, NULL, APR_HOOK_FIRST);
    ap_hook_map_to_storage(ps_map_to_storage, NULL, NULL, APR_HOOK_FIRST);
    ap_hook_suspend_connection(ps_sub_suspended, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_expr_lookup(ps_expr_lookup, NULL, NULL, APR_HOOK_MIDDLE);
    APR_OPTIONAL_HOOK(ap, status_hook, ps_metrics_status_hook, NULL, NULL,
                      APR_HOOK_MIDDLE);
}

module AP_MODULE_DECLARE_DATA pushstream_module = {
    STANDARD20_MODULE_STUFF,
    ps_create_dir_conf,
    ps_merge_dir_conf,
    ps_create_srv_conf,
    ps_merge_srv_conf,
    ps_cmds,
    ps_register_hooks
};
