/* fuzz_s3_resp — libFuzzer harness for S3 error replies (src/store/s3_resp.c): the body an
 * S3-compatible store answers a failed PUT or GET with, taken in through the curl write callback
 * in chunks (as curl delivers it), then read for its <Code> into the log line and for the
 * retryable RequestTimeout.
 *
 * Input: one control byte (low bits: the chunk size curl uses; high bits: the HTTP status),
 * then the body. Besides crashes and sanitizer reports it checks that the callback always takes
 * every byte (a long reply must not fail the transfer), keeps exactly the first S3_RESP_MAX - 1,
 * NUL-terminated; that the description is "S3 PUT: HTTP <status>" plus at most the code, cut
 * to fit any buffer; and that the retry verdict is what the kept text says.
 * Seed corpus: fuzz/corpus/s3_resp/ (AWS, MinIO and R2 error documents, cut and oversized). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"
#include "store/s3_resp.h"

static const size_t chunk_sizes[4] = {1, 7, 100, 16384};
static const long statuses[8] = {400, 403, 404, 409, 500, 503, 200, -1};

static void check_describe(const struct s3_resp *r, long status)
{
    char out[300], prefix[64];
    s3_resp_describe(r, "PUT", status, out, sizeof(out));
    int pl = snprintf(prefix, sizeof(prefix), "S3 PUT: HTTP %ld", status);
    size_t n = strlen(out);
    CHECK(n < sizeof(out) && !strncmp(out, prefix, (size_t)pl));
    const char *code = strstr(r->text, "<Code>");
    const char *end = code ? strstr(code, "</Code>") : NULL;
    size_t clen = end ? (size_t)(end - code - 6) : 0;
    if (clen == 0) {
        CHECK(n == (size_t)pl);
    } else if (clen < 100) { /* " <Code>": what the text holds between the tags */
        CHECK(n == (size_t)pl + 1 + clen && out[pl] == ' ' &&
              !strncmp(out + pl + 1, code + 6, clen));
    } else { /* too long to log: the code is left out (a space stays) */
        CHECK(n == (size_t)pl + 1 && out[pl] == ' ');
    }
    /* a small buffer gets a terminated prefix of the same text */
    char small[12];
    s3_resp_describe(r, "PUT", status, small, sizeof(small));
    CHECK(strlen(small) < sizeof(small) && !strncmp(small, out, strlen(small)));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    size_t chunk = chunk_sizes[data[0] & 3];
    long status = statuses[(data[0] >> 2) & 7];
    const char *body = (const char *)data + 1;
    size_t n = size - 1;
    struct s3_resp r = {0};
    for (size_t off = 0; off < n; off += chunk) {
        size_t k = n - off < chunk ? n - off : chunk;
        /* curl's buffer is read only: the input (the last chunk ends where it does) */
        CHECK(s3_resp_write_cb((char *)body + off, 1, k, &r) == k);
    }
    size_t kept = n < S3_RESP_MAX - 1 ? n : S3_RESP_MAX - 1;
    CHECK(r.len == kept && r.text[kept] == '\0' && !memcmp(r.text, body, kept));
    check_describe(&r, status);
    bool transient = s3_resp_transient_400(&r);
    CHECK(transient == (strstr(r.text, "<Code>RequestTimeout</Code>") != NULL));
    return 0;
}
