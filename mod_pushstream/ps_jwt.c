/* ps_jwt.c - compact JWS tokens and channel grants.  Core: no httpd types.
 * Crypto is OpenSSL 3's: EVP_MAC (HMAC) compared with CRYPTO_memcmp, and
 * EVP_DigestVerify for RSA, ECDSA (JOSE r||s turned into DER) and Ed25519. */
#include <string.h>

#include <apr_strings.h>
#include <apr_lib.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "ps_json.h"
#include "ps_jwt.h"

#define PS_JWT_HDR_TOKS    64
#define PS_JWT_CLAIM_TOKS  2048
#define PS_JWT_DEPTH       6

static const char *const ps_jwt_names[] = {
    "none", "HS256", "HS384", "HS512", "RS256", "ES256", "EdDSA"
};

const char *ps_jwt_strerror(int err)
{
    switch (err) {
    case PS_JWT_OK:           return "valid";
    case PS_JWT_E_MALFORMED:  return "malformed token";
    case PS_JWT_E_ALG:        return "algorithm not accepted";
    case PS_JWT_E_KID:        return "unknown key id";
    case PS_JWT_E_SIGNATURE:  return "bad signature";
    case PS_JWT_E_EXPIRED:    return "token expired";
    case PS_JWT_E_NOT_YET:    return "token not yet valid";
    case PS_JWT_E_AUDIENCE:   return "wrong audience";
    case PS_JWT_E_ISSUER:     return "wrong issuer";
    default:                  return "invalid token";
    }
}

int ps_jwt_alg_parse(const char *name)
{
    int i;

    for (i = PS_JWT_HS256; i <= PS_JWT_EDDSA; i++) {
        if (name && !strcmp(name, ps_jwt_names[i])) {
            return i;
        }
    }
    return PS_JWT_NONE;
}

const char *ps_jwt_alg_name(int alg)
{
    return alg >= PS_JWT_HS256 && alg <= PS_JWT_EDDSA ? ps_jwt_names[alg]
                                                      : "none";
}

static const char *ps_jwt_md_name(int alg)
{
    switch (alg) {
    case PS_JWT_HS384: return "SHA384";
    case PS_JWT_HS512: return "SHA512";
    case PS_JWT_EDDSA: return NULL;
    default:           return "SHA256";
    }
}

static apr_status_t ps_jwt_pkey_free(void *pkey)
{
    EVP_PKEY_free(pkey);
    return APR_SUCCESS;
}

/* Is pkey of the type alg needs? */
static const char *ps_jwt_pkey_check(apr_pool_t *p, int alg, EVP_PKEY *pkey)
{
    char group[64];

    switch (alg) {
    case PS_JWT_RS256:
        if (!EVP_PKEY_is_a(pkey, "RSA")) {
            return "RS256 needs an RSA public key";
        }
        if (EVP_PKEY_get_bits(pkey) < 2048) {
            return apr_psprintf(p, "RSA key of %d bits: at least 2048 needed",
                                EVP_PKEY_get_bits(pkey));
        }
        return NULL;
    case PS_JWT_ES256:
        if (!EVP_PKEY_is_a(pkey, "EC")
            || !EVP_PKEY_get_utf8_string_param(pkey,
                                               OSSL_PKEY_PARAM_GROUP_NAME,
                                               group, sizeof(group), NULL)
            || (strcmp(group, "prime256v1") && strcmp(group, "P-256"))) {
            return "ES256 needs an EC public key on the curve P-256";
        }
        return NULL;
    case PS_JWT_EDDSA:
        if (!EVP_PKEY_is_a(pkey, "ED25519")) {
            return "EdDSA needs an Ed25519 public key";
        }
        return NULL;
    default:
        return "not a public-key algorithm";
    }
}

