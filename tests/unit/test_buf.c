/* test_buf — the bounded buffer: the maximum is enforced on every path that grows it, and a
 * failed append leaves the buffer exactly as it was (callers turn that into 413/431). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/buf.c"

static void append_within_max(void **state)
{
    struct buf b;
    buf_init(&b, 10);
    assert_int_equal(buf_append(&b, "hello", 5), 0);
    assert_int_equal(buf_append_str(&b, "world"), 0);
    assert_int_equal(b.len, 10);
    assert_string_equal(b.data, "helloworld"); /* NUL-terminated, not counted */
    assert_true(b.cap <= b.max + 1);            /* never allocates past max + NUL */
    buf_free(&b);
}

static void append_past_max_leaves_buffer_unchanged(void **state)
{
    struct buf b;
    buf_init(&b, 8);
    assert_int_equal(buf_append(&b, "abcdef", 6), 0);
    char *data = b.data;
    size_t cap = b.cap;
    assert_int_equal(buf_append(&b, "xyz", 3), -ENOBUFS);
    assert_ptr_equal(b.data, data);
    assert_int_equal(b.len, 6);
    assert_int_equal(b.cap, cap);
    assert_string_equal(b.data, "abcdef");
    /* exactly up to the max still fits */
    assert_int_equal(buf_append(&b, "xy", 2), 0);
    assert_string_equal(b.data, "abcdefxy");
    assert_int_equal(buf_append(&b, "z", 1), -ENOBUFS);
    assert_int_equal(buf_append(&b, "", 0), 0);
    assert_int_equal(b.len, 8);
    buf_free(&b);
}

static void reserve_overflow_rejected(void **state)
{
    struct buf b;
    buf_init(&b, 100);
    assert_int_equal(buf_append(&b, "abc", 3), 0);
    /* len + extra would wrap around: must fail, not allocate a tiny buffer */
    assert_int_equal(buf_reserve(&b, SIZE_MAX), -ENOBUFS);
    assert_int_equal(buf_reserve(&b, SIZE_MAX - 1), -ENOBUFS);
    assert_int_equal(buf_reserve(&b, 98), -ENOBUFS);
    assert_int_equal(buf_reserve(&b, 97), 0);
    assert_true(b.cap >= 101);
    assert_int_equal(b.len, 3);
    buf_free(&b);
}

static void zero_max(void **state)
{
    struct buf b;
    buf_init(&b, 0);
    assert_int_equal(buf_append(&b, "", 0), 0);
    assert_string_equal(b.data, "");
    assert_int_equal(buf_append(&b, "a", 1), -ENOBUFS);
    assert_int_equal(b.len, 0);
    buf_free(&b);
}

static void printf_small_and_large(void **state)
{
    struct buf b;
    buf_init(&b, 4096);
    assert_int_equal(buf_printf(&b, "%d-%s", 42, "x"), 0);
    assert_string_equal(b.data, "42-x");
    /* longer than the 512-byte stack scratch: takes the reserve path */
    char big[1001];
    memset(big, 'q', 1000);
    big[1000] = '\0';
    assert_int_equal(buf_printf(&b, "[%s]", big), 0);
    assert_int_equal(b.len, 4 + 1002);
    assert_int_equal(b.data[4], '[');
    assert_int_equal(b.data[b.len - 1], ']');
    assert_int_equal(b.data[b.len], '\0');
    buf_free(&b);
}

static void printf_past_max_unchanged(void **state)
{
    struct buf b;
    buf_init(&b, 600);
    assert_int_equal(buf_printf(&b, "%s", "head"), 0);
    char *data = b.data;
    char big[700];
    memset(big, 'z', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    assert_int_equal(buf_printf(&b, "%s", big), -ENOBUFS);       /* large path */
    assert_int_equal(buf_printf(&b, "%.597s", big), -ENOBUFS);   /* small path, 1 past */
    assert_ptr_equal(b.data, data);
    assert_int_equal(b.len, 4);
    assert_string_equal(b.data, "head");
    assert_int_equal(buf_printf(&b, "%.596s", big), 0);          /* exactly at max */
    assert_int_equal(b.len, 600);
    buf_free(&b);
}

static void consume_and_reset(void **state)
{
    struct buf b;
    buf_init(&b, 1 << 20);
    assert_int_equal(buf_append_str(&b, "0123456789"), 0);
    buf_consume(&b, 3);
    assert_string_equal(b.data, "3456789");
    assert_int_equal(b.len, 7);
    buf_consume(&b, 100);
    assert_int_equal(b.len, 0);
    assert_string_equal(b.data, "");
    /* reset keeps small capacity, releases big */
    assert_int_equal(buf_append_str(&b, "abc"), 0);
    size_t cap = b.cap;
    buf_reset(&b, cap);
    assert_non_null(b.data);
    assert_int_equal(b.cap, cap);
    assert_int_equal(b.len, 0);
    assert_string_equal(b.data, "");
    assert_int_equal(buf_reserve(&b, 100000), 0);
    buf_reset(&b, 4096);
    assert_null(b.data);
    assert_int_equal(b.cap, 0);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.max, 1 << 20); /* the max survives */
    buf_consume(&b, 1);               /* on an empty, unallocated buffer: harmless */
    buf_free(&b);
}

static void steal(void **state)
{
    struct buf b;
    buf_init(&b, 64);
    assert_int_equal(buf_append_str(&b, "payload"), 0);
    size_t len = 0;
    char *p = buf_steal(&b, &len);
    assert_int_equal(len, 7);
    assert_string_equal(p, "payload");
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.cap, 0);
    free(p);
    /* the buffer is usable again */
    assert_int_equal(buf_append_str(&b, "again"), 0);
    assert_string_equal(b.data, "again");
    buf_free(&b);
}

static void growth_many_appends(void **state)
{
    struct buf b;
    buf_init(&b, 100000);
    for (int i = 0; i < 10000; i++)
        assert_int_equal(buf_append(&b, "0123456789", 10), 0);
    assert_int_equal(b.len, 100000);
    assert_int_equal(buf_append(&b, "x", 1), -ENOBUFS);
    for (size_t i = 0; i < b.len; i++)
        assert_int_equal(b.data[i], (char)('0' + i % 10));
    buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(append_within_max),
        cmocka_unit_test(append_past_max_leaves_buffer_unchanged),
        cmocka_unit_test(reserve_overflow_rejected),
        cmocka_unit_test(zero_max),
        cmocka_unit_test(printf_small_and_large),
        cmocka_unit_test(printf_past_max_unchanged),
        cmocka_unit_test(consume_and_reset),
        cmocka_unit_test(steal),
        cmocka_unit_test(growth_many_appends),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
