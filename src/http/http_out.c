/* http_out — a connection's output queue and the ring operations that drain it.
 *
 * The queue is a list of chunks that never move once written (an in-flight send points into
 * them): pooled 16 KiB memory chunks that responses are copied into, taken-over buffers
 * (CH_EXT, optionally sent with send_zc), and file ranges (CH_FILE) that go file → pipe →
 * socket by splice, never through user space. Consecutive memory chunks leave in one sendmsg.
 * At most one send or splice is in flight per connection, which keeps bytes in order. Under TLS
 * the same queue holds plaintext and http_tls.c drains it instead (out_flush hands over). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "http/http_internal.h"

static struct out_chunk *chunk_new(struct http_server *s, size_t need)
{
    struct out_chunk *ch;
    if (need <= HTTP_OUT_CHUNK && s->chunk_pool) {
        ch = s->chunk_pool;
        s->chunk_pool = ch->next;
        s->chunk_pool_len--;
    } else {
        size_t cap = need <= HTTP_OUT_CHUNK ? HTTP_OUT_CHUNK : need;
        ch = malloc(sizeof(*ch) + cap);
        if (!ch)
            return NULL;
        ch->cap = cap;
    }
    ch->next = NULL;
    ch->kind = CH_MEM;
    ch->len = ch->sent = ch->read = 0;
    ch->ext = NULL;
    ch->free_fn = NULL;
    ch->fd = -1;
    ch->off = 0;
    ch->zc = false;
    return ch;
}

static void chunk_release(struct http_server *s, struct out_chunk *ch)
{
    if (ch->kind == CH_EXT && ch->free_fn)
        ch->free_fn(ch->ext);
    if (ch->kind == CH_FILE && ch->fd >= 0) { /* off the reactor's syscall path */
        struct io_uring_sqe *sqe = ring_sqe(s->ring);
        io_uring_prep_close(sqe, ch->fd);
        ring_sqe_set_op(sqe, NULL);
    }
    if (ch->kind == CH_MEM && ch->cap == HTTP_OUT_CHUNK && s->chunk_pool_len < HTTP_CHUNK_POOL_MAX) {
        ch->next = s->chunk_pool;
        s->chunk_pool = ch;
        s->chunk_pool_len++;
        return;
    }
    free(ch);
}

struct out_chunk *out_chunk_get(struct http_server *s)
{
    return chunk_new(s, HTTP_OUT_CHUNK);
}

void out_chunk_put(struct http_server *s, struct out_chunk *ch)
{
    chunk_release(s, ch);
}

void out_pool_free(struct http_server *s)
{
    ring_timer_cancel(s->ring, &s->pipe_timer);
    while (s->npipes) {
        s->npipes--;
        close(s->pipes[s->npipes].fd[0]);
        close(s->pipes[s->npipes].fd[1]);
    }
    while (s->chunk_pool) {
        struct out_chunk *n = s->chunk_pool->next;
        free(s->chunk_pool);
        s->chunk_pool = n;
    }
    s->chunk_pool_len = 0;
}

static void chunk_push(struct http_conn *c, struct out_chunk *ch)
{
    if (c->out_tail)
        c->out_tail->next = ch;
    else
        c->out_head = ch;
    c->out_tail = ch;
}

int out_append(struct http_conn *c, const void *p, size_t n)
{
    const char *src = p;
    if (c->dead)
        return -EPIPE;
    c->out_bytes += n;
    while (n > 0) {
        struct out_chunk *t = c->out_tail;
        if (!t || t->kind != CH_MEM || t->len == t->cap) {
            t = chunk_new(c->srv, n);
            if (!t)
                return -ENOMEM;
            chunk_push(c, t);
        }
        size_t k = t->cap - t->len < n ? t->cap - t->len : n;
        memcpy(t->data + t->len, src, k);
        t->len += k;
        src += k;
        n -= k;
    }
    return 0;
}

