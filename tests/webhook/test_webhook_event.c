/* webhook_event: the webhookEvents filter, which events go, the progress throttle (a fake
 * clock: plain numbers). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "webhook/webhook_event.c"

static unsigned parse(const char *json)
{
    json_t *v = json ? json_loads(json, 0, NULL) : NULL;
    unsigned m = 999;
    char err[256] = "";
    if (webhook_filter_parse(v, &m, err, sizeof(err)) != 0)
        fail_msg("%s: %s", json, err);
    json_decref(v);
    return m;
}

static void parse_bad(const char *json, const char *want)
{
    json_t *v = json_loads(json, JSON_DECODE_ANY, NULL);
    unsigned m;
    char err[256] = "";
    assert_non_null(v);
    assert_int_equal(webhook_filter_parse(v, &m, err, sizeof(err)), -1);
    if (!strstr(err, want))
        fail_msg("%s: message \"%s\" lacks \"%s\"", json, err, want);
    json_decref(v);
}

static void test_filter_parse(void **state)
{
    assert_int_equal(parse(NULL), WEBHOOK_F_COMPLETED);
    assert_int_equal(parse("[]"), 0);
    assert_int_equal(parse("[\"completed\"]"), WEBHOOK_F_COMPLETED);
    assert_int_equal(parse("[\"queued\", \"running\", \"progress\", \"output\", \"completed\"]"),
                     WEBHOOK_F_QUEUED | WEBHOOK_F_RUNNING | WEBHOOK_F_PROGRESS | WEBHOOK_F_OUTPUT |
                         WEBHOOK_F_COMPLETED);
    assert_int_equal(parse("[\"output\", \"output\"]"), WEBHOOK_F_OUTPUT);
    parse_bad("[\"completed\", \"start\"]", "webhookEvents[1]: unknown event \"start\"");
    parse_bad("[\"Completed\"]", "webhookEvents[0]");
    parse_bad("[1]", "a non-string");
    parse_bad("\"completed\"", "must be an array");
    parse_bad("{}", "must be an array");
}

static void test_filter_json(void **state)
{
    json_t *a = webhook_filter_json(WEBHOOK_F_RUNNING | WEBHOOK_F_COMPLETED);
    char *s = json_dumps(a, JSON_COMPACT);
    assert_string_equal(s, "[\"running\",\"completed\"]");
    unsigned m;
    char err[64];
    assert_int_equal(webhook_filter_parse(a, &m, err, sizeof(err)), 0);
    assert_int_equal(m, WEBHOOK_F_RUNNING | WEBHOOK_F_COMPLETED);
    free(s);
    json_decref(a);
}

static void test_wanted(void **state)
{
    const char *terminal[] = {"job.succeeded", "job.failed", "job.canceled", "prompt.complete",
                              "prompt.failed"};
    for (size_t i = 0; i < 5; i++) {
        assert_true(webhook_event_terminal(terminal[i]));
        assert_true(webhook_event_wanted(0, terminal[i])); /* whatever the filter */
    }
    assert_false(webhook_event_terminal("job.progress"));
    assert_false(webhook_event_wanted(WEBHOOK_F_DEFAULT, "job.queued"));
    assert_false(webhook_event_wanted(WEBHOOK_F_DEFAULT, "job.progress"));
    assert_true(webhook_event_wanted(WEBHOOK_F_QUEUED, "job.queued"));
    assert_false(webhook_event_wanted(WEBHOOK_F_QUEUED, "job.running"));
    assert_true(webhook_event_wanted(WEBHOOK_F_RUNNING, "job.running"));
    assert_true(webhook_event_wanted(WEBHOOK_F_PROGRESS, "job.progress"));
    assert_true(webhook_event_wanted(WEBHOOK_F_OUTPUT, "job.output"));
    assert_false(webhook_event_wanted(0x1f, "job.completed")); /* not a type */
    assert_false(webhook_event_wanted(0x1f, "job.bogus"));
    assert_false(webhook_event_wanted(0x1f, "prompt.queued"));
    assert_false(webhook_event_wanted(0x1f, "queued"));
}

static void test_throttle(void **state)
{
    struct webhook_throttle t;
    memset(&t, 0, sizeof(t));
    assert_true(webhook_throttle_pass(&t, 0));
    assert_false(webhook_throttle_pass(&t, 1));
    assert_false(webhook_throttle_pass(&t, 499));
    assert_true(webhook_throttle_pass(&t, 500));
    assert_false(webhook_throttle_pass(&t, 999));
    assert_true(webhook_throttle_pass(&t, 1000));
    assert_true(webhook_throttle_pass(&t, 5000)); /* after a quiet spell at once */
}

/* Progress every 7 ms for a minute: never more than 2 in any one-second window, and the rate
 * is actually about 2 per second (the throttle does not starve progress either). */
static void test_throttle_rate(void **state)
{
    struct webhook_throttle t;
    memset(&t, 0, sizeof(t));
    uint64_t sent[200];
    size_t n = 0;
    for (uint64_t ms = 12345; ms < 12345 + 60000; ms += 7) {
        if (webhook_should_send(WEBHOOK_F_PROGRESS, &t, "job.progress", ms)) {
            assert_true(n < 200);
            sent[n++] = ms;
        }
    }
    for (size_t i = 2; i < n; i++)
        assert_true(sent[i] - sent[i - 2] >= 1000);
    assert_true(n >= 110 && n <= 121);
    /* other events are not throttled, and a NULL throttle lets progress through */
    assert_true(webhook_should_send(WEBHOOK_F_OUTPUT, &t, "job.output", sent[n - 1]));
    assert_true(webhook_should_send(0, &t, "job.succeeded", sent[n - 1]));
    assert_true(webhook_should_send(WEBHOOK_F_PROGRESS, NULL, "job.progress", 1));
    assert_false(webhook_should_send(WEBHOOK_F_DEFAULT, &t, "job.progress", 1000000));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_filter_parse),  cmocka_unit_test(test_filter_json),
        cmocka_unit_test(test_wanted),        cmocka_unit_test(test_throttle),
        cmocka_unit_test(test_throttle_rate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
