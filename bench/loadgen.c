/* loadgen.c - load generator for mod_pushstream benchmarks (issue 7).
 *
 * One process, one epoll loop, many non-blocking sockets.  wrk and ab
 * cannot hold subscribers; this can.  Loopback only (127.0.0.0/8).
 *
 *   loadgen sub    --url U --n N [--transport sse|ws|stream|lp|mix] [--channels K]
 *                  [--src-ips S] [--conc C] [--hold SEC] [--stdin]
 *       N subscribers; once every one has its response headers (or 101),
 *       or --connect-timeout passed, prints {"event":"ready",...}; holds them
 *       until --hold seconds pass or (--stdin) stdin reaches EOF; then prints
 *       the final line.  --first I numbers the subscribers from I (channel
 *       and transport of several processes sharing one run).  A long-poll
 *       (lp, path word "lp") counts as ready once its request is written:
 *       it gets no headers before its answer.
 *   loadgen pub    --pub-url U --rate R --count M [--pub-conns P] [--size B]
 *       M publishes at R/s (HTTP/1.1 keep-alive POST).
 *   loadgen fanout --url U --pub-url U --n N --rate R --count M [...]
 *       [--url2 U2]: subscribers 2..3 of every 4 use U2 (a second server).
 *       N subscribers, a warm-up barrier (every subscriber got a warm-up
 *       message), then M publishes at R/s; received, lost (expected -
 *       received, per subscriber), duplicates, publish->receive latency.
 *       Prints {"event":"measure_start"} / {"event":"measure_end"} around the
 *       publish + drain phase (a caller can sample server CPU there).
 *   loadgen echo   --url ws://... --conns C --duration SEC [--size B]
 *       C WebSocket clients, closed loop: send, wait for the echo, repeat.
 *   loadgen echod  [--port P] [--duration SEC] [--stdin]
 *       WebSocket echo server on 127.0.0.1:P (0: any; printed).
 *
 * TLS: https:// and wss:// URLs (subscribers, publishers, echo clients) speak
 * TLS through OpenSSL, without certificate checks (loopback benchmarks), each
 * session with SSL_MODE_RELEASE_BUFFERS so that 50 000 idle clients fit.
 *
 * URL templates: "{tr}" becomes ev|ws|sub (per subscriber transport, see
 * --paths), "{ch}" the channel number (subscriber index modulo --channels),
 * "{run}" the --run tag.  Messages carry {"seq":N,"ts":T} (T = CLOCK_MONOTONIC
 * in microseconds when the publish request was written); seq -1 is warm-up.
 *
 * Output: one JSON line on stdout (plus the "ready"/"listening" event lines).
 * Every mode is bounded by --timeout (default 120 s). */

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include "ps_websocket.h"     /* the shared RFC 6455 codec (mod_pushstream/common/) */

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

/* ------------------------------------------------------------------ misc */

static int64_t lg_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void lg_die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("loadgen: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(2);
}

static void *lg_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) {
        lg_die("out of memory");
    }
    return p;
}

static void *lg_xrealloc(void *p, size_t n)
{
    p = realloc(p, n ? n : 1);
    if (!p) {
        lg_die("out of memory");
    }
    return p;
}

static const char *lg_memmem_ci(const char *h, size_t hl, const char *n)
{
    size_t nl = strlen(n);
    for (size_t i = 0; i + nl <= hl; i++) {
        if (strncasecmp(h + i, n, nl) == 0) {
            return h + i;
        }
    }
    return NULL;
}

/* --------------------------------------------------------- histogram
 * Log-linear buckets (HdrHistogram-like): values < 64 exact, above that 32
 * sub-buckets per power of two (<= 3.2 % relative error).  Microseconds. */

#define LG_HBUCKETS 2048

typedef struct lg_hist {
    uint64_t b[LG_HBUCKETS];
    uint64_t n, sum;
    int64_t min, max;
} lg_hist;

static int lg_hidx(int64_t v)
{
    if (v < 64) {
        return v < 0 ? 0 : (int)v;
    }
    int msb = 63 - __builtin_clzll((unsigned long long)v);
    int shift = msb - 5;
    int idx = 64 + (shift - 1) * 32 + (int)((v >> shift) - 32);
    return idx < LG_HBUCKETS ? idx : LG_HBUCKETS - 1;
}

/* the middle of bucket idx */
static int64_t lg_hval(int idx)
{
    if (idx < 64) {
        return idx;
    }
    int shift = (idx - 64) / 32 + 1;
    int64_t lo = (int64_t)((idx - 64) % 32 + 32) << shift;
    return lo + ((((int64_t)1) << shift) >> 1);
}

static void lg_hadd(lg_hist *h, int64_t v)
{
    if (v < 0) {
        v = 0;
    }
    h->b[lg_hidx(v)]++;
    if (h->n == 0 || v < h->min) {
        h->min = v;
    }
    if (v > h->max) {
        h->max = v;
    }
    h->n++;
    h->sum += (uint64_t)v;
}

static int64_t lg_hpct(const lg_hist *h, double p)
{
    if (h->n == 0) {
        return 0;
    }
    uint64_t want = (uint64_t)((double)h->n * p / 100.0 + 0.999999);
    if (want < 1) {
        want = 1;
    }
    uint64_t acc = 0;
    for (int i = 0; i < LG_HBUCKETS; i++) {
        acc += h->b[i];
        if (acc >= want) {
            int64_t v = lg_hval(i);
            return v > h->max ? h->max : (v < h->min ? h->min : v);
        }
    }
    return h->max;
}

static void lg_hjson(FILE *f, const char *name, const lg_hist *h)
{
    fprintf(f, "\"%s\":{\"n\":%" PRIu64 ",\"min\":%" PRId64 ",\"p50\":%" PRId64
            ",\"p90\":%" PRId64 ",\"p99\":%" PRId64 ",\"p999\":%" PRId64
            ",\"max\":%" PRId64 ",\"mean\":%.1f}", name, h->n, h->n ? h->min : 0,
            lg_hpct(h, 50), lg_hpct(h, 90), lg_hpct(h, 99), lg_hpct(h, 99.9), h->max,
            h->n ? (double)h->sum / (double)h->n : 0.0);
}

/* ------------------------------------------------------ SHA-1, base64 */

typedef struct lg_sha1 {
    uint32_t h[5];
    uint64_t len;
    unsigned char buf[64];
    size_t blen;
} lg_sha1;

static uint32_t lg_rol(uint32_t x, int n)
{
    return (x << n) | (x >> (32 - n));
}

