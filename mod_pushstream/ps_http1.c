/* ps_http1.c - HTTP/1.x request heads (see ps_http1.h). */

#include <string.h>

#include <apr_strings.h>
#include <apr_lib.h>

#include "ps_http1.h"

/* RFC 9110 tchar. */
static int ps_h1_tchar(unsigned char c)
{
    return apr_isalnum(c) || (c && strchr("!#$%&'*+-.^_`|~", c));
}

static int ps_h1_token(const char *s, apr_size_t n)
{
    apr_size_t i;

    for (i = 0; i < n; i++) {
        if (!ps_h1_tchar((unsigned char)s[i])) {
            return 0;
        }
    }
    return n > 0;
}

/* Next line of buf[*pos..len): its start and length without CR LF.
 * 0 when no LF follows yet. */
static int ps_h1_line(const char *buf, apr_size_t len, apr_size_t *pos,
                      const char **line, apr_size_t *n)
{
    const char *lf = memchr(buf + *pos, '\n', len - *pos);

    if (!lf) {
        return 0;
    }
    *line = buf + *pos;
    *n = (apr_size_t)(lf - *line);
    if (*n && (*line)[*n - 1] == '\r') {
        (*n)--;
    }
    *pos = (apr_size_t)(lf - buf) + 1;
    return 1;
}

/* "METHOD SP target SP HTTP/1.x": 0, or minus a status. */
static int ps_h1_request_line(apr_pool_t *p, const char *l, apr_size_t n,
                              ps_h1_req_t *req)
{
    const char *sp1 = memchr(l, ' ', n), *sp2, *q, *v;
    apr_size_t tlen, vlen;

    if (!sp1 || !ps_h1_token(l, (apr_size_t)(sp1 - l))) {
        return -400;
    }
    sp2 = memchr(sp1 + 1, ' ', n - (apr_size_t)(sp1 + 1 - l));
    if (!sp2) {
        return -400;
    }
    tlen = (apr_size_t)(sp2 - sp1 - 1);
    v = sp2 + 1;
    vlen = n - (apr_size_t)(v - l);
    if (!tlen || sp1[1] != '/') {
        return -400;                  /* origin-form only */
    }
    for (q = sp1 + 1; q < sp2; q++) {
        if ((unsigned char)*q <= 0x20 || *q == 0x7f) {
            return -400;
        }
    }
    if (vlen != 8 || memcmp(v, "HTTP/", 5) || !apr_isdigit(v[5]) || v[6] != '.'
        || !apr_isdigit(v[7])) {
        return -400;
    }
    if (v[5] != '1' || (v[7] != '0' && v[7] != '1')) {
        return -505;
    }
    req->minor = v[7] - '0';
    req->method = apr_pstrmemdup(p, l, (apr_size_t)(sp1 - l));
    q = memchr(sp1 + 1, '?', tlen);
    if (q) {
        req->path = apr_pstrmemdup(p, sp1 + 1, (apr_size_t)(q - sp1 - 1));
        req->args = apr_pstrmemdup(p, q + 1, (apr_size_t)(sp2 - q - 1));
    }
    else {
        req->path = apr_pstrmemdup(p, sp1 + 1, tlen);
    }
    return 0;
}

/* Case-insensitive: does the comma list v[0..n) hold token t? */
static int ps_h1_list_has(const char *v, apr_size_t n, const char *t)
{
    apr_size_t tl = strlen(t), i = 0;

    while (i < n) {
        apr_size_t s, e;
        while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ',')) {
            i++;
        }
        s = i;
        while (i < n && v[i] != ',') {
            i++;
        }
        e = i;
        while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t')) {
            e--;
        }
        if (e - s == tl && !strncasecmp(v + s, t, tl)) {
            return 1;
        }
    }
    return 0;
}

static int ps_h1_content_length(const char *v, apr_size_t n, apr_off_t *out)
{
    apr_off_t cl = 0;
    apr_size_t i;

    if (!n || n > 18) {
        return -400;
    }
    for (i = 0; i < n; i++) {
        if (!apr_isdigit(v[i])) {
            return -400;
        }
        cl = cl * 10 + (v[i] - '0');
    }
    if (*out >= 0 && *out != cl) {
        return -400;                  /* two different lengths */
    }
    *out = cl;
    return 0;
}

#define PS_H1_IS(name, nl, lit) \
    ((nl) == sizeof(lit) - 1 && !strncasecmp((name), (lit), (nl)))

