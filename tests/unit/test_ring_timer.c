/* test_ring_timer — the reactor's timer heap: firing order over many random deadlines, cancel
 * from anywhere in the heap, re-arming (moves, never duplicates), the max_timers cap, and one
 * timer through the real loop. Needs a real io_uring: exits 77 (skipped) without one. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ring/ring.c"

static const struct ring_config CFG = {
    .sq_entries = 64, .buf_count = 8, .buf_size = 1024, .max_timers = 100000};

static struct ring R;

static int ring_setup(void **state)
{
    assert_int_equal(ring_init(&R, &CFG, 0), 0);
    return 0;
}

static int ring_teardown(void **state)
{
    ring_fini(&R);
    return 0;
}

/* Every parent is due no later than its children, and heap_idx points back at each slot. */
static void check_heap(const struct ring *r)
{
    for (size_t i = 0; i < r->heap_len; i++) {
        assert_int_equal(r->heap[i]->heap_idx, i + 1);
        if (i > 0)
            assert_true(r->heap[(i - 1) / 2]->deadline_ns <= r->heap[i]->deadline_ns);
    }
}

#define N 5000

static struct ring_timer timers[N];
static uint64_t fired_deadline[N];
static size_t fired_idx[N];
static size_t nfired;

static void record_cb(struct ring_timer *t)
{
    assert_true(nfired < N);
    assert_false(ring_timer_armed(t)); /* disarmed before its callback runs */
    fired_deadline[nfired] = t->deadline_ns;
    fired_idx[nfired] = (size_t)(t - timers);
    nfired++;
}

static uint64_t rng_state = 88172645463325252ull;

static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/* Runs every timer due by `now` and checks they fired in deadline order. */
static void fire_until(struct ring *r, uint64_t now)
{
    r->now_ns = now;
    size_t before = nfired;
    timers_run(r);
    for (size_t i = before + 1; i < nfired; i++)
        assert_true(fired_deadline[i - 1] <= fired_deadline[i]);
    for (size_t i = 0; i < r->heap_len; i++)
        assert_true(r->heap[i]->deadline_ns > now);
}

static void arm_all_random(struct ring *r)
{
    memset(timers, 0, sizeof(timers));
    nfired = 0;
    r->now_ns = 1000000000ull;
    for (size_t i = 0; i < N; i++) {
        timers[i].cb = record_cb;
        /* many duplicates (range smaller than N) to exercise equal keys */
        assert_int_equal(ring_timer_arm(r, &timers[i], rng() % 3000), 0);
        assert_true(ring_timer_armed(&timers[i]));
    }
    assert_int_equal(r->heap_len, N);
    check_heap(r);
}

static void heap_order_random(void **state)
{
    arm_all_random(&R);
    /* fire in several steps: each step fires exactly what is due, in order */
    for (uint64_t ms = 0; ms <= 3000; ms += 250)
        fire_until(&R, 1000000000ull + ms * 1000000ull);
    assert_int_equal(nfired, N);
    assert_int_equal(R.heap_len, 0);
    for (size_t i = 1; i < N; i++)
        assert_true(fired_deadline[i - 1] <= fired_deadline[i]);
    /* each timer fired exactly once */
    static char seen[N];
    memset(seen, 0, sizeof(seen));
    for (size_t i = 0; i < N; i++) {
        assert_false(seen[fired_idx[i]]);
        seen[fired_idx[i]] = 1;
    }
}

static void cancel_from_middle(void **state)
{
    arm_all_random(&R);
    static char cancelled[N];
    memset(cancelled, 0, sizeof(cancelled));
    size_t ncancel = 0;
    for (size_t k = 0; k < N / 2; k++) {
        /* pick whatever sits somewhere in the middle of the heap right now */
        size_t slot = R.heap_len / 2 + rng() % (R.heap_len / 2);
        struct ring_timer *t = R.heap[slot];
        size_t idx = (size_t)(t - timers);
        ring_timer_cancel(&R, t);
        assert_false(ring_timer_armed(t));
        cancelled[idx] = 1;
        ncancel++;
        if (k % 97 == 0)
            check_heap(&R);
    }
    /* cancelling the root and a disarmed timer */
    struct ring_timer *root = R.heap[0];
    ring_timer_cancel(&R, root);
    cancelled[root - timers] = 1;
    ncancel++;
    ring_timer_cancel(&R, root); /* twice: harmless */
    check_heap(&R);
    assert_int_equal(R.heap_len, N - ncancel);
    fire_until(&R, UINT64_MAX / 2);
    assert_int_equal(nfired, N - ncancel);
    for (size_t i = 0; i < nfired; i++)
        assert_false(cancelled[fired_idx[i]]);
}

