/* fuzz_path.c - channel path unescaping and parsing (ps_path.c).
 *
 * Input: byte 0 picks the channel id length limit, the rest is a raw
 * (still escaped) channels path as a request would give it.  Invariants:
 *   - unescaping never grows the text, NUL-terminates it, and undoes a
 *     full percent-encoding of any bytes;
 *   - every parsed id is a NUL-terminated copy without '/', the ids fit in
 *     the path, backtracks are >= 0;
 *   - serializing the channels back ("id.bN/...") parses to the same list;
 *   - a prefix of the path is parsed without reading past its end;
 *   - restricted ids and the id length limit match naive definitions.
 */
#include <limits.h>
#include <regex.h>

#include "ps_fuzz.h"
#include "ps_path.h"

static const apr_int64_t ps_fz_limits[8] = { 0, 1, 3, 8, 64, 400, 1024, -1 };

/* The id length limit the input asks for. */
static apr_int64_t ps_fz_limit(unsigned char b)
{
    return b < 8 ? ps_fz_limits[b] : (apr_int64_t)(b >> 3);
}

static void ps_fz_unescape(apr_pool_t *p, const char *raw, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    char *enc = malloc(3 * n + 1);
    apr_size_t dlen = 0, i;
    char *dec;

    ps_fuzz_assert(enc != NULL);
    dec = ps_path_unescape(p, raw, n, &dlen);
    ps_fuzz_assert(dlen <= n && dec[dlen] == '\0');
    if (!memchr(raw, '%', n))
        ps_fuzz_assert(dlen == n && memcmp(dec, raw, n) == 0);
    /* %XX-encode every byte (alternating case): decodes to raw again */
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)raw[i];
        enc[3 * i] = '%';
        enc[3 * i + 1] = hex[c >> 4];
        enc[3 * i + 2] = (char)(i & 1 ? hex[c & 15] | 0x20 : hex[c & 15]);
    }
    dec = ps_path_unescape(p, enc, 3 * n, &dlen);
    ps_fuzz_assert(dlen == n && memcmp(dec, raw, n) == 0);
    free(enc);
}

/* Channel list invariants; returns the serialized form "id.bN/...". */
static char *ps_fz_check_list(const apr_array_header_t *a, size_t n,
                              size_t *slen)
{
    size_t total = 0, cap = 1, o = 0;
    char *out;
    int i;

    ps_fuzz_assert(a != NULL && (size_t)a->nelts <= n + 1);
    for (i = 0; i < a->nelts; i++)
        cap += APR_ARRAY_IDX(a, i, ps_path_channel_t).len + 16;
    out = malloc(cap);
    ps_fuzz_assert(out != NULL);
    for (i = 0; i < a->nelts; i++) {
        const ps_path_channel_t *ch = &APR_ARRAY_IDX(a, i, ps_path_channel_t);

        ps_fuzz_assert(ch->id != NULL && ch->id[ch->len] == '\0');
        ps_fuzz_assert(!memchr(ch->id, '/', ch->len));
        ps_fuzz_assert(ch->backtrack >= 0);
        total += ch->len;
        if (i)
            out[o++] = '/';
        memcpy(out + o, ch->id, ch->len);
        o += ch->len;
        /* always a suffix: ".b0" keeps an id ending in ".b<digits>"
         * (possible when it was followed by a suffix) from being split */
        o += (size_t)snprintf(out + o, cap - o, ".b%d", ch->backtrack);
    }
    ps_fuzz_assert(total <= n);
    *slen = o;
    return out;
}

static void ps_fz_same_lists(const apr_array_header_t *a,
                             const apr_array_header_t *b)
{
    int i;

    ps_fuzz_assert(a->nelts == b->nelts);
    for (i = 0; i < a->nelts; i++) {
        const ps_path_channel_t *x = &APR_ARRAY_IDX(a, i, ps_path_channel_t);
        const ps_path_channel_t *y = &APR_ARRAY_IDX(b, i, ps_path_channel_t);

        ps_fuzz_assert(x->len == y->len && x->backtrack == y->backtrack);
        ps_fuzz_assert(memcmp(x->id, y->id, x->len) == 0);
    }
}

