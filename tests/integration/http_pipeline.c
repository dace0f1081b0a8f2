/* http_pipeline — requests that arrive in unusual pieces: several in one write (pipelining),
 * one byte at a time, split across writes, and a long pipeline whose responses the client
 * reads late, so the server has to stop reading instead of losing input. Every response must
 * come back in request order, matched by its X-Request-Id. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "ts.h"
#include "ts_json.h"
#include "ts_net.h"
#include "ts_proc.h"

#define T_IO 10000 /* liveness timeout of one read, ms */

struct expect {
    const char *rid;
    int status;
    bool head;
};

static void check_in_order(struct ts_conn *c, const struct expect *ex, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        struct ts_resp r;
        int rc = ts_read_response(c, &r, ex[i].head, T_IO);
        TS_CHECKF(rc == 0, "response %zu (%s): read error %d", i, ex[i].rid, rc);
        if (rc != 0) {
            ts_resp_free(&r);
            return;
        }
        TS_CHECK_INT(r.status, ex[i].status);
        TS_CHECK_STR(ts_resp_header(&r, "x-request-id"), ex[i].rid);
        if (r.status >= 400)
            ts_check_error_json(r.body, r.body_len, NULL, ex[i].rid);
        ts_resp_free(&r);
    }
}

static void test_pipelined_one_write(void)
{
    struct ts_server s;
    TS_REQUIRE(ts_server_start(&s, NULL) == 0);
    struct ts_conn c;
    TS_REQUIRE(ts_conn_open(&c, s.port) == 0);
    static const char reqs[] =
        "GET /health HTTP/1.1\r\nHost: t\r\nX-Request-Id: p-1\r\n\r\n"
        "HEAD /health HTTP/1.1\r\nHost: t\r\nX-Request-Id: p-2\r\n\r\n"
        "GET /nope HTTP/1.1\r\nHost: t\r\nX-Request-Id: p-3\r\n\r\n"
        "POST /health HTTP/1.1\r\nHost: t\r\nX-Request-Id: p-4\r\nContent-Length: 5\r\n\r\nhello"
        "POST /ready HTTP/1.1\r\nHost: t\r\nX-Request-Id: p-5\r\n"
        "Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX-Trailer: 1\r\n\r\n"
        "GET /ready HTTP/1.1\r\nHost: t\r\nX-Request-Id: p-6\r\n\r\n"
        "GET /health HTTP/1.1\r\nHost: t\r\nX-Request-Id: p-7\r\nConnection: close\r\n\r\n"
        "GET /health HTTP/1.1\r\nHost: t\r\nX-Request-Id: p-8\r\n\r\n"; /* never answered */
    TS_CHECK(ts_conn_send(&c, reqs, sizeof(reqs) - 1) == 0);
    static const struct expect ex[] = {
        {"p-1", 200, false}, {"p-2", 200, true},  {"p-3", 404, false}, {"p-4", 405, false},
        {"p-5", 405, false}, {"p-6", 200, false}, {"p-7", 200, false},
    };
    check_in_order(&c, ex, sizeof(ex) / sizeof(ex[0]));
    TS_CHECKF(ts_conn_expect_eof(&c, T_IO) == 0, "no close after Connection: close (or more)");
    ts_conn_close(&c);
    ts_server_stop(&s, 20000);
}

static void test_one_byte_at_a_time(void)
{
    struct ts_server s;
    TS_REQUIRE(ts_server_start(&s, NULL) == 0);
    struct ts_conn c;
    TS_REQUIRE(ts_conn_open(&c, s.port) == 0);
    /* Two requests back to back, every byte its own segment, across the boundary too. */
    static const char reqs[] = "GET /health HTTP/1.1\r\nHost: t\r\nX-Request-Id: b-1\r\n\r\n"
                               "POST /health HTTP/1.1\r\nHost: t\r\nX-Request-Id: b-2\r\n"
                               "Content-Length: 3\r\n\r\nxyz"
                               "GET /ready HTTP/1.1\r\nHost: t\r\nX-Request-Id: b-3\r\n\r\n";
    TS_CHECK(ts_conn_send_slow(&c, reqs, sizeof(reqs) - 1, 1) == 0);
    static const struct expect ex[] = {
        {"b-1", 200, false}, {"b-2", 405, false}, {"b-3", 200, false}};
    check_in_order(&c, ex, 3);
    /* The connection is still usable for a normal request afterwards. */
    TS_CHECK(ts_conn_send_str(&c, "GET /health HTTP/1.1\r\nHost: t\r\nX-Request-Id: b-4\r\n"
                                  "\r\n") == 0);
    static const struct expect ex2[] = {{"b-4", 200, false}};
    check_in_order(&c, ex2, 1);
    ts_conn_close(&c);
    ts_server_stop(&s, 20000);
}

