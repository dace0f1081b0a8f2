/* http_download — clients that go away in the middle of a 64 MiB download (FIN or RST, early
 * or late, one or many at once, or simply stop reading past SEND_TIMEOUT_MS) must leave the
 * server healthy with no descriptor leaked: /proc/PID/fd returns to its count from before. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "ts.h"
#include "ts_net.h"
#include "ts_proc.h"

#define T_LIVE 15000
#define BIG_SIZE (64ull << 20)

static struct ts_server srv;
static char dir[256];
static int base_fds;

static void setup(void)
{
    TS_REQUIRE(ts_mkdtemp(dir, sizeof(dir)) == 0);
    char p[400], env_dir[400];
    snprintf(p, sizeof(p), "%s/big.bin", dir);
    TS_REQUIRE(ts_write_pattern_file(p, BIG_SIZE) == 0);
    snprintf(env_dir, sizeof(env_dir), "STATIC_DIR=%s", dir);
    /* Small pipes make the splice loop run many rounds; a short send timeout lets the
     * not-reading case finish quickly. */
    const char *env[] = {env_dir, "PIPE_SIZE=65536", "SEND_TIMEOUT_MS=500", "LINGER_MS=100", NULL};
    TS_REQUIRE(ts_server_start(&srv, env) == 0);
    base_fds = ts_server_fd_settled(&srv);
    TS_REQUIRE(base_fds > 0);
}

static void teardown(void)
{
    ts_server_stop(&srv, 20000);
    ts_rmtree(dir);
}

/* Starts a download (of the file from byte `first`, with `extra` header lines asking for
 * that); reads and checks `after` body bytes before returning. Bytes are consumed as they come:
 * a client that stalls (growing a 40 MiB buffer under ASan can take longer than the server's
 * send timeout) would be cut off for a good reason. */
static int start_download(struct ts_conn *c, const char *extra, uint64_t first, size_t after)
{
    int rc = ts_conn_open(c, srv.port);
    if (rc < 0)
        return rc;
    char req[256];
    snprintf(req, sizeof(req), "GET /static/big.bin HTTP/1.1\r\nHost: t\r\n%s\r\n",
             extra ? extra : "");
    rc = ts_conn_send_str(c, req);
    if (rc < 0 || after == 0)
        return rc;
    struct ts_resp r;
    rc = ts_read_head(c, &r, T_LIVE);
    if (rc == 0 && r.status != 200 && r.status != 206)
        rc = -EPROTO;
    ts_resp_free(&r);
    uint64_t off = first, end = first + after;
    while (rc == 0 && off < end) {
        if (c->len == 0) {
            int n = ts_conn_fill(c, T_LIVE);
            if (n <= 0) {
                rc = n == 0 ? -ECONNRESET : n;
                break;
            }
        }
        size_t k = c->len < end - off ? c->len : (size_t)(end - off);
        if (ts_pattern_mismatch(c->buf, k, off) >= 0)
            rc = -EILSEQ;
        off += k;
        ts_conn_consume(c, k);
    }
    return rc;
}

static void check_healthy_and_no_leak(const char *what)
{
    TS_CHECKF(ts_http_status(srv.port, "/health", T_LIVE) == 200, "%s: /health", what);
    int n = ts_server_wait_fds(&srv, base_fds, T_LIVE);
    TS_CHECKF(n == base_fds, "%s: server has %d fds, %d before", what, n, base_fds);
}

static void test_close_after_1mib(void)
{
    struct ts_conn c;
    int rc = start_download(&c, NULL, 0, 1 << 20);
    TS_CHECKF(rc == 0, "download: %d", rc);
    ts_conn_close(&c);
    check_healthy_and_no_leak("FIN after 1 MiB");
}

static void test_reset_after_1mib(void)
{
    struct ts_conn c;
    int rc = start_download(&c, NULL, 0, 1 << 20);
    TS_CHECKF(rc == 0, "download: %d", rc);
    ts_conn_abort(&c);
    check_healthy_and_no_leak("RST after 1 MiB");
}

static void test_close_before_reading(void)
{
    struct ts_conn c;
    int rc = start_download(&c, NULL, 0, 0);
    TS_CHECKF(rc == 0, "download: %d", rc);
    ts_conn_abort(&c); /* possibly before the file is even open */
    check_healthy_and_no_leak("RST right after the request");
}

static void test_close_late(void)
{
    struct ts_conn c;
    int rc = start_download(&c, NULL, 0, 40u << 20);
    TS_CHECKF(rc == 0, "download: %d", rc);
    ts_conn_close(&c);
    check_healthy_and_no_leak("FIN after 40 MiB");
}

