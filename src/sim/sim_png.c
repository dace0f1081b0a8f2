/*
 * sim_png — PNG encoder (Pillow-compatible bytes) and bounded decoder (see sim_png.h).
 */
#include "sim/sim_png.h"

#include <stdlib.h>
#include <string.h>
#include <zlib.h>

/* Pillow's ImageFile.MAXBLOCK: the encoder hands out (and the PNG writer wraps) 64 KiB. */
#define PNG_BLOCK 65536u
#define PNG_TEXT_KEY_MAX 79u

static const uint8_t png_signature[8] = {137, 80, 78, 71, 13, 10, 26, 10};

const char *sim_png_err_name(int err)
{
    switch (err) {
    case SIM_PNG_OK:
        return "ok";
    case SIM_PNG_ENOMEM:
        return "out of memory";
    case SIM_PNG_ESIGNATURE:
        return "not a PNG file";
    case SIM_PNG_ETRUNCATED:
        return "truncated PNG file";
    case SIM_PNG_ECRC:
        return "broken PNG file (bad CRC)";
    case SIM_PNG_EFORMAT:
        return "malformed PNG file";
    case SIM_PNG_EUNSUPPORTED:
        return "unsupported PNG (interlaced)";
    case SIM_PNG_ETOOBIG:
        return "image too large";
    case SIM_PNG_EZLIB:
        return "corrupt PNG image data";
    case SIM_PNG_EINVAL:
        return "invalid argument";
    default:
        return "unknown";
    }
}

static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put_chunk(struct sim_buf *out, const char *type, const void *data, size_t len)
{
    uLong crc = crc32(0L, (const Bytef *)type, 4);
    if (len > 0)
        crc = crc32(crc, (const Bytef *)data, (uInt)len);
    sim_buf_put_be32(out, (uint32_t)len);
    sim_buf_put(out, type, 4);
    sim_buf_put(out, data, len);
    sim_buf_put_be32(out, (uint32_t)crc);
}

/* Sum of |byte| read as signed, Pillow's (and libpng's) cost of a filtered row. */
static uint32_t row_cost(const uint8_t *v, size_t n)
{
    uint32_t s = 0;
    for (size_t i = 0; i < n; i++)
        s += v[i] < 128 ? v[i] : 256u - v[i];
    return s;
}

static uint8_t paeth(int a, int b, int c)
{
    int pa = abs(b - c), pb = abs(a - c), pc = abs(a + b - 2 * c);
    return (uint8_t)((pa <= pb && pa <= pc) ? a : (pb <= pc) ? b : c);
}

/*
 * Pillow's ZipEncode filter choice, tried in its order None, Up, Sub, Paeth (Average only with
 * optimize=True, which ComfyUI does not pass); a later filter wins only when strictly cheaper.
 * tmp must hold 3*n bytes; returns the filtered row, with its filter type in *type.
 */
static const uint8_t *filter_row(const uint8_t *row, const uint8_t *prev, size_t n, size_t bpp,
                                 uint8_t *tmp, uint8_t *type)
{
    uint8_t *up = tmp, *sub = tmp + n, *pa = tmp + 2 * n;
    const uint8_t *best = row;
    uint32_t sum = row_cost(row, n), s;
    *type = 0;
    if (sum > 0) {
        for (size_t i = 0; i < n; i++)
            up[i] = (uint8_t)(row[i] - prev[i]);
        if ((s = row_cost(up, n)) < sum) {
            sum = s, best = up, *type = 2;
        }
    }
    if (sum > 0) {
        for (size_t i = 0; i < n; i++)
            sub[i] = (uint8_t)(row[i] - (i >= bpp ? row[i - bpp] : 0));
        if ((s = row_cost(sub, n)) < sum) {
            sum = s, best = sub, *type = 1;
        }
    }
    if (sum > 0) {
        for (size_t i = 0; i < n; i++) {
            int a = i >= bpp ? row[i - bpp] : 0, c = i >= bpp ? prev[i - bpp] : 0;
            pa[i] = (uint8_t)(row[i] - paeth(a, prev[i], c));
        }
        if (row_cost(pa, n) < sum) {
            best = pa, *type = 4;
        }
    }
    return best;
}

