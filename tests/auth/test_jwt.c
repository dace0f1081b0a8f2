/* test_jwt — HS256 verification against tokens made elsewhere (RFC 7515 appendix A.1, the
 * jwt.io example, tokens minted with Python's hmac module), every refusal reason, the leeway
 * edges (exactly at the leeway passes, one second more fails), algorithm confusion (none,
 * None, RS256, missing alg), duplicate keys, strict base64url, size and depth bounds, and the
 * configuration checks. Times are parameters: nothing here reads a clock. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "auth/auth_common.c"
#include "auth/jwt.c"

#define SECRET "comfygate-test-secret-0123456789abcdef" /* 38 bytes */
#define NOW INT64_C(1700000000)
#define TOKEN_MAX 20000

/* Minted with Python (hmac, hashlib, base64) and SECRET: header {"alg":"HS256","typ":"JWT"},
 * claims {"sub":"tenant-1","role":"admin","exp":2000000000,"iat":1700000000}. */
static const char PY_TOKEN_1[] =
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
    "eyJzdWIiOiJ0ZW5hbnQtMSIsInJvbGUiOiJhZG1pbiIsImV4cCI6MjAwMDAwMDAwMCwiaWF0IjoxNzAwMDAwMDAwfQ."
    "NdpuPNk17EM3xW-5RHbafE1R9SWZlUaUZSoqnaVBbHQ";
/* header {"typ":"JWT","alg":"HS256","kid":"k1"}, claims {"sub":"acme@example.com",
 * "exp":1700000600,"nbf":1700000000,"aud":["comfygate","other"],"iss":"https://idp.example"} */
static const char PY_TOKEN_2[] =
    "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiIsImtpZCI6ImsxIn0."
    "eyJzdWIiOiJhY21lQGV4YW1wbGUuY29tIiwiZXhwIjoxNzAwMDAwNjAwLCJuYmYiOjE3MDAwMDAwMDAsImF1ZCI6"
    "WyJjb21meWdhdGUiLCJvdGhlciJdLCJpc3MiOiJodHRwczovL2lkcC5leGFtcGxlIn0."
    "t4XcHotagQmAAdtfdCrt-TU0uecvV6Y7w-eB55sFxXg";
/* header {"alg":"none","typ":"JWT"} with a correct HMAC-SHA-256 of SECRET all the same */
static const char PY_TOKEN_NONE[] =
    "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0."
    "eyJzdWIiOiJ0ZW5hbnQtMSIsInJvbGUiOiJhZG1pbiIsImV4cCI6MjAwMDAwMDAwMH0."
    "bU5gYw_t0oMtrDGqST1cy1lMsE4doVpMU_KbZoTg3cU";

/* RFC 7515 appendix A.1: the JWS and its 64-byte key. */
static const char RFC7515_A1[] = "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9."
                                 "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtc"
                                 "GxlLmNvbS9pc19yb290Ijp0cnVlfQ."
                                 "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
static const uint8_t RFC7515_KEY[64] = {
    0x03, 0x23, 0x35, 0x4b, 0x2b, 0x0f, 0xa5, 0xbc, 0x83, 0x7e, 0x06, 0x65, 0x77, 0x7b, 0xa6, 0x8f,
    0x5a, 0xb3, 0x28, 0xe6, 0xf0, 0x54, 0xc9, 0x28, 0xa9, 0x0f, 0x84, 0xb2, 0xd2, 0x50, 0x2e, 0xbf,
    0xd3, 0xfb, 0x5a, 0x92, 0xd2, 0x06, 0x47, 0xef, 0x96, 0x8a, 0xb4, 0xc3, 0x77, 0x62, 0x3d, 0x22,
    0x3d, 0x2e, 0x21, 0x72, 0x05, 0x2e, 0x4f, 0x08, 0xc0, 0xcd, 0x9a, 0xf5, 0x67, 0xd0, 0x80, 0xa3};

/* The jwt.io example (secret "your-256-bit-secret", too short for a verifier). */
static const char JWTIO[] =
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
    "eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ."
    "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c";

/* single quotes → double quotes, so JSON in tests stays readable */
static const char *q(const char *s)
{
    static char buf[4][TOKEN_MAX];
    static int next;
    char *b = buf[next++ % 4];
    size_t n = strlen(s);
    assert_true(n < TOKEN_MAX);
    for (size_t i = 0; i <= n; i++)
        b[i] = s[i] == '\'' ? '"' : s[i];
    return b;
}

static void verifier(struct jwt_verifier *v, const char *aud, const char *iss)
{
    struct jwt_config c;
    char err[256];
    jwt_config_default(&c);
    c.secret = SECRET;
    c.secret_len = strlen(SECRET);
    c.audience = aud;
    c.issuer = iss;
    if (jwt_verifier_init(v, &c, err, sizeof err) != 0)
        fail_msg("init: %s", err);
}

/* Signs header (NULL: the default) and claims, both in single-quote JSON, with SECRET and
 * verifies the result at time now. */
static enum jwt_err check_with(const struct jwt_verifier *v, const char *hdr, const char *claims,
                               int64_t now, struct jwt_claims *out)
{
    static char tok[TOKEN_MAX];
    const char *h = hdr ? q(hdr) : NULL;
    size_t n = jwt_sign_hs256(SECRET, strlen(SECRET), h, q(claims), tok, sizeof tok);
    assert_true(n > 0);
    struct jwt_claims dummy;
    return jwt_verify(v, tok, n, now, out ? out : &dummy);
}

