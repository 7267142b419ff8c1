/* fuzz_http1.c - request heads of the publisher port (ps_http1.c).
 *
 * Input: byte 0 picks the head limit, the rest is what a client sent.
 * Invariants:
 *   - the result is 0, a head length within the input and the limit, or
 *     one of -400, -431, -505; nothing is read past the input (ASan);
 *   - a complete head ends with its empty line ("\n\n" or "\n\r\n");
 *   - every strictly shorter prefix of a complete head gives 0 (needs
 *     more), so a head split over reads parses as one; a prefix of an
 *     erroneous input gives 0 or the same error;
 *   - the resumable search for the end of the head, fed in two parts,
 *     finds the same end as the parser;
 *   - bytes after the head (a body, the next pipelined request) do not
 *     change the answer; a parsed request has a method, a path starting
 *     with '/', HTTP/1.0 or 1.1, and a Content-Length of -1 or more.
 */
#include "ps_fuzz.h"
#include "ps_http1.h"

static const apr_size_t ps_fz_max[4] = { 16384, 64, 16, 1 };

static long ps_fz_parse(apr_pool_t *p, const char *in, size_t n,
                        apr_size_t max, ps_h1_req_t *req)
{
    char *copy = ps_fuzz_dup(in, n);
    long rc = ps_h1_parse(p, copy, n, max, req);

    free(copy);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    apr_pool_t *p;
    apr_size_t max;
    const char *in;
    ps_h1_req_t req, again;
    long rc;
    size_t n, k;

    if (!size) {
        return 0;
    }
    max = ps_fz_max[data[0] & 3];
    in = (const char *)data + 1;
    n = size - 1;
    p = ps_fuzz_pool();
    rc = ps_fz_parse(p, in, n, max, &req);
    ps_fuzz_assert(rc == 0 || rc == -400 || rc == -431 || rc == -505
                   || (rc > 0 && (size_t)rc <= n && (apr_size_t)rc <= max));
    if (rc == 0) {
        ps_fuzz_assert(n < max);
    }
    if (rc > 0) {
        ps_fuzz_assert(in[rc - 1] == '\n');
        ps_fuzz_assert(rc >= 2 && (in[rc - 2] == '\n'
                                   || (rc >= 3 && in[rc - 2] == '\r'
                                       && in[rc - 3] == '\n')));
        ps_fuzz_assert(req.method && req.path && req.path[0] == '/');
        ps_fuzz_assert(req.minor == 0 || req.minor == 1);
        ps_fuzz_assert(req.content_length >= -1);
    }
    if (rc != 0) {
        /* prefixes: nothing before the end of the head decides */
        size_t end = rc > 0 ? (size_t)rc : n;
        for (k = end > 64 ? end - 64 : 0; k < end; k++) {
            long r2 = ps_fz_parse(p, in, k, max, &again);
            /* an error is found once its head is complete: a prefix
             * holding that head already gives the same error */
            ps_fuzz_assert(r2 == 0 || (rc < 0 && r2 == rc)
                           || (r2 == -431 && k >= max));
        }
    }
    if (rc > 0) {
        /* the search for its end, resumed after a cut anywhere */
        ps_h1_scan_t sc = { 0, 0 };
        size_t cut = (size_t)rc / 2;
        ps_fuzz_assert(ps_h1_head_end(&sc, in, cut) == 0);
        ps_fuzz_assert(ps_h1_head_end(&sc, in, (size_t)rc) == (size_t)rc);
    }
    if (rc > 0) {
        /* the same head followed by other bytes */
        char *more = malloc((size_t)rc + 8);
        ps_fuzz_assert(more != NULL);
        memcpy(more, in, (size_t)rc);
        memcpy(more + rc, "GARBAGE\n", 8);
        ps_fuzz_assert(ps_h1_parse(p, more, (size_t)rc + 8, max, &again) == rc);
        free(more);
    }
    apr_pool_destroy(p);
    return 0;
}
