/* pswt_tunnel_int.h - what the tunnel's lifecycle (pswt_tunnel.c) and its
 * relaying of bytes (pswt_relay.c) share (private; loop thread). */
#ifndef PSWT_TUNNEL_INT_H
#define PSWT_TUNNEL_INT_H

#include "pswt_tunnel.h"

/* pswt_tunnel.c.  Log about a tunnel (on its connection, or its server
 * with the client's address once detached). */
void pswt_tlog(const pswt_tunnel_t *t, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* pswt_tunnel.c.  The tunnel ends (end: pswt_end_e): close frames to the
 * sides that did not end it, the last bytes, then the connections. */
void pswt_begin_close(pswt_tunnel_t *t, int end, apr_time_t now);

/* pswt_relay.c.  Output s still holds; let the core filter write it
 * (-1: the connection broke). */
int pswt_pending(const pswt_side_t *s);
int pswt_flush(pswt_side_t *s);
/* A close frame of our own to side to (if between frames, none sent yet). */
void pswt_close_to(pswt_tunnel_t *t, pswt_side_t *to, int code,
                   const char *reason);
/* The end a read or write failure (error) or close of side s means. */
int pswt_end_for(const pswt_side_t *s, int error);
/* Read from a and forward to its peer until a has nothing more, the peer
 * holds output (back-pressure) or the budget of this turn is used. */
void pswt_pump(pswt_tunnel_t *t, pswt_side_t *a, apr_time_t now);

#endif
