/* ps_redis_rec.h - how a message is written in Redis (several servers).
 *
 * A stored message (member of the channel's sorted set, score = id):
 *     "<id> <time> <tag> <expires> <event-id length> <event-type length>\n"
 *     <event-id><event-type><text>
 * A pub/sub announcement on "ps:<channel>":
 *     "<epoch> <stored 0|1> " <stored message>       (a message)
 *     "<epoch> D\n" <text>                           (channel deleted)
 * The Lua scripts of ps_redis_lua.c write these; this parser reads them.
 *
 * Core: no httpd types, unit-tested (test/unit/test_redis_url.c). */
#ifndef PS_REDIS_REC_H
#define PS_REDIS_REC_H

#include <apr.h>

typedef struct ps_redis_rec_t {
    const char *epoch;             /* announcements only */
    apr_size_t epoch_len;
    int deleted;                   /* a channel-deleted announcement */
    int stored;
    apr_int64_t id, time, tag, expires;
    const char *event_id, *event_type, *text;
    apr_size_t event_id_len, event_type_len, text_len;
} ps_redis_rec_t;

/* A stored message; 0 when well-formed, -1 when not.  The pointers of *r
 * point into s. */
int ps_redis_rec_parse(const char *s, apr_size_t len, ps_redis_rec_t *r);

/* A pub/sub announcement; 0 or -1. */
int ps_redis_announce_parse(const char *s, apr_size_t len, ps_redis_rec_t *r);

#endif
