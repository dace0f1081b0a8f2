/* tls_lifecycle — the timers and the shutdown of a TLS listener: HEADER_TIMEOUT_MS bounds the
 * handshake (a client that connects and says nothing, or stalls in the middle of a handshake,
 * is closed; one that finishes the handshake but sends no request gets a 408 over TLS), an idle
 * keep-alive connection is ended with close_notify, a client that stops reading a download is
 * cut off at SEND_TIMEOUT_MS, and SIGTERM drains: a download in flight gets every byte, an idle
 * connection gets close_notify, a request half sent is answered, and the process exits 0.
 * Every wait is a liveness bound; nothing here measures time. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ts.h"
#include "ts_net.h"
#include "ts_proc.h"
#include "ts_tls.h"

#define T_LIVE 30000
#define BIG_SIZE (20ull << 20)

static struct ts_certs certs;
static char dir[256];
static char env_dir[400], env_cert[400], env_key[400];

static void setup(void)
{
    TS_REQUIRE(ts_certs_make(&certs) == 0);
    TS_REQUIRE(ts_mkdtemp(dir, sizeof(dir)) == 0);
    char p[400];
    snprintf(p, sizeof(p), "%s/big.bin", dir);
    TS_REQUIRE(ts_write_pattern_file(p, BIG_SIZE) == 0);
    snprintf(env_dir, sizeof(env_dir), "STATIC_DIR=%s", dir);
    snprintf(env_cert, sizeof(env_cert), "TLS_CERT_FILE=%s", certs.ec_chain);
    snprintf(env_key, sizeof(env_key), "TLS_KEY_FILE=%s", certs.ec_key);
}

static void teardown(void)
{
    if (ts_case_failures() == 0) {
        ts_certs_remove(&certs);
        ts_rmtree(dir);
    }
}

static const struct ts_tls_opts verified = {.cafile = certs.ca, .alpn = "http/1.1"};

/* Reads until the server closes; false if it did not within the liveness bound. Bytes that
 * arrive are kept in c. */
static bool closed_by_server(struct ts_conn *c)
{
    long long deadline = ts_now_ms() + T_LIVE;
    while (!c->eof && ts_now_ms() < deadline) {
        int rc = ts_conn_fill(c, 1000);
        if (rc < 0 && rc != -ETIMEDOUT)
            return true;
    }
    return c->eof;
}

static void test_handshake_timeout(void)
{
    const char *env[] = {env_dir,         env_cert,          env_key, "HEADER_TIMEOUT_MS=300",
                         "LINGER_MS=100", "LOG_LEVEL=debug", NULL};
    struct ts_server s;
    TS_REQUIRE(ts_server_start(&s, env) == 0);
    unsigned char hello[4096];
    int hl = ts_tls_client_hello(hello, sizeof(hello));
    TS_REQUIRE(hl > 10);
    struct ts_conn silent, half, stalled;
    TS_REQUIRE(ts_conn_open(&silent, s.port) == 0);
    TS_REQUIRE(ts_conn_open(&half, s.port) == 0);
    TS_REQUIRE(ts_conn_open(&stalled, s.port) == 0);
    TS_CHECK(ts_conn_send(&half, hello, (size_t)hl / 2) == 0);
    TS_CHECK(ts_conn_send(&stalled, hello, (size_t)hl) == 0); /* then never answers */
    TS_CHECKF(closed_by_server(&silent) && silent.len == 0, "silent: %zu bytes", silent.len);
    TS_CHECKF(closed_by_server(&half) && half.len == 0, "half hello: %zu bytes", half.len);
    TS_CHECKF(closed_by_server(&stalled), "stalled after the server's flight: still open");
    TS_CHECKF(stalled.len > 0 && (unsigned char)stalled.buf[0] == 0x16,
              "no ServerHello record before the close");
    TS_CHECK(ts_server_wait_log(&s, "tls handshake timeout", T_LIVE) == 0);
    /* A finished handshake and no request: the header timeout still runs, and its 408 can be
     * sent now. */
    struct ts_conn quiet;
    TS_REQUIRE(ts_tls_open(&quiet, s.port, &verified, T_LIVE) == 0);
    struct ts_resp r;
    TS_CHECK(ts_read_response(&quiet, &r, false, T_LIVE) == 0);
    TS_CHECK_INT(r.status, 408);
    TS_CHECK_STR(ts_resp_header(&r, "connection"), "close");
    ts_resp_free(&r);
    TS_CHECK(ts_conn_expect_eof(&quiet, T_LIVE) == 0);
    TS_CHECK(ts_tls_closed_cleanly(&quiet));
    ts_conn_close(&silent);
    ts_conn_close(&half);
    ts_conn_close(&stalled);
    ts_conn_close(&quiet);
    TS_CHECK_INT(ts_https_status(s.port, "/health", T_LIVE), 200);
    ts_server_stop(&s, T_LIVE);
}

