/*
 * sim_png — PNG encode/decode for the ComfyUI simulator (I/O-less: bytes in, bytes out).
 *
 * Encoding mirrors what ComfyUI's SaveImage gets from Pillow: IHDR, one tEXt chunk per
 * metadata key ("prompt", then each extra_pnginfo key such as "workflow"), IDAT split in
 * 64 KiB chunks, IEND; rows filtered with Pillow's heuristic (None/Sub/Up/Paeth by least sum
 * of absolute values) and deflated with Z_FILTERED, memLevel 9 — so the bytes match a real
 * server's output for the same pixels.
 *
 * Decoding accepts what LoadImage commonly sees: gray, gray+alpha, RGB, RGBA and palette
 * images at 1/2/4/8-bit (16-bit samples keep their high byte), non-interlaced. A configurable
 * maximum pixel count is checked against IHDR before anything is allocated, so a hostile file
 * cannot make us allocate more than max_pixels * 4 bytes.
 */
#ifndef SIM_PNG_H
#define SIM_PNG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sim/sim_buf.h"

enum sim_png_err {
    SIM_PNG_OK = 0,
    SIM_PNG_ENOMEM = -1,       /* allocation failed */
    SIM_PNG_ESIGNATURE = -2,   /* not a PNG file */
    SIM_PNG_ETRUNCATED = -3,   /* data ends inside a chunk, or no IEND/IDAT */
    SIM_PNG_ECRC = -4,         /* a chunk's CRC does not match */
    SIM_PNG_EFORMAT = -5,      /* malformed IHDR/PLTE/chunk order or bad filter byte */
    SIM_PNG_EUNSUPPORTED = -6, /* valid PNG we do not decode (interlaced) */
    SIM_PNG_ETOOBIG = -7,      /* width*height above the configured maximum */
    SIM_PNG_EZLIB = -8,        /* compressed data is corrupt or has the wrong size */
    SIM_PNG_EINVAL = -9,       /* bad arguments (encoder) */
};

const char *sim_png_err_name(int err);

struct sim_png_text {
    const char *key;   /* 1..79 Latin-1 bytes */
    const char *value; /* written as-is (callers pass ASCII JSON) */
};

/* A configured zlib level n (0..9) stored so that 0 can mean "unset": SaveImage's level in
 * sim_exec_config and sim_op_env is SIM_PNG_LEVEL(n), and 0 there means ComfyUI's 4. */
#define SIM_PNG_LEVEL(n) ((n) + 1)
#define SIM_PNG_SAVE_LEVEL 4 /* ComfyUI's SaveImage (compress_level=4) */

/*
 * Appends a PNG of `height` rows of `width` pixels with `channels` 8-bit samples each (3 = RGB,
 * 4 = RGBA) to out. level is the zlib level (ComfyUI: 4 for SaveImage, 1 for previews).
 */
int sim_png_encode(const uint8_t *pixels, uint32_t width, uint32_t height, int channels, int level,
                   const struct sim_png_text *texts, size_t ntexts, struct sim_buf *out);

struct sim_png_image {
    uint32_t width;
    uint32_t height;
    int channels;   /* samples per pixel in `pixels`: 1 L, 2 LA, 3 RGB, 4 RGBA */
    int color_type; /* as in IHDR; palette images are expanded to RGB or RGBA */
    int bit_depth;  /* as in IHDR */
    bool has_trns;  /* a tRNS chunk was present (expanded into alpha for palettes only) */
    uint8_t *pixels;
};

/* Decodes data into out (free with sim_png_image_free); max_pixels bounds width*height. */
int sim_png_decode(const uint8_t *data, size_t len, uint64_t max_pixels, struct sim_png_image *out);
void sim_png_image_free(struct sim_png_image *img);
/* Finds the first tEXt chunk named key; *value is malloc'd and NUL-terminated. */
int sim_png_text_get(const uint8_t *data, size_t len, const char *key, char **value, size_t max);

#endif
