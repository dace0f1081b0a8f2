/*
 * test_sim_png — byte-identical re-encoding of recorded SaveImage output, decoding of the
 * PNG flavours LoadImage meets, and refusal of hostile or broken files.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include <cmocka.h>

#include "sim/sim_png.h"
#include "sim_test_util.h"

/* Re-encoding the decoded pixels and text of a real ComfyUI file gives the same bytes. */
static void reencode(const char *file, int level)
{
    size_t len;
    uint8_t *png = simt_read_file(file, &len);
    struct sim_png_image img;
    char *prompt = NULL;
    assert_int_equal(sim_png_decode(png, len, 1u << 20, &img), SIM_PNG_OK);
    assert_int_equal(sim_png_text_get(png, len, "prompt", &prompt, 1u << 20), SIM_PNG_OK);
    struct sim_png_text text = {"prompt", prompt};
    struct sim_buf out;
    sim_buf_init(&out, 1u << 24);
    assert_int_equal(
        sim_png_encode(img.pixels, img.width, img.height, img.channels, level, &text, 1, &out),
        SIM_PNG_OK);
    assert_int_equal(out.len, len);
    assert_memory_equal(out.data, png, len);
    sim_buf_free(&out);
    sim_png_image_free(&img);
    free(prompt);
    free(png);
}

static void test_reencode_recorded(void **state)
{
    (void)state;
    simt_require_transcripts();
    reencode("01_prompt_success_view_0.png", 4);
    reencode("06_view_output.png", 4);
    reencode("07_upload_inverted.png", 4); /* noisy rows exercise every filter choice */
}

/* A hand-built PNG: IHDR for (w, h, depth, ctype), optional PLTE/tRNS, one IDAT of rows. */
static uint8_t *make_png(uint32_t w, uint32_t h, int depth, int ctype, int interlace,
                         const uint8_t *raw, size_t raw_len, const uint8_t *plte, size_t nplte,
                         const uint8_t *trns, size_t ntrns, size_t *out_len)
{
    struct sim_buf b;
    sim_buf_init(&b, 1u << 24);
    static const uint8_t sig[8] = {137, 80, 78, 71, 13, 10, 26, 10};
    sim_buf_put(&b, sig, 8);
    uint8_t ihdr[13] = {(uint8_t)(w >> 24),
                        (uint8_t)(w >> 16),
                        (uint8_t)(w >> 8),
                        (uint8_t)w,
                        (uint8_t)(h >> 24),
                        (uint8_t)(h >> 16),
                        (uint8_t)(h >> 8),
                        (uint8_t)h,
                        (uint8_t)depth,
                        (uint8_t)ctype,
                        0,
                        0,
                        (uint8_t)interlace};
    const struct {
        const char *type;
        const uint8_t *data;
        size_t len;
    } chunks[3] = {{"IHDR", ihdr, 13}, {"PLTE", plte, nplte}, {"tRNS", trns, ntrns}};
    for (int i = 0; i < 3; i++) {
        if (chunks[i].data == NULL)
            continue;
        sim_buf_put_be32(&b, (uint32_t)chunks[i].len);
        sim_buf_put(&b, chunks[i].type, 4);
        sim_buf_put(&b, chunks[i].data, chunks[i].len);
        uLong crc =
            crc32(crc32(0, (const Bytef *)chunks[i].type, 4), chunks[i].data, (uInt)chunks[i].len);
        sim_buf_put_be32(&b, (uint32_t)crc);
    }
    uLongf zlen = compressBound(raw_len);
    uint8_t *z = malloc(zlen);
    compress(z, &zlen, raw, raw_len);
    sim_buf_put_be32(&b, (uint32_t)zlen);
    sim_buf_put(&b, "IDAT", 4);
    sim_buf_put(&b, z, zlen);
    sim_buf_put_be32(&b, (uint32_t)crc32(crc32(0, (const Bytef *)"IDAT", 4), z, (uInt)zlen));
    free(z);
    sim_buf_put_be32(&b, 0);
    sim_buf_put(&b, "IEND", 4);
    sim_buf_put_be32(&b, (uint32_t)crc32(0, (const Bytef *)"IEND", 4));
    return (uint8_t *)sim_buf_take(&b, out_len);
}

