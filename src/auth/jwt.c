/* jwt — see jwt.h. Verification runs in a fixed order so that unauthenticated input gets as
 * little attention as possible: length, shape and alphabet; the header (to refuse other
 * algorithms by name); the HMAC; and only then the claims. Decoding uses one stack buffer
 * (max_len is capped at JWT_LEN_MAX for that); jansson allocates the parsed trees, which are
 * freed before returning. */
#include "auth/jwt.h"

#include "core/b64.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define JWT_MAC_LEN 32
#define JWT_SIG_CHARS 43 /* unpadded base64url of 32 bytes */
#define JWT_BUF_LEN (JWT_LEN_MAX / 4 * 3 + 3)
#define JWT_DEFAULT_HEADER "{\"alg\":\"HS256\",\"typ\":\"JWT\"}"

/* The three parts of a compact token, without the dots. */
struct jwt_parts {
    const char *hdr, *pay, *sig;
    size_t hdr_len, pay_len, sig_len;
};

/* The time claims of a token, read before they are checked. */
struct jwt_times {
    int64_t exp, nbf, iat;
    bool has_exp, has_nbf, has_iat;
};

const char *jwt_err_name(enum jwt_err e)
{
    switch (e) {
    case JWT_OK:
        return "ok";
    case JWT_MALFORMED:
        return "malformed";
    case JWT_TOO_LONG:
        return "too_long";
    case JWT_BAD_ALG:
        return "bad_alg";
    case JWT_BAD_HEADER:
        return "bad_header";
    case JWT_BAD_SIGNATURE:
        return "bad_signature";
    case JWT_EXPIRED:
        return "expired";
    case JWT_NOT_YET_VALID:
        return "not_yet_valid";
    case JWT_ISSUED_IN_FUTURE:
        return "issued_in_future";
    case JWT_BAD_CLAIMS:
        return "bad_claims";
    case JWT_BAD_AUDIENCE:
        return "bad_audience";
    case JWT_BAD_ISSUER:
        return "bad_issuer";
    case JWT_NO_MEMORY:
        return "no_memory";
    }
    return "unknown";
}

/* --- base64url (RFC 4648 section 5, no padding) ------------------------------------------ */

size_t jwt_b64url_encode(const void *in, size_t n, char *out, size_t cap)
{
    if (n > (SIZE_MAX - 4) / 4 * 3 || b64url_len(n) + 1 > cap)
        return 0;
    size_t len = b64url_encode(in, n, out);
    out[len] = '\0';
    return len;
}

/* Strict decoding (core/b64): only the alphabet, no padding, a length that a whole number of
 * bytes can have, and zero unused bits in the last character (so every byte string has exactly
 * one accepted text and a token cannot be varied without changing its bytes). 0 or -1. */
static int jwt_b64_decode(const char *s, size_t n, uint8_t *out, size_t cap, size_t *out_len)
{
    long d = b64_decode(s, n, out, cap, B64_URL | B64_NO_PADDING);
    if (d < 0)
        return -1;
    *out_len = (size_t)d;
    return 0;
}

/* --- configuration ----------------------------------------------------------------------- */

void jwt_config_default(struct jwt_config *c)
{
    memset(c, 0, sizeof *c);
    c->leeway_s = JWT_LEEWAY_DEFAULT;
    c->require_exp = true;
    c->max_len = JWT_LEN_DEFAULT;
}


/* Copies an optional name (audience, issuer) into a verifier field. */
static int jwt_copy_name(char *dst, const char *src, const char *what, char *err, size_t cap)
{
    size_t n = src ? strlen(src) : 0;
    if (n > JWT_NAME_MAX)
        return auth_errf(err, cap, "%s is longer than %d bytes", what, JWT_NAME_MAX);
    if (n > 0)
        memcpy(dst, src, n);
    dst[n] = '\0';
    return 0;
}

