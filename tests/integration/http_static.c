/* http_static — STATIC_DIR served under /static/: whole files byte for byte, Range (206 with
 * Content-Range, suffix and open-ended ranges, 416 with "bytes * /N"), ETag with If-None-Match
 * (304) and If-Range, HEAD, pipelined file and memory responses in order, and every way out of
 * the root we could think of (.., %2e%2e, absolute paths, symlinks out and in) answered 404
 * without a byte of the file outside. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ts.h"
#include "ts_curl.h"
#include "ts_json.h"
#include "ts_net.h"
#include "ts_proc.h"

#define T_LIVE 10000
#define DATA_SIZE ((1u << 20) + 7) /* not a multiple of anything the server uses */
#define SECRET "TOP-SECRET-MARKER-outside-the-root"

static struct ts_server srv;
static char dir[256]; /* scratch: root/ and outside/ */
static char root[320];

static void mkfile(const char *rel, const char *content)
{
    char p[512];
    snprintf(p, sizeof(p), "%s/%s", dir, rel);
    TS_CHECK(ts_write_file(p, content, strlen(content)) == 0);
}

static void setup(void)
{
    TS_REQUIRE(ts_mkdtemp(dir, sizeof(dir)) == 0);
    snprintf(root, sizeof(root), "%s/root", dir);
    char p[512], env_dir[400];
    snprintf(p, sizeof(p), "%s/root", dir);
    TS_REQUIRE(mkdir(p, 0755) == 0);
    snprintf(p, sizeof(p), "%s/root/sub", dir);
    TS_REQUIRE(mkdir(p, 0755) == 0);
    snprintf(p, sizeof(p), "%s/outside", dir);
    TS_REQUIRE(mkdir(p, 0755) == 0);
    mkfile("root/small.txt", "hello static\n");
    mkfile("root/empty.txt", "");
    mkfile("root/sub/nested.json", "{\"nested\":true}");
    mkfile("outside/secret.txt", SECRET "\n");
    snprintf(p, sizeof(p), "%s/root/data.bin", dir);
    TS_REQUIRE(ts_write_pattern_file(p, DATA_SIZE) == 0);
    snprintf(p, sizeof(p), "%s/root/link-out", dir);
    TS_REQUIRE(symlink("../outside/secret.txt", p) == 0);
    snprintf(p, sizeof(p), "%s/root/link-in", dir);
    TS_REQUIRE(symlink("small.txt", p) == 0);
    snprintf(p, sizeof(p), "%s/root/dirlink", dir);
    TS_REQUIRE(symlink("../outside", p) == 0);
    snprintf(env_dir, sizeof(env_dir), "STATIC_DIR=%s", root);
    const char *env[] = {env_dir, NULL};
    TS_REQUIRE(ts_server_start(&srv, env) == 0);
}

static void teardown(void)
{
    ts_server_stop(&srv, 20000);
    if (ts_case_failures() == 0)
        ts_rmtree(dir);
}

/* GET on a fresh connection with extra header lines ("Name: v\r\n"...). */
static int get(const char *path, const char *extra, bool head, struct ts_resp *r)
{
    char req[2048];
    snprintf(req, sizeof(req), "%s %s HTTP/1.1\r\nHost: t\r\n%s\r\n", head ? "HEAD" : "GET", path,
             extra ? extra : "");
    int rc = ts_http_exchange(srv.port, req, r, T_LIVE);
    TS_CHECKF(rc == 0, "GET %s: %d", path, rc);
    return rc;
}

