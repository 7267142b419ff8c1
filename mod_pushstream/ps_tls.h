/* ps_tls.h - the loop owning a TLS session mod_ssl negotiated.
 *
 * A detached TLS subscriber (ps_sub_detach) keeps the SSL* mod_ssl set up,
 * rebound to a dup() of the socket, and reads / writes / closes it in the
 * loop.  Taking the SSL* away from mod_ssl needs its private state: that
 * is confined to ps_tls.c (see the comment there).  mod_pushstream_wstunnel
 * compiles the same file for its tunnels (both sides). */
#ifndef PS_TLS_H
#define PS_TLS_H

#include <httpd.h>
#include <apr_network_io.h>

struct ssl_st;

/* Why a TLS connection cannot leave httpd (yet). */
typedef enum {
    PS_TLS_OK = 0,
    PS_TLS_NOT_TLS,                /* no mod_ssl on this connection */
    PS_TLS_BUSY,                   /* bytes buffered in mod_ssl / OpenSSL: later */
    PS_TLS_NEVER                   /* renegotiation, client certs, unknown layout */
} ps_tls_check_e;

/* 1 when c is a mod_ssl connection (a client's, or mod_proxy's to a
 * back end: c->outgoing, mod_ssl is the TLS client there). */
int ps_tls_conn_is_tls(conn_rec *c);

/* Whether the session of c may be taken now; *why: a short reason. */
ps_tls_check_e ps_tls_check(conn_rec *c, const char **why);

/* Take the session of c (ps_tls_check() said PS_TLS_OK): it now reads and
 * writes fd (nonblocking), keeps no idle buffers, and mod_ssl will not
 * free it when c->pool goes.  NULL: out of memory (c is unchanged). */
struct ssl_st *ps_tls_take(conn_rec *c, int fd);

/* Nonblocking I/O on a taken session.  APR_SUCCESS with *len done,
 * APR_EAGAIN (want POLLIN / POLLOUT: *want_write), APR_EOF (close_notify
 * from the peer), or an error.  ps_tls_write(): a retry after APR_EAGAIN
 * must offer at least the same bytes again (they are OpenSSL's by then). */
apr_status_t ps_tls_read(struct ssl_st *ssl, char *buf, apr_size_t *len,
                         int *want_write);
apr_status_t ps_tls_write(struct ssl_st *ssl, const char *buf, apr_size_t *len,
                          int *want_write);

/* Send close_notify: APR_SUCCESS (sent or nothing more to do) or
 * APR_EAGAIN (socket full: again on POLLOUT). */
apr_status_t ps_tls_close_notify(struct ssl_st *ssl);

/* Free a taken session (the fd is not closed). */
void ps_tls_free(struct ssl_st *ssl);

#endif