static void test_decode_flavours(void **state)
{
    (void)state;
    struct sim_png_image img;
    size_t len;
    /* 2x1 gray+alpha, filter None */
    uint8_t la[] = {0, 10, 20, 30, 40};
    uint8_t *p = make_png(2, 1, 8, 4, 0, la, sizeof(la), NULL, 0, NULL, 0, &len);
    assert_int_equal(sim_png_decode(p, len, 100, &img), SIM_PNG_OK);
    assert_int_equal(img.channels, 2);
    assert_memory_equal(img.pixels, la + 1, 4);
    sim_png_image_free(&img);
    free(p);
    /* 4x1 2-bit gray: 0,1,2,3 scaled to 0,85,170,255 */
    uint8_t g2[] = {0, 0x1B};
    p = make_png(4, 1, 2, 0, 0, g2, sizeof(g2), NULL, 0, NULL, 0, &len);
    assert_int_equal(sim_png_decode(p, len, 100, &img), SIM_PNG_OK);
    assert_int_equal(img.channels, 1);
    assert_memory_equal(img.pixels, ((uint8_t[]){0, 85, 170, 255}), 4);
    sim_png_image_free(&img);
    free(p);
    /* palette with transparency, 1-bit indices, second row Up-filtered */
    uint8_t plte[] = {255, 0, 0, 0, 0, 255}, trns[] = {128};
    uint8_t pal[] = {0, 0x40, 2, 0x40}; /* row 2: 0x40 + 0x40 above = 0x80: indices 1, 0 */
    p = make_png(2, 2, 1, 3, 0, pal, sizeof(pal), plte, 6, trns, 1, &len);
    assert_int_equal(sim_png_decode(p, len, 100, &img), SIM_PNG_OK);
    assert_int_equal(img.channels, 4);
    assert_true(img.has_trns);
    assert_memory_equal(
        img.pixels, ((uint8_t[]){255, 0, 0, 128, 0, 0, 255, 255, 0, 0, 255, 255, 255, 0, 0, 128}),
        16);
    sim_png_image_free(&img);
    free(p);
    /* 16-bit RGB keeps the high bytes; Paeth on a single row is Sub */
    uint8_t rgb16[] = {4, 0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc};
    p = make_png(1, 1, 16, 2, 0, rgb16, sizeof(rgb16), NULL, 0, NULL, 0, &len);
    assert_int_equal(sim_png_decode(p, len, 100, &img), SIM_PNG_OK);
    assert_memory_equal(img.pixels, ((uint8_t[]){0x12, 0x56, 0x9a}), 3);
    sim_png_image_free(&img);
    free(p);
}

static void test_decode_refusals(void **state)
{
    (void)state;
    struct sim_png_image img;
    size_t len;
    uint8_t rgb[] = {0, 1, 2, 3};
    uint8_t *p = make_png(1, 1, 8, 2, 0, rgb, sizeof(rgb), NULL, 0, NULL, 0, &len);
    assert_int_equal(sim_png_decode(p, len, 0, &img), SIM_PNG_ETOOBIG);
    assert_int_equal(sim_png_decode((const uint8_t *)"GIF89a", 6, 100, &img), SIM_PNG_ESIGNATURE);
    assert_int_equal(sim_png_decode(p, len - 20, 100, &img), SIM_PNG_ETRUNCATED);
    p[len - 1] ^= 1; /* IEND's CRC */
    assert_int_equal(sim_png_decode(p, len, 100, &img), SIM_PNG_ECRC);
    p[len - 1] ^= 1;
    p[30] ^= 1; /* inside IHDR: CRC mismatch */
    assert_int_equal(sim_png_decode(p, len, 100, &img), SIM_PNG_ECRC);
    free(p);
    p = make_png(1, 1, 8, 2, 1, rgb, sizeof(rgb), NULL, 0, NULL, 0, &len);
    assert_int_equal(sim_png_decode(p, len, 100, &img), SIM_PNG_EUNSUPPORTED);
    free(p);
    uint8_t badfilter[] = {9, 1, 2, 3};
    p = make_png(1, 1, 8, 2, 0, badfilter, sizeof(badfilter), NULL, 0, NULL, 0, &len);
    assert_int_equal(sim_png_decode(p, len, 100, &img), SIM_PNG_EFORMAT);
    free(p);
    /* a huge IHDR is refused before any allocation */
    uint8_t one[] = {0, 0, 0, 0};
    p = make_png(100000, 100000, 8, 6, 0, one, sizeof(one), NULL, 0, NULL, 0, &len);
    assert_int_equal(sim_png_decode(p, len, 1u << 24, &img), SIM_PNG_ETOOBIG);
    free(p);
    /* short image data */
    p = make_png(4, 4, 8, 2, 0, rgb, sizeof(rgb), NULL, 0, NULL, 0, &len);
    assert_int_equal(sim_png_decode(p, len, 100, &img), SIM_PNG_EZLIB);
    free(p);
    uint8_t idx[] = {0, 0};
    p = make_png(1, 1, 8, 3, 0, idx, sizeof(idx), NULL, 0, NULL, 0, &len);
    assert_int_equal(sim_png_decode(p, len, 100, &img), SIM_PNG_EFORMAT); /* no PLTE */
    free(p);
}

