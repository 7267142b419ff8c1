/* ps_alloc.c - block allocator for the shared segment (see ps_alloc.h). */

#include <string.h>
#include "ps_alloc.h"

#define PS_BLK_HDR   16
#define PS_BLK_MIN   32
#define PS_BLK_USED  ((apr_uint64_t)1)

typedef struct ps_blk_t {
    apr_uint64_t size;        /* whole block incl. header; bit 0 = in use */
    apr_uint64_t prev;        /* size of the previous block (0 for the first) */
    apr_uint64_t next_free;   /* free blocks only: bin list */
    apr_uint64_t prev_free;
} ps_blk_t;

#define PS_BLK(base, off) ((ps_blk_t *)((base) + (off)))

static apr_uint64_t ps_blk_size(const ps_blk_t *b)
{
    return b->size & ~PS_BLK_USED;
}

static int ps_blk_used(const ps_blk_t *b)
{
    return (int)(b->size & PS_BLK_USED);
}

static int ps_bin_of(apr_uint64_t size)
{
    int bin = 63 - __builtin_clzll(size);
    return bin < PS_ALLOC_BINS ? bin : PS_ALLOC_BINS - 1;
}

static void ps_bin_push(char *base, ps_arena_t *a, apr_uint64_t off)
{
    ps_blk_t *b = PS_BLK(base, off);
    int bin = ps_bin_of(ps_blk_size(b));

    b->prev_free = 0;
    b->next_free = a->bins[bin];
    if (a->bins[bin]) {
        PS_BLK(base, a->bins[bin])->prev_free = off;
    }
    a->bins[bin] = off;
    a->free_bytes += ps_blk_size(b);
}

static void ps_bin_remove(char *base, ps_arena_t *a, apr_uint64_t off)
{
    ps_blk_t *b = PS_BLK(base, off);
    int bin = ps_bin_of(ps_blk_size(b));

    if (b->prev_free) {
        PS_BLK(base, b->prev_free)->next_free = b->next_free;
    }
    else {
        a->bins[bin] = b->next_free;
    }
    if (b->next_free) {
        PS_BLK(base, b->next_free)->prev_free = b->prev_free;
    }
    a->free_bytes -= ps_blk_size(b);
}

void ps_arena_init(char *base, ps_arena_t *a, apr_uint64_t start,
                   apr_uint64_t end)
{
    ps_blk_t *b;

    memset(a, 0, sizeof(*a));
    start = (start + 15) & ~(apr_uint64_t)15;
    end &= ~(apr_uint64_t)15;
    a->start = start;
    a->end = end;
    b = PS_BLK(base, start);
    b->size = end - start;
    b->prev = 0;
    ps_bin_push(base, a, start);
}

/* Take n bytes from the free block at off (already out of its bin); the
 * rest, if big enough, becomes a free block of its own.  The remainder's
 * header is written before the block shrinks, so a walk never sees a hole. */
static void ps_blk_split(char *base, ps_arena_t *a, apr_uint64_t off,
                         apr_uint64_t need)
{
    ps_blk_t *b = PS_BLK(base, off);
    apr_uint64_t size = ps_blk_size(b);
    apr_uint64_t rest = size - need;

    if (rest >= PS_BLK_MIN) {
        ps_blk_t *r = PS_BLK(base, off + need);
        r->size = rest;
        r->prev = need;
        if (off + size < a->end) {
            PS_BLK(base, off + size)->prev = rest;
        }
        b->size = need | PS_BLK_USED;
        ps_bin_push(base, a, off + need);
    }
    else {
        b->size = size | PS_BLK_USED;
    }
}

apr_uint64_t ps_arena_alloc(char *base, ps_arena_t *a, apr_size_t n)
{
    apr_uint64_t need = (((apr_uint64_t)n + 15) & ~(apr_uint64_t)15)
                        + PS_BLK_HDR;
    int bin, tries;

    if (n > a->end - a->start) {
        return 0;
    }
    if (need < PS_BLK_MIN) {
        need = PS_BLK_MIN;
    }
    /* First fit in the block's own bin (a few tries), then the first block
     * of any larger bin, which is always big enough. */
    bin = ps_bin_of(need);
    for (; bin < PS_ALLOC_BINS; bin++) {
        apr_uint64_t off = a->bins[bin];
        for (tries = 0; off && tries < 16; tries++) {
            ps_blk_t *b = PS_BLK(base, off);
            if (ps_blk_size(b) >= need) {
                ps_bin_remove(base, a, off);
                ps_blk_split(base, a, off, need);
                return off + PS_BLK_HDR;
            }
            off = b->next_free;
        }
    }
    return 0;
}

