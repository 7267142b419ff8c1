/* ps_pub_relay.c - the publisher location's publishes through the child's
 * loop (see ps_publish.h, ps_pub_publish_relay).
 *
 * With PushStreamRedis under a threaded MPM, an httpd worker thread does
 * not run the publish script on a blocking connection of its own: it
 * hands the publish to the child's loop (ps_redis_loop_post), which sends
 * it on its one asynchronous connection pipelined with every other
 * publish of the child (ps_pub_publish_async, as the publisher port
 * does), and waits on a condition variable for the answer.
 *
 * Who frees a relay: the worker, once answered; the loop, when the worker
 * gave up first (its deadline passed: it answered 503).  The worker never
 * gives up while the loop copies the request (STARTING): after that the
 * loop holds its own copies, so the request's memory may go. */

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <pthread.h>

#include <apr_strings.h>

#include "ps_publish.h"
#include "ps_redis.h"

/* What the worker waits beyond PushStreamRedisTimeout for the loop's own
 * 503 (the loop's deadline counts from the moment it sends). */
#define PS_RELAY_GRACE_MS 100

typedef enum {
    PS_RELAY_QUEUED = 0,           /* in the loop's job queue */
    PS_RELAY_STARTING,             /* the loop reads the request */
    PS_RELAY_UNDERWAY,             /* sent (the loop has its own copies) */
    PS_RELAY_ANSWERED
} ps_relay_state_e;

typedef struct ps_relay_t {
    ps_redis_job_t job;            /* first */
    pthread_mutex_t mu;            /* this relay's: the worker and the loop */
    pthread_cond_t cv;
    ps_relay_state_e state;        /* under mu */
    int abandoned;                 /* under mu: the worker left */
    apr_time_t deadline;           /* not sent after it */
    /* the request (the worker's memory: read while QUEUED / STARTING) */
    ps_store_t *st;
    const ps_dir_conf_t *d;
    const ps_srv_conf_t *sc;
    const apr_array_header_t *chans;
    const char *body, *event_id, *event_type, *accept;
    apr_size_t len;
    /* the loop's only */
    int in_start;                  /* inside ps_pub_publish_async() */
    int early;                     /* answered inside it */
    /* the answer (its body malloc()ed) */
    ps_answer_t a;
} ps_relay_t;

static void ps_relay_free(ps_relay_t *r)
{
    free((void *)r->a.body);
    pthread_cond_destroy(&r->cv);
    pthread_mutex_destroy(&r->mu);
    free(r);
}

/* The loop: keep the answer; wake the worker, or free the relay when it
 * left. */
static void ps_relay_keep(ps_relay_t *r, const ps_answer_t *a)
{
    r->a = *a;
    r->a.body = NULL;
    if (a->body && a->len) {
        char *b = malloc(a->len);
        if (b) {
            memcpy(b, a->body, a->len);
            r->a.body = b;
        }
        else {
            ps_answer_set(&r->a, 500, NULL);
        }
    }
}

static void ps_relay_signal(ps_relay_t *r)
{
    pthread_mutex_lock(&r->mu);
    if (r->abandoned) {
        pthread_mutex_unlock(&r->mu);
        ps_relay_free(r);
        return;
    }
    r->state = PS_RELAY_ANSWERED;
    pthread_cond_signal(&r->cv);
    pthread_mutex_unlock(&r->mu);
}

/* ps_pub_publish_async's end (the loop thread). */
static void ps_relay_done(void *baton, const ps_answer_t *a)
{
    ps_relay_t *r = baton;

    ps_relay_keep(r, a);
    if (r->in_start) {
        r->early = 1;                      /* signalled after the start */
        return;
    }
    ps_relay_signal(r);
}

