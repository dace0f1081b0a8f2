/* test_urlguard_curl — the SSRF guard on real libcurl transfers.
 *
 * A small HTTP/1.1 server runs in a thread on 127.0.0.1 (and one on ::1 when the host has IPv6
 * loopback), answering by path: "/" 200 "ok"; "/r/NAME" a 302 to a target from redirect_target();
 * "/len/N", "/close/N", "/chunked/N" N body bytes with a Content-Length, delimited by close, or
 * chunked. Every response closes the connection, so each request is its own connection. The
 * server counts accepted connections and requests; tests assert on those counts and on the
 * refusal the guard recorded, never on elapsed time. Transfers are blocking curl_easy_perform
 * calls (fine in a test; in the gateway ring_curl drives them). Names are pinned with
 * CURLOPT_RESOLVE, so nothing here asks DNS.
 *
 * The server thread never calls cmocka (not thread-safe). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net/urlguard.h"

#define SRV_IO_MS 3000
#define BODY_CAP 1000 /* the guard's max_bytes in these tests */

struct srv {
    int fd;
    int port;
    pthread_t th;
    atomic_int accepts;
    atomic_int requests;
    atomic_int live; /* connection threads running */
    atomic_bool stop;
};

static struct srv srv4, srv6;
static bool have_v6;

/* ---- the server ----------------------------------------------------------------------------- */

static void send_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n > 0) {
        ssize_t w = send(fd, c, n, MSG_NOSIGNAL);
        if (w <= 0)
            return; /* the client gave up (body limits): fine */
        c += w;
        n -= (size_t)w;
    }
}

static void send_str(int fd, const char *s)
{
    send_all(fd, s, strlen(s));
}

/* Reads a request head into buf; false on timeout, EOF or overflow. */
static bool read_head(int fd, char *buf, size_t cap)
{
    size_t len = 0;
    while (len + 1 < cap) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, SRV_IO_MS) != 1)
            return false;
        ssize_t r = recv(fd, buf + len, cap - 1 - len, 0);
        if (r <= 0)
            return false;
        len += (size_t)r;
        buf[len] = '\0';
        if (strstr(buf, "\r\n\r\n"))
            return true;
    }
    return false;
}

static const char *redirect_target(const char *name, int port, char *buf, size_t cap)
{
    static const struct {
        const char *name, *fmt;
    } r[] = {
        {"evil", "http://evil.test:%d/"},
        {"evilkeep", "http://evil.test:%d/keep"},
        {"protorel", "//evil.test:%d/"},
        {"self", "http://allowed.test:%d/"},
        {"rel", "/"},
        {"loop", "/r/loop"},
        {"literal", "http://127.0.0.1:%d/"},
        {"decimal", "http://2130706433:%d/"},
        {"metadata", "http://169.254.169.254/latest/meta-data/"},
        {"file", "file:///etc/passwd"},
        {"gopher", "gopher://127.0.0.1:%d/_x"},
        {"ftp", "ftp://127.0.0.1:%d/x"},
        {"dict", "dict://127.0.0.1:%d/x"},
        {"userinfo", "http://user:pw@allowed.test:%d/"},
    };
    for (size_t i = 0; i < sizeof r / sizeof *r; i++) {
        if (strcmp(name, r[i].name) == 0) {
            snprintf(buf, cap, r[i].fmt, port);
            return buf;
        }
    }
    return NULL;
}

static void send_body(int fd, const char *kind, size_t n)
{
    char chunk[1000], head[200];
    memset(chunk, 'x', sizeof chunk);
    if (strcmp(kind, "len") == 0)
        snprintf(head, sizeof head,
                 "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n"
                 "Connection: close\r\n\r\n",
                 n);
    else if (strcmp(kind, "close") == 0)
        snprintf(head, sizeof head, "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n");
    else
        snprintf(head, sizeof head,
                 "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
                 "Connection: close\r\n\r\n");
    send_str(fd, head);
    bool chunked = strcmp(kind, "chunked") == 0;
    while (n > 0) {
        size_t k = n < sizeof chunk ? n : sizeof chunk;
        if (chunked) {
            snprintf(head, sizeof head, "%zx\r\n", k);
            send_str(fd, head);
        }
        send_all(fd, chunk, k);
        if (chunked)
            send_str(fd, "\r\n");
        n -= k;
    }
    if (chunked)
        send_str(fd, "0\r\n\r\n");
}

