/* ps_redis_ae.h - hiredis's async API on the child's event loop.
 *
 * The only file of the Redis code that knows the loop: it hooks a
 * redisAsyncContext into the loop through ac->ev (read/write interest on
 * the context's socket) and gives its one user a timer (hiredis 0.14 has
 * no timeouts of its own).  Loop thread only, one user per child. */
#ifndef PS_REDIS_AE_H
#define PS_REDIS_AE_H

#include <hiredis/async.h>
#include <apr_time.h>

#include "ps_redis.h"

struct ps_reactor_t;

/* What the user gets from the loop. */
typedef struct ps_rae_user_t {
    void *baton;
    void (*on_timer)(void *baton, apr_time_t now);   /* ps_rae_wake_at() due */
    void (*on_destroy)(void *baton);                  /* the loop exits */
} ps_rae_user_t;

/* From the loop's attach hook (before the loop thread runs). */
void ps_rae_attach(struct ps_reactor_t *re, const ps_rae_user_t *user);

/* Hook ac into the loop (ac->ev.*; write interest at once so that the
 * non-blocking connect completes).  0, or -1 (ac is left to the caller). */
int ps_rae_hook(redisAsyncContext *ac);

/* Call on_timer at when (or soon after); a later call replaces it; 0
 * cancels. */
void ps_rae_wake_at(apr_time_t when);

/* 1 on the loop thread of an attached loop. */
int ps_rae_on_loop(void);

/* A job handed to the loop thread by another thread (ps_redis.h). */
typedef ps_redis_job_t ps_rae_job_t;

/* Any thread: run job->run(job, 0) on the loop thread soon (jobs in the
 * order posted), or job->run(job, 1) there when the loop ends first.
 * 0: queued; -1: no loop to take it (not attached, or ending). */
int ps_rae_post(ps_rae_job_t *job);

#endif
