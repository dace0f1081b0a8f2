/* http_tls — TLS on a connection: a BearSSL server engine (src/tls) between the socket and the
 * HTTP layer, driven from the ring by the engine's state bitmask (SENDREC, RECVREC, SENDAPP,
 * RECVAPP, CLOSED). Engine errors are sticky: the first one ends the connection, logged at debug
 * level with the peer, and costs the server nothing else.
 *
 * Input: ciphertext from the multishot receive goes into the engine; the plaintext that comes
 * out takes the same path plain bytes take (conn_input). What the engine cannot take yet — it
 * must first send its own flight of the handshake — waits in c->tls_in and goes in after the
 * next send.
 *
 * Output: the queue (http_out.c) holds plaintext as always. conn_tls_flush copies it into the
 * engine, seals a record when the queue runs dry, and sends each record with one
 * IORING_OP_SEND straight from the engine's buffer (BearSSL leaves a record untouched until it
 * is acknowledged, so no copy is needed). Back-pressure is unchanged: out_bytes counts what the
 * engine has not taken, and the engine holds at most one record more.
 *
 * Files: splice cannot pass through encryption, so under TLS a file body is read through the
 * ring (IORING_OP_READ, at most 16 KiB — one record — at a time into a pooled chunk) and
 * encrypted like memory; the next read is issued as soon as the previous one has been taken,
 * so it overlaps the send. The plain path (splice, send_zc) is untouched.
 *
 * Closing: once a closing connection's queue is out, close_notify is sent before the socket is
 * shut (and lingers, as a plain one does). A peer's close_notify, a TCP reset or an engine
 * error closes at once. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "http/http_internal.h"
#include "tls/tls.h"

static void tls_send_cb(struct ring_op *op, int res, uint32_t flags);
static void tls_read_cb(struct ring_op *op, int res, uint32_t flags);

int conn_tls_attach(struct http_conn *c)
{
    int rc = tls_conn_new(&c->tls, c->srv->cfg->tls);
    if (rc < 0)
        return rc;
    c->send_op.cb = tls_send_cb;
    c->tls_read_op.cb = tls_read_cb;
    return 0;
}

void conn_tls_release(struct http_conn *c)
{
    if (c->tls_fbuf)
        out_chunk_put(c->srv, c->tls_fbuf);
    c->tls_fbuf = NULL;
    buf_free(&c->tls_in);
    tls_conn_free(c->tls);
    c->tls = NULL;
}

static br_ssl_engine_context *engine(struct http_conn *c)
{
    return tls_engine(c->tls);
}

/* --- input ------------------------------------------------------------------------------------ */

static void handshake_done(struct http_conn *c);

static bool deliver(void *arg, const unsigned char *p, size_t n)
{
    struct http_conn *c = arg;
    if (!c->tls_ready) /* a client may send data with its Finished (False Start) */
        handshake_done(c);
    conn_input(c, (const char *)p, n);
    return !c->dead;
}

void conn_tls_input(struct http_conn *c, const char *data, size_t len)
{
    if (c->lingering)
        return;               /* close_notify is out: read and dropped */
    if (c->tls_in.len == 0) { /* else the engine still waits for its send: keep the order */
        size_t used = tls_conn_recv(c->tls, data, len, deliver, c);
        data += used;
        len -= used;
    }
    if (c->dead)
        return;
    if (len > 0 && buf_append(&c->tls_in, data, len) < 0) {
        LOG(c->srv->log, LOG_WARN, "tls input overflow, closing", "\"peer\":\"%s\",\"held\":%zu",
            c->peer, c->tls_in.len);
        conn_close(c);
        return;
    }
    conn_input_flow(c);
    out_flush_later(c); /* records to send (the handshake), or an error to act on */
}

/* Pushes held ciphertext once the engine's own record is out. */
static void push_held(struct http_conn *c)
{
    if (c->tls_in.len == 0 || c->dead)
        return;
    size_t used = tls_conn_recv(c->tls, c->tls_in.data, c->tls_in.len, deliver, c);
    if (c->dead)
        return;
    buf_consume(&c->tls_in, used);
    conn_input_flow(c);
}

