/* test_jwt.c - ps_json.c (bounded JSON reader) and ps_jwt.c (compact JWS,
 * keys, claims, grants, token sources).  Test tokens are signed here with
 * OpenSSL (HMAC, and keys generated in process for RS256/ES256/EdDSA). */
#include "ps_test.h"

#include <apr_strings.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ec.h>
#include <openssl/bn.h>
#include <openssl/hmac.h>

#include "ps_json.h"
#include "ps_jwt.h"

#define NOW 1800000000

#define SECRET_LIT "0123456789abcdef0123456789abcdef"
static const char SECRET[] = SECRET_LIT;
static const char SECRET2[] = "ffffffffffffffffffffffffffffffff";

/* ---- helpers ------------------------------------------------------------- */

static char *b64u(apr_pool_t *p, const unsigned char *d, size_t n)
{
    static const char a[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    char *o = apr_palloc(p, n * 4 / 3 + 4), *q = o;
    size_t i;

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
    return o;
}

static char *b64s(apr_pool_t *p, const char *s)
{
    return b64u(p, (const unsigned char *)s, strlen(s));
}

/* header.payload signed by HMAC with md and secret. */
static char *hs_token(apr_pool_t *p, const char *hdr, const char *claims,
                      const EVP_MD *md, const char *secret)
{
    char *data = apr_pstrcat(p, b64s(p, hdr), ".", b64s(p, claims), NULL);
    unsigned char mac[64];
    unsigned int n = 0;

    HMAC(md, secret, (int)strlen(secret), (unsigned char *)data, strlen(data),
         mac, &n);
    return apr_pstrcat(p, data, ".", b64u(p, mac, n), NULL);
}

static char *pk_token(apr_pool_t *p, const char *hdr, const char *claims,
                      EVP_PKEY *k, const EVP_MD *md, int es)
{
    char *data = apr_pstrcat(p, b64s(p, hdr), ".", b64s(p, claims), NULL);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned char sig[1024];
    size_t n = sizeof(sig);

    assert_int_equal(EVP_DigestSignInit(ctx, NULL, md, NULL, k), 1);
    assert_int_equal(EVP_DigestSign(ctx, sig, &n, (unsigned char *)data,
                                    strlen(data)), 1);
    EVP_MD_CTX_free(ctx);
    if (es) {                       /* DER -> r||s */
        const unsigned char *q = sig;
        ECDSA_SIG *s = d2i_ECDSA_SIG(NULL, &q, (long)n);
        unsigned char raw[64];
        assert_non_null(s);
        BN_bn2binpad(ECDSA_SIG_get0_r(s), raw, 32);
        BN_bn2binpad(ECDSA_SIG_get0_s(s), raw + 32, 32);
        ECDSA_SIG_free(s);
        memcpy(sig, raw, 64);
        n = 64;
    }
    return apr_pstrcat(p, data, ".", b64u(p, sig, n), NULL);
}

static char *pem_pub(apr_pool_t *p, EVP_PKEY *k)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *d;
    long n;

    PEM_write_bio_PUBKEY(b, k);
    n = BIO_get_mem_data(b, &d);
    d = apr_pstrmemdup(p, d, (apr_size_t)n);
    BIO_free(b);
    return d;
}

static ps_jwt_conf_t *conf_hs(apr_pool_t *p)
{
    ps_jwt_conf_t *c = apr_pcalloc(p, sizeof(*c));
    ps_jwt_key_t *k;

    c->keys = apr_array_make(p, 4, sizeof(ps_jwt_key_t));
    k = apr_array_push(c->keys);
    assert_null(ps_jwt_key_load(p, PS_JWT_HS256, "k1", SECRET, strlen(SECRET),
                                k));
    k = apr_array_push(c->keys);
    assert_null(ps_jwt_key_load(p, PS_JWT_HS256, "k2", SECRET2,
                                strlen(SECRET2), k));
    return c;
}

static int verify(apr_pool_t *p, const ps_jwt_conf_t *c, const char *tok,
                  ps_jwt_claims_t *cl)
{
    ps_jwt_claims_t tmp;
    return ps_jwt_verify(p, c, tok, strlen(tok), NOW, cl ? cl : &tmp);
}

