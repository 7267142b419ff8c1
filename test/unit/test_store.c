/* test_store.c - the shared-memory store without httpd: channels, publish,
 * replay, limits, cleanup, worker slots, and repair after a lock owner dies. */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <apr_general.h>
#include <apr_pools.h>
#include "ps_store.h"

#define SEG (256 * 1024)

typedef struct fixture_t {
    apr_pool_t *pool;
    void *base;
    ps_store_t *st;
    ps_limits_t lim;
    apr_uint64_t free0;
} fixture_t;

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));
    ps_store_stats_t s;

    apr_pool_create(&f->pool, NULL);
    f->base = mmap(NULL, SEG, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
                   -1, 0);
    assert_true(f->base != MAP_FAILED);
    assert_int_equal(ps_store_format(f->base, SEG, 8, 1000), APR_SUCCESS);
    assert_true(ps_store_is_formatted(f->base, SEG));
    f->st = ps_store_attach(f->pool, f->base);
    f->lim.message_ttl = 60;
    f->lim.channel_inactivity = 30;
    ps_store_stats_locked(f->st, &s);
    f->free0 = s.free_bytes;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    munmap(f->base, SEG);
    apr_pool_destroy(f->pool);
    free(f);
    return 0;
}

static void assert_sound(fixture_t *f)
{
    const char *why = NULL;
    apr_uint64_t leaked = 0;
    int bad = ps_store_check_locked(f->st, &why);
    if (bad) {
        fail_msg("store check failed: %s", why);
    }
    /* and no in-use block unreachable from the roots (PS0060 at stop) */
    if (ps_store_leaks_locked(f->st, &leaked, &why)) {
        fail_msg("store leak check failed: %s (%llu blocks)", why,
                 (unsigned long long)leaked);
    }
}

static ps_channel_t *chan(fixture_t *f, const char *id, apr_int64_t now)
{
    ps_channel_t *ch = NULL;
    assert_int_equal(ps_store_get_or_create_locked(f->st, id, strlen(id), 0,
                                                   &f->lim, now, &ch),
                     APR_SUCCESS);
    return ch;
}

static void pub(fixture_t *f, ps_channel_t *ch, const char *text, int store,
                apr_int64_t now)
{
    assert_int_equal(ps_store_publish_locked(f->st, ch, text, strlen(text),
                                             NULL, 0, NULL, 0, store, &f->lim,
                                             now, NULL),
                     APR_SUCCESS);
}

/* Collects texts of the messages a callback sees, joined by ','. */
typedef struct collect_t {
    char buf[4096];
    int n;
    int deleted;
} collect_t;

static void collect_cb(void *baton, const ps_logmsg_t *m)
{
    collect_t *c = baton;
    if (c->n++) {
        strcat(c->buf, ",");
    }
    strncat(c->buf, m->view.text, m->view.text_len);
    c->deleted += m->deleted_notice;
}

static void test_publish_and_log(void **state)
{
    fixture_t *f = *state;
    ps_channel_t *ch;
    collect_t c = {{0}};
    ps_chinfo_t info;

    ps_store_lock(f->st, NULL);
    ch = chan(f, "ch1", 1000);
    pub(f, ch, "a", 1, 1000);
    pub(f, ch, "b", 0, 1000);
    assert_int_equal(ps_store_read_log_locked(f->st, 0, collect_cb, &c, NULL), 2);
    assert_string_equal(c.buf, "a,b");
    ps_store_channel_info_locked(f->st, ch, &info);
    assert_int_equal(info.published_messages, 2);
    assert_int_equal(info.stored_messages, 1);
    assert_true(ps_store_find_locked(f->st, "ch1", 3) == ch);
    assert_null(ps_store_find_locked(f->st, "ch2", 3));
    assert_sound(f);
    ps_store_unlock(f->st);
}

