/*
 * sim_jpeg — baseline JPEG encoder for comfysim's /view previews (see sim_jpeg.h).
 *
 * Written from ITU T.81 (Annex A: DCT and zigzag, Annex C: Huffman code generation, Annex F:
 * sequential coding, Annex K: the example tables every baseline encoder uses) and JFIF 1.02
 * (the RGB to YCbCr equations). The encoder owns no memory but its stack frame: pixels come
 * in, the file goes into the caller's bounded sim_buf.
 */
#include "sim/sim_jpeg.h"

#include <assert.h>
#include <math.h>
#include <stdbool.h>
#include <string.h>

/* Annex K, tables K.1 and K.2, natural order. */
static const uint8_t k_quant[2][64] = {
    {16, 11, 10, 16, 24,  40,  51,  61,  12, 12, 14, 19, 26,  58,  60,  55,
     14, 13, 16, 24, 40,  57,  69,  56,  14, 17, 22, 29, 51,  87,  80,  62,
     18, 22, 37, 56, 68,  109, 103, 77,  24, 35, 55, 64, 81,  104, 113, 92,
     49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99},
    {17, 18, 24, 47, 99, 99, 99, 99, 18, 21, 26, 66, 99, 99, 99, 99, 24, 26, 56, 99, 99, 99,
     99, 99, 47, 66, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99,
     99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99},
};

/* Figure A.6: the natural index of each zigzag position. */
static const uint8_t k_zigzag[64] = {
    0,  1,  8,  16, 9,  2,  3,  10, 17, 24, 32, 25, 18, 11, 4,  5,  12, 19, 26, 33, 40, 48,
    41, 34, 27, 20, 13, 6,  7,  14, 21, 28, 35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23,
    30, 37, 44, 51, 58, 59, 52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63};

/* Annex K.3: BITS (codes of each length 1..16) and HUFFVAL of the four example tables. */
static const uint8_t k_dc_bits[2][16] = {{0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0},
                                         {0, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0}};
static const uint8_t k_dc_vals[12] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11};
static const uint8_t k_ac_bits[2][16] = {{0, 2, 1, 3, 3, 2, 4, 3, 5, 5, 4, 4, 0, 0, 1, 0x7d},
                                         {0, 2, 1, 2, 4, 4, 3, 4, 7, 5, 4, 4, 0, 1, 2, 0x77}};
static const uint8_t k_ac_vals[2][162] = {
    {0x01, 0x02, 0x03, 0x00, 0x04, 0x11, 0x05, 0x12, 0x21, 0x31, 0x41, 0x06, 0x13, 0x51, 0x61,
     0x07, 0x22, 0x71, 0x14, 0x32, 0x81, 0x91, 0xa1, 0x08, 0x23, 0x42, 0xb1, 0xc1, 0x15, 0x52,
     0xd1, 0xf0, 0x24, 0x33, 0x62, 0x72, 0x82, 0x09, 0x0a, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x25,
     0x26, 0x27, 0x28, 0x29, 0x2a, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3a, 0x43, 0x44, 0x45,
     0x46, 0x47, 0x48, 0x49, 0x4a, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59, 0x5a, 0x63, 0x64,
     0x65, 0x66, 0x67, 0x68, 0x69, 0x6a, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7a, 0x83,
     0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8a, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99,
     0x9a, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8, 0xa9, 0xaa, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6,
     0xb7, 0xb8, 0xb9, 0xba, 0xc2, 0xc3, 0xc4, 0xc5, 0xc6, 0xc7, 0xc8, 0xc9, 0xca, 0xd2, 0xd3,
     0xd4, 0xd5, 0xd6, 0xd7, 0xd8, 0xd9, 0xda, 0xe1, 0xe2, 0xe3, 0xe4, 0xe5, 0xe6, 0xe7, 0xe8,
     0xe9, 0xea, 0xf1, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8, 0xf9, 0xfa},
    {0x00, 0x01, 0x02, 0x03, 0x11, 0x04, 0x05, 0x21, 0x31, 0x06, 0x12, 0x41, 0x51, 0x07, 0x61,
     0x71, 0x13, 0x22, 0x32, 0x81, 0x08, 0x14, 0x42, 0x91, 0xa1, 0xb1, 0xc1, 0x09, 0x23, 0x33,
     0x52, 0xf0, 0x15, 0x62, 0x72, 0xd1, 0x0a, 0x16, 0x24, 0x34, 0xe1, 0x25, 0xf1, 0x17, 0x18,
     0x19, 0x1a, 0x26, 0x27, 0x28, 0x29, 0x2a, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3a, 0x43, 0x44,
     0x45, 0x46, 0x47, 0x48, 0x49, 0x4a, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59, 0x5a, 0x63,
     0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6a, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7a,
     0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8a, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97,
     0x98, 0x99, 0x9a, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8, 0xa9, 0xaa, 0xb2, 0xb3, 0xb4,
     0xb5, 0xb6, 0xb7, 0xb8, 0xb9, 0xba, 0xc2, 0xc3, 0xc4, 0xc5, 0xc6, 0xc7, 0xc8, 0xc9, 0xca,
     0xd2, 0xd3, 0xd4, 0xd5, 0xd6, 0xd7, 0xd8, 0xd9, 0xda, 0xe2, 0xe3, 0xe4, 0xe5, 0xe6, 0xe7,
     0xe8, 0xe9, 0xea, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8, 0xf9, 0xfa},
};

