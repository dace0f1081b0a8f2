/* test_comfy_ws — the ComfyUI WebSocket client.
 *
 * Pure parts (binary messages, accept key, 101 checks) are tested directly; the .c is included so
 * its static helpers are reachable. The client is driven by a real ring in the main thread
 * against a scripted server in a second thread on 127.0.0.1. The server writes frames by hand
 * (not wslay) so it can misbehave on purpose; it never calls cmocka (not thread-safe) but records
 * its first failure in srv.err, which the main thread checks after joining it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <poll.h>
#include <pthread.h>

#include "comfy/comfy_ws.c"

#define WATCHDOG_MS 5000
#define SRV_WAIT_MS 3000
#define MAX_MSGS 16

/* --- pure helpers ---------------------------------------------------------------------------- */

/* Transcript 14: GetImageSize's TEXT frame, 45 bytes, first8_hex 0000000300000001, node "2". */
static const char T14_TEXT[] = "width: 48, height: 32\n batch size: 3";

static size_t t14_frame(unsigned char *b)
{
    static const unsigned char head[] = {0, 0, 0, 3, 0, 0, 0, 1, '2'};
    memcpy(b, head, sizeof(head));
    memcpy(b + sizeof(head), T14_TEXT, sizeof(T14_TEXT) - 1);
    return sizeof(head) + sizeof(T14_TEXT) - 1;
}

static void binary_transcript_14(void **state)
{
    unsigned char b[64];
    size_t n = t14_frame(b);
    assert_int_equal(n, 45);
    struct comfy_ws_binary m;
    assert_int_equal(comfy_ws_binary_parse(b, n, &m), 0);
    assert_int_equal(m.type, COMFY_WS_BIN_TEXT);
    assert_int_equal(m.node_id_len, 1);
    assert_memory_equal(m.node_id, "2", 1);
    assert_int_equal(m.len, strlen(T14_TEXT));
    assert_memory_equal(m.data, T14_TEXT, m.len);
    for (size_t cut = 0; cut < 9; cut++) /* shorter than its own header says */
        assert_int_equal(comfy_ws_binary_parse(b, cut, &m), -EBADMSG);
    assert_int_equal(comfy_ws_binary_parse(b, 9, &m), 0); /* node id, empty text */
    assert_int_equal(m.len, 0);
    b[4] = 0xff; /* node id length past the end */
    assert_int_equal(comfy_ws_binary_parse(b, n, &m), -EBADMSG);
}

static void binary_images(void **state)
{
    const unsigned char jpeg[] = {0, 0, 0, 1, 0, 0, 0, 1, 0xff, 0xd8, 0xff};
    struct comfy_ws_binary m;
    assert_int_equal(comfy_ws_binary_parse(jpeg, sizeof(jpeg), &m), 0);
    assert_int_equal(m.type, COMFY_WS_BIN_PREVIEW_IMAGE);
    assert_int_equal(m.image_format, COMFY_WS_IMAGE_JPEG);
    assert_int_equal(m.len, 3);
    assert_ptr_equal(m.data, jpeg + 8);
    assert_null(m.node_id);

    const unsigned char png[] = {0, 0, 0, 2, 0, 0, 0, 2, 0x89, 'P', 'N', 'G'};
    assert_int_equal(comfy_ws_binary_parse(png, sizeof(png), &m), 0);
    assert_int_equal(m.type, COMFY_WS_BIN_UNENCODED_PREVIEW_IMAGE);
    assert_int_equal(m.image_format, COMFY_WS_IMAGE_PNG);
    assert_int_equal(m.len, 4);
    assert_int_equal(comfy_ws_binary_parse(png, 7, &m), -EBADMSG);

    const unsigned char meta[] = {0, 0, 0, 4, 0, 0, 0, 2, '{', '}', 0xff, 0xd8};
    assert_int_equal(comfy_ws_binary_parse(meta, sizeof(meta), &m), 0);
    assert_int_equal(m.type, COMFY_WS_BIN_PREVIEW_WITH_METADATA);
    assert_int_equal(m.meta_len, 2);
    assert_memory_equal(m.meta, "{}", 2);
    assert_int_equal(m.len, 2);
    assert_int_equal(comfy_ws_binary_parse(meta, 9, &m), -EBADMSG);

    const unsigned char other[] = {0, 0, 0, 9, 'x'}; /* unknown: payload after the type */
    assert_int_equal(comfy_ws_binary_parse(other, sizeof(other), &m), 0);
    assert_int_equal(m.type, 9);
    assert_int_equal(m.len, 1);
    assert_int_equal(comfy_ws_binary_parse(other, 4, &m), 0);
    assert_int_equal(m.len, 0);
}