static void test_binary_safe(void **state)
{
    fixture_t *f = *state;
    char text[512];
    int i;
    ps_channel_t *ch;

    for (i = 0; i < (int)sizeof(text); i++) {
        text[i] = (char)(i * 7);
    }
    ps_store_lock(f->st, NULL);
    ch = chan(f, "bin", 1000);
    assert_int_equal(ps_store_publish_locked(f->st, ch, text, sizeof(text), NULL,
                                             0, NULL, 0, 1, &f->lim, 1000, NULL),
                     APR_SUCCESS);
    ps_store_unlock(f->st);
}

static void test_tags_zone_wide(void **state)
{
    fixture_t *f = *state;
    ps_channel_t *a, *b;
    ps_replay_t q = { 0, 999, -1, NULL, 0 };
    collect_t c = {{0}};

    ps_store_lock(f->st, NULL);
    a = chan(f, "a", 1000);
    b = chan(f, "b", 1000);
    pub(f, a, "a1", 1, 1000);      /* tag 1 */
    pub(f, b, "b1", 1, 1000);      /* tag 2: same second, other channel */
    pub(f, b, "b2", 1, 1000);      /* tag 3 */
    pub(f, b, "b3", 1, 1001);      /* tag 1 */
    /* since 1000 tag 2: b1 itself is skipped, later ones come */
    q.since = 1000;
    q.tag = 2;
    ps_store_replay_locked(f->st, b, &q, 1001, collect_cb, &c);
    assert_string_equal(c.buf, "b2,b3");
    /* since 1000 without tag: messages of that second are excluded */
    memset(&c, 0, sizeof(c));
    q.tag = -1;
    ps_store_replay_locked(f->st, b, &q, 1001, collect_cb, &c);
    assert_string_equal(c.buf, "b3");
    ps_store_unlock(f->st);
}

static void test_replay_backtrack_and_event_id(void **state)
{
    fixture_t *f = *state;
    ps_channel_t *ch;
    ps_replay_t q = { 2, -1, -1, NULL, 0 };
    collect_t c = {{0}};

    ps_store_lock(f->st, NULL);
    ch = chan(f, "r", 1000);
    assert_int_equal(ps_store_publish_locked(f->st, ch, "m1", 2, "e1", 2, "t", 1,
                                             1, &f->lim, 1000, NULL), 0);
    assert_int_equal(ps_store_publish_locked(f->st, ch, "m2", 2, "e2", 2, NULL, 0,
                                             1, &f->lim, 1000, NULL), 0);
    pub(f, ch, "m3", 1, 1000);
    assert_int_equal(ps_store_replay_locked(f->st, ch, &q, 1000, collect_cb, &c), 2);
    assert_string_equal(c.buf, "m2,m3");
    memset(&c, 0, sizeof(c));
    q.backtrack = 10;
    ps_store_replay_locked(f->st, ch, &q, 1000, collect_cb, &c);
    assert_string_equal(c.buf, "m1,m2,m3");
    memset(&c, 0, sizeof(c));
    q.backtrack = 0;
    q.last_event_id = "e1";
    q.last_event_id_len = 2;
    ps_store_replay_locked(f->st, ch, &q, 1000, collect_cb, &c);
    assert_string_equal(c.buf, "m2,m3");
    memset(&c, 0, sizeof(c));
    q.last_event_id = "nope";
    q.last_event_id_len = 4;
    assert_int_equal(ps_store_replay_locked(f->st, ch, &q, 1000, collect_cb, &c), 0);
    assert_false(ps_replay_wanted(&(ps_replay_t){ 0, -1, -1, NULL, 0 }));
    ps_store_unlock(f->st);
}

