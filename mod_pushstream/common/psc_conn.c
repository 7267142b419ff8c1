/* psc_conn.c - a suspended connection's hand-over and end (see psc_conn.h). */

#include <strings.h>

#include <httpd.h>
#include <http_config.h>
#include <http_connection.h>
#include <http_request.h>
#include <util_filter.h>

#include "psc_conn.h"

int psc_conn_can_suspend(const conn_rec *c)
{
    return c->cs && !c->master && !c->clogging_input_filters;
}

void psc_conn_max_free(conn_rec *c, apr_size_t max)
{
    apr_allocator_t *a = apr_pool_allocator_get(c->pool);

    if (a) {
        apr_allocator_max_free_set(a, max);
    }
}

void *psc_conn_take_suspended(conn_rec *c, request_rec *r, module *m)
{
    void *x;

    /* the hook also runs for keep-alive / write-completion suspensions */
    if (!r || !c->cs || c->cs->state != CONN_STATE_SUSPENDED) {
        return NULL;
    }
    x = ap_get_module_config(r->request_config, m);
    if (x) {
        ap_set_module_config(r->request_config, m, NULL);
    }
    return x;
}

void psc_conn_end_request(request_rec *r)
{
    conn_rec *c = r->connection;

    ap_process_request_after_handler(r);      /* EOR: logs, frees r */
    if (c->cs) {
        c->cs->state = CONN_STATE_SUSPENDED;
    }
}

int psc_conn_plain_filters(const conn_rec *c, int is_tls, int *tls)
{
    ap_filter_t *f;

    *tls = 0;
    if (c->output_filters->next) {
        /* TLS: mod_ssl's filter straight above core's */
        if (c->output_filters->next->next || !is_tls) {
            return 0;
        }
        *tls = 1;
    }
    for (f = c->input_filters; f; f = f->next) {
        /* what neither buffers nor transforms (logio only counts) */
        if (strcasecmp(f->frec->name, "core_in")
            && strcasecmp(f->frec->name, "log_input_output")
            && !(*tls && f == c->input_filters
                 && !strcasecmp(f->frec->name, "SSL/TLS Filter"))) {
            return 0;
        }
    }
    return 1;
}

apr_status_t psc_conn_write_pending(conn_rec *c)
{
    ap_filter_t *f = c->output_filters;

    while (f->next) {
        f = f->next;
    }
    return f->frec->filter_func.out_func(f, NULL);
}

int psc_conn_end(conn_rec *c)
{
    if (!c->aborted && ap_shutdown_conn(c, 0) != APR_SUCCESS) {
        return 0;                           /* broken: nothing to wait for */
    }
    return !c->aborted && c->data_in_output_filters;
}

void psc_conn_linger(apr_socket_t *s)
{
    apr_socket_shutdown(s, APR_SHUTDOWN_WRITE);
}

int psc_conn_drain(apr_socket_t *s)
{
    char buf[512];
    int i;

    for (i = 0; i < 64; i++) {
        apr_size_t n = sizeof(buf);
        apr_status_t rv = apr_socket_recv(s, buf, &n);
        if (APR_STATUS_IS_EAGAIN(rv)) {
            return 0;
        }
        if (rv != APR_SUCCESS || n == 0) {
            return 1;
        }
    }
    return 1;
}

void psc_conn_release(conn_rec *c, apr_socket_t *sock)
{
    apr_socket_close(sock);
    /* back to SUSPENDED so that the pool cleanup decrements the event MPM's
     * suspended count (it does nothing for other states but LINGER) */
    if (c->cs) {
        c->cs->state = CONN_STATE_SUSPENDED;
    }
    apr_pool_destroy(c->pool);
}