static void test_whole_files(void)
{
    struct ts_xfer x;
    TS_CHECK_INT(ts_curl_get(&x, srv.port, "/static/small.txt", NULL), 200);
    TS_CHECK(x.body && strcmp(x.body, "hello static\n") == 0);
    char v[256];
    TS_CHECK(ts_xfer_header(&x, "content-type", v, sizeof(v)) && strstr(v, "text/plain"));
    TS_CHECK(ts_xfer_header(&x, "accept-ranges", v, sizeof(v)) && !strcmp(v, "bytes"));
    TS_CHECK(ts_xfer_header(&x, "etag", v, sizeof(v)) && v[0] == '"');
    TS_CHECK(ts_xfer_header(&x, "last-modified", v, sizeof(v)) && strstr(v, " GMT"));
    ts_xfer_free(&x);

    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/static/data.bin", srv.port);
    TS_REQUIRE(ts_xfer_init(&x, url, NULL) == 0);
    x.max_body = DATA_SIZE + 1;
    TS_CHECK(ts_curl_perform(&x) == CURLE_OK);
    TS_CHECK_INT(x.status, 200);
    TS_CHECK_INT(x.body_len, DATA_SIZE);
    TS_CHECK(x.body && ts_pattern_mismatch(x.body, x.body_len, 0) < 0);
    TS_CHECK(ts_xfer_header(&x, "content-type", v, sizeof(v)) &&
             !strcmp(v, "application/octet-stream"));
    TS_CHECK(ts_xfer_header(&x, "content-length", v, sizeof(v)) && atol(v) == DATA_SIZE);
    ts_xfer_free(&x);

    struct ts_resp r;
    if (get("/static/sub/nested.json", NULL, false, &r) == 0) {
        TS_CHECK_INT(r.status, 200);
        TS_CHECK_STR(ts_resp_header(&r, "content-type"), "application/json");
        TS_CHECK_STR(r.body, "{\"nested\":true}");
    }
    ts_resp_free(&r);
    if (get("/static/empty.txt", NULL, false, &r) == 0) {
        TS_CHECK_INT(r.status, 200);
        TS_CHECK_STR(ts_resp_header(&r, "content-length"), "0");
        TS_CHECK_INT(r.body_len, 0);
    }
    ts_resp_free(&r);
    if (get("/static/data.bin", NULL, true, &r) == 0) { /* HEAD */
        TS_CHECK_INT(r.status, 200);
        TS_CHECK(ts_resp_header(&r, "content-length") &&
                 atol(ts_resp_header(&r, "content-length")) == DATA_SIZE);
    }
    ts_resp_free(&r);
}

/* Range request; checks 206, Content-Range and the body bytes. */
static void range_at(int line, const char *range, unsigned long first, unsigned long last)
{
    char extra[128], want[128];
    snprintf(extra, sizeof(extra), "Range: %s\r\n", range);
    snprintf(want, sizeof(want), "bytes %lu-%lu/%u", first, last, DATA_SIZE);
    struct ts_resp r;
    if (get("/static/data.bin", extra, false, &r) == 0) {
        const char *cr = ts_resp_header(&r, "content-range");
        if (r.status != 206 || !cr || strcmp(cr, want) != 0)
            ts_fail(__FILE__, line, "%s: status %d Content-Range %s, want 206 %s", range, r.status,
                    cr ? cr : "(none)", want);
        if (r.body_len != last - first + 1 || ts_pattern_mismatch(r.body, r.body_len, first) >= 0)
            ts_fail(__FILE__, line, "%s: wrong body (%zu bytes)", range, r.body_len);
    }
    ts_resp_free(&r);
}

static void test_ranges(void)
{
    range_at(__LINE__, "bytes=10-20", 10, 20);
    range_at(__LINE__, "bytes=0-0", 0, 0);
    range_at(__LINE__, "bytes=-100", DATA_SIZE - 100, DATA_SIZE - 1); /* suffix */
    range_at(__LINE__, "bytes=-99999999", 0, DATA_SIZE - 1);          /* suffix > size */
    range_at(__LINE__, "bytes=1000-", 1000, DATA_SIZE - 1);           /* open-ended */
    range_at(__LINE__, "bytes=5-999999999", 5, DATA_SIZE - 1);        /* clipped */
    range_at(__LINE__, "bytes=1048576-1048582", 1048576, 1048582);    /* the tail */
    /* What we do not serve as a range: the whole file. */
    static const char *const whole[] = {"bytes=0-1,5-6", "items=0-5", "bytes=abc", "bytes=9-5",
                                        NULL};
    for (const char *const *p = whole; *p; p++) {
        char extra[128];
        snprintf(extra, sizeof(extra), "Range: %s\r\n", *p);
        struct ts_resp r;
        if (get("/static/data.bin", extra, false, &r) == 0) {
            TS_CHECKF(r.status == 200 && r.body_len == DATA_SIZE, "%s: %d, %zu bytes", *p, r.status,
                      r.body_len);
            TS_CHECK(ts_resp_header(&r, "content-range") == NULL);
        }
        ts_resp_free(&r);
    }
}

