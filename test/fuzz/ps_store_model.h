/* ps_store_model.h - the shared-memory store against a simple model.
 *
 * A byte string drives requests over a few channel ids - publish (also
 * across a reclaim of a full segment), delete, info, subscribe,
 * unsubscribe, time passing with or without the cleanup (expiry, trash) -
 * written as
 * channel paths with duplicates (plain, ".bN", URL-escaped spellings),
 * parsed as the handlers parse them (ps_path_unescape, ps_path_parse,
 * ps_path_dedupe) or, for "raw" steps, handed to the store with the
 * duplicates left in (as the publisher did before issue 20).  The store
 * calls mirror ps_publish.c / ps_sub_handler.c.  After every step the
 * store must agree with the model: its consistency walk (the PS0060
 * check), every zone counter, every channel's figures; every event of the
 * events channel must be valid JSON.
 *
 * Used by test/unit/test_store_model.c (make test: tens of thousands of
 * steps) and test/fuzz/fuzz_store.c (make fuzz: millions).  Header-only;
 * psm_step() returns NULL or what went wrong.
 */
#ifndef PS_STORE_MODEL_H
#define PS_STORE_MODEL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <apr_pools.h>
#include "ps_store.h"
#include "ps_path.h"
#include "ps_json_check.h"

#define PSM_SEG     (1024 * 1024)
#define PSM_NIDS    5
#define PSM_MAXINST 1024                /* model channel lives at a time */
#define PSM_MAXSUBS 48                  /* subscriber connections */
#define PSM_SLOTS   3

static const char *const psm_ids[PSM_NIDS] = { "a", "b", "q\"uo\\te",
                                               "\xff\xfe", "a.b" };

enum { PSM_LIVE = 1, PSM_DELETED, PSM_TRASH };

typedef struct psm_inst_t {
    int state;                          /* 0 = free model slot */
    int id;                             /* psm_ids index, -1 = events */
    apr_uint64_t serial, ref, published, subs;
    apr_int64_t expires;
    int nstored, capstored;
    apr_int64_t *stored;                /* expiry, oldest first (malloc) */
} psm_inst_t;

typedef struct psm_sub_t {
    int used, slot, n;
    int inst[PSM_NIDS * 4];
    apr_uint64_t ref[PSM_NIDS * 4], serial[PSM_NIDS * 4];
} psm_sub_t;

typedef struct psm_tmsg_t {
    apr_int64_t expires;                /* end of the trash grace */
    apr_int64_t born;                   /* when it entered the log */
} psm_tmsg_t;

typedef struct psm_t {
    apr_pool_t *pool;                   /* per step scratch: cleared */
    apr_pool_t *hpool;                  /* the store handle */
    void *base;
    ps_store_t *st;
    ps_limits_t lim;
    int events;                         /* the events channel is on */
    int ev_inst;
    apr_int64_t now, next_cleanup;
    int live[PSM_NIDS];                 /* instance of the live channel */
    psm_inst_t inst[PSM_MAXINST];
    psm_sub_t subs[PSM_MAXSUBS];
    int slots[PSM_SLOTS];
    apr_uint64_t published;
    psm_tmsg_t *trash;                  /* the message trash */
    size_t ntrash, captrash;
    apr_uint64_t free0;
    unsigned long long steps;
    char err[256];
} psm_t;

#define PSM_CHECK(m, cond, ...)                                            \
    do {                                                                   \
        if (!(cond)) {                                                     \
            snprintf((m)->err, sizeof((m)->err), __VA_ARGS__);             \
            return (m)->err;                                               \
        }                                                                  \
    } while (0)

/* A message into the trash; born: when it was published. */
static void psm_trash_msg(psm_t *m, apr_int64_t born)
{
    if (m->ntrash == m->captrash) {
        m->captrash = m->captrash ? m->captrash * 2 : 256;
        m->trash = realloc(m->trash, m->captrash * sizeof(*m->trash));
        if (!m->trash)
            abort();
    }
    m->trash[m->ntrash].expires = m->now + PS_TRASH_GRACE;
    m->trash[m->ntrash++].born = born;
}

/* When a stored message (expiry exp) was published. */
static apr_int64_t psm_born(const psm_t *m, apr_int64_t exp)
{
    return exp - m->lim.message_ttl;
}

