/*
 * sim_webp — lossless WebP (VP8L) encoder for comfysim's /view previews (see sim_webp.h).
 *
 * Written from the WebP container and lossless bitstream specification (RFC 9649). The
 * caller's pixels are copied once into an ARGB array that the transforms rewrite in place;
 * that array is the only allocation. Bits go LSB first into the caller's bounded sim_buf.
 */
#include "sim/sim_webp.h"

#include <assert.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define GREEN_SYMS (256 + 24) /* literals and LZ77 length prefixes; no color cache */
#define DIST_SYMS 40
#define CODE_LEN_MAX 15
#define CL_SYMS 19   /* the code-length code's alphabet */
#define CL_LEN_MAX 7 /* its lengths are written in 3 bits */
#define BLOCK_BITS 2 /* predictor blocks of 1 << (2 + 2) = 16 pixels a side */
#define BLOCK (1u << (BLOCK_BITS + 2))
#define PRED_L 1 /* predictor modes used: the left and the top neighbour */
#define PRED_T 2
#define COPY_MIN 3    /* shorter runs of the previous pixel stay literals */
#define COPY_MAX 4096 /* the longest LZ77 copy */

/* RFC 9649 5.2.2: the order in which code-length code lengths are written. */
static const uint8_t k_cl_order[CL_SYMS] = {17, 18, 0, 1,  2,  3,  4,  5,  16, 6,
                                            7,  8,  9, 10, 11, 12, 13, 14, 15};

struct lbw {
    struct sim_buf *out;
    uint64_t acc; /* pending bits, the oldest lowest */
    int n;
};

/* One prefix code: per symbol its length and its bits, already reversed for LSB-first. */
struct prefix {
    uint8_t len[GREEN_SYMS];
    uint16_t code[GREEN_SYMS];
};

const char *sim_webp_err_name(int err)
{
    switch (err) {
    case SIM_WEBP_OK:
        return "ok";
    case SIM_WEBP_ENOMEM:
        return "out of memory";
    case SIM_WEBP_ETOOBIG:
        return "output too big";
    case SIM_WEBP_EINVAL:
        return "invalid argument";
    default:
        return "unknown error";
    }
}

static void bits_put(struct lbw *b, uint32_t v, int nbits)
{
    assert(nbits >= 0 && nbits <= 32 && b->n < 8);
    b->acc |= (uint64_t)v << b->n;
    b->n += nbits;
    while (b->n >= 8) {
        sim_buf_putc(b->out, (char)(b->acc & 0xff));
        b->acc >>= 8;
        b->n -= 8;
    }
}

static void bits_flush(struct lbw *b)
{
    if (b->n > 0)
        bits_put(b, 0, 8 - b->n);
}

/* --- Huffman code lengths -------------------------------------------------------------------- */

/* Lengths of a Huffman tree over freq (counts below `floor` raised to it); returns the
 * longest. O(n^2) merging is plenty for alphabets of at most 280 symbols. */
static int tree_lengths(const uint32_t *freq, int n, uint64_t floor, uint8_t *len)
{
    uint64_t w[2 * GREEN_SYMS];
    int parent[2 * GREEN_SYMS], leaf[GREEN_SYMS], nodes = 0, max = 0;
    bool live[2 * GREEN_SYMS];
    for (int i = 0; i < n; i++) {
        leaf[i] = -1;
        if (freq[i] == 0)
            continue;
        leaf[i] = nodes;
        w[nodes] = freq[i] > floor ? freq[i] : floor;
        live[nodes] = true;
        parent[nodes++] = -1;
    }
    for (int left = nodes; left > 1; left--) {
        int a = -1, b = -1;
        for (int k = 0; k < nodes; k++) {
            if (!live[k])
                continue;
            if (a < 0 || w[k] < w[a]) {
                b = a;
                a = k;
            } else if (b < 0 || w[k] < w[b]) {
                b = k;
            }
        }
        live[a] = live[b] = false;
        w[nodes] = w[a] + w[b];
        live[nodes] = true;
        parent[nodes] = -1;
        parent[a] = parent[b] = nodes++;
    }
    for (int i = 0; i < n; i++) {
        int d = 0;
        for (int k = leaf[i]; k >= 0 && parent[k] >= 0; k = parent[k])
            d++;
        len[i] = (uint8_t)d;
        max = d > max ? d : max;
    }
    return max;
}

