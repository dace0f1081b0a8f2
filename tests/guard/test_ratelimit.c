/* test_ratelimit — the shared token-bucket limiter. A fake clock (now_ms is a parameter) makes
 * every token count exact: burst, continuous and partial refill, costs above one, the
 * RateLimit-Reset / Retry-After values and their rounding, a clock that steps back. A full
 * table lets new keys through untracked and evicts only buckets that have refilled. Threads
 * hammering one key with a frozen clock get exactly `max` tokens between them, phase after
 * phase, and never take from each other's keys. Nothing here sleeps or measures time. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "guard/ratelimit.c"

static struct ratelimit *new_rl(uint32_t max, uint32_t window_ms, uint32_t capacity)
{
    struct ratelimit_config c = {.max = max, .window_ms = window_ms, .capacity = capacity};
    struct ratelimit *rl;
    assert_int_equal(ratelimit_new(&rl, &c), 0);
    assert_non_null(rl);
    return rl;
}

static struct ratelimit_result take(struct ratelimit *rl, const char *key, int64_t now,
                                    uint32_t cost)
{
    struct ratelimit_result r;
    assert_int_equal(ratelimit_take(rl, key, now, cost, &r), 0);
    return r;
}

#define EXPECT(r, ok, rem, reset, retry)                                                           \
    do {                                                                                           \
        assert_int_equal((r).allowed, (ok));                                                       \
        assert_true((r).tracked);                                                                  \
        assert_int_equal((r).remaining, (rem));                                                    \
        assert_int_equal((r).reset_s, (reset));                                                    \
        assert_int_equal((r).retry_after_s, (retry));                                              \
    } while (0)

/* --- arithmetic ------------------------------------------------------------------------------ */

static void burst_then_refused(void **state)
{
    struct ratelimit *rl = new_rl(5, 1000, 1000);
    struct ratelimit_result r;
    for (uint32_t i = 0; i < 5; i++) {
        r = take(rl, "k:a", 0, 1);
        /* 200 ms per token: i+1 tokens short of full is (i+1)*200 ms, rounded up to 1 s */
        EXPECT(r, true, 4 - i, 1, 0);
        assert_int_equal(r.limit, 5);
    }
    r = take(rl, "k:a", 0, 1);
    EXPECT(r, false, 0, 1, 1);
    r = take(rl, "k:a", 199, 1); /* 0.995 tokens: still not one */
    EXPECT(r, false, 0, 1, 1);
    r = take(rl, "k:a", 200, 1);
    EXPECT(r, true, 0, 1, 0);
    ratelimit_free(rl);
}

static void refill_is_continuous(void **state)
{
    /* 10 per minute: one token every 6 s */
    struct ratelimit *rl = new_rl(10, 60000, 1000);
    struct ratelimit_result r;
    for (int i = 0; i < 10; i++)
        r = take(rl, "ip:192.0.2.1", 1000, 1);
    EXPECT(r, true, 0, 60, 0);
    r = take(rl, "ip:192.0.2.1", 6999, 1);
    /* 5999 ms refilled 59990 of 60000 units: 1 ms short; 54001 ms to full → 55 s */
    EXPECT(r, false, 0, 55, 1);
    r = take(rl, "ip:192.0.2.1", 7000, 1);
    EXPECT(r, true, 0, 60, 0);
    /* 30 s idle: five tokens back, not ten */
    r = take(rl, "ip:192.0.2.1", 37000, 0);
    EXPECT(r, true, 5, 30, 0);
    /* a whole window and more: full, never above */
    r = take(rl, "ip:192.0.2.1", 1000000, 0);
    EXPECT(r, true, 10, 0, 0);
    ratelimit_free(rl);
}

static void partial_refill(void **state)
{
    /* 4 per second: 250 ms per token, 4 units per ms, 1000 units per token */
    struct ratelimit *rl = new_rl(4, 1000, 1000);
    struct ratelimit_result r = take(rl, "k:p", 0, 4);
    EXPECT(r, true, 0, 1, 0);
    r = take(rl, "k:p", 100, 1); /* 0.4 token: 150 ms more */
    EXPECT(r, false, 0, 1, 1);
    r = take(rl, "k:p", 625, 0); /* 2.5 tokens */
    EXPECT(r, true, 2, 1, 0);
    r = take(rl, "k:p", 625, 2); /* 0.5 left */
    EXPECT(r, true, 0, 1, 0);
    r = take(rl, "k:p", 625, 1);
    EXPECT(r, false, 0, 1, 1);
    r = take(rl, "k:p", 750, 1); /* exactly 1.0 */
    EXPECT(r, true, 0, 1, 0);
    ratelimit_free(rl);
}

