/* ps_sub_detach.c - a waiting subscriber leaves httpd (see ps_sub.c): a
 * long-poll ends its request first; an idle stream moves, with a dup() of
 * its socket (and mod_ssl's session on TLS), into one malloc()ed block of
 * its own, and its connection goes back to the MPM. */

#include <stdlib.h>
#include <unistd.h>

#include <httpd.h>
#include <http_connection.h>
#include <http_log.h>
#include <apr_strings.h>

#include "ps_sub_int.h"
#include "ps_tls.h"
#include "ps_lphead.h"
#include "psc_conn.h"

APLOG_USE_MODULE(pushstream);

/* How often, how long apart, a busy stream tries again to leave httpd. */
#define PS_SUB_DETACH_RETRY apr_time_from_sec(1)
#define PS_SUB_DETACH_TRIES 30

/* A waiting long-poll ends its request so that it may leave httpd: the
 * headers its answer needs are kept as text, the request is logged (200,
 * no body yet) and freed.  1: done; 0: not yet (the worker has not left
 * the connection); -1: never (a content filter would be skipped). */
static int ps_sub_lp_end_request(ps_sub_t *sub, apr_time_t now)
{
    conn_rec *c = sub->c;
    request_rec *r = sub->r;

    if (!psc_item_worker_left(&sub->item, now)) {
        return 0;
    }
    if (sub->fallback || sub->relay || c->aborted || sub->state != PS_SUBST_ACTIVE
        || !APR_BRIGADE_EMPTY(sub->pending) || !ps_lphead_plain_filters(r)) {
        return -1;
    }
    sub->d = apr_pmemdup(c->pool, sub->d, sizeof(*sub->d));
    sub->lp_head = ps_lphead_snapshot(r, c->pool);
    sub->lp_ctype = sub->callback ? "application/javascript"
                    : r->content_type ? apr_pstrdup(c->pool, r->content_type)
                    : "text/plain";
    if (sub->callback) {
        sub->callback = apr_pstrdup(c->pool, sub->callback);
    }
    psc_conn_end_request(r);                  /* EOR: logs, frees r */
    sub->r = NULL;
    if (c->data_in_output_filters) {
        psc_conn_write_pending(c);
    }
    ps_reactor_freed(sub->child->reactor);
    return 1;
}

/* 1: sub may leave httpd now; 0: not yet (bytes or events in flight);
 * -1: never (other connection filters, TLS that cannot be taken over, a
 * request still open).  On TLS, *tls is set: mod_ssl's filters are the
 * only ones allowed besides core's, and its session must be free to go. */
static int ps_sub_can_detach(ps_sub_t *sub, apr_time_t now, int *tls)
{
    conn_rec *c = sub->c;
    const char *why = "";

    *tls = 0;
    if (!c || sub->fallback || sub->r
        || !sub->tp->waits
        || sub->state != PS_SUBST_ACTIVE || c->aborted
        || !psc_conn_plain_filters(c, ps_tls_conn_is_tls(c), tls)) {
        return -1;
    }
    if (*tls) {
        switch (ps_tls_check(c, &why)) {
        case PS_TLS_OK:
            break;
        case PS_TLS_BUSY:
            return 0;
        default:
            if (sub->detach_tries == 0) {
                ps_sub_log(sub, APLOG_DEBUG, 0, "PS0160: TLS stream stays in "
                           "httpd: %s", why);
            }
            return -1;
        }
    }
    if (c->data_in_output_filters || c->data_in_input_filters
        || !APR_BRIGADE_EMPTY(sub->pending) || !APR_BRIGADE_EMPTY(sub->tmp)
        || sub->read_again || sub->batched || sub->want_write
        || !psc_item_worker_gone(&sub->item, now)) {
        return 0;
    }
    return 1;
}

/* Where the copies of ps_sub_detach() go, in one block after the struct. */
typedef struct ps_sub_block_t {
    char *p;
} ps_sub_block_t;

static void *ps_block_take(ps_sub_block_t *b, apr_size_t len)
{
    void *at = b->p;

    b->p += APR_ALIGN(len, 16);
    return at;
}

static const char *ps_block_copy(ps_sub_block_t *b, const char *src,
                                 apr_size_t len)
{
    char *at = ps_block_take(b, len + 1);

    memcpy(at, src, len);
    at[len] = '\0';
    return at;
}

static apr_bucket_brigade *ps_block_brigade(ps_sub_block_t *b, apr_pool_t *p,
                                            apr_bucket_alloc_t *ba)
{
    apr_bucket_brigade *bb = ps_block_take(b, sizeof(*bb));

    /* no apr_brigade_create(): that allocates from p for good; this one
     * lives and dies with the block (ps_sub_release empties it) */
    bb->p = p;
    bb->bucket_alloc = ba;
    APR_RING_INIT(&bb->list, apr_bucket, link);
    return bb;
}

