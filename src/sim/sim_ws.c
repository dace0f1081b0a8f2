/*
 * sim_ws — server WebSocket sessions: wslay framing over an upgraded connection (sim_ws.h).
 */
#include "sim/sim_ws.h"

#include <bearssl.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <wslay/wslay.h>

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

struct sim_ws {
    struct http_conn *conn;
    wslay_event_context_ptr ctx;
    const struct sim_ws_ops *ops;
    void *owner;
    void *user;
    uint8_t *in; /* received, not yet framed bytes */
    size_t in_len, in_off;
    int depth; /* > 0 while wslay or a callback is on the stack */
    bool dead; /* the connection is gone or being closed */
    bool told; /* on_close_cb has run */
};

void sim_ws_base64(const uint8_t *p, size_t n, char *out)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0) |
                     (i + 2 < n ? p[i + 2] : 0);
        out[o++] = tab[(v >> 18) & 63];
        out[o++] = tab[(v >> 12) & 63];
        out[o++] = i + 1 < n ? tab[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < n ? tab[v & 63] : '=';
    }
    out[o] = 0;
}

/* Ends the session once nothing of it is on the stack. */
static void finish(struct sim_ws *ws)
{
    if (!ws->dead || ws->depth > 0)
        return;
    if (!ws->told) {
        ws->told = true;
        ws->ops->on_close_cb(ws->owner, ws);
    }
    wslay_event_context_free(ws->ctx);
    free(ws->in);
    free(ws);
}

