/* comfy_ws — a WebSocket client for one ComfyUI server's progress stream (/ws?clientId=...),
 * driven by the ring.
 *
 * Why this way: Debian bookworm's libcurl (7.88) has no WebSocket support, so this is a plain TCP
 * client on the ring (IORING_OP_CONNECT, multishot recv into the ring's provided buffers, one
 * send in flight at a time) that uses Debian's wslay (libwslay-dev) only as a framing engine and
 * BearSSL's SHA-1 to verify Sec-WebSocket-Accept. wslay never touches the socket: its recv
 * callback reads the bytes of the receive completion being processed, and its send callback
 * copies into our fixed output buffer, which ring sends drain. No TLS: ComfyUI backends are
 * reached over a private network.
 *
 * What it owns: the socket, a fixed output buffer (COMFY_WS_OUT_MAX), a handshake buffer
 * (COMFY_WS_HEAD_MAX), the wslay context and the buffer a message is reassembled in (at most
 * max_message bytes; fragmented messages are joined before delivery).
 *
 * Liveness: a ping every ping_interval_ms; if nothing at all arrives (no frame, not even a pong)
 * for silence_timeout_ms the connection is dead and on_close(-ETIMEDOUT) runs.
 *
 * Lifetime: the owner embeds struct comfy_ws, zero-initialised before first use (that is the
 * idle state). After comfy_ws_open, ring operations point into the struct, so the owner must not
 * free or reuse it until comfy_ws_idle() is true again; on_release (optional) says exactly when.
 * Callbacks may call comfy_ws_send_text and comfy_ws_close, including from inside on_text /
 * on_binary / on_open / on_close: memory is released only when the last ring operation has
 * completed, never inside a callback other than on_release, which is the last thing comfy_ws
 * does with the struct (the owner may free it there). No callback runs synchronously inside
 * comfy_ws_open, comfy_ws_send_text or comfy_ws_close.
 *
 * Reconnecting is the owner's policy (the fleet: backoff, server health), not this module's:
 * after on_close, wait for idle (or on_release), then comfy_ws_open again. */
#ifndef COMFYGATE_COMFY_WS_H
#define COMFYGATE_COMFY_WS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "core/buf.h"
#include "ring/ring.h"

#define COMFY_WS_OUT_MAX 16384 /* output buffer; wslay keeps the rest queued until it drains */
#define COMFY_WS_HEAD_MAX 8192 /* largest 101 response head accepted */

/* A zero field takes the default in brackets. */
struct comfy_ws_config {
    uint32_t connect_timeout_ms;   /* TCP connect [5000] */
    uint32_t handshake_timeout_ms; /* connected → 101 response complete [5000] */
    uint32_t ping_interval_ms;     /* [30000] */
    uint32_t silence_timeout_ms;   /* nothing received for this long → -ETIMEDOUT [75000] */
    uint32_t close_timeout_ms;     /* how long a close handshake may take [2000] */
    size_t max_message;            /* largest message received, and the cap on queued outgoing
                                    * bytes [16 MiB] */
};

/* on_close err: 0 after a close handshake (either side started it; the peer's status code is
 * not reported); -ETIMEDOUT connect, handshake or silence timeout; a connect/recv/send error
 * (-ECONNREFUSED, -EHOSTUNREACH, -ECONNRESET, ...); -ECONNRESET also for EOF without a close
 * frame; -EPROTO a bad handshake (non-101 status: see comfy_ws_http_status) or a WebSocket
 * protocol error (bad framing, invalid UTF-8 text); -EMSGSIZE a message over max_message;
 * -ENOMEM. on_close runs at most once per open, and never after comfy_ws_close. */
struct comfy_ws_ops {
    void (*on_open)(void *ctx);
    /* Valid UTF-8 (checked by wslay); p[n] is '\0'. p is valid only during the call. */
    void (*on_text)(void *ctx, const char *p, size_t n);
    void (*on_binary)(void *ctx, const unsigned char *p, size_t n);
    void (*on_close)(void *ctx, int err);
    void (*on_release)(void *ctx); /* optional: idle again; the struct may be freed or reopened */
};

enum comfy_ws_state {
    COMFY_WS_IDLE = 0,   /* zeroed, or released */
    COMFY_WS_CONNECTING, /* TCP connect in flight */
    COMFY_WS_HANDSHAKE,  /* upgrade request sent, waiting for 101 */
    COMFY_WS_OPEN,
    COMFY_WS_CLOSING, /* close frame queued; waiting for it to go and/or the peer's */
    COMFY_WS_DEAD,    /* socket closing; waiting for ring operations to finish */
};

struct wslay_event_context;