static void test_max_stored_and_ttl(void **state)
{
    fixture_t *f = *state;
    ps_channel_t *ch;
    ps_store_stats_t s;
    int i;

    f->lim.max_stored_per_channel = 3;
    f->lim.message_ttl = 5;
    ps_store_lock(f->st, NULL);
    ch = chan(f, "q", 1000);
    for (i = 0; i < 5; i++) {
        pub(f, ch, "x", 1, 1000);
    }
    assert_int_equal(ps_store_channel_stored(ch), 3);
    ps_store_stats_locked(f->st, &s);
    assert_int_equal(s.stored_messages, 3);
    assert_int_equal(s.messages_in_trash, 2);
    ps_store_cleanup_locked(f->st, 1004);
    assert_int_equal(ps_store_channel_stored(ch), 3);
    ps_store_cleanup_locked(f->st, 1005);             /* ttl reached */
    ps_store_stats_locked(f->st, &s);
    assert_int_equal(s.stored_messages, 0);
    assert_int_equal(s.messages_in_trash, 5);
    assert_sound(f);
    /* channel idle since 1000 (+30 s inactivity), trash freed 10 s later */
    ps_store_cleanup_locked(f->st, 1031);
    ps_store_stats_locked(f->st, &s);
    assert_int_equal(s.channels, 0);
    assert_int_equal(s.channels_in_trash, 1);
    ps_store_cleanup_locked(f->st, 1045);
    ps_store_stats_locked(f->st, &s);
    assert_int_equal(s.messages_in_trash, 0);
    assert_int_equal(s.channels_in_trash, 0);
    assert_int_equal(s.free_bytes, f->free0);          /* nothing leaked */
    assert_sound(f);
    ps_store_unlock(f->st);
}

static void test_limits(void **state)
{
    fixture_t *f = *state;
    ps_channel_t *ch;

    f->lim.max_channels = 2;
    f->lim.max_subscribers_per_channel = 1;
    ps_store_lock(f->st, NULL);
    ch = chan(f, "l1", 1000);
    chan(f, "l2", 1000);
    assert_int_equal(ps_store_get_or_create_locked(f->st, "l3", 2, 0, &f->lim,
                                                   1000, &ch), PS_E_LIMIT);
    ch = ps_store_find_locked(f->st, "l1", 2);
    assert_int_equal(ps_store_subscribe_locked(f->st, ch, 0, &f->lim, 1000), 0);
    assert_int_equal(ps_store_subscribe_locked(f->st, ch, 0, &f->lim, 1000),
                     PS_E_LIMIT);
    ps_store_unlock(f->st);
}

static void test_segment_full_recovers(void **state)
{
    fixture_t *f = *state;
    char big[3000];
    ps_channel_t *ch;
    apr_status_t rv = APR_SUCCESS;
    int n = 0;

    memset(big, 'z', sizeof(big));
    f->lim.message_ttl = 2;
    ps_store_lock(f->st, NULL);
    ch = chan(f, "full", 1000);
    while (rv == APR_SUCCESS && n < 10000) {
        rv = ps_store_publish_locked(f->st, ch, big, sizeof(big), NULL, 0, NULL,
                                     0, 1, &f->lim, 1000, NULL);
        n++;
    }
    assert_int_equal(rv, APR_ENOMEM);
    assert_true(n > 20);
    assert_sound(f);
    /* still full within the ttl */
    assert_int_equal(ps_store_publish_locked(f->st, ch, big, sizeof(big), NULL, 0,
                                             NULL, 0, 1, &f->lim, 1001, NULL),
                     APR_ENOMEM);
    /* ttl + trash grace later, the publish itself makes room */
    assert_int_equal(ps_store_publish_locked(f->st, ch, big, sizeof(big), NULL, 0,
                                             NULL, 0, 1, &f->lim, 1000 + 2 + 11,
                                             NULL),
                     APR_SUCCESS);
    assert_sound(f);
    ps_store_unlock(f->st);
}

/* A publish that finds the segment full reclaims memory; that cleanup must
 * not collect a channel the publish has already found (idle: no message,
 * no subscriber, inactivity passed), or the message goes into a channel
 * already in the trash: lost for subscribers, and stored there it would
 * never be freed.  ps_pub_store()'s order: find (or create) every channel,
 * then ps_store_publish_all_locked(). */
