/* ps_escape.c - ids in documents (see ps_escape.h).  Core: no httpd
 * types.
 *
 * Like the template escapes (ps_template.c), each escape is one function
 * that both measures and (when out is not NULL) writes, so the two passes
 * cannot disagree. */

#include <string.h>

#include <apr_strings.h>

#include "ps_escape.h"

static apr_size_t ps_esc_put(char *out, const char *s, apr_size_t n)
{
    if (out)
        memcpy(out, s, n);
    return n;
}

static const char ps_esc_hex[] = "0123456789abcdef";

/* prefix ("\\u", "\\x", "&#x") + n hex digits of v + suffix */
static apr_size_t ps_esc_hexcode(char *out, const char *prefix, unsigned v,
                                 int n, const char *suffix)
{
    char b[16];
    apr_size_t o = 0, k = strlen(prefix);

    memcpy(b, prefix, k);
    o = k;
    while (n-- > 0)
        b[o++] = ps_esc_hex[(v >> (4 * n)) & 15];
    k = strlen(suffix);
    memcpy(b + o, suffix, k);
    return ps_esc_put(out, b, o + k);
}

apr_size_t ps_utf8_seq(const unsigned char *s, apr_size_t rem)
{
    unsigned char c = s[0], lo = 0x80, hi = 0xbf;
    apr_size_t n, i;

    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        n = 2;
    else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        if (c == 0xe0)
            lo = 0xa0;                  /* no overlong forms */
        else if (c == 0xed)
            hi = 0x9f;                  /* no surrogates */
    }
    else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        if (c == 0xf0)
            lo = 0x90;
        else if (c == 0xf4)
            hi = 0x8f;                  /* nothing above U+10FFFF */
    }
    else
        return 0;
    if (rem < n || s[1] < lo || s[1] > hi)
        return 0;
    for (i = 2; i < n; i++)
        if (s[i] < 0x80 || s[i] > 0xbf)
            return 0;
    return n;
}

static unsigned ps_utf8_cp(const unsigned char *s, apr_size_t n)
{
    switch (n) {
    case 1:  return s[0];
    case 2:  return ((s[0] & 0x1fu) << 6) | (s[1] & 0x3fu);
    case 3:  return ((s[0] & 0x0fu) << 12) | ((s[1] & 0x3fu) << 6)
                    | (s[2] & 0x3fu);
    default: return ((s[0] & 0x07u) << 18) | ((s[1] & 0x3fu) << 12)
                    | ((s[2] & 0x3fu) << 6) | (s[3] & 0x3fu);
    }
}

#define PS_UTF8_FFFD "\xef\xbf\xbd"

/* One unit of s (a byte, or a whole UTF-8 sequence: *used) in JSON. */
static apr_size_t ps_esc_json1(char *out, const unsigned char *s,
                               apr_size_t rem, apr_size_t *used)
{
    unsigned char c = s[0];
    apr_size_t n = ps_utf8_seq(s, rem);

    *used = n ? n : 1;
    if (!n)
        return ps_esc_put(out, "\\ufffd", 6);
    if (n == 3 && ps_utf8_cp(s, 3) >= 0x2028 && ps_utf8_cp(s, 3) <= 0x2029)
        return ps_esc_hexcode(out, "\\u", ps_utf8_cp(s, 3), 4, "");
    if (n > 1)
        return ps_esc_put(out, (const char *)s, n);
    switch (c) {
    case '"':  return ps_esc_put(out, "\\\"", 2);
    case '\\': return ps_esc_put(out, "\\\\", 2);
    case '\b': return ps_esc_put(out, "\\b", 2);
    case '\f': return ps_esc_put(out, "\\f", 2);
    case '\n': return ps_esc_put(out, "\\n", 2);
    case '\r': return ps_esc_put(out, "\\r", 2);
    case '\t': return ps_esc_put(out, "\\t", 2);
    default:   break;
    }
    if (c < 0x20 || c == 0x7f)
        return ps_esc_hexcode(out, "\\u", c, 4, "");
    return ps_esc_put(out, (const char *)s, 1);
}

static apr_size_t ps_esc_xml1(char *out, const unsigned char *s,
                              apr_size_t rem, apr_size_t *used)
{
    unsigned char c = s[0];
    apr_size_t n = ps_utf8_seq(s, rem);

    *used = n ? n : 1;
    if (!n)
        return ps_esc_put(out, PS_UTF8_FFFD, 3);
    if (n > 1) {
        unsigned cp = ps_utf8_cp(s, n);
        if (cp == 0xfffe || cp == 0xffff)
            return ps_esc_put(out, PS_UTF8_FFFD, 3);
        return ps_esc_put(out, (const char *)s, n);
    }
    switch (c) {
    case '&':  return ps_esc_put(out, "&amp;", 5);
    case '<':  return ps_esc_put(out, "&lt;", 4);
    case '>':  return ps_esc_put(out, "&gt;", 4);
    case '"':  return ps_esc_put(out, "&quot;", 6);
    case '\'': return ps_esc_put(out, "&apos;", 6);
    case '\t': return ps_esc_put(out, "&#9;", 4);
    case '\n': return ps_esc_put(out, "&#10;", 5);
    case '\r': return ps_esc_put(out, "&#13;", 5);
    default:   break;
    }
    if (c < 0x20)
        return ps_esc_put(out, PS_UTF8_FFFD, 3);
    return ps_esc_put(out, (const char *)s, 1);
}

