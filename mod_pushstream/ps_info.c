/* ps_info.c - channel information documents.  Core: no httpd types.
 *
 * The shapes are push-stream 0.6.0's format strings
 * (include/ngx_http_push_stream_module_utils.h), kept in the same structure:
 * for each format a single-channel item, a group head / item / last item /
 * tail, and a summarized document with worker item / last item.  Where the
 * spec text (B12) only sketches the plain / YAML / XML group and summarized
 * shapes, these strings are those upstream templates, byte for byte:
 *   plain group:  head "hostname: h, time: t, ..., infos: \r\n", items in
 *                 the single shape without the final "\r\n" joined by
 *                 ",\r\n", tail "\r\n";
 *   YAML group:   "key: v\r\n" head lines, "infos: \r\n", each item " -\r\n"
 *                 + the indented single shape, items joined by "\r\n",
 *                 tail "\r\n";
 *   XML group:    <root> head, <channel> items, "  </infos>\r\n</root>\r\n";
 *   summarized:   by_worker items joined by ",\r\n" (plain, JSON) / "\r\n"
 *                 (YAML) / nothing (XML, <worker> blocks end in "\r\n").
 * Unlike upstream, which printed them raw, channel ids and the host name
 * are escaped for each format (ps_escape.h), so that every document parses
 * whatever bytes an id holds.
 */
#include <string.h>

#include <apr_strings.h>
#include <apr_tables.h>

#include "ps_info.h"
#include "ps_util.h"
#include "ps_escape.h"

#define PS_CRLF "\r\n"
#define PS_U64  "%" APR_UINT64_T_FMT
#define PS_I64  "%" APR_INT64_T_FMT

/* Item patterns: args (escaped id, pub, stored, subs). */
#define PS_INFO_PLAIN_ITEM "channel: %s" PS_CRLF "published_messages: " \
    PS_U64 PS_CRLF "stored_messages: " PS_U64 PS_CRLF \
    "active_subscribers: " PS_U64 "%s"
#define PS_INFO_JSON_ITEM "{\"channel\": \"%s\", \"published_messages\": " \
    PS_U64 ", \"stored_messages\": " PS_U64 ", \"subscribers\": " PS_U64 "%s}"
#define PS_INFO_YAML_ITEM "  channel: %s" PS_CRLF "  published_messages: " \
    PS_U64 PS_CRLF "  stored_messages: " PS_U64 PS_CRLF \
    "  subscribers: " PS_U64 "%s"
#define PS_INFO_XML_ITEM "<channel>" PS_CRLF "  <name>%s</name>" PS_CRLF \
    "  <published_messages>" PS_U64 "</published_messages>" PS_CRLF \
    "  <stored_messages>" PS_U64 "</stored_messages>" PS_CRLF \
    "  <subscribers>" PS_U64 "</subscribers>" PS_CRLF "%s</channel>" PS_CRLF

/* Worker patterns: args (pid, subscribers, uptime). */
#define PS_INFO_PLAIN_WORKER "  pid: " PS_I64 PS_CRLF "  subscribers: " \
    PS_U64 PS_CRLF "  uptime: " PS_U64
#define PS_INFO_JSON_WORKER "{\"pid\": \"" PS_I64 "\", \"subscribers\": " \
    PS_U64 ", \"uptime\": " PS_U64 "}"
#define PS_INFO_YAML_WORKER "    pid: " PS_I64 PS_CRLF "    subscribers: " \
    PS_U64 PS_CRLF "    uptime: " PS_U64
#define PS_INFO_XML_WORKER "<worker>" PS_CRLF "  <pid>" PS_I64 "</pid>" \
    PS_CRLF "  <subscribers>" PS_U64 "</subscribers>" PS_CRLF \
    "  <uptime>" PS_U64 "</uptime>" PS_CRLF "</worker>" PS_CRLF

#define PS_XML_DECL "<?xml version=\"1.0\" encoding=\"UTF-8\" ?>" PS_CRLF

