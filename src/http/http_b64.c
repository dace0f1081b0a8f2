/* http_b64 — a file as a JSON document with its content in base64, streamed.
 *
 * The file is opened through the ring (openat2, RESOLVE_BENEATH, like http_respond_file),
 * read through the ring 48 KiB at a time, encoded on the reactor and written as chunks of a
 * chunked response. At most one read is in flight, and no new read starts while the client
 * has more than half of MAX_OUT_BYTES unread, so memory stays at one chunk per download
 * whatever the file size. */
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
    bool opening;
    bool reading;
    unsigned char in[B64_IN];
    char out[B64_IN / 3 * 4 + 8];
};

static void finish(struct b64_stream *b, bool ok)
{
    if (b->fd >= 0)
        close(b->fd);
    b->fd = -1;
    if (ok)
        http_stream_write(b->ex, "\"}", 2);
    /* a broken stream ends without the terminating chunk: the client sees a truncated body */
    if (!ok)
        b->ex->conn->closing = true;
    http_stream_end(b->ex);
    free(b);
}

static void read_next(struct http_exchange *ex, void *arg);

static void read_cb(struct ring_op *op, int res, uint32_t flags)
{
    struct b64_stream *b = (struct b64_stream *)((char *)op - offsetof(struct b64_stream, op));
    b->reading = false;
    if (res < 0 || b->ex->conn->dead)
        return finish(b, false);
    if (res == 0)
        return finish(b, true);
    /* full reads are multiples of 3; a short read only happens at the end of the file */
    size_t n = b64_encode(b->in, (size_t)res, b->out);
    b->off += (uint64_t)res;
    if (http_stream_write(b->ex, b->out, n) < 0)
        return finish(b, false);
    http_stream_on_drain(b->ex, read_next, b);
}

static void read_next(struct http_exchange *ex, void *arg)
{
    struct b64_stream *b = arg;
    if (ex->conn->dead)
        return finish(b, false);
    b->op.cb = read_cb;
    struct io_uring_sqe *sqe = ring_sqe(ex->conn->srv->ring);
    io_uring_prep_read(sqe, b->fd, b->in, B64_IN, b->off);
    ring_sqe_set_op(sqe, &b->op);
    b->reading = true;
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
    if (res < 0) {
        free(b);
        http_respond_error(ex, res == -EACCES ? 403 : 404,
                           res == -EACCES ? "FORBIDDEN" : "NOT_FOUND", "no such file");
        return;
    }
    b->fd = res;
    char fn[600], mt[160], head[900];
    json_escape(fn, sizeof(fn), b->filename, strlen(b->filename));
    json_escape(mt, sizeof(mt), b->mime, strlen(b->mime));
    int n = snprintf(head, sizeof(head), "{\"filename\":\"%s\",\"mime\":\"%s\",\"size\":%lld,"
                     "\"data\":\"", fn, mt, (long long)st.st_size);
    if (http_stream_begin(ex, 200, "application/json") < 0 ||
        http_stream_write(ex, head, (size_t)n) < 0)
        return finish(b, false);
    read_next(ex, b);
}

void http_respond_file_base64(struct http_exchange *ex, int dirfd, const char *relpath,
                              const char *filename, const char *mime)
{
    struct http_conn *c = ex->conn;
    if (!ex->active || ex->responded)
        return;
    struct b64_stream *b = calloc(1, sizeof(*b));
    if (!b || !http_path_safe(relpath) || strlen(relpath) >= sizeof(b->path)) {
        free(b);
        http_respond_error(ex, 404, "NOT_FOUND", "no such file");
        return;
    }
    b->ex = ex;
    b->fd = -1;
    snprintf(b->path, sizeof(b->path), "%s", relpath);
    snprintf(b->filename, sizeof(b->filename), "%s", filename);
    snprintf(b->mime, sizeof(b->mime), "%s", mime);
    b->how.flags = O_RDONLY | O_CLOEXEC | O_NOCTTY;
    b->how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
    b->op.cb = open_cb;
    struct io_uring_sqe *sqe = ring_sqe(c->srv->ring);
    io_uring_prep_openat2(sqe, dirfd, b->path, &b->how);
    ring_sqe_set_op(sqe, &b->op);
}
