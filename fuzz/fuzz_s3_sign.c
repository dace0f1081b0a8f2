/* fuzz_s3_sign — libFuzzer harness for the SigV4 signer (src/store/s3_sign): S3_ENDPOINT
 * parsing, and object keys built from file names ComfyUI reports (outside input).
 *
 * Input: an endpoint, '\n', then an object key. Besides crashes and sanitizer reports it checks
 * that a key's encoding decodes back to the key and holds only unreserved characters, '%XX'
 * and '/'; that every URL, Host and Authorization value is printable ASCII without spaces
 * (nothing in a key can split or extend a header); that the presigned URL starts with the
 * object's URL; and that signing is a pure function (the same inputs, the same signature).
 * Seed corpus: fuzz/corpus/s3_sign/. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"
#include "store/s3_sign.h"

static bool printable(const char *s)
{
    for (; *s; s++) {
        if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7f)
            return false;
    }
    return true;
}

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

static void check_encoding(const char *key)
{
    char enc[4096], dec[2048];
    if (s3_uri_encode(enc, sizeof(enc), key, true) < 0)
        return;
    size_t o = 0;
    for (const char *p = enc; *p; p++) {
        if (*p == '%') {
            CHECK(hexval(p[1]) >= 0 && hexval(p[2]) >= 0);
            dec[o++] = (char)(hexval(p[1]) * 16 + hexval(p[2]));
            p += 2;
        } else {
            CHECK(strchr("-._~/", *p) || (*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z') ||
                  (*p >= 'A' && *p <= 'Z'));
            dec[o++] = *p;
        }
    }
    dec[o] = '\0';
    CHECK(!strcmp(dec, key));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 1500)
        return 0;
    char buf[1501];
    memcpy(buf, data, size);
    buf[size] = '\0';
    if (strlen(buf) != size)
        return 0; /* C strings: a NUL cannot reach these functions */
    char *nl = strchr(buf, '\n');
    const char *endpoint = buf, *key = "";
    if (nl) {
        *nl = '\0';
        key = nl + 1;
    }
    check_encoding(key);
    struct s3_target t = {0};
    char err[256];
    if (s3_target_endpoint(&t, endpoint, err, sizeof(err)) < 0)
        return 0;
    CHECK(printable(t.host) && t.host[0]);
    snprintf(t.bucket, sizeof(t.bucket), "bucket-1");
    snprintf(t.region, sizeof(t.region), "eu-west-1");
    snprintf(t.access_key, sizeof(t.access_key), "AKIDEXAMPLE");
    snprintf(t.secret, sizeof(t.secret), "secret/key+1");
    for (int v = 0; v < 4; v++) { /* path style or not, with a session token or not */
        t.path_style = v & 1;
        snprintf(t.session_token, sizeof(t.session_token), "%s", v & 2 ? "IQo/Jb+3=" : "");
        char host[300], path[1400], url[1800];
        if (s3_object_where(&t, key, host, path, sizeof(path), url, sizeof(url)) < 0)
            continue;
        CHECK(printable(host) && printable(path) && printable(url) && path[0] == '/');
        char date[17], auth[600], auth2[600];
        if (s3_authorize(&t, "PUT", key, S3_EMPTY_SHA256, 1369353600, date, auth,
                         sizeof(auth)) == 0) {
            CHECK(!strcmp(date, "20130524T000000Z"));
            CHECK(!strncmp(auth, "AWS4-HMAC-SHA256 Credential=", 28));
            CHECK(printable(auth + 17));
            CHECK(s3_authorize(&t, "PUT", key, S3_EMPTY_SHA256, 1369353600, date, auth2,
                               sizeof(auth2)) == 0 &&
                  !strcmp(auth, auth2));
        }
        char pre[2048];
        if (s3_presign_get(&t, key, 1369353600, 600, pre, sizeof(pre)) == 0) {
            CHECK(printable(pre));
            CHECK(!strncmp(pre, url, strlen(url)) && pre[strlen(url)] == '?');
            CHECK(!(v & 2) == !strstr(pre, "&X-Amz-Security-Token=IQo%2FJb%2B3%3D&"));
        }
    }
    return 0;
}
