/* ps_config.c - creation and merging of the configuration records, the
 * lists the directives (ps_directives.c) leave in pconf, and the checks
 * that need the whole config read (configtest included). */

#include <string.h>

#include <httpd.h>
#include <http_config.h>
#include <http_log.h>
#include <apr_strings.h>
#include <apr_lib.h>

#include "ps_config.h"
#include "ps_util.h"
#include "ps_jwt.h"

APLOG_USE_MODULE(pushstream);

#define PS_PADDING_KEY  "pushstream-padding-max"

/* What the directive handlers learn about the config as a whole; kept as
 * userdata of pconf, so it is fresh on every (re)start. */
typedef struct ps_loc_rec_t {
    ps_dir_conf_t *dconf;
    server_rec *s;
    const char *path;              /* the <Location> argument */
    const char *where;             /* file:line */
} ps_loc_rec_t;

apr_array_header_t *ps_config_list(apr_pool_t *pconf, const char *key,
                                   int elt_size)
{
    void *v = NULL;
    apr_pool_userdata_get(&v, key, pconf);
    if (!v) {
        v = apr_array_make(pconf, 8, elt_size);
        apr_pool_userdata_set(v, key, apr_pool_cleanup_null, pconf);
    }
    return v;
}

static apr_array_header_t *ps_cfg_recs(apr_pool_t *pconf, const char *key)
{
    return ps_config_list(pconf, key, sizeof(ps_loc_rec_t));
}

/* The config-wide largest padding length, kept as pconf userdata. */
apr_size_t *ps_config_padding_slot(apr_pool_t *pconf)
{
    void *v = NULL;
    apr_pool_userdata_get(&v, PS_PADDING_KEY, pconf);
    if (!v) {
        v = apr_pcalloc(pconf, sizeof(apr_size_t));
        apr_pool_userdata_set(v, PS_PADDING_KEY, apr_pool_cleanup_null, pconf);
    }
    return v;
}

apr_size_t ps_config_padding_max(apr_pool_t *pconf)
{
    return *ps_config_padding_slot(pconf);
}

const char *ps_config_where(cmd_parms *cmd)
{
    if (!cmd->directive) {
        return "(command line)";
    }
    return apr_psprintf(cmd->pool, "%s:%d", cmd->directive->filename,
                        cmd->directive->line_num);
}

void ps_config_note(cmd_parms *cmd, const char *key, ps_dir_conf_t *d)
{
    ps_loc_rec_t *rec = apr_array_push(ps_cfg_recs(cmd->pool, key));
    rec->dconf = d;
    rec->s = cmd->server;
    rec->path = cmd->path ? cmd->path : "";
    rec->where = ps_config_where(cmd);
}

/* ---- creation and merging ----------------------------------------------- */

void *ps_create_srv_conf(apr_pool_t *p, server_rec *s)
{
    ps_srv_conf_t *c = apr_pcalloc(p, sizeof(*c));
    c->timeout_with_body = PS_UNSET;
    c->message_ttl = PS_UNSET;
    c->channel_inactivity = PS_UNSET;
    c->max_subscribers_per_channel = PS_UNSET;
    c->max_stored_per_channel = PS_UNSET;
    c->max_channel_id_length = PS_UNSET;
    c->max_channels = PS_UNSET;
    c->max_message_size = PS_UNSET;
    c->max_wildcard_channels = PS_UNSET;
    return c;
}

#define PS_MERGE(f) PSC_MERGE(c, base, add, f)
#define PS_MERGE_PTR(f) c->f = add->f ? add->f : base->f

void *ps_merge_srv_conf(apr_pool_t *p, void *basev, void *addv)
{
    ps_srv_conf_t *base = basev, *add = addv;
    ps_srv_conf_t *c = apr_pcalloc(p, sizeof(*c));

    c->shm_size = base->shm_size;      /* one segment for all */
    PS_MERGE_PTR(deleted_text);
    PS_MERGE_PTR(ping_text);
    PS_MERGE(timeout_with_body);
    PS_MERGE(message_ttl);
    PS_MERGE(channel_inactivity);
    PS_MERGE(max_subscribers_per_channel);
    PS_MERGE(max_stored_per_channel);
    PS_MERGE(max_channel_id_length);
    PS_MERGE(max_channels);
    PS_MERGE(max_message_size);
    PS_MERGE_PTR(wildcard_prefix);
    PS_MERGE(max_wildcard_channels);
    c->events_channel = base->events_channel;   /* one per segment */
    c->auth = ps_jwt_conf_merge(p, base->auth, add->auth);
    c->redis = base->redis;                     /* one per segment */
    c->redis_timeout = base->redis_timeout;
    return c;
}

