/* ps_auth.h - who may subscribe and publish: PushStreamAuth* directives
 * and the check of a request's token against the channels it names
 * (the token itself: ps_jwt.c, httpd-free).
 *
 * A location with PushStreamAuth subscribe|publish answers a request
 * without a valid token 401 (WWW-Authenticate: Bearer
 * error="invalid_token") and one naming a channel the token does not
 * grant 403 (error="insufficient_scope"); each refusal is logged at info
 * (PS0120, PS0121) and counted in the segment.  With PushStreamAuth off
 * (the default) nothing here runs. */
#ifndef PS_AUTH_H
#define PS_AUTH_H

#include <httpd.h>
#include <http_config.h>

#include "ps_conf_types.h"
#include "ps_jwt.h"
#include "ps_answer.h"
#include "ps_store.h"

/* PushStreamAuthSource header [cookie=NAME] [arg=NAME]. */
typedef struct ps_auth_src_t {
    int header;                    /* Authorization: Bearer */
    const char *cookie;            /* NULL = none */
    const char *arg;               /* NULL = none */
} ps_auth_src_t;

/* What an accepted token allows beyond the request itself. */
typedef struct ps_auth_result_t {
    apr_int64_t exp;               /* seconds (leeway included), 0 = none */
    int may_publish;               /* every channel is publish-granted */
} ps_auth_result_t;

const char *ps_auth_cmd_key(cmd_parms *cmd, void *mconfig, const char *args);
const char *ps_auth_cmd_leeway(cmd_parms *cmd, void *mconfig, const char *arg);
const char *ps_auth_cmd_string(cmd_parms *cmd, void *mconfig, const char *arg);
const char *ps_auth_cmd_claims(cmd_parms *cmd, void *mconfig, const char *arg);
const char *ps_auth_cmd_source(cmd_parms *cmd, void *mconfig, const char *args);
const char *ps_auth_cmd_mode(cmd_parms *cmd, void *mconfig, const char *arg);

#define PS_AUTH_CMDS \
    AP_INIT_RAW_ARGS("PushStreamAuthKey", ps_auth_cmd_key, NULL, RSRC_CONF, \
        "ALG file:PATH|env:NAME [kid]: a key for checking tokens " \
        "(HS256/384/512 secret; RS256, ES256, EdDSA PEM public key)"), \
    AP_INIT_TAKE1("PushStreamAuthLeeway", ps_auth_cmd_leeway, NULL, \
        RSRC_CONF, "clock skew allowed for exp / nbf (default 0s)"), \
    AP_INIT_TAKE1("PushStreamAuthAudience", ps_auth_cmd_string, (void *)0, \
        RSRC_CONF, "the aud claim tokens must carry"), \
    AP_INIT_TAKE1("PushStreamAuthIssuer", ps_auth_cmd_string, (void *)1, \
        RSRC_CONF, "the iss claim tokens must carry"), \
    AP_INIT_TAKE1("PushStreamAuthClaims", ps_auth_cmd_claims, NULL, \
        RSRC_CONF, "pushstream (default) or mercure: also read Mercure's " \
        "mercure.subscribe / mercure.publish"), \
    AP_INIT_RAW_ARGS("PushStreamAuthSource", ps_auth_cmd_source, NULL, \
        RSRC_CONF | ACCESS_CONF, "where the token is read: header " \
        "[cookie=NAME] [arg=NAME] (default: header cookie=pushstream_token)"), \
    AP_INIT_TAKE1("PushStreamAuth", ps_auth_cmd_mode, NULL, \
        RSRC_CONF | ACCESS_CONF, "subscribe, publish or off: the grant a " \
        "token must give for every channel of the request"),

/* check_config: a PushStreamAuth location needs a key in its server. */
int ps_auth_check_config(apr_pool_t *pconf, server_rec *s);

/* The check itself, for the publisher port (no request_rec): token from
 * the raw Authorization / Cookie headers and query args as the location's
 * PushStreamAuthSource says; chans are ps_path_channel_t.  1 when the
 * request may go on (*res filled, may be NULL), else 0 with *a the
 * answer (401/403, explain, WWW-Authenticate). */
int ps_auth_check(apr_pool_t *p, server_rec *s, const char *client_ip,
                  const ps_dir_conf_t *d,
                  ps_store_t *st, const char *authorization,
                  const char *cookie, const char *args,
                  const apr_array_header_t *chans, int stats,
                  ps_auth_result_t *res, ps_answer_t *a);

/* A location's request: OK to go on (the result then kept for
 * ps_auth_result()), or DONE with the refusal answered. */
int ps_auth_request(request_rec *r, const ps_dir_conf_t *d, ps_store_t *st);

/* The result of ps_auth_request() for r, NULL when none was checked. */
const ps_auth_result_t *ps_auth_result(request_rec *r);

#endif
