/* jwt — verification (and, for tests, the CLI and benchmarks, minting) of HS256 JSON Web
 * Tokens (RFC 7519, JWS compact serialization RFC 7515) with one shared secret.
 *
 * Strict by design:
 *  - exactly three parts of unpadded base64url ([A-Za-z0-9_-]; '=', '+', '/', whitespace are
 *    errors), canonical (unused trailing bits zero), header and payload not empty;
 *  - the header is a JSON object whose `alg` is exactly "HS256": whatever algorithm a token
 *    names, only HMAC-SHA-256 with the configured secret is ever computed, so `none`, RS256
 *    with the secret as a "public key" and the like cannot be smuggled in; `typ`, if present,
 *    is "JWT" (any case); `crit` is refused (no extension is understood);
 *  - the signature is checked before the payload is parsed, in constant time;
 *  - JSON is parsed with duplicate keys refused (a second `alg` or `sub` cannot shadow the
 *    first), nesting at most JWT_DEPTH_MAX, the token at most max_len bytes.
 * Claims: `sub` (required) is the tenant: 1 to 128 characters of [A-Za-z0-9._:@-]. `role` is
 * "admin" or "user" (absent: user). `exp` (required unless require_exp is false), `nbf` and
 * `iat` are numbers of seconds, 0 to JWT_TIME_MAX; a fraction counts against the token (exp
 * rounds down, nbf and iat up). With leeway L and time now:
 *   expired if now > exp + L;  not yet valid if nbf > now + L;  issued in future if iat > now + L.
 * `iss` must equal the configured issuer when one is set (and be a string when present). `aud`
 * (a string or an array of strings) must contain the configured audience when one is set and,
 * as RFC 7519 4.1.3 requires, a token carrying `aud` is refused when no audience is set.
 *
 * A verifier is immutable after jwt_verifier_init and may be shared read-only by threads. */
#ifndef COMFYGATE_JWT_H
#define COMFYGATE_JWT_H

#include <bearssl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth/auth_common.h"

#define JWT_SECRET_MIN 32 /* bytes: HS256 wants a key as long as its output */
#define JWT_SECRET_MAX 512
#define JWT_LEN_DEFAULT 8192 /* bytes of a token */
#define JWT_LEN_MIN 64
#define JWT_LEN_MAX 16384     /* upper bound of max_len: decoding uses stack buffers */
#define JWT_LEEWAY_DEFAULT 30 /* seconds */
#define JWT_LEEWAY_MAX 3600
#define JWT_DEPTH_MAX 16                   /* JSON nesting of header and claims */
#define JWT_NAME_MAX 255                   /* bytes of the configured audience or issuer */
#define JWT_TIME_MAX INT64_C(253402300799) /* 9999-12-31T23:59:59Z */

enum jwt_err {
    JWT_OK = 0,
    JWT_MALFORMED,        /* not three base64url parts of JSON objects; duplicate keys; depth */
    JWT_TOO_LONG,         /* longer than max_len */
    JWT_BAD_ALG,          /* `alg` missing, not a string, or not exactly "HS256" */
    JWT_BAD_HEADER,       /* `typ` other than JWT, or `crit` present */
    JWT_BAD_SIGNATURE,    /* signature not 32 bytes or not the HMAC of header.payload */
    JWT_EXPIRED,          /* now > exp + leeway */
    JWT_NOT_YET_VALID,    /* nbf > now + leeway */
    JWT_ISSUED_IN_FUTURE, /* iat > now + leeway */
    JWT_BAD_CLAIMS,       /* sub missing or invalid, role unknown, a time claim not a number in
                             range, exp missing while required, iss not a string */
    JWT_BAD_AUDIENCE,     /* aud does not name the configured audience (or is present when none
                             is configured) */
    JWT_BAD_ISSUER,       /* iss is not the configured issuer */
    JWT_NO_MEMORY,        /* the JSON parser ran out of memory */
};

struct jwt_config {
    const char *secret; /* JWT_SECRET_MIN to JWT_SECRET_MAX bytes, used as is */
    size_t secret_len;
    int64_t leeway_s;     /* 0 to JWT_LEEWAY_MAX */
    bool require_exp;     /* refuse tokens without exp */
    size_t max_len;       /* JWT_LEN_MIN to JWT_LEN_MAX */
    const char *audience; /* NULL or "": aud not expected */
    const char *issuer;   /* NULL or "": iss not checked */
};

struct jwt_verifier {
    br_hmac_key_context key; /* derived from the secret; the secret itself is not kept */
    int64_t leeway_s;
    bool require_exp;
    size_t max_len;
    char audience[JWT_NAME_MAX + 1];
    char issuer[JWT_NAME_MAX + 1];
};

/* What a valid token says. */
struct jwt_claims {
    char sub[AUTH_TENANT_MAX + 1];
    enum auth_role role;
    int64_t exp; /* 0 when the token has none (require_exp false) */
};

/* Defaults: leeway 30 s, require_exp, max_len 8192, no audience or issuer, no secret. */
void jwt_config_default(struct jwt_config *c);
/* Checks c and sets up v; on error returns -1 with a message in err (never the secret). */
int jwt_verifier_init(struct jwt_verifier *v, const struct jwt_config *c, char *err,
                      size_t err_cap);
/* Wipes the key material. */
void jwt_verifier_clear(struct jwt_verifier *v);
/* Verifies token[0..len) at time now_s (Unix seconds). On JWT_OK fills *out; otherwise *out is
 * zeroed. */
enum jwt_err jwt_verify(const struct jwt_verifier *v, const char *token, size_t len, int64_t now_s,
                        struct jwt_claims *out);
const char *jwt_err_name(enum jwt_err e);

/* Mints header.payload.signature from the given JSON texts, taken as they are (not checked, so
 * tests can sign anything); header_json NULL means {"alg":"HS256","typ":"JWT"}. Any secret
 * length is accepted here. Writes a terminated token to out and returns its length, or 0 if it
 * does not fit in cap. */
size_t jwt_sign_hs256(const void *secret, size_t secret_len, const char *header_json,
                      const char *claims_json, char *out, size_t cap);
/* Unpadded base64url of in[0..n) into out with a terminator; the length, or 0 if it does not
 * fit in cap (n == 0 also gives 0). */
size_t jwt_b64url_encode(const void *in, size_t n, char *out, size_t cap);

#endif
