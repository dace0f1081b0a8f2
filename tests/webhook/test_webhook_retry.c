/* webhook_retry: status verdicts, back-off with full jitter (bounds, doubling, cap),
 * Retry-After (seconds, the three HTTP-date forms, garbage), RFC 3339 times. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "webhook/webhook_retry.c"

static void test_verdicts(void **state)
{
    assert_int_equal(webhook_status_verdict(200), WEBHOOK_V_DELIVERED);
    assert_int_equal(webhook_status_verdict(204), WEBHOOK_V_DELIVERED);
    assert_int_equal(webhook_status_verdict(299), WEBHOOK_V_DELIVERED);
    const long retry[] = {408, 429, 500, 502, 503, 504, 599, 0, 100};
    for (size_t i = 0; i < sizeof(retry) / sizeof(retry[0]); i++)
        assert_int_equal(webhook_status_verdict(retry[i]), WEBHOOK_V_RETRY);
    const long reject[] = {301, 302, 307, 400, 401, 403, 404, 409, 410, 413, 422};
    for (size_t i = 0; i < sizeof(reject) / sizeof(reject[0]); i++)
        assert_int_equal(webhook_status_verdict(reject[i]), WEBHOOK_V_REJECTED);
}

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static void test_backoff_bounds(void **state)
{
    uint64_t seed = 42;
    for (unsigned n = 1; n <= 40; n++) {
        uint64_t ceiling = 1000;
        for (unsigned i = 1; i < n && ceiling < 3600000; i++)
            ceiling *= 2;
        if (ceiling > 3600000)
            ceiling = 3600000;
        uint64_t lo = UINT64_MAX, hi = 0;
        for (int k = 0; k < 5000; k++) {
            uint64_t d = webhook_backoff_ms(1000, 3600000, n, splitmix(&seed));
            assert_true(d <= ceiling);
            lo = d < lo ? d : lo;
            hi = d > hi ? d : hi;
        }
        /* full jitter: the draws cover the range, not just its top */
        assert_true(lo < ceiling / 10 + 1);
        assert_true(hi > ceiling - ceiling / 10 - 1);
        /* both ends are reachable */
        assert_int_equal(webhook_backoff_ms(1000, 3600000, n, 0), 0);
        assert_int_equal(webhook_backoff_ms(1000, 3600000, n, ceiling), ceiling);
    }
    assert_int_equal(webhook_backoff_ms(1000, 3600000, 1, 999), 999);
    assert_int_equal(webhook_backoff_ms(1000, 3600000, 2, 2000), 2000);
    assert_int_equal(webhook_backoff_ms(1000, 3600000, 3, 4000), 4000);
    assert_int_equal(webhook_backoff_ms(1000, 3600000, 1000000, UINT64_MAX), UINT64_MAX % 3600001);
    assert_int_equal(webhook_backoff_ms(5000, 3000, 1, 4000), 4000 % 3001); /* cap wins */
}

static void ra_ok(const char *v, int64_t now, uint64_t want)
{
    uint64_t d = 12345678;
    if (webhook_retry_after_ms(v, now, 3600000, &d) != 0)
        fail_msg("\"%s\" refused", v);
    if (d != want)
        fail_msg("\"%s\": %llu ms, want %llu", v, (unsigned long long)d, (unsigned long long)want);
}

static void ra_bad(const char *v)
{
    uint64_t d = 7;
    if (webhook_retry_after_ms(v, 1445412480, 3600000, &d) != -1)
        fail_msg("\"%s\" accepted (%llu ms)", v, (unsigned long long)d);
    assert_int_equal(d, 7);
}

static void test_retry_after(void **state)
{
    const int64_t t = 1445412480; /* Wed, 21 Oct 2015 07:28:00 GMT */
    ra_ok("0", t, 0);
    ra_ok("1", t, 1000);
    ra_ok("120", t, 120000);
    ra_ok(" 5 ", t, 5000);
    ra_ok("3600", t, 3600000);
    ra_ok("3601", t, 3600000); /* capped */
    ra_ok("99999999999999999999999", t, 3600000);
    ra_ok("Wed, 21 Oct 2015 07:28:00 GMT", t - 30, 30000);
    ra_ok("Wednesday, 21-Oct-15 07:28:00 GMT", t - 90, 90000);
    ra_ok("Wed Oct 21 07:28:00 2015", t - 1, 1000);
    ra_ok("Wed, 21 Oct 2015 07:28:00 GMT", t + 500, 0); /* in the past: now */
    ra_ok("Wed, 21 Oct 2025 07:28:00 GMT", t, 3600000); /* far ahead: capped */
    ra_bad("");
    ra_bad("soon");
    ra_bad("-1");
    ra_bad("1.5");
    ra_bad("12 seconds");
    ra_bad("0x10");
    ra_bad("Wed, 99 Foo 2015 99:99:99 GMT");
}

static void test_rfc3339(void **state)
{
    char b[32];
    assert_int_equal(webhook_rfc3339(0, b), 24);
    assert_string_equal(b, "1970-01-01T00:00:00.000Z");
    webhook_rfc3339(1614265330123LL, b);
    assert_string_equal(b, "2021-02-25T15:02:10.123Z");
    webhook_rfc3339(4102444799999LL, b);
    assert_string_equal(b, "2099-12-31T23:59:59.999Z");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_verdicts),
        cmocka_unit_test(test_backoff_bounds),
        cmocka_unit_test(test_retry_after),
        cmocka_unit_test(test_rfc3339),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
