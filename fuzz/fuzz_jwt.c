/* fuzz_jwt — libFuzzer harness for src/auth (jwt, auth_keys, auth). Each input is used five
 * ways, with a fixed secret, fixed API keys and a fixed time:
 *  1. as a token, through jwt_verify with two verifiers (defaults; audience, issuer, leeway 0);
 *  2. as an Authorization header value, through auth_check;
 *  3. split at the first NUL into X-API-Key and Authorization values, through auth_check;
 *  4. as the claims JSON of a token minted with the right secret, which must then never fail
 *     on its header or its signature, with both verifiers (so the fuzzer reaches the claims
 *     checks, which a forged token cannot);
 *  5. as the header JSON of such a token, which may only verify if it is a JSON object whose
 *     alg is exactly "HS256" and which has no crit (checked here with jansson directly).
 * Besides crashes and sanitizer reports it checks that results are in range, named, and
 * repeatable, that a refusal hands out nothing, and that an accepted principal has a valid
 * tenant and role. Seed corpus: fuzz/corpus/jwt/; dictionary: fuzz/jwt.dict. */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"
#include "auth/auth.h"
#include "auth/jwt.h"

#define SECRET "fuzz-secret-0123456789abcdef-0123456789"
#define KEYS "fuzzkey-0123456789abcdef:admin,fuzzkey-user-00000001:user:tenant-1"
#define NOW INT64_C(1700000000)
#define ROUNDTRIP_MAX 4096 /* input bytes signed in modes 4 and 5: the token stays < 8192 */
#define DEFAULT_CLAIMS "{\"sub\":\"t\",\"exp\":1700000600}"

static void init_verifier(struct jwt_verifier *v, bool strict)
{
    struct jwt_config c;
    char err[256];
    jwt_config_default(&c);
    c.secret = SECRET;
    c.secret_len = strlen(SECRET);
    if (strict) {
        c.audience = "comfygate";
        c.issuer = "https://idp.example";
        c.leeway_s = 0;
    }
    CHECK(jwt_verifier_init(v, &c, err, sizeof err) == 0);
}

static enum jwt_err verify(const struct jwt_verifier *v, const char *tok, size_t len)
{
    struct jwt_claims c;
    memset(&c, 0x5a, sizeof c);
    enum jwt_err e = jwt_verify(v, tok, len, NOW, &c);
    CHECK(e >= JWT_OK && e <= JWT_NO_MEMORY);
    CHECK(strcmp(jwt_err_name(e), "unknown") != 0);
    if (len > v->max_len)
        CHECK(e == JWT_TOO_LONG);
    if (e != JWT_OK) {
        CHECK(c.sub[0] == '\0' && c.exp == 0);
        return e;
    }
    CHECK(memchr(c.sub, '\0', sizeof c.sub) != NULL);
    CHECK(auth_tenant_valid(c.sub, strlen(c.sub)));
    CHECK(c.role == AUTH_USER || c.role == AUTH_ADMIN);
    CHECK(!v->require_exp || c.exp + v->leeway_s >= NOW);
    struct jwt_claims again;
    CHECK(jwt_verify(v, tok, len, NOW, &again) == JWT_OK);
    CHECK(memcmp(&again, &c, sizeof c) == 0);
    return e;
}

static void check_auth(const struct auth *a, const char *xkey, size_t xlen, const char *authz,
                       size_t alen)
{
    struct auth_principal p;
    enum auth_err e = auth_check(a, xkey, xlen, authz, alen, NOW, &p);
    CHECK(e >= AUTH_OK && e <= AUTH_MALFORMED_HEADER);
    CHECK(strcmp(auth_err_name(e), "unknown") != 0);
    CHECK((e == AUTH_INVALID_TOKEN) == (p.jwt_err != JWT_OK));
    if (e != AUTH_OK) {
        CHECK(p.tenant[0] == '\0' && p.id[0] == '\0' && p.kind == AUTH_KIND_NONE);
        CHECK(strcmp(auth_kind_name(p.kind), "none") == 0);
        return;
    }
    CHECK(memchr(p.tenant, '\0', sizeof p.tenant) && memchr(p.id, '\0', sizeof p.id));
    CHECK(auth_tenant_valid(p.tenant, strlen(p.tenant)));
    CHECK(p.role == AUTH_USER || p.role == AUTH_ADMIN);
    if (p.kind == AUTH_KIND_JWT) {
        CHECK(strncmp(p.id, "jwt:", 4) == 0 && strcmp(p.id + 4, p.tenant) == 0);
    } else {
        CHECK(p.kind == AUTH_KIND_API_KEY && strlen(p.id) == AUTH_KEY_ID_LEN);
        CHECK(p.expires_s == 0);
    }
}

/* The header's own verdict on alg and crit, from jansson alone. */
static bool header_acceptable(const char *hdr)
{
    json_t *h = json_loads(hdr, JSON_REJECT_DUPLICATES, NULL);
    const json_t *alg = json_object_get(h, "alg");
    bool ok = json_is_object(h) && json_is_string(alg) && json_string_length(alg) == 5 &&
              strcmp(json_string_value(alg), "HS256") == 0 && !json_object_get(h, "crit");
    json_decref(h);
    return ok;
}

static void roundtrip(const struct jwt_verifier *lax, const struct jwt_verifier *strict,
                      const uint8_t *data, size_t size)
{
    char text[ROUNDTRIP_MAX + 1], tok[JWT_LEN_DEFAULT + 1];
    const uint8_t *nul = memchr(data, '\0', size);
    size_t n = nul ? (size_t)(nul - data) : size;
    if (n > ROUNDTRIP_MAX)
        return;
    memcpy(text, data, n);
    text[n] = '\0';
    /* 4: as claims under a good header */
    size_t len = jwt_sign_hs256(SECRET, strlen(SECRET), NULL, text, tok, sizeof tok);
    CHECK(len > 0);
    const struct jwt_verifier *vs[2] = {lax, strict};
    for (int i = 0; i < 2; i++) {
        enum jwt_err e = verify(vs[i], tok, len);
        CHECK(e != JWT_BAD_SIGNATURE && e != JWT_BAD_ALG && e != JWT_BAD_HEADER &&
              e != JWT_TOO_LONG);
    }
    /* 5: as a header over good claims */
    len = jwt_sign_hs256(SECRET, strlen(SECRET), text, DEFAULT_CLAIMS, tok, sizeof tok);
    CHECK(len > 0);
    enum jwt_err e = verify(lax, tok, len);
    CHECK(e != JWT_BAD_SIGNATURE && e != JWT_TOO_LONG);
    if (e == JWT_OK)
        CHECK(header_acceptable(text));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct jwt_verifier lax, strict;
    init_verifier(&lax, false);
    init_verifier(&strict, true);
    const char *s = (const char *)data;
    verify(&lax, s, size);
    verify(&strict, s, size);

    struct auth a;
    struct auth_config c;
    char err[256];
    auth_config_default(&c);
    c.api_keys = KEYS;
    c.jwt_secret = SECRET;
    CHECK(auth_init(&a, &c, err, sizeof err) == 0 && auth_enabled(&a));
    check_auth(&a, NULL, 0, s, size);
    const char *nul = memchr(s, '\0', size);
    if (nul)
        check_auth(&a, s, (size_t)(nul - s), nul + 1, size - (size_t)(nul - s) - 1);
    else
        check_auth(&a, s, size, NULL, 0);
    auth_free(&a);

    roundtrip(&lax, &strict, data, size);
    return 0;
}
