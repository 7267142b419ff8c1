/* ps_path.h - channel path parsing ("ch1/ch2.b5/ch3").  Core: no httpd types. */
#ifndef PS_PATH_H
#define PS_PATH_H

#include <apr_pools.h>
#include <apr_tables.h>

typedef struct ps_path_channel_t {
    const char *id;        /* NUL-terminated copy, allocated from the pool */
    apr_size_t len;        /* may be 0: "a//b" yields an empty-named channel */
    int backtrack;         /* digits of a trailing ".bN" that ends the element, else 0 */
} ps_path_channel_t;

/* Percent-decode src (len bytes) into a new NUL-terminated pool string.
 * '+' is left alone (nginx semantics); a malformed escape is copied as-is.
 * *out_len receives the decoded length (the result may contain NUL bytes). */
char *ps_path_unescape(apr_pool_t *p, const char *src, apr_size_t len,
                       apr_size_t *out_len);

/* Split an (already unescaped) channel path into an array of
 * ps_path_channel_t, in request order.  Rule (push-stream): repeatedly find
 * the leftmost match of "optional .b<digits>, followed by '/' or the end of
 * the string"; the text before the match is the id, the digits the
 * backtrack.  A trailing '/' is ignored; "" yields an empty array. */
apr_array_header_t *ps_path_parse(apr_pool_t *p, const char *path,
                                  apr_size_t len);

/* 1 when the id is "ALL" (exact, case-sensitive) or contains '*'. */
int ps_path_is_restricted(const char *id, apr_size_t len);

#endif
