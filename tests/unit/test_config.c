/* test_config — the settings table: defaults, range and type checks with a clear message,
 * .env loading (quotes, comments) and the real environment winning over the file. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/config.c"

struct errbuf {
    FILE *f;
    char *text;
    size_t len;
};

static void err_open(struct errbuf *e)
{
    e->text = NULL;
    e->len = 0;
    e->f = open_memstream(&e->text, &e->len);
    assert_non_null(e->f);
}

static const char *err_text(struct errbuf *e)
{
    fflush(e->f);
    return e->text ? e->text : "";
}

static void err_close(struct errbuf *e)
{
    fclose(e->f);
    free(e->text);
}

/* Every test starts from an environment with none of our variables set. */
static int clean_env(void **state)
{
    for (size_t i = 0; i < NSETTINGS; i++)
        unsetenv(settings[i].name);
    return 0;
}

static char env_path[64];

static void write_env_file(const char *text)
{
    strcpy(env_path, "/tmp/comfygate-test-env-XXXXXX");
    int fd = mkstemp(env_path);
    assert_true(fd >= 0);
    size_t n = strlen(text);
    assert_int_equal(write(fd, text, n), (ssize_t)n);
    close(fd);
}

static void defaults(void **state)
{
    struct config c;
    struct errbuf e;
    err_open(&e);
    assert_int_equal(config_load(&c, NULL, false, e.f), 0);
    assert_string_equal(err_text(&e), "");
    assert_string_equal(c.host, "127.0.0.1");
    assert_int_equal(c.port, 8080);
    assert_string_equal(c.port_file, "");
    assert_int_equal(c.threads, 0);
    assert_int_equal(c.log_level, LOG_INFO);
    assert_true(c.access_log);
    assert_int_equal(c.max_url_bytes, 8192);
    assert_int_equal(c.max_header_bytes, 32768);
    assert_int_equal(c.max_header_count, 100);
    assert_int_equal(c.max_body_bytes, 8388608);
    assert_int_equal(c.header_timeout_ms, 10000);
    assert_int_equal(c.recv_buffers, 1024);
    assert_int_equal(c.recv_buffer_size, 16384);
    assert_string_equal(c.static_dir, "");
    /* a missing .env file is not an error, unless it was named (--env-file) */
    assert_int_equal(config_load(&c, "/nonexistent/comfygate/.env", false, e.f), 0);
    assert_int_equal(c.port, 8080);
    assert_int_equal(config_load(&c, "/nonexistent/comfygate/.env", true, e.f), -1);
    assert_non_null(strstr(err_text(&e), "--env-file /nonexistent/comfygate/.env"));
    err_close(&e);
}

static void every_default_is_valid(void **state)
{
    /* the table's own defaults must pass its own checks */
    for (size_t i = 0; i < NSETTINGS; i++) {
        struct config c;
        memset(&c, 0, sizeof(c));
        struct errbuf e;
        err_open(&e);
        assert_int_equal(config_set(&c, settings[i].name, settings[i].def, e.f), 0);
        err_close(&e);
    }
}

static void env_values_applied(void **state)
{
    setenv("PORT", "9090", 1);
    setenv("ACCESS_LOG", "off", 1);
    setenv("LOG_LEVEL", "debug", 1);
    setenv("MAX_BODY_BYTES", "4294967296", 1); /* 1 << 32: the maximum, needs 64 bits */
    setenv("HOST", "0.0.0.0", 1);
    struct config c;
    struct errbuf e;
    err_open(&e);
    assert_int_equal(config_load(&c, NULL, false, e.f), 0);
    assert_int_equal(c.port, 9090);
    assert_false(c.access_log);
    assert_int_equal(c.log_level, LOG_DEBUG);
    assert_int_equal(c.max_body_bytes, 4294967296ull);
    assert_string_equal(c.host, "0.0.0.0");
    err_close(&e);
}

/* Sets NAME=value in the environment, expects config_load to fail and the message to name the
 * variable and contain `want`. */