#define HDR1 "{\"alg\":\"HS256\",\"kid\":\"k1\"}"
#define CLAIMS_OK "{\"exp\":1800000060,\"pushstream\":{\"subscribe\":[\"a\"," \
    "\"room*\"],\"publish\":[\"a\"]}}"

/* ---- JSON ---------------------------------------------------------------- */

static void test_json_valid(void **state)
{
    ps_json_tok_t t[32];
    const char *s = " {\"a\": [1, -2.5e3, true, false, null, \"x\\u00e9\"],"
                    " \"b\": {}, \"c\": \"\\ud83d\\ude00\"} ";
    char buf[16];
    apr_int64_t v;
    int n = ps_json_parse(s, strlen(s), t, 32, 4), a, c;

    assert_int_equal(n, 13);
    assert_int_equal(t[0].type, PS_JSON_OBJECT);
    assert_int_equal(t[0].size, 3);
    a = ps_json_get(s, t, 0, "a");
    assert_int_equal(t[a].type, PS_JSON_ARRAY);
    assert_int_equal(t[a].size, 6);
    assert_int_equal(ps_json_int(s, &t[a + 2], &v), 0);
    assert_int_equal(v, -2500);
    assert_int_equal(ps_json_str(s, &t[a + 6], buf, sizeof(buf)), 3);
    assert_string_equal(buf, "x\xc3\xa9");
    c = ps_json_get(s, t, 0, "c");
    assert_int_equal(ps_json_str(s, &t[c], buf, sizeof(buf)), 4);
    assert_memory_equal(buf, "\xf0\x9f\x98\x80", 4);
    assert_int_equal(ps_json_get(s, t, 0, "zz"), -1);
    assert_int_equal(ps_json_get(s, t, a, "a"), -2);     /* not an object */
    assert_int_equal(ps_json_str(s, &t[c], buf, 4), -1); /* does not fit */
}

static void test_json_invalid(void **state)
{
    static const char *const bad[] = {
        "", " ", "{", "}", "[1,]", "{\"a\":1,}", "{\"a\" 1}", "{1:2}", "01",
        "1.", "-", "1e", "\"abc", "\"a\\x\"", "\"a\\u12\"", "\"\x01\"", "tru",
        "nul", "[1] x", "{\"a\":1}{", "[[[[[1]]]]]", "+1", ".5", NULL
    };
    ps_json_tok_t t[8];
    int i;

    for (i = 0; bad[i]; i++) {
        assert_int_equal(ps_json_parse(bad[i], strlen(bad[i]), t, 8, 4), -1);
    }
    /* too many tokens */
    assert_int_equal(ps_json_parse("[1,2,3,4,5,6,7,8]", 17, t, 8, 4), -1);
    assert_int_equal(ps_json_parse("[1,2,3,4,5,6,7]", 15, t, 8, 4), 8);
}

static void test_json_duplicate_and_numbers(void **state)
{
    ps_json_tok_t t[16];
    const char *s = "{\"a\":1,\"\\u0061\":2,\"n\":1e300,\"f\":12.9}";
    apr_int64_t v;

    assert_int_equal(ps_json_parse(s, strlen(s), t, 16, 2), 9);
    assert_int_equal(ps_json_get(s, t, 0, "a"), -2);     /* twice, escaped */
    assert_int_equal(ps_json_int(s, &t[ps_json_get(s, t, 0, "n")], &v), -1);
    assert_int_equal(ps_json_int(s, &t[ps_json_get(s, t, 0, "f")], &v), 0);
    assert_int_equal(v, 12);
}

/* ---- base64url ------------------------------------------------------------ */

static void test_b64url(void **state)
{
    unsigned char out[16];

    assert_int_equal(ps_jwt_b64url_decode("", 0, out), 0);
    assert_int_equal(ps_jwt_b64url_decode("YQ", 2, out), 1);
    assert_int_equal(out[0], 'a');
    assert_int_equal(ps_jwt_b64url_decode("YWI", 3, out), 2);
    assert_int_equal(ps_jwt_b64url_decode("-_-_", 4, out), 3);
    assert_int_equal(out[0], 0xfb);
    assert_int_equal(ps_jwt_b64url_decode("YQ==", 4, out), -1);   /* padding */
    assert_int_equal(ps_jwt_b64url_decode("Y", 1, out), -1);
    assert_int_equal(ps_jwt_b64url_decode("YR", 2, out), -1);     /* bits */
    assert_int_equal(ps_jwt_b64url_decode("Y+/a", 4, out), -1);
}

