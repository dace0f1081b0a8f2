/* test_http_file — the pure helpers behind file responses: Range, ETag, safe paths, MIME. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "http/http_file.h"

static enum http_range_result range(const char *v, uint64_t size, uint64_t *a, uint64_t *b)
{
    *a = 0xdead;
    *b = 0xbeef;
    return http_range_parse(v, strlen(v), size, a, b);
}

static void expect_range(const char *v, uint64_t size, uint64_t first, uint64_t last)
{
    uint64_t a, b;
    assert_int_equal(range(v, size, &a, &b), HTTP_RANGE_OK);
    assert_int_equal(a, first);
    assert_int_equal(b, last);
}

static void expect_none(const char *v, uint64_t size)
{
    uint64_t a, b;
    assert_int_equal(range(v, size, &a, &b), HTTP_RANGE_NONE);
}

static void expect_unsat(const char *v, uint64_t size)
{
    uint64_t a, b;
    assert_int_equal(range(v, size, &a, &b), HTTP_RANGE_UNSATISFIABLE);
}

static void range_first_last(void **state)
{
    expect_range("bytes=0-0", 100, 0, 0);
    expect_range("bytes=0-99", 100, 0, 99);
    expect_range("bytes=10-20", 100, 10, 20);
    expect_range("bytes=99-99", 100, 99, 99);
    expect_range("BYTES=1-2", 100, 1, 2); /* the unit is case-insensitive */
    expect_range("  bytes= 5-6", 100, 5, 6);
}

static void range_open_ended(void **state)
{
    expect_range("bytes=0-", 100, 0, 99);
    expect_range("bytes=42-", 100, 42, 99);
    expect_range("bytes=99-", 100, 99, 99);
}

static void range_suffix(void **state)
{
    expect_range("bytes=-1", 100, 99, 99);
    expect_range("bytes=-10", 100, 90, 99);
    expect_range("bytes=-100", 100, 0, 99);
    expect_range("bytes=-1000", 100, 0, 99); /* longer than the file: all of it */
    expect_unsat("bytes=-0", 100);
    expect_unsat("bytes=-5", 0); /* nothing to serve from an empty file */
}

static void range_last_clipped(void **state)
{
    expect_range("bytes=0-100", 100, 0, 99);
    expect_range("bytes=50-999999999999", 100, 50, 99);
    expect_range("bytes=0-18446744073709551605", 10, 0, 9);
}

static void range_unsatisfiable(void **state)
{
    expect_unsat("bytes=100-", 100);
    expect_unsat("bytes=100-200", 100);
    expect_unsat("bytes=500-600", 100);
    expect_unsat("bytes=0-", 0);
    expect_unsat("bytes=0-0", 0);
}

static void range_multi_falls_back(void **state)
{
    expect_none("bytes=0-1,5-6", 100);
    expect_none("bytes=0-1, 5-6", 100);
    expect_none("bytes=-5,0-1", 100);
    expect_none("bytes=500-600,0-1", 100); /* not 416: multi-range is simply not served */
}

static void range_garbage(void **state)
{
    expect_none("", 100);
    expect_none("bytes", 100);
    expect_none("bytes=", 100);
    expect_none("bytes=-", 100);
    expect_none("bytes=a-b", 100);
    expect_none("bytes=1", 100);
    expect_none("bytes=5-3", 100); /* last before first: invalid, ignored */
    expect_none("bytes=1-2x", 100);
    expect_none("bytes=1-2 ", 100);
    expect_none("bytes=--1", 100);
    expect_none("bytes=+1-2", 100);
    expect_none("items=0-1", 100);
    expect_none("bytes:0-1", 100);
    /* numbers past uint64 are still numbers: a start past the end, a suffix of it all */
    expect_unsat("bytes=99999999999999999999-", 100);
    expect_unsat("bytes=18446744073709551615-", 100);
    expect_range("bytes=-99999999999999999999", 100, 0, 99);
    expect_range("bytes=5-99999999999999999999", 100, 5, 99);
    /* the value is length-delimited, not NUL-terminated */
    uint64_t a, b;
    assert_int_equal(http_range_parse("bytes=0-5junk", 9, 100, &a, &b), HTTP_RANGE_OK);
    assert_int_equal(b, 5);
    assert_int_equal(http_range_parse("bytes=0-5", 5, 100, &a, &b), HTTP_RANGE_NONE);
}