/* Restricted ids and the stats choice against naive definitions. */
static void ps_fz_limits_check(const apr_array_header_t *a, apr_int64_t max)
{
    const char *prefix;
    apr_size_t plen;
    ps_stats_sel_e sel = ps_path_stats_select(a, max, &prefix, &plen);
    ps_stats_sel_e want = a->nelts ? PS_STATS_LIST : PS_STATS_SUMMARY;
    int i;

    for (i = 0; i < a->nelts && want == PS_STATS_LIST; i++) {
        const ps_path_channel_t *ch = &APR_ARRAY_IDX(a, i, ps_path_channel_t);
        int restricted = (ch->len == 3 && memcmp(ch->id, "ALL", 3) == 0)
                         || memchr(ch->id, '*', ch->len) != NULL;

        ps_fuzz_assert(ps_path_is_restricted(ch->id, ch->len) == restricted);
        if (restricted)
            want = PS_STATS_ALL;
        else if (max > 0 && (apr_int64_t)ch->len > max)
            want = PS_STATS_TOO_LONG;
    }
    ps_fuzz_assert(sel == want);
    ps_fuzz_assert(sel == PS_STATS_ALL || (prefix == NULL && plen == 0));
}

/* push-stream's own definition: the regex "((\.b([0-9]+))?(/|$))" applied
 * repeatedly from the end of the previous match (POSIX leftmost-longest
 * picks the same match as PCRE here: the optional suffix is greedy).
 * Only for paths without NUL bytes (regexec takes C strings). */
static void ps_fz_regex_ref(const char *path, size_t n,
                            const apr_array_header_t *a)
{
    static regex_t re;
    static int ready;
    regmatch_t mt[5];
    size_t start = 0;
    int i = 0;

    if (memchr(path, '\0', n))
        return;
    if (!ready) {
        ps_fuzz_assert(regcomp(&re, "((\\.b([0-9]+))?(/|$))", REG_EXTENDED) == 0);
        ready = 1;
    }
    while (start < n) {
        const ps_path_channel_t *ch;
        long long bt = 0;
        regoff_t k;

        ps_fuzz_assert(regexec(&re, path + start, 5, mt, start ? REG_NOTBOL : 0) == 0);
        ps_fuzz_assert(i < a->nelts);
        ch = &APR_ARRAY_IDX(a, i, ps_path_channel_t);
        ps_fuzz_assert(ch->len == (size_t)mt[0].rm_so);
        ps_fuzz_assert(memcmp(ch->id, path + start, ch->len) == 0);
        for (k = mt[3].rm_so; k >= 0 && k < mt[3].rm_eo; k++)
            if ((bt = bt * 10 + (path[start + k] - '0')) > INT_MAX)
                bt = INT_MAX + 1LL;
        ps_fuzz_assert(ch->backtrack == (bt > INT_MAX ? INT_MAX : (int)bt));
        start += (size_t)mt[0].rm_eo;
        i++;
    }
    ps_fuzz_assert(i == a->nelts);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    apr_pool_t *p;
    const char *raw = (const char *)data + 1;
    size_t n = size - 1, slen, cut;
    apr_array_header_t *a, *b;
    apr_size_t dlen;
    char *dec, *exact, *ser;

    if (size < 1)
        return 0;
    p = ps_fuzz_pool();
    ps_fz_unescape(p, raw, n);
    dec = ps_path_unescape(p, raw, n, &dlen);
    /* parse from an exact-size heap copy: no NUL after it to lean on */
    exact = ps_fuzz_dup(dec, dlen);
    a = ps_path_parse(p, exact, dlen);
    ps_fz_regex_ref(dec, dlen, a);
    ser = ps_fz_check_list(a, dlen, &slen);
    b = ps_path_parse(p, ser, slen);
    ps_fz_same_lists(a, b);
    free(ser);
    ps_fz_limits_check(a, ps_fz_limit(data[0]));

    /* a prefix of the path, cut at a data-driven point */
    cut = dlen ? data[0] % (dlen + 1) : 0;
    free(exact);
    exact = ps_fuzz_dup(dec, cut);
    b = ps_path_parse(p, exact, cut);
    free(ps_fz_check_list(b, cut, &slen));
    free(exact);
    ps_fuzz_assert(ps_path_parse(p, NULL, 5)->nelts == 0);
    apr_pool_destroy(p);
    return 0;
}