static void respond(struct srv *s, int fd, const char *path)
{
    char buf[256], head[512], kind[16];
    size_t n;
    if (strncmp(path, "/r/", 3) == 0 && redirect_target(path + 3, s->port, buf, sizeof buf)) {
        snprintf(head, sizeof head,
                 "HTTP/1.1 302 Found\r\nLocation: %s\r\nContent-Length: 5\r\n"
                 "Connection: close\r\n\r\nmoved",
                 buf);
        send_str(fd, head);
    } else if (sscanf(path, "/%15[a-z]/%zu", kind, &n) == 2 &&
               (!strcmp(kind, "len") || !strcmp(kind, "close") || !strcmp(kind, "chunked"))) {
        send_body(fd, kind, n);
    } else if (strcmp(path, "/") == 0) {
        send_str(fd, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
    } else {
        send_str(fd, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    }
}

struct conn {
    struct srv *s;
    int fd;
};

/* One connection: requests until one that does not keep the connection open. */
static void *conn_main(void *arg)
{
    struct conn *c = arg;
    char req[8192], path[1024];
    while (read_head(c->fd, req, sizeof req) && sscanf(req, "GET %1023s HTTP/1.1", path) == 1) {
        atomic_fetch_add(&c->s->requests, 1);
        if (strcmp(path, "/keep") != 0) {
            respond(c->s, c->fd, path);
            break;
        }
        send_str(c->fd, "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nkept");
    }
    shutdown(c->fd, SHUT_WR);
    close(c->fd);
    atomic_fetch_sub(&c->s->live, 1);
    free(c);
    return NULL;
}

static void *srv_main(void *arg)
{
    struct srv *s = arg;
    while (!atomic_load(&s->stop)) {
        struct pollfd p = {.fd = s->fd, .events = POLLIN};
        if (poll(&p, 1, 50) != 1)
            continue;
        int fd = accept4(s->fd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0)
            continue;
        atomic_fetch_add(&s->accepts, 1);
        struct conn *c = malloc(sizeof *c);
        pthread_t th;
        pthread_attr_t at;
        if (!c) {
            close(fd);
            continue;
        }
        *c = (struct conn){.s = s, .fd = fd};
        atomic_fetch_add(&s->live, 1);
        pthread_attr_init(&at);
        pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
        if (pthread_create(&th, &at, conn_main, c) != 0) {
            atomic_fetch_sub(&s->live, 1);
            close(fd);
            free(c);
        }
        pthread_attr_destroy(&at);
    }
    return NULL;
}

static int srv_start(struct srv *s, int family)
{
    struct sockaddr_storage ss = {0};
    socklen_t len;
    int one = 1;
    if (family == AF_INET) {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET;
        a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        len = sizeof *a;
    } else {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_family = AF_INET6;
        a->sin6_addr = in6addr_loopback;
        len = sizeof *a;
    }
    memset(s, 0, sizeof *s);
    s->fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s->fd < 0)
        return -1;
    setsockopt(s->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(s->fd, (struct sockaddr *)&ss, len) != 0 || listen(s->fd, 64) != 0 ||
        getsockname(s->fd, (struct sockaddr *)&ss, &len) != 0) {
        close(s->fd);
        return -1;
    }
    s->port = ntohs(family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
                                      : ((struct sockaddr_in6 *)&ss)->sin6_port);
    if (pthread_create(&s->th, NULL, srv_main, s) != 0) {
        close(s->fd);
        return -1;
    }
    return 0;
}

static void srv_stop(struct srv *s)
{
    atomic_store(&s->stop, true);
    pthread_join(s->th, NULL);
    close(s->fd);
    /* every client is gone by now, so each connection thread sees EOF and ends */
    for (int i = 0; i < 2 * SRV_IO_MS && atomic_load(&s->live) > 0; i++)
        usleep(1000);
}

static int setup(void **state)
{
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK || srv_start(&srv4, AF_INET) != 0)
        return -1;
    have_v6 = srv_start(&srv6, AF_INET6) == 0;
    return 0;
}