/* ---- HS tokens ------------------------------------------------------------ */

static void test_hs256_valid_and_grants(void **state)
{
    apr_pool_t *p = *state;
    ps_jwt_conf_t *c = conf_hs(p);
    ps_jwt_claims_t cl;
    char *tok = hs_token(p, HDR1, CLAIMS_OK, EVP_sha256(), SECRET);

    assert_int_equal(verify(p, c, tok, &cl), PS_JWT_OK);
    assert_int_equal(cl.exp, 1800000060);
    assert_true(ps_jwt_granted(cl.subscribe, "a", 1));
    assert_true(ps_jwt_granted(cl.subscribe, "room", 4));
    assert_true(ps_jwt_granted(cl.subscribe, "room42", 6));
    assert_false(ps_jwt_granted(cl.subscribe, "roo", 3));
    assert_false(ps_jwt_granted(cl.subscribe, "ab", 2));
    assert_true(ps_jwt_granted(cl.publish, "a", 1));
    assert_false(ps_jwt_granted(cl.publish, "room1", 5));
    assert_true(ps_jwt_granted_prefix(cl.subscribe, "room1", 5));
    assert_false(ps_jwt_granted_prefix(cl.subscribe, "", 0));
    /* no kid: both HS256 keys are tried (rotation) */
    tok = hs_token(p, "{\"alg\":\"HS256\"}", CLAIMS_OK, EVP_sha256(), SECRET2);
    assert_int_equal(verify(p, c, tok, NULL), PS_JWT_OK);
    tok = hs_token(p, "{\"alg\":\"HS256\",\"kid\":\"k2\"}", CLAIMS_OK,
                   EVP_sha256(), SECRET2);
    assert_int_equal(verify(p, c, tok, NULL), PS_JWT_OK);
}

static void test_hs_refusals(void **state)
{
    apr_pool_t *p = *state;
    ps_jwt_conf_t *c = conf_hs(p);
    char *tok = hs_token(p, HDR1, CLAIMS_OK, EVP_sha256(), SECRET), *t2;
    char *dot = strrchr(tok, '.');

    /* wrong key */
    assert_int_equal(verify(p, c, hs_token(p, "{\"alg\":\"HS256\",\"kid\":\"k2\"}",
                                           CLAIMS_OK, EVP_sha256(), SECRET),
                            NULL), PS_JWT_E_SIGNATURE);
    /* unknown kid */
    assert_int_equal(verify(p, c, hs_token(p, "{\"alg\":\"HS256\",\"kid\":\"k9\"}",
                                           CLAIMS_OK, EVP_sha256(), SECRET),
                            NULL), PS_JWT_E_KID);
    /* algorithm not configured, none */
    assert_int_equal(verify(p, c, hs_token(p, "{\"alg\":\"HS512\",\"kid\":\"k1\"}",
                                           CLAIMS_OK, EVP_sha512(), SECRET),
                            NULL), PS_JWT_E_ALG);
    t2 = apr_pstrcat(p, b64s(p, "{\"alg\":\"none\"}"), ".",
                     b64s(p, CLAIMS_OK), ".", NULL);
    assert_int_equal(verify(p, c, t2, NULL), PS_JWT_E_ALG);
    t2 = apr_pstrcat(p, b64s(p, "{\"alg\":\"none\"}"), ".",
                     b64s(p, CLAIMS_OK), ".AAAA", NULL);
    assert_int_equal(verify(p, c, t2, NULL), PS_JWT_E_ALG);
    /* tampered payload */
    t2 = apr_pstrcat(p, b64s(p, HDR1), ".",
                     b64s(p, "{\"pushstream\":{\"subscribe\":[\"*\"]}}"), dot,
                     NULL);
    assert_int_equal(verify(p, c, t2, NULL), PS_JWT_E_SIGNATURE);
    /* flipped signature byte, truncated, extra part */
    t2 = apr_pstrdup(p, tok);
    t2[strlen(t2) - 2] = t2[strlen(t2) - 2] == 'A' ? 'B' : 'A';
    assert_int_equal(verify(p, c, t2, NULL), PS_JWT_E_SIGNATURE);
    assert_int_not_equal(verify(p, c, apr_pstrndup(p, tok, strlen(tok) - 4),
                                NULL), PS_JWT_OK);
    assert_int_equal(verify(p, c, apr_pstrcat(p, tok, ".x", NULL), NULL),
                     PS_JWT_E_MALFORMED);
    assert_int_equal(verify(p, c, "a.b", NULL), PS_JWT_E_MALFORMED);
    assert_int_equal(verify(p, c, "", NULL), PS_JWT_E_MALFORMED);
    /* crit, duplicate kid, alg not a string */
    assert_int_equal(verify(p, c, hs_token(p, "{\"alg\":\"HS256\",\"crit\":[\"b64\"]}",
                                           CLAIMS_OK, EVP_sha256(), SECRET),
                            NULL), PS_JWT_E_MALFORMED);
    assert_int_equal(verify(p, c, hs_token(p, "{\"alg\":\"HS256\",\"kid\":\"k1\","
                                           "\"kid\":\"k2\"}", CLAIMS_OK,
                                           EVP_sha256(), SECRET),
                            NULL), PS_JWT_E_MALFORMED);
    assert_int_equal(verify(p, c, hs_token(p, "{\"alg\":256}", CLAIMS_OK,
                                           EVP_sha256(), SECRET),
                            NULL), PS_JWT_E_MALFORMED);
}