const char *ps_jwt_key_load(apr_pool_t *p, int alg, const char *kid,
                            const char *data, apr_size_t len,
                            ps_jwt_key_t *key)
{
    memset(key, 0, sizeof(*key));
    key->alg = alg;
    key->kid = kid;
    if (alg >= PS_JWT_HS256 && alg <= PS_JWT_HS512) {
        apr_size_t min = alg == PS_JWT_HS256 ? 32 : alg == PS_JWT_HS384 ? 48
                                                                        : 64;
        if (len && data[len - 1] == '\n') {
            len--;
        }
        if (len < min) {
            return apr_psprintf(p, "%s secret of %" APR_SIZE_T_FMT " bytes: "
                                "at least %" APR_SIZE_T_FMT " needed "
                                "(RFC 7518 3.2)", ps_jwt_alg_name(alg), len,
                                min);
        }
        key->secret = apr_pmemdup(p, data, len);
        key->secret_len = len;
        return NULL;
    }
    if (alg >= PS_JWT_RS256 && alg <= PS_JWT_EDDSA) {
        BIO *bio = BIO_new_mem_buf(data, (int)len);
        EVP_PKEY *pkey = bio ? PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL)
                             : NULL;
        const char *err;
        BIO_free(bio);
        if (!pkey) {
            return "no PEM public key (-----BEGIN PUBLIC KEY-----) found";
        }
        if ((err = ps_jwt_pkey_check(p, alg, pkey)) != NULL) {
            EVP_PKEY_free(pkey);
            return err;
        }
        key->pkey = pkey;
        apr_pool_cleanup_register(p, pkey, ps_jwt_pkey_free,
                                  apr_pool_cleanup_null);
        return NULL;
    }
    return "unknown algorithm";
}

/* ---- base64url ----------------------------------------------------------- */

static int ps_b64_val(unsigned char c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '-') return 62;
    if (c == '_') return 63;
    return -1;
}