/* Group heads: args (hostname, time, channels, wildcard, uptime). */
#define PS_INFO_PLAIN_HEAD "hostname: %s, time: %s, channels: " PS_U64 \
    ", wildcard_channels: " PS_U64 ", uptime: " PS_U64 ", infos: " PS_CRLF
#define PS_INFO_JSON_HEAD "{\"hostname\": \"%s\", \"time\": \"%s\", " \
    "\"channels\": " PS_U64 ", \"wildcard_channels\": " PS_U64 \
    ", \"uptime\": " PS_U64 ", \"infos\": [" PS_CRLF
#define PS_INFO_YAML_HEAD "hostname: %s" PS_CRLF "time: %s" PS_CRLF \
    "channels: " PS_U64 PS_CRLF "wildcard_channels: " PS_U64 PS_CRLF \
    "uptime: " PS_U64 PS_CRLF "infos: " PS_CRLF
#define PS_INFO_XML_HEAD PS_XML_DECL "<root>" PS_CRLF \
    "  <hostname>%s</hostname>" PS_CRLF "  <time>%s</time>" PS_CRLF \
    "  <channels>" PS_U64 "</channels>" PS_CRLF \
    "  <wildcard_channels>" PS_U64 "</wildcard_channels>" PS_CRLF \
    "  <uptime>" PS_U64 "</uptime>" PS_CRLF "  <infos>" PS_CRLF

/* Summarized: args (hostname, time, channels, wildcard, published, stored,
 * messages_in_trash, channels_in_delete, channels_in_trash, subscribers,
 * uptime, workers-text). */
#define PS_INFO_PLAIN_SUM "hostname: %s" PS_CRLF "time: %s" PS_CRLF \
    "channels: " PS_U64 PS_CRLF "wildcard_channels: " PS_U64 PS_CRLF \
    "published_messages: " PS_U64 PS_CRLF "stored_messages: " PS_U64 PS_CRLF \
    "messages_in_trash: " PS_U64 PS_CRLF "channels_in_delete: " PS_U64 PS_CRLF \
    "channels_in_trash: " PS_U64 PS_CRLF "subscribers: " PS_U64 PS_CRLF \
    "uptime: " PS_U64 PS_CRLF "%s" "by_worker:" PS_CRLF "%s" PS_CRLF
#define PS_INFO_JSON_SUM "{\"hostname\": \"%s\", \"time\": \"%s\", " \
    "\"channels\": " PS_U64 ", \"wildcard_channels\": " PS_U64 \
    ", \"published_messages\": " PS_U64 ", \"stored_messages\": " PS_U64 \
    ", \"messages_in_trash\": " PS_U64 ", \"channels_in_delete\": " PS_U64 \
    ", \"channels_in_trash\": " PS_U64 ", \"subscribers\": " PS_U64 \
    ", \"uptime\": " PS_U64 "%s" ", \"by_worker\": [" PS_CRLF "%s" PS_CRLF \
    "]}" PS_CRLF
#define PS_INFO_YAML_SUM "  hostname: %s" PS_CRLF "  time: %s" PS_CRLF \
    "  channels: " PS_U64 PS_CRLF "  wildcard_channels: " PS_U64 PS_CRLF \
    "  published_messages: " PS_U64 PS_CRLF \
    "  stored_messages: " PS_U64 PS_CRLF \
    "  messages_in_trash: " PS_U64 PS_CRLF \
    "  channels_in_delete: " PS_U64 PS_CRLF \
    "  channels_in_trash: " PS_U64 PS_CRLF "  subscribers: " PS_U64 PS_CRLF \
    "  uptime: " PS_U64 PS_CRLF "%s" "  by_worker:" PS_CRLF "%s" PS_CRLF