static void test_close_mid_pipeline(void)
{
    struct ts_conn c;
    int rc = start_download(&c, NULL, 0, 0);
    TS_CHECKF(rc == 0, "download: %d", rc);
    TS_CHECK(ts_conn_send_str(&c, "GET /static/big.bin HTTP/1.1\r\nHost: t\r\n\r\n"
                                  "GET /health HTTP/1.1\r\nHost: t\r\n\r\n") == 0);
    ts_conn_fill(&c, T_LIVE);
    ts_conn_close(&c);
    check_healthy_and_no_leak("FIN with more requests queued");
}

static void test_many_at_once(void)
{
    enum { N = 40 };
    struct ts_conn cs[N];
    for (int i = 0; i < N; i++) {
        char range[64];
        snprintf(range, sizeof(range), "Range: bytes=%d-\r\n", i * 4096);
        int rc = start_download(&cs[i], i % 2 ? range : NULL, i % 2 ? (uint64_t)i * 4096 : 0,
                                (size_t)(i % 4) * 100000);
        TS_CHECKF(rc == 0, "download %d: %d", i, rc);
    }
    for (int i = 0; i < N; i++) {
        if (i % 3)
            ts_conn_close(&cs[i]);
        else
            ts_conn_abort(&cs[i]);
    }
    check_healthy_and_no_leak("40 downloads dropped at once");
}

static void test_stops_reading(void)
{
    /* The client keeps the socket but reads nothing: past SEND_TIMEOUT_MS without progress
     * the server gives up on it and frees everything, while we still hold our end. */
    struct ts_conn c;
    int rc = start_download(&c, NULL, 0, 1);
    TS_CHECKF(rc == 0, "download: %d", rc);
    int n = ts_server_wait_fds(&srv, base_fds, T_LIVE);
    TS_CHECKF(n == base_fds, "stalled reader: server has %d fds, %d before", n, base_fds);
    /* What we can still read is a truncated response, ending in a close. */
    long long got = (long long)c.len;
    for (;;) {
        ts_conn_consume(&c, c.len);
        int r = ts_conn_fill(&c, T_LIVE);
        if (r <= 0)
            break;
        got += r;
    }
    TS_CHECKF(got < (long long)BIG_SIZE, "got all %lld bytes despite the timeout", got);
    ts_conn_close(&c);
    check_healthy_and_no_leak("stalled reader");
}

static void test_pipelined_not_reading(void)
{
    /* 2,000 downloads pipelined by a client that reads nothing: the server may queue a few,
     * but must not hold a file open for each (that exhausts descriptors: one connection could
     * take the whole process down). */
    enum { N = 2000 };
    static const char one[] = "GET /static/big.bin HTTP/1.1\r\nHost: t\r\n\r\n";
    char *reqs = malloc(N * (sizeof(one) - 1));
    TS_REQUIRE(reqs != NULL);
    for (int i = 0; i < N; i++)
        memcpy(reqs + (size_t)i * (sizeof(one) - 1), one, sizeof(one) - 1);
    struct ts_conn c;
    TS_REQUIRE(ts_conn_open(&c, srv.port) == 0);
    TS_CHECK(ts_conn_send(&c, reqs, N * (sizeof(one) - 1)) == 0);
    free(reqs);
    int held = ts_server_fd_settled(&srv) - base_fds;
    TS_CHECKF(held <= 16, "one connection holds %d descriptors", held);
    ts_conn_abort(&c);
    check_healthy_and_no_leak("pipelined downloads, not read");
}

static void test_full_download_still_works(void)
{
    struct ts_conn c;
    TS_REQUIRE(start_download(&c, NULL, 0, 0) == 0);
    struct ts_resp r;
    TS_CHECK(ts_read_head(&c, &r, T_LIVE) == 0 && r.status == 200);
    ts_resp_free(&r);
    uint64_t off = 0;
    bool same = true;
    while (off < BIG_SIZE) {
        if (c.len == 0 && ts_conn_fill(&c, T_LIVE) <= 0)
            break;
        size_t n = c.len < BIG_SIZE - off ? c.len : (size_t)(BIG_SIZE - off);
        if (same && ts_pattern_mismatch(c.buf, n, off) >= 0)
            same = false;
        off += n;
        ts_conn_consume(&c, n);
    }
    TS_CHECK_INT(off, BIG_SIZE);
    TS_CHECK(same);
    ts_conn_close(&c);
    check_healthy_and_no_leak("full download");
}

static const struct ts_test tests[] = {
    {"FIN after 1 MiB", test_close_after_1mib},
    {"RST after 1 MiB", test_reset_after_1mib},
    {"RST right after the request", test_close_before_reading},
    {"FIN after 40 MiB", test_close_late},
    {"FIN with more requests queued", test_close_mid_pipeline},
    {"40 downloads dropped at once", test_many_at_once},
    {"client stops reading: send timeout", test_stops_reading},
    {"pipelined downloads not read: files held are bounded", test_pipelined_not_reading},
    {"a full download afterwards", test_full_download_still_works},
    {NULL, NULL},
};

int main(int argc, char **argv)
{
    return ts_main_shared(argc, argv, tests, setup, teardown);
}
