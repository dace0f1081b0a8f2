/* http_limits — every request limit answers with its status and closes the connection, and a
 * request right at a limit still passes: URL (414), header bytes and header count (431), body
 * by Content-Length and by chunks (413), and Expect: 100-continue (the interim 100 comes before
 * the body is sent; a body that is too large is refused with 413 and no 100). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ts.h"
#include "ts_json.h"
#include "ts_net.h"
#include "ts_proc.h"

#define T_LIVE 10000

static const char *const limits_env[] = {"MAX_URL_BYTES=1024",  "MAX_HEADER_BYTES=2048",
                                         "MAX_HEADER_COUNT=20", "MAX_BODY_BYTES=1000",
                                         "LINGER_MS=200",       NULL};

static struct ts_server srv; /* one server for the whole program */

/* Sends req on a new connection and checks the one response: status, error code, and for a
 * refused request (closes) that the response says Connection: close and the server closes. */
static void expect_status_at(int line, const char *req, size_t len, int status, const char *code,
                             bool closes)
{
    struct ts_conn c;
    if (ts_conn_open(&c, srv.port) != 0) {
        ts_fail(__FILE__, line, "connect failed");
        return;
    }
    ts_conn_send(&c, req, len); /* may fail half-way once the server has answered */
    struct ts_resp r;
    int rc = ts_read_response(&c, &r, false, T_LIVE);
    if (rc != 0) {
        ts_fail(__FILE__, line, "no response (%d)", rc);
    } else {
        if (r.status != status)
            ts_fail(__FILE__, line, "status %d, want %d: %s", r.status, status, r.body);
        if (code)
            ts_check_error_json_at(__FILE__, line, r.body, r.body_len, code,
                                   ts_resp_header(&r, "x-request-id"));
        if (closes) {
            const char *conn = ts_resp_header(&r, "connection");
            if (!conn || strcmp(conn, "close") != 0)
                ts_fail(__FILE__, line, "error response without Connection: close");
            if (ts_conn_expect_eof(&c, T_LIVE) != 0)
                ts_fail(__FILE__, line, "connection not closed after %d", status);
        }
    }
    ts_resp_free(&r);
    ts_conn_close(&c);
}
/* A request refused by a limit: the connection is closed after the answer. */
#define EXPECT(req, len, status, code) expect_status_at(__LINE__, req, len, status, code, true)
/* A request within the limits: answered by the router, the connection stays open. */
#define EXPECT_OK(req, len, status, code) expect_status_at(__LINE__, req, len, status, code, false)

static char *repeat(char ch, size_t n)
{
    char *p = malloc(n + 1);
    memset(p, ch, n);
    p[n] = '\0';
    return p;
}

static void test_url_limit(void)
{
    char req[4096];
    /* "/" + 1023 bytes: exactly the limit, no such route. */
    char *a = repeat('a', 1023);
    int n = snprintf(req, sizeof(req), "GET /%s HTTP/1.1\r\nHost: t\r\n\r\n", a);
    EXPECT_OK(req, (size_t)n, 404, "NOT_FOUND");
    free(a);
    a = repeat('a', 1024);
    n = snprintf(req, sizeof(req), "GET /%s HTTP/1.1\r\nHost: t\r\n\r\n", a);
    EXPECT(req, (size_t)n, 414, "URI_TOO_LONG");
    free(a);
    /* Far past it, sent in one piece: refused once the limit is crossed, not at the end. */
    a = repeat('b', 200000);
    size_t big = strlen(a) + 64;
    char *breq = malloc(big);
    n = snprintf(breq, big, "GET /%s HTTP/1.1\r\nHost: t\r\n\r\n", a);
    EXPECT(breq, (size_t)n, 414, "URI_TOO_LONG");
    free(breq);
    free(a);
}