static void base64_and_accept(void **state)
{
    static const char *const v[][2] = {{"", ""},
                                       {"f", "Zg=="},
                                       {"fo", "Zm8="},
                                       {"foo", "Zm9v"},
                                       {"foob", "Zm9vYg=="},
                                       {"fooba", "Zm9vYmE="},
                                       {"foobar", "Zm9vYmFy"}}; /* RFC 4648 section 10 */
    char out[32];
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        b64_encode((const unsigned char *)v[i][0], strlen(v[i][0]), out);
        assert_string_equal(out, v[i][1]);
    }
    ws_accept_for("dGhlIHNhbXBsZSBub25jZQ==", out); /* RFC 6455 section 1.3 */
    assert_string_equal(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

#define ACC "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
#define GOOD_HEAD                                                                                  \
    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: upgrade\r\n"            \
    "Sec-WebSocket-Accept: " ACC "\r\nDate: Mon, 23 Nov 2026 08:56:26 GMT\r\n"                     \
    "Server: Python/3.11 aiohttp/3.8.4\r\n\r\n"

static int head(const char *s, int *status)
{
    return head_check(s, strlen(s), ACC, status);
}

static void handshake_response_checks(void **state)
{
    int st;
    assert_int_equal(head(GOOD_HEAD, &st), 0);
    assert_int_equal(st, 101);
    assert_int_equal(
        head("HTTP/1.1 101\r\nupgrade: WebSocket\r\nCONNECTION: keep-alive, Upgrade\r\n"
             "sec-websocket-accept:   " ACC "  \r\n\r\n",
             &st),
        0);
    static const char *const bad[] = {
        "HTTP/1.1 101 OK\r\nUpgrade: websocket\r\nConnection: upgrade\r\n"
        "Sec-WebSocket-Accept: AAAAMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n", /* wrong accept */
        "HTTP/1.1 101 OK\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n",
        "HTTP/1.1 101 OK\r\nConnection: upgrade\r\nSec-WebSocket-Accept: " ACC "\r\n\r\n",
        "HTTP/1.1 101 OK\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: " ACC "\r\n\r\n",
        "HTTP/1.1 101 OK\r\nUpgrade: websocket\r\nConnection: keep-alive\r\n"
        "Sec-WebSocket-Accept: " ACC "\r\n\r\n",
        "HTTP/1.1 101 OK\r\nUpgrade: websocket\r\nConnection: upgrade\r\n"
        "Sec-WebSocket-Accept: " ACC "\r\nSec-WebSocket-Accept: " ACC "\r\n\r\n", /* twice */
        "HTTP/1.1 101 OK\r\nUpgrade: h2c\r\nConnection: upgrade\r\n"
        "Sec-WebSocket-Accept: " ACC "\r\n\r\n",
        "HTTP/1.0 101 OK\r\nUpgrade: websocket\r\nConnection: upgrade\r\n"
        "Sec-WebSocket-Accept: " ACC "\r\n\r\n",
        "HTTP/1.1 1011 OK\r\nUpgrade: websocket\r\nConnection: upgrade\r\n"
        "Sec-WebSocket-Accept: " ACC "\r\n\r\n",
        "HTTP/1.1 101 OK\nUpgrade: websocket\r\nConnection: upgrade\r\n" /* bare LF */
        "Sec-WebSocket-Accept: " ACC "\r\n\r\n",
        "HTTP/1.1 101 OK\r\nUpgrade: websocket\r\n x-folded\r\nConnection: upgrade\r\n"
        "Sec-WebSocket-Accept: " ACC "\r\n\r\n", /* obs-fold */
        "HTTP/1.1 101 OK\r\nUpgrade : websocket\r\nConnection: upgrade\r\n"
        "Sec-WebSocket-Accept: " ACC "\r\n\r\n", /* space before the colon */
        "HTTP/1.1 101 OK\r\nUpgrade: websocket\r\nno colon here\r\nConnection: upgrade\r\n"
        "Sec-WebSocket-Accept: " ACC "\r\n\r\n",
        "HTTP/1.1 101 OK\r\nUpgrade: websocket\r\nConnection: upgrade\r\n"
        "Sec-WebSocket-Accept: " ACC "\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n",
        "HTTP/1.1 101 OK\r\nUpgrade: websocket\r\nConnection: upgrade\r\n"
        "Sec-WebSocket-Accept: " ACC "\r\nSec-WebSocket-Protocol: chat\r\n\r\n",
        "HTTP/1.1 101 OK\r\nUpgrade: websocket\r\nConnection: upgrade\r\n"
        "Sec-WebSocket-Accept: " ACC "\r\n", /* no blank line */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (head(bad[i], &st) != -EPROTO)
            fail_msg("accepted bad response #%zu", i);
    }
    assert_int_equal(head("HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n", &st), -EPROTO);
    assert_int_equal(st, 403);
    char nul[] = GOOD_HEAD;
    nul[40] = '\0';
    assert_int_equal(head_check(nul, sizeof(nul) - 1, ACC, &st), -EPROTO);
}

/* --- the scripted server ------------------------------------------------------------------- */

struct srv;
typedef void (*srv_script)(struct srv *s, int fd);

struct srv {
    int lfd;
    uint16_t port;
    srv_script script;
    pthread_t th;
    bool started;
    char err[256]; /* first failure; "" = fine */
    bool eof;      /* the last read ended at EOF */
    int pings;     /* pings seen from the client */
    uint16_t close_code;
    struct buf payload; /* last frame read */
    void *arg;          /* script-specific */
};

static void srv_fail(struct srv *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void srv_fail(struct srv *s, const char *fmt, ...)
{
    if (s->err[0])
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->err, sizeof(s->err), fmt, ap);
    va_end(ap);
}

#define SRV_TRY(x)                                                                                 \
    do {                                                                                           \
        if (!(x)) {                                                                                \
            srv_fail(s, "line %d: %s", __LINE__, #x);                                              \
            return;                                                                                \
        }                                                                                          \
    } while (0)

static bool rd(struct srv *s, int fd, void *p, size_t n, int timeout_ms)
{
    char *c = p;
    s->eof = false;
    while (n > 0) {
        struct pollfd pfd = {fd, POLLIN, 0};
        if (poll(&pfd, 1, timeout_ms) <= 0)
            return false;
        ssize_t k = recv(fd, c, n, 0);
        if (k <= 0) {
            s->eof = k == 0;
            return false;
        }
        c += k;
        n -= (size_t)k;
    }
    return true;
}

static bool wr(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n > 0) {
        ssize_t k = send(fd, c, n, MSG_NOSIGNAL);
        if (k <= 0)
            return false;
        c += k;
        n -= (size_t)k;
    }
    return true;
}

/* Appends one unmasked (server) frame to b. */
static void frame(struct buf *b, bool fin, int op, const void *p, size_t n)
{
    unsigned char h[10];
    size_t k = 0;
    h[k++] = (unsigned char)((fin ? 0x80 : 0) | op);
    if (n < 126) {
        h[k++] = (unsigned char)n;
    } else if (n < 65536) {
        h[k++] = 126;
        h[k++] = (unsigned char)(n >> 8);
        h[k++] = (unsigned char)n;
    } else {
        h[k++] = 127;
        for (int i = 7; i >= 0; i--)
            h[k++] = (unsigned char)((uint64_t)n >> (8 * i));
    }
    assert(buf_append(b, h, k) == 0 && buf_append(b, p, n) == 0);
}

static bool send_frame(int fd, bool fin, int op, const void *p, size_t n)
{
    struct buf b;
    buf_init(&b, (size_t)1 << 24);
    frame(&b, fin, op, p, n);
    bool ok = wr(fd, b.data, b.len);
    buf_free(&b);
    return ok;
}

static bool send_close(int fd, uint16_t code)
{
    unsigned char c[2] = {(unsigned char)(code >> 8), (unsigned char)code};
    return send_frame(fd, true, WSLAY_CONNECTION_CLOSE, c, 2);
}

/* Reads one client frame into s->payload; client frames must be masked. */
static bool rd_frame(struct srv *s, int fd, bool *fin, int *op)
{
    unsigned char h[8], mask[4];
    if (!rd(s, fd, h, 2, SRV_WAIT_MS))
        return false;
    *fin = (h[0] & 0x80) != 0;
    *op = h[0] & 0x0f;
    if (!(h[1] & 0x80)) {
        srv_fail(s, "client frame not masked");
        return false;
    }
    uint64_t n = h[1] & 0x7f;
    size_t ext = n == 126 ? 2 : n == 127 ? 8 : 0;
    if (ext) {
        if (!rd(s, fd, h, ext, SRV_WAIT_MS))
            return false;
        n = 0;
        for (size_t i = 0; i < ext; i++)
            n = n << 8 | h[i];
    }
    if (!rd(s, fd, mask, 4, SRV_WAIT_MS))
        return false;
    buf_reset(&s->payload, 0);
    if (buf_reserve(&s->payload, (size_t)n) < 0 ||
        !rd(s, fd, s->payload.data, (size_t)n, SRV_WAIT_MS))
        return false;
    for (size_t i = 0; i < n; i++)
        s->payload.data[i] ^= (char)mask[i % 4];
    s->payload.len = (size_t)n;
    s->payload.data[n] = '\0';
    return true;
}

/* Reads frames until a data frame or a close arrives; pings are counted and, if `pong`,
 * answered. Returns the opcode, or -1. */
static int rd_until(struct srv *s, int fd, bool pong)
{
    bool fin;
    int op;
    while (rd_frame(s, fd, &fin, &op)) {
        if (op == WSLAY_PING) {
            s->pings++;
            if (pong && !send_frame(fd, true, WSLAY_PONG, s->payload.data, s->payload.len))
                return -1;
            continue;
        }
        if (op == WSLAY_CONNECTION_CLOSE)
            s->close_code = s->payload.len >= 2
                                ? (uint16_t)((unsigned char)s->payload.data[0] << 8 |
                                             (unsigned char)s->payload.data[1])
                                : 0;
        return op;
    }
    return -1;
}

/* Waits for the client's close frame (checking its code), optionally answers it, then waits for
 * the client to close the socket. */
static bool expect_close(struct srv *s, int fd, uint16_t code, bool reply)
{
    if (rd_until(s, fd, true) != WSLAY_CONNECTION_CLOSE || s->close_code != code) {
        srv_fail(s, "wanted close %u, got close code %u", code, s->close_code);
        return false;
    }
    if (reply && !send_close(fd, code))
        return false;
    char c;
    if (rd(s, fd, &c, 1, SRV_WAIT_MS) || !s->eof) {
        srv_fail(s, "no EOF after the close handshake");
        return false;
    }
    return true;
}

/* Reads the upgrade request and checks it. Returns the accept value to answer with. */
static bool read_request(struct srv *s, int fd, char *accept)
{
    char req[4096];
    size_t n = 0;
    while (n < 4 || memcmp(req + n - 4, "\r\n\r\n", 4) != 0) {
        if (n == sizeof(req) - 1 || !rd(s, fd, req + n, 1, SRV_WAIT_MS))
            return false;
        n++;
    }
    req[n] = '\0';
    char host[64];
    snprintf(host, sizeof(host), "\r\nHost: 127.0.0.1:%u\r\n", s->port);
    if (strncmp(req, "GET /ws?clientId=test-client HTTP/1.1\r\n", 39) != 0 || !strstr(req, host) ||
        !strstr(req, "\r\nUpgrade: websocket\r\n") || !strstr(req, "\r\nConnection: Upgrade\r\n") ||
        !strstr(req, "\r\nSec-WebSocket-Version: 13\r\n") || strcasestr(req, "\r\nOrigin:")) {
        srv_fail(s, "bad upgrade request: %s", req);
        return false;
    }
    const char *k = strstr(req, "\r\nSec-WebSocket-Key: ");
    if (!k)
        return false;
    k += 21;
    char key[32];
    size_t kl = strcspn(k, "\r");
    if (kl != 24)
        return false;
    memcpy(key, k, kl);
    key[kl] = '\0';
    ws_accept_for(key, accept);
    return true;
}

/* Answers the upgrade, with `extra` bytes (frames) in the same write. */
static bool handshake(struct srv *s, int fd, const void *extra, size_t extra_len)
{
    char acc[32], resp[512];
    if (!read_request(s, fd, acc))
        return false;
    int n =
        snprintf(resp, sizeof(resp),
                 "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                 "Connection: upgrade\r\nSec-WebSocket-Accept: %s\r\n"
                 "Date: Mon, 23 Nov 2026 08:56:26 GMT\r\nServer: Python/3.11 aiohttp/3.8.4\r\n\r\n",
                 acc);
    struct buf b;
    buf_init(&b, 1 << 20);
    bool ok = buf_append(&b, resp, (size_t)n) == 0 && buf_append(&b, extra, extra_len) == 0 &&
              wr(fd, b.data, b.len);
    buf_free(&b);
    return ok;
}

static void *srv_main(void *arg)
{
    struct srv *s = arg;
    struct pollfd pfd = {s->lfd, POLLIN, 0};
    if (poll(&pfd, 1, SRV_WAIT_MS) <= 0) {
        srv_fail(s, "no connection");
        return NULL;
    }
    int fd = accept4(s->lfd, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0) {
        srv_fail(s, "accept: %s", strerror(errno));
        return NULL;
    }
    s->script(s, fd);
    close(fd);
    return NULL;
}

static int listener(uint16_t *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof(a);
    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(fd, 8), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &al), 0);
    *port = ntohs(a.sin_port);
    return fd;
}