#define PS_INFO_XML_SUM PS_XML_DECL "<infos>" PS_CRLF \
    "  <hostname>%s</hostname>" PS_CRLF "  <time>%s</time>" PS_CRLF \
    "  <channels>" PS_U64 "</channels>" PS_CRLF \
    "  <wildcard_channels>" PS_U64 "</wildcard_channels>" PS_CRLF \
    "  <published_messages>" PS_U64 "</published_messages>" PS_CRLF \
    "  <stored_messages>" PS_U64 "</stored_messages>" PS_CRLF \
    "  <messages_in_trash>" PS_U64 "</messages_in_trash>" PS_CRLF \
    "  <channels_in_delete>" PS_U64 "</channels_in_delete>" PS_CRLF \
    "  <channels_in_trash>" PS_U64 "</channels_in_trash>" PS_CRLF \
    "  <subscribers>" PS_U64 "</subscribers>" PS_CRLF \
    "  <uptime>" PS_U64 "</uptime>" PS_CRLF "%s" \
    "  <by_worker>%s</by_worker>" PS_CRLF "</infos>" PS_CRLF

typedef struct ps_info_shape_t {
    const char *subtype;          /* compared after a '/' of Accept */
    apr_size_t subtype_len;
    ps_fmt_e fmt;
    const char *content_type;
    const char *item;             /* single channel document */
    const char *group_head;
    const char *group_item;       /* every item but the last */
    const char *group_last;
    const char *group_tail;
    const char *sum;
    const char *worker_item;      /* every worker but the last */
    const char *worker_last;
    ps_esc_e esc;                 /* how ids and the host name are written */
} ps_info_shape_t;

/* The fields after the content type of json and x-json, yaml and x-yaml. */
#define PS_INFO_JSON_SHAPE                                                    \
      PS_INFO_JSON_ITEM PS_CRLF, PS_INFO_JSON_HEAD,                           \
      PS_INFO_JSON_ITEM "," PS_CRLF, PS_INFO_JSON_ITEM PS_CRLF, "]}" PS_CRLF, \
      PS_INFO_JSON_SUM, PS_INFO_JSON_WORKER "," PS_CRLF,                      \
      PS_INFO_JSON_WORKER, PS_ESC_JSON
#define PS_INFO_YAML_SHAPE                                                    \
      PS_INFO_YAML_ITEM PS_CRLF, PS_INFO_YAML_HEAD,                           \
      " -" PS_CRLF PS_INFO_YAML_ITEM PS_CRLF, " -" PS_CRLF PS_INFO_YAML_ITEM, \
      PS_CRLF,                                                                \
      PS_INFO_YAML_SUM, "   -" PS_CRLF PS_INFO_YAML_WORKER PS_CRLF,           \
      "   -" PS_CRLF PS_INFO_YAML_WORKER, PS_ESC_YAML

/* In push-stream's matching order. */
static const ps_info_shape_t ps_info_shapes[] = {
    { "plain", 5, PS_FMT_PLAIN, "text/plain",
      PS_INFO_PLAIN_ITEM PS_CRLF, PS_INFO_PLAIN_HEAD,
      PS_INFO_PLAIN_ITEM "," PS_CRLF, PS_INFO_PLAIN_ITEM, PS_CRLF,
      PS_INFO_PLAIN_SUM, PS_INFO_PLAIN_WORKER "," PS_CRLF,
      PS_INFO_PLAIN_WORKER, PS_ESC_PLAIN },
    { "json", 4, PS_FMT_JSON, "application/json",
      PS_INFO_JSON_SHAPE },
    { "yaml", 4, PS_FMT_YAML, "application/yaml",
      PS_INFO_YAML_SHAPE },
    { "xml", 3, PS_FMT_XML, "application/xml",
      PS_XML_DECL PS_INFO_XML_ITEM PS_CRLF, PS_INFO_XML_HEAD,
      PS_INFO_XML_ITEM, PS_INFO_XML_ITEM, "  </infos>" PS_CRLF "</root>" PS_CRLF,
      PS_INFO_XML_SUM, PS_INFO_XML_WORKER, PS_INFO_XML_WORKER, PS_ESC_XML },
    { "x-json", 6, PS_FMT_XJSON, "text/x-json",
      PS_INFO_JSON_SHAPE },
    { "x-yaml", 6, PS_FMT_XYAML, "text/x-yaml",
      PS_INFO_YAML_SHAPE },
};

