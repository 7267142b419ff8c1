/* fuzz_jwt.c - the bounded JSON reader (ps_json.c), compact JWS tokens and
 * claims (ps_jwt.c), and the token sources (Authorization / Cookie).
 *
 * Input: byte 0 = flags (bit 0: Mercure claims, bit 1: audience/issuer
 * checks, bits 2-3: leeway), then fields separated by 0x1F:
 *   1. a token, verified as sent (almost always refused: no signature);
 *   2. a JOSE header and 3. claims, both raw JSON: encoded and signed here
 *      with the configured HS256 secret, so the claims parser and the key
 *      choice by alg/kid are reached past the signature check;
 *   4. an Authorization header value, 5. a Cookie header value.
 * Invariants: JSON tokens stay inside the text and nest properly; strings
 * unescape to no more bytes than they take; verification returns a known
 * code, and an accepted token has grant lists whose ids lie within the
 * claims; the sources return a span of their input. */
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <apr_strings.h>

#include "ps_fuzz.h"
#include "ps_json.h"
#include "ps_jwt.h"

#define FZ_SECRET "fuzz-secret-0123456789abcdef0123456789"

static ps_jwt_conf_t *ps_fz_conf;

static void ps_fz_setup(void)
{
    ps_jwt_key_t *k;

    if (ps_fz_conf)
        return;
    ps_fz_conf = apr_pcalloc(ps_fuzz_root, sizeof(*ps_fz_conf));
    ps_fz_conf->keys = apr_array_make(ps_fuzz_root, 3, sizeof(ps_jwt_key_t));
    k = apr_array_push(ps_fz_conf->keys);
    ps_fuzz_assert(!ps_jwt_key_load(ps_fuzz_root, PS_JWT_HS256, "k1",
                                    FZ_SECRET, strlen(FZ_SECRET), k));
    k = apr_array_push(ps_fz_conf->keys);
    ps_fuzz_assert(!ps_jwt_key_load(ps_fuzz_root, PS_JWT_HS256, NULL,
                                    FZ_SECRET "2", strlen(FZ_SECRET) + 1, k));
}

