/* test_job — a job's log: lines are kept as they come (the ring grows with them), the last
 * JOB_LOG_LINES survive in order once it wraps, credentials never reach it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "jobs/job.h"

static const char *line_message(json_t *arr, size_t i)
{
    return json_string_value(json_object_get(json_array_get(arr, i), "message"));
}

static void log_grows_then_wraps(void **state)
{
    struct job *j = calloc(1, sizeof(*j));
    assert_non_null(j);
    json_t *arr = job_log_json(j);
    assert_int_equal(json_array_size(arr), 0);
    json_decref(arr);
    assert_null(job_log_last_json(j));
    for (int i = 0; i < JOB_LOG_LINES + 8; i++) {
        job_log(j, "info", "line %d", i);
        arr = job_log_json(j);
        size_t want = i + 1 < JOB_LOG_LINES ? (size_t)i + 1 : JOB_LOG_LINES;
        assert_int_equal(json_array_size(arr), want);
        char first[32], last[32];
        snprintf(first, sizeof(first), "line %d",
                 i + 1 > JOB_LOG_LINES ? i + 1 - JOB_LOG_LINES : 0);
        snprintf(last, sizeof(last), "line %d", i);
        assert_string_equal(line_message(arr, 0), first);
        assert_string_equal(line_message(arr, want - 1), last);
        json_decref(arr);
        json_t *l = job_log_last_json(j);
        assert_string_equal(json_string_value(json_object_get(l, "message")), last);
        json_decref(l);
    }
    assert_true(j->log_cap <= JOB_LOG_LINES);
    job_free(j);
}

static void log_strips_credentials(void **state)
{
    struct job *j = calloc(1, sizeof(*j));
    assert_non_null(j);
    job_log(j, "warn", "fetching %s failed", "http://user:secret@example.com/x.png");
    json_t *l = job_log_last_json(j);
    assert_string_equal(json_string_value(json_object_get(l, "message")),
                        "fetching http://example.com/x.png failed");
    assert_string_equal(json_string_value(json_object_get(l, "level")), "warn");
    json_decref(l);
    job_free(j);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(log_grows_then_wraps),
        cmocka_unit_test(log_strips_credentials),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
