/* tlsfloor.c - the physical floor of an idle TLS subscriber (issue 16).
 *
 * A minimal OpenSSL 3 server: one epoll loop, nonblocking sockets; it
 * completes each TLS handshake, reads the HTTP request, answers with the
 * head of an endless response (200, text/event-stream, or 101 for a
 * WebSocket handshake) and then holds the session idle with
 * SSL_MODE_RELEASE_BUFFERS, keeping nothing per connection but the SSL*.
 * make bench measures its RSS growth per session, the same way as the
 * servers': what no TLS server can go below.
 *
 *   tlsfloor --cert C --key K [--port P] [--stdin]
 * prints {"event":"listening","port":P}, serves 127.0.0.1:P until stdin
 * reaches EOF (--stdin) or SIGTERM.  Loopback only. */

#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

enum { TF_HANDSHAKE, TF_REQUEST, TF_IDLE };

typedef struct {
    SSL *ssl;
    unsigned char state;
    unsigned char want_ws;
} tf_conn;

static tf_conn *tf_conns;
static int tf_max;
static int tf_ep;
static volatile sig_atomic_t tf_stop;

static void tf_die(const char *m)
{
    fprintf(stderr, "tlsfloor: %s\n", m);
    exit(2);
}

static void tf_close(int fd)
{
    if (tf_conns[fd].ssl) {
        SSL_free(tf_conns[fd].ssl);
        tf_conns[fd].ssl = NULL;
    }
    epoll_ctl(tf_ep, EPOLL_CTL_DEL, fd, NULL);
    close(fd);
}

static void tf_want(int fd, int err)
{
    struct epoll_event e = {.events = EPOLLIN, .data.fd = fd};
    if (err == SSL_ERROR_WANT_WRITE) {
        e.events |= EPOLLOUT;
    }
    epoll_ctl(tf_ep, EPOLL_CTL_MOD, fd, &e);
}

static void tf_on_event(int fd)
{
    tf_conn *c = &tf_conns[fd];
    char buf[4096];
    int r;

    ERR_clear_error();
    if (c->state == TF_HANDSHAKE) {
        r = SSL_accept(c->ssl);
        if (r != 1) {
            int e = SSL_get_error(c->ssl, r);
            if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
                tf_want(fd, e);
            }
            else {
                tf_close(fd);
            }
            return;
        }
        c->state = TF_REQUEST;
        tf_want(fd, SSL_ERROR_WANT_READ);
    }
    for (;;) {
        r = SSL_read(c->ssl, buf, sizeof buf);
        if (r <= 0) {
            int e = SSL_get_error(c->ssl, r);
            if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
                return;
            }
            tf_close(fd);
            return;
        }
        if (c->state != TF_REQUEST) {
            continue;                  /* idle: what a client sends is dropped */
        }
        if (memmem(buf, (size_t)r, "Upgrade: websocket", 18)
            || memmem(buf, (size_t)r, "upgrade: websocket", 18)) {
            c->want_ws = 1;
        }
        if (memmem(buf, (size_t)r, "\r\n\r\n", 4)) {
            const char *head = c->want_ws
                ? "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                  "Connection: Upgrade\r\n"
                  "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"
                : "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                  "Connection: close\r\n\r\n";
            SSL_write(c->ssl, head, (int)strlen(head));   /* small: fits */
            c->state = TF_IDLE;
        }
    }
}

static void tf_on_signal(int sig)
{
    (void)sig;
    tf_stop = 1;
}

int main(int argc, char **argv)
{
    const char *cert = NULL, *key = NULL;
    int port = 0, use_stdin = 0;

    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--cert") && i + 1 < argc) {
            cert = argv[++i];
        }
        else if (!strcmp(argv[i], "--key") && i + 1 < argc) {
            key = argv[++i];
        }
        else if (!strcmp(argv[i], "--port") && i + 1 < argc) {
            port = atoi(argv[++i]);
        }
        else if (!strcmp(argv[i], "--stdin")) {
            use_stdin = 1;
        }
        else {
            tf_die("usage: tlsfloor --cert C --key K [--port P] [--stdin]");
        }
    }
    if (!cert || !key) {
        tf_die("--cert and --key needed");
    }
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    tf_max = (int)rl.rlim_cur;
    tf_conns = calloc((size_t)tf_max, sizeof(*tf_conns));
    if (!tf_conns) {
        tf_die("out of memory");
    }
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx || SSL_CTX_use_certificate_chain_file(ctx, cert) != 1
        || SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
        tf_die("cannot load the certificate or key");
    }
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    /* no session kept server-side (httpd: SSL_SESS_CACHE_NO_INTERNAL, nginx:
     * ssl_session_cache none); TLS 1.3 session tickets as OpenSSL sends them
     * by default, like both servers compared */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);

    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t sl = sizeof sa;
    if (bind(lfd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(lfd, 4096) < 0
        || getsockname(lfd, (struct sockaddr *)&sa, &sl) < 0) {
        tf_die("cannot listen");
    }
    printf("{\"event\":\"listening\",\"port\":%d}\n", ntohs(sa.sin_port));
    fflush(stdout);

    signal(SIGPIPE, SIG_IGN);
    signal(SIGTERM, tf_on_signal);
    signal(SIGINT, tf_on_signal);
    tf_ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event e = {.events = EPOLLIN, .data.fd = lfd};
    epoll_ctl(tf_ep, EPOLL_CTL_ADD, lfd, &e);
    if (use_stdin) {
        e.data.fd = 0;
        epoll_ctl(tf_ep, EPOLL_CTL_ADD, 0, &e);
    }
    struct epoll_event ev[256];
    while (!tf_stop) {
        int n = epoll_wait(tf_ep, ev, 256, 1000);
        for (int i = 0; i < n; i++) {
            int fd = ev[i].data.fd;
            if (fd == 0) {
                char b[64];
                if (read(0, b, sizeof b) <= 0) {
                    tf_stop = 1;
                }
            }
            else if (fd == lfd) {
                int cfd;
                while ((cfd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
                    if (cfd >= tf_max) {
                        close(cfd);
                        continue;
                    }
                    setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    tf_conn *c = &tf_conns[cfd];
                    memset(c, 0, sizeof(*c));
                    c->ssl = SSL_new(ctx);
                    if (!c->ssl || !SSL_set_fd(c->ssl, cfd)) {
                        tf_close(cfd);
                        continue;
                    }
                    SSL_set_accept_state(c->ssl);
                    struct epoll_event ce = {.events = EPOLLIN, .data.fd = cfd};
                    epoll_ctl(tf_ep, EPOLL_CTL_ADD, cfd, &ce);
                }
            }
            else if (tf_conns[fd].ssl) {
                tf_on_event(fd);
            }
        }
    }
    return 0;
}
