/* ps_store.c - channels, messages and the publish log in shared memory.
 * See ps_store.h for the model; ps_alloc.c for the allocator underneath. */

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <apr_strings.h>
#include "ps_store.h"
#include "ps_alloc.h"
#include "ps_escape.h"

#define PS_MAGIC   0x3153504dU          /* "MPS1" */
#define PS_LAYOUT  3

#define PS_CH_WILDCARD  1u
#define PS_CH_EVENTS    2u
#define PS_CH_DELETED   4u              /* out of the lookup, has subscribers */
#define PS_CH_TRASH     8u

#define PS_MSG_STORED   1u
#define PS_MSG_DELETED  2u              /* channel-deleted notice */

typedef apr_uint64_t ps_off_t;          /* offset from the segment base; 0 = none */

/* Subscriptions of one worker slot to one channel. */
typedef struct ps_wsub_t {
    ps_off_t next;
    apr_int64_t slot;
    apr_uint64_t count;
} ps_wsub_t;

struct ps_channel_t {
    ps_off_t next;                      /* hash chain, deleted list or trash */
    apr_uint64_t serial;                /* unique; creation order */
    ps_off_t msg_head, msg_tail;        /* stored messages, oldest first */
    ps_off_t wsubs;
    apr_uint64_t published;             /* last message id */
    apr_uint64_t stored;
    apr_uint64_t subscribers;
    apr_int64_t expires;                /* inactivity deadline / trash deadline */
    apr_uint32_t flags;
    apr_uint32_t hash;
    apr_uint32_t id_len;
    char id[];                          /* NUL-terminated */
};

typedef struct ps_smsg_t {
    ps_off_t next;                      /* channel queue or trash */
    apr_uint64_t seq;
    apr_uint64_t channel_serial;
    apr_int64_t id, time, tag, expires;
    apr_int64_t born;                   /* when it entered the log */
    apr_uint64_t text_len;
    apr_uint32_t flags, channel_len, eid_len, et_len;
    char data[];                        /* channel\0 text\0 event-id\0 event-type\0 */
} ps_smsg_t;

typedef struct ps_ring_t {
    apr_uint64_t seq;
    ps_off_t off;
} ps_ring_t;

typedef struct ps_wslot_t {
    apr_int32_t pid;                    /* 0 = free */
    apr_int32_t pad;
    apr_uint64_t subscribers;           /* connections */
    apr_int64_t started;
} ps_wslot_t;

typedef struct ps_shm_t {
    apr_uint32_t magic, layout;
    apr_uint64_t size;
    pthread_mutex_t lock;
    char pad1[64];
    apr_uint32_t wake;                  /* futex word, own cache line */
    char pad2[60];
    apr_uint64_t seq, serial;
    apr_int64_t created, tag_time, tag_last, next_cleanup;
    apr_uint64_t channels, wildcard_channels, published, stored;
    apr_uint64_t msgs_in_trash, ch_in_delete, ch_in_trash, subscribers;
    apr_uint64_t recoveries;
    apr_uint64_t subs_changes;          /* a channel's subscribers changed */
    apr_uint64_t auth_refused[2];       /* 401s, 403s (atomic, no lock) */
    ps_off_t deleted_head;
    ps_off_t trash_msg_head, trash_msg_tail;
    ps_off_t trash_ch_head;
    apr_uint64_t nbuckets, nring, nworkers;
    ps_off_t buckets, ring, workers;
    ps_off_t events_ch;                 /* the events channel, 0 = none */
    ps_limits_t events_lim;
    ps_arena_t arena;
} ps_shm_t;

struct ps_store_t {
    char *base;
    ps_shm_t *sh;
};

/* Under the lock; read without it (ps_store_subs_changes). */
static void ps_subs_changed(ps_store_t *st)
{
    __atomic_add_fetch(&st->sh->subs_changes, 1, __ATOMIC_RELAXED);
}

#define PS_PTR(st, off)  ((void *)((st)->base + (off)))
#define PS_OFF(st, ptr)  ((ps_off_t)((char *)(ptr) - (st)->base))
#define PS_CH(st, off)   ((ps_channel_t *)PS_PTR(st, off))
#define PS_MSG(st, off)  ((ps_smsg_t *)PS_PTR(st, off))

static ps_off_t *ps_buckets(ps_store_t *st)
{
    return PS_PTR(st, st->sh->buckets);
}

static ps_ring_t *ps_ring(ps_store_t *st)
{
    return PS_PTR(st, st->sh->ring);
}

static ps_wslot_t *ps_wslots(ps_store_t *st)
{
    return PS_PTR(st, st->sh->workers);
}

static apr_uint32_t ps_hash(const char *s, apr_size_t len)
{
    apr_uint32_t h = 2166136261u;           /* FNV-1a */
    apr_size_t i;
    for (i = 0; i < len; i++) {
        h = (h ^ (unsigned char)s[i]) * 16777619u;
    }
    return h;
}

/* Zone counters never go below zero: a decrement of 0 stays 0 (and the
 * consistency walk, PS0060, reports the counter as out of step). */
static void ps_dec(apr_uint64_t *v, apr_uint64_t by)
{
    *v = *v > by ? *v - by : 0;
}

static ps_off_t ps_align64(ps_off_t v)
{
    return (v + 63) & ~(ps_off_t)63;
}

static apr_uint64_t ps_pow2_clamp(apr_uint64_t v, apr_uint64_t lo,
                                  apr_uint64_t hi)
{
    apr_uint64_t p = lo;
    while (p < v && p < hi) {
        p <<= 1;
    }
    return p;
}

/* ---- segment life ------------------------------------------------------ */

apr_size_t ps_store_min_size(void)
{
    return 128 * 1024;
}

static apr_status_t ps_lock_init(pthread_mutex_t *m)
{
    pthread_mutexattr_t attr;
    int rc;

    pthread_mutexattr_init(&attr);
    pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
    pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
    rc = pthread_mutex_init(m, &attr);
    pthread_mutexattr_destroy(&attr);
    return rc ? APR_FROM_OS_ERROR(rc) : APR_SUCCESS;
}

apr_status_t ps_store_format(void *base, apr_size_t size, int nworkers,
                             apr_int64_t now)
{
    ps_shm_t *sh = base;
    ps_off_t off;

    if (size < ps_store_min_size() || nworkers < 1) {
        return APR_EINVAL;
    }
    memset(sh, 0, sizeof(*sh));
    sh->size = size;
    sh->created = now;
    sh->nworkers = (apr_uint64_t)nworkers;
    sh->nbuckets = ps_pow2_clamp(size / 4096, 64, 1u << 20);
    sh->nring = ps_pow2_clamp(size / 512, 1024, 1u << 20);

    off = ps_align64(sizeof(*sh));
    sh->workers = off;
    off = ps_align64(off + sh->nworkers * sizeof(ps_wslot_t));
    sh->buckets = off;
    off = ps_align64(off + sh->nbuckets * sizeof(ps_off_t));
    sh->ring = off;
    off = ps_align64(off + sh->nring * sizeof(ps_ring_t));
    if (off + 16 * 1024 > size) {
        return APR_EINVAL;
    }
    memset((char *)base + sh->workers, 0, off - sh->workers);
    ps_arena_init(base, &sh->arena, off, size);
    if (ps_lock_init(&sh->lock) != APR_SUCCESS) {
        return APR_EGENERAL;
    }
    sh->layout = PS_LAYOUT;
    __atomic_store_n(&sh->magic, PS_MAGIC, __ATOMIC_RELEASE);
    return APR_SUCCESS;
}