static void rearm_moves(void **state)
{
    memset(timers, 0, sizeof(timers));
    nfired = 0;
    R.now_ns = 5000000000ull;
    for (size_t i = 0; i < 10; i++) {
        timers[i].cb = record_cb;
        assert_int_equal(ring_timer_arm(&R, &timers[i], 100 + 10 * i), 0);
    }
    /* later: the first timer moves behind everyone */
    assert_int_equal(ring_timer_arm(&R, &timers[0], 1000), 0);
    assert_int_equal(R.heap_len, 10);
    check_heap(&R);
    /* earlier: the last one moves to the front */
    assert_int_equal(ring_timer_arm(&R, &timers[9], 1), 0);
    assert_int_equal(R.heap_len, 10);
    check_heap(&R);
    assert_ptr_equal(R.heap[0], &timers[9]);
    assert_int_equal(timers[9].deadline_ns, 5000000000ull + 1000000ull);
    fire_until(&R, UINT64_MAX / 2);
    assert_int_equal(nfired, 10);
    assert_int_equal(fired_idx[0], 9);
    assert_int_equal(fired_idx[9], 0);
    for (size_t i = 1; i < 9; i++)
        assert_int_equal(fired_idx[i], i);
}

static struct ring_timer periodic;
static int periodic_runs;

static void periodic_cb(struct ring_timer *t)
{
    periodic_runs++;
    if (periodic_runs < 5)
        assert_int_equal(ring_timer_arm(&R, t, 10), 0); /* re-arm from its own callback */
}

static void rearm_from_callback(void **state)
{
    memset(&periodic, 0, sizeof(periodic));
    periodic.cb = periodic_cb;
    periodic_runs = 0;
    R.now_ns = 1000000000ull;
    assert_int_equal(ring_timer_arm(&R, &periodic, 10), 0);
    for (int i = 1; i <= 10; i++) {
        R.now_ns += 10000000ull;
        timers_run(&R);
        assert_int_equal(periodic_runs, i < 5 ? i : 5); /* once per step, never in a loop */
    }
    assert_false(ring_timer_armed(&periodic));
    assert_int_equal(R.heap_len, 0);
}

static void max_timers_enforced(void **state)
{
    struct ring r;
    struct ring_config cfg = CFG;
    cfg.max_timers = 4;
    assert_int_equal(ring_init(&r, &cfg, 1), 0);
    struct ring_timer t[5];
    memset(t, 0, sizeof(t));
    for (int i = 0; i < 4; i++) {
        t[i].cb = record_cb;
        assert_int_equal(ring_timer_arm(&r, &t[i], 10), 0);
    }
    assert_int_equal(r.heap_cap, 4);
    t[4].cb = record_cb;
    assert_int_equal(ring_timer_arm(&r, &t[4], 10), -ENOSPC);
    assert_false(ring_timer_armed(&t[4]));
    assert_int_equal(r.heap_len, 4);
    /* moving an armed timer at the cap still works */
    assert_int_equal(ring_timer_arm(&r, &t[2], 1), 0);
    assert_ptr_equal(r.heap[0], &t[2]);
    /* after a cancel there is room again */
    ring_timer_cancel(&r, &t[0]);
    assert_int_equal(ring_timer_arm(&r, &t[4], 5), 0);
    check_heap(&r);
    ring_fini(&r);
}

static struct ring_timer stop_timer;
static uint64_t stop_at;

static void stop_cb(struct ring_timer *t)
{
    stop_at = ring_clock_ns();
    ring_stop(&R);
}

static void timer_through_real_loop(void **state)
{
    memset(&stop_timer, 0, sizeof(stop_timer));
    stop_timer.cb = stop_cb;
    R.now_ns = ring_clock_ns();
    uint64_t start = R.now_ns;
    assert_int_equal(ring_timer_arm(&R, &stop_timer, 30), 0);
    assert_int_equal(ring_run(&R, NULL), 0);
    assert_true(R.stopped);
    assert_true(stop_at - start >= 30000000ull);   /* not early */
    assert_true(stop_at - start < 5000000000ull);  /* and the loop did wake for it */
}

int main(void)
{
    /* io_uring may be missing or disabled (seccomp, io_uring_disabled, old kernel): skip. */
    struct ring probe;
    int rc = ring_init(&probe, &CFG, 0);
    if (rc < 0) {
        fprintf(stderr, "test_ring_timer: io_uring unavailable (%s), skipping\n", strerror(-rc));
        return 77;
    }
    ring_fini(&probe);

    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(heap_order_random, ring_setup, ring_teardown),
        cmocka_unit_test_setup_teardown(cancel_from_middle, ring_setup, ring_teardown),
        cmocka_unit_test_setup_teardown(rearm_moves, ring_setup, ring_teardown),
        cmocka_unit_test_setup_teardown(rearm_from_callback, ring_setup, ring_teardown),
        cmocka_unit_test(max_timers_enforced),
        cmocka_unit_test_setup_teardown(timer_through_real_loop, ring_setup, ring_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
