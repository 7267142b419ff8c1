/* fuzz_headers.c - request value parsing (ps_util.c, ps_info.c, ps_path.c):
 * If-Modified-Since / `time` (HTTP dates), If-None-Match / `tag`, the
 * query arguments they come from (%{arg:NAME}), Accept, nginx time / size
 * / integer config values, and the padding added for old user agents.
 *
 * Input: lines ('\n'); every parser gets every line.  Invariants:
 *   - integers print back to their (canonical) text; sizes and bare
 *     numbers agree with the integer parser;
 *   - a parsed HTTP date formats to 29 chars and parses back to itself;
 *   - Accept always yields a known format whose subtype occurs after a '/';
 *   - a query argument is never longer than the query; the values found
 *     there parse like the headers they stand for;
 *   - padding stays within its maximum and has the documented shape; the
 *     padding rules split at their last two commas.
 */
#include <inttypes.h>

#include "ps_fuzz.h"
#include "ps_info.h"
#include "ps_path.h"
#include "ps_util.h"

static const char *const ps_fz_subtypes[] = {
    "/json", "/plain", "/yaml", "/xml", "/x-json", "/x-yaml"
};

static void ps_fz_numbers(const char *s, size_t n)
{
    apr_uint64_t u;
    apr_off_t sz;
    apr_interval_time_t t;
    apr_int64_t tag = ps_parse_tag(s);
    char buf[32];

    if (ps_parse_uint(s, &u) == APR_SUCCESS) {
        snprintf(buf, sizeof(buf), "%" PRIu64, (uint64_t)u);
        ps_fuzz_assert(n > 0 && strspn(s, "0123456789") == n);
        /* canonical text (no leading zero) prints back the same */
        if (s[0] != '0' || n == 1)
            ps_fuzz_assert(strcmp(buf, s) == 0);
        if (u <= (apr_uint64_t)APR_INT64_MAX) {
            ps_fuzz_assert(psc_parse_size(s, &sz) == APR_SUCCESS
                           && (apr_uint64_t)sz == u);
            ps_fuzz_assert(tag == (apr_int64_t)u);
        }
        if (u <= (apr_uint64_t)(APR_INT64_MAX / 1000000))
            ps_fuzz_assert(psc_parse_time(s, &t) == APR_SUCCESS
                           && t == (apr_int64_t)u * 1000000);
    }
    if (psc_parse_size(s, &sz) == APR_SUCCESS)
        ps_fuzz_assert(sz >= 0 && n > 0);
    if (psc_parse_time(s, &t) == APR_SUCCESS)
        ps_fuzz_assert(t >= 0 && n > 0);
    ps_fuzz_assert(tag >= -1);
    if (tag >= 0)
        ps_fuzz_assert(n > 0 && strpbrk(s, "0123456789") != NULL);
}

static void ps_fz_dates(const char *s, apr_int64_t raw)
{
    apr_int64_t t = ps_parse_http_time(s);
    char buf[PS_HTTP_TIME_LEN + 1], iso[PS_ISO_TIME_LEN + 1];

    ps_fuzz_assert(t >= -1);
    if (t >= 0 && t <= APR_INT64_C(253402300799)) {
        ps_format_http_time(buf, t);
        ps_fuzz_assert(strlen(buf) == PS_HTTP_TIME_LEN);
        ps_fuzz_assert(ps_parse_http_time(buf) == t);
    }
    /* any second count formats to the fixed widths (clamped) */
    ps_format_http_time(buf, raw);
    ps_fuzz_assert(strlen(buf) == PS_HTTP_TIME_LEN);
    ps_format_iso_time(iso, raw);
    ps_fuzz_assert(strlen(iso) == PS_ISO_TIME_LEN);
}

static void ps_fz_accept(const char *s)
{
    const char *ctype = NULL;
    ps_fmt_e fmt = ps_info_format_from_accept(s, &ctype);

    ps_fuzz_assert(ctype != NULL && *ctype);
    ps_fuzz_assert((int)fmt >= PS_FMT_JSON && fmt <= PS_FMT_XYAML);
    if (fmt != PS_FMT_JSON)
        ps_fuzz_assert(strstr(s, ps_fz_subtypes[fmt]) != NULL);
    ps_fuzz_assert(ps_info_format_from_accept(NULL, NULL) == PS_FMT_JSON);
}

