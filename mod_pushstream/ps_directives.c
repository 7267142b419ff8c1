/* ps_directives.c - the PushStream* directives: argument parsing and
 * checks of each one, and the table (ps_cmds) naming them, the
 * PushStreamAuth* ones (ps_auth.c) included.
 *
 * nginx push_stream_foo_bar is PushStreamFooBar here, with the same
 * arguments (nginx time strings and sizes) and the same config-time errors,
 * reported by `apachectl configtest` with the directive and file:line. */

#include <string.h>

#include <httpd.h>
#include <http_config.h>
#include <http_log.h>
#include <apr_strings.h>
#include <apr_lib.h>

#include "ps_directives.h"
#include "ps_config.h"
#include "ps_util.h"
#include "ps_auth.h"

APLOG_USE_MODULE(pushstream);

/* ---- PushStreamPublisherListen (served by ps_pubport.c) -------------------- */

static const char *ps_set_publisher_listen(cmd_parms *cmd, void *mconfig,
                                           const char *arg)
{
    ps_publisten_t *l;
    char *host = NULL, *scope = NULL;
    apr_port_t port = 0;

    if (!cmd->path) {
        return apr_pstrcat(cmd->pool, cmd->cmd->name, " must be inside the "
                           "<Location> of a PushStreamPublisher", NULL);
    }
    if (apr_parse_addr_port(&host, &scope, &port, arg, cmd->pool)
        != APR_SUCCESS || !port || scope) {
        return apr_pstrcat(cmd->pool, cmd->cmd->name, ": \"", arg, "\" is "
                           "not [host:]port (e.g. 127.0.0.1:9080)", NULL);
    }
    l = apr_array_push(ps_config_publistens(cmd->pool));
    memset(l, 0, sizeof(*l));
    l->addr = arg;
    /* No host: the loopback, not every interface (a publisher port has no
     * access control of httpd's). */
    l->host = host ? host : "127.0.0.1";
    l->port = port;
    l->where = ps_config_where(cmd);
    l->loc = mconfig;
    l->s = cmd->server;
    return NULL;
}

/* ---- argument helpers -------------------------------------------------------- */

static const char *ps_arg_time(cmd_parms *cmd, const char *arg,
                               apr_interval_time_t *out, int zero_ok)
{
    apr_interval_time_t t;

    if (psc_parse_time(arg, &t) != APR_SUCCESS) {
        return apr_psprintf(cmd->pool, "%s: invalid time value \"%s\" "
                             "(examples: 30s, 5m, 1h, 500ms)",
                             cmd->cmd->name, arg);
    }
    if (t == 0 && !zero_ok) {
        return apr_psprintf(cmd->pool, "%s cannot be zero.", cmd->cmd->name);
    }
    *out = t;
    return NULL;
}

static const char *ps_arg_count(cmd_parms *cmd, const char *arg,
                                apr_int64_t *out)
{
    apr_uint64_t v;

    if (ps_parse_uint(arg, &v) != APR_SUCCESS || v > APR_INT64_MAX) {
        return apr_psprintf(cmd->pool, "%s: \"%s\" is not a number",
                            cmd->cmd->name, arg);
    }
    if (v == 0) {
        return apr_psprintf(cmd->pool, "%s cannot be zero.", cmd->cmd->name);
    }
    *out = (apr_int64_t)v;
    return NULL;
}

static const char *ps_arg_flag(cmd_parms *cmd, const char *arg, int *out)
{
    if (!strcasecmp(arg, "on")) {
        *out = 1;
    }
    else if (!strcasecmp(arg, "off")) {
        *out = 0;
    }
    else {
        return apr_psprintf(cmd->pool, "%s must be On or Off", cmd->cmd->name);
    }
    return NULL;
}

/* nginx reads \n, \r, \t and \\ in quoted strings; Apache does not, so
 * templates written for nginx need it here.  *len = decoded length. */
static char *ps_arg_unescape(apr_pool_t *p, const char *s, apr_size_t *len)
{
    char *out = apr_palloc(p, strlen(s) + 1), *o = out;

    for (; *s; s++) {
        if (*s == '\\' && s[1]) {
            switch (s[1]) {
            case 'n':  *o++ = '\n'; s++; continue;
            case 'r':  *o++ = '\r'; s++; continue;
            case 't':  *o++ = '\t'; s++; continue;
            case '\\': *o++ = '\\'; s++; continue;
            }
        }
        *o++ = *s;
    }
    *o = '\0';
    *len = (apr_size_t)(o - out);
    return out;
}

