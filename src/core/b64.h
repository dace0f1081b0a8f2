/* b64 — standard base64 (RFC 4648, with padding). */
#ifndef COMFYGATE_B64_H
#define COMFYGATE_B64_H

#include <stddef.h>

/* Bytes needed to encode n bytes (without a terminator). */
static inline size_t b64_len(size_t n)
{
    return (n + 2) / 3 * 4;
}
/* Encodes n bytes into out (b64_len(n) bytes, no NUL); returns the length. Feeding a long
 * input in pieces whose sizes are multiples of 3 gives the same text as one call. */
size_t b64_encode(const unsigned char *in, size_t n, char *out);

#endif
