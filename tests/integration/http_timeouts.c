/* http_timeouts — the server's timers: a request head trickled in past HEADER_TIMEOUT_MS
 * (slowloris) gets 408 and the connection closed; so does a body past BODY_TIMEOUT_MS; an idle
 * keep-alive connection is closed quietly after IDLE_TIMEOUT_MS; a connection that never sends
 * anything is not kept either. Short timeouts keep the suite fast; every wait here has a
 * generous liveness bound and nothing measures speed. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "ts.h"
#include "ts_json.h"
#include "ts_net.h"
#include "ts_proc.h"

#define T_LIVE 10000

static const char *const short_timeouts[] = {"HEADER_TIMEOUT_MS=300", "BODY_TIMEOUT_MS=300",
                                             "IDLE_TIMEOUT_MS=300", "LINGER_MS=200", NULL};

/* Sends one byte every 30 ms (never finishing the head) until the server says something or
 * the liveness bound passes; returns the number of bytes sent. */
static size_t trickle_until_answer(struct ts_conn *c, const char *head)
{
    size_t i = 0, n = strlen(head);
    long long deadline = ts_now_ms() + T_LIVE;
    while (ts_now_ms() < deadline && c->len == 0 && !c->eof) {
        char b = i < n ? head[i] : 'a'; /* then an endless header value */
        if (ts_conn_send(c, &b, 1) < 0)
            break;
        i++;
        ts_conn_fill(c, 30);
    }
    return i;
}

static void check_408(struct ts_conn *c, const char *code_msg_part)
{
    struct ts_resp r;
    int rc = ts_read_response(c, &r, false, T_LIVE);
    TS_CHECKF(rc == 0, "no response: %d", rc);
    if (rc == 0) {
        TS_CHECK_INT(r.status, 408);
        TS_CHECK_STR(ts_resp_header(&r, "connection"), "close");
        ts_check_error_json(r.body, r.body_len, "REQUEST_TIMEOUT",
                            ts_resp_header(&r, "x-request-id"));
        TS_CHECKF(strstr(r.body, code_msg_part) != NULL, "message: %s", r.body);
    }
    ts_resp_free(&r);
    TS_CHECKF(ts_conn_expect_eof(c, T_LIVE) == 0, "connection not closed after 408");
}

static void test_slowloris_head(void)
{
    struct ts_server s;
    TS_REQUIRE(ts_server_start(&s, short_timeouts) == 0);
    struct ts_conn c;
    TS_REQUIRE(ts_conn_open(&c, s.port) == 0);
    size_t sent = trickle_until_answer(&c, "GET /health HTTP/1.1\r\nHost: t\r\nX-Slow: ");
    TS_CHECKF(sent > 3, "answered after only %zu bytes", sent);
    check_408(&c, "headers");
    ts_conn_close(&c);
    TS_CHECK(ts_http_status(s.port, "/health", T_LIVE) == 200); /* still serving */
    ts_server_stop(&s, 20000);
}

static void test_slowloris_second_request(void)
{
    /* The header timer must restart for the next request on a keep-alive connection. */
    struct ts_server s;
    TS_REQUIRE(ts_server_start(&s, short_timeouts) == 0);
    struct ts_conn c;
    TS_REQUIRE(ts_conn_open(&c, s.port) == 0);
    TS_CHECK(ts_conn_send_str(&c, "GET /health HTTP/1.1\r\nHost: t\r\n\r\n") == 0);
    struct ts_resp r;
    TS_CHECK(ts_read_response(&c, &r, false, T_LIVE) == 0 && r.status == 200);
    ts_resp_free(&r);
    trickle_until_answer(&c, "GET /health HTTP/1.1\r\nHost: t\r\nX-Slow: ");
    check_408(&c, "headers");
    ts_conn_close(&c);
    ts_server_stop(&s, 20000);
}

static void test_slow_body(void)
{
    struct ts_server s;
    TS_REQUIRE(ts_server_start(&s, short_timeouts) == 0);
    struct ts_conn c;
    TS_REQUIRE(ts_conn_open(&c, s.port) == 0);
    TS_CHECK(ts_conn_send_str(&c, "POST /health HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n"
                                  "0123456789") == 0);
    check_408(&c, "body");
    ts_conn_close(&c);
    ts_server_stop(&s, 20000);
}

static void test_idle_keepalive_closed(void)
{
    struct ts_server s;
    TS_REQUIRE(ts_server_start(&s, short_timeouts) == 0);
    struct ts_conn c;
    TS_REQUIRE(ts_conn_open(&c, s.port) == 0);
    TS_CHECK(ts_conn_send_str(&c, "GET /health HTTP/1.1\r\nHost: t\r\n\r\n") == 0);
    struct ts_resp r;
    TS_CHECK(ts_read_response(&c, &r, false, T_LIVE) == 0 && r.status == 200);
    TS_CHECKF(ts_resp_header(&r, "connection") == NULL, "HTTP/1.1 response asks to close");
    ts_resp_free(&r);
    /* Quietly: an idle connection gets no response, just the close. */
    int rc = ts_conn_expect_eof(&c, T_LIVE);
    TS_CHECKF(rc == 0, "idle connection: %s", rc == -EPROTO ? c.buf : "not closed");
    ts_conn_close(&c);
    ts_server_stop(&s, 20000);
}

static void test_silent_connection_closed(void)
{
    struct ts_server s;
    TS_REQUIRE(ts_server_start(&s, short_timeouts) == 0);
    int base = ts_server_fd_settled(&s);
    struct ts_conn c;
    TS_REQUIRE(ts_conn_open(&c, s.port) == 0);
    /* Nothing is sent. The server may say 408 or nothing, but must not keep the socket. */
    long long deadline = ts_now_ms() + T_LIVE;
    while (!c.eof && ts_now_ms() < deadline)
        ts_conn_fill(&c, 100);
    TS_CHECKF(c.eof, "a connection that never sent a byte is still open");
    if (c.len > 0)
        TS_CHECKF(strncmp(c.buf, "HTTP/1.1 408 ", 13) == 0, "unexpected bytes: %.40s", c.buf);
    TS_CHECK_INT(ts_server_wait_fds(&s, base, T_LIVE), base);
    ts_conn_close(&c);
    ts_server_stop(&s, 20000);
}

static const struct ts_test tests[] = {
    {"slowloris head gets 408 and close", test_slowloris_head},
    {"slowloris on a keep-alive connection", test_slowloris_second_request},
    {"slow body gets 408 and close", test_slow_body},
    {"idle keep-alive connection is closed", test_idle_keepalive_closed},
    {"silent connection is closed", test_silent_connection_closed},
    {NULL, NULL},
};

int main(int argc, char **argv)
{
    return ts_main(argc, argv, tests);
}
