/* comfy_ws — see comfy_ws.h.
 *
 * States: IDLE → CONNECTING → HANDSHAKE → OPEN → CLOSING → DEAD → (last op done) IDLE.
 * Every path out of a live state goes through ws_teardown, which submits cancel_fd + close; the
 * close is itself a counted op, so the release (and on_release) always runs from a completion
 * callback, after every other op on the socket has completed.
 *
 * wslay runs in no-buffering mode: we reassemble data messages ourselves in `msg`, a buf with a
 * hard maximum, and check each frame's declared length at its start, before any payload is
 * stored. (Buffered mode would allocate a chunk per frame and then a second copy of the whole
 * message.) Control frames (≤125 bytes) stay buffered inside wslay, which answers pings. */
#include "comfy/comfy_ws.h"

#include <assert.h>
#include <bearssl.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <unistd.h>
#include <wslay/wslay.h>

#define WS_OF(p, field) ((struct comfy_ws *)((char *)(p)-offsetof(struct comfy_ws, field)))

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#define MSG_KEEP 65536 /* reassembly capacity kept between messages; bigger ones are freed */

static void ws_flush(struct comfy_ws *ws);
static void ws_fail(struct comfy_ws *ws, int err);

/* --- pure helpers ------------------------------------------------------------------------ */

static void b64_encode(const unsigned char *in, size_t n, char *out)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)in[i + 1] << 8;
        if (i + 2 < n)
            v |= in[i + 2];
        out[o++] = tab[(v >> 18) & 63];
        out[o++] = tab[(v >> 12) & 63];
        out[o++] = i + 1 < n ? tab[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < n ? tab[v & 63] : '=';
    }
    out[o] = '\0';
}

/* RFC 6455 4.2.2: base64(SHA-1(key + GUID)); out gets 28 characters and a NUL. */
static void ws_accept_for(const char *key, char *out)
{
    br_sha1_context c;
    unsigned char d[br_sha1_SIZE];
    br_sha1_init(&c);
    br_sha1_update(&c, key, strlen(key));
    br_sha1_update(&c, WS_GUID, sizeof(WS_GUID) - 1);
    br_sha1_out(&c, d);
    b64_encode(d, sizeof(d), out);
}

