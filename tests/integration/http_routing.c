/* http_routing — what every response looks like: /health and /ready bodies, HEAD (headers with
 * the GET's Content-Length, never a body), 404 versus 405 with Allow, OPTIONS, unknown methods,
 * X-Request-Id echoed when sane and replaced when not, the JSON error shape, and keep-alive
 * rules for HTTP/1.0 and 1.1. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ts.h"
#include "ts_curl.h"
#include "ts_json.h"
#include "ts_net.h"
#include "ts_proc.h"

#define T_LIVE 10000

static struct ts_server srv;

static int exchange(const char *req, struct ts_resp *r)
{
    int rc = ts_http_exchange(srv.port, req, r, T_LIVE);
    TS_CHECKF(rc == 0, "no response to %.40s: %d", req, rc);
    return rc;
}

static void test_health(void)
{
    struct ts_xfer x;
    TS_CHECK_INT(ts_curl_get(&x, srv.port, "/health", NULL), 200);
    char v[256];
    TS_CHECK(ts_xfer_header(&x, "content-type", v, sizeof(v)) && !strcmp(v, "application/json"));
    TS_CHECK(ts_xfer_header(&x, "server", v, sizeof(v)) && !strcmp(v, "comfygate"));
    TS_CHECK(ts_xfer_header(&x, "date", v, sizeof(v)) && strstr(v, " GMT"));
    TS_CHECK(ts_xfer_header(&x, "x-request-id", v, sizeof(v)) && strlen(v) >= 8);
    json_error_t jerr;
    json_t *j = x.body ? json_loadb(x.body, x.body_len, 0, &jerr) : NULL;
    TS_CHECKF(json_is_object(j), "not JSON: %s", x.body ? x.body : "");
    TS_CHECK(json_object_size(j) == 3);
    TS_CHECK(json_is_true(json_object_get(j, "ok")));
    TS_CHECK(json_is_string(json_object_get(j, "version")) &&
             json_string_length(json_object_get(j, "version")) > 0);
    TS_CHECK(json_is_integer(json_object_get(j, "uptime_s")) &&
             json_integer_value(json_object_get(j, "uptime_s")) >= 0);
    json_decref(j);
    ts_xfer_free(&x);
}

static void test_ready(void)
{
    struct ts_xfer x;
    TS_CHECK_INT(ts_curl_get(&x, srv.port, "/ready", NULL), 200);
    json_error_t jerr;
    json_t *j = x.body ? json_loadb(x.body, x.body_len, 0, &jerr) : NULL;
    TS_CHECK(json_is_object(j) && json_is_true(json_object_get(j, "ready")));
    json_decref(j);
    ts_xfer_free(&x);
}

static void test_head(void)
{
    struct ts_conn c;
    TS_REQUIRE(ts_conn_open(&c, srv.port) == 0);
    /* HEAD then GET on one connection: if HEAD carried a body, the GET's response would not
     * parse (or would parse as that body). */
    TS_CHECK(ts_conn_send_str(&c,
                              "HEAD /health HTTP/1.1\r\nHost: t\r\nX-Request-Id: h-1\r\n\r\n"
                              "HEAD /nope HTTP/1.1\r\nHost: t\r\nX-Request-Id: h-2\r\n\r\n"
                              "GET /health HTTP/1.1\r\nHost: t\r\nX-Request-Id: h-3\r\n\r\n") == 0);
    struct ts_resp h, n, g;
    TS_REQUIRE(ts_read_response(&c, &h, true, T_LIVE) == 0);
    TS_REQUIRE(ts_read_response(&c, &n, true, T_LIVE) == 0);
    TS_REQUIRE(ts_read_response(&c, &g, false, T_LIVE) == 0);
    TS_CHECK_INT(h.status, 200);
    TS_CHECK_STR(ts_resp_header(&h, "x-request-id"), "h-1");
    TS_CHECK_INT(n.status, 404);
    TS_CHECK_STR(ts_resp_header(&n, "x-request-id"), "h-2");
    TS_CHECK(ts_resp_header(&n, "content-length") &&
             atoi(ts_resp_header(&n, "content-length")) > 0);
    TS_CHECK_INT(g.status, 200);
    TS_CHECK_STR(ts_resp_header(&g, "x-request-id"), "h-3");
    const char *hl = ts_resp_header(&h, "content-length");
    TS_CHECKF(hl && (size_t)atoi(hl) == g.body_len, "HEAD Content-Length %s, GET body %zu",
              hl ? hl : "(none)", g.body_len);
    TS_CHECK_STR(ts_resp_header(&h, "content-type"), "application/json");
    TS_CHECK_INT(c.len, 0);
    ts_resp_free(&h);
    ts_resp_free(&n);
    ts_resp_free(&g);
    ts_conn_close(&c);
}

