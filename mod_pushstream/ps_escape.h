/* ps_escape.h - channel ids (and host names) inside the statistics / info
 * documents, the events channel's JSON and Prometheus labels.  Core: no
 * httpd types.
 *
 * A channel id may hold any byte but the control bytes (refused with 400,
 * PS0070) and '/' (the list separator): quotes, backslashes, '<', '&',
 * non-ASCII UTF-8 and bytes that are not UTF-8 at all.  Each document
 * format gets a form that its readers parse back:
 *   JSON   string body: \" \\ \b \f \n \r \t, other control bytes and DEL
 *          as \u00XX, U+2028/U+2029 as \u2028/\u2029 (JSONP), valid UTF-8
 *          as is, every byte that is not part of valid UTF-8 as \ufffd;
 *   XML    & < > " ' as entities, tab/LF/CR as &#9; &#10; &#13;, other
 *          control bytes, U+FFFE/U+FFFF and bytes that are not valid
 *          UTF-8 as U+FFFD (XML 1.0 has no way to carry them);
 *   YAML   plain when the id is a letter or '_' followed by letters,
 *          digits, '_', '-', '.' (or valid non-ASCII UTF-8) and is not one
 *          of YAML 1.1's true/false/yes/no/on/off/y/n/null words; else a
 *          double-quoted scalar with \" \\ \t \n \r \xXX (control bytes,
 *          DEL), \uXXXX (C1 controls, U+2028/2029, U+FEFF, U+FFFE/FFFF)
 *          and \uFFFD for bytes that are not valid UTF-8;
 *   plain  byte for byte as nginx does, but a control byte as \xXX (none
 *          can name a channel; a host name could hold one);
 *   Prometheus label value: \\ \" \n escaped, other control bytes and
 *          bytes that are not valid UTF-8 as U+FFFD (the exposition format
 *          is UTF-8 and has no other escapes).
 * Replacing an invalid byte by U+FFFD loses it: two ids that differ only
 * there print alike (stats list them in creation order, each once).
 */
#ifndef PS_ESCAPE_H
#define PS_ESCAPE_H

#include <apr_pools.h>

typedef enum {
    PS_ESC_JSON = 0,
    PS_ESC_XML,
    PS_ESC_YAML,
    PS_ESC_PLAIN,
    PS_ESC_PROM
} ps_esc_e;

/* The escaped form of s[0..len) written to out (NULL: only measured);
 * returns its length.  No NUL is written. */
apr_size_t ps_esc_to(char *out, ps_esc_e how, const char *s, apr_size_t len);

/* The escaped form as a NUL-terminated pool string; *olen (may be NULL)
 * gets its length. */
char *ps_esc(apr_pool_t *p, ps_esc_e how, const char *s, apr_size_t len,
             apr_size_t *olen);

/* Length of the valid UTF-8 sequence (RFC 3629) starting at s[0..rem),
 * 0 when s[0] does not start one. */
apr_size_t ps_utf8_seq(const unsigned char *s, apr_size_t rem);

#endif