/* --- the client side ------------------------------------------------------------------------ */

struct msg {
    bool text;
    size_t len;
    unsigned char *p;
};

struct t {
    struct ring ring;
    struct comfy_ws ws;
    struct srv srv;
    struct comfy_ws_config cfg;
    int opened, closes, releases, close_err;
    struct msg msgs[MAX_MSGS];
    int nmsgs;
    bool text_not_nul; /* some on_text had p[n] != '\0' */
    uint64_t open_call_ns, open_ns, close_ns, close_call_ns, release_ns;
    struct ring_timer watchdog, action;
    int watchdog_fires;
    /* behaviour */
    void (*on_open_fn)(struct t *t);
    bool close_on_first_msg;
    int send_rc[4];
};

static struct t *t_of_ring(struct ring *r)
{
    return r->user;
}

static void c_open(void *ctx)
{
    struct t *t = ctx;
    t->opened++;
    t->open_ns = ring_clock_ns();
    if (t->on_open_fn)
        t->on_open_fn(t);
}

static void c_msg(struct t *t, bool text, const void *p, size_t n)
{
    if (t->nmsgs < MAX_MSGS) {
        struct msg *m = &t->msgs[t->nmsgs++];
        m->text = text;
        m->len = n;
        m->p = malloc(n + 1);
        memcpy(m->p, p, n);
    }
    if (t->close_on_first_msg) {
        comfy_ws_close(&t->ws);
        t->close_call_ns = ring_clock_ns();
        comfy_ws_close(&t->ws); /* idempotent */
    }
}

