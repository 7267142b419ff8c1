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

/* What the loop finds behind a pollset entry (client_data points to a
 * struct whose first member is one of these). */
typedef enum {
    PS_POLLEE_SUB = 0,             /* ps_sub_t */
    PS_POLLEE_LISTEN,              /* a publisher port */
    PS_POLLEE_PUBCONN              /* a connection accepted on it */
} ps_pollee_e;

/* One PushStreamPublisherListen. */
typedef struct ps_publisten_t {
    const char *addr;              /* as written */
    char *host;
    apr_port_t port;
    const char *where;             /* "file:line" */
    ps_dir_conf_t *loc;            /* the location's own configuration */
    server_rec *s;                 /* the location's server */
    const ps_dir_conf_t *d;        /* loc over the server's (post_config) */
    apr_socket_t *sock;            /* listening (post_config) */
} ps_publisten_t;

/* Directive: PushStreamPublisherListen [host:]port, in a location. */
const char *ps_pubport_cmd(cmd_parms *cmd, void *mconfig, const char *arg);

/* check_config: each one in a publisher location, no address twice. */
int ps_pubport_check(apr_pool_t *pconf, server_rec *s);

/* post_config (parent): merge, bind or reuse the sockets, close those no
 * longer configured.  The list goes to the main server's configuration. */
int ps_pubport_open(apr_pool_t *pconf, server_rec *s);

typedef struct ps_pubport_t ps_pubport_t;
struct ps_reactor_t;

/* Loop side (loop thread only, except create). */
ps_pubport_t *ps_pubport_create(ps_child_t *child, struct ps_reactor_t *re,
                                const apr_array_header_t *listens);
void ps_pubport_io(ps_pubport_t *pp, void *pollee, apr_int16_t rtnevents,
                   apr_time_t now);
void ps_pubport_tick(ps_pubport_t *pp, apr_time_t now);
/* Stop accepting; idle connections close, busy ones after their answer. */
void ps_pubport_shutdown(ps_pubport_t *pp);
/* Connections still open (any thread; approximate). */
apr_uint32_t ps_pubport_count(ps_pubport_t *pp);
/* Close everything and free (loop thread, at its exit). */
void ps_pubport_destroy(ps_pubport_t *pp);

#endif