static void lg_sha1_block(lg_sha1 *s, const unsigned char *p)
{
    uint32_t w[80], a, b, c, d, e;
    for (int i = 0; i < 16; i++) {
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16
             | (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
    }
    for (int i = 16; i < 80; i++) {
        w[i] = lg_rol(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
    }
    a = s->h[0]; b = s->h[1]; c = s->h[2]; d = s->h[3]; e = s->h[4];
    for (int i = 0; i < 80; i++) {
        uint32_t f, k;
        if (i < 20) { f = (b & c) | (~b & d); k = 0x5A827999; }
        else if (i < 40) { f = b ^ c ^ d; k = 0x6ED9EBA1; }
        else if (i < 60) { f = (b & c) | (b & d) | (c & d); k = 0x8F1BBCDC; }
        else { f = b ^ c ^ d; k = 0xCA62C1D6; }
        uint32_t t = lg_rol(a, 5) + f + e + k + w[i];
        e = d; d = c; c = lg_rol(b, 30); b = a; a = t;
    }
    s->h[0] += a; s->h[1] += b; s->h[2] += c; s->h[3] += d; s->h[4] += e;
}

static void lg_sha1_init(lg_sha1 *s)
{
    static const uint32_t iv[5] = {0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476,
                                   0xC3D2E1F0};
    memcpy(s->h, iv, sizeof iv);
    s->len = 0;
    s->blen = 0;
}

static void lg_sha1_update(lg_sha1 *s, const void *data, size_t n)
{
    const unsigned char *p = data;
    s->len += n;
    while (n--) {
        s->buf[s->blen++] = *p++;
        if (s->blen == 64) {
            lg_sha1_block(s, s->buf);
            s->blen = 0;
        }
    }
}

static void lg_sha1_final(lg_sha1 *s, unsigned char out[20])
{
    uint64_t bits = s->len * 8;
    unsigned char pad = 0x80, z = 0;
    lg_sha1_update(s, &pad, 1);
    while (s->blen != 56) {
        lg_sha1_update(s, &z, 1);
    }
    for (int i = 7; i >= 0; i--) {
        unsigned char c = (unsigned char)(bits >> (8 * i));
        lg_sha1_update(s, &c, 1);
    }
    for (int i = 0; i < 5; i++) {
        out[4 * i] = (unsigned char)(s->h[i] >> 24);
        out[4 * i + 1] = (unsigned char)(s->h[i] >> 16);
        out[4 * i + 2] = (unsigned char)(s->h[i] >> 8);
        out[4 * i + 3] = (unsigned char)s->h[i];
    }
}

static void lg_base64(const unsigned char *in, size_t n, char *out)
{
    static const char t[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t i, o = 0;
    for (i = 0; i + 2 < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = t[v >> 18]; out[o++] = t[(v >> 12) & 63];
        out[o++] = t[(v >> 6) & 63]; out[o++] = t[v & 63];
    }
    if (i < n) {
        uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0);
        out[o++] = t[v >> 18]; out[o++] = t[(v >> 12) & 63];
        out[o++] = i + 1 < n ? t[(v >> 6) & 63] : '=';
        out[o++] = '=';
    }
    out[o] = 0;
}

static void lg_ws_accept(const char *key, size_t klen, char out[32])
{
    static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    lg_sha1 s;
    unsigned char d[20];
    lg_sha1_init(&s);
    lg_sha1_update(&s, key, klen);
    lg_sha1_update(&s, guid, sizeof guid - 1);
    lg_sha1_final(&s, d);
    lg_base64(d, 20, out);
}

/* ------------------------------------------------------------ options */

enum { LG_SSE, LG_WS, LG_STREAM, LG_MIX, LG_LP };
enum { LG_K_SUB, LG_K_PUB, LG_K_ECHO, LG_K_SRV, LG_K_LISTEN, LG_K_STDIN };
enum { LG_S_CONNECTING, LG_S_HEADERS, LG_S_BODY, LG_S_IDLE, LG_S_DONE, LG_S_TLS };

typedef struct lg_url {
    struct sockaddr_in sa;
    int tls;                   /* https:// or wss:// */
    char hostport[64];
    char path[512];            /* template */
} lg_url;

static struct {
    const char *mode;
    lg_url url, pub_url, url2;
    int have_url, have_pub, have_url2;
    int n, transport, channels, src_ips, conc;
    double hold, duration, timeout, rate;
    int count, pub_conns, size, conns, use_stdin, port, first;
    double connect_timeout;
    const char *run;
    const char *paths[5];      /* {tr} for sse, ws, stream, -, lp */
    double warm_timeout, drain;
} lg_opt;

static void lg_parse_url(const char *s, lg_url *u)
{
    const char *p;
    if (strncmp(s, "http://", 7) == 0 || strncmp(s, "ws://", 5) == 0
        || strncmp(s, "https://", 8) == 0 || strncmp(s, "wss://", 6) == 0) {
        p = strchr(s, '/') + 2;
        u->tls = !strncmp(s, "https://", 8) || !strncmp(s, "wss://", 6);
    } else {
        lg_die("URL must be http(s):// or ws(s)://: %s", s);
    }
    const char *slash = strchr(p, '/');
    size_t hl = slash ? (size_t)(slash - p) : strlen(p);
    if (hl == 0 || hl >= sizeof u->hostport) {
        lg_die("bad host in %s", s);
    }
    memcpy(u->hostport, p, hl);
    u->hostport[hl] = 0;
    snprintf(u->path, sizeof u->path, "%s", slash ? slash : "/");
    char host[64];
    snprintf(host, sizeof host, "%s", u->hostport);
    int port = u->tls ? 443 : 80;
    char *colon = strchr(host, ':');
    if (colon) {
        *colon = 0;
        port = atoi(colon + 1);
    }
    memset(&u->sa, 0, sizeof u->sa);
    u->sa.sin_family = AF_INET;
    u->sa.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host, &u->sa.sin_addr) != 1) {
        lg_die("host must be an IPv4 literal: %s", host);
    }
    if ((ntohl(u->sa.sin_addr.s_addr) >> 24) != 127) {
        lg_die("loopback only (127.0.0.0/8): %s", host);
    }
}

/* expand {tr} {ch} {run} */
static size_t lg_expand(const char *tmpl, int tr, int ch, char *out, size_t cap)
{
    size_t o = 0;
    for (const char *p = tmpl; *p && o + 1 < cap; ) {
        char num[24];
        const char *rep = NULL;
        size_t skip = 0;
        if (strncmp(p, "{tr}", 4) == 0) {
            rep = lg_opt.paths[tr];
            skip = 4;
        } else if (strncmp(p, "{ch}", 4) == 0) {
            snprintf(num, sizeof num, "%d", ch);
            rep = num;
            skip = 4;
        } else if (strncmp(p, "{run}", 5) == 0) {
            rep = lg_opt.run;
            skip = 5;
        }
        if (rep) {
            size_t l = strlen(rep);
            if (o + l >= cap) {
                break;
            }
            memcpy(out + o, rep, l);
            o += l;
            p += skip;
        } else {
            out[o++] = *p++;
        }
    }
    out[o] = 0;
    return o;
}

/* ------------------------------------------------------- connections */

typedef struct lg_conn {
    int fd;
    SSL *ssl;                          /* TLS session, or NULL */
    int idx;
    unsigned char kind, tr, state, closed;
    unsigned char chunked, ck_state, ws_frag_text, warm;
    unsigned char busy, want_close, ready, pad_;
    int status;
    int64_t ck_left;                   /* chunked: bytes left in chunk */
    int64_t body_left;                 /* pub response: content-length left */
    char *out;                         /* pending output */
    size_t out_len, out_off;
    char *pend;                        /* unconsumed input (headers / partial msg) */
    size_t pend_len, pend_cap;
    /* subscriber accounting */
    uint32_t received, dups, stray;
    unsigned char *seen;               /* bitmap, --count bits */
    int64_t t_start, t_ready;
    /* echo */
    int64_t sent_ts;
    uint64_t seq;
} lg_conn;

static int lg_ep = -1;
static volatile sig_atomic_t lg_stop;
static char lg_rbuf[256 * 1024];

/* global counters */
static struct {
    int started, inflight, ready, failed, closed_after_ready;
    uint64_t received, dups, stray, bytes_in, warm_got;
    lg_hist lat;              /* publish->receive or echo RTT */
    lg_hist pub_rtt;          /* publish request round trip */
    lg_hist connect;          /* connect->headers */
    int64_t t_first_recv, t_last_recv;
    int published, pub_ok, pub_err, pub_late, pub_conn_err;
    uint64_t echoes;
    int srv_conns;
    char first_err[160];
} lg_g;