int out_append_ext(struct http_conn *c, void *p, size_t n, void (*free_fn)(void *))
{
    if (c->dead) {
        if (free_fn)
            free_fn(p);
        return -EPIPE;
    }
    if (n < 4096) { /* small: a copy is cheaper than a separate iovec */
        int rc = out_append(c, p, n);
        if (free_fn)
            free_fn(p);
        return rc;
    }
    struct out_chunk *ch = malloc(sizeof(*ch));
    if (!ch) {
        if (free_fn)
            free_fn(p);
        return -ENOMEM;
    }
    memset(ch, 0, sizeof(*ch));
    ch->kind = CH_EXT;
    ch->ext = p;
    ch->len = n;
    ch->free_fn = free_fn;
    ch->fd = -1;
    /* under TLS every byte is copied into the engine anyway: nothing to gain */
    ch->zc = !c->tls && c->srv->cfg->zc_threshold && n >= c->srv->cfg->zc_threshold;
    c->out_bytes += n;
    chunk_push(c, ch);
    return 0;
}

int out_append_file(struct http_conn *c, int fd, off_t off, size_t len)
{
    if (c->dead) {
        close(fd);
        return -EPIPE;
    }
    if (len == 0) {
        close(fd);
        return 0;
    }
    struct out_chunk *ch = malloc(sizeof(*ch));
    if (!ch) {
        close(fd);
        return -ENOMEM;
    }
    memset(ch, 0, sizeof(*ch));
    ch->kind = CH_FILE;
    ch->fd = fd;
    ch->off = off;
    ch->len = len;
    chunk_push(c, ch);
    c->out_files++;
    return 0;
}

void out_free_all(struct http_conn *c)
{
    while (c->out_head) {
        struct out_chunk *n = c->out_head->next;
        chunk_release(c->srv, c->out_head);
        c->out_head = n;
    }
    c->out_tail = NULL;
    c->out_bytes = 0;
    c->out_files = 0;
}

void out_flush_later(struct http_conn *c)
{
    if (c->in_flush || c->dead)
        return;
    c->in_flush = true;
    c->flush_next = c->srv->flush_list;
    c->srv->flush_list = c;
}

bool out_closing(struct http_conn *c)
{
    /* Shutting down, and its last response is out with nothing else begun: close it now
     * instead of keeping it idle until the shutdown timeout (which holds up the exit). */
    if (c->srv->shutting_down && !c->ex.active && !c->raw && c->pending.len == 0 &&
        !http_parser_in_request(&c->parser))
        c->closing = true;
    return c->closing;
}

/* The queue drained: what the connection does next. */
void out_drained(struct http_conn *c)
{
    if (out_closing(c)) {
        if (c->peer_eof || c->raw || c->close_quick || c->srv->cfg->linger_ms == 0)
            conn_close(c);
        else if (!c->lingering)
            conn_linger(c);
        return;
    }
    /* Before its first request a TLS connection keeps the header timer armed at accept: it
     * bounds the handshake and the first request together, as it bounds a plain first one. */
    if (c->tls && !c->served)
        return;
    if (!c->ex.active && !c->raw)
        conn_timer_set(c, http_parser_in_request(&c->parser) ? T_HEAD : T_IDLE);
    else if (c->tkind == T_SEND)
        conn_timer_set(c, T_NONE);
}

/* A streaming producer waiting for room is woken once the queue is half empty. */
void out_drain_notify(struct http_conn *c)
{
    struct http_exchange *ex = &c->ex;
    if (!ex->drain_cb || c->out_bytes > c->srv->cfg->max_out_bytes / 2)
        return;
    void (*cb)(struct http_exchange *, void *) = ex->drain_cb;
    ex->drain_cb = NULL;
    cb(ex, ex->drain_arg);
}