static void test_roundtrip_rgba_and_texts(void **state)
{
    (void)state;
    uint8_t px[3 * 5 * 4];
    for (size_t i = 0; i < sizeof(px); i++)
        px[i] = (uint8_t)(i * 37);
    struct sim_png_text texts[2] = {{"prompt", "{\"1\": {}}"}, {"workflow", "{\"nodes\": []}"}};
    struct sim_buf out;
    sim_buf_init(&out, 1u << 20);
    assert_int_equal(sim_png_encode(px, 5, 3, 4, 1, texts, 2, &out), SIM_PNG_OK);
    struct sim_png_image img;
    assert_int_equal(sim_png_decode(out.data, out.len, 100, &img), SIM_PNG_OK);
    assert_int_equal(img.channels, 4);
    assert_memory_equal(img.pixels, px, sizeof(px));
    char *wf = NULL;
    assert_int_equal(sim_png_text_get(out.data, out.len, "workflow", &wf, 1000), SIM_PNG_OK);
    assert_string_equal(wf, "{\"nodes\": []}");
    free(wf);
    assert_int_equal(sim_png_text_get(out.data, out.len, "missing", &wf, 1000), SIM_PNG_ETRUNCATED);
    sim_png_image_free(&img);
    /* bad arguments and a buffer limit */
    assert_int_equal(sim_png_encode(px, 5, 3, 2, 4, NULL, 0, &out), SIM_PNG_EINVAL);
    struct sim_buf small;
    sim_buf_init(&small, 16);
    assert_int_equal(sim_png_encode(px, 5, 3, 4, 4, NULL, 0, &small), SIM_PNG_ENOMEM);
    sim_buf_free(&small);
    sim_buf_free(&out);
}

static void test_large_image_splits_idat(void **state)
{
    (void)state;
    /* Incompressible data larger than 64 KiB: several IDAT chunks, still decodable. */
    uint32_t w = 300, h = 300;
    uint8_t *px = malloc(w * h * 3);
    uint32_t x = 1;
    for (size_t i = 0; i < (size_t)w * h * 3; i++) {
        x = x * 1103515245u + 12345u;
        px[i] = (uint8_t)(x >> 16);
    }
    struct sim_buf out;
    sim_buf_init(&out, 1u << 24);
    assert_int_equal(sim_png_encode(px, w, h, 3, 4, NULL, 0, &out), SIM_PNG_OK);
    size_t idats = 0;
    for (size_t i = 8; i + 8 <= out.len;) {
        uint32_t n = (uint32_t)out.data[i] << 24 | out.data[i + 1] << 16 | out.data[i + 2] << 8 |
                     out.data[i + 3];
        if (memcmp(out.data + i + 4, "IDAT", 4) == 0) {
            idats++;
            assert_true(n <= 65536);
        }
        i += 12 + n;
    }
    assert_true(idats > 1);
    struct sim_png_image img;
    assert_int_equal(sim_png_decode(out.data, out.len, w * h, &img), SIM_PNG_OK);
    assert_memory_equal(img.pixels, px, (size_t)w * h * 3);
    sim_png_image_free(&img);
    sim_buf_free(&out);
    free(px);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reencode_recorded),
        cmocka_unit_test(test_decode_flavours),
        cmocka_unit_test(test_decode_refusals),
        cmocka_unit_test(test_roundtrip_rgba_and_texts),
        cmocka_unit_test(test_large_image_splits_idat),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
