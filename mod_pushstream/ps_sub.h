/* ps_sub.h - one waiting subscriber connection (streaming or long-polling).
 *
 * Created by the subscriber handler on a worker thread, then owned by the
 * child's reactor thread: it writes messages without blocking (bounded
 * backlog, write readiness from the loop), ends the response (footer,
 * 304 / timed-out answer), and closes the connection the way the event MPM
 * would have, releasing it so the MPM's counters go down. */
#ifndef PS_SUB_H
#define PS_SUB_H

#include <httpd.h>
#include <apr_poll.h>
#include <apr_file_io.h>

#include "ps_config.h"
#include "ps_child.h"
#include "ps_websocket.h"
#include "ps_reactor.h"        /* ps_pollee_t, ps_rlink_t */
#include "psc_loop.h"
#include "ps_transport.h"
#include "ps_encode.h"

struct ssl_st;

/* One channel of a subscriber, linked into the loop's local channel. */
typedef struct ps_sub_chan_t {
    const char *id;
    apr_size_t len;
    apr_uint64_t serial;           /* channel generation in the segment */
    apr_uint64_t ref;              /* for ps_store_unsubscribe_locked */
    int subscribed;                /* counted in the segment */
    int deleted;                   /* the channel was deleted meanwhile */
    ps_rlink_t link;               /* in the reactor's registry */
    struct ps_sub_t *sub;
} ps_sub_chan_t;

typedef enum {
    PS_SUBST_ACTIVE = 0,           /* waiting for messages */
    PS_SUBST_ENDING,               /* last bytes queued; then the response ends */
    PS_SUBST_FLUSHING,             /* response ended; waiting for the socket */
    PS_SUBST_LINGER,               /* write side shut; draining the client */
    PS_SUBST_DONE                  /* retired */
} ps_sub_state_e;

typedef struct ps_sub_t {
    ps_pollee_t pollee;            /* first: pfd.client_data (ps_reactor.c) */
    psc_item_t item;               /* the loop's links (psc_loop.h) */
    request_rec *r;                /* NULL once the request is finished */
    conn_rec *c;                   /* NULL once detached (ps_sub_detach) */
    apr_socket_t *sock;            /* NULL once detached: fd, ps_sub_sock() */
    apr_bucket_alloc_t *ba;        /* c->bucket_alloc, then the loop's */
    server_rec *s;                 /* c->base_server */
    const char *client_ip;
    ps_child_t *child;
    const ps_dir_conf_t *d;
    const ps_srv_conf_t *sc;
    const ps_transport_t *tp;      /* its transport (ps_transport.h) */
    ps_enc_t enc;                  /* its messages' form: template, padding */
    const char *callback;          /* JSONP function name, or NULL */
    const char *es_footer;         /* EventSource: footer as comment lines */
    apr_size_t es_footer_len;
    ps_ws_parser_t *ws;            /* WebSocket: client frames */
    int ws_close_code;             /* close frame to send at the end */
    int raw_head;                  /* response head written by us, not httpd */
    int nchan;
    int fd;                        /* detached: its dup() of the socket */
    ps_sub_chan_t *chans;
    apr_uint64_t start_seq;        /* deliver live messages after this one */
    int counted;                   /* worker connection counted in the segment */
    apr_int64_t auth_exp;          /* PushStreamAuth: token's exp (s), 0 = none */
    int auth_nopub;                /* the token grants no WebSocket publish */
    int auth_ttl;                  /* ttl_at is the token's expiry */

    int state;
    int aborted;                   /* client went away */
    int want_write;
    int read_again;                /* queued for a read on the next turn */
    apr_int16_t polled;            /* events in the pollset (0: none) */
    apr_pollfd_t pfd;
    apr_bucket_brigade *pending;   /* rendered, not yet passed to filters */
    apr_bucket_brigade *tmp;
    apr_size_t pending_bytes;
    apr_size_t last_item;          /* bytes of the newest message queued */

    apr_time_t ttl_at;             /* 0 = none */
    apr_time_t ping_at;
    apr_time_t linger_at;
    apr_time_t deadline;           /* min of the above (the loop's timer) */

    /* Blocking fallback (worker/prefork MPM, HTTP/2): the handler's thread
     * reads this pipe until the loop writes a byte: it is done.  (A pipe,
     * not a condition variable: prefork may run its exit from a signal on
     * that very thread, and destroying a waited-on condvar hangs.) */
    int fallback;
    apr_file_t *done_in, *done_out;
    /* HTTP/2 (ps_h2.h): a fallback whose bytes the handler's h2 worker
     * writes; the loop only fills the relay and polls its "gone" pipe. */
    struct ps_h2relay_t *relay;

    int batched;                   /* in the loop's batch of subs to write */
    /* Streaming kinds: the request is ended (logged, r->pool freed) soon
     * after the stream starts, so an idle subscriber holds only c->pool;
     * from then on the loop writes the chunked framing itself. */
    apr_time_t end_req_at;         /* 0 = not (or no longer) planned */
    int self_chunked;              /* body chunks framed here, not by httpd */
    int conn_ended;                /* EOC passed down c's filters (psc_conn_end) */
    /* Idle streams on plain TCP then leave httpd for good: the loop keeps
     * a dup()ed socket and this struct, moved into one malloc()ed block
     * (ps_sub_detach); c->pool, with the MPM's connection state and
     * bucket allocator (two 8 KB blocks), is destroyed. */
    apr_time_t detach_at;          /* 0 = not (or no longer) planned */
    int detach_tries;
    apr_bucket_brigade *out;       /* detached: framed bytes the socket left */
    struct ssl_st *tls;            /* detached TLS: mod_ssl's session, ours now */
    /* Long-polls leave httpd while they wait: their request ends early
     * and the loop writes the answer's head itself (ps_lphead.h). */
    const char *lp_head;           /* the headers httpd would have sent */
    const char *lp_ctype;          /* Content-Type of a 200 answer */
} ps_sub_t;


