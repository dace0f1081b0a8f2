/* s3_resp — what the gateway keeps of an S3 error reply (pure, fuzzed): the first bytes of the
 * body, read for the <Code> of S3's error document (SignatureDoesNotMatch, RequestTimeout...) in
 * log lines and retry decisions. The store is reached over the network, so its replies are
 * outside input: nothing here trusts their length or shape. */
#ifndef COMFYGATE_S3_RESP_H
#define COMFYGATE_S3_RESP_H

#include <stdbool.h>
#include <stddef.h>

#define S3_RESP_MAX 512

/* Zero it before the transfer. */
struct s3_resp {
    char text[S3_RESP_MAX]; /* always NUL-terminated */
    size_t len;
};

/* A curl write callback (ud: a struct s3_resp): keeps the first S3_RESP_MAX - 1 bytes and
 * swallows the rest, so an endless reply cannot fail the transfer or grow memory. */
size_t s3_resp_write_cb(char *p, size_t size, size_t n, void *ud);

/* "S3 <what>: HTTP <status>" and, when the kept text holds <Code>...</Code> under 100 bytes,
 * " <Code>" ("S3 PUT: HTTP 403 SignatureDoesNotMatch"). */
void s3_resp_describe(const struct s3_resp *r, const char *what, long status, char *out,
                      size_t cap);

/* S3's own word for a retryable 400: <Code>RequestTimeout</Code>. */
bool s3_resp_transient_400(const struct s3_resp *r);

#endif
