/* webhook_index: the map (put, get, delete, many keys in few buckets) and the due heap
 * (always yields the earliest; removal from the middle keeps the order). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "webhook/webhook_index.c"

struct item {
    struct wh_map_node node;
    struct wh_heap_node due;
    char key[16];
};

static void test_map(void **state)
{
    struct wh_map m;
    assert_int_equal(wh_map_init(&m, 10), 0);
    static struct item it[1000];
    for (int i = 0; i < 1000; i++) {
        snprintf(it[i].key, sizeof(it[i].key), "job-%d", i);
        it[i].node.key = it[i].key;
        wh_map_put(&m, &it[i].node);
    }
    assert_int_equal(m.n, 1000);
    for (int i = 0; i < 1000; i++)
        assert_ptr_equal(wh_map_get(&m, it[i].key), &it[i].node);
    assert_null(wh_map_get(&m, "job-1000"));
    for (int i = 0; i < 1000; i += 2)
        wh_map_del(&m, &it[i].node);
    assert_int_equal(m.n, 500);
    for (int i = 0; i < 1000; i++)
        assert_true((wh_map_get(&m, it[i].key) != NULL) == (i % 2 == 1));
    wh_map_del(&m, &it[0].node); /* not there: nothing happens */
    assert_int_equal(m.n, 500);
    wh_map_fini(&m);
}

static void test_heap(void **state)
{
    struct wh_heap h;
    static struct item it[500];
    assert_int_equal(wh_heap_init(&h, 500), 0);
    uint64_t x = 88172645463325252ull;
    for (int i = 0; i < 500; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        it[i].due.due_ns = x % 1000;
        it[i].due.idx = 0;
        assert_int_equal(wh_heap_push(&h, &it[i].due), 0);
    }
    struct item extra = {.due = {.due_ns = 1}};
    assert_int_equal(wh_heap_push(&h, &extra.due), -ENOSPC);
    for (int i = 0; i < 500; i += 3) /* out of the middle */
        wh_heap_remove(&h, &it[i].due);
    wh_heap_remove(&h, &it[0].due); /* twice: nothing happens */
    uint64_t last = 0;
    size_t n = 0;
    while (wh_heap_top(&h)) {
        struct wh_heap_node *t = wh_heap_top(&h);
        assert_true(t->due_ns >= last);
        last = t->due_ns;
        wh_heap_remove(&h, t);
        assert_int_equal(t->idx, 0);
        n++;
    }
    assert_int_equal(n, 500 - 167);
    wh_heap_fini(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_map), cmocka_unit_test(test_heap)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