struct idat_writer {
    z_stream z;
    uint8_t *block;
    size_t block_size;
    struct sim_buf *out;
};

/* Runs deflate on the pending input, emitting one IDAT per full block like Pillow. */
static int idat_pump(struct idat_writer *w, int flush)
{
    for (;;) {
        int rc = deflate(&w->z, flush);
        if (rc == Z_STREAM_ERROR)
            return SIM_PNG_EZLIB;
        if (w->z.avail_out == 0) {
            put_chunk(w->out, "IDAT", w->block, w->block_size);
            w->z.next_out = w->block;
            w->z.avail_out = (uInt)w->block_size;
            continue;
        }
        if (flush == Z_FINISH && rc != Z_STREAM_END)
            continue;
        break;
    }
    if (flush == Z_FINISH && w->z.avail_out < w->block_size)
        put_chunk(w->out, "IDAT", w->block, w->block_size - w->z.avail_out);
    return w->out->err == 0 ? SIM_PNG_OK : SIM_PNG_ENOMEM;
}

static int encode_rows(const uint8_t *pixels, uint32_t width, uint32_t height, size_t bpp,
                       struct idat_writer *w)
{
    size_t n = (size_t)width * bpp;
    uint8_t *zero = calloc(1, n), *tmp = malloc(3 * n + 1);
    int rc = (zero == NULL || tmp == NULL) ? SIM_PNG_ENOMEM : SIM_PNG_OK;
    for (uint32_t y = 0; y < height && rc == SIM_PNG_OK; y++) {
        const uint8_t *row = pixels + (size_t)y * n;
        const uint8_t *prev = y > 0 ? row - n : zero;
        uint8_t type;
        const uint8_t *f = filter_row(row, prev, n, bpp, tmp, &type);
        w->z.next_in = &type;
        w->z.avail_in = 1;
        rc = idat_pump(w, Z_NO_FLUSH);
        w->z.next_in = (Bytef *)f;
        w->z.avail_in = (uInt)n;
        if (rc == SIM_PNG_OK)
            rc = idat_pump(w, Z_NO_FLUSH);
    }
    if (rc == SIM_PNG_OK)
        rc = idat_pump(w, Z_FINISH);
    free(zero);
    free(tmp);
    return rc;
}

static int put_texts(const struct sim_png_text *texts, size_t ntexts, struct sim_buf *out)
{
    for (size_t i = 0; i < ntexts; i++) {
        size_t klen = strlen(texts[i].key), vlen = strlen(texts[i].value);
        if (klen == 0 || klen > PNG_TEXT_KEY_MAX)
            return SIM_PNG_EINVAL;
        struct sim_buf data;
        sim_buf_init(&data, klen + vlen + 1);
        sim_buf_put(&data, texts[i].key, klen + 1);
        sim_buf_put(&data, texts[i].value, vlen);
        if (data.err != 0) {
            sim_buf_free(&data);
            return SIM_PNG_ENOMEM;
        }
        put_chunk(out, "tEXt", data.data, data.len);
        sim_buf_free(&data);
    }
    return SIM_PNG_OK;
}

int sim_png_encode(const uint8_t *pixels, uint32_t width, uint32_t height, int channels, int level,
                   const struct sim_png_text *texts, size_t ntexts, struct sim_buf *out)
{
    if (width == 0 || height == 0 || width > 0x7fffffffu || height > 0x7fffffffu ||
        (channels != 3 && channels != 4) || level < 0 || level > 9)
        return SIM_PNG_EINVAL;
    uint8_t ihdr[13];
    for (int i = 0; i < 4; i++) {
        ihdr[i] = (uint8_t)(width >> (24 - 8 * i));
        ihdr[4 + i] = (uint8_t)(height >> (24 - 8 * i));
    }
    ihdr[8] = 8;
    ihdr[9] = channels == 3 ? 2 : 6;
    ihdr[10] = ihdr[11] = ihdr[12] = 0;
    sim_buf_put(out, png_signature, sizeof(png_signature));
    put_chunk(out, "IHDR", ihdr, sizeof(ihdr));
    int rc = put_texts(texts, ntexts, out);
    if (rc != SIM_PNG_OK)
        return rc;
    struct idat_writer w;
    memset(&w, 0, sizeof(w));
    w.out = out;
    w.block_size = (size_t)width * 4 > PNG_BLOCK ? (size_t)width * 4 : PNG_BLOCK;
    w.block = malloc(w.block_size);
    /* Pillow's ZipEncode: windowBits 15, memLevel 9 and Z_FILTERED for PNG data. */
    if (w.block == NULL || deflateInit2(&w.z, level, Z_DEFLATED, 15, 9, Z_FILTERED) != Z_OK) {
        free(w.block);
        return SIM_PNG_ENOMEM;
    }
    w.z.next_out = w.block;
    w.z.avail_out = (uInt)w.block_size;
    rc = encode_rows(pixels, width, height, (size_t)channels, &w);
    deflateEnd(&w.z);
    free(w.block);
    if (rc == SIM_PNG_OK)
        put_chunk(out, "IEND", NULL, 0);
    if (rc == SIM_PNG_OK && out->err != 0)
        rc = SIM_PNG_ENOMEM;
    return rc;
}

