/*
 * sim_webp — a WebP encoder for comfysim's /view?preview=webp;Q (I/O-less: pixels in, bytes
 * out).
 *
 * DIFFERS FROM REAL COMFYUI: ComfyUI (Pillow 9.4 + libwebp 1.2.4) answers with a lossy
 * "RIFF....WEBPVP8 " file (VP8X + ALPH + "VP8 " when the picture has transparency); comfysim
 * sends a lossless one, "RIFF....WEBPVP8L" — a simple-format file with one VP8L chunk (RFC 9649)
 * — so pixels decode exactly and alpha is always kept. The quality is accepted but ignored
 * (callers still validate it the way Pillow does). Clients that only decode the image see
 * no difference besides file size; a client that inspects bytes 12..15 does.
 *
 * The bitstream: the subtract-green and predictor transforms (per 16x16 block, the left or
 * the top neighbour, whichever leaves smaller residuals), no color cache, one prefix-code
 * group, literals only (no backward references), canonical Huffman codes limited to 15 bits.
 */
#ifndef SIM_WEBP_H
#define SIM_WEBP_H

#include <stddef.h>
#include <stdint.h>

#include "sim/sim_buf.h"

enum sim_webp_err {
    SIM_WEBP_OK = 0,
    SIM_WEBP_ENOMEM = -1,  /* allocation failed, or the output buffer could not grow */
    SIM_WEBP_ETOOBIG = -2, /* the output buffer's maximum was reached */
    SIM_WEBP_EINVAL = -3,  /* zero or too large a size, bad channels or quality */
};

/* libwebp's WEBP_MAX_DIMENSION: larger pictures make Pillow raise. */
#define SIM_WEBP_DIM_MAX 16383u

const char *sim_webp_err_name(int err);

/*
 * Appends a WebP file of `height` rows of `width` pixels with `channels` 8-bit samples each
 * (1 L, 2 LA, 3 RGB, 4 RGBA) to out. quality (0..100) is checked, not used. Allocates
 * width * height * 4 bytes of working memory.
 */
int sim_webp_encode(const uint8_t *pixels, uint32_t width, uint32_t height, int channels,
                    int quality, struct sim_buf *out);

#endif