/* "Name: value": 0, or minus a status. */
static int ps_h1_header(apr_pool_t *p, const char *l, apr_size_t n,
                        ps_h1_req_t *req)
{
    const char *colon = memchr(l, ':', n), *v, *end = l + n;
    apr_size_t nl, vl;

    if (!colon || !ps_h1_token(l, (apr_size_t)(colon - l))) {
        return -400;                  /* also "Name :" and folded lines */
    }
    nl = (apr_size_t)(colon - l);
    for (v = colon + 1; v < end && (*v == ' ' || *v == '\t'); v++) {
    }
    while (end > v && (end[-1] == ' ' || end[-1] == '\t')) {
        end--;
    }
    vl = (apr_size_t)(end - v);
    {
        apr_size_t i;
        for (i = 0; i < vl; i++) {
            unsigned char c = (unsigned char)v[i];
            if ((c < 0x20 && c != '\t') || c == 0x7f) {
                return -400;
            }
        }
    }
    if (PS_H1_IS(l, nl, "Content-Length")) {
        return ps_h1_content_length(v, vl, &req->content_length);
    }
    if (PS_H1_IS(l, nl, "Transfer-Encoding")) {
        req->transfer_encoding = 1;
    }
    else if (PS_H1_IS(l, nl, "Connection")) {
        req->conn_close |= ps_h1_list_has(v, vl, "close");
        req->conn_keepalive |= ps_h1_list_has(v, vl, "keep-alive");
    }
    else if (PS_H1_IS(l, nl, "Expect")) {
        if (vl == 12 && !strncasecmp(v, "100-continue", 12)) {
            req->expect_continue = 1;
        }
        else if (vl) {
            req->expect_other = 1;
        }
    }
    else if (PS_H1_IS(l, nl, "Host")) {
        req->host = 1;
    }
    else if (PS_H1_IS(l, nl, "Event-Id") && !req->event_id) {
        req->event_id = vl ? apr_pstrmemdup(p, v, vl) : NULL;
    }
    else if (PS_H1_IS(l, nl, "Event-Type") && !req->event_type) {
        req->event_type = vl ? apr_pstrmemdup(p, v, vl) : NULL;
    }
    else if (PS_H1_IS(l, nl, "Accept") && !req->accept) {
        req->accept = apr_pstrmemdup(p, v, vl);
    }
    else if (PS_H1_IS(l, nl, "Authorization") && !req->authorization) {
        req->authorization = apr_pstrmemdup(p, v, vl);
    }
    else if (PS_H1_IS(l, nl, "Cookie") && !req->cookie) {
        req->cookie = apr_pstrmemdup(p, v, vl);
    }
    return 0;
}

apr_size_t ps_h1_head_end(ps_h1_scan_t *sc, const char *buf, apr_size_t len)
{
    apr_size_t pos = sc->pos, n;
    const char *l;

    while (ps_h1_line(buf, len, &pos, &l, &n)) {
        if (n) {
            sc->seen = 1;
        }
        else if (sc->seen) {
            return pos;
        }
        sc->pos = pos;               /* whole lines are not looked at again */
    }
    return 0;
}

long ps_h1_parse(apr_pool_t *p, const char *buf, apr_size_t len,
                 apr_size_t max, ps_h1_req_t *req)
{
    apr_size_t pos = 0, n, end;
    const char *l;
    int rc, headers = 0;
    ps_h1_scan_t sc = { 0, 0 };

    memset(req, 0, sizeof(*req));
    req->content_length = -1;
    if (len > max) {
        len = max;                    /* a head must fit within max */
    }
    end = ps_h1_head_end(&sc, buf, len);
    if (!end) {
        return len >= max ? -431 : 0;
    }
    len = end;
    do {                              /* empty lines before the request */
        ps_h1_line(buf, len, &pos, &l, &n);
    } while (!n);
    if ((rc = ps_h1_request_line(p, l, n, req)) != 0) {
        return rc;
    }
    for (;;) {
        ps_h1_line(buf, len, &pos, &l, &n);
        if (!n) {
            break;
        }
        if (++headers > PS_H1_MAX_HEADERS) {
            return -431;
        }
        if ((rc = ps_h1_header(p, l, n, req)) != 0) {
            return rc;
        }
    }
    if (req->minor == 1 && !req->host) {
        return -400;
    }
    return (long)pos;
}

const char *ps_h1_reason(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 400: return "Bad Request";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 411: return "Length Required";
    case 413: return "Request Entity Too Large";
    case 417: return "Expectation Failed";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    default:  return "Unknown";
    }
}

int ps_h1_keepalive(const ps_h1_req_t *req)
{
    if (req->conn_close) {
        return 0;
    }
    return req->minor >= 1 || req->conn_keepalive;
}
