/* pswt_config.c - directives of mod_pushstream_wstunnel.
 *
 * All of them work in the server config, virtual hosts, <Location> and
 * <Proxy> sections (a proxied request sees both merged). */

#include <string.h>

#include <httpd.h>
#include <http_config.h>
#include <apr_lib.h>
#include <apr_strings.h>

#include "pswt_config.h"
#include "psc_units.h"

static int pswt_wants_http;

void *pswt_create_dir_conf(apr_pool_t *p, char *dir)
{
    pswt_dir_conf_t *d = apr_pcalloc(p, sizeof(*d));

    d->idle_timeout = PSWT_UNSET;
    d->fallback_http = PSWT_UNSET;
    d->frame_aware = PSWT_UNSET;
    d->max_message = PSWT_UNSET;
    d->http_upgrade = PSWT_UNSET;
    return d;
}

/* The inner section's value unless it left the field unset. */
#define PSWT_MERGE(f) PSC_MERGE(d, base, add, f)

void *pswt_merge_dir_conf(apr_pool_t *p, void *basev, void *addv)
{
    pswt_dir_conf_t *base = basev, *add = addv;
    pswt_dir_conf_t *d = apr_pcalloc(p, sizeof(*d));

    PSWT_MERGE(idle_timeout);
    PSWT_MERGE(fallback_http);
    PSWT_MERGE(frame_aware);
    PSWT_MERGE(max_message);
    PSWT_MERGE(http_upgrade);
    return d;
}

int pswt_dir_fallback_http(const pswt_dir_conf_t *d)
{
    return d && d->fallback_http == 1;
}

/* On, or a message size limit without an explicit Off. */
int pswt_dir_frame_aware(const pswt_dir_conf_t *d)
{
    return d && (d->frame_aware == 1
                 || (d->frame_aware == PSWT_UNSET && d->max_message > 0));
}

int pswt_dir_http_upgrade(const pswt_dir_conf_t *d)
{
    return !d || d->http_upgrade != 0;
}

int pswt_config_wants_proxy_http(void)
{
    return pswt_wants_http;
}

void pswt_config_reset(void)
{
    pswt_wants_http = 0;
}

/* A time: a number of seconds, or a number with ms, s, m (or mi) or h. */
static const char *pswt_set_idle(cmd_parms *cmd, void *dv, const char *arg)
{
    pswt_dir_conf_t *d = dv;
    apr_interval_time_t t;

    if (psc_parse_timeout(arg, &t) != APR_SUCCESS) {
        return apr_psprintf(cmd->pool, "%s: \"%s\" is not a time (seconds, "
                            "or a number with ms, s, m or h; 0 for none)",
                            cmd->cmd->name, arg);
    }
    d->idle_timeout = t;
    return NULL;
}

static const char *pswt_set_fallback(cmd_parms *cmd, void *dv, int on)
{
    pswt_dir_conf_t *d = dv;

    d->fallback_http = on ? 1 : 0;
    if (on) {
        pswt_wants_http = 1;
    }
    return NULL;
}

static const char *pswt_set_frame_aware(cmd_parms *cmd, void *dv, int on)
{
    pswt_dir_conf_t *d = dv;

    d->frame_aware = on ? 1 : 0;
    return NULL;
}

static const char *pswt_set_http_upgrade(cmd_parms *cmd, void *dv, int on)
{
    pswt_dir_conf_t *d = dv;

    d->http_upgrade = on ? 1 : 0;
    return NULL;
}

/* A byte count with an optional k/m/g suffix (powers of 1024); a final
 * "b" ("64kb") is allowed. */
static const char *pswt_set_max_message(cmd_parms *cmd, void *dv,
                                        const char *arg)
{
    pswt_dir_conf_t *d = dv;
    apr_size_t n = strlen(arg);
    char *num = apr_pstrdup(cmd->pool, arg);
    apr_off_t v;

    if (n > 1 && apr_tolower(num[n - 1]) == 'b') {
        num[n - 1] = '\0';
    }
    if (psc_parse_size(num, &v) != APR_SUCCESS) {
        return apr_psprintf(cmd->pool, "%s: \"%s\" is not a size (bytes, or "
                            "a number with k, m or g; 0 for no limit)",
                            cmd->cmd->name, arg);
    }
    d->max_message = v;
    return NULL;
}

const command_rec pswt_cmds[] = {
    AP_INIT_TAKE1("PushStreamWstunnelIdleTimeout", pswt_set_idle, NULL,
                  RSRC_CONF | ACCESS_CONF,
                  "Close a tunnel after this long without a byte in either "
                  "direction (0: never); default max(Timeout, ProxyTimeout "
                  "or the worker's timeout=)"),
    AP_INIT_FLAG("PushStreamWstunnelFallbackToProxyHttp", pswt_set_fallback,
                 NULL, RSRC_CONF | ACCESS_CONF,
                 "On: requests without Upgrade: websocket to a ws:// or "
                 "wss:// route are proxied as plain HTTP by mod_proxy_http; "
                 "Off (default): they get 426 Upgrade Required"),
    AP_INIT_FLAG("PushStreamWstunnelFrameAware", pswt_set_frame_aware, NULL,
                 RSRC_CONF | ACCESS_CONF,
                 "On: follow WebSocket frames (PushStreamWstunnelMaxMessageSize, "
                 "protocol errors closed with 1002, a log line per tunnel "
                 "with close codes and byte counts)"),
    AP_INIT_TAKE1("PushStreamWstunnelMaxMessageSize", pswt_set_max_message,
                  NULL, RSRC_CONF | ACCESS_CONF,
                  "A message (all its fragments) larger than this closes the "
                  "tunnel with 1009 (turns PushStreamWstunnelFrameAware on "
                  "unless it is set Off); 0 (default) for no limit"),
    AP_INIT_FLAG("PushStreamWstunnelHttpUpgrade", pswt_set_http_upgrade,
                 NULL, RSRC_CONF | ACCESS_CONF,
                 "On (default): WebSocket handshakes to http:// and https:// "
                 "workers with upgrade=websocket (or * or ANY) are tunnelled "
                 "here too; Off: mod_proxy_http keeps them"),
    { NULL }
};
