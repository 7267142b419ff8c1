/* ps_json.c - a small bounded JSON reader.  Core: no httpd types. */
#include <stdlib.h>
#include <string.h>
#include <math.h>

#include "ps_json.h"

typedef struct ps_jp_t {
    const char *s;
    apr_size_t len, pos;
    ps_json_tok_t *toks;
    int n, max, max_depth;
} ps_jp_t;

static void ps_jp_ws(ps_jp_t *jp)
{
    while (jp->pos < jp->len) {
        char c = jp->s[jp->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r') {
            return;
        }
        jp->pos++;
    }
}

static int ps_jp_hex(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static int ps_jp_new(ps_jp_t *jp, int type, apr_size_t start)
{
    ps_json_tok_t *t;

    if (jp->n >= jp->max) {
        return -1;
    }
    t = &jp->toks[jp->n];
    t->type = type;
    t->start = start;
    t->end = start;
    t->size = 0;
    t->next = jp->n + 1;
    return jp->n++;
}

static int ps_jp_string(ps_jp_t *jp)
{
    int i;
    apr_size_t p;

    jp->pos++;                              /* the opening quote */
    if ((i = ps_jp_new(jp, PS_JSON_STRING, jp->pos)) < 0) {
        return -1;
    }
    for (p = jp->pos; p < jp->len; p++) {
        unsigned char c = (unsigned char)jp->s[p];
        if (c == '"') {
            jp->toks[i].end = p;
            jp->pos = p + 1;
            return i;
        }
        if (c < 0x20) {
            return -1;
        }
        if (c == '\\') {
            if (++p >= jp->len) {
                return -1;
            }
            switch (jp->s[p]) {
            case '"': case '\\': case '/': case 'b': case 'f': case 'n':
            case 'r': case 't':
                break;
            case 'u':
                if (p + 4 >= jp->len || ps_jp_hex(jp->s[p + 1]) < 0
                    || ps_jp_hex(jp->s[p + 2]) < 0
                    || ps_jp_hex(jp->s[p + 3]) < 0
                    || ps_jp_hex(jp->s[p + 4]) < 0) {
                    return -1;
                }
                p += 4;
                break;
            default:
                return -1;
            }
        }
    }
    return -1;
}

static int ps_jp_digits(ps_jp_t *jp)
{
    apr_size_t start = jp->pos;
    while (jp->pos < jp->len && jp->s[jp->pos] >= '0' && jp->s[jp->pos] <= '9') {
        jp->pos++;
    }
    return jp->pos > start;
}

static int ps_jp_number(ps_jp_t *jp)
{
    apr_size_t start = jp->pos;
    int i;

    if (jp->s[jp->pos] == '-') {
        jp->pos++;
    }
    if (jp->pos < jp->len && jp->s[jp->pos] == '0') {
        jp->pos++;
    }
    else if (!ps_jp_digits(jp)) {
        return -1;
    }
    if (jp->pos < jp->len && jp->s[jp->pos] == '.') {
        jp->pos++;
        if (!ps_jp_digits(jp)) {
            return -1;
        }
    }
    if (jp->pos < jp->len && (jp->s[jp->pos] == 'e' || jp->s[jp->pos] == 'E')) {
        jp->pos++;
        if (jp->pos < jp->len && (jp->s[jp->pos] == '+' || jp->s[jp->pos] == '-')) {
            jp->pos++;
        }
        if (!ps_jp_digits(jp)) {
            return -1;
        }
    }
    if ((i = ps_jp_new(jp, PS_JSON_NUMBER, start)) < 0) {
        return -1;
    }
    jp->toks[i].end = jp->pos;
    return i;
}

static int ps_jp_word(ps_jp_t *jp, const char *w, int type)
{
    apr_size_t n = strlen(w);
    int i;

    if (jp->len - jp->pos < n || memcmp(jp->s + jp->pos, w, n)) {
        return -1;
    }
    if ((i = ps_jp_new(jp, type, jp->pos)) < 0) {
        return -1;
    }
    jp->pos += n;
    jp->toks[i].end = jp->pos;
    return i;
}

static int ps_jp_value(ps_jp_t *jp, int depth);

/* Object or array: members until the closing bracket. */
static int ps_jp_container(ps_jp_t *jp, int depth, int object)
{
    char close = object ? '}' : ']';
    int i;

    if (depth >= jp->max_depth) {
        return -1;
    }
    if ((i = ps_jp_new(jp, object ? PS_JSON_OBJECT : PS_JSON_ARRAY,
                       jp->pos)) < 0) {
        return -1;
    }
    jp->pos++;
    ps_jp_ws(jp);
    if (jp->pos < jp->len && jp->s[jp->pos] == close) {
        jp->pos++;
        jp->toks[i].end = jp->pos;
        jp->toks[i].next = jp->n;
        return i;
    }
    for (;;) {
        ps_jp_ws(jp);
        if (object) {
            if (jp->pos >= jp->len || jp->s[jp->pos] != '"'
                || ps_jp_string(jp) < 0) {
                return -1;
            }
            ps_jp_ws(jp);
            if (jp->pos >= jp->len || jp->s[jp->pos] != ':') {
                return -1;
            }
            jp->pos++;
        }
        if (ps_jp_value(jp, depth + 1) < 0) {
            return -1;
        }
        jp->toks[i].size++;
        ps_jp_ws(jp);
        if (jp->pos >= jp->len) {
            return -1;
        }
        if (jp->s[jp->pos] == ',') {
            jp->pos++;
            continue;
        }
        if (jp->s[jp->pos] != close) {
            return -1;
        }
        jp->pos++;
        jp->toks[i].end = jp->pos;
        jp->toks[i].next = jp->n;
        return i;
    }
}

static int ps_jp_value(ps_jp_t *jp, int depth)
{
    ps_jp_ws(jp);
    if (jp->pos >= jp->len) {
        return -1;
    }
    switch (jp->s[jp->pos]) {
    case '{': return ps_jp_container(jp, depth, 1);
    case '[': return ps_jp_container(jp, depth, 0);
    case '"': return ps_jp_string(jp);
    case 't': return ps_jp_word(jp, "true", PS_JSON_TRUE);
    case 'f': return ps_jp_word(jp, "false", PS_JSON_FALSE);
    case 'n': return ps_jp_word(jp, "null", PS_JSON_NULL);
    default:
        if (jp->s[jp->pos] == '-'
            || (jp->s[jp->pos] >= '0' && jp->s[jp->pos] <= '9')) {
            return ps_jp_number(jp);
        }
        return -1;
    }
}

int ps_json_parse(const char *text, apr_size_t len, ps_json_tok_t *toks,
                  int max, int max_depth)
{
    ps_jp_t jp;

    if (!text || max < 1) {
        return -1;
    }
    jp.s = text;
    jp.len = len;
    jp.pos = 0;
    jp.toks = toks;
    jp.n = 0;
    jp.max = max;
    jp.max_depth = max_depth;
    if (ps_jp_value(&jp, 0) < 0) {
        return -1;
    }
    ps_jp_ws(&jp);
    return jp.pos == len ? jp.n : -1;
}

/* Append the UTF-8 of code point cp; the length. */
static int ps_json_utf8(unsigned long cp, char *o)
{
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xC0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | (cp >> 18));
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

static unsigned long ps_json_hex4(const char *s)
{
    return (unsigned long)((ps_jp_hex(s[0]) << 12) | (ps_jp_hex(s[1]) << 8)
                           | (ps_jp_hex(s[2]) << 4) | ps_jp_hex(s[3]));
}

long ps_json_str(const char *text, const ps_json_tok_t *t, char *buf,
                 apr_size_t size)
{
    apr_size_t i, o = 0;

    if (t->type != PS_JSON_STRING || size == 0) {
        return -1;
    }
    for (i = t->start; i < t->end; i++) {
        char tmp[4];
        int n = 1;
        tmp[0] = text[i];
        if (text[i] == '\\') {
            i++;                            /* validated by the parser */
            switch (text[i]) {
            case 'b': tmp[0] = '\b'; break;
            case 'f': tmp[0] = '\f'; break;
            case 'n': tmp[0] = '\n'; break;
            case 'r': tmp[0] = '\r'; break;
            case 't': tmp[0] = '\t'; break;
            case 'u': {
                unsigned long cp = ps_json_hex4(text + i + 1);
                i += 4;
                if (cp >= 0xD800 && cp <= 0xDBFF && i + 6 < t->end
                    && text[i + 1] == '\\' && text[i + 2] == 'u') {
                    unsigned long lo = ps_json_hex4(text + i + 3);
                    if (lo >= 0xDC00 && lo <= 0xDFFF) {
                        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                        i += 6;
                    }
                }
                if (cp >= 0xD800 && cp <= 0xDFFF) {
                    cp = 0xFFFD;            /* a lone surrogate */
                }
                n = ps_json_utf8(cp, tmp);
                break;
            }
            default: tmp[0] = text[i]; break;
            }
        }
        if (o + (apr_size_t)n >= size) {
            return -1;
        }
        memcpy(buf + o, tmp, (apr_size_t)n);
        o += (apr_size_t)n;
    }
    buf[o] = '\0';
    return (long)o;
}

int ps_json_str_eq(const char *text, const ps_json_tok_t *t, const char *s,
                   apr_size_t len)
{
    char buf[256];
    long n;

    if (t->type != PS_JSON_STRING) {
        return 0;
    }
    if (!memchr(text + t->start, '\\', t->end - t->start)) {
        return t->end - t->start == len && !memcmp(text + t->start, s, len);
    }
    if (len >= sizeof(buf)) {
        return 0;
    }
    n = ps_json_str(text, t, buf, sizeof(buf));
    return n >= 0 && (apr_size_t)n == len && !memcmp(buf, s, len);
}

int ps_json_get(const char *text, const ps_json_tok_t *toks, int obj,
                const char *key)
{
    int i, k, found = -1;
    apr_size_t klen = strlen(key);

    if (toks[obj].type != PS_JSON_OBJECT) {
        return -2;
    }
    k = obj + 1;
    for (i = 0; i < toks[obj].size; i++) {
        if (ps_json_str_eq(text, &toks[k], key, klen)) {
            if (found >= 0) {
                return -2;
            }
            found = k + 1;
        }
        k = toks[k + 1].next;
    }
    return found;
}

int ps_json_int(const char *text, const ps_json_tok_t *t, apr_int64_t *out)
{
    char buf[64];
    apr_size_t n = t->end - t->start;
    double v;

    if (t->type != PS_JSON_NUMBER || n >= sizeof(buf)) {
        return -1;
    }
    memcpy(buf, text + t->start, n);
    buf[n] = '\0';
    v = strtod(buf, NULL);
    if (!isfinite(v) || v > 9007199254740992.0 || v < -9007199254740992.0) {
        return -1;
    }
    *out = (apr_int64_t)v;            /* floor, without libm */
    if ((double)*out > v) {
        (*out)--;
    }
    return 0;
}