int jwt_verifier_init(struct jwt_verifier *v, const struct jwt_config *c, char *err, size_t err_cap)
{
    memset(v, 0, sizeof *v);
    if (err_cap > 0)
        err[0] = '\0';
    size_t n = c->secret ? c->secret_len : 0;
    if (n < JWT_SECRET_MIN || n > JWT_SECRET_MAX)
        return auth_errf(err, err_cap, "JWT_SECRET must be %d to %d bytes (it has %zu)",
                           JWT_SECRET_MIN, JWT_SECRET_MAX, n);
    if (c->leeway_s < 0 || c->leeway_s > JWT_LEEWAY_MAX)
        return auth_errf(err, err_cap, "JWT_LEEWAY_S must be 0 to %d", JWT_LEEWAY_MAX);
    if (c->max_len < JWT_LEN_MIN || c->max_len > JWT_LEN_MAX)
        return auth_errf(err, err_cap, "JWT_MAX_BYTES must be %d to %d", JWT_LEN_MIN,
                           JWT_LEN_MAX);
    if (jwt_copy_name(v->audience, c->audience, "JWT_AUDIENCE", err, err_cap) < 0 ||
        jwt_copy_name(v->issuer, c->issuer, "JWT_ISSUER", err, err_cap) < 0)
        return -1;
    br_hmac_key_init(&v->key, &br_sha256_vtable, c->secret, n);
    v->leeway_s = c->leeway_s;
    v->require_exp = c->require_exp;
    v->max_len = c->max_len;
    return 0;
}

void jwt_verifier_clear(struct jwt_verifier *v)
{
    explicit_bzero(v, sizeof *v);
}

/* --- minting ----------------------------------------------------------------------------- */

static void jwt_mac(const br_hmac_key_context *key, const char *data, size_t n,
                    uint8_t mac[JWT_MAC_LEN])
{
    br_hmac_context ctx;
    br_hmac_init(&ctx, key, 0);
    br_hmac_update(&ctx, data, n);
    br_hmac_out(&ctx, mac);
}

size_t jwt_sign_hs256(const void *secret, size_t secret_len, const char *header_json,
                      const char *claims_json, char *out, size_t cap)
{
    const char *hdr = header_json ? header_json : JWT_DEFAULT_HEADER;
    size_t hl = strlen(hdr), cl = strlen(claims_json);
    if (hl > JWT_LEN_MAX * 4 || cl > JWT_LEN_MAX * 4) /* far beyond anything verifiable */
        return 0;
    size_t need = b64url_len(hl) + 1 + b64url_len(cl) + 1 + JWT_SIG_CHARS + 1;
    if (need > cap)
        return 0;
    size_t n = b64url_encode((const uint8_t *)hdr, hl, out);
    out[n++] = '.';
    n += b64url_encode((const uint8_t *)claims_json, cl, out + n);
    br_hmac_key_context key;
    uint8_t mac[JWT_MAC_LEN];
    br_hmac_key_init(&key, &br_sha256_vtable, secret, secret_len);
    jwt_mac(&key, out, n, mac);
    explicit_bzero(&key, sizeof key);
    out[n++] = '.';
    n += b64url_encode(mac, JWT_MAC_LEN, out + n);
    out[n] = '\0';
    return n;
}

/* --- verification ------------------------------------------------------------------------ */

/* Exactly two dots, everything else base64url, header and payload not empty. */
static int jwt_split(const char *t, size_t len, struct jwt_parts *p)
{
    size_t dot[2], nd = 0;
    for (size_t i = 0; i < len; i++) {
        if (t[i] == '.') {
            if (nd == 2)
                return -1;
            dot[nd++] = i;
        } else if (!((t[i] >= 'A' && t[i] <= 'Z') || (t[i] >= 'a' && t[i] <= 'z') ||
                     (t[i] >= '0' && t[i] <= '9') || t[i] == '-' || t[i] == '_')) {
            return -1; /* not base64url */
        }
    }
    if (nd != 2 || dot[0] == 0 || dot[1] == dot[0] + 1)
        return -1;
    p->hdr = t;
    p->hdr_len = dot[0];
    p->pay = t + dot[0] + 1;
    p->pay_len = dot[1] - dot[0] - 1;
    p->sig = t + dot[1] + 1;
    p->sig_len = len - dot[1] - 1;
    return 0;
}

/* Nesting of JSON text, counted outside strings; false beyond max. Run before jansson, which
 * recurses and would otherwise allow 2048 levels. */
static bool jwt_depth_ok(const uint8_t *s, size_t n, size_t max)
{
    size_t depth = 0;
    bool in_str = false;
    for (size_t i = 0; i < n; i++) {
        uint8_t c = s[i];
        if (in_str) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_str = false;
        } else if (c == '"') {
            in_str = true;
        } else if (c == '{' || c == '[') {
            if (++depth > max)
                return false;
        } else if ((c == '}' || c == ']') && depth > 0) {
            depth--;
        }
    }
    return true;
}

