/* ps_pubport.c - the publisher port (see ps_pubport.h).
 *
 * The connections, which only the child's loop thread touches: read,
 * parse (ps_http1.c), publish (ps_publish.c), answer, and keep the
 * connection for the next request.  The configuration and the sockets
 * (parent): ps_pubport_conf.c. */

#include <errno.h>
#include <string.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <unistd.h>

#include <httpd.h>
#include <http_config.h>
#include <http_log.h>
#include <apr_strings.h>
#include <apr_hash.h>
#include <apr_poll.h>
#include <apr_portable.h>
#include <apr_date.h>

#include "ps_pubport.h"
#include "ps_auth.h"
#include "ps_http1.h"
#include "ps_publish.h"
#include "ps_http.h"
#include "ps_reactor.h"

APLOG_USE_MODULE(pushstream);

#define PS_PP_HEAD_MAX   16384         /* request line + headers */
#define PS_PP_READ_MIN   4096          /* free space wanted before a read */
#define PS_PP_OUT_HIGH   (256 * 1024)  /* unsent answers: stop reading */
#define PS_PP_LINGER     apr_time_from_sec(2)
#define PS_PP_ACCEPTS    64            /* per readiness of a listener */

/* ---- connections (loop thread) ------------------------------------------- */

typedef struct ps_pubport_t ps_pubport_t;

typedef struct ps_plisten_t {
    ps_pollee_t pollee;            /* first: on_io = ps_pl_io */
    struct ps_pubport_t *pp;
    const ps_publisten_t *l;
    const ps_srv_conf_t *sc;
    apr_pollfd_t pfd;
    int polled;
} ps_plisten_t;

typedef enum {
    PS_PC_READ = 0,                /* reading requests, answering them */
    PS_PC_CLOSING,                 /* last answer queued: write, then linger */
    PS_PC_LINGER                   /* write side shut: drain the client */
} ps_pc_state_e;

typedef struct ps_pconn_t {
    ps_pollee_t pollee;            /* first: on_io = ps_pc_on_io */
    int state;                     /* ps_pc_state_e */
    ps_pubport_t *pp;
    const ps_plisten_t *pl;
    apr_pool_t *conn_pool;         /* holds this struct */
    apr_pool_t *pool;              /* per request, cleared after each */
    apr_socket_t *sock;
    int fd;
    apr_pollfd_t pfd;
    apr_int16_t events;            /* what pfd is polled for */
    char *in;
    apr_size_t in_len, in_cap;
    char *out;
    apr_size_t out_len, out_off, out_cap;
    ps_h1_req_t req;
    ps_h1_scan_t scan;             /* the search for the end of the head */
    long head_len;                 /* 0 = no complete head yet */
    apr_size_t used;               /* head + body of the request served */
    ps_pub_async_t *op;            /* a publish waiting for Redis */
    int eof;                       /* the client shut its sending side */
    apr_time_t deadline;
    struct ps_pconn_t *prev, *next;
} ps_pconn_t;

struct ps_pubport_t {
    ps_child_t *child;
    struct ps_reactor_t *re;
    apr_pool_t *pool;              /* own allocator: loop thread only */
    apr_array_header_t *listeners; /* ps_plisten_t * */
    ps_pconn_t *conns;
    apr_uint32_t count;
    int shutdown;
    apr_time_t paused_until;       /* accept() ran out of descriptors */
    apr_time_t date_sec;           /* second of date (formatted once) */
    char date[APR_RFC822_DATE_LEN];
};

static void ps_pl_poll(ps_pubport_t *pp, ps_plisten_t *pl, int on)
{
    if (on && !pl->polled) {
        pl->polled = ps_reactor_poll_add(pp->re, &pl->pfd) == APR_SUCCESS;
    }
    else if (!on && pl->polled) {
        ps_reactor_poll_remove(pp->re, &pl->pfd);
        pl->polled = 0;
    }
}

static void ps_pl_io(ps_pollee_t *self, apr_int16_t rtnevents,
                     apr_time_t now);
static void ps_pc_on_io(ps_pollee_t *self, apr_int16_t rtnevents,
                        apr_time_t now);