int ps_store_is_formatted(const void *base, apr_size_t size)
{
    const ps_shm_t *sh = base;
    return sh->magic == PS_MAGIC && sh->layout == PS_LAYOUT
           && sh->size == size;
}

ps_store_t *ps_store_attach(apr_pool_t *p, void *base)
{
    ps_store_t *st = apr_pcalloc(p, sizeof(*st));
    st->base = base;
    st->sh = base;
    return st;
}

/* ---- objects ------------------------------------------------------------ */

static void *ps_alloc(ps_store_t *st, apr_size_t n, ps_off_t *off)
{
    *off = ps_arena_alloc(st->base, &st->sh->arena, n);
    return *off ? PS_PTR(st, *off) : NULL;
}

static void ps_free(ps_store_t *st, ps_off_t off)
{
    ps_arena_free(st->base, &st->sh->arena, off);
}

static const char *ps_msg_channel(const ps_smsg_t *m)
{
    return m->data;
}

static const char *ps_msg_text(const ps_smsg_t *m)
{
    return m->data + m->channel_len + 1;
}

static const char *ps_msg_eid(const ps_smsg_t *m)
{
    return ps_msg_text(m) + m->text_len + 1;
}

static const char *ps_msg_etype(const ps_smsg_t *m)
{
    return ps_msg_eid(m) + m->eid_len + 1;
}

static char *ps_put(char *dst, const char *src, apr_size_t len)
{
    if (len) {
        memcpy(dst, src, len);
    }
    dst[len] = '\0';
    return dst + len + 1;
}

static ps_smsg_t *ps_msg_new(ps_store_t *st, const char *channel,
                             apr_size_t clen, const char *text,
                             apr_size_t len, const char *eid,
                             apr_size_t eid_len, const char *et,
                             apr_size_t et_len, ps_off_t *off)
{
    ps_smsg_t *m = ps_alloc(st, sizeof(*m) + clen + len + eid_len + et_len + 4,
                            off);
    char *p;

    if (!m) {
        return NULL;
    }
    memset(m, 0, sizeof(*m));
    m->channel_len = (apr_uint32_t)clen;
    m->text_len = len;
    m->eid_len = (apr_uint32_t)eid_len;
    m->et_len = (apr_uint32_t)et_len;
    p = ps_put(m->data, channel, clen);
    p = ps_put(p, text, len);
    p = ps_put(p, eid, eid_len);
    ps_put(p, et, et_len);
    return m;
}

/* Forget a message: its log entry goes too, so nobody reads freed memory. */
static void ps_msg_free(ps_store_t *st, ps_off_t off)
{
    ps_smsg_t *m = PS_MSG(st, off);
    ps_ring_t *e = &ps_ring(st)[m->seq % st->sh->nring];

    if (m->seq && e->seq == m->seq) {
        e->off = 0;
    }
    ps_free(st, off);
}

static void ps_trash_msg(ps_store_t *st, ps_off_t off, apr_int64_t now)
{
    ps_shm_t *sh = st->sh;
    ps_smsg_t *m = PS_MSG(st, off);

    m->next = 0;
    m->flags &= ~PS_MSG_STORED;
    m->expires = now + PS_TRASH_GRACE;
    if (sh->trash_msg_tail) {
        PS_MSG(st, sh->trash_msg_tail)->next = off;
    }
    else {
        sh->trash_msg_head = off;
    }
    sh->trash_msg_tail = off;
    sh->msgs_in_trash++;
}

static void ps_log_append(ps_store_t *st, ps_smsg_t *m, ps_off_t off,
                          apr_int64_t now)
{
    ps_shm_t *sh = st->sh;
    ps_ring_t *e;

    m->seq = sh->seq + 1;
    m->born = now;
    e = &ps_ring(st)[m->seq % sh->nring];
    e->off = off;
    e->seq = m->seq;
    sh->seq = m->seq;                  /* last: readers stop at sh->seq */
}

/* Drop the oldest stored message of ch into the trash. */
static void ps_channel_pop(ps_store_t *st, ps_channel_t *ch, apr_int64_t now)
{
    ps_off_t off = ch->msg_head;
    ps_smsg_t *m = PS_MSG(st, off);

    ch->msg_head = m->next;
    if (!ch->msg_head) {
        ch->msg_tail = 0;
    }
    ps_dec(&ch->stored, 1);
    if (!(ch->flags & PS_CH_EVENTS)) {
        ps_dec(&st->sh->stored, 1);
    }
    ps_trash_msg(st, off, now);
}

/* ---- locking and wake-up ------------------------------------------------ */

static void ps_store_repair(ps_store_t *st);
static void ps_store_reclaim_locked(ps_store_t *st, apr_int64_t now);
static void ps_event(ps_store_t *st, const char *type, const ps_channel_t *ch,
                     apr_int64_t now);

apr_status_t ps_store_lock(ps_store_t *st, int *repaired)
{
    int rc = pthread_mutex_lock(&st->sh->lock);

    if (repaired) {
        *repaired = 0;
    }
    if (rc == EOWNERDEAD) {
        /* The owner died inside a critical section: fix what it may have
         * left half-done, then declare the mutex usable again. */
        ps_store_repair(st);
        st->sh->recoveries++;
        ps_subs_changed(st);
        pthread_mutex_consistent(&st->sh->lock);
        if (repaired) {
            *repaired = 1;
        }
        return APR_SUCCESS;
    }
    return rc ? PS_E_CORRUPT : APR_SUCCESS;
}

void ps_store_unlock(ps_store_t *st)
{
    pthread_mutex_unlock(&st->sh->lock);
}