/* One Huffman table as codes per symbol (EHUFCO/EHUFSI of Annex C). */
struct huff {
    uint16_t code[256];
    uint8_t len[256];
};

struct bitw {
    struct sim_buf *out;
    uint32_t acc; /* pending bits, the oldest highest */
    int n;        /* how many: always < 8 between calls */
};

struct jenc {
    const uint8_t *px;
    uint32_t w, h;
    int ch;
    bool sub; /* 4:2:0 */
    uint8_t q[2][64];
    float scale[2][64]; /* 1 / q, applied to the DCT output */
    float cosm[8][8];   /* C(u)/2 * cos((2x+1)u*pi/16) */
    struct huff dc[2], ac[2];
    int prev_dc[3];
    struct bitw bw;
};

const char *sim_jpeg_err_name(int err)
{
    switch (err) {
    case SIM_JPEG_OK:
        return "ok";
    case SIM_JPEG_ENOMEM:
        return "out of memory";
    case SIM_JPEG_ETOOBIG:
        return "output too big";
    case SIM_JPEG_EINVAL:
        return "invalid argument";
    default:
        return "unknown error";
    }
}

void sim_jpeg_quant_table(int quality, int chroma, uint8_t out[64])
{
    int q = quality < 1 ? 1 : quality > 100 ? 100 : quality;
    long scale = q < 50 ? 5000 / q : 200 - 2 * q;
    for (int i = 0; i < 64; i++) {
        long v = ((long)k_quant[chroma ? 1 : 0][i] * scale + 50) / 100;
        out[i] = (uint8_t)(v < 1 ? 1 : v > 255 ? 255 : v); /* 255: baseline's 8-bit limit */
    }
}

/* Annex C: canonical codes from BITS and HUFFVAL. */
static void huff_build(struct huff *h, const uint8_t bits[16], const uint8_t *vals)
{
    memset(h, 0, sizeof(*h));
    unsigned code = 0;
    size_t k = 0;
    for (int len = 1; len <= 16; len++) {
        for (int i = 0; i < bits[len - 1]; i++, k++) {
            h->code[vals[k]] = (uint16_t)code++;
            h->len[vals[k]] = (uint8_t)len;
        }
        code <<= 1;
    }
}

/* --- entropy-coded segment: bits MSB first, every 0xFF byte followed by a stuffed 0x00 ----- */

static void bits_put(struct bitw *b, uint32_t code, int len)
{
    assert(len >= 0 && len <= 24 && b->n < 8);
    b->acc = (b->acc << len) | (code & ((1u << len) - 1));
    b->n += len;
    while (b->n >= 8) {
        uint8_t byte = (uint8_t)(b->acc >> (b->n - 8));
        sim_buf_putc(b->out, (char)byte);
        if (byte == 0xff)
            sim_buf_putc(b->out, 0); /* F.1.2.3: so the byte cannot start a marker */
        b->n -= 8;
    }
    b->acc &= (1u << b->n) - 1;
}