void out_advance(struct http_conn *c, size_t n)
{
    while (n > 0 && c->out_head) {
        struct out_chunk *h = c->out_head;
        size_t k = h->len - h->sent < n ? h->len - h->sent : n;
        h->sent += k;
        n -= k;
        if (h->kind != CH_FILE)
            c->out_bytes -= k;
        if (h->sent < h->len)
            break;
        if (h->zc) /* the kernel may still read it until the notification */
            break;
        c->out_head = h->next;
        if (!c->out_head)
            c->out_tail = NULL;
        if (h->kind == CH_FILE)
            c->out_files--;
        chunk_release(c->srv, h);
    }
}

static void send_cb(struct ring_op *op, int res, uint32_t flags)
{
    struct http_conn *c = (struct http_conn *)((char *)op - offsetof(struct http_conn, send_op));
    bool zc_more = (flags & IORING_CQE_F_MORE) != 0;
    if (flags & IORING_CQE_F_NOTIF) {
        /* send_zc notification: the kernel is done with the head buffer */
        c->zc_pending--;
        struct out_chunk *h = c->out_head;
        if (h && h->zc && h->sent == h->len && c->zc_pending == 0) {
            c->out_head = h->next;
            if (!c->out_head)
                c->out_tail = NULL;
            chunk_release(c->srv, h);
        }
        conn_op_done(c);
        if (!c->dead && !c->sending)
            out_flush(c);
        return;
    }
    if (zc_more) {
        c->zc_pending++;
        c->inflight++; /* the notification still references the buffer */
    }
    c->sending = false;
    if (c->dead) {
        conn_op_done(c);
        return;
    }
    if (res < 0) {
        if (res == -EAGAIN || res == -EINTR) {
            conn_op_done(c);
            out_flush(c);
            return;
        }
        conn_close(c);
        conn_op_done(c);
        return;
    }
    out_advance(c, (size_t)res);
    out_drain_notify(c);
    if (c->dead)
        return conn_op_done(c);
    if (c->tkind == T_SEND || c->tkind == T_NONE)
        conn_timer_set(c, T_SEND);
    /* The client is reading again: requests held back while its output was over the cap can
     * be parsed now (nothing else would wake them: the client may be waiting for us). */
    if (c->pending.len > 0 || c->recv_paused)
        conn_input_resume(c);
    conn_op_done(c);
    out_flush(c);
}

/* Pipes come from a small per-reactor pool and go back once a file body is sent, so idle
 * keep-alive connections hold none (the per-user pipe budget is finite). The real capacity is
 * read back: F_SETPIPE_SZ above pipe-max-size fails, and the step must match the pipe. */
static int pipe_get(struct http_conn *c)
{
    struct http_server *s = c->srv;
    if (c->pipe[0] >= 0)
        return 0;
    if (s->npipes) {
        s->npipes--;
        c->pipe[0] = s->pipes[s->npipes].fd[0];
        c->pipe[1] = s->pipes[s->npipes].fd[1];
        c->pipe_cap = s->pipes[s->npipes].cap;
        return 0;
    }
    if (pipe2(c->pipe, O_CLOEXEC) < 0)
        return -errno;
    if (s->cfg->pipe_size)
        fcntl(c->pipe[1], F_SETPIPE_SZ, (int)s->cfg->pipe_size);
    int cap = fcntl(c->pipe[1], F_GETPIPE_SZ);
    c->pipe_cap = cap > 0 ? (size_t)cap : 65536;
    return 0;
}

/* Pipes unused for HTTP_PIPE_IDLE_MS are closed: a quiet server holds no pipe buffers. */
void pipe_reap_cb(struct ring_timer *t)
{
    struct http_server *s = (struct http_server *)((char *)t - offsetof(struct http_server,
                                                                      pipe_timer));
    uint64_t cutoff = s->ring->now_ns - (uint64_t)HTTP_PIPE_IDLE_MS * 1000000ull;
    size_t old = 0;
    while (old < s->npipes && s->pipes[old].idle_since_ns <= cutoff) {
        close(s->pipes[old].fd[0]);
        close(s->pipes[old].fd[1]);
        old++;
    }
    memmove(s->pipes, s->pipes + old, (s->npipes - old) * sizeof(s->pipes[0]));
    s->npipes -= old;
    if (s->npipes)
        ring_timer_arm(s->ring, &s->pipe_timer, HTTP_PIPE_IDLE_MS);
}