static void lg_note_err(const char *fmt, ...)
{
    if (lg_g.first_err[0]) {
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(lg_g.first_err, sizeof lg_g.first_err, fmt, ap);
    va_end(ap);
    for (char *p = lg_g.first_err; *p; p++) {
        if (*p == '"' || *p == '\\' || (unsigned char)*p < 32) {
            *p = ' ';
        }
    }
}

static void lg_ep_mod(lg_conn *c, uint32_t ev, int op)
{
    struct epoll_event e = {.events = ev, .data.ptr = c};
    if (epoll_ctl(lg_ep, op, c->fd, &e) < 0 && op != EPOLL_CTL_DEL) {
        lg_die("epoll_ctl: %s", strerror(errno));
    }
}

/* ------------------------------------------------------------ TLS */

static SSL_CTX *lg_tls_ctx;

static SSL *lg_tls_new(int fd)
{
    if (!lg_tls_ctx) {
        lg_tls_ctx = SSL_CTX_new(TLS_client_method());
        if (!lg_tls_ctx) {
            lg_die("SSL_CTX_new failed");
        }
        SSL_CTX_set_verify(lg_tls_ctx, SSL_VERIFY_NONE, NULL);
        SSL_CTX_set_session_cache_mode(lg_tls_ctx, SSL_SESS_CACHE_OFF);
    }
    SSL *ssl = SSL_new(lg_tls_ctx);
    if (!ssl || !SSL_set_fd(ssl, fd)) {
        lg_die("SSL_new failed");
    }
    SSL_set_connect_state(ssl);
    SSL_set_mode(ssl, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE
                      | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    return ssl;
}

/* The result r of SSL_read()/SSL_write() on c as read()/write() give it:
 * r when it moved bytes, -1 with errno EAGAIN when it would block, else -1
 * with errno EPIPE. */
static ssize_t lg_tls_result(lg_conn *c, int r)
{
    if (r > 0) {
        return r;
    }
    int e = SSL_get_error(c->ssl, r);
    errno = (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) ? EAGAIN : EPIPE;
    return -1;
}

/* read()/write() on c, through TLS when c has a session: -1 with errno
 * EAGAIN when it would block (*want_out: the session must write first). */
static ssize_t lg_io_read(lg_conn *c, char *buf, size_t n)
{
    if (!c->ssl) {
        return read(c->fd, buf, n);
    }
    ERR_clear_error();
    ssize_t r = lg_tls_result(c, SSL_read(c->ssl, buf, n > INT32_MAX ? INT32_MAX : (int)n));
    if (r < 0 && errno != EAGAIN) {
        return 0;                      /* close_notify, EOF or error: the end */
    }
    return r;
}

static ssize_t lg_io_write(lg_conn *c, const char *buf, size_t n)
{
    if (!c->ssl) {
        return write(c->fd, buf, n);
    }
    ERR_clear_error();
    return lg_tls_result(c, SSL_write(c->ssl, buf, n > INT32_MAX ? INT32_MAX : (int)n));
}

static void lg_close(lg_conn *c, int rst)
{
    if (c->fd < 0) {
        return;
    }
    if (c->ssl) {
        if (!rst) {
            SSL_shutdown(c->ssl);       /* close_notify, once, not waited for */
        }
        SSL_free(c->ssl);
        c->ssl = NULL;
    }
    if (rst) {
        struct linger l = {1, 0};
        setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    }
    epoll_ctl(lg_ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    c->fd = -1;
    c->closed = 1;
    free(c->out);
    c->out = NULL;
    c->out_len = c->out_off = 0;
    free(c->pend);
    c->pend = NULL;
    c->pend_len = c->pend_cap = 0;
}

static void lg_pend_set(lg_conn *c, const char *d, size_t n)
{
    if (n > c->pend_cap) {
        c->pend_cap = n < 256 ? 256 : n * 2;
        c->pend = lg_xrealloc(c->pend, c->pend_cap);
    }
    memmove(c->pend, d, n);
    c->pend_len = n;
}

static void lg_pend_add(lg_conn *c, const char *d, size_t n)
{
    if (c->pend_len + n > c->pend_cap) {
        c->pend_cap = (c->pend_len + n) * 2;
        c->pend = lg_xrealloc(c->pend, c->pend_cap);
    }
    memcpy(c->pend + c->pend_len, d, n);
    c->pend_len += n;
}

/* queue output and try to write it */
static int lg_send(lg_conn *c, const char *d, size_t n)
{
    if (c->fd < 0) {
        return -1;
    }
    if (c->out_len == c->out_off && c->state != LG_S_TLS) {
        ssize_t w = lg_io_write(c, d, n);
        if (w == (ssize_t)n) {
            return 0;
        }
        if (w < 0 && errno != EAGAIN) {
            return -1;
        }
        if (w < 0) {
            w = 0;
        }
        d += w;
        n -= (size_t)w;
        c->out_len = c->out_off = 0;
    }
    c->out = lg_xrealloc(c->out, c->out_len + n);
    memcpy(c->out + c->out_len, d, n);
    c->out_len += n;
    lg_ep_mod(c, EPOLLIN | EPOLLOUT, EPOLL_CTL_MOD);
    return 0;
}

static int lg_flush(lg_conn *c)
{
    while (c->out_off < c->out_len) {
        ssize_t w = lg_io_write(c, c->out + c->out_off, c->out_len - c->out_off);
        if (w < 0) {
            return errno == EAGAIN ? 0 : -1;
        }
        c->out_off += (size_t)w;
    }
    c->out_len = c->out_off = 0;
    lg_ep_mod(c, EPOLLIN, EPOLL_CTL_MOD);
    return 0;
}

static int lg_connect(lg_conn *c, const lg_url *u, int src)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        lg_note_err("socket: %s", strerror(errno));
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (lg_opt.src_ips > 1) {
        struct sockaddr_in b = {.sin_family = AF_INET};
        b.sin_addr.s_addr = htonl(0x7f000001u + (uint32_t)(src % lg_opt.src_ips));
        setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
        if (bind(fd, (struct sockaddr *)&b, sizeof b) < 0) {
            lg_note_err("bind: %s", strerror(errno));
            close(fd);
            return -1;
        }
    }
    if (connect(fd, (const struct sockaddr *)&u->sa, sizeof u->sa) < 0
        && errno != EINPROGRESS) {
        lg_note_err("connect: %s", strerror(errno));
        close(fd);
        return -1;
    }
    c->fd = fd;
    c->ssl = u->tls ? lg_tls_new(fd) : NULL;
    c->state = LG_S_CONNECTING;
    c->closed = 0;
    c->t_start = lg_now_us();
    lg_ep_mod(c, EPOLLIN | EPOLLOUT, EPOLL_CTL_ADD);
    return 0;
}

/* ------------------------------------------------------- messages */

/* a decimal integer (optional '-') in [p, end); returns the end of the digits,
 * or p when there are none */
static const char *lg_parse_ll(const char *p, const char *end, long long *out)
{
    const char *q = p;
    int neg = 0;
    long long v = 0;
    if (q < end && *q == '-') {
        neg = 1;
        q++;
    }
    const char *d0 = q;
    while (q < end && *q >= '0' && *q <= '9' && q - d0 < 18) {
        v = v * 10 + (*q - '0');
        q++;
    }
    if (q == d0) {
        return p;
    }
    *out = neg ? -v : v;
    return q;
}


static void lg_on_msg(lg_conn *c, const char *p, size_t n)
{
    /* every {"seq":S,"ts":T...} in p[0..n) */
    static const char mk[] = "{\"seq\":";
    const char *end = p + n;
    while (p < end) {
        const char *m = memmem(p, (size_t)(end - p), mk, sizeof mk - 1);
        if (!m) {
            return;
        }
        const char *q = m + sizeof mk - 1;
        long long seq = 0, ts = 0;
        const char *e = lg_parse_ll(q, end, &seq);
        if (e == q || end - e < 6 || memcmp(e, ",\"ts\":", 6) != 0) {
            p = q;
            continue;
        }
        q = e + 6;
        e = lg_parse_ll(q, end, &ts);
        p = e;
        if (e == q) {
            continue;
        }
        int64_t now = lg_now_us();
        if (c->kind == LG_K_ECHO) {
            lg_hadd(&lg_g.lat, now - ts);
            lg_g.echoes++;
            c->busy = 0;
            continue;
        }
        if (seq < 0) {
            if (!c->warm) {
                c->warm = 1;
                lg_g.warm_got++;
            }
            continue;
        }
        if (seq >= lg_opt.count || !c->seen) {
            c->stray++;
            lg_g.stray++;
            continue;
        }
        unsigned char bit = (unsigned char)(1u << (seq & 7));
        if (c->seen[seq >> 3] & bit) {
            c->dups++;
            lg_g.dups++;
            continue;
        }
        c->seen[seq >> 3] |= bit;
        c->received++;
        lg_g.received++;
        lg_hadd(&lg_g.lat, now - ts);
        if (!lg_g.t_first_recv) {
            lg_g.t_first_recv = now;
        }
        lg_g.t_last_recv = now;
    }
}

/* text transports (sse, stream): messages are found wherever they are; a
 * partial object at the end is kept for the next read */
static void lg_text_in(lg_conn *c, const char *d, size_t n)
{
    const char *buf = d;
    size_t len = n;
    if (c->pend_len) {
        lg_pend_add(c, d, n);
        buf = c->pend;
        len = c->pend_len;
    }
    /* find the last '{' that has no '}' after it: keep from there */
    size_t keep_from = len;
    for (size_t i = len; i > 0; i--) {
        if (buf[i - 1] == '}') {
            break;
        }
        if (buf[i - 1] == '{') {
            keep_from = i - 1;
            break;
        }
    }
    lg_on_msg(c, buf, keep_from);
    if (keep_from < len) {
        if (len - keep_from > 65536) {
            keep_from = len;          /* garbage: do not grow without bound */
        }
        lg_pend_set(c, buf + keep_from, len - keep_from);
    } else {
        c->pend_len = 0;
    }
}

static void lg_ws_frame_out(lg_conn *c, int opcode, const char *p, size_t n, int mask)
{
    static const unsigned char key[4] = {0x37, 0xfa, 0x21, 0x3d};
    char stackbuf[1024];
    size_t need = PS_WS_MAX_FRAME_HEADER + n;
    char *buf = need <= sizeof stackbuf ? stackbuf : lg_xmalloc(need);
    size_t h = ps_ws_frame_header_masked((unsigned char *)buf, opcode, n,
                                         mask ? key : NULL);

    if (mask) {
        ps_ws_mask(buf + h, p, n, key, 0);
    } else {
        memcpy(buf + h, p, n);
    }
    if (lg_send(c, buf, h + n) < 0) {
        lg_close(c, 0);
    }
    if (buf != stackbuf) {
        free(buf);
    }
}

/* WebSocket frames: server frames (client side) are unmasked, client frames
 * (echod) masked.  Returns bytes consumed. */
static size_t lg_ws_parse(lg_conn *c, char *buf, size_t len)
{
    size_t off = 0;
    while (len - off >= 2) {
        unsigned char *p = (unsigned char *)buf + off;
        ps_ws_header_t wh;
        int hl = ps_ws_header_parse(p, len - off, &wh);
        if (hl == 0) {
            break;
        }
        int op = wh.opcode;
        uint64_t pl = wh.len;
        size_t h = (size_t)hl;
        if (hl < 0 || pl > 16 * 1024 * 1024) {
            lg_note_err("ws frame too large");
            lg_close(c, 1);
            return len;
        }
        if (len - off < h + pl) {
            break;
        }
        char *pay = (char *)p + h;
        if (wh.masked) {
            ps_ws_mask(pay, pay, (size_t)pl, wh.key, 0);
        }
        off += h + pl;
        if (op == 0x9) {                               /* ping */
            lg_ws_frame_out(c, 0xA, pay, pl, c->kind != LG_K_SRV);
        } else if (op == 0x8) {                        /* close */
            if (c->kind == LG_K_SRV) {
                lg_ws_frame_out(c, 0x8, pay, pl < 2 ? pl : 2, 0);
            }
            c->want_close = 1;
            return len;
        } else if (op == 0x1 || op == 0x2 || op == 0x0) {
            if (c->kind == LG_K_SRV) {
                lg_ws_frame_out(c, op, pay, pl, 0);    /* echo */
            } else {
                lg_on_msg(c, pay, pl);
            }
        }
        if (c->fd < 0) {
            return len;
        }
    }
    return off;
}

static void lg_ws_in(lg_conn *c, const char *d, size_t n)
{
    if (c->pend_len) {
        lg_pend_add(c, d, n);
        size_t used = lg_ws_parse(c, c->pend, c->pend_len);
        if (c->fd >= 0 && used < c->pend_len) {
            memmove(c->pend, c->pend + used, c->pend_len - used);
            c->pend_len -= used;
        } else {
            c->pend_len = 0;
        }
        return;
    }
    /* parse in place (the frames are unmasked in the read buffer) */
    char *buf = (char *)d;
    size_t used = lg_ws_parse(c, buf, n);
    if (c->fd >= 0 && used < n) {
        lg_pend_set(c, buf + used, n - used);
    }
}

static void lg_body_bytes(lg_conn *c, const char *d, size_t n)
{
    if (n == 0 || c->fd < 0) {
        return;
    }
    if (c->tr == LG_WS) {
        lg_ws_in(c, d, n);
    } else {
        lg_text_in(c, d, n);
    }
}

/* chunked transfer decoding, streaming; calls lg_body_bytes for data.
 * Returns 1 when the terminating chunk was seen. */
enum { LG_CK_SIZE, LG_CK_EXT, LG_CK_SIZE_LF, LG_CK_DATA, LG_CK_DATA_CR, LG_CK_DATA_LF,
       LG_CK_TRAILER };

static int lg_dechunk(lg_conn *c, const char *d, size_t n, int deliver)
{
    size_t i = 0;
    while (i < n) {
        char ch = d[i];
        switch (c->ck_state) {
        case LG_CK_SIZE:
            if (isxdigit((unsigned char)ch)) {
                c->ck_left = c->ck_left * 16
                    + (isdigit((unsigned char)ch) ? ch - '0' : (tolower(ch) - 'a' + 10));
            } else if (ch == '\r') {
                c->ck_state = LG_CK_SIZE_LF;
            } else {
                c->ck_state = LG_CK_EXT;
            }
            i++;
            break;
        case LG_CK_EXT:
            if (ch == '\r') {
                c->ck_state = LG_CK_SIZE_LF;
            }
            i++;
            break;
        case LG_CK_SIZE_LF:
            i++;
            if (c->ck_left == 0) {
                c->ck_state = LG_CK_TRAILER;
                return 1;                 /* ignore trailers: we never see them */
            }
            c->ck_state = LG_CK_DATA;
            break;
        case LG_CK_DATA: {
            size_t take = n - i;
            if ((int64_t)take > c->ck_left) {
                take = (size_t)c->ck_left;
            }
            if (deliver) {
                lg_body_bytes(c, d + i, take);
                if (c->fd < 0) {
                    return 0;
                }
            }
            i += take;
            c->ck_left -= (int64_t)take;
            if (c->ck_left == 0) {
                c->ck_state = LG_CK_DATA_CR;
            }
            break;
        }
        case LG_CK_DATA_CR:
            c->ck_state = LG_CK_DATA_LF;
            i++;
            break;
        case LG_CK_DATA_LF:
            c->ck_state = LG_CK_SIZE;
            c->ck_left = 0;
            i++;
            break;
        default:
            return 1;
        }
    }
    return 0;
}

/* ----------------------------------------------------------- requests */

/* --url2 (a second server of the same cluster): subscribers 2..3 of every
 * 4 go there, so both transports of --transport mix reach both servers. */
static const lg_url *lg_sub_url(const lg_conn *c)
{
    return lg_opt.have_url2 && (c->idx / 2) % 2 ? &lg_opt.url2 : &lg_opt.url;
}

static void lg_sub_request(lg_conn *c)
{
    char path[600], req[1024];
    int ch = lg_opt.channels > 0 ? c->idx % lg_opt.channels : 0;
    const lg_url *u = lg_sub_url(c);
    lg_expand(u->path, c->tr, ch, path, sizeof path);
    int n;
    if (c->tr == LG_WS) {
        n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                     "Sec-WebSocket-Version: 13\r\n\r\n", path, u->hostport);
    } else if (c->tr == LG_SSE) {
        n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: %s\r\n"
                     "Accept: text/event-stream\r\n\r\n", path, u->hostport);
    } else {
        n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: %s\r\n\r\n", path,
                     u->hostport);
    }
    if (lg_send(c, req, (size_t)n) < 0) {
        lg_close(c, 0);
        return;
    }
    if (c->tr == LG_LP) {              /* waits: no headers before the answer */
        lg_g.inflight--;
        c->ready = 1;
        c->t_ready = lg_now_us();
        lg_hadd(&lg_g.connect, c->t_ready - c->t_start);
        lg_g.ready++;
    }
}

