/* psc_units.c - numbers, sizes and times (see psc_units.h).  Locale
 * independent: hand-rolled digit loops. */
#include <string.h>
#include <strings.h>

#include <apr_lib.h>

#include "psc_units.h"

#define PSC_INT64_MAX  APR_INT64_C(0x7fffffffffffffff)

/* ---- integers ---------------------------------------------------------- */

apr_status_t psc_parse_digits(const char *s, apr_size_t *pos,
                              apr_int64_t *out)
{
    apr_size_t i = *pos;
    apr_int64_t v = 0;

    if (!apr_isdigit(s[i]))
        return APR_EINVAL;
    for (; apr_isdigit(s[i]); i++) {
        int d = s[i] - '0';

        if (v > (PSC_INT64_MAX - d) / 10)
            return APR_EINVAL;
        v = v * 10 + d;
    }
    *pos = i;
    *out = v;
    return APR_SUCCESS;
}

/* ---- nginx time strings ------------------------------------------------ */

typedef struct psc_unit_t {
    const char *name;        /* "ms" before "m" so the longer one wins */
    apr_size_t len;
    int rank;                /* units must appear in strictly falling rank */
    apr_int64_t usec;
} psc_unit_t;

#define PSC_USEC_S  APR_INT64_C(1000000)

static const psc_unit_t psc_units[] = {
    { "y",  1, 8, PSC_USEC_S * 60 * 60 * 24 * 365 },
    { "M",  1, 7, PSC_USEC_S * 60 * 60 * 24 * 30 },
    { "w",  1, 6, PSC_USEC_S * 60 * 60 * 24 * 7 },
    { "d",  1, 5, PSC_USEC_S * 60 * 60 * 24 },
    { "h",  1, 4, PSC_USEC_S * 60 * 60 },
    { "ms", 2, 1, 1000 },
    { "m",  1, 3, PSC_USEC_S * 60 },
    { "s",  1, 2, PSC_USEC_S },
};

static const psc_unit_t *psc_unit_at(const char *s)
{
    apr_size_t i;

    for (i = 0; i < sizeof(psc_units) / sizeof(psc_units[0]); i++)
        if (strncmp(s, psc_units[i].name, psc_units[i].len) == 0)
            return &psc_units[i];
    return NULL;
}

static apr_status_t psc_add(apr_int64_t *total, apr_int64_t v,
                                apr_int64_t scale)
{
    if (v > PSC_INT64_MAX / scale)
        return APR_EINVAL;
    v *= scale;
    if (*total > PSC_INT64_MAX - v)
        return APR_EINVAL;
    *total += v;
    return APR_SUCCESS;
}

/* Like nginx's ngx_parse_time(): units largest first, each at most once,
 * spaces allowed between components; a trailing bare number counts as
 * seconds ("1m 30" = 90 s).  Unlike nginx, "ms" is accepted at every level
 * (the caller rounds to its own resolution). */
apr_status_t psc_parse_time(const char *s, apr_interval_time_t *out)
{
    apr_int64_t total = 0, v;
    apr_size_t i = 0;
    int last_rank = 99, seen = 0;

    if (!s)
        return APR_EINVAL;
    for (;;) {
        const psc_unit_t *u;

        while (s[i] == ' ')
            i++;
        if (!s[i])
            break;
        if (psc_parse_digits(s, &i, &v) != APR_SUCCESS)
            return APR_EINVAL;
        seen = 1;
        if (s[i] == '\0' || s[i] == ' ') {
            /* bare number: seconds, and nothing may follow but spaces */
            while (s[i] == ' ')
                i++;
            if (s[i] || psc_add(&total, v, PSC_USEC_S) != APR_SUCCESS)
                return APR_EINVAL;
            break;
        }
        u = psc_unit_at(s + i);
        if (!u || u->rank >= last_rank
            || psc_add(&total, v, u->usec) != APR_SUCCESS)
            return APR_EINVAL;
        last_rank = u->rank;
        i += u->len;
    }
    if (!seen)
        return APR_EINVAL;
    *out = total;
    return APR_SUCCESS;
}

/* ---- nginx sizes ------------------------------------------------------- */

apr_status_t psc_parse_size(const char *s, apr_off_t *out)
{
    apr_size_t len, i = 0;
    apr_int64_t scale = 1, v;

    if (!s || !(len = strlen(s)))
        return APR_EINVAL;
    switch (s[len - 1]) {
    case 'k': case 'K': scale = APR_INT64_C(1) << 10; len--; break;
    case 'm': case 'M': scale = APR_INT64_C(1) << 20; len--; break;
    case 'g': case 'G': scale = APR_INT64_C(1) << 30; len--; break;
    default: break;
    }
    if (len == 0 || psc_parse_digits(s, &i, &v) != APR_SUCCESS || i != len
        || v > PSC_INT64_MAX / scale)
        return APR_EINVAL;
    *out = (apr_off_t)(v * scale);
    return APR_SUCCESS;
}

/* ---- httpd time strings ----------------------------------------------- */

apr_status_t psc_parse_timeout(const char *s, apr_interval_time_t *out)
{
    static const struct { const char *name; apr_int64_t usec; } units[] = {
        { "", PSC_USEC_S }, { "s", PSC_USEC_S }, { "ms", 1000 },
        { "mi", PSC_USEC_S * 60 }, { "m", PSC_USEC_S * 60 },
        { "h", PSC_USEC_S * 60 * 60 },
    };
    apr_int64_t v, total = 0;
    apr_size_t i = 0, k;

    if (!s || psc_parse_digits(s, &i, &v) != APR_SUCCESS) {
        return APR_EINVAL;
    }
    for (k = 0; k < sizeof(units) / sizeof(units[0]); k++) {
        if (!strcasecmp(s + i, units[k].name)) {
            if (psc_add(&total, v, units[k].usec) != APR_SUCCESS) {
                return APR_EINVAL;
            }
            *out = total;
            return APR_SUCCESS;
        }
    }
    return APR_EINVAL;
}