static void expect_bad(const char *name, const char *value, const char *want)
{
    clean_env(NULL);
    setenv(name, value, 1);
    struct config c;
    struct errbuf e;
    err_open(&e);
    assert_int_equal(config_load(&c, NULL, false, e.f), -1);
    const char *msg = err_text(&e);
    assert_non_null(strstr(msg, name));
    assert_non_null(strstr(msg, want));
    err_close(&e);
    unsetenv(name);
}

static void bad_values_rejected(void **state)
{
    expect_bad("PORT", "65536", "from 0 to 65535");
    expect_bad("PORT", "-1", "whole number");
    expect_bad("PORT", "80x", "whole number");
    expect_bad("PORT", "", "whole number");
    expect_bad("PORT", " 80", "whole number");
    expect_bad("PORT", "99999999999999999999999", "whole number"); /* ERANGE */
    expect_bad("THREADS", "257", "from 0 to 256");
    expect_bad("MAX_URL_BYTES", "15", "from 16 to");
    expect_bad("MAX_HEADER_COUNT", "10001", "to 10000");
    expect_bad("ACCESS_LOG", "maybe", "true or false");
    expect_bad("LOG_LEVEL", "verbose", "debug, info, warn, error or off");
    expect_bad("RECV_BUFFERS", "1000", "power of two");
    char longhost[300];
    memset(longhost, 'h', sizeof(longhost) - 1);
    longhost[sizeof(longhost) - 1] = '\0';
    expect_bad("HOST", longhost, "too long");
}

static void limits_inclusive(void **state)
{
    struct config c;
    struct errbuf e;
    err_open(&e);
    assert_int_equal(config_load(&c, NULL, false, e.f), 0);
    assert_int_equal(config_set(&c, "PORT", "65535", e.f), 0);
    assert_int_equal(c.port, 65535);
    assert_int_equal(config_set(&c, "PORT", "0", e.f), 0);
    assert_int_equal(c.port, 0);
    assert_int_equal(config_set(&c, "MAX_URL_BYTES", "16", e.f), 0);
    assert_int_equal(config_set(&c, "MAX_URL_BYTES", "1048576", e.f), 0);
    assert_int_equal(config_set(&c, "MAX_URL_BYTES", "1048577", e.f), -1);
    assert_int_equal(c.max_url_bytes, 1048576); /* a failed set changes nothing */
    assert_int_equal(config_set(&c, "NO_SUCH_SETTING", "1", e.f), -1);
    assert_non_null(strstr(err_text(&e), "unknown setting NO_SUCH_SETTING"));
    err_close(&e);
}

static void bool_spellings(void **state)
{
    static const char *yes[] = {"true", "TRUE", "1", "yes", "On"};
    static const char *no[] = {"false", "False", "0", "no", "OFF"};
    struct config c;
    memset(&c, 0, sizeof(c));
    struct errbuf e;
    err_open(&e);
    for (size_t i = 0; i < 5; i++) {
        assert_int_equal(config_set(&c, "ACCESS_LOG", yes[i], e.f), 0);
        assert_true(c.access_log);
        assert_int_equal(config_set(&c, "ACCESS_LOG", no[i], e.f), 0);
        assert_false(c.access_log);
    }
    err_close(&e);
}

static void env_file_loading(void **state)
{
    write_env_file("# a comment\n"
                   "\n"
                   "   # an indented comment\n"
                   "PORT=1234\n"
                   "HOST=\"0.0.0.0\"\n"
                   "STATIC_DIR='/srv/static dir'\n"
                   "LOG_LEVEL  =warn\r\n" /* spaces before '=', CRLF line end */
                   "export THREADS=2\n"
                   "PORT_FILE=/run/a#b # a comment after the value\n"
                   "SHARED_STORE=true\n"
                   "SHARED_STORE=false  # the last line of a key wins\n"
                   "NOT_A_SETTING=1\n");
    struct config c;
    struct errbuf e;
    err_open(&e);
    int rc = config_load(&c, env_path, false, e.f);
    assert_non_null(strstr(err_text(&e), ":12: warning: NOT_A_SETTING is not a setting"));
    assert_int_equal(rc, 0);
    assert_int_equal(c.port, 1234);
    assert_string_equal(c.host, "0.0.0.0");
    assert_string_equal(c.static_dir, "/srv/static dir");
    assert_int_equal(c.log_level, LOG_WARN);
    assert_int_equal(c.threads, 2);
    assert_string_equal(c.port_file, "/run/a#b"); /* '#' starts a comment after a space */
    assert_false(c.shared_store);
    err_close(&e);
    unlink(env_path);
}

