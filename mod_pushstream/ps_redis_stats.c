/* ps_redis_stats.c - several servers: the figures counted over every
 * node (see ps_redis.h): subscriber counts with by_node, the statistics
 * summary, the node's Redis state. */

#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include <apr_atomic.h>
#include <apr_strings.h>

#include "ps_redis_int.h"
#include "ps_redis_lua.h"

static int ps_rd_node_cmp(const void *a, const void *b)
{
    return strcmp(((const ps_chinfo_node_t *)a)->node,
                  ((const ps_chinfo_node_t *)b)->node);
}

const char **ps_rd_subs_args(apr_pool_t *p, const ps_chinfo_t *infos, int n,
                             size_t **lens_out)
{
    const char **argv = apr_pcalloc(p, (n + 4) * sizeof(*argv));
    size_t *lens = apr_pcalloc(p, (n + 4) * sizeof(*lens));
    int i;

    for (i = 0; i < n; i++) {
        argv[3 + i] = apr_psprintf(p, "ps:{%.*s}:subs", (int)infos[i].id_len,
                                   infos[i].id ? infos[i].id : "");
        lens[3 + i] = strlen(argv[3 + i]);
    }
    argv[3 + n] = ps_rd->node_id;
    lens[3 + n] = strlen(ps_rd->node_id);
    *lens_out = lens;
    return argv;
}

void ps_rd_subs_one(apr_pool_t *p, ps_chinfo_t *info, const redisReply *e)
{
    int j, others = e->type == REDIS_REPLY_ARRAY ? (int)e->elements / 2 : 0;
    ps_chinfo_node_t *bn;
    int k = 1;

    if (!info->id) {
        return;                       /* not a channel of the answer */
    }
    bn = apr_pcalloc(p, (others + 1) * sizeof(*bn));
    bn[0].node = ps_rd->node_id;
    bn[0].subscribers = info->subscribers;
    for (j = 0; j < others; j++) {
        redisReply *nm = e->element[2 * j], *v = e->element[2 * j + 1];
        apr_uint64_t cnt;
        if (nm->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING) {
            continue;
        }
        cnt = apr_strtoi64(v->str, NULL, 10) > 0
              ? (apr_uint64_t)apr_strtoi64(v->str, NULL, 10) : 0;
        bn[k].node = apr_pstrmemdup(p, nm->str, nm->len);
        bn[k].subscribers = cnt;
        info->subscribers += cnt;
        k++;
    }
    qsort(bn, (size_t)k, sizeof(*bn), ps_rd_node_cmp);
    info->nodes = k;
    info->by_node = bn;
}

int ps_rd_subs_apply(apr_pool_t *p, ps_chinfo_t *infos, int n,
                     const redisReply *r)
{
    int i;

    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != (size_t)n) {
        return 0;                     /* counts stay this node's */
    }
    for (i = 0; i < n; i++) {
        ps_rd_subs_one(p, &infos[i], r->element[i]);
    }
    return 1;
}

void ps_redis_subscribers(apr_pool_t *p, ps_chinfo_t *infos, int n)
{
    redisContext *c;
    redisReply *r;
    const char **argv;
    size_t *lens;

    int i;

    for (i = 0; i < n && (infos[i].by_node || !infos[i].id); i++) {
    }
    if (!ps_rd || i == n || !(c = ps_rd_conn(ps_rd))) {
        return;                       /* none, or the publish counted them */
    }
    argv = ps_rd_subs_args(p, infos, n, &lens);
    r = ps_rd_eval(c, PS_LUA_SUBS, n, n + 4, argv, lens);
    if (!ps_rd_subs_apply(p, infos, n, r)) {
        ps_rd_conn_drop(ps_rd);       /* counts stay this node's */
    }
    if (r) {
        freeReplyObject(r);
    }
}

int ps_redis_summary(ps_store_stats_t *s)
{
    const char *argv[3];
    size_t lens[3];
    redisContext *c;
    redisReply *r;
    size_t i;
    int ok;

    if (!ps_rd || !(c = ps_rd_conn(ps_rd))) {
        return 0;
    }
    r = ps_rd_eval(c, PS_LUA_STATS, 0, 3, argv, lens);
    ok = r && r->type == REDIS_REPLY_ARRAY && r->elements == 4;
    for (i = 0; ok && i < 4; i++) {
        ok = r->element[i]->type == REDIS_REPLY_INTEGER
             && r->element[i]->integer >= 0;
    }
    if (ok) {
        s->channels = (apr_uint64_t)r->element[0]->integer;
        s->wildcard_channels = (apr_uint64_t)r->element[1]->integer;
        s->published_messages = (apr_uint64_t)r->element[2]->integer;
        s->stored_messages = (apr_uint64_t)r->element[3]->integer;
    }
    else {
        ps_rd_conn_drop(ps_rd);       /* this node's figures */
    }
    if (r) {
        freeReplyObject(r);
    }
    return ok;
}

void ps_redis_stats(ps_redis_stats_t *out)
{
    memset(out, 0, sizeof(*out));
    if (!ps_rd) {
        return;
    }
    out->enabled = 1;
    out->connected = (int)apr_atomic_read32(&ps_rd->node->connected);
    out->subscribed = apr_atomic_read32(&ps_rd->subscribed);
    out->disconnects = apr_atomic_read32(&ps_rd->node->disconnects);
    out->data_lost = apr_atomic_read32(&ps_rd->node->data_lost);
    out->gaps_filled = apr_atomic_read32(&ps_rd->node->gaps_filled);
    out->publish_failures = apr_atomic_read32(&ps_rd->node->publish_failures);
    out->counts_writer = (int)apr_atomic_read32(&ps_rd->node->writer);
    out->state = apr_atomic_read32(&ps_rd->node->state) == PS_RD_DOWN
                 ? "down" : "up";
}