static void test_unsatisfiable(void)
{
    char want[64];
    snprintf(want, sizeof(want), "bytes */%u", DATA_SIZE);
    char first_past[64];
    snprintf(first_past, sizeof(first_past), "bytes=%u-", DATA_SIZE);
    const char *bad[] = {first_past, "bytes=99999999-100000000", "bytes=-0", NULL};
    for (const char **p = bad; *p; p++) {
        struct ts_conn c;
        TS_REQUIRE(ts_conn_open(&c, srv.port) == 0);
        char req[256];
        snprintf(req, sizeof(req),
                 "GET /static/data.bin HTTP/1.1\r\nHost: t\r\nRange: %s\r\n\r\n"
                 "GET /static/small.txt HTTP/1.1\r\nHost: t\r\n\r\n",
                 *p);
        TS_CHECK(ts_conn_send_str(&c, req) == 0);
        struct ts_resp r;
        if (ts_read_response(&c, &r, false, T_LIVE) == 0) {
            TS_CHECKF(r.status == 416, "%s: %d", *p, r.status);
            TS_CHECK_STR(ts_resp_header(&r, "content-range"), want);
            ts_check_error_json(r.body, r.body_len, "RANGE_NOT_SATISFIABLE", NULL);
        } else {
            TS_CHECKF(false, "%s: no response", *p);
        }
        ts_resp_free(&r);
        /* Not a reason to close: the next request on the connection is answered. */
        TS_CHECK(ts_read_response(&c, &r, false, T_LIVE) == 0 && r.status == 200 &&
                 !strcmp(r.body, "hello static\n"));
        ts_resp_free(&r);
        ts_conn_close(&c);
    }
    struct ts_resp r;
    if (get("/static/empty.txt", "Range: bytes=0-\r\n", false, &r) == 0) {
        TS_CHECK_INT(r.status, 416);
        TS_CHECK_STR(ts_resp_header(&r, "content-range"), "bytes */0");
    }
    ts_resp_free(&r);
}

static void test_etag(void)
{
    struct ts_resp r;
    char etag[128] = "";
    if (get("/static/small.txt", NULL, false, &r) == 0 && ts_resp_header(&r, "etag"))
        snprintf(etag, sizeof(etag), "%s", ts_resp_header(&r, "etag"));
    ts_resp_free(&r);
    TS_REQUIRE(etag[0] == '"');
    char extra[512];
    const char *forms[] = {"%s", "W/%s", "\"nope\", %s", "*", NULL};
    for (const char **f = forms; *f; f++) {
        char inm[256];
        snprintf(inm, sizeof(inm), *f, etag);
        struct ts_conn c;
        TS_REQUIRE(ts_conn_open(&c, srv.port) == 0);
        snprintf(extra, sizeof(extra),
                 "GET /static/small.txt HTTP/1.1\r\nHost: t\r\n"
                 "If-None-Match: %s\r\n\r\nGET /health HTTP/1.1\r\nHost: t\r\n\r\n",
                 inm);
        TS_CHECK(ts_conn_send_str(&c, extra) == 0);
        if (ts_read_response(&c, &r, false, T_LIVE) == 0) {
            TS_CHECKF(r.status == 304, "If-None-Match %s: %d", inm, r.status);
            TS_CHECK_STR(ts_resp_header(&r, "etag"), etag);
            TS_CHECK(ts_resp_header(&r, "content-length") == NULL);
        }
        ts_resp_free(&r);
        /* A 304 has no body: the next response starts right after its head. */
        TS_CHECK(ts_read_response(&c, &r, false, T_LIVE) == 0 && r.status == 200 &&
                 strstr(r.body, "\"ok\":true"));
        ts_resp_free(&r);
        ts_conn_close(&c);
    }
    if (get("/static/small.txt", "If-None-Match: \"something-else\"\r\n", false, &r) == 0)
        TS_CHECK(r.status == 200 && !strcmp(r.body, "hello static\n"));
    ts_resp_free(&r);
    /* If-Range: the range only while the validator still matches. */
    snprintf(extra, sizeof(extra), "Range: bytes=0-4\r\nIf-Range: %s\r\n", etag);
    if (get("/static/small.txt", extra, false, &r) == 0)
        TS_CHECK(r.status == 206 && !strcmp(r.body, "hello"));
    ts_resp_free(&r);
    if (get("/static/small.txt", "Range: bytes=0-4\r\nIf-Range: \"old\"\r\n", false, &r) == 0)
        TS_CHECK(r.status == 200 && !strcmp(r.body, "hello static\n"));
    ts_resp_free(&r);
}