static void test_not_found_vs_method(void)
{
    static const char *const missing[] = {"/nope",    "/health/extra", "/",
                                          "/healthz", "/HEALTH",       NULL};
    for (const char *const *p = missing; *p; p++) {
        char req[256];
        snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: t\r\nX-Request-Id: nf\r\n\r\n", *p);
        struct ts_resp r;
        if (exchange(req, &r) == 0) {
            TS_CHECKF(r.status == 404, "%s: %d", *p, r.status);
            TS_CHECKF(ts_resp_header(&r, "allow") == NULL, "%s: a 404 with Allow", *p);
            ts_check_error_json(r.body, r.body_len, "NOT_FOUND", "nf");
        }
        ts_resp_free(&r);
    }
    static const char *const wrong[] = {"POST /health", "DELETE /ready", "PUT /health",
                                        "PATCH /ready", NULL};
    for (const char *const *p = wrong; *p; p++) {
        char req[256];
        snprintf(req, sizeof(req),
                 "%s HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n"
                 "X-Request-Id: mna\r\n\r\n",
                 *p);
        struct ts_resp r;
        if (exchange(req, &r) == 0) {
            TS_CHECKF(r.status == 405, "%s: %d", *p, r.status);
            TS_CHECK_STR(ts_resp_header(&r, "allow"), "GET, HEAD");
            ts_check_error_json(r.body, r.body_len, "METHOD_NOT_ALLOWED", "mna");
        }
        ts_resp_free(&r);
    }
    struct ts_resp r;
    if (exchange("OPTIONS /health HTTP/1.1\r\nHost: t\r\n\r\n", &r) == 0) {
        TS_CHECK_INT(r.status, 204);
        TS_CHECK_STR(ts_resp_header(&r, "allow"), "GET, HEAD");
        TS_CHECK_INT(r.body_len, 0);
    }
    ts_resp_free(&r);
    if (exchange("BREW /health HTTP/1.1\r\nHost: t\r\n\r\n", &r) == 0) {
        TS_CHECK_INT(r.status, 501);
        ts_check_error_json(r.body, r.body_len, "NOT_IMPLEMENTED", NULL);
    }
    ts_resp_free(&r);
}

/* Sends X-Request-Id: value (raw) to a 404 route; returns the id the server used (caller
 * frees), checking the header and the JSON body agree. */
static char *id_roundtrip(const char *value)
{
    char req[1024];
    snprintf(req, sizeof(req), "GET /nope HTTP/1.1\r\nHost: t\r\nX-Request-Id: %s\r\n\r\n", value);
    struct ts_resp r;
    char *id = NULL;
    if (exchange(req, &r) == 0 && r.status == 404) {
        const char *h = ts_resp_header(&r, "x-request-id");
        TS_CHECK(h != NULL);
        if (h) {
            id = strdup(h);
            ts_check_error_json(r.body, r.body_len, "NOT_FOUND", h);
        }
    }
    ts_resp_free(&r);
    return id;
}