static enum jwt_err check(const char *hdr, const char *claims, int64_t now)
{
    struct jwt_verifier v;
    verifier(&v, NULL, NULL);
    return check_with(&v, hdr, claims, now, NULL);
}

static enum jwt_err verify_str(const struct jwt_verifier *v, const char *tok)
{
    struct jwt_claims c;
    return jwt_verify(v, tok, strlen(tok), NOW, &c);
}

#define assert_jwt(expr, want)                                                                     \
    do {                                                                                           \
        enum jwt_err got_ = (expr);                                                                \
        if (got_ != (want))                                                                        \
            fail_msg("%s: got %s, want %s", #expr, jwt_err_name(got_), jwt_err_name(want));        \
    } while (0)

static void test_python_tokens(void **state)
{
    struct jwt_verifier v;
    struct jwt_claims c;
    verifier(&v, NULL, NULL);
    assert_jwt(jwt_verify(&v, PY_TOKEN_1, strlen(PY_TOKEN_1), NOW, &c), JWT_OK);
    assert_string_equal(c.sub, "tenant-1");
    assert_int_equal(c.role, AUTH_ADMIN);
    assert_int_equal(c.exp, 2000000000);
    /* our minting gives the same bytes as Python's */
    char tok[512];
    size_t n = jwt_sign_hs256(SECRET, strlen(SECRET), NULL,
                              q("{'sub':'tenant-1','role':'admin','exp':2000000000,"
                                "'iat':1700000000}"),
                              tok, sizeof tok);
    assert_int_equal(n, strlen(PY_TOKEN_1));
    assert_string_equal(tok, PY_TOKEN_1);

    /* aud in an array and iss: accepted only by a verifier that expects them */
    struct jwt_verifier va;
    verifier(&va, "comfygate", "https://idp.example");
    assert_jwt(jwt_verify(&va, PY_TOKEN_2, strlen(PY_TOKEN_2), NOW, &c), JWT_OK);
    assert_string_equal(c.sub, "acme@example.com");
    assert_int_equal(c.role, AUTH_USER);
    assert_int_equal(c.exp, 1700000600);
    assert_jwt(verify_str(&v, PY_TOKEN_2), JWT_BAD_AUDIENCE);
    /* the same token after its exp plus leeway, and before its nbf minus leeway */
    assert_jwt(jwt_verify(&va, PY_TOKEN_2, strlen(PY_TOKEN_2), 1700000630, &c), JWT_OK);
    assert_jwt(jwt_verify(&va, PY_TOKEN_2, strlen(PY_TOKEN_2), 1700000631, &c), JWT_EXPIRED);
    assert_jwt(jwt_verify(&va, PY_TOKEN_2, strlen(PY_TOKEN_2), 1699999970, &c), JWT_OK);
    assert_jwt(jwt_verify(&va, PY_TOKEN_2, strlen(PY_TOKEN_2), 1699999969, &c), JWT_NOT_YET_VALID);
    /* a real HMAC does not rescue a token that names another algorithm */
    assert_jwt(verify_str(&v, PY_TOKEN_NONE), JWT_BAD_ALG);
}

static void test_rfc7515_a1(void **state)
{
    /* The RFC's JWS has no sub, so it ends in BAD_CLAIMS — which is only reached once the
     * header and the HMAC (computed by BearSSL over the signing input) are accepted. */
    struct jwt_verifier v;
    memset(&v, 0, sizeof v);
    br_hmac_key_init(&v.key, &br_sha256_vtable, RFC7515_KEY, sizeof RFC7515_KEY);
    v.leeway_s = 0;
    v.require_exp = true;
    v.max_len = JWT_LEN_DEFAULT;
    assert_jwt(verify_str(&v, RFC7515_A1), JWT_BAD_CLAIMS);
    struct jwt_claims c;
    assert_jwt(jwt_verify(&v, RFC7515_A1, strlen(RFC7515_A1), 1300819381, &c), JWT_BAD_CLAIMS);

    uint8_t mac[32], sig[34];
    size_t len;
    const char *dot = strrchr(RFC7515_A1, '.');
    jwt_mac(&v.key, RFC7515_A1, (size_t)(dot - RFC7515_A1), mac);
    assert_int_equal(jwt_b64_decode(dot + 1, strlen(dot + 1), sig, sizeof sig, &len), 0);
    assert_int_equal(len, 32);
    assert_memory_equal(mac, sig, 32);

    /* another key: the signature is what fails */
    struct jwt_verifier w;
    verifier(&w, NULL, NULL);
    assert_jwt(verify_str(&w, RFC7515_A1), JWT_BAD_SIGNATURE);
}

static void test_jwtio_example(void **state)
{
    const char *secret = "your-256-bit-secret";
    char tok[512];
    size_t n = jwt_sign_hs256(secret, strlen(secret), NULL,
                              q("{'sub':'1234567890','name':'John Doe','iat':1516239022}"), tok,
                              sizeof tok);
    assert_int_equal(n, strlen(JWTIO));
    assert_string_equal(tok, JWTIO);

    /* 19 bytes is below the minimum for a configured secret... */
    struct jwt_config cfg;
    struct jwt_verifier v;
    char err[256];
    jwt_config_default(&cfg);
    cfg.secret = secret;
    cfg.secret_len = strlen(secret);
    assert_int_equal(jwt_verifier_init(&v, &cfg, err, sizeof err), -1);
    assert_non_null(strstr(err, "JWT_SECRET must be 32 to 512 bytes (it has 19)"));
    assert_null(strstr(err, secret));
    /* ...but the verification itself accepts the token when set up by hand */
    br_hmac_key_init(&v.key, &br_sha256_vtable, secret, strlen(secret));
    v.max_len = JWT_LEN_DEFAULT;
    v.leeway_s = 30;
    v.require_exp = false;
    struct jwt_claims c;
    assert_jwt(jwt_verify(&v, JWTIO, strlen(JWTIO), NOW, &c), JWT_OK);
    assert_string_equal(c.sub, "1234567890");
    assert_int_equal(c.role, AUTH_USER);
    assert_int_equal(c.exp, 0);
    assert_jwt(jwt_verify(&v, JWTIO, strlen(JWTIO), 1516239022 - 30, &c), JWT_OK);
    assert_jwt(jwt_verify(&v, JWTIO, strlen(JWTIO), 1516239022 - 31, &c), JWT_ISSUED_IN_FUTURE);
    v.require_exp = true;
    assert_jwt(jwt_verify(&v, JWTIO, strlen(JWTIO), NOW, &c), JWT_BAD_CLAIMS);
}

static void test_time_edges(void **state)
{
    char claims[128];
    /* exp: expired only past exp + leeway (30 s) */
    snprintf(claims, sizeof claims, "{'sub':'t','exp':%lld}", (long long)NOW);
    assert_jwt(check(NULL, claims, NOW), JWT_OK);
    assert_jwt(check(NULL, claims, NOW + 30), JWT_OK);
    assert_jwt(check(NULL, claims, NOW + 31), JWT_EXPIRED);
    assert_jwt(check(NULL, claims, INT64_MAX), JWT_EXPIRED);
    assert_jwt(check(NULL, claims, INT64_MIN), JWT_OK);
    /* nbf: valid from nbf - leeway */
    snprintf(claims, sizeof claims, "{'sub':'t','exp':%lld,'nbf':%lld}", (long long)NOW + 3600,
             (long long)NOW + 30);
    assert_jwt(check(NULL, claims, NOW), JWT_OK);
    assert_jwt(check(NULL, claims, NOW - 1), JWT_NOT_YET_VALID);
    /* iat: no more than leeway in the future */
    snprintf(claims, sizeof claims, "{'sub':'t','exp':%lld,'iat':%lld}", (long long)NOW + 3600,
             (long long)NOW + 30);
    assert_jwt(check(NULL, claims, NOW), JWT_OK);
    assert_jwt(check(NULL, claims, NOW - 1), JWT_ISSUED_IN_FUTURE);
    /* fractions count against the token: exp rounds down, nbf and iat up */
    snprintf(claims, sizeof claims, "{'sub':'t','exp':%lld.9}", (long long)NOW);
    assert_jwt(check(NULL, claims, NOW + 30), JWT_OK);
    assert_jwt(check(NULL, claims, NOW + 31), JWT_EXPIRED);
    snprintf(claims, sizeof claims, "{'sub':'t','exp':%lld,'nbf':%lld.1}", (long long)NOW + 3600,
             (long long)NOW + 29);
    assert_jwt(check(NULL, claims, NOW), JWT_OK);
    assert_jwt(check(NULL, claims, NOW - 1), JWT_NOT_YET_VALID);
    snprintf(claims, sizeof claims, "{'sub':'t','exp':%lld,'iat':%lld.5e0}", (long long)NOW + 3600,
             (long long)NOW + 30);
    assert_jwt(check(NULL, claims, NOW), JWT_ISSUED_IN_FUTURE);
}

static void test_leeway_zero_and_config(void **state)
{
    struct jwt_config c;
    struct jwt_verifier v;
    char err[256], claims[128];
    jwt_config_default(&c);
    c.secret = SECRET;
    c.secret_len = strlen(SECRET);
    c.leeway_s = 0;
    assert_int_equal(jwt_verifier_init(&v, &c, err, sizeof err), 0);
    snprintf(claims, sizeof claims, "{'sub':'t','exp':%lld,'nbf':%lld}", (long long)NOW,
             (long long)NOW);
    assert_jwt(check_with(&v, NULL, claims, NOW, NULL), JWT_OK);
    assert_jwt(check_with(&v, NULL, claims, NOW + 1, NULL), JWT_EXPIRED);
    assert_jwt(check_with(&v, NULL, claims, NOW - 1, NULL), JWT_NOT_YET_VALID);
    /* exp optional */
    c.require_exp = false;
    assert_int_equal(jwt_verifier_init(&v, &c, err, sizeof err), 0);
    struct jwt_claims out;
    assert_jwt(check_with(&v, NULL, "{'sub':'t'}", NOW, &out), JWT_OK);
    assert_int_equal(out.exp, 0);
    assert_jwt(check(NULL, "{'sub':'t'}", NOW), JWT_BAD_CLAIMS);
}

static void test_time_claim_types(void **state)
{
    static const char *const bad[] = {
        "{'sub':'t','exp':'2000000000'}",
        "{'sub':'t','exp':-1}",
        "{'sub':'t','exp':253402300800}",
        "{'sub':'t','exp':1e20}",
        "{'sub':'t','exp':true}",
        "{'sub':'t','exp':null}",
        "{'sub':'t','exp':[2000000000]}",
        "{'sub':'t','exp':2000000000,'nbf':'0'}",
        "{'sub':'t','exp':2000000000,'iat':-0.5}",
        "{'sub':'t','exp':2000000000,'iss':7}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_jwt(check(NULL, bad[i], NOW), JWT_BAD_CLAIMS);
    assert_jwt(check(NULL, "{'sub':'t','exp':253402300799}", NOW), JWT_OK);
    assert_jwt(check(NULL, "{'sub':'t','exp':2e9,'nbf':0,'iat':0.0}", NOW), JWT_OK);
    /* numbers jansson cannot hold are a parse error */
    assert_jwt(check(NULL, "{'sub':'t','exp':99999999999999999999}", NOW), JWT_MALFORMED);
}

static void test_signature(void **state)
{
    struct jwt_verifier v;
    verifier(&v, NULL, NULL);
    char tok[512];
    const char *claims = q("{'sub':'t','exp':2000000000}");
    const char *other = "comfygate-other-secret-0123456789abcdef";
    size_t n = jwt_sign_hs256(other, strlen(other), NULL, claims, tok, sizeof tok);
    assert_jwt(jwt_verify(&v, tok, n, NOW, &(struct jwt_claims){0}), JWT_BAD_SIGNATURE);

    n = jwt_sign_hs256(SECRET, strlen(SECRET), NULL, claims, tok, sizeof tok);
    assert_jwt(verify_str(&v, tok), JWT_OK);
    /* one bit of the payload: 'e' (30) → 'f' (31) changes its lowest bit */
    char *pay = strchr(tok, '.') + 1;
    char *e = strchr(pay, 'e');
    assert_non_null(e);
    *e = 'f';
    assert_jwt(verify_str(&v, tok), JWT_BAD_SIGNATURE);
    *e = 'e';
    /* one bit of the header */
    tok[1] ^= 0x20; /* 'y' → 'Y' */
    assert_jwt(verify_str(&v, tok), JWT_MALFORMED);
    tok[1] ^= 0x20;
    /* the signature: a changed character, truncated, extended, empty */
    char *sig = strrchr(tok, '.') + 1;
    sig[0] = sig[0] == 'A' ? 'B' : 'A';
    assert_jwt(verify_str(&v, tok), JWT_BAD_SIGNATURE);
    n = jwt_sign_hs256(SECRET, strlen(SECRET), NULL, claims, tok, sizeof tok);
    assert_jwt(jwt_verify(&v, tok, n - 1, NOW, &(struct jwt_claims){0}), JWT_BAD_SIGNATURE);
    strcat(tok, "A");
    assert_jwt(verify_str(&v, tok), JWT_BAD_SIGNATURE);
    sig = strrchr(tok, '.') + 1;
    *sig = '\0';
    assert_jwt(verify_str(&v, tok), JWT_BAD_SIGNATURE);
}

static void test_noncanonical_base64(void **state)
{
    struct jwt_verifier v;
    verifier(&v, NULL, NULL);
    char tok[512];
    jwt_sign_hs256(SECRET, strlen(SECRET), NULL, q("{'sub':'t','exp':2000000000}"), tok,
                   sizeof tok);
    /* 43 characters carry 258 bits: the last 2 must be zero. Setting one gives the same bytes
     * under a lax decoder; here it is refused. */
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    char *last = tok + strlen(tok) - 1;
    int val = (int)(strchr(abc, *last) - abc);
    assert_int_equal(val & 3, 0);
    *last = abc[val | 1];
    assert_jwt(verify_str(&v, tok), JWT_MALFORMED);

    uint8_t out[8];
    size_t len;
    assert_int_equal(jwt_b64_decode("QQ", 2, out, sizeof out, &len), 0);
    assert_int_equal(len, 1);
    assert_int_equal(out[0], 'A');
    assert_int_equal(jwt_b64_decode("QR", 2, out, sizeof out, &len), -1);
    assert_int_equal(jwt_b64_decode("QUI", 3, out, sizeof out, &len), 0);
    assert_int_equal(jwt_b64_decode("QUJ", 3, out, sizeof out, &len), -1);
    assert_int_equal(jwt_b64_decode("QUJDR", 5, out, sizeof out, &len), -1);
    assert_int_equal(jwt_b64_decode("QUJD", 4, out, 2, &len), -1);
    assert_int_equal(jwt_b64_decode("-_8", 3, out, sizeof out, &len), 0);
    assert_int_equal(len, 2);
    assert_int_equal(out[0], 0xfb);
    assert_int_equal(out[1], 0xff);
}

static void test_b64url_encode(void **state)
{
    /* RFC 4648 section 10, without padding */
    static const char *const in[] = {"f", "fo", "foo", "foob", "fooba", "foobar"};
    static const char *const want[] = {"Zg", "Zm8", "Zm9v", "Zm9vYg", "Zm9vYmE", "Zm9vYmFy"};
    char out[16];
    for (size_t i = 0; i < 6; i++) {
        assert_int_equal(jwt_b64url_encode(in[i], strlen(in[i]), out, sizeof out), strlen(want[i]));
        assert_string_equal(out, want[i]);
    }
    assert_int_equal(jwt_b64url_encode("\xfb\xff", 2, out, sizeof out), 3);
    assert_string_equal(out, "-_8");
    assert_int_equal(jwt_b64url_encode("foobar", 6, out, 8), 0); /* 8 + NUL needed */
    assert_int_equal(jwt_b64url_encode("foobar", 6, out, 9), 8);
    assert_int_equal(jwt_b64url_encode("", 0, out, sizeof out), 0);
    assert_string_equal(out, "");
}

static void test_alg_confusion(void **state)
{
    static const char *const hdrs[] = {
        "{'alg':'none'}",
        "{'alg':'None','typ':'JWT'}",
        "{'alg':'NONE'}",
        "{'alg':'HS384'}",
        "{'alg':'HS512'}",
        "{'alg':'RS256'}",
        "{'alg':'ES256'}",
        "{'alg':'hs256'}",
        "{'alg':'HS256 '}",
        "{'alg':' HS256'}",
        "{'alg':''}",
        "{'typ':'JWT'}",
        "{}",
        "{'alg':256}",
        "{'alg':null}",
        "{'alg':['HS256']}",
        "{'alg':{'HS256':1}}",
        "{'alg':true}",
        "{'ALG':'HS256'}",
    };
    for (size_t i = 0; i < sizeof hdrs / sizeof hdrs[0]; i++)
        assert_jwt(check(hdrs[i], "{'sub':'t','exp':2000000000}", NOW), JWT_BAD_ALG);
    /* the unsigned form attackers send: alg none and an empty signature */
    char tok[256];
    struct jwt_verifier v;
    verifier(&v, NULL, NULL);
    const char *h = q("{'alg':'none','typ':'JWT'}");
    const char *p = q("{'sub':'t','role':'admin','exp':2000000000}");
    size_t n = jwt_b64url_encode(h, strlen(h), tok, sizeof tok);
    tok[n++] = '.';
    n += jwt_b64url_encode(p, strlen(p), tok + n, sizeof tok - n);
    tok[n++] = '.';
    tok[n] = '\0';
    assert_jwt(verify_str(&v, tok), JWT_BAD_ALG);
    /* an embedded NUL after HS256 is refused by the JSON parser */
    assert_jwt(check("{'alg':'HS256\\u0000'}", "{'sub':'t','exp':2000000000}", NOW), JWT_MALFORMED);
}

static void test_header_params(void **state)
{
    const char *claims = "{'sub':'t','exp':2000000000}";
    assert_jwt(check("{'alg':'HS256'}", claims, NOW), JWT_OK);
    assert_jwt(check("{'alg':'HS256','typ':'JWT'}", claims, NOW), JWT_OK);
    assert_jwt(check("{'typ':'jwt','alg':'HS256','kid':'k','cty':'x'}", claims, NOW), JWT_OK);
    assert_jwt(check("{'alg':'HS256','typ':'JWS'}", claims, NOW), JWT_BAD_HEADER);
    assert_jwt(check("{'alg':'HS256','typ':'at+jwt'}", claims, NOW), JWT_BAD_HEADER);
    assert_jwt(check("{'alg':'HS256','typ':1}", claims, NOW), JWT_BAD_HEADER);
    assert_jwt(check("{'alg':'HS256','typ':null}", claims, NOW), JWT_BAD_HEADER);
    assert_jwt(check("{'alg':'HS256','crit':['exp'],'exp':1}", claims, NOW), JWT_BAD_HEADER);
    assert_jwt(check("{'alg':'HS256','crit':[]}", claims, NOW), JWT_BAD_HEADER);
    assert_jwt(check("{'alg':'HS256','b64':false,'crit':['b64']}", claims, NOW), JWT_BAD_HEADER);
}

static void test_duplicate_keys(void **state)
{
    const char *claims = "{'sub':'t','exp':2000000000}";
    assert_jwt(check("{'alg':'HS256','alg':'none'}", claims, NOW), JWT_MALFORMED);
    assert_jwt(check("{'alg':'none','alg':'HS256'}", claims, NOW), JWT_MALFORMED);
    assert_jwt(check("{'alg':'HS256','typ':'JWT','typ':'JWT'}", claims, NOW), JWT_MALFORMED);
    assert_jwt(check(NULL, "{'sub':'t','sub':'admin-tenant','exp':2000000000}", NOW),
               JWT_MALFORMED);
    assert_jwt(check(NULL, "{'sub':'t','role':'user','role':'admin','exp':2000000000}", NOW),
               JWT_MALFORMED);
    assert_jwt(check(NULL, "{'sub':'t','exp':1,'exp':2000000000}", NOW), JWT_MALFORMED);
}

static void test_structure(void **state)
{
    struct jwt_verifier v;
    verifier(&v, NULL, NULL);
    char tok[512], bad[600];
    size_t n = jwt_sign_hs256(SECRET, strlen(SECRET), NULL, q("{'sub':'t','exp':2000000000}"), tok,
                              sizeof tok);
    const char *d1 = strchr(tok, '.'), *d2 = strrchr(tok, '.');
    size_t h = (size_t)(d1 - tok), p = (size_t)(d2 - tok);

    static const char *const inserts[] = {"=", "+", "/", " ", "\t", "\n", "\r", "%", "\x80", "*"};
    for (size_t i = 0; i < sizeof inserts / sizeof inserts[0]; i++) {
        const size_t at[] = {0, h, p, n}; /* start, end of header, end of payload, end */
        for (size_t j = 0; j < 4; j++) {
            snprintf(bad, sizeof bad, "%.*s%s%s", (int)at[j], tok, inserts[i], tok + at[j]);
            assert_jwt(verify_str(&v, bad), JWT_MALFORMED);
        }
    }
    /* padded parts, as a lax encoder would produce */
    snprintf(bad, sizeof bad, "%.*s==%s", (int)p, tok, tok + p);
    assert_jwt(verify_str(&v, bad), JWT_MALFORMED);
    /* a NUL inside the given length */
    memcpy(bad, tok, n);
    bad[h + 2] = '\0';
    assert_jwt(jwt_verify(&v, bad, n, NOW, &(struct jwt_claims){0}), JWT_MALFORMED);

    static const char *const shapes[] = {"",       ".",     "..",   "...",     "a",
                                         "a.b",    ".b.c",  "a..c", "a.b.c.d", "e30.e30.e30.e30",
                                         "e30..x", ".e30.x"};
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
        assert_jwt(verify_str(&v, shapes[i]), JWT_MALFORMED);
    snprintf(bad, sizeof bad, "%s.", tok);
    assert_jwt(verify_str(&v, bad), JWT_MALFORMED);
    snprintf(bad, sizeof bad, "%s.%s", tok, d2 + 1);
    assert_jwt(verify_str(&v, bad), JWT_MALFORMED);
    /* valid shape, empty signature (the alg-none form with HS256 named) */
    snprintf(bad, sizeof bad, "%.*s.", (int)p, tok);
    assert_jwt(verify_str(&v, bad), JWT_BAD_SIGNATURE);
}

static void test_not_objects(void **state)
{
    const char *claims = "{'sub':'t','exp':2000000000}";
    static const char *const hdrs[] = {"[]",
                                       "['HS256']",
                                       "'HS256'",
                                       "1",
                                       "null",
                                       "",
                                       "{'alg':'HS256'",
                                       "{'alg':'HS256'}x",
                                       "{'alg':'HS256'}{}",
                                       "{alg:'HS256'}",
                                       "\xff\xfe"};
    for (size_t i = 0; i < sizeof hdrs / sizeof hdrs[0]; i++) {
        enum jwt_err e = check(hdrs[i], claims, NOW);
        if (e != JWT_MALFORMED)
            fail_msg("header %s: %s", hdrs[i], jwt_err_name(e));
    }
    static const char *const pays[] = {"[]",         "'t'",          "2000000000", "",
                                       "{'sub':'t'", "{'sub':'t'} ", "\xc3\x28"};
    for (size_t i = 0; i < sizeof pays / sizeof pays[0]; i++) {
        enum jwt_err e = check(NULL, pays[i], NOW);
        /* "{'sub':'t'} " is valid JSON (trailing space) without exp */
        enum jwt_err want = i == 5 ? JWT_BAD_CLAIMS : JWT_MALFORMED;
        if (e != want)
            fail_msg("payload %s: %s", pays[i], jwt_err_name(e));
    }
}

static void test_sizes(void **state)
{
    struct jwt_verifier v;
    verifier(&v, NULL, NULL);
    static char tok[TOKEN_MAX], claims[TOKEN_MAX];
    /* find a padding that makes the token exactly 8192 bytes */
    size_t n = 0;
    for (size_t pad = 6000; pad < 6200 && n != JWT_LEN_DEFAULT; pad++) {
        int k = snprintf(claims, sizeof claims, "{\"sub\":\"t\",\"exp\":2000000000,\"x\":\"");
        memset(claims + k, 'x', pad);
        strcpy(claims + k + pad, "\"}");
        n = jwt_sign_hs256(SECRET, strlen(SECRET), NULL, claims, tok, sizeof tok);
    }
    assert_int_equal(n, JWT_LEN_DEFAULT);
    assert_jwt(verify_str(&v, tok), JWT_OK);
    strcpy(claims + strlen(claims) - 2, "x\"}"); /* one byte more */
    n = jwt_sign_hs256(SECRET, strlen(SECRET), NULL, claims, tok, sizeof tok);
    assert_true(n > JWT_LEN_DEFAULT);
    assert_jwt(verify_str(&v, tok), JWT_TOO_LONG);
    /* a huge one, even without any structure */
    char *huge = malloc(1 << 20);
    assert_non_null(huge);
    memset(huge, 'A', 1 << 20);
    assert_jwt(jwt_verify(&v, huge, 1 << 20, NOW, &(struct jwt_claims){0}), JWT_TOO_LONG);
    free(huge);
    /* a smaller configured limit */
    struct jwt_config c;
    char err[128];
    jwt_config_default(&c);
    c.secret = SECRET;
    c.secret_len = strlen(SECRET);
    c.max_len = 100;
    assert_int_equal(jwt_verifier_init(&v, &c, err, sizeof err), 0);
    assert_jwt(verify_str(&v, PY_TOKEN_1), JWT_TOO_LONG);
    /* sign refuses a buffer too small, and fits one exactly as large as needed */
    size_t need = strlen(PY_TOKEN_1) + 1;
    assert_int_equal(jwt_sign_hs256(SECRET, strlen(SECRET), NULL,
                                    q("{'sub':'tenant-1','role':'admin','exp':2000000000,"
                                      "'iat':1700000000}"),
                                    tok, need - 1),
                     0);
    assert_int_equal(jwt_sign_hs256(SECRET, strlen(SECRET), NULL,
                                    q("{'sub':'tenant-1','role':'admin','exp':2000000000,"
                                      "'iat':1700000000}"),
                                    tok, need),
                     need - 1);
}

static void test_depth(void **state)
{
    char claims[256];
    /* the claims object is level 1: 15 arrays inside make 16 levels */
    snprintf(claims, sizeof claims, "{'sub':'t','exp':2000000000,'x':%.*s1%.*s}", 15,
             "[[[[[[[[[[[[[[[[[[[[", 15, "]]]]]]]]]]]]]]]]]]]]");
    assert_jwt(check(NULL, claims, NOW), JWT_OK);
    snprintf(claims, sizeof claims, "{'sub':'t','exp':2000000000,'x':%.*s1%.*s}", 16,
             "[[[[[[[[[[[[[[[[[[[[", 16, "]]]]]]]]]]]]]]]]]]]]");
    assert_jwt(check(NULL, claims, NOW), JWT_MALFORMED);
    /* brackets in strings, escaped quotes included, are not nesting */
    assert_jwt(check(NULL, "{'sub':'t','exp':2000000000,'x':'\\'[[[[[[[[[[[[[[[[[[[[{{{{'}", NOW),
               JWT_OK);
    assert_jwt(check("{'alg':'HS256','x':[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]}",
                     "{'sub':'t','exp':2000000000}", NOW),
               JWT_MALFORMED);
}

static void test_subject_and_role(void **state)
{
    struct jwt_verifier v;
    struct jwt_claims c;
    verifier(&v, NULL, NULL);
    assert_jwt(check_with(&v, NULL, "{'sub':'a.b_c:d@e-f09AZ','exp':2000000000}", NOW, &c), JWT_OK);
    assert_string_equal(c.sub, "a.b_c:d@e-f09AZ");
    assert_int_equal(c.role, AUTH_USER);
    assert_jwt(check_with(&v, NULL, "{'sub':'t','role':'admin','exp':2000000000}", NOW, &c),
               JWT_OK);
    assert_int_equal(c.role, AUTH_ADMIN);
    assert_jwt(check_with(&v, NULL, "{'sub':'t','role':'user','exp':2000000000}", NOW, &c), JWT_OK);
    assert_int_equal(c.role, AUTH_USER);

    static const char *const bad[] = {
        "{'exp':2000000000}",
        "{'sub':'','exp':2000000000}",
        "{'sub':1,'exp':2000000000}",
        "{'sub':null,'exp':2000000000}",
        "{'sub':['t'],'exp':2000000000}",
        "{'sub':'a/b','exp':2000000000}",
        "{'sub':'a b','exp':2000000000}",
        "{'sub':'../x','exp':2000000000}",
        "{'sub':'caf\\u00e9','exp':2000000000}",
        "{'sub':'t\\n','exp':2000000000}",
        "{'sub':'t','role':'root','exp':2000000000}",
        "{'sub':'t','role':'Admin','exp':2000000000}",
        "{'sub':'t','role':'','exp':2000000000}",
        "{'sub':'t','role':1,'exp':2000000000}",
        "{'sub':'t','role':null,'exp':2000000000}",
        "{'sub':'t','role':['admin'],'exp':2000000000}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        memset(&c, 0x55, sizeof c);
        enum jwt_err e = check_with(&v, NULL, bad[i], NOW, &c);
        if (e != JWT_BAD_CLAIMS)
            fail_msg("%s: %s", bad[i], jwt_err_name(e));
        assert_string_equal(c.sub, ""); /* nothing of a refused token is handed out */
        assert_int_equal(c.exp, 0);
    }
    char claims[300];
    snprintf(claims, sizeof claims, "{'sub':'%0128d','exp':2000000000}", 7);
    assert_jwt(check_with(&v, NULL, claims, NOW, &c), JWT_OK);
    assert_int_equal(strlen(c.sub), 128);
    snprintf(claims, sizeof claims, "{'sub':'%0129d','exp':2000000000}", 7);
    assert_jwt(check_with(&v, NULL, claims, NOW, &c), JWT_BAD_CLAIMS);
}

static void test_audience_issuer(void **state)
{
    struct jwt_verifier v;
    verifier(&v, "comfygate", "https://idp");
    const char *ok = "{'sub':'t','exp':2000000000,'iss':'https://idp',";
    char claims[256];
#define AUD(tail) (snprintf(claims, sizeof claims, "%s%s}", ok, tail), claims)
    assert_jwt(check_with(&v, NULL, AUD("'aud':'comfygate'"), NOW, NULL), JWT_OK);
    assert_jwt(check_with(&v, NULL, AUD("'aud':['a','comfygate']"), NOW, NULL), JWT_OK);
    assert_jwt(check_with(&v, NULL, AUD("'aud':'other'"), NOW, NULL), JWT_BAD_AUDIENCE);
    assert_jwt(check_with(&v, NULL, AUD("'aud':'comfygate2'"), NOW, NULL), JWT_BAD_AUDIENCE);
    assert_jwt(check_with(&v, NULL, AUD("'aud':'Comfygate'"), NOW, NULL), JWT_BAD_AUDIENCE);
    assert_jwt(check_with(&v, NULL, AUD("'aud':[]"), NOW, NULL), JWT_BAD_AUDIENCE);
    assert_jwt(check_with(&v, NULL, AUD("'aud':['comfygate',1]"), NOW, NULL), JWT_BAD_AUDIENCE);
    assert_jwt(check_with(&v, NULL, AUD("'aud':{'comfygate':1}"), NOW, NULL), JWT_BAD_AUDIENCE);
    assert_jwt(check_with(&v, NULL, AUD("'x':1"), NOW, NULL), JWT_BAD_AUDIENCE);
    assert_jwt(check_with(&v, NULL, AUD("'aud':'comfygate\\u0000'"), NOW, NULL), JWT_MALFORMED);
#undef AUD
    assert_jwt(check_with(&v, NULL, "{'sub':'t','exp':2000000000,'aud':'comfygate'}", NOW, NULL),
               JWT_BAD_ISSUER);
    assert_jwt(check_with(&v, NULL,
                          "{'sub':'t','exp':2000000000,'aud':'comfygate','iss':'https://idp/'}",
                          NOW, NULL),
               JWT_BAD_ISSUER);
    /* no audience configured: a token addressed to someone is not for us (RFC 7519 4.1.3) */
    verifier(&v, NULL, NULL);
    assert_jwt(check_with(&v, NULL, "{'sub':'t','exp':2000000000,'aud':'x'}", NOW, NULL),
               JWT_BAD_AUDIENCE);
    assert_jwt(check_with(&v, NULL, "{'sub':'t','exp':2000000000,'iss':'anyone'}", NOW, NULL),
               JWT_OK);
    /* an expired token says so before its audience is looked at */
    verifier(&v, "comfygate", NULL);
    assert_jwt(check_with(&v, NULL, "{'sub':'t','exp':1,'aud':'x'}", NOW, NULL), JWT_EXPIRED);
}

static void test_config_errors(void **state)
{
    struct jwt_config c;
    struct jwt_verifier v;
    char err[256];
    char secret[600];
    memset(secret, 's', sizeof secret);
    jwt_config_default(&c);
    assert_int_equal(c.leeway_s, 30);
    assert_true(c.require_exp);
    assert_int_equal(c.max_len, 8192);
    assert_int_equal(jwt_verifier_init(&v, &c, err, sizeof err), -1); /* no secret */
    c.secret = secret;
    c.secret_len = 31;
    assert_int_equal(jwt_verifier_init(&v, &c, err, sizeof err), -1);
    assert_non_null(strstr(err, "(it has 31)"));
    assert_null(strstr(err, "sssss"));
    c.secret_len = 513;
    assert_int_equal(jwt_verifier_init(&v, &c, err, sizeof err), -1);
    c.secret_len = 512;
    assert_int_equal(jwt_verifier_init(&v, &c, err, sizeof err), 0);
    c.secret_len = 32;
    assert_int_equal(jwt_verifier_init(&v, &c, err, sizeof err), 0);
    c.leeway_s = -1;
    assert_int_equal(jwt_verifier_init(&v, &c, err, sizeof err), -1);
    assert_non_null(strstr(err, "JWT_LEEWAY_S"));
    c.leeway_s = 3601;
    assert_int_equal(jwt_verifier_init(&v, &c, err, sizeof err), -1);
    c.leeway_s = 3600;
    c.max_len = 63;
    assert_int_equal(jwt_verifier_init(&v, &c, err, sizeof err), -1);
    assert_non_null(strstr(err, "JWT_MAX_BYTES"));
    c.max_len = 16385;
    assert_int_equal(jwt_verifier_init(&v, &c, err, sizeof err), -1);
    c.max_len = 16384;
    char name[300];
    memset(name, 'a', 256);
    name[256] = '\0';
    c.audience = name;
    assert_int_equal(jwt_verifier_init(&v, &c, err, sizeof err), -1);
    assert_non_null(strstr(err, "JWT_AUDIENCE"));
    name[255] = '\0';
    assert_int_equal(jwt_verifier_init(&v, &c, err, sizeof err), 0);
    assert_string_equal(v.audience, name);
    jwt_verifier_clear(&v);
    assert_int_equal(v.max_len, 0);
    /* a cleared (or never set up) verifier refuses everything without touching the key */
    assert_jwt(verify_str(&v, PY_TOKEN_1), JWT_TOO_LONG);
}

static void test_names(void **state)
{
    for (int e = JWT_OK; e <= JWT_NO_MEMORY; e++)
        assert_string_not_equal(jwt_err_name((enum jwt_err)e), "unknown");
    assert_string_equal(jwt_err_name(JWT_BAD_ALG), "bad_alg");
    assert_string_equal(jwt_err_name((enum jwt_err)99), "unknown");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_python_tokens),
        cmocka_unit_test(test_rfc7515_a1),
        cmocka_unit_test(test_jwtio_example),
        cmocka_unit_test(test_time_edges),
        cmocka_unit_test(test_leeway_zero_and_config),
        cmocka_unit_test(test_time_claim_types),
        cmocka_unit_test(test_signature),
        cmocka_unit_test(test_noncanonical_base64),
        cmocka_unit_test(test_b64url_encode),
        cmocka_unit_test(test_alg_confusion),
        cmocka_unit_test(test_header_params),
        cmocka_unit_test(test_duplicate_keys),
        cmocka_unit_test(test_structure),
        cmocka_unit_test(test_not_objects),
        cmocka_unit_test(test_sizes),
        cmocka_unit_test(test_depth),
        cmocka_unit_test(test_subject_and_role),
        cmocka_unit_test(test_audience_issuer),
        cmocka_unit_test(test_config_errors),
        cmocka_unit_test(test_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
