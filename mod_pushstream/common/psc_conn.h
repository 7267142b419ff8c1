/* psc_conn.h - a suspended connection, as both modules hand it to their
 * loop and give it back (httpd types; not part of the httpd-free core).
 *
 * The handler returns SUSPENDED; the event MPM's suspend_connection hook
 * hands the connection over (psc_conn_take_suspended()); the loop writes,
 * ends the request, lingers, and finally releases the connection the way
 * the MPM would have (psc_conn_release()).  Or, once idle, the connection
 * leaves httpd: a dup() of its socket stays with the loop
 * (psc_loop_socket_dup()) and c->pool goes (psc_conn_release()). */
#ifndef PSC_CONN_H
#define PSC_CONN_H

#include <httpd.h>
#include <http_config.h>
#include <apr_network_io.h>

/* May a handler return SUSPENDED on c (the caller knows its MPM is async
 * and its loop runs)?  Not an HTTP/2 stream, not a clogging input filter. */
int psc_conn_can_suspend(const conn_rec *c);

/* The free memory c's allocator may keep (0 = unlimited). */
void psc_conn_max_free(conn_rec *c, apr_size_t max);

/* suspend_connection hook: the object the handler of module m left in the
 * request's config (and clears it), when c really is suspended; else NULL. */
void *psc_conn_take_suspended(conn_rec *c, request_rec *r, module *m);

/* The request ends (EOR: logged, r->pool freed); the connection stays
 * ours: its state goes back to SUSPENDED as the MPM left it. */
void psc_conn_end_request(request_rec *r);

/* 1 when c's filters are only core's, mod_logio's and, on TLS (is_tls:
 * mod_ssl runs on c), mod_ssl's right above core's (*tls set). */
int psc_conn_plain_filters(const conn_rec *c, int is_tls, int *tls);

/* Ask the last output filter (core) to write what it holds, without
 * blocking (what proxy_util.c calls ap_filter_output_pending()). */
apr_status_t psc_conn_write_pending(conn_rec *c);

/* Before the lingering close of a connection still in httpd (its filters
 * in place): what httpd's own close sends first (ap_flush_conn()), an EOC
 * bucket down c's output filters, so that mod_ssl ends the TLS session
 * with a close_notify.  Returns 1 while core's filter still holds bytes
 * (psc_conn_write_pending() once writable), 0 when all is out. */
int psc_conn_end(conn_rec *c);

/* Lingering close: no more writes; then read until EOF. */
void psc_conn_linger(apr_socket_t *s);
/* 1: the client closed (or broke): close now; 0: read again later. */
int psc_conn_drain(apr_socket_t *s);

/* Give c back for good: its socket closed, c->pool (and what lives in it)
 * destroyed; the MPM's suspended count goes down with it. */
void psc_conn_release(conn_rec *c, apr_socket_t *sock);

#endif
