/* ps_nameset.c - a set of names whose memory follows what it holds
 * (ps_nameset.h).  Core: no httpd types. */
#include <apr_strings.h>

#include "ps_nameset.h"

apr_status_t ps_nameset_init(ps_nameset_t *s, apr_size_t min)
{
    apr_status_t rv = apr_pool_create(&s->pool, NULL);

    if (rv != APR_SUCCESS) {
        s->pool = NULL;
        s->h = NULL;
        return rv;
    }
    s->h = apr_hash_make(s->pool);
    s->live = s->dead = 0;
    s->min = min;
    return APR_SUCCESS;
}

void *ps_nameset_get(const ps_nameset_t *s, const void *k, apr_size_t len)
{
    return apr_hash_get(s->h, k, (apr_ssize_t)len);
}

void ps_nameset_put(ps_nameset_t *s, const void *k, apr_size_t len, void *v)
{
    if (!apr_hash_get(s->h, k, (apr_ssize_t)len)) {
        k = apr_pstrmemdup(s->pool, k, len);
        s->live += len + 1;
    }
    apr_hash_set(s->h, k, (apr_ssize_t)len, v);
}

void ps_nameset_del(ps_nameset_t *s, const void *k, apr_size_t len)
{
    if (apr_hash_get(s->h, k, (apr_ssize_t)len)) {
        apr_hash_set(s->h, k, (apr_ssize_t)len, NULL);
        s->live -= len + 1;
        s->dead += len + 1;
    }
}

unsigned int ps_nameset_count(const ps_nameset_t *s)
{
    return apr_hash_count(s->h);
}

apr_size_t ps_nameset_compact(ps_nameset_t *s)
{
    apr_hash_index_t *hi;
    apr_pool_t *np;
    apr_hash_t *nh;
    apr_size_t freed = s->dead;

    if (freed < s->min || freed < s->live
        || apr_pool_create(&np, NULL) != APR_SUCCESS) {
        return 0;
    }
    nh = apr_hash_make(np);
    for (hi = apr_hash_first(NULL, s->h); hi; hi = apr_hash_next(hi)) {
        const void *k;
        apr_ssize_t klen;
        void *v;
        apr_hash_this(hi, &k, &klen, &v);
        apr_hash_set(nh, apr_pstrmemdup(np, k, (apr_size_t)klen), klen, v);
    }
    apr_pool_destroy(s->pool);
    s->pool = np;
    s->h = nh;
    s->dead = 0;
    return freed;
}

void ps_nameset_clear(ps_nameset_t *s)
{
    apr_pool_clear(s->pool);
    s->h = apr_hash_make(s->pool);
    s->live = s->dead = 0;
}

void ps_nameset_destroy(ps_nameset_t *s)
{
    if (s->pool) {
        apr_pool_destroy(s->pool);
        s->pool = NULL;
        s->h = NULL;
    }
}