static void test_full_publish_keeps_found_channel(void **state)
{
    fixture_t *f = *state;
    char big[3000];
    ps_channel_t *fill, *idle[2], *ch;
    apr_status_t rv = APR_SUCCESS;
    collect_t c;
    ps_replay_t q = { 10, -1, -1, NULL, 0 };
    int n = 0;

    memset(big, 'z', sizeof(big));
    f->lim.message_ttl = 2;
    f->lim.channel_inactivity = 5;
    ps_store_lock(f->st, NULL);
    idle[0] = chan(f, "idle", 1000);
    idle[1] = chan(f, "idle2", 1000);
    fill = chan(f, "fill", 1000);
    while (rv == APR_SUCCESS && n < 10000) {
        rv = ps_store_publish_locked(f->st, fill, big, sizeof(big), NULL, 0,
                                     NULL, 0, 1, &f->lim, 1000, NULL);
        n++;
    }
    assert_int_equal(rv, APR_ENOMEM);
    /* 1010: the fill expired (not yet popped), both idle channels are due
     * for collection, no cleanup has run since */
    assert_ptr_equal(chan(f, "idle", 1010), idle[0]);
    assert_ptr_equal(chan(f, "idle2", 1010), idle[1]);
    assert_int_equal(ps_store_publish_all_locked(f->st, idle, 2, big,
                                                 sizeof(big), NULL, 0, NULL, 0,
                                                 1, &f->lim, 1010),
                     APR_SUCCESS);
    ch = ps_store_find_locked(f->st, "idle", 4);
    assert_ptr_equal(ch, idle[0]);
    assert_int_equal(ps_store_channel_stored(ch), 1);
    memset(&c, 0, sizeof(c));
    assert_int_equal(ps_store_replay_locked(f->st, ch, &q, 1010, collect_cb, &c),
                     1);
    ch = ps_store_find_locked(f->st, "idle2", 5);
    assert_ptr_equal(ch, idle[1]);
    assert_int_equal(ps_store_channel_stored(ch), 1);
    assert_sound(f);
    /* the inactivity runs again from the publish; then all is freed */
    ps_store_cleanup_locked(f->st, 1011);
    assert_non_null(ps_store_find_locked(f->st, "idle", 4));
    ps_store_cleanup_locked(f->st, 1100);
    ps_store_cleanup_locked(f->st, 1200);
    assert_null(ps_store_find_locked(f->st, "idle", 4));
    assert_sound(f);
    ps_store_unlock(f->st);
}

static void test_delete_with_subscribers(void **state)
{
    fixture_t *f = *state;
    ps_channel_t *ch, *again;
    collect_t c = {{0}};
    apr_uint64_t ref, serial, seq;
    ps_store_stats_t s;

    ps_store_lock(f->st, NULL);
    ch = chan(f, "d", 1000);
    pub(f, ch, "stored", 1, 1000);
    assert_int_equal(ps_store_subscribe_locked(f->st, ch, 3, &f->lim, 1000), 0);
    ref = ps_store_channel_ref(f->st, ch);
    serial = ps_store_channel_serial(ch);
    seq = ps_store_seq_locked(f->st);
    assert_int_equal(ps_store_delete_locked(f->st, ch, "bye", 3, 1001), 0);
    assert_null(ps_store_find_locked(f->st, "d", 1));
    ps_store_read_log_locked(f->st, seq, collect_cb, &c, NULL);
    assert_string_equal(c.buf, "bye");
    assert_int_equal(c.deleted, 1);
    ps_store_stats_locked(f->st, &s);
    assert_int_equal(s.channels, 0);
    assert_int_equal(s.channels_in_delete, 1);
    assert_int_equal(s.stored_messages, 0);
    /* a new channel with the same id starts over */
    again = chan(f, "d", 1001);
    assert_true(ps_store_channel_serial(again) != serial);
    ps_store_unsubscribe_locked(f->st, ref, serial, 3, &f->lim, 1002);
    ps_store_stats_locked(f->st, &s);
    assert_int_equal(s.channels_in_delete, 0);
    assert_int_equal(s.channels_in_trash, 1);
    assert_sound(f);
    ps_store_unlock(f->st);
}

static int dead_pid(apr_int32_t pid)
{
    return 0;
}