static int teardown(void **state)
{
    srv_stop(&srv4);
    if (have_v6)
        srv_stop(&srv6);
    curl_global_cleanup();
    return 0;
}

/* ---- a guarded transfer --------------------------------------------------------------------- */

struct body {
    char data[4 * BODY_CAP];
    size_t len;
};

static size_t body_cb(char *p, size_t size, size_t nmemb, void *ud)
{
    struct body *b = ud;
    size_t n = size * nmemb;
    if (n > sizeof b->data - b->len)
        return 0;
    memcpy(b->data + b->len, p, n);
    b->len += n;
    return n;
}

struct xfer {
    struct urlguard g;
    struct urlguard_ctx ctx;
    struct body body;
    CURLcode rc;
    long status;
    char effective[512];
    char msg[URLGUARD_REASON_CAP + 64];
    int accepts, requests; /* on srv4 during the transfer */
};

static void guard(struct xfer *x, const char *allowed, bool follow)
{
    struct urlguard_config c;
    char err[128];
    memset(x, 0, sizeof *x);
    urlguard_config_defaults(&c);
    c.allowed = allowed;
    c.follow_redirects = follow;
    c.max_bytes = BODY_CAP;
    c.connect_timeout_ms = 60000; /* a refused connect must not depend on it */
    c.timeout_ms = 60000;
    assert_int_equal(urlguard_init(&x->g, &c, err, sizeof err), 0);
}

/* Runs url through curl with the guard applied (no precheck: this exercises the connect-time
 * layer). %d in url is srv4's port; resolve pins "name" to 127.0.0.1 at that port. */
static void run(struct xfer *x, const char *url_fmt, const char *const *resolve)
{
    char url[512], pin[4][128];
    struct curl_slist *rs = NULL;
    snprintf(url, sizeof url, url_fmt, srv4.port);
    for (int i = 0; resolve && resolve[i]; i++) {
        snprintf(pin[i], sizeof pin[i], "%s:%d:127.0.0.1", resolve[i], srv4.port);
        rs = curl_slist_append(rs, pin[i]);
    }
    CURL *e = curl_easy_init();
    assert_non_null(e);
    int a0 = atomic_load(&srv4.accepts), r0 = atomic_load(&srv4.requests);
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_RESOLVE, rs);
    urlguard_ctx_init(&x->ctx, body_cb, &x->body);
    assert_int_equal(urlguard_curl_apply(e, &x->g, &x->ctx), 0);
    x->rc = curl_easy_perform(e);
    urlguard_ctx_finish(&x->ctx, x->rc);
    urlguard_ctx_message(&x->ctx, x->rc, x->msg, sizeof x->msg);
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &x->status);
    char *eff = NULL;
    curl_easy_getinfo(e, CURLINFO_EFFECTIVE_URL, &eff);
    snprintf(x->effective, sizeof x->effective, "%s", eff ? eff : "");
    curl_easy_cleanup(e);
    curl_slist_free_all(rs);
    x->accepts = atomic_load(&srv4.accepts) - a0;
    x->requests = atomic_load(&srv4.requests) - r0;
}

/* The transfer was refused with exactly this reason. */
static void expect_refused(const struct xfer *x, enum urlguard_rc rc, const char *reason_fmt)
{
    char want[URLGUARD_REASON_CAP], msg[URLGUARD_REASON_CAP + 64];
    snprintf(want, sizeof want, reason_fmt, srv4.port);
    assert_int_not_equal(x->rc, CURLE_OK);
    if (x->ctx.rc != rc || strcmp(x->ctx.reason, want) != 0)
        fail_msg("got %s \"%s\" (curl: %s), want %s \"%s\"", urlguard_rc_name(x->ctx.rc),
                 x->ctx.reason, curl_easy_strerror(x->rc), urlguard_rc_name(rc), want);
    snprintf(msg, sizeof msg, "%s: %s", urlguard_rc_name(rc), want);
    assert_string_equal(x->msg, msg);
}