/* A complete code of at most `limit` bits: rare symbols are made less rare until the tree is
 * shallow enough (it always gets there: equal weights give a balanced tree). Needs at least
 * two used symbols. */
static void huff_lengths(const uint32_t *freq, int n, int limit, uint8_t *len)
{
    for (uint64_t floor = 1; tree_lengths(freq, n, floor, len) > limit; floor *= 2)
        ;
}

static uint16_t reverse_bits(uint32_t v, int n)
{
    uint32_t r = 0;
    for (int i = 0; i < n; i++, v >>= 1)
        r = (r << 1) | (v & 1);
    return (uint16_t)r;
}

/* Canonical codes as DEFLATE assigns them (shorter first, then by symbol), bit-reversed. */
static void canonical_codes(const uint8_t *len, int n, uint16_t *code)
{
    int count[CODE_LEN_MAX + 1] = {0};
    uint32_t next[CODE_LEN_MAX + 2], c = 0;
    for (int i = 0; i < n; i++)
        count[len[i]]++;
    count[0] = 0;
    for (int bits = 1; bits <= CODE_LEN_MAX; bits++) {
        c = (c + (uint32_t)count[bits - 1]) << 1;
        next[bits] = c;
    }
    for (int i = 0; i < n; i++)
        code[i] = len[i] != 0 ? reverse_bits(next[len[i]]++, len[i]) : 0;
}

/* --- prefix codes in the bitstream (RFC 9649 5.2.2) ------------------------------------------ */

struct cl_token {
    uint8_t sym;   /* 0..15 a length, 17/18 a run of zeros */
    uint8_t extra; /* the run's extra bits */
};

/* Code lengths as tokens: runs of three or more zeros become 17 or 18. */
static int cl_tokens(const uint8_t *len, int n, struct cl_token *t)
{
    int nt = 0;
    for (int i = 0; i < n;) {
        int run = 0;
        while (i + run < n && len[i + run] == 0 && run < 138)
            run++;
        if (run >= 11) {
            t[nt++] = (struct cl_token){18, (uint8_t)(run - 11)};
        } else if (run >= 3) {
            t[nt++] = (struct cl_token){17, (uint8_t)(run - 3)};
        } else {
            t[nt++] = (struct cl_token){len[i], 0};
            run = 1;
        }
        i += run;
    }
    return nt;
}

static void write_normal_code(struct lbw *b, const uint8_t *len, int n)
{
    struct cl_token tok[GREEN_SYMS];
    uint32_t freq[CL_SYMS] = {0};
    uint8_t cl_len[CL_SYMS];
    uint16_t cl_code[CL_SYMS];
    int nt = cl_tokens(len, n, tok), used = 0;
    for (int i = 0; i < nt; i++)
        freq[tok[i].sym]++;
    for (int i = 0; i < CL_SYMS; i++)
        used += freq[i] != 0;
    /* A one-symbol code-length code would need zero-bit codes, which decoders treat
     * differently: give an unused symbol a count so the code has two 1-bit codes. */
    for (int i = 0; used < 2; i++) {
        if (freq[i] == 0) {
            freq[i] = 1;
            used++;
        }
    }
    huff_lengths(freq, CL_SYMS, CL_LEN_MAX, cl_len);
    canonical_codes(cl_len, CL_SYMS, cl_code);
    int ncl = CL_SYMS;
    while (ncl > 4 && cl_len[k_cl_order[ncl - 1]] == 0)
        ncl--;
    bits_put(b, 0, 1); /* normal code */
    bits_put(b, (uint32_t)(ncl - 4), 4);
    for (int i = 0; i < ncl; i++)
        bits_put(b, cl_len[k_cl_order[i]], 3);
    bits_put(b, 0, 1); /* max_symbol: all n lengths follow */
    for (int i = 0; i < nt; i++) {
        bits_put(b, cl_code[tok[i].sym], cl_len[tok[i].sym]);
        if (tok[i].sym == 17)
            bits_put(b, tok[i].extra, 3);
        else if (tok[i].sym == 18)
            bits_put(b, tok[i].extra, 7);
    }
}

