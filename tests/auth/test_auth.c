/* test_auth — from request headers to a principal: X-API-Key and Authorization: Bearer with an
 * API key or a JWT, the rules when both headers are present, the Bearer syntax (scheme in any
 * case), refusals with their reasons, and the start-up checks of auth_init. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "auth/auth.c"

#define KEY_A "0123456789abcdef"         /* key id 9f9f5111f7b2 */
#define KEY_B "sk_live_ABCDEFGHIJKLMNOP" /* key id 3819645620bf */
#define SECRET "comfygate-test-secret-0123456789abcdef"
#define NOW INT64_C(1700000000)

static void setup_auth(struct auth *a, const char *keys, const char *secret)
{
    struct auth_config c;
    char err[256];
    auth_config_default(&c);
    c.api_keys = keys;
    c.jwt_secret = secret;
    if (auth_init(a, &c, err, sizeof err) != 0)
        fail_msg("auth_init: %s", err);
}

static const char *mint(const char *claims)
{
    static char tok[1024];
    assert_true(jwt_sign_hs256(SECRET, strlen(SECRET), NULL, claims, tok, sizeof tok) > 0);
    return tok;
}

/* NULL means the header is absent. */
static enum auth_err check(const struct auth *a, const char *xkey, const char *authz,
                           struct auth_principal *p)
{
    return auth_check(a, xkey, xkey ? strlen(xkey) : 0, authz, authz ? strlen(authz) : 0, NOW, p);
}