static void expect_ok(const struct xfer *x, const char *body)
{
    if (x->rc != CURLE_OK || x->ctx.rc != URLGUARD_OK)
        fail_msg("curl: %s, guard: %s", curl_easy_strerror(x->rc), x->msg);
    assert_int_equal(x->status, 200);
    assert_int_equal(x->body.len, strlen(body));
    assert_memory_equal(x->body.data, body, x->body.len);
    assert_string_equal(x->msg, "");
}

/* ---- direct addresses ----------------------------------------------------------------------- */

static void loopback_refused(void **state)
{
    static struct xfer x;
    guard(&x, NULL, false);
    run(&x, "http://127.0.0.1:%d/", NULL);
    assert_int_equal(x.rc, CURLE_COULDNT_CONNECT);
    expect_refused(&x, URLGUARD_BLOCKED, "127.0.0.1 is a loopback address");
    assert_string_equal(x.msg, "SSRF_BLOCKED: 127.0.0.1 is a loopback address");
    assert_int_equal(x.accepts, 0); /* refused before connect(): the server saw nothing */
}

static void ipv6_loopback_refused(void **state)
{
    static struct xfer x;
    char url[64];
    if (!have_v6)
        skip();
    guard(&x, NULL, false);
    int a0 = atomic_load(&srv6.accepts);
    snprintf(url, sizeof url, "http://[::1]:%d/", srv6.port);
    run(&x, url, NULL);
    assert_int_equal(x.rc, CURLE_COULDNT_CONNECT);
    expect_refused(&x, URLGUARD_BLOCKED, "::1 is a loopback address");
    assert_int_equal(atomic_load(&srv6.accepts), a0);
}

static void ipv4_spellings_refused(void **state)
{
    static struct xfer x;
    static const char *urls[] = {"http://2130706433:%d/", "http://0x7f.1:%d/",
                                 "http://017700000001:%d/", "http://127.1:%d/"};
    for (size_t i = 0; i < sizeof urls / sizeof *urls; i++) {
        guard(&x, NULL, false);
        run(&x, urls[i], NULL);
        expect_refused(&x, URLGUARD_BLOCKED, "127.0.0.1 is a loopback address");
        assert_int_equal(x.accepts, 0);
    }
}

/* Not routable from a test machine: without the guard these would hang until the (60 s)
 * connect timeout; refused, they fail at once with COULDNT_CONNECT and a recorded reason. */
static void metadata_and_private_refused(void **state)
{
    static struct xfer x;
    guard(&x, NULL, false);
    run(&x, "http://169.254.169.254/latest/meta-data/", NULL);
    assert_int_equal(x.rc, CURLE_COULDNT_CONNECT);
    expect_refused(&x, URLGUARD_BLOCKED,
                   "169.254.169.254 is a link-local (cloud metadata) address");
    guard(&x, NULL, false);
    run(&x, "http://10.1.2.3:%d/", NULL);
    assert_int_equal(x.rc, CURLE_COULDNT_CONNECT);
    expect_refused(&x, URLGUARD_BLOCKED, "10.1.2.3 is a private address");
}

/* ---- names ---------------------------------------------------------------------------------- */

static void localhost_refused(void **state)
{
    static struct xfer x;
    guard(&x, NULL, false);
    run(&x, "http://localhost:%d/", NULL);
    assert_int_equal(x.rc, CURLE_COULDNT_CONNECT);
    assert_int_equal(x.ctx.rc, URLGUARD_BLOCKED);
    /* curl may try ::1 or 127.0.0.1 first: the first refusal is the one recorded */
    if (strcmp(x.ctx.reason, "127.0.0.1 is a loopback address (resolved from localhost)") != 0 &&
        strcmp(x.ctx.reason, "::1 is a loopback address (resolved from localhost)") != 0)
        fail_msg("reason \"%s\"", x.ctx.reason);
    assert_int_equal(x.accepts, 0);
}