static void cost_above_one(void **state)
{
    /* 10 per 10 s: one token per second */
    struct ratelimit *rl = new_rl(10, 10000, 1000);
    struct ratelimit_result r = take(rl, "k:c", 0, 7);
    EXPECT(r, true, 3, 7, 0);
    r = take(rl, "k:c", 0, 5); /* two tokens short: 2 s */
    EXPECT(r, false, 3, 7, 2);
    r = take(rl, "k:c", 1999, 5);
    EXPECT(r, false, 4, 6, 1);
    r = take(rl, "k:c", 2000, 5);
    EXPECT(r, true, 0, 10, 0);
    /* a cost above the whole burst needs a full bucket instead of never passing */
    r = take(rl, "k:c", 2000, 50);
    EXPECT(r, false, 0, 10, 10);
    r = take(rl, "k:c", 12000, 50);
    EXPECT(r, true, 0, 10, 0);
    ratelimit_free(rl);
}

static void seconds_round_up(void **state)
{
    struct ratelimit *rl = new_rl(1, 1000, 1000);
    struct ratelimit_result r = take(rl, "k:1000", 0, 1);
    EXPECT(r, true, 0, 1, 0);
    r = take(rl, "k:1000", 0, 1);
    EXPECT(r, false, 0, 1, 1);
    r = take(rl, "k:1000", 999, 1); /* 1 ms to go: still at least 1 s */
    EXPECT(r, false, 0, 1, 1);
    ratelimit_free(rl);

    rl = new_rl(1, 1001, 1000);
    r = take(rl, "k:1001", 0, 1);
    EXPECT(r, true, 0, 2, 0); /* 1001 ms → 2 s */
    r = take(rl, "k:1001", 0, 1);
    EXPECT(r, false, 0, 2, 2);
    r = take(rl, "k:1001", 1, 1); /* 1000 ms → 1 s */
    EXPECT(r, false, 0, 1, 1);
    ratelimit_free(rl);

    rl = new_rl(3, 7, 1000); /* fractional rate: 3 units per ms, 7 per token */
    r = take(rl, "k:f", 0, 3);
    EXPECT(r, true, 0, 1, 0);
    r = take(rl, "k:f", 2, 1); /* 6 of 7 units */
    EXPECT(r, false, 0, 1, 1);
    r = take(rl, "k:f", 3, 1); /* 9 units: one token, 2 units over */
    EXPECT(r, true, 0, 1, 0);
    r = take(rl, "k:f", 7, 0); /* 2 + 12 = 14 units: two tokens exactly */
    EXPECT(r, true, 2, 1, 0);
    ratelimit_free(rl);
}

static void clock_steps_back(void **state)
{
    struct ratelimit *rl = new_rl(2, 1000, 1000);
    struct ratelimit_result r = take(rl, "k:t", 5000, 2);
    EXPECT(r, true, 0, 1, 0);
    /* another reactor's slightly older clock: no refill, and no damage */
    r = take(rl, "k:t", 4000, 1);
    EXPECT(r, false, 0, 1, 1);
    r = take(rl, "k:t", INT64_MIN, 1);
    EXPECT(r, false, 0, 1, 1);
    r = take(rl, "k:t", 5500, 1);
    EXPECT(r, true, 0, 1, 0);
    /* a huge jump forward cannot overflow */
    r = take(rl, "k:t", INT64_MAX, 0);
    EXPECT(r, true, 2, 0, 0);
    ratelimit_free(rl);
}

static void largest_configuration(void **state)
{
    struct ratelimit *rl = new_rl(RATELIMIT_MAX_TOKENS, RATELIMIT_MAX_WINDOW_MS, 64);
    struct ratelimit_result r = take(rl, "k:big", 0, RATELIMIT_MAX_TOKENS);
    EXPECT(r, true, 0, 86400, 0);
    r = take(rl, "k:big", RATELIMIT_MAX_WINDOW_MS - 1, 0);
    EXPECT(r, true, RATELIMIT_MAX_TOKENS - 1, 1, 0);
    r = take(rl, "k:big", RATELIMIT_MAX_WINDOW_MS, 0);
    EXPECT(r, true, RATELIMIT_MAX_TOKENS, 0, 0);
    ratelimit_free(rl);
}