/* Exactly one argument from a RAW_ARGS directive, which may be an empty
 * quoted string ("") — TAKE1 refuses those, nginx accepts them. */
static const char *ps_raw_one(cmd_parms *cmd, const char *args,
                              const char **out)
{
    const char *rest = args;
    const char *w;

    while (apr_isspace(*rest)) {
        rest++;
    }
    if (!*rest) {
        return apr_psprintf(cmd->pool, "%s takes one argument",
                            cmd->cmd->name);
    }
    w = ap_getword_conf(cmd->pool, &rest);
    while (apr_isspace(*rest)) {
        rest++;
    }
    if (*rest) {
        return apr_psprintf(cmd->pool, "%s takes one argument",
                            cmd->cmd->name);
    }
    *out = w;
    return NULL;
}

/* ---- server-level directives --------------------------------------------------- */

/* PushStreamRedis redis://[:password@]host[:port][/db] | unix:/path */
static const char *ps_set_redis(cmd_parms *cmd, void *mconfig,
                                const char *arg)
{
    ps_srv_conf_t *c = ps_srv(cmd->server);
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);
    ps_redis_url_t *u = apr_pcalloc(cmd->pool, sizeof(*u));

    if (err) {
        return err;
    }
    err = ps_redis_url_parse(cmd->pool, arg, u);
    if (err) {
        return apr_psprintf(cmd->pool, "PushStreamRedis: invalid address "
                            "\"%s\" at %s: %s (examples: "
                            "redis://127.0.0.1:6379/0, "
                            "redis://:password@host:6379, "
                            "unix:/run/redis/redis.sock)", arg,
                            ps_config_where(cmd), err);
    }
    c->redis = u;
    return NULL;
}

/* PushStreamRedisTimeout: connect, send and answer limit of one Redis call
 * (default 2s). */
static const char *ps_set_redis_timeout(cmd_parms *cmd, void *mconfig,
                                        const char *arg)
{
    ps_srv_conf_t *c = ps_srv(cmd->server);
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);
    apr_interval_time_t t = 0;

    if (err || (err = ps_arg_time(cmd, arg, &t, 0)) != NULL) {
        return err;
    }
    if (t < apr_time_from_msec(10) || t > apr_time_from_sec(60)) {
        return apr_psprintf(cmd->pool, "PushStreamRedisTimeout: \"%s\" at "
                            "%s must be between 10ms and 60s", arg,
                            ps_config_where(cmd));
    }
    c->redis_timeout = t;
    return NULL;
}

static const char *ps_set_shm_size(cmd_parms *cmd, void *mconfig,
                                   const char *size, const char *name)
{
    ps_srv_conf_t *c = ps_srv(cmd->server);
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);
    apr_off_t v;

    if (err) {
        return err;
    }
    if (psc_parse_size(size, &v) != APR_SUCCESS) {
        return apr_psprintf(cmd->pool, "PushStreamSharedMemorySize: invalid "
                            "size \"%s\" (examples: 32M, 512k)", size);
    }
    if ((apr_size_t)v < ps_store_min_size()) {
        return "PushStreamSharedMemorySize value must be at least 128KiB";
    }
    c->shm_size = v;
    return NULL;
}

static const char *ps_set_srv_str(cmd_parms *cmd, void *mconfig,
                                  const char *args)
{
    ps_srv_conf_t *c = ps_srv(cmd->server);
    apr_size_t len;
    const char *arg;
    const char *err = ps_raw_one(cmd, args, &arg);
    char *v;

    if (err) {
        return err;
    }
    v = ps_arg_unescape(cmd->pool, arg, &len);

    if (cmd->info == (void *)0) {
        c->deleted_text = v;
    }
    else {
        c->ping_text = v;
    }
    return NULL;
}

static const char *ps_set_timeout_with_body(cmd_parms *cmd, void *mconfig,
                                            const char *arg)
{
    return ps_arg_flag(cmd, arg, &ps_srv(cmd->server)->timeout_with_body);
}

