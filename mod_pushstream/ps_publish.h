/* ps_publish.h - what a publisher request does, without httpd's request:
 * shared by the publisher location (ps_pub_handler.c) and the publisher
 * port served by the child's loop (ps_pubport.c).  Each operation fills a
 * ps_answer_t that the caller turns into its own response. */
#ifndef PS_PUBLISH_H
#define PS_PUBLISH_H

#include <string.h>
#include <apr_pools.h>
#include <apr_tables.h>

#include "ps_answer.h"
#include "ps_conf_types.h"
#include "ps_info.h"
#include "ps_path.h"

typedef enum {
    PS_PUB_GET = 1,
    PS_PUB_POST,                   /* POST and PUT */
    PS_PUB_DELETE,
    PS_PUB_OPTIONS
} ps_pub_op_e;

/* The no-cache headers of every push-stream answer. */
#define PS_NOCACHE_EXPIRES  "Thu, 01 Jan 1970 00:00:01 GMT"
#define PS_NOCACHE_CONTROL  "no-cache, no-store, must-revalidate"

#define PS_PUB_ALLOW        "GET, POST, PUT"
#define PS_PUB_ALLOW_ADMIN  "GET, POST, PUT, DELETE"

/* 1 when the channel id starts with PushStreamWildcardChannelPrefix. */
static APR_INLINE int ps_is_wildcard(const ps_srv_conf_t *sc,
                                     const ps_path_channel_t *pc)
{
    apr_size_t n = sc->wildcard_prefix ? strlen(sc->wildcard_prefix) : 0;
    return n && pc->len >= n && !memcmp(pc->id, sc->wildcard_prefix, n);
}

/* Unescape and split a channel path (empty -> empty array). */
apr_array_header_t *ps_pub_parse_channels(apr_pool_t *p, const char *path);

/* Checks of every publisher request, in the order push-stream makes them:
 * method (HEAD and unknown ones: 405), OPTIONS (200), channel path
 * (400 none), ids (ps_pub_check_ids), the events channel (403 unless
 * GET).  Returns the ps_pub_op_e to carry out, or 0 with *a the answer. */
int ps_pub_prepare(const ps_dir_conf_t *d, const ps_srv_conf_t *sc,
                   const char *method, const apr_array_header_t *chans,
                   ps_answer_t *a);

/* ALL / '*' ids (403), too long (400), control bytes (400).  1 when all
 * are fine, else 0 with *a the answer. */
int ps_pub_check_ids(const ps_srv_conf_t *sc, const apr_array_header_t *chans,
                     ps_answer_t *a);

/* The one publish path (publisher location, publisher port, WebSocket
 * publishing): body[0..len) to every channel of chans, found or created
 * (wildcard per PushStreamWildcardChannelPrefix), the events channel
 * skipped; all or nothing.  1 when published (infos, when not NULL, filled
 * in chans order), else 0 with *a the answer (403 channel limit, 500 full,
 * a->log set). */
int ps_pub_store(ps_store_t *st, const ps_dir_conf_t *d,
                 const ps_srv_conf_t *sc, const apr_array_header_t *chans,
                 const char *body, apr_size_t len, const char *event_id,
                 const char *event_type, ps_chinfo_t *infos, ps_answer_t *a);

/* Publish body[0..len) (read already) to every channel of chans and
 * answer (400 empty, ps_pub_store's refusals, 200 or the channel info). */
void ps_pub_publish(apr_pool_t *p, ps_store_t *st, const ps_dir_conf_t *d,
                    const ps_srv_conf_t *sc, const apr_array_header_t *chans,
                    const char *body, apr_size_t len, const char *event_id,
                    const char *event_type, const char *accept,
                    ps_answer_t *a);

/* The publisher location with PushStreamRedis under a threaded MPM
 * (ps_pub_relay.c): the publish goes to this child's loop, pipelined on
 * its asynchronous Redis connection with the child's other publishes,
 * while this worker thread waits for the answer: the same answer as
 * ps_pub_publish(), 503 (Retry-After, explain) when none came within
 * PushStreamRedisTimeout.  1: answered (*a, its body in p); 0: not for
 * this process (no Redis, prefork, no loop, empty body): use
 * ps_pub_publish(). */