static ps_pubport_t *ps_pubport_create(ps_child_t *child,
                                       struct ps_reactor_t *re,
                                       const apr_array_header_t *listens)
{
    ps_pubport_t *pp;
    apr_allocator_t *a;
    apr_pool_t *pool;
    int i;

    if (!listens || apr_allocator_create(&a) != APR_SUCCESS) {
        return NULL;
    }
    apr_allocator_max_free_set(a, 1024 * 1024);
    apr_pool_create_ex(&pool, NULL, NULL, a);
    apr_allocator_owner_set(a, pool);
    pp = apr_pcalloc(pool, sizeof(*pp));
    pp->child = child;
    pp->re = re;
    pp->pool = pool;
    pp->listeners = apr_array_make(pool, listens->nelts,
                                   sizeof(ps_plisten_t *));
    for (i = 0; i < listens->nelts; i++) {
        const ps_publisten_t *l = &APR_ARRAY_IDX(listens, i, ps_publisten_t);
        ps_plisten_t *pl = apr_pcalloc(pool, sizeof(*pl));

        pl->pollee.on_io = ps_pl_io;
        pl->pp = pp;
        pl->l = l;
        pl->sc = ps_srv(l->s);
        pl->pfd.desc_type = APR_POLL_SOCKET;
        pl->pfd.desc.s = l->sock;
        pl->pfd.reqevents = APR_POLLIN;
        pl->pfd.client_data = pl;
        APR_ARRAY_PUSH(pp->listeners, ps_plisten_t *) = pl;
        ps_pl_poll(pp, pl, 1);
    }
    return pp;
}

static apr_uint32_t ps_pubport_count(void *baton)
{
    ps_pubport_t *pp = baton;

    return pp ? __atomic_load_n(&pp->count, __ATOMIC_RELAXED) : 0;
}

static void ps_pc_close(ps_pconn_t *pc)
{
    ps_pubport_t *pp = pc->pp;

    if (pc->op) {
        ps_pub_async_cancel(pc->op);   /* the publish ends without us */
        pc->op = NULL;
    }
    if (pc->events) {
        ps_reactor_poll_remove(pp->re, &pc->pfd);
    }
    close(pc->fd);
    if (pc->prev) {
        pc->prev->next = pc->next;
    }
    else {
        pp->conns = pc->next;
    }
    if (pc->next) {
        pc->next->prev = pc->prev;
    }
    free(pc->in);
    free(pc->out);
    __atomic_sub_fetch(&pp->count, 1, __ATOMIC_RELAXED);
    apr_pool_destroy(pc->conn_pool);   /* pc itself lives in it */
}

static void ps_pc_want(ps_pconn_t *pc, apr_int16_t events)
{
    if (events == pc->events) {
        return;
    }
    if (pc->events) {
        ps_reactor_poll_remove(pc->pp->re, &pc->pfd);
    }
    pc->events = 0;
    if (events) {
        pc->pfd.reqevents = events;
        if (ps_reactor_poll_add(pc->pp->re, &pc->pfd) == APR_SUCCESS) {
            pc->events = events;
        }
    }
}

/* Make room for n more bytes in a malloc'd buffer. */
static int ps_pc_reserve(char **buf, apr_size_t len, apr_size_t *cap,
                         apr_size_t n)
{
    apr_size_t want = *cap ? *cap : 4096;
    char *nb;

    if (*cap - len >= n) {
        return 1;
    }
    while (want - len < n) {
        want *= 2;
    }
    if (!(nb = realloc(*buf, want))) {
        return 0;
    }
    *buf = nb;
    *cap = want;
    return 1;
}

static void ps_pc_put(ps_pconn_t *pc, const char *data, apr_size_t n)
{
    if (!ps_pc_reserve(&pc->out, pc->out_len, &pc->out_cap, n)) {
        pc->state = PS_PC_CLOSING;     /* out of memory: give up on it */
        return;
    }
    memcpy(pc->out + pc->out_len, data, n);
    pc->out_len += n;
}

static void ps_pc_header(ps_pconn_t *pc, const char *name, const char *value)
{
    ps_pc_put(pc, name, strlen(name));
    ps_pc_put(pc, ": ", 2);
    ps_pc_put(pc, value, strlen(value));
    ps_pc_put(pc, "\r\n", 2);
}