void pipe_put(struct http_conn *c)
{
    struct http_server *s = c->srv;
    if (c->pipe[0] < 0)
        return;
    if (c->pipe_fill == 0 && s->npipes < HTTP_PIPE_POOL && !c->dead) {
        s->pipes[s->npipes].fd[0] = c->pipe[0];
        s->pipes[s->npipes].fd[1] = c->pipe[1];
        s->pipes[s->npipes].cap = c->pipe_cap;
        s->pipes[s->npipes].idle_since_ns = s->ring->now_ns;
        s->npipes++;
        if (!ring_timer_armed(&s->pipe_timer))
            ring_timer_arm(s->ring, &s->pipe_timer, HTTP_PIPE_IDLE_MS);
    } else { /* bytes still inside: no one else may read them */
        close(c->pipe[0]);
        close(c->pipe[1]);
    }
    c->pipe[0] = c->pipe[1] = -1;
    c->pipe_fill = 0;
}

static void splice_done(struct http_conn *c)
{
    if (--c->splices > 0) {
        conn_op_done(c); /* the other half of a linked pair is still out */
        return;
    }
    c->sending = false;
    struct out_chunk *h = c->out_head;
    if (!c->dead && c->splice_err) {
        conn_close(c);
    } else if (!c->dead) {
        if ((!h || h->kind != CH_FILE) && c->pipe_fill == 0)
            pipe_put(c);
        conn_timer_set(c, T_SEND);
        /* a finished file may leave room for requests held back by out_backlogged() */
        if (c->pending.len > 0 || c->recv_paused)
            conn_input_resume(c);
    }
    conn_op_done(c);
    if (!c->dead && !c->sending)
        out_flush(c);
}

/* file → pipe. A short count breaks the link: the pipe → socket half then completes with
 * -ECANCELED and the bytes that did arrive go out in a later, single splice. */
static void splice_in_cb(struct ring_op *op, int res, uint32_t flags)
{
    struct http_conn *c = (struct http_conn *)((char *)op - offsetof(struct http_conn, splice_op));
    struct out_chunk *h = c->out_head;
    if (res <= 0 || !h || h->kind != CH_FILE)
        c->splice_err = true; /* 0: the file shrank under us; the response can't complete */
    else {
        c->pipe_fill += (size_t)res;
        h->read += (size_t)res;
    }
    splice_done(c);
}

static void splice_out_cb(struct ring_op *op, int res, uint32_t flags)
{
    struct http_conn *c = (struct http_conn *)((char *)op - offsetof(struct http_conn, splice_out_op));
    if (res > 0) {
        c->pipe_fill -= (size_t)res;
        out_advance(c, (size_t)res);
    } else if (res != -ECANCELED || c->pipe_fill == 0) {
        c->splice_err = c->splice_err || res != -ECANCELED || !c->out_head;
    }
    splice_done(c);
}

/* One chunk of a file body: file → pipe and pipe → socket linked in one submission, so the
 * io-wq worker that fills the pipe goes straight on to empty it (one reactor wake-up per chunk,
 * not two). With bytes already in the pipe, only the second half is needed. */
