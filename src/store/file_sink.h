/* file_sink — streams bytes into a file through the ring, crash-safely.
 *
 * Bytes are written to "<name>.part-<random>" with IORING_OP_WRITE from a few bounded buffers,
 * then fsync'd and renamed to <name> (IORING_OP_FSYNC, IORING_OP_RENAMEAT), so a file under its
 * final name is always complete; a crash leaves only a .part file to sweep. Nothing blocks the
 * reactor: when every buffer is in flight, file_sink_write accepts nothing and the producer
 * (a curl download) pauses until `on_writable` is called. A SHA-256 of the content is kept. */
#ifndef COMFYGATE_FILE_SINK_H
#define COMFYGATE_FILE_SINK_H

#include <bearssl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "ring/ring.h"

#define FILE_SINK_BUFS 4
#define FILE_SINK_BUF_SIZE (256 * 1024)

struct file_sink;
typedef void (*file_sink_cb)(struct file_sink *s, int err);

struct file_sink_buf {
    struct ring_op op;
    struct file_sink *sink;
    char *data;
    size_t len;
    bool busy;
};

struct file_sink {
    struct ring *ring;
    int dirfd;
    int fd;
    char name[256];
    char tmp[300];
    uint64_t max_bytes;
    uint64_t size;    /* accepted so far */
    uint64_t flushed; /* file offset of the next write */
    struct file_sink_buf bufs[FILE_SINK_BUFS];
    int cur; /* buffer being filled, -1 none */
    unsigned inflight;
    int err;  /* sticky */
    bool opened;
    bool closing;
    bool done;
    bool aborted;
    struct ring_op open_op, fsync_op, rename_op;
    br_sha256_context sha;
    unsigned char digest[32];
    void (*on_writable)(struct file_sink *s);
    file_sink_cb on_done;
    void *ctx;
};

/* Starts creating dirfd/name (name is a plain file name, no '/'). */
int file_sink_open(struct file_sink *s, struct ring *r, int dirfd, const char *name,
                   uint64_t max_bytes);
/* Accepts up to n bytes; returns how many (0 when all buffers are busy: wait for on_writable),
 * or a negative errno (-EFBIG past max_bytes, or an earlier write error). */
ssize_t file_sink_write(struct file_sink *s, const void *p, size_t n);
/* Bytes file_sink_write would accept right now. */
size_t file_sink_room(const struct file_sink *s);
/* Flushes, fsyncs, renames; then on_done(s, 0 or -errno). */
void file_sink_close(struct file_sink *s, file_sink_cb on_done);
/* Drops the data and removes the temporary file; on_done still runs once idle. */
void file_sink_abort(struct file_sink *s, file_sink_cb on_done);
/* Lowercase hex SHA-256 (after a successful close). */
void file_sink_sha256_hex(const struct file_sink *s, char out[65]);

#endif