/* The answer, with the headers the publisher location sends. */
static void ps_pc_answer(ps_pconn_t *pc, const ps_answer_t *a, int keep)
{
    ps_pubport_t *pp = pc->pp;
    apr_time_t sec = apr_time_sec(apr_time_now());
    const char *line = apr_psprintf(pc->pool, "HTTP/1.1 %d %s\r\n", a->status,
                                    ps_h1_reason(a->status));

    ps_http_answer_log(pc->pl->l->s, NULL, a);
    if (sec != pp->date_sec) {
        apr_rfc822_date(pp->date, apr_time_from_sec(sec));
        pp->date_sec = sec;
    }
    ps_pc_put(pc, line, strlen(line));
    ps_pc_header(pc, "Date", pp->date);
    ps_pc_header(pc, "Server", ap_get_server_banner());
    ps_pc_header(pc, "Expires", PS_NOCACHE_EXPIRES);
    ps_pc_header(pc, "Cache-Control", PS_NOCACHE_CONTROL);
    if (a->allow) {
        ps_pc_header(pc, "Allow", a->allow);
    }
    if (a->www_auth) {
        ps_pc_header(pc, "WWW-Authenticate", a->www_auth);
    }
    if (a->retry_after) {
        ps_pc_header(pc, "Retry-After", a->retry_after);
    }
    if (a->explain) {
        ps_pc_header(pc, PS_EXPLAIN_HEADER, a->explain);
    }
    if (a->ctype) {
        ps_pc_header(pc, "Content-Type", a->ctype);
    }
    ps_pc_header(pc, "Content-Length",
                 apr_psprintf(pc->pool, "%" APR_SIZE_T_FMT,
                              a->ctype ? a->len : 0));
    if (!keep) {
        ps_pc_header(pc, "Connection", "close");
    }
    else if (pc->req.minor == 0) {
        ps_pc_header(pc, "Connection", "keep-alive");
    }
    ps_pc_put(pc, "\r\n", 2);
    if (a->ctype && a->len) {
        ps_pc_put(pc, a->body, a->len);
    }
    if (!keep) {
        pc->state = PS_PC_CLOSING;
    }
}

static void ps_pc_fail(ps_pconn_t *pc, int status, const char *explain)
{
    ps_answer_t a;

    ps_answer_set(&a, status, explain);
    ps_pc_answer(pc, &a, 0);
}

/* The peer's address, for logs. */
static const char *ps_pc_client_ip(ps_pconn_t *pc)
{
    apr_sockaddr_t *sa = NULL;
    char *ip = NULL;

    if (apr_socket_addr_get(&sa, APR_REMOTE, pc->sock) != APR_SUCCESS
        || apr_sockaddr_ip_get(&ip, sa) != APR_SUCCESS) {
        return "-";
    }
    return ip;
}

static void ps_pc_done(void *baton, const ps_answer_t *a);

static void ps_pc_serve(ps_pconn_t *pc, const char *body, apr_size_t len)
{
    ps_pubport_t *pp = pc->pp;
    const ps_plisten_t *pl = pc->pl;
    const ps_h1_req_t *req = &pc->req;
    apr_array_header_t *chans = ps_pub_parse_channels(pc->pool,
                                    ps_path_query_arg(pc->pool, req->args,
                                                      "id"));
    ps_answer_t a;

    if (pl->l->d->auth_mode > 0 && strcmp(req->method, "OPTIONS")
        && !ps_auth_check(pc->pool, pl->l->s, ps_pc_client_ip(pc), pl->l->d,
                          pp->child->store, req->authorization, req->cookie,
                          req->args, chans, 0, NULL, &a)) {
        ps_pc_answer(pc, &a, !pp->shutdown && ps_h1_keepalive(req));
        return;
    }
    switch (ps_pub_prepare(pl->l->d, pl->sc, req->method, chans, &a)) {
    case PS_PUB_GET:
        pc->op = ps_pub_existing_info_async(pc->pool, pp->child->store,
                                            chans, req->accept, &a,
                                            ps_pc_done, pc);
        if (pc->op) {
            return;
        }
        break;
    case PS_PUB_DELETE:
        pc->op = ps_pub_delete_async(pc->pool, pp->child->store, pl->sc,
                                     chans, body, len, &a, ps_pc_done, pc);
        if (pc->op) {
            return;
        }
        break;
    case PS_PUB_POST:
        /* with PushStreamRedis: answered when Redis replies (ps_pc_done) */
        pc->op = ps_pub_publish_async(pc->pool, pp->child->store, pl->l->d,
                                      pl->sc, chans, body, len, req->event_id,
                                      req->event_type, req->accept, &a,
                                      ps_pc_done, pc);
        if (pc->op) {
            return;
        }
        break;
    default:
        break;
    }
    ps_pc_answer(pc, &a, !pp->shutdown && ps_h1_keepalive(req));
}