static void submit_splice(struct http_conn *c, struct out_chunk *h)
{
    struct ring *r = c->srv->ring;
    size_t out = c->pipe_fill;
    c->sending = true;
    c->splice_err = false;
    c->splice_op.cb = splice_in_cb;
    c->splice_out_op.cb = splice_out_cb;
    if (io_uring_sq_space_left(&r->uring) < 2)
        io_uring_submit(&r->uring); /* keep the linked pair in one submission */
    if (out == 0) {
        size_t want = h->len - h->read;
        if (want > c->pipe_cap)
            want = c->pipe_cap;
        struct io_uring_sqe *sqe = ring_sqe(r);
        io_uring_prep_splice(sqe, h->fd, (int64_t)(h->off + (off_t)h->read), c->pipe[1], -1,
                             (unsigned)want, SPLICE_F_MOVE);
        sqe->flags |= IOSQE_IO_LINK;
        ring_sqe_set_op(sqe, &c->splice_op);
        c->splices++;
        c->inflight++;
        out = want;
    }
    /* SPLICE_F_MORE only while more of the file is still to come: on the last piece it would
     * cork the tail of the response (and the headers sent with MSG_MORE before it) until TCP's
     * 200 ms autocork timer, delaying every small file. */
    bool last = h->read + (c->pipe_fill ? 0 : out) >= h->len;
    struct io_uring_sqe *sqe = ring_sqe(r);
    io_uring_prep_splice(sqe, c->pipe[0], -1, c->fd, -1, (unsigned)out,
                         SPLICE_F_MOVE | (last ? 0 : SPLICE_F_MORE));
    ring_sqe_set_op(sqe, &c->splice_out_op);
    c->splices++;
    c->inflight++;
}

static void submit_send(struct http_conn *c)
{
    struct out_chunk *h = c->out_head;
    struct io_uring_sqe *sqe = ring_sqe(c->srv->ring);
    if (h->kind == CH_EXT && h->zc) {
        io_uring_prep_send_zc(sqe, c->fd, h->ext + h->sent, h->len - h->sent, MSG_NOSIGNAL, 0);
    } else {
        unsigned n = 0;
        for (struct out_chunk *ch = h; ch && n < HTTP_IOV_MAX && ch->kind != CH_FILE && !ch->zc;
             ch = ch->next) {
            char *base = ch->kind == CH_MEM ? ch->data : ch->ext;
            c->iov[n].iov_base = base + ch->sent;
            c->iov[n].iov_len = ch->len - ch->sent;
            n++;
        }
        memset(&c->msg, 0, sizeof(c->msg));
        c->msg.msg_iov = c->iov;
        c->msg.msg_iovlen = n;
        /* More is coming (a file body) → let TCP merge it with these headers. */
        int more = 0;
        struct out_chunk *last = h;
        for (unsigned i = 1; i < n; i++)
            last = last->next;
        if (last->next && last->next->kind == CH_FILE)
            more = MSG_MORE;
        io_uring_prep_sendmsg(sqe, c->fd, &c->msg, MSG_NOSIGNAL | more);
    }
    ring_sqe_set_op(sqe, &c->send_op);
    c->sending = true;
    c->inflight++;
}

struct out_chunk *out_first(struct http_conn *c)
{
    struct out_chunk *h = c->out_head;
    while (h && h->sent == h->len && !h->zc) { /* e.g. an empty chunk */
        c->out_head = h->next;
        if (!c->out_head)
            c->out_tail = NULL;
        if (h->kind == CH_FILE)
            c->out_files--;
        chunk_release(c->srv, h);
        h = c->out_head;
    }
    return h;
}

void out_flush(struct http_conn *c)
{
    if (c->dead || c->sending)
        return;
    if (c->tls) {
        conn_tls_flush(c);
        return;
    }
    struct out_chunk *h = out_first(c);
    if (!h) {
        if (c->zc_pending == 0)
            out_drained(c);
        return;
    }
    if (h->zc && h->sent == h->len)
        return; /* wait for its notification */
    if (c->send_op.cb == NULL)
        c->send_op.cb = send_cb;
    if (h->kind == CH_FILE) {
        if (pipe_get(c) < 0) {
            conn_close(c);
            return;
        }
        submit_splice(c, h);
    } else {
        submit_send(c);
    }
}