/* The job, on the loop thread. */
static void ps_relay_run(ps_redis_job_t *job, int cancelled)
{
    ps_relay_t *r = (ps_relay_t *)job;
    ps_pub_async_t *x;
    ps_answer_t a;
    apr_pool_t *tp;

    pthread_mutex_lock(&r->mu);
    if (r->abandoned) {                    /* nothing was sent */
        pthread_mutex_unlock(&r->mu);
        ps_relay_free(r);
        return;
    }
    if (cancelled || apr_time_now() >= r->deadline) {
        pthread_mutex_unlock(&r->mu);
        ps_redis_refuse(&a, cancelled ? "the child stops"
                        : "the publish waited for the loop longer than "
                          "PushStreamRedisTimeout");
        ps_relay_keep(r, &a);
        ps_relay_signal(r);
        return;
    }
    r->state = PS_RELAY_STARTING;
    pthread_mutex_unlock(&r->mu);
    if (!ps_redis_async_ready()
        || apr_pool_create(&tp, ps_pub_loop_pool()) != APR_SUCCESS) {
        ps_redis_refuse(&a, "the loop's connection is not available");
        ps_relay_keep(r, &a);
        ps_relay_signal(r);
        return;
    }
    r->in_start = 1;
    x = ps_pub_publish_async(tp, r->st, r->d, r->sc, r->chans, r->body,
                             r->len, r->event_id, r->event_type, r->accept,
                             &a, ps_relay_done, r);
    r->in_start = 0;
    if (!x) {
        ps_relay_keep(r, &a);              /* answered now (tp's memory) */
    }
    apr_pool_destroy(tp);
    if (!x || r->early) {
        ps_relay_signal(r);
        return;
    }
    pthread_mutex_lock(&r->mu);
    r->state = PS_RELAY_UNDERWAY;          /* the request may go now */
    pthread_cond_signal(&r->cv);
    pthread_mutex_unlock(&r->mu);
}

int ps_pub_publish_relay(apr_pool_t *p, ps_store_t *st, const ps_dir_conf_t *d,
                         const ps_srv_conf_t *sc,
                         const apr_array_header_t *chans, const char *body,
                         apr_size_t len, const char *event_id,
                         const char *event_type, const char *accept,
                         ps_answer_t *a)
{
    apr_interval_time_t t = ps_redis_timeout();
    pthread_condattr_t ca;
    struct timespec until;
    ps_relay_t *r;
    int timed_out = 0, left = 0;

    if (!len || !t || !(r = calloc(1, sizeof(*r)))) {
        return 0;                          /* ps_pub_publish() answers */
    }
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&r->cv, &ca);
    pthread_mutex_init(&r->mu, NULL);
    pthread_condattr_destroy(&ca);
    r->job.run = ps_relay_run;
    r->st = st;
    r->d = d;
    r->sc = sc;
    r->chans = chans;
    r->body = body;
    r->len = len;
    r->event_id = event_id;
    r->event_type = event_type;
    r->accept = accept;
    r->deadline = apr_time_now() + t;
    clock_gettime(CLOCK_MONOTONIC, &until);
    t += apr_time_from_msec(PS_RELAY_GRACE_MS);
    until.tv_sec += (time_t)apr_time_sec(t);
    until.tv_nsec += (long)apr_time_usec(t) * 1000;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    if (!ps_redis_loop_post(&r->job)) {
        ps_relay_free(r);
        return 0;
    }
    pthread_mutex_lock(&r->mu);
    while (r->state != PS_RELAY_ANSWERED) {
        if (timed_out && r->state != PS_RELAY_STARTING) {
            r->abandoned = left = 1;       /* the loop frees it */
            break;
        }
        if (timed_out) {
            /* the loop copies the request now: a few microseconds */
            pthread_cond_wait(&r->cv, &r->mu);
        }
        else if (pthread_cond_timedwait(&r->cv, &r->mu, &until)
                 == ETIMEDOUT) {
            timed_out = 1;
        }
    }
    pthread_mutex_unlock(&r->mu);
    if (left) {
        ps_redis_refuse(a, "did not answer within PushStreamRedisTimeout");
        return 1;
    }
    *a = r->a;
    a->body = r->a.body ? apr_pmemdup(p, r->a.body, r->a.len) : NULL;
    ps_relay_free(r);
    return 1;
}