/* Seconds-valued server times; info: 0 message ttl, 1 channel inactivity. */
static const char *ps_set_srv_time(cmd_parms *cmd, void *mconfig,
                                   const char *arg)
{
    ps_srv_conf_t *c = ps_srv(cmd->server);
    apr_interval_time_t t = 0;
    const char *err = ps_arg_time(cmd, arg, &t, cmd->info != (void *)0);
    apr_int64_t secs;

    if (err) {
        return err;
    }
    secs = (apr_int64_t)apr_time_sec(t + APR_USEC_PER_SEC - 1);
    if (cmd->info == (void *)0) {
        c->message_ttl = secs;
    }
    else {
        c->channel_inactivity = secs;
    }
    return NULL;
}

static const char *ps_set_srv_count(cmd_parms *cmd, void *mconfig,
                                    const char *arg)
{
    ps_srv_conf_t *c = ps_srv(cmd->server);
    apr_int64_t *field = (apr_int64_t *)((char *)c + (apr_size_t)cmd->info);
    return ps_arg_count(cmd, arg, field);
}

static const char *ps_set_max_message_size(cmd_parms *cmd, void *mconfig,
                                           const char *arg)
{
    apr_off_t v;

    if (psc_parse_size(arg, &v) != APR_SUCCESS) {
        return apr_psprintf(cmd->pool, "PushStreamMaxMessageSize: invalid "
                            "size \"%s\"", arg);
    }
    if (v == 0) {
        return "PushStreamMaxMessageSize cannot be zero.";
    }
    ps_srv(cmd->server)->max_message_size = v;
    return NULL;
}

/* ---- location directives --------------------------------------------------------- */

static const char *ps_set_kind(cmd_parms *cmd, ps_dir_conf_t *d, int kind)
{
    if (d->kind) {
        return apr_psprintf(cmd->pool, "%s directive is duplicate",
                            cmd->cmd->name);
    }
    d->kind = kind;
    d->where = ps_config_where(cmd);
    ps_config_note(cmd, PS_LOCS_KEY, d);
    return NULL;
}

static const char *ps_set_publisher(cmd_parms *cmd, void *mconfig,
                                    const char *args)
{
    ps_dir_conf_t *d = mconfig;
    const char *rest = args, *mode = NULL;

    while (apr_isspace(*rest)) {
        rest++;
    }
    if (*rest) {
        const char *err = ps_raw_one(cmd, rest, &mode);
        if (err) {
            return err;
        }
        if (strcasecmp(mode, "normal") && strcasecmp(mode, "admin")) {
            return apr_psprintf(cmd->pool, "invalid PushStreamPublisher mode "
                                "value: %s, accepted values (normal, admin)",
                                mode);
        }
    }
    d->publisher_admin = mode && !strcasecmp(mode, "admin");
    return ps_set_kind(cmd, d, PS_LOC_PUBLISHER);
}

static const char *const ps_sub_modes[] = {
    "streaming", "polling", "long-polling", "eventsource", "websocket", NULL
};

static const char *ps_set_subscriber(cmd_parms *cmd, void *mconfig,
                                     const char *args)
{
    ps_dir_conf_t *d = mconfig;
    const char *rest = args, *mode;
    int i;

    while (apr_isspace(*rest)) {
        rest++;
    }
    d->sub_mode = PS_SUB_STREAMING;
    if (*rest) {
        /* an empty "" is an invalid mode, not the default */
        const char *err = ps_raw_one(cmd, rest, &mode);
        if (err) {
            return err;
        }
        for (i = 0; ps_sub_modes[i]; i++) {
            if (!strcasecmp(mode, ps_sub_modes[i])) {
                break;
            }
        }
        if (!ps_sub_modes[i]) {
            return apr_psprintf(cmd->pool, "invalid PushStreamSubscriber mode "
                                "value: %s, accepted values (streaming, "
                                "polling, long-polling, eventsource, "
                                "websocket)", mode);
        }
        d->sub_mode = i;
    }
    return ps_set_kind(cmd, d, PS_LOC_SUBSCRIBER);
}

static const char *ps_set_statistics(cmd_parms *cmd, void *mconfig)
{
    return ps_set_kind(cmd, mconfig, PS_LOC_STATISTICS);
}

/* Expressions; info: 0 channels path, 1 time, 2 tag, 3 event id,
 * 4 allowed origins, 5 user agent. */