int ps_pub_publish_relay(apr_pool_t *p, ps_store_t *st, const ps_dir_conf_t *d,
                         const ps_srv_conf_t *sc,
                         const apr_array_header_t *chans, const char *body,
                         apr_size_t len, const char *event_id,
                         const char *event_type, const char *accept,
                         ps_answer_t *a);

/* ---- from the child's loop (publisher port, WebSocket) ---- */

/* Loop thread: the parent of the pools of its publishes (an allocator of
 * its own: no lock shared with httpd's worker threads); NULL when it
 * cannot be made (the global pool then). */
apr_pool_t *ps_pub_loop_pool(void);

/* The answer of a publish that was under way; *a is valid during the
 * call only. */
typedef void (ps_pub_done_fn)(void *baton, const ps_answer_t *a);
typedef struct ps_pub_async_t ps_pub_async_t;

/* ps_pub_publish() that never blocks the loop: with PushStreamRedis on the
 * child's loop thread, the publish goes out on the loop's asynchronous
 * Redis connection and this returns it under way (done is called later,
 * exactly once, with the answer: 503 when Redis did not answer within
 * PushStreamRedisTimeout), unless ps_pub_async_cancel() came first.
 * Otherwise NULL with *a the answer now.  chans, body and the event
 * strings are copied. */
ps_pub_async_t *ps_pub_publish_async(apr_pool_t *p, ps_store_t *st,
                                     const ps_dir_conf_t *d,
                                     const ps_srv_conf_t *sc,
                                     const apr_array_header_t *chans,
                                     const char *body, apr_size_t len,
                                     const char *event_id,
                                     const char *event_type,
                                     const char *accept, ps_answer_t *a,
                                     ps_pub_done_fn *done, void *baton);

/* ps_pub_delete() that never blocks the loop (as ps_pub_publish_async). */
ps_pub_async_t *ps_pub_delete_async(apr_pool_t *p, ps_store_t *st,
                                    const ps_srv_conf_t *sc,
                                    const apr_array_header_t *chans,
                                    const char *text, apr_size_t len,
                                    ps_answer_t *a, ps_pub_done_fn *done,
                                    void *baton);

/* The requester is gone: done is not called (the publish still ends). */
void ps_pub_async_cancel(ps_pub_async_t *x);

/* ps_pub_store() without infos for a WebSocket message: never blocks the
 * loop (see ps_pub_publish_async); a refusal known only later is logged
 * to s (PS0177).  1 when published or under way, else 0 with *a. */
int ps_pub_store_nowait(ps_store_t *st, const ps_dir_conf_t *d,
                        const ps_srv_conf_t *sc,
                        const apr_array_header_t *chans, const char *body,
                        apr_size_t len, server_rec *s, ps_answer_t *a);

/* Delete the channels (admin); text replaces the deleted-channel text
 * when len > 0. */
void ps_pub_delete(apr_pool_t *p, ps_store_t *st, const ps_srv_conf_t *sc,
                   const apr_array_header_t *chans, const char *text,
                   apr_size_t len, ps_answer_t *a);

/* Info documents, format from Accept: one channel (n == 1, unless group)
 * or a group. */
void ps_pub_info(apr_pool_t *p, ps_store_t *st, const ps_chinfo_t *infos,
                 int n, const char *accept, int group, ps_answer_t *a);

/* Info of the listed channels that exist (request order); 404 if none. */
void ps_pub_existing_info(apr_pool_t *p, ps_store_t *st,
                          const apr_array_header_t *chans, const char *accept,
                          ps_answer_t *a);

/* ps_pub_existing_info() that never blocks the loop (as
 * ps_pub_publish_async): with PushStreamRedis on the child's loop thread,
 * the channels' catch-up (SYNC) and their subscriber counts go out on the
 * loop's asynchronous connection; the same answer, or 503 (Retry-After,
 * explain) when a catch-up got no answer within PushStreamRedisTimeout. */
ps_pub_async_t *ps_pub_existing_info_async(apr_pool_t *p, ps_store_t *st,
                                           const apr_array_header_t *chans,
                                           const char *accept, ps_answer_t *a,
                                           ps_pub_done_fn *done, void *baton);

#endif