/* F.1.2.3: the last byte is padded with 1-bits. */
static void bits_flush(struct bitw *b)
{
    if (b->n > 0)
        bits_put(b, 0x7f, 8 - b->n);
}

/* SSSS of F.1.2.1: how many bits the magnitude takes. */
static int magnitude_bits(int v)
{
    unsigned a = (unsigned)(v < 0 ? -v : v);
    int n = 0;
    while (a != 0) {
        n++;
        a >>= 1;
    }
    return n;
}

/* The category's Huffman code, then the value's low bits (one's complement if negative). */
static void put_value(struct bitw *b, const struct huff *h, int symbol, int v, int size)
{
    bits_put(b, h->code[symbol], h->len[symbol]);
    if (size > 0)
        bits_put(b, (uint32_t)(v < 0 ? v - 1 : v), size);
}

/* F.1.2: one quantised block in zigzag order. */
static void encode_block(struct jenc *e, int comp, const int zz[64])
{
    int t = comp == 0 ? 0 : 1;
    int diff = zz[0] - e->prev_dc[comp];
    e->prev_dc[comp] = zz[0];
    int size = magnitude_bits(diff);
    put_value(&e->bw, &e->dc[t], size, diff, size);
    int run = 0;
    for (int k = 1; k < 64; k++) {
        if (zz[k] == 0) {
            run++;
            continue;
        }
        for (; run > 15; run -= 16)
            bits_put(&e->bw, e->ac[t].code[0xf0], e->ac[t].len[0xf0]); /* ZRL */
        size = magnitude_bits(zz[k]);
        put_value(&e->bw, &e->ac[t], (run << 4) | size, zz[k], size);
        run = 0;
    }
    if (run > 0)
        bits_put(&e->bw, e->ac[t].code[0], e->ac[t].len[0]); /* EOB */
}

/* A.3.3 forward DCT of level-shifted samples, then quantisation (rounding half away from
 * zero, as libjpeg does) into zigzag order. */
static void dct_quantise(const struct jenc *e, int t, const float in[64], int zz[64])
{
    float tmp[64], out[64];
    for (int y = 0; y < 8; y++) {
        for (int u = 0; u < 8; u++) {
            float s = 0;
            for (int x = 0; x < 8; x++)
                s += e->cosm[u][x] * in[y * 8 + x];
            tmp[y * 8 + u] = s;
        }
    }
    for (int v = 0; v < 8; v++) {
        for (int u = 0; u < 8; u++) {
            float s = 0;
            for (int y = 0; y < 8; y++)
                s += e->cosm[v][y] * tmp[y * 8 + u];
            out[v * 8 + u] = s;
        }
    }
    for (int k = 0; k < 64; k++) {
        float c = out[k_zigzag[k]] * e->scale[t][k_zigzag[k]];
        int r = (int)(c < 0 ? c - 0.5f : c + 0.5f);
        zz[k] = r < -2047 ? -2047 : r > 2047 ? 2047 : r; /* cannot happen at 8 bits */
    }
}

/* One sample plane of an MCU: up to 16x16 Y, Cb, Cr values, edges replicated. */
struct mcu {
    uint8_t c[3][16][16];
};

/* JFIF's equations in 16-bit fixed point; +32767 rather than +32768 for Cb and Cr keeps
 * 255.5 at 255. */
static void rgb_to_ycc(const uint8_t *p, int ch, uint8_t out[3])
{
    int r = p[0], g = ch >= 3 ? p[1] : p[0], b = ch >= 3 ? p[2] : p[0];
    out[0] = (uint8_t)((19595 * r + 38470 * g + 7471 * b + 32768) >> 16);
    out[1] = (uint8_t)((-11059 * r - 21709 * g + 32768 * b + (128 << 16) + 32767) >> 16);
    out[2] = (uint8_t)((32768 * r - 27439 * g - 5329 * b + (128 << 16) + 32767) >> 16);
}