static void test_claims_time_aud_iss(void **state)
{
    apr_pool_t *p = *state;
    ps_jwt_conf_t *c = conf_hs(p);
    const EVP_MD *md = EVP_sha256();

#define V(claims) verify(p, c, hs_token(p, HDR1, claims, md, SECRET), NULL)
    assert_int_equal(V("{\"exp\":1800000000}"), PS_JWT_E_EXPIRED);
    assert_int_equal(V("{\"exp\":1800000001}"), PS_JWT_OK);
    assert_int_equal(V("{\"exp\":1800000000.9}"), PS_JWT_E_EXPIRED);
    assert_int_equal(V("{\"nbf\":1800000001}"), PS_JWT_E_NOT_YET);
    assert_int_equal(V("{\"nbf\":1800000000}"), PS_JWT_OK);
    assert_int_equal(V("{\"exp\":\"soon\"}"), PS_JWT_E_MALFORMED);
    assert_int_equal(V("{}"), PS_JWT_OK);
    assert_int_equal(V("[]"), PS_JWT_E_MALFORMED);
    assert_int_equal(V("{\"pushstream\":[]}"), PS_JWT_E_MALFORMED);
    assert_int_equal(V("{\"pushstream\":{\"subscribe\":[1]}}"),
                     PS_JWT_E_MALFORMED);
    c->leeway = 30;
    assert_int_equal(V("{\"exp\":1799999980}"), PS_JWT_OK);
    assert_int_equal(V("{\"exp\":1799999970}"), PS_JWT_E_EXPIRED);
    assert_int_equal(V("{\"nbf\":1800000020}"), PS_JWT_OK);
    c->leeway = 0;
    c->audience = "push";
    assert_int_equal(V("{}"), PS_JWT_E_AUDIENCE);
    assert_int_equal(V("{\"aud\":\"push\"}"), PS_JWT_OK);
    assert_int_equal(V("{\"aud\":[\"x\",\"push\"]}"), PS_JWT_OK);
    assert_int_equal(V("{\"aud\":[\"x\"]}"), PS_JWT_E_AUDIENCE);
    c->issuer = "https://app";
    assert_int_equal(V("{\"aud\":\"push\",\"iss\":\"https://app\"}"), PS_JWT_OK);
    assert_int_equal(V("{\"aud\":\"push\",\"iss\":\"https://evil\"}"),
                     PS_JWT_E_ISSUER);
#undef V
}