static size_t lg_make_msg(char *out, size_t cap, long long seq, int64_t ts)
{
    int n = snprintf(out, cap, "{\"seq\":%lld,\"ts\":%" PRId64 ",\"p\":\"", seq, ts);
    size_t len = (size_t)n;
    while ((int)len < lg_opt.size - 2 && len + 3 < cap) {
        out[len++] = 'x';
    }
    out[len++] = '"';
    out[len++] = '}';
    out[len] = 0;
    return len;
}

/* ------------------------------------------------------------ publisher */

#define LG_MAX_PUB 64
static lg_conn lg_pubs[LG_MAX_PUB];
static int lg_npubs;
static char lg_pub_path[600];

static int lg_pub_send(lg_conn *c, long long seq)
{
    char body[4096], req[5000];
    int64_t ts = lg_now_us();
    size_t bl = lg_make_msg(body, sizeof body, seq, ts);
    int n = snprintf(req, sizeof req, "POST %s HTTP/1.1\r\nHost: %s\r\n"
                     "Content-Type: text/plain\r\nContent-Length: %zu\r\n\r\n%s",
                     lg_pub_path, lg_opt.pub_url.hostport, bl, body);
    c->busy = 1;
    c->sent_ts = ts;
    c->state = LG_S_HEADERS;
    c->pend_len = 0;
    if (lg_send(c, req, (size_t)n) < 0) {
        lg_g.pub_conn_err++;
        lg_close(c, 0);
        return -1;
    }
    lg_g.published++;
    return 0;
}

/* a publisher connection that can take a request now, or NULL */
static lg_conn *lg_pub_idle(void)
{
    for (int i = 0; i < lg_npubs; i++) {
        if (lg_pubs[i].fd >= 0 && !lg_pubs[i].busy && lg_pubs[i].state == LG_S_IDLE) {
            return &lg_pubs[i];
        }
    }
    for (int i = 0; i < lg_opt.pub_conns && i < LG_MAX_PUB; i++) {
        lg_conn *c = &lg_pubs[i];
        if (i >= lg_npubs) {
            memset(c, 0, sizeof *c);
            c->fd = -1;
            c->kind = LG_K_PUB;
            c->idx = i;
            lg_npubs = i + 1;
        }
        if (c->fd < 0) {
            if (lg_connect(c, &lg_opt.pub_url, 0) < 0) {
                lg_g.pub_conn_err++;
                return NULL;
            }
            c->busy = 1;        /* connecting: usable once writable */
            return NULL;
        }
    }
    return NULL;
}

