/* tls_server — TLS on the listener, against clients built on OpenSSL (libcurl, libssl and the
 * openssl tool) with a throw-away CA made at test time: RSA-2048 and EC P-256 certificates
 * verified by name, TLS 1.2 with ECDHE and AES-GCM in the server's order, ALPN http/1.1, what
 * must be refused (TLS 1.3 only, CBC or RSA key exchange only, ALPN h2 only), keep-alive and
 * pipelining, files of 1 and 20 MiB byte for byte with Range and 304, session resumption, and
 * the bad and the rude — garbage, plain HTTP, clients that leave mid-handshake or mid-download,
 * 200 connections at once — after which the server still serves and holds no extra
 * descriptor. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "ts.h"
#include "ts_curl.h"
#include "ts_net.h"
#include "ts_proc.h"
#include "ts_tls.h"

#define T_LIVE 30000
#define SIZE_1M ((1u << 20) + 7)
#define SIZE_20M (20u << 20)
#define NCONC 200

static struct ts_certs certs;
static struct ts_server rsa, ec;
static char dir[256];

static void setup(void)
{
    TS_REQUIRE(ts_certs_make(&certs) == 0);
    TS_REQUIRE(ts_mkdtemp(dir, sizeof(dir)) == 0);
    char p[400];
    snprintf(p, sizeof(p), "%s/small.txt", dir);
    TS_REQUIRE(ts_write_file(p, "hello tls\n", 10) == 0);
    snprintf(p, sizeof(p), "%s/1m.bin", dir);
    TS_REQUIRE(ts_write_pattern_file(p, SIZE_1M) == 0);
    snprintf(p, sizeof(p), "%s/20m.bin", dir);
    TS_REQUIRE(ts_write_pattern_file(p, SIZE_20M) == 0);
    char sd[400], c1[400], k1[400], c2[400], k2[400];
    snprintf(sd, sizeof(sd), "STATIC_DIR=%s", dir);
    snprintf(c1, sizeof(c1), "TLS_CERT_FILE=%s", certs.rsa_chain);
    snprintf(k1, sizeof(k1), "TLS_KEY_FILE=%s", certs.rsa_key);
    snprintf(c2, sizeof(c2), "TLS_CERT_FILE=%s", certs.ec_chain);
    snprintf(k2, sizeof(k2), "TLS_KEY_FILE=%s", certs.ec_key_sec1);
    const char *e1[] = {sd, c1, k1, "LOG_LEVEL=debug", "ACCESS_LOG=false", "LINGER_MS=200", NULL};
    const char *e2[] = {sd, c2, k2, "ACCESS_LOG=false", "LINGER_MS=200", NULL};
    TS_REQUIRE(ts_server_start(&rsa, e1) == 0);
    TS_REQUIRE(ts_server_start(&ec, e2) == 0);
}

static void teardown(void)
{
    ts_server_stop(&rsa, T_LIVE);
    ts_server_stop(&ec, T_LIVE);
    if (ts_case_failures() == 0) {
        ts_certs_remove(&certs);
        ts_rmtree(dir);
    }
}

static const struct ts_tls_opts verified = {.cafile = certs.ca, .alpn = "http/1.1"};

/* libcurl over https://localhost with the CA: chain and host name verified. */
static long curl_get(struct ts_xfer *x, int port, const char *path, const char *const *hdrs,
                     size_t max_body)
{
    char url[256];
    snprintf(url, sizeof(url), "https://localhost:%d%s", port, path);
    if (ts_xfer_init(x, url, hdrs) < 0)
        return -1;
    x->max_body = max_body;
    curl_easy_setopt(x->easy, CURLOPT_CAINFO, certs.ca);
    curl_easy_setopt(x->easy, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(x->easy, CURLOPT_SSL_VERIFYHOST, 2L);
    CURLcode rc = ts_curl_perform(x);
    if (rc != CURLE_OK) {
        ts_note("curl %s: %s", url, curl_easy_strerror(rc));
        return -1;
    }
    return x->status;
}

static void test_curl_health(void)
{
    const struct ts_server *servers[] = {&rsa, &ec};
    for (int i = 0; i < 2; i++) {
        struct ts_xfer x;
        TS_CHECK_INT(curl_get(&x, servers[i]->port, "/health", NULL, 4096), 200);
        TS_CHECK(x.body && strstr(x.body, "\"ok\":true"));
        long ver = 0;
        curl_easy_getinfo(x.easy, CURLINFO_HTTP_VERSION, &ver);
        TS_CHECKF(ver == CURL_HTTP_VERSION_1_1, "HTTP version %ld (libcurl offers h2 too)", ver);
        ts_xfer_free(&x);
    }
}

/* openssl s_client with a request on stdin; its whole output in out. */
static int s_client(int port, const char *const *extra, const char *in, char *out, size_t cap)
{
    char addr[64];
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
    const char *argv[32] = {"openssl",     "s_client",  "-connect", addr,
                            "-servername", "localhost", "-CAfile",  certs.ca};
    size_t n = 8;
    for (const char *const *e = extra; e && *e; e++)
        argv[n++] = *e;
    argv[n] = NULL;
    return ts_run_tool(argv, NULL, in, out, cap, T_LIVE);
}

static const char req_close[] =
    "GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";

static void test_s_client(void)
{
    static char out[65536];
    const char *args[] = {"-tls1_2", "-alpn", "http/1.1", "-ign_eof", NULL};
    s_client(rsa.port, args, req_close, out, sizeof(out));
    TS_CHECKF(strstr(out, "Protocol  : TLSv1.2"), "protocol: %s", out);
    TS_CHECKF(strstr(out, "Cipher    : ECDHE-RSA-AES128-GCM-SHA256"), "cipher: %s", out);
    TS_CHECKF(strstr(out, "ALPN protocol: http/1.1"), "ALPN: %s", out);
    TS_CHECKF(strstr(out, "Verify return code: 0 (ok)"), "verify: %s", out);
    TS_CHECKF(strstr(out, "HTTP/1.1 200 OK") && strstr(out, "\"ok\":true"), "answer: %s", out);
    s_client(ec.port, args, req_close, out, sizeof(out));
    TS_CHECKF(strstr(out, "Cipher    : ECDHE-ECDSA-AES128-GCM-SHA256"), "EC cipher: %s", out);
    TS_CHECKF(strstr(out, "Verify return code: 0 (ok)") && strstr(out, "HTTP/1.1 200 OK"), "EC: %s",
              out);
}

/* The cipher a client offering `list` gets from the RSA server ("" if refused). */
static void cipher_for(int port, const char *list, char *got, size_t cap)
{
    struct ts_conn c;
    struct ts_tls_opts o = verified;
    o.ciphers = list;
    got[0] = '\0';
    if (ts_tls_open(&c, port, &o, T_LIVE) == 0) {
        snprintf(got, cap, "%s", ts_tls_cipher(&c));
        ts_conn_close(&c);
    }
}

static void test_server_order(void)
{
    char got[128];
    cipher_for(rsa.port,
               "ECDHE-RSA-CHACHA20-POLY1305:ECDHE-RSA-AES256-GCM-SHA384:"
               "ECDHE-RSA-AES128-GCM-SHA256",
               got, sizeof(got));
    TS_CHECK_STR(got, "ECDHE-RSA-AES128-GCM-SHA256");
    cipher_for(rsa.port, "ECDHE-RSA-CHACHA20-POLY1305:ECDHE-RSA-AES256-GCM-SHA384", got,
               sizeof(got));
    TS_CHECK_STR(got, "ECDHE-RSA-AES256-GCM-SHA384");
    cipher_for(rsa.port, "ECDHE-RSA-CHACHA20-POLY1305", got, sizeof(got));
    TS_CHECK_STR(got, "ECDHE-RSA-CHACHA20-POLY1305");
    cipher_for(ec.port, "ECDHE-ECDSA-CHACHA20-POLY1305", got, sizeof(got));
    TS_CHECK_STR(got, "ECDHE-ECDSA-CHACHA20-POLY1305");
}

static void test_refused(void)
{
    static char out[65536];
    /* TLS 1.3 only: BearSSL speaks 1.2 at most */
    const char *t13[] = {"-tls1_3", NULL};
    int rc = s_client(rsa.port, t13, "", out, sizeof(out));
    TS_CHECKF(rc != 0 && !strstr(out, "Protocol  : TLSv1.3") && strstr(out, "Cipher is (NONE)"),
              "TLS 1.3-only client: exit %d: %s", rc, out);
    struct ts_conn c;
    struct ts_tls_opts o = verified;
    o.tls13_only = true;
    TS_CHECK_INT(ts_tls_open(&c, rsa.port, &o, T_LIVE), -EPROTO);
    /* CBC suites and RSA key exchange only */
    o = verified;
    o.ciphers = "AES128-SHA:AES256-SHA:AES128-SHA256:AES128-GCM-SHA256:AES256-GCM-SHA384:"
                "ECDHE-RSA-AES128-SHA:ECDHE-RSA-AES256-SHA:ECDHE-RSA-AES128-SHA256";
    TS_CHECK_INT(ts_tls_open(&c, rsa.port, &o, T_LIVE), -EPROTO);
    const char *cbc[] = {"-tls1_2", "-cipher", "AES128-SHA:AES256-SHA256:ECDHE-RSA-AES128-SHA",
                         NULL};
    rc = s_client(rsa.port, cbc, "", out, sizeof(out));
    TS_CHECKF(rc != 0 && strstr(out, "Cipher is (NONE)"), "CBC-only client: exit %d: %s", rc, out);
    /* ALPN offering only h2: no common protocol is a fatal alert (RFC 7301) */
    o = verified;
    o.alpn = "h2";
    TS_CHECK_INT(ts_tls_open(&c, rsa.port, &o, T_LIVE), -EPROTO);
    TS_CHECKF(strstr(ts_tls_error(), "no application protocol"), "h2: %s", ts_tls_error());
    /* no ALPN at all is fine: HTTP/1.1 is assumed */
    o.alpn = NULL;
    if (ts_tls_open(&c, rsa.port, &o, T_LIVE) == 0) {
        char a[32];
        TS_CHECK_STR(ts_tls_alpn(&c, a, sizeof(a)), "");
        ts_conn_close(&c);
    } else {
        ts_fail(__FILE__, __LINE__, "no ALPN: %s", ts_tls_error());
    }
    TS_CHECK_INT(ts_https_status(rsa.port, "/health", T_LIVE), 200);
    TS_CHECK(ts_server_wait_log(&rsa, "\"error\":\"SEND_FATAL_ALERT\"", T_LIVE) == 0);
}

static void check_response(struct ts_conn *c, int status, const char *body_has)
{
    struct ts_resp r;
    int rc = ts_read_response(c, &r, false, T_LIVE);
    TS_CHECKF(rc == 0 && r.status == status, "read %d, status %d, want %d", rc, r.status, status);
    if (rc == 0 && body_has)
        TS_CHECKF(r.body && strstr(r.body, body_has), "body: %s", r.body ? r.body : "");
    ts_resp_free(&r);
}

static void test_keepalive_pipelining(void)
{
    struct ts_conn c;
    TS_REQUIRE(ts_tls_open(&c, rsa.port, &verified, T_LIVE) == 0);
    TS_CHECK(ts_conn_send_str(&c, "GET /health HTTP/1.1\r\nHost: t\r\n\r\n"
                                  "GET /nope HTTP/1.1\r\nHost: t\r\n\r\n"
                                  "GET /static/small.txt HTTP/1.1\r\nHost: t\r\n\r\n") == 0);
    check_response(&c, 200, "\"ok\":true");
    check_response(&c, 404, "NOT_FOUND");
    check_response(&c, 200, "hello tls");
    for (int i = 0; i < 20; i++) {
        TS_CHECK(ts_conn_send_str(&c, "GET /ready HTTP/1.1\r\nHost: t\r\n\r\n") == 0);
        check_response(&c, 200, "true");
    }
    /* one byte per TLS record */
    static const char slow[] = "GET /health HTTP/1.1\r\nHost: t\r\n\r\n";
    TS_CHECK(ts_conn_send_slow(&c, slow, sizeof(slow) - 1, 0) == 0);
    check_response(&c, 200, "\"ok\":true");
    TS_CHECK(ts_conn_send_str(&c, req_close) == 0);
    check_response(&c, 200, "\"ok\":true");
    TS_CHECK(ts_conn_expect_eof(&c, T_LIVE) == 0);
    TS_CHECKF(ts_tls_closed_cleanly(&c), "Connection: close without close_notify");
    ts_conn_close(&c);
}

/* Checks a download against the pattern as it arrives, instead of keeping 20 MiB. */
struct pattern_sink {
    uint64_t off;
    long long bad; /* offset of the first wrong byte, or -1 */
};

static size_t pattern_cb(char *p, size_t size, size_t n, void *arg)
{
    struct pattern_sink *ps = arg;
    long long m = ts_pattern_mismatch(p, size * n, ps->off);
    if (m >= 0 && ps->bad < 0)
        ps->bad = (long long)ps->off + m;
    ps->off += size * n;
    return size * n;
}

static void download(int port, const char *path, uint64_t size)
{
    char url[256];
    snprintf(url, sizeof(url), "https://localhost:%d%s", port, path);
    struct ts_xfer x;
    TS_REQUIRE(ts_xfer_init(&x, url, NULL) == 0);
    struct pattern_sink ps = {0, -1};
    curl_easy_setopt(x.easy, CURLOPT_WRITEFUNCTION, pattern_cb);
    curl_easy_setopt(x.easy, CURLOPT_WRITEDATA, &ps);
    curl_easy_setopt(x.easy, CURLOPT_CAINFO, certs.ca);
    CURLcode rc = ts_curl_perform(&x);
    TS_CHECKF(rc == CURLE_OK && x.status == 200, "%s: %s, status %ld", path, curl_easy_strerror(rc),
              x.status);
    TS_CHECKF(ps.off == size, "%s: %llu bytes, want %llu", path, (unsigned long long)ps.off,
              (unsigned long long)size);
    TS_CHECKF(ps.bad < 0, "%s: wrong byte at %lld", path, ps.bad);
    ts_xfer_free(&x);
}

static void test_files(void)
{
    const struct ts_server *servers[] = {&rsa, &ec};
    for (int i = 0; i < 2; i++) {
        download(servers[i]->port, "/static/1m.bin", SIZE_1M);
        download(servers[i]->port, "/static/20m.bin", SIZE_20M);
    }
    struct ts_conn c;
    TS_REQUIRE(ts_tls_open(&c, rsa.port, &verified, T_LIVE) == 0);
    TS_CHECK(ts_conn_send_str(&c, "HEAD /static/20m.bin HTTP/1.1\r\nHost: t\r\n\r\n") == 0);
    struct ts_resp r;
    TS_CHECK(ts_read_response(&c, &r, true, T_LIVE) == 0 && r.status == 200);
    TS_CHECK(ts_resp_header(&r, "content-length") &&
             strtoull(ts_resp_header(&r, "content-length"), NULL, 10) == SIZE_20M);
    ts_resp_free(&r);
    ts_conn_close(&c);
}

/* One request on a fresh verified TLS connection. */
static int tls_exchange(int port, const char *req, struct ts_resp *r)
{
    struct ts_conn c;
    memset(r, 0, sizeof(*r));
    int rc = ts_tls_open(&c, port, &verified, T_LIVE);
    if (rc == 0)
        rc = ts_conn_send_str(&c, req);
    if (rc == 0)
        rc = ts_read_response(&c, r, false, T_LIVE);
    ts_conn_close(&c);
    return rc;
}

static void test_range_etag(void)
{
    struct ts_resp r;
    TS_REQUIRE(tls_exchange(rsa.port,
                            "GET /static/20m.bin HTTP/1.1\r\nHost: t\r\n"
                            "Range: bytes=1048570-3145727\r\n\r\n",
                            &r) == 0);
    TS_CHECK_INT(r.status, 206);
    TS_CHECK_STR(ts_resp_header(&r, "content-range"), "bytes 1048570-3145727/20971520");
    TS_CHECK_INT(r.body_len, 3145727 - 1048570 + 1);
    TS_CHECK(ts_pattern_mismatch(r.body, r.body_len, 1048570) < 0);
    ts_resp_free(&r);
    TS_REQUIRE(tls_exchange(rsa.port,
                            "GET /static/1m.bin HTTP/1.1\r\nHost: t\r\n"
                            "Range: bytes=-100\r\n\r\n",
                            &r) == 0);
    TS_CHECK_INT(r.status, 206);
    TS_CHECK(r.body_len == 100 && ts_pattern_mismatch(r.body, 100, SIZE_1M - 100) < 0);
    ts_resp_free(&r);
    TS_REQUIRE(tls_exchange(rsa.port, "GET /static/1m.bin HTTP/1.1\r\nHost: t\r\n\r\n", &r) == 0);
    char etag[128], req[512];
    snprintf(etag, sizeof(etag), "%s",
             ts_resp_header(&r, "etag") ? ts_resp_header(&r, "etag") : "");
    ts_resp_free(&r);
    TS_REQUIRE(etag[0] == '"');
    snprintf(req, sizeof(req),
             "GET /static/1m.bin HTTP/1.1\r\nHost: t\r\nIf-None-Match: %s\r\n\r\n", etag);
    TS_REQUIRE(tls_exchange(rsa.port, req, &r) == 0);
    TS_CHECK_INT(r.status, 304);
    TS_CHECK_INT(r.body_len, 0);
    ts_resp_free(&r);
    snprintf(req, sizeof(req),
             "GET /static/1m.bin HTTP/1.1\r\nHost: t\r\nIf-Range: %s\r\n"
             "Range: bytes=5-9\r\n\r\n",
             etag);
    TS_REQUIRE(tls_exchange(rsa.port, req, &r) == 0);
    TS_CHECK(r.status == 206 && r.body_len == 5 && ts_pattern_mismatch(r.body, 5, 5) < 0);
    ts_resp_free(&r);
    TS_REQUIRE(tls_exchange(rsa.port,
                            "GET /static/1m.bin HTTP/1.1\r\nHost: t\r\n"
                            "Range: bytes=99999999-\r\n\r\n",
                            &r) == 0);
    TS_CHECK_INT(r.status, 416);
    ts_resp_free(&r);
}

static void test_pipelined_files(void)
{
    struct ts_conn c;
    TS_REQUIRE(ts_tls_open(&c, ec.port, &verified, T_LIVE) == 0);
    TS_CHECK(ts_conn_send_str(&c,
                              "GET /static/1m.bin HTTP/1.1\r\nHost: t\r\n\r\n"
                              "GET /health HTTP/1.1\r\nHost: t\r\n\r\n"
                              "GET /static/1m.bin HTTP/1.1\r\nHost: t\r\nRange: bytes=7-16\r\n\r\n"
                              "GET /static/small.txt HTTP/1.1\r\nHost: t\r\n\r\n"
                              "GET /static/20m.bin HTTP/1.1\r\nHost: t\r\n\r\n") == 0);
    struct ts_resp r;
    TS_CHECK(ts_read_response(&c, &r, false, T_LIVE) == 0 && r.status == 200);
    TS_CHECK(r.body_len == SIZE_1M && ts_pattern_mismatch(r.body, r.body_len, 0) < 0);
    ts_resp_free(&r);
    check_response(&c, 200, "\"ok\":true");
    TS_CHECK(ts_read_response(&c, &r, false, T_LIVE) == 0 && r.status == 206);
    TS_CHECK(r.body_len == 10 && ts_pattern_mismatch(r.body, 10, 7) < 0);
    ts_resp_free(&r);
    check_response(&c, 200, "hello tls");
    TS_CHECK(ts_read_response(&c, &r, false, T_LIVE) == 0 && r.status == 200);
    TS_CHECK(r.body_len == SIZE_20M && ts_pattern_mismatch(r.body, r.body_len, 0) < 0);
    ts_resp_free(&r);
    ts_conn_close(&c);
}

static void test_resumption(void)
{
    static char out[65536];
    char sess[400];
    snprintf(sess, sizeof(sess), "%s/session.pem", certs.dir);
    const char *first[] = {"-tls1_2", "-sess_out", sess, NULL};
    s_client(rsa.port, first, "", out, sizeof(out));
    TS_CHECKF(strstr(out, "\nNew, TLSv1.2"), "first: %s", out);
    /* Every reactor finds the session (the cache is shared): try a few connections. */
    for (int i = 0; i < 4; i++) {
        const char *again[] = {"-tls1_2", "-sess_in", sess, NULL};
        s_client(rsa.port, again, "", out, sizeof(out));
        TS_CHECKF(strstr(out, "\nReused, TLSv1.2"), "resumption %d: %s", i, out);
    }
    /* the same with libssl, and a request on the resumed connection */
    struct ts_conn c;
    TS_REQUIRE(ts_tls_open(&c, ec.port, &verified, T_LIVE) == 0);
    void *s = ts_tls_session(&c);
    ts_tls_shutdown(&c); /* OpenSSL drops a session whose connection ends without this */
    ts_conn_close(&c);
    for (int i = 0; i < 4 && s; i++) {
        struct ts_tls_opts o = verified;
        o.session = s;
        TS_REQUIRE(ts_tls_open(&c, ec.port, &o, T_LIVE) == 0);
        TS_CHECKF(ts_tls_resumed(&c), "libssl resumption %d not resumed", i);
        TS_CHECK(ts_conn_send_str(&c, "GET /health HTTP/1.1\r\nHost: t\r\n\r\n") == 0);
        check_response(&c, 200, "\"ok\":true");
        ts_tls_shutdown(&c);
        ts_conn_close(&c);
    }
    ts_tls_session_free(s);
}

/* Sends bytes on a plain TCP connection; the server must close it without an HTTP answer. */
static void expect_dropped(int port, const void *p, size_t n, const char *what)
{
    struct ts_conn c;
    TS_REQUIRE(ts_conn_open(&c, port) == 0);
    TS_CHECK(ts_conn_send(&c, p, n) == 0);
    long long deadline = ts_now_ms() + T_LIVE;
    while (!c.eof && ts_now_ms() < deadline && ts_conn_fill(&c, T_LIVE) > 0) {
    }
    TS_CHECKF(c.eof, "%s: connection not closed", what);
    TS_CHECKF(!c.buf || !memmem(c.buf, c.len, "HTTP/", 5), "%s: answered in plain HTTP", what);
    ts_conn_close(&c);
}

static void test_garbage(void)
{
    struct ts_conn keep;
    TS_REQUIRE(ts_tls_open(&keep, rsa.port, &verified, T_LIVE) == 0);
    unsigned char junk[3000];
    for (size_t i = 0; i < sizeof(junk); i++)
        junk[i] = (unsigned char)(i * 131 + 7);
    expect_dropped(rsa.port, junk, sizeof(junk), "garbage");
    static const char plain[] = "GET /health HTTP/1.1\r\nHost: t\r\n\r\n";
    expect_dropped(rsa.port, plain, sizeof(plain) - 1, "plain HTTP");
    static const unsigned char bad_len[] = {0x16, 0x03, 0x01, 0xff, 0xff, 1, 2, 3};
    expect_dropped(rsa.port, bad_len, sizeof(bad_len), "oversized record");
    static const unsigned char sslv2[] = {0x80, 0x2e, 0x01, 0x00, 0x02, 0x00, 0x15};
    expect_dropped(rsa.port, sslv2, sizeof(sslv2), "SSLv2 hello");
    unsigned char hello[4096];
    int hl = ts_tls_client_hello(hello, sizeof(hello));
    TS_REQUIRE(hl > 10);
    hello[hl - 3] ^= 0x55; /* a damaged extension */
    hello[9] ^= 0x01;      /* and a wrong handshake length */
    expect_dropped(rsa.port, hello, (size_t)hl, "damaged ClientHello");
    /* the connection opened before is still served, and so are new ones */
    TS_CHECK(ts_conn_send_str(&keep, "GET /health HTTP/1.1\r\nHost: t\r\n\r\n") == 0);
    check_response(&keep, 200, "\"ok\":true");
    ts_conn_close(&keep);
    TS_CHECK_INT(ts_https_status(rsa.port, "/health", T_LIVE), 200);
    TS_CHECK(ts_server_wait_log(&rsa, "\"error\":\"UNSUPPORTED_VERSION\"", T_LIVE) == 0);
}

static void test_leave_midway(void)
{
    int base = ts_server_fd_settled(&rsa);
    unsigned char hello[4096];
    int hl = ts_tls_client_hello(hello, sizeof(hello));
    TS_REQUIRE(hl > 10);
    for (int i = 0; i < 20; i++) { /* ClientHello sent (whole or half), then FIN or RST */
        struct ts_conn c;
        TS_REQUIRE(ts_conn_open(&c, rsa.port) == 0);
        TS_CHECK(ts_conn_send(&c, hello, i % 2 ? (size_t)hl : (size_t)hl / 2) == 0);
        if (i % 4 < 2)
            ts_conn_fill(&c, 200); /* some of the server's flight */
        if (i % 3)
            ts_conn_abort(&c);
        else
            ts_conn_close(&c);
    }
    for (int i = 0; i < 6; i++) { /* a 20 MiB download left after 1 MiB */
        struct ts_conn c;
        TS_REQUIRE(ts_tls_open(&c, rsa.port, &verified, T_LIVE) == 0);
        TS_CHECK(ts_conn_send_str(&c, "GET /static/20m.bin HTTP/1.1\r\nHost: t\r\n\r\n") == 0);
        while (c.len < (1u << 20) && ts_conn_fill(&c, T_LIVE) > 0) {
        }
        TS_CHECK(c.len >= (1u << 20));
        if (i % 2)
            ts_conn_abort(&c);
        else
            ts_conn_close(&c);
    }
    int n = ts_server_wait_fds(&rsa, base, T_LIVE);
    TS_CHECKF(n == base, "server has %d fds, %d before", n, base);
    TS_CHECK_INT(ts_https_status(rsa.port, "/health", T_LIVE), 200);
}

/* --- 200 keep-alive TLS connections at once (libcurl multi) --------------------------------- */

static long run_round(CURLM *m, struct ts_xfer *xs, int n)
{
    for (int i = 0; i < n; i++) {
        ts_xfer_reset(&xs[i]);
        curl_multi_add_handle(m, xs[i].easy);
    }
    long connects = 0;
    int running = n, left = n;
    long long deadline = ts_now_ms() + 2 * T_LIVE;
    while (left > 0 && ts_now_ms() < deadline) {
        curl_multi_perform(m, &running);
        CURLMsg *msg;
        int q;
        while ((msg = curl_multi_info_read(m, &q)) != NULL) {
            if (msg->msg != CURLMSG_DONE)
                continue;
            struct ts_xfer *x;
            long status = 0, c = 0;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&x);
            curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
            curl_easy_getinfo(x->easy, CURLINFO_NUM_CONNECTS, &c);
            if (msg->data.result != CURLE_OK || status != 200 || !x->body ||
                !strstr(x->body, "\"ok\":true"))
                ts_fail(__FILE__, __LINE__, "transfer: %s, status %ld",
                        curl_easy_strerror(msg->data.result), status);
            connects += c;
            curl_multi_remove_handle(m, msg->easy_handle);
            left--;
        }
        if (left > 0)
            curl_multi_poll(m, NULL, 0, 100, NULL);
    }
    TS_CHECKF(left == 0, "%d transfers unfinished", left);
    return connects;
}

