/* file_sink — see file_sink.h. */
#include "store/file_sink.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

static void finish_maybe(struct file_sink *s);

static void fail(struct file_sink *s, int err)
{
    if (!s->err)
        s->err = err;
}

static void write_cb(struct ring_op *op, int res, uint32_t flags)
{
    struct file_sink_buf *b = (struct file_sink_buf *)op;
    struct file_sink *s = b->sink;
    s->inflight--;
    b->busy = false;
    if (res < 0)
        fail(s, res);
    else if ((size_t)res != b->len)
        fail(s, -EIO); /* regular files only write short on errors like ENOSPC */
    b->len = 0;
    if (s->closing || s->aborted)
        finish_maybe(s);
    else if (s->on_writable && !s->err)
        s->on_writable(s);
}

static void submit_buf(struct file_sink *s, int i)
{
    struct file_sink_buf *b = &s->bufs[i];
    b->busy = true;
    struct io_uring_sqe *sqe = ring_sqe(s->ring);
    io_uring_prep_write(sqe, s->fd, b->data, (unsigned)b->len, s->flushed);
    ring_sqe_set_op(sqe, &b->op);
    s->flushed += b->len;
    s->inflight++;
    s->cur = -1;
}

static void open_cb(struct ring_op *op, int res, uint32_t flags)
{
    struct file_sink *s = (struct file_sink *)((char *)op - offsetof(struct file_sink, open_op));
    s->inflight--;
    if (res < 0) {
        fail(s, res);
    } else {
        s->fd = res;
        s->opened = true;
        /* writes accepted before the file existed are waiting in a full buffer */
        if (s->cur >= 0 && s->bufs[s->cur].len == FILE_SINK_BUF_SIZE && !s->aborted)
            submit_buf(s, s->cur);
    }
    if (s->closing || s->aborted)
        finish_maybe(s);
    else if (s->on_writable && !s->err)
        s->on_writable(s);
}