/* bytes of the publish response body; 1 once the body is complete */
static int lg_pub_body(lg_conn *c, const char *d, size_t n)
{
    if (c->chunked) {
        return lg_dechunk(c, d, n, 0);
    }
    c->body_left -= (int64_t)n;
    return c->body_left <= 0;
}

/* the publish response (status, headers, body) */
static void lg_pub_in(lg_conn *c, const char *d, size_t n)
{
    if (c->state == LG_S_HEADERS) {
        lg_pend_add(c, d, n);
        char *e = memmem(c->pend, c->pend_len, "\r\n\r\n", 4);
        if (!e) {
            return;
        }
        size_t hl = (size_t)(e - c->pend) + 4;
        int st = 0;
        if (c->pend_len >= 12) {
            st = atoi(c->pend + 9);
        }
        c->status = st;
        c->chunked = lg_memmem_ci(c->pend, hl, "\r\ntransfer-encoding: chunked") != NULL;
        const char *cl = lg_memmem_ci(c->pend, hl, "\r\ncontent-length:");
        c->body_left = cl ? atoll(cl + 17) : 0;
        c->want_close = lg_memmem_ci(c->pend, hl, "\r\nconnection: close") != NULL;
        c->ck_state = LG_CK_SIZE;
        c->ck_left = 0;
        size_t rest = c->pend_len - hl;
        memmove(c->pend, c->pend + hl, rest);
        c->pend_len = 0;
        c->state = LG_S_BODY;
        d = c->pend;              /* pend is not written again before we are done */
        n = rest;
        if (c->status < 100) {
            lg_note_err("bad publish response");
        }
        /* fall through to the body with the rest */
    } else if (c->state != LG_S_BODY) {
        return;
    }
    if (!lg_pub_body(c, d, n)) {
        return;
    }
    /* response complete */
    lg_hadd(&lg_g.pub_rtt, lg_now_us() - c->sent_ts);
    if (c->status >= 200 && c->status < 300) {
        lg_g.pub_ok++;
    } else {
        lg_g.pub_err++;
        lg_note_err("publish answered %d", c->status);
    }
    c->busy = 0;
    c->state = LG_S_IDLE;
    if (c->want_close) {
        lg_close(c, 0);
    }
}

/* ------------------------------------------------------------- subscribers */

static lg_conn *lg_subs;
static int lg_nsubs;

static void lg_sub_headers(lg_conn *c, const char *d, size_t n)
{
    lg_pend_add(c, d, n);
    char *e = memmem(c->pend, c->pend_len, "\r\n\r\n", 4);
    if (!e) {
        if (c->pend_len > 16384) {
            lg_note_err("response headers too long");
            lg_close(c, 1);
        }
        return;
    }
    size_t hl = (size_t)(e - c->pend) + 4;
    c->status = c->pend_len >= 12 ? atoi(c->pend + 9) : 0;
    int want = c->tr == LG_WS ? 101 : 200;
    if (c->tr == LG_LP) {              /* the answer (counted ready before) */
        c->pend_len = 0;
        c->state = LG_S_DONE;
        lg_g.received++;
        return;
    }
    lg_g.inflight--;
    if (c->status != want) {
        char line[80];
        size_t l = strcspn(c->pend, "\r\n");
        snprintf(line, sizeof line, "%.*s", (int)(l < 70 ? l : 70), c->pend);
        lg_note_err("subscriber got \"%s\"", line);
        lg_g.failed++;
        lg_close(c, 1);
        return;
    }
    c->chunked = c->tr != LG_WS
        && lg_memmem_ci(c->pend, hl, "\r\ntransfer-encoding: chunked") != NULL;
    c->ck_state = LG_CK_SIZE;
    c->ck_left = 0;
    c->state = LG_S_BODY;
    c->ready = 1;
    c->t_ready = lg_now_us();
    lg_hadd(&lg_g.connect, c->t_ready - c->t_start);
    lg_g.ready++;
    size_t rest = c->pend_len - hl;
    char *tmp = NULL;
    if (rest) {
        tmp = lg_xmalloc(rest);
        memcpy(tmp, c->pend + hl, rest);
    }
    c->pend_len = 0;
    if (rest) {
        if (c->chunked) {
            lg_dechunk(c, tmp, rest, 1);
        } else {
            lg_body_bytes(c, tmp, rest);
        }
        free(tmp);
    }
}

static void lg_start_subs(void)
{
    while (lg_g.started < lg_nsubs && lg_g.inflight < lg_opt.conc) {
        lg_conn *c = &lg_subs[lg_g.started];
        c->idx = lg_g.started + lg_opt.first;
        c->kind = LG_K_SUB;
        c->fd = -1;
        if (lg_opt.transport == LG_MIX) {
            c->tr = (unsigned char)(c->idx % 2 ? LG_WS : LG_SSE);
        } else {
            c->tr = (unsigned char)lg_opt.transport;
        }
        lg_g.started++;
        if (lg_connect(c, lg_sub_url(c), c->idx) < 0) {
            lg_g.failed++;
            c->closed = 1;
            continue;
        }
        lg_g.inflight++;
    }
}

/* ------------------------------------------------------------- echo clients */

static void lg_echo_send(lg_conn *c)
{
    char msg[4096];
    size_t n = lg_make_msg(msg, sizeof msg, (long long)c->seq++, lg_now_us());
    c->busy = 1;
    lg_ws_frame_out(c, 0x1, msg, n, 1);
}

/* ------------------------------------------------------------- echo server */

static int lg_listen_fd = -1;

