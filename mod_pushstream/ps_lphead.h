/* ps_lphead.h - the head of a long-poll answer written by the loop.
 *
 * A waiting long-poll leaves httpd (ps_sub_detach): its request ends at
 * once (logged as 200 with no body: the answer is not known yet) and the
 * loop later writes the whole answer itself, always with
 * `Connection: close` (as httpd does for every suspended connection).
 * The headers httpd would have sent are kept as text when it leaves. */
#ifndef PS_LPHEAD_H
#define PS_LPHEAD_H

#include <httpd.h>

/* 1 when only httpd's HTTP protocol filters stand between r and its
 * connection (no content filter or mod_headers fixup a raw head would
 * skip): the answer may then be written without them. */
int ps_lphead_plain_filters(request_rec *r);

/* r's response headers as "Name: value\r\n" lines, from p (Content-Type,
 * Content-Length, Last-Modified, Etag, Connection left out). */
char *ps_lphead_snapshot(request_rec *r, apr_pool_t *p);

/* The whole head into buf (cap: ps_lphead_size()): status 200 with
 * ctype and Content-Length clen, or 304 with Content-Length 0; plus
 * Date, Server, the snapshot, Last-Modified / Etag of (time, tag) and
 * Connection: close.  Returns its length. */
apr_size_t ps_lphead_size(apr_size_t snapshot_len, apr_size_t ctype_len);
apr_size_t ps_lphead_render(char *buf, apr_size_t cap, int not_modified,
                            const char *snapshot, const char *ctype,
                            apr_int64_t time, apr_int64_t tag, apr_size_t clen);

#endif
