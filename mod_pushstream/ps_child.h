/* ps_child.h - what one httpd child process holds (created in child_init). */
#ifndef PS_CHILD_H
#define PS_CHILD_H

#include <httpd.h>
#include "ps_store.h"
#include "ps_template.h"

struct ps_reactor_t;

typedef struct ps_child_t {
    apr_pool_t *pool;              /* pchild */
    server_rec *s;
    ps_store_t *store;
    int slot;                      /* our worker slot in the segment, or -1 */
    int async;                     /* event MPM: subscribers are suspended */
    apr_int64_t started;           /* seconds */
    struct ps_reactor_t *reactor;
    ps_template_t *default_tpl;    /* "~text~" */
    apr_uint32_t h2_subs;          /* h2 subscribers holding their worker */
    apr_uint32_t h2_logged;        /* PS0100 written */
} ps_child_t;

/* Seconds since the epoch (the store's unit of time). */
static APR_INLINE apr_int64_t ps_now_sec(void)
{
    return (apr_int64_t)apr_time_sec(apr_time_now());
}

#endif