static void test_worker_reap(void **state)
{
    fixture_t *f = *state;
    ps_channel_t *ch;
    ps_worker_info_t w[8];
    ps_store_stats_t s;
    int slot;

    ps_store_lock(f->st, NULL);
    slot = ps_store_worker_claim_locked(f->st, 4242, 1000);
    assert_true(slot >= 0);
    ch = chan(f, "w", 1000);
    ps_store_subscribe_locked(f->st, ch, slot, &f->lim, 1000);
    ps_store_subscribe_locked(f->st, ch, slot, &f->lim, 1000);
    ps_store_worker_conn_locked(f->st, slot, 2);
    assert_int_equal(ps_store_workers_locked(f->st, w, 8), 1);
    assert_int_equal(w[0].subscribers, 2);
    assert_int_equal(ps_store_reap_dead_locked(f->st, dead_pid), 1);
    assert_int_equal(ps_store_channel_subscribers(ch), 0);
    ps_store_stats_locked(f->st, &s);
    assert_int_equal(s.subscribers, 0);
    assert_int_equal(ps_store_workers_locked(f->st, w, 8), 0);
    assert_sound(f);
    ps_store_unlock(f->st);
}

/* A child process takes the lock, leaves the segment half-changed (a block
 * allocated and never linked, a queue tail pointing past its head) and is
 * killed.  The next locker must repair it: sound again, nothing leaked. */
static void test_repair_after_owner_died(void **state)
{
    fixture_t *f = *state;
    ps_channel_t *ch;
    ps_store_stats_t s;
    int repaired = 0, status;
    pid_t pid;

    ps_store_lock(f->st, NULL);
    ch = chan(f, "k", 1000);
    pub(f, ch, "one", 1, 1000);
    pub(f, ch, "two", 1, 1000);
    ps_store_unlock(f->st);

    pid = fork();
    if (pid == 0) {
        ps_store_lock(f->st, NULL);
        ps_store_publish_locked(f->st, ch, "three", 5, NULL, 0, NULL, 0, 1,
                                &f->lim, 1000, NULL);
        /* simulate dying between the two stores of an append */
        pub(f, ps_store_find_locked(f->st, "k", 1), "four", 1, 1000);
        kill(getpid(), SIGKILL);
        _exit(0);
    }
    waitpid(pid, &status, 0);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(ps_store_lock(f->st, &repaired), APR_SUCCESS);
    assert_int_equal(repaired, 1);
    assert_sound(f);
    ps_store_stats_locked(f->st, &s);
    assert_int_equal(s.recoveries, 1);
    assert_int_equal(s.stored_messages, 4);
    pub(f, ch, "five", 1, 1001);
    assert_sound(f);
    ps_store_unlock(f->st);
    /* the lock is usable again from here */
    assert_int_equal(ps_store_lock(f->st, &repaired), APR_SUCCESS);
    assert_int_equal(repaired, 0);
    ps_store_unlock(f->st);
}

static void test_repair_frees_orphans(void **state)
{
    fixture_t *f = *state;
    ps_store_stats_t before, after;
    int status;
    pid_t pid;

    ps_store_lock(f->st, NULL);
    ps_store_stats_locked(f->st, &before);
    ps_store_unlock(f->st);
    pid = fork();
    if (pid == 0) {
        ps_channel_t *ch;
        ps_store_lock(f->st, NULL);
        ch = chan(f, "orphan", 1000);
        pub(f, ch, "x", 1, 1000);
        /* cut the channel out of its chain by hand: everything it owns is
         * now unreachable garbage */
        ps_store_delete_locked(f->st, ch, "", 0, 1000);
        kill(getpid(), SIGKILL);
        _exit(0);
    }
    waitpid(pid, &status, 0);
    ps_store_lock(f->st, NULL);
    assert_sound(f);
    ps_store_cleanup_locked(f->st, 1100);
    ps_store_stats_locked(f->st, &after);
    assert_int_equal(after.free_bytes, before.free_bytes);
    ps_store_unlock(f->st);
}