static const char *ps_set_expr(cmd_parms *cmd, void *mconfig, const char *arg)
{
    ps_dir_conf_t *d = mconfig;
    const char *err = NULL;
    ap_expr_info_t *e = ap_expr_parse_cmd(cmd, arg, AP_EXPR_FLAG_STRING_RESULT,
                                          &err, NULL);

    if (err) {
        return apr_psprintf(cmd->pool, "%s: cannot parse expression \"%s\": %s",
                            cmd->cmd->name, arg, err);
    }
    switch ((int)(apr_size_t)cmd->info) {
    case 0:
        d->channels_path = e;
        if (cmd->path) {
            ps_config_note(cmd, PS_PATHS_KEY, d);
        }
        break;
    case 1: d->last_time = e; break;
    case 2: d->last_tag = e; break;
    case 3: d->last_event_id = e; break;
    case 4: d->allowed_origins = e; break;
    default: d->user_agent = e; break;
    }
    return NULL;
}

static const char *ps_set_dir_flag(cmd_parms *cmd, void *mconfig,
                                   const char *arg)
{
    ps_dir_conf_t *d = mconfig;
    return ps_arg_flag(cmd, arg, cmd->info == (void *)0
                                 ? &d->store_messages
                                 : &d->channel_info_on_publish);
}

/* Templates; info: 0 header, 1 message, 2 footer. */
static const char *ps_set_template(cmd_parms *cmd, void *mconfig,
                                   const char *args)
{
    ps_dir_conf_t *d = mconfig;
    apr_size_t len;
    const char *arg;
    const char *err = ps_raw_one(cmd, args, &arg);
    ps_template_t *t;
    apr_size_t i;
    char *v;

    if (err) {
        return err;
    }
    v = ps_arg_unescape(cmd->pool, arg, &len);

    if (cmd->info == (void *)1) {
        for (i = 0; i < len && apr_isspace(v[i]); i++) {
        }
        if (i == len) {
            return "PushStreamMessageTemplate cannot be blank.";
        }
    }
    t = ps_template_compile(cmd->pool, v, len);
    switch ((int)(apr_size_t)cmd->info) {
    case 0:
        if (d->header_tpl) {
            return d->header_from_file
                   ? "\"PushStreamHeaderTemplateFile\" directive is duplicate "
                     "or template set by 'PushStreamHeaderTemplate'"
                   : "\"PushStreamHeaderTemplate\" directive is duplicate";
        }
        d->header_tpl = t;
        break;
    case 1: d->message_tpl = t; break;
    default: d->footer_tpl = t; break;
    }
    return NULL;
}

/* Location times; info: 0 ping, 1 subscriber ttl, 2 long-polling ttl. */
static const char *ps_set_dir_time(cmd_parms *cmd, void *mconfig,
                                   const char *arg)
{
    ps_dir_conf_t *d = mconfig;
    apr_interval_time_t *field = cmd->info == (void *)0 ? &d->ping_interval
                                 : cmd->info == (void *)1 ? &d->subscriber_ttl
                                 : &d->longpoll_ttl;
    return ps_arg_time(cmd, arg, field, 0);
}

/* Server strings; info: 0 wildcard prefix, 1 events channel id. */
static const char *ps_set_srv_name(cmd_parms *cmd, void *mconfig,
                                   const char *arg)
{
    ps_srv_conf_t *c = ps_srv(cmd->server);

    if (cmd->info == (void *)0) {
        c->wildcard_prefix = arg;
    }
    else {
        c->events_channel = arg;
    }
    return NULL;
}

static const char *ps_set_wildcard_max(cmd_parms *cmd, void *mconfig,
                                       const char *arg)
{
    ps_dir_conf_t *d = mconfig;
    const char *err = ps_arg_count(cmd, arg, &d->wildcard_max_qtd);

    if (!err) {
        d->wildcard_max_where = ps_config_where(cmd);
        ps_config_note(cmd, PS_WILDCARD_KEY, d);
    }
    return err;
}

/* More location flags; info: 0 authorized only, 1 events channel,
 * 2 websocket publish. */
