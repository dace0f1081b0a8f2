/* fuzz_comfy_ws — libFuzzer harness for what a ComfyUI backend's /ws sends the gateway
 * (src/comfy/comfy_ws.c): the 101 response to the upgrade, the WebSocket frames after it (wslay
 * with our no-buffering callbacks: per-message size cap, reassembly of fragments, control
 * frames answered), and the binary messages inside them (comfy_ws_binary_parse, previews).
 *
 * The .c is included, as its unit test does, to reach the static handshake check and the wslay
 * callbacks without a ring: the harness stands in for recv_cb and ws_feed, handing bytes to
 * wslay in chunks and pretending every send completes, so no socket, timer or ring is needed.
 *
 * Input: one control byte, then the bytes. Control bits 0-1: 0 a binary message alone, 1 a
 * response head then frames, 2-3 frames alone; bits 2-4 the recv chunk size; bit 5 a small
 * max_message (64 bytes); bit 6 answer every text message with comfy_ws_send_text. Besides
 * sanitizer reports it checks the promises callers rely on: a head is accepted only as a 101
 * with our accept key, a message never exceeds max_message, text is NUL-terminated valid UTF-8,
 * wslay always uses up the bytes it is given unless it stopped reading, a stop is for a reason
 * comfy_ws knows, and a binary message's parts tile it exactly.
 * Seed corpus: fuzz/corpus/comfy_ws/ (transcript-shaped heads, frames and binary previews). */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"
#include "comfy/comfy_ws.c"

/* RFC 6455 section 1.3's key and its accept value, as ws_build_request would remember them. */
#define FUZZ_KEY "dGhlIHNhbXBsZSBub25jZQ=="
#define FUZZ_ACCEPT "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="

static const size_t chunk_sizes[8] = {1, 2, 3, 7, 64, 1000, 4096, SIZE_MAX};

struct fuzz_ctx {
    struct comfy_ws *ws;
    bool reply;
};

/* Strict UTF-8 (no overlongs, no surrogates, at most U+10FFFF), as RFC 6455 demands of text. */
static bool utf8_valid(const unsigned char *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned c = p[i];
        size_t k = c < 0x80             ? 0
                   : (c & 0xe0) == 0xc0 ? 1
                   : (c & 0xf0) == 0xe0 ? 2
                   : (c & 0xf8) == 0xf0 ? 3
                                        : 4;
        if (k == 4 || (k == 1 && c < 0xc2) || (k == 3 && c > 0xf4) || n - i - 1 < k)
            return false;
        uint32_t cp = k == 0 ? c : c & (0x3f >> k);
        for (size_t j = 1; j <= k; j++) {
            if ((p[i + j] & 0xc0) != 0x80)
                return false;
            cp = cp << 6 | (p[i + j] & 0x3f);
        }
        if ((k == 2 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
            (k == 3 && (cp < 0x10000 || cp > 0x10ffff)))
            return false;
        i += k + 1;
    }
    return true;
}

static void check_binary(const unsigned char *p, size_t n)
{
    struct comfy_ws_binary m;
    int rc = comfy_ws_binary_parse(p, n, &m);
    if (rc < 0) {
        CHECK(rc == -EBADMSG);
        return;
    }
    CHECK(rc == 0 && n >= 4 && m.type == be32(p));
    CHECK(m.data >= p && m.len <= n && m.data + m.len == p + n);
    size_t head = 4;
    if (m.type >= COMFY_WS_BIN_PREVIEW_IMAGE && m.type <= COMFY_WS_BIN_PREVIEW_WITH_METADATA) {
        CHECK(n >= 8);
        head = 8;
    }
    if (m.type == COMFY_WS_BIN_TEXT) {
        CHECK(m.node_id == (const char *)p + 8 && m.node_id_len == be32(p + 4));
        head += m.node_id_len;
    } else {
        CHECK(!m.node_id && !m.node_id_len);
    }
    if (m.type == COMFY_WS_BIN_PREVIEW_WITH_METADATA) {
        CHECK(m.meta == (const char *)p + 8 && m.meta_len == be32(p + 4));
        head += m.meta_len;
    } else {
        CHECK(!m.meta && !m.meta_len);
    }
    if (m.type == COMFY_WS_BIN_PREVIEW_IMAGE || m.type == COMFY_WS_BIN_UNENCODED_PREVIEW_IMAGE)
        CHECK(m.image_format == be32(p + 4));
    else
        CHECK(m.image_format == 0);
    CHECK(m.data == p + head);
}

static void on_text(void *ctx, const char *p, size_t n)
{
    struct fuzz_ctx *f = ctx;
    CHECK(n <= f->ws->cfg.max_message && p[n] == '\0');
    CHECK(utf8_valid((const unsigned char *)p, n));
    if (f->reply) { /* what an owner may do from inside the callback */
        int rc = comfy_ws_send_text(f->ws, p, n);
        CHECK(rc == 0 || rc == -ENOBUFS || rc == -ENOMEM);
    }
}

