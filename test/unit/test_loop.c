/* test_loop.c - the loop core of both modules (common/psc_loop.c), without
 * httpd: timers fire in deadline order, I/O / ready / shutdown / tick
 * callbacks are called, and the release rule: a retired item whose worker
 * has not left (*worker_mark set) is not released, then released no sooner
 * than PSC_RELEASE_AGE after the worker was seen leaving; connections that
 * keep only a descriptor share the loop's socket. */
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <apr_file_io.h>
#include <apr_thread_proc.h>

#include "ps_test.h"
#include "psc_loop.h"

typedef struct tl_item_t {
    psc_item_t item;               /* first */
    psc_pollee_t pollee;
    apr_pollfd_t pfd;
    apr_int16_t events;
    psc_loop_t *loop;
    int id;
    apr_interval_time_t after;     /* timer: adopted + after */
    int *log, *nlog;               /* ids in the order their timers fired */
    volatile int adopted, timers, ios, agains, shutdowns, released, dropped;
    volatile apr_time_t released_at;
    apr_file_t *rd;
} tl_item_t;

static tl_item_t *tl_of(psc_item_t *it)
{
    return (tl_item_t *)it;
}

static void tl_adopt(psc_item_t *it, apr_time_t now)
{
    tl_item_t *t = tl_of(it);

    t->adopted++;
    if (t->after) {
        it->deadline = now + t->after;
        assert_int_equal(psc_loop_schedule(t->loop, it), APR_SUCCESS);
    }
}

static void tl_timer(psc_item_t *it, apr_time_t now)
{
    tl_item_t *t = tl_of(it);

    t->timers++;
    assert_true(now >= it->deadline);
    if (t->log) {
        t->log[(*t->nlog)++] = t->id;
    }
    psc_loop_retire(t->loop, it);
}

static void tl_again(psc_item_t *it, apr_time_t now)
{
    tl_item_t *t = tl_of(it);

    t->agains++;
    psc_loop_retire(t->loop, it);
}

static void tl_shutdown(psc_item_t *it, apr_time_t now)
{
    tl_item_t *t = tl_of(it);

    t->shutdowns++;
    psc_loop_retire(t->loop, it);
}

static void tl_abort(psc_item_t *it)
{
    psc_loop_retire(tl_of(it)->loop, it);
}

static void tl_release(psc_item_t *it)
{
    tl_item_t *t = tl_of(it);

    t->released_at = apr_time_now();
    t->released++;
}

static void tl_drop(psc_item_t *it)
{
    tl_of(it)->dropped++;
}

static const psc_item_ops_t tl_ops = {
    tl_adopt, tl_timer, tl_again, tl_shutdown, tl_abort, tl_release, tl_drop
};

/* Five timers adopted out of order fire by deadline, then all are released
 * (no worker to wait for), and run_local returns. */
static void test_loop_timers_in_order(void **state)
{
    apr_pool_t *p = *state;
    static const int after_ms[5] = { 40, 10, 30, 0, 20 };
    tl_item_t items[5];
    int log[5], nlog = 0, i;
    psc_loop_t *l;

    assert_int_equal(psc_loop_create(p, 0, 8, NULL, &l), APR_SUCCESS);
    memset(items, 0, sizeof(items));
    for (i = 0; i < 5; i++) {
        items[i].loop = l;
        items[i].id = i;
        items[i].after = apr_time_from_msec(after_ms[i]) + 1;
        items[i].log = log;
        items[i].nlog = &nlog;
        psc_loop_adopt(l, &items[i].item, &tl_ops, NULL);
    }
    psc_loop_run_local(l);
    assert_int_equal(nlog, 5);
    assert_int_equal(log[0], 3);
    assert_int_equal(log[1], 1);
    assert_int_equal(log[2], 4);
    assert_int_equal(log[3], 2);
    assert_int_equal(log[4], 0);
    for (i = 0; i < 5; i++) {
        assert_int_equal(items[i].adopted, 1);
        assert_int_equal(items[i].timers, 1);
        assert_int_equal(items[i].released, 1);
    }
    assert_int_equal(psc_loop_count(l), 0);
}

static void tl_on_io(psc_pollee_t *pe, apr_int16_t ev, apr_time_t now)
{
    tl_item_t *t = (tl_item_t *)((char *)pe - offsetof(tl_item_t, pollee));
    char buf[8];
    apr_size_t n = sizeof(buf);

    assert_true(ev & APR_POLLIN);
    t->ios++;
    apr_file_read(t->rd, buf, &n);
    psc_loop_watch(t->loop, &t->pfd, &t->events, 0);
    psc_loop_ready(t->loop, &t->item);        /* on_again retires it */
}