static void test_concurrent(void)
{
    long lim = ts_raise_nofile(4096);
    if (lim < NCONC + 200) {
        ts_skip("RLIMIT_NOFILE too low");
        return;
    }
    int base = ts_server_fd_settled(&ec);
    CURLM *m = curl_multi_init();
    curl_multi_setopt(m, CURLMOPT_MAXCONNECTS, (long)NCONC + 50);
    curl_multi_setopt(m, CURLMOPT_MAX_HOST_CONNECTIONS, 0L);
    curl_multi_setopt(m, CURLMOPT_PIPELINING, (long)CURLPIPE_NOTHING);
    struct ts_xfer *xs = calloc(NCONC, sizeof(*xs));
    TS_REQUIRE(xs != NULL);
    char url[128];
    snprintf(url, sizeof(url), "https://localhost:%d/health", ec.port);
    for (int i = 0; i < NCONC; i++) {
        TS_REQUIRE(ts_xfer_init(&xs[i], url, NULL) == 0);
        curl_easy_setopt(xs[i].easy, CURLOPT_CAINFO, certs.ca);
        curl_easy_setopt(xs[i].easy, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    }
    long connects = 0;
    for (int r = 0; r < 3; r++) {
        connects += run_round(m, xs, NCONC);
        if (r == 0) {
            int fds = ts_server_fd_count(&ec);
            TS_CHECKF(fds >= base + NCONC, "server holds %d fds, want >= %d", fds, base + NCONC);
        }
    }
    TS_CHECKF(connects == NCONC, "%ld connections for %d clients: keep-alive broken", connects,
              NCONC);
    for (int i = 0; i < NCONC; i++)
        ts_xfer_free(&xs[i]);
    curl_multi_cleanup(m);
    free(xs);
    int n = ts_server_wait_fds(&ec, base, T_LIVE);
    TS_CHECKF(n == base, "server has %d fds after the clients left, %d before", n, base);
}

static const struct ts_test tests[] = {
    {"curl: GET /health over TLS, chain and host verified (RSA, EC)", test_curl_health},
    {"openssl s_client -tls1_2 -alpn http/1.1: TLS 1.2, ECDHE AES-128-GCM, ALPN", test_s_client},
    {"the server's cipher order wins; AES-256-GCM and ChaCha20 when asked", test_server_order},
    {"refused: TLS 1.3 only, CBC / RSA key exchange only, ALPN h2 only", test_refused},
    {"keep-alive and pipelining over TLS, 1-byte records, close_notify", test_keepalive_pipelining},
    {"1 MiB and 20 MiB files byte for byte over TLS (RSA, EC), HEAD", test_files},
    {"Range, If-None-Match (304), If-Range and 416 over TLS", test_range_etag},
    {"pipelined file and memory responses over TLS", test_pipelined_files},
    {"session resumption: s_client -sess_out / -sess_in Reused, libssl too", test_resumption},
    {"garbage, plain HTTP, bad records: that connection closes, others served", test_garbage},
    {"clients leaving mid-handshake and mid-download: no fd left", test_leave_midway},
    {"200 keep-alive TLS connections at once", test_concurrent},
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
