/* ps_json_check.h - a strict JSON (RFC 8259) validity check for the tests:
 * the fuzz targets and unit tests feed it every JSON document the core
 * writes.  Header-only, no allocation.
 *
 * Strict: one value, optional whitespace around it; strings must be valid
 * UTF-8 without raw control bytes, escapes only \" \\ \/ \b \f \n \r \t
 * \uXXXX with surrogates in pairs; numbers in the JSON grammar; nesting at
 * most PS_JSON_MAX_DEPTH.  Returns 1 when valid, else 0 with *err_at (may
 * be NULL) the offset where it stopped. */
#ifndef PS_JSON_CHECK_H
#define PS_JSON_CHECK_H

#include <stddef.h>
#include <string.h>

#define PS_JSON_MAX_DEPTH 64

typedef struct ps_json_cur_t {
    const unsigned char *s;
    size_t n, i;
} ps_json_cur_t;

static int ps_json_value(ps_json_cur_t *c, int depth);

static void ps_json_ws(ps_json_cur_t *c)
{
    while (c->i < c->n && (c->s[c->i] == ' ' || c->s[c->i] == '\t'
                           || c->s[c->i] == '\n' || c->s[c->i] == '\r'))
        c->i++;
}

static int ps_json_lit(ps_json_cur_t *c, const char *w)
{
    size_t k = strlen(w);

    if (c->n - c->i < k || memcmp(c->s + c->i, w, k))
        return 0;
    c->i += k;
    return 1;
}

static int ps_json_hex4(ps_json_cur_t *c, unsigned *v)
{
    size_t k;

    *v = 0;
    if (c->n - c->i < 4)
        return 0;
    for (k = 0; k < 4; k++) {
        unsigned char h = c->s[c->i + k];
        unsigned d = h >= '0' && h <= '9' ? (unsigned)(h - '0')
                   : h >= 'a' && h <= 'f' ? (unsigned)(h - 'a' + 10)
                   : h >= 'A' && h <= 'F' ? (unsigned)(h - 'A' + 10) : 16u;
        if (d > 15)
            return 0;
        *v = *v * 16 + d;
    }
    c->i += 4;
    return 1;
}

/* One UTF-8 sequence (RFC 3629) at c->i; advances. */
static int ps_json_utf8(ps_json_cur_t *c)
{
    const unsigned char *s = c->s + c->i;
    size_t rem = c->n - c->i, need, k;
    unsigned char lo = 0x80, hi = 0xbf;

    if (s[0] >= 0xc2 && s[0] <= 0xdf)
        need = 2;
    else if (s[0] >= 0xe0 && s[0] <= 0xef) {
        need = 3;
        lo = s[0] == 0xe0 ? 0xa0 : 0x80;
        hi = s[0] == 0xed ? 0x9f : 0xbf;
    }
    else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
        need = 4;
        lo = s[0] == 0xf0 ? 0x90 : 0x80;
        hi = s[0] == 0xf4 ? 0x8f : 0xbf;
    }
    else
        return 0;
    if (rem < need || s[1] < lo || s[1] > hi)
        return 0;
    for (k = 2; k < need; k++)
        if (s[k] < 0x80 || s[k] > 0xbf)
            return 0;
    c->i += need;
    return 1;
}

static int ps_json_string(ps_json_cur_t *c)
{
    if (c->i >= c->n || c->s[c->i] != '"')
        return 0;
    c->i++;
    while (c->i < c->n) {
        unsigned char b = c->s[c->i];
        unsigned v, lo;

        if (b == '"') {
            c->i++;
            return 1;
        }
        if (b < 0x20)
            return 0;
        if (b >= 0x80) {
            if (!ps_json_utf8(c))
                return 0;
            continue;
        }
        c->i++;
        if (b != '\\')
            continue;
        if (c->i >= c->n)
            return 0;
        b = c->s[c->i++];
        if (strchr("\"\\/bfnrt", b) && b)
            continue;
        if (b != 'u' || !ps_json_hex4(c, &v))
            return 0;
        if (v >= 0xdc00 && v <= 0xdfff)
            return 0;                   /* a lone low surrogate */
        if (v >= 0xd800 && v <= 0xdbff) {
            if (!ps_json_lit(c, "\\u") || !ps_json_hex4(c, &lo)
                || lo < 0xdc00 || lo > 0xdfff)
                return 0;
        }
    }
    return 0;
}

static int ps_json_digits(ps_json_cur_t *c)
{
    size_t at = c->i;

    while (c->i < c->n && c->s[c->i] >= '0' && c->s[c->i] <= '9')
        c->i++;
    return c->i > at;
}

static int ps_json_number(ps_json_cur_t *c)
{
    if (c->i < c->n && c->s[c->i] == '-')
        c->i++;
    if (c->i < c->n && c->s[c->i] == '0')
        c->i++;
    else if (!ps_json_digits(c))
        return 0;
    if (c->i < c->n && c->s[c->i] == '.') {
        c->i++;
        if (!ps_json_digits(c))
            return 0;
    }
    if (c->i < c->n && (c->s[c->i] == 'e' || c->s[c->i] == 'E')) {
        c->i++;
        if (c->i < c->n && (c->s[c->i] == '+' || c->s[c->i] == '-'))
            c->i++;
        if (!ps_json_digits(c))
            return 0;
    }
    return 1;
}

/* Object or array: open ... close, members "k": v or values, commas. */
static int ps_json_container(ps_json_cur_t *c, int depth, int object)
{
    int first = 1;

    c->i++;
    for (;;) {
        ps_json_ws(c);
        if (c->i < c->n && c->s[c->i] == (object ? '}' : ']')) {
            c->i++;
            return 1;
        }
        if (!first) {
            if (c->i >= c->n || c->s[c->i] != ',')
                return 0;
            c->i++;
            ps_json_ws(c);
        }
        first = 0;
        if (object) {
            if (!ps_json_string(c))
                return 0;
            ps_json_ws(c);
            if (c->i >= c->n || c->s[c->i] != ':')
                return 0;
            c->i++;
        }
        if (!ps_json_value(c, depth + 1))
            return 0;
    }
}

static int ps_json_value(ps_json_cur_t *c, int depth)
{
    if (depth > PS_JSON_MAX_DEPTH)
        return 0;
    ps_json_ws(c);
    if (c->i >= c->n)
        return 0;
    switch (c->s[c->i]) {
    case '{': return ps_json_container(c, depth, 1);
    case '[': return ps_json_container(c, depth, 0);
    case '"': return ps_json_string(c);
    case 't': return ps_json_lit(c, "true");
    case 'f': return ps_json_lit(c, "false");
    case 'n': return ps_json_lit(c, "null");
    default:  return ps_json_number(c);
    }
}

static inline int ps_json_valid(const char *s, size_t n, size_t *err_at)
{
    ps_json_cur_t c = { (const unsigned char *)s, n, 0 };
    int ok = ps_json_value(&c, 0);

    if (ok) {
        ps_json_ws(&c);
        ok = c.i == n;
    }
    if (err_at)
        *err_at = c.i;
    return ok;
}

#endif
