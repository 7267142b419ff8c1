/* ps_path.c - channel path parsing ("ch1/ch2.b5/ch3").  Core: no httpd types.
 *
 * push-stream splits the evaluated channels path with the regex
 * "((\.b([0-9]+))?(/|$))", applied repeatedly from the end of the previous
 * match.  The hand-written scanner below reproduces its leftmost-match
 * semantics without a regex engine: at every position it first tries
 * ".b<digits>" followed by '/' or the end, then a bare '/' or the end.
 */
#include <limits.h>
#include <string.h>

#include <apr_hash.h>
#include <apr_strings.h>

#include "ps_path.h"

static int ps_path_hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c |= 0x20;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

char *ps_path_unescape(apr_pool_t *p, const char *src, apr_size_t len,
                       apr_size_t *out_len)
{
    char *dst = apr_palloc(p, len + 1);
    apr_size_t i = 0, o = 0;

    while (i < len) {
        int hi, lo;

        if (src[i] == '%' && i + 2 < len
            && (hi = ps_path_hexval((unsigned char)src[i + 1])) >= 0
            && (lo = ps_path_hexval((unsigned char)src[i + 2])) >= 0) {
            dst[o++] = (char)((hi << 4) | lo);
            i += 3;
            continue;
        }
        /* Not an escape, or a malformed one ("%zz", a trailing "%4"):
         * copied byte by byte as the header promises. */
        dst[o++] = src[i++];
    }
    dst[o] = '\0';
    if (out_len)
        *out_len = o;
    return dst;
}

/* Length of a backtrack suffix ".b<digits>" at s[0..rem) that is followed
 * by '/' or the end of the string; 0 when there is none.  *digits and
 * *ndigits receive the digit run. */
static apr_size_t ps_path_suffix_at(const char *s, apr_size_t rem,
                                    const char **digits, apr_size_t *ndigits)
{
    apr_size_t k = 2;

    if (rem < 3 || s[0] != '.' || s[1] != 'b')
        return 0;
    while (k < rem && s[k] >= '0' && s[k] <= '9')
        k++;
    if (k == 2 || (k < rem && s[k] != '/'))
        return 0;
    *digits = s + 2;
    *ndigits = k - 2;
    return k;
}

/* Decimal digits to a backtrack count; values too large for an int clamp to
 * INT_MAX ("everything stored"), as nginx's overflowed atoi ended up as a
 * huge unsigned count too. */
static int ps_path_backtrack(const char *d, apr_size_t n)
{
    long long v = 0;
    apr_size_t i;

    for (i = 0; i < n; i++) {
        v = v * 10 + (d[i] - '0');
        if (v > INT_MAX)
            return INT_MAX;
    }
    return (int)v;
}

static void ps_path_push(apr_array_header_t *arr, apr_pool_t *p,
                         const char *id, apr_size_t len, int backtrack)
{
    ps_path_channel_t *ch = apr_array_push(arr);

    ch->id = apr_pstrmemdup(p, id, len);
    ch->len = len;
    ch->backtrack = backtrack;
}

apr_array_header_t *ps_path_parse(apr_pool_t *p, const char *path,
                                  apr_size_t len)
{
    apr_array_header_t *arr = apr_array_make(p, 4, sizeof(ps_path_channel_t));
    apr_size_t start = 0, i;

    if (!path)
        return arr;
    while (start < len) {
        /* Find the leftmost match beginning at or after start; one always
         * exists because the end of the string matches. */
        for (i = start; i <= len; i++) {
            const char *digits = NULL;
            apr_size_t nd = 0;
            apr_size_t sl = ps_path_suffix_at(path + i, len - i, &digits, &nd);

            if (sl) {
                ps_path_push(arr, p, path + start, i - start,
                             ps_path_backtrack(digits, nd));
                start = i + sl + (i + sl < len ? 1 : 0);
                break;
            }
            if (i == len || path[i] == '/') {
                ps_path_push(arr, p, path + start, i - start, 0);
                start = i + 1;
                break;
            }
        }
    }
    return arr;
}

