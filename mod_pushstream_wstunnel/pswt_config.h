/* pswt_config.h - directives of mod_pushstream_wstunnel. */
#ifndef PSWT_CONFIG_H
#define PSWT_CONFIG_H

#include <httpd.h>
#include <http_config.h>

#include "psc_conf.h"

#define PSWT_UNSET PSC_UNSET

typedef struct pswt_dir_conf_t {
    apr_interval_time_t idle_timeout;   /* PSWT_UNSET: max(Timeout, back end timeout); 0: none */
    int fallback_http;                  /* non-upgrade requests go to mod_proxy_http */
    int frame_aware;                    /* parse frames: limits, close codes, log line */
    apr_off_t max_message;              /* frame-aware: 0 = no limit */
    int http_upgrade;                   /* take http:// upgrade=websocket too */
} pswt_dir_conf_t;

extern module AP_MODULE_DECLARE_DATA pushstream_wstunnel_module;
extern const command_rec pswt_cmds[];

void *pswt_create_dir_conf(apr_pool_t *p, char *dir);
void *pswt_merge_dir_conf(apr_pool_t *p, void *basev, void *addv);

/* Effective values (defaults applied). */
int pswt_dir_fallback_http(const pswt_dir_conf_t *d);
int pswt_dir_frame_aware(const pswt_dir_conf_t *d);
int pswt_dir_http_upgrade(const pswt_dir_conf_t *d);

/* Some PushStreamWstunnelFallbackToProxyHttp On was read in this
 * configuration (check_config insists on mod_proxy_http then). */
int pswt_config_wants_proxy_http(void);
void pswt_config_reset(void);

static APR_INLINE pswt_dir_conf_t *pswt_dir(request_rec *r)
{
    return ap_get_module_config(r->per_dir_config, &pushstream_wstunnel_module);
}

#endif
