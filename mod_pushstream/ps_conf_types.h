/* ps_conf_types.h - the configuration records of mod_pushstream (server,
 * location, publisher port) and their effective values: plain structs that
 * every layer may read.  Below every unit that reads them (publish, Redis,
 * answers, auth, handlers) and below the directives that fill them
 * (ps_directives.c) and the merging and checks (ps_config.c), so reading a
 * record never pulls in the directive table. */
#ifndef PS_CONF_TYPES_H
#define PS_CONF_TYPES_H

#include <httpd.h>
#include <http_config.h>
#include <ap_expr.h>
#include <apr_network_io.h>

#include "psc_conf.h"
#include "ps_store.h"
#include "ps_template.h"
#include "ps_redis_url.h"

typedef enum {
    PS_LOC_NONE = 0,
    PS_LOC_PUBLISHER,
    PS_LOC_SUBSCRIBER,
    PS_LOC_STATISTICS
} ps_loc_kind_e;

typedef enum {
    PS_SUB_STREAMING = 0,
    PS_SUB_POLLING,
    PS_SUB_LONGPOLLING,
    PS_SUB_EVENTSOURCE,
    PS_SUB_WEBSOCKET
} ps_sub_mode_e;

#define PS_UNSET PSC_UNSET

/* Bytes a subscriber may leave unread before it is dropped. */
#define PS_DEFAULT_MAX_BUFFER (1024 * 1024)

struct ps_child_t;
struct ps_jwt_conf_t;
struct ps_auth_src_t;

/* PushStreamAuth of a location. */
typedef enum {
    PS_AUTH_OFF = 0,
    PS_AUTH_SUBSCRIBE,
    PS_AUTH_PUBLISH
} ps_auth_mode_e;

/* Server level (nginx http{}): global or <VirtualHost>. */
typedef struct ps_srv_conf_t {
    apr_off_t shm_size;                    /* main server only; 0 = unset */
    const char *deleted_text;
    const char *ping_text;
    int timeout_with_body;
    apr_int64_t message_ttl;               /* seconds */
    apr_int64_t channel_inactivity;        /* seconds */
    apr_int64_t max_subscribers_per_channel;
    apr_int64_t max_stored_per_channel;
    apr_int64_t max_channel_id_length;
    apr_int64_t max_channels;
    apr_off_t max_message_size;            /* bytes */
    const char *wildcard_prefix;           /* NULL = no wildcard channels */
    apr_int64_t max_wildcard_channels;
    const char *events_channel;            /* NULL = no events channel */
    const char *where_wildcard_max;        /* file:line, for checks */
    ps_limits_t limits;                    /* resolved in post_config */
    apr_size_t padding_max;                /* largest padding of the config */
    struct ps_child_t *child;              /* set in child_init */
    apr_array_header_t *publistens;        /* main server: ps_publisten_t of
                                            * PushStreamPublisherListen */
    struct ps_jwt_conf_t *auth;            /* keys and claim checks (merged,
                                            * ps_auth.c); NULL = no key */
    ps_redis_url_t *redis;                 /* PushStreamRedis, NULL = none
                                            * (one for all servers) */
    apr_interval_time_t redis_timeout;     /* PushStreamRedisTimeout */
} ps_srv_conf_t;

/* Location level. */
typedef struct ps_dir_conf_t {
    int kind;                              /* ps_loc_kind_e */
    int publisher_admin;
    int sub_mode;                          /* ps_sub_mode_e */
    const char *where;                     /* "file:line" of the kind directive */
    ap_expr_info_t *channels_path;
    ap_expr_info_t *last_time;
    ap_expr_info_t *last_tag;
    ap_expr_info_t *last_event_id;
    int store_messages;
    int channel_info_on_publish;
    ps_template_t *header_tpl;
    int header_from_file;
    ps_template_t *message_tpl;
    ps_template_t *footer_tpl;
    apr_interval_time_t ping_interval;     /* usec, PS_UNSET = none */
    apr_interval_time_t subscriber_ttl;
    apr_interval_time_t longpoll_ttl;
    apr_int64_t wildcard_max_qtd;          /* PS_UNSET = inherit */
    const char *wildcard_max_where;
    int authorized_only;
    int allow_events_channel;
    int ws_allow_publish;
    apr_off_t ws_max_frame;                /* PS_UNSET = default */
    apr_off_t max_buffer;                  /* PS_UNSET = PS_DEFAULT_MAX_BUFFER */
    ap_expr_info_t *allowed_origins;
    ap_expr_info_t *user_agent;
    apr_array_header_t *padding;           /* ps_padding_t, NULL = none */
    int auth_mode;                         /* ps_auth_mode_e, PS_UNSET */
    const char *auth_where;                /* file:line of PushStreamAuth */
    const struct ps_auth_src_t *auth_src;  /* NULL = default */
} ps_dir_conf_t;

/* One PushStreamPaddingByUserAgent rule. */
typedef struct ps_padding_t {
    ap_regex_t *ua;
    apr_size_t header_min;
    apr_size_t message_min;
} ps_padding_t;

/* One PushStreamPublisherListen [host:]port (the publisher port, served by
 * ps_pubport.c). */
typedef struct ps_publisten_t {
    const char *addr;              /* as written */
    char *host;
    apr_port_t port;
    const char *where;             /* "file:line" */
    ps_dir_conf_t *loc;            /* the location's own configuration */
    server_rec *s;                 /* the location's server */
    const ps_dir_conf_t *d;        /* loc over the server's (post_config) */
    apr_socket_t *sock;            /* listening (post_config) */
} ps_publisten_t;

extern module AP_MODULE_DECLARE_DATA pushstream_module;

/* Effective values with defaults applied. */
static APR_INLINE const ps_template_t *ps_dir_message_tpl(const ps_dir_conf_t *d)
{
    return d->message_tpl;          /* never NULL after ps_config_finish */
}

static APR_INLINE int ps_dir_store(const ps_dir_conf_t *d)
{
    return d->store_messages == 1;
}

static APR_INLINE int ps_dir_info_on_publish(const ps_dir_conf_t *d)
{
    return d->channel_info_on_publish != 0;
}

static APR_INLINE apr_int64_t ps_dir_wildcard_max(const ps_dir_conf_t *d,
                                                  const ps_srv_conf_t *sc)
{
    return d->wildcard_max_qtd != PS_UNSET ? d->wildcard_max_qtd
                                           : sc->max_wildcard_channels;
}

static APR_INLINE apr_interval_time_t ps_dir_longpoll_ttl(const ps_dir_conf_t *d)
{
    return d->longpoll_ttl != PS_UNSET ? d->longpoll_ttl : d->subscriber_ttl;
}

static APR_INLINE ps_srv_conf_t *ps_srv(const server_rec *s)
{
    return ap_get_module_config(s->module_config, &pushstream_module);
}

static APR_INLINE ps_dir_conf_t *ps_dir(const request_rec *r)
{
    return ap_get_module_config(r->per_dir_config, &pushstream_module);
}

#endif