static int psm_new_inst(psm_t *m, int id)
{
    int i;

    for (i = 0; i < PSM_MAXINST; i++) {
        if (!m->inst[i].state) {
            apr_int64_t *keep = m->inst[i].stored;
            int cap = m->inst[i].capstored;
            memset(&m->inst[i], 0, sizeof(m->inst[i]));
            m->inst[i].stored = keep;
            m->inst[i].capstored = cap;
            m->inst[i].state = PSM_LIVE;
            m->inst[i].id = id;
            return i;
        }
    }
    abort();                            /* PSM_MAXINST is far above need */
}

/* Store a message in an instance's queue (expiry exp), popping past max. */
static void psm_store_msg(psm_t *m, psm_inst_t *in, apr_int64_t exp)
{
    if (in->nstored == in->capstored) {
        in->capstored = in->capstored ? in->capstored * 2 : 16;
        in->stored = realloc(in->stored, (size_t)in->capstored * sizeof(exp));
        if (!in->stored)
            abort();
    }
    in->stored[in->nstored++] = exp;
    while (m->lim.max_stored_per_channel
           && (apr_uint64_t)in->nstored > m->lim.max_stored_per_channel) {
        psm_trash_msg(m, psm_born(m, in->stored[0]));
        memmove(in->stored, in->stored + 1, --in->nstored * sizeof(exp));
    }
}

/* ps_event(): a stored message on the events channel. */
static void psm_event(psm_t *m)
{
    psm_inst_t *ev;

    if (!m->events)
        return;
    ev = &m->inst[m->ev_inst];
    ev->published++;
    psm_store_msg(m, ev, m->now + m->lim.message_ttl);
}

static void psm_inst_trash(psm_t *m, psm_inst_t *in)
{
    in->state = PSM_TRASH;
    in->expires = m->now + PS_TRASH_GRACE;
}

/* The stored messages of in past their time go to the trash. */
static void psm_expire_stored(psm_t *m, psm_inst_t *in)
{
    while (in->nstored && in->stored[0] <= m->now) {
        psm_trash_msg(m, psm_born(m, in->stored[0]));
        memmove(in->stored, in->stored + 1, --in->nstored * sizeof(in->stored[0]));
    }
}

/* ps_store_cleanup_locked() */
static void psm_cleanup(psm_t *m)
{
    size_t i, k;
    int c;

    if (m->now < m->next_cleanup)
        return;
    m->next_cleanup = m->now + 1;
    for (c = 0; c < PSM_MAXINST; c++) {
        psm_inst_t *in = &m->inst[c];
        if (in->state != PSM_LIVE)
            continue;
        psm_expire_stored(m, in);
        if (in->id >= 0 && !in->nstored && !in->subs && in->expires <= m->now) {
            m->live[in->id] = -1;
            psm_event(m);               /* channel_destroyed */
            psm_inst_trash(m, in);
        }
    }
    for (i = k = 0; i < m->ntrash; i++)
        if (m->trash[i].expires > m->now)
            m->trash[k++] = m->trash[i];
    m->ntrash = k;
    for (c = 0; c < PSM_MAXINST; c++)
        if (m->inst[c].state == PSM_TRASH && m->inst[c].expires <= m->now)
            m->inst[c].state = 0;
}

/* ps_store_reclaim_locked() (an allocation found the segment full):
 * expired messages leave their channels, the trash past its grace is
 * freed, and so are trashed messages published 2 s ago or more; no
 * channel is collected (the caller may hold channels it found). */
static void psm_reclaim(psm_t *m)
{
    size_t i, k;
    int c;

    for (c = 0; c < PSM_MAXINST; c++) {
        psm_inst_t *in = &m->inst[c];
        if (in->state != PSM_LIVE)
            continue;
        psm_expire_stored(m, in);
    }
    for (i = k = 0; i < m->ntrash; i++)
        if (m->trash[i].expires > m->now && m->trash[i].born > m->now - 2)
            m->trash[k++] = m->trash[i];
    m->ntrash = k;
    for (c = 0; c < PSM_MAXINST; c++)
        if (m->inst[c].state == PSM_TRASH && m->inst[c].expires <= m->now)
            m->inst[c].state = 0;
}

/* The channels of a request: ids (psm_ids index) and backtracks. */
typedef struct psm_list_t {
    int n, id[PSM_NIDS * 4];
} psm_list_t;

