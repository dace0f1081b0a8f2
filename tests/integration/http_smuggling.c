/* http_smuggling — requests whose framing two parsers could read differently. Each one must
 * get a single error response (400; 501 for a transfer coding we do not implement) with
 * Connection: close, and then the connection closes: the request smuggled after it (a GET
 * with X-Request-Id: smuggled) must never be answered. */
#include <stdio.h>
#include <string.h>

#include "ts.h"
#include "ts_json.h"
#include "ts_net.h"
#include "ts_proc.h"

#define T_LIVE 10000

static struct ts_server srv;

static const char smuggled[] = "GET /ready HTTP/1.1\r\nHost: t\r\nX-Request-Id: smuggled\r\n\r\n";

static void refused_at(int line, const char *what, const char *head_and_body, size_t hlen,
                       int status)
{
    char req[4096]; /* built with memcpy: some requests hold a NUL */
    memcpy(req, head_and_body, hlen);
    memcpy(req + hlen, smuggled, sizeof(smuggled) - 1);
    size_t n = hlen + sizeof(smuggled) - 1;
    struct ts_conn c;
    if (ts_conn_open(&c, srv.port) != 0) {
        ts_fail(__FILE__, line, "%s: connect failed", what);
        return;
    }
    ts_conn_send(&c, req, n);
    struct ts_resp r;
    int rc = ts_read_response(&c, &r, false, T_LIVE);
    if (rc != 0) {
        ts_fail(__FILE__, line, "%s: no response (%d)", what, rc);
    } else {
        const char *conn = ts_resp_header(&r, "connection");
        if (r.status != status)
            ts_fail(__FILE__, line, "%s: status %d, want %d (%s)", what, r.status, status, r.body);
        if (!conn || strcmp(conn, "close") != 0)
            ts_fail(__FILE__, line, "%s: no Connection: close", what);
        ts_check_error_json_at(__FILE__, line, r.body, r.body_len, NULL,
                               ts_resp_header(&r, "x-request-id"));
        int eof = ts_conn_expect_eof(&c, T_LIVE);
        if (eof != 0)
            ts_fail(__FILE__, line, "%s: connection not closed (%d); then: %.60s", what, eof,
                    c.len ? c.buf : "");
    }
    ts_resp_free(&r);
    ts_conn_close(&c);
}
/* req must be a string literal (its length is taken with sizeof). */
#define REFUSED(what, req, status) refused_at(__LINE__, what, req, sizeof(req) - 1, status)

#define POST "POST /health HTTP/1.1\r\nHost: t\r\n"