void *ps_create_dir_conf(apr_pool_t *p, char *dir)
{
    ps_dir_conf_t *d = apr_pcalloc(p, sizeof(*d));
    d->store_messages = PS_UNSET;
    d->channel_info_on_publish = PS_UNSET;
    d->ping_interval = PS_UNSET;
    d->subscriber_ttl = PS_UNSET;
    d->longpoll_ttl = PS_UNSET;
    d->wildcard_max_qtd = PS_UNSET;
    d->authorized_only = PS_UNSET;
    d->allow_events_channel = PS_UNSET;
    d->ws_allow_publish = PS_UNSET;
    d->ws_max_frame = PS_UNSET;
    d->max_buffer = PS_UNSET;
    d->auth_mode = PS_UNSET;
    return d;
}

void *ps_merge_dir_conf(apr_pool_t *p, void *basev, void *addv)
{
    ps_dir_conf_t *base = basev, *add = addv;
    ps_dir_conf_t *c = apr_pcalloc(p, sizeof(*c));

    if (add->kind) {
        c->kind = add->kind;
        c->publisher_admin = add->publisher_admin;
        c->sub_mode = add->sub_mode;
        c->where = add->where;
    }
    else {
        c->kind = base->kind;
        c->publisher_admin = base->publisher_admin;
        c->sub_mode = base->sub_mode;
        c->where = base->where;
    }
    PS_MERGE_PTR(channels_path);
    PS_MERGE_PTR(last_time);
    PS_MERGE_PTR(last_tag);
    PS_MERGE_PTR(last_event_id);
    PS_MERGE(store_messages);
    PS_MERGE(channel_info_on_publish);
    PS_MERGE_PTR(header_tpl);
    PS_MERGE_PTR(message_tpl);
    PS_MERGE_PTR(footer_tpl);
    PS_MERGE(ping_interval);
    PS_MERGE(subscriber_ttl);
    PS_MERGE(longpoll_ttl);
    PS_MERGE(wildcard_max_qtd);
    PS_MERGE_PTR(wildcard_max_where);
    PS_MERGE(authorized_only);
    PS_MERGE(allow_events_channel);
    PS_MERGE(ws_allow_publish);
    PS_MERGE(ws_max_frame);
    PS_MERGE(max_buffer);
    PS_MERGE_PTR(allowed_origins);
    PS_MERGE_PTR(user_agent);
    PS_MERGE_PTR(padding);
    PS_MERGE(auth_mode);
    PS_MERGE_PTR(auth_where);
    PS_MERGE_PTR(auth_src);
    return c;
}

/* ---- PushStreamPublisherListen (served by ps_pubport.c) -------------------- */

#define PS_PUBLISTEN_KEY "pushstream-publisher-listen"

apr_array_header_t *ps_config_publistens(apr_pool_t *pconf)
{
    return ps_config_list(pconf, PS_PUBLISTEN_KEY, sizeof(ps_publisten_t));
}

/* ---- whole-config checks ----------------------------------------------------------- */

int ps_config_in_use(apr_pool_t *pconf)
{
    void *v = NULL;
    apr_pool_userdata_get(&v, PS_LOCS_KEY, pconf);
    return v && ((apr_array_header_t *)v)->nelts > 0;
}

static ps_dir_conf_t *ps_server_defaults(server_rec *s)
{
    return ap_get_module_config(s->lookup_defaults, &pushstream_module);
}

/* Is a channels path in effect for rec?  Its own, the server's, or one of
 * a section whose path contains this one (how Apache merges <Location>s). */
static int ps_has_channels_path(const ps_loc_rec_t *rec, server_rec *main_s,
                                apr_array_header_t *paths)
{
    int i;

    if (rec->dconf->channels_path
        || ps_server_defaults(rec->s)->channels_path
        || ps_server_defaults(main_s)->channels_path) {
        return 1;
    }
    for (i = 0; i < paths->nelts; i++) {
        const ps_loc_rec_t *p = &APR_ARRAY_IDX(paths, i, ps_loc_rec_t);
        if ((p->s == rec->s || p->s == main_s)
            && !strncmp(rec->path, p->path, strlen(p->path))) {
            return 1;
        }
    }
    return 0;
}

/* PushStreamWildcardChannelMaxQtd needs a prefix and must not exceed
 * PushStreamMaxNumberOfWildcardChannels. */
