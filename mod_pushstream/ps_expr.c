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
    /* The parsing itself is core code (ps_path.c), unit-tested and fuzzed. */
    return ps_path_query_arg(r->pool, r->args, name);
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