static char *ps_fz_b64u(apr_pool_t *p, const unsigned char *d, size_t n)
{
    static const char a[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    char *o = apr_palloc(p, n * 4 / 3 + 4), *q = o;
    size_t i;
    long back;
    unsigned char *chk;

    for (i = 0; i + 2 < n; i += 3) {
        *q++ = a[d[i] >> 2];
        *q++ = a[((d[i] & 3) << 4) | (d[i + 1] >> 4)];
        *q++ = a[((d[i + 1] & 15) << 2) | (d[i + 2] >> 6)];
        *q++ = a[d[i + 2] & 63];
    }
    if (n - i == 1) {
        *q++ = a[d[i] >> 2];
        *q++ = a[(d[i] & 3) << 4];
    }
    else if (n - i == 2) {
        *q++ = a[d[i] >> 2];
        *q++ = a[((d[i] & 3) << 4) | (d[i + 1] >> 4)];
        *q++ = a[(d[i + 1] & 15) << 2];
    }
    *q = '\0';
    /* the decoder undoes the encoder */
    chk = apr_palloc(p, n + 1);
    back = ps_jwt_b64url_decode(o, (size_t)(q - o), chk);
    ps_fuzz_assert(back == (long)n && memcmp(chk, d, n) == 0);
    return o;
}

static void ps_fz_json(const char *s, size_t n)
{
    ps_json_tok_t t[64];
    char buf[512];
    int i, cnt = ps_json_parse(s, n, t, 64, 8);

    ps_fuzz_assert(cnt == -1 || (cnt >= 1 && cnt <= 64));
    for (i = 0; i < cnt; i++) {
        ps_fuzz_assert(t[i].start <= t[i].end && t[i].end <= n);
        ps_fuzz_assert(t[i].next > i && t[i].next <= cnt);
        if (t[i].type == PS_JSON_STRING) {
            long l = ps_json_str(s, &t[i], buf, sizeof(buf));
            ps_fuzz_assert(l < 0 || (size_t)l <= t[i].end - t[i].start);
        }
        if (t[i].type == PS_JSON_OBJECT) {
            ps_fuzz_assert(ps_json_get(s, t, i, "exp") >= -2);
        }
    }
    if (cnt > 0)
        ps_fuzz_assert(t[0].next == cnt);
}

static void ps_fz_check(apr_pool_t *p, const char *tok, size_t n,
                        const char *claims, size_t claims_len)
{
    ps_jwt_claims_t cl;
    int rc = ps_jwt_verify(p, ps_fz_conf, tok, n, 1800000000, &cl), i;

    ps_fuzz_assert(rc >= PS_JWT_OK && rc <= PS_JWT_E_ISSUER);
    ps_fuzz_assert(ps_jwt_strerror(rc) != NULL);
    if (rc != PS_JWT_OK)
        return;
    ps_fuzz_assert(cl.subscribe && cl.publish);
    for (i = 0; i < cl.subscribe->nelts; i++) {
        const ps_jwt_grant_t *g = &APR_ARRAY_IDX(cl.subscribe, i,
                                                 ps_jwt_grant_t);
        ps_fuzz_assert(g->len <= claims_len);
        ps_fuzz_assert(ps_jwt_granted(cl.subscribe, g->id, g->len));
        if (g->prefix)
            ps_fuzz_assert(ps_jwt_granted_prefix(cl.subscribe, g->id, g->len));
    }
    (void)claims;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ps_fuzz_in_t in = { (const char *)data, size };
    apr_pool_t *p;
    const char *f;
    size_t n, hn, cn;
    char *tok, *hdr, *claims, *s, *signing;
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    apr_size_t blen = 0;
    const char *b;
    unsigned char flags;

    if (size < 1)
        return 0;
    ps_fz_setup();
    p = ps_fuzz_pool();
    flags = data[0];
    in.p++;
    in.n--;
    ps_fz_conf->mercure = flags & 1;
    ps_fz_conf->audience = (flags & 2) ? "aud1" : NULL;
    ps_fz_conf->issuer = (flags & 2) ? "iss1" : NULL;
    ps_fz_conf->leeway = (flags >> 2) & 3;

    f = ps_fuzz_field(&in, &n);                   /* 1: a raw token */
    tok = ps_fuzz_dup(f, n);
    ps_fz_check(p, tok, n, "", 0);
    free(tok);

    f = ps_fuzz_field(&in, &hn);                  /* 2, 3: header, claims */
    hdr = ps_fuzz_dup(f, hn);
    f = ps_fuzz_field(&in, &cn);
    claims = ps_fuzz_dup(f, cn);
    ps_fz_json(hdr, hn);
    ps_fz_json(claims, cn);
    signing = apr_pstrcat(p, ps_fz_b64u(p, (unsigned char *)hdr, hn), ".",
                          ps_fz_b64u(p, (unsigned char *)claims, cn), NULL);
    HMAC(EVP_sha256(), FZ_SECRET, (int)strlen(FZ_SECRET),
         (unsigned char *)signing, strlen(signing), mac, &maclen);
    s = apr_pstrcat(p, signing, ".", ps_fz_b64u(p, mac, maclen), NULL);
    tok = ps_fuzz_dup(s, strlen(s));
    ps_fz_check(p, tok, strlen(s), claims, cn);
    free(tok);
    free(hdr);
    free(claims);

    f = ps_fuzz_field(&in, &n);                   /* 4: Authorization */
    s = ps_fuzz_str(f, n);
    b = ps_jwt_from_bearer(s, &blen);
    if (b)
        ps_fuzz_assert(b >= s && blen > 0 && b + blen <= s + strlen(s)
                       && !memchr(b, ' ', blen));
    free(s);

    f = ps_fuzz_field(&in, &n);                   /* 5: Cookie */
    s = ps_fuzz_str(f, n);
    b = ps_jwt_from_cookie(s, "pushstream_token", &blen);
    if (b)
        ps_fuzz_assert(b >= s && b + blen <= s + strlen(s));
    free(s);

    apr_pool_destroy(p);
    return 0;
}