int file_sink_open(struct file_sink *s, struct ring *r, int dirfd, const char *name,
                   uint64_t max_bytes)
{
    memset(s, 0, sizeof(*s));
    if (!name[0] || strchr(name, '/') || strlen(name) >= sizeof(s->name) || !strcmp(name, ".") ||
        !strcmp(name, ".."))
        return -EINVAL;
    s->ring = r;
    s->dirfd = dirfd;
    s->fd = -1;
    s->cur = -1;
    s->max_bytes = max_bytes;
    snprintf(s->name, sizeof(s->name), "%s", name);
    uint32_t rnd = 0;
    if (getrandom(&rnd, sizeof(rnd), 0) != sizeof(rnd))
        rnd = (uint32_t)ring_clock_ns();
    snprintf(s->tmp, sizeof(s->tmp), ".%s.part-%08x", name, rnd);
    br_sha256_init(&s->sha);
    for (int i = 0; i < FILE_SINK_BUFS; i++) {
        s->bufs[i].sink = s;
        s->bufs[i].op.cb = write_cb;
    }
    s->open_op.cb = open_cb;
    struct io_uring_sqe *sqe = ring_sqe(r);
    io_uring_prep_openat(sqe, dirfd, s->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    ring_sqe_set_op(sqe, &s->open_op);
    s->inflight++;
    return 0;
}

static int free_buf(struct file_sink *s)
{
    for (int i = 0; i < FILE_SINK_BUFS; i++) {
        if (!s->bufs[i].busy && s->bufs[i].len == 0 && i != s->cur) {
            if (!s->bufs[i].data) {
                s->bufs[i].data = malloc(FILE_SINK_BUF_SIZE);
                if (!s->bufs[i].data)
                    return -ENOMEM;
            }
            return i;
        }
    }
    return -EAGAIN;
}

size_t file_sink_room(const struct file_sink *s)
{
    if (s->err || s->closing || s->aborted)
        return 0;
    if (!s->opened) /* only one buffer may fill before the file exists */
        return FILE_SINK_BUF_SIZE - (s->cur >= 0 ? s->bufs[s->cur].len : 0);
    size_t room = 0;
    for (int i = 0; i < FILE_SINK_BUFS; i++) {
        if (!s->bufs[i].busy)
            room += FILE_SINK_BUF_SIZE - s->bufs[i].len;
    }
    return room;
}

ssize_t file_sink_write(struct file_sink *s, const void *p, size_t n)
{
    const char *src = p;
    size_t taken = 0;
    if (s->err)
        return s->err;
    if (s->size + n > s->max_bytes) {
        fail(s, -EFBIG);
        return -EFBIG;
    }
    while (taken < n) {
        if (s->cur < 0) {
            int i = free_buf(s);
            if (i == -ENOMEM)
                return taken ? (ssize_t)taken : -ENOMEM;
            if (i < 0)
                break;
            s->cur = i;
        }
        struct file_sink_buf *b = &s->bufs[s->cur];
        size_t k = FILE_SINK_BUF_SIZE - b->len;
        if (k > n - taken)
            k = n - taken;
        memcpy(b->data + b->len, src + taken, k);
        b->len += k;
        taken += k;
        if (b->len == FILE_SINK_BUF_SIZE) {
            if (!s->opened)
                break; /* keep it until the file exists */
            submit_buf(s, s->cur);
        }
    }
    br_sha256_update(&s->sha, src, taken);
    s->size += taken;
    return (ssize_t)taken;
}

static void rename_cb(struct ring_op *op, int res, uint32_t flags)
{
    struct file_sink *s = (struct file_sink *)((char *)op - offsetof(struct file_sink, rename_op));
    s->inflight--;
    if (res < 0)
        fail(s, res);
    finish_maybe(s);
}

static void fsync_cb(struct ring_op *op, int res, uint32_t flags)
{
    struct file_sink *s = (struct file_sink *)((char *)op - offsetof(struct file_sink, fsync_op));
    s->inflight--;
    if (res < 0) {
        fail(s, res);
        finish_maybe(s);
        return;
    }
    close(s->fd);
    s->fd = -1;
    s->rename_op.cb = rename_cb;
    struct io_uring_sqe *sqe = ring_sqe(s->ring);
    io_uring_prep_renameat(sqe, s->dirfd, s->tmp, s->dirfd, s->name, 0);
    ring_sqe_set_op(sqe, &s->rename_op);
    s->inflight++;
}

/* Called whenever an operation completes during close/abort: advances to the next step. */
static void finish_maybe(struct file_sink *s)
{
    if (s->done || s->inflight > 0)
        return;
    if (s->err || s->aborted || !s->opened) {
        if (s->fd >= 0)
            close(s->fd);
        s->fd = -1;
        if (s->opened)
            unlinkat(s->dirfd, s->tmp, 0);
        s->opened = false;
        s->done = true;
        for (int i = 0; i < FILE_SINK_BUFS; i++)
            free(s->bufs[i].data);
        if (s->on_done)
            s->on_done(s, s->aborted ? -ECANCELED : (s->err ? s->err : -EIO));
        return;
    }
    if (s->cur >= 0 && s->bufs[s->cur].len > 0) {
        submit_buf(s, s->cur);
        return;
    }
    if (s->fd >= 0) {
        s->fsync_op.cb = fsync_cb;
        struct io_uring_sqe *sqe = ring_sqe(s->ring);
        io_uring_prep_fsync(sqe, s->fd, IORING_FSYNC_DATASYNC);
        ring_sqe_set_op(sqe, &s->fsync_op);
        s->inflight++;
        return;
    }
    s->done = true;
    br_sha256_out(&s->sha, s->digest);
    for (int i = 0; i < FILE_SINK_BUFS; i++)
        free(s->bufs[i].data);
    if (s->on_done)
        s->on_done(s, 0);
}

void file_sink_close(struct file_sink *s, file_sink_cb on_done)
{
    s->on_done = on_done;
    s->closing = true;
    finish_maybe(s);
}

void file_sink_abort(struct file_sink *s, file_sink_cb on_done)
{
    s->on_done = on_done;
    s->aborted = true;
    finish_maybe(s);
}

void file_sink_sha256_hex(const struct file_sink *s, char out[65])
{
    static const char hex[] = "0123456789abcdef";
    for (int i = 0; i < 32; i++) {
        out[2 * i] = hex[s->digest[i] >> 4];
        out[2 * i + 1] = hex[s->digest[i] & 15];
    }
    out[64] = '\0';
}