/* A readable pipe: on_io through the pollee, then on_again. */
static void test_loop_io_and_ready(void **state)
{
    apr_pool_t *p = *state;
    apr_file_t *wr;
    apr_size_t one = 1;
    tl_item_t t;
    psc_loop_t *l;

    assert_int_equal(psc_loop_create(p, 0, 8, NULL, &l), APR_SUCCESS);
    memset(&t, 0, sizeof(t));
    t.loop = l;
    assert_int_equal(apr_file_pipe_create_ex(&t.rd, &wr, APR_FULL_NONBLOCK, p),
                     APR_SUCCESS);
    t.pollee.on_io = tl_on_io;
    t.pfd.desc_type = APR_POLL_FILE;
    t.pfd.desc.f = t.rd;
    t.pfd.client_data = &t.pollee;
    t.pfd.p = p;
    assert_int_equal(psc_loop_watch(l, &t.pfd, &t.events, APR_POLLIN),
                     APR_SUCCESS);
    assert_int_equal(t.events, APR_POLLIN);
    psc_loop_adopt(l, &t.item, &tl_ops, NULL);
    apr_file_write(wr, "x", &one);
    psc_loop_run_local(l);
    assert_int_equal(t.ios, 1);
    assert_int_equal(t.agains, 1);
    assert_int_equal(t.released, 1);
    assert_int_equal(t.events, 0);
}

/* Connections that keep only a descriptor (psc_loop_fd_dup, fd_socket):
 * the loop lends them all one apr_socket_t, so the pollset must know them
 * by their pfd, not by desc.s.  a and b are watched, b is removed, a turn
 * passes (a copying pollset would recycle a's entry, found by the shared
 * desc.s), c is watched, a's peer writes: the event must reach a. */
static psc_loop_t *tf_loop;
static tl_item_t tf_a;
static psc_pollee_t tf_pe[3];
static apr_pollfd_t tf_pfd[3];
static apr_int16_t tf_ev[3];
static int tf_fd[3], tf_peer[3], tf_ios[3];

static void tf_watch(int i, apr_int16_t ev)
{
    tf_pfd[i].desc.s = psc_loop_fd_socket(tf_loop, tf_fd[i]);
    assert_non_null(tf_pfd[i].desc.s);
    assert_int_equal(psc_loop_watch(tf_loop, &tf_pfd[i], &tf_ev[i], ev),
                     APR_SUCCESS);
}

static void tf_on_io(psc_pollee_t *pe, apr_int16_t ev, apr_time_t now)
{
    int i = (int)(pe - tf_pe);
    char buf[8];

    tf_ios[i]++;
    assert_true(read(tf_fd[i], buf, sizeof(buf)) > 0);
    tf_watch(i, 0);
    psc_loop_retire(tf_loop, &tf_a.item);      /* the run ends either way */
}

static void tf_timer(psc_item_t *it, apr_time_t now)
{
    tf_watch(2, APR_POLLIN);
    assert_int_equal(write(tf_peer[0], "x", 1), 1);
    psc_loop_retire(tf_loop, it);
}

static const psc_item_ops_t tf_ops = {
    tl_adopt, tf_timer, tl_again, tl_shutdown, tl_abort, tl_release, tl_drop
};

static void test_loop_fd_sockets(void **state)
{
    apr_pool_t *p = *state;
    apr_socket_t *s = NULL;
    tl_item_t t;
    int i, sp[2];

    assert_int_equal(psc_loop_create(p, 0, 8, NULL, &tf_loop), APR_SUCCESS);
    for (i = 0; i < 3; i++) {
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), 0);
        assert_int_equal(apr_os_sock_put(&s, &sp[0], p), APR_SUCCESS);
        tf_fd[i] = psc_loop_fd_dup(s);          /* nonblocking dup() */
        assert_true(tf_fd[i] >= 0);
        assert_true(fcntl(tf_fd[i], F_GETFL) & O_NONBLOCK);
        close(sp[0]);
        tf_peer[i] = sp[1];
        tf_pe[i].on_io = tf_on_io;
        tf_pfd[i].desc_type = APR_POLL_SOCKET;
        tf_pfd[i].client_data = &tf_pe[i];
        tf_pfd[i].p = p;
    }
    tf_watch(0, APR_POLLIN);
    tf_watch(1, APR_POLLIN);
    tf_watch(1, 0);
    memset(&tf_a, 0, sizeof(tf_a));
    tf_a.loop = tf_loop;
    psc_loop_adopt(tf_loop, &tf_a.item, &tl_ops, NULL);
    memset(&t, 0, sizeof(t));
    t.loop = tf_loop;
    t.after = apr_time_from_msec(5);
    psc_loop_adopt(tf_loop, &t.item, &tf_ops, NULL);
    psc_loop_run_local(tf_loop);
    assert_int_equal(tf_ios[0], 1);
    assert_int_equal(tf_ios[1], 0);
    assert_int_equal(tf_ios[2], 0);
    assert_int_equal(tf_ev[0], 0);
    tf_watch(2, 0);
    for (i = 0; i < 3; i++) {
        close(tf_fd[i]);
        close(tf_peer[i]);
    }
}

