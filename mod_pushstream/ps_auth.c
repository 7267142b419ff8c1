/* ps_auth.c - PushStreamAuth*: directives, and the check of a request's
 * token against the channels it names (tokens: ps_jwt.c). */
#include <string.h>

#include <httpd.h>
#include <http_config.h>
#include <http_log.h>
#include <http_protocol.h>
#include <apr_strings.h>
#include <apr_env.h>
#include <apr_file_io.h>
#include <apr_lib.h>

#include "ps_auth.h"
#include "ps_config.h"
#include "ps_http.h"
#include "ps_child.h"
#include "ps_util.h"

APLOG_USE_MODULE(pushstream);

#define PS_AUTH_RECS_KEY   "pushstream-auth-locations"
#define PS_AUTH_RESULT_KEY "pushstream-auth-result"
/* Largest key file read (a PEM RSA 8192 key is ~1.5 KB). */
#define PS_AUTH_KEY_MAX    65536

static const ps_auth_src_t ps_auth_default_src = { 1, "pushstream_token",
                                                   NULL };

typedef struct ps_auth_rec_t {
    ps_dir_conf_t *d;
    server_rec *s;
    const char *where;
} ps_auth_rec_t;

/* ---- directives ---------------------------------------------------------- */

static ps_jwt_conf_t *ps_auth_conf(cmd_parms *cmd)
{
    ps_srv_conf_t *sc = ps_srv(cmd->server);

    if (!sc->auth) {
        sc->auth = apr_pcalloc(cmd->pool, sizeof(*sc->auth));
        sc->auth->keys = apr_array_make(cmd->pool, 2, sizeof(ps_jwt_key_t));
    }
    return sc->auth;
}

/* The bytes of a key SOURCE: file:PATH or (HS* only) env:NAME. */
static const char *ps_auth_source_bytes(cmd_parms *cmd, int alg,
                                        const char *src, const char **data,
                                        apr_size_t *len)
{
    if (!strncmp(src, "file:", 5) && src[5]) {
        const char *path = ap_server_root_relative(cmd->pool, src + 5);
        apr_file_t *f;
        apr_finfo_t fi;
        char *buf;
        if (!path || apr_file_open(&f, path, APR_READ, 0, cmd->pool)
                     != APR_SUCCESS) {
            return apr_psprintf(cmd->pool, "cannot open key file \"%s\"",
                                src + 5);
        }
        if (apr_file_info_get(&fi, APR_FINFO_SIZE, f) != APR_SUCCESS
            || fi.size > PS_AUTH_KEY_MAX) {
            apr_file_close(f);
            return apr_psprintf(cmd->pool, "key file \"%s\" is not readable "
                                "or larger than %d bytes", src + 5,
                                PS_AUTH_KEY_MAX);
        }
        buf = apr_palloc(cmd->pool, (apr_size_t)fi.size + 1);
        *len = (apr_size_t)fi.size;
        if (fi.size && apr_file_read_full(f, buf, *len, len) != APR_SUCCESS) {
            apr_file_close(f);
            return apr_psprintf(cmd->pool, "cannot read key file \"%s\"",
                                src + 5);
        }
        apr_file_close(f);
        buf[*len] = '\0';
        *data = buf;
        return NULL;
    }
    if (!strncmp(src, "env:", 4) && src[4]) {
        char *v = NULL;
        if (alg > PS_JWT_HS512) {
            return "env: is only for HS256/HS384/HS512 secrets; a public key "
                   "comes from file:PATH";
        }
        if (apr_env_get(&v, src + 4, cmd->pool) != APR_SUCCESS || !v) {
            return apr_psprintf(cmd->pool, "environment variable %s is not "
                                "set", src + 4);
        }
        *data = v;
        *len = strlen(v);
        return NULL;
    }
    return apr_psprintf(cmd->pool, "invalid key source \"%s\" (file:PATH or "
                        "env:NAME)", src);
}