#define PS_INFO_NSHAPES (sizeof(ps_info_shapes) / sizeof(ps_info_shapes[0]))

static const ps_info_shape_t *ps_info_shape(ps_fmt_e fmt)
{
    apr_size_t i;

    for (i = 0; i < PS_INFO_NSHAPES; i++)
        if (ps_info_shapes[i].fmt == fmt)
            return &ps_info_shapes[i];
    return &ps_info_shapes[1];   /* unknown value: JSON */
}

ps_fmt_e ps_info_format_from_accept(const char *accept,
                                    const char **content_type)
{
    const ps_info_shape_t *found = ps_info_shape(PS_FMT_JSON);
    const char *cur = accept;
    apr_size_t i;

    /* push-stream walks every '/' until one subtype matches. */
    while (cur && (cur = strchr(cur, '/')) != NULL) {
        cur++;
        for (i = 0; i < PS_INFO_NSHAPES; i++) {
            if (strncmp(cur, ps_info_shapes[i].subtype,
                        ps_info_shapes[i].subtype_len) == 0) {
                found = &ps_info_shapes[i];
                cur = NULL;
                break;
            }
        }
    }
    if (content_type)
        *content_type = found->content_type;
    return found->fmt;
}

/* ---- documents ---------------------------------------------------------- */

/* The per-node subscriber counts of an item (several servers), in the
 * format's way; "" without them (the single-server document). */
static const char *ps_info_by_node(apr_pool_t *p, const ps_info_shape_t *sh,
                                   const ps_chinfo_t *ch)
{
    apr_array_header_t *parts;
    int i;

    if (ch->nodes <= 0 || !ch->by_node)
        return "";
    parts = apr_array_make(p, ch->nodes + 2, sizeof(char *));
    switch (sh->fmt) {
    case PS_FMT_PLAIN:
        APR_ARRAY_PUSH(parts, char *) = PS_CRLF "by_node: ";
        break;
    case PS_FMT_YAML:
    case PS_FMT_XYAML:
        APR_ARRAY_PUSH(parts, char *) = PS_CRLF "  by_node:";
        break;
    case PS_FMT_XML:
        APR_ARRAY_PUSH(parts, char *) = "  <by_node>" PS_CRLF;
        break;
    default:
        APR_ARRAY_PUSH(parts, char *) = ", \"by_node\": {";
        break;
    }
    for (i = 0; i < ch->nodes; i++) {
        const char *n = ch->by_node[i].node ? ch->by_node[i].node : "";
        const char *e = ps_esc(p, sh->esc, n, strlen(n), NULL);
        apr_uint64_t v = ch->by_node[i].subscribers;
        const char *sep = i ? ", " : "";
        switch (sh->fmt) {
        case PS_FMT_PLAIN:
            APR_ARRAY_PUSH(parts, char *) =
                apr_psprintf(p, "%s%s=" PS_U64, sep, e, v);
            break;
        case PS_FMT_YAML:
        case PS_FMT_XYAML:
            APR_ARRAY_PUSH(parts, char *) =
                apr_psprintf(p, PS_CRLF "    - node: %s" PS_CRLF
                             "      subscribers: " PS_U64, e, v);
            break;
        case PS_FMT_XML:
            APR_ARRAY_PUSH(parts, char *) =
                apr_psprintf(p, "    <node><name>%s</name><subscribers>"
                             PS_U64 "</subscribers></node>" PS_CRLF, e, v);
            break;
        default:
            APR_ARRAY_PUSH(parts, char *) =
                apr_psprintf(p, "%s\"%s\": " PS_U64, sep, e, v);
            break;
        }
    }
    APR_ARRAY_PUSH(parts, char *) =
        sh->fmt == PS_FMT_XML ? "  </by_node>" PS_CRLF
        : (sh->fmt == PS_FMT_JSON || sh->fmt == PS_FMT_XJSON) ? "}" : "";
    return apr_array_pstrcat(p, parts, '\0');
}

