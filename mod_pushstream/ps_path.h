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

/* De-duplicate a channel list (ps_path_channel_t, request order) by id
 * bytes: the first occurrence keeps its place; its backtrack becomes the
 * largest one any spelling asked for ("a.b1/a/a.b5" = "a.b5").  Ids are
 * compared after URL-unescaping, so "a%41" and "aA" are one channel.
 * Returns chans itself when it has no duplicate, else a new array. */
apr_array_header_t *ps_path_dedupe(apr_pool_t *p, apr_array_header_t *chans);

/* 1 when the id is "ALL" (exact, case-sensitive) or contains '*'. */
int ps_path_is_restricted(const char *id, apr_size_t len);

/* What the statistics location answers for a parsed channel path. */
typedef enum {
    PS_STATS_SUMMARY = 0,  /* no channel: whole-zone summary */
    PS_STATS_ALL,          /* ALL or prefix*: every (matching) channel */
    PS_STATS_LIST,         /* the listed channels, in request order */
    PS_STATS_TOO_LONG      /* an id over max_len: 400 */
} ps_stats_sel_e;

/* Channels are looked at in request order: the first restricted one
 * (ps_path_is_restricted) selects PS_STATS_ALL, with *prefix / *prefix_len
 * its bytes before the first '*' (NULL / 0 for "ALL": no filter); an id
 * before it longer than max_len (when > 0) gives PS_STATS_TOO_LONG.
 * prefix / prefix_len are set to NULL / 0 for the other answers. */
ps_stats_sel_e ps_path_stats_select(const apr_array_header_t *chans,
                                    apr_int64_t max_len, const char **prefix,
                                    apr_size_t *prefix_len);

/* 1 when id[0..len) starts with prefix[0..plen); a NULL prefix matches
 * everything. */
int ps_path_has_prefix(const char *id, apr_size_t len, const char *prefix,
                       apr_size_t plen);

/* The first value of query argument name in a raw query string ("a=1&b",
 * r->args; NULL = none), percent-decoded ('+' kept, as nginx's $arg_x).
 * "" when absent or given without '='.  A value that decodes to a NUL
 * byte is returned undecoded, so "%00" cannot cut a C string short.
 * The result is a pool string (or a static ""). */
const char *ps_path_query_arg(apr_pool_t *p, const char *args,
                              const char *name);

#endif