struct comfy_ws {
    struct ring *ring;
    const struct comfy_ws_ops *ops;
    void *ctx;
    struct comfy_ws_config cfg;   /* defaults applied */
    struct sockaddr_storage addr; /* the kernel reads it at submit time, not at prep time */
    socklen_t alen;
    enum comfy_ws_state state;
    int fd;
    unsigned inflight; /* ring operations outstanding; released only at zero */
    bool owner_closed; /* comfy_ws_close was called: no on_close */
    bool recv_armed;
    bool sending;
    bool in_wslay;   /* inside wslay_event_recv: do not re-enter wslay */
    bool kick_armed; /* a NOP is in flight to report err_later */
    bool frame_ctrl; /* the frame being received is a control frame */
    int err_later;   /* sticky error found outside a completion, reported by the NOP */
    int rx_err;      /* why wslay stopped reading (-EMSGSIZE, -ENOMEM); 0: protocol */
    int close_err;   /* the verdict, fixed when CLOSING starts */
    int http_status; /* status code of the handshake response, 0 before one parses */
    struct ring_op connect_op, recv_op, send_op, close_op, kick_op;
    struct ring_timer phase_timer; /* connect, handshake, silence or close deadline, by state */
    struct ring_timer ping_timer;
    uint64_t last_rx_ns;
    uint64_t rng; /* mask keys (splitmix64, seeded from getrandom) */
    struct wslay_event_context *wslay;
    struct buf msg;          /* message being reassembled (max cfg.max_message) */
    const unsigned char *in; /* bytes being fed to wslay: a view, not a copy */
    size_t in_len;
    unsigned char *out; /* COMFY_WS_OUT_MAX; never moves while a send is in flight */
    size_t out_len;     /* a send in flight covers a prefix of it */
    char *head;         /* COMFY_WS_HEAD_MAX: the handshake response */
    size_t head_len;
    char accept[32]; /* the Sec-WebSocket-Accept we expect */
};

/* Starts connecting. host_header is the Host value ("10.0.0.5:8188"); path_and_query starts with
 * '/' ("/ws?clientId=..."); neither may hold spaces or control characters. No Origin header is
 * sent: ComfyUI refuses requests whose Origin does not match Host (transcript 16). cfg may be
 * NULL. ops and ctx must outlive the connection. ws must be idle. Returns 0 (every outcome is
 * then reported through ops), -EINVAL, -ENAMETOOLONG (request over COMFY_WS_OUT_MAX), -ENOMEM,
 * -ENOSPC (ring timers), or a socket() error. */
int comfy_ws_open(struct comfy_ws *ws, struct ring *r, const struct sockaddr *addr, socklen_t alen,
                  const char *host_header, const char *path_and_query,
                  const struct comfy_ws_config *cfg, const struct comfy_ws_ops *ops, void *ctx);

/* Queues one text message. -ENOTCONN unless open; -ENOBUFS if the queued bytes would pass
 * max_message; -ENOMEM. */
int comfy_ws_send_text(struct comfy_ws *ws, const char *p, size_t n);

/* Owner-initiated close: sends a close frame (1000) when open, waits briefly for the peer's
 * reply, then closes the socket. No on_close afterwards; on_release still runs. Idempotent. */
void comfy_ws_close(struct comfy_ws *ws);

bool comfy_ws_idle(const struct comfy_ws *ws);
bool comfy_ws_is_open(const struct comfy_ws *ws);
/* Status code of the last handshake response (e.g. 403, 404 behind -EPROTO); 0 if none. */
int comfy_ws_http_status(const struct comfy_ws *ws);

/* --- ComfyUI binary messages ---------------------------------------------------------------
 * Every binary message starts with a u32be event type (server.py encode_bytes). */
enum comfy_ws_bin_type {
    COMFY_WS_BIN_PREVIEW_IMAGE = 1,           /* u32be image format, image bytes */
    COMFY_WS_BIN_UNENCODED_PREVIEW_IMAGE = 2, /* same layout */
    COMFY_WS_BIN_TEXT = 3,                    /* u32be node id length, node id, UTF-8 text */
    COMFY_WS_BIN_PREVIEW_WITH_METADATA = 4,   /* u32be JSON length, JSON, image bytes */
};

enum comfy_ws_image_format { COMFY_WS_IMAGE_JPEG = 1, COMFY_WS_IMAGE_PNG = 2 };

struct comfy_ws_binary {
    uint32_t type;
    uint32_t image_format; /* types 1 and 2 (enum comfy_ws_image_format, not checked) */
    const char *node_id;   /* type 3; not NUL-terminated */
    size_t node_id_len;
    const char *meta; /* type 4: the JSON metadata; not NUL-terminated */
    size_t meta_len;
    const unsigned char *data; /* type 3 text, types 1/2/4 image; other types: all after the type */
    size_t len;
};

/* Pure: points into p. 0, or -EBADMSG when the message is shorter than its own lengths say. */
int comfy_ws_binary_parse(const unsigned char *p, size_t n, struct comfy_ws_binary *out);

#endif
