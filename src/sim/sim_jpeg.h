/*
 * sim_jpeg — a baseline JPEG encoder (ITU T.81 sequential DCT, Huffman; JFIF 1.01), for
 * comfysim's /view?preview=jpeg;Q (I/O-less: pixels in, bytes out).
 *
 * It writes what Pillow 9.4 (libjpeg-turbo, the library behind real ComfyUI's preview) writes
 * for img.convert("RGB").save(format="jpeg", quality=Q): SOI, a JFIF APP0 (version 1.01, no
 * density units, 1x1, no thumbnail), one DQT per table, SOF0 (components 1, 2, 3 = Y, Cb, Cr),
 * the four Annex K Huffman tables in one DHT each (DC/AC luminance, DC/AC chrominance), one
 * interleaved scan, EOI; no restart markers, no optimised Huffman tables. Quantisation is
 * Annex K's tables scaled by quality the IJG way (Pillow's): 5000/Q % below 50, 200-2Q %
 * from 50, each entry clamped to 1..255. Chroma is 4:2:0 — Pillow 9.4 asks libjpeg for its
 * default sampling (2x2, 1x1, 1x1) at every quality unless the caller passes `subsampling`,
 * which ComfyUI does not; 4:4:4 is there for tests.
 *
 * Not bit-exact with libjpeg in general (the DCT here is the textbook float one, libjpeg's
 * is its "islow" integer one, so a coefficient that lands near a rounding edge may differ by
 * one), but identical for flat images such as transcript 06's. Alpha is dropped (ComfyUI
 * converts to RGB first); gray is expanded to RGB. Blocks past the image in a partial MCU are
 * padded by edge replication; whole blocks past it (4:2:0 with an odd number of 8-pixel
 * columns or rows) repeat the previous DC with no AC, as T.81 A.2.4 allows and libjpeg does.
 */
#ifndef SIM_JPEG_H
#define SIM_JPEG_H

#include <stddef.h>
#include <stdint.h>

#include "sim/sim_buf.h"

enum sim_jpeg_err {
    SIM_JPEG_OK = 0,
    SIM_JPEG_ENOMEM = -1,  /* the output buffer could not grow */
    SIM_JPEG_ETOOBIG = -2, /* the output buffer's maximum was reached */
    SIM_JPEG_EINVAL = -3,  /* zero or too large a size, bad channels or quality */
};

enum sim_jpeg_sampling {
    SIM_JPEG_420, /* Y 2x2, Cb and Cr 1x1: libjpeg's (and so ComfyUI's) default */
    SIM_JPEG_444, /* every component 1x1 */
};

/* Pillow refuses larger sides ("Maximum supported image dimension is 65500 pixels"). */
#define SIM_JPEG_DIM_MAX 65500u

const char *sim_jpeg_err_name(int err);

/* The Annex K luminance (chroma = 0) or chrominance table scaled for quality 1..100, in
 * natural (row-major) order. */
void sim_jpeg_quant_table(int quality, int chroma, uint8_t out[64]);

/*
 * Appends a JFIF file of `height` rows of `width` pixels with `channels` 8-bit samples each
 * (1 L, 2 LA, 3 RGB, 4 RGBA) to out, at quality 1..100. The output's size is bounded by
 * out->max; an error leaves out with a partial file.
 */
int sim_jpeg_encode(const uint8_t *pixels, uint32_t width, uint32_t height, int channels,
                    int quality, enum sim_jpeg_sampling sampling, struct sim_buf *out);

#endif
