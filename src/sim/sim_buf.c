/*
 * sim_buf — growable byte buffer with a hard maximum and a sticky error (see sim_buf.h).
 */
#include "sim/sim_buf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void sim_buf_init(struct sim_buf *b, size_t max)
{
    memset(b, 0, sizeof(*b));
    b->max = max;
}

void sim_buf_free(struct sim_buf *b)
{
    free(b->data);
    memset(b, 0, sizeof(*b));
}

void sim_buf_reset(struct sim_buf *b)
{
    b->len = 0;
    b->err = SIM_BUF_OK;
    if (b->data != NULL)
        b->data[0] = 0;
}

int sim_buf_reserve(struct sim_buf *b, size_t n)
{
    if (b->err != SIM_BUF_OK)
        return b->err;
    /* +1 keeps room for the NUL that text users rely on. */
    if (n > b->max || b->len > b->max - n) {
        b->err = SIM_BUF_ETOOBIG;
        return b->err;
    }
    size_t need = b->len + n + 1;
    if (need <= b->cap)
        return SIM_BUF_OK;
    size_t cap = b->cap < 256 ? 256 : b->cap;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    uint8_t *p = realloc(b->data, cap);
    if (p == NULL) {
        b->err = SIM_BUF_ENOMEM;
        return b->err;
    }
    b->data = p;
    b->cap = cap;
    return SIM_BUF_OK;
}

void sim_buf_put(struct sim_buf *b, const void *p, size_t n)
{
    if (n == 0 || sim_buf_reserve(b, n) != SIM_BUF_OK)
        return;
    memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = 0;
}

void sim_buf_putc(struct sim_buf *b, char c)
{
    sim_buf_put(b, &c, 1);
}

void sim_buf_puts(struct sim_buf *b, const char *s)
{
    sim_buf_put(b, s, strlen(s));
}

void sim_buf_printf(struct sim_buf *b, const char *fmt, ...)
{
    char small[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n < sizeof(small)) {
        sim_buf_put(b, small, (size_t)n);
        return;
    }
    if (sim_buf_reserve(b, (size_t)n) != SIM_BUF_OK)
        return;
    va_start(ap, fmt);
    vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void sim_buf_put_be32(struct sim_buf *b, uint32_t v)
{
    uint8_t x[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
    sim_buf_put(b, x, 4);
}

char *sim_buf_take(struct sim_buf *b, size_t *len)
{
    if (b->err != SIM_BUF_OK) {
        sim_buf_free(b);
        return NULL;
    }
    if (b->data == NULL && sim_buf_reserve(b, 0) != SIM_BUF_OK)
        return NULL;
    b->data[b->len] = 0;
    char *out = (char *)b->data;
    if (len != NULL)
        *len = b->len;
    size_t max = b->max;
    memset(b, 0, sizeof(*b));
    b->max = max;
    return out;
}

const char *sim_buf_err_name(int err)
{
    switch (err) {
    case SIM_BUF_OK:
        return "ok";
    case SIM_BUF_ENOMEM:
        return "out of memory";
    case SIM_BUF_ETOOBIG:
        return "buffer limit reached";
    default:
        return "unknown";
    }
}
