/* psc_units.h - numbers, sizes and times of both modules' directives
 * (httpd-free core): one overflow-checked digit reader under all of them. */
#ifndef PSC_UNITS_H
#define PSC_UNITS_H

#include <apr.h>
#include <apr_errno.h>
#include <apr_time.h>

/* The digit run at s[*pos..]: at least one digit, no overflow of INT64.
 * Advances *pos.  APR_EINVAL when no digit or overflow. */
apr_status_t psc_parse_digits(const char *s, apr_size_t *pos,
                              apr_int64_t *out);

/* nginx time strings: "30s", "5m", "1h", "1d", "1w", "1M" (30 days),
 * "1y" (365 days), "500ms", a bare number = seconds, and combinations
 * separated by optional spaces ("1h 30m", "1h30m").  Result in
 * microseconds.  APR_EINVAL for anything else (empty, negative, overflow). */
apr_status_t psc_parse_time(const char *s, apr_interval_time_t *out);

/* httpd time strings (as ap_timeout_parameter_parse, "Timeout"): a number
 * of seconds, or a number with ms, s, mi or m (minutes) or h, any case.
 * Microseconds; APR_EINVAL for anything else (empty, negative, overflow). */
apr_status_t psc_parse_timeout(const char *s, apr_interval_time_t *out);

/* nginx sizes: "1024", "32k"/"32K", "256m"/"256M", "1g"/"1G".  Bytes.
 * APR_EINVAL for anything else or overflow. */
apr_status_t psc_parse_size(const char *s, apr_off_t *out);

#endif