static void test_idle_close_notify(void)
{
    const char *env[] = {env_dir, env_cert, env_key, "IDLE_TIMEOUT_MS=300", NULL};
    struct ts_server s;
    TS_REQUIRE(ts_server_start(&s, env) == 0);
    struct ts_conn c;
    TS_REQUIRE(ts_tls_open(&c, s.port, &verified, T_LIVE) == 0);
    TS_CHECK(ts_conn_send_str(&c, "GET /health HTTP/1.1\r\nHost: t\r\n\r\n") == 0);
    struct ts_resp r;
    TS_CHECK(ts_read_response(&c, &r, false, T_LIVE) == 0 && r.status == 200);
    ts_resp_free(&r);
    TS_CHECK(ts_conn_expect_eof(&c, T_LIVE) == 0);
    TS_CHECKF(ts_tls_closed_cleanly(&c), "idle connection closed without close_notify");
    ts_conn_close(&c);
    ts_server_stop(&s, T_LIVE);
}

static void test_stops_reading(void)
{
    const char *env[] = {env_dir, env_cert, env_key, "SEND_TIMEOUT_MS=500", "LINGER_MS=100", NULL};
    struct ts_server s;
    TS_REQUIRE(ts_server_start(&s, env) == 0);
    int base = ts_server_fd_settled(&s);
    struct ts_conn c;
    TS_REQUIRE(ts_tls_open(&c, s.port, &verified, T_LIVE) == 0);
    TS_CHECK(ts_conn_send_str(&c, "GET /static/big.bin HTTP/1.1\r\nHost: t\r\n\r\n") == 0);
    TS_CHECK(ts_conn_fill(&c, T_LIVE) > 0);
    /* ...and reads no more: the server's sends stall, and SEND_TIMEOUT_MS ends it. */
    int n = ts_server_wait_fds(&s, base, T_LIVE);
    TS_CHECKF(n == base, "server has %d fds, %d before", n, base);
    ts_conn_abort(&c);
    TS_CHECK_INT(ts_https_status(s.port, "/health", T_LIVE), 200);
    ts_server_stop(&s, T_LIVE);
}

/* Polls until connect() is refused. */
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

/* Reads the rest of a download (body bytes from off on), checking the pattern. */
static uint64_t read_rest(struct ts_conn *c, uint64_t off, bool *same)
{
    while (off < BIG_SIZE) {
        if (c->len == 0 && ts_conn_fill(c, T_LIVE) <= 0)
            break;
        size_t n = c->len < BIG_SIZE - off ? c->len : (size_t)(BIG_SIZE - off);
        if (*same && ts_pattern_mismatch(c->buf, n, off) >= 0)
            *same = false;
        off += n;
        ts_conn_consume(c, n);
    }
    return off;
}

