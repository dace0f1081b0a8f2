/* webhook_sign: the Standard Webhooks example vector (checked with the npm standardwebhooks
 * library), rotation, the X-Signature hex scheme, secret parsing, message ids. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "webhook/webhook_sign.c"

#define SPEC_SECRET "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
#define SPEC_ID "msg_p5jXN8AQM9LWM0D4loKWxJek"
#define SPEC_TS 1614265330
#define SPEC_BODY "{\"test\": 2432232314}"
#define SPEC_SIG "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
/* 32 bytes of 7, and its signature of the spec message (standardwebhooks' Webhook.sign) */
#define PREV_SECRET "whsec_BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc="
#define PREV_SIG "v1,YO/ulmd+VFtlnbodv7yLOOsS6RlBZ48h++gXZrGOpZo="

static void parse_ok(struct webhook_secret *s, const char *text)
{
    char err[256] = "";
    if (webhook_secret_parse(s, text, "WEBHOOK_SECRET", err, sizeof(err)) != 0)
        fail_msg("%s: %s", text, err);
}

static void test_spec_vector(void **state)
{
    struct webhook_secret s;
    parse_ok(&s, SPEC_SECRET);
    assert_int_equal(s.len, 24);
    char sig[WEBHOOK_SIG_SIZE];
    size_t n = webhook_sign_v1(&s, SPEC_ID, SPEC_TS, SPEC_BODY, strlen(SPEC_BODY), sig);
    assert_string_equal(sig, SPEC_SIG);
    assert_int_equal(n, strlen(SPEC_SIG));
    /* any change to id, timestamp or body changes it */
    webhook_sign_v1(&s, SPEC_ID, SPEC_TS + 1, SPEC_BODY, strlen(SPEC_BODY), sig);
    assert_string_not_equal(sig, SPEC_SIG);
    webhook_sign_v1(&s, SPEC_ID, SPEC_TS, SPEC_BODY, strlen(SPEC_BODY) - 1, sig);
    assert_string_not_equal(sig, SPEC_SIG);
}

static void test_rotation(void **state)
{
    struct webhook_secret cur, prev, none;
    parse_ok(&cur, SPEC_SECRET);
    parse_ok(&prev, PREV_SECRET);
    assert_int_equal(prev.len, 32);
    memset(&none, 0, sizeof(none));
    char sig[WEBHOOK_SIG_SIZE];
    webhook_signature(&cur, &prev, SPEC_ID, SPEC_TS, SPEC_BODY, strlen(SPEC_BODY), sig);
    assert_string_equal(sig, SPEC_SIG " " PREV_SIG);
    assert_true(strlen(sig) < WEBHOOK_SIG_SIZE);
    webhook_signature(&cur, &none, SPEC_ID, SPEC_TS, SPEC_BODY, strlen(SPEC_BODY), sig);
    assert_string_equal(sig, SPEC_SIG);
    webhook_signature(&cur, NULL, SPEC_ID, SPEC_TS, SPEC_BODY, strlen(SPEC_BODY), sig);
    assert_string_equal(sig, SPEC_SIG);
}

static void test_hex_signature(void **state)
{
    struct webhook_secret s;
    parse_ok(&s, SPEC_SECRET);
    char x[WEBHOOK_XSIG_SIZE];
    webhook_signature_hex(&s, SPEC_BODY, strlen(SPEC_BODY), x);
    /* node: crypto.createHmac("sha256", key).update(body).digest("hex") */
    assert_string_equal(x,
                        "sha256=e2cb4f5251572539d458bfb8a7adb533b08801e6a794467e06f771debbb0818b");
}

static void parse_bad(const char *text, const char *want)
{
    struct webhook_secret s;
    char err[256] = "";
    assert_int_equal(webhook_secret_parse(&s, text, "WEBHOOK_SECRET", err, sizeof(err)), -1);
    if (!strstr(err, want))
        fail_msg("%s: message \"%s\" lacks \"%s\"", text, err, want);
    assert_non_null(strstr(err, "WEBHOOK_SECRET"));
    assert_int_equal(s.len, 0);
}

static void test_secret_errors(void **state)
{
    parse_bad("", "whsec_");
    parse_bad("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_");
    parse_bad("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaS$", "not valid base64");
    parse_bad("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSwM", "not valid base64"); /* 33: 1 mod 4 */
    parse_bad("whsec_MfKQ9r8G=KYqrTwjUPD8ILPZIo2LaLaSw", "not valid base64"); /* '=' inside */
    parse_bad("whsec_MfKQ9r8GKYqrTwjUPD8ILPZI", "24 to 64 bytes");            /* 16 bytes */
    parse_bad("whsec_", "24 to 64 bytes");
    char big[200] = "whsec_"; /* 65 bytes */
    memset(big + 6, 'A', 84);
    strcpy(big + 90, "AAA=");
    parse_bad(big, "24 to 64 bytes");
    char huge[1200] = "whsec_";
    memset(huge + 6, 'A', 1100);
    parse_bad(huge, "24 to 64 bytes");
}

static void test_secret_forms(void **state)
{
    struct webhook_secret s;
    char max[100] = "whsec_"; /* exactly 64 bytes */
    memset(max + 6, 'A', 84);
    strcpy(max + 90, "AA==");
    parse_ok(&s, max);
    assert_int_equal(s.len, 64);
    max[strlen(max) - 2] = '\0'; /* padding is optional */
    parse_ok(&s, max);
    assert_int_equal(s.len, 64);
    parse_ok(&s, PREV_SECRET);
    for (size_t i = 0; i < 32; i++)
        assert_int_equal(s.key[i], 7);
}

static void test_msg_id(void **state)
{
    char a[WEBHOOK_ID_SIZE], b[WEBHOOK_ID_SIZE];
    assert_int_equal(webhook_msg_id(a), 0);
    assert_int_equal(webhook_msg_id(b), 0);
    assert_int_equal(strlen(a), WEBHOOK_ID_SIZE - 1);
    assert_memory_equal(a, "msg_", 4);
    for (size_t i = 4; a[i]; i++) {
        char c = a[i];
        assert_true((c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'));
    }
    assert_string_not_equal(a, b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spec_vector),   cmocka_unit_test(test_rotation),
        cmocka_unit_test(test_hex_signature), cmocka_unit_test(test_secret_errors),
        cmocka_unit_test(test_secret_forms),  cmocka_unit_test(test_msg_id),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
