/* pswt_handler.h - the mod_proxy scheme handler for ws:// and wss://. */
#ifndef PSWT_HANDLER_H
#define PSWT_HANDLER_H

#include <httpd.h>
#include "pswt_proxy.h"
#include "pswt_tunnel.h"

/* What one child process holds (child_init). */
typedef struct pswt_child_t {
    apr_pool_t *pool;
    server_rec *s;
    int async;                     /* event MPM: tunnels are suspended */
    psc_loop_t *loop;              /* the loop thread (event MPM) */
    apr_thread_mutex_t *mtx;       /* locals */
    struct pswt_local_t *locals;   /* loops run by handler threads */
    volatile int stopping;
} pswt_child_t;

extern pswt_child_t *pswt_child;

int pswt_canon(request_rec *r, char *url);
int pswt_scheme_handler(request_rec *r, proxy_worker *worker,
                        proxy_server_conf *conf, char *url,
                        const char *proxyname, apr_port_t proxyport);
void pswt_suspended(conn_rec *c, request_rec *r);

/* child_stopping: end the tunnels run by handler threads too. */
void pswt_stop_locals(pswt_child_t *child);

#endif
