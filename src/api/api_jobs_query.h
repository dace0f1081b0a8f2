/* api_jobs_query — the query string of GET /jobs (status, workflowId, after, before, cursor,
 * limit) taken apart into a job list filter. Pure (no I/O, no engine), so it is fuzzed; the
 * handler in api_jobs.c answers the 400 it reports. */
#ifndef COMFYGATE_API_JOBS_QUERY_H
#define COMFYGATE_API_JOBS_QUERY_H

#include <stddef.h>
#include <stdint.h>

struct http_request;

struct api_jobs_query {
    long limit;           /* 1..1000, 50 when absent */
    int64_t after_ms;     /* 0 when absent */
    int64_t before_ms;    /* 0 when absent */
    uint64_t cursor;      /* 0 when absent, else 1..INT64_MAX */
    char workflow_id[96]; /* "" when absent */
    int status;           /* an enum job_status, or -1 for any */
};

/* 0, or -1 with the message of a 400 VALIDATION_ERROR in err (also for a value that does not
 * decode or does not fit). */
int api_jobs_query_parse(const struct http_request *r, struct api_jobs_query *q, char *err,
                         size_t errlen);

#endif