static int ps_check_wildcard(apr_pool_t *pconf, server_rec *main_s)
{
    apr_array_header_t *recs = ps_cfg_recs(pconf, PS_WILDCARD_KEY);
    int i, bad = 0;

    for (i = 0; i < recs->nelts; i++) {
        const ps_loc_rec_t *rec = &APR_ARRAY_IDX(recs, i, ps_loc_rec_t);
        ps_srv_conf_t *sc = ps_srv(rec->s);
        const char *prefix = sc->wildcard_prefix ? sc->wildcard_prefix
                             : ps_srv(main_s)->wildcard_prefix;
        apr_int64_t max = sc->max_wildcard_channels != PS_UNSET
                          ? sc->max_wildcard_channels
                          : ps_srv(main_s)->max_wildcard_channels;
        if (!prefix || !*prefix) {
            ap_log_error(APLOG_MARK, APLOG_STARTUP | APLOG_EMERG, 0, main_s,
                         "PS0015: cannot set wildcard channel max qtd if "
                         "PushStreamWildcardChannelPrefix is not set or blank. "
                         "(PushStreamWildcardChannelMaxQtd at %s)", rec->where);
            bad = 1;
        }
        else if (max != PS_UNSET && max < rec->dconf->wildcard_max_qtd) {
            ap_log_error(APLOG_MARK, APLOG_STARTUP | APLOG_EMERG, 0, main_s,
                         "PS0016: max number of wildcard channels cannot be "
                         "smaller than value in PushStreamWildcardChannelMaxQtd. "
                         "(PushStreamWildcardChannelMaxQtd at %s)", rec->where);
            bad = 1;
        }
    }
    return bad;
}

int ps_config_check(apr_pool_t *pconf, server_rec *s)
{
    apr_array_header_t *locs = ps_cfg_recs(pconf, PS_LOCS_KEY);
    apr_array_header_t *paths = ps_cfg_recs(pconf, PS_PATHS_KEY);
    int i, bad = 0;

    if (locs->nelts == 0) {
        if (bad) {
            return HTTP_INTERNAL_SERVER_ERROR;
        }
        ap_log_error(APLOG_MARK, APLOG_INFO, 0, s, "PS0001: mod_pushstream "
                     "will not be used with this configuration");
        return OK;
    }
    if (!ps_srv(s)->shm_size) {
        ap_log_error(APLOG_MARK, APLOG_STARTUP | APLOG_EMERG, 0, s,
                     "PS0002: PushStreamSharedMemorySize must be set. (needed "
                     "by the PushStream location at %s)",
                     APR_ARRAY_IDX(locs, 0, ps_loc_rec_t).where);
        bad = 1;
    }
    for (i = 0; i < locs->nelts; i++) {
        const ps_loc_rec_t *rec = &APR_ARRAY_IDX(locs, i, ps_loc_rec_t);
        if (!ps_has_channels_path(rec, s, paths)) {
            ap_log_error(APLOG_MARK, APLOG_STARTUP | APLOG_EMERG, 0, s,
                         "PS0003: PushStreamChannelsPath must be set. (in the "
                         "PushStream location \"%s\" at %s)", rec->path,
                         rec->where);
            bad = 1;
        }
    }
    bad |= ps_check_wildcard(pconf, s);
    return bad ? HTTP_INTERNAL_SERVER_ERROR : OK;
}

/* Defaults of nginx-push-stream where nothing was configured. */
static void ps_srv_finish(ps_srv_conf_t *c, apr_size_t shm_size)
{
    if (!c->deleted_text) {
        c->deleted_text = "Channel deleted";
    }
    if (!c->ping_text) {
        c->ping_text = " ";
    }
    if (c->timeout_with_body == PS_UNSET) {
        c->timeout_with_body = 0;
    }
    if (!c->redis_timeout) {
        c->redis_timeout = apr_time_from_sec(2);
    }
    c->limits.message_ttl = c->message_ttl != PS_UNSET ? c->message_ttl : 1800;
    c->limits.channel_inactivity = c->channel_inactivity != PS_UNSET
                                   ? c->channel_inactivity : 30;
    c->limits.max_subscribers_per_channel =
        c->max_subscribers_per_channel != PS_UNSET
        ? (apr_uint64_t)c->max_subscribers_per_channel : 0;
    c->limits.max_stored_per_channel = c->max_stored_per_channel != PS_UNSET
        ? (apr_uint64_t)c->max_stored_per_channel : 0;
    c->limits.max_channels = c->max_channels != PS_UNSET
        ? (apr_uint64_t)c->max_channels : 0;
    c->limits.max_wildcard_channels = c->max_wildcard_channels != PS_UNSET
        ? (apr_uint64_t)c->max_wildcard_channels : 0;
    if (c->max_message_size == PS_UNSET) {
        /* default: whatever the segment could hold at all */
        c->max_message_size = (apr_off_t)(shm_size / 2);
    }
}

void ps_config_finish(apr_pool_t *pconf, server_rec *s)
{
    apr_size_t shm_size = (apr_size_t)ps_srv(s)->shm_size;
    for (; s; s = s->next) {
        ps_srv_finish(ps_srv(s), shm_size);
        ps_srv(s)->padding_max = ps_config_padding_max(pconf);
    }
}