static char *ps_info_item(apr_pool_t *p, const ps_info_shape_t *sh,
                          const char *fmt, const ps_chinfo_t *ch)
{
    return apr_psprintf(p, fmt, ps_esc(p, sh->esc, ch->id, ch->id ? ch->id_len
                                                                   : 0, NULL),
                        ch->published_messages, ch->stored_messages,
                        ch->subscribers, ps_info_by_node(p, sh, ch));
}

static const char *ps_info_host(apr_pool_t *p, const ps_info_shape_t *sh,
                                const char *host)
{
    return ps_esc(p, sh->esc, host, host ? strlen(host) : 0, NULL);
}

static char *ps_info_done(char *doc, apr_size_t *len)
{
    if (len)
        *len = strlen(doc);
    return doc;
}

char *ps_info_single(apr_pool_t *p, ps_fmt_e fmt, const ps_chinfo_t *ch,
                     apr_size_t *len)
{
    const ps_info_shape_t *sh = ps_info_shape(fmt);

    return ps_info_done(ps_info_item(p, sh, sh->item, ch), len);
}

char *ps_info_group(apr_pool_t *p, ps_fmt_e fmt, const ps_info_header_t *h,
                    const ps_chinfo_t *items, int n, apr_size_t *len)
{
    const ps_info_shape_t *sh = ps_info_shape(fmt);
    apr_array_header_t *parts = apr_array_make(p, n > 0 ? n + 2 : 2,
                                               sizeof(char *));
    char now[PS_ISO_TIME_LEN + 1];
    int i;

    if (n < 0)
        n = 0;
    ps_format_iso_time(now, h->now);
    APR_ARRAY_PUSH(parts, char *) =
        apr_psprintf(p, sh->group_head, ps_info_host(p, sh, h->hostname), now,
                     h->channels, h->wildcard_channels, h->uptime);
    for (i = 0; i < n; i++)
        APR_ARRAY_PUSH(parts, char *) =
            ps_info_item(p, sh, i < n - 1 ? sh->group_item : sh->group_last,
                         &items[i]);
    APR_ARRAY_PUSH(parts, char *) = (char *)sh->group_tail;
    return ps_info_done(apr_array_pstrcat(p, parts, '\0'), len);
}

/* The by_worker list, already joined in the format's way. */
static char *ps_info_workers(apr_pool_t *p, const ps_info_shape_t *sh,
                             const ps_info_worker_t *w, int n)
{
    apr_array_header_t *parts;
    int i;

    if (n < 0)
        n = 0;
    parts = apr_array_make(p, n + 1, sizeof(char *));
    for (i = 0; i < n; i++)
        APR_ARRAY_PUSH(parts, char *) =
            apr_psprintf(p, i < n - 1 ? sh->worker_item : sh->worker_last,
                         w[i].pid, w[i].subscribers, w[i].uptime);
    return apr_array_pstrcat(p, parts, '\0');
}

/* PushStreamAuth refusals (only when tokens are checked): args
 * (invalid_token, insufficient_scope). */
static const char *ps_info_auth_fmt(ps_fmt_e fmt)
{
    switch (fmt) {
    case PS_FMT_PLAIN:
        return "auth_invalid_token: " PS_U64 PS_CRLF
               "auth_insufficient_scope: " PS_U64 PS_CRLF;
    case PS_FMT_YAML:
    case PS_FMT_XYAML:
        return "  auth_invalid_token: " PS_U64 PS_CRLF
               "  auth_insufficient_scope: " PS_U64 PS_CRLF;
    case PS_FMT_XML:
        return "  <auth_invalid_token>" PS_U64 "</auth_invalid_token>" PS_CRLF
               "  <auth_insufficient_scope>" PS_U64
               "</auth_insufficient_scope>" PS_CRLF;
    default:
        return ", \"auth_invalid_token\": " PS_U64
               ", \"auth_insufficient_scope\": " PS_U64;
    }
}