static void test_split_across_writes(void)
{
    struct ts_server s;
    TS_REQUIRE(ts_server_start(&s, NULL) == 0);
    struct ts_conn c;
    TS_REQUIRE(ts_conn_open(&c, s.port) == 0);
    /* Split inside the method, inside a header name, between CR and LF, and inside the body. */
    static const char *const parts[] = {
        "GE",
        "T /health HTTP/1.1\r\nHo",
        "st: t\r\nX-Request-Id: s-1\r",
        "\n\r\nPOST /health "
        "HTTP/1.1\r\nHost: t\r\nX-Request-Id: s-2\r\nContent-Length: 10\r\n\r\n01234",
        "56789GET /ready HTTP/1.1\r\nHost: t\r\nX-Request-Id: s-3\r\n\r\n",
        NULL};
    for (const char *const *p = parts; *p; p++) {
        TS_CHECK(ts_conn_send_str(&c, *p) == 0);
        ts_sleep_ms(30);
    }
    static const struct expect ex[] = {
        {"s-1", 200, false}, {"s-2", 405, false}, {"s-3", 200, false}};
    check_in_order(&c, ex, 3);
    ts_conn_close(&c);
    ts_server_stop(&s, 20000);
}

/* --- a long pipeline read late ---------------------------------------------------------- */

#define LONG_N 20000

struct writer {
    struct ts_conn *c;
    char *data;
    size_t len;
    int rc;
};

static void *writer_main(void *arg)
{
    struct writer *w = arg;
    w->rc = ts_conn_send(w->c, w->data, w->len);
    return NULL;
}

static void test_long_pipeline_read_late(void)
{
    /* A small output cap makes the server stop parsing early and hold the rest of the input;
     * it must resume once the client reads, and lose nothing. */
    static const char *const env[] = {"MAX_OUT_BYTES=4096", "ACCESS_LOG=false", NULL};
    struct ts_server s;
    TS_REQUIRE(ts_server_start(&s, env) == 0);
    struct ts_conn c;
    TS_REQUIRE(ts_conn_open(&c, s.port) == 0);
    size_t cap = (size_t)LONG_N * 80, len = 0;
    char *data = malloc(cap);
    TS_REQUIRE(data != NULL);
    for (int i = 0; i < LONG_N; i++)
        len += (size_t)snprintf(data + len, cap - len,
                                "GET /health HTTP/1.1\r\nHost: t\r\nX-Request-Id: L-%d\r\n\r\n", i);
    struct writer w = {.c = &c, .data = data, .len = len};
    pthread_t th;
    TS_REQUIRE(pthread_create(&th, NULL, writer_main, &w) == 0);
    ts_sleep_ms(300); /* let the server's output back up before reading anything */
    int got = 0;
    for (int i = 0; i < LONG_N; i++) {
        struct ts_resp r;
        char rid[32];
        snprintf(rid, sizeof(rid), "L-%d", i);
        int rc = ts_read_response(&c, &r, false, T_IO);
        if (rc != 0 || r.status != 200 || !ts_resp_header(&r, "x-request-id") ||
            strcmp(ts_resp_header(&r, "x-request-id"), rid) != 0) {
            ts_fail(__FILE__, __LINE__, "response %d: rc %d status %d id %s (want %s)", i, rc,
                    r.status, ts_resp_header(&r, "x-request-id"), rid);
            ts_resp_free(&r);
            break;
        }
        ts_resp_free(&r);
        got++;
    }
    TS_CHECK_INT(got, LONG_N);
    shutdown(c.fd, SHUT_RDWR); /* unblocks the writer if the server stopped reading */
    pthread_join(th, NULL);
    TS_CHECK_INT(w.rc, 0);
    free(data);
    ts_conn_close(&c);
    ts_server_stop(&s, 20000);
}

static const struct ts_test tests[] = {
    {"pipelined requests in one write", test_pipelined_one_write},
    {"requests one byte at a time", test_one_byte_at_a_time},
    {"requests split across writes", test_split_across_writes},
    {"long pipeline read late", test_long_pipeline_read_late},
    {NULL, NULL},
};

int main(int argc, char **argv)
{
    return ts_main(argc, argv, tests);
}
