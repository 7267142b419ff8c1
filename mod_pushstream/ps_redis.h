/* ps_redis.h - several servers on one Redis (PushStreamRedis).
 *
 * The node's shared segment stays the place subscribers, replay and
 * statistics read from; with PushStreamRedis it becomes a copy ("mirror")
 * of what Redis holds for the channels this node uses:
 *
 *  - A publish (publisher location, publisher port, WebSocket) runs one
 *    Lua script (ps_redis_lua.h): Redis assigns id, time and tag, checks
 *    the channel limits, stores, trims, announces; then the message enters
 *    the local segment with those figures.  On an httpd worker the script
 *    runs on a blocking connection of the thread (connect, send and
 *    receive bounded by PushStreamRedisTimeout); on the child's loop
 *    (port, WebSocket) on the loop's asynchronous connection
 *    (ps_redis_async.c, hooked into the loop by ps_redis_ae.c), so the
 *    loop never waits for Redis.
 *  - Each child's loop holds a pub/sub connection (ps_redis_sub.c, hiredis
 *    async through ps_redis_ae.c; no thread of its own) subscribed to
 *    "ps:<channel>" for every channel with subscribers on this node; gaps
 *    are filled on the loop's command connection.  Announcements enter the
 *    segment (a copy already there is skipped by id; an id jump is filled
 *    from the stored messages first), then the child loops deliver them as
 *    local publishes.
 *  - A subscriber request, and GET on a publisher, first bring the local
 *    copy of its channels up to date (SYNC script; a GET on the publisher
 *    port on the loop's asynchronous connection).
 *
 * Without PushStreamRedis every function here is a no-op. */
#ifndef PS_REDIS_H
#define PS_REDIS_H

#include <apr_pools.h>
#include <apr_tables.h>

#include "ps_conf_types.h"
#include "ps_answer.h"
#include "ps_info.h"
#include "ps_path.h"

/* Explain text of a publish refused because Redis did not answer. */
#define PS_REDIS_EXPLAIN "Redis is unreachable; retry later."

/* Explain text of a publish refused by a channel limit counted over
 * every node (PushStreamMaxNumberOfChannels, ...WildcardChannels): 403. */
#define PS_REDIS_EXPLAIN_LIMIT "Number of channels were exceeded."

/* Seconds sent in Retry-After with a 503. */
#define PS_REDIS_RETRY_AFTER "1"

/* 1 when this process uses Redis. */
int ps_redis_enabled(void);

/* post_config (parent): the page the node's children share. */
int ps_redis_post_config(server_rec *s);

/* child_init: this child's Redis state (when configured); its pub/sub
 * and command connections start with its loop (ps_redis_attach). */
void ps_redis_child_init(apr_pool_t *pchild, server_rec *s,
                         ps_store_t *st);

/* Publish body to chans (their local channels exist already).  1 on
 * success with infos[] filled (cluster-wide published / stored, local
 * subscribers; subs: cluster-wide ones with by_node, allocated in p,
 * counted by the same script); 0 with *a the answer (503). */
int ps_redis_publish(apr_pool_t *p, ps_store_t *st, const ps_srv_conf_t *sc,
                     const apr_array_header_t *chans, const char *body,
                     apr_size_t len, const char *event_id,
                     const char *event_type, int store, int subs,
                     ps_chinfo_t *infos, ps_answer_t *a);

/* ---- from the child's loop, never blocking it (ps_redis_async.c) ---- */

struct ps_reactor_t;
struct ps_child_t;

/* The loop's attach hook: this child's loop gets its own asynchronous
 * Redis command connection and its pub/sub connection (hiredis async API,
 * ps_redis_ae.c). */
void ps_redis_attach(struct ps_child_t *child, struct ps_reactor_t *re);

/* 1 when the caller is this child's loop thread and Redis is configured:
 * ps_redis_publish_async() may be used. */
int ps_redis_async_ready(void);

/* The end of an asynchronous publish, on the loop thread: ok with
 * infos[] filled (cluster-wide subscribers when asked), else *a is the
 * answer (503). */
typedef void (ps_redis_done_fn)(void *baton, int ok);

/* ps_redis_publish() on the loop's asynchronous connection: p, chans, body
 * and the event strings must live until done has returned; subs: also the
 * cluster-wide subscriber counts (ps_redis_subscribers).  1: under way
 * (done is called later, exactly once, also when Redis does not answer
 * within PushStreamRedisTimeout), 0: refused now with *a (503). */
int ps_redis_publish_async(apr_pool_t *p, ps_store_t *st,
                           const ps_srv_conf_t *sc,
                           const apr_array_header_t *chans, const char *body,
                           apr_size_t len, const char *event_id,
                           const char *event_type, int store, int subs,
                           ps_chinfo_t *infos, ps_answer_t *a,
                           ps_redis_done_fn *done, void *baton);