/* A head is complete: refuse what the port does not take. 1 to go on. */
static int ps_pc_head(ps_pconn_t *pc)
{
    const ps_h1_req_t *req = &pc->req;

    if (req->transfer_encoding) {
        ps_pc_fail(pc, 411, "Chunked bodies are not supported: send a "
                            "Content-Length.");
        return 0;
    }
    if (req->expect_other) {
        ps_pc_fail(pc, 417, NULL);
        return 0;
    }
    if (req->content_length > pc->pl->sc->max_message_size) {
        ps_pc_fail(pc, 413, "Message is too large.");
        return 0;
    }
    if (req->expect_continue && req->minor && req->content_length > 0
        && pc->in_len - (apr_size_t)pc->head_len
           < (apr_size_t)req->content_length) {
        static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
        ps_pc_put(pc, cont, sizeof(cont) - 1);
    }
    return 1;
}

/* The request answered: on to the next one in the buffer. */
static void ps_pc_next(ps_pconn_t *pc)
{
    memmove(pc->in, pc->in + pc->used, pc->in_len - pc->used);
    pc->in_len -= pc->used;
    pc->used = 0;
    pc->head_len = 0;
    memset(&pc->scan, 0, sizeof(pc->scan));
    apr_pool_clear(pc->pool);
}

/* Answer every complete request in the input buffer (one at a time: a
 * publish waiting for Redis holds the ones after it). */
static void ps_pc_process(ps_pconn_t *pc)
{
    while (pc->state == PS_PC_READ && !pc->op
           && pc->out_len - pc->out_off < PS_PP_OUT_HIGH) {
        apr_size_t body_len, used;

        if (!pc->head_len) {
            apr_size_t seen = pc->in_len < PS_PP_HEAD_MAX ? pc->in_len
                                                          : PS_PP_HEAD_MAX;
            long rc;

            if (!ps_h1_head_end(&pc->scan, pc->in, seen)
                && seen < PS_PP_HEAD_MAX) {
                return;              /* incomplete: parsed once complete */
            }
            rc = ps_h1_parse(pc->pool, pc->in, pc->in_len, PS_PP_HEAD_MAX,
                             &pc->req);
            if (rc == 0) {
                return;
            }
            if (rc < 0) {
                ps_pc_fail(pc, (int)-rc, NULL);
                return;
            }
            pc->head_len = rc;
            if (!ps_pc_head(pc)) {
                return;
            }
        }
        body_len = pc->req.content_length > 0
                   ? (apr_size_t)pc->req.content_length : 0;
        used = (apr_size_t)pc->head_len + body_len;
        if (pc->in_len < used) {
            return;
        }
        pc->used = used;
        ps_pc_serve(pc, pc->in + pc->head_len, body_len);
        if (!pc->op) {
            ps_pc_next(pc);
        }
    }
}

/* Write what is queued.  0 when the connection failed. */
static int ps_pc_flush(ps_pconn_t *pc)
{
    while (pc->out_off < pc->out_len) {
        ssize_t n = send(pc->fd, pc->out + pc->out_off,
                         pc->out_len - pc->out_off, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return errno == EAGAIN || errno == EWOULDBLOCK;
        }
        pc->out_off += (apr_size_t)n;
    }
    pc->out_off = pc->out_len = 0;
    return 1;
}

/* Read what the socket has: 1, 0 at EOF (what came before it is kept),
 * -1 on an error. */
static int ps_pc_read(ps_pconn_t *pc)
{
    apr_size_t limit = PS_PP_HEAD_MAX
                       + (apr_size_t)pc->pl->sc->max_message_size + 1;

    for (;;) {
        apr_size_t avail;
        ssize_t n;

        if (pc->in_cap - pc->in_len < PS_PP_READ_MIN) {
            if (pc->in_len >= limit) {
                return 1;            /* parsing says what is wrong */
            }
            if (!ps_pc_reserve(&pc->in, pc->in_len, &pc->in_cap,
                               PS_PP_READ_MIN)) {
                return -1;
            }
        }
        avail = pc->in_cap - pc->in_len;
        n = recv(pc->fd, pc->in + pc->in_len, avail, 0);
        if (n > 0) {
            pc->in_len += (apr_size_t)n;
            if ((apr_size_t)n < avail) {
                return 1;            /* short read: the socket is drained */
            }
            continue;
        }
        if (n == 0) {
            return 0;
        }
        if (errno == EINTR) {
            continue;
        }
        return errno == EAGAIN || errno == EWOULDBLOCK ? 1 : -1;
    }
}

static void ps_pc_drain(ps_pconn_t *pc)
{
    char buf[4096];
    ssize_t n;

    while ((n = recv(pc->fd, buf, sizeof(buf), 0)) > 0) {
    }
    if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
        ps_pc_close(pc);
    }
}

