/* ps_expr.c - %{arg:NAME}: the URL-decoded query argument NAME, the
 * twin of nginx's $arg_NAME, for PushStreamChannelsPath and friends. */

#include <string.h>

#include <httpd.h>
#include <http_config.h>
#include <apr_strings.h>

#include "ps_expr.h"
#include "ps_path.h"

static const char *ps_expr_arg(ap_expr_eval_ctx_t *ctx, const void *data,
                               const char *name)
{
    return ctx->r ? ps_query_arg(ctx->r, name) : "";
}

const char *ps_query_arg(request_rec *r, const char *name)
{
    apr_size_t nlen = strlen(name);
    const char *p;

    if (!r->args) {
        return "";
    }
    for (p = r->args; p && *p; p = strchr(p, '&'), p = p ? p + 1 : NULL) {
        const char *end = strchr(p, '&');
        apr_size_t len = end ? (apr_size_t)(end - p) : strlen(p);
        if (len >= nlen && !strncmp(p, name, nlen)
            && (len == nlen || p[nlen] == '=')) {
            apr_size_t vlen;
            const char *v = p + nlen + (len > nlen);
            /* '+' stays '+', as nginx's unescaping of $arg_x leaves it */
            return ps_path_unescape(r->pool, v, len - nlen - (len > nlen),
                                    &vlen);
        }
    }
    return "";
}

int ps_expr_lookup(ap_expr_lookup_parms *parms)
{
    if (parms->type == AP_EXPR_FUNC_STRING && !strcasecmp(parms->name, "arg")) {
        *parms->func = (const void *)ps_expr_arg;
        *parms->data = NULL;
        return OK;
    }
    return DECLINED;
}
