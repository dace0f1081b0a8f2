/* ts_net — raw TCP clients for the tests: connect, send (all at once or one byte at a time),
 * and read HTTP/1.1 responses with a deadline, parsed into status, headers and body.
 *
 * A struct ts_conn keeps what was read past the current response, so pipelined responses
 * are read one after the other. Every wait has a timeout: a server that never answers makes a
 * check fail instead of hanging the suite. */
#ifndef COMFYGATE_TS_NET_H
#define COMFYGATE_TS_NET_H

#include <stdbool.h>
#include <stddef.h>

struct ts_conn {
    int fd;
    char *buf; /* received, not yet consumed */
    size_t len, cap;
    bool eof;  /* the peer closed (FIN or RST; under TLS also close_notify or a fatal alert) */
    void *tls; /* an OpenSSL SSL * once ts_tls_start has run: sends and receives use it */
};

#define TS_MAX_HDRS 64

struct ts_hdr {
    const char *name;
    const char *value;
};

struct ts_resp {
    int status;
    char *head; /* the response head, split into NUL-terminated names and values */
    struct ts_hdr hdrs[TS_MAX_HDRS];
    unsigned nhdrs;
    char *body; /* NUL-terminated (not counted) */
    size_t body_len;
    bool chunked;
};

/* 0, or -errno. The socket has TCP_NODELAY, so byte-at-a-time sends leave one by one. */
int ts_conn_open(struct ts_conn *c, int port);
void ts_conn_close(struct ts_conn *c);
/* Closes with SO_LINGER 0: the peer sees a reset rather than a FIN. */
void ts_conn_abort(struct ts_conn *c);
int ts_conn_send(struct ts_conn *c, const void *p, size_t n);
int ts_conn_send_str(struct ts_conn *c, const char *s);
/* One byte per send(), delay_ms apart. */
int ts_conn_send_slow(struct ts_conn *c, const void *p, size_t n, unsigned delay_ms);
/* Receives whatever arrives within timeout_ms into the buffer: bytes read, 0 at EOF,
 * -ETIMEDOUT, or -errno (ECONNRESET counts as EOF). */
int ts_conn_fill(struct ts_conn *c, int timeout_ms);

/* Reads and parses one response head; the body stays in the buffer. 0 or -errno
 * (-EPROTO: malformed, -ECONNRESET: closed first). */
int ts_read_head(struct ts_conn *c, struct ts_resp *r, int timeout_ms);
/* Reads the body of a response whose head was read (none for HEAD, 1xx, 204, 304). */
int ts_read_body(struct ts_conn *c, struct ts_resp *r, bool head_request, int timeout_ms);
/* Both. */
int ts_read_response(struct ts_conn *c, struct ts_resp *r, bool head_request, int timeout_ms);
void ts_resp_free(struct ts_resp *r);
/* Case-insensitive lookup: the first value, or NULL. */
const char *ts_resp_header(const struct ts_resp *r, const char *name);
unsigned ts_resp_header_count(const struct ts_resp *r, const char *name);

/* Waits for the peer to close: 0 if EOF (or reset) comes with no further bytes, -EPROTO if
 * bytes came instead (left in the buffer), -ETIMEDOUT. */
int ts_conn_expect_eof(struct ts_conn *c, int timeout_ms);
/* Drops n bytes from the front of the buffer. */
void ts_conn_consume(struct ts_conn *c, size_t n);

/* One-shot: GET path on a new connection; the status, or -errno. */
int ts_http_status(int port, const char *path, int timeout_ms);
/* One-shot request (raw bytes) and its response; 0 or -errno. */
int ts_http_exchange(int port, const char *req, struct ts_resp *r, int timeout_ms);

#endif
