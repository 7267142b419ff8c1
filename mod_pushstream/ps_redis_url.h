/* ps_redis_url.h - the PushStreamRedis address:
 *     redis://[:password@]host[:port][/db]   (port 6379, db 0 by default)
 *     unix:/path/to/redis.sock[?db=N]
 *
 * Core: no httpd types, unit-tested (test/unit/test_redis_url.c). */
#ifndef PS_REDIS_URL_H
#define PS_REDIS_URL_H

#include <apr_pools.h>

typedef struct ps_redis_url_t {
    const char *host;          /* NULL for unix: (brackets of [v6] removed) */
    int port;
    const char *path;          /* unix socket path, or NULL */
    const char *password;      /* NULL = no AUTH */
    int db;                    /* SELECT db when > 0 */
} ps_redis_url_t;

/* Parse s into *out (strings allocated from p).  Returns NULL, or a short
 * English sentence saying what is wrong. */
const char *ps_redis_url_parse(apr_pool_t *p, const char *s,
                               ps_redis_url_t *out);

#endif
