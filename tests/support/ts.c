/* ts — see ts.h. */
#include "ts.h"

#include <errno.h>
#include <linux/io_uring.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "ts_proc.h"

static pthread_mutex_t fail_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned case_failures;
static char skip_reason[256];

void ts_fail(const char *file, int line, const char *fmt, ...)
{
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    pthread_mutex_lock(&fail_lock);
    case_failures++;
    printf("# FAIL %s:%d: %s\n", file, line, msg);
    fflush(stdout);
    pthread_mutex_unlock(&fail_lock);
}

unsigned ts_case_failures(void)
{
    pthread_mutex_lock(&fail_lock);
    unsigned n = case_failures;
    pthread_mutex_unlock(&fail_lock);
    return n;
}

void ts_note(const char *fmt, ...)
{
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    pthread_mutex_lock(&fail_lock);
    printf("# %s\n", msg);
    fflush(stdout);
    pthread_mutex_unlock(&fail_lock);
}

void ts_skip(const char *reason)
{
    snprintf(skip_reason, sizeof(skip_reason), "%s", reason);
}

long long ts_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void ts_sleep_ms(unsigned ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
    }
}

/* The gateway is built on io_uring; a kernel without it (or with it disabled by sysctl or a
 * seccomp policy) cannot run any of these tests, which is a skip, not a failure. */
static bool io_uring_usable(void)
{
    struct io_uring_params p;
    memset(&p, 0, sizeof(p));
    long fd = syscall(__NR_io_uring_setup, 4, &p);
    if (fd < 0)
        return false;
    close((int)fd);
    return true;
}

static bool run_case(unsigned *i, const char *name, void (*fn)(void), bool reap)
{
    pthread_mutex_lock(&fail_lock);
    case_failures = 0;
    skip_reason[0] = '\0';
    pthread_mutex_unlock(&fail_lock);
    long long t0 = ts_now_ms();
    fn();
    if (reap)
        ts_server_reap_leftovers(); /* after an early return: kill, check stderr, clean up */
    bool ok = ts_case_failures() == 0;
    if (ok && skip_reason[0])
        printf("ok %u - %s # SKIP %s\n", ++*i, name, skip_reason);
    else
        printf("%s %u - %s (%lld ms)\n", ok ? "ok" : "not ok", ++*i, name, ts_now_ms() - t0);
    return ok;
}

int ts_main_shared(int argc, char **argv, const struct ts_test *tests, void (*setup)(void),
                   void (*teardown)(void))
{
    const char *filter = argc > 1 ? argv[1] : NULL;
    setvbuf(stdout, NULL, _IOLBF, 0);
    signal(SIGPIPE, SIG_IGN); /* a server closing on us must be an error code, not a death */
    if (!getenv("COMFYGATE_BIN")) {
        printf("1..0 # SKIP COMFYGATE_BIN is not set\n");
        return 0; /* under TAP a skip is the plan line; exit 77 would read as an error */
    }
    if (!io_uring_usable()) {
        printf("1..0 # SKIP io_uring is not available on this kernel\n");
        return 0;
    }
    unsigned n = (setup ? 1 : 0) + (teardown ? 1 : 0);
    for (const struct ts_test *t = tests; t->name; t++) {
        if (!filter || strstr(t->name, filter))
            n++;
    }
    printf("1..%u\n", n);
    unsigned i = 0, failed = 0;
    if (setup && !run_case(&i, "setup", setup, false)) {
        ts_server_reap_leftovers();
        printf("Bail out! setup failed\n");
        return 1;
    }
    for (const struct ts_test *t = tests; t->name; t++) {
        if (!filter || strstr(t->name, filter))
            failed += !run_case(&i, t->name, t->fn, !setup);
    }
    if (teardown)
        failed += !run_case(&i, "teardown", teardown, true);
    return failed ? 1 : 0;
}

int ts_main(int argc, char **argv, const struct ts_test *tests)
{
    return ts_main_shared(argc, argv, tests, NULL, NULL);
}