/* Spell a list from the input; parse it as a handler does. */
static const char *psm_list(psm_t *m, const unsigned char **in, size_t *left,
                            int raw, psm_list_t *out)
{
    char path[512];
    size_t o = 0, k;
    int n, i, j;
    unsigned char lb = *left ? (--*left, *(*in)++) : 0;
    apr_array_header_t *a;
    apr_size_t len;
    char *dec;

    n = 1 + (lb & 3) + ((lb >> 2) & 1) * 4;     /* 1..8 */
    for (i = 0; i < n; i++) {
        unsigned char b = *left ? (--*left, *(*in)++) : (unsigned char)i;
        const char *id = psm_ids[b % PSM_NIDS];
        int how = (b / PSM_NIDS) % 4;

        if (i)
            path[o++] = '/';
        for (k = 0; id[k]; k++) {
            if (how == 2 || ((unsigned char)id[k] >= 0x80 && how == 3))
                o += (size_t)snprintf(path + o, sizeof(path) - o, "%%%02X",
                                      (unsigned char)id[k]);
            else
                path[o++] = id[k];
        }
        if (how == 1)
            o += (size_t)snprintf(path + o, sizeof(path) - o, ".b%d", b >> 6);
    }
    dec = ps_path_unescape(m->pool, path, o, &len);
    a = ps_path_parse(m->pool, dec, len);
    if (!raw)
        a = ps_path_dedupe(m->pool, a);
    out->n = 0;
    for (i = 0; i < a->nelts; i++) {
        const ps_path_channel_t *pc = &APR_ARRAY_IDX(a, i, ps_path_channel_t);
        for (j = 0; j < PSM_NIDS; j++)
            if (strlen(psm_ids[j]) == pc->len && !memcmp(psm_ids[j], pc->id, pc->len))
                break;
        PSM_CHECK(m, j < PSM_NIDS, "parse gave an unknown id");
        if (!raw)
            for (k = 0; k < (size_t)out->n; k++)
                PSM_CHECK(m, out->id[k] != j, "dedupe left a duplicate");
        out->id[out->n++] = j;
    }
    return NULL;
}

/* Find or create (ps_store_get_or_create_locked), model and store. */
static const char *psm_get(psm_t *m, int id, ps_channel_t **ch, int *inst)
{
    apr_status_t rv = ps_store_get_or_create_locked(m->st, psm_ids[id],
                                                    strlen(psm_ids[id]), 0,
                                                    &m->lim, m->now, ch);
    PSM_CHECK(m, rv == APR_SUCCESS, "get_or_create: %d", rv);
    if (m->live[id] < 0) {
        psm_inst_t *in;
        m->live[id] = psm_new_inst(m, id);
        in = &m->inst[m->live[id]];
        in->serial = ps_store_channel_serial(*ch);
        in->ref = ps_store_channel_ref(m->st, *ch);
        in->expires = m->now + m->lim.channel_inactivity;
        psm_event(m);                   /* channel_created */
    }
    *inst = m->live[id];
    PSM_CHECK(m, m->inst[*inst].serial == ps_store_channel_serial(*ch),
              "channel %d: serial differs", id);
    return NULL;
}

/* psm_get() for every id of l, in order. */
static const char *psm_get_all(psm_t *m, const psm_list_t *l,
                               ps_channel_t **chs, int *inst)
{
    const char *e;
    int i;

    for (i = 0; i < l->n; i++)
        if ((e = psm_get(m, l->id[i], &chs[i], &inst[i])))
            return e;
    return NULL;
}

/* The model of one message published on in (stored, or straight to the
 * trash). */
static void psm_published(psm_t *m, psm_inst_t *in, int store)
{
    in->published++;
    m->published++;
    if (store)
        psm_store_msg(m, in, m->now + m->lim.message_ttl);
    else
        psm_trash_msg(m, m->now);
    in->expires = m->now + m->lim.channel_inactivity;
}

static const char *psm_publish(psm_t *m, const psm_list_t *l, int store)
{
    ps_channel_t *chs[PSM_NIDS * 4];
    int inst[PSM_NIDS * 4], i;
    const char *e;

    if ((e = psm_get_all(m, l, chs, inst)))
        return e;
    for (i = 0; i < l->n; i++) {
        apr_status_t rv = ps_store_publish_locked(m->st, chs[i], "msg", 3,
                                                  NULL, 0, NULL, 0, store,
                                                  &m->lim, m->now, NULL);
        PSM_CHECK(m, rv == APR_SUCCESS, "publish: %d", rv);
        psm_published(m, &m->inst[inst[i]], store);
    }
    return NULL;
}

