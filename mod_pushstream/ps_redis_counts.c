/* ps_redis_counts.c - the node's subscriber counts in Redis, for the
 * cluster-wide figures (ps_redis_lua.h SUBS reads them): ps:{ch}:subs holds
 * a field per node, "count/stamp", and ps:node:<node> the node's stamp
 * while it lives.  One child of the node writes them (the figures are the
 * segment's, the same in every child): the holder of a lease in the node's
 * shared page (ps_rd_node_t.writer).  Written on the loop's command
 * connection (ps_redis_async.c), called by the pub/sub side's tick
 * (ps_redis_sub.c), which walks the node's channels for them. */

#include <string.h>
#include <unistd.h>

#include <apr_atomic.h>
#include <apr_hash.h>
#include <apr_strings.h>

#include "ps_nameset.h"
#include "ps_redis_int.h"

static struct {
    ps_nameset_t written;          /* channel -> count in ps:{ch}:subs */
    apr_time_t subs_at;            /* next write of the liveness key */
    apr_time_t chan_at;            /* next write of every count */
    int counts_out;                /* a batch of counts under way */
    char stamp[48];                /* "start.n" of the counts (the writer) */
} ps_rdc;

/* A batch of subscriber-count commands. */
typedef struct ps_rdc_batch_t {
    apr_pool_t *pool;
    int out;                       /* replies awaited */
    unsigned int gen;              /* session it was sent for */
    int failed;
} ps_rdc_batch_t;

/* One reply less awaited; the batch ends with its last. */
static void ps_rdc_batch_end(ps_rdc_batch_t *b)
{
    if (--b->out > 0) {
        return;
    }
    ps_rdc.counts_out = 0;
    if (b->failed) {
        /* Redis did not answer within the timeout: the session starts
         * again (and writes every count) once it does */
        ps_rd_sub_lost(b->gen, "subscriber counts not written");
    }
    apr_pool_destroy(b->pool);
}

static void ps_rdc_reply(void *baton, redisReply *r, const char *why)
{
    ps_rdc_batch_t *b = baton;

    if (!r || r->type == REDIS_REPLY_ERROR) {
        b->failed = 1;
    }
    ps_rdc_batch_end(b);
}

/* Every count (and the liveness key) written again at the next write. */
void ps_rdc_reset(void)
{
    ps_nameset_clear(&ps_rdc.written);
    ps_rdc.subs_at = ps_rdc.chan_at = 0;
}

/* This child no longer writes: what it wrote is forgotten (a takeover
 * starts afresh, with a new stamp). */
static void ps_rdc_forget(void)
{
    if (ps_rdc.stamp[0]) {
        ps_nameset_clear(&ps_rdc.written);
        ps_rdc.stamp[0] = '\0';
    }
}

/* Whether this child writes the node's counts (ps_rd_node_t.writer): it
 * holds the lease, renewed here, or takes it over once it ran out (a new
 * stamp, every count written again). */
static int ps_rdc_writer(apr_time_t now)
{
    ps_rd_node_t *n = ps_rd->node;
    apr_uint32_t me = (apr_uint32_t)getpid();
    apr_uint32_t w = apr_atomic_read32(&n->writer);

    if (w != me || !ps_rdc.stamp[0]) {
        if ((w && w != me
             && now < (apr_time_t)apr_atomic_read64(&n->writer_until))
            || apr_atomic_cas32(&n->writer, me, w) != w) {
            ps_rdc_forget();
            return 0;
        }
        apr_snprintf(ps_rdc.stamp, sizeof(ps_rdc.stamp), "%s.%u", n->start,
                     apr_atomic_inc32(&n->takeovers) + 1);
        ps_rdc_reset();
    }
    apr_atomic_set64(&n->writer_until, (apr_uint64_t)(now
                     + apr_time_from_msec(PS_RD_WRITER_MS)));
    return 1;
}

/* This child stops writing (its session went, it stops): another child
 * takes the lease at once. */
void ps_rdc_leave(void)
{
    apr_atomic_cas32(&ps_rd->node->writer, 0, (apr_uint32_t)getpid());
    ps_rdc_forget();
}

