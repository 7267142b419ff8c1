/* ps_nameset.h - a set of names (byte strings), each with a value, whose
 * memory follows what it holds.  Core: no httpd types.
 *
 * A pool never gives a string back: a set kept for days (the channels a
 * child subscribed in Redis, with per-user channels coming and going)
 * would keep every name it ever held.  Here a removed name's bytes are
 * counted, and ps_nameset_compact() copies the kept names into a new pool
 * once the removed ones outweigh them. */
#ifndef PS_NAMESET_H
#define PS_NAMESET_H

#include <apr_errno.h>
#include <apr_hash.h>
#include <apr_pools.h>

typedef struct ps_nameset_t {
    apr_pool_t *pool;              /* the names and the hash */
    apr_hash_t *h;                 /* name -> value (never NULL) */
    apr_size_t live, dead;         /* bytes of names held, and removed */
    apr_size_t min;                /* no compaction below this many removed */
} ps_nameset_t;

/* An empty set; compactions only once min bytes were removed. */
apr_status_t ps_nameset_init(ps_nameset_t *s, apr_size_t min);

/* The value of name k, or NULL. */
void *ps_nameset_get(const ps_nameset_t *s, const void *k, apr_size_t len);

/* Name k gets value v (not NULL): copied in when new, else its value set. */
void ps_nameset_put(ps_nameset_t *s, const void *k, apr_size_t len, void *v);

/* Name k leaves the set (nothing when it is not in).  Safe while the set
 * is walked with apr_hash_first(NULL, s->h), k being the current name. */
void ps_nameset_del(ps_nameset_t *s, const void *k, apr_size_t len);

unsigned int ps_nameset_count(const ps_nameset_t *s);

/* When the removed names outweigh the kept ones (and min): the kept ones
 * move to a new pool and the old one is freed.  The bytes freed, or 0.
 * Not while the set is walked: its names move. */
apr_size_t ps_nameset_compact(ps_nameset_t *s);

/* Every name leaves; the memory goes back at once. */
void ps_nameset_clear(ps_nameset_t *s);

void ps_nameset_destroy(ps_nameset_t *s);

#endif
