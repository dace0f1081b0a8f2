/*
 * test_sim_jpeg — the baseline JPEG encoder: Pillow's bytes for transcript 06's picture,
 * IJG quality scaling, the marker layout, byte stuffing, partial MCUs and refusals.
 * (Decoding by an independent decoder is test_preview_pil.py's job.)
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sim/sim_jpeg.c"
#include "sim/sim_png.h"
#include "sim_test_util.h"

static unsigned be16(const uint8_t *p)
{
    return (unsigned)p[0] << 8 | p[1];
}

/* Walks the markers of a whole file; fills the segment kinds seen in order (one letter each:
 * A APP0, Q DQT, F SOF0, H DHT, S SOS) and checks the entropy-coded data: every 0xFF in it
 * is stuffed, and the file ends with EOI right after it. Returns how many 0xFF were stuffed. */
static size_t walk(const uint8_t *d, size_t n, char *kinds, size_t cap, const uint8_t **sof)
{
    size_t k = 0, i = 2, stuffed = 0;
    assert_true(n > 4 && d[0] == 0xff && d[1] == 0xd8);
    for (;;) {
        assert_true(i + 4 <= n && d[i] == 0xff);
        uint8_t m = d[i + 1];
        size_t len = be16(d + i + 2);
        const char *kind = m == 0xe0   ? "A"
                           : m == 0xdb ? "Q"
                           : m == 0xc0 ? "F"
                           : m == 0xc4 ? "H"
                           : m == 0xda ? "S"
                                       : NULL;
        assert_non_null(kind);
        assert_true(k + 1 < cap);
        kinds[k++] = kind[0];
        if (m == 0xc0)
            *sof = d + i + 4;
        i += 2 + len;
        if (m == 0xda)
            break;
    }
    kinds[k] = 0;
    for (; i < n - 2; i++) {
        if (d[i] == 0xff) {
            assert_true(i + 1 < n - 2 && d[i + 1] == 0x00);
            stuffed++;
            i++;
        }
    }
    assert_int_equal(i, n - 2);
    assert_true(d[n - 2] == 0xff && d[n - 1] == 0xd9);
    return stuffed;
}

static uint8_t *encode(const uint8_t *px, uint32_t w, uint32_t h, int ch, int q,
                       enum sim_jpeg_sampling s, size_t *len)
{
    struct sim_buf out;
    sim_buf_init(&out, 1u << 24);
    assert_int_equal(sim_jpeg_encode(px, w, h, ch, q, s, &out), SIM_JPEG_OK);
    return (uint8_t *)sim_buf_take(&out, len);
}

/* Transcript 06: ComfyUI's preview=jpeg;80 of the 64x64 0x3366cc picture is 693 bytes; ours
 * has the same length and first bytes (and is byte for byte what Pillow 9.4 writes). */
static void test_transcript_06(void **state)
{
    (void)state;
    simt_require_transcripts();
    json_t *t = simt_load("06_view.json");
    json_t *body = NULL;
    for (size_t i = 0; body == NULL && i < json_array_size(json_object_get(t, "steps")); i++) {
        json_t *step = simt_step(t, i);
        const char *path =
            json_string_value(json_object_get(json_object_get(step, "request"), "path"));
        if (strstr(path, "preview=jpeg;80") != NULL)
            body = json_object_get(json_object_get(step, "response"), "body");
    }
    assert_non_null(body);
    size_t plen, len;
    uint8_t *png = simt_read_file("06_view_output.png", &plen);
    struct sim_png_image img;
    assert_int_equal(sim_png_decode(png, plen, 1u << 20, &img), SIM_PNG_OK);
    uint8_t *jpg = encode(img.pixels, img.width, img.height, img.channels, 80, SIM_JPEG_420, &len);
    assert_int_equal(len, json_integer_value(json_object_get(body, "length")));
    char hex[33];
    for (int i = 0; i < 16; i++)
        snprintf(hex + 2 * i, 3, "%02x", jpg[i]);
    assert_string_equal(hex, json_string_value(json_object_get(body, "first16_hex")));
    free(jpg);
    sim_png_image_free(&img);
    free(png);
    json_decref(t);
}

static void test_quality_scaling(void **state)
{
    (void)state;
    uint8_t q[64];
    sim_jpeg_quant_table(50, 0, q); /* 50 is Annex K itself */
    assert_memory_equal(q, k_quant[0], 64);
    sim_jpeg_quant_table(80, 0, q); /* scale 40%, rounded: what Pillow writes */
    assert_int_equal(q[0], 6);
    assert_int_equal(q[1], 4);
    assert_int_equal(q[63], 40);
    sim_jpeg_quant_table(80, 1, q);
    assert_int_equal(q[0], 7);
    assert_int_equal(q[63], 40);
    sim_jpeg_quant_table(10, 1, q); /* scale 500%: 99 * 5 clamps to baseline's 255 */
    assert_int_equal(q[0], 85);
    assert_int_equal(q[63], 255);
    sim_jpeg_quant_table(100, 0, q);
    for (int i = 0; i < 64; i++)
        assert_int_equal(q[i], 1);
}

/* Odd sizes in both samplings: the layout, SOF's size and factors, and 0xFF stuffing (noise
 * at quality 100 makes plenty of 0xFF bytes). */