char *ps_info_summarized(apr_pool_t *p, ps_fmt_e fmt,
                         const ps_info_summary_t *s,
                         const ps_info_worker_t *workers, int n,
                         apr_size_t *len)
{
    const ps_info_shape_t *sh = ps_info_shape(fmt);
    char now[PS_ISO_TIME_LEN + 1];

    ps_format_iso_time(now, s->now);
    return ps_info_done(
        apr_psprintf(p, sh->sum, ps_info_host(p, sh, s->hostname), now,
                     s->channels, s->wildcard_channels, s->published_messages,
                     s->stored_messages, s->messages_in_trash,
                     s->channels_in_delete, s->channels_in_trash,
                     s->subscribers, s->uptime,
                     s->auth ? apr_psprintf(p, ps_info_auth_fmt(fmt),
                                            s->auth_invalid_token,
                                            s->auth_insufficient_scope) : "",
                     ps_info_workers(p, sh, workers, n)),
        len);
}

char *ps_info_prometheus(apr_pool_t *p, const ps_chinfo_t *items, int n,
                         apr_size_t *len)
{
    static const char *const metric[3][3] = {
        { "published_messages_total", "counter",
          "Messages published to the channel." },
        { "stored_messages", "gauge", "Messages the channel stores." },
        { "subscribers", "gauge", "Subscribers of the channel." },
    };
    apr_array_header_t *parts = apr_array_make(p, 3 * (n + 1), sizeof(char *));
    const char **labels = apr_pcalloc(p, (n > 0 ? n : 1) * sizeof(*labels));
    int i, j, k, nodes = 0;

    for (i = 0; i < n; i++)
        labels[i] = ps_esc(p, PS_ESC_PROM, items[i].id,
                           items[i].id ? items[i].id_len : 0, NULL);
    for (k = 0; k < 3; k++) {
        APR_ARRAY_PUSH(parts, char *) =
            apr_psprintf(p, "# HELP pushstream_channel_%s %s\n"
                         "# TYPE pushstream_channel_%s %s\n", metric[k][0],
                         metric[k][2], metric[k][0], metric[k][1]);
        for (i = 0; i < n; i++) {
            apr_uint64_t v = k == 0 ? items[i].published_messages
                           : k == 1 ? items[i].stored_messages
                                    : items[i].subscribers;
            APR_ARRAY_PUSH(parts, char *) =
                apr_psprintf(p, "pushstream_channel_%s{channel=\"%s\"} "
                             PS_U64 "\n", metric[k][0], labels[i], v);
        }
    }
    /* several servers: each node's share of the subscribers above */
    for (i = 0; i < n; i++)
        nodes += items[i].by_node ? items[i].nodes : 0;
    if (nodes > 0) {
        APR_ARRAY_PUSH(parts, char *) =
            "# HELP pushstream_channel_node_subscribers Subscribers of the "
            "channel on one node.\n"
            "# TYPE pushstream_channel_node_subscribers gauge\n";
        for (i = 0; i < n; i++) {
            for (j = 0; items[i].by_node && j < items[i].nodes; j++) {
                const char *nd = items[i].by_node[j].node
                                 ? items[i].by_node[j].node : "";
                APR_ARRAY_PUSH(parts, char *) =
                    apr_psprintf(p, "pushstream_channel_node_subscribers"
                                 "{channel=\"%s\",node=\"%s\"} " PS_U64 "\n",
                                 labels[i], ps_esc(p, PS_ESC_PROM, nd,
                                                   strlen(nd), NULL),
                                 items[i].by_node[j].subscribers);
            }
        }
    }
    return ps_info_done(apr_array_pstrcat(p, parts, '\0'), len);
}
