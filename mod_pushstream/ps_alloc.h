/* ps_alloc.h - a block allocator inside the shared segment.
 *
 * Core: no httpd types.  Blocks are laid end to end (16-byte header: size
 * with an in-use bit, and the size of the previous block), free blocks sit
 * in power-of-two bins.  Every change to the chain of sizes is a single
 * aligned 8-byte store, so the chain can always be walked, even after a
 * process died half-way through an operation; ps_arena_scan_*() uses that
 * walk to rebuild the allocator (see ps_store's repair).
 */
#ifndef PS_ALLOC_H
#define PS_ALLOC_H

#include <apr.h>
#include <apr_pools.h>

#define PS_ALLOC_BINS 48

typedef struct ps_arena_t {
    apr_uint64_t start;                  /* offset of the first block */
    apr_uint64_t end;                    /* offset just past the last block */
    apr_uint64_t free_bytes;
    apr_uint64_t bins[PS_ALLOC_BINS];    /* free-list heads (block offsets) */
} ps_arena_t;

void ps_arena_init(char *base, ps_arena_t *a, apr_uint64_t start,
                   apr_uint64_t end);

/* Payload offset of n usable bytes (16-byte aligned), or 0 when full. */
apr_uint64_t ps_arena_alloc(char *base, ps_arena_t *a, apr_size_t n);

/* Free a payload offset returned by ps_arena_alloc (0 is ignored). */
void ps_arena_free(char *base, ps_arena_t *a, apr_uint64_t off);

/* Repair: scan the chain, mark what is reachable, free the rest. */
typedef struct ps_arena_scan_t ps_arena_scan_t;

ps_arena_scan_t *ps_arena_scan_begin(apr_pool_t *p, char *base,
                                     ps_arena_t *a);
/* 1: off is an in-use payload, now marked; 0: not a valid payload;
 * -1: valid but marked already (a cycle or a shared reference). */
int ps_arena_scan_mark(ps_arena_scan_t *s, apr_uint64_t off);
/* 1 when off is an in-use payload already marked (does not mark). */
int ps_arena_scan_marked(ps_arena_scan_t *s, apr_uint64_t off);
/* In-use blocks left unmarked (leaked); frees nothing. */
apr_uint64_t ps_arena_scan_unmarked(ps_arena_scan_t *s);
/* Free every unmarked in-use block, merge free neighbours, rebuild bins.
 * Returns the number of blocks freed. */
apr_uint64_t ps_arena_scan_sweep(ps_arena_scan_t *s);

/* Consistency check of chain and bins: 0 when sound. */
int ps_arena_check(char *base, ps_arena_t *a, const char **why);

#endif
