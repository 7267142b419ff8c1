/* ps_redis_url.c - the PushStreamRedis address (see ps_redis_url.h). */

#include <string.h>

#include <apr_strings.h>

#include "ps_redis_url.h"

/* Decimal 0..max from s[0..len); -1 when not one. */
static long ps_redis_num(const char *s, apr_size_t len, long max)
{
    long v = 0;
    apr_size_t i;

    if (!len || len > 9) {
        return -1;
    }
    for (i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return -1;
        }
        v = v * 10 + (s[i] - '0');
    }
    return v <= max ? v : -1;
}

static int ps_redis_has_ctl(const char *s)
{
    for (; *s; s++) {
        if ((unsigned char)*s < 0x21 || *s == 0x7f) {
            return 1;
        }
    }
    return 0;
}

static const char *ps_redis_unix(apr_pool_t *p, const char *s,
                                 ps_redis_url_t *out)
{
    const char *q = strchr(s, '?');

    if (*s != '/') {
        return "the unix: socket path must be absolute (unix:/path)";
    }
    if (q) {
        long db;
        if (strncmp(q, "?db=", 4)
            || (db = ps_redis_num(q + 4, strlen(q + 4), 1000000)) < 0) {
            return "after the unix: path only ?db=N is allowed";
        }
        out->db = (int)db;
    }
    out->path = q ? apr_pstrmemdup(p, s, (apr_size_t)(q - s))
                  : apr_pstrdup(p, s);
    if (strlen(out->path) < 2) {
        return "the unix: socket path is empty";
    }
    return NULL;
}

const char *ps_redis_url_parse(apr_pool_t *p, const char *s,
                               ps_redis_url_t *out)
{
    const char *auth_end, *host, *host_end, *port = NULL, *rest;
    long v;

    memset(out, 0, sizeof(*out));
    out->port = 6379;
    if (!s || !*s) {
        return "the address is empty";
    }
    if (ps_redis_has_ctl(s)) {
        return "the address contains a space or control character";
    }
    if (!strncmp(s, "unix:", 5)) {
        return ps_redis_unix(p, s + 5, out);
    }
    if (strncmp(s, "redis://", 8)) {
        return "the address must start with redis:// or unix:";
    }
    s += 8;
    rest = s + strcspn(s, "/");
    auth_end = NULL;
    {
        const char *at;
        for (at = s; at < rest; at++) {
            if (*at == '@') {
                auth_end = at;         /* the last '@' before the path */
            }
        }
    }
    if (auth_end) {
        const char *colon = memchr(s, ':', (apr_size_t)(auth_end - s));
        if (!colon) {
            return "the password must be written as :password@ "
                   "(redis://:secret@host:port)";
        }
        if (colon == auth_end - 1) {
            return "the password after ':' is empty";
        }
        out->password = apr_pstrmemdup(p, colon + 1,
                                       (apr_size_t)(auth_end - colon - 1));
        s = auth_end + 1;
    }
    host = s;
    if (*host == '[') {
        host_end = memchr(host, ']', (apr_size_t)(rest - host));
        if (!host_end || host_end == host + 1) {
            return "an IPv6 address must be written [addr]";
        }
        out->host = apr_pstrmemdup(p, host + 1,
                                   (apr_size_t)(host_end - host - 1));
        host_end++;
        if (host_end < rest && *host_end != ':') {
            return "unexpected characters after ]";
        }
    }
    else {
        host_end = memchr(host, ':', (apr_size_t)(rest - host));
        if (!host_end) {
            host_end = rest;
        }
        if (host_end == host) {
            return "the host is missing";
        }
        out->host = apr_pstrmemdup(p, host, (apr_size_t)(host_end - host));
    }
    if (host_end < rest && *host_end == ':') {
        port = host_end + 1;
        v = ps_redis_num(port, (apr_size_t)(rest - port), 65535);
        if (v < 1) {
            return "the port must be a number 1..65535";
        }
        out->port = (int)v;
    }
    if (*rest == '/') {
        rest++;
        if (*rest) {
            v = ps_redis_num(rest, strlen(rest), 1000000);
            if (v < 0) {
                return "the database after / must be a number";
            }
            out->db = (int)v;
        }
    }
    return NULL;
}