static void test_header_bytes(void)
{
    char req[8192];
    /* Header names + values are counted: "Host"+"t" = 5, "X-Big" = 5, so 2038 value bytes is
     * exactly 2048. */
    char *v = repeat('v', 2038);
    int n = snprintf(req, sizeof(req), "GET /health HTTP/1.1\r\nHost: t\r\nX-Big: %s\r\n\r\n", v);
    EXPECT_OK(req, (size_t)n, 200, NULL);
    free(v);
    v = repeat('v', 2039);
    n = snprintf(req, sizeof(req), "GET /health HTTP/1.1\r\nHost: t\r\nX-Big: %s\r\n\r\n", v);
    EXPECT(req, (size_t)n, 431, "HEADERS_TOO_LARGE");
    free(v);
    /* Many small headers add up too (under the count limit). */
    n = snprintf(req, sizeof(req), "GET /health HTTP/1.1\r\nHost: t\r\n");
    for (int i = 0; i < 15; i++) {
        char *w = repeat('w', 200);
        n += snprintf(req + n, sizeof(req) - (size_t)n, "X-H%d: %s\r\n", i, w);
        free(w);
    }
    n += snprintf(req + n, sizeof(req) - (size_t)n, "\r\n");
    EXPECT(req, (size_t)n, 431, "HEADERS_TOO_LARGE");
}

static void test_header_count(void)
{
    char req[4096];
    int n = snprintf(req, sizeof(req), "GET /health HTTP/1.1\r\nHost: t\r\n");
    for (int i = 0; i < 19; i++) /* 20 with Host: the limit */
        n += snprintf(req + n, sizeof(req) - (size_t)n, "X-H%d: %d\r\n", i, i);
    int at_limit = n;
    n += snprintf(req + n, sizeof(req) - (size_t)n, "\r\n");
    EXPECT_OK(req, (size_t)n, 200, NULL);
    n = at_limit +
        snprintf(req + at_limit, sizeof(req) - (size_t)at_limit, "X-One-More: 1\r\n\r\n");
    EXPECT(req, (size_t)n, 431, "HEADERS_TOO_LARGE");
}

static void test_body_content_length(void)
{
    char req[4096];
    char *b = repeat('x', 1000);
    int n = snprintf(req, sizeof(req),
                     "POST /health HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n\r\n%s", b);
    EXPECT_OK(req, (size_t)n, 405, "METHOD_NOT_ALLOWED"); /* accepted; the route is GET only */
    free(b);
    /* Refused from the header alone: the body is never sent. */
    static const char big[] = "POST /health HTTP/1.1\r\nHost: t\r\nContent-Length: 1001\r\n\r\n";
    EXPECT(big, sizeof(big) - 1, 413, "PAYLOAD_TOO_LARGE");
    static const char huge[] =
        "POST /health HTTP/1.1\r\nHost: t\r\nContent-Length: 99999999999999\r\n\r\n";
    EXPECT(huge, sizeof(huge) - 1, 413, "PAYLOAD_TOO_LARGE");
}

static void test_body_chunked(void)
{
    char req[8192];
    char *b = repeat('y', 500);
    int n = snprintf(req, sizeof(req),
                     "POST /health HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
                     "1f4\r\n%s\r\n1f4\r\n%s\r\n0\r\n\r\n",
                     b, b);
    EXPECT_OK(req, (size_t)n, 405, "METHOD_NOT_ALLOWED"); /* 1000 bytes: at the limit */
    n = snprintf(req, sizeof(req),
                 "POST /health HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
                 "1f4\r\n%s\r\n1f4\r\n%s\r\n1\r\nz\r\n0\r\n\r\n",
                 b, b);
    EXPECT(req, (size_t)n, 413, "PAYLOAD_TOO_LARGE");
    free(b);
    /* A chunk announced larger than the limit is refused from its size line, without waiting
     * for (or reading) its data. */
    static const char big[] = "POST /health HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n"
                              "\r\n100000\r\nonly a few bytes";
    EXPECT(big, sizeof(big) - 1, 413, "PAYLOAD_TOO_LARGE");
}