/* Merge the free block at off with a free successor. */
static void ps_blk_merge_next(char *base, ps_arena_t *a, apr_uint64_t off)
{
    ps_blk_t *b = PS_BLK(base, off);
    apr_uint64_t next = off + ps_blk_size(b);
    apr_uint64_t size;

    if (next >= a->end || ps_blk_used(PS_BLK(base, next))) {
        return;
    }
    ps_bin_remove(base, a, next);
    size = ps_blk_size(b) + ps_blk_size(PS_BLK(base, next));
    b->size = size;
    if (off + size < a->end) {
        PS_BLK(base, off + size)->prev = size;
    }
}

void ps_arena_free(char *base, ps_arena_t *a, apr_uint64_t off)
{
    apr_uint64_t blk;
    ps_blk_t *b;

    if (!off || off < a->start + PS_BLK_HDR || off >= a->end) {
        return;
    }
    blk = off - PS_BLK_HDR;
    b = PS_BLK(base, blk);
    if (!ps_blk_used(b)) {
        return;                       /* double free: ignore */
    }
    b->size = ps_blk_size(b);
    ps_blk_merge_next(base, a, blk);
    if (b->prev && !ps_blk_used(PS_BLK(base, blk - b->prev))) {
        apr_uint64_t pblk = blk - b->prev;
        ps_blk_t *pb = PS_BLK(base, pblk);
        apr_uint64_t size = ps_blk_size(pb) + ps_blk_size(b);
        ps_bin_remove(base, a, pblk);
        pb->size = size;
        if (pblk + size < a->end) {
            PS_BLK(base, pblk + size)->prev = size;
        }
        blk = pblk;
    }
    ps_bin_push(base, a, blk);
}

/* ---- repair ------------------------------------------------------------- */

struct ps_arena_scan_t {
    char *base;
    ps_arena_t *a;
    apr_uint64_t nunits;              /* 16-byte units in the arena */
    unsigned char *starts;            /* bitmap: a block starts here */
    unsigned char *marks;             /* bitmap: reachable */
};

static int ps_bit_get(const unsigned char *m, apr_uint64_t i)
{
    return (m[i >> 3] >> (i & 7)) & 1;
}

static void ps_bit_set(unsigned char *m, apr_uint64_t i)
{
    m[i >> 3] |= (unsigned char)(1u << (i & 7));
}

/* Walk the chain of sizes, fixing prev sizes on the way.  A size that
 * cannot be right ends the walk: the rest becomes one free block. */
ps_arena_scan_t *ps_arena_scan_begin(apr_pool_t *p, char *base,
                                     ps_arena_t *a)
{
    ps_arena_scan_t *s = apr_pcalloc(p, sizeof(*s));
    apr_uint64_t off, prev = 0;

    s->base = base;
    s->a = a;
    s->nunits = (a->end - a->start) / 16;
    s->starts = apr_pcalloc(p, (apr_size_t)(s->nunits / 8 + 1));
    s->marks = apr_pcalloc(p, (apr_size_t)(s->nunits / 8 + 1));
    for (off = a->start; off < a->end;) {
        ps_blk_t *b = PS_BLK(base, off);
        apr_uint64_t size = ps_blk_size(b);
        if (size < PS_BLK_MIN || (size & 15) || off + size > a->end) {
            b->size = a->end - off;          /* truncate: free the tail */
            size = b->size;
        }
        b->prev = prev;
        ps_bit_set(s->starts, (off - a->start) / 16);
        prev = size;
        off += size;
    }
    return s;
}