static void c_text(void *ctx, const char *p, size_t n)
{
    struct t *t = ctx;
    if (p[n] != '\0')
        t->text_not_nul = true;
    c_msg(t, true, p, n);
}

static void c_binary(void *ctx, const unsigned char *p, size_t n)
{
    c_msg(ctx, false, p, n);
}

static void c_close(void *ctx, int err)
{
    struct t *t = ctx;
    t->closes++;
    t->close_err = err;
    t->close_ns = ring_clock_ns();
    comfy_ws_close(&t->ws); /* allowed, and a no-op here */
}

static void c_release(void *ctx)
{
    struct t *t = ctx;
    t->releases++;
    t->release_ns = ring_clock_ns();
    ring_timer_cancel(&t->ring, &t->watchdog);
    ring_timer_cancel(&t->ring, &t->action);
}

static const struct comfy_ws_ops c_ops = {
    .on_open = c_open,
    .on_text = c_text,
    .on_binary = c_binary,
    .on_close = c_close,
    .on_release = c_release,
};

static void watchdog_cb(struct ring_timer *tm)
{
    struct t *t = (struct t *)((char *)tm - offsetof(struct t, watchdog));
    t->watchdog_fires++;
    comfy_ws_close(&t->ws);
    ring_timer_arm(&t->ring, &t->watchdog, 1000);
}

static bool done(struct ring *r)
{
    struct t *t = t_of_ring(r);
    return t->releases > 0 || t->watchdog_fires >= 2;
}

static const struct ring_config ring_cfg = {
    .sq_entries = 64, .buf_count = 16, .buf_size = 4096, .max_timers = 64};

static struct t *t_new(void)
{
    struct t *t = calloc(1, sizeof(*t));
    assert_non_null(t);
    assert_int_equal(ring_init(&t->ring, &ring_cfg, 0), 0);
    t->ring.user = t;
    t->watchdog.cb = watchdog_cb;
    buf_init(&t->srv.payload, (size_t)1 << 24);
    return t;
}

static void t_free(struct t *t)
{
    assert_true(comfy_ws_idle(&t->ws));
    ring_fini(&t->ring);
    for (int i = 0; i < t->nmsgs; i++)
        free(t->msgs[i].p);
    buf_free(&t->srv.payload);
    if (t->srv.lfd > 0)
        close(t->srv.lfd);
    free(t);
}

static void srv_start(struct t *t, srv_script script)
{
    t->srv.lfd = listener(&t->srv.port);
    t->srv.script = script;
    assert_int_equal(pthread_create(&t->srv.th, NULL, srv_main, &t->srv), 0);
    t->srv.started = true;
}