/* A publish that finds the segment full (ps_pub_store()'s order: every
 * channel found or created first, then ps_store_publish_all_locked()):
 * the first try asks for more than the segment has, so the store reclaims
 * memory and gives up; then the message (which fits) goes to the very
 * channels found before the reclaim.  A reclaim that collected one of
 * them (idle, inactivity passed) would put the message into the trash. */
static char psm_huge[PSM_SEG];

static const char *psm_publish_reclaim(psm_t *m, const psm_list_t *l,
                                       int store)
{
    ps_channel_t *chs[PSM_NIDS * 4];
    int inst[PSM_NIDS * 4], i;
    const char *e;
    apr_status_t rv;

    if ((e = psm_get_all(m, l, chs, inst)))
        return e;
    rv = ps_store_publish_all_locked(m->st, chs, l->n, psm_huge,
                                     sizeof(psm_huge), NULL, 0, NULL, 0,
                                     store, &m->lim, m->now);
    PSM_CHECK(m, rv == APR_ENOMEM, "publish larger than the segment: %d", rv);
    psm_reclaim(m);
    rv = ps_store_publish_all_locked(m->st, chs, l->n, "msg", 3, NULL, 0,
                                     NULL, 0, store, &m->lim, m->now);
    PSM_CHECK(m, rv == APR_SUCCESS, "publish after a reclaim: %d", rv);
    for (i = 0; i < l->n; i++) {
        psm_inst_t *in = &m->inst[inst[i]];
        PSM_CHECK(m, in->state == PSM_LIVE, "channel %d: not live", in->id);
        psm_published(m, in, store);
    }
    return NULL;
}

/* ps_pub_delete(): the existing channels found first, then deleted. */
static const char *psm_delete(psm_t *m, const psm_list_t *l)
{
    ps_channel_t *found[PSM_NIDS * 4];
    int inst[PSM_NIDS * 4], n = 0, i;

    for (i = 0; i < l->n; i++) {
        const char *id = psm_ids[l->id[i]];
        ps_channel_t *ch = ps_store_find_locked(m->st, id, strlen(id));
        if (ch) {
            inst[n] = m->live[l->id[i]];
            found[n++] = ch;
        }
    }
    for (i = 0; i < n; i++) {
        psm_inst_t *in = &m->inst[inst[i]];
        PSM_CHECK(m, ps_store_delete_locked(m->st, found[i], "gone", 4, m->now)
                     == APR_SUCCESS, "delete: segment full");
        if (in->state != PSM_LIVE)
            continue;                   /* named twice: deleted once */
        m->live[in->id] = -1;
        while (in->nstored) {
            in->nstored--;
            psm_trash_msg(m, psm_born(m, in->stored[in->nstored]));
        }
        psm_event(m);                   /* channel_destroyed */
        psm_trash_msg(m, m->now);       /* the notice */
        if (in->subs)
            in->state = PSM_DELETED;
        else
            psm_inst_trash(m, in);
    }
    return NULL;
}

/* ps_store_part() of a waiting subscriber; ps_unsubscribe_all(). */
static const char *psm_subscribe(psm_t *m, const psm_list_t *l, int slot)
{
    ps_channel_t *chs[PSM_NIDS * 4];
    psm_sub_t *s = NULL;
    int i;
    const char *e;

    for (i = 0; i < PSM_MAXSUBS && !s; i++)
        if (!m->subs[i].used)
            s = &m->subs[i];
    if (!s)
        return NULL;                    /* the model's table is full */
    ps_store_cleanup_locked(m->st, m->now);
    psm_cleanup(m);
    if ((e = psm_get_all(m, l, chs, s->inst)))
        return e;
    for (i = 0; i < l->n; i++) {
        psm_inst_t *in = &m->inst[s->inst[i]];
        PSM_CHECK(m, ps_store_subscribe_locked(m->st, chs[i], m->slots[slot],
                                               &m->lim, m->now) == APR_SUCCESS,
                  "subscribe failed");
        s->ref[i] = ps_store_channel_ref(m->st, chs[i]);
        s->serial[i] = ps_store_channel_serial(chs[i]);
        in->subs++;
        in->expires = m->now + m->lim.channel_inactivity;
        psm_event(m);                   /* client_subscribed */
    }
    ps_store_worker_conn_locked(m->st, m->slots[slot], 1);
    s->used = 1;
    s->slot = slot;
    s->n = l->n;
    return NULL;
}