int ps_arena_scan_mark(ps_arena_scan_t *s, apr_uint64_t off)
{
    apr_uint64_t blk, unit;

    if (off < s->a->start + PS_BLK_HDR || off >= s->a->end || (off & 15)) {
        return 0;
    }
    blk = off - PS_BLK_HDR;
    unit = (blk - s->a->start) / 16;
    if (!ps_bit_get(s->starts, unit) || !ps_blk_used(PS_BLK(s->base, blk))) {
        return 0;
    }
    if (ps_bit_get(s->marks, unit)) {
        return -1;
    }
    ps_bit_set(s->marks, unit);
    return 1;
}

int ps_arena_scan_marked(ps_arena_scan_t *s, apr_uint64_t off)
{
    if (off < s->a->start + PS_BLK_HDR || off >= s->a->end || (off & 15)) {
        return 0;
    }
    return ps_bit_get(s->marks, (off - PS_BLK_HDR - s->a->start) / 16);
}

/* Leak check: in-use blocks the walk did not reach (nothing is freed). */
apr_uint64_t ps_arena_scan_unmarked(ps_arena_scan_t *s)
{
    apr_uint64_t off, n = 0;

    for (off = s->a->start; off < s->a->end;) {
        ps_blk_t *b = PS_BLK(s->base, off);
        if (ps_blk_used(b) && !ps_bit_get(s->marks, (off - s->a->start) / 16)) {
            n++;
        }
        off += ps_blk_size(b);
    }
    return n;
}

apr_uint64_t ps_arena_scan_sweep(ps_arena_scan_t *s)
{
    ps_arena_t *a = s->a;
    char *base = s->base;
    apr_uint64_t off, freed = 0, run = 0, prev = 0;

    memset(a->bins, 0, sizeof(a->bins));
    a->free_bytes = 0;
    /* Rebuild the chain: every unmarked block is free; consecutive free
     * blocks merge into one (run = offset of the current free run). */
    for (off = a->start; off < a->end;) {
        ps_blk_t *b = PS_BLK(base, off);
        apr_uint64_t size = ps_blk_size(b);
        int keep = ps_bit_get(s->marks, (off - a->start) / 16);
        if (!keep && ps_blk_used(b)) {
            freed++;
        }
        if (keep) {
            if (run) {
                ps_bin_push(base, a, run);
                run = 0;
            }
            b->size = size | PS_BLK_USED;
            b->prev = prev;
            prev = size;
        }
        else if (run) {
            PS_BLK(base, run)->size += size;
            prev = ps_blk_size(PS_BLK(base, run));
        }
        else {
            run = off;
            b->size = size;
            b->prev = prev;
            prev = size;
        }
        off += size;
    }
    if (run) {
        ps_bin_push(base, a, run);
    }
    return freed;
}

int ps_arena_check(char *base, ps_arena_t *a, const char **why)
{
    apr_uint64_t off, prev = 0, free_bytes = 0, listed = 0;
    int bin, prev_free = 0;

    for (off = a->start; off < a->end;) {
        ps_blk_t *b = PS_BLK(base, off);
        apr_uint64_t size = ps_blk_size(b);
        if (size < PS_BLK_MIN || (size & 15) || off + size > a->end) {
            *why = "block size out of range";
            return 1;
        }
        if (b->prev != prev) {
            *why = "block prev size mismatch";
            return 1;
        }
        if (!ps_blk_used(b)) {
            if (prev_free) {
                *why = "two adjacent free blocks";
                return 1;
            }
            free_bytes += size;
        }
        prev_free = !ps_blk_used(b);
        prev = size;
        off += size;
    }
    for (bin = 0; bin < PS_ALLOC_BINS; bin++) {
        apr_uint64_t f, back = 0;
        for (f = a->bins[bin]; f; f = PS_BLK(base, f)->next_free) {
            ps_blk_t *b = PS_BLK(base, f);
            if (ps_blk_used(b) || ps_bin_of(ps_blk_size(b)) != bin
                || b->prev_free != back) {
                *why = "bad free list";
                return 1;
            }
            listed += ps_blk_size(b);
            back = f;
        }
    }
    if (listed != free_bytes || free_bytes != a->free_bytes) {
        *why = "free byte count mismatch";
        return 1;
    }
    return 0;
}