/* --- configuration and keys ------------------------------------------------------------------ */

static void disabled_allows_everything(void **state)
{
    struct ratelimit *rl = new_rl(0, 0, 0); /* the rest does not matter when off */
    assert_null(rl->nodes);
    for (int i = 0; i < 1000; i++) {
        struct ratelimit_result r = take(rl, "k:x", 0, 1);
        assert_true(r.allowed);
        assert_false(r.tracked);
        assert_int_equal(r.limit, 0);
    }
    struct ratelimit_stats st;
    ratelimit_stats(rl, &st);
    assert_int_equal(st.tracked + st.untracked + st.evicted, 0);
    ratelimit_free(rl);
}

static void bad_configuration(void **state)
{
    struct ratelimit *rl = (struct ratelimit *)1;
    struct ratelimit_config bad[] = {
        {.max = 1, .window_ms = 0, .capacity = 10},
        {.max = RATELIMIT_MAX_TOKENS + 1, .window_ms = 1000, .capacity = 10},
        {.max = 1, .window_ms = RATELIMIT_MAX_WINDOW_MS + 1, .capacity = 10},
        {.max = 1, .window_ms = 1000, .capacity = 0},
        {.max = 1, .window_ms = 1000, .capacity = RATELIMIT_MAX_CAPACITY + 1},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(ratelimit_new(&rl, &bad[i]), -EINVAL);
        assert_null(rl);
    }
    ratelimit_free(NULL);
}

static void key_length(void **state)
{
    struct ratelimit *rl = new_rl(1, 1000, 100);
    char key[RATELIMIT_KEY_MAX + 1];
    struct ratelimit_result r;
    memset(key, 'a', sizeof(key));
    key[RATELIMIT_KEY_MAX - 1] = '\0'; /* the longest key */
    assert_int_equal(ratelimit_take(rl, key, 0, 1, &r), 0);
    assert_true(r.allowed && r.tracked);
    assert_int_equal(ratelimit_take(rl, key, 0, 1, &r), 0);
    assert_false(r.allowed);
    key[RATELIMIT_KEY_MAX - 1] = 'a';
    key[RATELIMIT_KEY_MAX] = '\0'; /* one too long: an error, reported as untracked */
    assert_int_equal(ratelimit_take(rl, key, 0, 1, &r), -ENAMETOOLONG);
    assert_true(r.allowed);
    assert_false(r.tracked);
    assert_int_equal(ratelimit_take(rl, "", 0, 1, &r), -EINVAL);
    assert_true(r.allowed);
    assert_false(r.tracked);
    /* a key that is a prefix of another is its own bucket */
    key[RATELIMIT_KEY_MAX - 2] = '\0';
    assert_int_equal(ratelimit_take(rl, key, 0, 1, &r), 0);
    assert_true(r.allowed);
    ratelimit_free(rl);
}

static void siphash_reference_vector(void **state)
{
    /* the SipHash paper's appendix A: key 00..0f, message 00..0e */
    uint64_t k[2] = {0x0706050403020100ull, 0x0f0e0d0c0b0a0908ull};
    unsigned char m[15];
    for (int i = 0; i < 15; i++)
        m[i] = (unsigned char)i;
    assert_true(siphash24(k, m, sizeof(m)) == 0xa129ca6149be45e5ull);
}

static void ip_key_of(const char *addr, const char *want)
{
    char buf[RATELIMIT_IP_KEY_MAX];
    int n = ratelimit_ip_key_str(addr, buf, sizeof(buf));
    assert_int_equal(n, (int)strlen(want));
    assert_string_equal(buf, want);
}

