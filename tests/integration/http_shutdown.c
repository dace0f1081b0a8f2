/* http_shutdown — SIGTERM is a graceful drain: new connections are refused at once, idle ones
 * are closed, a request that was arriving is still answered (with Connection: close), a slow
 * client in the middle of a 64 MiB download gets every byte, and the process then exits 0 on
 * its own, long before SHUTDOWN_TIMEOUT_MS. Past that timeout, stragglers are cut off and the
 * exit is still clean. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ts.h"
#include "ts_json.h"
#include "ts_net.h"
#include "ts_proc.h"

#define T_LIVE 20000
#define BIG_SIZE (64ull << 20)

static char dir[256];
static char env_dir[400];

static int make_big_file(void)
{
    if (ts_mkdtemp(dir, sizeof(dir)) < 0)
        return -1;
    char p[400];
    snprintf(p, sizeof(p), "%s/big.bin", dir);
    snprintf(env_dir, sizeof(env_dir), "STATIC_DIR=%s", dir);
    return ts_write_pattern_file(p, BIG_SIZE);
}

/* Polls until connect() is refused; true if it was within the liveness bound. */
static bool wait_refused(int port)
{
    long long deadline = ts_now_ms() + T_LIVE;
    while (ts_now_ms() < deadline) {
        struct ts_conn c;
        int rc = ts_conn_open(&c, port);
        if (rc == -ECONNREFUSED)
            return true;
        if (rc == 0)
            ts_conn_close(&c);
        ts_sleep_ms(20);
    }
    return false;
}

/* Reads the rest of a download slowly; returns the body bytes read, checking the pattern. */
static uint64_t read_rest_slowly(struct ts_conn *c, uint64_t off, bool *same)
{
    unsigned rounds = 0;
    while (off < BIG_SIZE) {
        if (c->len == 0 && ts_conn_fill(c, T_LIVE) <= 0)
            break;
        size_t n = c->len < BIG_SIZE - off ? c->len : (size_t)(BIG_SIZE - off);
        if (*same && ts_pattern_mismatch(c->buf, n, off) >= 0)
            *same = false;
        off += n;
        ts_conn_consume(c, n);
        if (++rounds % 64 == 0)
            ts_sleep_ms(1); /* a slow reader: the server keeps waiting on us */
    }
    return off;
}

static void test_drain_on_sigterm(void)
{
    TS_REQUIRE(make_big_file() == 0);
    const char *env[] = {env_dir,
                         "SHUTDOWN_TIMEOUT_MS=600000",
                         "IDLE_TIMEOUT_MS=600000",
                         "HEADER_TIMEOUT_MS=600000",
                         "PIPE_SIZE=65536",
                         "LINGER_MS=100",
                         NULL};
    struct ts_server s;
    TS_REQUIRE(ts_server_start(&s, env) == 0);
    struct ts_conn dl, idle, arriving;
    struct ts_resp r;
    /* A download, read 1 MiB into, then left waiting. */
    TS_REQUIRE(ts_conn_open(&dl, s.port) == 0);
    TS_CHECK(ts_conn_send_str(&dl, "GET /static/big.bin HTTP/1.1\r\nHost: t\r\n\r\n") == 0);
    TS_REQUIRE(ts_read_head(&dl, &r, T_LIVE) == 0 && r.status == 200);
    ts_resp_free(&r);
    while (dl.len < (1u << 20) && ts_conn_fill(&dl, T_LIVE) > 0) {
    }
    /* An idle keep-alive connection. */
    TS_REQUIRE(ts_conn_open(&idle, s.port) == 0);
    TS_CHECK(ts_conn_send_str(&idle, "GET /health HTTP/1.1\r\nHost: t\r\n\r\n") == 0);
    TS_CHECK(ts_read_response(&idle, &r, false, T_LIVE) == 0 && r.status == 200);
    ts_resp_free(&r);
    /* A request half sent. */
    TS_REQUIRE(ts_conn_open(&arriving, s.port) == 0);
    TS_CHECK(ts_conn_send_str(&arriving, "GET /ready HTTP/1.1\r\nHost: t\r\n") == 0);
    ts_sleep_ms(50);

    TS_REQUIRE(kill(s.pid, SIGTERM) == 0);
    TS_CHECKF(wait_refused(s.port), "new connections still accepted after SIGTERM");
    TS_CHECKF(ts_conn_expect_eof(&idle, T_LIVE) == 0, "idle connection not closed");
    /* The half-sent request is answered (not ready any more), and that is the last one. */
    TS_CHECK(ts_conn_send_str(&arriving, "X-Request-Id: late\r\n\r\n") == 0);
    TS_CHECK(ts_read_response(&arriving, &r, false, T_LIVE) == 0);
    TS_CHECK_INT(r.status, 503);
    TS_CHECK_STR(ts_resp_header(&r, "connection"), "close");
    TS_CHECK_STR(ts_resp_header(&r, "x-request-id"), "late");
    ts_resp_free(&r);
    TS_CHECK(ts_conn_expect_eof(&arriving, T_LIVE) == 0);
    /* The download finishes with every byte, then the server closes it. */
    bool same = ts_pattern_mismatch(dl.buf, dl.len, 0) < 0;
    uint64_t got = dl.len;
    ts_conn_consume(&dl, dl.len);
    got = read_rest_slowly(&dl, got, &same);
    TS_CHECK_INT(got, BIG_SIZE);
    TS_CHECK(same);
    TS_CHECKF(ts_conn_expect_eof(&dl, T_LIVE) == 0, "download connection not closed after it");
    /* Nothing is left: the process exits by itself (the shutdown timeout is 10 minutes). */
    TS_CHECKF(ts_server_wait(&s, T_LIVE) == 0, "server still running after its last request");
    ts_server_check_exit(&s, 0);
    TS_CHECK(ts_server_log_has(&s, "\"msg\":\"stopped\""));
    ts_conn_close(&dl);
    ts_conn_close(&idle);
    ts_conn_close(&arriving);
    ts_server_cleanup(&s);
    ts_rmtree(dir);
}