static int t_open(struct t *t, uint16_t port)
{
    struct sockaddr_in a = {
        .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    char host[32];
    snprintf(host, sizeof(host), "127.0.0.1:%u", port);
    t->open_call_ns = ring_clock_ns();
    return comfy_ws_open(&t->ws, &t->ring, (struct sockaddr *)&a, sizeof(a), host,
                         "/ws?clientId=test-client", &t->cfg, &c_ops, t);
}

/* Runs the loop until the client is released, then joins the server and checks it. */
static void t_loop(struct t *t)
{
    assert_int_equal(ring_timer_arm(&t->ring, &t->watchdog, WATCHDOG_MS), 0);
    ring_stop(&t->ring); /* ring_run returns as soon as done() holds */
    assert_int_equal(ring_run(&t->ring, done), 0);
    t->ring.stopping = false;
    t->ring.stopped = false;
    if (t->srv.started) {
        pthread_join(t->srv.th, NULL);
        t->srv.started = false;
    }
    assert_int_equal(t->watchdog_fires, 0);
    assert_string_equal(t->srv.err, "");
    assert_int_equal(t->releases, 1);
    assert_true(comfy_ws_idle(&t->ws));
}

static void t_run(struct t *t, srv_script script)
{
    srv_start(t, script);
    assert_int_equal(t_open(t, t->srv.port), 0);
    t_loop(t);
}

static uint64_t ms_between(uint64_t a, uint64_t b)
{
    return (b - a) / 1000000u;
}

static void assert_msg(const struct t *t, int i, bool text, const void *p, size_t n)
{
    assert_true(i < t->nmsgs);
    assert_int_equal(t->msgs[i].text, text);
    assert_int_equal(t->msgs[i].len, n);
    assert_memory_equal(t->msgs[i].p, p, n);
}

/* --- ring tests --------------------------------------------------------------------------- */

static const char STATUS_JSON[] = "{\"type\": \"status\", \"data\": {\"status\": {\"exec_info\": "
                                  "{\"queue_remaining\": 0}}, \"sid\": \"test-client\"}}";
static const char FLAGS_JSON[] = "{\"type\": \"feature_flags\", \"data\": "
                                 "{\"supports_preview_metadata\": false}}";
#define BIG_N 200000

static unsigned char pattern(size_t i)
{
    return (unsigned char)(i * 7 + i / 251);
}

static void script_messages(struct srv *s, int fd)
{
    struct buf b;
    buf_init(&b, 1 << 20);
    frame(&b, true, WSLAY_TEXT_FRAME, STATUS_JSON, sizeof(STATUS_JSON) - 1);
    bool ok = handshake(s, fd, b.data, b.len); /* first frame in the 101's segment */
    buf_free(&b);
    SRV_TRY(ok);
    /* like 15c: the client's first message */
    SRV_TRY(rd_until(s, fd, true) == WSLAY_TEXT_FRAME);
    SRV_TRY(strcmp(s->payload.data, FLAGS_JSON) == 0);
    unsigned char t14[64];
    SRV_TRY(send_frame(fd, true, WSLAY_BINARY_FRAME, t14, t14_frame(t14)));
    /* fragmented text with a ping between the fragments */
    SRV_TRY(send_frame(fd, false, WSLAY_TEXT_FRAME, "frag", 4));
    SRV_TRY(send_frame(fd, true, WSLAY_PING, "p1", 2));
    SRV_TRY(send_frame(fd, false, WSLAY_CONTINUATION_FRAME, "men", 3));
    SRV_TRY(send_frame(fd, true, WSLAY_CONTINUATION_FRAME, "ted", 3));
    bool fin;
    int op;
    SRV_TRY(rd_frame(s, fd, &fin, &op) && op == WSLAY_PONG && strcmp(s->payload.data, "p1") == 0);
    /* a large binary in two frames (16- and 64-bit lengths), then an empty text */
    unsigned char *big = malloc(BIG_N);
    for (size_t i = 0; i < BIG_N; i++)
        big[i] = pattern(i);
    ok = send_frame(fd, false, WSLAY_BINARY_FRAME, big, 50000) &&
         send_frame(fd, true, WSLAY_CONTINUATION_FRAME, big + 50000, BIG_N - 50000);
    free(big);
    SRV_TRY(ok);
    SRV_TRY(send_frame(fd, true, WSLAY_TEXT_FRAME, "", 0));
    SRV_TRY(send_close(fd, 1000));
    SRV_TRY(rd_until(s, fd, true) == WSLAY_CONNECTION_CLOSE && s->close_code == 1000);
    char c;
    SRV_TRY(!rd(s, fd, &c, 1, SRV_WAIT_MS) && s->eof);
}

static void open_send_flags(struct t *t)
{
    t->send_rc[0] = comfy_ws_send_text(&t->ws, FLAGS_JSON, sizeof(FLAGS_JSON) - 1);
}

static void ws_messages(void **state)
{
    struct t *t = t_new();
    t->on_open_fn = open_send_flags;
    t_run(t, script_messages);
    assert_int_equal(t->opened, 1);
    assert_int_equal(t->send_rc[0], 0);
    assert_int_equal(t->closes, 1);
    assert_int_equal(t->close_err, 0);
    assert_int_equal(t->nmsgs, 5);
    assert_msg(t, 0, true, STATUS_JSON, sizeof(STATUS_JSON) - 1);
    unsigned char t14[64];
    size_t n14 = t14_frame(t14);
    assert_msg(t, 1, false, t14, n14);
    struct comfy_ws_binary m;
    assert_int_equal(comfy_ws_binary_parse(t->msgs[1].p, t->msgs[1].len, &m), 0);
    assert_int_equal(m.type, COMFY_WS_BIN_TEXT);
    assert_msg(t, 2, true, "fragmented", 10);
    assert_false(t->msgs[3].text);
    assert_int_equal(t->msgs[3].len, BIG_N);
    for (size_t i = 0; i < BIG_N; i++)
        if (t->msgs[3].p[i] != pattern(i))
            fail_msg("byte %zu of the big message differs", i);
    assert_msg(t, 4, true, "", 0);
    assert_false(t->text_not_nul);
    assert_int_equal(comfy_ws_http_status(&t->ws), 101);
    t_free(t);
}

#define SEND_N 100000

static void open_send_big(struct t *t)
{
    char *p = malloc(SEND_N);
    for (size_t i = 0; i < SEND_N; i++)
        p[i] = (char)('a' + i % 26);
    /* "head" leaves at once; the big one is appended behind that in-flight send */
    t->send_rc[3] = comfy_ws_send_text(&t->ws, "head", 4);
    t->send_rc[0] = comfy_ws_send_text(&t->ws, p, SEND_N);
    /* queued bytes would pass max_message (200000): refused, nothing queued */
    t->send_rc[1] = comfy_ws_send_text(&t->ws, p, SEND_N + 1);
    free(p);
    t->send_rc[2] = comfy_ws_send_text(&t->ws, "tail", 4);
}

static void script_receive_big(struct srv *s, int fd)
{
    SRV_TRY(handshake(s, fd, NULL, 0));
    SRV_TRY(rd_until(s, fd, true) == WSLAY_TEXT_FRAME && strcmp(s->payload.data, "head") == 0);
    SRV_TRY(rd_until(s, fd, true) == WSLAY_TEXT_FRAME && s->payload.len == SEND_N);
    for (size_t i = 0; i < SEND_N; i++)
        SRV_TRY(s->payload.data[i] == (char)('a' + i % 26));
    SRV_TRY(rd_until(s, fd, true) == WSLAY_TEXT_FRAME && strcmp(s->payload.data, "tail") == 0);
    SRV_TRY(send_close(fd, 1001)); /* "going away": still a clean close */
    SRV_TRY(rd_until(s, fd, true) == WSLAY_CONNECTION_CLOSE && s->close_code == 1001);
}

static void ws_client_sends(void **state)
{
    struct t *t = t_new();
    t->cfg.max_message = 200000;
    t->on_open_fn = open_send_big;
    t_run(t, script_receive_big);
    assert_int_equal(t->send_rc[3], 0);
    assert_int_equal(t->send_rc[0], 0);
    assert_int_equal(t->send_rc[1], -ENOBUFS);
    assert_int_equal(t->send_rc[2], 0);
    assert_int_equal(t->closes, 1);
    assert_int_equal(t->close_err, 0);
    assert_int_equal(comfy_ws_send_text(&t->ws, "x", 1), -ENOTCONN);
    t_free(t);
}

/* Answers client pings and sends nothing else until KEEPALIVE_PINGS pings have come: 2.5x the
 * silence timeout at the ping interval, so only pongs can have kept the connection alive. Counted
 * rather than timed: a slow client sends its pings late but can not time out falsely (it reaps
 * completions before it runs timers). */
#define KEEPALIVE_PINGS 25

static void script_keepalive(struct srv *s, int fd)
{
    SRV_TRY(handshake(s, fd, NULL, 0));
    SRV_TRY(send_frame(fd, true, WSLAY_PING, "hb", 2));
    bool fin;
    int op;
    bool got_pong = false;
    while (s->pings < KEEPALIVE_PINGS) {
        SRV_TRY(rd_frame(s, fd, &fin, &op));
        if (op == WSLAY_PONG) {
            SRV_TRY(!got_pong && strcmp(s->payload.data, "hb") == 0);
            got_pong = true;
            continue;
        }
        SRV_TRY(op == WSLAY_PING);
        s->pings++;
        SRV_TRY(send_frame(fd, true, WSLAY_PONG, s->payload.data, s->payload.len));
    }
    SRV_TRY(got_pong);
    SRV_TRY(send_close(fd, 1000));
    SRV_TRY(rd_until(s, fd, false) == WSLAY_CONNECTION_CLOSE && s->close_code == 1000);
}

static void ws_ping_pong_keepalive(void **state)
{
    struct t *t = t_new();
    t->cfg.ping_interval_ms = 50;
    t->cfg.silence_timeout_ms = 500;
    t_run(t, script_keepalive);
    assert_int_equal(t->closes, 1);
    assert_int_equal(t->close_err, 0);
    assert_int_equal(t->srv.pings, KEEPALIVE_PINGS);
    assert_true(ms_between(t->open_ns, t->close_ns) >= 2 * 500); /* outlived the silence limit */
    t_free(t);
}

/* Reads (pings) but never writes after the handshake. */
static void script_silent(struct srv *s, int fd)
{
    SRV_TRY(handshake(s, fd, NULL, 0));
    bool fin;
    int op;
    while (rd_frame(s, fd, &fin, &op)) {
        SRV_TRY(op == WSLAY_PING && s->payload.len == 0);
        s->pings++;
    }
    SRV_TRY(s->eof);
}

static void ws_silence_timeout(void **state)
{
    struct t *t = t_new();
    t->cfg.ping_interval_ms = 50;
    t->cfg.silence_timeout_ms = 200;
    t_run(t, script_silent);
    assert_int_equal(t->opened, 1);
    assert_int_equal(t->closes, 1);
    assert_int_equal(t->close_err, -ETIMEDOUT);
    uint64_t ms = ms_between(t->open_ns, t->close_ns);
    assert_true(ms >= 190 && ms < 4000);
    /* ~3 expected; a stalled test process may fire the ping and the silence timers together */
    assert_true(t->srv.pings >= 1);
    t_free(t);
}

static void script_bad_accept(struct srv *s, int fd)
{
    char acc[32];
    SRV_TRY(read_request(s, fd, acc));
    acc[3] = acc[3] == 'A' ? 'B' : 'A';
    char resp[256];
    int n = snprintf(resp, sizeof(resp),
                     "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                     "Connection: upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
                     acc);
    SRV_TRY(wr(fd, resp, (size_t)n));
    char c;
    SRV_TRY(!rd(s, fd, &c, 1, SRV_WAIT_MS) && s->eof);
}

static void script_403(struct srv *s, int fd)
{
    char acc[32];
    static const char r403[] = "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n"
                               "Content-Type: application/octet-stream\r\n\r\n";
    SRV_TRY(read_request(s, fd, acc));
    SRV_TRY(wr(fd, r403, sizeof(r403) - 1));
    char c;
    SRV_TRY(!rd(s, fd, &c, 1, SRV_WAIT_MS) && s->eof);
}

static void ws_bad_handshakes(void **state)
{
    struct t *t = t_new();
    t_run(t, script_bad_accept);
    assert_int_equal(t->opened, 0);
    assert_int_equal(t->closes, 1);
    assert_int_equal(t->close_err, -EPROTO);
    assert_int_equal(comfy_ws_http_status(&t->ws), 101);
    t_free(t);

    t = t_new();
    t_run(t, script_403);
    assert_int_equal(t->opened, 0);
    assert_int_equal(t->close_err, -EPROTO);
    assert_int_equal(comfy_ws_http_status(&t->ws), 403);
    t_free(t);
}

static void script_no_answer(struct srv *s, int fd)
{
    char acc[32], c;
    SRV_TRY(read_request(s, fd, acc));
    SRV_TRY(!rd(s, fd, &c, 1, SRV_WAIT_MS) && s->eof);
}

static void ws_handshake_timeout(void **state)
{
    struct t *t = t_new();
    t->cfg.handshake_timeout_ms = 150;
    t_run(t, script_no_answer);
    assert_int_equal(t->opened, 0);
    assert_int_equal(t->close_err, -ETIMEDOUT);
    uint64_t ms = ms_between(t->open_call_ns, t->close_ns);
    assert_true(ms >= 140 && ms < 4000);
    t_free(t);
}

static void ws_refused(void **state)
{
    struct t *t = t_new();
    uint16_t port;
    close(listener(&port)); /* nothing listens there now */
    assert_int_equal(t_open(t, port), 0);
    t_loop(t);
    assert_int_equal(t->opened, 0);
    assert_int_equal(t->closes, 1);
    assert_int_equal(t->close_err, -ECONNREFUSED);
    t_free(t);
}

static void script_three_texts(struct srv *s, int fd)
{
    struct buf b;
    buf_init(&b, 1 << 20);
    frame(&b, true, WSLAY_TEXT_FRAME, "one", 3);
    frame(&b, true, WSLAY_TEXT_FRAME, "two", 3);
    frame(&b, true, WSLAY_TEXT_FRAME, "three", 5);
    bool ok = handshake(s, fd, b.data, b.len);
    buf_free(&b);
    SRV_TRY(ok);
    SRV_TRY(expect_close(s, fd, 1000, true));
}

static void ws_owner_close_in_callback(void **state)
{
    struct t *t = t_new();
    t->close_on_first_msg = true;
    t->cfg.close_timeout_ms = 4500;
    t_run(t, script_three_texts);
    assert_int_equal(t->nmsgs, 1); /* nothing delivered after comfy_ws_close */
    assert_msg(t, 0, true, "one", 3);
    assert_int_equal(t->closes, 0);
    assert_true(ms_between(t->close_call_ns, t->release_ns) < 4000); /* the peer answered */
    t_free(t);
}

static void open_close(struct t *t)
{
    t->close_call_ns = ring_clock_ns();
    comfy_ws_close(&t->ws);
    t->send_rc[0] = comfy_ws_send_text(&t->ws, "late", 4);
}

static void script_text_then_close(struct srv *s, int fd)
{
    struct buf b;
    buf_init(&b, 1 << 20);
    frame(&b, true, WSLAY_TEXT_FRAME, "unseen", 6);
    bool ok = handshake(s, fd, b.data, b.len);
    buf_free(&b);
    SRV_TRY(ok);
    SRV_TRY(expect_close(s, fd, 1000, true));
}

static void ws_owner_close_in_on_open(void **state)
{
    struct t *t = t_new();
    t->on_open_fn = open_close;
    t->cfg.close_timeout_ms = 4500;
    t_run(t, script_text_then_close);
    assert_int_equal(t->opened, 1);
    assert_int_equal(t->send_rc[0], -ENOTCONN);
    assert_int_equal(t->nmsgs, 0);
    assert_int_equal(t->closes, 0);
    assert_true(ms_between(t->close_call_ns, t->release_ns) < 4000);
    t_free(t);
}

/* Reads the client's close frame but never answers it, nor closes. */
static void script_ignore_close(struct srv *s, int fd)
{
    SRV_TRY(handshake(s, fd, NULL, 0));
    SRV_TRY(rd_until(s, fd, false) == WSLAY_CONNECTION_CLOSE && s->close_code == 1000);
    char c;
    SRV_TRY(!rd(s, fd, &c, 1, SRV_WAIT_MS) && s->eof);
}

static void action_close_cb(struct ring_timer *tm)
{
    struct t *t = (struct t *)((char *)tm - offsetof(struct t, action));
    t->close_call_ns = ring_clock_ns();
    comfy_ws_close(&t->ws);
}

static void open_arm_close(struct t *t)
{
    t->action.cb = action_close_cb;
    ring_timer_arm(&t->ring, &t->action, 30);
}

static void ws_owner_close_timeout(void **state)
{
    struct t *t = t_new();
    t->cfg.close_timeout_ms = 100;
    t->on_open_fn = open_arm_close;
    t_run(t, script_ignore_close);
    assert_int_equal(t->opened, 1);
    assert_int_equal(t->closes, 0);
    uint64_t ms = ms_between(t->close_call_ns, t->release_ns);
    assert_true(ms >= 95 && ms < 4000);
    t_free(t);
}

static void script_too_big_fragments(struct srv *s, int fd)
{
    static char half[600];
    memset(half, 'x', sizeof(half));
    SRV_TRY(handshake(s, fd, NULL, 0));
    SRV_TRY(send_frame(fd, false, WSLAY_TEXT_FRAME, half, sizeof(half)));
    SRV_TRY(send_frame(fd, true, WSLAY_CONTINUATION_FRAME, half, sizeof(half)));
    SRV_TRY(expect_close(s, fd, 1009, false));
}

static void script_too_big_frame(struct srv *s, int fd)
{
    /* declares 4 GiB, sends 6 bytes of it: refused on the declared length */
    static const unsigned char h[] = {0x82, 127, 0, 0, 0, 1, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6};
    SRV_TRY(handshake(s, fd, h, sizeof(h)));
    SRV_TRY(expect_close(s, fd, 1009, false));
}

static void ws_too_big(void **state)
{
    srv_script scripts[] = {script_too_big_fragments, script_too_big_frame};
    for (size_t i = 0; i < 2; i++) {
        struct t *t = t_new();
        t->cfg.max_message = 1024;
        t_run(t, scripts[i]);
        assert_int_equal(t->opened, 1);
        assert_int_equal(t->nmsgs, 0);
        assert_int_equal(t->close_err, -EMSGSIZE);
        t_free(t);
    }
}

static void script_bad_utf8(struct srv *s, int fd)
{
    SRV_TRY(handshake(s, fd, NULL, 0));
    SRV_TRY(send_frame(fd, true, WSLAY_TEXT_FRAME, "ok\xff\xfe", 4));
    SRV_TRY(expect_close(s, fd, 1007, false));
}

static void script_masked(struct srv *s, int fd)
{
    /* a server must not mask its frames */
    static const unsigned char f[] = {0x81, 0x82, 1, 2, 3, 4, 'h' ^ 1, 'i' ^ 2};
    SRV_TRY(handshake(s, fd, f, sizeof(f)));
    SRV_TRY(expect_close(s, fd, 1002, false));
}

static void ws_protocol_errors(void **state)
{
    srv_script scripts[] = {script_bad_utf8, script_masked};
    for (size_t i = 0; i < 2; i++) {
        struct t *t = t_new();
        t_run(t, scripts[i]);
        assert_int_equal(t->opened, 1);
        assert_int_equal(t->nmsgs, 0);
        assert_int_equal(t->closes, 1);
        assert_int_equal(t->close_err, -EPROTO);
        t_free(t);
    }
}

static void script_eof(struct srv *s, int fd)
{
    struct buf b;
    buf_init(&b, 1 << 20);
    frame(&b, true, WSLAY_TEXT_FRAME, "last", 4);
    bool ok = handshake(s, fd, b.data, b.len);
    buf_free(&b);
    SRV_TRY(ok);
}

static void ws_eof_without_close(void **state)
{
    struct t *t = t_new();
    t_run(t, script_eof);
    assert_int_equal(t->nmsgs, 1);
    assert_msg(t, 0, true, "last", 4);
    assert_int_equal(t->close_err, -ECONNRESET);
    t_free(t);
}

/* An owner that lives on the heap and frees itself in on_release: ASan checks that comfy_ws
 * touches nothing afterwards. */
struct heap_owner {
    struct comfy_ws ws;
    struct t *t;
};

static void h_text(void *ctx, const char *p, size_t n)
{
    struct heap_owner *o = ctx;
    o->t->nmsgs++;
    comfy_ws_close(&o->ws);
}

static void h_release(void *ctx)
{
    struct heap_owner *o = ctx;
    o->t->releases++;
    ring_timer_cancel(&o->t->ring, &o->t->watchdog);
    memset(o, 0x5a, sizeof(*o));
    free(o);
}

static const struct comfy_ws_ops h_ops = {.on_text = h_text, .on_release = h_release};

static void ws_owner_frees_in_release(void **state)
{
    struct t *t = t_new();
    struct heap_owner *o = calloc(1, sizeof(*o));
    o->t = t;
    srv_start(t, script_three_texts);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons(t->srv.port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    char host[32];
    snprintf(host, sizeof(host), "127.0.0.1:%u", t->srv.port);
    assert_int_equal(comfy_ws_open(&o->ws, &t->ring, (struct sockaddr *)&a, sizeof(a), host,
                                   "/ws?clientId=test-client", NULL, &h_ops, o),
                     0);
    t_loop(t);
    assert_int_equal(t->nmsgs, 1);
    t->nmsgs = 0; /* counted only; nothing to free */
    t_free(t);
}

static void ws_close_while_connecting_then_reuse(void **state)
{
    struct t *t = t_new();
    uint16_t port;
    int lfd = listener(&port); /* listens, never accepts */
    assert_int_equal(t_open(t, port), 0);
    assert_false(comfy_ws_idle(&t->ws));
    assert_int_equal(comfy_ws_send_text(&t->ws, "x", 1), -ENOTCONN);
    comfy_ws_close(&t->ws);
    assert_false(comfy_ws_idle(&t->ws)); /* released only from a completion */
    t_loop(t);
    close(lfd);
    assert_int_equal(t->closes, 0);
    assert_int_equal(t->opened, 0);
    /* the same struct, reopened after release */
    t->releases = 0;
    t->on_open_fn = open_send_flags;
    t_run(t, script_messages);
    assert_int_equal(t->opened, 1);
    assert_int_equal(t->close_err, 0);
    assert_int_equal(t->nmsgs, 5);
    t_free(t);
}

static void ws_open_rejects_bad_arguments(void **state)
{
    struct t *t = t_new();
    struct sockaddr_in a = {
        .sin_family = AF_INET, .sin_port = htons(9), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    const struct sockaddr *sa = (const struct sockaddr *)&a;
    struct comfy_ws *ws = &t->ws;
    assert_int_equal(comfy_ws_open(ws, &t->ring, sa, sizeof(a), "h", "ws", NULL, &c_ops, t),
                     -EINVAL);
    assert_int_equal(
        comfy_ws_open(ws, &t->ring, sa, sizeof(a), "h\r\nX: y", "/ws", NULL, &c_ops, t), -EINVAL);
    assert_int_equal(comfy_ws_open(ws, &t->ring, sa, sizeof(a), "h", "/ws x", NULL, &c_ops, t),
                     -EINVAL);
    assert_int_equal(comfy_ws_open(ws, &t->ring, sa, 0, "h", "/ws", NULL, &c_ops, t), -EINVAL);
    char *longpath = malloc(COMFY_WS_OUT_MAX + 1);
    memset(longpath, 'a', COMFY_WS_OUT_MAX);
    longpath[0] = '/';
    longpath[COMFY_WS_OUT_MAX] = '\0';
    assert_int_equal(comfy_ws_open(ws, &t->ring, sa, sizeof(a), "h", longpath, NULL, &c_ops, t),
                     -ENAMETOOLONG);
    free(longpath);
    assert_true(comfy_ws_idle(ws));
    comfy_ws_close(ws); /* on an idle struct: nothing */
    t_free(t);
}

int main(void)
{
    struct ring probe;
    if (ring_init(&probe, &ring_cfg, 0) < 0) {
        fprintf(stderr, "io_uring unavailable: skipping\n");
        return 77;
    }
    ring_fini(&probe);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(binary_transcript_14),
        cmocka_unit_test(binary_images),
        cmocka_unit_test(base64_and_accept),
        cmocka_unit_test(handshake_response_checks),
        cmocka_unit_test(ws_open_rejects_bad_arguments),
        cmocka_unit_test(ws_messages),
        cmocka_unit_test(ws_client_sends),
        cmocka_unit_test(ws_ping_pong_keepalive),
        cmocka_unit_test(ws_silence_timeout),
        cmocka_unit_test(ws_bad_handshakes),
        cmocka_unit_test(ws_handshake_timeout),
        cmocka_unit_test(ws_refused),
        cmocka_unit_test(ws_owner_close_in_callback),
        cmocka_unit_test(ws_owner_close_in_on_open),
        cmocka_unit_test(ws_owner_close_timeout),
        cmocka_unit_test(ws_too_big),
        cmocka_unit_test(ws_protocol_errors),
        cmocka_unit_test(ws_eof_without_close),
        cmocka_unit_test(ws_owner_frees_in_release),
        cmocka_unit_test(ws_close_while_connecting_then_reuse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
