/* png_strip — a streaming, I/O-less filter that removes text metadata from a PNG.
 *
 * ComfyUI's SaveImage writes the whole prompt and workflow into tEXt chunks ("prompt",
 * "workflow"); in PRIVACY_MODE the gateway stores outputs without them while it streams the
 * download. The filter passes the signature and every chunk through byte for byte, in order,
 * except tEXt, zTXt and iTXt, which it drops whole (header, data and CRC); with
 * PNG_STRIP_EXIF_TIME it also drops eXIf and tIME.
 *
 * It never holds a chunk: kept bytes are emitted as they arrive, straight out of the caller's
 * input, and only the 8-byte chunk header (length, type) is buffered until the filter can
 * decide. Memory use is sizeof(struct png_strip), whatever the file; no allocation.
 *
 * Only the structure is checked: the signature, chunk lengths of at most 2^31-1, type codes of
 * ASCII letters, IHDR first, nothing after IEND. CRCs are not verified (kept chunks go through
 * as they are and the reader checks them; dropped ones do not matter). The first error is
 * sticky. Input that is not a PNG fails on its first byte; use png_strip_is_png() on the first
 * bytes of a file to decide whether to filter it at all or to store it untouched. */
#ifndef COMFYGATE_PNG_STRIP_H
#define COMFYGATE_PNG_STRIP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* png_strip_init_flags() flags. */
enum {
    PNG_STRIP_EXIF_TIME = 1u << 0, /* also drop eXIf (camera data) and tIME (modification time) */
};

/* Caller-allocated; the fields are private to png_strip.c. */
struct png_strip {
    unsigned flags;
    uint8_t state;        /* enum png_strip_state in png_strip.c */
    uint8_t got;          /* bytes of the signature or of hdr seen so far */
    bool seen_ihdr;       /* the first chunk was IHDR */
    bool last;            /* the chunk being passed is IEND */
    uint32_t left;        /* bytes of the current chunk's data + CRC still to pass or skip */
    uint32_t dropped;     /* chunks dropped so far (saturates), for the caller's log */
    unsigned char hdr[8]; /* the current chunk's length and type */
};

void png_strip_init(struct png_strip *s);
/* As png_strip_init() with PNG_STRIP_* flags. */
void png_strip_init_flags(struct png_strip *s, unsigned flags);

/* Feeds n input bytes (p may be NULL when n is 0) and calls emit(ctx, out, len) zero or more
 * times with the output bytes, in order, len > 0. out is valid only during the call: it points
 * into p, or at the filter's own copy of the signature or of a chunk header. Returns 0, or -EBADMSG
 * once the input is not a valid PNG chunk stream (bad signature, a chunk length above 2^31-1, a
 * type that is not four ASCII letters, a first chunk other than IHDR, any byte after IEND). Bytes
 * before the fault may already have been emitted. After an error every call returns -EBADMSG and
 * emits nothing. */
int png_strip_feed(struct png_strip *s, const unsigned char *p, size_t n,
                   void (*emit)(void *ctx, const unsigned char *out, size_t len), void *ctx);

/* End of input: 0 if the stream ended exactly after IEND's CRC, else -EBADMSG (truncated, or
 * an earlier error). Only on 0 is the output a complete PNG. */
int png_strip_finish(const struct png_strip *s);

/* Chunks dropped so far (for logging how much was stripped). */
uint32_t png_strip_dropped(const struct png_strip *s);

/* True if the n bytes at p start with the PNG signature (false when n < 8). */
bool png_strip_is_png(const unsigned char *p, size_t n);

#endif
