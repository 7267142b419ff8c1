/* ps_tls.c - the loop takes over the TLS session mod_ssl negotiated.
 *
 * Why this file knows mod_ssl's private structures: httpd 2.4 has no API
 * to hand a connection's SSL* to someone else.  mod_ssl keeps it in its
 * connection config (SSLConnRec, first member `SSL *ssl`) and in the
 * context of its "SSL/TLS Filter" (ssl_filter_ctx_t, first member `SSL
 * *pssl`), and frees it from a cleanup on c->pool (ssl_io_filter_cleanup:
 * SSL_free() only if pssl is still set).  Its BIOs read and write through
 * httpd's filters with buffers allocated in c->pool.  To keep the session
 * alive after c->pool is destroyed we: check that nothing is buffered on
 * either side, point the session at a socket BIO on our dup() of the
 * socket (which frees mod_ssl's BIOs: their destroy callback frees
 * nothing), clear the session's app data (mod_ssl's info callback on the
 * SSL_CTX returns at once without a conn_rec) and both of mod_ssl's
 * pointers (so its cleanup does not SSL_free() it), and refuse
 * renegotiation from then on (mod_ssl's handshake callbacks need the
 * conn_rec).
 *
 * The mirrored layouts below are those of modules/ssl/ssl_engine_io.c and
 * ssl_private.h in httpd 2.4.x (checked against 2.4.62 and the 2.4.x
 * branch at f45abec1bd, which Debian's 2.4.71 matches here), unchanged
 * since 2.4.25 (OpenSSL 1.1 BIO accessors).  Every use is cross-checked
 * (the filter's context points back at the filter, both BIOs are the
 * session's, the BIOs' data point back at the contexts, the connection
 * config holds the same SSL*): on any mismatch the subscriber simply stays
 * in httpd (PS_TLS_NEVER), it is never guessed at. */

#include <string.h>
#include <errno.h>
#include <limits.h>

#include <openssl/ssl.h>
#include <openssl/err.h>

#include <httpd.h>
#include <http_config.h>
#include <util_filter.h>

#include "ps_tls.h"

#define PS_MODSSL_FILTER "SSL/TLS Filter"

/* ssl_filter_ctx_t */
typedef struct {
    SSL *pssl;
    BIO *pbioRead;
    BIO *pbioWrite;
    ap_filter_t *pInputFilter;
    ap_filter_t *pOutputFilter;
    void *config;                  /* SSLConnRec */
} ps_modssl_filter_ctx_t;

/* bio_filter_out_ctx_t */
typedef struct {
    ps_modssl_filter_ctx_t *filter_ctx;
    conn_rec *c;
    apr_bucket_brigade *bb;
    apr_status_t rc;
} ps_modssl_out_ctx_t;

/* bio_filter_in_ctx_t (with its char_buffer_t) */
typedef struct {
    SSL *ssl;
    BIO *bio_out;
    ap_filter_t *f;
    apr_status_t rc;
    ap_input_mode_t mode;
    apr_read_type_e block;
    apr_bucket_brigade *bb;
    struct {
        int length;
        char *value;
    } cbuf;
    apr_pool_t *pool;
    char buffer[AP_IOBUFSIZE];
    ps_modssl_filter_ctx_t *filter_ctx;
} ps_modssl_in_ctx_t;

/* SSLConnRec: only its first member */
typedef struct {
    SSL *ssl;
} ps_modssl_conn_t;

static ap_filter_t *ps_tls_filter(conn_rec *c)
{
    ap_filter_t *f;

    for (f = c->output_filters; f; f = f->next) {
        if (!strcasecmp(f->frec->name, PS_MODSSL_FILTER)) {
            return f;
        }
    }
    return NULL;
}

int ps_tls_conn_is_tls(conn_rec *c)
{
    return ps_tls_filter(c) != NULL;
}

/* mod_ssl's contexts of c, cross-checked; NULL when anything differs. */
static ps_modssl_filter_ctx_t *ps_tls_ctx(conn_rec *c, ps_modssl_conn_t **conf)
{
    module *m = ap_find_linked_module("mod_ssl.c");
    ap_filter_t *f = ps_tls_filter(c);
    ps_modssl_filter_ctx_t *fc = f ? f->ctx : NULL;
    ps_modssl_in_ctx_t *in;
    ps_modssl_out_ctx_t *out;

    if (!m || !fc || fc->pOutputFilter != f || !fc->pssl || !fc->pInputFilter
        || fc->pInputFilter->c != c
        || SSL_get_app_data(fc->pssl) != (void *)c
        || SSL_get_rbio(fc->pssl) != fc->pbioRead
        || SSL_get_wbio(fc->pssl) != fc->pbioWrite) {
        return NULL;
    }
    in = fc->pInputFilter->ctx;
    out = BIO_get_data(fc->pbioWrite);
    if (!in || BIO_get_data(fc->pbioRead) != (void *)in || in->ssl != fc->pssl
        || in->f != fc->pInputFilter || in->filter_ctx != fc
        || !out || out->filter_ctx != fc || out->c != c) {
        return NULL;
    }
    *conf = ap_get_module_config(c->conn_config, m);
    if (!*conf || (void *)*conf != fc->config || (*conf)->ssl != fc->pssl) {
        return NULL;
    }
    return fc;
}

