/* b64 — standard base64 (RFC 4648, with padding). */
#ifndef COMFYGATE_B64_H
#define COMFYGATE_B64_H

#include <stdbool.h>
#include <stddef.h>

/* Bytes needed to encode n bytes (without a terminator). */
static inline size_t b64_len(size_t n)
{
    return (n + 2) / 3 * 4;
}
/* Encodes n bytes into out (b64_len(n) bytes, no NUL); returns the length. Feeding a long
 * input in pieces whose sizes are multiples of 3 gives the same text as one call. */
size_t b64_encode(const unsigned char *in, size_t n, char *out);

/* The URL-safe alphabet without padding (JWT): b64url_len(n) characters, no NUL. */
static inline size_t b64url_len(size_t n)
{
    return n / 3 * 4 + (n % 3 ? n % 3 + 1 : 0);
}
size_t b64url_encode(const unsigned char *in, size_t n, char *out);

/* Bytes b64_decode may write for n characters of input. */
static inline size_t b64_decoded_max(size_t n)
{
    return n / 4 * 3 + 3;
}
#define B64_URL 1u              /* the URL-safe alphabet (-, _) of RFC 4648 section 5 */
#define B64_NO_PADDING 2u       /* '=' is an error (JWT) */
#define B64_PADDING_OPTIONAL 4u /* unpadded input is fine too */
/* Strict decoding: any character outside the alphabet (whitespace included), a truncated
 * quantum or non-zero leftover bits is an error. Returns the decoded length, or -1 (also when
 * it would not fit in cap). */
long b64_decode(const char *in, size_t n, unsigned char *out, size_t cap, unsigned flags);

#endif