static void psm_unsubscribe(psm_t *m, int which)
{
    psm_sub_t *s = &m->subs[which % PSM_MAXSUBS];
    int i;

    if (!s->used)
        return;
    for (i = 0; i < s->n; i++) {
        psm_inst_t *in = &m->inst[s->inst[i]];
        ps_store_unsubscribe_locked(m->st, s->ref[i], s->serial[i],
                                    m->slots[s->slot], &m->lim, m->now);
        in->subs--;
        psm_event(m);                   /* client_unsubscribed */
        if (in->state == PSM_DELETED) {
            if (!in->subs)
                psm_inst_trash(m, in);
        }
        else if (in->expires < m->now + m->lim.channel_inactivity) {
            in->expires = m->now + m->lim.channel_inactivity;
        }
    }
    ps_store_worker_conn_locked(m->st, m->slots[s->slot], -1);
    s->used = 0;
}

/* Everything the store says against the model. */
static const char *psm_compare(psm_t *m, int leaks)
{
    ps_store_stats_t s;
    apr_uint64_t live = 0, del = 0, trash = 0, stored = 0, subs = 0, leaked;
    const char *why = NULL;
    int c, i;

    PSM_CHECK(m, !ps_store_check_locked(m->st, &why), "check: %s", why);
    if (leaks)
        PSM_CHECK(m, !ps_store_leaks_locked(m->st, &leaked, &why),
                  "leaks: %s (%llu)", why, (unsigned long long)leaked);
    for (c = 0; c < PSM_MAXINST; c++) {
        const psm_inst_t *in = &m->inst[c];
        live += in->state == PSM_LIVE;
        del += in->state == PSM_DELETED;
        trash += in->state == PSM_TRASH;
        if (in->state == PSM_LIVE && in->id >= 0)
            stored += (apr_uint64_t)in->nstored;
    }
    for (i = 0; i < PSM_MAXSUBS; i++)
        subs += m->subs[i].used;
    ps_store_stats_locked(m->st, &s);
    PSM_CHECK(m, s.channels == live, "channels %llu, model %llu",
              (unsigned long long)s.channels, (unsigned long long)live);
    PSM_CHECK(m, s.channels_in_delete == del, "in delete %llu, model %llu",
              (unsigned long long)s.channels_in_delete, (unsigned long long)del);
    PSM_CHECK(m, s.channels_in_trash == trash, "ch in trash %llu, model %llu",
              (unsigned long long)s.channels_in_trash, (unsigned long long)trash);
    PSM_CHECK(m, s.stored_messages == stored, "stored %llu, model %llu",
              (unsigned long long)s.stored_messages, (unsigned long long)stored);
    PSM_CHECK(m, s.messages_in_trash == m->ntrash, "msgs in trash %llu, model %zu",
              (unsigned long long)s.messages_in_trash, m->ntrash);
    PSM_CHECK(m, s.published_messages == m->published, "published differs");
    PSM_CHECK(m, s.subscribers == subs, "subscribers %llu, model %llu",
              (unsigned long long)s.subscribers, (unsigned long long)subs);
    for (i = 0; i < PSM_NIDS; i++) {
        ps_channel_t *ch = ps_store_find_locked(m->st, psm_ids[i],
                                                strlen(psm_ids[i]));
        ps_chinfo_t info;
        const psm_inst_t *in;

        PSM_CHECK(m, !ch == (m->live[i] < 0), "channel %d: found %d", i, !!ch);
        if (!ch)
            continue;
        in = &m->inst[m->live[i]];
        ps_store_channel_info_locked(m->st, ch, &info);
        PSM_CHECK(m, info.published_messages == in->published
                  && info.stored_messages == (apr_uint64_t)in->nstored
                  && info.subscribers == in->subs
                  && ps_store_channel_serial(ch) == in->serial,
                  "channel %d: figures differ", i);
    }
    return NULL;
}

static void psm_last_event_cb(void *baton, const ps_logmsg_t *lm)
{
    int *ok = baton;

    *ok = ps_json_valid(lm->view.text, lm->view.text_len, NULL);
}

