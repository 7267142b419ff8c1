/* ps_sub_int.h - what the parts of a subscriber share (private): the
 * generic subscriber (ps_sub.c: queue, deadlines, advance, events), its
 * connection (ps_sub_conn.c) and its leaving httpd (ps_sub_detach.c).
 * All loop thread. */
#ifndef PS_SUB_INT_H
#define PS_SUB_INT_H

#include "ps_sub.h"

/* How soon after adoption a stream's request is ended (see
 * ps_sub_end_request), or a long-poll's (ps_sub_detach). */
#define PS_SUB_END_REQ      apr_time_from_msec(100)
/* How soon after its request ended a stream leaves httpd (ps_sub_detach). */
#define PS_SUB_DETACH_AFTER apr_time_from_msec(100)

/* ps_sub.c.  The connection is gone or broke: log the request and retire
 * at once. */
void ps_sub_fail(ps_sub_t *sub);
/* ps_sub.c.  sub->deadline from its state's timers; the loop's timer too. */
void ps_sub_set_deadline(ps_sub_t *sub);

/* ps_sub_conn.c.  Hand pending bytes to the filters (the socket, the TLS
 * session, the h2 relay) until done or full; -1: the connection failed. */
int ps_sub_pump(ps_sub_t *sub);
/* ENDING with nothing left to pass: close the response. */
void ps_sub_finish_response(ps_sub_t *sub);
/* The response is out: shut the write side, drain the client (LINGER). */
void ps_sub_start_linger(ps_sub_t *sub, apr_time_t now);
/* Streaming kinds: end the request while the stream goes on. */
void ps_sub_end_request(ps_sub_t *sub, apr_time_t now);
/* Read what the client sends; lingering: drain it. */
void ps_sub_read(ps_sub_t *sub, apr_time_t now);
void ps_sub_drain(ps_sub_t *sub);

/* Loop thread: sub's socket; a detached one keeps only its descriptor and
 * gets the loop's one apr_socket_t, valid until the next call. */
apr_socket_t *ps_sub_sock(ps_sub_t *sub);

/* ps_sub_detach.c.  Leave httpd if sub may (else plan a retry); returns
 * the subscriber as it now is (sub itself is gone when moved). */
ps_sub_t *ps_sub_detach(ps_sub_t *sub, apr_time_t now);

#endif