#define assert_auth(expr, want)                                                                    \
    do {                                                                                           \
        enum auth_err got_ = (expr);                                                               \
        if (got_ != (want))                                                                        \
            fail_msg("%s: got %s, want %s", #expr, auth_err_name(got_), auth_err_name(want));      \
    } while (0)

static void test_enabled(void **state)
{
    struct auth a;
    struct auth_principal p;
    setup_auth(&a, NULL, NULL);
    assert_false(auth_enabled(&a));
    assert_auth(check(&a, KEY_A, NULL, &p),
                AUTH_INVALID_KEY); /* nothing configured, nothing valid */
    auth_free(&a);
    setup_auth(&a, "", "");
    assert_false(auth_enabled(&a));
    auth_free(&a);
    setup_auth(&a, KEY_A ":admin", NULL);
    assert_true(auth_enabled(&a));
    auth_free(&a);
    setup_auth(&a, NULL, SECRET);
    assert_true(auth_enabled(&a));
    auth_free(&a);
    auth_free(&a); /* twice is harmless */
}

static void test_api_key(void **state)
{
    struct auth a;
    struct auth_principal p;
    setup_auth(&a, KEY_A ":admin," KEY_B ":user:acme", SECRET);
    assert_auth(check(&a, KEY_A, NULL, &p), AUTH_OK);
    assert_string_equal(p.tenant, "key-9f9f5111f7b2");
    assert_int_equal(p.role, AUTH_ADMIN);
    assert_int_equal(p.kind, AUTH_KIND_API_KEY);
    assert_string_equal(p.id, "9f9f5111f7b2");
    assert_int_equal(p.expires_s, 0);
    assert_auth(check(&a, NULL, "Bearer " KEY_B, &p), AUTH_OK);
    assert_string_equal(p.tenant, "acme");
    assert_int_equal(p.role, AUTH_USER);
    assert_string_equal(p.id, "3819645620bf");
    /* surrounding whitespace is not part of a header value */
    assert_auth(check(&a, " \t" KEY_B " ", NULL, &p), AUTH_OK);
    assert_auth(check(&a, NULL, "  Bearer " KEY_B "\t", &p), AUTH_OK);
    /* only the given length counts */
    char buf[64];
    snprintf(buf, sizeof buf, "%sTRAILING", KEY_A);
    assert_auth(auth_check(&a, buf, strlen(KEY_A), NULL, 0, NOW, &p), AUTH_OK);

    assert_auth(check(&a, "0123456789abcdeF", NULL, &p), AUTH_INVALID_KEY);
    assert_auth(check(&a, KEY_A "0", NULL, &p), AUTH_INVALID_KEY);
    assert_auth(check(&a, "", NULL, &p), AUTH_INVALID_KEY); /* present, just empty */
    assert_auth(check(&a, NULL, "Bearer short", &p), AUTH_INVALID_KEY);
    assert_string_equal(p.tenant, "");
    assert_int_equal(p.kind, AUTH_KIND_NONE);
    auth_free(&a);
}

static void test_jwt(void **state)
{
    struct auth a;
    struct auth_principal p;
    setup_auth(&a, KEY_A ":admin", SECRET);
    char authz[1100];
    snprintf(authz, sizeof authz, "Bearer %s",
             mint("{\"sub\":\"team@corp\",\"role\":\"admin\",\"exp\":1700000600}"));
    assert_auth(check(&a, NULL, authz, &p), AUTH_OK);
    assert_string_equal(p.tenant, "team@corp");
    assert_int_equal(p.role, AUTH_ADMIN);
    assert_int_equal(p.kind, AUTH_KIND_JWT);
    assert_string_equal(p.id, "jwt:team@corp");
    assert_int_equal(p.expires_s, 1700000600);

    snprintf(authz, sizeof authz, "Bearer %s", mint("{\"sub\":\"t\",\"exp\":1699999969}"));
    assert_auth(check(&a, NULL, authz, &p), AUTH_INVALID_TOKEN);
    assert_int_equal(p.jwt_err, JWT_EXPIRED);
    assert_string_equal(p.tenant, "");
    assert_int_equal(p.kind, AUTH_KIND_NONE);

    /* two dots: a JWT, however broken */
    assert_auth(check(&a, NULL, "Bearer a.b.c", &p), AUTH_INVALID_TOKEN);
    assert_int_equal(p.jwt_err, JWT_MALFORMED);
    snprintf(authz, sizeof authz, "Bearer %s", mint("{\"sub\":\"t\",\"exp\":1700000600}"));
    char *c = &authz[strlen(authz) - 2];
    *c = *c == 'A' ? 'B' : 'A';
    assert_auth(check(&a, NULL, authz, &p), AUTH_INVALID_TOKEN);
    assert_int_equal(p.jwt_err, JWT_BAD_SIGNATURE);
    /* one or three dots: an API key */
    assert_auth(check(&a, NULL, "Bearer a.b", &p), AUTH_INVALID_KEY);
    assert_auth(check(&a, NULL, "Bearer a.b.c.d", &p), AUTH_INVALID_KEY);
    /* a JWT in X-API-Key is looked up as a key */
    snprintf(authz, sizeof authz, "%s", mint("{\"sub\":\"t\",\"exp\":1700000600}"));
    assert_auth(check(&a, authz, NULL, &p), AUTH_INVALID_KEY);
    auth_free(&a);

    /* JWT not configured: a valid-looking token is just an unknown key */
    setup_auth(&a, KEY_A ":admin", NULL);
    snprintf(authz, sizeof authz, "Bearer %s", mint("{\"sub\":\"t\",\"exp\":1700000600}"));
    assert_auth(check(&a, NULL, authz, &p), AUTH_INVALID_KEY);
    auth_free(&a);
}

static void test_bearer_syntax(void **state)
{
    struct auth a;
    struct auth_principal p;
    setup_auth(&a, KEY_A ":user", SECRET);
    static const char *const good[] = {"Bearer " KEY_A, "bearer " KEY_A,    "BEARER " KEY_A,
                                       "BeArEr " KEY_A, "Bearer    " KEY_A, "Bearer " KEY_A "  "};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        assert_auth(check(&a, NULL, good[i], &p), AUTH_OK);
    static const char *const bad[] = {"",
                                      "   ",
                                      "Bearer",
                                      "Bearer ",
                                      "Bearer    ",
                                      "Bearer" KEY_A,
                                      "Bearer\t" KEY_A,
                                      "Basic " KEY_A,
                                      "Token " KEY_A,
                                      "Bearer " KEY_A " extra",
                                      "Bearer " KEY_A "\textra",
                                      "Bearer: " KEY_A,
                                      "Bear " KEY_A,
                                      "Bearerr " KEY_A,
                                      KEY_A};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        enum auth_err e = check(&a, NULL, bad[i], &p);
        if (e != AUTH_MALFORMED_HEADER)
            fail_msg("\"%s\": %s", bad[i], auth_err_name(e));
    }
    auth_free(&a);
}