static void test_mercure_claims(void **state)
{
    apr_pool_t *p = *state;
    ps_jwt_conf_t *c = conf_hs(p);
    ps_jwt_claims_t cl;
    char *tok = hs_token(p, HDR1, "{\"mercure\":{\"subscribe\":[\"*\"],"
                         "\"publish\":[\"a\"]}}", EVP_sha256(), SECRET);

    assert_int_equal(verify(p, c, tok, &cl), PS_JWT_OK);
    assert_int_equal(cl.subscribe->nelts, 0);          /* not read by default */
    c->mercure = 1;
    assert_int_equal(verify(p, c, tok, &cl), PS_JWT_OK);
    assert_true(ps_jwt_granted(cl.subscribe, "anything", 8));
    assert_true(ps_jwt_granted_prefix(cl.subscribe, "", 0));
    assert_true(ps_jwt_granted(cl.publish, "a", 1));
}

/* ---- keys ------------------------------------------------------------------ */

static void test_key_load_errors(void **state)
{
    apr_pool_t *p = *state;
    ps_jwt_key_t k;
    EVP_PKEY *ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");

    assert_non_null(ps_jwt_key_load(p, PS_JWT_HS256, NULL, "short", 5, &k));
    assert_null(ps_jwt_key_load(p, PS_JWT_HS256, NULL, SECRET_LIT "\n",
                                strlen(SECRET) + 1, &k));
    assert_int_equal(k.secret_len, strlen(SECRET));     /* newline dropped */
    assert_non_null(ps_jwt_key_load(p, PS_JWT_HS512, NULL, SECRET,
                                    strlen(SECRET), &k));
    assert_non_null(ps_jwt_key_load(p, PS_JWT_RS256, NULL, "nope", 4, &k));
    assert_non_null(ps_jwt_key_load(p, PS_JWT_ES256, NULL,
                                    pem_pub(p, ec), strlen(pem_pub(p, ec)), &k));
    assert_int_equal(ps_jwt_alg_parse("EdDSA"), PS_JWT_EDDSA);
    assert_int_equal(ps_jwt_alg_parse("none"), PS_JWT_NONE);
    assert_int_equal(ps_jwt_alg_parse("hs256"), PS_JWT_NONE);
    EVP_PKEY_free(ec);
}

static void test_public_key_algorithms(void **state)
{
    apr_pool_t *p = *state;
    EVP_PKEY *rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    EVP_PKEY *ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    EVP_PKEY *ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    ps_jwt_conf_t *c = apr_pcalloc(p, sizeof(*c));
    char *rsa_pem = pem_pub(p, rsa), *tok, *bad;
    ps_jwt_key_t *k;

    c->keys = apr_array_make(p, 4, sizeof(ps_jwt_key_t));
    k = apr_array_push(c->keys);
    assert_null(ps_jwt_key_load(p, PS_JWT_RS256, "rs", rsa_pem,
                                strlen(rsa_pem), k));
    k = apr_array_push(c->keys);
    assert_null(ps_jwt_key_load(p, PS_JWT_ES256, "es", pem_pub(p, ec),
                                strlen(pem_pub(p, ec)), k));
    k = apr_array_push(c->keys);
    assert_null(ps_jwt_key_load(p, PS_JWT_EDDSA, "ed", pem_pub(p, ed),
                                strlen(pem_pub(p, ed)), k));
    /* wrong type for the algorithm */
    assert_non_null(ps_jwt_key_load(p, PS_JWT_EDDSA, NULL, rsa_pem,
                                    strlen(rsa_pem), &(ps_jwt_key_t){0}));

    tok = pk_token(p, "{\"alg\":\"RS256\",\"kid\":\"rs\"}", CLAIMS_OK, rsa,
                   EVP_sha256(), 0);
    assert_int_equal(verify(p, c, tok, NULL), PS_JWT_OK);
    tok = pk_token(p, "{\"alg\":\"RS256\"}", CLAIMS_OK, rsa, EVP_sha256(), 0);
    assert_int_equal(verify(p, c, tok, NULL), PS_JWT_OK);
    tok = pk_token(p, "{\"alg\":\"ES256\",\"kid\":\"es\"}", CLAIMS_OK, ec,
                   EVP_sha256(), 1);
    assert_int_equal(verify(p, c, tok, NULL), PS_JWT_OK);
    tok = pk_token(p, "{\"alg\":\"EdDSA\",\"kid\":\"ed\"}", CLAIMS_OK, ed,
                   NULL, 0);
    assert_int_equal(verify(p, c, tok, NULL), PS_JWT_OK);
    /* ES256 under the Ed25519 key id: another algorithm */
    tok = pk_token(p, "{\"alg\":\"ES256\",\"kid\":\"ed\"}", CLAIMS_OK, ec,
                   EVP_sha256(), 1);
    assert_int_equal(verify(p, c, tok, NULL), PS_JWT_E_ALG);
    /* confusion: HS256 signed with the RSA public key as the secret */
    tok = hs_token(p, "{\"alg\":\"HS256\",\"kid\":\"rs\"}", CLAIMS_OK,
                   EVP_sha256(), rsa_pem);
    assert_int_equal(verify(p, c, tok, NULL), PS_JWT_E_ALG);
    tok = hs_token(p, "{\"alg\":\"HS256\"}", CLAIMS_OK, EVP_sha256(), rsa_pem);
    assert_int_equal(verify(p, c, tok, NULL), PS_JWT_E_ALG);
    /* ES256 signature of the wrong length, DER instead of r||s */
    tok = pk_token(p, "{\"alg\":\"ES256\",\"kid\":\"es\"}", CLAIMS_OK, ec,
                   EVP_sha256(), 0);
    assert_int_equal(verify(p, c, tok, NULL), PS_JWT_E_SIGNATURE);
    /* tampered RS256 payload */
    tok = pk_token(p, "{\"alg\":\"RS256\",\"kid\":\"rs\"}", CLAIMS_OK, rsa,
                   EVP_sha256(), 0);
    bad = apr_pstrcat(p, b64s(p, "{\"alg\":\"RS256\",\"kid\":\"rs\"}"), ".",
                      b64s(p, "{\"pushstream\":{\"subscribe\":[\"*\"]}}"),
                      strrchr(tok, '.'), NULL);
    assert_int_equal(verify(p, c, bad, NULL), PS_JWT_E_SIGNATURE);
    EVP_PKEY_free(rsa);
    EVP_PKEY_free(ec);
    EVP_PKEY_free(ed);
}