/* --- decoding ------------------------------------------------------------------------ */

struct png_chunk {
    uint32_t len;
    const uint8_t *type;
    const uint8_t *data;
};

struct png_dec {
    uint32_t width, height;
    int depth, ctype, samples;
    size_t rowbytes, bpp; /* bpp: bytes per complete pixel, at least 1 (filter distance) */
    uint8_t palette[256][4];
    int npalette;
    bool has_trns;
    uint8_t trns[256];
    int ntrns;
    z_stream z;
    bool z_open;
    uint8_t *raw;
    size_t raw_len;
};

/* Reads the chunk at *pos, checking length and CRC; advances *pos past it. */
static int next_chunk(const uint8_t *data, size_t len, size_t *pos, struct png_chunk *c)
{
    if (len - *pos < 12)
        return SIM_PNG_ETRUNCATED;
    c->len = rd32(data + *pos);
    if (c->len > 0x7fffffffu || c->len > len - *pos - 12)
        return SIM_PNG_ETRUNCATED;
    c->type = data + *pos + 4;
    c->data = data + *pos + 8;
    uLong crc = crc32(crc32(0L, c->type, 4), c->data, c->len);
    if (crc != rd32(c->data + c->len))
        return SIM_PNG_ECRC;
    *pos += 12 + (size_t)c->len;
    return SIM_PNG_OK;
}

static int parse_ihdr(struct png_dec *d, const struct png_chunk *c, uint64_t max_pixels)
{
    static const int samples_of[7] = {1, 0, 3, 1, 2, 0, 4};
    if (c->len != 13 || memcmp(c->type, "IHDR", 4) != 0)
        return SIM_PNG_EFORMAT;
    d->width = rd32(c->data);
    d->height = rd32(c->data + 4);
    d->depth = c->data[8];
    d->ctype = c->data[9];
    if (d->width == 0 || d->height == 0 || d->ctype > 6 || samples_of[d->ctype] == 0 ||
        c->data[10] != 0 || c->data[11] != 0 || c->data[12] > 1)
        return SIM_PNG_EFORMAT;
    int ok_depth =
        d->depth == 8 || d->depth == 16 ||
        ((d->ctype == 0 || d->ctype == 3) && (d->depth == 1 || d->depth == 2 || d->depth == 4));
    if (!ok_depth || (d->ctype == 3 && d->depth == 16))
        return SIM_PNG_EFORMAT;
    if (c->data[12] == 1)
        return SIM_PNG_EUNSUPPORTED;
    if ((uint64_t)d->width * d->height > max_pixels)
        return SIM_PNG_ETOOBIG;
    d->samples = samples_of[d->ctype];
    size_t bits = (size_t)d->samples * (size_t)d->depth;
    d->rowbytes = ((size_t)d->width * bits + 7) / 8;
    d->bpp = bits >= 8 ? bits / 8 : 1;
    d->raw_len = (size_t)d->height * (1 + d->rowbytes);
    d->raw = malloc(d->raw_len);
    if (d->raw == NULL)
        return SIM_PNG_ENOMEM;
    if (inflateInit(&d->z) != Z_OK)
        return SIM_PNG_ENOMEM;
    d->z_open = true;
    d->z.next_out = d->raw;
    d->z.avail_out = (uInt)d->raw_len;
    return SIM_PNG_OK;
}