/* Decodes one part into buf and parses it as a JSON object. */
static enum jwt_err jwt_decode_object(const char *s, size_t n, uint8_t *buf, json_t **out)
{
    size_t len;
    *out = NULL;
    if (jwt_b64_decode(s, n, buf, JWT_BUF_LEN, &len) < 0 || !jwt_depth_ok(buf, len, JWT_DEPTH_MAX))
        return JWT_MALFORMED;
    json_error_t e;
    json_t *v = json_loadb((const char *)buf, len, JSON_REJECT_DUPLICATES, &e);
    if (!v)
        return json_error_code(&e) == json_error_out_of_memory ? JWT_NO_MEMORY : JWT_MALFORMED;
    if (!json_is_object(v)) {
        json_decref(v);
        return JWT_MALFORMED;
    }
    *out = v;
    return JWT_OK;
}

/* A JSON string equal to want, embedded NULs and length included. */
static bool jwt_str_is(const json_t *s, const char *want)
{
    size_t n = strlen(want);
    return json_is_string(s) && json_string_length(s) == n &&
           memcmp(json_string_value(s), want, n) == 0;
}

static enum jwt_err jwt_check_header(const json_t *h)
{
    if (!jwt_str_is(json_object_get(h, "alg"), "HS256"))
        return JWT_BAD_ALG;
    if (json_object_get(h, "crit"))
        return JWT_BAD_HEADER;
    const json_t *typ = json_object_get(h, "typ");
    if (typ && !(json_is_string(typ) && json_string_length(typ) == 3 &&
                 strncasecmp(json_string_value(typ), "JWT", 3) == 0))
        return JWT_BAD_HEADER;
    return JWT_OK;
}

static enum jwt_err jwt_check_signature(const struct jwt_verifier *v, const char *token,
                                        const struct jwt_parts *p)
{
    uint8_t sig[JWT_MAC_LEN + 2], mac[JWT_MAC_LEN];
    size_t len;
    if (p->sig_len != JWT_SIG_CHARS)
        return JWT_BAD_SIGNATURE;
    if (jwt_b64_decode(p->sig, p->sig_len, sig, sizeof sig, &len) < 0)
        return JWT_MALFORMED;
    jwt_mac(&v->key, token, (size_t)(p->sig - 1 - token), mac);
    return auth_ct_equal(mac, sig, JWT_MAC_LEN) ? JWT_OK : JWT_BAD_SIGNATURE;
}

/* A NumericDate claim: absent, or a number 0..JWT_TIME_MAX. A fraction is rounded down (exp)
 * or up (nbf, iat): either way toward a shorter validity. */
static enum jwt_err jwt_time(const json_t *claims, const char *name, bool round_up, int64_t *out,
                             bool *present)
{
    const json_t *t = json_object_get(claims, name);
    *present = t != NULL;
    *out = 0;
    if (!t)
        return JWT_OK;
    if (json_is_integer(t)) {
        json_int_t i = json_integer_value(t);
        if (i < 0 || i > JWT_TIME_MAX)
            return JWT_BAD_CLAIMS;
        *out = i;
        return JWT_OK;
    }
    double d = json_real_value(t); /* 0.0 for anything but a real */
    if (!json_is_real(t) || !(d >= 0.0 && d <= (double)JWT_TIME_MAX))
        return JWT_BAD_CLAIMS;
    int64_t i = (int64_t)d;
    if (round_up && (double)i < d)
        i++;
    *out = i;
    return JWT_OK;
}

