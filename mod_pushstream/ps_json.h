/* ps_json.h - a small bounded JSON reader (RFC 8259), for the header and
 * claims of signed tokens (ps_jwt.c).  Core: no httpd types.
 *
 * The text is split into a flat array of tokens (no allocation: the caller
 * gives the array); a document with more tokens, deeper nesting, or any
 * syntax error (trailing bytes, bad escapes, control bytes in strings,
 * numbers outside the grammar) is refused as a whole. */
#ifndef PS_JSON_H
#define PS_JSON_H

#include <apr.h>

typedef enum {
    PS_JSON_OBJECT = 1,
    PS_JSON_ARRAY,
    PS_JSON_STRING,                /* start/end exclude the quotes */
    PS_JSON_NUMBER,
    PS_JSON_TRUE,
    PS_JSON_FALSE,
    PS_JSON_NULL
} ps_json_type_e;

typedef struct ps_json_tok_t {
    int type;                      /* ps_json_type_e */
    apr_size_t start, end;         /* bytes of the value in the text */
    int size;                      /* object: members; array: elements */
    int next;                      /* index of the token after this value
                                    * (its whole subtree skipped) */
} ps_json_tok_t;

/* Parse text[0..len).  Returns the number of tokens (>= 1; tokens[0] is
 * the root) or -1 when the text is not one valid JSON value within max
 * tokens and max_depth levels of nesting.  An object's members are its
 * key (a STRING token) followed by the value's tokens. */
int ps_json_parse(const char *text, apr_size_t len, ps_json_tok_t *toks,
                  int max, int max_depth);

/* Index of the value of key in the object at obj, -1 when absent, -2 when
 * obj is not an object or the key occurs twice (refused: ambiguous). */
int ps_json_get(const char *text, const ps_json_tok_t *toks, int obj,
                const char *key);

/* Unescape the string token t into buf (size bytes, NUL added).  Returns
 * the length, or -1 when t is not a string or it does not fit. */
long ps_json_str(const char *text, const ps_json_tok_t *t, char *buf,
                 apr_size_t size);

/* 1 when string token t equals s[0..len) once unescaped. */
int ps_json_str_eq(const char *text, const ps_json_tok_t *t, const char *s,
                   apr_size_t len);

/* A number token as a whole number of seconds (a fraction is cut off,
 * as NumericDate allows).  0 on success, -1 otherwise (not a number, or
 * beyond +-2^53). */
int ps_json_int(const char *text, const ps_json_tok_t *t, apr_int64_t *out);

#endif
