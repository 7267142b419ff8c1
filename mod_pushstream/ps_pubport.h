/* ps_pubport.h - the publisher port (PushStreamPublisherListen).
 *
 * A publisher location may also be served on an address of its own by
 * each child's loop thread, without httpd's request processing: for back
 * ends on the same machine that publish a lot over keep-alive connections
 * (httpd hands every request of a keep-alive connection from its listener
 * thread to a worker thread; the loop reads, publishes and answers them
 * itself, many connections per thread, as nginx does).
 *
 * The parent binds the sockets (post_config) and keeps them in the process
 * pool, so that restarts reuse them; every child polls them and accepts. */
#ifndef PS_PUBPORT_H
#define PS_PUBPORT_H

#include <httpd.h>
#include <apr_network_io.h>

#include "ps_config.h"
#include "ps_child.h"

/* check_config: each one in a publisher location, no address twice. */
int ps_pubport_check(apr_pool_t *pconf, server_rec *s);

/* post_config (parent): merge, bind or reuse the sockets, close those no
 * longer configured.  The list goes to the main server's configuration. */
int ps_pubport_open(apr_pool_t *pconf, server_rec *s);

struct ps_reactor_t;

/* ps_reactor_start()'s attach hook (child_init): the child's loop serves
 * the configured publisher ports too (nothing when there are none). */
void ps_pubport_attach(ps_child_t *child, struct ps_reactor_t *re);

#endif