/* Detached blocks share one copy of each distinct value that repeats from
 * one subscriber to the next instead of carrying their own:
 * - the merged per-directory config (216 bytes each: ~10% of a plain
 *   detached long-poll).  The merge for one location gives the same bytes
 *   every time: apr_pcalloc()ed, its pointers reach the configuration's
 *   pool (a shallow copy outlives r->pool already, ps_sub_end_request());
 * - strings: a long-poll's header snapshot and Content-Type, a JSONP
 *   callback name (~100-300 bytes each).
 * malloc()ed, never freed, at most max per table and process; past that
 * (NULL) a block carries its own copy again.  Loop thread only. */
#define PS_SUB_INTERN_MAX 64

typedef struct {
    int n, max;
    const void *v[PS_SUB_INTERN_MAX];
    apr_size_t len[PS_SUB_INTERN_MAX];
} ps_sub_intern_t;

static ps_sub_intern_t ps_sub_confs = { 0, 32, { NULL }, { 0 } };
static ps_sub_intern_t ps_sub_strs = { 0, 64, { NULL }, { 0 } };

static const void *ps_sub_intern(ps_sub_intern_t *t, const void *p,
                                 apr_size_t len)
{
    void *copy;
    int i;

    for (i = 0; i < t->n; i++) {
        if (t->len[i] == len && !memcmp(t->v[i], p, len)) {
            return t->v[i];
        }
    }
    if (t->n == t->max || !(copy = malloc(len))) {
        return NULL;
    }
    memcpy(copy, p, len);
    t->v[t->n] = copy;
    t->len[t->n++] = len;
    return copy;
}

static const ps_dir_conf_t *ps_sub_shared_conf(const ps_dir_conf_t *d)
{
    return ps_sub_intern(&ps_sub_confs, d, sizeof(*d));
}

static const char *ps_sub_shared_str(const char *str)
{
    return ps_sub_intern(&ps_sub_strs, str, strlen(str) + 1);
}

/* Detached subscribers frame into sub->tmp only to move it to sub->out at
 * once (ps_sub_frame_out): one empty brigade of the child serves them all. */
static apr_bucket_brigade *ps_sub_scratch;
static ps_child_t *ps_sub_scratch_child;

static apr_status_t ps_sub_scratch_gone(void *data)
{
    (void)data;
    ps_sub_scratch = NULL;              /* (a next generation's child may */
    ps_sub_scratch_child = NULL;        /* have the same address: -X) */
    return APR_SUCCESS;
}

static apr_bucket_brigade *ps_sub_scratch_bb(ps_sub_t *sub, apr_bucket_alloc_t *ba)
{
    if (ps_sub_scratch_child != sub->child) {
        ps_sub_scratch = apr_brigade_create(sub->child->pool, ba);
        ps_sub_scratch_child = sub->child;
        apr_pool_cleanup_register(sub->child->pool, NULL, ps_sub_scratch_gone,
                                  apr_pool_cleanup_null);
    }
    return ps_sub_scratch;
}

/* The strings of sub that go into its block (not shared). */
typedef struct ps_sub_strs_t {
    const char *callback, *lp_head, *lp_ctype;
} ps_sub_strs_t;

static void ps_sub_share_strs(const ps_sub_t *sub, ps_sub_strs_t *sh)
{
    sh->callback = sub->callback ? ps_sub_shared_str(sub->callback) : NULL;
    sh->lp_head = sub->lp_head ? ps_sub_shared_str(sub->lp_head) : NULL;
    sh->lp_ctype = sub->lp_head ? ps_sub_shared_str(sub->lp_ctype) : NULL;
}

static apr_size_t ps_sub_block_size(const ps_sub_t *sub, int own_conf,
                                    const ps_sub_strs_t *sh)
{
    apr_size_t n = APR_ALIGN(sizeof(*sub), 16)
                   + (own_conf ? APR_ALIGN(sizeof(*sub->d), 16) : 0)
                   + 2 * APR_ALIGN(sizeof(apr_bucket_brigade), 16)
                   + APR_ALIGN(sub->nchan * sizeof(*sub->chans), 16)
                   + APR_ALIGN(strlen(sub->client_ip) + 1, 16);
    int i;

    for (i = 0; i < sub->nchan; i++) {
        n += APR_ALIGN(sub->chans[i].len + 1, 16);
    }
    if (sub->ws) {
        n += APR_ALIGN(ps_ws_parser_size(), 16);
    }
    if (sub->es_footer) {
        n += APR_ALIGN(sub->es_footer_len + 1, 16);
    }
    if (sub->callback && !sh->callback) {
        n += APR_ALIGN(strlen(sub->callback) + 1, 16);
    }
    if (sub->lp_head && !sh->lp_head) {
        n += APR_ALIGN(strlen(sub->lp_head) + 1, 16);
    }
    if (sub->lp_head && !sh->lp_ctype) {
        n += APR_ALIGN(strlen(sub->lp_ctype) + 1, 16);
    }
    return n;
}

