/* ps_redis_int.h - what the Redis files share: ps_redis.c (blocking
 * connections, publish), ps_redis_copy.c (the local copy), ps_redis_async.c
 * (the loop's command connection) and ps_redis_sub.c (the loop's pub/sub
 * connection).  Not for other files: they use ps_redis.h. */
#ifndef PS_REDIS_INT_H
#define PS_REDIS_INT_H

#include <pthread.h>
#include <sys/time.h>

#include <hiredis/hiredis.h>
#include <hiredis/async.h>
#include <apr_hash.h>


#include "ps_redis.h"
#include "ps_redis_rec.h"
#include "ps_redis_lua.h"

#define PS_RD_EPOCH_KEY   "ps:epoch"
#define PS_RD_PREFIX      "ps:"          /* pub/sub channel prefix */
#define PS_RD_TICK_MS     100            /* pub/sub side: local channels */
#define PS_RD_PING_SEC    5              /* pub/sub liveness ping */
#define PS_RD_BACKOFF_MIN 100            /* ms */
#define PS_RD_BACKOFF_MAX 5000
#define PS_RD_SUBS_SEC    1              /* the node's liveness key */
#define PS_RD_NODE_TTL_MS 3000           /* a silent node's counts vanish */
#define PS_RD_CHAN_KEEP_SEC 20           /* every count written again */
#define PS_RD_NAMES_MIN  (64 * 1024)     /* ps_nameset_t compaction */
#define PS_RD_WRITER_MS  1500            /* the count writer's lease: its
                                          * liveness key (PS_RD_NODE_TTL_MS)
                                          * outlives a writer killed */
#define PS_RD_CHAN_TTL_MS 60000          /* ps:{ch}:subs without writes */

/* What the children of one node share (a page mapped by the parent before
 * the children fork, kept across graceful restarts): the node's Redis
 * state, so that each change is logged once per node, and the figures of
 * the statistics. */
typedef struct ps_rd_node_t {
    apr_uint32_t state;                  /* PS_RD_UNKNOWN / UP / DOWN */
    apr_uint32_t pub_failing;            /* PS0174 written for this outage */
    apr_uint32_t epoch_hash;             /* last epoch seen (PS0173) */
    apr_uint32_t disconnects, data_lost, gaps_filled, publish_failures;
    apr_uint32_t connected;              /* children connected now */
    apr_uint32_t relay_logged;           /* PS0178 written */
    /* When the node started (kept across graceful restarts): the start of
     * the stamp ("start.n") that ps:node:<node> and each count it writes
     * ("count/stamp") hold; a count written before the node's last start
     * does not count. */
    char start[32];
    /* One child writes the node's counts and liveness key (they are the
     * segment's, the same for every child): the one holding the lease,
     * renewed each tick; another takes it over once it runs out.  Each
     * takeover gives the counts a new stamp ("start.n"), so that counts a
     * writer that went could not withdraw do not count any more.  (After
     * start: a page kept from a build without them reads zeros.) */
    apr_uint32_t writer;                 /* pid; 0: none */
    apr_uint32_t takeovers;
    apr_uint64_t writer_until;           /* apr_time_t: the lease's end */
} ps_rd_node_t;

#define PS_RD_UNKNOWN 0
#define PS_RD_UP      1
#define PS_RD_DOWN    2

#define PS_RD_RETAINED_KEY "mod_pushstream-redis"

typedef struct ps_rd_t {
    ps_redis_url_t url;
    struct timeval tv;                   /* PushStreamRedisTimeout */
    server_rec *s;
    ps_store_t *st;
    const ps_srv_conf_t *sc;             /* main server (limits) */
    apr_uint32_t subscribed;             /* this child's channels */
    ps_rd_node_t *node;
    pthread_mutex_t mu;                  /* epoch */
    char epoch[48];
    char node_id[300];                   /* "hostname:port" (by_node) */
    volatile apr_uint32_t resync;        /* set by a new epoch */
} ps_rd_t;

extern ps_rd_t *ps_rd;                   /* NULL: no PushStreamRedis */