/* Hand a subscriber to its child's loop; any thread.  From then on only the
 * loop thread touches its connection (ps_sub_loop.c). */
void ps_sub_adopt(ps_sub_t *sub);

/* What the reactor calls of the subscribers (ps_reactor_start()). */
extern const ps_reactor_subs_t ps_sub_reactor_subs;

/* Loop thread (ps_sub_loop.c): (re)arm the timer after sub->deadline moved;
 * ask for write readiness; read again on the next turn, whether or not the
 * socket polls readable (its filters may hold input); the connection is
 * finished (unlinked, unsubscribed; released on a later turn); sub was
 * moved to new (ps_sub_detach): every link of the loop is redone for new. */
void ps_sub_reschedule(ps_sub_t *sub);
void ps_sub_want_write(ps_sub_t *sub, int on);
void ps_sub_read_again(ps_sub_t *sub);
void ps_sub_retire(ps_sub_t *sub);
void ps_sub_moved(ps_sub_t *old, ps_sub_t *new);

/* Loop thread.  The subscriber starts: timers, first write attempt. */
void ps_sub_started(ps_sub_t *sub, apr_time_t now);

/* Loop thread.  A live message for channel ci (already rendered view). */
void ps_sub_message(ps_sub_t *sub, int ci, const ps_msgview_t *m, int deleted);

/* Loop thread.  Between ps_sub_batch_begin() and ps_sub_batch_end(),
 * ps_sub_message() only queues; the end writes each subscriber once, so
 * the messages of one log read leave in one writev per subscriber.  One
 * batch per reactor (ps_reactor_subs_baton()), its array from pool. */
typedef struct ps_sub_batch_t {
    apr_pool_t *pool;
    int on;
    struct ps_sub_t **subs;
    int n, cap;
} ps_sub_batch_t;

void ps_sub_batch_begin(ps_sub_batch_t *b);
void ps_sub_batch_end(ps_sub_batch_t *b);

/* Loop thread: socket events / deadline reached. */
void ps_sub_io(ps_sub_t *sub, apr_int16_t rtnevents, apr_time_t now);
void ps_sub_timer(ps_sub_t *sub, apr_time_t now);

/* Loop thread: end the subscriber as a stopping child does (footer, long
 * polls answer their timeout). */
void ps_sub_shutdown(ps_sub_t *sub);

/* Loop thread: drop without a word (process exit). */
void ps_sub_abort(ps_sub_t *sub);

/* Loop thread, after retirement: release the connection for good. */
void ps_sub_release(ps_sub_t *sub);

/* Loop thread.  Queue bytes (copied) / a message in sub->enc's form. */
void ps_sub_queue(ps_sub_t *sub, const char *data, apr_size_t len);
void ps_sub_queue_encoded(ps_sub_t *sub, const ps_msgview_t *m);

/* Padding of sub's form after a piece of len bytes (old browsers). */
void ps_sub_queue_padding(ps_sub_t *sub, apr_size_t len);

/* A template's source as it is (footer, header). */
void ps_sub_queue_tpl(ps_sub_t *sub, const ps_template_t *t);

/* The stream kinds' message: encoded and queued (ps_transport_t.message). */
void ps_sub_stream_message(ps_sub_t *sub, const ps_msgview_t *m, int deleted,
                           apr_time_t now);

/* Loop thread.  Start ending: what is queued goes out, then the response
 * ends (transports call it from their end()). */
void ps_sub_end(ps_sub_t *sub, apr_time_t now);

/* Log about a subscriber (on its connection, or its server once detached). */
void ps_sub_log(const ps_sub_t *sub, int level, apr_status_t rv,
                const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* 1 for the transports that stay connected (streaming, EventSource, WebSocket). */
int ps_sub_is_stream(const ps_sub_t *sub);

/* Long-polling answers (used by the handler too, for immediate answers). */
void ps_sub_lp_headers(request_rec *r, apr_int64_t time, apr_int64_t tag);

/* Worker thread (ps_sub_lp.c).  A poll, or a long-poll that found messages:
 * the answer now, msgs (ps_msgview_t) in e's form as the loop would send
 * them; 304 with (since, tag) when there are none.  Returns DONE. */
int ps_sub_answer_now(request_rec *r, const ps_dir_conf_t *d,
                      const ps_enc_t *e, const char *callback,
                      const apr_array_header_t *msgs, apr_int64_t since,
                      apr_int64_t tag);

#endif