static int parse_palette(struct png_dec *d, const struct png_chunk *c)
{
    if (c->len % 3 != 0 || c->len > 768 || c->len == 0)
        return SIM_PNG_EFORMAT;
    d->npalette = (int)(c->len / 3);
    for (int i = 0; i < d->npalette; i++) {
        memcpy(d->palette[i], c->data + 3 * i, 3);
        d->palette[i][3] = 255;
    }
    return SIM_PNG_OK;
}

static int feed_idat(struct png_dec *d, const struct png_chunk *c)
{
    d->z.next_in = (Bytef *)c->data;
    d->z.avail_in = c->len;
    while (d->z.avail_in > 0) {
        if (d->z.avail_out == 0)
            return SIM_PNG_OK; /* trailing bytes beyond the image are ignored, as Pillow does */
        int rc = inflate(&d->z, Z_NO_FLUSH);
        if (rc == Z_STREAM_END)
            return SIM_PNG_OK;
        if (rc != Z_OK && rc != Z_BUF_ERROR)
            return SIM_PNG_EZLIB;
        if (rc == Z_BUF_ERROR && d->z.avail_in == 0)
            break;
    }
    return SIM_PNG_OK;
}

static int unfilter(struct png_dec *d)
{
    size_t n = d->rowbytes, bpp = d->bpp;
    uint8_t *prev = NULL;
    for (uint32_t y = 0; y < d->height; y++) {
        uint8_t *line = d->raw + (size_t)y * (n + 1);
        uint8_t type = line[0], *r = line + 1;
        for (size_t i = 0; i < n; i++) {
            int a = i >= bpp ? r[i - bpp] : 0, b = prev ? prev[i] : 0;
            int c = (prev && i >= bpp) ? prev[i - bpp] : 0;
            switch (type) {
            case 0:
                break;
            case 1:
                r[i] = (uint8_t)(r[i] + a);
                break;
            case 2:
                r[i] = (uint8_t)(r[i] + b);
                break;
            case 3:
                r[i] = (uint8_t)(r[i] + ((a + b) >> 1));
                break;
            case 4:
                r[i] = (uint8_t)(r[i] + paeth(a, b, c));
                break;
            default:
                return SIM_PNG_EFORMAT;
            }
        }
        prev = r;
    }
    return SIM_PNG_OK;
}

/* Sample x of a row at the image's bit depth, as 8 bits (16-bit keeps its high byte). */
static uint8_t sample_at(const struct png_dec *d, const uint8_t *row, size_t x)
{
    if (d->depth == 8)
        return row[x];
    if (d->depth == 16)
        return row[2 * x];
    size_t bit = x * (size_t)d->depth;
    int shift = 8 - d->depth - (int)(bit % 8);
    uint8_t v = (uint8_t)((row[bit / 8] >> shift) & ((1 << d->depth) - 1));
    /* Low-depth gray is scaled to 0..255 (Pillow's "L;2"/"L;4"/"1" raw modes); indices not. */
    return d->ctype == 3 ? v : (uint8_t)(v * 255 / ((1 << d->depth) - 1));
}

static int expand(struct png_dec *d, struct sim_png_image *out)
{
    bool pal_alpha = d->ctype == 3 && d->has_trns;
    out->channels = d->ctype == 3 ? (pal_alpha ? 4 : 3) : d->samples;
    out->pixels = malloc((size_t)d->width * d->height * (size_t)out->channels);
    if (out->pixels == NULL)
        return SIM_PNG_ENOMEM;
    uint8_t *o = out->pixels;
    for (uint32_t y = 0; y < d->height; y++) {
        const uint8_t *row = d->raw + (size_t)y * (d->rowbytes + 1) + 1;
        for (uint32_t x = 0; x < d->width; x++) {
            if (d->ctype != 3) {
                for (int s = 0; s < d->samples; s++)
                    *o++ = sample_at(d, row, (size_t)x * (size_t)d->samples + (size_t)s);
                continue;
            }
            uint8_t idx = sample_at(d, row, x);
            /* Out-of-range indices read as black, like Pillow's zero-filled palette. */
            const uint8_t *p = idx < d->npalette ? d->palette[idx] : (const uint8_t[4]){0};
            memcpy(o, p, 3);
            o += 3;
            if (pal_alpha)
                *o++ = idx < d->ntrns ? d->trns[idx] : 255;
        }
    }
    return SIM_PNG_OK;
}