static void etag_format(void **state)
{
    char e[80];
    http_etag(e, sizeof(e), 255, 16, 1);
    assert_string_equal(e, "\"ff-10-1\"");
    http_etag(e, sizeof(e), UINT64_MAX, UINT64_MAX, UINT64_MAX);
    assert_string_equal(e, "\"ffffffffffffffff-ffffffffffffffff-ffffffffffffffff\"");
    char small[8];
    http_etag(small, sizeof(small), UINT64_MAX, 1, 1); /* truncates, stays terminated */
    assert_int_equal(strlen(small), 7);
}

static bool inm(const char *list, const char *etag)
{
    return http_etag_match(list, strlen(list), etag);
}

static void etag_match(void **state)
{
    const char *t = "\"ff-10-1\"";
    assert_true(inm("\"ff-10-1\"", t));
    assert_true(inm("W/\"ff-10-1\"", t));
    assert_true(inm("*", t));
    assert_true(inm(" * ", t));
    assert_true(inm("\"a\", \"ff-10-1\"", t));
    assert_true(inm("\"a\",\"ff-10-1\"", t));
    assert_true(inm("\"a\", W/\"ff-10-1\" , \"b\"", t));
    assert_true(inm("\"ff-10-1\"  ", t));
    assert_false(inm("", t));
    assert_false(inm("\"ff-10-2\"", t));
    assert_false(inm("ff-10-1", t));       /* unquoted is a different tag */
    assert_false(inm("\"ff-10-1", t));     /* truncated */
    assert_false(inm("\"ff-10-1\"x", t));
    assert_false(inm("\"a\", \"b\"", t));
    assert_false(inm(",,,", t));
    assert_false(inm("W/", t));
    assert_false(inm("w/\"ff-10-1\"", t)); /* the weak prefix is case-sensitive */
    /* length-delimited: bytes past n are not looked at */
    assert_false(http_etag_match("\"ff-10-1\"", 8, t));
    assert_true(http_etag_match("\"ff-10-1\", garbage", 9, t));
}

static void path_safe(void **state)
{
    assert_true(http_path_safe("a"));
    assert_true(http_path_safe("a/b/c.png"));
    assert_true(http_path_safe("..a"));
    assert_true(http_path_safe("a.."));
    assert_true(http_path_safe(".hidden"));
    assert_true(http_path_safe("a/.../b"));
    assert_false(http_path_safe(NULL));
    assert_false(http_path_safe(""));
    assert_false(http_path_safe("/etc/passwd"));
    assert_false(http_path_safe("."));
    assert_false(http_path_safe(".."));
    assert_false(http_path_safe("../x"));
    assert_false(http_path_safe("a/../../x"));
    assert_false(http_path_safe("a/.."));
    assert_false(http_path_safe("a/./b"));
    assert_false(http_path_safe("a//b"));
    assert_false(http_path_safe("a/"));
    assert_false(http_path_safe("a\\b"));
    assert_false(http_path_safe("..\\x"));
}

static void mime(void **state)
{
    assert_string_equal(http_file_mime("x.png"), "image/png");
    assert_string_equal(http_file_mime("x.PNG"), "image/png");
    assert_string_equal(http_file_mime("dir/a.b/photo.jpeg"), "image/jpeg");
    assert_string_equal(http_file_mime("x.webp"), "image/webp");
    assert_string_equal(http_file_mime("clip.mp4"), "video/mp4");
    assert_string_equal(http_file_mime("data.json"), "application/json");
    assert_string_equal(http_file_mime("a.txt"), "text/plain; charset=utf-8");
    assert_string_equal(http_file_mime("index.html"), "text/html; charset=utf-8");
    assert_string_equal(http_file_mime("m.safetensors"), "application/octet-stream");
    assert_string_equal(http_file_mime("noext"), "application/octet-stream");
    assert_string_equal(http_file_mime("dir.png/noext"), "application/octet-stream");
    assert_string_equal(http_file_mime("trailingdot."), "application/octet-stream");
    assert_string_equal(http_file_mime("x.unknown"), "application/octet-stream");
    assert_string_equal(http_file_mime(""), "application/octet-stream");
    assert_string_equal(http_file_mime(".png"), "image/png");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(range_first_last),   cmocka_unit_test(range_open_ended),
        cmocka_unit_test(range_suffix),       cmocka_unit_test(range_last_clipped),
        cmocka_unit_test(range_unsatisfiable), cmocka_unit_test(range_multi_falls_back),
        cmocka_unit_test(range_garbage),      cmocka_unit_test(etag_format),
        cmocka_unit_test(etag_match),         cmocka_unit_test(path_safe),
        cmocka_unit_test(mime),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