const char *ps_auth_cmd_key(cmd_parms *cmd, void *mconfig, const char *args)
{
    const char *rest = args, *algname, *src, *kid, *err, *data = NULL;
    apr_size_t len = 0;
    ps_jwt_conf_t *c;
    ps_jwt_key_t key;
    int alg, i;

    algname = ap_getword_conf(cmd->pool, &rest);
    src = ap_getword_conf(cmd->pool, &rest);
    kid = ap_getword_conf(cmd->pool, &rest);
    while (apr_isspace(*rest)) {
        rest++;
    }
    if (!*algname || !*src || *rest) {
        return "PushStreamAuthKey takes ALG SOURCE [kid]";
    }
    if (!(alg = ps_jwt_alg_parse(algname))) {
        return apr_psprintf(cmd->pool, "PushStreamAuthKey: unknown algorithm "
                            "\"%s\" (HS256, HS384, HS512, RS256, ES256, "
                            "EdDSA)", algname);
    }
    if ((err = ps_auth_source_bytes(cmd, alg, src, &data, &len)) != NULL
        || (err = ps_jwt_key_load(cmd->pool, alg, *kid ? kid : NULL, data,
                                  len, &key)) != NULL) {
        return apr_psprintf(cmd->pool, "PushStreamAuthKey %s %s: %s",
                            algname, src, err);
    }
    c = ps_auth_conf(cmd);
    for (i = 0; key.kid && i < c->keys->nelts; i++) {
        const ps_jwt_key_t *k = &APR_ARRAY_IDX(c->keys, i, ps_jwt_key_t);
        if (k->kid && !strcmp(k->kid, key.kid)) {
            return apr_psprintf(cmd->pool, "PushStreamAuthKey: key id \"%s\" "
                                "given twice", key.kid);
        }
    }
    *(ps_jwt_key_t *)apr_array_push(c->keys) = key;
    return NULL;
}

const char *ps_auth_cmd_leeway(cmd_parms *cmd, void *mconfig, const char *arg)
{
    apr_interval_time_t t;
    ps_jwt_conf_t *c;

    if (psc_parse_time(arg, &t) != APR_SUCCESS) {
        return apr_psprintf(cmd->pool, "PushStreamAuthLeeway: invalid time "
                            "value \"%s\" (examples: 0, 30s, 2m)", arg);
    }
    c = ps_auth_conf(cmd);
    c->leeway = (apr_int64_t)apr_time_sec(t);
    c->set |= PS_JWT_SET_LEEWAY;
    return NULL;
}

const char *ps_auth_cmd_string(cmd_parms *cmd, void *mconfig, const char *arg)
{
    ps_jwt_conf_t *c = ps_auth_conf(cmd);

    if (cmd->info == (void *)0) {
        c->audience = arg;
    }
    else {
        c->issuer = arg;
    }
    return NULL;
}

const char *ps_auth_cmd_claims(cmd_parms *cmd, void *mconfig, const char *arg)
{
    ps_jwt_conf_t *c = ps_auth_conf(cmd);

    if (!strcasecmp(arg, "pushstream")) {
        c->mercure = 0;
    }
    else if (!strcasecmp(arg, "mercure")) {
        c->mercure = 1;
    }
    else {
        return "PushStreamAuthClaims must be pushstream or mercure";
    }
    c->set |= PS_JWT_SET_CLAIMS;
    return NULL;
}

const char *ps_auth_cmd_source(cmd_parms *cmd, void *mconfig, const char *args)
{
    ps_auth_src_t *src = apr_pcalloc(cmd->pool, sizeof(*src));
    const char *rest = args, *w;

    if (!mconfig) {
        return "PushStreamAuthSource: not allowed here";
    }
    while (*(w = ap_getword_conf(cmd->pool, &rest))) {
        if (!strcasecmp(w, "header")) {
            src->header = 1;
        }
        else if (!strncasecmp(w, "cookie=", 7) && w[7]) {
            src->cookie = w + 7;
        }
        else if (!strncasecmp(w, "arg=", 4) && w[4]) {
            src->arg = w + 4;
        }
        else {
            return apr_psprintf(cmd->pool, "PushStreamAuthSource: \"%s\" is "
                                "not header, cookie=NAME or arg=NAME", w);
        }
    }
    if (!src->header && !src->cookie && !src->arg) {
        return "PushStreamAuthSource needs header, cookie=NAME and/or "
               "arg=NAME";
    }
    ((ps_dir_conf_t *)mconfig)->auth_src = src;
    return NULL;
}

