/* config_errors — a bad setting stops the gateway before it listens: exit code 2 and a message
 * on stderr naming the setting. Also the `config` table and --version, which exit 0. */
#include <stdio.h>
#include <string.h>

#include "ts.h"
#include "ts_proc.h"

struct bad {
    const char *env;   /* NAME=value */
    const char *words; /* the message must contain this */
};

static void test_bad_values(void)
{
    static const struct bad cases[] = {
        {"PORT=abc", "PORT"},
        {"PORT=70000", "PORT"},
        {"PORT=-1", "PORT"},
        {"PORT=", "PORT"},
        {"PORT= 80", "PORT"},
        {"LOG_LEVEL=loud", "LOG_LEVEL"},
        {"ACCESS_LOG=maybe", "ACCESS_LOG"},
        {"THREADS=100000", "THREADS"},
        {"MAX_BODY_BYTES=12abc", "MAX_BODY_BYTES"},
        {"MAX_HEADER_COUNT=1", "MAX_HEADER_COUNT"},
        {"HEADER_TIMEOUT_MS=0", "HEADER_TIMEOUT_MS"},
        {"HEADER_TIMEOUT_MS=99999999999999999999999", "HEADER_TIMEOUT_MS"},
        {"RECV_BUFFERS=1000", "RECV_BUFFERS"},
        {"STATIC_DIR=/nonexistent/comfygate/static", "STATIC_DIR"},
        {NULL, NULL},
    };
    for (const struct bad *b = cases; b->env; b++) {
        char err[4096];
        const char *env[] = {b->env, NULL};
        const char *args[] = {"serve", NULL};
        int rc = ts_run_bin(args, env, err, sizeof(err), 20000);
        TS_CHECKF(rc == 2, "%s: exit %d, want 2 (stderr: %s)", b->env, rc, err);
        TS_CHECKF(strstr(err, b->words) != NULL, "%s: message does not name it: %s", b->env, err);
        TS_CHECKF(strncmp(err, "comfygate: ", 11) == 0, "%s: message: %s", b->env, err);
    }
}

static void test_bad_flags(void)
{
    char err[4096];
    const char *a1[] = {"serve", "--port", "abc", NULL};
    TS_CHECK_INT(ts_run_bin(a1, NULL, err, sizeof(err), 20000), 2);
    TS_CHECK(strstr(err, "PORT") != NULL);
    const char *a2[] = {"serve", "--set", "NO_SUCH_SETTING=1", NULL};
    TS_CHECK_INT(ts_run_bin(a2, NULL, err, sizeof(err), 20000), 2);
    TS_CHECK(strstr(err, "NO_SUCH_SETTING") != NULL);
    const char *a3[] = {"frobnicate", NULL};
    TS_CHECK_INT(ts_run_bin(a3, NULL, err, sizeof(err), 20000), 2);
    const char *a4[] = {"serve", "--bogus", NULL};
    TS_CHECK_INT(ts_run_bin(a4, NULL, err, sizeof(err), 20000), 2);
}

static void test_config_table(void)
{
    char err[512];
    const char *args[] = {"config", NULL};
    TS_CHECK_INT(ts_run_bin(args, NULL, err, sizeof(err), 20000), 0);
    TS_CHECK_STR(err, "");
    const char *v[] = {"--version", NULL};
    TS_CHECK_INT(ts_run_bin(v, NULL, err, sizeof(err), 20000), 0);
}

static const struct ts_test tests[] = {
    {"bad setting values: exit 2 with a message", test_bad_values},
    {"bad command line: exit 2", test_bad_flags},
    {"config table and --version: exit 0", test_config_table},
    {NULL, NULL},
};

int main(int argc, char **argv)
{
    return ts_main(argc, argv, tests);
}
