/* pswt_tunnel.h - an established WebSocket tunnel and the loop that runs it.
 *
 * After the back end's 101 the handler builds a pswt_tunnel_t (client
 * connection + back end connection) and returns SUSPENDED; the
 * suspend_connection hook hands it to the child's loop thread, which from
 * then on is the only thread touching either connection: it forwards bytes
 * both ways without blocking, applies the idle timeout, closes both sides
 * and finally releases the client connection the way the event MPM would
 * have (see shared/spec/httpd-async-notes.md 1.6).
 *
 * Under worker/prefork (or where a connection cannot be suspended) the
 * same loop runs on the handler's own thread for that one tunnel.
 *
 * An idle tunnel then leaves httpd (pswt_detach.c): the loop keeps dup()s
 * of both sockets (and, on TLS, the sessions mod_ssl negotiated on either
 * side, ps_tls.h) and the tunnel in one malloc()ed block; the request is
 * ended (logged), the back end's pool and the client's connection are
 * released.  From then on side->c is NULL and the loop reads and writes
 * the sockets itself. */
#ifndef PSWT_TUNNEL_H
#define PSWT_TUNNEL_H

#include <httpd.h>
#include <apr_poll.h>
#include <apr_thread_mutex.h>

#include "pswt_proxy.h"
#include "pswt_ws.h"
#include "pswt_stats.h"
#include "psc_loop.h"

typedef struct pswt_tunnel_t pswt_tunnel_t;

typedef enum {
    PSWT_ST_OPEN = 0,        /* forwarding */
    PSWT_ST_CLOSING,         /* no more reads; last bytes to both sides */
    PSWT_ST_FLUSHING,        /* back end closed, request ended; client output */
    PSWT_ST_LINGER,          /* client write side shut; draining it */
    PSWT_ST_DONE             /* retired */
} pswt_state_e;


/* One connection of a tunnel; reads from it are forwarded to peer. */
typedef struct pswt_side_t {
    psc_pollee_t pollee;           /* first: pfd.client_data */
    pswt_tunnel_t *t;
    struct pswt_side_t *peer;
    conn_rec *c;
    apr_socket_t *sock;
    apr_pollfd_t pfd;
    apr_int16_t events;            /* registered in the pollset (0: none) */
    int is_client;
    int eof;                       /* nothing more to read */
    int dead;                      /* cannot be written to any more */
    int gone;                      /* back end: connection destroyed */
    int starved;                   /* reading paused: peer has output pending */
    int again;                     /* read budget used up: read on next turn */
    apr_bucket_brigade *in;        /* reads (this side's allocator) */
    apr_bucket_brigade *out;       /* writes (this side's allocator) */
    pswt_ws_track_t tr;            /* frames read from this side */
    unsigned char hold[PS_WS_MAX_FRAME_HEADER];
    apr_size_t hold_len;           /* partial frame header held back */
    apr_uint64_t bytes;            /* read from this side and forwarded */
    /* detached (c NULL): the socket, or the TLS session on it, directly */
    struct ssl_st *tls;
    char *pend;                    /* bytes the socket did not take (malloc) */
    apr_size_t pend_len, pend_off;
} pswt_side_t;

struct pswt_tunnel_t {
    psc_item_t item;               /* first: the loop's links, deadline */
    psc_loop_t *loop;
    request_rec *r;                /* NULL once the request is finished */
    conn_rec *c;
    apr_pool_t *be_pool;           /* owns the back end connection */
    proxy_conn_rec *be;
    pswt_side_t cl, bk;
    const char *target;            /* for logs: host:port/path of the back end */
    apr_interval_time_t idle;      /* 0: no idle timeout */
    int frame_aware;
    apr_uint64_t max_message;
    int local;                     /* runs on the handler thread (no suspend) */
    int detached;                  /* out of httpd (pswt_detach.c) */
    server_rec *s;                 /* for logs once detached */
    const char *client_ip;
    apr_time_t detach_at;          /* 0: not (or no longer) planned */
    int detach_tries;

    int state;
    int end;                       /* pswt_end_e */
    int sent_cl, sent_bk;          /* close codes we sent to each side */
    apr_time_t started, last_io;
};

/* ---- the loop (psc_loop.h) ---- */

/* Any thread: hand the tunnel to loop (the child's, or a handler's own). */
void pswt_loop_adopt(psc_loop_t *loop, pswt_tunnel_t *t);

/* ---- the tunnel (pswt_tunnel.c), loop thread ---- */

/* Poll one side for ev (0: not at all). */
void pswt_poll(pswt_tunnel_t *t, pswt_side_t *side, apr_int16_t ev);

/* Handler thread: sockets nonblocking, filters for tunnelling. */
void pswt_tunnel_init(pswt_tunnel_t *t, request_rec *r, apr_pool_t *be_pool,
                      proxy_conn_rec *be);

const char *pswt_end_name(int end);

/* ---- leaving httpd (pswt_detach.c), loop thread ---- */

/* An open tunnel with no traffic for this long leaves httpd. */
#define PSWT_DETACH_IDLE     apr_time_from_msec(200)

/* Try to move an idle open tunnel out of httpd; returns the tunnel as it
 * now is (t itself is gone when it moved). */
pswt_tunnel_t *pswt_detach(pswt_tunnel_t *t, apr_time_t now);
/* Detached sides: read up to *len bytes (APR_EAGAIN, APR_EOF, errors);
 * write buf (what the socket does not take is kept in side->pend);
 * write side->pend.  Both writes: -1 when the connection broke. */
apr_status_t pswt_raw_read(pswt_side_t *s, char *buf, apr_size_t *len);
int pswt_raw_send(pswt_side_t *s, const char *buf, apr_size_t len);
int pswt_raw_flush(pswt_side_t *s);
/* Detached: TLS close_notify to the client (APR_EAGAIN: again on POLLOUT). */
apr_status_t pswt_raw_close_notify(pswt_side_t *s);
/* Detached: close one side for good (socket, session, pending bytes). */
void pswt_raw_close(pswt_tunnel_t *t, pswt_side_t *s, int notify);
void pswt_detached_release(pswt_tunnel_t *t);

#endif