/* After reading or writing: what to wait for next. */
static void ps_pc_settle(ps_pconn_t *pc, apr_time_t now)
{
    const server_rec *s = pc->pl->l->s;

    if (!ps_pc_flush(pc)) {
        ps_pc_close(pc);
        return;
    }
    if (pc->op) {
        /* waiting for Redis (bounded by PushStreamRedisTimeout): nothing
         * is read meanwhile.  The read interest stays in the pollset (two
         * epoll_ctl per publish less): a client that sends more before the
         * answer has it removed then (ps_pc_io). */
        ps_pc_want(pc, pc->out_len ? APR_POLLOUT : (pc->events & APR_POLLIN));
        pc->deadline = now + s->timeout;
        return;
    }
    if (pc->out_len) {
        ps_pc_want(pc, APR_POLLOUT);
        pc->deadline = now + s->timeout;
        return;
    }
    if (pc->state == PS_PC_CLOSING) {
        /* Lingering close: a client still sending (a refused body) would
         * get a reset that may destroy the answer before it reads it. */
        shutdown(pc->fd, SHUT_WR);
        pc->state = PS_PC_LINGER;
        pc->deadline = now + PS_PP_LINGER;
        ps_pc_want(pc, APR_POLLIN);
        return;
    }
    if (pc->state == PS_PC_READ && pc->pp->shutdown && !pc->in_len) {
        ps_pc_close(pc);             /* idle while the child stops */
        return;
    }
    ps_pc_want(pc, APR_POLLIN);
    pc->deadline = now + (pc->in_len ? s->timeout : s->keep_alive_timeout);
}

static void ps_pc_io(ps_pconn_t *pc, apr_int16_t ev, apr_time_t now)
{
    if (pc->state == PS_PC_LINGER) {
        ps_pc_drain(pc);
        return;
    }
    if (pc->op && !(ev & APR_POLLOUT)) {
        ps_pc_want(pc, 0);           /* readable: read after the answer */
        return;
    }
    if (pc->state == PS_PC_READ
        && (ev & (APR_POLLIN | APR_POLLHUP | APR_POLLERR))) {
        int rc = ps_pc_read(pc);
        if (rc < 0 || (rc == 0 && !pc->in_len && !pc->out_len)) {
            ps_pc_close(pc);
            return;
        }
        if (rc == 0) {
            /* The client shut its side after sending (nc -N, some
             * scripts): answer what is complete, drop a partial rest. */
            pc->eof = 1;
            ps_pc_process(pc);
            if (pc->state == PS_PC_READ && !pc->op) {
                pc->state = PS_PC_CLOSING;
            }
            ps_pc_settle(pc, now);
            return;
        }
    }
    ps_pc_process(pc);
    if (pc->eof && pc->state == PS_PC_READ && !pc->op) {
        pc->state = PS_PC_CLOSING;   /* after an answer Redis delayed */
    }
    ps_pc_settle(pc, now);
}

/* A publish that waited for Redis has its answer (loop thread). */
static void ps_pc_done(void *baton, const ps_answer_t *a)
{
    ps_pconn_t *pc = baton;

    pc->op = NULL;
    ps_pc_answer(pc, a, pc->state == PS_PC_READ && !pc->pp->shutdown
                        && ps_h1_keepalive(&pc->req));
    ps_pc_next(pc);
    if (pc->state == PS_PC_READ && !pc->eof && !pc->in_len
        && !pc->pp->shutdown && ps_pc_flush(pc) && !pc->out_len) {
        /* answered whole, nothing else to do: settled now (it cannot close
         * the connection: it waits for the next request) */
        ps_pc_settle(pc, apr_time_now());
        return;
    }
    /* the rest (write, the next request, maybe close) on the connection's
     * own event: an event of this turn of the loop may still name it */
    ps_pc_want(pc, APR_POLLOUT);
}