/* Chooses and writes the code for freq[0..n); p tells how to write each symbol. One or two
 * used symbols go in the "simple" form (one symbol costs no bits at all). */
static void write_prefix(struct lbw *b, const uint32_t *freq, int n, struct prefix *p)
{
    int used = 0, s[2] = {0, 0};
    memset(p, 0, sizeof(*p));
    for (int i = 0; i < n; i++) {
        if (freq[i] != 0 && used++ < 2)
            s[used - 1] = i;
    }
    if (used <= 2 && s[0] < 256 && s[1] < 256) {
        bits_put(b, 1, 1);
        bits_put(b, used == 2 ? 1 : 0, 1);
        bits_put(b, s[0] > 1 ? 1 : 0, 1);
        bits_put(b, (uint32_t)s[0], s[0] > 1 ? 8 : 1);
        if (used == 2) {
            bits_put(b, (uint32_t)s[1], 8);
            p->len[s[0]] = p->len[s[1]] = 1;
            canonical_codes(p->len, n, p->code);
        }
        return;
    }
    huff_lengths(freq, n, CODE_LEN_MAX, p->len);
    write_normal_code(b, p->len, n);
    canonical_codes(p->len, n, p->code);
}

/* --- entropy-coded images -------------------------------------------------------------------- */

/* LZ77 length and distance values as a prefix symbol plus extra bits (RFC 9649 5.2.2). */
static void prefix_encode(uint32_t v, unsigned *sym, int *nbits, uint32_t *extra)
{
    uint32_t d = v - 1;
    if (d < 4) {
        *sym = d;
        *nbits = 0;
        *extra = 0;
        return;
    }
    int hi = 31 - __builtin_clz(d);
    *sym = (unsigned)(2 * hi) + ((d >> (hi - 1)) & 1);
    *nbits = hi - 1;
    *extra = d & ((1u << (hi - 1)) - 1);
}

/* At i, the length of a run repeating the previous pixel, or 0 for a literal. The only
 * backward reference used: distance 1, i.e. plane code 2, the (1, 0) neighbour. */
static uint32_t run_at(const uint32_t *px, size_t i, size_t n)
{
    size_t r = 0;
    while (i > 0 && i + r < n && r < COPY_MAX && px[i + r] == px[i - 1])
        r++;
    return r >= COPY_MIN ? (uint32_t)r : 0;
}

/* Tokenises px; with h, counts symbols; with p, writes them. */
static void scan_tokens(struct lbw *b, const uint32_t *px, size_t n, uint32_t *const h[5],
                        const struct prefix *p)
{
    static const int shift[4] = {8, 16, 0, 24}; /* green, red, blue, alpha */
    unsigned len_sym, dist_sym;
    int len_bits, dist_bits;
    uint32_t len_extra, dist_extra;
    prefix_encode(2, &dist_sym, &dist_bits, &dist_extra); /* plane code 2 */
    for (size_t i = 0; i < n && (p == NULL || b->out->err == 0);) {
        uint32_t run = run_at(px, i, n);
        if (run == 0) {
            for (int c = 0; c < 4; c++) {
                unsigned v = (px[i] >> shift[c]) & 0xff;
                if (p != NULL)
                    bits_put(b, p[c].code[v], p[c].len[v]);
                else
                    h[c][v]++;
            }
            i++;
            continue;
        }
        prefix_encode(run, &len_sym, &len_bits, &len_extra);
        if (p == NULL) {
            h[0][256 + len_sym]++;
            h[4][dist_sym]++;
        } else {
            bits_put(b, p[0].code[256 + len_sym], p[0].len[256 + len_sym]);
            bits_put(b, len_extra, len_bits);
            bits_put(b, p[4].code[dist_sym], p[4].len[dist_sym]);
            bits_put(b, dist_extra, dist_bits);
        }
        i += run;
    }
}

/* Histograms, the five prefix codes (green, red, blue, alpha, distance), then the pixels as
 * literals and runs. The main image also says it has no meta prefix codes. */