static void test_cl_and_te(void)
{
    REFUSED("CL then TE", POST "Content-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            400);
    REFUSED("TE then CL", POST "Transfer-Encoding: chunked\r\nContent-Length: 6\r\n\r\n0\r\n\r\n",
            400);
    REFUSED("CL and TE: identity",
            POST "Content-Length: 3\r\nTransfer-Encoding: identity\r\n\r\n"
                 "abc",
            400);
}

static void test_two_content_lengths(void)
{
    REFUSED("differing CL", POST "Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", 400);
    REFUSED("CL list", POST "Content-Length: 5, 6\r\n\r\nhello!", 400);
    REFUSED("CL with sign", POST "Content-Length: +5\r\n\r\nhello", 400);
    REFUSED("CL not a number", POST "Content-Length: 5x\r\n\r\nhello", 400);
    REFUSED("space before colon", POST "Content-Length : 5\r\n\r\nhello", 400);
}

static void test_obs_fold(void)
{
    REFUSED("folded header", POST "X-Folded: a\r\n b\r\nContent-Length: 0\r\n\r\n", 400);
    REFUSED("folded with tab", POST "X-Folded: a\r\n\tb\r\nContent-Length: 0\r\n\r\n", 400);
    REFUSED("folded Transfer-Encoding", POST "Transfer-Encoding: \r\n chunked\r\n\r\n0\r\n\r\n",
            400);
    REFUSED("folded Content-Length", POST "Content-Length: \r\n 5\r\n\r\nhello", 400);
}

static void test_bad_chunks(void)
{
    REFUSED("non-hex chunk size", POST "Transfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
            400);
    REFUSED("negative chunk size",
            POST "Transfer-Encoding: chunked\r\n\r\n-5\r\nhello\r\n0\r\n\r\n", 400);
    REFUSED("chunk size overflow",
            POST "Transfer-Encoding: chunked\r\n\r\n1ffffffffffffffff\r\nhello\r\n0\r\n\r\n", 400);
    REFUSED("chunk size overflow to small",
            POST "Transfer-Encoding: chunked\r\n\r\n10000000000000005\r\nhello\r\n0\r\n\r\n", 400);
    REFUSED("chunk data without CRLF",
            POST "Transfer-Encoding: chunked\r\n\r\n5\r\nhelloXX\r\n0\r\n\r\n", 400);
    REFUSED("empty chunk size", POST "Transfer-Encoding: chunked\r\n\r\n\r\nhello\r\n0\r\n\r\n",
            400);
}

static void test_other_transfer_codings(void)
{
    REFUSED("TE gzip", POST "Transfer-Encoding: gzip\r\n\r\nabc", 501);
    REFUSED("TE gzip, chunked", POST "Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 501);
    /* chunked not last: the body length cannot be known, which RFC 9112 (6.3) answers with 400
     * rather than 501. */
    REFUSED("TE chunked, gzip", POST "Transfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n", 400);
    REFUSED("two TE headers",
            POST "Transfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\n"
                 "0\r\n\r\n",
            400);
}

static void test_request_line(void)
{
    REFUSED("HTTP/2.0 on the wire", "GET /health HTTP/2.0\r\nHost: t\r\n\r\n", 505);
    REFUSED("NUL in a header", "GET /health HTTP/1.1\r\nHost: t\r\nX-A: a\0b\r\n\r\n", 400);
    REFUSED("bad percent-encoding", "GET /he%zzalth HTTP/1.1\r\nHost: t\r\n\r\n", 400);
    REFUSED("encoded NUL", "GET /health%00 HTTP/1.1\r\nHost: t\r\n\r\n", 400);
}

static void test_still_healthy(void)
{
    /* After all of that the server answers normally, and a clean pipeline on one connection
     * still works (the smuggling checks did not just close everything). */
    struct ts_conn c;
    TS_REQUIRE(ts_conn_open(&c, srv.port) == 0);
    TS_CHECK(ts_conn_send_str(&c, POST
                              "Content-Length: 5\r\n\r\nhello"
                              "GET /ready HTTP/1.1\r\nHost: t\r\nX-Request-Id: ok-2\r\n\r\n") == 0);
    struct ts_resp r;
    TS_CHECK(ts_read_response(&c, &r, false, T_LIVE) == 0 && r.status == 405);
    ts_resp_free(&r);
    TS_CHECK(ts_read_response(&c, &r, false, T_LIVE) == 0 && r.status == 200);
    TS_CHECK_STR(ts_resp_header(&r, "x-request-id"), "ok-2");
    ts_resp_free(&r);
    ts_conn_close(&c);
}

static void setup(void)
{
    static const char *const env[] = {"LINGER_MS=100", NULL};
    TS_REQUIRE(ts_server_start(&srv, env) == 0);
}

static void teardown(void)
{
    TS_CHECKF(!ts_server_log_has(&srv, "\"requestId\":\"smuggled\""),
              "a smuggled request was served");
    ts_server_stop(&srv, 20000);
}

static const struct ts_test tests[] = {
    {"Content-Length with Transfer-Encoding", test_cl_and_te},
    {"two Content-Length values", test_two_content_lengths},
    {"obs-fold", test_obs_fold},
    {"bad chunk sizes", test_bad_chunks},
    {"transfer codings other than chunked: 501", test_other_transfer_codings},
    {"bad request lines and targets", test_request_line},
    {"still healthy", test_still_healthy},
    {NULL, NULL},
};

int main(int argc, char **argv)
{
    return ts_main_shared(argc, argv, tests, setup, teardown);
}