static const char *ps_set_dir_flag2(cmd_parms *cmd, void *mconfig,
                                    const char *arg)
{
    ps_dir_conf_t *d = mconfig;
    int *field = cmd->info == (void *)0 ? &d->authorized_only
                 : cmd->info == (void *)1 ? &d->allow_events_channel
                 : &d->ws_allow_publish;
    return ps_arg_flag(cmd, arg, field);
}

/* Location sizes; info: 0 WebSocket max frame, 1 subscriber max buffer. */
static const char *ps_set_dir_size(cmd_parms *cmd, void *mconfig,
                                   const char *arg)
{
    ps_dir_conf_t *d = mconfig;
    apr_off_t v;

    if (psc_parse_size(arg, &v) != APR_SUCCESS) {
        return apr_psprintf(cmd->pool, "%s: invalid size \"%s\"",
                            cmd->cmd->name, arg);
    }
    if (v == 0) {
        return apr_psprintf(cmd->pool, "%s cannot be zero.", cmd->cmd->name);
    }
    if (cmd->info == (void *)0) {
        d->ws_max_frame = v;
    }
    else {
        d->max_buffer = v;
    }
    return NULL;
}

/* "regex,header_min,message_min[:regex,h,m...]": the whole value must have
 * that shape (else "not match"), then each regex must compile. */
static const char *ps_set_padding(cmd_parms *cmd, void *mconfig,
                                  const char *arg)
{
    ps_dir_conf_t *d = mconfig;
    apr_array_header_t *rules = apr_array_make(cmd->pool, 2,
                                               sizeof(ps_padding_t));
    apr_size_t *max = ps_config_padding_slot(cmd->pool);
    char *all = apr_pstrdup(cmd->pool, arg), *rule, *last = NULL;
    int pass;

    for (pass = 0; pass < 2; pass++) {
        const char *rest = arg;
        apr_cpystrn(all, arg, strlen(arg) + 1);
        for (rule = apr_strtok(all, ":", &last); rule;
             rule = apr_strtok(NULL, ":", &last)) {
            char *c1, *c2;
            ps_padding_t *p;
            /* the rule's shape: core code (ps_util.c), tested and fuzzed */
            if (!ps_padding_rule_split(rule, &c1, &c2)) {
                return apr_psprintf(cmd->pool, "padding pattern not match the "
                                    "value %s", arg);
            }
            if (pass == 0) {
                continue;
            }
            *c1 = *c2 = '\0';
            p = apr_array_push(rules);
            p->ua = ap_pregcomp(cmd->pool, rule, AP_REG_EXTENDED);
            if (!p->ua) {
                return apr_psprintf(cmd->pool, "error applying padding pattern "
                                    "to %s", rest);
            }
            p->header_min = (apr_size_t)apr_atoi64(c1 + 1);
            p->message_min = (apr_size_t)apr_atoi64(c2 + 1);
            *max = p->header_min > *max ? p->header_min : *max;
            *max = p->message_min > *max ? p->message_min : *max;
            rest = strchr(rest, ':') ? strchr(rest, ':') + 1 : "";
        }
    }
    if (!rules->nelts) {
        return apr_psprintf(cmd->pool, "padding pattern not match the value %s",
                            arg);
    }
    d->padding = rules;
    return NULL;
}

static const char *ps_set_header_file(cmd_parms *cmd, void *mconfig,
                                      const char *arg)
{
    ps_dir_conf_t *d = mconfig;
    const char *path = ap_server_root_relative(cmd->pool, arg);
    apr_file_t *f;
    apr_finfo_t fi;
    apr_size_t len;
    char *buf;

    if (d->header_tpl) {
        return "\"PushStreamHeaderTemplateFile\" directive is duplicate or "
               "template set by 'PushStreamHeaderTemplate'";
    }
    if (!path || apr_file_open(&f, path, APR_READ, 0, cmd->pool) != APR_SUCCESS
        || apr_file_info_get(&fi, APR_FINFO_SIZE, f) != APR_SUCCESS) {
        return apr_psprintf(cmd->pool, "unable to open file \"%s\" for header "
                            "template", arg);
    }
    len = (apr_size_t)fi.size;
    buf = apr_palloc(cmd->pool, len + 1);
    if (apr_file_read_full(f, buf, len, &len) != APR_SUCCESS && len == 0
        && fi.size) {
        apr_file_close(f);
        return apr_psprintf(cmd->pool, "unable to read file \"%s\" for header "
                            "template", arg);
    }
    apr_file_close(f);
    d->header_tpl = ps_template_compile(cmd->pool, buf, len);
    d->header_from_file = 1;
    return NULL;
}