static void lg_srv_in(lg_conn *c, const char *d, size_t n)
{
    if (c->state == LG_S_HEADERS) {
        lg_pend_add(c, d, n);
        char *e = memmem(c->pend, c->pend_len, "\r\n\r\n", 4);
        if (!e) {
            if (c->pend_len > 16384) {
                lg_close(c, 1);
            }
            return;
        }
        size_t hl = (size_t)(e - c->pend) + 4;
        const char *k = lg_memmem_ci(c->pend, hl, "\r\nsec-websocket-key:");
        if (!k) {
            static const char bad[] = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n"
                                      "Connection: close\r\n\r\n";
            lg_send(c, bad, sizeof bad - 1);
            lg_close(c, 0);
            return;
        }
        k += 20;
        while (*k == ' ') {
            k++;
        }
        size_t kl = strcspn(k, "\r\n ");
        char acc[32], resp[256];
        lg_ws_accept(k, kl, acc);
        int rn = snprintf(resp, sizeof resp, "HTTP/1.1 101 Switching Protocols\r\n"
                          "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                          "Sec-WebSocket-Accept: %s\r\n\r\n", acc);
        size_t rest = c->pend_len - hl;
        memmove(c->pend, c->pend + hl, rest);
        c->pend_len = 0;
        c->state = LG_S_BODY;
        c->tr = LG_WS;
        if (lg_send(c, resp, (size_t)rn) < 0) {
            lg_close(c, 0);
            return;
        }
        if (rest) {
            char *tmp = lg_xmalloc(rest);
            memcpy(tmp, c->pend, rest);
            lg_ws_in(c, tmp, rest);
            free(tmp);
        }
        return;
    }
    lg_ws_in(c, d, n);
}

/* ------------------------------------------------------------- event loop */

static void lg_after_connect(lg_conn *c);
static void lg_tls_handshake(lg_conn *c);
static void lg_connect_failed(lg_conn *c);

static void lg_on_readable(lg_conn *c)
{
    if (c->state == LG_S_TLS) {
        lg_tls_handshake(c);
        if (c->fd < 0 || c->state == LG_S_TLS) {
            return;
        }
    }
    for (int loops = 0; loops < 8 && c->fd >= 0; loops++) {
        ssize_t r = lg_io_read(c, lg_rbuf, sizeof lg_rbuf);
        if (r < 0) {
            if (errno == EAGAIN || errno == EINTR) {
                return;
            }
            r = 0;
        }
        if (r == 0) {                  /* closed by the peer */
            if (c->kind == LG_K_SUB) {
                if (c->ready) {
                    lg_g.closed_after_ready++;
                } else {
                    lg_g.inflight--;
                    lg_g.failed++;
                    lg_note_err("subscriber closed before headers");
                }
            } else if (c->kind == LG_K_PUB && c->busy) {
                lg_g.pub_conn_err++;
                lg_note_err("publisher connection closed mid-request");
            } else if (c->kind == LG_K_ECHO) {
                lg_g.closed_after_ready++;
            }
            lg_close(c, 0);
            return;
        }
        lg_g.bytes_in += (uint64_t)r;
        switch (c->kind) {
        case LG_K_SUB:
        case LG_K_ECHO:
            if (c->state == LG_S_HEADERS) {
                int was_ready = c->ready;
                lg_sub_headers(c, lg_rbuf, (size_t)r);
                if (c->kind == LG_K_ECHO && !was_ready && c->ready) {
                    lg_echo_send(c);
                }
            } else if (c->chunked) {
                lg_dechunk(c, lg_rbuf, (size_t)r, 1);
            } else {
                lg_body_bytes(c, lg_rbuf, (size_t)r);
            }
            break;
        case LG_K_PUB:
            lg_pub_in(c, lg_rbuf, (size_t)r);
            break;
        case LG_K_SRV:
            lg_srv_in(c, lg_rbuf, (size_t)r);
            if (c->want_close) {
                return;
            }
            break;
        default:
            break;
        }
        if ((size_t)r < sizeof lg_rbuf && !c->ssl) {
            return;
        }
    }
}

/* The TLS handshake, driven by readiness; then as after connect(). */
static void lg_tls_handshake(lg_conn *c)
{
    ERR_clear_error();
    int r = SSL_do_handshake(c->ssl);
    if (r == 1) {
        lg_after_connect(c);
        return;
    }
    int e = SSL_get_error(c->ssl, r);
    if (e == SSL_ERROR_WANT_READ) {
        lg_ep_mod(c, EPOLLIN, EPOLL_CTL_MOD);
        return;
    }
    if (e == SSL_ERROR_WANT_WRITE) {
        lg_ep_mod(c, EPOLLIN | EPOLLOUT, EPOLL_CTL_MOD);
        return;
    }
    lg_note_err("TLS handshake failed (SSL error %d)", e);
    lg_connect_failed(c);
}

/* c could not connect (TCP or TLS): counted as failed, closed */
static void lg_connect_failed(lg_conn *c)
{
    if (c->kind == LG_K_SUB || c->kind == LG_K_ECHO) {
        lg_g.inflight--;
        lg_g.failed++;
    } else {
        lg_g.pub_conn_err++;
    }
    lg_close(c, 0);
}

static void lg_after_connect(lg_conn *c)
{
    lg_ep_mod(c, c->out_len > c->out_off ? EPOLLIN | EPOLLOUT : EPOLLIN,
              EPOLL_CTL_MOD);
    if (c->kind == LG_K_PUB) {
        c->state = LG_S_IDLE;
        c->busy = 0;
    } else {
        c->state = LG_S_HEADERS;
        lg_sub_request(c);
    }
}

static void lg_on_writable(lg_conn *c)
{
    if (c->state == LG_S_CONNECTING) {
        int err = 0;
        socklen_t l = sizeof err;
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &l);
        if (err) {
            lg_note_err("connect: %s", strerror(err));
            lg_connect_failed(c);
            return;
        }
        if (c->ssl) {
            c->state = LG_S_TLS;
            lg_tls_handshake(c);
            return;
        }
        lg_after_connect(c);
        return;
    }
    if (c->state == LG_S_TLS) {
        lg_tls_handshake(c);
        return;
    }
    if (lg_flush(c) < 0) {
        lg_close(c, 0);
    }
}