/* A name passes validation (no DNS there) and is refused when it resolves to loopback at
 * connect time: what a DNS rebinding attack looks like from here. */
static void name_to_loopback_refused(void **state)
{
    static struct xfer x;
    static const char *pins[] = {"evil.test", NULL};
    struct urlguard_url u;
    char url[128], err[256];
    guard(&x, NULL, false);
    snprintf(url, sizeof url, "http://evil.test:%d/", srv4.port);
    assert_int_equal(urlguard_precheck(&x.g, url, &u, err, sizeof err), URLGUARD_OK);
    run(&x, u.url, pins);
    assert_int_equal(x.rc, CURLE_COULDNT_CONNECT);
    expect_refused(&x, URLGUARD_BLOCKED,
                   "127.0.0.1 is a loopback address (resolved from "
                   "evil.test)");
    assert_int_equal(x.accepts, 0);
}

/* ---- allowlisted receivers ------------------------------------------------------------------ */

static void allowlisted_receiver_ok(void **state)
{
    static struct xfer x;
    static const char *pins[] = {"allowed.test", NULL};
    guard(&x, "127.0.0.1", false);
    run(&x, "http://127.0.0.1:%d/", NULL);
    expect_ok(&x, "ok");
    guard(&x, "allowed.test", false);
    run(&x, "http://allowed.test:%d/", pins);
    expect_ok(&x, "ok");
    guard(&x, "*.test", false);
    run(&x, "http://ALLOWED.Test:%d/", pins);
    expect_ok(&x, "ok");
    static const char *dotted[] = {"allowed.test.", NULL};
    guard(&x, "allowed.test", false);
    run(&x, "http://allowed.test.:%d/", dotted);
    expect_ok(&x, "ok");
    guard(&x, "127.0.0.0/8", false);
    run(&x, "http://2130706433:%d/", NULL);
    expect_ok(&x, "ok");
}

/* http_proxy & co. in the environment must not route the request elsewhere. */
static void proxy_environment_ignored(void **state)
{
    static struct xfer x;
    static const char *vars[] = {"http_proxy", "HTTPS_PROXY", "ALL_PROXY", "all_proxy"};
    for (size_t i = 0; i < sizeof vars / sizeof *vars; i++)
        setenv(vars[i], "http://192.0.2.1:9/", 1);
    guard(&x, "127.0.0.1", false);
    run(&x, "http://127.0.0.1:%d/", NULL);
    for (size_t i = 0; i < sizeof vars / sizeof *vars; i++)
        unsetenv(vars[i]);
    expect_ok(&x, "ok");
}

/* ---- redirects ------------------------------------------------------------------------------ */

static const char *const both[] = {"allowed.test", "evil.test", NULL};

/* The first hop is allowlisted (a name pinned to loopback); its redirect goes to a name that
 * is not and resolves to loopback too. The connect-time check must see the new host: curl
 * updates CURLINFO_EFFECTIVE_URL before it connects for the redirect. */
static void redirect_to_loopback_name_refused(void **state)
{
    static struct xfer x;
    guard(&x, "allowed.test", true);
    run(&x, "http://allowed.test:%d/r/evil", both);
    assert_int_equal(x.rc, CURLE_COULDNT_CONNECT);
    expect_refused(&x, URLGUARD_BLOCKED,
                   "127.0.0.1 is a loopback address (resolved from "
                   "evil.test)");
    assert_int_equal(x.requests, 1);
    guard(&x, "allowed.test", true); /* a scheme-relative Location */
    run(&x, "http://allowed.test:%d/r/protorel", both);
    expect_refused(&x, URLGUARD_BLOCKED,
                   "127.0.0.1 is a loopback address (resolved from "
                   "evil.test)");
    assert_int_equal(x.requests, 1);
    guard(&x, "allowed.test", true);
    run(&x, "http://allowed.test:%d/r/evil", both);
    char want[64];
    snprintf(want, sizeof want, "http://evil.test:%d/", srv4.port);
    assert_string_equal(x.effective, want);
}