static volatile int tl_ticks, tl_ext_shutdowns, tl_destroyed;

static void tl_ext_tick(void *b, apr_time_t now) { tl_ticks++; }
static void tl_ext_shutdown(void *b) { tl_ext_shutdowns++; }
static apr_uint32_t tl_ext_count(void *b) { return 0; }
static void tl_ext_destroy(void *b) { tl_destroyed++; }

static int tl_wait(volatile int *v, apr_interval_time_t max)
{
    apr_time_t until = apr_time_now() + max;

    while (!*v && apr_time_now() < until) {
        apr_sleep(apr_time_from_msec(2));
    }
    return *v;
}

/* The release rule, on a loop thread: retired at once, but released only
 * once the "worker" cleared its mark, and PSC_RELEASE_AGE after that. */
static void test_loop_release_rule(void **state)
{
    apr_pool_t *p = *state;
    void *volatile mark = (void *)&mark;      /* a worker holds it */
    psc_loop_ext_t ext = { NULL, tl_ext_tick, tl_ext_shutdown, tl_ext_count,
                           tl_ext_destroy };
    tl_item_t t, s;
    apr_time_t cleared;
    psc_loop_t *l;

    tl_ticks = tl_ext_shutdowns = tl_destroyed = 0;
    assert_int_equal(psc_loop_create(p, 1, 8, NULL, &l), APR_SUCCESS);
    assert_int_equal(psc_loop_add_ext(l, &ext), APR_SUCCESS);
    assert_int_equal(psc_loop_start(l, apr_thread_create), APR_SUCCESS);
    memset(&t, 0, sizeof(t));
    t.loop = l;
    t.after = 1;                                /* retired by its timer */
    psc_loop_adopt(l, &t.item, &tl_ops, (void *const *)&mark);
    assert_true(tl_wait(&t.timers, apr_time_from_sec(2)));
    apr_sleep(apr_time_from_msec(150));
    assert_int_equal(t.released, 0);            /* the worker is still there */
    assert_true(tl_ticks >= 1);
    cleared = apr_time_now();
    __atomic_store_n(&mark, NULL, __ATOMIC_RELEASE);
    assert_true(tl_wait(&t.released, apr_time_from_sec(2)));
    assert_true(t.released_at - cleared >= PSC_RELEASE_AGE);

    /* shutdown: live items and exts are told, the item ends */
    memset(&s, 0, sizeof(s));
    s.loop = l;
    psc_loop_adopt(l, &s.item, &tl_ops, NULL);
    assert_true(tl_wait(&s.adopted, apr_time_from_sec(2)));
    psc_loop_shutdown(l);
    assert_true(tl_wait(&s.released, apr_time_from_sec(2)));
    assert_int_equal(s.shutdowns, 1);
    assert_true(tl_wait(&tl_ext_shutdowns, apr_time_from_sec(2)));
    psc_loop_stop(l, apr_time_from_sec(1));
    assert_int_equal(tl_destroyed, 1);
    assert_int_equal(psc_loop_count(l), 0);
}

/* Stopping drops what is still retired (on_drop), never releases it. */
static void test_loop_stop_drops(void **state)
{
    apr_pool_t *p = *state;
    void *volatile mark = (void *)&mark;
    tl_item_t t;
    psc_loop_t *l;

    assert_int_equal(psc_loop_create(p, 1, 8, NULL, &l), APR_SUCCESS);
    assert_int_equal(psc_loop_start(l, apr_thread_create), APR_SUCCESS);
    memset(&t, 0, sizeof(t));
    t.loop = l;
    t.after = 1;
    psc_loop_adopt(l, &t.item, &tl_ops, (void *const *)&mark);
    assert_true(tl_wait(&t.timers, apr_time_from_sec(2)));
    psc_loop_stop(l, 0);
    assert_int_equal(t.released, 0);
    assert_int_equal(t.dropped, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        PS_TEST(test_loop_timers_in_order),
        PS_TEST(test_loop_io_and_ready),
        PS_TEST(test_loop_fd_sockets),
        PS_TEST(test_loop_release_rule),
        PS_TEST(test_loop_stop_drops),
    };
    PS_TEST_RUN(tests);
}