static void lg_accept_all(void)
{
    for (;;) {
        int fd = accept4(lg_listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            return;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        lg_conn *c = calloc(1, sizeof *c);
        if (!c) {
            close(fd);
            return;
        }
        c->fd = fd;
        c->kind = LG_K_SRV;
        c->state = LG_S_HEADERS;
        lg_g.srv_conns++;
        lg_ep_mod(c, EPOLLIN, EPOLL_CTL_ADD);
    }
}

static lg_conn lg_stdin_conn = {.fd = 0, .kind = LG_K_STDIN};
static lg_conn lg_listen_conn = {.kind = LG_K_LISTEN};
static int lg_stdin_eof;

/* one round of the loop; waits at most timeout_us */
static void lg_poll(int64_t timeout_us)
{
    struct epoll_event ev[512];
    struct timespec ts;
    if (timeout_us < 0) {
        timeout_us = 0;
    }
    ts.tv_sec = timeout_us / 1000000;
    ts.tv_nsec = (timeout_us % 1000000) * 1000;
    int n = epoll_pwait2(lg_ep, ev, 512, &ts, NULL);
    if (n < 0) {
        if (errno == EINTR) {
            return;
        }
        lg_die("epoll_pwait2: %s", strerror(errno));
    }
    for (int i = 0; i < n; i++) {
        lg_conn *c = ev[i].data.ptr;
        if (c->kind == LG_K_STDIN) {
            char b[256];
            ssize_t r = read(0, b, sizeof b);
            if (r <= 0) {
                lg_stdin_eof = 1;
                epoll_ctl(lg_ep, EPOLL_CTL_DEL, 0, NULL);
            }
            continue;
        }
        if (c->kind == LG_K_LISTEN) {
            lg_accept_all();
            continue;
        }
        if (c->kind == LG_K_SRV) {
            if ((ev[i].events & EPOLLOUT) && c->fd >= 0 && lg_flush(c) < 0) {
                lg_close(c, 0);
            }
            if (c->fd >= 0 && (ev[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP))) {
                lg_on_readable(c);
            }
            if (c->fd < 0 || c->want_close) {
                lg_close(c, 0);
                lg_g.srv_conns--;
                free(c);
            }
            continue;
        }
        if (c->fd < 0) {
            continue;
        }
        if (ev[i].events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) {
            if (c->state == LG_S_CONNECTING || (ev[i].events & EPOLLOUT)) {
                lg_on_writable(c);
            }
        }
        if (c->fd >= 0 && (ev[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP))) {
            lg_on_readable(c);
        }
        if (c->fd >= 0 && c->want_close && c->kind != LG_K_PUB) {
            lg_g.closed_after_ready++;
            lg_close(c, 0);
        }
    }
}

/* ------------------------------------------------------------------- modes */

static void lg_on_signal(int sig)
{
    (void)sig;
    lg_stop = 1;
}

static int64_t lg_deadline;

static int lg_expired(void)
{
    return lg_stop || lg_now_us() >= lg_deadline;
}

/* the fields every mode's JSON line ends with, the line's end, flushed */
static void lg_json_end(FILE *f)
{
    fprintf(f, "\"n\":%d,\"ready\":%d,\"failed\":%d,\"closed\":%d,", lg_nsubs, lg_g.ready,
            lg_g.failed, lg_g.closed_after_ready);
    lg_hjson(f, "connect_us", &lg_g.connect);
    fprintf(f, ",\"error\":\"%s\"", lg_g.first_err);
    fprintf(f, "}\n");
    fflush(f);
}

static void lg_close_subs(void)
{
    for (int i = 0; i < lg_nsubs; i++) {
        lg_close(&lg_subs[i], 1);
    }
}

/* connect all subscribers; returns the time it took (us) */
static int64_t lg_connect_all(void)
{
    int64_t t0 = lg_now_us();
    lg_subs = calloc((size_t)lg_nsubs, sizeof *lg_subs);
    if (!lg_subs) {
        lg_die("out of memory");
    }
    size_t bm = ((size_t)lg_opt.count + 7) / 8;
    for (int i = 0; i < lg_nsubs; i++) {
        lg_subs[i].fd = -1;
        if (lg_opt.count > 0) {
            lg_subs[i].seen = calloc(1, bm);
        }
    }
    int64_t cend = lg_opt.connect_timeout > 0 ? t0 + (int64_t)(lg_opt.connect_timeout * 1e6)
                                              : INT64_MAX;
    while (!lg_expired() && lg_g.ready + lg_g.failed < lg_nsubs && lg_now_us() < cend) {
        lg_start_subs();
        lg_poll(10000);
    }
    return lg_now_us() - t0;
}

static int lg_mode_sub(void)
{
    int64_t took = lg_connect_all();
    printf("{\"event\":\"ready\",\"connect_all_ms\":%.1f,", (double)took / 1000.0);
    lg_json_end(stdout);
    int64_t hold_end = lg_now_us() + (int64_t)(lg_opt.hold * 1e6);
    while (!lg_expired() && !(lg_opt.use_stdin && lg_stdin_eof)
           && (lg_opt.use_stdin || lg_now_us() < hold_end)) {
        lg_poll(100000);
    }
    printf("{\"mode\":\"sub\",\"connect_all_ms\":%.1f,\"bytes_in\":%" PRIu64 ",",
           (double)took / 1000.0, lg_g.bytes_in);
    lg_json_end(stdout);
    lg_close_subs();
    return lg_g.failed ? 1 : 0;
}

/* publish count messages at rate (seq 0..count-1); then drain */
static void lg_publish_run(int64_t *t_first, int64_t *t_last)
{
    double interval = 1e6 / lg_opt.rate;
    int64_t t0 = lg_now_us();
    int next = 0;
    *t_first = t0;
    while (!lg_expired() && next < lg_opt.count) {
        int64_t due = t0 + (int64_t)(next * interval);
        int64_t now = lg_now_us();
        if (lg_g.pub_conn_err > 50) {
            lg_note_err("publisher: too many connection errors");
            break;
        }
        if (now >= due) {
            lg_conn *c = lg_pub_idle();
            if (c) {
                if (now - due > 10000) {
                    lg_g.pub_late++;       /* > 10 ms behind schedule */
                }
                lg_pub_send(c, next);
                next++;
                continue;
            }
            lg_poll(1000);
            continue;
        }
        lg_poll(due - now);
    }
    *t_last = lg_now_us();
    /* the last responses */
    int64_t end = lg_now_us() + 10 * 1000000;
    while (!lg_expired() && lg_g.pub_ok + lg_g.pub_err + lg_g.pub_conn_err < lg_g.published
           && lg_now_us() < end) {
        lg_poll(10000);
    }
}

static int lg_mode_pub(void)
{
    int64_t tf, tl;
    lg_publish_run(&tf, &tl);
    double el = (double)(lg_now_us() - tf) / 1e6;
    printf("{\"mode\":\"pub\",\"published\":%d,\"ok\":%d,\"errors\":%d,\"conn_errors\":%d,"
           "\"late\":%d,\"elapsed_s\":%.3f,\"rate\":%.1f,", lg_g.published, lg_g.pub_ok,
           lg_g.pub_err, lg_g.pub_conn_err, lg_g.pub_late, el,
           el > 0 ? lg_g.pub_ok / el : 0.0);
    lg_hjson(stdout, "pub_rtt_us", &lg_g.pub_rtt);
    printf(",\"error\":\"%s\"}\n", lg_g.first_err);
    return lg_g.pub_ok == lg_opt.count ? 0 : 1;
}

static int lg_mode_fanout(void)
{
    int64_t took = lg_connect_all();
    if (lg_g.ready == 0) {
        lg_opt.count = 0;                /* nothing to measure */
        lg_opt.warm_timeout = 0;
    }
    /* warm-up barrier: every ready subscriber got a warm-up message */
    int64_t tw = lg_now_us(), wend = tw + (int64_t)(lg_opt.warm_timeout * 1e6);
    int64_t next_warm = 0;
    while (!lg_expired() && lg_now_us() < wend && lg_g.pub_conn_err <= 50) {
        int live = 0;
        for (int i = 0; i < lg_nsubs; i++) {
            live += lg_subs[i].fd >= 0;
        }
        if ((int)lg_g.warm_got >= live) {
            break;
        }
        if (lg_now_us() >= next_warm) {
            lg_conn *c = lg_pub_idle();
            if (c) {
                lg_pub_send(c, -1);
                next_warm = lg_now_us() + 200000;
            }
        }
        lg_poll(5000);
    }
    int64_t warm_us = lg_now_us() - tw;
    /* wait for the warm-up responses, then forget them */
    int64_t wr_end = lg_now_us() + 10 * 1000000;
    while (!lg_expired() && lg_g.pub_ok + lg_g.pub_err + lg_g.pub_conn_err < lg_g.published
           && lg_now_us() < wr_end) {
        lg_poll(5000);
    }
    int warm_pubs = lg_g.published, warm_err = lg_g.pub_err;
    lg_g.published = lg_g.pub_ok = lg_g.pub_err = 0;
    memset(&lg_g.pub_rtt, 0, sizeof lg_g.pub_rtt);

    int64_t tf, tl;
    printf("{\"event\":\"measure_start\"}\n");     /* for CPU sampling by the caller */
    fflush(stdout);
    lg_publish_run(&tf, &tl);
    /* drain: all expected messages in, or no progress for --drain seconds */
    uint64_t expected_total = 0;
    int live = 0;
    for (int i = 0; i < lg_nsubs; i++) {
        if (lg_subs[i].ready) {
            expected_total += (uint64_t)lg_opt.count;
            live++;
        }
    }
    uint64_t last = lg_g.received;
    int64_t quiet_since = lg_now_us();
    while (!lg_expired() && lg_g.received < expected_total) {
        lg_poll(20000);
        if (lg_g.received != last) {
            last = lg_g.received;
            quiet_since = lg_now_us();
        } else if (lg_now_us() - quiet_since > (int64_t)(lg_opt.drain * 1e6)) {
            break;
        }
    }
    printf("{\"event\":\"measure_end\"}\n");
    fflush(stdout);
    uint64_t lost = expected_total > lg_g.received ? expected_total - lg_g.received : 0;
    int subs_lossy = 0;
    for (int i = 0; i < lg_nsubs; i++) {
        if (lg_subs[i].ready && lg_subs[i].received < (uint32_t)lg_opt.count) {
            subs_lossy++;
        }
    }
    double pub_s = (double)(tl - tf) / 1e6;
    double del_s = lg_g.t_last_recv > tf ? (double)(lg_g.t_last_recv - tf) / 1e6 : 0;
    printf("{\"mode\":\"fanout\",\"connect_all_ms\":%.1f,\"warm_ms\":%.1f,\"warm_pubs\":%d,"
           "\"warm_errors\":%d,\"warm_got\":%" PRIu64 ",\"published\":%d,\"pub_ok\":%d,"
           "\"pub_errors\":%d,\"pub_conn_errors\":%d,\"pub_late\":%d,\"rate\":%.1f,"
           "\"publish_s\":%.3f,\"deliver_s\":%.3f,\"expected\":%" PRIu64 ",\"received\":%"
           PRIu64 ",\"lost\":%" PRIu64 ",\"subs_lossy\":%d,\"dups\":%" PRIu64 ",\"stray\":%"
           PRIu64 ",\"msgs_per_s\":%.1f,\"live\":%d,",
           (double)took / 1000.0, (double)warm_us / 1000.0, warm_pubs, warm_err,
           lg_g.warm_got, lg_g.published, lg_g.pub_ok, lg_g.pub_err, lg_g.pub_conn_err,
           lg_g.pub_late, lg_opt.rate, pub_s, del_s, expected_total, lg_g.received, lost,
           subs_lossy, lg_g.dups, lg_g.stray, del_s > 0 ? (double)lg_g.received / del_s : 0.0,
           live);
    lg_hjson(stdout, "lat_us", &lg_g.lat);
    printf(",");
    lg_hjson(stdout, "pub_rtt_us", &lg_g.pub_rtt);
    printf(",");
    lg_json_end(stdout);
    lg_close_subs();
    return (lost || lg_g.failed || lg_g.pub_err) ? 1 : 0;
}

static int lg_mode_echo(void)
{
    lg_nsubs = lg_opt.conns;
    lg_opt.transport = LG_WS;
    lg_opt.count = 0;
    int64_t t0 = lg_now_us();
    lg_subs = calloc((size_t)lg_nsubs, sizeof *lg_subs);
    if (!lg_subs) {
        lg_die("out of memory");
    }
    while (!lg_expired() && lg_g.ready + lg_g.failed < lg_nsubs) {
        while (lg_g.started < lg_nsubs && lg_g.inflight < lg_opt.conc) {
            lg_conn *c = &lg_subs[lg_g.started];
            c->idx = lg_g.started++;
            c->kind = LG_K_ECHO;
            c->tr = LG_WS;
            if (lg_connect(c, &lg_opt.url, c->idx) < 0) {
                lg_g.failed++;
                continue;
            }
            lg_g.inflight++;
        }
        lg_poll(10000);
    }
    /* the connections started their first send on 101; measure from here */
    memset(&lg_g.lat, 0, sizeof lg_g.lat);
    lg_g.echoes = 0;
    int64_t ts = lg_now_us(), te = ts + (int64_t)(lg_opt.duration * 1e6);
    while (!lg_expired() && lg_now_us() < te) {
        lg_poll(10000);
        for (int i = 0; i < lg_nsubs; i++) {
            lg_conn *c = &lg_subs[i];
            if (c->fd >= 0 && c->ready && !c->busy) {
                lg_echo_send(c);
            }
        }
    }
    double el = (double)(lg_now_us() - ts) / 1e6;
    printf("{\"mode\":\"echo\",\"conns\":%d,\"connect_all_ms\":%.1f,\"duration_s\":%.3f,"
           "\"echoes\":%" PRIu64 ",\"msgs_per_s\":%.1f,", lg_nsubs,
           (double)(ts - t0) / 1000.0, el, lg_g.echoes, el > 0 ? lg_g.echoes / el : 0.0);
    lg_hjson(stdout, "lat_us", &lg_g.lat);
    printf(",");
    lg_json_end(stdout);
    lg_close_subs();
    return lg_g.failed || lg_g.echoes == 0 ? 1 : 0;
}

static int lg_mode_echod(void)
{
    lg_listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(lg_listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)lg_opt.port)};
    a.sin_addr.s_addr = htonl(0x7f000001u);
    if (bind(lg_listen_fd, (struct sockaddr *)&a, sizeof a) < 0
        || listen(lg_listen_fd, 4096) < 0) {
        lg_die("listen on 127.0.0.1:%d: %s", lg_opt.port, strerror(errno));
    }
    socklen_t al = sizeof a;
    getsockname(lg_listen_fd, (struct sockaddr *)&a, &al);
    lg_listen_conn.fd = lg_listen_fd;
    lg_ep_mod(&lg_listen_conn, EPOLLIN, EPOLL_CTL_ADD);
    printf("{\"event\":\"listening\",\"port\":%d}\n", ntohs(a.sin_port));
    fflush(stdout);
    while (!lg_expired() && !(lg_opt.use_stdin && lg_stdin_eof)) {
        lg_poll(100000);
    }
    printf("{\"mode\":\"echod\",\"open\":%d}\n", lg_g.srv_conns);
    return 0;
}