/* A connection with the configured timeouts, AUTH and SELECT done; NULL
 * with *why (a thread-local text) when it failed. */
redisContext *ps_rd_connect(ps_rd_t *rd, const char **why);

/* This thread's command connection (connected on demand; NULL with
 * the reason kept for ps_rd_unreachable()); dropped after an error. */
redisContext *ps_rd_conn(ps_rd_t *rd);
void ps_rd_conn_drop(ps_rd_t *rd);

/* EVALSHA of a script on c, EVAL when Redis does not know it (restarted,
 * SCRIPT FLUSH); argv[0..2] are filled here. */
redisReply *ps_rd_eval(redisContext *c, ps_redis_lua_e which, int nkeys,
                       int argc, const char **argv, size_t *lens);

/* Note the epoch Redis reported (a change: Redis lost its data). */
void ps_rd_epoch(ps_rd_t *rd, const char *e, apr_size_t len);

/* SYNC one channel on c: stored messages after the local last id enter
 * the node's segment.  0, or -1 when Redis did not answer. */
int ps_rd_sync_one(ps_rd_t *rd, redisContext *c, ps_store_t *st,
                   const ps_srv_conf_t *sc, const char *ch, apr_size_t len,
                   int create);

/* A message Redis assigned enters the segment; an id jump is filled from
 * the stored messages first (c NULL: no filling). */
void ps_rd_deliver(ps_rd_t *rd, redisContext *c, ps_store_t *st,
                   const ps_srv_conf_t *sc, const char *ch, apr_size_t len,
                   const ps_redis_rec_t *rec);

/* The same, skip_gap: a message after a gap is left to the pub/sub side
 * or the next SYNC (ps_redis_copy.c). */
void ps_rd_deliver_ex(ps_rd_t *rd, redisContext *c, ps_store_t *st,
                      const ps_srv_conf_t *sc, const char *ch,
                      apr_size_t len, const ps_redis_rec_t *rec,
                      int skip_gap);

/* A channel's keys "ps:{id}:meta" and "ps:{id}:msgs", each len + 10
 * bytes (no NUL), one after the other in k[2 * (len + 10)]. */
void ps_rd_key_pair(char *k, const char *id, apr_size_t len);

/* Last id of the node's copy of a channel (0 when none). */
apr_uint64_t ps_rd_local_last(ps_store_t *st, const char *ch, apr_size_t len);

/* A publish refused: 503 (Retry-After, explain); PS0174 once per outage
 * and node.  ps_rd_reachable(): one went through (the next outage is
 * logged again). */
void ps_rd_unreachable(ps_answer_t *a, const char *what, const char *why);
void ps_rd_reachable(void);

/* The PUBLISH script's argv (slots 0..2 left for EVALSHA sha nkeys) in p;
 * the local last ids of chans are read here. */
const char **ps_rd_pub_args(apr_pool_t *p, ps_store_t *st,
                            const ps_srv_conf_t *sc,
                            const apr_array_header_t *chans, const char *body,
                            apr_size_t len, const char *event_id,
                            const char *event_type, int store, int subs,
                            int *argc, int *nkeys, size_t **lens);

/* Its reply: the messages enter the local copy (c NULL: a message after a
 * gap is left to the pub/sub side), infos[] filled (by_node in p when the
 * args had subs).  0: not a reply of the script (nothing done); -1: a
 * channel limit refused it (nothing stored). */
int ps_rd_pub_reply(apr_pool_t *p, redisContext *c, ps_store_t *st,
                    const ps_srv_conf_t *sc,
                    const apr_array_header_t *chans, const redisReply *r,
                    const char *body, apr_size_t len, const char *event_id,
                    const char *event_type, int store, ps_chinfo_t *infos);

/* The DELETE script's argv (slots 0..2 free) in p. */
const char **ps_rd_del_args(apr_pool_t *p, const apr_array_header_t *chans,
                            const char *text, apr_size_t len, int *argc,
                            int *nkeys, size_t **lens);

/* The SUBS script's argv (n keys; slots 0..2 free) and its reply applied
 * to infos (0: not a reply of it, infos unchanged). */