static void test_request_id(void)
{
    char sixty_four[65], sixty_five[66];
    memset(sixty_four, 'k', 64);
    sixty_four[64] = '\0';
    memset(sixty_five, 'k', 65);
    sixty_five[65] = '\0';
    static const char *const sane[] = {"abc-123_X.y:z", "0", NULL};
    for (const char *const *p = sane; *p; p++) {
        char *id = id_roundtrip(*p);
        TS_CHECK_STR(id, *p);
        free(id);
    }
    char *id = id_roundtrip(sixty_four);
    TS_CHECK_STR(id, sixty_four);
    free(id);
    const char *insane[] = {sixty_five,    "has space",  "quote\"inside", "back\\slash",
                            "caf\xc3\xa9", "semi;colon", "<script>",      NULL};
    char *prev = NULL;
    for (const char **p = insane; *p; p++) {
        id = id_roundtrip(*p);
        TS_CHECKF(id && strcmp(id, *p) != 0 && !strstr(id, "has") && !strchr(id, '"'),
                  "insane id \"%s\" came back as \"%s\"", *p, id ? id : "(none)");
        TS_CHECKF(!id || !prev || strcmp(id, prev) != 0, "generated id repeated: %s", id);
        free(prev);
        prev = id;
    }
    free(prev);
    /* Generated ids never repeat across connections. */
    struct ts_resp a, b;
    if (exchange("GET /health HTTP/1.1\r\nHost: t\r\n\r\n", &a) == 0 &&
        exchange("GET /health HTTP/1.1\r\nHost: t\r\n\r\n", &b) == 0)
        TS_CHECK(strcmp(ts_resp_header(&a, "x-request-id"), ts_resp_header(&b, "x-request-id")));
    ts_resp_free(&a);
    ts_resp_free(&b);
}

static void test_keep_alive_rules(void)
{
    struct ts_conn c;
    struct ts_resp r;
    /* HTTP/1.0 without keep-alive: answered, then closed. */
    TS_REQUIRE(ts_conn_open(&c, srv.port) == 0);
    TS_CHECK(ts_conn_send_str(&c, "GET /health HTTP/1.0\r\n\r\n") == 0);
    TS_CHECK(ts_read_response(&c, &r, false, T_LIVE) == 0 && r.status == 200);
    TS_CHECK_STR(ts_resp_header(&r, "connection"), "close");
    TS_CHECK(ts_conn_expect_eof(&c, T_LIVE) == 0);
    ts_resp_free(&r);
    ts_conn_close(&c);
    /* HTTP/1.0 with keep-alive: stays open for a second request. */
    TS_REQUIRE(ts_conn_open(&c, srv.port) == 0);
    TS_CHECK(ts_conn_send_str(&c, "GET /health HTTP/1.0\r\nConnection: keep-alive\r\n\r\n") == 0);
    TS_CHECK(ts_read_response(&c, &r, false, T_LIVE) == 0 && r.status == 200);
    TS_CHECK_STR(ts_resp_header(&r, "connection"), "keep-alive");
    ts_resp_free(&r);
    TS_CHECK(ts_conn_send_str(&c, "GET /ready HTTP/1.0\r\nConnection: keep-alive\r\n\r\n") == 0);
    TS_CHECK(ts_read_response(&c, &r, false, T_LIVE) == 0 && r.status == 200);
    ts_resp_free(&r);
    ts_conn_close(&c);
    /* HTTP/1.1 Connection: close. */
    TS_REQUIRE(ts_conn_open(&c, srv.port) == 0);
    TS_CHECK(ts_conn_send_str(&c, "GET /health HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n") ==
             0);
    TS_CHECK(ts_read_response(&c, &r, false, T_LIVE) == 0 && r.status == 200);
    TS_CHECK_STR(ts_resp_header(&r, "connection"), "close");
    TS_CHECK(ts_conn_expect_eof(&c, T_LIVE) == 0);
    ts_resp_free(&r);
    ts_conn_close(&c);
}

static void setup(void)
{
    TS_REQUIRE(ts_server_start(&srv, NULL) == 0);
}

static void teardown(void)
{
    TS_CHECK(ts_server_log_has(&srv, "\"requestId\":\"abc-123_X.y:z\""));
    ts_server_stop(&srv, 20000);
}

static const struct ts_test tests[] = {
    {"GET /health JSON shape", test_health},
    {"GET /ready", test_ready},
    {"HEAD: Content-Length, no body", test_head},
    {"404 vs 405 with Allow, OPTIONS, unknown method", test_not_found_vs_method},
    {"X-Request-Id echoed when sane, replaced when not", test_request_id},
    {"keep-alive rules for HTTP/1.0 and 1.1", test_keep_alive_rules},
    {NULL, NULL},
};

int main(int argc, char **argv)
{
    return ts_main_shared(argc, argv, tests, setup, teardown);
}
