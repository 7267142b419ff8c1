/* ps_h2.c - subscribers that arrive over HTTP/2 (see ps_h2.h). */

#include <stdlib.h>
#include <string.h>

#include <httpd.h>
#include <http_log.h>
#include <http_protocol.h>
#include <http_request.h>
#include <util_filter.h>
#include <apr_optional.h>
#include <apr_buckets.h>
#include <apr_atomic.h>
#include <mod_http2.h>

#include "ps_h2.h"

APLOG_USE_MODULE(pushstream);

/* How often a waiting h2 worker looks at c->aborted (a reset stream wakes
 * nothing of ours): the bound on how long a gone client holds it. */
#define PS_H2_TICK          apr_time_from_msec(250)

struct ps_h2relay_t {
    apr_thread_mutex_t *mtx;
    char *buf;                     /* malloc()ed; bytes for the worker */
    apr_size_t len, cap;
    int woken;                     /* a wake byte is in the pipe, unseen */
    apr_file_t *done_in, *done_out;     /* reactor -> worker */
    apr_file_t *gone_in, *gone_out;     /* worker -> reactor */
    apr_bucket_brigade *bb;             /* the worker's, made beforehand */
};

static apr_status_t ps_h2_relay_cleanup(void *data)
{
    ps_h2relay_t *rl = data;

    free(rl->buf);
    rl->buf = NULL;
    rl->len = rl->cap = 0;
    return APR_SUCCESS;
}

apr_status_t ps_h2_relay_create(request_rec *r, ps_h2relay_t **out)
{
    apr_pool_t *pool = r->pool;
    ps_h2relay_t *rl = apr_pcalloc(pool, sizeof(*rl));
    apr_status_t rv;

    rl->bb = apr_brigade_create(pool, r->connection->bucket_alloc);
    /* read ends blocking (the worker waits with a timeout; the reactor
     * polls), write ends non-blocking (the reactor must never block) */
    rv = apr_thread_mutex_create(&rl->mtx, APR_THREAD_MUTEX_DEFAULT, pool);
    if (rv == APR_SUCCESS) {
        rv = apr_file_pipe_create_ex(&rl->done_in, &rl->done_out,
                                     APR_READ_BLOCK, pool);
    }
    if (rv == APR_SUCCESS) {
        rv = apr_file_pipe_create_ex(&rl->gone_in, &rl->gone_out,
                                     APR_READ_BLOCK, pool);
    }
    if (rv == APR_SUCCESS) {
        rv = apr_file_pipe_timeout_set(rl->done_in, PS_H2_TICK);
    }
    if (rv != APR_SUCCESS) {
        return rv;
    }
    apr_pool_cleanup_register(pool, rl, ps_h2_relay_cleanup,
                              apr_pool_cleanup_null);
    *out = rl;
    return APR_SUCCESS;
}

apr_file_t *ps_h2_relay_done_out(ps_h2relay_t *rl)
{
    return rl->done_out;
}

apr_file_t *ps_h2_relay_gone_in(ps_h2relay_t *rl)
{
    return rl->gone_in;
}

apr_size_t ps_h2_relay_push(ps_h2relay_t *rl, const char *data, apr_size_t len)
{
    apr_size_t backlog;
    int wake = 0;

    apr_thread_mutex_lock(rl->mtx);
    if (rl->len + len > rl->cap) {
        apr_size_t cap = rl->cap ? rl->cap : 256;
        char *nb;
        while (cap < rl->len + len) {
            cap *= 2;
        }
        nb = realloc(rl->buf, cap);
        if (!nb) {
            apr_thread_mutex_unlock(rl->mtx);
            return (apr_size_t)-1;      /* counts as a backlog too large */
        }
        rl->buf = nb;
        rl->cap = cap;
    }
    if (len) {
        memcpy(rl->buf + rl->len, data, len);
        rl->len += len;
    }
    if (rl->len && !rl->woken) {
        rl->woken = wake = 1;
    }
    backlog = rl->len;
    apr_thread_mutex_unlock(rl->mtx);
    if (wake) {
        apr_size_t one = 1;
        apr_file_write(rl->done_out, "w", &one);   /* non-blocking */
    }
    return backlog;
}

apr_size_t ps_h2_relay_backlog(ps_h2relay_t *rl)
{
    apr_size_t n;

    apr_thread_mutex_lock(rl->mtx);
    n = rl->len;
    apr_thread_mutex_unlock(rl->mtx);
    return n;
}

