/* s3_sign against the examples AWS publishes for Signature Version 4 with S3 ("Examples: Signature
 * Calculations in AWS Signature Version 4", and "Authenticating Requests: Using Query
 * Parameters"): a signer that matches them byte for byte matches every S3 implementation. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "store/s3_sign.h"

#define AK "AKIAIOSFODNN7EXAMPLE"
#define SK "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
#define T20130524 ((time_t)1369353600)

static void aws_get_object_example(void **state)
{
    (void)state;
    const struct s3_header h[] = {{"host", "examplebucket.s3.amazonaws.com"},
                                  {"range", "bytes=0-9"},
                                  {"x-amz-content-sha256", S3_EMPTY_SHA256},
                                  {"x-amz-date", "20130524T000000Z"}};
    struct s3_sign_in in = {.method = "GET", .path = "/test.txt", .query = "", .headers = h,
                            .nheaders = 4, .payload_hash = S3_EMPTY_SHA256,
                            .amz_date = "20130524T000000Z", .region = "us-east-1", .secret = SK};
    char sig[65];
    assert_int_equal(s3_signature(&in, sig), 0);
    assert_string_equal(sig, "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
}

static void aws_put_object_example(void **state)
{
    (void)state;
    /* PUT /test$file.text: '$' is encoded in the canonical path */
    char path[64];
    assert_true(s3_uri_encode(path, sizeof(path), "/test$file.text", true) > 0);
    assert_string_equal(path, "/test%24file.text");
    const char *ph = "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072";
    const struct s3_header h[] = {{"date", "Fri, 24 May 2013 00:00:00 GMT"},
                                  {"host", "examplebucket.s3.amazonaws.com"},
                                  {"x-amz-content-sha256", ph},
                                  {"x-amz-date", "20130524T000000Z"},
                                  {"x-amz-storage-class", "REDUCED_REDUNDANCY"}};
    struct s3_sign_in in = {.method = "PUT", .path = path, .query = "", .headers = h,
                            .nheaders = 5, .payload_hash = ph, .amz_date = "20130524T000000Z",
                            .region = "us-east-1", .secret = SK};
    char sig[65];
    assert_int_equal(s3_signature(&in, sig), 0);
    assert_string_equal(sig, "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd");
}

static struct s3_target example_target(void)
{
    struct s3_target t = {0};
    char err[128];
    assert_int_equal(s3_target_endpoint(&t, "https://s3.amazonaws.com", err, sizeof(err)), 0);
    snprintf(t.bucket, sizeof(t.bucket), "examplebucket");
    snprintf(t.region, sizeof(t.region), "us-east-1");
    snprintf(t.access_key, sizeof(t.access_key), AK);
    snprintf(t.secret, sizeof(t.secret), SK);
    return t;
}

static void aws_presigned_url_example(void **state)
{
    (void)state;
    struct s3_target t = example_target(); /* virtual-hosted: examplebucket.s3.amazonaws.com */
    char url[2048];
    assert_int_equal(s3_presign_get(&t, "test.txt", T20130524, 86400, url, sizeof(url)), 0);
    assert_string_equal(url, "https://examplebucket.s3.amazonaws.com/test.txt"
                             "?X-Amz-Algorithm=AWS4-HMAC-SHA256"
                             "&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3"
                             "%2Faws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400"
                             "&X-Amz-SignedHeaders=host&X-Amz-Signature="
                             "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404");
    assert_int_equal(s3_presign_get(&t, "test.txt", T20130524, 0, url, sizeof(url)), -1);
    assert_int_equal(s3_presign_get(&t, "test.txt", T20130524, 604801, url, sizeof(url)), -1);
    assert_int_equal(s3_presign_get(&t, "test.txt", T20130524, 60, url, 40), -1);
}

static void authorization_header_form(void **state)
{
    (void)state;
    struct s3_target t = example_target();
    char date[17], auth[512];
    assert_int_equal(s3_authorize(&t, "GET", "test.txt", S3_EMPTY_SHA256, T20130524, date, auth,
                                  sizeof(auth)),
                     0);
    assert_string_equal(date, "20130524T000000Z");
    /* the GET example without its Range header, checked against s3_signature directly */
    const struct s3_header h[] = {{"host", "examplebucket.s3.amazonaws.com"},
                                  {"x-amz-content-sha256", S3_EMPTY_SHA256},
                                  {"x-amz-date", "20130524T000000Z"}};
    struct s3_sign_in in = {.method = "GET", .path = "/test.txt", .query = "", .headers = h,
                            .nheaders = 3, .payload_hash = S3_EMPTY_SHA256,
                            .amz_date = "20130524T000000Z", .region = "us-east-1", .secret = SK};
    char sig[65], want[512];
    assert_int_equal(s3_signature(&in, sig), 0);
    snprintf(want, sizeof(want),
             "AWS4-HMAC-SHA256 Credential=" AK "/20130524/us-east-1/s3/aws4_request,"
             "SignedHeaders=host;x-amz-content-sha256;x-amz-date,Signature=%s",
             sig);
    assert_string_equal(auth, want);
}

/* Temporary credentials: the token is a signed header (and a signed query parameter of a
 * presigned URL, escaped, in its sorted place), checked against s3_signature directly. */