/* An IP entry allows that literal, not names that resolve to it. */
static void ip_allowlist_does_not_cover_names(void **state)
{
    static struct xfer x;
    guard(&x, "127.0.0.1", true);
    run(&x, "http://127.0.0.1:%d/r/evil", both);
    expect_refused(&x, URLGUARD_BLOCKED,
                   "127.0.0.1 is a loopback address (resolved from "
                   "evil.test)");
    assert_int_equal(x.requests, 1);
}

/* A target whose address is known from its text is refused before curl follows it. */
static void redirect_to_blocked_literal_refused(void **state)
{
    static struct xfer x;
    guard(&x, "allowed.test", true);
    run(&x, "http://allowed.test:%d/r/literal", both);
    expect_refused(&x, URLGUARD_BLOCKED,
                   "redirect to http://127.0.0.1:%d/ refused: 127.0.0.1 is a loopback address");
    assert_int_equal(x.requests, 1);
    guard(&x, "allowed.test", true);
    run(&x, "http://allowed.test:%d/r/decimal", both);
    expect_refused(&x, URLGUARD_BLOCKED,
                   "redirect to http://127.0.0.1:%d/ refused: 127.0.0.1 is a loopback address");
    guard(&x, "allowed.test", true);
    run(&x, "http://allowed.test:%d/r/metadata", both);
    expect_refused(&x, URLGUARD_BLOCKED,
                   "redirect to http://169.254.169.254/latest/meta-data/ refused: "
                   "169.254.169.254 is a link-local (cloud metadata) address");
    assert_int_equal(x.requests, 1);
}

static void redirect_scheme_refused(void **state)
{
    static struct xfer x;
    static const char *cases[][2] = {
        {"file", "redirect to file:///etc/passwd refused: scheme \"file\" is not allowed "
                 "(http and https only)"},
        {"gopher", "redirect to gopher://127.0.0.1:%d/_x refused: scheme \"gopher\" is not "
                   "allowed (http and https only)"},
        {"ftp", "redirect to ftp://127.0.0.1:%d/x refused: scheme \"ftp\" is not allowed "
                "(http and https only)"},
        {"dict", "redirect to dict://127.0.0.1:%d/x refused: scheme \"dict\" is not allowed "
                 "(http and https only)"},
        {"userinfo", "redirect to http://user:pw@allowed.test:%d/ refused: credentials "
                     "(user:password@) are not allowed in the URL"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char url[64];
        snprintf(url, sizeof url, "http://allowed.test:%%d/r/%s", cases[i][0]);
        guard(&x, "allowed.test,127.0.0.1", true);
        run(&x, url, both);
        expect_refused(&x, URLGUARD_BLOCKED, cases[i][1]);
        assert_int_equal(x.requests, 1);
        assert_int_equal(x.accepts, 1);
    }
}

static void redirect_within_allowlist_ok(void **state)
{
    static struct xfer x;
    guard(&x, "allowed.test", true);
    run(&x, "http://allowed.test:%d/r/self", both);
    expect_ok(&x, "ok");
    assert_int_equal(x.requests, 2);
    guard(&x, "allowed.test", true);
    run(&x, "http://allowed.test:%d/r/rel", both);
    expect_ok(&x, "ok");
    assert_int_equal(x.requests, 2);
}

/* Webhooks do not follow: the 302 is the answer, and its target is never contacted. */
static void webhook_does_not_follow(void **state)
{
    static struct xfer x;
    guard(&x, "allowed.test", false);
    run(&x, "http://allowed.test:%d/r/evil", both);
    assert_int_equal(x.rc, CURLE_OK);
    assert_int_equal(x.ctx.rc, URLGUARD_OK);
    assert_int_equal(x.status, 302);
    assert_int_equal(x.requests, 1);
    /* even a Location a follower would refuse is just a header here */
    guard(&x, "allowed.test", false);
    run(&x, "http://allowed.test:%d/r/file", both);
    assert_int_equal(x.rc, CURLE_OK);
    assert_int_equal(x.status, 302);
}

static void too_many_redirects(void **state)
{
    static struct xfer x;
    guard(&x, "allowed.test", true);
    run(&x, "http://allowed.test:%d/r/loop", both);
    assert_int_equal(x.rc, CURLE_TOO_MANY_REDIRECTS);
    expect_refused(&x, URLGUARD_TOO_MANY_REDIRECTS, "more than 3 redirects");
    assert_int_equal(x.requests, 4);
}

/* ---- a shared connection pool --------------------------------------------------------------- */

static size_t discard_cb(char *p, size_t size, size_t nmemb, void *ud)
{
    return size * nmemb;
}

/* Runs e to completion on m, as ring_curl runs transfers on a reactor's multi (blocking here). */
static CURLcode multi_run(CURLM *m, CURL *e)
{
    int running = 1, left;
    CURLcode rc = CURLE_FAILED_INIT;
    CURLMsg *msg;
    assert_int_equal(curl_multi_add_handle(m, e), CURLM_OK);
    while (running) {
        assert_int_equal(curl_multi_perform(m, &running), CURLM_OK);
        if (running)
            curl_multi_poll(m, NULL, 0, 1000, NULL);
    }
    while ((msg = curl_multi_info_read(m, &left)) != NULL) {
        if (msg->msg == CURLMSG_DONE && msg->easy_handle == e)
            rc = msg->data.result;
    }
    curl_multi_remove_handle(m, e);
    return rc;
}

static CURL *pool_easy(const char *path, struct curl_slist *pins)
{
    char url[128];
    CURL *e = curl_easy_init();
    assert_non_null(e);
    snprintf(url, sizeof url, "http://%s:%d%s",
             strncmp(path, "/r/", 3) ? "evil.test" : "allowed.test", srv4.port, path);
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_RESOLVE, pins);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard_cb);
    return e;
}