/* Types and presence: sub, role, the times, iss. */
static enum jwt_err jwt_read_claims(const struct jwt_verifier *v, const json_t *cl,
                                    struct jwt_claims *out, struct jwt_times *t)
{
    const json_t *sub = json_object_get(cl, "sub");
    if (!json_is_string(sub) || !auth_tenant_valid(json_string_value(sub), json_string_length(sub)))
        return JWT_BAD_CLAIMS;
    memcpy(out->sub, json_string_value(sub), json_string_length(sub));
    out->sub[json_string_length(sub)] = '\0';
    const json_t *role = json_object_get(cl, "role");
    out->role = AUTH_USER;
    if (role &&
        (!json_is_string(role) ||
         auth_role_parse(json_string_value(role), json_string_length(role), &out->role) < 0))
        return JWT_BAD_CLAIMS;
    if (jwt_time(cl, "exp", false, &t->exp, &t->has_exp) != JWT_OK ||
        jwt_time(cl, "nbf", true, &t->nbf, &t->has_nbf) != JWT_OK ||
        jwt_time(cl, "iat", true, &t->iat, &t->has_iat) != JWT_OK)
        return JWT_BAD_CLAIMS;
    if (v->require_exp && !t->has_exp)
        return JWT_BAD_CLAIMS;
    const json_t *iss = json_object_get(cl, "iss");
    if (iss && !json_is_string(iss))
        return JWT_BAD_CLAIMS;
    out->exp = t->exp;
    return JWT_OK;
}

/* Times are at most JWT_TIME_MAX and the leeway at most JWT_LEEWAY_MAX, so nothing overflows
 * whatever now is. */
static enum jwt_err jwt_check_times(const struct jwt_verifier *v, const struct jwt_times *t,
                                    int64_t now)
{
    if (t->has_exp && now > t->exp + v->leeway_s)
        return JWT_EXPIRED;
    if (t->has_nbf && t->nbf - v->leeway_s > now)
        return JWT_NOT_YET_VALID;
    if (t->has_iat && t->iat - v->leeway_s > now)
        return JWT_ISSUED_IN_FUTURE;
    return JWT_OK;
}

static enum jwt_err jwt_check_audience(const struct jwt_verifier *v, const json_t *cl)
{
    const json_t *aud = json_object_get(cl, "aud");
    if (!aud)
        return v->audience[0] ? JWT_BAD_AUDIENCE : JWT_OK;
    if (!v->audience[0])
        return JWT_BAD_AUDIENCE; /* meant for some other service (RFC 7519 4.1.3) */
    if (json_is_string(aud))
        return jwt_str_is(aud, v->audience) ? JWT_OK : JWT_BAD_AUDIENCE;
    if (!json_is_array(aud))
        return JWT_BAD_AUDIENCE;
    bool hit = false;
    for (size_t i = 0; i < json_array_size(aud); i++) {
        const json_t *a = json_array_get(aud, i);
        if (!json_is_string(a))
            return JWT_BAD_AUDIENCE;
        hit = hit || jwt_str_is(a, v->audience);
    }
    return hit ? JWT_OK : JWT_BAD_AUDIENCE;
}

static enum jwt_err jwt_check_claims(const struct jwt_verifier *v, const json_t *cl, int64_t now,
                                     struct jwt_claims *out)
{
    struct jwt_times t;
    enum jwt_err e = jwt_read_claims(v, cl, out, &t);
    if (e == JWT_OK)
        e = jwt_check_times(v, &t, now);
    if (e == JWT_OK && v->issuer[0] && !jwt_str_is(json_object_get(cl, "iss"), v->issuer))
        e = JWT_BAD_ISSUER;
    if (e == JWT_OK)
        e = jwt_check_audience(v, cl);
    return e;
}

enum jwt_err jwt_verify(const struct jwt_verifier *v, const char *token, size_t len, int64_t now_s,
                        struct jwt_claims *out)
{
    memset(out, 0, sizeof *out);
    if (len == 0)
        return JWT_MALFORMED;
    if (len > v->max_len || len > JWT_LEN_MAX)
        return JWT_TOO_LONG;
    struct jwt_parts p;
    if (jwt_split(token, len, &p) < 0)
        return JWT_MALFORMED;
    uint8_t buf[JWT_BUF_LEN];
    json_t *hdr;
    enum jwt_err e = jwt_decode_object(p.hdr, p.hdr_len, buf, &hdr);
    if (e == JWT_OK)
        e = jwt_check_header(hdr);
    json_decref(hdr);
    if (e == JWT_OK)
        e = jwt_check_signature(v, token, &p);
    if (e != JWT_OK)
        return e;
    json_t *claims;
    struct jwt_claims c;
    memset(&c, 0, sizeof c);
    e = jwt_decode_object(p.pay, p.pay_len, buf, &claims);
    if (e == JWT_OK)
        e = jwt_check_claims(v, claims, now_s, &c);
    json_decref(claims);
    if (e == JWT_OK)
        *out = c;
    return e;
}