static void test_traversal(void)
{
    char abs_path[600], abs_enc[700];
    snprintf(abs_path, sizeof(abs_path), "/static/%s/outside/secret.txt", dir);
    snprintf(abs_enc, sizeof(abs_enc), "/static/%%2f%s/outside/secret.txt", dir + 1);
    const char *paths[] = {"/static/../outside/secret.txt",
                           "/static/%2e%2e/outside/secret.txt",
                           "/static/%2E%2E/outside/secret.txt",
                           "/static/.%2e/outside/secret.txt",
                           "/static/..%2foutside%2fsecret.txt",
                           "/static/sub/../../outside/secret.txt",
                           "/static/sub/%2e%2e/%2e%2e/outside/secret.txt",
                           "/static/..\\outside\\secret.txt",
                           "/static/..%5coutside%5csecret.txt",
                           abs_path, /* "/static//tmp/.../outside/secret.txt" */
                           abs_enc,
                           "/static//etc/passwd",
                           "/static/%2fetc%2fpasswd",
                           "/static/link-out",           /* symlink to the file outside */
                           "/static/dirlink/secret.txt", /* symlinked directory outside */
                           "/static/link-in", /* symlinks are not followed at all, even inside */
                           "/static/sub",     /* a directory */
                           "/static/sub/",
                           "/static/",
                           "/static/./small.txt",
                           "/static/sub//nested.json",
                           NULL};
    for (const char **p = paths; *p; p++) {
        struct ts_resp r;
        if (get(*p, NULL, false, &r) == 0) {
            TS_CHECKF(r.status == 404, "%s: %d", *p, r.status);
            TS_CHECKF(!memmem(r.body, r.body_len, SECRET, strlen(SECRET)), "%s: LEAKED", *p);
            ts_check_error_json(r.body, r.body_len, "NOT_FOUND", NULL);
        }
        ts_resp_free(&r);
    }
}