/* Many random operations; the structure must stay sound throughout. */
static void test_random_ops(void **state)
{
    fixture_t *f = *state;
    apr_int64_t now = 1000;
    unsigned seed = 12345;
    int i;

    f->lim.max_stored_per_channel = 5;
    f->lim.message_ttl = 3;
    f->lim.channel_inactivity = 2;
    ps_store_lock(f->st, NULL);
    for (i = 0; i < 20000; i++) {
        char id[16];
        ps_channel_t *ch = NULL;
        int op = (int)(rand_r(&seed) % 10);
        snprintf(id, sizeof(id), "c%u", rand_r(&seed) % 50);
        if (op < 6) {
            char text[600];
            size_t len = rand_r(&seed) % sizeof(text);
            memset(text, 'a' + op, len);
            if (ps_store_get_or_create_locked(f->st, id, strlen(id), 0, &f->lim,
                                              now, &ch) == APR_SUCCESS) {
                ps_store_publish_locked(f->st, ch, text, len, NULL, 0, NULL, 0,
                                        op & 1, &f->lim, now, NULL);
            }
        }
        else if (op == 6 && (ch = ps_store_find_locked(f->st, id, strlen(id)))) {
            ps_store_delete_locked(f->st, ch, "gone", 4, now);
        }
        else if (op == 7) {
            now++;
            ps_store_cleanup_locked(f->st, now);
        }
        if (i % 1000 == 0) {
            assert_sound(f);
        }
    }
    ps_store_cleanup_locked(f->st, now + 100);
    ps_store_cleanup_locked(f->st, now + 200);
    assert_sound(f);
    {
        ps_store_stats_t s;
        ps_store_stats_locked(f->st, &s);
        assert_int_equal(s.channels, 0);
        assert_int_equal(s.free_bytes, f->free0);
    }
    ps_store_unlock(f->st);
}

static void test_events_channel(void **state)
{
    fixture_t *f = *state;
    ps_channel_t *ev, *ch;
    ps_replay_t q = { 100, -1, -1, NULL, 0 };
    collect_t c = {{0}};
    ps_store_stats_t s;

    ps_store_lock(f->st, NULL);
    assert_int_equal(ps_store_events_channel_locked(f->st, "events", 6, &f->lim,
                                                    1000), APR_SUCCESS);
    ev = ps_store_find_locked(f->st, "events", 6);
    assert_non_null(ev);
    assert_true(ps_store_channel_is_events(ev));
    ch = chan(f, "x", 1000);
    ps_store_subscribe_locked(f->st, ch, 0, &f->lim, 1000);
    ps_store_unsubscribe_locked(f->st, ps_store_channel_ref(f->st, ch),
                                ps_store_channel_serial(ch), 0, &f->lim, 1000);
    pub(f, ch, "m", 1, 1000);
    ps_store_delete_locked(f->st, ch, "", 0, 1001);
    ps_store_replay_locked(f->st, ev, &q, 1001, collect_cb, &c);
    assert_string_equal(c.buf,
        "{\"type\": \"channel_created\", \"channel\": \"x\"},"
        "{\"type\": \"client_subscribed\", \"channel\": \"x\"},"
        "{\"type\": \"client_unsubscribed\", \"channel\": \"x\"},"
        "{\"type\": \"channel_destroyed\", \"channel\": \"x\"}");
    ps_store_stats_locked(f->st, &s);
    assert_int_equal(s.channels, 1);             /* the events channel */
    assert_int_equal(s.published_messages, 1);   /* events not counted */
    assert_int_equal(s.stored_messages, 0);
    ps_store_cleanup_locked(f->st, 5000);        /* never collected */
    assert_non_null(ps_store_find_locked(f->st, "events", 6));
    assert_sound(f);
    ps_store_unlock(f->st);
}

/* ---- issue 20: a channel named twice ------------------------------------- */

static void stats_of(fixture_t *f, ps_store_stats_t *s)
{
    ps_store_stats_locked(f->st, s);
}

/* "DELETE /pub?id=dupA/dupA" as the publisher did it before the list was
 * de-duplicated: both names found first, then both deleted.  The second
 * delete is a no-op: nothing goes below zero, the trash holds the channel
 * once (it used to link it to itself: a cycle the cleanup spun in). */
