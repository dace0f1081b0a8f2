/* ts — the integration tests' small harness: a table of test cases, TAP output, and checks.
 *
 * Each test program is one table of cases run in order; a case passes when none of its checks
 * failed. Output is TAP (meson runs the programs with protocol 'tap'), and the exit code is 1
 * when any case failed, so the result is right under either protocol. A program whose kernel
 * lacks io_uring reports itself skipped with the TAP plan "1..0 # SKIP" and exit code 0 (the
 * TAP form of the exit code 77 that exitcode-protocol tests use). */
#ifndef COMFYGATE_TS_H
#define COMFYGATE_TS_H

#include <stdbool.h>
#include <stddef.h>

struct ts_test {
    const char *name;
    void (*fn)(void);
};

/* Runs the cases of `tests` (terminated by a {NULL, NULL} entry). argv[1], if given, runs only
 * the cases whose name contains it. Returns the process exit code. */
int ts_main(int argc, char **argv, const struct ts_test *tests);
/* The same around a fixture: setup runs first (as a case of its own; servers it starts are
 * shared by every case, and a failure skips the rest) and teardown last. */
int ts_main_shared(int argc, char **argv, const struct ts_test *tests, void (*setup)(void),
                   void (*teardown)(void));

/* Records a failed check of the running case; thread-safe. */
void ts_fail(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Failures recorded so far in the running case. */
unsigned ts_case_failures(void);
/* Marks the running case skipped (TAP "# SKIP"), e.g. for a missing resource; return after. */
void ts_skip(const char *reason);
/* A diagnostic line (TAP comment). */
void ts_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Non-fatal checks: record and carry on. */
#define TS_CHECK(cond)                                                                             \
    do {                                                                                           \
        if (!(cond))                                                                               \
            ts_fail(__FILE__, __LINE__, "check failed: %s", #cond);                                \
    } while (0)

#define TS_CHECKF(cond, ...)                                                                       \
    do {                                                                                           \
        if (!(cond))                                                                               \
            ts_fail(__FILE__, __LINE__, __VA_ARGS__);                                              \
    } while (0)

#define TS_CHECK_INT(a, b)                                                                         \
    do {                                                                                           \
        long long ts_a_ = (long long)(a), ts_b_ = (long long)(b);                                  \
        if (ts_a_ != ts_b_)                                                                        \
            ts_fail(__FILE__, __LINE__, "%s == %s: got %lld, want %lld", #a, #b, ts_a_, ts_b_);    \
    } while (0)

#define TS_CHECK_STR(a, b)                                                                         \
    do {                                                                                           \
        const char *ts_a_ = (a), *ts_b_ = (b);                                                     \
        if (!ts_a_ || !ts_b_ || strcmp(ts_a_, ts_b_) != 0)                                         \
            ts_fail(__FILE__, __LINE__, "%s == %s: got \"%s\", want \"%s\"", #a, #b,               \
                    ts_a_ ? ts_a_ : "(null)", ts_b_ ? ts_b_ : "(null)");                           \
    } while (0)

/* Fatal check: records the failure and leaves the running case (in case functions only). A
 * server the case started and did not stop is killed and cleaned up by the harness. */
#define TS_REQUIRE(cond)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            ts_fail(__FILE__, __LINE__, "required: %s", #cond);                                    \
            return;                                                                                \
        }                                                                                          \
    } while (0)

/* Milliseconds on CLOCK_MONOTONIC; sleeping in milliseconds. */
long long ts_now_ms(void);
void ts_sleep_ms(unsigned ms);

#endif