/* --- engine state ------------------------------------------------------------------------------
 */

static void tls_closed(struct http_conn *c)
{
    int err = br_ssl_engine_last_error(engine(c));
    if (err == BR_ERR_OK)
        LOG(c->srv->log, LOG_DEBUG, "tls closed by peer", "\"peer\":\"%s\"", c->peer);
    else
        LOG(c->srv->log, LOG_DEBUG, "tls error",
            "\"peer\":\"%s\",\"error\":\"%s\",\"code\":%d,\"alert\":%d,\"handshake\":%s", c->peer,
            tls_error_name(err), err, err >= BR_ERR_RECV_FATAL_ALERT ? err & 255 : -1,
            c->tls_ready ? "true" : "false");
    conn_close(c);
}

static void handshake_done(struct http_conn *c)
{
    br_ssl_engine_context *e = engine(c);
    c->tls_ready = true;
    if (c->srv->log->level > LOG_DEBUG)
        return;
    const char *alpn = br_ssl_engine_get_selected_protocol(e);
    const char *sni = br_ssl_engine_get_server_name(e);
    char esni[300];
    json_escape(esni, sizeof(esni), sni, strlen(sni));
    LOG(c->srv->log, LOG_DEBUG, "tls handshake done",
        "\"peer\":\"%s\",\"suite\":\"%s\",\"alpn\":\"%s\",\"sni\":\"%s\"", c->peer,
        tls_suite_name(e->session.cipher_suite), alpn ? alpn : "", esni);
}

/* --- output ------------------------------------------------------------------------------------
 */

static void tls_send(struct http_conn *c)
{
    size_t len;
    unsigned char *p = br_ssl_engine_sendrec_buf(engine(c), &len);
    struct io_uring_sqe *sqe = ring_sqe(c->srv->ring);
    io_uring_prep_send(sqe, c->fd, p, len, MSG_NOSIGNAL);
    ring_sqe_set_op(sqe, &c->send_op);
    c->sending = true;
    c->inflight++;
}

static void tls_send_cb(struct ring_op *op, int res, uint32_t flags)
{
    struct http_conn *c = (struct http_conn *)((char *)op - offsetof(struct http_conn, send_op));
    c->sending = false;
    if (c->dead) {
        conn_op_done(c);
        return;
    }
    if (res == -EAGAIN || res == -EINTR) {
        conn_op_done(c);
        conn_tls_flush(c);
        return;
    }
    if (res <= 0) {
        conn_close(c);
    } else if (br_ssl_engine_current_state(engine(c)) & BR_SSL_CLOSED) {
        tls_closed(c); /* failed on input meanwhile: the record is void */
    } else {
        br_ssl_engine_sendrec_ack(engine(c), (size_t)res);
        if (c->tkind == T_SEND || c->tkind == T_NONE)
            conn_timer_set(c, T_SEND);
        push_held(c);
        /* as in send_cb: requests held back while the client was not reading */
        if (!c->dead && (c->pending.len > 0 || c->recv_paused))
            conn_input_resume(c);
    }
    conn_op_done(c);
    conn_tls_flush(c);
}

/* Reads the next piece of the file at the head of the queue, if it needs one. */
static void read_next(struct http_conn *c)
{
    struct out_chunk *h = out_first(c), *fb = c->tls_fbuf;
    if (c->tls_reading || c->dead || !h || h->kind != CH_FILE || h->read >= h->len ||
        (fb && fb->sent < fb->len))
        return;
    if (!fb) {
        fb = c->tls_fbuf = out_chunk_get(c->srv);
        if (!fb) {
            conn_close(c);
            return;
        }
    }
    size_t want = h->len - h->read < fb->cap ? h->len - h->read : fb->cap;
    fb->len = fb->sent = 0;
    struct io_uring_sqe *sqe = ring_sqe(c->srv->ring);
    io_uring_prep_read(sqe, h->fd, fb->data, (unsigned)want, (uint64_t)(h->off + (off_t)h->read));
    ring_sqe_set_op(sqe, &c->tls_read_op);
    c->tls_reading = true;
    c->inflight++;
}

