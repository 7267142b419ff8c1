/* mod_pushstream_wstunnel.c - WebSocket reverse proxy (ws:// and wss://
 * back ends for mod_proxy) whose idle tunnels hold no worker thread.
 *
 * A mod_proxy scheme handler, in place of mod_proxy_wstunnel: the same
 * ProxyPass / BalancerMember configuration, but after the back end's 101
 * the tunnel leaves the worker thread (the handler returns SUSPENDED) and
 * lives in a loop thread of the child (psc_loop.c), which forwards bytes
 * both ways without blocking.  Under worker/prefork the tunnel holds its
 * thread, as stock httpd 2.4 does. */

#include <httpd.h>
#include <http_config.h>
#include <http_core.h>
#include <http_log.h>
#include <http_main.h>
#include <ap_mpm.h>
#include <mpm_common.h>
#include <mod_status.h>

#include "pswt_config.h"
#include "pswt_handler.h"
#include "pswt_proxy.h"
#include "pswt_stats.h"
#include "pswt_tunnel.h"


static int pswt_pre_config(apr_pool_t *pconf, apr_pool_t *plog,
                           apr_pool_t *ptemp)
{
    pswt_config_reset();
    return OK;
}

static void pswt_warn_no_proxy(server_rec *s)
{
    ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, "PSWT0004: mod_proxy is not "
                 "loaded before mod_pushstream_wstunnel; ws:// and wss:// "
                 "routes are not handled (LoadModule proxy_module first; "
                 "Debian: a2enmod proxy)");
}

/* apachectl configtest runs this (post_config it does not). */
static int pswt_check_config(apr_pool_t *pconf, apr_pool_t *plog,
                             apr_pool_t *ptemp, server_rec *s)
{
    if (ap_find_linked_module("mod_proxy_wstunnel.c")) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s, "PSWT0003: "
                     "mod_pushstream_wstunnel and mod_proxy_wstunnel are both "
                     "loaded; both handle ws:// and wss:// back ends.  Load "
                     "only one of them (Debian: a2dismod proxy_wstunnel)");
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    if (!PSWT_HAVE_PROXY()) {
        if (ap_state_query(AP_SQ_RUN_MODE) == AP_SQ_RM_CONFIG_TEST) {
            pswt_warn_no_proxy(s);          /* else post_config logs it */
        }
        return OK;
    }
    if (pswt_config_wants_proxy_http()
        && !ap_find_linked_module("mod_proxy_http.c")) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s, "PSWT0005: "
                     "PushStreamWstunnelFallbackToProxyHttp On needs "
                     "mod_proxy_http (Debian: a2enmod proxy_http)");
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    return OK;
}

static int pswt_post_config(apr_pool_t *pconf, apr_pool_t *plog,
                            apr_pool_t *ptemp, server_rec *s)
{
    int async = 0;

    if (ap_state_query(AP_SQ_MAIN_STATE) == AP_SQ_MS_CREATE_PRE_CONFIG) {
        return OK;
    }
    if (!PSWT_HAVE_PROXY()) {
        pswt_warn_no_proxy(s);
        return OK;
    }
    pswt_stats_init(s);
    ap_mpm_query(AP_MPMQ_IS_ASYNC, &async);
    if (!async) {
        ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, s, "PSWT0006: the %s MPM is "
                     "not asynchronous: each WebSocket tunnel holds a worker "
                     "thread; use the event MPM for many tunnels",
                     ap_show_mpm());
    }
    return OK;
}

static apr_status_t pswt_child_cleanup(void *data)
{
    pswt_child_t *child = data;

    if (child->loop) {
        psc_loop_stop(child->loop, 0);
        child->loop = NULL;
    }
    pswt_child = NULL;
    return APR_SUCCESS;
}

static void pswt_child_init(apr_pool_t *pchild, server_rec *s)
{
    pswt_child_t *child;
    apr_status_t rv;

    if (!PSWT_HAVE_PROXY()) {
        return;
    }
    pswt_stats_child_init(pchild, s);
    child = apr_pcalloc(pchild, sizeof(*child));
    child->pool = pchild;
    child->s = s;
    ap_mpm_query(AP_MPMQ_IS_ASYNC, &child->async);
    apr_thread_mutex_create(&child->mtx, APR_THREAD_MUTEX_DEFAULT, pchild);
    if (child->async) {
        rv = psc_loop_create(pchild, 1, 1024, NULL, &child->loop);
        if (rv == APR_SUCCESS) {
            rv = psc_loop_start(child->loop, ap_thread_create);
        }
        if (rv != APR_SUCCESS) {
            ap_log_error(APLOG_MARK, APLOG_CRIT, rv, s, "PSWT0007: cannot start "
                         "the tunnel loop of this child; tunnels will hold "
                         "worker threads");
            child->loop = NULL;
        }
    }
    pswt_child = child;
    /* a pre-cleanup: the loop thread must stop before pchild's sub-pools
     * (the suspended connections' among them) go */
    apr_pool_pre_cleanup_register(pchild, child, pswt_child_cleanup);
}

/* A stopping child (graceful restart, graceful-stop, MaxConnectionsPerChild)
 * waits for its connections to end: close our tunnels now (1001). */
static void pswt_child_stopping(apr_pool_t *pchild, int graceful)
{
    if (pswt_child) {
        if (pswt_child->loop) {
            psc_loop_shutdown(pswt_child->loop);
        }
        pswt_stop_locals(pswt_child);
    }
}

static void pswt_register_hooks(apr_pool_t *p)
{
    /* before mod_proxy_http, which also takes ws:// since 2.4.47 */
    static const char *const succ[] = { "mod_proxy_http.c",
                                        "mod_proxy_wstunnel.c", NULL };

    ap_hook_pre_config(pswt_pre_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_check_config(pswt_check_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_post_config(pswt_post_config, NULL, NULL, APR_HOOK_MIDDLE);
    if (!PSWT_HAVE_PROXY()) {
        return;                  /* inactive; post_config says why */
    }
    ap_hook_child_init(pswt_child_init, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_child_stopping(pswt_child_stopping, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_suspend_connection(pswt_suspended, NULL, NULL, APR_HOOK_MIDDLE);
    proxy_hook_scheme_handler(pswt_scheme_handler, NULL, succ, APR_HOOK_FIRST);
    proxy_hook_canon_handler(pswt_canon, NULL, succ, APR_HOOK_FIRST);
    APR_OPTIONAL_HOOK(ap, status_hook, pswt_stats_status_hook, NULL, NULL,
                      APR_HOOK_MIDDLE);
}

AP_DECLARE_MODULE(pushstream_wstunnel) = {
    STANDARD20_MODULE_STUFF,
    pswt_create_dir_conf,
    pswt_merge_dir_conf,
    NULL,
    NULL,
    pswt_cmds,
    pswt_register_hooks
};
