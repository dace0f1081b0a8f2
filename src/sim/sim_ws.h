/*
 * sim_ws — the server side of one WebSocket (ComfyUI's /ws), over an upgraded HTTP connection.
 *
 * The HTTP layer keeps the socket; wslay (Debian's libwslay) is only the framing engine: its
 * recv callback reads from the bytes the connection handed us, its send callback queues on
 * the connection. Sec-WebSocket-Accept uses BearSSL's SHA-1. A session owns its wslay context
 * and at most SIM_WS_IN_MAX unread input bytes; a client that stops reading is dropped once
 * the connection's output cap is reached, as a slow consumer must not hold memory.
 */
#ifndef SIM_WS_H
#define SIM_WS_H

#include <stddef.h>
#include <stdint.h>

#include "http/http_server.h"

#define SIM_WS_IN_MAX (1u << 20)  /* buffered input bytes */
#define SIM_WS_MSG_MAX (1u << 20) /* largest message accepted from a client */

struct sim_ws;

struct sim_ws_ops {
    /* A text message (feature_flags ...); p is valid during the call only. */
    void (*on_text_cb)(void *ctx, struct sim_ws *ws, const char *p, size_t n);
    /* The session is over; it is freed right after this returns. */
    void (*on_close_cb)(void *ctx, struct sim_ws *ws);
};

/* Answers an upgrade request with 101 and takes the connection over. On failure answers the
 * request itself (400/426/500) and returns NULL. */
struct sim_ws *sim_ws_accept(struct http_exchange *ex, const struct sim_ws_ops *ops, void *ctx);
/* Queue a message. -EPIPE means the session died (client gone or not reading): the owner
 * then forgets it and calls sim_ws_close. Sending never frees the session. */
int sim_ws_send_text(struct sim_ws *ws, const char *p, size_t n);
int sim_ws_send_binary(struct sim_ws *ws, const uint8_t *p, size_t n);
/* Owner side end: sends a close frame if it still can and frees the session (without
 * on_close_cb). Safe from inside the session's own callbacks. */
void sim_ws_close(struct sim_ws *ws);
/* Owner side end without the close handshake: frames already queued still go out, then the
 * TCP connection is closed and the session freed (without on_close_cb), so the client sees
 * EOF but no close frame, as when a server dies. Safe from inside the session's callbacks. */
void sim_ws_abort(struct sim_ws *ws);
/* The caller's tag for this session (the sid, for comfysim). */
void sim_ws_set_user(struct sim_ws *ws, void *user);
void *sim_ws_user(const struct sim_ws *ws);
/* Base64 of n bytes into out (4 * ((n + 2) / 3) + 1 bytes). */
void sim_ws_base64(const uint8_t *p, size_t n, char *out);

#endif