static void test_layout_and_stuffing(void **state)
{
    (void)state;
    static const uint32_t sizes[][2] = {{1, 1}, {17, 9}, {8, 16}, {33, 47}};
    uint8_t *px = malloc(33 * 47 * 4);
    uint32_t seed = 12345;
    for (size_t i = 0; i < 33 * 47 * 4; i++) {
        seed = seed * 1103515245u + 12345u;
        px[i] = (uint8_t)(seed >> 16);
    }
    size_t total_stuffed = 0;
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        for (int s = 0; s < 2; s++) {
            size_t len;
            const uint8_t *sof = NULL;
            char kinds[16];
            uint8_t *jpg = encode(px, sizes[i][0], sizes[i][1], 4, 100,
                                  s == 0 ? SIM_JPEG_420 : SIM_JPEG_444, &len);
            total_stuffed += walk(jpg, len, kinds, sizeof(kinds), &sof);
            assert_string_equal(kinds, "AQQFHHHHS");
            assert_memory_equal(jpg + 6, "JFIF\0\1\1", 7);
            assert_int_equal(be16(sof + 1), sizes[i][1]);
            assert_int_equal(be16(sof + 3), sizes[i][0]);
            assert_int_equal(sof[5], 3);
            assert_int_equal(sof[7], s == 0 ? 0x22 : 0x11);
            assert_int_equal(sof[10], 0x11);
            free(jpg);
        }
    }
    assert_true(total_stuffed > 0);
    free(px);
}

/* Gray and gray+alpha give the same file as the RGB they expand to; alpha never matters. */
static void test_channels(void **state)
{
    (void)state;
    uint8_t l[12 * 10], la[12 * 10 * 2], rgb[12 * 10 * 3], rgba[12 * 10 * 4];
    for (int i = 0; i < 120; i++) {
        l[i] = (uint8_t)(i * 2);
        la[2 * i] = l[i];
        la[2 * i + 1] = (uint8_t)i;
        memset(rgb + 3 * i, l[i], 3);
        memset(rgba + 4 * i, l[i], 3);
        rgba[4 * i + 3] = (uint8_t)(255 - i);
    }
    size_t n[4];
    uint8_t *f[4] = {encode(l, 12, 10, 1, 75, SIM_JPEG_420, &n[0]),
                     encode(la, 12, 10, 2, 75, SIM_JPEG_420, &n[1]),
                     encode(rgb, 12, 10, 3, 75, SIM_JPEG_420, &n[2]),
                     encode(rgba, 12, 10, 4, 75, SIM_JPEG_420, &n[3])};
    for (int i = 1; i < 4; i++) {
        assert_int_equal(n[i], n[0]);
        assert_memory_equal(f[i], f[0], n[0]);
    }
    for (int i = 0; i < 4; i++)
        free(f[i]);
}

/* A flat block has DC only: (Y - 128) * 8 / Q rounded, and the scan of a flat picture is
 * one DC difference then EOBs. */
static void test_flat_dc(void **state)
{
    (void)state;
    struct jenc e;
    struct sim_buf out;
    sim_buf_init(&out, 1024);
    jenc_init(&e, NULL, 8, 8, 3, 50, true, &out);
    float s[64];
    int zz[64];
    for (int i = 0; i < 64; i++)
        s[i] = 98 - 128;
    dct_quantise(&e, 0, s, zz);
    assert_int_equal(zz[0], -15); /* -240 / 16 */
    for (int i = 1; i < 64; i++)
        assert_int_equal(zz[i], 0);
    uint8_t ycc[3];
    rgb_to_ycc((const uint8_t[]){51, 102, 204}, 3, ycc);
    assert_int_equal(ycc[0], 98);
    assert_int_equal(ycc[1], 188);
    assert_int_equal(ycc[2], 94);
    rgb_to_ycc((const uint8_t[]){0, 0, 255}, 3, ycc); /* Cb 255.5 stays 255 */
    assert_int_equal(ycc[1], 255);
    sim_buf_free(&out);
}

static void test_refusals(void **state)
{
    (void)state;
    uint8_t px[16 * 16 * 3] = {0};
    struct sim_buf out;
    sim_buf_init(&out, 1u << 20);
    assert_int_equal(sim_jpeg_encode(px, 0, 1, 3, 80, SIM_JPEG_420, &out), SIM_JPEG_EINVAL);
    assert_int_equal(sim_jpeg_encode(px, 65501, 1, 3, 80, SIM_JPEG_420, &out), SIM_JPEG_EINVAL);
    assert_int_equal(sim_jpeg_encode(px, 1, 1, 5, 80, SIM_JPEG_420, &out), SIM_JPEG_EINVAL);
    assert_int_equal(sim_jpeg_encode(px, 1, 1, 3, 0, SIM_JPEG_420, &out), SIM_JPEG_EINVAL);
    assert_int_equal(sim_jpeg_encode(px, 1, 1, 3, 101, SIM_JPEG_420, &out), SIM_JPEG_EINVAL);
    assert_int_equal(out.len, 0);
    sim_buf_free(&out);
    sim_buf_init(&out, 100); /* the headers alone are over 600 bytes */
    assert_int_equal(sim_jpeg_encode(px, 16, 16, 3, 80, SIM_JPEG_420, &out), SIM_JPEG_ETOOBIG);
    sim_buf_free(&out);
    assert_string_equal(sim_jpeg_err_name(SIM_JPEG_ETOOBIG), "output too big");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_transcript_06),
        cmocka_unit_test(test_quality_scaling),
        cmocka_unit_test(test_layout_and_stuffing),
        cmocka_unit_test(test_channels),
        cmocka_unit_test(test_flat_dc),
        cmocka_unit_test(test_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