static void ps_fz_query(apr_pool_t *p, const char *s, size_t n)
{
    static const char *const names[] = { "time", "tag", "last_event_id",
                                         "id", "" };
    size_t i;

    for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        const char *v = ps_path_query_arg(p, s, names[i]);

        ps_fuzz_assert(v != NULL && strlen(v) <= n);
        if (i == 0)
            ps_fz_dates(v, 0);
        else if (i == 1)
            ps_fz_numbers(v, strlen(v));
    }
}

/* 16-bit value from u[i..i+2), shifted up to the top of the range when
 * big (config values are clamped, but the function takes any size_t). */
static apr_size_t ps_fz_pad_num(const unsigned char *u, size_t n, size_t i,
                                int big)
{
    apr_size_t v = (i < n ? u[i] : 0) << 8 | (i + 1 < n ? u[i + 1] : 0);

    return big ? ~(apr_size_t)0 - v : v;
}

/* Padding rule numbers from the first bytes of the line. */
static void ps_fz_padding(const unsigned char *u, size_t n)
{
    int flags = n > 6 ? u[6] : 0, es = flags & 1;
    apr_size_t len = ps_fz_pad_num(u, n, 0, flags & 2);
    apr_size_t min = ps_fz_pad_num(u, n, 2, flags & 4);
    apr_size_t max = ps_fz_pad_num(u, n, 4, flags & 8);
    apr_size_t pad = ps_padding_len(len, min, max), i;
    char *buf;

    ps_fuzz_assert(pad <= max);
    if (!min || len >= min || !max)
        ps_fuzz_assert(pad == 0);
    else   /* the next multiple of 100 above min - len, capped at max */
        ps_fuzz_assert(pad == max || (pad > min - len && pad % 100 == 0
                                      && pad - (min - len) <= 100));
    if (pad > 4096)          /* the shape is the same for any length */
        return;
    buf = malloc(pad ? pad : 1);
    ps_fuzz_assert(buf != NULL);
    ps_padding_fill(buf, pad, es);
    for (i = 0; i < pad; i++) {
        if (es)
            ps_fuzz_assert(buf[i] == (i + 1 == pad ? '\n' : ':'));
        else
            ps_fuzz_assert(buf[i] == ((pad - i) % 2 ? '\n' : '\r'));
    }
    free(buf);
}

/* PushStreamPaddingByUserAgent rules, split at ':' as the directive does:
 * the commas found are the last two, the numbers are digits, the rule is
 * left alone. */
static void ps_fz_padding_rules(const char *s)
{
    char *all = ps_fuzz_str(s, strlen(s)), *rule, *last = NULL;

    for (rule = strtok_r(all, ":", &last); rule;
         rule = strtok_r(NULL, ":", &last)) {
        size_t n = strlen(rule);
        char *keep = ps_fuzz_str(rule, n), *c1 = NULL, *c2 = NULL;
        int ok = ps_padding_rule_split(rule, &c1, &c2);
        char *last2 = strrchr(rule, ',');
        char *prev = NULL, *q;

        ps_fuzz_assert(memcmp(keep, rule, n + 1) == 0);
        for (q = rule; last2 && q < last2; q++)
            if (*q == ',')
                prev = q;
        ps_fuzz_assert(ok == (prev != NULL && prev > rule && prev + 1 < last2
                              && last2[1] != '\0'
                              && strspn(prev + 1, "0123456789")
                                 == (size_t)(last2 - prev - 1)
                              && strspn(last2 + 1, "0123456789")
                                 == strlen(last2 + 1)));
        if (ok)
            ps_fuzz_assert(c1 == prev && c2 == last2);
        free(keep);
    }
    free(all);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *cur = (const char *)data, *end = cur + size;
    apr_pool_t *p = ps_fuzz_pool();
    apr_int64_t raw = 0;
    size_t i;

    for (i = 0; i < 8 && i < size; i++)
        raw = (apr_int64_t)(((apr_uint64_t)raw << 8) | data[i]);
    while (cur < end || cur == (const char *)data) {
        const char *nl = memchr(cur, '\n', (size_t)(end - cur));
        size_t n = nl ? (size_t)(nl - cur) : (size_t)(end - cur);
        char *s = ps_fuzz_str(cur, n);   /* parsers take C strings */
        size_t sl = strlen(s);

        ps_fz_numbers(s, sl);
        ps_fz_dates(s, raw);
        ps_fz_accept(s);
        ps_fz_query(p, s, sl);
        ps_fz_padding((const unsigned char *)cur, n);   /* raw bytes */
        ps_fz_padding_rules(s);
        free(s);
        cur += n + 1;
        if (!nl)
            break;
    }
    apr_pool_destroy(p);
    return 0;
}