static void test_delete_same_channel_twice(void **state)
{
    fixture_t *f = *state;
    ps_channel_t *a, *b;
    ps_store_stats_t s;

    ps_store_lock(f->st, NULL);
    a = chan(f, "dupA", 1000);
    pub(f, a, "x", 1, 1000);
    b = ps_store_find_locked(f->st, "dupA", 4);
    assert_ptr_equal(a, b);
    assert_int_equal(ps_store_delete_locked(f->st, a, "bye", 3, 1000), 0);
    assert_int_equal(ps_store_delete_locked(f->st, b, "bye", 3, 1000), 0);
    stats_of(f, &s);
    assert_int_equal(s.channels, 0);
    assert_int_equal(s.channels_in_trash, 1);
    assert_int_equal(s.channels_in_delete, 0);
    assert_int_equal(s.stored_messages, 0);
    assert_sound(f);
    ps_store_cleanup_locked(f->st, 1002);           /* returns */
    ps_store_cleanup_locked(f->st, 1000 + 2 * PS_TRASH_GRACE);
    stats_of(f, &s);
    assert_int_equal(s.channels_in_trash, 0);
    assert_int_equal(s.messages_in_trash, 0);
    assert_int_equal(s.free_bytes, f->free0);
    assert_sound(f);
    ps_store_unlock(f->st);
}

/* "DELETE /pub?id=dupB.b1/dupB" with a subscriber: queued for deletion
 * once, the channel count stays 0 (was 2^64-1), the unsubscribe trashes it
 * once. */
static void test_delete_twice_with_subscriber(void **state)
{
    fixture_t *f = *state;
    ps_channel_t *ch;
    ps_store_stats_t s;
    apr_uint64_t ref, serial;

    ps_store_lock(f->st, NULL);
    ch = chan(f, "dupB", 1000);
    assert_int_equal(ps_store_subscribe_locked(f->st, ch, 1, &f->lim, 1000), 0);
    ps_store_worker_conn_locked(f->st, 1, 1);
    ref = ps_store_channel_ref(f->st, ch);
    serial = ps_store_channel_serial(ch);
    ps_store_delete_locked(f->st, ch, "bye", 3, 1000);
    ps_store_delete_locked(f->st, ch, "bye", 3, 1000);
    stats_of(f, &s);
    assert_int_equal(s.channels, 0);
    assert_int_equal(s.channels_in_delete, 1);
    assert_int_equal(s.channels_in_trash, 0);
    assert_sound(f);
    ps_store_unsubscribe_locked(f->st, ref, serial, 1, &f->lim, 1001);
    ps_store_unsubscribe_locked(f->st, ref, serial, 1, &f->lim, 1001);
    ps_store_worker_conn_locked(f->st, 1, -1);
    ps_store_worker_conn_locked(f->st, 1, -1);      /* one too many */
    stats_of(f, &s);
    assert_int_equal(s.channels_in_delete, 0);
    assert_int_equal(s.channels_in_trash, 1);
    assert_int_equal(s.subscribers, 0);             /* not 2^64-1 */
    assert_sound(f);
    ps_store_cleanup_locked(f->st, 1001 + PS_TRASH_GRACE);
    stats_of(f, &s);
    assert_int_equal(s.channels_in_trash, 0);
    assert_sound(f);
    ps_store_unlock(f->st);
}

/* A deleted channel the cleanup collected as idle, deleted again, or a
 * trashed one deleted: no-ops. */
static void test_delete_after_collect(void **state)
{
    fixture_t *f = *state;
    ps_channel_t *ch;
    ps_store_stats_t s;

    ps_store_lock(f->st, NULL);
    ch = chan(f, "idle", 1000);
    ps_store_cleanup_locked(f->st, 1000 + f->lim.channel_inactivity);
    stats_of(f, &s);
    assert_int_equal(s.channels, 0);
    assert_int_equal(s.channels_in_trash, 1);
    assert_int_equal(ps_store_delete_locked(f->st, ch, "x", 1, 1040), 0);
    stats_of(f, &s);
    assert_int_equal(s.channels, 0);
    assert_int_equal(s.channels_in_trash, 1);
    assert_sound(f);
    ps_store_unlock(f->st);
}