static void mcu_load(const struct jenc *e, uint32_t x0, uint32_t y0, int size, struct mcu *m)
{
    for (int y = 0; y < size; y++) {
        uint32_t sy = y0 + (uint32_t)y < e->h ? y0 + (uint32_t)y : e->h - 1;
        const uint8_t *row = e->px + (size_t)sy * e->w * (size_t)e->ch;
        for (int x = 0; x < size; x++) {
            uint32_t sx = x0 + (uint32_t)x < e->w ? x0 + (uint32_t)x : e->w - 1;
            uint8_t ycc[3];
            rgb_to_ycc(row + (size_t)sx * (size_t)e->ch, e->ch, ycc);
            for (int c = 0; c < 3; c++)
                m->c[c][y][x] = ycc[c];
        }
    }
}

/* One 8x8 block of plane c at (bx, by) inside the MCU; with half set, the 2x2 average of a
 * 16x16 area, the rounding bias alternating 1, 2 across columns so that it does not drift. */
static void block_samples(const struct mcu *m, int c, int bx, int by, bool half, float out[64])
{
    for (int y = 0; y < 8; y++) {
        for (int x = 0; x < 8; x++) {
            int v;
            if (half) {
                int sx = 2 * x, sy = 2 * y;
                v = (m->c[c][sy][sx] + m->c[c][sy][sx + 1] + m->c[c][sy + 1][sx] +
                     m->c[c][sy + 1][sx + 1] + 1 + (x & 1)) >>
                    2;
            } else {
                v = m->c[c][by + y][bx + x];
            }
            out[y * 8 + x] = (float)(v - 128);
        }
    }
}

/* A block wholly outside the image (4:2:0 padding): the previous DC again, no AC. */
static void encode_dummy(struct jenc *e, int comp)
{
    int zz[64] = {0};
    zz[0] = e->prev_dc[comp];
    encode_block(e, comp, zz);
}

static void encode_mcu(struct jenc *e, uint32_t x0, uint32_t y0)
{
    struct mcu m;
    float s[64];
    int zz[64];
    int size = e->sub ? 16 : 8, ny = e->sub ? 2 : 1;
    mcu_load(e, x0, y0, size, &m);
    for (int by = 0; by < ny; by++) {
        for (int bx = 0; bx < ny; bx++) {
            if (x0 + 8u * (uint32_t)bx >= e->w || y0 + 8u * (uint32_t)by >= e->h) {
                encode_dummy(e, 0);
                continue;
            }
            block_samples(&m, 0, 8 * bx, 8 * by, false, s);
            dct_quantise(e, 0, s, zz);
            encode_block(e, 0, zz);
        }
    }
    for (int c = 1; c < 3; c++) {
        block_samples(&m, c, 0, 0, e->sub, s);
        dct_quantise(e, 1, s, zz);
        encode_block(e, c, zz);
    }
}

/* --- markers --------------------------------------------------------------------------------- */

static void put_be16(struct sim_buf *b, unsigned v)
{
    uint8_t x[2] = {(uint8_t)(v >> 8), (uint8_t)v};
    sim_buf_put(b, x, 2);
}

static void put_marker(struct sim_buf *b, uint8_t m, unsigned payload_len)
{
    uint8_t x[2] = {0xff, m};
    sim_buf_put(b, x, 2);
    put_be16(b, payload_len + 2);
}

/* SOI and JFIF APP0: version 1.01, aspect ratio 1:1 without units, no thumbnail. */
static void write_jfif(struct sim_buf *b)
{
    static const uint8_t soi_app0[20] = {0xff, 0xd8, 0xff, 0xe0, 0, 16, 'J', 'F', 'I', 'F',
                                         0,    1,    1,    0,    0, 1,  0,   1,   0,   0};
    sim_buf_put(b, soi_app0, sizeof(soi_app0));
}

