/* pswt_proxy.h - mod_proxy's API, bound weakly.
 *
 * A proxy scheme module normally needs mod_proxy loaded before it, or its
 * LoadModule fails with an undefined symbol.  We reference mod_proxy's
 * symbols weakly instead: loaded without mod_proxy (or before it) the
 * module stays inactive and says so at startup, rather than breaking the
 * server.  Every mod_proxy symbol this module uses must be listed here. */
#ifndef PSWT_PROXY_H
#define PSWT_PROXY_H

#include <mod_proxy.h>

#pragma weak proxy_module
#pragma weak proxy_hook_scheme_handler
#pragma weak proxy_hook_canon_handler
#pragma weak ap_proxy_canon_netloc
#pragma weak ap_proxy_canonenc_ex
#pragma weak ap_proxy_determine_connection
#pragma weak ap_proxy_connect_backend
#pragma weak ap_proxy_connection_create_ex
#pragma weak ap_proxy_create_hdrbrgd
#pragma weak ap_proxy_worker_can_upgrade
#pragma weak ap_proxy_worker_name
#pragma weak ap_proxy_location_reverse_map
#pragma weak ap_proxy_cookie_reverse_map
#pragma weak ap_proxy_should_override
#pragma weak ap_proxyerror

/* 1 when mod_proxy was loaded before us (its symbols resolved). */
#define PSWT_HAVE_PROXY() (&proxy_module != NULL \
                           && proxy_hook_scheme_handler != NULL)

#endif