static int write_image(struct lbw *b, const uint32_t *argb, size_t n, bool main_image)
{
    uint32_t *hist = calloc(GREEN_SYMS + 3 * 256 + DIST_SYMS, sizeof(uint32_t));
    struct prefix *p = malloc(5 * sizeof(*p));
    if (hist == NULL || p == NULL) {
        free(hist);
        free(p);
        return SIM_WEBP_ENOMEM;
    }
    uint32_t *const h[5] = {hist, hist + GREEN_SYMS, hist + GREEN_SYMS + 256,
                            hist + GREEN_SYMS + 512, hist + GREEN_SYMS + 768};
    static const int nsyms[5] = {GREEN_SYMS, 256, 256, 256, DIST_SYMS};
    scan_tokens(b, argb, n, h, NULL);
    bits_put(b, 0, 1); /* no color cache */
    if (main_image)
        bits_put(b, 0, 1); /* one prefix-code group for the whole image */
    for (int c = 0; c < 5; c++)
        write_prefix(b, h[c], nsyms[c], &p[c]);
    scan_tokens(b, argb, n, h, p);
    free(hist);
    free(p);
    return SIM_WEBP_OK;
}

/* --- transforms ------------------------------------------------------------------------------ */

/* Per-byte a - b, modulo 256 in each channel. */
static uint32_t argb_sub(uint32_t a, uint32_t b)
{
    uint32_t r = 0;
    for (int s = 0; s < 32; s += 8)
        r |= (((a >> s) - (b >> s)) & 0xffu) << s;
    return r;
}

static uint32_t residual_cost(uint32_t a, uint32_t b)
{
    uint32_t d = argb_sub(a, b), cost = 0;
    for (int s = 0; s < 32; s += 8) {
        uint32_t v = (d >> s) & 0xff;
        cost += v < 128 ? v : 256 - v;
    }
    return cost;
}

/* The predictor's choice for one block: left or top, whichever predicts it better. */
static uint8_t block_mode(const uint32_t *px, uint32_t w, uint32_t h, uint32_t bx, uint32_t by)
{
    uint64_t cost_l = 0, cost_t = 0;
    for (uint32_t y = by * BLOCK; y < h && y < (by + 1) * BLOCK; y++) {
        for (uint32_t x = bx * BLOCK; x < w && x < (bx + 1) * BLOCK; x++) {
            uint32_t p = px[(size_t)y * w + x];
            if (x > 0)
                cost_l += residual_cost(p, px[(size_t)y * w + x - 1]);
            if (y > 0)
                cost_t += residual_cost(p, px[(size_t)(y - 1) * w + x]);
        }
    }
    return cost_t < cost_l ? PRED_T : PRED_L;
}

/* RFC 9649 4.1: replaces every pixel by its residual. The top-left pixel is predicted by
 * opaque black, the rest of the top row by L, the left column by T, the others by their
 * block's mode. Runs backwards so that each prediction still sees original neighbours. */
static void predict(uint32_t *px, uint32_t w, uint32_t h, const uint32_t *modes, uint32_t bw)
{
    for (size_t i = (size_t)w * h; i-- > 0;) {
        uint32_t x = (uint32_t)(i % w), y = (uint32_t)(i / w);
        uint32_t pred;
        if (x == 0 && y == 0)
            pred = 0xff000000u;
        else if (y == 0)
            pred = px[i - 1];
        else if (x == 0)
            pred = px[i - w];
        else if (((modes[(y / BLOCK) * bw + x / BLOCK] >> 8) & 0xff) == PRED_T)
            pred = px[i - w];
        else
            pred = px[i - 1];
        px[i] = argb_sub(px[i], pred);
    }
}

static int write_predictor(struct lbw *b, uint32_t *px, uint32_t w, uint32_t h)
{
    uint32_t bw = (w + BLOCK - 1) / BLOCK, bh = (h + BLOCK - 1) / BLOCK;
    uint32_t *modes = malloc((size_t)bw * bh * sizeof(uint32_t));
    if (modes == NULL)
        return SIM_WEBP_ENOMEM;
    for (uint32_t by = 0; by < bh; by++) {
        for (uint32_t bx = 0; bx < bw; bx++)
            modes[by * bw + bx] = (uint32_t)block_mode(px, w, h, bx, by) << 8; /* in green */
    }
    bits_put(b, 1, 1);
    bits_put(b, 0, 2); /* PREDICTOR_TRANSFORM */
    bits_put(b, BLOCK_BITS, 3);
    int rc = write_image(b, modes, (size_t)bw * bh, false);
    predict(px, w, h, modes, bw);
    free(modes);
    return rc;
}

