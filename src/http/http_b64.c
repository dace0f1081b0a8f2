/* http_b64 — files as base64 inside a streamed JSON answer.
 *
 * A file is opened through the ring (openat2, RESOLVE_BENEATH, like http_respond_file), read
 * through the ring 48 KiB at a time, encoded on the reactor and written as chunks of a chunked
 * response. At most one read is in flight, and no new read starts while the client has more
 * than half of MAX_OUT_BYTES unread, so memory stays at one chunk per download whatever the
 * file size. http_respond_file_base64 wraps one file as {"filename","mime","size","data"};
 * http_stream_file_base64 appends a file's base64 to a stream the caller frames itself (the
 * raw-graph API puts several images in one document); http_stream_fd_base64 does the same for
 * a file the caller holds open already. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/b64.h"
#include "core/log.h"
#include "http/http_file.h"
#include "http/http_internal.h"

#define B64_IN 49152 /* a multiple of 3: no padding until the end */

struct b64_stream {
    struct http_exchange *ex;
    struct ring_op op;
    struct open_how how;
    char path[512];
    char filename[256];
    char mime[64];
    int fd;
    uint64_t off;
    /* http_respond_file_base64 frames the document itself; otherwise the caller's done runs */
    http_b64_done_fn done;
    void *done_arg;
    unsigned char in[B64_IN];
    char out[B64_IN / 3 * 4 + 8];
};

static void finish(struct b64_stream *b, int err)
{
    struct http_exchange *ex = b->ex;
    if (b->fd >= 0)
        close(b->fd);
    b->fd = -1;
    http_b64_done_fn done = b->done;
    void *arg = b->done_arg;
    free(b);
    if (done)
        return done(ex, arg, err);
    if (!err)
        http_stream_write(ex, "\"}", 2);
    /* a broken stream ends without the terminating chunk: the client sees a truncated body */
    if (err)
        return http_stream_abort(ex);
    http_stream_end(ex);
}

static void read_next(struct http_exchange *ex, void *arg);

static void read_cb(struct ring_op *op, int res, uint32_t flags)
{
    struct b64_stream *b = (struct b64_stream *)((char *)op - offsetof(struct b64_stream, op));
    if (b->ex->conn->dead)
        return finish(b, -EPIPE);
    if (res <= 0)
        return finish(b, res);
    /* full reads are multiples of 3; a short read only happens at the end of the file */
    size_t n = b64_encode(b->in, (size_t)res, b->out);
    b->off += (uint64_t)res;
    int rc = http_stream_write(b->ex, b->out, n);
    if (rc < 0)
        return finish(b, rc);
    http_stream_on_drain(b->ex, read_next, b);
}

static void read_next(struct http_exchange *ex, void *arg)
{
    struct b64_stream *b = arg;
    if (ex->conn->dead)
        return finish(b, -EPIPE);
    b->op.cb = read_cb;
    struct io_uring_sqe *sqe = ring_sqe(ex->conn->srv->ring);
    io_uring_prep_read(sqe, b->fd, b->in, B64_IN, b->off);
    ring_sqe_set_op(sqe, &b->op);
}

/* The document's head once the file is open and its size known. */
static int respond_head(struct b64_stream *b, off_t size)
{
    char fn[600], mt[160], head[900];
    json_escape(fn, sizeof(fn), b->filename, strlen(b->filename));
    json_escape(mt, sizeof(mt), b->mime, strlen(b->mime));
    int n = snprintf(head, sizeof(head), "{\"filename\":\"%s\",\"mime\":\"%s\",\"size\":%lld,"
                     "\"data\":\"", fn, mt, (long long)size);
    if (http_stream_begin(b->ex, 200, "application/json") < 0)
        return -EPIPE;
    return http_stream_write(b->ex, head, (size_t)n);
}

static void open_cb(struct ring_op *op, int res, uint32_t flags)
{
    struct b64_stream *b = (struct b64_stream *)((char *)op - offsetof(struct b64_stream, op));
    struct http_exchange *ex = b->ex;
    struct stat st;
    if (res >= 0 && (fstat(res, &st) < 0 || !S_ISREG(st.st_mode))) {
        close(res);
        res = -ENOENT;
    }
    if (res < 0 && !b->done) {
        free(b);
        http_respond_error(ex, res == -EACCES ? 403 : 404,
                           res == -EACCES ? "FORBIDDEN" : "NOT_FOUND", "no such file");
        return;
    }
    if (res < 0)
        return finish(b, res);
    b->fd = res;
    if (!b->done && respond_head(b, st.st_size) < 0)
        return finish(b, -EPIPE);
    read_next(ex, b);
}

static struct b64_stream *b64_open(struct http_exchange *ex, int dirfd, const char *relpath)
{
    struct b64_stream *b = calloc(1, sizeof(*b));
    if (!b || !http_path_safe(relpath) || strlen(relpath) >= sizeof(b->path)) {
        free(b);
        return NULL;
    }
    b->ex = ex;
    b->fd = -1;
    snprintf(b->path, sizeof(b->path), "%s", relpath);
    b->how.flags = O_RDONLY | O_CLOEXEC | O_NOCTTY;
    b->how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
    b->op.cb = open_cb;
    struct io_uring_sqe *sqe = ring_sqe(ex->conn->srv->ring);
    io_uring_prep_openat2(sqe, dirfd, b->path, &b->how);
    ring_sqe_set_op(sqe, &b->op);
    return b;
}

void http_respond_file_base64(struct http_exchange *ex, int dirfd, const char *relpath,
                              const char *filename, const char *mime)
{
    if (!ex->active || ex->responded)
        return;
    struct b64_stream *b = b64_open(ex, dirfd, relpath);
    if (!b) {
        http_respond_error(ex, 404, "NOT_FOUND", "no such file");
        return;
    }
    snprintf(b->filename, sizeof(b->filename), "%s", filename);
    snprintf(b->mime, sizeof(b->mime), "%s", mime);
}

void http_stream_file_base64(struct http_exchange *ex, int dirfd, const char *relpath,
                             http_b64_done_fn done, void *arg)
{
    if (!ex->streaming)
        return done(ex, arg, -EINVAL);
    struct b64_stream *b = b64_open(ex, dirfd, relpath);
    if (!b)
        return done(ex, arg, -ENOENT);
    /* set before the open completes: open_cb only runs from the ring, later */
    b->done = done;
    b->done_arg = arg;
}

void http_stream_fd_base64(struct http_exchange *ex, int fd, http_b64_done_fn done, void *arg)
{
    struct b64_stream *b = ex->streaming ? calloc(1, sizeof(*b)) : NULL;
    if (!b) {
        close(fd);
        return done(ex, arg, ex->streaming ? -ENOMEM : -EINVAL);
    }
    b->ex = ex;
    b->fd = fd;
    b->done = done;
    b->done_arg = arg;
    read_next(ex, b); /* done runs from the ring (at once if the client is gone already) */
}