const char **ps_rd_subs_args(apr_pool_t *p, const ps_chinfo_t *infos, int n,
                             size_t **lens);
int ps_rd_subs_apply(apr_pool_t *p, ps_chinfo_t *infos, int n,
                     const redisReply *r);
/* One channel's part of it (also in a PUBLISH reply): info->subscribers
 * becomes the sum, by_node set (in p). */
void ps_rd_subs_one(apr_pool_t *p, ps_chinfo_t *info, const redisReply *e);

/* A message Redis assigned enters the local copy, without filling: 0
 * (entered, or a copy already there), 1 (after a gap, left out: fill the
 * gap first; allow_gap: entered anyway). */
int ps_rd_mirror(ps_rd_t *rd, ps_store_t *st, const ps_srv_conf_t *sc,
                 const char *ch, apr_size_t len, const ps_redis_rec_t *rec,
                 int allow_gap);

/* ---- on the child's loop thread (ps_redis_async.c, ps_redis_copy.c) ---- */

/* A reply on the loop's command connection (NULL with why: none came
 * within PushStreamRedisTimeout, or the connection went). */
typedef void (ps_rda_cb)(void *baton, redisReply *r, const char *why);

/* A new async context of the configured Redis, hooked into the loop, with
 * AUTH and SELECT queued (on_setup(ac, reply, "AUTH refused"...) gets
 * their replies).  NULL with *why (in whybuf) when it failed at once. */
redisAsyncContext *ps_rda_open(redisConnectCallback *on_connect,
                               redisDisconnectCallback *on_disconnect,
                               redisCallbackFn *on_setup, char *whybuf,
                               apr_size_t whylen, const char **why);

/* EVALSHA (EVAL on NOSCRIPT) of a script on the loop's command
 * connection; argv[0..2] are filled here, argv and lens stay the caller's
 * (in p) until cb has been called.  0: cb will be called; -1: not sent,
 * *why. */
int ps_rda_eval(apr_pool_t *p, ps_redis_lua_e which, int nkeys, int argc,
                const char **argv, size_t *lens, ps_rda_cb *cb, void *baton,
                const char **why);

/* A plain command (hiredis format) on the same connection, same rules. */
int ps_rda_cmd(apr_pool_t *p, ps_rda_cb *cb, void *baton, const char **why,
               const char *fmt, ...);

/* SYNC of one channel on the loop's command connection (see
 * ps_rd_sync_one; upto > 0: the gap before message upto).  done(baton, ok)
 * later on the loop thread; -1: not sent (done is not called). */
typedef void (ps_rd_synced_fn)(void *baton, int ok);
int ps_rd_sync_async(ps_rd_t *rd, const char *ch, apr_size_t len,
                     apr_uint64_t upto, ps_rd_synced_fn *done, void *baton);

/* The pub/sub side on the child's loop (ps_redis_sub.c): from
 * ps_redis_attach(); ps_rd_sub_kick() from any thread. */
void ps_rd_sub_attach(void);
void ps_rd_sub_kick(void);

/* The pub/sub session gen ends (a write for it failed): it starts again. */
void ps_rd_sub_lost(unsigned int gen, const char *why);

/* The node's subscriber counts in Redis (ps_redis_counts.c), written by
 * the pub/sub side's tick: ps_rdc_write() with want (channel -> count of
 * the node's channels with subscribers; NULL: the liveness key only) on
 * the loop's command connection for session gen; 0 when it did not run (a
 * batch is under way: the next tick).  Only the child holding the node's
 * lease writes; the others answer 1 and forget what they wrote.
 * ps_rdc_reset(): every count written again (a new session, Redis lost its
 * data); ps_rdc_due(): that time has come (the tick walks the channels);
 * ps_rdc_leave(): this child gives the lease up (its session went). */
void ps_rdc_init(void);
void ps_rdc_destroy(void);
int ps_rdc_write(apr_hash_t *want, apr_time_t now, unsigned int gen);
void ps_rdc_reset(void);
int ps_rdc_due(apr_time_t now);
void ps_rdc_leave(void);
apr_size_t ps_rdc_compact(void);

#endif