static void session_token(void **state)
{
    (void)state;
    struct s3_target t = example_target();
    snprintf(t.session_token, sizeof(t.session_token), "Tok/en+=");
    char date[17], auth[512], sig[65], want[600];
    assert_int_equal(s3_authorize(&t, "GET", "test.txt", S3_EMPTY_SHA256, T20130524, date, auth,
                                  sizeof(auth)),
                     0);
    const struct s3_header h[] = {{"host", "examplebucket.s3.amazonaws.com"},
                                  {"x-amz-content-sha256", S3_EMPTY_SHA256},
                                  {"x-amz-date", "20130524T000000Z"},
                                  {"x-amz-security-token", "Tok/en+="}};
    struct s3_sign_in in = {.method = "GET", .path = "/test.txt", .query = "", .headers = h,
                            .nheaders = 4, .payload_hash = S3_EMPTY_SHA256,
                            .amz_date = "20130524T000000Z", .region = "us-east-1", .secret = SK};
    assert_int_equal(s3_signature(&in, sig), 0);
    snprintf(want, sizeof(want),
             "AWS4-HMAC-SHA256 Credential=" AK "/20130524/us-east-1/s3/aws4_request,"
             "SignedHeaders=host;x-amz-content-sha256;x-amz-date;x-amz-security-token,"
             "Signature=%s",
             sig);
    assert_string_equal(auth, want);

    char url[2048];
    assert_int_equal(s3_presign_get(&t, "test.txt", T20130524, 86400, url, sizeof(url)), 0);
    const char *query = "X-Amz-Algorithm=AWS4-HMAC-SHA256"
                        "&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3"
                        "%2Faws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400"
                        "&X-Amz-Security-Token=Tok%2Fen%2B%3D&X-Amz-SignedHeaders=host";
    const struct s3_header hh[] = {{"host", "examplebucket.s3.amazonaws.com"}};
    struct s3_sign_in q = {.method = "GET", .path = "/test.txt", .query = query, .headers = hh,
                           .nheaders = 1, .payload_hash = "UNSIGNED-PAYLOAD",
                           .amz_date = "20130524T000000Z", .region = "us-east-1", .secret = SK};
    assert_int_equal(s3_signature(&q, sig), 0);
    snprintf(want, sizeof(want), "https://examplebucket.s3.amazonaws.com/test.txt?%s"
             "&X-Amz-Signature=%s", query, sig);
    assert_string_equal(url, want);
}

static void endpoints_and_path_style(void **state)
{
    (void)state;
    struct s3_target t = {0};
    char err[128], host[300], path[256], url[512];
    assert_int_equal(s3_target_endpoint(&t, "http://127.0.0.1:9000/base/", err, sizeof(err)), 0);
    assert_false(t.https);
    assert_string_equal(t.host, "127.0.0.1:9000");
    assert_string_equal(t.base_path, "/base");
    snprintf(t.bucket, sizeof(t.bucket), "out");
    t.path_style = true;
    assert_int_equal(
        s3_object_where(&t, "p/job 1/a+b.png", host, path, sizeof(path), url, sizeof(url)), 0);
    assert_string_equal(host, "127.0.0.1:9000");
    assert_string_equal(path, "/base/out/p/job%201/a%2Bb.png");
    assert_string_equal(url, "http://127.0.0.1:9000/base/out/p/job%201/a%2Bb.png");
    /* the Host a browser sends for a presigned URL: lower case, no default port */
    assert_int_equal(s3_target_endpoint(&t, "https://S3.Example.COM:443", err, sizeof(err)), 0);
    assert_string_equal(t.host, "s3.example.com");
    assert_int_equal(s3_target_endpoint(&t, "http://[::1]:80/", err, sizeof(err)), 0);
    assert_string_equal(t.host, "[::1]");
    assert_int_equal(s3_target_endpoint(&t, "http://h:443", err, sizeof(err)), 0);
    assert_string_equal(t.host, "h:443");
    assert_int_equal(s3_target_endpoint(&t, "ftp://x", err, sizeof(err)), -1);
    assert_int_equal(s3_target_endpoint(&t, "http://h/a/../b", err, sizeof(err)), -1);
    assert_int_equal(s3_target_endpoint(&t, "http://h/a/.", err, sizeof(err)), -1);
    assert_int_equal(s3_target_endpoint(&t, "http://h/a%20b", err, sizeof(err)), -1);
    assert_int_equal(s3_target_endpoint(&t, "http://", err, sizeof(err)), -1);
    assert_int_equal(s3_target_endpoint(&t, "http://u:p@host", err, sizeof(err)), -1);
    assert_int_equal(s3_target_endpoint(&t, "http://host/?a=b", err, sizeof(err)), -1);
    char small[8];
    assert_int_equal(s3_uri_encode(small, sizeof(small), "abcdefgh", false), -1);
    assert_int_equal(s3_uri_encode(small, sizeof(small), "a/b", false), 5);
    assert_string_equal(small, "a%2Fb");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(aws_get_object_example),    cmocka_unit_test(aws_put_object_example),
        cmocka_unit_test(aws_presigned_url_example), cmocka_unit_test(authorization_header_form),
        cmocka_unit_test(endpoints_and_path_style),   cmocka_unit_test(session_token),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
