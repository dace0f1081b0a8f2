/* api_jobs_query — see api_jobs_query.h. */
#include "api/api_jobs_query.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/http_parser.h"
#include "jobs/job.h"

/* A whole number in [lo, hi] from the query string; 0 if absent, -1 (and a message) if bad. */
static int query_num(const struct http_request *r, const char *key, long long lo, long long hi,
                     long long *out, char *err, size_t errlen)
{
    char v[32];
    *out = 0;
    int len = http_query_get(r, key, v, sizeof(v));
    if (len == -1)
        return 0;
    char *end;
    long long n = strtoll(v, &end, 10);
    if (len <= 0 || *end || n < lo || n > hi) {
        snprintf(err, errlen, "%s must be a whole number from %lld to %lld", key, lo, hi);
        return -1;
    }
    *out = n;
    return 1;
}

int api_jobs_query_parse(const struct http_request *r, struct api_jobs_query *q, char *err,
                         size_t errlen)
{
    long long n;
    memset(q, 0, sizeof(*q));
    q->status = -1;
    q->limit = 50;
    int rc = query_num(r, "limit", 1, 1000, &n, err, errlen);
    if (rc < 0)
        return -1;
    if (rc)
        q->limit = n;
    if (query_num(r, "after", 0, INT64_MAX, &n, err, errlen) < 0)
        return -1;
    q->after_ms = n;
    if (query_num(r, "before", 0, INT64_MAX, &n, err, errlen) < 0)
        return -1;
    q->before_ms = n;
    if (query_num(r, "cursor", 1, INT64_MAX, &n, err, errlen) < 0)
        return -1;
    q->cursor = (uint64_t)n;
    if (http_query_get(r, "workflowId", q->workflow_id, sizeof(q->workflow_id)) == -2) {
        snprintf(err, errlen, "workflowId must be a workflow id (at most %zu bytes, %%-escaped)",
                 sizeof(q->workflow_id) - 1);
        return -1;
    }
    char v[100];
    if (http_query_get(r, "status", v, sizeof(v)) != -1) {
        for (int s = JOB_QUEUED; s <= JOB_CANCELED; s++) {
            if (!strcmp(v, job_status_name((enum job_status)s)))
                q->status = s;
        }
        if (q->status < 0) {
            snprintf(err, errlen, "status must be queued, running, succeeded, failed or canceled");
            return -1;
        }
    }
    return 0;
}
