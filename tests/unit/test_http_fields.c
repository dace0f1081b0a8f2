/* test_http_fields — the accessors of a parsed request, on requests built by hand: percent-
 * decoding, query parameters (absent -1 apart from there-but-unreadable -2), and headers by
 * name and count. The parser that fills a request is test_http_parser. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "http/http_parser.h"

static struct http_request with_query(const char *q)
{
    return (struct http_request){.query = q, .query_len = strlen(q)};
}

static void pct_decode_function(void **state)
{
    (void)state;
    char d[16];
    assert_int_equal(http_pct_decode("a%41", 4, d, sizeof(d), false), 2);
    assert_string_equal(d, "aA");
    assert_int_equal(http_pct_decode("%ff%FE", 6, d, sizeof(d), false), 2);
    assert_int_equal((unsigned char)d[0], 0xff);
    assert_int_equal((unsigned char)d[1], 0xfe);
    assert_int_equal(http_pct_decode("a+b", 3, d, sizeof(d), false), 3);
    assert_string_equal(d, "a+b");
    assert_int_equal(http_pct_decode("a+b", 3, d, sizeof(d), true), 3);
    assert_string_equal(d, "a b");
    assert_int_equal(http_pct_decode("%2B", 3, d, sizeof(d), true), 1);
    assert_string_equal(d, "+"); /* an escaped plus is a plus */
    assert_int_equal(http_pct_decode("", 0, d, sizeof(d), false), 0);
    assert_string_equal(d, "");
    assert_int_equal(http_pct_decode("%", 1, d, sizeof(d), false), -1);
    assert_int_equal(http_pct_decode("%4", 2, d, sizeof(d), false), -1);
    assert_int_equal(http_pct_decode("%41", 2, d, sizeof(d), false), -1); /* n bounds it */
    assert_int_equal(http_pct_decode("%g1", 3, d, sizeof(d), false), -1);
    assert_int_equal(http_pct_decode("%00", 3, d, sizeof(d), false), -1);
    assert_int_equal(http_pct_decode("a\0b", 3, d, sizeof(d), false), -1);
    /* capacity includes the NUL */
    assert_int_equal(http_pct_decode("abc", 3, d, 4, false), 3);
    assert_int_equal(http_pct_decode("abc", 3, d, 3, false), -1);
    assert_int_equal(http_pct_decode("%41%42%43", 9, d, 4, false), 3);
    assert_int_equal(http_pct_decode("%41%42%43", 9, d, 3, false), -1);
    assert_int_equal(http_pct_decode("", 0, d, 0, false), -1);
}

static void query_get(void **state)
{
    (void)state;
    struct http_request r = with_query("a=1&b=hello+world&c=%41%42&empty=&flag&a=2&ab=3&bad=%zz"
                                       "&nul=%00&sp=%20x");
    char v[32];
    assert_int_equal(http_query_get(&r, "a", v, sizeof(v)), 1);
    assert_string_equal(v, "1"); /* the first of duplicates */
    assert_int_equal(http_query_get(&r, "b", v, sizeof(v)), 11);
    assert_string_equal(v, "hello world");
    assert_int_equal(http_query_get(&r, "c", v, sizeof(v)), 2);
    assert_string_equal(v, "AB");
    assert_int_equal(http_query_get(&r, "empty", v, sizeof(v)), 0);
    assert_string_equal(v, "");
    assert_int_equal(http_query_get(&r, "flag", v, sizeof(v)), 0);
    assert_int_equal(http_query_get(&r, "ab", v, sizeof(v)), 1);
    assert_string_equal(v, "3");
    assert_int_equal(http_query_get(&r, "sp", v, sizeof(v)), 2);
    assert_string_equal(v, " x");
    /* there but unreadable (-2, dst ""), unlike absent (-1) */
    assert_int_equal(http_query_get(&r, "bad", v, sizeof(v)), -2);
    assert_string_equal(v, "");
    assert_int_equal(http_query_get(&r, "nul", v, sizeof(v)), -2);
    assert_int_equal(http_query_get(&r, "missing", v, sizeof(v)), -1);
    assert_int_equal(http_query_get(&r, "A", v, sizeof(v)), -1); /* keys are exact */
    assert_int_equal(http_query_get(&r, "b", v, 11), -2);        /* no room for NUL */
    assert_int_equal(http_query_get(&r, "b", v, 12), 11);
    r = with_query("");
    assert_int_equal(http_query_get(&r, "a", v, sizeof(v)), -1);
    r = with_query("&&x=1&");
    assert_int_equal(http_query_get(&r, "x", v, sizeof(v)), 1);
    assert_int_equal(http_query_get(&r, "y", v, sizeof(v)), -1);
}

static void header_count_and_lookup(void **state)
{
    (void)state;
    static const struct http_header h[] = {
        {"X-API-Key", 9, "a", 1}, {"host", 4, "t", 1}, {"x-api-key", 9, "b", 1}};
    struct http_request r = {.headers = h, .nheaders = 3};
    size_t n = 0;
    assert_string_equal(http_header_get(&r, "X-Api-Key", &n), "a"); /* the first, any case */
    assert_int_equal(n, 1);
    assert_int_equal(http_header_count(&r, "x-api-key"), 2); /* what auth refuses */
    assert_int_equal(http_header_count(&r, "HOST"), 1);
    assert_int_equal(http_header_count(&r, "authorization"), 0);
    assert_int_equal(http_header_count(&r, "x-api-ke"), 0); /* whole names only */
    assert_null(http_header_get(&r, "authorization", NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(pct_decode_function),
        cmocka_unit_test(query_get),
        cmocka_unit_test(header_count_and_lookup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