/* cfg: the limits and whether the events channel exists. */
static int psm_init(psm_t *m, apr_pool_t *parent, unsigned char cfg)
{
    ps_store_stats_t s;
    int i;

    memset(m, 0, sizeof(*m));
    if (apr_pool_create(&m->pool, parent) != APR_SUCCESS
        || apr_pool_create(&m->hpool, parent) != APR_SUCCESS)
        return -1;
    m->base = mmap(NULL, PSM_SEG, PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (m->base == MAP_FAILED)
        return -1;
    m->now = 1000;
    if (ps_store_format(m->base, PSM_SEG, PSM_SLOTS + 1, m->now) != APR_SUCCESS)
        return -1;
    m->st = ps_store_attach(m->hpool, m->base);
    m->lim.max_stored_per_channel = cfg & 7;            /* 0 = unlimited */
    m->lim.message_ttl = 1 + ((cfg >> 3) & 7);
    m->lim.channel_inactivity = 1 + ((cfg >> 6) & 3) * 3;
    m->events = (cfg >> 5) & 1;
    for (i = 0; i < PSM_NIDS; i++)
        m->live[i] = -1;
    ps_store_lock(m->st, NULL);
    for (i = 0; i < PSM_SLOTS; i++)
        m->slots[i] = ps_store_worker_claim_locked(m->st, 900001 + i, m->now);
    if (m->events) {
        m->ev_inst = psm_new_inst(m, -1);
        ps_store_events_channel_locked(m->st, "events", 6, &m->lim, m->now);
    }
    ps_store_stats_locked(m->st, &s);
    m->free0 = s.free_bytes;
    ps_store_unlock(m->st);
    return 0;
}

/* One request from the input; NULL or the divergence. */
static const char *psm_step(psm_t *m, const unsigned char **in, size_t *left)
{
    unsigned char op = (--*left, *(*in)++);
    int raw = op >> 7;
    psm_list_t l;
    const char *e = NULL;

    apr_pool_clear(m->pool);
    ps_store_lock(m->st, NULL);
    m->steps++;
    switch (op & 15) {
    case 0: case 1: case 2: case 3:
        if (!(e = psm_list(m, in, left, raw, &l)))
            e = psm_publish(m, &l, op & 16);
        break;
    case 4:
        if (!(e = psm_list(m, in, left, raw, &l)))
            e = psm_publish_reclaim(m, &l, op & 16);
        break;
    case 5: case 6:
        if (!(e = psm_list(m, in, left, raw, &l)))
            e = psm_delete(m, &l);
        break;
    case 7: case 8: case 9: case 10:
        if (!(e = psm_list(m, in, left, raw, &l)))
            e = psm_subscribe(m, &l, (op >> 4) % PSM_SLOTS);
        break;
    case 11: case 12:
        psm_unsubscribe(m, op >> 4);
        break;
    case 15:                            /* time passes, no cleanup yet
                                         * (it runs about once a second) */
        m->now += 1 + ((op >> 4) & 3);
        break;
    default:                            /* time passes, maintenance */
        m->now += (op >> 4) & 3;
        ps_store_cleanup_locked(m->st, m->now);
        psm_cleanup(m);
        break;
    }
    if (!e)
        e = psm_compare(m, m->steps % 64 == 0);
    if (!e && m->events) {
        ps_replay_t q = { 1, -1, -1, NULL, 0 };
        int ok = 1;
        ps_store_replay_locked(m->st, ps_store_find_locked(m->st, "events", 6),
                               &q, m->now, psm_last_event_cb, &ok);
        if (!ok)
            e = "an event is not valid JSON";
    }
    ps_store_unlock(m->st);
    return e;
}

/* Every subscriber leaves, time passes: everything is freed again. */
static const char *psm_finish(psm_t *m)
{
    ps_store_stats_t s;
    const char *e;
    int i;

    ps_store_lock(m->st, NULL);
    for (i = 0; i < PSM_MAXSUBS; i++)
        psm_unsubscribe(m, i);
    for (i = 0; i < 3; i++) {
        m->now += 100;
        ps_store_cleanup_locked(m->st, m->now);
        psm_cleanup(m);
    }
    e = psm_compare(m, 1);
    ps_store_stats_locked(m->st, &s);
    ps_store_unlock(m->st);
    if (e)
        return e;
    PSM_CHECK(m, s.channels == (apr_uint64_t)m->events && !s.messages_in_trash
              && !s.channels_in_trash && s.free_bytes == m->free0,
              "not all freed at the end");
    return NULL;
}

static void psm_destroy(psm_t *m)
{
    int i;

    for (i = 0; i < PSM_MAXINST; i++)
        free(m->inst[i].stored);
    if (m->base && m->base != MAP_FAILED)
        munmap(m->base, PSM_SEG);
    if (m->pool)
        apr_pool_destroy(m->pool);
    if (m->hpool)
        apr_pool_destroy(m->hpool);
    free(m->trash);
}

#endif
