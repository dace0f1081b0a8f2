/*
 * sim_buf — a growable byte buffer with a hard maximum and a sticky error.
 *
 * Every module of the simulator that builds output of unknown size (JSON text, PNG files,
 * tensor dumps) appends to one of these. Appends never fail loudly: the first failure
 * (allocation or the maximum being reached) is remembered in `err` and later appends are
 * ignored, so callers check once at the end, the way BearSSL engines report errors.
 */
#ifndef SIM_BUF_H
#define SIM_BUF_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

enum sim_buf_err {
    SIM_BUF_OK = 0,
    SIM_BUF_ENOMEM = -1,  /* malloc/realloc failed */
    SIM_BUF_ETOOBIG = -2, /* the configured maximum would be exceeded */
};

struct sim_buf {
    uint8_t *data; /* always NUL-terminated when len > 0, for text users */
    size_t len;
    size_t cap;
    size_t max; /* hard limit on len */
    int err;    /* enum sim_buf_err, sticky */
};

void sim_buf_init(struct sim_buf *b, size_t max);
void sim_buf_free(struct sim_buf *b);
void sim_buf_reset(struct sim_buf *b);
/* Makes room for n more bytes; returns 0 or the (sticky) error. */
int sim_buf_reserve(struct sim_buf *b, size_t n);
void sim_buf_put(struct sim_buf *b, const void *p, size_t n);
void sim_buf_putc(struct sim_buf *b, char c);
void sim_buf_puts(struct sim_buf *b, const char *s);
void sim_buf_printf(struct sim_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sim_buf_put_be32(struct sim_buf *b, uint32_t v);
/* Hands the bytes to the caller (free() them); the buffer is left empty. NULL on error. */
char *sim_buf_take(struct sim_buf *b, size_t *len);
const char *sim_buf_err_name(int err);

#endif
