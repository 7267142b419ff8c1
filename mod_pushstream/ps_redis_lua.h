/* ps_redis_lua.h - the server-side scripts of the Redis backend.
 *
 * Keys (a channel's keys share the hash tag {<channel>}):
 *   ps:epoch            a random value written when missing: a new value
 *                       means Redis lost its data
 *   ps:{<ch>}:meta      hash  id (last id), t, g (time and tag of the last)
 *   ps:{<ch>}:msgs      zset  stored messages, score = id (ps_redis_rec.h)
 * Announcements go to the pub/sub channel "ps:<ch>".
 *
 * PUBLISH  KEYS  ps:epoch, then meta, msgs of each channel
 *          ARGV  text, event id, event type, store 0|1, max stored (0 = no
 *                limit), ttl s, meta ttl s, then channel, floor of each,
 *                then this node's id ('' = no counts), max channels, max
 *                wildcard channels (0 = no limit), wildcard prefix
 *          -> { epoch, {id, time, tag, stored[, other nodes' subscribers as
 *             SUBS answers them]}... }  (all channels or none), or "LIMIT"
 *             (no message written) when a new channel would pass a limit
 *             counted over every node (sorted sets ps:chans, ps:wchans:
 *             channel -> expiry; counter ps:published)
 * SYNC     KEYS  ps:epoch, meta, msgs    ARGV  after, meta ttl
 *          -> { epoch, last id, stored message... (id > after) }
 *          The last id is raised to `after` first (a Redis that lost its
 *          data continues after the ids its subscribers already have).
 * DELETE   KEYS  ps:epoch, then meta, msgs of each channel
 *          ARGV  text, then each channel  -> number of channels that existed
 * STATS    -> { channels, wildcard channels, published, stored }
 * SUBS     KEYS  ps:{<ch>}:subs of each channel (hash node id -> count,
 *                written from every node's child loops)
 *          ARGV  this node's id
 *          -> { {node, count, ...}... } of the other live nodes (those
 *             whose ps:node:<id> key has not expired)
 *
 * Core: no httpd types. */
#ifndef PS_REDIS_LUA_H
#define PS_REDIS_LUA_H

typedef enum {
    PS_LUA_PUBLISH = 0,
    PS_LUA_SYNC,
    PS_LUA_DELETE,
    PS_LUA_SUBS,
    PS_LUA_STATS,
    PS_LUA_COUNT
} ps_redis_lua_e;

typedef struct ps_redis_lua_t {
    const char *body;
    char sha[41];                  /* hex SHA-1 of body (EVALSHA) */
} ps_redis_lua_t;

/* The scripts, SHA-1 computed on first use (thread-safe: idempotent). */
const ps_redis_lua_t *ps_redis_lua(ps_redis_lua_e which);

#endif
