/* ps_expr.h - ap_expr functions of the module: %{arg:NAME}. */
#ifndef PS_EXPR_H
#define PS_EXPR_H

#include <httpd.h>
#include <ap_expr.h>

/* First value of query argument name, URL-decoded; "" when absent. */
const char *ps_query_arg(request_rec *r, const char *name);

/* expr_lookup hook. */
int ps_expr_lookup(ap_expr_lookup_parms *parms);

#endif
