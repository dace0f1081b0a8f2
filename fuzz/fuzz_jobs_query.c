/* fuzz_jobs_query — libFuzzer harness for the query string of GET /jobs
 * (src/api/api_jobs_query.c over http_query_get and http_pct_decode): the input is the raw query
 * after '?', exactly as the parser hands it over (a superset: llhttp would refuse spaces and
 * control characters before it got here).
 *
 * Besides crashes and sanitizer reports it checks the filter the engine is given: every number
 * in its range, the defaults when a key is absent, a refusal when a value is unreadable (too
 * long for the parser's buffer, or a bad escape), the status one of the five names (or any),
 * workflowId as decoded, and a refusal naming the key it is about.
 * Seed corpus: fuzz/corpus/jobs_query/ (every key, escapes, bounds, repeats, bad values). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"
#include "api/api_jobs_query.h"
#include "http/http_parser.h"
#include "jobs/job.h"

static bool absent(const struct http_request *r, const char *key)
{
    char v[100];
    return http_query_get(r, key, v, sizeof(v)) == -1;
}

/* A value there but unreadable into the parser's buffer of cap bytes is refused. */
static bool unreadable(const struct http_request *r, const char *key, size_t cap)
{
    char v[100];
    return http_query_get(r, key, v, cap) == -2;
}

static void check_refusal(const char *err, size_t cap)
{
    static const char *const keys[] = {"limit ", "after ", "before ", "cursor ", "status ",
                                       "workflowId "};
    CHECK(memchr(err, '\0', cap));
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        if (!strncmp(err, keys[i], strlen(keys[i])))
            return;
    }
    abort();
}

static void check_query(const struct http_request *r, const struct api_jobs_query *q)
{
    CHECK(q->limit >= 1 && q->limit <= 1000);
    CHECK(q->after_ms >= 0 && q->before_ms >= 0 && q->cursor <= INT64_MAX);
    CHECK(!absent(r, "limit") || q->limit == 50);
    CHECK(!absent(r, "after") || q->after_ms == 0);
    CHECK(!absent(r, "before") || q->before_ms == 0);
    CHECK(!absent(r, "cursor") || q->cursor == 0);
    static const char *const nums[] = {"limit", "after", "before", "cursor"};
    for (size_t i = 0; i < sizeof(nums) / sizeof(nums[0]); i++)
        CHECK(!unreadable(r, nums[i], 32));
    CHECK(!unreadable(r, "status", 100));
    CHECK(memchr(q->workflow_id, '\0', sizeof(q->workflow_id)));
    char v[sizeof(q->workflow_id)];
    int wl = http_query_get(r, "workflowId", v, sizeof(v));
    CHECK(wl != -2);
    if (wl >= 0)
        CHECK(!strcmp(v, q->workflow_id));
    else
        CHECK(q->workflow_id[0] == '\0');
    if (absent(r, "status")) {
        CHECK(q->status == -1);
    } else {
        CHECK(q->status >= JOB_QUEUED && q->status <= JOB_CANCELED);
        char s[100];
        CHECK(http_query_get(r, "status", s, sizeof(s)) >= 0);
        CHECK(!strcmp(s, job_status_name((enum job_status)q->status)));
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct http_request r = {.query = (const char *)data, .query_len = size};
    struct api_jobs_query q;
    char err[512];
    err[0] = '\0';
    if (api_jobs_query_parse(&r, &q, err, sizeof(err)) < 0) {
        check_refusal(err, sizeof(err));
        return 0;
    }
    check_query(&r, &q);
    return 0;
}