static void test_idle_server(void)
{
    struct ts_server s;
    TS_REQUIRE(ts_server_start(&s, NULL) == 0);
    TS_CHECK(ts_http_status(s.port, "/health", T_LIVE) == 200);
    TS_CHECK(ts_server_stop(&s, T_LIVE) == 0); /* exit 0, clean stderr */
}

static void test_sigint(void)
{
    struct ts_server s;
    TS_REQUIRE(ts_server_start(&s, NULL) == 0);
    TS_REQUIRE(kill(s.pid, SIGINT) == 0);
    TS_CHECK(ts_server_wait(&s, T_LIVE) == 0);
    ts_server_check_exit(&s, 0);
    ts_server_cleanup(&s);
}

static void test_timeout_cuts_stragglers(void)
{
    /* A client that stopped reading its download and one still trickling its headers: the
     * shutdown timeout ends both, and the exit is still 0. */
    TS_REQUIRE(make_big_file() == 0);
    const char *env[] = {env_dir, "SHUTDOWN_TIMEOUT_MS=300", "SEND_TIMEOUT_MS=600000",
                         "HEADER_TIMEOUT_MS=600000", NULL};
    struct ts_server s;
    TS_REQUIRE(ts_server_start(&s, env) == 0);
    struct ts_conn dl, slow;
    struct ts_resp r;
    TS_REQUIRE(ts_conn_open(&dl, s.port) == 0);
    TS_CHECK(ts_conn_send_str(&dl, "GET /static/big.bin HTTP/1.1\r\nHost: t\r\n\r\n") == 0);
    TS_REQUIRE(ts_read_head(&dl, &r, T_LIVE) == 0 && r.status == 200);
    ts_resp_free(&r);
    TS_REQUIRE(ts_conn_open(&slow, s.port) == 0);
    TS_CHECK(ts_conn_send_str(&slow, "GET /health HTTP/1.1\r\nHost: t\r\nX-Slow: ") == 0);
    ts_sleep_ms(50);
    TS_REQUIRE(kill(s.pid, SIGTERM) == 0);
    TS_CHECKF(ts_server_wait(&s, T_LIVE) == 0, "stragglers kept the server past its timeout");
    ts_server_check_exit(&s, 0);
    TS_CHECK(ts_conn_expect_eof(&slow, T_LIVE) == 0);
    ts_conn_close(&dl);
    ts_conn_close(&slow);
    ts_server_cleanup(&s);
    ts_rmtree(dir);
}

static const struct ts_test tests[] = {
    {"SIGTERM drains: refuse new, finish a slow download, exit 0", test_drain_on_sigterm},
    {"SIGTERM on an idle server: exit 0", test_idle_server},
    {"SIGINT: exit 0", test_sigint},
    {"shutdown timeout cuts stragglers, exit 0", test_timeout_cuts_stragglers},
    {NULL, NULL},
};

int main(int argc, char **argv)
{
    return ts_main(argc, argv, tests);
}
