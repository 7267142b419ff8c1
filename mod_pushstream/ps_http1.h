/* ps_http1.h - HTTP/1.x request heads, for the publisher port
 * (PushStreamPublisherListen), where the child's loop serves requests
 * itself instead of httpd.  Core: no httpd types, unit-tested and fuzzed. */
#ifndef PS_HTTP1_H
#define PS_HTTP1_H

#include <apr_pools.h>

/* The parts of a request head the publisher port uses. */
typedef struct ps_h1_req_t {
    const char *method;            /* as sent (methods are case-sensitive) */
    const char *path;              /* target up to '?', still escaped */
    const char *args;              /* after '?', NULL when none */
    int minor;                     /* HTTP/1.<minor>: 0 or 1 */
    apr_off_t content_length;      /* -1 = no Content-Length */
    int transfer_encoding;         /* a Transfer-Encoding header was sent */
    int conn_close;                /* Connection: close */
    int conn_keepalive;            /* Connection: keep-alive */
    int expect_continue;           /* Expect: 100-continue */
    int expect_other;              /* any other expectation (417) */
    int host;                      /* a Host header was sent */
    const char *event_id;          /* Event-Id, NULL when absent */
    const char *event_type;        /* Event-Type */
    const char *accept;            /* Accept */
    const char *authorization;     /* Authorization, NULL when absent */
    const char *cookie;            /* Cookie (PushStreamAuthSource) */
} ps_h1_req_t;

/* Largest number of header lines of a head. */
#define PS_H1_MAX_HEADERS 100

/* Where the search for the end of a head stopped (zeroed for each head). */
typedef struct ps_h1_scan_t {
    apr_size_t pos;                /* start of the first incomplete line */
    int seen;                      /* a non-empty line was seen */
} ps_h1_scan_t;

/* Length of the head at the start of buf[0..len) through its empty line
 * (empty lines before it skipped), or 0 while it is incomplete.  It goes
 * on from where *sc stopped, so a head arriving a byte at a time is read
 * once, not once per byte.  Nothing is allocated before a head is
 * complete. */
apr_size_t ps_h1_head_end(ps_h1_scan_t *sc, const char *buf, apr_size_t len);

/* Parse the request head at the start of buf[0..len).  Empty lines before
 * the request line are skipped (RFC 9112 2.2); lines end in LF with an
 * optional CR.  Returns the length of the head (through its empty line)
 * when it is complete, 0 when more bytes are needed, or minus an HTTP
 * status: -400 (malformed: request line, header syntax, control bytes,
 * folded lines, conflicting Content-Length, no Host in HTTP/1.1),
 * -431 (no complete head within max bytes, or too many headers),
 * -505 (not HTTP/1.0 or 1.1).  Strings in *req are copies from p. */
long ps_h1_parse(apr_pool_t *p, const char *buf, apr_size_t len,
                 apr_size_t max, ps_h1_req_t *req);

/* Reason phrase of the statuses the publisher port answers ("OK"...). */
const char *ps_h1_reason(int status);

/* 1 when the connection stays open after the answer to req (HTTP/1.1
 * unless "close", HTTP/1.0 only with "keep-alive"). */
int ps_h1_keepalive(const ps_h1_req_t *req);

#endif