static void test_sigterm(void)
{
    const char *env[] = {env_dir,
                         env_cert,
                         env_key,
                         "SHUTDOWN_TIMEOUT_MS=600000",
                         "IDLE_TIMEOUT_MS=600000",
                         "HEADER_TIMEOUT_MS=600000",
                         "LINGER_MS=100",
                         NULL};
    struct ts_server s;
    TS_REQUIRE(ts_server_start(&s, env) == 0);
    struct ts_conn dl, idle, arriving;
    struct ts_resp r;
    TS_REQUIRE(ts_tls_open(&dl, s.port, &verified, T_LIVE) == 0);
    TS_CHECK(ts_conn_send_str(&dl, "GET /static/big.bin HTTP/1.1\r\nHost: t\r\n\r\n") == 0);
    TS_REQUIRE(ts_read_head(&dl, &r, T_LIVE) == 0 && r.status == 200);
    ts_resp_free(&r);
    while (dl.len < (1u << 20) && ts_conn_fill(&dl, T_LIVE) > 0) {
    }
    TS_REQUIRE(ts_tls_open(&idle, s.port, &verified, T_LIVE) == 0);
    TS_CHECK(ts_conn_send_str(&idle, "GET /health HTTP/1.1\r\nHost: t\r\n\r\n") == 0);
    TS_CHECK(ts_read_response(&idle, &r, false, T_LIVE) == 0 && r.status == 200);
    ts_resp_free(&r);
    TS_REQUIRE(ts_tls_open(&arriving, s.port, &verified, T_LIVE) == 0);
    TS_CHECK(ts_conn_send_str(&arriving, "GET /ready HTTP/1.1\r\nHost: t\r\n") == 0);
    ts_sleep_ms(50); /* let the first half arrive before the signal; the order is what counts */

    TS_REQUIRE(kill(s.pid, SIGTERM) == 0);
    TS_CHECKF(wait_refused(s.port), "new connections still accepted after SIGTERM");
    TS_CHECKF(ts_conn_expect_eof(&idle, T_LIVE) == 0, "idle connection not closed");
    TS_CHECKF(ts_tls_closed_cleanly(&idle), "idle connection closed without close_notify");
    TS_CHECK(ts_conn_send_str(&arriving, "X-Request-Id: late\r\n\r\n") == 0);
    TS_CHECK(ts_read_response(&arriving, &r, false, T_LIVE) == 0);
    TS_CHECK_INT(r.status, 503);
    TS_CHECK_STR(ts_resp_header(&r, "connection"), "close");
    ts_resp_free(&r);
    TS_CHECK(ts_conn_expect_eof(&arriving, T_LIVE) == 0);
    bool same = ts_pattern_mismatch(dl.buf, dl.len, 0) < 0;
    uint64_t got = dl.len;
    ts_conn_consume(&dl, dl.len);
    got = read_rest(&dl, got, &same);
    TS_CHECK_INT(got, BIG_SIZE);
    TS_CHECK(same);
    TS_CHECKF(ts_conn_expect_eof(&dl, T_LIVE) == 0, "download connection not closed after it");
    TS_CHECKF(ts_server_wait(&s, T_LIVE) == 0, "server still running after its last request");
    ts_server_check_exit(&s, 0);
    ts_conn_close(&dl);
    ts_conn_close(&idle);
    ts_conn_close(&arriving);
    ts_server_cleanup(&s);
}

static const struct ts_test tests[] = {
    {"HEADER_TIMEOUT_MS covers the handshake; 408 over TLS after it", test_handshake_timeout},
    {"idle keep-alive TLS connection: close_notify at IDLE_TIMEOUT_MS", test_idle_close_notify},
    {"a client that stops reading is cut off at SEND_TIMEOUT_MS", test_stops_reading},
    {"SIGTERM with TLS requests in flight: drained, close_notify, exit 0", test_sigterm},
    {NULL, NULL},
};

int main(int argc, char **argv)
{
    if (!ts_tls_tool_available()) {
        printf("1..0 # SKIP the openssl tool is not installed (Debian: openssl)\n");
        return 0;
    }
    return ts_main_shared(argc, argv, tests, setup, teardown);
}