long ps_jwt_b64url_decode(const char *in, apr_size_t len, unsigned char *out)
{
    apr_uint32_t acc = 0;
    apr_size_t i, o = 0;
    int bits = 0;

    if (len % 4 == 1) {
        return -1;
    }
    for (i = 0; i < len; i++) {
        int v = ps_b64_val((unsigned char)in[i]);
        if (v < 0) {
            return -1;
        }
        acc = (acc << 6) | (apr_uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (unsigned char)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    if (acc) {                         /* unused bits must be zero */
        return -1;
    }
    return (long)o;
}

/* Decode a part into a pool buffer; NULL when it is not base64url. */
static unsigned char *ps_jwt_part(apr_pool_t *p, const char *in,
                                  apr_size_t len, apr_size_t *out_len)
{
    unsigned char *buf = apr_palloc(p, len * 3 / 4 + 1);
    long n = ps_jwt_b64url_decode(in, len, buf);

    if (n < 0) {
        return NULL;
    }
    buf[n] = '\0';
    *out_len = (apr_size_t)n;
    return buf;
}

/* ---- signatures ---------------------------------------------------------- */

static int ps_jwt_hmac(const ps_jwt_key_t *k, const char *data, apr_size_t len,
                       const unsigned char *sig, apr_size_t sig_len)
{
    unsigned char mac[EVP_MAX_MD_SIZE];
    size_t mac_len = 0;
    EVP_MAC *m = EVP_MAC_fetch(NULL, "HMAC", NULL);
    EVP_MAC_CTX *ctx = m ? EVP_MAC_CTX_new(m) : NULL;
    OSSL_PARAM params[2];
    int ok = 0;

    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
                                                 (char *)ps_jwt_md_name(k->alg),
                                                 0);
    params[1] = OSSL_PARAM_construct_end();
    if (ctx && EVP_MAC_init(ctx, k->secret, k->secret_len, params)
        && EVP_MAC_update(ctx, (const unsigned char *)data, len)
        && EVP_MAC_final(ctx, mac, &mac_len, sizeof(mac))) {
        ok = mac_len == sig_len && CRYPTO_memcmp(mac, sig, sig_len) == 0;
    }
    EVP_MAC_CTX_free(ctx);
    EVP_MAC_free(m);
    OPENSSL_cleanse(mac, sizeof(mac));
    return ok;
}

/* JOSE ES256 signature (r||s, 32 bytes each) -> DER ECDSA-Sig-Value. */
static unsigned char *ps_jwt_es_der(apr_pool_t *p, const unsigned char *sig,
                                    apr_size_t len, apr_size_t *der_len)
{
    ECDSA_SIG *es = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(sig, 32, NULL), *s = BN_bin2bn(sig + 32, 32, NULL);
    unsigned char *der = NULL, *out = NULL;
    int n;

    if (len != 64 || !es || !r || !s || !ECDSA_SIG_set0(es, r, s)) {
        BN_free(r);
        BN_free(s);
        ECDSA_SIG_free(es);
        return NULL;
    }
    n = i2d_ECDSA_SIG(es, &der);
    if (n > 0) {
        out = apr_pmemdup(p, der, (apr_size_t)n);
        *der_len = (apr_size_t)n;
    }
    OPENSSL_free(der);
    ECDSA_SIG_free(es);
    return out;
}

static int ps_jwt_pk_verify(apr_pool_t *p, const ps_jwt_key_t *k,
                            const char *data, apr_size_t len,
                            const unsigned char *sig, apr_size_t sig_len)
{
    EVP_MD_CTX *ctx;
    const char *md = ps_jwt_md_name(k->alg);
    int ok;

    if (k->alg == PS_JWT_ES256) {
        sig = ps_jwt_es_der(p, sig, sig_len, &sig_len);
        if (!sig) {
            return 0;
        }
    }
    if (!(ctx = EVP_MD_CTX_new())) {
        return 0;
    }
    ok = EVP_DigestVerifyInit_ex(ctx, NULL, md, NULL, NULL, k->pkey, NULL) == 1
         && EVP_DigestVerify(ctx, sig, sig_len, (const unsigned char *)data,
                             len) == 1;
    EVP_MD_CTX_free(ctx);
    return ok;
}

static int ps_jwt_sig_ok(apr_pool_t *p, const ps_jwt_key_t *k,
                         const char *data, apr_size_t len,
                         const unsigned char *sig, apr_size_t sig_len)
{
    if (k->alg <= PS_JWT_HS512) {
        return ps_jwt_hmac(k, data, len, sig, sig_len);
    }
    return ps_jwt_pk_verify(p, k, data, len, sig, sig_len);
}

/* ---- claims -------------------------------------------------------------- */

/* A list of grants (array of strings) into *out.  0, or -1 malformed. */
static int ps_jwt_grant_list(apr_pool_t *p, const char *js,
                             const ps_json_tok_t *t, int arr,
                             apr_array_header_t *out)
{
    int i, k = arr + 1;

    if (t[arr].type != PS_JSON_ARRAY) {
        return -1;
    }
    for (i = 0; i < t[arr].size; i++, k = t[k].next) {
        apr_size_t cap = t[k].end - t[k].start + 1;
        char *buf = apr_palloc(p, cap);
        long n = ps_json_str(js, &t[k], buf, cap);
        ps_jwt_grant_t *g;
        if (n < 0) {
            return -1;
        }
        g = apr_array_push(out);
        g->id = buf;
        g->len = (apr_size_t)n;
        g->prefix = n > 0 && buf[n - 1] == '*';
        if (g->prefix) {
            g->len--;
        }
    }
    return 0;
}

/* "name": {"subscribe": [...], "publish": [...]}.  0, or -1 malformed. */
static int ps_jwt_grants(apr_pool_t *p, const char *js, const ps_json_tok_t *t,
                         const char *name, ps_jwt_claims_t *out)
{
    int g = ps_json_get(js, t, 0, name), v;

    if (g == -1) {
        return 0;
    }
    if (g < 0 || t[g].type != PS_JSON_OBJECT) {
        return -1;
    }
    if ((v = ps_json_get(js, t, g, "subscribe")) == -2
        || (v >= 0 && ps_jwt_grant_list(p, js, t, v, out->subscribe) < 0)) {
        return -1;
    }
    if ((v = ps_json_get(js, t, g, "publish")) == -2
        || (v >= 0 && ps_jwt_grant_list(p, js, t, v, out->publish) < 0)) {
        return -1;
    }
    return 0;
}

/* A NumericDate claim: 0 absent, 1 read, -1 malformed. */
static int ps_jwt_date(const char *js, const ps_json_tok_t *t,
                       const char *name, apr_int64_t *out)
{
    int v = ps_json_get(js, t, 0, name);

    if (v == -1) {
        return 0;
    }
    if (v < 0 || ps_json_int(js, &t[v], out) < 0) {
        return -1;
    }
    return 1;
}

static int ps_jwt_claims(apr_pool_t *p, const ps_jwt_conf_t *c, const char *js,
                         apr_size_t len, apr_int64_t now, ps_jwt_claims_t *out)
{
    ps_json_tok_t *t = apr_palloc(p, PS_JWT_CLAIM_TOKS * sizeof(*t));
    apr_int64_t exp = 0, nbf = 0;
    int n = ps_json_parse(js, len, t, PS_JWT_CLAIM_TOKS, PS_JWT_DEPTH);
    int has_exp, has_nbf, v;

    if (n < 1 || t[0].type != PS_JSON_OBJECT) {
        return PS_JWT_E_MALFORMED;
    }
    if ((has_exp = ps_jwt_date(js, t, "exp", &exp)) < 0
        || (has_nbf = ps_jwt_date(js, t, "nbf", &nbf)) < 0) {
        return PS_JWT_E_MALFORMED;
    }
    if (has_exp && now >= exp + c->leeway) {
        return PS_JWT_E_EXPIRED;
    }
    if (has_nbf && now + c->leeway < nbf) {
        return PS_JWT_E_NOT_YET;
    }
    if (c->audience) {
        apr_size_t alen = strlen(c->audience);
        int ok = 0, i, k;
        v = ps_json_get(js, t, 0, "aud");
        if (v >= 0 && t[v].type == PS_JSON_STRING) {
            ok = ps_json_str_eq(js, &t[v], c->audience, alen);
        }
        else if (v >= 0 && t[v].type == PS_JSON_ARRAY) {
            for (i = 0, k = v + 1; i < t[v].size && !ok; i++, k = t[k].next) {
                ok = ps_json_str_eq(js, &t[k], c->audience, alen);
            }
        }
        if (!ok) {
            return PS_JWT_E_AUDIENCE;
        }
    }
    if (c->issuer) {
        v = ps_json_get(js, t, 0, "iss");
        if (v < 0 || !ps_json_str_eq(js, &t[v], c->issuer,
                                     strlen(c->issuer))) {
            return PS_JWT_E_ISSUER;
        }
    }
    out->exp = has_exp ? exp + c->leeway : 0;
    out->subscribe = apr_array_make(p, 4, sizeof(ps_jwt_grant_t));
    out->publish = apr_array_make(p, 4, sizeof(ps_jwt_grant_t));
    if (ps_jwt_grants(p, js, t, "pushstream", out) < 0
        || (c->mercure && ps_jwt_grants(p, js, t, "mercure", out) < 0)) {
        return PS_JWT_E_MALFORMED;
    }
    return PS_JWT_OK;
}

/* ---- the token ----------------------------------------------------------- */

int ps_jwt_verify(apr_pool_t *p, const ps_jwt_conf_t *c, const char *tok,
                  apr_size_t len, apr_int64_t now, ps_jwt_claims_t *out)
{
    const char *d1, *d2;
    unsigned char *hdr, *sig, *body;
    apr_size_t hlen = 0, slen = 0, blen = 0;
    ps_json_tok_t t[PS_JWT_HDR_TOKS];
    char name[16], kid[256];
    int n, v, alg, i, have_kid = 0, tried = 0;
    const ps_jwt_key_t *keys;

    memset(out, 0, sizeof(*out));
    if (!c || !c->keys || !tok || len == 0 || len > PS_JWT_MAX_TOKEN
        || !(d1 = memchr(tok, '.', len))
        || !(d2 = memchr(d1 + 1, '.', (apr_size_t)(tok + len - d1 - 1)))
        || memchr(d2 + 1, '.', (apr_size_t)(tok + len - d2 - 1))) {
        return PS_JWT_E_MALFORMED;
    }
    hdr = ps_jwt_part(p, tok, (apr_size_t)(d1 - tok), &hlen);
    sig = ps_jwt_part(p, d2 + 1, (apr_size_t)(tok + len - d2 - 1), &slen);
    if (!hdr || !sig || d2 == d1 + 1) {
        return PS_JWT_E_MALFORMED;
    }
    n = ps_json_parse((const char *)hdr, hlen, t, PS_JWT_HDR_TOKS, 2);
    if (n < 1 || t[0].type != PS_JSON_OBJECT
        || (v = ps_json_get((const char *)hdr, t, 0, "alg")) < 0
        || ps_json_str((const char *)hdr, &t[v], name, sizeof(name)) < 0
        || ps_json_get((const char *)hdr, t, 0, "crit") != -1) {
        return PS_JWT_E_MALFORMED;     /* no extension is understood */
    }
    if ((v = ps_json_get((const char *)hdr, t, 0, "kid")) >= 0) {
        if (ps_json_str((const char *)hdr, &t[v], kid, sizeof(kid)) < 0) {
            return PS_JWT_E_MALFORMED;
        }
        have_kid = 1;
    }
    else if (v == -2) {
        return PS_JWT_E_MALFORMED;
    }
    alg = ps_jwt_alg_parse(name);
    keys = (const ps_jwt_key_t *)c->keys->elts;
    for (i = 0; alg && i < c->keys->nelts && !tried; i++) {
        tried = keys[i].alg == alg;
    }
    if (!tried) {
        return PS_JWT_E_ALG;           /* "none", or no key of that alg */
    }
    tried = 0;
    for (i = 0; i < c->keys->nelts; i++) {
        const ps_jwt_key_t *k = &keys[i];
        if (have_kid && (!k->kid || strcmp(k->kid, kid))) {
            continue;
        }
        if (k->alg != alg) {
            if (have_kid) {
                return PS_JWT_E_ALG;   /* that key has another algorithm */
            }
            continue;
        }
        tried = 1;
        if (ps_jwt_sig_ok(p, k, tok, (apr_size_t)(d2 - tok), sig, slen)) {
            break;
        }
    }
    if (!tried) {
        return PS_JWT_E_KID;
    }
    if (i == c->keys->nelts) {
        return PS_JWT_E_SIGNATURE;
    }
    body = ps_jwt_part(p, d1 + 1, (apr_size_t)(d2 - d1 - 1), &blen);
    if (!body) {
        return PS_JWT_E_MALFORMED;
    }
    return ps_jwt_claims(p, c, (const char *)body, blen, now, out);
}

/* ---- grants -------------------------------------------------------------- */

int ps_jwt_granted(const apr_array_header_t *grants, const char *id,
                   apr_size_t len)
{
    int i;

    for (i = 0; grants && i < grants->nelts; i++) {
        const ps_jwt_grant_t *g = &APR_ARRAY_IDX(grants, i, ps_jwt_grant_t);
        if (g->prefix ? len >= g->len && !memcmp(id, g->id, g->len)
                      : len == g->len && !memcmp(id, g->id, len)) {
            return 1;
        }
    }
    return 0;
}

int ps_jwt_granted_prefix(const apr_array_header_t *grants,
                          const char *prefix, apr_size_t len)
{
    int i;

    for (i = 0; grants && i < grants->nelts; i++) {
        const ps_jwt_grant_t *g = &APR_ARRAY_IDX(grants, i, ps_jwt_grant_t);
        if (g->prefix && len >= g->len && !memcmp(prefix, g->id, g->len)) {
            return 1;
        }
    }
    return 0;
}

/* ---- where tokens come from ---------------------------------------------- */

const char *ps_jwt_from_bearer(const char *h, apr_size_t *len)
{
    const char *t, *e;

    if (!h) {
        return NULL;
    }
    while (*h == ' ' || *h == '\t') {
        h++;
    }
    if (strncasecmp(h, "Bearer", 6) || (h[6] != ' ' && h[6] != '\t')) {
        return NULL;
    }
    for (t = h + 6; *t == ' ' || *t == '\t'; t++) {
    }
    for (e = t; *e && *e != ' ' && *e != '\t'; e++) {
    }
    if (e == t) {
        return NULL;
    }
    *len = (apr_size_t)(e - t);
    return t;
}

const char *ps_jwt_from_cookie(const char *cookie, const char *name,
                               apr_size_t *len)
{
    apr_size_t nlen = name ? strlen(name) : 0;
    const char *s = cookie;

    if (!s || !nlen) {
        return NULL;
    }
    while (*s) {
        const char *e;
        while (*s == ' ' || *s == '\t' || *s == ';' || *s == ',') {
            s++;
        }
        for (e = s; *e && *e != ';' && *e != ','; e++) {
        }
        if ((apr_size_t)(e - s) > nlen && !strncmp(s, name, nlen)
            && s[nlen] == '=') {
            const char *v = s + nlen + 1, *ve = e;
            while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t')) {
                ve--;
            }
            if (ve - v >= 2 && *v == '"' && ve[-1] == '"') {
                v++;
                ve--;
            }
            *len = (apr_size_t)(ve - v);
            return v;
        }
        s = e;
    }
    return NULL;
}

ps_jwt_conf_t *ps_jwt_conf_merge(apr_pool_t *p, ps_jwt_conf_t *base,
                                 ps_jwt_conf_t *add)
{
    ps_jwt_conf_t *c;

    if (!add) {
        return base;
    }
    if (!base) {
        return add;
    }
    c = apr_pmemdup(p, add, sizeof(*c));
    if (!add->keys->nelts) {
        c->keys = base->keys;
    }
    if (!(add->set & PS_JWT_SET_LEEWAY)) {
        c->leeway = base->leeway;
    }
    if (!(add->set & PS_JWT_SET_CLAIMS)) {
        c->mercure = base->mercure;
    }
    c->audience = add->audience ? add->audience : base->audience;
    c->issuer = add->issuer ? add->issuer : base->issuer;
    c->set = add->set | base->set;
    return c;
}