/* ---- sources --------------------------------------------------------------- */

static void test_bearer_and_cookie(void **state)
{
    apr_size_t n = 0;
    const char *t;

    t = ps_jwt_from_bearer("Bearer abc.def.ghi", &n);
    ps_assert_mem(t, n, "abc.def.ghi");
    t = ps_jwt_from_bearer("  bearer\t x.y.z  ", &n);
    ps_assert_mem(t, n, "x.y.z");
    assert_null(ps_jwt_from_bearer("Basic dTpw", &n));
    assert_null(ps_jwt_from_bearer("Bearer", &n));
    assert_null(ps_jwt_from_bearer("Bearer   ", &n));
    assert_null(ps_jwt_from_bearer("Bearerx y", &n));
    assert_null(ps_jwt_from_bearer(NULL, &n));

    t = ps_jwt_from_cookie("a=1; pushstream_token=tok; b=2", "pushstream_token",
                           &n);
    ps_assert_mem(t, n, "tok");
    t = ps_jwt_from_cookie("pushstream_token=\"q\"", "pushstream_token", &n);
    ps_assert_mem(t, n, "q");
    t = ps_jwt_from_cookie("xpushstream_token=1;pushstream_token=2 ",
                           "pushstream_token", &n);
    ps_assert_mem(t, n, "2");
    assert_null(ps_jwt_from_cookie("a=1", "pushstream_token", &n));
    assert_null(ps_jwt_from_cookie("pushstream_token", "pushstream_token", &n));
    assert_null(ps_jwt_from_cookie(NULL, "x", &n));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        PS_TEST(test_json_valid),
        PS_TEST(test_json_invalid),
        PS_TEST(test_json_duplicate_and_numbers),
        PS_TEST(test_b64url),
        PS_TEST(test_hs256_valid_and_grants),
        PS_TEST(test_hs_refusals),
        PS_TEST(test_claims_time_aud_iss),
        PS_TEST(test_mercure_claims),
        PS_TEST(test_key_load_errors),
        PS_TEST(test_public_key_algorithms),
        PS_TEST(test_bearer_and_cookie),
    };

    PS_TEST_RUN(tests);
}