/* Red and blue minus green: one transform, no data. */
static void write_subtract_green(struct lbw *b, uint32_t *px, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint32_t g = (px[i] >> 8) & 0xff, p = px[i];
        uint32_t r = (((p >> 16) & 0xff) - g) & 0xff, bl = ((p & 0xff) - g) & 0xff;
        px[i] = (p & 0xff00ff00u) | (r << 16) | bl;
    }
    bits_put(b, 1, 1);
    bits_put(b, 2, 2); /* SUBTRACT_GREEN_TRANSFORM */
}

/* --- the file -------------------------------------------------------------------------------- */

static uint32_t *to_argb(const uint8_t *pixels, size_t n, int ch, bool *has_alpha)
{
    uint32_t *px = malloc(n * sizeof(uint32_t));
    *has_alpha = false;
    for (size_t i = 0; px != NULL && i < n; i++) {
        const uint8_t *s = pixels + i * (size_t)ch;
        uint32_t r = s[0], g = ch >= 3 ? s[1] : s[0], bl = ch >= 3 ? s[2] : s[0];
        uint32_t a = ch == 2 || ch == 4 ? s[ch - 1] : 255;
        *has_alpha |= a != 255;
        px[i] = (a << 24) | (r << 16) | (g << 8) | bl;
    }
    return px;
}

static void put_le32_at(struct sim_buf *out, size_t at, uint32_t v)
{
    if (out->err != 0)
        return;
    for (int i = 0; i < 4; i++)
        out->data[at + (size_t)i] = (uint8_t)(v >> (8 * i));
}

static int encode_bitstream(struct lbw *b, uint32_t *px, uint32_t w, uint32_t h, bool alpha)
{
    sim_buf_putc(b->out, 0x2f); /* VP8L signature */
    bits_put(b, w - 1, 14);
    bits_put(b, h - 1, 14);
    bits_put(b, alpha ? 1 : 0, 1); /* a hint only: decoders keep alpha either way */
    bits_put(b, 0, 3);             /* version */
    write_subtract_green(b, px, (size_t)w * h);
    int rc = write_predictor(b, px, w, h);
    bits_put(b, 0, 1); /* no more transforms */
    if (rc == SIM_WEBP_OK)
        rc = write_image(b, px, (size_t)w * h, true);
    bits_flush(b);
    return rc;
}

int sim_webp_encode(const uint8_t *pixels, uint32_t width, uint32_t height, int channels,
                    int quality, struct sim_buf *out)
{
    if (pixels == NULL || width == 0 || height == 0 || width > SIM_WEBP_DIM_MAX ||
        height > SIM_WEBP_DIM_MAX || channels < 1 || channels > 4 || quality < 0 || quality > 100)
        return SIM_WEBP_EINVAL;
    bool alpha;
    uint32_t *px = to_argb(pixels, (size_t)width * height, channels, &alpha);
    if (px == NULL)
        return SIM_WEBP_ENOMEM;
    size_t start = out->len;
    sim_buf_put(out, "RIFF\0\0\0\0WEBPVP8L\0\0\0\0", 20);
    struct lbw b = {.out = out};
    int rc = encode_bitstream(&b, px, width, height, alpha);
    free(px);
    size_t chunk = out->len - start - 20;
    if (chunk % 2 != 0)
        sim_buf_putc(out, 0); /* RIFF chunks are padded to an even size */
    put_le32_at(out, start + 4, (uint32_t)(out->len - start - 8));
    put_le32_at(out, start + 16, (uint32_t)chunk);
    if (rc != SIM_WEBP_OK)
        return rc;
    if (out->err == SIM_BUF_ENOMEM)
        return SIM_WEBP_ENOMEM;
    return out->err != 0 ? SIM_WEBP_ETOOBIG : SIM_WEBP_OK;
}
