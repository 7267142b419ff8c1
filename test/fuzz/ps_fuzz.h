/* ps_fuzz.h - shared helpers of the libFuzzer targets (test/fuzz/fuzz_*.c).
 *
 * Each target links the core files of mod_pushstream (no httpd) and APR.
 * APR is initialised once; every input gets its own pool, destroyed after
 * the run, so LeakSanitizer sees what the core code really leaks.
 *
 * Inputs are split into fields at the byte 0x1F (ASCII unit separator), so
 * seeds stay readable and hand-writable: printf 'tpl\x1ftext' > seed.
 */
#ifndef PS_FUZZ_H
#define PS_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <apr_general.h>
#include <apr_pools.h>

#define PS_FUZZ_SEP 0x1F

/* Invariant check that stays active at -O1 / without NDEBUG and names the
 * broken rule in the crash report. */
#define ps_fuzz_assert(cond)                                               \
    do {                                                                   \
        if (!(cond)) {                                                     \
            fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__,     \
                    __LINE__, #cond);                                      \
            abort();                                                       \
        }                                                                  \
    } while (0)

static apr_pool_t *ps_fuzz_root;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    if (apr_initialize() != APR_SUCCESS
        || apr_pool_create(&ps_fuzz_root, NULL) != APR_SUCCESS)
        abort();
    return 0;
}

static inline apr_pool_t *ps_fuzz_pool(void)
{
    apr_pool_t *p = NULL;

    if (apr_pool_create(&p, ps_fuzz_root) != APR_SUCCESS)
        abort();
    return p;
}

/* A cursor over the input, handing out fields and bytes. */
typedef struct ps_fuzz_in_t {
    const char *p;
    size_t n;
} ps_fuzz_in_t;

/* Next field (up to the next separator or the end); the separator is
 * consumed.  An exhausted input gives empty fields. */
static inline const char *ps_fuzz_field(ps_fuzz_in_t *in, size_t *len)
{
    const char *f = in->p;
    const char *sep = in->n ? memchr(in->p, PS_FUZZ_SEP, in->n) : NULL;

    *len = sep ? (size_t)(sep - in->p) : in->n;
    in->p += *len + (sep ? 1 : 0);
    in->n -= *len + (sep ? 1 : 0);
    return f;
}

/* An exact-size heap copy (not pool memory), so ASan sees every byte read
 * past its end.  Never NULL; a zero-length copy is a 1-byte block. */
static inline char *ps_fuzz_dup(const char *s, size_t n)
{
    char *c = malloc(n ? n : 1);

    if (!c)
        abort();
    if (n)
        memcpy(c, s, n);
    return c;
}

/* Same, NUL-terminated (the string stops at the first NUL of s). */
static inline char *ps_fuzz_str(const char *s, size_t n)
{
    char *c = malloc(n + 1);

    if (!c)
        abort();
    if (n)
        memcpy(c, s, n);
    c[n] = '\0';
    return c;
}

/* A small deterministic generator for data-driven choices (split points). */
static inline uint32_t ps_fuzz_rand(uint32_t *state)
{
    *state ^= *state << 13;
    *state ^= *state >> 17;
    *state ^= *state << 5;
    return *state;
}

#endif
