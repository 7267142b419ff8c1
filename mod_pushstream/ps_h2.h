/* ps_h2.h - subscribers that arrive over HTTP/2.
 *
 * An h2 stream runs on a secondary connection (c->master set) on one of
 * mod_http2's workers, the only thread that may touch it; its "socket" is a
 * shared dummy, and a handler returning SUSPENDED gets the stream reset.  So
 * an h2 subscriber takes the blocking fallback of the worker/prefork MPMs
 * (the handler's thread waits on a pipe while the reactor serves it), with
 * one difference: the reactor never writes to the connection.  It renders
 * what the subscriber gets (messages, pings, footer, long-poll answers)
 * into the subscriber's relay and wakes the h2 worker with a byte on the
 * pipe; the worker passes the bytes down its filters with a FLUSH.  The
 * worker's wait has a bounded tick so that a reset stream (c->aborted) is
 * seen, and reported to the reactor through a second pipe the reactor
 * polls; the reactor then retires the subscriber and writes the usual
 * "done" byte, after which it never touches it again. */
#ifndef PS_H2_H
#define PS_H2_H

#include <httpd.h>
#include <apr_file_io.h>
#include <apr_thread_mutex.h>

#include "ps_child.h"

typedef struct ps_h2relay_t ps_h2relay_t;

/* h2 worker, before the loop adopts the subscriber: a relay in r->pool,
 * with its two pipes and the worker's brigade (r->pool is the loop's to
 * use while it prepares a long-poll's answer). */
apr_status_t ps_h2_relay_create(request_rec *r, ps_h2relay_t **out);

/* The pipe ends: the reactor writes done_out (wake 'w', done 'x'), polls
 * gone_in (the worker saw the client leave). */
apr_file_t *ps_h2_relay_done_out(ps_h2relay_t *rl);
apr_file_t *ps_h2_relay_gone_in(ps_h2relay_t *rl);

/* Reactor: copy len bytes into the relay and wake the worker.  Returns the
 * bytes the worker has not taken yet (the subscriber's backlog). */
apr_size_t ps_h2_relay_push(ps_h2relay_t *rl, const char *data, apr_size_t len);

/* Reactor: the bytes not taken yet. */
apr_size_t ps_h2_relay_backlog(ps_h2relay_t *rl);

/* h2 worker: serve the subscriber until the reactor is done with it (the
 * fallback's wait).  Returns DONE; the request then ends as usual. */
int ps_h2_serve(request_rec *r, ps_h2relay_t *rl);

/* 1 when c is an HTTP/2 stream (mod_http2's secondary connection). */
int ps_h2_is_stream(const conn_rec *c);

/* h2 worker: count one more h2 subscriber of this child, unless it holds
 * as many as mod_http2's workers allow (H2MaxWorkers less a reserve for
 * other h2 requests): then 0, logged (PS0102).  The first one is logged
 * (PS0100).  ps_h2_leave() when it is done. */
int ps_h2_admit(request_rec *r, ps_child_t *child);
void ps_h2_leave(ps_child_t *child);

#endif