static int handle_chunk(struct png_dec *d, const struct png_chunk *c, bool *done)
{
    if (memcmp(c->type, "PLTE", 4) == 0)
        return parse_palette(d, c);
    if (memcmp(c->type, "tRNS", 4) == 0) {
        d->has_trns = true;
        d->ntrns = (int)(c->len > 256 ? 256 : c->len);
        memcpy(d->trns, c->data, (size_t)d->ntrns);
        return SIM_PNG_OK;
    }
    if (memcmp(c->type, "IDAT", 4) == 0)
        return feed_idat(d, c);
    if (memcmp(c->type, "IEND", 4) == 0)
        *done = true;
    return SIM_PNG_OK;
}

static int decode_chunks(const uint8_t *data, size_t len, uint64_t max_pixels, struct png_dec *d)
{
    size_t pos = sizeof(png_signature);
    struct png_chunk c;
    int rc = next_chunk(data, len, &pos, &c);
    if (rc == SIM_PNG_OK)
        rc = parse_ihdr(d, &c, max_pixels);
    bool done = false;
    while (rc == SIM_PNG_OK && !done) {
        rc = next_chunk(data, len, &pos, &c);
        if (rc == SIM_PNG_OK)
            rc = handle_chunk(d, &c, &done);
    }
    if (rc == SIM_PNG_OK && d->z.avail_out != 0)
        rc = d->z.total_out == 0 ? SIM_PNG_ETRUNCATED : SIM_PNG_EZLIB;
    if (rc == SIM_PNG_OK && d->ctype == 3 && d->npalette == 0)
        rc = SIM_PNG_EFORMAT;
    return rc;
}

int sim_png_decode(const uint8_t *data, size_t len, uint64_t max_pixels, struct sim_png_image *out)
{
    memset(out, 0, sizeof(*out));
    if (len < sizeof(png_signature) || memcmp(data, png_signature, 8) != 0)
        return SIM_PNG_ESIGNATURE;
    struct png_dec *d = calloc(1, sizeof(*d));
    if (d == NULL)
        return SIM_PNG_ENOMEM;
    int rc = decode_chunks(data, len, max_pixels, d);
    if (rc == SIM_PNG_OK)
        rc = unfilter(d);
    if (rc == SIM_PNG_OK)
        rc = expand(d, out);
    if (rc == SIM_PNG_OK) {
        out->width = d->width;
        out->height = d->height;
        out->color_type = d->ctype;
        out->bit_depth = d->depth;
        out->has_trns = d->has_trns;
    } else {
        sim_png_image_free(out);
    }
    if (d->z_open)
        inflateEnd(&d->z);
    free(d->raw);
    free(d);
    return rc;
}

void sim_png_image_free(struct sim_png_image *img)
{
    free(img->pixels);
    memset(img, 0, sizeof(*img));
}

int sim_png_text_get(const uint8_t *data, size_t len, const char *key, char **value, size_t max)
{
    *value = NULL;
    if (len < sizeof(png_signature) || memcmp(data, png_signature, 8) != 0)
        return SIM_PNG_ESIGNATURE;
    size_t pos = sizeof(png_signature), klen = strlen(key);
    struct png_chunk c;
    for (;;) {
        int rc = next_chunk(data, len, &pos, &c);
        if (rc != SIM_PNG_OK)
            return rc;
        if (memcmp(c.type, "IEND", 4) == 0)
            return SIM_PNG_ETRUNCATED;
        if (memcmp(c.type, "tEXt", 4) != 0 || c.len <= klen || memcmp(c.data, key, klen) != 0 ||
            c.data[klen] != 0)
            continue;
        size_t vlen = c.len - klen - 1;
        if (vlen > max)
            return SIM_PNG_ETOOBIG;
        *value = malloc(vlen + 1);
        if (*value == NULL)
            return SIM_PNG_ENOMEM;
        memcpy(*value, c.data + klen + 1, vlen);
        (*value)[vlen] = 0;
        return SIM_PNG_OK;
    }
}