static void tls_read_cb(struct ring_op *op, int res, uint32_t flags)
{
    struct http_conn *c =
        (struct http_conn *)((char *)op - offsetof(struct http_conn, tls_read_op));
    struct out_chunk *h = c->out_head;
    c->tls_reading = false;
    if (!c->dead && (res <= 0 || !h || h->kind != CH_FILE)) {
        conn_close(c); /* 0: the file shrank; the promised length can no longer be sent */
    } else if (!c->dead) {
        c->tls_fbuf->len = (size_t)res;
        h->read += (size_t)res;
    }
    conn_op_done(c);
    if (!c->dead)
        conn_tls_flush(c);
}

/* File bytes into the engine; false when there are none yet (a read is on its way). */
static bool feed_file(struct http_conn *c, unsigned char *dst, size_t room)
{
    struct out_chunk *fb = c->tls_fbuf;
    if (!fb || fb->sent == fb->len) {
        read_next(c);
        return false;
    }
    size_t n = fb->len - fb->sent < room ? fb->len - fb->sent : room;
    memcpy(dst, fb->data + fb->sent, n);
    fb->sent += n;
    br_ssl_engine_sendapp_ack(engine(c), n);
    out_advance(c, n);
    if (fb->sent == fb->len)
        read_next(c); /* overlaps the encryption and sending of what was just taken */
    return true;
}

/* Queued plaintext into the engine (it has room: SENDAPP). True if something changed: bytes
 * went in, or the queue ran dry and the engine sealed a record. */
static bool feed(struct http_conn *c)
{
    br_ssl_engine_context *e = engine(c);
    struct out_chunk *h = out_first(c);
    if (!h) {
        br_ssl_engine_flush(e, 0);
        return (br_ssl_engine_current_state(e) & BR_SSL_SENDREC) != 0;
    }
    size_t room;
    unsigned char *dst = br_ssl_engine_sendapp_buf(e, &room);
    if (h->kind == CH_FILE)
        return feed_file(c, dst, room);
    const char *src = (h->kind == CH_MEM ? h->data : h->ext) + h->sent;
    size_t n = h->len - h->sent < room ? h->len - h->sent : room;
    memcpy(dst, src, n);
    br_ssl_engine_sendapp_ack(e, n);
    out_advance(c, n);
    return true;
}

/* The read buffer goes back to the pool once no file is left to send. */
static void fbuf_trim(struct http_conn *c)
{
    struct out_chunk *fb = c->tls_fbuf;
    if (fb && !c->tls_reading && fb->sent == fb->len && c->out_files == 0) {
        out_chunk_put(c->srv, fb);
        c->tls_fbuf = NULL;
    }
}

void conn_tls_flush(struct http_conn *c)
{
    br_ssl_engine_context *e = engine(c);
    for (;;) {
        if (c->dead || c->sending)
            return;
        unsigned st = br_ssl_engine_current_state(e);
        if (st & BR_SSL_CLOSED) {
            tls_closed(c);
            return;
        }
        if (!c->tls_ready && (st & (BR_SSL_SENDAPP | BR_SSL_RECVAPP)))
            handshake_done(c);
        if (st & BR_SSL_SENDREC) {
            tls_send(c);
            return;
        }
        if ((st & BR_SSL_SENDAPP) && feed(c))
            continue;
        /* Nothing more can go out now. Everything is out unless the handshake is still the
         * peer's turn or file bytes are on their way. */
        fbuf_trim(c);
        out_drain_notify(c);
        if (c->dead || !c->tls_ready || c->out_head || c->tls_reading)
            return;
        if (!out_closing(c) || c->tls_bye)
            break;
        c->tls_bye = true;
        br_ssl_engine_close(e); /* close_notify: a record to send, then out_drained */
    }
    out_drained(c);
}

void conn_tls_bye(struct http_conn *c)
{
    if (c->dead)
        return;
    c->closing = true;
    c->close_quick = true;
    conn_timer_set(c, T_SEND); /* a client that reads nothing cannot keep us waiting */
    out_flush_later(c);
}