#define PS_SRV_OFF(f) ((void *)APR_OFFSETOF(ps_srv_conf_t, f))
#define PS_LOC (ACCESS_CONF)
#define PS_ANY (RSRC_CONF | ACCESS_CONF)

const command_rec ps_cmds[] = {
    AP_INIT_TAKE1("PushStreamRedis", ps_set_redis, NULL, RSRC_CONF,
        "redis://[:password@]host[:port][/db] or unix:/path: channels and "
        "stored messages live in this Redis, shared by several servers"),
    AP_INIT_TAKE1("PushStreamRedisTimeout", ps_set_redis_timeout, NULL,
        RSRC_CONF, "longest wait for Redis in one call (default 2s)"),
    AP_INIT_TAKE12("PushStreamSharedMemorySize", ps_set_shm_size, NULL,
        RSRC_CONF, "size of the shared memory holding channels and messages"),
    AP_INIT_RAW_ARGS("PushStreamChannelDeletedMessageText", ps_set_srv_str,
        (void *)0, RSRC_CONF, "text sent to subscribers of a deleted channel"),
    AP_INIT_RAW_ARGS("PushStreamPingMessageText", ps_set_srv_str, (void *)1,
        RSRC_CONF, "text of ping messages"),
    AP_INIT_TAKE1("PushStreamTimeoutWithBody", ps_set_timeout_with_body, NULL,
        RSRC_CONF, "On: a long-poll that times out gets 200 + a message"),
    AP_INIT_TAKE1("PushStreamMessageTtl", ps_set_srv_time, (void *)0,
        RSRC_CONF, "how long stored messages are kept"),
    AP_INIT_TAKE1("PushStreamChannelInactivityTime", ps_set_srv_time,
        (void *)1, RSRC_CONF, "idle time after which an empty channel goes"),
    AP_INIT_TAKE1("PushStreamMaxSubscribersPerChannel", ps_set_srv_count,
        PS_SRV_OFF(max_subscribers_per_channel), RSRC_CONF,
        "subscribers allowed on one channel"),
    AP_INIT_TAKE1("PushStreamMaxMessagesStoredPerChannel", ps_set_srv_count,
        PS_SRV_OFF(max_stored_per_channel), RSRC_CONF,
        "stored messages kept per channel"),
    AP_INIT_TAKE1("PushStreamMaxChannelIdLength", ps_set_srv_count,
        PS_SRV_OFF(max_channel_id_length), RSRC_CONF,
        "longest channel id accepted"),
    AP_INIT_TAKE1("PushStreamMaxNumberOfChannels", ps_set_srv_count,
        PS_SRV_OFF(max_channels), RSRC_CONF, "channels allowed"),
    AP_INIT_TAKE1("PushStreamMaxMessageSize", ps_set_max_message_size, NULL,
        RSRC_CONF, "largest message body accepted (413 above)"),
    AP_INIT_TAKE1("PushStreamWildcardChannelPrefix", ps_set_srv_name,
        (void *)0, RSRC_CONF, "ids starting with this are wildcard channels"),
    AP_INIT_TAKE1("PushStreamMaxNumberOfWildcardChannels", ps_set_srv_count,
        PS_SRV_OFF(max_wildcard_channels), RSRC_CONF,
        "wildcard channels allowed"),
    AP_INIT_TAKE1("PushStreamEventsChannelId", ps_set_srv_name, (void *)1,
        RSRC_CONF, "id of the channel receiving channel/subscriber events"),

    AP_INIT_RAW_ARGS("PushStreamPublisher", ps_set_publisher, NULL, PS_LOC,
        "makes the location a publisher: normal (default) or admin"),
    AP_INIT_TAKE1("PushStreamPublisherListen", ps_set_publisher_listen, NULL, PS_LOC,
        "also serve this publisher location on [host:]port (default host "
        "127.0.0.1) from each child's event loop, without httpd's request "
        "processing; channels from ?id="),
    AP_INIT_RAW_ARGS("PushStreamSubscriber", ps_set_subscriber, NULL, PS_LOC,
        "makes the location a subscriber: streaming (default), polling, "
        "long-polling, eventsource or websocket"),
    AP_INIT_NO_ARGS("PushStreamChannelsStatistics", ps_set_statistics, NULL,
        PS_LOC, "makes the location a statistics endpoint"),
    AP_INIT_TAKE1("PushStreamChannelsPath", ps_set_expr, (void *)0, PS_ANY,
        "expression giving the channel path, e.g. \"%{arg:id}\""),
    AP_INIT_TAKE1("PushStreamLastReceivedMessageTime", ps_set_expr, (void *)1,
        PS_ANY, "expression used instead of If-Modified-Since"),
    AP_INIT_TAKE1("PushStreamLastReceivedMessageTag", ps_set_expr, (void *)2,
        PS_ANY, "expression used instead of If-None-Match"),
    AP_INIT_TAKE1("PushStreamLastEventId", ps_set_expr, (void *)3, PS_ANY,
        "expression used instead of Last-Event-Id"),
    AP_INIT_TAKE1("PushStreamStoreMessages", ps_set_dir_flag, (void *)0,
        PS_ANY, "On: publishers store messages for later subscribers"),
    AP_INIT_TAKE1("PushStreamChannelInfoOnPublish", ps_set_dir_flag,
        (void *)1, PS_ANY, "Off: publish answers have an empty body"),
    AP_INIT_RAW_ARGS("PushStreamHeaderTemplate", ps_set_template, (void *)0,
        PS_ANY, "text sent to a subscriber after the headers"),
    AP_INIT_RAW_ARGS("PushStreamMessageTemplate", ps_set_template, (void *)1,
        PS_ANY, "format of each message (~text~, ~id~, ~channel~ ...)"),
    AP_INIT_RAW_ARGS("PushStreamFooterTemplate", ps_set_template, (void *)2,
        PS_ANY, "text sent before the server closes a subscriber"),
    AP_INIT_TAKE1("PushStreamPingMessageInterval", ps_set_dir_time, (void *)0,
        PS_ANY, "keep-alive ping interval"),
    AP_INIT_TAKE1("PushStreamSubscriberConnectionTtl", ps_set_dir_time,
        (void *)1, PS_ANY, "longest life of a subscriber connection"),
    AP_INIT_TAKE1("PushStreamLongpollingConnectionTtl", ps_set_dir_time,
        (void *)2, PS_ANY, "longest wait of a long-polling request"),
    AP_INIT_TAKE1("PushStreamWildcardChannelMaxQtd", ps_set_wildcard_max, NULL,
        PS_ANY, "wildcard channels allowed in one subscription"),
    AP_INIT_TAKE1("PushStreamAuthorizedChannelsOnly", ps_set_dir_flag2,
        (void *)0, PS_ANY, "On: subscribers only join channels with messages"),
    AP_INIT_TAKE1("PushStreamAllowConnectionsToEventsChannel", ps_set_dir_flag2,
        (void *)1, PS_ANY, "On: the events channel may be subscribed"),
    AP_INIT_TAKE1("PushStreamWebsocketAllowPublish", ps_set_dir_flag2,
        (void *)2, PS_ANY, "On: WebSocket text frames are published"),
    AP_INIT_TAKE1("PushStreamWebsocketMaxFrameSize", ps_set_dir_size, (void *)0,
        PS_ANY, "largest WebSocket frame/message accepted (close 1009 above)"),
    AP_INIT_TAKE1("PushStreamSubscriberMaxBuffer", ps_set_dir_size, (void *)1,
        PS_ANY, "unread bytes after which a subscriber is dropped"),
    AP_INIT_TAKE1("PushStreamAllowedOrigins", ps_set_expr, (void *)4, PS_ANY,
        "expression: Access-Control-Allow-Origin value (CORS)"),
    AP_INIT_TAKE1("PushStreamUserAgent", ps_set_expr, (void *)5, PS_ANY,
        "expression used instead of User-Agent for padding"),
    AP_INIT_TAKE1("PushStreamPaddingByUserAgent", ps_set_padding, NULL, PS_ANY,
        "regex,header_min,message_min[:...] padding for old browsers"),
    AP_INIT_TAKE1("PushStreamHeaderTemplateFile", ps_set_header_file, NULL,
        PS_ANY, "header template read from a file"),
    PS_AUTH_CMDS
    { NULL }
};