/* The copy of sub in one malloc()ed block, on the descriptor fd (no
 * apr_socket_t of its own: ps_sub_sock() lends the loop's). */
static ps_sub_t *ps_sub_copy_out(ps_sub_t *sub, int fd)
{
    ps_reactor_t *re = sub->child->reactor;
    ps_sub_block_t b;
    ps_sub_t *n;
    ps_dir_conf_t *d;
    const ps_dir_conf_t *shared = ps_sub_shared_conf(sub->d);
    ps_sub_strs_t sh;
    int i;

    ps_sub_share_strs(sub, &sh);
    b.p = malloc(ps_sub_block_size(sub, !shared, &sh));
    if (!b.p) {
        return NULL;
    }
    n = ps_block_take(&b, sizeof(*n));
    *n = *sub;
    n->c = NULL;
    n->sock = NULL;
    n->fd = fd;
    n->ba = ps_reactor_bucket_alloc(re);
    if (shared) {
        n->d = shared;
    }
    else {
        d = ps_block_take(&b, sizeof(*d));
        *d = *sub->d;
        n->d = d;
    }
    n->pending = ps_block_brigade(&b, sub->child->pool, n->ba);
    n->tmp = ps_sub_scratch_bb(sub, n->ba);
    n->out = ps_block_brigade(&b, sub->child->pool, n->ba);
    n->chans = ps_block_take(&b, sub->nchan * sizeof(*n->chans));
    for (i = 0; i < sub->nchan; i++) {
        n->chans[i] = sub->chans[i];
        n->chans[i].id = ps_block_copy(&b, sub->chans[i].id, sub->chans[i].len);
    }
    n->client_ip = ps_block_copy(&b, sub->client_ip, strlen(sub->client_ip));
    if (sub->ws) {
        n->ws = ps_block_take(&b, ps_ws_parser_size());
        ps_ws_parser_move(n->ws, sub->ws);
    }
    if (sub->es_footer) {
        n->es_footer = ps_block_copy(&b, sub->es_footer, sub->es_footer_len);
    }
    if (sub->callback) {
        n->callback = sh.callback ? sh.callback
                      : ps_block_copy(&b, sub->callback, strlen(sub->callback));
    }
    if (sub->lp_head) {
        n->lp_head = sh.lp_head ? sh.lp_head
                     : ps_block_copy(&b, sub->lp_head, strlen(sub->lp_head));
        n->lp_ctype = sh.lp_ctype ? sh.lp_ctype
                      : ps_block_copy(&b, sub->lp_ctype, strlen(sub->lp_ctype));
    }
    n->pfd.desc.s = NULL;               /* (ps_poll_update() sets it) */
    n->pfd.p = sub->child->pool;
    n->pfd.client_data = n;
    return n;
}

/* An idle stream on plain TCP leaves httpd for good: the loop keeps a
 * dup() of the socket and the subscriber in one block of its own, and
 * the connection is given back to the MPM as ps_sub_release() does, with
 * the socket closed (not shut down: the dup keeps it open).  What is left
 * per subscriber is ~1 KB instead of c->pool and its bucket allocator.
 * Returns the subscriber as it now is (sub itself is gone when moved). */
ps_sub_t *ps_sub_detach(ps_sub_t *sub, apr_time_t now)
{
    ps_reactor_t *re = sub->child->reactor;
    conn_rec *c = sub->c;
    int nfd;
    ps_sub_t *n;
    int tls, ok;

    if (sub->r && !sub->tp->stream) {   /* a long-poll */
        ok = ps_sub_lp_end_request(sub, now);
        sub->detach_at = ok < 0 ? 0 : now + PS_SUB_END_REQ;
        return sub;                     /* leaves on the next turn */
    }
    ok = ps_sub_can_detach(sub, now, &tls);

    sub->detach_at = 0;
    if (ok <= 0) {
        if (!ok && ++sub->detach_tries < PS_SUB_DETACH_TRIES) {
            sub->detach_at = now + PS_SUB_DETACH_RETRY;
        }
        return sub;
    }
    nfd = ps_reactor_fd_dup(sub->sock);
    n = nfd >= 0 ? ps_sub_copy_out(sub, nfd) : NULL;
    if (n && tls) {
        /* the last step that may fail: after it, mod_ssl has let go */
        n->tls = ps_tls_take(c, nfd);
        if (!n->tls) {
            if (sub->ws) {
                ps_ws_parser_move(sub->ws, n->ws);
            }
            free(n);
            n = NULL;
        }
    }
    if (!n) {                           /* (EMFILE) it stays with httpd */
        if (nfd >= 0) {
            close(nfd);
        }
        return sub;
    }
    ps_sub_moved(sub, n);
    ap_log_cerror(APLOG_MARK, APLOG_TRACE1, 0, c, "PS0081: stream detached "
                  "from httpd%s", tls ? " (TLS session taken over)" : "");
    psc_conn_release(c, sub->sock);              /* sub with it */
    ps_reactor_freed(re);
    return n;
}

