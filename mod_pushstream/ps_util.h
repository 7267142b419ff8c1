/* ps_util.h - parsing of config values and request headers.  Core: no httpd types. */
#ifndef PS_UTIL_H
#define PS_UTIL_H

#include <apr.h>
#include <apr_errno.h>
#include <apr_time.h>

#include "psc_units.h"       /* psc_parse_time(), psc_parse_size() */

/* Non-negative decimal integer, whole string.  APR_EINVAL otherwise. */
apr_status_t ps_parse_uint(const char *s, apr_uint64_t *out);

/* Message tag from If-None-Match / Etag style text: an optional leading
 * "W/" is stripped (only when the string is longer than 2 bytes), then a
 * (possibly signed) decimal integer; the absolute value is returned.
 * -1 when s is NULL, empty or not numeric ("not given"). */
apr_int64_t ps_parse_tag(const char *s);

/* HTTP date (RFC 1123, RFC 850, asctime) -> seconds since the epoch.
 * -1 when s is NULL or unparsable ("not given"). */
apr_int64_t ps_parse_http_time(const char *s);

/* RFC 1123 date, exactly 29 chars + NUL: "Sun, 22 Nov 2026 20:09:01 GMT". */
#define PS_HTTP_TIME_LEN 29
void ps_format_http_time(char buf[PS_HTTP_TIME_LEN + 1], apr_int64_t sec);

/* ISO 8601 UTC without zone, "%Y-%m-%dT%H:%M:%S" (19 chars + NUL). */
#define PS_ISO_TIME_LEN 19
void ps_format_iso_time(char buf[PS_ISO_TIME_LEN + 1], apr_int64_t sec);

/* Padding for old browsers (PushStreamPaddingByUserAgent): bytes to add
 * after a piece of len bytes when the rule asks for min, never more than
 * max (the config-wide largest minimum): ((min - len) / 100 + 1) * 100. */
apr_size_t ps_padding_len(apr_size_t len, apr_size_t min, apr_size_t max);

/* One PushStreamPaddingByUserAgent rule "regex,header_min,message_min":
 * *c1 / *c2 point at the last two commas (the regex may contain commas).
 * 1 when the shape is right - a non-empty regex, then two non-empty digit
 * runs - else 0.  rule is not modified. */
int ps_padding_rule_split(char *rule, char **c1, char **c2);

/* Fill n padding bytes: "\r\n" pairs (an odd count starts with "\n"), or
 * for EventSource a comment line of ':' ending in "\n". */
void ps_padding_fill(char *buf, apr_size_t n, int eventsource);

#endif
