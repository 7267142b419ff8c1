/* ps_util.c - parsing of config values and request headers.  Core: no httpd
 * types.  Everything here is locale independent (hand-rolled digit loops,
 * APR's GMT date routines). */
#include <string.h>

#include <apr_date.h>
#include <apr_lib.h>

#include "ps_util.h"

#define PS_UINT64_MAX APR_UINT64_C(0xffffffffffffffff)

/* Latest second whose year still has 4 digits: 9999-12-31T23:59:59Z. */
#define PS_MAX_FORMAT_SEC APR_INT64_C(253402300799)

/* ---- integers ---------------------------------------------------------- */

apr_status_t ps_parse_uint(const char *s, apr_uint64_t *out)
{
    apr_uint64_t v = 0;
    apr_size_t i;

    if (!s || !*s)
        return APR_EINVAL;
    for (i = 0; s[i]; i++) {
        unsigned d;

        if (!apr_isdigit(s[i]))
            return APR_EINVAL;
        d = (unsigned)(s[i] - '0');
        if (v > (PS_UINT64_MAX - d) / 10)
            return APR_EINVAL;
        v = v * 10 + d;
    }
    *out = v;
    return APR_SUCCESS;
}

/* ---- request values ---------------------------------------------------- */

apr_int64_t ps_parse_tag(const char *s)
{
    apr_size_t i = 0;
    apr_int64_t v;

    if (!s || !*s)
        return -1;
    if (strlen(s) > 2 && s[0] == 'W' && s[1] == '/')
        i = 2;
    /* nginx's ngx_atoi() takes no sign; the header asks for one and the
     * absolute value, which is what nginx's (dead) ngx_abs() intended. */
    if (s[i] == '-' || s[i] == '+')
        i++;
    if (psc_parse_digits(s, &i, &v) != APR_SUCCESS || s[i] != '\0')
        return -1;
    return v;
}

/* apr_date_parse_*() return APR_DATE_BAD (0) on failure, which is also the
 * epoch itself.  Tell the two apart by recognising the epoch spelled in the
 * three HTTP formats. */
static int ps_util_is_epoch(const char *s)
{
    static const char *const ps_forms[] = {
        "Thu, 01 Jan 1970 00:00:00 GMT",      /* RFC 1123 */
        "Thursday, 01-Jan-70 00:00:00 GMT",   /* RFC 850 */
        "Thu Jan  1 00:00:00 1970",           /* asctime */
    };
    apr_size_t i;

    while (*s == ' ' || *s == '\t')
        s++;
    for (i = 0; i < sizeof(ps_forms) / sizeof(ps_forms[0]); i++)
        if (strncmp(s, ps_forms[i], strlen(ps_forms[i])) == 0)
            return 1;
    return 0;
}

apr_int64_t ps_parse_http_time(const char *s)
{
    apr_time_t t;

    if (!s || !*s)
        return -1;
    t = apr_date_parse_http(s);
    if (t == APR_DATE_BAD)
        t = apr_date_parse_rfc(s);
    if (t == APR_DATE_BAD)
        return ps_util_is_epoch(s) ? 0 : -1;
    if (t < 0)
        return -1;
    return (apr_int64_t)apr_time_sec(t);
}

/* ---- formatting -------------------------------------------------------- */

static apr_time_t ps_util_clamp(apr_int64_t sec)
{
    if (sec < 0)
        sec = 0;
    if (sec > PS_MAX_FORMAT_SEC)
        sec = PS_MAX_FORMAT_SEC;
    return apr_time_from_sec(sec);
}

void ps_format_http_time(char buf[PS_HTTP_TIME_LEN + 1], apr_int64_t sec)
{
    /* APR_RFC822_DATE_LEN (30) == PS_HTTP_TIME_LEN + 1; apr_rfc822_date()
     * uses fixed English names and GMT, never the locale. */
    apr_rfc822_date(buf, ps_util_clamp(sec));
}

/* Write v (0 <= v < 10^width) as exactly width decimal digits. */
static char *ps_util_put_digits(char *out, int v, int width)
{
    int i;

    for (i = width - 1; i >= 0; i--) {
        out[i] = (char)('0' + v % 10);
        v /= 10;
    }
    return out + width;
}

/* Hand-formatted rather than snprintf(): the field widths are fixed by the
 * clamp above, and the compiler cannot prove that for "%02d". */
void ps_format_iso_time(char buf[PS_ISO_TIME_LEN + 1], apr_int64_t sec)
{
    apr_time_exp_t tm;
    char *o = buf;

    apr_time_exp_gmt(&tm, ps_util_clamp(sec));
    o = ps_util_put_digits(o, tm.tm_year + 1900, 4);
    *o++ = '-';
    o = ps_util_put_digits(o, tm.tm_mon + 1, 2);
    *o++ = '-';
    o = ps_util_put_digits(o, tm.tm_mday, 2);
    *o++ = 'T';
    o = ps_util_put_digits(o, tm.tm_hour, 2);
    *o++ = ':';
    o = ps_util_put_digits(o, tm.tm_min, 2);
    *o++ = ':';
    o = ps_util_put_digits(o, tm.tm_sec, 2);
    *o = '\0';
}

apr_size_t ps_padding_len(apr_size_t len, apr_size_t min, apr_size_t max)
{
    apr_size_t n;

    if (!min || len >= min) {
        return 0;
    }
    /* A rounded-up gap past max would wrap around for huge min (found by
     * fuzz_headers): max is the answer then anyway. */
    if ((min - len) / 100 >= max / 100) {
        return max;
    }
    n = ((min - len) / 100 + 1) * 100;
    return n < max ? n : max;
}

int ps_padding_rule_split(char *rule, char **c1, char **c2)
{
    char *p;

    *c2 = strrchr(rule, ',');
    if (!*c2 || *c2 == rule) {
        return 0;
    }
    /* the comma before it, not at rule[0]: the regex must not be empty */
    for (p = *c2 - 1; p > rule && *p != ','; p--) {
    }
    if (p == rule) {
        return 0;
    }
    *c1 = p;
    if (*c1 + 1 == *c2 || !(*c2)[1]) {
        return 0;
    }
    return strspn(*c1 + 1, "0123456789") == (apr_size_t)(*c2 - *c1 - 1)
           && strspn(*c2 + 1, "0123456789") == strlen(*c2 + 1);
}

void ps_padding_fill(char *buf, apr_size_t n, int eventsource)
{
    apr_size_t i = 0;

    if (!n) {
        return;
    }
    if (eventsource) {
        memset(buf, ':', n - 1);
        buf[n - 1] = '\n';
        return;
    }
    if (n & 1) {
        buf[i++] = '\n';
    }
    for (; i < n; i += 2) {
        buf[i] = '\r';
        buf[i + 1] = '\n';
    }
}
