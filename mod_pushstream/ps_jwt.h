/* ps_jwt.h - signed channel grants: compact JWS tokens (RFC 7515/7519)
 * checked with OpenSSL 3.  Core: no httpd types.
 *
 * The algorithm comes from the configured key, never from the token: a
 * token whose "alg" no configured key has ("none", HS256 against an RSA
 * key, ...) is refused before any signature check.  Claims: exp / nbf
 * (with leeway), optional aud / iss, and the grants
 *   "pushstream": {"subscribe": ["id", "prefix*"], "publish": [...]}
 * or, with the Mercure claims on, "mercure": {"subscribe": [...], ...}. */
#ifndef PS_JWT_H
#define PS_JWT_H

#include <apr_pools.h>
#include <apr_tables.h>

typedef enum {
    PS_JWT_NONE = 0,
    PS_JWT_HS256,
    PS_JWT_HS384,
    PS_JWT_HS512,
    PS_JWT_RS256,
    PS_JWT_ES256,
    PS_JWT_EDDSA
} ps_jwt_alg_e;

/* Longest token accepted (bytes of the compact form). */
#define PS_JWT_MAX_TOKEN 16384

typedef struct ps_jwt_key_t {
    int alg;                       /* ps_jwt_alg_e */
    const char *kid;               /* NULL = none */
    const unsigned char *secret;   /* HS*: the secret */
    apr_size_t secret_len;
    void *pkey;                    /* RS/ES/EdDSA: EVP_PKEY * */
} ps_jwt_key_t;

typedef struct ps_jwt_conf_t {
    apr_array_header_t *keys;      /* ps_jwt_key_t */
    apr_int64_t leeway;            /* seconds */
    const char *audience;          /* NULL = not checked */
    const char *issuer;            /* NULL = not checked */
    int mercure;                   /* also read the "mercure" claim */
    int set;                       /* config side: PS_JWT_SET_* given here */
} ps_jwt_conf_t;

#define PS_JWT_SET_LEEWAY  1
#define PS_JWT_SET_CLAIMS  2

/* Config merge: add over base, each field from where it was set (NULL
 * when neither has anything). */
ps_jwt_conf_t *ps_jwt_conf_merge(apr_pool_t *p, ps_jwt_conf_t *base,
                                 ps_jwt_conf_t *add);

/* One grant: exact id, or a prefix when it ended with '*'. */
typedef struct ps_jwt_grant_t {
    const char *id;
    apr_size_t len;
    int prefix;
} ps_jwt_grant_t;

typedef struct ps_jwt_claims_t {
    apr_int64_t exp;               /* 0 = none */
    apr_array_header_t *subscribe; /* ps_jwt_grant_t */
    apr_array_header_t *publish;
} ps_jwt_claims_t;

typedef enum {
    PS_JWT_OK = 0,
    PS_JWT_E_MALFORMED,            /* not a JWS, bad base64url / JSON ... */
    PS_JWT_E_ALG,                  /* alg of no configured key (none too) */
    PS_JWT_E_KID,                  /* kid of no configured key */
    PS_JWT_E_SIGNATURE,
    PS_JWT_E_EXPIRED,
    PS_JWT_E_NOT_YET,              /* nbf in the future */
    PS_JWT_E_AUDIENCE,
    PS_JWT_E_ISSUER
} ps_jwt_err_e;

/* "malformed token", "bad signature" ... */
const char *ps_jwt_strerror(int err);

/* "HS256" ... -> ps_jwt_alg_e (case-sensitive, as in JOSE); 0 = unknown. */
int ps_jwt_alg_parse(const char *name);
const char *ps_jwt_alg_name(int alg);

/* Fill key for alg from data[0..len): the secret for HS* (one trailing
 * newline dropped), a PEM public key otherwise (its type must suit the
 * algorithm: RSA of 2048 bits or more, EC P-256, Ed25519).  The key is
 * freed with p.  NULL, or the error text. */
const char *ps_jwt_key_load(apr_pool_t *p, int alg, const char *kid,
                            const char *data, apr_size_t len,
                            ps_jwt_key_t *key);

/* Base64url without padding (RFC 7515 2) into out (room for len*3/4+1).
 * Returns the decoded length, -1 on a byte outside the alphabet, a length
 * of 1 mod 4, or non-zero unused bits (one canonical form only). */
long ps_jwt_b64url_decode(const char *in, apr_size_t len, unsigned char *out);

/* Verify tok[0..len) at time now (seconds): the key by kid/alg, the
 * signature, then the claims.  PS_JWT_OK with *out filled (from p), or a
 * ps_jwt_err_e. */
int ps_jwt_verify(apr_pool_t *p, const ps_jwt_conf_t *c, const char *tok,
                  apr_size_t len, apr_int64_t now, ps_jwt_claims_t *out);

/* 1 when the grants cover channel id[0..len). */
int ps_jwt_granted(const apr_array_header_t *grants, const char *id,
                   apr_size_t len);

/* 1 when the grants cover every id starting with prefix[0..len) (a grant
 * "q*" with q a prefix of it; "*" covers all). */
int ps_jwt_granted_prefix(const apr_array_header_t *grants,
                          const char *prefix, apr_size_t len);

/* Token sources.  "Bearer <token>" (scheme case-insensitive): the token,
 * *len its length; NULL otherwise. */
const char *ps_jwt_from_bearer(const char *authorization, apr_size_t *len);

/* The value of cookie name in a Cookie header ("a=1; b=2"), NULL when
 * absent; *len its length (the value is not copied). */
const char *ps_jwt_from_cookie(const char *cookie, const char *name,
                               apr_size_t *len);

#endif
