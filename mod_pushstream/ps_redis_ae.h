/* ps_redis_ae.h - hiredis's async API on the child's event loop.
 *
 * The only file of the Redis code that knows the loop: it hooks a
 * redisAsyncContext into the loop through ac->ev (read/write interest on
 * the context's socket) and gives each of its users (the loop's command
 * connection, ps_redis_async.c; the pub/sub connection, ps_redis_sub.c) a
 * timer (hiredis 0.14 has no timeouts of its own).  Loop thread only,
 * except ps_rae_post() and ps_rae_poke(). */
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

/* From the loop's attach hook (before the loop thread runs): first
 * ps_rae_attach(), then each user (at most PS_RAE_USERS; their on_destroy
 * run in the reverse order).  ps_rae_user_add() returns the user's id for
 * ps_rae_wake_at(), or -1. */
#define PS_RAE_USERS 2
void ps_rae_attach(struct ps_reactor_t *re);
int ps_rae_user_add(const ps_rae_user_t *user);

/* Hook ac into the loop (ac->ev.*; write interest at once so that the
 * non-blocking connect completes).  0, or -1 (ac is left to the caller). */
int ps_rae_hook(redisAsyncContext *ac);

/* Call user's on_timer at when (or soon after); a later call replaces it;
 * 0 cancels.  Every user's on_timer may also be called earlier (they look
 * at the clock themselves). */
void ps_rae_wake_at(int user, apr_time_t when);

/* Any thread: every user's on_timer runs on the loop thread soon. */
void ps_rae_poke(void);

/* 1 on the loop thread of an attached loop. */
int ps_rae_on_loop(void);

/* A job handed to the loop thread by another thread (ps_redis.h). */
typedef ps_redis_job_t ps_rae_job_t;

/* Any thread: run job->run(job, 0) on the loop thread soon (jobs in the
 * order posted), or job->run(job, 1) there when the loop ends first.
 * 0: queued; -1: no loop to take it (not attached, or ending). */
int ps_rae_post(ps_rae_job_t *job);

#endif