static void on_binary(void *ctx, const unsigned char *p, size_t n)
{
    struct fuzz_ctx *f = ctx;
    CHECK(n <= f->ws->cfg.max_message);
    check_binary(p, n);
}

static void on_close(void *ctx, int err)
{
    abort(); /* only ws_teardown calls it, and nothing here reaches the ring */
}

static const struct comfy_ws_ops fuzz_ops = {
    .on_text = on_text, .on_binary = on_binary, .on_close = on_close};

/* What send_cb does once the socket took every byte: the frames wslay queued (pongs, the close
 * reply, text answers) are pulled into `out` and dropped. */
static void drain(struct comfy_ws *ws)
{
    for (int i = 0; i < 64 && wslay_event_want_write(ws->wslay); i++) {
        size_t before = ws->out_len;
        if (wslay_event_send(ws->wslay) < 0)
            return;
        CHECK(ws->out_len <= COMFY_WS_OUT_MAX && ws->out_len >= before);
        ws->out_len = 0;
    }
}

/* ws_feed without the ring: wslay reads until our recv callback runs dry or it stops. */
static void feed(struct comfy_ws *ws, const unsigned char *p, size_t n, size_t chunk)
{
    while (n > 0 && wslay_event_get_read_enabled(ws->wslay)) {
        size_t k = n < chunk ? n : chunk;
        ws->in = p;
        ws->in_len = k;
        ws->in_wslay = true;
        int rv = wslay_event_recv(ws->wslay);
        ws->in_wslay = false;
        CHECK(ws->in_len == 0 || rv < 0 || !wslay_event_get_read_enabled(ws->wslay));
        ws->in = NULL;
        ws->in_len = 0;
        CHECK(ws->msg.len <= ws->cfg.max_message);
        if (rv < 0) /* ws_fail(-EPROTO or -ENOMEM): the connection is gone */
            return;
        p += k;
        n -= k;
        drain(ws);
    }
    if (!wslay_event_get_read_enabled(ws->wslay) && !wslay_event_get_close_received(ws->wslay))
        CHECK(ws->rx_err == 0 || ws->rx_err == -EMSGSIZE || ws->rx_err == -ENOMEM);
}

/* ws_head_input over one buffer: the head through its blank line, then frames. */
static void handshake(struct comfy_ws *ws, const unsigned char *p, size_t n, size_t chunk)
{
    size_t k = n < COMFY_WS_HEAD_MAX ? n : COMFY_WS_HEAD_MAX;
    const char *e = memmem(p, k, "\r\n\r\n", 4);
    if (!e)
        return; /* more to come, or -EPROTO once COMFY_WS_HEAD_MAX bytes came */
    size_t head = (size_t)(e - (const char *)p) + 4;
    int status = -1;
    int rc = head_check((const char *)p, head, ws->accept, &status);
    CHECK(rc == 0 || rc == -EPROTO);
    CHECK(status >= 0 && status <= 999);
    if (rc < 0)
        return;
    CHECK(status == 101 && memmem(p, head, FUZZ_ACCEPT, strlen(FUZZ_ACCEPT)));
    ws->state = COMFY_WS_OPEN; /* ws_opened, less its timers */
    feed(ws, p + head, n - head, chunk);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    unsigned ctl = data[0];
    const unsigned char *p = data + 1;
    size_t n = size - 1;
    if ((ctl & 3) == 0) {
        check_binary(p, n);
        return 0;
    }
    static struct comfy_ws ws;
    struct comfy_ws_config cfg = {.max_message = (ctl & 0x20) ? 64 : (size_t)1 << 20};
    struct fuzz_ctx f = {.ws = &ws, .reply = (ctl & 0x40) != 0};
    memset(&ws, 0, sizeof(ws));
    ws.fd = -1;
    ws.ops = &fuzz_ops;
    ws.ctx = &f;
    ws.rng = 1; /* mask keys: deterministic, so a crash replays */
    config_apply(&ws.cfg, &cfg);
    CHECK(ws_alloc(&ws) == 0);
    ws_accept_for(FUZZ_KEY, ws.accept);
    CHECK(strcmp(ws.accept, FUZZ_ACCEPT) == 0);
    size_t chunk = chunk_sizes[(ctl >> 2) & 7];
    ws.state = (ctl & 3) == 1 ? COMFY_WS_HANDSHAKE : COMFY_WS_OPEN;
    if (ws.state == COMFY_WS_HANDSHAKE) {
        handshake(&ws, p, n, chunk);
    } else {
        feed(&ws, p, n, chunk);
    }
    ws_free_mem(&ws);
    return 0;
}