/* In the gateway one multi handle per reactor carries every transfer, so its connection pool
 * holds keep-alive connections that unguarded calls (ComfyUI backends) opened. A guarded
 * transfer to the same host name, directly or by a redirect, could ride on one of those
 * without curl opening a socket; the pre-request check sees the connection's address then. */
static void pooled_connection_checked(void **state)
{
    static struct xfer x;
    char pin[64];
    snprintf(pin, sizeof pin, "evil.test:%d:127.0.0.1", srv4.port);
    struct curl_slist *pins = curl_slist_append(NULL, pin);
    snprintf(pin, sizeof pin, "allowed.test:%d:127.0.0.1", srv4.port);
    pins = curl_slist_append(pins, pin);
    CURLM *m = curl_multi_init();
    assert_non_null(m);
    int a0 = atomic_load(&srv4.accepts);
    for (int i = 0; i < 2; i++) { /* unguarded: the second reuses the first's connection */
        CURL *e = pool_easy("/keep", pins);
        assert_int_equal(multi_run(m, e), CURLE_OK);
        curl_easy_cleanup(e);
    }
    assert_int_equal(atomic_load(&srv4.accepts) - a0, 1);
    static const char *cases[][2] = {
        {"/keep", NULL},
        {"/r/evilkeep", "allowed.test"},
    };
    for (int i = 0; i < 2; i++) {
        guard(&x, cases[i][1], true);
        int r0 = atomic_load(&srv4.requests);
        CURL *e = pool_easy(cases[i][0], pins);
        urlguard_ctx_init(&x.ctx, body_cb, &x.body);
        assert_int_equal(urlguard_curl_apply(e, &x.g, &x.ctx), 0);
        x.rc = multi_run(m, e);
        urlguard_ctx_finish(&x.ctx, x.rc);
        urlguard_ctx_message(&x.ctx, x.rc, x.msg, sizeof x.msg);
        curl_easy_cleanup(e);
        expect_refused(&x, URLGUARD_BLOCKED,
                       "127.0.0.1 is a loopback address (resolved from evil.test)");
        assert_int_equal(atomic_load(&srv4.requests) - r0, i); /* /keep never asked */
    }
    curl_multi_cleanup(m);
    curl_slist_free_all(pins);
}