/* ps_redis_delete() on the loop's asynchronous connection (same rules
 * as ps_redis_publish_async): done(baton, ok) with *existed set. */
int ps_redis_delete_async(apr_pool_t *p, const apr_array_header_t *chans,
                          const char *text, apr_size_t len, int *existed,
                          ps_answer_t *a, ps_redis_done_fn *done,
                          void *baton);

/* ps_redis_sync() (create 0) of every channel of chans on the loop's
 * asynchronous connection, pipelined: done(baton, ok) once every reply
 * came; !ok: *a is the 503 (a SYNC got no answer within
 * PushStreamRedisTimeout, or the connection went).  p, chans and *a must
 * live until done has returned.  1: under way; 0: refused now with *a. */
int ps_redis_sync_async(apr_pool_t *p, const apr_array_header_t *chans,
                        ps_answer_t *a, ps_redis_done_fn *done, void *baton);

/* ps_redis_subscribers() on the loop's asynchronous connection: 1 under
 * way, done(baton, 1) later (the counts stay this node's when Redis did
 * not answer); 0: nothing asked (none to count, or not sent: this node's
 * counts), done is not called.  p and infos must live until then. */
int ps_redis_subscribers_async(apr_pool_t *p, ps_chinfo_t *infos, int n,
                               ps_redis_done_fn *done, void *baton);

/* ---- from an httpd worker thread, through the child's loop ---- */

/* A job for the child's loop thread (the caller's memory; not touched
 * once run has been called). */
typedef struct ps_redis_job_t {
    void (*run)(struct ps_redis_job_t *job, int cancelled);
    struct ps_redis_job_t *next;
} ps_redis_job_t;

/* From an httpd worker thread of a threaded MPM (event, worker) with
 * PushStreamRedis: run job->run(job, 0) soon on this child's loop thread,
 * where ps_redis_async_ready() holds and ps_redis_publish_async()
 * pipelines it with every other publish of the child on the loop's one
 * connection (jobs run in the order posted), or job->run(job, 1) there
 * when the loop ends first.  1: queued; 0: not for this process (no
 * Redis, prefork, no loop, the loop ending, the caller is the loop): the
 * caller uses the blocking path (ps_redis_publish). */
int ps_redis_loop_post(ps_redis_job_t *job);

/* PushStreamRedisTimeout of this child (0 without Redis). */
apr_interval_time_t ps_redis_timeout(void);

/* A publish refused because Redis did not answer (why: for the log):
 * *a is the 503 (Retry-After, explain), PS0174 once per outage. */
void ps_redis_refuse(ps_answer_t *a, const char *why);

/* Delete chans in Redis (announced to every node, this one included).  1
 * on success with *existed = how many existed in Redis, 0 with *a the
 * answer (503). */
int ps_redis_delete(apr_pool_t *p, const apr_array_header_t *chans,
                    const char *text, apr_size_t len, int *existed,
                    ps_answer_t *a);

/* Bring the local copies of chans up to date from Redis (best effort,
 * bounded by the timeout).  create: make the local channel even when
 * Redis has nothing for it. */
void ps_redis_sync(apr_pool_t *p, ps_store_t *st,
                   const apr_array_header_t *chans, int create);

/* A subscriber just subscribed: wake this child's loop so that it
 * subscribes the channel in Redis now, not at its next 100 ms tick. */
void ps_redis_kick(void);

/* Several servers: infos[i].subscribers (this node's) become the sum over
 * the live nodes, with by_node (this node's id "hostname:port" and every
 * other node whose count is in Redis, by name).  Every node writes its
 * counts from its loop at once on a change and every second; a
 * node that stops writing drops out within about 3 s.  Redis unreachable:
 * left as they are (this node's, no by_node).  No-op without Redis. */
void ps_redis_subscribers(apr_pool_t *p, ps_chinfo_t *infos, int n);

/* The statistics summary over every node: s->channels,
 * wildcard_channels, published_messages and stored_messages become the
 * figures counted in Redis (channels published to through any node and
 * not expired; every message published since Redis has its data;
 * messages stored now).  1 when Redis answered, else s is left as it is
 * (this node's).  No-op without Redis. */
int ps_redis_summary(ps_store_stats_t *s);

/* State for the statistics. */
typedef struct ps_redis_stats_t {
    int enabled;
    const char *state;             /* "up" / "down" (the node) */
    int connected;                 /* children connected now (the node) */
    apr_uint64_t subscribed;       /* channels this child subscribes */
    apr_uint64_t disconnects;      /* these: the node (all children) */
    apr_uint64_t data_lost;        /* epoch changes seen */
    apr_uint64_t gaps_filled;
    apr_uint64_t publish_failures; /* answered 503 */
    int counts_writer;             /* the child writing the node's counts */
} ps_redis_stats_t;

void ps_redis_stats(ps_redis_stats_t *out);

#endif