/* The consistency walk behind PS0060 finds a cycle in the trash (and a
 * channel whose state does not match its list) instead of spinning. */
static void test_check_finds_cycles(void **state)
{
    fixture_t *f = *state;
    ps_channel_t *ch, *other;
    apr_uint64_t ref, leaked = 0;
    const char *why = NULL;

    ps_store_lock(f->st, NULL);
    ch = chan(f, "loop", 1000);
    other = chan(f, "loop2", 1000);
    ref = ps_store_channel_ref(f->st, ch);
    ps_store_delete_locked(f->st, other, "", 0, 1000);
    ps_store_delete_locked(f->st, ch, "", 0, 1000);
    assert_sound(f);
    /* white box: a channel's first field is its list link; make the trash
     * (ch -> other) point back to ch, as the double delete used to */
    *(apr_uint64_t *)((char *)f->base + ps_store_channel_ref(f->st, other))
        = ref;
    assert_int_equal(ps_store_check_locked(f->st, &why), 1);
    assert_string_equal(why, "channel trash list is a cycle");
    assert_int_equal(ps_store_leaks_locked(f->st, &leaked, &why), 1);
    *(apr_uint64_t *)((char *)f->base + ps_store_channel_ref(f->st, other)) = 0;
    assert_sound(f);
    /* a live channel linked into the trash too */
    ch = chan(f, "live", 1000);
    *(apr_uint64_t *)((char *)f->base + ps_store_channel_ref(f->st, other))
        = ps_store_channel_ref(f->st, ch);
    assert_int_equal(ps_store_check_locked(f->st, &why), 1);
    assert_string_equal(why, "channel in a list its state does not match");
    *(apr_uint64_t *)((char *)f->base + ps_store_channel_ref(f->st, other)) = 0;
    assert_sound(f);
    ps_store_unlock(f->st);
}

/* The events channel's JSON names an id with quotes and odd bytes in a
 * form JSON readers parse. */
static void test_events_escape_ids(void **state)
{
    fixture_t *f = *state;
    ps_channel_t *ev, *ch;
    ps_replay_t q = { 100, -1, -1, NULL, 0 };
    collect_t c = {{0}};

    ps_store_lock(f->st, NULL);
    ps_store_events_channel_locked(f->st, "ev", 2, &f->lim, 1000);
    ev = ps_store_find_locked(f->st, "ev", 2);
    ch = chan(f, "a\"b\\c\xff", 1000);
    ps_store_replay_locked(f->st, ev, &q, 1000, collect_cb, &c);
    assert_string_equal(c.buf, "{\"type\": \"channel_created\", \"channel\": "
                               "\"a\\\"b\\\\c\\ufffd\"}");
    (void)ch;
    assert_sound(f);
    ps_store_unlock(f->st);
}

static void test_too_small(void **state)
{
    char small[1024];
    assert_int_equal(ps_store_format(small, sizeof(small), 4, 0), APR_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_publish_and_log, setup, teardown),
        cmocka_unit_test_setup_teardown(test_binary_safe, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tags_zone_wide, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replay_backtrack_and_event_id, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_max_stored_and_ttl, setup, teardown),
        cmocka_unit_test_setup_teardown(test_limits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_segment_full_recovers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_full_publish_keeps_found_channel,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_delete_with_subscribers, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_worker_reap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_repair_after_owner_died, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_repair_frees_orphans, setup, teardown),
        cmocka_unit_test_setup_teardown(test_random_ops, setup, teardown),
        cmocka_unit_test_setup_teardown(test_events_channel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delete_same_channel_twice, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_delete_twice_with_subscriber, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_delete_after_collect, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_check_finds_cycles, setup, teardown),
        cmocka_unit_test_setup_teardown(test_events_escape_ids, setup, teardown),
        cmocka_unit_test(test_too_small),
    };
    apr_initialize();
    return cmocka_run_group_tests_name("store", tests, NULL, NULL);
}