static uint64_t splitmix64(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

int comfy_ws_binary_parse(const unsigned char *p, size_t n, struct comfy_ws_binary *out)
{
    memset(out, 0, sizeof(*out));
    if (n < 4)
        return -EBADMSG;
    out->type = be32(p);
    p += 4;
    n -= 4;
    if (out->type >= COMFY_WS_BIN_PREVIEW_IMAGE &&
        out->type <= COMFY_WS_BIN_PREVIEW_WITH_METADATA) {
        if (n < 4)
            return -EBADMSG;
        uint32_t v = be32(p);
        p += 4;
        n -= 4;
        if (out->type == COMFY_WS_BIN_TEXT || out->type == COMFY_WS_BIN_PREVIEW_WITH_METADATA) {
            if (v > n)
                return -EBADMSG;
            if (out->type == COMFY_WS_BIN_TEXT) {
                out->node_id = (const char *)p;
                out->node_id_len = v;
            } else {
                out->meta = (const char *)p;
                out->meta_len = v;
            }
            p += v;
            n -= v;
        } else {
            out->image_format = v;
        }
    }
    out->data = p;
    out->len = n;
    return 0;
}

/* --- handshake response ------------------------------------------------------------------ */

struct head_seen {
    int upgrade;
    int accept;
    bool connection;
};

/* The CRLF ending the line at p, or NULL for a bare CR, LF or NUL (strict: no lenience). */
static const char *line_end(const char *p, const char *end)
{
    for (; p < end; p++) {
        if (*p == '\r')
            return p + 1 < end && p[1] == '\n' ? p : NULL;
        if (*p == '\n' || *p == '\0')
            return NULL;
    }
    return NULL;
}

static bool is_tchar(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

static bool name_is(const char *p, size_t n, const char *want)
{
    return strlen(want) == n && strncasecmp(p, want, n) == 0;
}

/* True if the comma-separated list holds `tok` (case-insensitive), e.g. "keep-alive, Upgrade". */
static bool list_has(const char *p, size_t n, const char *tok)
{
    size_t i = 0;
    while (i < n) {
        while (i < n && (p[i] == ' ' || p[i] == '\t' || p[i] == ','))
            i++;
        size_t s = i;
        while (i < n && p[i] != ',')
            i++;
        size_t e = i;
        while (e > s && (p[e - 1] == ' ' || p[e - 1] == '\t'))
            e--;
        if (e > s && name_is(p + s, e - s, tok))
            return true;
    }
    return false;
}

static int head_field(const char *l, const char *eol, const char *accept, struct head_seen *seen)
{
    const char *colon = memchr(l, ':', (size_t)(eol - l));
    if (!colon || colon == l)
        return -EPROTO; /* also catches obs-fold: a line starting with SP or HT has no name */
    for (const char *q = l; q < colon; q++)
        if (!is_tchar((unsigned char)*q))
            return -EPROTO;
    const char *v = colon + 1, *ve = eol;
    while (v < ve && (*v == ' ' || *v == '\t'))
        v++;
    while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
        ve--;
    for (const char *q = v; q < ve; q++)
        if ((unsigned char)*q < 0x20 && *q != '\t')
            return -EPROTO;
    size_t nl = (size_t)(colon - l), vl = (size_t)(ve - v);
    if (name_is(l, nl, "upgrade")) {
        seen->upgrade++;
        return name_is(v, vl, "websocket") ? 0 : -EPROTO;
    }
    if (name_is(l, nl, "connection")) {
        seen->connection = seen->connection || list_has(v, vl, "upgrade");
        return 0;
    }
    if (name_is(l, nl, "sec-websocket-accept")) {
        seen->accept++;
        return vl == strlen(accept) && memcmp(v, accept, vl) == 0 ? 0 : -EPROTO;
    }
    /* We offered no extension or subprotocol, so the server may not pick one (RFC 6455 4.1). */
    if (name_is(l, nl, "sec-websocket-extensions") || name_is(l, nl, "sec-websocket-protocol"))
        return -EPROTO;
    return 0;
}

/* Checks a complete response head (through the blank line). 0 for a valid upgrade, else -EPROTO.
 * *status gets the status code once the status line parses. */
static int head_check(const char *p, size_t n, const char *accept, int *status)
{
    const char *end = p + n;
    const char *eol = line_end(p, end);
    *status = 0;
    if (!eol || eol - p < 12 || memcmp(p, "HTTP/1.1 ", 9) != 0)
        return -EPROTO;
    for (int i = 9; i < 12; i++)
        if (p[i] < '0' || p[i] > '9')
            return -EPROTO;
    if (eol - p > 12 && p[12] != ' ')
        return -EPROTO;
    *status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
    if (*status != 101)
        return -EPROTO;
    struct head_seen seen = {0};
    for (const char *l = eol + 2; l < end; l = eol + 2) {
        eol = line_end(l, end);
        if (!eol)
            return -EPROTO;
        if (eol == l)
            return seen.upgrade == 1 && seen.connection && seen.accept == 1 ? 0 : -EPROTO;
        if (head_field(l, eol, accept, &seen) < 0)
            return -EPROTO;
    }
    return -EPROTO; /* no blank line */
}

/* --- lifetime ---------------------------------------------------------------------------- */

static bool ws_alive(const struct comfy_ws *ws)
{
    return ws->state != COMFY_WS_IDLE && ws->state != COMFY_WS_DEAD;
}

static bool ws_open_or_closing(const struct comfy_ws *ws)
{
    return ws->state == COMFY_WS_OPEN || ws->state == COMFY_WS_CLOSING;
}

static void ws_free_mem(struct comfy_ws *ws)
{
    if (ws->wslay)
        wslay_event_context_free(ws->wslay);
    ws->wslay = NULL;
    free(ws->out);
    ws->out = NULL;
    ws->head = NULL;
    buf_free(&ws->msg);
}

static void ws_release(struct comfy_ws *ws)
{
    ws_free_mem(ws);
    ws->state = COMFY_WS_IDLE;
    if (ws->ops->on_release)
        ws->ops->on_release(ws->ctx); /* last: the owner may free ws here */
}

/* Every op callback ends with this, and touches nothing after it. */
static void ws_op_done(struct comfy_ws *ws)
{
    assert(ws->inflight > 0);
    ws->inflight--;
    if (ws->state == COMFY_WS_DEAD && ws->inflight == 0)
        ws_release(ws);
}

static void close_cb(struct ring_op *op, int res, uint32_t flags)
{
    ws_op_done(WS_OF(op, close_op));
}

static void ws_teardown(struct comfy_ws *ws, int err)
{
    ws->state = COMFY_WS_DEAD;
    ring_timer_cancel(ws->ring, &ws->phase_timer);
    ring_timer_cancel(ws->ring, &ws->ping_timer);
    /* Cancel whatever is pending on the socket, then close it; HARDLINK so the close runs even
     * when there was nothing to cancel. */
    struct io_uring_sqe *sqe = ring_sqe(ws->ring);
    io_uring_prep_cancel_fd(sqe, ws->fd, IORING_ASYNC_CANCEL_ALL);
    sqe->flags |= IOSQE_IO_HARDLINK;
    ring_sqe_set_op(sqe, NULL);
    sqe = ring_sqe(ws->ring);
    io_uring_prep_close(sqe, ws->fd);
    ring_sqe_set_op(sqe, &ws->close_op);
    ws->inflight++;
    ws->fd = -1;
    if (!ws->owner_closed && ws->ops->on_close)
        ws->ops->on_close(ws->ctx, err);
}

/* Once CLOSING, the verdict is fixed: a reset after the peer's close frame is still clean. */
static void ws_fail(struct comfy_ws *ws, int err)
{
    if (!ws_alive(ws))
        return;
    if (ws->state == COMFY_WS_CLOSING)
        err = ws->close_err;
    ws_teardown(ws, err);
}

static void kick_cb(struct ring_op *op, int res, uint32_t flags)
{
    struct comfy_ws *ws = WS_OF(op, kick_op);
    ws->kick_armed = false;
    ws_fail(ws, ws->err_later);
    ws_op_done(ws);
}

/* A failure found while the owner is on the stack (send_text, close) is reported from a NOP
 * completion, so on_close never runs inside an owner's call. */
static void ws_fail_later(struct comfy_ws *ws, int err)
{
    if (!ws->err_later)
        ws->err_later = err;
    if (ws->kick_armed)
        return;
    struct io_uring_sqe *sqe = ring_sqe(ws->ring);
    io_uring_prep_nop(sqe);
    ring_sqe_set_op(sqe, &ws->kick_op);
    ws->kick_armed = true;
    ws->inflight++;
}

/* --- closing ------------------------------------------------------------------------------ */

static void ws_closing(struct comfy_ws *ws, int err)
{
    ws->state = COMFY_WS_CLOSING;
    ws->close_err = err;
    ring_timer_cancel(ws->ring, &ws->ping_timer);
    if (ring_timer_arm(ws->ring, &ws->phase_timer, ws->cfg.close_timeout_ms) < 0)
        ws_fail_later(ws, err);
}

/* In CLOSING: closes the socket once our close frame has left, unless we started the close
 * handshake and are waiting for the peer's answer (or EOF, or the close timer). */
static void ws_closing_check(struct comfy_ws *ws)
{
    if (ws->state != COMFY_WS_CLOSING || ws->in_wslay || ws->sending || ws->out_len > 0)
        return;
    bool sent = wslay_event_get_close_sent(ws->wslay);
    bool rcvd = wslay_event_get_close_received(ws->wslay);
    if (!sent && wslay_event_get_write_enabled(ws->wslay) && wslay_event_want_write(ws->wslay))
        return;
    if (sent && !rcvd && ws->close_err == 0)
        return;
    ws_teardown(ws, ws->close_err);
}

/* --- output ------------------------------------------------------------------------------- */

static ssize_t wslay_send_cb(struct wslay_event_context *c, const uint8_t *data, size_t len,
                             int flags, void *ud)
{
    struct comfy_ws *ws = ud;
    size_t room = COMFY_WS_OUT_MAX - ws->out_len;
    if (room == 0) {
        wslay_event_set_error(c, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    size_t k = len < room ? len : room;
    memcpy(ws->out + ws->out_len, data, k); /* past any in-flight prefix: that stays put */
    ws->out_len += k;
    return (ssize_t)k;
}

static int wslay_genmask_cb(struct wslay_event_context *c, uint8_t *buf, size_t len, void *ud)
{
    /* The mask only keeps browsers' traffic from poisoning caches; it need not be secret. */
    struct comfy_ws *ws = ud;
    for (size_t i = 0; i < len; i += 8) {
        uint64_t v = splitmix64(&ws->rng);
        memcpy(buf + i, &v, len - i < 8 ? len - i : 8);
    }
    return 0;
}

static void send_cb(struct ring_op *op, int res, uint32_t flags)
{
    struct comfy_ws *ws = WS_OF(op, send_op);
    ws->sending = false;
    if (ws_alive(ws)) {
        if (res < 0 && res != -EAGAIN && res != -EINTR) {
            ws_fail(ws, res);
        } else {
            size_t n = res > 0 ? (size_t)res : 0;
            memmove(ws->out, ws->out + n, ws->out_len - n); /* no send in flight now */
            ws->out_len -= n;
            ws_flush(ws);
            ws_closing_check(ws);
        }
    }
    ws_op_done(ws);
}

/* Pulls frames out of wslay into `out` and starts a send if none is in flight. At most one
 * send at a time keeps bytes in order and the in-flight region fixed. */
static void ws_flush(struct comfy_ws *ws)
{
    if (ws->in_wslay || !ws_alive(ws) || ws->state == COMFY_WS_CONNECTING)
        return;
    if (ws->state != COMFY_WS_HANDSHAKE && wslay_event_want_write(ws->wslay)) {
        int rv = wslay_event_send(ws->wslay);
        if (rv < 0) {
            ws_fail_later(ws, rv == WSLAY_ERR_NOMEM ? -ENOMEM : -EPROTO);
            return;
        }
    }
    if (ws->sending || ws->out_len == 0)
        return;
    struct io_uring_sqe *sqe = ring_sqe(ws->ring);
    io_uring_prep_send(sqe, ws->fd, ws->out, ws->out_len, MSG_NOSIGNAL);
    ring_sqe_set_op(sqe, &ws->send_op);
    ws->sending = true;
    ws->inflight++;
}

/* --- input -------------------------------------------------------------------------------- */

static ssize_t wslay_recv_cb(struct wslay_event_context *c, uint8_t *buf, size_t len, int flags,
                             void *ud)
{
    struct comfy_ws *ws = ud;
    if (ws->in_len == 0) {
        wslay_event_set_error(c, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    size_t k = len < ws->in_len ? len : ws->in_len;
    memcpy(buf, ws->in, k);
    ws->in += k;
    ws->in_len -= k;
    return (ssize_t)k;
}

/* Stops reading and queues a close frame with `code`; ws_feed reports rx_err afterwards. */
static void ws_rx_abort(struct comfy_ws *ws, uint16_t code, int err)
{
    ws->rx_err = err;
    wslay_event_queue_close(ws->wslay, code, NULL, 0);
    wslay_event_shutdown_read(ws->wslay);
}

static void wslay_frame_start_cb(struct wslay_event_context *c,
                                 const struct wslay_event_on_frame_recv_start_arg *a, void *ud)
{
    struct comfy_ws *ws = ud;
    ws->frame_ctrl = (a->opcode & 0x8) != 0;
    if (ws->frame_ctrl)
        return;
    if (a->opcode != WSLAY_CONTINUATION_FRAME)
        buf_reset(&ws->msg, MSG_KEEP);
    /* Refuse on the declared length, before a single payload byte is stored. */
    if (a->payload_length > ws->cfg.max_message - ws->msg.len) {
        ws_rx_abort(ws, WSLAY_CODE_MESSAGE_TOO_BIG, -EMSGSIZE);
        return;
    }
    if (buf_reserve(&ws->msg, (size_t)a->payload_length) < 0)
        ws_rx_abort(ws, WSLAY_CODE_INTERNAL_SERVER_ERROR, -ENOMEM);
}

static void wslay_chunk_cb(struct wslay_event_context *c,
                           const struct wslay_event_on_frame_recv_chunk_arg *a, void *ud)
{
    struct comfy_ws *ws = ud;
    if (ws->frame_ctrl || ws->rx_err)
        return;
    if (buf_append(&ws->msg, a->data, a->data_length) < 0) /* reserved at frame start */
        ws_rx_abort(ws, WSLAY_CODE_INTERNAL_SERVER_ERROR, -ENOMEM);
}

static void wslay_msg_cb(struct wslay_event_context *c, const struct wslay_event_on_msg_recv_arg *a,
                         void *ud)
{
    struct comfy_ws *ws = ud;
    if (a->opcode != WSLAY_TEXT_FRAME && a->opcode != WSLAY_BINARY_FRAME)
        return; /* ping (wslay queued the pong), pong (liveness only), close (ws_feed) */
    if (ws->state == COMFY_WS_OPEN && !ws->rx_err) {
        const char *p = ws->msg.data ? ws->msg.data : "";
        if (a->opcode == WSLAY_TEXT_FRAME && ws->ops->on_text)
            ws->ops->on_text(ws->ctx, p, ws->msg.len);
        else if (a->opcode == WSLAY_BINARY_FRAME && ws->ops->on_binary)
            ws->ops->on_binary(ws->ctx, (const unsigned char *)p, ws->msg.len);
    }
    buf_reset(&ws->msg, MSG_KEEP);
}

static const struct wslay_event_callbacks wslay_cbs = {
    .recv_callback = wslay_recv_cb,
    .send_callback = wslay_send_cb,
    .genmask_callback = wslay_genmask_cb,
    .on_frame_recv_start_callback = wslay_frame_start_cb,
    .on_frame_recv_chunk_callback = wslay_chunk_cb,
    .on_msg_recv_callback = wslay_msg_cb,
};

/* Runs wslay over received bytes. wslay reads until our recv callback says WOULDBLOCK or it
 * stops reading (close frame, protocol error), so the view is always used up or abandoned. */
static void ws_feed(struct comfy_ws *ws, const unsigned char *p, size_t n)
{
    ws->in = p;
    ws->in_len = n;
    ws->in_wslay = true;
    int rv = wslay_event_recv(ws->wslay);
    ws->in_wslay = false;
    ws->in = NULL;
    ws->in_len = 0;
    if (!ws_alive(ws))
        return;
    if (rv < 0) {
        ws_fail(ws, rv == WSLAY_ERR_NOMEM ? -ENOMEM : -EPROTO);
        return;
    }
    if (ws->state == COMFY_WS_OPEN && !wslay_event_get_read_enabled(ws->wslay)) {
        int err = 0;
        if (!wslay_event_get_close_received(ws->wslay))
            err = ws->rx_err ? ws->rx_err : -EPROTO; /* wslay queued a close frame (1002/1007) */
        ws_closing(ws, err);
    }
    ws_flush(ws);
    ws_closing_check(ws);
}

static void ws_opened(struct comfy_ws *ws)
{
    ws->state = COMFY_WS_OPEN;
    ws->last_rx_ns = ws->ring->now_ns;
    int rc = ring_timer_arm(ws->ring, &ws->phase_timer, ws->cfg.silence_timeout_ms);
    if (rc == 0)
        rc = ring_timer_arm(ws->ring, &ws->ping_timer, ws->cfg.ping_interval_ms);
    if (rc < 0) {
        ws_fail(ws, rc);
        return;
    }
    if (ws->ops->on_open)
        ws->ops->on_open(ws->ctx);
}

/* Collects the 101 response (at most COMFY_WS_HEAD_MAX bytes); bytes after the blank line are
 * already WebSocket frames. */
static void ws_head_input(struct comfy_ws *ws, const char *p, size_t n)
{
    size_t k = COMFY_WS_HEAD_MAX - ws->head_len;
    if (k > n)
        k = n;
    size_t from = ws->head_len > 3 ? ws->head_len - 3 : 0;
    memcpy(ws->head + ws->head_len, p, k);
    ws->head_len += k;
    const char *e = memmem(ws->head + from, ws->head_len - from, "\r\n\r\n", 4);
    if (!e) {
        if (ws->head_len == COMFY_WS_HEAD_MAX)
            ws_fail(ws, -EPROTO);
        return;
    }
    size_t head = (size_t)(e - ws->head) + 4;
    if (head_check(ws->head, head, ws->accept, &ws->http_status) < 0) {
        ws_fail(ws, -EPROTO);
        return;
    }
    ws_opened(ws);
    /* in CLOSING too (on_open may have closed): the peer's close frame may be among them */
    if (ws_open_or_closing(ws) && head < ws->head_len)
        ws_feed(ws, (const unsigned char *)ws->head + head, ws->head_len - head);
    if (ws_open_or_closing(ws) && k < n)
        ws_feed(ws, (const unsigned char *)p + k, n - k);
}

static void recv_arm(struct comfy_ws *ws)
{
    struct io_uring_sqe *sqe = ring_sqe(ws->ring);
    io_uring_prep_recv_multishot(sqe, ws->fd, NULL, 0, 0);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = RING_BGID;
    ring_sqe_set_op(sqe, &ws->recv_op);
    ws->recv_armed = true;
    ws->inflight++;
}

static void recv_cb(struct ring_op *op, int res, uint32_t flags)
{
    struct comfy_ws *ws = WS_OF(op, recv_op);
    if (res > 0 && (flags & IORING_CQE_F_BUFFER)) {
        unsigned bid = flags >> IORING_CQE_BUFFER_SHIFT;
        const char *data = ring_buf(ws->ring, bid);
        if (ws->state == COMFY_WS_HANDSHAKE) {
            ws->last_rx_ns = ws->ring->now_ns;
            ws_head_input(ws, data, (size_t)res);
        } else if (ws_open_or_closing(ws)) {
            ws->last_rx_ns = ws->ring->now_ns; /* any byte proves the peer alive */
            ws_feed(ws, (const unsigned char *)data, (size_t)res);
        }
        ring_buf_recycle(ws->ring, bid);
    }
    if (!(flags & IORING_CQE_F_MORE)) {
        ws->recv_armed = false;
        if (ws_alive(ws)) {
            if (res == 0)
                ws_fail(ws, -ECONNRESET); /* EOF; in CLOSING the verdict stands */
            else if (res < 0 && res != -ENOBUFS)
                ws_fail(ws, res);
            else
                recv_arm(ws); /* out of buffers, or the kernel ended the multishot */
        }
        ws_op_done(ws);
    }
}

/* --- timers and connect ------------------------------------------------------------------- */

static void phase_timer_cb(struct ring_timer *t)
{
    struct comfy_ws *ws = WS_OF(t, phase_timer);
    if (ws->state == COMFY_WS_OPEN) {
        uint64_t quiet_ms = (ws->ring->now_ns - ws->last_rx_ns) / 1000000u;
        uint32_t limit = ws->cfg.silence_timeout_ms;
        if (quiet_ms < limit && ring_timer_arm(ws->ring, &ws->phase_timer, limit - quiet_ms) == 0)
            return;
    }
    ws_fail(ws, -ETIMEDOUT);
}

static void ping_timer_cb(struct ring_timer *t)
{
    struct comfy_ws *ws = WS_OF(t, ping_timer);
    if (ws->state != COMFY_WS_OPEN)
        return;
    struct wslay_event_msg m = {WSLAY_PING, NULL, 0};
    if (wslay_event_queue_msg(ws->wslay, &m) == 0)
        ws_flush(ws);
    if (ws->state == COMFY_WS_OPEN &&
        ring_timer_arm(ws->ring, &ws->ping_timer, ws->cfg.ping_interval_ms) < 0)
        ws_fail(ws, -ENOSPC);
}

static void connect_cb(struct ring_op *op, int res, uint32_t flags)
{
    struct comfy_ws *ws = WS_OF(op, connect_op);
    if (ws->state == COMFY_WS_CONNECTING) {
        if (res < 0) {
            ws_fail(ws, res);
        } else if (ring_timer_arm(ws->ring, &ws->phase_timer, ws->cfg.handshake_timeout_ms) < 0) {
            ws_fail(ws, -ENOSPC);
        } else {
            ws->state = COMFY_WS_HANDSHAKE;
            recv_arm(ws);
            ws_flush(ws); /* the upgrade request waits in `out` */
        }
    }
    ws_op_done(ws);
}

/* --- open --------------------------------------------------------------------------------- */

static bool header_safe(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s <= 0x20 || *s == 0x7f)
            return false;
    return true;
}

static void config_apply(struct comfy_ws_config *c, const struct comfy_ws_config *in)
{
    if (in)
        *c = *in;
    else
        memset(c, 0, sizeof(*c));
    c->connect_timeout_ms = c->connect_timeout_ms ? c->connect_timeout_ms : 5000;
    c->handshake_timeout_ms = c->handshake_timeout_ms ? c->handshake_timeout_ms : 5000;
    c->ping_interval_ms = c->ping_interval_ms ? c->ping_interval_ms : 30000;
    c->silence_timeout_ms = c->silence_timeout_ms ? c->silence_timeout_ms : 75000;
    c->close_timeout_ms = c->close_timeout_ms ? c->close_timeout_ms : 2000;
    c->max_message = c->max_message ? c->max_message : (size_t)16 << 20;
}

/* Writes the upgrade request into `out` and remembers the Accept value it must come back with. */
static int ws_build_request(struct comfy_ws *ws, const char *host, const char *path)
{
    unsigned char rnd[24];
    if (getrandom(rnd, sizeof(rnd), GRND_NONBLOCK) != (ssize_t)sizeof(rnd)) {
        uint64_t s = ring_clock_ns() ^ (uint64_t)(uintptr_t)ws; /* only uniqueness matters */
        for (size_t i = 0; i < sizeof(rnd); i += 8) {
            uint64_t v = splitmix64(&s);
            memcpy(rnd + i, &v, 8);
        }
    }
    memcpy(&ws->rng, rnd + 16, 8);
    char key[32];
    b64_encode(rnd, 16, key);
    ws_accept_for(key, ws->accept);
    int n = snprintf((char *)ws->out, COMFY_WS_OUT_MAX,
                     "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n"
                     "User-Agent: comfygate\r\n\r\n",
                     path, host, key);
    if (n < 0 || n >= COMFY_WS_OUT_MAX)
        return -ENAMETOOLONG;
    ws->out_len = (size_t)n;
    return 0;
}

static int ws_alloc(struct comfy_ws *ws)
{
    ws->out = malloc(COMFY_WS_OUT_MAX + COMFY_WS_HEAD_MAX);
    if (!ws->out)
        return -ENOMEM;
    ws->head = (char *)ws->out + COMFY_WS_OUT_MAX;
    buf_init(&ws->msg, ws->cfg.max_message);
    if (wslay_event_context_client_init(&ws->wslay, &wslay_cbs, ws) != 0) {
        ws->wslay = NULL;
        return -ENOMEM;
    }
    wslay_event_config_set_no_buffering(ws->wslay, 1);
    /* Sizes are checked per message in wslay_frame_start_cb; wslay's own per-frame check would
     * report the same condition as a protocol error. */
    wslay_event_config_set_max_recv_msg_length(ws->wslay, UINT64_MAX);
    return 0;
}

static int ws_start(struct comfy_ws *ws)
{
    ws->fd = socket(ws->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (ws->fd < 0)
        return -errno;
    int one = 1; /* progress messages are small and latency is the point */
    setsockopt(ws->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    int rc = ring_timer_arm(ws->ring, &ws->phase_timer, ws->cfg.connect_timeout_ms);
    if (rc < 0) {
        close(ws->fd);
        ws->fd = -1;
        return rc;
    }
    struct io_uring_sqe *sqe = ring_sqe(ws->ring);
    io_uring_prep_connect(sqe, ws->fd, (struct sockaddr *)&ws->addr, ws->alen);
    ring_sqe_set_op(sqe, &ws->connect_op);
    ws->inflight++;
    ws->state = COMFY_WS_CONNECTING;
    return 0;
}

int comfy_ws_open(struct comfy_ws *ws, struct ring *r, const struct sockaddr *addr, socklen_t alen,
                  const char *host_header, const char *path_and_query,
                  const struct comfy_ws_config *cfg, const struct comfy_ws_ops *ops, void *ctx)
{
    assert(ws->state == COMFY_WS_IDLE && ws->inflight == 0);
    if (!addr || alen == 0 || alen > sizeof(ws->addr) || !host_header || !path_and_query ||
        path_and_query[0] != '/' || !header_safe(host_header) || !header_safe(path_and_query))
        return -EINVAL;
    memset(ws, 0, sizeof(*ws));
    ws->fd = -1;
    ws->ring = r;
    ws->ops = ops;
    ws->ctx = ctx;
    config_apply(&ws->cfg, cfg);
    memcpy(&ws->addr, addr, alen);
    ws->alen = alen;
    ws->connect_op.cb = connect_cb;
    ws->recv_op.cb = recv_cb;
    ws->send_op.cb = send_cb;
    ws->close_op.cb = close_cb;
    ws->kick_op.cb = kick_cb;
    ws->phase_timer.cb = phase_timer_cb;
    ws->ping_timer.cb = ping_timer_cb;
    int rc = ws_alloc(ws);
    if (rc == 0)
        rc = ws_build_request(ws, host_header, path_and_query);
    if (rc == 0)
        rc = ws_start(ws);
    if (rc < 0)
        ws_free_mem(ws);
    return rc;
}

/* --- the rest of the API ------------------------------------------------------------------ */

int comfy_ws_send_text(struct comfy_ws *ws, const char *p, size_t n)
{
    if (ws->state != COMFY_WS_OPEN)
        return -ENOTCONN;
    size_t queued = wslay_event_get_queued_msg_length(ws->wslay);
    if (queued > ws->cfg.max_message || n > ws->cfg.max_message - queued)
        return -ENOBUFS;
    struct wslay_event_msg m = {WSLAY_TEXT_FRAME, (const uint8_t *)p, n};
    int rv = wslay_event_queue_msg(ws->wslay, &m);
    if (rv != 0)
        return rv == WSLAY_ERR_NOMEM ? -ENOMEM : -ENOTCONN;
    ws_flush(ws);
    return 0;
}

void comfy_ws_close(struct comfy_ws *ws)
{
    if (!ws_alive(ws) || ws->owner_closed)
        return;
    ws->owner_closed = true;
    if (ws->state == COMFY_WS_CONNECTING || ws->state == COMFY_WS_HANDSHAKE) {
        ws_teardown(ws, 0); /* no on_close: owner_closed */
        return;
    }
    if (ws->state == COMFY_WS_OPEN) {
        wslay_event_queue_close(ws->wslay, WSLAY_CODE_NORMAL_CLOSURE, NULL, 0);
        ws_closing(ws, 0);
    }
    /* Already CLOSING (peer's close or an error): owner_closed just silences on_close. */
    ws_flush(ws);
    if (ws->state == COMFY_WS_CLOSING && !ws->in_wslay && !ws->sending && ws->out_len == 0)
        ws_fail_later(ws, 0); /* nothing left to send (write side already shut): finish */
}

bool comfy_ws_idle(const struct comfy_ws *ws)
{
    return ws->state == COMFY_WS_IDLE;
}

bool comfy_ws_is_open(const struct comfy_ws *ws)
{
    return ws->state == COMFY_WS_OPEN;
}

int comfy_ws_http_status(const struct comfy_ws *ws)
{
    return ws->http_status;
}
