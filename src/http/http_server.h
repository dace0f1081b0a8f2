/* http_server — the HTTP/1.1 server of one reactor, and the API handlers use.
 *
 * Each reactor runs its own http_server on its own SO_REUSEPORT listener. A request is handed
 * to its route's handler as a `struct http_exchange`; the handler answers at once or later
 * (http_respond* from the same reactor thread), streams (http_stream_*), serves a file
 * (http_respond_file, zero-copy through splice), or takes the connection over
 * (http_upgrade, for WebSocket). Pipelined requests are answered strictly in order: the next
 * request on a connection is parsed only once the current one has its full response queued.
 * With a struct tls_server in the configuration every connection speaks TLS (http_tls.c);
 * handlers see no difference. */
#ifndef COMFYGATE_HTTP_SERVER_H
#define COMFYGATE_HTTP_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/log.h"
#include "http/http_parser.h"
#include "http/http_router.h"
#include "ring/ring.h"

struct tls_server;

struct http_server_config {
    struct http_limits limits;
    uint32_t header_timeout_ms;   /* first byte of a request → end of headers (408) */
    uint32_t body_timeout_ms;     /* end of headers → end of body (408) */
    uint32_t idle_timeout_ms;     /* keep-alive connection with nothing to do */
    uint32_t send_timeout_ms;     /* no send progress for this long → close */
    uint32_t linger_ms;           /* drain after an error response before closing */
    uint32_t shutdown_timeout_ms; /* SIGTERM → in-flight requests get this long */
    size_t max_conns;             /* per reactor; beyond it new connections are closed */
    size_t max_out_bytes;         /* queued response bytes per connection before backpressure */
    size_t zc_threshold;          /* in-memory bodies at least this big go by send_zc; 0 = off */
    size_t pipe_size;             /* splice pipe capacity */
    bool access_log;
    const char *server_name;
    /* Every connection speaks TLS with these keys (src/tls); NULL: plain HTTP. The header
     * timeout covers the handshake. */
    const struct tls_server *tls;
    /* Runs for every parsed request before its route's handler, also when no route matched
     * (404/405, CORS preflights): it may add headers, fill the exchange's app slot, or answer
     * itself (returning true: the handler then does not run). NULL: none. */
    bool (*before_route)(struct http_exchange *ex, enum http_match_result mr,
                         const struct http_match *m);
};

struct http_server;
struct http_exchange;
struct http_conn;

int http_server_new(struct http_server **out, struct ring *r, struct logger *log,
                    const struct http_server_config *cfg, const struct http_router *router,
                    int listen_fd, void *app);
/* Stops accepting, closes idle connections, lets in-flight requests finish until the shutdown
 * timeout, then closes the rest. */
void http_server_shutdown(struct http_server *s);
/* True when no connection is left. */
bool http_server_drained(const struct http_server *s);
void http_server_free(struct http_server *s);
size_t http_server_conn_count(const struct http_server *s);

/* --- the exchange: what a handler gets ----------------------------------------------------- */
const struct http_request *http_req(const struct http_exchange *ex);
const char *http_request_id(const struct http_exchange *ex);
/* Path parameter by name (not NUL-terminated), or NULL. */
const char *http_param(const struct http_exchange *ex, const char *name, size_t *len);
/* Copies a path parameter into dst; returns its length or -1 if absent or too long. */
int http_param_copy(const struct http_exchange *ex, const char *name, char *dst, size_t cap);
struct ring *http_ring(const struct http_exchange *ex);
/* The client's address ("host:port"), for audit records. */
const char *http_peer(const struct http_exchange *ex);
/* The client's address alone ("192.0.2.1", "2001:db8::1"), for rate limits. */
const char *http_peer_ip(const struct http_exchange *ex);
/* A small per-request scratch area for the application (e.g. who is calling), zeroed before
 * each request. */
#define HTTP_APP_SLOT_SIZE 512
void *http_app_slot(struct http_exchange *ex);
const void *http_app_slot_const(const struct http_exchange *ex);
struct logger *http_logger(const struct http_exchange *ex);
void *http_app(const struct http_exchange *ex);
bool http_is_head(const struct http_exchange *ex);