static void write_tables(const struct jenc *e, struct sim_buf *b)
{
    for (int t = 0; t < 2; t++) {
        put_marker(b, 0xdb, 65);
        sim_buf_putc(b, (char)t); /* 8-bit precision, table t */
        for (int k = 0; k < 64; k++)
            sim_buf_putc(b, (char)e->q[t][k_zigzag[k]]);
    }
}

static void write_frame(const struct jenc *e, struct sim_buf *b)
{
    put_marker(b, 0xc0, 15);
    sim_buf_putc(b, 8);
    put_be16(b, e->h);
    put_be16(b, e->w);
    sim_buf_putc(b, 3);
    for (int c = 0; c < 3; c++) {
        uint8_t comp[3] = {(uint8_t)(c + 1), c == 0 && e->sub ? 0x22 : 0x11, c == 0 ? 0 : 1};
        sim_buf_put(b, comp, 3);
    }
}

static void write_huffman(struct sim_buf *b)
{
    for (int t = 0; t < 2; t++) {
        put_marker(b, 0xc4, 17 + 12);
        sim_buf_putc(b, (char)t); /* class 0 (DC), table t */
        sim_buf_put(b, k_dc_bits[t], 16);
        sim_buf_put(b, k_dc_vals, 12);
        put_marker(b, 0xc4, 17 + 162);
        sim_buf_putc(b, (char)(0x10 | t)); /* class 1 (AC) */
        sim_buf_put(b, k_ac_bits[t], 16);
        sim_buf_put(b, k_ac_vals[t], 162);
    }
}

static void write_scan_header(struct sim_buf *b)
{
    static const uint8_t sos[10] = {3, 1, 0x00, 2, 0x11, 3, 0x11, 0, 63, 0};
    put_marker(b, 0xda, sizeof(sos));
    sim_buf_put(b, sos, sizeof(sos));
}

static void jenc_init(struct jenc *e, const uint8_t *px, uint32_t w, uint32_t h, int ch,
                      int quality, bool sub, struct sim_buf *out)
{
    memset(e, 0, sizeof(*e));
    *e = (struct jenc){.px = px, .w = w, .h = h, .ch = ch, .sub = sub};
    e->bw.out = out;
    for (int t = 0; t < 2; t++) {
        sim_jpeg_quant_table(quality, t, e->q[t]);
        for (int k = 0; k < 64; k++)
            e->scale[t][k] = 1.0f / (float)e->q[t][k];
        huff_build(&e->dc[t], k_dc_bits[t], k_dc_vals);
        huff_build(&e->ac[t], k_ac_bits[t], k_ac_vals[t]);
    }
    for (int u = 0; u < 8; u++) {
        double cu = u == 0 ? sqrt(0.5) : 1.0;
        for (int x = 0; x < 8; x++)
            e->cosm[u][x] = (float)(cu / 2 * cos((2 * x + 1) * u * M_PI / 16));
    }
}

int sim_jpeg_encode(const uint8_t *pixels, uint32_t width, uint32_t height, int channels,
                    int quality, enum sim_jpeg_sampling sampling, struct sim_buf *out)
{
    if (pixels == NULL || width == 0 || height == 0 || width > SIM_JPEG_DIM_MAX ||
        height > SIM_JPEG_DIM_MAX || channels < 1 || channels > 4 || quality < 1 || quality > 100)
        return SIM_JPEG_EINVAL;
    struct jenc e;
    jenc_init(&e, pixels, width, height, channels, quality, sampling == SIM_JPEG_420, out);
    write_jfif(out);
    write_tables(&e, out);
    write_frame(&e, out);
    write_huffman(out);
    write_scan_header(out);
    uint32_t step = e.sub ? 16 : 8;
    for (uint32_t y = 0; y < height && out->err == 0; y += step) {
        for (uint32_t x = 0; x < width; x += step)
            encode_mcu(&e, x, y);
    }
    bits_flush(&e.bw);
    static const uint8_t eoi[2] = {0xff, 0xd9};
    sim_buf_put(out, eoi, 2);
    if (out->err == SIM_BUF_ENOMEM)
        return SIM_JPEG_ENOMEM;
    return out->err != 0 ? SIM_JPEG_ETOOBIG : SIM_JPEG_OK;
}