static void test_both_headers(void **state)
{
    struct auth a;
    struct auth_principal p;
    setup_auth(&a, KEY_A ":admin," KEY_B ":user", SECRET);
    /* the same credential twice is fine */
    assert_auth(check(&a, KEY_A, "Bearer " KEY_A, &p), AUTH_OK);
    assert_string_equal(p.id, "9f9f5111f7b2");
    /* two different credentials, even two valid ones, are refused */
    assert_auth(check(&a, KEY_A, "Bearer " KEY_B, &p), AUTH_MALFORMED_HEADER);
    assert_auth(check(&a, KEY_A, "Bearer " KEY_A "x", &p), AUTH_MALFORMED_HEADER);
    assert_auth(check(&a, KEY_A "x", "Bearer " KEY_A, &p), AUTH_MALFORMED_HEADER);
    assert_auth(check(&a, "", "Bearer " KEY_A, &p), AUTH_MALFORMED_HEADER);
    char authz[1100];
    const char *tok = mint("{\"sub\":\"t\",\"exp\":1700000600}");
    snprintf(authz, sizeof authz, "Bearer %s", tok);
    assert_auth(check(&a, KEY_A, authz, &p), AUTH_MALFORMED_HEADER);
    /* the same JWT in both: X-API-Key names it a key, and it is not one */
    assert_auth(check(&a, tok, authz, &p), AUTH_INVALID_KEY);
    /* a malformed Authorization is not excused by a valid X-API-Key */
    assert_auth(check(&a, KEY_A, "Basic Zm9vOmJhcg==", &p), AUTH_MALFORMED_HEADER);
    assert_auth(check(&a, KEY_A, "", &p), AUTH_MALFORMED_HEADER);
    /* neither */
    assert_auth(check(&a, NULL, NULL, &p), AUTH_MISSING);
    auth_free(&a);
}

static void init_err(const char *keys, const char *secret, const char *aud, const char *needle,
                     const char *secret_text)
{
    struct auth a;
    struct auth_config c;
    char err[256];
    auth_config_default(&c);
    c.api_keys = keys;
    c.jwt_secret = secret;
    c.jwt_audience = aud;
    assert_int_equal(auth_init(&a, &c, err, sizeof err), -1);
    if (!strstr(err, needle))
        fail_msg("\"%s\" lacks \"%s\"", err, needle);
    if (secret_text)
        assert_null(strstr(err, secret_text));
    assert_false(auth_enabled(&a));
    auth_free(&a);
}

static void test_init_errors(void **state)
{
    init_err(KEY_A ":root", NULL, NULL, "entry 1 (key id 9f9f5111f7b2): unknown role", KEY_A);
    init_err(KEY_A ":user", "short-secret", NULL, "JWT_SECRET must be 32 to 512 bytes (it has 12)",
             "short-secret");
    init_err("abcdef.ghijk.lmnop:user", SECRET, NULL, "entry 1 (key id", "abcdef.ghijk");
    init_err(NULL, NULL, "comfygate", "JWT_AUDIENCE or JWT_ISSUER is set but JWT_SECRET is not",
             NULL);
    /* a key with two dots is fine while there is no JWT to confuse it with */
    struct auth a;
    struct auth_principal p;
    setup_auth(&a, "abcdef.ghijk.lmnop:user", NULL);
    assert_auth(check(&a, NULL, "Bearer abcdef.ghijk.lmnop", &p), AUTH_OK);
    auth_free(&a);
    /* other settings reach the verifier */
    struct auth_config c;
    char err[256];
    auth_config_default(&c);
    c.jwt_secret = SECRET;
    c.jwt_leeway_s = 0;
    c.jwt_require_exp = false;
    c.jwt_max_len = 512;
    c.jwt_audience = "comfygate";
    c.jwt_issuer = "idp";
    assert_int_equal(auth_init(&a, &c, err, sizeof err), 0);
    assert_int_equal(a.jwt.leeway_s, 0);
    assert_false(a.jwt.require_exp);
    assert_int_equal(a.jwt.max_len, 512);
    assert_string_equal(a.jwt.audience, "comfygate");
    assert_string_equal(a.jwt.issuer, "idp");
    char authz[1100];
    snprintf(authz, sizeof authz, "Bearer %s",
             mint("{\"sub\":\"t\",\"aud\":\"comfygate\",\"iss\":\"idp\"}"));
    assert_auth(check(&a, NULL, authz, &p), AUTH_OK);
    assert_int_equal(p.expires_s, 0);
    auth_free(&a);
}

static void test_names(void **state)
{
    for (int e = AUTH_OK; e <= AUTH_MALFORMED_HEADER; e++)
        assert_string_not_equal(auth_err_name((enum auth_err)e), "unknown");
    assert_string_equal(auth_err_name(AUTH_MALFORMED_HEADER), "malformed_header");
    assert_string_equal(auth_err_name((enum auth_err)42), "unknown");
    assert_string_equal(auth_kind_name(AUTH_KIND_JWT), "jwt");
    assert_string_equal(auth_kind_name(AUTH_KIND_API_KEY), "api_key");
    assert_string_equal(auth_kind_name((enum auth_kind)42), "unknown");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_enabled),      cmocka_unit_test(test_api_key),
        cmocka_unit_test(test_jwt),          cmocka_unit_test(test_bearer_syntax),
        cmocka_unit_test(test_both_headers), cmocka_unit_test(test_init_errors),
        cmocka_unit_test(test_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
