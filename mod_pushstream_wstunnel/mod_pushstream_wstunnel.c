/* mod_pushstream_wstunnel.c - WebSocket reverse proxy (ws:// and wss://
 * back ends for mod_proxy) whose idle tunnels hold no worker thread.
 *
 * Status: this module only registers itself for now; the proxy scheme
 * handler is issue 5.  Loading it changes nothing in request handling. */

#include <httpd.h>
#include <http_config.h>
#include <http_log.h>

static void pswt_register_hooks(apr_pool_t *p)
{
    (void)p;
}

AP_DECLARE_MODULE(pushstream_wstunnel) = {
    STANDARD20_MODULE_STUFF,
    NULL, NULL, NULL, NULL, NULL,
    pswt_register_hooks
};