static void env_file_empty_quoted_number_rejected(void **state)
{
    write_env_file("THREADS=\"\"\n");
    struct config c;
    struct errbuf e;
    err_open(&e);
    assert_int_equal(config_load(&c, env_path, false, e.f), -1);
    assert_non_null(strstr(err_text(&e), "THREADS"));
    err_close(&e);
    unlink(env_path);
}

static void env_wins_over_file(void **state)
{
    write_env_file("PORT=1234\nTHREADS=3\n");
    setenv("PORT", "4321", 1);
    struct config c;
    struct errbuf e;
    err_open(&e);
    assert_int_equal(config_load(&c, env_path, false, e.f), 0);
    assert_int_equal(c.port, 4321); /* the real environment */
    assert_int_equal(c.threads, 3); /* the file, where the environment is silent */
    err_close(&e);
    unlink(env_path);
}

static void env_file_errors(void **state)
{
    write_env_file("PORT=1\nthis line has no equals sign\n");
    struct config c;
    struct errbuf e;
    err_open(&e);
    assert_int_equal(config_load(&c, env_path, false, e.f), -1);
    assert_non_null(strstr(err_text(&e), ":2: expected KEY=VALUE"));
    err_close(&e);
    unlink(env_path);

    clean_env(NULL);
    write_env_file("PORT=1\nPORT_FILE=\"unbalanced\n");
    err_open(&e);
    assert_int_equal(config_load(&c, env_path, false, e.f), -1);
    assert_non_null(strstr(err_text(&e), ":2: expected KEY=VALUE (a quote is not closed)"));
    err_close(&e);
    unlink(env_path);

    clean_env(NULL);
    write_env_file("PORT=70000\n");
    err_open(&e);
    assert_int_equal(config_load(&c, env_path, false, e.f), -1);
    assert_non_null(strstr(err_text(&e), "PORT must be a whole number"));
    err_close(&e);
    unlink(env_path);
}

static void print_table_lists_every_setting(void **state)
{
    struct errbuf out;
    err_open(&out);
    config_print_table(out.f);
    const char *t = err_text(&out);
    for (size_t i = 0; i < NSETTINGS; i++) {
        char cell[64];
        snprintf(cell, sizeof(cell), "| `%s` | `%s` |", settings[i].name, settings[i].def);
        assert_non_null(strstr(t, cell));
    }
    err_close(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(defaults, clean_env, clean_env),
        cmocka_unit_test_setup_teardown(every_default_is_valid, clean_env, clean_env),
        cmocka_unit_test_setup_teardown(env_values_applied, clean_env, clean_env),
        cmocka_unit_test_setup_teardown(bad_values_rejected, clean_env, clean_env),
        cmocka_unit_test_setup_teardown(limits_inclusive, clean_env, clean_env),
        cmocka_unit_test_setup_teardown(bool_spellings, clean_env, clean_env),
        cmocka_unit_test_setup_teardown(env_file_loading, clean_env, clean_env),
        cmocka_unit_test_setup_teardown(env_file_empty_quoted_number_rejected, clean_env,
                                        clean_env),
        cmocka_unit_test_setup_teardown(env_wins_over_file, clean_env, clean_env),
        cmocka_unit_test_setup_teardown(env_file_errors, clean_env, clean_env),
        cmocka_unit_test_setup_teardown(print_table_lists_every_setting, clean_env, clean_env),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