/* The node's subscriber counts into Redis (ps_redis_lua.h SUBS): a changed
 * count at once, every count again each PS_RD_CHAN_KEEP_SEC (the hash
 * lives PS_RD_CHAN_TTL_MS after its last write), the node's liveness key
 * every PS_RD_SUBS_SEC: a node that stops writing drops out of the sums
 * within PS_RD_NODE_TTL_MS (the readers count a node's field only while
 * its key lives), so the counts need not be written as often as the key:
 * with 50 000 per-user channels that was 100 000 commands a second per
 * child.  want NULL: the liveness key only.  Only the lease holder
 * writes (ps_rdc_writer).  One batch at a time on the loop's command
 * connection; a batch that failed ends the session (as a PING without
 * answer).  0 when it did not run (a batch is under way). */
int ps_rdc_write(apr_hash_t *want, apr_time_t now, unsigned int gen)
{
    ps_rd_t *rd = ps_rd;
    apr_hash_index_t *hi;
    ps_rdc_batch_t *b;
    apr_pool_t *p;
    const char *why = "";
    int full, sent = 0;

    if (!ps_rdc_writer(now)) {
        return 1;                          /* another child writes them */
    }
    full = want && now >= ps_rdc.chan_at;
    if (ps_rdc.counts_out || apr_pool_create(&p, NULL) != APR_SUCCESS) {
        return 0;                          /* the next tick */
    }
    b = apr_pcalloc(p, sizeof(*b));
    b->pool = p;
    b->gen = gen;
    b->out = 1;                            /* held until all are sent */
#define PS_RDC_CMD(...) \
    do { \
        if (ps_rda_cmd(p, ps_rdc_reply, b, &why, __VA_ARGS__) == 0) { \
            b->out++; \
            sent++; \
        } \
        else { \
            b->failed = 1; \
        } \
    } while (0)
    if (now >= ps_rdc.subs_at) {
        PS_RDC_CMD("SET ps:node:%s %s PX %d", rd->node_id, ps_rdc.stamp,
                   PS_RD_NODE_TTL_MS);
        ps_rdc.subs_at = now + apr_time_from_sec(PS_RD_SUBS_SEC);
    }
    if (full) {
        ps_rdc.chan_at = now + apr_time_from_sec(PS_RD_CHAN_KEEP_SEC);
    }
    for (hi = want ? apr_hash_first(NULL, want) : NULL; hi;
         hi = apr_hash_next(hi)) {
        const void *k;
        apr_ssize_t klen;
        void *v;
        apr_hash_this(hi, &k, &klen, &v);
        if (full || ps_nameset_get(&ps_rdc.written, k, (apr_size_t)klen) != v) {
            PS_RDC_CMD("HSET ps:{%b}:subs %s %llu/%s", k, (size_t)klen,
                       rd->node_id, (unsigned long long)(apr_uintptr_t)v,
                       ps_rdc.stamp);
            PS_RDC_CMD("PEXPIRE ps:{%b}:subs %d", k, (size_t)klen,
                       PS_RD_CHAN_TTL_MS);
            ps_nameset_put(&ps_rdc.written, k, (apr_size_t)klen, v);
        }
    }
    for (hi = want ? apr_hash_first(NULL, ps_rdc.written.h) : NULL; hi;
         hi = apr_hash_next(hi)) {
        const void *k;
        apr_ssize_t klen;
        apr_hash_this(hi, &k, &klen, NULL);
        if (!apr_hash_get(want, k, klen)) {
            PS_RDC_CMD("HDEL ps:{%b}:subs %s", k, (size_t)klen, rd->node_id);
            ps_nameset_del(&ps_rdc.written, k, (apr_size_t)klen);
        }
    }
#undef PS_RDC_CMD
    ps_rdc.counts_out = sent > 0;
    ps_rdc_batch_end(b);                   /* the hold */
    return 1;
}

void ps_rdc_init(void)
{
    memset(&ps_rdc, 0, sizeof(ps_rdc));
    ps_nameset_init(&ps_rdc.written, PS_RD_NAMES_MIN);
}

void ps_rdc_destroy(void)
{
    ps_rdc_leave();
    ps_nameset_destroy(&ps_rdc.written);
}

int ps_rdc_due(apr_time_t now)
{
    return now >= ps_rdc.chan_at;
}

apr_size_t ps_rdc_compact(void)
{
    return ps_nameset_compact(&ps_rdc.written);
}