ps_tls_check_e ps_tls_check(conn_rec *c, const char **why)
{
    ps_modssl_conn_t *conf;
    ps_modssl_filter_ctx_t *fc;
    ps_modssl_in_ctx_t *in;
    ps_modssl_out_ctx_t *out;
    SSL *ssl;

    if (!ps_tls_conn_is_tls(c)) {
        *why = "not TLS";
        return PS_TLS_NOT_TLS;
    }
    fc = ps_tls_ctx(c, &conf);
    if (!fc) {
        *why = "mod_ssl's connection state is not laid out as expected";
        return PS_TLS_NEVER;
    }
    ssl = fc->pssl;
    if (SSL_is_server(ssl) != !c->outgoing || SSL_in_init(ssl)) {
        *why = "handshake not finished";
        return PS_TLS_NEVER;
    }
    /* (a proxy's connection to its back end verifies the server: fine) */
    if (!c->outgoing && (SSL_get_verify_mode(ssl) & SSL_VERIFY_PEER)) {
        *why = "client certificates (SSLVerifyClient)";
        return PS_TLS_NEVER;
    }
    if (SSL_renegotiate_pending(ssl)) {
        *why = "renegotiation pending";
        return PS_TLS_BUSY;
    }
    in = fc->pInputFilter->ctx;
    out = BIO_get_data(fc->pbioWrite);
    if (in->cbuf.length || !APR_BRIGADE_EMPTY(in->bb)
        || !APR_BRIGADE_EMPTY(out->bb) || SSL_has_pending(ssl)) {
        *why = "bytes buffered in mod_ssl";
        return PS_TLS_BUSY;
    }
    *why = "";
    return PS_TLS_OK;
}

SSL *ps_tls_take(conn_rec *c, int fd)
{
    ps_modssl_conn_t *conf;
    ps_modssl_filter_ctx_t *fc = ps_tls_ctx(c, &conf);
    SSL *ssl;
    BIO *bio;

    if (!fc) {
        return NULL;
    }
    bio = BIO_new_socket(fd, BIO_NOCLOSE);
    if (!bio) {
        return NULL;
    }
    ssl = fc->pssl;
    /* mod_ssl's BIOs go (their destroy frees nothing: c->pool holds
     * their buffers); one BIO both ways holds one reference */
    SSL_set_bio(ssl, bio, bio);
    fc->pbioRead = fc->pbioWrite = NULL;
    fc->pssl = NULL;                   /* ssl_io_filter_cleanup: no SSL_free */
    conf->ssl = NULL;
    SSL_set_app_data(ssl, NULL);       /* mod_ssl's callbacks: no conn_rec */
    SSL_set_options(ssl, SSL_OP_NO_RENEGOTIATION);
    SSL_set_mode(ssl, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE
                      | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    /* with RELEASE_BUFFERS set only now, hand back what is idle */
    (void)SSL_free_buffers(ssl);
    return ssl;
}

static apr_status_t ps_tls_error(SSL *ssl, int n, int *want_write)
{
    int e = SSL_get_error(ssl, n);

    switch (e) {
    case SSL_ERROR_WANT_READ:
        return APR_EAGAIN;
    case SSL_ERROR_WANT_WRITE:
        *want_write = 1;
        return APR_EAGAIN;
    case SSL_ERROR_ZERO_RETURN:
        return APR_EOF;
    case SSL_ERROR_SYSCALL:
        return errno ? APR_FROM_OS_ERROR(errno) : APR_EOF;
    default:
        return APR_EGENERAL;
    }
}

/* The outcome n of an SSL_read() or SSL_write() of *len bytes (at most
 * INT_MAX): *len the bytes it moved. */
static apr_status_t ps_tls_done(SSL *ssl, int n, apr_size_t *len,
                                int *want_write)
{
    if (n > 0) {
        *len = n;
        return APR_SUCCESS;
    }
    *len = 0;
    return ps_tls_error(ssl, n, want_write);
}

apr_status_t ps_tls_read(SSL *ssl, char *buf, apr_size_t *len, int *want_write)
{
    int n;

    ERR_clear_error();
    errno = 0;
    n = SSL_read(ssl, buf, *len > INT_MAX ? INT_MAX : (int)*len);
    return ps_tls_done(ssl, n, len, want_write);
}

apr_status_t ps_tls_write(SSL *ssl, const char *buf, apr_size_t *len,
                          int *want_write)
{
    int n;

    ERR_clear_error();
    errno = 0;
    n = SSL_write(ssl, buf, *len > INT_MAX ? INT_MAX : (int)*len);
    return ps_tls_done(ssl, n, len, want_write);
}

apr_status_t ps_tls_close_notify(SSL *ssl)
{
    int n, e;

    ERR_clear_error();
    n = SSL_shutdown(ssl);
    if (n >= 0) {
        return APR_SUCCESS;
    }
    e = SSL_get_error(ssl, n);
    return (e == SSL_ERROR_WANT_WRITE) ? APR_EAGAIN : APR_SUCCESS;
}

void ps_tls_free(SSL *ssl)
{
    if (ssl) {
        SSL_free(ssl);
    }
}