const char *ps_auth_cmd_mode(cmd_parms *cmd, void *mconfig, const char *arg)
{
    ps_dir_conf_t *d = mconfig;
    ps_auth_rec_t *rec;

    if (!strcasecmp(arg, "subscribe")) {
        d->auth_mode = PS_AUTH_SUBSCRIBE;
    }
    else if (!strcasecmp(arg, "publish")) {
        d->auth_mode = PS_AUTH_PUBLISH;
    }
    else if (!strcasecmp(arg, "off")) {
        d->auth_mode = PS_AUTH_OFF;
    }
    else {
        return "PushStreamAuth must be subscribe, publish or off";
    }
    d->auth_where = ps_config_where(cmd);
    rec = apr_array_push(ps_config_list(cmd->pool, PS_AUTH_RECS_KEY,
                                        sizeof(ps_auth_rec_t)));
    rec->d = d;
    rec->s = cmd->server;
    rec->where = d->auth_where;
    return NULL;
}

int ps_auth_check_config(apr_pool_t *pconf, server_rec *s)
{
    apr_array_header_t *recs = ps_config_list(pconf, PS_AUTH_RECS_KEY,
                                              sizeof(ps_auth_rec_t));
    int i, bad = 0;

    for (i = 0; i < recs->nelts; i++) {
        const ps_auth_rec_t *rec = &APR_ARRAY_IDX(recs, i, ps_auth_rec_t);
        const ps_jwt_conf_t *c = ps_srv(rec->s)->auth;
        if (rec->d->auth_mode != PS_AUTH_OFF
            && (!c || !c->keys->nelts)) {
            ap_log_error(APLOG_MARK, APLOG_STARTUP | APLOG_EMERG, 0, s,
                         "PS0123: PushStreamAuth needs a PushStreamAuthKey "
                         "in its server (PushStreamAuth at %s)", rec->where);
            bad = 1;
        }
    }
    return bad;
}

/* ---- the check ----------------------------------------------------------- */

/* A channel id fit to be named in a header: printable ASCII, short. */
static int ps_auth_printable(const char *id, apr_size_t len)
{
    apr_size_t i;

    if (len > 128) {
        return 0;
    }
    for (i = 0; i < len; i++) {
        if (id[i] < 0x20 || id[i] > 0x7e) {
            return 0;
        }
    }
    return 1;
}

/* Refusal: answer, log, count.  Returns 0. */
static int ps_auth_refuse(apr_pool_t *p, server_rec *s, const char *client_ip,
                          ps_store_t *st, int scope, const char *why,
                          const char *explain, ps_answer_t *a)
{
    ps_answer_set(a, scope ? 403 : 401, explain);
    a->www_auth = scope ? "Bearer error=\"insufficient_scope\""
                        : apr_psprintf(p, "Bearer error=\"invalid_token\", "
                                       "error_description=\"%s\"", why);
    ap_log_error(APLOG_MARK, APLOG_INFO, 0, s, "%s: [client %s] %s",
                 scope ? "PS0121" : "PS0120", client_ip ? client_ip : "-",
                 ap_escape_logitem(p, explain));
    if (st) {
        ps_store_count_auth(st, scope);
    }
    return 0;
}

/* The first token present among the sources. */
static const char *ps_auth_token(apr_pool_t *p, const ps_auth_src_t *src,
                                 const char *authorization, const char *cookie,
                                 const char *args, apr_size_t *len)
{
    const char *t = NULL;

    if (src->header) {
        t = ps_jwt_from_bearer(authorization, len);
    }
    if (!t && src->cookie) {
        t = ps_jwt_from_cookie(cookie, src->cookie, len);
    }
    if (!t && src->arg) {
        t = ps_path_query_arg(p, args, src->arg);
        *len = strlen(t);
        t = *len ? t : NULL;
    }
    return t;
}

