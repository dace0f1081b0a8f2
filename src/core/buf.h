/* buf — a growable byte buffer with a hard maximum (curl's dynbuf idea).
 *
 * Every append either fits under `max` or fails with -ENOBUFS and leaves the buffer as it was,
 * so a caller can turn "too big" into a 413/431 instead of unbounded memory. The contents are
 * always NUL-terminated (the terminator is not counted in len). */
#ifndef COMFYGATE_BUF_H
#define COMFYGATE_BUF_H

#include <stddef.h>

struct buf {
    char *data;
    size_t len;
    size_t cap;
    size_t max;
};

void buf_init(struct buf *b, size_t max);
void buf_free(struct buf *b);
/* Empties the buffer; keeps up to `keep` bytes of capacity, releases the rest. */
void buf_reset(struct buf *b, size_t keep);
int buf_reserve(struct buf *b, size_t extra);
int buf_append(struct buf *b, const void *p, size_t n);
int buf_append_str(struct buf *b, const char *s);
int buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Drops the first n bytes. */
void buf_consume(struct buf *b, size_t n);
/* Hands the memory to the caller (free() it); the buffer becomes empty. */
char *buf_steal(struct buf *b, size_t *len);

#endif
