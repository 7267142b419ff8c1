/* ps_lphead.c - the head of a long-poll answer written by the loop
 * (see ps_lphead.h). */

#include <string.h>

#include <httpd.h>
#include <http_core.h>
#include <util_filter.h>
#include <apr_strings.h>
#include <apr_date.h>

#include "ps_lphead.h"
#include "ps_util.h"

int ps_lphead_plain_filters(request_rec *r)
{
    ap_filter_t *f;

    for (f = r->output_filters; f && f != r->connection->output_filters;
         f = f->next) {
        const char *name = f->frec->name;
        if (strcasecmp(name, "HTTP_HEADER") && strcasecmp(name, "HTTP_OUTERROR")
            && strcasecmp(name, "CONTENT_LENGTH") && strcasecmp(name, "BYTERANGE")) {
            return 0;
        }
    }
    return f != NULL;
}

typedef struct {
    apr_pool_t *p;
    char *out;
} ps_lphead_acc_t;

static const char *const ps_lphead_skip[] = {
    "Content-Type", "Content-Length", "Last-Modified", "Etag", "Connection",
    "Keep-Alive", "Transfer-Encoding", "Date", "Server", NULL
};

static int ps_lphead_add(void *baton, const char *key, const char *val)
{
    ps_lphead_acc_t *acc = baton;
    int i;

    for (i = 0; ps_lphead_skip[i]; i++) {
        if (!strcasecmp(key, ps_lphead_skip[i])) {
            return 1;
        }
    }
    acc->out = apr_pstrcat(acc->p, acc->out, key, ": ", val, "\r\n", NULL);
    return 1;
}

char *ps_lphead_snapshot(request_rec *r, apr_pool_t *p)
{
    ps_lphead_acc_t acc = { p, "" };

    apr_table_do(ps_lphead_add, &acc, r->headers_out, NULL);
    apr_table_do(ps_lphead_add, &acc, r->err_headers_out, NULL);
    return acc.out;
}

#define PS_LPHEAD_FIXED 512

apr_size_t ps_lphead_size(apr_size_t snapshot_len, apr_size_t ctype_len)
{
    return PS_LPHEAD_FIXED + strlen(ap_get_server_banner()) + snapshot_len
           + ctype_len;
}

apr_size_t ps_lphead_render(char *buf, apr_size_t cap, int not_modified,
                            const char *snapshot, const char *ctype,
                            apr_int64_t time, apr_int64_t tag, apr_size_t clen)
{
    char date[APR_RFC822_DATE_LEN], lm[PS_HTTP_TIME_LEN + 1];
    int n;

    apr_rfc822_date(date, apr_time_now());
    ps_format_http_time(lm, time);
    if (not_modified) {
        n = apr_snprintf(buf, cap, "HTTP/1.1 304 Not Modified\r\nDate: %s\r\n"
                         "Server: %s\r\n%sLast-Modified: %s\r\nEtag: W/%"
                         APR_INT64_T_FMT "\r\nContent-Length: 0\r\n"
                         "Connection: close\r\n\r\n", date,
                         ap_get_server_banner(), snapshot, lm, tag);
    }
    else {
        n = apr_snprintf(buf, cap, "HTTP/1.1 200 OK\r\nDate: %s\r\n"
                         "Server: %s\r\n%sLast-Modified: %s\r\nEtag: W/%"
                         APR_INT64_T_FMT "\r\nContent-Length: %" APR_SIZE_T_FMT
                         "\r\nConnection: close\r\nContent-Type: %s\r\n\r\n",
                         date, ap_get_server_banner(), snapshot, lm, tag, clen,
                         ctype);
    }
    return n < 0 ? 0 : (apr_size_t)n;
}