int ps_auth_check(apr_pool_t *p, server_rec *s, const char *client_ip,
                  const ps_dir_conf_t *d, ps_store_t *st,
                  const char *authorization, const char *cookie,
                  const char *args, const apr_array_header_t *chans,
                  int stats, ps_auth_result_t *res, ps_answer_t *a)
{
    const ps_jwt_conf_t *jc = ps_srv(s)->auth;
    const char *tok, *verb = d->auth_mode == PS_AUTH_PUBLISH ? "publish"
                                                             : "subscribe";
    const apr_array_header_t *grants;
    ps_jwt_claims_t cl;
    apr_size_t len = 0;
    int err, i;

    tok = ps_auth_token(p, d->auth_src ? d->auth_src : &ps_auth_default_src,
                        authorization, cookie, args, &len);
    if (!tok) {
        return ps_auth_refuse(p, s, client_ip, st, 0, "no token",
                              "Missing token.", a);
    }
    err = ps_jwt_verify(p, jc, tok, len, ps_now_sec(), &cl);
    if (err != PS_JWT_OK) {
        return ps_auth_refuse(p, s, client_ip, st, 0, ps_jwt_strerror(err),
                              apr_psprintf(p, "Invalid token: %s.",
                                           ps_jwt_strerror(err)), a);
    }
    grants = d->auth_mode == PS_AUTH_PUBLISH ? cl.publish : cl.subscribe;
    if (stats) {
        const char *prefix = NULL;
        apr_size_t plen = 0;
        switch (ps_path_stats_select(chans, 0, &prefix, &plen)) {
        case PS_STATS_SUMMARY:
        case PS_STATS_ALL:
            if (!ps_jwt_granted_prefix(grants, prefix ? prefix : "", plen)) {
                return ps_auth_refuse(p, s, client_ip, st, 1, NULL,
                                      apr_psprintf(p, "Token does not grant %s "
                                                   "to all these channels.",
                                                   verb), a);
            }
            chans = NULL;
            break;
        default:
            break;
        }
    }
    for (i = 0; chans && i < chans->nelts; i++) {
        const ps_path_channel_t *pc = &APR_ARRAY_IDX(chans, i,
                                                     ps_path_channel_t);
        if (!ps_jwt_granted(grants, pc->id, pc->len)) {
            return ps_auth_refuse(p, s, client_ip, st, 1, NULL,
                ps_auth_printable(pc->id, pc->len)
                ? apr_psprintf(p, "Token does not grant %s to channel %s.",
                               verb, pc->id)
                : apr_psprintf(p, "Token does not grant %s to channel %d of "
                               "the path.", verb, i + 1), a);
        }
    }
    if (res) {
        res->exp = cl.exp;
        res->may_publish = 1;
        for (i = 0; chans && i < chans->nelts; i++) {
            const ps_path_channel_t *pc = &APR_ARRAY_IDX(chans, i,
                                                         ps_path_channel_t);
            res->may_publish &= ps_jwt_granted(cl.publish, pc->id, pc->len);
        }
    }
    return 1;
}

int ps_auth_request(request_rec *r, const ps_dir_conf_t *d, ps_store_t *st)
{
    apr_array_header_t *chans;
    ps_auth_result_t *res;
    ps_answer_t a;
    int rc;

    if (r->method_number == M_OPTIONS) {
        return OK;                    /* CORS preflight: no credentials */
    }
    if ((rc = ps_http_parse_path(r, d, &chans)) != OK) {
        return rc;
    }
    res = apr_pcalloc(r->pool, sizeof(*res));
    if (ps_auth_check(r->pool, r->server, r->useragent_ip, d, st,
                      apr_table_get(r->headers_in, "Authorization"),
                      apr_table_get(r->headers_in, "Cookie"), r->args, chans,
                      d->kind == PS_LOC_STATISTICS, res, &a)) {
        apr_pool_userdata_setn(res, PS_AUTH_RESULT_KEY, NULL, r->pool);
        return OK;
    }
    if (d->kind == PS_LOC_SUBSCRIBER) {
        ps_http_cors(r, d, "GET");
    }
    else if (d->kind == PS_LOC_PUBLISHER) {
        ps_http_cors(r, d, d->publisher_admin ? PS_PUB_ALLOW_ADMIN
                                              : PS_PUB_ALLOW);
    }
    ps_http_nocache(r);
    apr_table_setn(r->headers_out, "WWW-Authenticate", a.www_auth);
    return ps_http_explain(r, a.status, a.explain);
}

const ps_auth_result_t *ps_auth_result(request_rec *r)
{
    void *v = NULL;

    apr_pool_userdata_get(&v, PS_AUTH_RESULT_KEY, r->pool);
    return v;
}
