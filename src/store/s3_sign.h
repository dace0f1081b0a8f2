/* s3_sign — AWS Signature Version 4 for S3-compatible object stores (AWS S3, MinIO, Ceph RGW,
 * R2, s3rver...), with BearSSL's SHA-256 and HMAC.
 *
 * Two forms: an Authorization header for the gateway's own PUT/GET (the payload hash is signed,
 * so the store can check the body), and a presigned URL (query-string auth) handed to clients
 * in a redirect. Pure functions of their inputs, the time included, so the published AWS
 * examples are unit tests. */
#ifndef COMFYGATE_S3_SIGN_H
#define COMFYGATE_S3_SIGN_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#define S3_EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

/* A header to sign: name in lower case, value already trimmed. */
struct s3_header {
    const char *name;
    const char *value;
};

/* Everything a signature covers. Headers must be sorted by name and include "host". */
struct s3_sign_in {
    const char *method;
    const char *path;  /* canonical (URI-encoded) path, e.g. "/bucket/a%20b.png" */
    const char *query; /* canonical query string (sorted, encoded), "" if none */
    const struct s3_header *headers;
    size_t nheaders;
    const char *payload_hash; /* hex SHA-256 of the body, or "UNSIGNED-PAYLOAD" */
    const char *amz_date;     /* YYYYMMDDTHHMMSSZ */
    const char *region;
    const char *secret;
};

/* Where objects go: parsed once from S3_ENDPOINT and friends, then read-only. */
struct s3_target {
    bool https;
    char host[256];      /* the endpoint's host[:port] */
    char base_path[256]; /* the endpoint's path, "" or "/something" (no trailing '/') */
    char bucket[64];
    bool path_style; /* <endpoint>/<bucket>/<key> instead of <bucket>.<host>/<key> */
    char region[64];
    char access_key[129];
    char secret[257];
    char session_token[4096]; /* "": none; else signed as x-amz-security-token */
};

/* The hex signature (64 characters + NUL) for in; -1 if a buffer would overflow. */
int s3_signature(const struct s3_sign_in *in, char sig[65]);

/* Percent-encodes in as SigV4 wants (unreserved characters kept; '/' kept if keep_slash). Returns
 * the length written, or -1 if it does not fit. */
int s3_uri_encode(char *out, size_t cap, const char *in, bool keep_slash);

/* "YYYYMMDDTHHMMSSZ" for t (UTC). */
void s3_amz_date(time_t t, char out[17]);

/* Reads S3_ENDPOINT ("http(s)://host[:port][/path]"); 0, or -1 with a message in err. */
int s3_target_endpoint(struct s3_target *t, const char *endpoint, char *err, size_t errlen);

/* The request line pieces for object key: the Host header value, the canonical path and the
 * full URL. -1 if a buffer is too small. */
int s3_object_where(const struct s3_target *t, const char *key, char host[300], char *path,
                    size_t path_cap, char *url, size_t url_cap);

/* Signs a request for object key with the headers host, x-amz-content-sha256 and x-amz-date
 * (and x-amz-security-token with a session token: the caller sends it too). Writes the
 * x-amz-date value and the Authorization header value. */
int s3_authorize(const struct s3_target *t, const char *method, const char *key,
                 const char *payload_hash, time_t now, char amz_date[17], char *auth,
                 size_t auth_cap);

/* A presigned GET URL for object key valid for expires seconds from now (1..604800). */
int s3_presign_get(const struct s3_target *t, const char *key, time_t now, unsigned expires,
                   char *url, size_t cap);

#endif
