/* ps_info.h - channel information documents (publisher answers and the
 * statistics location): JSON, plain text, YAML, XML.  Core: no httpd types.
 * Exact shapes: ../shared/spec/protocol.md B12.  Lines end with "\r\n". */
#ifndef PS_INFO_H
#define PS_INFO_H

#include <apr_pools.h>

typedef enum {
    PS_FMT_JSON = 0,     /* application/json (default) */
    PS_FMT_PLAIN,        /* text/plain */
    PS_FMT_YAML,         /* application/yaml */
    PS_FMT_XML,          /* application/xml */
    PS_FMT_XJSON,        /* text/x-json  (JSON shapes) */
    PS_FMT_XYAML         /* text/x-yaml  (YAML shapes) */
} ps_fmt_e;

/* Pick the format from an Accept header value: the text after the first
 * '/' is prefix-compared (case-sensitively) with "plain", "json", "yaml",
 * "xml", "x-json", "x-yaml"; when nothing matches, the text after the next
 * '/' is tried, and so on, as push-stream does ("text/html, text/plain" ->
 * plain; a browser's "text/html,application/xhtml+xml,application/xml..."
 * -> XML).  No match at all (or NULL) = JSON.  *content_type (may be NULL)
 * gets the matching Content-Type ("application/json" ...). */
ps_fmt_e ps_info_format_from_accept(const char *accept,
                                    const char **content_type);

/* One node's subscribers of a channel (several servers: PushStreamRedis). */
typedef struct ps_chinfo_node_t {
    const char *node;             /* node id, "hostname:port" */
    apr_uint64_t subscribers;
} ps_chinfo_node_t;

typedef struct ps_chinfo_t {
    const char *id;
    apr_size_t id_len;
    apr_uint64_t published_messages;
    apr_uint64_t stored_messages;
    apr_uint64_t subscribers;     /* with by_node: the sum over the nodes */
    int nodes;                    /* 0 (single server): no by_node shown */
    const ps_chinfo_node_t *by_node;
} ps_chinfo_t;

/* Single channel document, e.g. JSON
 * {"channel": "ch1", "published_messages": 1, "stored_messages": 1, "subscribers": 0}\r\n */
char *ps_info_single(apr_pool_t *p, ps_fmt_e fmt, const ps_chinfo_t *ch,
                     apr_size_t *len);

typedef struct ps_info_header_t {
    const char *hostname;
    apr_int64_t now;              /* seconds since the epoch (for "time") */
    apr_uint64_t channels;
    apr_uint64_t wildcard_channels;
    apr_uint64_t uptime;          /* seconds */
} ps_info_header_t;

/* Detailed ("group") document listing n channels in the given order. */
char *ps_info_group(apr_pool_t *p, ps_fmt_e fmt, const ps_info_header_t *h,
                    const ps_chinfo_t *items, int n, apr_size_t *len);

/* Summarized (whole zone) statistics document, spec B12. */
typedef struct ps_info_summary_t {
    const char *hostname;
    apr_int64_t now;              /* seconds since the epoch (for "time") */
    apr_uint64_t channels;
    apr_uint64_t wildcard_channels;
    apr_uint64_t published_messages;
    apr_uint64_t stored_messages;
    apr_uint64_t messages_in_trash;
    apr_uint64_t channels_in_delete;
    apr_uint64_t channels_in_trash;
    apr_uint64_t subscribers;
    apr_uint64_t uptime;          /* seconds since the zone was created */
    int auth;                     /* tokens checked: show the two below */
    apr_uint64_t auth_invalid_token;       /* 401s of PushStreamAuth */
    apr_uint64_t auth_insufficient_scope;  /* 403s */
} ps_info_summary_t;

typedef struct ps_info_worker_t {
    apr_int64_t pid;
    apr_uint64_t subscribers;
    apr_uint64_t uptime;          /* seconds since that child started */
} ps_info_worker_t;

/* by_worker lists the n workers in the given order. */
char *ps_info_summarized(apr_pool_t *p, ps_fmt_e fmt,
                         const ps_info_summary_t *s,
                         const ps_info_worker_t *workers, int n,
                         apr_size_t *len);

/* Prometheus text (exposition format 0.0.4) of n channels: for each of
 * pushstream_channel_published_messages_total, _stored_messages and
 * _subscribers a HELP/TYPE pair and one line per channel with the label
 * channel="id" (escaped: ps_escape.h); when items carry by_node, also
 * pushstream_channel_node_subscribers{channel="id",node="n"}.  by_node is
 * shown in every document (JSON "by_node": {"n": 2}, XML <by_node>, YAML
 * a by_node list, plain "by_node: n=2") only when nodes > 0. */
char *ps_info_prometheus(apr_pool_t *p, const ps_chinfo_t *items, int n,
                         apr_size_t *len);

#endif