static void test_pipelined_files(void)
{
    /* File bodies (spliced) and memory bodies (sendmsg) interleaved on one connection must
     * leave in request order. */
    struct ts_conn c;
    TS_REQUIRE(ts_conn_open(&c, srv.port) == 0);
    TS_CHECK(ts_conn_send_str(&c, "GET /static/data.bin HTTP/1.1\r\nHost: t\r\n\r\n"
                                  "GET /health HTTP/1.1\r\nHost: t\r\n\r\n"
                                  "GET /static/data.bin HTTP/1.1\r\nHost: t\r\n"
                                  "Range: bytes=100-199\r\n\r\n"
                                  "GET /static/nope HTTP/1.1\r\nHost: t\r\n\r\n"
                                  "GET /static/small.txt HTTP/1.1\r\nHost: t\r\n\r\n") == 0);
    struct ts_resp r;
    TS_CHECK(ts_read_response(&c, &r, false, T_LIVE) == 0 && r.status == 200 &&
             r.body_len == DATA_SIZE && ts_pattern_mismatch(r.body, r.body_len, 0) < 0);
    ts_resp_free(&r);
    TS_CHECK(ts_read_response(&c, &r, false, T_LIVE) == 0 && r.status == 200 &&
             strstr(r.body, "\"ok\":true"));
    ts_resp_free(&r);
    TS_CHECK(ts_read_response(&c, &r, false, T_LIVE) == 0 && r.status == 206 && r.body_len == 100 &&
             ts_pattern_mismatch(r.body, 100, 100) < 0);
    ts_resp_free(&r);
    TS_CHECK(ts_read_response(&c, &r, false, T_LIVE) == 0 && r.status == 404);
    ts_resp_free(&r);
    TS_CHECK(ts_read_response(&c, &r, false, T_LIVE) == 0 && r.status == 200 &&
             !strcmp(r.body, "hello static\n"));
    ts_resp_free(&r);
    ts_conn_close(&c);
}

static void test_many_pipelined_files(void)
{
    /* More file responses than the server queues at once (it stops parsing at a few and
     * resumes as each file is sent): all 60 come back, in order. */
    enum { N = 60 };
    struct ts_conn c;
    TS_REQUIRE(ts_conn_open(&c, srv.port) == 0);
    char req[256];
    for (int i = 0; i < N; i++) {
        if (i % 3 == 2)
            snprintf(req, sizeof(req), "GET /static/small.txt HTTP/1.1\r\nHost: t\r\n\r\n");
        else
            snprintf(req, sizeof(req),
                     "GET /static/data.bin HTTP/1.1\r\nHost: t\r\n"
                     "Range: bytes=%d-%d\r\nX-Request-Id: f-%d\r\n\r\n",
                     i * 1000, i * 1000 + 9999, i);
        TS_CHECK(ts_conn_send_str(&c, req) == 0);
    }
    for (int i = 0; i < N; i++) {
        struct ts_resp r;
        int rc = ts_read_response(&c, &r, false, T_LIVE);
        if (rc != 0) {
            TS_CHECKF(false, "response %d: %d", i, rc);
            ts_resp_free(&r);
            break;
        }
        if (i % 3 == 2)
            TS_CHECKF(r.status == 200 && !strcmp(r.body, "hello static\n"), "response %d", i);
        else
            TS_CHECKF(r.status == 206 && r.body_len == 10000 &&
                          ts_pattern_mismatch(r.body, 10000, (uint64_t)i * 1000) < 0,
                      "response %d: %d, %zu bytes", i, r.status, r.body_len);
        ts_resp_free(&r);
    }
    ts_conn_close(&c);
}

static void test_methods(void)
{
    struct ts_resp r;
    int rc = ts_http_exchange(srv.port,
                              "PUT /static/small.txt HTTP/1.1\r\nHost: t\r\n"
                              "Content-Length: 1\r\n\r\nx",
                              &r, T_LIVE);
    TS_CHECK(rc == 0 && r.status == 405);
    TS_CHECK_STR(ts_resp_header(&r, "allow"), "GET, HEAD");
    ts_resp_free(&r);
}

static const struct ts_test tests[] = {
    {"whole files byte for byte", test_whole_files},
    {"Range: 206, suffix, open-ended", test_ranges},
    {"unsatisfiable range: 416 bytes */N", test_unsatisfiable},
    {"ETag and If-None-Match: 304, If-Range", test_etag},
    {"path traversal: 404, never the file", test_traversal},
    {"pipelined file and memory responses", test_pipelined_files},
    {"many pipelined file responses", test_many_pipelined_files},
    {"methods other than GET/HEAD: 405", test_methods},
    {NULL, NULL},
};

int main(int argc, char **argv)
{
    return ts_main_shared(argc, argv, tests, setup, teardown);
}