static void test_expect_continue(void)
{
    struct ts_conn c;
    TS_REQUIRE(ts_conn_open(&c, srv.port) == 0);
    TS_CHECK(ts_conn_send_str(&c, "POST /jobs HTTP/1.1\r\nHost: t\r\nX-Request-Id: e-1\r\n"
                                  "Content-Length: 5\r\nExpect: 100-continue\r\n\r\n") == 0);
    struct ts_resp r;
    /* Nothing of the body has been sent: the 100 must come now. */
    int rc = ts_read_response(&c, &r, false, T_LIVE);
    TS_CHECKF(rc == 0, "no interim response before the body: %d", rc);
    TS_CHECK_INT(r.status, 100);
    ts_resp_free(&r);
    TS_CHECK(ts_conn_send_str(&c, "hello") == 0);
    rc = ts_read_response(&c, &r, false, T_LIVE);
    TS_CHECK(rc == 0);
    TS_CHECK_INT(r.status, 400); /* the route read the body: not JSON */
    TS_CHECK_STR(ts_resp_header(&r, "x-request-id"), "e-1");
    ts_resp_free(&r);
    /* Chunked, on the same connection. */
    TS_CHECK(ts_conn_send_str(&c,
                              "POST /jobs HTTP/1.1\r\nHost: t\r\nX-Request-Id: e-2\r\n"
                              "Transfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n") == 0);
    rc = ts_read_response(&c, &r, false, T_LIVE);
    TS_CHECK(rc == 0 && r.status == 100);
    ts_resp_free(&r);
    TS_CHECK(ts_conn_send_str(&c, "5\r\nhello\r\n0\r\n\r\n") == 0);
    rc = ts_read_response(&c, &r, false, T_LIVE);
    TS_CHECK(rc == 0 && r.status == 400);
    TS_CHECK_STR(ts_resp_header(&r, "x-request-id"), "e-2");
    ts_resp_free(&r);
    ts_conn_close(&c);
}

static void test_expect_too_large(void)
{
    /* 413 straight away, never a 100 first, and the connection is closed. */
    static const char req[] = "POST /health HTTP/1.1\r\nHost: t\r\nContent-Length: 5000\r\n"
                              "Expect: 100-continue\r\n\r\n";
    EXPECT(req, sizeof(req) - 1, 413, "PAYLOAD_TOO_LARGE");
    static const char odd[] = "POST /health HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n"
                              "Expect: something-else\r\n\r\nhello";
    EXPECT(odd, sizeof(odd) - 1, 417, "EXPECTATION_FAILED");
    /* no route would take the body: its 405 or 404 at once, never a 100 first */
    static const char get_only[] = "POST /health HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n"
                                   "Expect: 100-continue\r\n\r\n";
    EXPECT(get_only, sizeof(get_only) - 1, 405, "METHOD_NOT_ALLOWED");
    static const char nowhere[] = "PUT /nope HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n"
                                  "Expect: 100-continue\r\n\r\n";
    EXPECT(nowhere, sizeof(nowhere) - 1, 404, "NOT_FOUND");
}

static void setup(void)
{
    TS_REQUIRE(ts_server_start(&srv, limits_env) == 0);
}

static void teardown(void)
{
    ts_server_stop(&srv, 20000);
}

static const struct ts_test tests[] = {
    {"URL limit: 414", test_url_limit},
    {"header bytes: 431", test_header_bytes},
    {"header count: 431", test_header_count},
    {"body by Content-Length: 413", test_body_content_length},
    {"body by chunks: 413", test_body_chunked},
    {"Expect: 100-continue", test_expect_continue},
    {"Expect: 100-continue with a body too large", test_expect_too_large},
    {NULL, NULL},
};

int main(int argc, char **argv)
{
    return ts_main_shared(argc, argv, tests, setup, teardown);
}