/* ---- schemes -------------------------------------------------------------------------------- */

/* Refused at validation with a reason; and if a caller skipped validation, curl's protocol
 * list still refuses them without a connection. */
static void direct_scheme_refused(void **state)
{
    static struct xfer x;
    static const char *urls[] = {"file:///etc/passwd", "gopher://127.0.0.1:%d/_x",
                                 "ftp://127.0.0.1:%d/x"};
    static const char *names[] = {"file", "gopher", "ftp"};
    for (size_t i = 0; i < sizeof urls / sizeof *urls; i++) {
        char url[128], err[256], want[128];
        struct urlguard_url u;
        guard(&x, "127.0.0.1", true);
        snprintf(url, sizeof url, urls[i], srv4.port);
        assert_int_equal(urlguard_precheck(&x.g, url, &u, err, sizeof err), URLGUARD_BAD_URL);
        snprintf(want, sizeof want, "scheme \"%s\" is not allowed (http and https only)", names[i]);
        assert_string_equal(err, want);
        run(&x, urls[i], NULL);
        assert_int_equal(x.rc, CURLE_UNSUPPORTED_PROTOCOL);
        assert_int_equal(x.accepts, 0);
        assert_int_equal(x.body.len, 0);
    }
}

/* ---- body limit ----------------------------------------------------------------------------- */

static void body_limit(void **state)
{
    static struct xfer x;
    static const char *kinds[] = {"len", "close", "chunked"};
    for (size_t i = 0; i < 3; i++) {
        char url[64];
        /* exactly at the limit: fine */
        snprintf(url, sizeof url, "http://127.0.0.1:%%d/%s/%d", kinds[i], BODY_CAP);
        guard(&x, "127.0.0.1", false);
        run(&x, url, NULL);
        assert_int_equal(x.rc, CURLE_OK);
        assert_int_equal(x.ctx.rc, URLGUARD_OK);
        assert_int_equal(x.body.len, BODY_CAP);
        /* one byte over, and far over */
        for (int over = 1; over <= 3 * BODY_CAP; over += 3 * BODY_CAP - 1) {
            snprintf(url, sizeof url, "http://127.0.0.1:%%d/%s/%d", kinds[i], BODY_CAP + over);
            guard(&x, "127.0.0.1", false);
            run(&x, url, NULL);
            assert_int_equal(x.ctx.rc, URLGUARD_TOO_BIG);
            /* with a Content-Length curl refuses before the body; else our count does */
            if (i == 0) {
                assert_int_equal(x.rc, CURLE_FILESIZE_EXCEEDED);
                expect_refused(&x, URLGUARD_TOO_BIG,
                               "response body larger than 1000 bytes (Content-Length)");
            } else {
                assert_int_equal(x.rc, CURLE_WRITE_ERROR);
                expect_refused(&x, URLGUARD_TOO_BIG, "response body larger than 1000 bytes");
            }
            assert_true(x.body.len <= BODY_CAP);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(loopback_refused),
        cmocka_unit_test(ipv6_loopback_refused),
        cmocka_unit_test(ipv4_spellings_refused),
        cmocka_unit_test(metadata_and_private_refused),
        cmocka_unit_test(localhost_refused),
        cmocka_unit_test(name_to_loopback_refused),
        cmocka_unit_test(allowlisted_receiver_ok),
        cmocka_unit_test(proxy_environment_ignored),
        cmocka_unit_test(redirect_to_loopback_name_refused),
        cmocka_unit_test(ip_allowlist_does_not_cover_names),
        cmocka_unit_test(redirect_to_blocked_literal_refused),
        cmocka_unit_test(redirect_scheme_refused),
        cmocka_unit_test(redirect_within_allowlist_ok),
        cmocka_unit_test(webhook_does_not_follow),
        cmocka_unit_test(too_many_redirects),
        cmocka_unit_test(pooled_connection_checked),
        cmocka_unit_test(direct_scheme_refused),
        cmocka_unit_test(body_limit),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