static void ip_keys(void **state)
{
    ip_key_of("192.0.2.1", "ip:192.0.2.1");
    ip_key_of("2001:db8:1:2:3:4:5:6", "ip:2001:db8:1:2::/64");
    ip_key_of("2001:DB8:1:2:ffff:ffff:ffff:ffff", "ip:2001:db8:1:2::/64");
    ip_key_of("::ffff:192.0.2.1", "ip:192.0.2.1");
    ip_key_of("::1", "ip:::/64");
    ip_key_of("fe80::1", "ip:fe80::/64");
    /* the longest possible key fits */
    ip_key_of("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "ip:ffff:ffff:ffff:ffff::/64");
    ip_key_of("255.255.255.255", "ip:255.255.255.255");
    assert_true(RATELIMIT_IP_KEY_MAX <= RATELIMIT_KEY_MAX);

    char buf[RATELIMIT_IP_KEY_MAX];
    assert_int_equal(ratelimit_ip_key_str("", buf, sizeof(buf)), -EINVAL);
    assert_int_equal(ratelimit_ip_key_str("192.0.2.1:80", buf, sizeof(buf)), -EINVAL);
    assert_int_equal(ratelimit_ip_key_str("[::1]", buf, sizeof(buf)), -EINVAL);
    assert_int_equal(ratelimit_ip_key_str("192.0.2.1", buf, 12), -ENOSPC); /* no room for NUL */
    assert_int_equal(ratelimit_ip_key_str("192.0.2.1", buf, 13), 12);
}

static void ip_keys_from_sockaddr(void **state)
{
    char buf[RATELIMIT_IP_KEY_MAX];
    struct sockaddr_in a4 = {.sin_family = AF_INET, .sin_port = htons(1234)};
    inet_pton(AF_INET, "198.51.100.7", &a4.sin_addr);
    assert_int_equal(ratelimit_ip_key((struct sockaddr *)&a4, buf, sizeof(buf)), 15);
    assert_string_equal(buf, "ip:198.51.100.7");

    struct sockaddr_in6 a6 = {.sin6_family = AF_INET6, .sin6_port = htons(1234)};
    inet_pton(AF_INET6, "2001:db8:aa:bb:1::2", &a6.sin6_addr);
    assert_true(ratelimit_ip_key((struct sockaddr *)&a6, buf, sizeof(buf)) > 0);
    assert_string_equal(buf, "ip:2001:db8:aa:bb::/64");
    inet_pton(AF_INET6, "::ffff:198.51.100.7", &a6.sin6_addr); /* dual-stack socket */
    assert_true(ratelimit_ip_key((struct sockaddr *)&a6, buf, sizeof(buf)) > 0);
    assert_string_equal(buf, "ip:198.51.100.7");

    struct sockaddr un = {.sa_family = AF_UNIX};
    assert_int_equal(ratelimit_ip_key(&un, buf, sizeof(buf)), -EAFNOSUPPORT);
}

static void headers(void **state)
{
    struct ratelimit *rl = new_rl(3, 3000, 100);
    struct ratelimit_headers h;
    struct ratelimit_result r = take(rl, "k:h", 0, 2);
    assert_int_equal(ratelimit_format_headers(&r, &h), 3);
    assert_string_equal(h.h[0].name, "RateLimit-Limit");
    assert_string_equal(h.h[0].value, "3");
    assert_string_equal(h.h[1].name, "RateLimit-Remaining");
    assert_string_equal(h.h[1].value, "1");
    assert_string_equal(h.h[2].name, "RateLimit-Reset");
    assert_string_equal(h.h[2].value, "2");
    r = take(rl, "k:h", 0, 3);
    assert_int_equal(ratelimit_format_headers(&r, &h), 4);
    assert_string_equal(h.h[1].value, "1");
    assert_string_equal(h.h[3].name, "Retry-After");
    assert_string_equal(h.h[3].value, "2");
    r = (struct ratelimit_result){.allowed = true, .limit = 3}; /* untracked */
    assert_int_equal(ratelimit_format_headers(&r, &h), 0);
    /* the widest values fit */
    r = (struct ratelimit_result){.tracked = true,
                                  .limit = UINT32_MAX,
                                  .remaining = UINT32_MAX,
                                  .reset_s = UINT32_MAX,
                                  .retry_after_s = UINT32_MAX};
    assert_int_equal(ratelimit_format_headers(&r, &h), 4);
    for (int i = 0; i < 4; i++)
        assert_string_equal(h.h[i].value, "4294967295");
    ratelimit_free(rl);
}

/* --- a full table ---------------------------------------------------------------------------- */

static size_t stripe_of(const struct ratelimit *rl, const char *key)
{
    return siphash24(rl->sipkey, key, strlen(key)) % RATELIMIT_STRIPES;
}

/* Fills keys[0..n) with distinct keys that land in stripe `stripe`. */
static void keys_in_stripe(const struct ratelimit *rl, size_t stripe, char (*keys)[32], size_t n)
{
    size_t found = 0;
    for (unsigned i = 0; found < n; i++) {
        snprintf(keys[found], 32, "ip:10.0.%u.%u", i / 256, i % 256);
        if (stripe_of(rl, keys[found]) == stripe)
            found++;
    }
}

static void full_table_fails_open_untracked(void **state)
{
    struct ratelimit *rl = new_rl(2, 1000, RATELIMIT_STRIPES); /* one bucket per stripe */
    char keys[3][32];
    keys_in_stripe(rl, 5, keys, 3);
    struct ratelimit_result r = take(rl, keys[0], 0, 1);
    EXPECT(r, true, 1, 1, 0);
    /* the stripe is full of a busy bucket: the newcomer passes, every time, uncounted */
    for (int i = 0; i < 10; i++) {
        r = take(rl, keys[1], 100, 1);
        assert_true(r.allowed);
        assert_false(r.tracked);
    }
    struct ratelimit_stats st;
    ratelimit_stats(rl, &st);
    assert_int_equal(st.tracked, 1);
    assert_int_equal(st.untracked, 10);
    assert_int_equal(st.evicted, 0);
    /* the tracked key is still limited */
    r = take(rl, keys[0], 100, 1);
    EXPECT(r, true, 0, 1, 0);
    r = take(rl, keys[0], 100, 1);
    EXPECT(r, false, 0, 1, 1);
    /* other stripes are unaffected */
    char other[1][32];
    keys_in_stripe(rl, 6, other, 1);
    r = take(rl, other[0], 100, 1);
    assert_true(r.tracked);
    ratelimit_free(rl);
}

static void idle_buckets_are_evicted(void **state)
{
    struct ratelimit *rl = new_rl(2, 1000, RATELIMIT_STRIPES);
    char keys[2][32];
    keys_in_stripe(rl, 9, keys, 2);
    struct rl_stripe *s = &rl->stripes[9];
    struct ratelimit_result r = take(rl, keys[0], 0, 2); /* full again at 1000 */
    r = take(rl, keys[1], 400, 1);
    assert_false(r.tracked);
    /* that sweep found nothing idle and remembered when something can be */
    assert_int_equal(s->sweep_after_ms, 1000);
    r = take(rl, keys[1], 999, 1);
    assert_false(r.tracked);
    r = take(rl, keys[1], 1000, 1); /* keys[0] refilled: evicted, keys[1] takes its place */
    EXPECT(r, true, 1, 1, 0);
    struct ratelimit_stats st;
    ratelimit_stats(rl, &st);
    assert_int_equal(st.tracked, 1);
    assert_int_equal(st.evicted, 1);
    assert_int_equal(st.untracked, 2);
    /* keys[0] was forgotten at full, so it lost nothing; now keys[1] holds the slot */
    r = take(rl, keys[0], 1000, 1);
    assert_true(r.allowed);
    assert_false(r.tracked);
    ratelimit_free(rl);
}

static void one_sweep_frees_every_idle_bucket(void **state)
{
    struct ratelimit *rl = new_rl(1, 1000, 4 * RATELIMIT_STRIPES); /* 4 per stripe */
    char keys[6][32];
    keys_in_stripe(rl, 0, keys, 6);
    struct ratelimit_result r;
    for (int i = 0; i < 4; i++) {
        r = take(rl, keys[i], i * 100, 1);
        assert_true(r.tracked);
    }
    r = take(rl, keys[1], 1100, 1); /* keys[1] busy again until 2100 */
    EXPECT(r, true, 0, 1, 0);
    /* at 1350: keys 0, 2 are full (at 1000, 1200), key 3 full at 1300, key 1 busy */
    r = take(rl, keys[4], 1350, 1);
    assert_true(r.tracked);
    struct ratelimit_stats st;
    ratelimit_stats(rl, &st);
    assert_int_equal(st.evicted, 3);
    assert_int_equal(st.tracked, 2);
    r = take(rl, keys[5], 1350, 1); /* room left by the same sweep */
    assert_true(r.tracked);
    r = take(rl, keys[1], 1350, 1); /* never evicted: still empty */
    EXPECT(r, false, 0, 1, 1);
    ratelimit_free(rl);
}

/* --- threads --------------------------------------------------------------------------------- */

#define NTHREADS 8
#define TRIES 2000

struct worker {
    pthread_t tid;
    struct ratelimit *rl;
    pthread_barrier_t *start;
    const char *shared_key;
    char own_key[32];
    int64_t now;
    unsigned phases;
    unsigned allowed_shared[16];
    unsigned allowed_own;
    int errors;
};

/* Every phase: wait for all, then TRIES takes on the shared key (and the own key) at the
 * phase's frozen time now + phase × 100 ms. */
static void *worker_main(void *arg)
{
    struct worker *w = arg;
    for (unsigned p = 0; p < w->phases; p++) {
        pthread_barrier_wait(w->start);
        int64_t now = w->now + (int64_t)p * 100;
        for (int i = 0; i < TRIES; i++) {
            struct ratelimit_result r;
            if (ratelimit_take(w->rl, w->shared_key, now, 1, &r) != 0 || !r.tracked)
                w->errors++;
            w->allowed_shared[p] += r.allowed;
            if (w->own_key[0]) {
                if (ratelimit_take(w->rl, w->own_key, now, 1, &r) != 0 || !r.tracked)
                    w->errors++;
                w->allowed_own += r.allowed;
            }
        }
    }
    return NULL;
}

static void run_workers(struct worker *w, unsigned phases, bool own_keys, struct ratelimit *rl)
{
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, NTHREADS);
    for (int t = 0; t < NTHREADS; t++) {
        memset(&w[t], 0, sizeof(w[t]));
        w[t] = (struct worker){
            .rl = rl, .start = &start, .shared_key = "k:shared", .now = 1000, .phases = phases};
        if (own_keys)
            snprintf(w[t].own_key, sizeof(w[t].own_key), "k:own-%d", t);
        assert_int_equal(pthread_create(&w[t].tid, NULL, worker_main, &w[t]), 0);
    }
    for (int t = 0; t < NTHREADS; t++)
        pthread_join(w[t].tid, NULL);
    pthread_barrier_destroy(&start);
}

