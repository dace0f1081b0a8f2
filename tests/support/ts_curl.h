/* ts_curl — libcurl for the tests: a transfer that collects the status, the response headers
 * and the body, usable on its own (easy) or many at once in a curl multi handle. */
#ifndef COMFYGATE_TS_CURL_H
#define COMFYGATE_TS_CURL_H

#include <curl/curl.h>
#include <stdbool.h>
#include <stddef.h>

struct ts_xfer {
    CURL *easy;
    struct curl_slist *req_headers;
    long status;
    char *body;
    size_t body_len;
    char *headers; /* header lines of the last response ("Name: value\r\n"...) */
    size_t headers_len;
    size_t max_body; /* bytes kept; the rest is counted in body_len only */
    void *user;
};

/* url is e.g. "http://127.0.0.1:PORT/path"; req_headers NULL-terminated ("Name: value"). */
int ts_xfer_init(struct ts_xfer *x, const char *url, const char *const *req_headers);
/* Forgets the previous response (for reuse of the same handle). */
void ts_xfer_reset(struct ts_xfer *x);
void ts_xfer_free(struct ts_xfer *x);
/* Case-insensitive: copies the value of `name` from the last response into dst. */
bool ts_xfer_header(const struct ts_xfer *x, const char *name, char *dst, size_t cap);

/* Runs one transfer (curl easy); the CURLcode. */
CURLcode ts_curl_perform(struct ts_xfer *x);
/* One GET; status or -1. The body and headers stay in x (ts_xfer_free it). */
long ts_curl_get(struct ts_xfer *x, int port, const char *path, const char *const *hdrs);

#endif
