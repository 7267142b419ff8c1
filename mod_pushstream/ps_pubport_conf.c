/* ps_pubport_conf.c - the publisher port (see ps_pubport.h): the checks of
 * PushStreamPublisherListen and the listening sockets, in the parent (the
 * connections: ps_pubport.c, in each child's loop). */

#include <string.h>

#include <httpd.h>
#include <http_config.h>
#include <http_log.h>
#include <apr_strings.h>
#include <apr_hash.h>

#include "ps_pubport.h"

APLOG_USE_MODULE(pushstream);

#define PS_PP_SOCKS_KEY  "pushstream-publisher-sockets"
#define PS_PP_BACKLOG    511

/* ---- configuration (parent) ------------------------------------------- */

int ps_pubport_check(apr_pool_t *pconf, server_rec *s)
{
    apr_array_header_t *list = ps_config_publistens(pconf);
    int i, j, bad = 0;

    for (i = 0; i < list->nelts; i++) {
        ps_publisten_t *l = &APR_ARRAY_IDX(list, i, ps_publisten_t);
        if (l->loc->kind != PS_LOC_PUBLISHER) {
            ap_log_error(APLOG_MARK, APLOG_STARTUP | APLOG_EMERG, 0, s,
                         "PS0090: PushStreamPublisherListen is only allowed "
                         "in a location with PushStreamPublisher (at %s)",
                         l->where);
            bad = 1;
        }
        for (j = 0; j < i; j++) {
            ps_publisten_t *o = &APR_ARRAY_IDX(list, j, ps_publisten_t);
            if (o->port == l->port && !strcmp(o->host, l->host)) {
                ap_log_error(APLOG_MARK, APLOG_STARTUP | APLOG_EMERG, 0, s,
                             "PS0091: PushStreamPublisherListen %s at %s: "
                             "the address is already used at %s", l->addr,
                             l->where, o->where);
                bad = 1;
            }
        }
    }
    return bad;
}

static apr_status_t ps_pp_bind(ps_publisten_t *l, apr_pool_t *p,
                               apr_socket_t **out)
{
    apr_sockaddr_t *sa;
    apr_socket_t *sock;
    apr_status_t rv;

    rv = apr_sockaddr_info_get(&sa, l->host, APR_UNSPEC, l->port, 0, p);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    rv = apr_socket_create(&sock, sa->family, SOCK_STREAM, APR_PROTO_TCP, p);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    apr_socket_opt_set(sock, APR_SO_REUSEADDR, 1);
    if ((rv = apr_socket_bind(sock, sa)) != APR_SUCCESS
        || (rv = apr_socket_listen(sock, PS_PP_BACKLOG)) != APR_SUCCESS
        || (rv = apr_socket_opt_set(sock, APR_SO_NONBLOCK, 1))
           != APR_SUCCESS) {
        apr_socket_close(sock);
        return rv;
    }
    *out = sock;
    return APR_SUCCESS;
}

/* The sockets live in the process pool, keyed "host:port", so that a
 * graceful restart keeps the address bound (old children still accept on
 * it until they stop; new ones take over without a refused connection). */
int ps_pubport_open(apr_pool_t *pconf, server_rec *s)
{
    apr_pool_t *pp = s->process->pool;
    apr_array_header_t *list = ps_config_publistens(pconf);
    apr_hash_t *socks = NULL, *keep = apr_hash_make(pconf);
    apr_hash_index_t *hi;
    int i;

    apr_pool_userdata_get((void **)&socks, PS_PP_SOCKS_KEY, pp);
    if (!socks) {
        socks = apr_hash_make(pp);
        apr_pool_userdata_set(socks, PS_PP_SOCKS_KEY, apr_pool_cleanup_null,
                              pp);
    }
    for (i = 0; i < list->nelts; i++) {
        ps_publisten_t *l = &APR_ARRAY_IDX(list, i, ps_publisten_t);
        const char *key = apr_psprintf(pconf, "%s:%u", l->host,
                                       (unsigned)l->port);
        apr_socket_t *sock = apr_hash_get(socks, key, APR_HASH_KEY_STRING);

        l->d = ps_merge_dir_conf(pconf, ap_get_module_config(
                                     l->s->lookup_defaults, &pushstream_module),
                                 l->loc);
        if (!sock) {
            apr_status_t rv = ps_pp_bind(l, pp, &sock);
            if (rv != APR_SUCCESS) {
                ap_log_error(APLOG_MARK, APLOG_STARTUP | APLOG_EMERG, rv, s,
                             "PS0092: PushStreamPublisherListen %s at %s: "
                             "cannot listen on %s", l->addr, l->where, key);
                return HTTP_INTERNAL_SERVER_ERROR;
            }
            apr_hash_set(socks, apr_pstrdup(pp, key), APR_HASH_KEY_STRING,
                         sock);
        }
        l->sock = sock;
        apr_hash_set(keep, key, APR_HASH_KEY_STRING, sock);
        ap_log_error(APLOG_MARK, APLOG_INFO, 0, s, "PS0094: publisher port "
                     "%s (location at %s) served by each child's event loop",
                     key, l->where);
        if (strcmp(l->host, "127.0.0.1") && strcmp(l->host, "::1")
            && strcmp(l->host, "localhost")) {
            ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, "PS0095: "
                         "PushStreamPublisherListen %s at %s is not a loopback "
                         "address: httpd's access control (Require ...) does "
                         "not apply on it", l->addr, l->where);
        }
    }
    for (hi = apr_hash_first(pconf, socks); hi; hi = apr_hash_next(hi)) {
        const void *key;
        void *sock;
        apr_hash_this(hi, &key, NULL, &sock);
        if (!apr_hash_get(keep, key, APR_HASH_KEY_STRING)) {
            apr_socket_close(sock);
            apr_hash_set(socks, key, APR_HASH_KEY_STRING, NULL);
        }
    }
    ps_srv(s)->publistens = list->nelts ? list : NULL;
    return OK;
}