/* Worker: take what the reactor left (ownership of the buffer). */
static char *ps_h2_relay_take(ps_h2relay_t *rl, apr_size_t *len)
{
    char *b;

    apr_thread_mutex_lock(rl->mtx);
    b = rl->buf;
    *len = rl->len;
    rl->buf = NULL;
    rl->len = rl->cap = 0;
    rl->woken = 0;
    apr_thread_mutex_unlock(rl->mtx);
    return b;
}

int ps_h2_serve(request_rec *r, ps_h2relay_t *rl)
{
    conn_rec *c = r->connection;
    apr_bucket_brigade *bb = rl->bb;
    int done = 0, gone = 0, told = 0;

    /* Until the first bytes come, the loop may still set r up (a long-poll's
     * status and headers, from r->pool): nothing here touches r before. */
    while (!done) {
        char sig[16];
        apr_size_t n = sizeof(sig), len;
        apr_status_t rv = apr_file_read(rl->done_in, sig, &n);
        char *data;

        if (rv == APR_SUCCESS) {
            done = memchr(sig, 'x', n) != NULL;
        }
        else if (!APR_STATUS_IS_TIMEUP(rv) && !APR_STATUS_IS_EAGAIN(rv)
                 && !APR_STATUS_IS_EINTR(rv)) {
            apr_sleep(PS_H2_TICK);      /* (cannot happen) no busy loop */
        }
        data = ps_h2_relay_take(rl, &len);
        if (data && len && !gone) {
            APR_BRIGADE_INSERT_TAIL(bb, apr_bucket_heap_create(data, len, free,
                                                               c->bucket_alloc));
            APR_BRIGADE_INSERT_TAIL(bb, apr_bucket_flush_create(
                                            c->bucket_alloc));
            if (ap_pass_brigade(r->output_filters, bb) != APR_SUCCESS) {
                gone = 1;
            }
            apr_brigade_cleanup(bb);
        }
        else {
            free(data);
        }
        if (!gone && c->aborted) {
            gone = 1;
        }
        if (gone && !told && !done) {
            apr_size_t one = 1;
            apr_file_write(rl->gone_out, "g", &one);
            told = 1;
        }
    }
    if (gone) {
        c->aborted = 1;
    }
    return DONE;
}

int ps_h2_is_stream(const conn_rec *c)
{
    return c->master != NULL;
}

/* How many h2 subscribers this child may hold at once; 0 when mod_http2
 * is not loaded (no limit applies). */
static int ps_h2_cap(server_rec *s, int *maxw)
{
    APR_OPTIONAL_FN_TYPE(http2_get_num_workers) *fn =
        APR_RETRIEVE_OPTIONAL_FN(http2_get_num_workers);
    int minw = 0, max = 0, reserve;

    *maxw = 0;
    if (!fn) {
        return 0;
    }
    fn(s, &minw, &max);
    *maxw = max;
    /* keep some workers for the other requests of h2 clients (pages,
     * publishers): an eighth, at least two */
    reserve = max / 8 > 2 ? max / 8 : 2;
    return max > reserve ? max - reserve : 1;
}

int ps_h2_admit(request_rec *r, ps_child_t *child)
{
    int maxw, cap = ps_h2_cap(r->server, &maxw);
    apr_uint32_t n = apr_atomic_inc32(&child->h2_subs) + 1;

    if (n == 1 && !apr_atomic_cas32(&child->h2_logged, 1, 0)) {
        ap_log_rerror(APLOG_MARK, APLOG_NOTICE, 0, r, "PS0100: HTTP/2 "
                      "subscribers are served each on its h2 worker thread "
                      "(at most %d at once in this child: H2MaxWorkers %d "
                      "less a reserve for other h2 requests)", cap, maxw);
    }
    if (!cap || (int)n <= cap) {
        return 1;
    }
    apr_atomic_dec32(&child->h2_subs);
    ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r, "PS0102: HTTP/2 subscriber "
                  "refused: this child already serves %d, the most its h2 "
                  "workers allow (raise H2MaxWorkers, now %d)", cap, maxw);
    return 0;
}

void ps_h2_leave(ps_child_t *child)
{
    apr_atomic_dec32(&child->h2_subs);
}