static void threads_share_one_limit(void **state)
{
    struct ratelimit *rl = new_rl(100, 60000, 1000);
    struct worker w[NTHREADS];
    run_workers(w, 1, false, rl);
    unsigned total = 0;
    for (int t = 0; t < NTHREADS; t++) {
        assert_int_equal(w[t].errors, 0);
        total += w[t].allowed_shared[0];
    }
    assert_int_equal(total, 100); /* of NTHREADS × TRIES attempts */
    ratelimit_free(rl);
}

static void threads_share_refill(void **state)
{
    /* 10 per second: each 100 ms phase refills exactly one token for all threads together */
    struct ratelimit *rl = new_rl(10, 1000, 1000);
    struct worker w[NTHREADS];
    run_workers(w, 12, false, rl);
    for (unsigned p = 0; p < 12; p++) {
        unsigned total = 0;
        for (int t = 0; t < NTHREADS; t++)
            total += w[t].allowed_shared[p];
        assert_int_equal(total, p == 0 ? 10 : 1);
    }
    ratelimit_free(rl);
}

static void threads_keys_do_not_interfere(void **state)
{
    struct ratelimit *rl = new_rl(50, 60000, 1000);
    struct worker w[NTHREADS];
    run_workers(w, 1, true, rl);
    unsigned total = 0;
    for (int t = 0; t < NTHREADS; t++) {
        assert_int_equal(w[t].errors, 0);
        assert_int_equal(w[t].allowed_own, 50);
        total += w[t].allowed_shared[0];
    }
    assert_int_equal(total, 50);
    struct ratelimit_stats st;
    ratelimit_stats(rl, &st);
    assert_int_equal(st.tracked, NTHREADS + 1);
    ratelimit_free(rl);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(burst_then_refused),
        cmocka_unit_test(refill_is_continuous),
        cmocka_unit_test(partial_refill),
        cmocka_unit_test(cost_above_one),
        cmocka_unit_test(seconds_round_up),
        cmocka_unit_test(clock_steps_back),
        cmocka_unit_test(largest_configuration),
        cmocka_unit_test(disabled_allows_everything),
        cmocka_unit_test(bad_configuration),
        cmocka_unit_test(key_length),
        cmocka_unit_test(siphash_reference_vector),
        cmocka_unit_test(ip_keys),
        cmocka_unit_test(ip_keys_from_sockaddr),
        cmocka_unit_test(headers),
        cmocka_unit_test(full_table_fails_open_untracked),
        cmocka_unit_test(idle_buckets_are_evicted),
        cmocka_unit_test(one_sweep_frees_every_idle_bucket),
        cmocka_unit_test(threads_share_one_limit),
        cmocka_unit_test(threads_share_refill),
        cmocka_unit_test(threads_keys_do_not_interfere),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