/* Adds a response header (copied); call before responding. Returns -ENOBUFS if too many. */
int http_add_header(struct http_exchange *ex, const char *name, const char *value);

/* Complete responses. The body is copied (http_respond) or taken over (http_respond_owned,
 * which calls free_fn when sent). */
void http_respond(struct http_exchange *ex, int status, const char *ctype, const void *body,
                  size_t len);
void http_respond_owned(struct http_exchange *ex, int status, const char *ctype, void *body,
                        size_t len, void (*free_fn)(void *));
void http_respond_json(struct http_exchange *ex, int status, const char *json);
/* {"error":{"code":..,"message":..,"requestId":..}} */
void http_respond_error(struct http_exchange *ex, int status, const char *code, const char *fmt,
                        ...) __attribute__((format(printf, 4, 5)));

/* Chunked streaming (SSE, base64 streams). Writes return -ENOBUFS when the client is not
 * reading and the per-connection output cap is reached, -EPIPE when it is gone. */
int http_stream_begin(struct http_exchange *ex, int status, const char *ctype);
int http_stream_write(struct http_exchange *ex, const void *p, size_t n);
void http_stream_end(struct http_exchange *ex);
/* Ends a stream cut short (a file that could not be read, say): no terminating chunk, and the
 * connection closes, so the client sees a truncated body rather than a complete one. */
void http_stream_abort(struct http_exchange *ex);
/* Bytes queued for the client and not yet sent. */
size_t http_stream_pending(const struct http_exchange *ex);
/* Calls cb once the queue has drained to half of max_out_bytes (at once if it already has). */
void http_stream_on_drain(struct http_exchange *ex, void (*cb)(struct http_exchange *, void *),
                          void *arg);

/* Streams dirfd/relpath as {"filename":..,"mime":..,"data":"<base64>"}: read through the
 * ring in chunks and encoded as it goes, never whole in memory (http_b64.c). */
void http_respond_file_base64(struct http_exchange *ex, int dirfd, const char *relpath,
                              const char *filename, const char *mime);
/* Appends the base64 of dirfd/relpath (no quotes around it) to a stream begun with
 * http_stream_begin, then calls done (err: 0, or -errno when the file could not be read or the
 * client went away; the caller then ends the stream). */
typedef void (*http_b64_done_fn)(struct http_exchange *ex, void *arg, int err);
void http_stream_file_base64(struct http_exchange *ex, int dirfd, const char *relpath,
                             http_b64_done_fn done, void *arg);
/* The same for a file the caller opened (fd is taken, closed once read, even on error). */
void http_stream_fd_base64(struct http_exchange *ex, int fd, http_b64_done_fn done, void *arg);

struct http_file_opts {
    const char *content_type;        /* NULL: by extension */
    const char *disposition_name;    /* adds Content-Disposition: filename="..." */
    const char *cache_control;       /* NULL: none */
};
/* Serves dirfd/relpath with Range, ETag/If-None-Match, Last-Modified; the path can never
 * leave dirfd (openat2 RESOLVE_BENEATH, no symlinks). Opens asynchronously through the ring. */
void http_respond_file(struct http_exchange *ex, int dirfd, const char *relpath,
                       const struct http_file_opts *opts);

/* Told when the client goes away while an asynchronous handler still owns the exchange. The
 * handler must still call one of the http_respond* functions (it is then dropped cheaply). */
void http_on_abort(struct http_exchange *ex, void (*cb)(struct http_exchange *, void *),
                   void *arg);

/* --- connection take-over (WebSocket) ------------------------------------------------------ */
struct http_upgrade_ops {
    void (*on_data)(void *ctx, const char *p, size_t n);
    void (*on_close)(void *ctx); /* the connection is gone; do not touch it again */
};
/* Sends "101 Switching Protocols" with the given extra header lines ("Name: value\r\n"...) and
 * hands every later byte to ops. */
struct http_conn *http_upgrade(struct http_exchange *ex, const char *headers,
                               const struct http_upgrade_ops *ops, void *ctx);
int http_conn_write(struct http_conn *c, const void *p, size_t n);
void http_conn_close(struct http_conn *c);

const char *http_status_reason(int status);

#endif