void ps_store_notify(ps_store_t *st)
{
    __atomic_add_fetch(&st->sh->wake, 1, __ATOMIC_SEQ_CST);
    /* Not FUTEX_PRIVATE: the waiters are in other processes. */
    syscall(SYS_futex, &st->sh->wake, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

apr_uint32_t ps_store_wake_counter(ps_store_t *st)
{
    return __atomic_load_n(&st->sh->wake, __ATOMIC_SEQ_CST);
}

void ps_store_wait(ps_store_t *st, apr_uint32_t seen,
                   apr_interval_time_t timeout)
{
    struct timespec ts;
    ts.tv_sec = (time_t)(timeout / APR_USEC_PER_SEC);
    ts.tv_nsec = (long)(timeout % APR_USEC_PER_SEC) * 1000;
    syscall(SYS_futex, &st->sh->wake, FUTEX_WAIT, seen, &ts, NULL, 0);
}

/* ---- workers ------------------------------------------------------------ */

static int ps_pid_alive(apr_int32_t pid)
{
    return kill((pid_t)pid, 0) == 0 || errno == EPERM;
}

static void ps_channel_trash(ps_store_t *st, ps_channel_t *ch,
                             apr_int64_t now);

/* Remove slot's subscriptions from one channel list (hash chain or the
 * deleted list); returns the new head of that list. */
static ps_off_t ps_reap_list(ps_store_t *st, ps_off_t head, int slot,
                             int deleted_list, apr_int64_t now)
{
    ps_off_t *link = &head;

    while (*link) {
        ps_channel_t *ch = PS_CH(st, *link);
        ps_off_t *ws = &ch->wsubs;
        while (*ws) {
            ps_wsub_t *w = PS_PTR(st, *ws);
            if (w->slot == slot) {
                ps_off_t dead = *ws;
                ps_dec(&ch->subscribers, w->count);
                ps_subs_changed(st);
                *ws = w->next;
                ps_free(st, dead);
            }
            else {
                ws = &w->next;
            }
        }
        if (deleted_list && ch->subscribers == 0) {
            *link = ch->next;
            ps_dec(&st->sh->ch_in_delete, 1);
            ps_channel_trash(st, ch, now);
            continue;
        }
        link = &ch->next;
    }
    return head;
}

static void ps_reap_slot(ps_store_t *st, int slot)
{
    ps_shm_t *sh = st->sh;
    ps_wslot_t *w = &ps_wslots(st)[slot];
    apr_int64_t now = (apr_int64_t)(apr_time_now() / APR_USEC_PER_SEC);
    apr_uint64_t b;

    for (b = 0; b < sh->nbuckets; b++) {
        ps_buckets(st)[b] = ps_reap_list(st, ps_buckets(st)[b], slot, 0, now);
    }
    sh->deleted_head = ps_reap_list(st, sh->deleted_head, slot, 1, now);
    ps_dec(&sh->subscribers, w->subscribers);
    memset(w, 0, sizeof(*w));
}

int ps_store_worker_claim_locked(ps_store_t *st, apr_int32_t pid,
                                 apr_int64_t now)
{
    ps_wslot_t *ws = ps_wslots(st);
    int i, n = (int)st->sh->nworkers, found = -1;

    for (i = 0; i < n; i++) {
        if (ws[i].pid == pid) {
            ps_reap_slot(st, i);        /* a previous life of this pid */
            found = i;
            break;
        }
        if (found < 0 && ws[i].pid == 0) {
            found = i;
        }
    }
    if (found < 0) {
        for (i = 0; i < n && found < 0; i++) {
            if (!ps_pid_alive(ws[i].pid)) {
                ps_reap_slot(st, i);
                found = i;
            }
        }
    }
    if (found >= 0) {
        ws[found].pid = pid;
        ws[found].started = now;
        ws[found].subscribers = 0;
    }
    return found;
}

void ps_store_worker_release_locked(ps_store_t *st, int slot)
{
    if (slot >= 0 && (apr_uint64_t)slot < st->sh->nworkers) {
        ps_reap_slot(st, slot);
    }
}

int ps_store_reap_dead_locked(ps_store_t *st, int (*alive)(apr_int32_t pid))
{
    ps_wslot_t *ws = ps_wslots(st);
    int i, reaped = 0;

    for (i = 0; i < (int)st->sh->nworkers; i++) {
        if (ws[i].pid && !(alive ? alive(ws[i].pid) : ps_pid_alive(ws[i].pid))) {
            ps_reap_slot(st, i);
            reaped++;
        }
    }
    return reaped;
}

int ps_store_workers_locked(ps_store_t *st, ps_worker_info_t *out, int max)
{
    ps_wslot_t *ws = ps_wslots(st);
    int i, n = 0;

    for (i = 0; i < (int)st->sh->nworkers && n < max; i++) {
        if (ws[i].pid) {
            out[n].pid = ws[i].pid;
            out[n].subscribers = ws[i].subscribers;
            out[n].started = ws[i].started;
            n++;
        }
    }
    return n;
}

void ps_store_worker_conn_locked(ps_store_t *st, int slot, int delta)
{
    if (slot >= 0 && (apr_uint64_t)slot < st->sh->nworkers) {
        apr_uint64_t *n = &ps_wslots(st)[slot].subscribers;
        if (delta < 0) {
            ps_dec(n, (apr_uint64_t)-(apr_int64_t)delta);
        }
        else {
            *n += (apr_uint64_t)delta;
        }
    }
    if (delta < 0) {
        ps_dec(&st->sh->subscribers, (apr_uint64_t)-(apr_int64_t)delta);
    }
    else {
        st->sh->subscribers += (apr_uint64_t)delta;
    }
}

/* ---- channels ----------------------------------------------------------- */

static ps_off_t *ps_bucket_of(ps_store_t *st, apr_uint32_t hash)
{
    return &ps_buckets(st)[hash & (st->sh->nbuckets - 1)];
}

ps_channel_t *ps_store_find_locked(ps_store_t *st, const char *id,
                                   apr_size_t len)
{
    apr_uint32_t h = ps_hash(id, len);
    ps_off_t off;

    for (off = *ps_bucket_of(st, h); off; off = PS_CH(st, off)->next) {
        ps_channel_t *ch = PS_CH(st, off);
        if (ch->hash == h && ch->id_len == len && !memcmp(ch->id, id, len)) {
            return ch;
        }
    }
    return NULL;
}

apr_status_t ps_store_get_or_create_locked(ps_store_t *st, const char *id,
                                           apr_size_t len, int wildcard,
                                           const ps_limits_t *lim,
                                           apr_int64_t now,
                                           ps_channel_t **out)
{
    ps_shm_t *sh = st->sh;
    ps_channel_t *ch = ps_store_find_locked(st, id, len);
    ps_off_t off, *bucket;

    if (ch) {
        *out = ch;
        return APR_SUCCESS;
    }
    if (wildcard ? (lim->max_wildcard_channels
                    && sh->wildcard_channels >= lim->max_wildcard_channels)
                 : (lim->max_channels
                    && sh->channels - sh->wildcard_channels >= lim->max_channels)) {
        return PS_E_LIMIT;
    }
    ch = ps_alloc(st, sizeof(*ch) + len + 1, &off);
    if (!ch) {
        ps_store_reclaim_locked(st, now);
        ch = ps_alloc(st, sizeof(*ch) + len + 1, &off);
        if (!ch) {
            return APR_ENOMEM;
        }
    }
    memset(ch, 0, sizeof(*ch));
    ch->serial = ++sh->serial;
    ch->hash = ps_hash(id, len);
    ch->id_len = (apr_uint32_t)len;
    ps_put(ch->id, id, len);
    ch->flags = wildcard ? PS_CH_WILDCARD : 0;
    ch->expires = now + lim->channel_inactivity;
    bucket = ps_bucket_of(st, ch->hash);
    ch->next = *bucket;
    *bucket = off;                      /* one store links it in */
    sh->channels++;
    if (wildcard) {
        sh->wildcard_channels++;
    }
    *out = ch;
    ps_event(st, "channel_created", ch, now);
    return APR_SUCCESS;
}

void ps_store_channel_info_locked(ps_store_t *st, const ps_channel_t *ch,
                                  ps_chinfo_t *out)
{
    out->id = ch->id;
    out->id_len = ch->id_len;
    out->published_messages = ch->published;
    out->stored_messages = ch->stored;
    out->subscribers = ch->subscribers;
    out->nodes = 0;                    /* by_node: ps_redis_subscribers() */
    out->by_node = NULL;
}

apr_uint64_t ps_store_channel_serial(const ps_channel_t *ch)
{
    return ch->serial;
}

apr_uint64_t ps_store_channel_stored(const ps_channel_t *ch)
{
    return ch->stored;
}

apr_uint64_t ps_store_channel_subscribers(const ps_channel_t *ch)
{
    return ch->subscribers;
}

apr_uint64_t ps_store_channel_ref(ps_store_t *st, const ps_channel_t *ch)
{
    return PS_OFF(st, ch);
}

typedef struct ps_chsort_t {
    apr_uint64_t serial;
    ps_channel_t *ch;
} ps_chsort_t;

static int ps_chsort_cmp(const void *a, const void *b)
{
    const ps_chsort_t *x = a, *y = b;
    return x->serial < y->serial ? -1 : x->serial > y->serial;
}

apr_uint64_t ps_store_subs_changes(ps_store_t *st)
{
    return __atomic_load_n(&st->sh->subs_changes, __ATOMIC_RELAXED);
}

void ps_store_foreach_channel_locked(ps_store_t *st, apr_pool_t *p,
                                     ps_channel_cb *cb, void *baton)
{
    ps_shm_t *sh = st->sh;
    ps_chsort_t *all = apr_palloc(p, (sh->channels + 1) * sizeof(*all));
    apr_uint64_t b, n = 0, i;
    ps_off_t off;

    for (b = 0; b < sh->nbuckets; b++) {
        for (off = ps_buckets(st)[b]; off && n < sh->channels + 1;
             off = PS_CH(st, off)->next) {
            all[n].serial = PS_CH(st, off)->serial;
            all[n++].ch = PS_CH(st, off);
        }
    }
    qsort(all, (size_t)n, sizeof(*all), ps_chsort_cmp);
    for (i = 0; i < n; i++) {
        ps_chinfo_t info;
        ps_store_channel_info_locked(st, all[i].ch, &info);
        cb(baton, &info, (all[i].ch->flags & PS_CH_WILDCARD) != 0);
    }
}

/* ---- publish / delete ----------------------------------------------------- */

static void ps_next_tag(ps_shm_t *sh, apr_int64_t now, ps_smsg_t *m)
{
    /* The tag orders messages published within one second, zone-wide. */
    if (sh->tag_time == now) {
        sh->tag_last++;
    }
    else {
        sh->tag_time = now;
        sh->tag_last = 1;
    }
    m->time = now;
    m->tag = sh->tag_last;
}

static ps_smsg_t *ps_publish_alloc(ps_store_t *st, const ps_channel_t *ch,
                                   const char *text, apr_size_t len,
                                   const char *event_id, apr_size_t eid_len,
                                   const char *event_type, apr_size_t et_len,
                                   apr_int64_t now, int may_reclaim,
                                   ps_off_t *off);
static void ps_publish_commit(ps_store_t *st, ps_channel_t *ch, ps_smsg_t *m,
                              ps_off_t off, int store, const ps_limits_t *lim,
                              apr_int64_t now);

static apr_status_t ps_publish(ps_store_t *st, ps_channel_t *ch,
                               const char *text, apr_size_t len,
                               const char *event_id, apr_size_t eid_len,
                               const char *event_type, apr_size_t et_len,
                               int store, const ps_limits_t *lim,
                               apr_int64_t now, apr_uint64_t *seq_out,
                               int may_reclaim)
{
    ps_off_t off;
    ps_smsg_t *m = ps_publish_alloc(st, ch, text, len, event_id, eid_len,
                                    event_type, et_len, now, may_reclaim,
                                    &off);

    if (!m) {
        return APR_ENOMEM;
    }
    ps_publish_commit(st, ch, m, off, store, lim, now);
    if (seq_out) {
        *seq_out = m->seq;
    }
    return APR_SUCCESS;
}

/* The message of a publish, not yet in any list (ps_free() undoes it). */
static ps_smsg_t *ps_publish_alloc(ps_store_t *st, const ps_channel_t *ch,
                                   const char *text, apr_size_t len,
                                   const char *event_id, apr_size_t eid_len,
                                   const char *event_type, apr_size_t et_len,
                                   apr_int64_t now, int may_reclaim,
                                   ps_off_t *off)
{
    ps_smsg_t *m = ps_msg_new(st, ch->id, ch->id_len, text, len, event_id,
                              eid_len, event_type, et_len, off);

    if (!m && may_reclaim) {
        ps_store_reclaim_locked(st, now);
        m = ps_msg_new(st, ch->id, ch->id_len, text, len, event_id, eid_len,
                       event_type, et_len, off);
    }
    return m;
}

/* Number, store and log the message ps_publish_alloc() made for ch. */
static void ps_publish_commit(ps_store_t *st, ps_channel_t *ch, ps_smsg_t *m,
                              ps_off_t off, int store, const ps_limits_t *lim,
                              apr_int64_t now)
{
    ps_shm_t *sh = st->sh;
    int events = (ch->flags & PS_CH_EVENTS) != 0;

    m->id = (apr_int64_t)++ch->published;
    m->channel_serial = ch->serial;
    ps_next_tag(sh, now, m);
    if (!events) {
        sh->published++;
    }
    if (store) {
        m->flags = PS_MSG_STORED;
        m->expires = now + lim->message_ttl;
        if (ch->msg_tail) {
            PS_MSG(st, ch->msg_tail)->next = off;
        }
        else {
            ch->msg_head = off;
        }
        ch->msg_tail = off;
        ch->stored++;
        if (!events) {
            sh->stored++;
        }
        while (lim->max_stored_per_channel
               && ch->stored > lim->max_stored_per_channel) {
            ps_channel_pop(st, ch, now);
        }
    }
    else {
        ps_trash_msg(st, off, now);     /* kept only for delivery */
    }
    ch->expires = now + lim->channel_inactivity;
    ps_log_append(st, m, off, now);
}

apr_status_t ps_store_publish_locked(ps_store_t *st, ps_channel_t *ch,
                                     const char *text, apr_size_t len,
                                     const char *event_id, apr_size_t eid_len,
                                     const char *event_type, apr_size_t et_len,
                                     int store, const ps_limits_t *lim,
                                     apr_int64_t now, apr_uint64_t *seq_out)
{
    return ps_publish(st, ch, text, len, event_id, eid_len, event_type, et_len,
                      store, lim, now, seq_out, 1);
}

/* A message whose id, time and tag another server assigned (Redis): the
 * same path as a local publish, then the given figures replace the local
 * ones.  Out-of-order and duplicate copies are refused so a channel's ids
 * stay strictly increasing. */
apr_status_t ps_store_mirror_locked(ps_store_t *st, ps_channel_t *ch,
                                    const ps_msgview_t *v, int store,
                                    apr_int64_t expires, int force,
                                    const ps_limits_t *lim, apr_int64_t now)
{
    apr_uint64_t seq;
    apr_status_t rv;
    ps_smsg_t *m;

    if (v->id <= (apr_int64_t)ch->published) {
        return APR_EEXIST;
    }
    if (!force && v->id != (apr_int64_t)ch->published + 1) {
        return APR_INCOMPLETE;
    }
    rv = ps_publish(st, ch, v->text, v->text_len, v->event_id,
                    v->event_id_len, v->event_type, v->event_type_len, store,
                    lim, now, &seq, 1);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    m = PS_MSG(st, ps_ring(st)[seq % st->sh->nring].off);
    m->id = v->id;
    m->time = v->time;
    m->tag = v->tag;
    if (store && expires > 0) {
        m->expires = expires;
    }
    ch->published = (apr_uint64_t)v->id;
    return APR_SUCCESS;
}

/* The channel's last id moves up to id (messages that were not stored
 * elsewhere); never down. */
void ps_store_set_last_id_locked(ps_channel_t *ch, apr_uint64_t id)
{
    if (id > ch->published) {
        ch->published = id;
    }
}

apr_status_t ps_store_publish_all_locked(ps_store_t *st, ps_channel_t **chs,
                                         int n, const char *text,
                                         apr_size_t len, const char *event_id,
                                         apr_size_t eid_len,
                                         const char *event_type,
                                         apr_size_t et_len, int store,
                                         const ps_limits_t *lim,
                                         apr_int64_t now)
{
    ps_off_t small[16], *offs = n <= 16 ? small : malloc(n * sizeof(*offs));
    int i, made;

    if (!offs) {
        return APR_ENOMEM;
    }
    for (made = 0; made < n; made++) {
        if (!ps_publish_alloc(st, chs[made], text, len, event_id, eid_len,
                              event_type, et_len, now, 1, &offs[made])) {
            break;
        }
    }
    for (i = 0; i < made; i++) {
        if (made < n) {
            ps_free(st, offs[i]);           /* one did not fit: none is kept */
        }
        else {
            ps_publish_commit(st, chs[i], PS_MSG(st, offs[i]), offs[i], store,
                              lim, now);
        }
    }
    if (offs != small) {
        free(offs);
    }
    return made < n ? APR_ENOMEM : APR_SUCCESS;
}

/* A JSON event about ch on the events channel (when configured).  Never
 * reclaims memory: it runs inside cleanup walks. */
static void ps_event(ps_store_t *st, const char *type, const ps_channel_t *ch,
                     apr_int64_t now)
{
    ps_shm_t *sh = st->sh;
    char small[512], *buf = small;
    apr_size_t tlen = strlen(type), need, len;

    if (!sh->events_ch || (ch->flags & PS_CH_EVENTS)) {
        return;
    }
    /* the id as a JSON string body, whatever bytes it holds */
    need = tlen + ps_esc_to(NULL, PS_ESC_JSON, ch->id, ch->id_len) + 40;
    if (need > sizeof(small) && !(buf = malloc(need))) {
        return;
    }
    len = (apr_size_t)snprintf(buf, need, "{\"type\": \"%s\", \"channel\": \"",
                               type);
    len += ps_esc_to(buf + len, PS_ESC_JSON, ch->id, ch->id_len);
    memcpy(buf + len, "\"}", 2);
    len += 2;
    ps_publish(st, PS_CH(st, sh->events_ch), buf, len, NULL, 0, type, tlen, 1,
               &sh->events_lim, now, NULL, 0);
    if (buf != small) {
        free(buf);
    }
}

apr_status_t ps_store_events_channel_locked(ps_store_t *st, const char *id,
                                            apr_size_t len,
                                            const ps_limits_t *lim,
                                            apr_int64_t now)
{
    ps_limits_t open = *lim;
    ps_channel_t *ch;
    apr_status_t rv;

    open.max_channels = 0;
    st->sh->events_lim = *lim;
    if (st->sh->events_ch) {
        ch = PS_CH(st, st->sh->events_ch);
        if (ch->id_len == len && !memcmp(ch->id, id, len)) {
            return APR_SUCCESS;
        }
        ch->flags &= ~PS_CH_EVENTS;   /* renamed: the old one is ordinary now */
        st->sh->events_ch = 0;
    }
    rv = ps_store_get_or_create_locked(st, id, len, 0, &open, now, &ch);
    if (rv == APR_SUCCESS) {
        ch->flags |= PS_CH_EVENTS;
        st->sh->events_ch = PS_OFF(st, ch);
    }
    return rv;
}

int ps_store_channel_is_events(const ps_channel_t *ch)
{
    return (ch->flags & PS_CH_EVENTS) != 0;
}

static void ps_channel_trash(ps_store_t *st, ps_channel_t *ch,
                             apr_int64_t now)
{
    if (ch->flags & PS_CH_TRASH) {
        return;                 /* linked already: a second link is a cycle */
    }
    ch->flags = (ch->flags & ~PS_CH_DELETED) | PS_CH_TRASH;
    ch->expires = now + PS_TRASH_GRACE;
    ch->next = st->sh->trash_ch_head;
    st->sh->trash_ch_head = PS_OFF(st, ch);
    st->sh->ch_in_trash++;
}

/* Take ch out of the lookup; 0 (and nothing changed) when it is not in
 * its bucket chain, i.e. deleted or trashed already. */
static int ps_channel_unlink(ps_store_t *st, ps_channel_t *ch,
                             apr_int64_t now)
{
    ps_shm_t *sh = st->sh;
    ps_off_t *link = ps_bucket_of(st, ch->hash), off = PS_OFF(st, ch);

    if (ch->flags & (PS_CH_DELETED | PS_CH_TRASH)) {
        return 0;
    }
    while (*link && *link != off) {
        link = &PS_CH(st, *link)->next;
    }
    if (!*link) {
        return 0;
    }
    *link = ch->next;
    ps_dec(&sh->channels, 1);
    if (ch->flags & PS_CH_WILDCARD) {
        ps_dec(&sh->wildcard_channels, 1);
    }
    while (ch->msg_head) {
        ps_channel_pop(st, ch, now);
    }
    return 1;
}

apr_status_t ps_store_delete_locked(ps_store_t *st, ps_channel_t *ch,
                                    const char *text, apr_size_t len,
                                    apr_int64_t now)
{
    ps_shm_t *sh = st->sh;
    apr_status_t rv = APR_SUCCESS;
    ps_off_t off;
    ps_smsg_t *m;

    if (!ps_channel_unlink(st, ch, now)) {
        return APR_SUCCESS;     /* deleted already: never queued twice */
    }
    ps_event(st, "channel_destroyed", ch, now);
    m = ps_msg_new(st, ch->id, ch->id_len, text, len, NULL, 0, NULL, 0, &off);
    if (m) {
        m->id = PS_MSG_ID_DELETED;
        m->flags = PS_MSG_DELETED;
        m->channel_serial = ch->serial;
        ps_trash_msg(st, off, now);
        ps_log_append(st, m, off, now);
    }
    else {
        rv = APR_ENOMEM;
    }
    if (ch->subscribers) {
        ch->flags |= PS_CH_DELETED;
        ch->next = sh->deleted_head;
        sh->deleted_head = PS_OFF(st, ch);
        sh->ch_in_delete++;
    }
    else {
        ps_channel_trash(st, ch, now);
    }
    return rv;
}

/* ---- subscriptions -------------------------------------------------------- */

apr_status_t ps_store_subscribe_locked(ps_store_t *st, ps_channel_t *ch,
                                       int slot, const ps_limits_t *lim,
                                       apr_int64_t now)
{
    ps_off_t off;
    ps_wsub_t *w;

    if (lim->max_subscribers_per_channel
        && ch->subscribers >= lim->max_subscribers_per_channel) {
        return PS_E_LIMIT;
    }
    for (off = ch->wsubs; off; off = w->next) {
        w = PS_PTR(st, off);
        if (w->slot == slot) {
            break;
        }
    }
    if (!off) {
        w = ps_alloc(st, sizeof(*w), &off);
        if (!w) {
            return APR_ENOMEM;
        }
        w->slot = slot;
        w->count = 0;
        w->next = ch->wsubs;
        ch->wsubs = off;
    }
    w->count++;
    ch->subscribers++;
    ps_subs_changed(st);
    ch->expires = now + lim->channel_inactivity;
    ps_event(st, "client_subscribed", ch, now);
    return APR_SUCCESS;
}

void ps_store_unsubscribe_locked(ps_store_t *st, apr_uint64_t ch_off,
                                 apr_uint64_t serial, int slot,
                                 const ps_limits_t *lim, apr_int64_t now)
{
    ps_shm_t *sh = st->sh;
    ps_channel_t *ch;
    ps_off_t *ws;

    if (ch_off < sh->arena.start || ch_off >= sh->arena.end) {
        return;
    }
    ch = PS_CH(st, ch_off);
    if (ch->serial != serial || (ch->flags & PS_CH_TRASH)) {
        return;                 /* already reaped (our child was declared dead) */
    }
    for (ws = &ch->wsubs; *ws; ws = &((ps_wsub_t *)PS_PTR(st, *ws))->next) {
        ps_wsub_t *w = PS_PTR(st, *ws);
        if (w->slot == slot) {
            ps_dec(&ch->subscribers, 1);
            ps_subs_changed(st);
            ps_event(st, "client_unsubscribed", ch, now);
            if (--w->count == 0) {
                ps_off_t dead = *ws;
                *ws = w->next;
                ps_free(st, dead);
            }
            break;
        }
    }
    if (ch->flags & PS_CH_DELETED) {
        if (ch->subscribers == 0) {
            ps_off_t *link = &sh->deleted_head;
            while (*link && *link != ch_off) {
                link = &PS_CH(st, *link)->next;
            }
            if (*link) {
                *link = ch->next;
                ps_dec(&sh->ch_in_delete, 1);
                ps_channel_trash(st, ch, now);
            }
        }
        return;
    }
    if (ch->expires < now + lim->channel_inactivity) {
        ch->expires = now + lim->channel_inactivity;
    }
}

/* ---- reading -------------------------------------------------------------- */

static void ps_logmsg_fill(const ps_smsg_t *m, ps_logmsg_t *lm)
{
    lm->view.id = m->id;
    lm->view.text = ps_msg_text(m);
    lm->view.text_len = m->text_len;
    lm->view.channel = ps_msg_channel(m);
    lm->view.channel_len = m->channel_len;
    lm->view.time = m->time;
    lm->view.tag = m->tag;
    lm->view.event_id = ps_msg_eid(m);
    lm->view.event_id_len = m->eid_len;
    lm->view.event_type = ps_msg_etype(m);
    lm->view.event_type_len = m->et_len;
    lm->seq = m->seq;
    lm->channel_serial = m->channel_serial;
    lm->deleted_notice = (m->flags & PS_MSG_DELETED) != 0;
}

apr_uint64_t ps_store_read_log_locked(ps_store_t *st, apr_uint64_t after,
                                      ps_msg_cb *cb, void *baton,
                                      apr_uint64_t *lost)
{
    ps_shm_t *sh = st->sh;
    apr_uint64_t s, gone = 0;

    if (sh->seq > after + sh->nring) {
        gone += sh->seq - sh->nring - after;
        after = sh->seq - sh->nring;
    }
    for (s = after + 1; s <= sh->seq; s++) {
        ps_ring_t *e = &ps_ring(st)[s % sh->nring];
        ps_logmsg_t lm;
        if (e->seq != s || !e->off) {
            gone++;
            continue;
        }
        ps_logmsg_fill(PS_MSG(st, e->off), &lm);
        cb(baton, &lm);
    }
    if (lost) {
        *lost = gone;
    }
    return sh->seq;
}

apr_uint64_t ps_store_seq_locked(ps_store_t *st)
{
    return st->sh->seq;
}

int ps_replay_wanted(const ps_replay_t *q)
{
    return q->backtrack > 0 || q->since >= 0 || q->last_event_id;
}

/* Does m start the replay range?  1: from m, 2: from the message after m. */
static int ps_replay_starts(const ps_smsg_t *m, const ps_replay_t *q)
{
    if (q->last_event_id && m->eid_len == q->last_event_id_len
        && !memcmp(ps_msg_eid(m), q->last_event_id, m->eid_len)) {
        return 2;
    }
    if (q->since >= 0) {
        if (m->time > q->since) {
            return 1;
        }
        if (m->time == q->since && q->tag >= 0 && m->tag >= q->tag) {
            return m->tag == q->tag ? 2 : 1;
        }
    }
    return 0;
}

int ps_store_replay_locked(ps_store_t *st, const ps_channel_t *ch,
                           const ps_replay_t *q, apr_int64_t now,
                           ps_msg_cb *cb, void *baton)
{
    ps_off_t off, from = 0;
    int n = 0;

    if (q->backtrack > 0) {
        apr_uint64_t skip = ch->stored > (apr_uint64_t)q->backtrack
                            ? ch->stored - (apr_uint64_t)q->backtrack : 0;
        for (from = ch->msg_head; from && skip; skip--) {
            from = PS_MSG(st, from)->next;
        }
    }
    else if (q->since >= 0 || q->last_event_id) {
        for (off = ch->msg_head; off && !from; off = PS_MSG(st, off)->next) {
            int how = ps_replay_starts(PS_MSG(st, off), q);
            if (how == 1) {
                from = off;
            }
            else if (how == 2) {
                from = PS_MSG(st, off)->next;
                if (!from) {
                    break;
                }
            }
        }
    }
    for (off = from; off; off = PS_MSG(st, off)->next) {
        ps_smsg_t *m = PS_MSG(st, off);
        ps_logmsg_t lm;
        if (m->expires <= now) {
            continue;                   /* expired, cleanup not run yet */
        }
        ps_logmsg_fill(m, &lm);
        cb(baton, &lm);
        n++;
    }
    return n;
}

/* ---- maintenance ---------------------------------------------------------- */

static void ps_channel_free(ps_store_t *st, ps_channel_t *ch)
{
    ps_off_t w = ch->wsubs;
    while (w) {
        ps_off_t next = ((ps_wsub_t *)PS_PTR(st, w))->next;
        ps_free(st, w);
        w = next;
    }
    ps_free(st, PS_OFF(st, ch));
}

/* Expire stored messages of one bucket chain; with collect, also collect
 * its idle channels. */
static void ps_cleanup_bucket(ps_store_t *st, ps_off_t *link, apr_int64_t now,
                              int collect)
{
    ps_shm_t *sh = st->sh;

    while (*link) {
        ps_channel_t *ch = PS_CH(st, *link);
        while (ch->msg_head && PS_MSG(st, ch->msg_head)->expires <= now) {
            ps_channel_pop(st, ch, now);
        }
        if (collect && !(ch->flags & PS_CH_EVENTS) && !ch->stored
            && !ch->subscribers && ch->expires <= now) {
            *link = ch->next;
            ps_dec(&sh->channels, 1);
            if (ch->flags & PS_CH_WILDCARD) {
                ps_dec(&sh->wildcard_channels, 1);
            }
            ps_event(st, "channel_destroyed", ch, now);
            ps_channel_trash(st, ch, now);
            continue;
        }
        link = &ch->next;
    }
}

static void ps_cleanup(ps_store_t *st, apr_int64_t now, int collect);

/* Segment full: free trashed messages at once when every child has had
 * time to read them (they entered the log PS_RECLAIM_AGE seconds ago or
 * more), instead of waiting for the trash grace.
 *
 * No idle channel is collected here: the caller (a publish, a channel
 * being created) may hold channels it has found, which must stay in the
 * lookup until it is done with them (else its message goes into a
 * channel already in the trash).  Nothing is lost by it: a collected
 * channel would wait for the trash grace before its memory is free, and
 * the next cleanup (about once a second) collects it. */
#define PS_RECLAIM_AGE 2

static void ps_store_reclaim_locked(ps_store_t *st, apr_int64_t now)
{
    ps_shm_t *sh = st->sh;
    apr_int64_t horizon = now - PS_RECLAIM_AGE;
    ps_off_t *link = &sh->trash_msg_head, last = 0;

    ps_cleanup(st, now, 0);
    while (*link) {
        ps_smsg_t *m = PS_MSG(st, *link);
        if (m->born <= horizon) {
            ps_off_t dead = *link;
            *link = m->next;
            ps_dec(&sh->msgs_in_trash, 1);
            ps_msg_free(st, dead);
            continue;
        }
        last = *link;
        link = &m->next;
    }
    sh->trash_msg_tail = last;
}

void ps_store_cleanup_locked(ps_store_t *st, apr_int64_t now)
{
    ps_shm_t *sh = st->sh;

    if (now < sh->next_cleanup) {
        return;
    }
    sh->next_cleanup = now + 1;
    ps_cleanup(st, now, 1);
}

/* Expire messages, free the trash whose grace is over; with collect, also
 * collect idle channels. */
static void ps_cleanup(ps_store_t *st, apr_int64_t now, int collect)
{
    ps_shm_t *sh = st->sh;
    ps_off_t *link;
    apr_uint64_t b;

    for (b = 0; b < sh->nbuckets; b++) {
        ps_cleanup_bucket(st, &ps_buckets(st)[b], now, collect);
    }
    while (sh->trash_msg_head
           && PS_MSG(st, sh->trash_msg_head)->expires <= now) {
        ps_off_t off = sh->trash_msg_head;
        sh->trash_msg_head = PS_MSG(st, off)->next;
        if (!sh->trash_msg_head) {
            sh->trash_msg_tail = 0;
        }
        ps_dec(&sh->msgs_in_trash, 1);
        ps_msg_free(st, off);
    }
    for (link = &sh->trash_ch_head; *link;) {
        ps_channel_t *ch = PS_CH(st, *link);
        if (ch->expires <= now) {
            *link = ch->next;
            ps_dec(&sh->ch_in_trash, 1);
            ps_channel_free(st, ch);
            continue;
        }
        link = &ch->next;
    }
}

void ps_store_stats_locked(ps_store_t *st, ps_store_stats_t *out)
{
    ps_shm_t *sh = st->sh;

    out->channels = sh->channels;
    out->wildcard_channels = sh->wildcard_channels;
    out->published_messages = sh->published;
    out->stored_messages = sh->stored;
    out->messages_in_trash = sh->msgs_in_trash;
    out->channels_in_delete = sh->ch_in_delete;
    out->channels_in_trash = sh->ch_in_trash;
    out->subscribers = sh->subscribers;
    out->created = sh->created;
    out->size = sh->size;
    out->free_bytes = sh->arena.free_bytes;
    out->recoveries = sh->recoveries;
    out->seq = sh->seq;
    out->auth_invalid_token = __atomic_load_n(&sh->auth_refused[0],
                                              __ATOMIC_RELAXED);
    out->auth_insufficient_scope = __atomic_load_n(&sh->auth_refused[1],
                                                   __ATOMIC_RELAXED);
}

void ps_store_count_auth(ps_store_t *st, int scope)
{
    __atomic_add_fetch(&st->sh->auth_refused[scope ? 1 : 0], 1,
                       __ATOMIC_RELAXED);
}

/* ---- repair and check ------------------------------------------------------ */

/* Counters rebuilt by a walk over everything reachable. */
typedef struct ps_walk_t {
    ps_arena_scan_t *scan;              /* NULL: check only, no marking */
    const char *why;
    apr_uint64_t channels, wildcard, stored, in_trash, in_delete, ch_trash;
    apr_uint64_t steps, max_steps;      /* check only: links followed */
} ps_walk_t;

/* Check only (no marks to stop at): one more link to off.  0 when off
 * lies in the arena and the walk has not followed more links than the
 * arena has blocks - more means some list is a cycle. */
static int ps_walk_step(ps_store_t *st, ps_walk_t *w, ps_off_t off,
                        const char *cycle)
{
    if (off < st->sh->arena.start || off >= st->sh->arena.end) {
        w->why = "list link outside the arena";
        return 1;
    }
    if (++w->steps > w->max_steps) {
        w->why = cycle;
        return 1;
    }
    return 0;
}

/* Follow a message list from *link; with a scan, cut it at the first bad
 * link.  Returns the last message (for tails) and counts in *n; w->why is
 * set when (check only) the list is broken. */
static ps_off_t ps_walk_msgs(ps_store_t *st, ps_walk_t *w, ps_off_t *link,
                             apr_uint64_t *n, const char *cycle)
{
    ps_off_t last = 0;

    *n = 0;
    while (*link) {
        if (w->scan && ps_arena_scan_mark(w->scan, *link) != 1) {
            *link = 0;
            break;
        }
        if (!w->scan && ps_walk_step(st, w, *link, cycle)) {
            break;
        }
        last = *link;
        (*n)++;
        link = &PS_MSG(st, last)->next;
    }
    return last;
}

static int ps_walk_channel(ps_store_t *st, ps_walk_t *w, ps_channel_t *ch)
{
    apr_uint64_t n, subs = 0;
    ps_off_t *ws, last;

    last = ps_walk_msgs(st, w, &ch->msg_head, &n,
                        "channel message queue is a cycle");
    if (w->why) {
        return 1;
    }
    if (w->scan) {
        ch->msg_tail = last;
        ch->stored = n;
    }
    else if (ch->msg_tail != last || ch->stored != n) {
        w->why = "channel message queue out of step";
        return 1;
    }
    for (ws = &ch->wsubs; *ws; ws = &((ps_wsub_t *)PS_PTR(st, *ws))->next) {
        if (w->scan && ps_arena_scan_mark(w->scan, *ws) != 1) {
            *ws = 0;
            break;
        }
        if (!w->scan && ps_walk_step(st, w, *ws,
                                     "channel subscriptions are a cycle")) {
            return 1;
        }
        subs += ((ps_wsub_t *)PS_PTR(st, *ws))->count;
    }
    if (w->scan) {
        if (ch->subscribers != subs) {
            ps_subs_changed(st);
        }
        ch->subscribers = subs;
    }
    else if (ch->subscribers != subs) {
        w->why = "channel subscriber count out of step";
        return 1;
    }
    if (!(ch->flags & PS_CH_EVENTS)) {
        w->stored += n;
    }
    return 0;
}

/* Walk a channel list (chain, deleted or trash, state = the flag its
 * channels carry: 0, PS_CH_DELETED or PS_CH_TRASH); cut at a bad link.
 * A channel found twice (a list that is a cycle, or in two lists) makes
 * the check fail; the repair cuts the second link. */
static int ps_walk_channels(ps_store_t *st, ps_walk_t *w, ps_off_t *link,
                            apr_uint64_t *count, apr_uint32_t state,
                            const char *cycle)
{
    while (*link) {
        ps_channel_t *ch;
        if (w->scan && ps_arena_scan_mark(w->scan, *link) != 1) {
            *link = 0;
            break;
        }
        if (!w->scan && ps_walk_step(st, w, *link, cycle)) {
            return 1;
        }
        ch = PS_CH(st, *link);
        if (w->scan) {
            ch->flags = (ch->flags & ~(PS_CH_DELETED | PS_CH_TRASH)) | state;
        }
        else if ((ch->flags & (PS_CH_DELETED | PS_CH_TRASH)) != state) {
            w->why = "channel in a list its state does not match";
            return 1;
        }
        if (ps_walk_channel(st, w, ch)) {
            return 1;
        }
        (*count)++;
        if (!state && (ch->flags & PS_CH_WILDCARD)) {
            w->wildcard++;
        }
        link = &ch->next;
    }
    return 0;
}

static int ps_walk_all(ps_store_t *st, ps_walk_t *w)
{
    ps_shm_t *sh = st->sh;
    apr_uint64_t b, dummy_stored = 0;
    ps_off_t last;

    /* every block is at least 16 bytes: more links than that is a loop */
    w->max_steps = (sh->arena.end - sh->arena.start) / 16 + 1;
    for (b = 0; b < sh->nbuckets; b++) {
        if (ps_walk_channels(st, w, &ps_buckets(st)[b], &w->channels, 0,
                             "channel hash chain is a cycle")) {
            return 1;
        }
    }
    dummy_stored = w->stored;
    if (ps_walk_channels(st, w, &sh->deleted_head, &w->in_delete,
                         PS_CH_DELETED, "deleted-channel list is a cycle")
        || ps_walk_channels(st, w, &sh->trash_ch_head, &w->ch_trash,
                            PS_CH_TRASH, "channel trash list is a cycle")) {
        return 1;
    }
    w->stored = dummy_stored;           /* deleted/trashed hold none */
    last = ps_walk_msgs(st, w, &sh->trash_msg_head, &w->in_trash,
                        "message trash list is a cycle");
    if (w->why) {
        return 1;
    }
    if (w->scan) {
        sh->trash_msg_tail = last;
    }
    else if (sh->trash_msg_tail != last) {
        w->why = "trash tail out of step";
        return 1;
    }
    return 0;
}

static void ps_store_repair(ps_store_t *st)
{
    ps_shm_t *sh = st->sh;
    apr_pool_t *p;
    ps_walk_t w;
    apr_uint64_t i;

    if (apr_pool_create_unmanaged_ex(&p, NULL, NULL) != APR_SUCCESS) {
        return;
    }
    memset(&w, 0, sizeof(w));
    w.scan = ps_arena_scan_begin(p, st->base, &sh->arena);
    ps_walk_all(st, &w);
    /* Log entries of messages that are no longer reachable must go before
     * the sweep frees them. */
    for (i = 0; i < sh->nring; i++) {
        ps_ring_t *e = &ps_ring(st)[i];
        if (e->off && !ps_arena_scan_marked(w.scan, e->off)) {
            e->off = 0;
        }
    }
    ps_arena_scan_sweep(w.scan);
    sh->channels = w.channels;
    sh->wildcard_channels = w.wildcard;
    sh->stored = w.stored;
    sh->msgs_in_trash = w.in_trash;
    sh->ch_in_delete = w.in_delete;
    sh->ch_in_trash = w.ch_trash;
    apr_pool_destroy(p);
}

int ps_store_check_locked(ps_store_t *st, const char **why)
{
    ps_shm_t *sh = st->sh;
    ps_walk_t w;

    if (ps_arena_check(st->base, &sh->arena, why)) {
        return 1;
    }
    memset(&w, 0, sizeof(w));
    if (ps_walk_all(st, &w)) {
        *why = w.why;
        return 1;
    }
    if (w.channels != sh->channels || w.wildcard != sh->wildcard_channels
        || w.stored != sh->stored || w.in_trash != sh->msgs_in_trash
        || w.in_delete != sh->ch_in_delete || w.ch_trash != sh->ch_in_trash) {
        *why = "zone counters out of step";
        return 1;
    }
    return 0;
}

int ps_store_leaks_locked(ps_store_t *st, apr_uint64_t *leaked,
                          const char **why)
{
    apr_pool_t *p;
    ps_walk_t w;

    *leaked = 0;
    if (ps_store_check_locked(st, why)) {
        return 1;
    }
    if (apr_pool_create_unmanaged_ex(&p, NULL, NULL) != APR_SUCCESS) {
        return 0;
    }
    /* A marking walk of a segment the check just proved sound rewrites
     * nothing but the counters, with the values they already hold. */
    memset(&w, 0, sizeof(w));
    w.scan = ps_arena_scan_begin(p, st->base, &st->sh->arena);
    ps_walk_all(st, &w);
    *leaked = ps_arena_scan_unmarked(w.scan);
    apr_pool_destroy(p);
    if (*leaked) {
        *why = "in-use blocks unreachable from the roots";
        return 1;
    }
    return 0;
}
