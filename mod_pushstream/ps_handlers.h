/* ps_handlers.h - the request handlers of the location kinds. */
#ifndef PS_HANDLERS_H
#define PS_HANDLERS_H

#include <httpd.h>
#include "ps_config.h"
#include "ps_child.h"

int ps_pub_handle(request_rec *r, ps_child_t *child, const ps_dir_conf_t *d,
                  const ps_srv_conf_t *sc);
int ps_sub_handle(request_rec *r, ps_child_t *child, const ps_dir_conf_t *d,
                  const ps_srv_conf_t *sc);

int ps_stats_handle(request_rec *r, ps_child_t *child, const ps_dir_conf_t *d,
                    const ps_srv_conf_t *sc);

/* suspend_connection hook: hand a suspended subscriber to the loop. */
void ps_sub_suspended(conn_rec *c, request_rec *r);

#endif