static void ps_pp_accept(ps_pubport_t *pp, ps_plisten_t *pl, apr_time_t now)
{
    apr_os_sock_t lfd;
    int i;

    apr_os_sock_get(&lfd, pl->l->sock);
    for (i = 0; i < PS_PP_ACCEPTS && !pp->shutdown; i++) {
        int one = 1, fd = accept4(lfd, NULL, NULL,
                                  SOCK_NONBLOCK | SOCK_CLOEXEC);
        apr_pool_t *pool;
        ps_pconn_t *pc;

        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS
                || errno == ENOMEM) {
                /* level-triggered: would spin until a descriptor frees */
                ap_log_error(APLOG_MARK, APLOG_ERR, errno, pl->l->s,
                             "PS0093: publisher port %s: cannot accept; "
                             "pausing for a second", pl->l->addr);
                pp->paused_until = now + apr_time_from_sec(1);
                ps_pl_poll(pp, pl, 0);
            }
            return;                  /* EAGAIN: another child took it */
        }
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        apr_pool_create(&pool, pp->pool);
        pc = apr_pcalloc(pool, sizeof(*pc));
        apr_pool_create(&pc->pool, pool);
        pc->conn_pool = pool;
        pc->pollee.on_io = ps_pc_on_io;
        pc->pp = pp;
        pc->pl = pl;
        pc->fd = fd;
        apr_os_sock_put(&pc->sock, &pc->fd, pool);
        pc->pfd.desc_type = APR_POLL_SOCKET;
        pc->pfd.desc.s = pc->sock;
        pc->pfd.client_data = pc;
        pc->next = pp->conns;
        if (pp->conns) {
            pp->conns->prev = pc;
        }
        pp->conns = pc;
        __atomic_add_fetch(&pp->count, 1, __ATOMIC_RELAXED);
        ps_pc_settle(pc, now);
    }
}

/* The loop's callbacks (ps_pollee_t): a listener is readable, a
 * connection has an event. */
static void ps_pl_io(ps_pollee_t *self, apr_int16_t rtnevents, apr_time_t now)
{
    ps_plisten_t *pl = (ps_plisten_t *)self;

    ps_pp_accept(pl->pp, pl, now);
}

static void ps_pc_on_io(ps_pollee_t *self, apr_int16_t rtnevents,
                        apr_time_t now)
{
    ps_pc_io((ps_pconn_t *)self, rtnevents, now);
}

static void ps_pubport_tick(void *baton, apr_time_t now)
{
    ps_pubport_t *pp = baton;
    ps_pconn_t *pc, *next;
    int i;

    if (!pp) {
        return;
    }
    if (pp->paused_until && now >= pp->paused_until && !pp->shutdown) {
        pp->paused_until = 0;
        for (i = 0; i < pp->listeners->nelts; i++) {
            ps_pl_poll(pp, APR_ARRAY_IDX(pp->listeners, i, ps_plisten_t *), 1);
        }
    }
    for (pc = pp->conns; pc; pc = next) {
        next = pc->next;
        if (now < pc->deadline || pc->op) {
            continue;                    /* pc->op: Redis's timer ends it */
        }
        if (pc->state == PS_PC_READ && (pc->in_len || pc->head_len)
            && !pc->out_len) {
            ps_pc_fail(pc, 408, NULL);   /* a request that never completed */
            ps_pc_settle(pc, now);
        }
        else {
            ps_pc_close(pc);             /* idle, or a client not reading */
        }
    }
}

static void ps_pubport_shutdown(void *baton)
{
    ps_pubport_t *pp = baton;
    ps_pconn_t *pc, *next;
    int i;

    if (!pp || pp->shutdown) {
        return;
    }
    pp->shutdown = 1;
    for (i = 0; i < pp->listeners->nelts; i++) {
        ps_pl_poll(pp, APR_ARRAY_IDX(pp->listeners, i, ps_plisten_t *), 0);
    }
    for (pc = pp->conns; pc; pc = next) {
        next = pc->next;
        if (pc->state == PS_PC_READ && !pc->in_len && !pc->out_len
            && !pc->op) {
            ps_pc_close(pc);
        }
    }
}

static void ps_pubport_destroy(void *baton)
{
    ps_pubport_t *pp = baton;
    if (!pp) {
        return;
    }
    while (pp->conns) {
        ps_pc_close(pp->conns);
    }
    apr_pool_destroy(pp->pool);        /* owns its allocator */
}

void ps_pubport_attach(ps_child_t *child, struct ps_reactor_t *re)
{
    ps_loop_ext_t ext;

    memset(&ext, 0, sizeof(ext));
    ext.baton = ps_pubport_create(child, re, ps_srv(child->s)->publistens);
    if (!ext.baton) {
        return;
    }
    ext.on_tick = ps_pubport_tick;
    ext.on_shutdown = ps_pubport_shutdown;
    ext.count = ps_pubport_count;
    ext.on_destroy = ps_pubport_destroy;
    if (ps_reactor_add_ext(re, &ext) != APR_SUCCESS) {
        ps_pubport_destroy(ext.baton);
    }
}