int ps_path_is_restricted(const char *id, apr_size_t len)
{
    if (!id)
        return 0;
    if (len == 3 && memcmp(id, "ALL", 3) == 0)
        return 1;
    return memchr(id, '*', len) != NULL;
}

ps_stats_sel_e ps_path_stats_select(const apr_array_header_t *chans,
                                    apr_int64_t max_len, const char **prefix,
                                    apr_size_t *prefix_len)
{
    int i;

    *prefix = NULL;
    *prefix_len = 0;
    if (!chans || !chans->nelts)
        return PS_STATS_SUMMARY;
    for (i = 0; i < chans->nelts; i++) {
        const ps_path_channel_t *pc = &APR_ARRAY_IDX(chans, i,
                                                     ps_path_channel_t);
        const char *star;

        if (ps_path_is_restricted(pc->id, pc->len)) {
            /* memchr, not strchr: an id may hold a NUL byte ("a%00*"),
             * which must not turn the prefix into "everything". */
            star = memchr(pc->id, '*', pc->len);
            if (star) {
                *prefix = pc->id;
                *prefix_len = (apr_size_t)(star - pc->id);
            }
            return PS_STATS_ALL;
        }
        if (max_len > 0 && (apr_int64_t)pc->len > max_len)
            return PS_STATS_TOO_LONG;
    }
    return PS_STATS_LIST;
}

int ps_path_has_prefix(const char *id, apr_size_t len, const char *prefix,
                       apr_size_t plen)
{
    if (!prefix)
        return 1;
    return len >= plen && (plen == 0 || memcmp(id, prefix, plen) == 0);
}

const char *ps_path_query_arg(apr_pool_t *p, const char *args,
                              const char *name)
{
    apr_size_t nlen = strlen(name);
    const char *a;

    for (a = args; a && *a; a = strchr(a, '&'), a = a ? a + 1 : NULL) {
        const char *end = strchr(a, '&');
        apr_size_t len = end ? (apr_size_t)(end - a) : strlen(a);
        apr_size_t vlen, rawlen;
        const char *v, *dec;

        if (len < nlen || strncmp(a, name, nlen) != 0
            || (len != nlen && a[nlen] != '='))
            continue;
        v = a + nlen + (len > nlen);
        rawlen = len - nlen - (len > nlen);
        dec = ps_path_unescape(p, v, rawlen, &vlen);
        return strlen(dec) == vlen ? dec : apr_pstrmemdup(p, v, rawlen);
    }
    return "";
}

apr_array_header_t *ps_path_dedupe(apr_pool_t *p, apr_array_header_t *chans)
{
    apr_hash_t *seen;
    apr_array_header_t *out;
    int i;

    if (!chans || chans->nelts < 2)
        return chans;
    seen = apr_hash_make(p);
    out = apr_array_make(p, chans->nelts, sizeof(ps_path_channel_t));
    for (i = 0; i < chans->nelts; i++) {
        const ps_path_channel_t *pc = &APR_ARRAY_IDX(chans, i,
                                                     ps_path_channel_t);
        /* the key is the id's bytes (apr_hash keys may hold NULs); the
         * value the 1-based index of its first occurrence in out */
        apr_uintptr_t at = (apr_uintptr_t)apr_hash_get(seen, pc->id,
                                                       (apr_ssize_t)pc->len);
        ps_path_channel_t *first;

        if (at) {
            first = &APR_ARRAY_IDX(out, (int)at - 1, ps_path_channel_t);
            if (pc->backtrack > first->backtrack)
                first->backtrack = pc->backtrack;
            continue;
        }
        first = apr_array_push(out);
        *first = *pc;
        apr_hash_set(seen, first->id, (apr_ssize_t)first->len,
                     (void *)(apr_uintptr_t)out->nelts);
    }
    if (out->nelts == chans->nelts)
        return chans;
    return out;
}