/* Inside a YAML double-quoted scalar. */
static apr_size_t ps_esc_yaml1(char *out, const unsigned char *s,
                               apr_size_t rem, apr_size_t *used)
{
    unsigned char c = s[0];
    apr_size_t n = ps_utf8_seq(s, rem);

    *used = n ? n : 1;
    if (!n)
        return ps_esc_put(out, "\\uFFFD", 6);
    if (n > 1) {
        unsigned cp = ps_utf8_cp(s, n);
        if ((cp >= 0x80 && cp <= 0x9f) || cp == 0x2028 || cp == 0x2029
            || cp == 0xfeff || cp == 0xfffe || cp == 0xffff)
            return ps_esc_hexcode(out, "\\u", cp, 4, "");
        return ps_esc_put(out, (const char *)s, n);
    }
    switch (c) {
    case '"':  return ps_esc_put(out, "\\\"", 2);
    case '\\': return ps_esc_put(out, "\\\\", 2);
    case '\t': return ps_esc_put(out, "\\t", 2);
    case '\n': return ps_esc_put(out, "\\n", 2);
    case '\r': return ps_esc_put(out, "\\r", 2);
    default:   break;
    }
    if (c < 0x20 || c == 0x7f)
        return ps_esc_hexcode(out, "\\x", c, 2, "");
    return ps_esc_put(out, (const char *)s, 1);
}

static apr_size_t ps_esc_plain1(char *out, const unsigned char *s,
                                apr_size_t rem, apr_size_t *used)
{
    *used = 1;
    if (s[0] < 0x20 || s[0] == 0x7f)
        return ps_esc_hexcode(out, "\\x", s[0], 2, "");
    return ps_esc_put(out, (const char *)s, 1);
}

static apr_size_t ps_esc_prom1(char *out, const unsigned char *s,
                               apr_size_t rem, apr_size_t *used)
{
    apr_size_t n = ps_utf8_seq(s, rem);

    *used = n ? n : 1;
    if (!n)
        return ps_esc_put(out, PS_UTF8_FFFD, 3);
    switch (s[0]) {
    case '"':  return ps_esc_put(out, "\\\"", 2);
    case '\\': return ps_esc_put(out, "\\\\", 2);
    case '\n': return ps_esc_put(out, "\\n", 2);
    default:   break;
    }
    if (s[0] < 0x20 || s[0] == 0x7f)
        return ps_esc_put(out, PS_UTF8_FFFD, 3);    /* no escape for them */
    return ps_esc_put(out, (const char *)s, n);
}

/* YAML 1.1 words a plain scalar would turn into a bool or null. */
static int ps_yaml_word(const char *s, apr_size_t len)
{
    static const char *const words[] = { "y", "n", "yes", "no", "true",
                                         "false", "on", "off", "null" };
    apr_size_t i;

    for (i = 0; i < sizeof(words) / sizeof(words[0]); i++)
        if (strlen(words[i]) == len && !strncasecmp(s, words[i], len))
            return 1;
    return 0;
}

/* 1 when s can be a YAML plain scalar read back as this very string. */
static int ps_yaml_plain_ok(const char *s, apr_size_t len)
{
    const unsigned char *u = (const unsigned char *)s;
    apr_size_t i = 0, n;

    if (!len || ps_yaml_word(s, len))
        return 0;
    if (!((u[0] >= 'a' && u[0] <= 'z') || (u[0] >= 'A' && u[0] <= 'Z')
          || u[0] == '_' || u[0] >= 0x80))
        return 0;
    while (i < len) {
        unsigned char c = u[i];
        if (c >= 0x80) {
            unsigned cp;
            n = ps_utf8_seq(u + i, len - i);
            if (!n)
                return 0;
            cp = ps_utf8_cp(u + i, n);
            if ((cp >= 0x80 && cp <= 0xa0) || cp == 0x2028 || cp == 0x2029
                || cp == 0xfeff || cp == 0xfffe || cp == 0xffff)
                return 0;
            i += n;
            continue;
        }
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
              || (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.'))
            return 0;
        i++;
    }
    return 1;
}

typedef apr_size_t (ps_esc1_fn)(char *out, const unsigned char *s,
                                apr_size_t rem, apr_size_t *used);

apr_size_t ps_esc_to(char *out, ps_esc_e how, const char *s, apr_size_t len)
{
    const unsigned char *u = (const unsigned char *)s;
    ps_esc1_fn *fn;
    apr_size_t i = 0, o = 0, used;
    int quote = 0;

    switch (how) {
    case PS_ESC_XML:   fn = ps_esc_xml1; break;
    case PS_ESC_PLAIN: fn = ps_esc_plain1; break;
    case PS_ESC_PROM:  fn = ps_esc_prom1; break;
    case PS_ESC_YAML:
        fn = ps_esc_yaml1;
        if (ps_yaml_plain_ok(s, len))
            return ps_esc_put(out, s, len);
        quote = 1;
        break;
    default:           fn = ps_esc_json1; break;
    }
    if (quote)
        o += ps_esc_put(out, "\"", 1);
    while (i < len) {
        o += fn(out ? out + o : NULL, u + i, len - i, &used);
        i += used;
    }
    if (quote)
        o += ps_esc_put(out ? out + o : NULL, "\"", 1);
    return o;
}

char *ps_esc(apr_pool_t *p, ps_esc_e how, const char *s, apr_size_t len,
             apr_size_t *olen)
{
    apr_size_t n;
    char *out;

    if (!s)
        s = "", len = 0;
    n = ps_esc_to(NULL, how, s, len);
    out = apr_palloc(p, n + 1);
    ps_esc_to(out, how, s, len);
    out[n] = '\0';
    if (olen)
        *olen = n;
    return out;
}