static ssize_t recv_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags, void *user)
{
    struct sim_ws *ws = user;
    size_t avail = ws->in_len - ws->in_off;
    (void)flags;
    if (avail == 0) {
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    size_t n = avail < len ? avail : len;
    memcpy(buf, ws->in + ws->in_off, n);
    ws->in_off += n;
    return (ssize_t)n;
}

static ssize_t send_cb(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags,
                       void *user)
{
    struct sim_ws *ws = user;
    (void)flags;
    if (ws->dead || http_conn_write(ws->conn, data, len) < 0) {
        /* gone, or a client that does not read: drop it rather than buffer without end */
        wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
        return -1;
    }
    return (ssize_t)len;
}

static void msg_cb(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *arg,
                   void *user)
{
    struct sim_ws *ws = user;
    (void)ctx;
    if (arg->opcode == WSLAY_TEXT_FRAME && !ws->dead)
        ws->ops->on_text_cb(ws->owner, ws, (const char *)arg->msg, arg->msg_length);
}

static void drop(struct sim_ws *ws)
{
    if (ws->dead)
        return;
    ws->dead = true;
    http_conn_close(ws->conn); /* no on_close comes back after this */
}

/* Pushes queued frames out; a protocol end (close exchanged, error) ends the session. */
static void pump(struct sim_ws *ws)
{
    if (ws->dead)
        return;
    ws->depth++;
    int rc = wslay_event_send(ws->ctx);
    ws->depth--;
    if (rc != 0 || (!wslay_event_want_read(ws->ctx) && !wslay_event_want_write(ws->ctx)))
        drop(ws);
}

static void on_data(void *ctx, const char *p, size_t n)
{
    struct sim_ws *ws = ctx;
    if (ws->dead)
        return;
    /* compact, then append */
    memmove(ws->in, ws->in + ws->in_off, ws->in_len - ws->in_off);
    ws->in_len -= ws->in_off;
    ws->in_off = 0;
    if (n > SIM_WS_IN_MAX - ws->in_len) {
        drop(ws);
        finish(ws);
        return;
    }
    memcpy(ws->in + ws->in_len, p, n);
    ws->in_len += n;
    ws->depth++;
    int rc = wslay_event_recv(ws->ctx);
    ws->depth--;
    if (rc != 0)
        drop(ws);
    pump(ws);
    finish(ws);
}

static void on_close(void *ctx)
{
    struct sim_ws *ws = ctx;
    ws->dead = true;
    finish(ws);
}

static const struct http_upgrade_ops upgrade_ops = {on_data, on_close};

/* Sec-WebSocket-Accept for the request's key, or false if the handshake is not valid. */
static bool accept_key(const struct http_request *r, char *out)
{
    size_t klen = 0, vlen = 0, ulen = 0;
    const char *key = http_header_get(r, "Sec-WebSocket-Key", &klen);
    const char *ver = http_header_get(r, "Sec-WebSocket-Version", &vlen);
    const char *up = http_header_get(r, "Upgrade", &ulen);
    if (key == NULL || klen == 0 || klen > 64 || ver == NULL || vlen != 2 ||
        memcmp(ver, "13", 2) != 0 || up == NULL || ulen != 9 || strncasecmp(up, "websocket", 9))
        return false;
    br_sha1_context sha;
    uint8_t digest[20];
    br_sha1_init(&sha);
    br_sha1_update(&sha, key, klen);
    br_sha1_update(&sha, WS_GUID, strlen(WS_GUID));
    br_sha1_out(&sha, digest);
    sim_ws_base64(digest, sizeof(digest), out);
    return true;
}

struct sim_ws *sim_ws_accept(struct http_exchange *ex, const struct sim_ws_ops *ops, void *ctx)
{
    char acc[40], headers[160];
    if (!accept_key(http_req(ex), acc)) {
        http_respond(ex, 400, "text/plain; charset=utf-8", "", 0);
        return NULL;
    }
    struct sim_ws *ws = calloc(1, sizeof(*ws));
    struct wslay_event_callbacks cbs = {recv_cb, send_cb, NULL, NULL, NULL, NULL, msg_cb};
    if (ws == NULL || (ws->in = malloc(SIM_WS_IN_MAX)) == NULL ||
        wslay_event_context_server_init(&ws->ctx, &cbs, ws) != 0) {
        if (ws != NULL)
            free(ws->in);
        free(ws);
        http_respond(ex, 500, "text/plain; charset=utf-8", "", 0);
        return NULL;
    }
    wslay_event_config_set_max_recv_msg_length(ws->ctx, SIM_WS_MSG_MAX);
    ws->ops = ops;
    ws->owner = ctx;
    snprintf(headers, sizeof(headers),
             "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n", acc);
    ws->conn = http_upgrade(ex, headers, &upgrade_ops, ws);
    if (ws->conn == NULL) {
        wslay_event_context_free(ws->ctx);
        free(ws->in);
        free(ws);
        return NULL;
    }
    return ws;
}

static int send_msg(struct sim_ws *ws, uint8_t opcode, const uint8_t *p, size_t n)
{
    if (ws->dead)
        return -EPIPE;
    struct wslay_event_msg msg = {opcode, p, n};
    if (wslay_event_queue_msg(ws->ctx, &msg) != 0)
        return -ENOMEM;
    pump(ws);
    return ws->dead ? -EPIPE : 0; /* never freed here: the owner may be iterating */
}

int sim_ws_send_text(struct sim_ws *ws, const char *p, size_t n)
{
    return send_msg(ws, WSLAY_TEXT_FRAME, (const uint8_t *)p, n);
}

int sim_ws_send_binary(struct sim_ws *ws, const uint8_t *p, size_t n)
{
    return send_msg(ws, WSLAY_BINARY_FRAME, p, n);
}

void sim_ws_close(struct sim_ws *ws)
{
    ws->told = true; /* the owner is closing it: no on_close_cb */
    if (!ws->dead) {
        wslay_event_queue_close(ws->ctx, WSLAY_CODE_NORMAL_CLOSURE, NULL, 0);
        pump(ws);
        drop(ws);
    }
    finish(ws);
}

void sim_ws_abort(struct sim_ws *ws)
{
    ws->told = true; /* the owner is dropping it: no on_close_cb */
    drop(ws);        /* http_conn_close flushes what is queued, then closes */
    finish(ws);
}

void sim_ws_set_user(struct sim_ws *ws, void *user)
{
    ws->user = user;
}

void *sim_ws_user(const struct sim_ws *ws)
{
    return ws->user;
}