/* ------------------------------------------------------------------- main */

static void lg_usage(void)
{
    fputs("usage: loadgen sub|pub|fanout|echo|echod [options]  (see the head of "
          "bench/loadgen.c)\n", stderr);
    exit(2);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        lg_usage();
    }
    lg_opt.mode = argv[1];
    lg_opt.n = 1;
    lg_opt.transport = LG_MIX;
    lg_opt.channels = 1;
    lg_opt.src_ips = 1;
    lg_opt.conc = 256;
    lg_opt.hold = 0;
    lg_opt.duration = 5;
    lg_opt.timeout = 120;
    lg_opt.rate = 10;
    lg_opt.count = 0;
    lg_opt.pub_conns = 4;
    lg_opt.size = 64;
    lg_opt.conns = 16;
    lg_opt.run = "r";
    lg_opt.paths[LG_SSE] = "ev";
    lg_opt.paths[LG_WS] = "ws";
    lg_opt.paths[LG_STREAM] = "sub";
    lg_opt.paths[LG_LP] = "lp";
    lg_opt.warm_timeout = 20;
    lg_opt.drain = 3;

    static const struct option lo[] = {
        {"url", 1, 0, 'u'}, {"url2", 1, 0, '2'}, {"pub-url", 1, 0, 'P'}, {"n", 1, 0, 'n'},
        {"transport", 1, 0, 't'}, {"channels", 1, 0, 'k'}, {"src-ips", 1, 0, 's'},
        {"conc", 1, 0, 'C'}, {"hold", 1, 0, 'H'}, {"stdin", 0, 0, 'I'},
        {"rate", 1, 0, 'r'}, {"count", 1, 0, 'm'}, {"pub-conns", 1, 0, 'p'},
        {"size", 1, 0, 'z'}, {"conns", 1, 0, 'c'}, {"duration", 1, 0, 'd'},
        {"timeout", 1, 0, 'T'}, {"port", 1, 0, 'o'}, {"run", 1, 0, 'R'},
        {"paths", 1, 0, 'x'}, {"first", 1, 0, 'f'}, {"connect-timeout", 1, 0, 'F'}, {"warm-timeout", 1, 0, 'w'}, {"drain", 1, 0, 'D'},
        {0, 0, 0, 0}};
    int ch;
    optind = 2;
    while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (ch) {
        case 'u': lg_parse_url(optarg, &lg_opt.url); lg_opt.have_url = 1; break;
        case '2': lg_parse_url(optarg, &lg_opt.url2); lg_opt.have_url2 = 1; break;
        case 'P': lg_parse_url(optarg, &lg_opt.pub_url); lg_opt.have_pub = 1; break;
        case 'n': lg_opt.n = atoi(optarg); break;
        case 't':
            if (!strcmp(optarg, "sse")) lg_opt.transport = LG_SSE;
            else if (!strcmp(optarg, "ws")) lg_opt.transport = LG_WS;
            else if (!strcmp(optarg, "stream")) lg_opt.transport = LG_STREAM;
            else if (!strcmp(optarg, "mix")) lg_opt.transport = LG_MIX;
            else if (!strcmp(optarg, "lp")) lg_opt.transport = LG_LP;
            else lg_die("transport: sse|ws|stream|lp|mix");
            break;
        case 'k': lg_opt.channels = atoi(optarg); break;
        case 's': lg_opt.src_ips = atoi(optarg); break;
        case 'C': lg_opt.conc = atoi(optarg); break;
        case 'H': lg_opt.hold = atof(optarg); break;
        case 'I': lg_opt.use_stdin = 1; break;
        case 'r': lg_opt.rate = atof(optarg); break;
        case 'm': lg_opt.count = atoi(optarg); break;
        case 'p': lg_opt.pub_conns = atoi(optarg); break;
        case 'z': lg_opt.size = atoi(optarg); break;
        case 'c': lg_opt.conns = atoi(optarg); break;
        case 'd': lg_opt.duration = atof(optarg); break;
        case 'T': lg_opt.timeout = atof(optarg); break;
        case 'o': lg_opt.port = atoi(optarg); break;
        case 'R': lg_opt.run = optarg; break;
        case 'x': {                       /* sse,ws,stream path words */
            char *s = strdup(optarg), *save = NULL;
            for (int i = 0; i < 3; i++) {
                char *tok = strtok_r(i ? NULL : s, ",", &save);
                if (!tok) {
                    lg_die("--paths sse,ws,stream");
                }
                lg_opt.paths[i] = tok;
            }
            break;
        }
        case 'f': lg_opt.first = atoi(optarg); break;
        case 'F': lg_opt.connect_timeout = atof(optarg); break;
        case 'w': lg_opt.warm_timeout = atof(optarg); break;
        case 'D': lg_opt.drain = atof(optarg); break;
        default: lg_usage();
        }
    }
    if (lg_opt.n < 1 || lg_opt.conc < 1 || lg_opt.rate <= 0 || lg_opt.size > 3000
        || lg_opt.count < 0 || lg_opt.src_ips < 1 || lg_opt.src_ips > 250
        || lg_opt.pub_conns < 1 || lg_opt.pub_conns > LG_MAX_PUB || lg_opt.conns < 1) {
        lg_die("option out of range");
    }
    if (lg_opt.count > 10000000) {
        lg_die("--count too large");
    }

    struct rlimit rl = {0, 0};
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    signal(SIGPIPE, SIG_IGN);
    signal(SIGINT, lg_on_signal);
    signal(SIGTERM, lg_on_signal);
    lg_ep = epoll_create1(EPOLL_CLOEXEC);
    if (lg_ep < 0) {
        lg_die("epoll_create1: %s", strerror(errno));
    }
    if (lg_opt.use_stdin) {
        lg_ep_mod(&lg_stdin_conn, EPOLLIN, EPOLL_CTL_ADD);
    }
    lg_deadline = lg_now_us() + (int64_t)(lg_opt.timeout * 1e6);

    const char *m = lg_opt.mode;
    if (!strcmp(m, "sub") || !strcmp(m, "fanout") || !strcmp(m, "echo")) {
        if (!lg_opt.have_url) {
            lg_die("--url needed");
        }
        lg_nsubs = lg_opt.n;
        if ((rlim_t)lg_nsubs + 64 > rl.rlim_max) {
            lg_die("RLIMIT_NOFILE %llu is too small for %d connections (ulimit -n)",
                   (unsigned long long)rl.rlim_max, lg_nsubs);
        }
    }
    if (!strcmp(m, "pub") || !strcmp(m, "fanout")) {
        if (!lg_opt.have_pub) {
            lg_die("--pub-url needed");
        }
        lg_expand(lg_opt.pub_url.path, 0, 0, lg_pub_path, sizeof lg_pub_path);
    }
    if (!strcmp(m, "sub")) {
        return lg_mode_sub();
    }
    if (!strcmp(m, "pub")) {
        return lg_mode_pub();
    }
    if (!strcmp(m, "fanout")) {
        return lg_mode_fanout();
    }
    if (!strcmp(m, "echo")) {
        return lg_mode_echo();
    }
    if (!strcmp(m, "echod")) {
        return lg_mode_echod();
    }
    lg_usage();
    return 2;
}
