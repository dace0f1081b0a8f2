/* http_server — connections of one reactor: accept, receive, parse, dispatch, timers, close.
 *
 * A connection is one struct http_conn. Its ring operations (multishot recv, send/splice) and
 * an exchange owned by a handler each hold an in-flight reference; the struct is freed only at
 * the start of the next loop iteration after the count reaches zero, so no callback in the
 * current batch can touch freed memory (redis frees clients the same way). */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "http/http_internal.h"

static void accept_arm(struct http_server *s);
static void recv_arm(struct http_conn *c);
static void conn_parse(struct http_conn *c, const char *data, size_t len);

const char *http_date(struct http_server *s)
{
    time_t now = time(NULL);
    if ((uint64_t)now != s->date_sec) {
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(s->date, sizeof(s->date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
        s->date_sec = (uint64_t)now;
    }
    return s->date;
}

/* --- lifecycle --------------------------------------------------------------------------- */

static void conn_free(struct http_conn *c)
{
    struct http_server *s = c->srv;
    if (c->fd >= 0)
        close(c->fd); /* only now: see conn_close */
    c->fd = -1;
    out_free_all(c);
    http_parser_free(&c->parser);
    buf_free(&c->pending);
    buf_free(&c->ex.headers);
    free(c->ex.file_path);
    pipe_put(c);
    if (c->tls)
        conn_tls_release(c);
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    s->nconns--;
    free(c);
}

/* Queues a dead connection for freeing once nothing refers to it any more (at most once). */
static void conn_maybe_free(struct http_conn *c)
{
    if (c->dead && c->inflight == 0 && !c->free_queued) {
        c->free_queued = true;
        c->flush_next = c->srv->free_list;
        c->srv->free_list = c;
    }
}

void conn_op_done(struct http_conn *c)
{
    c->inflight--;
    conn_maybe_free(c);
}

void conn_close(struct http_conn *c)
{
    if (c->dead)
        return;
    c->dead = true;
    ring_timer_cancel(c->srv->ring, &c->timer);
    if (c->ex.active && c->ex.abort_cb)
        c->ex.abort_cb(&c->ex, c->ex.abort_arg);
    if (c->ex.drain_cb) { /* a producer waiting for room learns that there will be none */
        void (*cb)(struct http_exchange *, void *) = c->ex.drain_cb;
        c->ex.drain_cb = NULL;
        cb(&c->ex, c->ex.drain_arg);
    }
    if (c->raw && c->up_ops && c->up_ops->on_close)
        c->up_ops->on_close(c->up_ctx);
    /* Cancel everything still pending on the socket and shut it down, but keep the descriptor
     * until nothing refers to it any more (conn_free): a linked pipe → socket splice resolves
     * its fd only when it is issued, and a closed-and-reused number would send this
     * connection's bytes to a newer one. */
    struct io_uring_sqe *sqe = ring_sqe(c->srv->ring);
    io_uring_prep_cancel_fd(sqe, c->fd, IORING_ASYNC_CANCEL_ALL);
    ring_sqe_set_op(sqe, NULL);
    shutdown(c->fd, SHUT_RDWR);
    conn_maybe_free(c);
}

void conn_linger(struct http_conn *c)
{
    /* Send FIN but keep reading for a moment: closing with unread input would make the kernel
     * send RST, which can destroy the error response before the client reads it. */
    shutdown(c->fd, SHUT_WR);
    c->lingering = true;
    buf_reset(&c->pending, 0);
    conn_timer_set(c, T_LINGER);
    if (c->recv_paused) {
        c->recv_paused = false;
        recv_arm(c);
    }
}

/* --- timers ------------------------------------------------------------------------------ */

static void timer_cb(struct ring_timer *t)
{
    struct http_conn *c = (struct http_conn *)((char *)t - offsetof(struct http_conn, timer));
    enum timer_kind k = c->tkind;
    c->tkind = T_NONE;
    if (c->tls && !c->tls_ready) { /* mid-handshake: no way to send a 408 */
        LOG(c->srv->log, LOG_DEBUG, "tls handshake timeout", "\"peer\":\"%s\"", c->peer);
        conn_close(c);
        return;
    }
    if (c->tls && k == T_IDLE && !c->ex.active && out_empty(c)) {
        conn_tls_bye(c);
        return;
    }
    if ((k == T_HEAD || k == T_BODY) && !c->ex.active && out_empty(c)) {
        c->closing = true;
        exchange_reset(&c->ex);
        c->ex.active = true;
        c->ex.close_after = true; /* so the 408 says "Connection: close", as it does */
        c->inflight++;
        http_respond_error(&c->ex, 408, "REQUEST_TIMEOUT",
                           k == T_HEAD ? "request headers not received in time"
                                       : "request body not received in time");
        return;
    }
    conn_close(c);
}

void conn_timer_set(struct http_conn *c, enum timer_kind k)
{
    const struct http_server_config *cfg = c->srv->cfg;
    uint32_t ms = 0;
    switch (k) {
    case T_HEAD: ms = cfg->header_timeout_ms; break;
    case T_BODY: ms = cfg->body_timeout_ms; break;
    case T_IDLE: ms = cfg->idle_timeout_ms; break;
    case T_SEND: ms = cfg->send_timeout_ms; break;
    case T_LINGER: ms = cfg->linger_ms; break;
    case T_NONE: break;
    }
    if (k == T_NONE || c->dead) {
        ring_timer_cancel(c->srv->ring, &c->timer);
        c->tkind = T_NONE;
        return;
    }
    if (c->tkind == k && k != T_SEND)
        return; /* keep the original deadline: a slow trickle must not extend it */
    c->tkind = k;
    if (ring_timer_arm(c->srv->ring, &c->timer, ms) < 0)
        conn_close(c);
}

/* --- receive ----------------------------------------------------------------------------- */

static void recv_arm(struct http_conn *c)
{
    if (c->recv_armed || c->dead || c->recv_paused)
        return;
    struct io_uring_sqe *sqe = ring_sqe(c->srv->ring);
    io_uring_prep_recv_multishot(sqe, c->fd, NULL, 0, 0);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = RING_BGID;
    ring_sqe_set_op(sqe, &c->recv_op);
    c->recv_armed = true;
    c->inflight++;
}

/* Input that cannot be parsed yet (a request is still being answered, or the client is not
 * reading its responses) waits in c->pending. Once it holds pending_pause_at() bytes, reading
 * pauses: the multishot receive is cancelled, so TCP pushes back on the client. Buffers the
 * kernel had already filled for us by then still arrive and must be kept, so the hard maximum
 * of c->pending leaves room for PENDING_SLACK_BUFS more of them; a client that overruns even
 * that is cut off. Input is never dropped silently: that would corrupt the request stream. */
#define PENDING_SLACK_BUFS 64

static size_t pending_pause_at(const struct http_server *s)
{
    return s->cfg->limits.max_url + s->cfg->limits.max_header_bytes + 65536;
}

static void recv_pause(struct http_conn *c)
{
    if (c->recv_paused)
        return;
    c->recv_paused = true;
    if (!c->recv_armed)
        return;
    struct io_uring_sqe *sqe = ring_sqe(c->srv->ring);
    io_uring_prep_cancel(sqe, &c->recv_op, 0);
    ring_sqe_set_op(sqe, NULL);
}

void conn_input_flow(struct http_conn *c)
{
    if (c->dead || c->lingering || c->raw)
        return;
    if (c->pending.len + c->tls_in.len >= pending_pause_at(c->srv)) {
        recv_pause(c);
    } else if (c->recv_paused) {
        c->recv_paused = false;
        recv_arm(c); /* no-op until the cancelled receive has completed; recv_cb re-arms */
    }
}

/* Keeps input for later; false if it did not fit and the connection was closed. */
static bool conn_hold(struct http_conn *c, const char *data, size_t len)
{
    if (buf_append(&c->pending, data, len) == 0)
        return true;
    LOG(c->srv->log, LOG_WARN, "input overflow, closing", "\"peer\":\"%s\",\"held\":%zu",
        c->peer, c->pending.len);
    conn_close(c);
    return false;
}

void conn_input_resume(struct http_conn *c)
{
    if (c->dead || c->in_parse || c->closing || c->raw)
        return;
    if (c->pending.len > 0 && !c->ex.active && !out_backlogged(c))
        conn_parse(c, NULL, 0); /* ends with conn_input_flow */
    else
        conn_input_flow(c);
}

void conn_input(struct http_conn *c, const char *data, size_t len)
{
    if (c->lingering)
        return; /* drained and dropped */
    if (c->raw) {
        c->up_ops->on_data(c->up_ctx, data, len);
        return;
    }
    if (c->closing)
        return; /* the last response is queued with Connection: close; nothing more is parsed */
    if (c->ex.active || c->pending.len > 0 || out_backlogged(c)) {
        if (conn_hold(c, data, len))
            conn_input_resume(c);
        return;
    }
    conn_parse(c, data, len);
}

static void recv_cb(struct ring_op *op, int res, uint32_t flags)
{
    struct http_conn *c = (struct http_conn *)((char *)op - offsetof(struct http_conn, recv_op));
    struct http_server *s = c->srv;
    bool more = (flags & IORING_CQE_F_MORE) != 0;
    if (res > 0 && (flags & IORING_CQE_F_BUFFER)) {
        unsigned bid = flags >> IORING_CQE_BUFFER_SHIFT;
        if (!c->dead && c->tls)
            conn_tls_input(c, ring_buf(s->ring, bid), (size_t)res);
        else if (!c->dead)
            conn_input(c, ring_buf(s->ring, bid), (size_t)res);
        ring_buf_recycle(s->ring, bid);
    }
    if (!more) {
        c->recv_armed = false;
        if (!c->dead) {
            if (res == 0) {
                c->peer_eof = true;
                if (c->lingering || c->raw || (!c->ex.active && out_empty(c)))
                    conn_close(c);
                else
                    c->closing = true;
            } else if (res < 0 && res != -ENOBUFS && res != -ECANCELED) {
                conn_close(c);
            } else {
                recv_arm(c); /* buffers ran out, or the kernel ended the multishot */
            }
        }
        conn_op_done(c);
    }
}

/* --- parse and dispatch ------------------------------------------------------------------ */

/* 405 (with Allow; 204 to OPTIONS) or 404 for a request no route takes. */
static void respond_unrouted(struct http_exchange *ex, enum http_match_result mr,
                             const struct http_request *r)
{
    if (mr == HTTP_MATCH_METHOD) {
        http_add_header(ex, "Allow", ex->match.allow);
        if (r->method == HTTP_OPTIONS)
            http_respond(ex, 204, NULL, NULL, 0);
        else
            http_respond_error(ex, 405, "METHOD_NOT_ALLOWED", "%s is not allowed here; use %s",
                               r->method_name, ex->match.allow);
    } else {
        http_respond_error(ex, 404, "NOT_FOUND", "no route for this path");
    }
}

static void dispatch(struct http_conn *c)
{
    struct http_exchange *ex = &c->ex;
    const struct http_request *r = &c->parser.req;
    exchange_reset(ex);
    ex->active = true;
    ex->head = r->method == HTTP_HEAD;
    ex->close_after = !r->keep_alive || c->srv->shutting_down;
    c->inflight++;
    c->served = true;
    conn_timer_set(c, T_NONE);
    struct http_match *m = &ex->match;
    enum http_match_result mr =
        http_router_match(c->srv->router, r->method, r->path, r->path_len, m);
    if (c->srv->cfg->before_route && c->srv->cfg->before_route(ex, mr, m))
        return;
    if (mr == HTTP_MATCH_OK)
        m->route->fn(ex, m->route->arg);
    else
        respond_unrouted(ex, mr, r);
}

static void parse_error(struct http_conn *c)
{
    struct http_parser *p = &c->parser;
    struct http_exchange *ex = &c->ex;
    exchange_reset(ex);
    ex->active = true;
    ex->close_after = true;
    c->inflight++;
    c->closing = true;
    http_respond_error(ex, p->err_status, p->err_code, "%s", p->err_msg);
}

/* Feeds data (or, with data == NULL, the pending buffer) to the parser and runs every request
 * that completes, until one needs an asynchronous answer or the input runs out. */
static void conn_parse(struct http_conn *c, const char *data, size_t len)
{
    bool from_pending = data == NULL;
    c->in_parse = true;
    for (;;) {
        if (from_pending) {
            data = c->pending.data;
            len = c->pending.len;
        }
        if (c->dead || c->closing || c->ex.active || c->raw || out_backlogged(c))
            break;
        size_t used = 0;
        enum http_parse_status st = http_parser_feed(&c->parser, data, len, &used);
        if (from_pending)
            buf_consume(&c->pending, used);
        else {
            data += used;
            len -= used;
        }
        if (st == HTTP_PARSE_MORE) {
            if (!c->parser.headers_done && http_parser_in_request(&c->parser))
                conn_timer_set(c, T_HEAD);
            else if (c->parser.headers_done)
                conn_timer_set(c, T_BODY);
            break;
        }
        if (st == HTTP_PARSE_CONTINUE) {
            struct http_exchange *ex = &c->ex;
            const struct http_request *r = &c->parser.req;
            exchange_reset(ex);
            enum http_match_result mr =
                http_router_match(c->srv->router, r->method, r->path, r->path_len, &ex->match);
            if (mr != HTTP_MATCH_OK) { /* no route takes a body here: the final answer instead
                                        * of the 100, and the body is never read */
                ex->active = true;
                ex->close_after = true;
                c->inflight++;
                c->closing = true;
                respond_unrouted(ex, mr, r);
                break;
            }
            static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
            out_append(c, cont, sizeof(cont) - 1);
            out_flush_later(c);
            continue;
        }
        if (st == HTTP_PARSE_ERROR) {
            parse_error(c);
            break;
        }
        dispatch(c); /* DONE or UPGRADE */
        if (c->raw && !from_pending && len > 0)
            c->up_ops->on_data(c->up_ctx, data, len);
        if (c->raw && from_pending && c->pending.len > 0) {
            c->up_ops->on_data(c->up_ctx, c->pending.data, c->pending.len);
            buf_consume(&c->pending, c->pending.len);
        }
        if (!from_pending && len == 0)
            break;
    }
    c->in_parse = false;
    if (!from_pending && len > 0 && !c->dead && !c->raw && !c->closing && !conn_hold(c, data, len))
        return;
    conn_input_flow(c);
}

void conn_exchange_done(struct http_conn *c)
{
    struct http_exchange *ex = &c->ex;
    ex->active = false;
    if (ex->close_after)
        c->closing = true;
    if (!c->raw)
        http_parser_next(&c->parser);
    out_flush_later(c);
    conn_op_done(c);
    conn_input_resume(c);
}

/* --- accept -------------------------------------------------------------------------------- */

static void peer_name(struct http_conn *c)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    c->peer[0] = '\0';
    if (getpeername(c->fd, (struct sockaddr *)&ss, &sl) < 0)
        return;
    char host[INET6_ADDRSTRLEN] = "";
    unsigned port = 0;
    if (ss.ss_family == AF_INET) {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
        port = ntohs(a->sin_port);
    } else if (ss.ss_family == AF_INET6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
        port = ntohs(a->sin6_port);
    }
    snprintf(c->peer, sizeof(c->peer), "%s:%u", host, port);
    snprintf(c->peer_ip, sizeof(c->peer_ip), "%s", host);
}

static void conn_new(struct http_server *s, int fd)
{
    if (s->nconns >= s->cfg->max_conns || s->shutting_down) {
        close(fd);
        return;
    }
    struct http_conn *c = calloc(1, sizeof(*c));
    if (!c || http_parser_init(&c->parser, &s->cfg->limits) < 0) {
        if (c)
            http_parser_free(&c->parser);
        free(c);
        close(fd);
        return;
    }
    c->srv = s;
    c->fd = fd;
    c->pipe[0] = c->pipe[1] = -1;
    c->recv_op.cb = recv_cb;
    c->timer.cb = timer_cb;
    c->ex.conn = c;
    buf_init(&c->pending, pending_pause_at(s) + PENDING_SLACK_BUFS * (size_t)s->ring->buf_size);
    buf_init(&c->ex.headers, 8192);
    buf_init(&c->tls_in, c->pending.max);
    int trc = s->cfg->tls ? conn_tls_attach(c) : 0;
    if (trc < 0) {
        LOG(s->log, LOG_WARN, "tls engine set-up failed", "\"error\":\"%s\"", strerror(-trc));
        http_parser_free(&c->parser);
        buf_free(&c->pending);
        buf_free(&c->ex.headers);
        free(c);
        close(fd);
        return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    peer_name(c);
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    s->nconns++;
    recv_arm(c);
    conn_timer_set(c, T_HEAD);
}

static void accept_cb(struct ring_op *op, int res, uint32_t flags)
{
    struct http_server *s = (struct http_server *)((char *)op -
                                                   offsetof(struct http_server, accept_op));
    if (res >= 0)
        conn_new(s, res);
    else if (res != -ECANCELED && !s->shutting_down) /* shut down: the listener is gone */
        LOG(s->log, LOG_WARN, "accept failed", "\"error\":\"%s\"", strerror(-res));
    if (!(flags & IORING_CQE_F_MORE)) {
        s->accepting = false;
        if (!s->shutting_down)
            accept_arm(s);
    }
}

static void accept_arm(struct http_server *s)
{
    struct io_uring_sqe *sqe = ring_sqe(s->ring);
    io_uring_prep_multishot_accept(sqe, s->lfd, NULL, NULL, SOCK_CLOEXEC);
    ring_sqe_set_op(sqe, &s->accept_op);
    s->accepting = true;
}

/* --- the before-wait hook: flush queued output, free dead connections ---------------------- */

static void hook_cb(struct ring *r, struct ring_hook *h)
{
    struct http_server *s = (struct http_server *)((char *)h - offsetof(struct http_server, hook));
    while (s->flush_list) {
        struct http_conn *c = s->flush_list;
        s->flush_list = c->flush_next;
        c->in_flush = false;
        if (!c->dead)
            out_flush(c);
    }
    while (s->free_list) {
        struct http_conn *c = s->free_list;
        s->free_list = c->flush_next;
        conn_free(c);
    }
    if (s->log->len)
        log_flush(s->log);
}

int http_server_new(struct http_server **out, struct ring *r, struct logger *log,
                    const struct http_server_config *cfg, const struct http_router *router,
                    int listen_fd, void *app)
{
    struct http_server *s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    s->ring = r;
    s->log = log;
    s->cfg = cfg;
    s->router = router;
    s->app = app;
    s->lfd = listen_fd;
    s->accept_op.cb = accept_cb;
    s->hook.cb = hook_cb;
    s->pipe_timer.cb = pipe_reap_cb;
    uint64_t rnd = 0;
    if (getrandom(&rnd, sizeof(rnd), 0) != sizeof(rnd))
        rnd = ring_clock_ns();
    snprintf(s->id_prefix, sizeof(s->id_prefix), "%012llx%02x",
             (unsigned long long)(rnd & 0xffffffffffffull), (unsigned)(r->id & 0xff));
    ring_hook_add(r, &s->hook);
    accept_arm(s);
    *out = s;
    return 0;
}

static void shutdown_timer_cb(struct ring_timer *t)
{
    struct http_server *s =
        (struct http_server *)((char *)t - offsetof(struct http_server, shutdown_timer));
    for (struct http_conn *c = s->conns; c; c = c->next)
        conn_close(c);
}

void http_server_shutdown(struct http_server *s)
{
    if (s->shutting_down)
        return;
    s->shutting_down = true;
    if (s->accepting) {
        struct io_uring_sqe *sqe = ring_sqe(s->ring);
        io_uring_prep_cancel(sqe, &s->accept_op, 0);
        ring_sqe_set_op(sqe, NULL);
    }
    /* Stop listening now, not when the reactor exits: cancelling the accept alone leaves the
     * socket listening, so the kernel would keep completing handshakes into a backlog nobody
     * reads, and those clients would hang until the drain ends. shutdown() on a listening
     * socket ends the listen state (new connects are refused; the backlog is reset). */
    shutdown(s->lfd, SHUT_RD);
    for (struct http_conn *c = s->conns; c; c = c->next) {
        bool busy = c->ex.active || !out_empty(c) || http_parser_in_request(&c->parser);
        if (busy && !c->raw)
            c->ex.close_after = true;
        else if (c->tls && c->tls_ready && !c->raw) /* idle: say goodbye with close_notify */
            conn_tls_bye(c);
        else
            conn_close(c);
    }
    s->shutdown_timer.cb = shutdown_timer_cb;
    ring_timer_arm(s->ring, &s->shutdown_timer, s->cfg->shutdown_timeout_ms);
}

bool http_server_drained(const struct http_server *s)
{
    return s->nconns == 0;
}

size_t http_server_conn_count(const struct http_server *s)
{
    return s->nconns;
}

void http_server_free(struct http_server *s)
{
    while (s->conns)
        conn_free(s->conns);
    out_pool_free(s);
    ring_timer_cancel(s->ring, &s->shutdown_timer);
    free(s);
}
