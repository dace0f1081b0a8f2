/*
 * test_sim_preview — /view's preview= parameter read as ComfyUI 0.8.0's server.py and Pillow
 * 9.4 read it (a table), and the conversion's answers: the format, alpha kept or dropped, and
 * the statuses for a bad quality, an unreadable file, a size the format cannot hold and
 * comfysim's own pixel cap.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sim/sim_png.h"
#include "sim/sim_preview.h"

enum { W = SIM_PREVIEW_WEBP, J = SIM_PREVIEW_JPEG };

static void test_parse_table(void **state)
{
    (void)state;
    static const struct {
        const char *preview, *channel;
        int format, quality;
        bool ok, rgb;
    } cases[] = {
        {"webp;50", NULL, W, 50, true, false},
        {"jpeg;80", NULL, J, 80, true, true},
        {"jpeg", NULL, J, 90, true, true},   /* info[-1] is "jpeg": not a number */
        {"webp;", NULL, W, 90, true, false}, /* "" is not a number */
        {"", NULL, W, 90, true, false},      /* an unknown format is webp */
        {"png;70", NULL, W, 70, true, false},
        {"JPEG;70", NULL, W, 70, true, false}, /* the list is case-sensitive */
        {"80", NULL, W, 80, true, false},      /* info[0] == info[-1] == "80" */
        {"jpeg;80;5", NULL, J, 5, true, true}, /* the last field */
        {"jpeg;8x", NULL, J, 90, true, true},
        {"jpeg;-5", NULL, J, 90, true, true}, /* '-' is no digit */
        {"jpeg;+5", NULL, J, 90, true, true},
        {"jpeg; 5", NULL, J, 90, true, true},
        {"jpeg;0", NULL, J, 1, true, true}, /* libjpeg clamps to 1..100 */
        {"jpeg;007", NULL, J, 7, true, true},
        {"jpeg;101", NULL, J, 100, true, true},
        {"jpeg;2147483647", NULL, J, 100, true, true},
        {"jpeg;2147483648", NULL, J, 1, true, true},           /* a C int: -2^31 */
        {"jpeg;4294967295", NULL, J, 75, true, true},          /* -1: libjpeg's default */
        {"jpeg;4294967376", NULL, J, 80, true, true},          /* 2^32 + 80 */
        {"jpeg;9223372036854775807", NULL, J, 75, true, true}, /* 2^63-1: low 32 bits -1 */
        {"jpeg;9223372036854775808", NULL, J, 0, false, true}, /* ssize_t overflow */
        {"jpeg;99999999999999999999", NULL, J, 0, false, true},
        {"jpeg;0000000000000000000000080", NULL, J, 80, true, true},
        {"webp;0", NULL, W, 0, true, false},
        {"webp;100", NULL, W, 100, true, false},
        {"webp;101", NULL, W, 0, false, false}, /* WebPValidateConfig */
        {"webp;99999999999999999999", NULL, W, 0, false, false},
        {"jpeg;80", "a", W, 80, true, false}, /* 'a' in channel: webp */
        {"jpeg;80", "rgba", W, 80, true, false},
        {"jpeg;80", "alpha", W, 80, true, false},
        {"jpeg;80", "rgb", J, 80, true, true},
        {"webp;50", "rgb", W, 50, true, true}, /* channel=rgb: convert("RGB") */
        {"webp;50", "", W, 50, true, false},
        {"webp;50", "RGB", W, 50, true, false},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct sim_preview p;
        sim_preview_parse(cases[i].preview, cases[i].channel, &p);
        print_message("%s / %s\n", cases[i].preview, cases[i].channel ? cases[i].channel : "-");
        assert_int_equal(p.format, cases[i].format);
        assert_int_equal(p.quality_ok, cases[i].ok);
        if (cases[i].ok)
            assert_int_equal(p.quality, cases[i].quality);
        assert_int_equal(p.rgb, cases[i].rgb);
    }
    struct sim_preview p;
    sim_preview_parse("jpeg;1", NULL, &p);
    assert_string_equal(sim_preview_content_type(&p), "image/jpeg");
    sim_preview_parse("webp;1", NULL, &p);
    assert_string_equal(sim_preview_content_type(&p), "image/webp");
}

static uint8_t *png_of(uint32_t w, uint32_t h, int ch, size_t *len)
{
    uint8_t *px = malloc((size_t)w * h * (size_t)ch);
    for (size_t i = 0; i < (size_t)w * h * (size_t)ch; i++)
        px[i] = (uint8_t)(i * 3);
    struct sim_buf b;
    sim_buf_init(&b, 1u << 26);
    assert_int_equal(sim_png_encode(px, w, h, ch, 1, NULL, 0, &b), SIM_PNG_OK);
    free(px);
    return (uint8_t *)sim_buf_take(&b, len);
}

static int convert(const char *preview, const char *channel, const uint8_t *file, size_t len,
                   uint64_t max, struct sim_buf *out)
{
    struct sim_preview p;
    sim_preview_parse(preview, channel, &p);
    sim_buf_reset(out);
    return sim_preview_convert(&p, file, len, max, out);
}

/* The VP8L header's alpha hint tells whether alpha was kept. */
static bool webp_alpha(const struct sim_buf *b)
{
    return b->len > 25 && memcmp(b->data + 12, "VP8L", 4) == 0 && ((b->data[24] >> 4) & 1);
}

static void test_convert(void **state)
{
    (void)state;
    size_t len;
    uint8_t *rgba = png_of(20, 10, 4, &len);
    struct sim_buf out;
    sim_buf_init(&out, 1u << 24);
    assert_int_equal(convert("jpeg;80", NULL, rgba, len, 1000, &out), 0);
    assert_memory_equal(out.data, "\xff\xd8\xff\xe0", 4);
    assert_int_equal(convert("webp;50", NULL, rgba, len, 1000, &out), 0);
    assert_memory_equal(out.data, "RIFF", 4);
    assert_true(webp_alpha(&out));
    assert_int_equal(convert("webp;50", "rgb", rgba, len, 1000, &out), 0);
    assert_false(webp_alpha(&out));
    assert_int_equal(convert("jpeg;80", "a", rgba, len, 1000, &out), 0);
    assert_true(webp_alpha(&out));
    /* refusals: the cap (400), then what Pillow raises on (500) */
    assert_int_equal(convert("jpeg;80", NULL, rgba, len, 199, &out), 400);
    assert_int_equal(convert("webp;101", NULL, rgba, len, 1000, &out), 500);
    assert_int_equal(convert("jpeg;80", NULL, (const uint8_t *)"GIF89a", 6, 1000, &out), 500);
    assert_int_equal(convert("jpeg;80", NULL, rgba, len - 20, 1000, &out), 500);
    free(rgba);
    uint8_t *wide = png_of(16384, 1, 3, &len);
    assert_int_equal(convert("webp;50", NULL, wide, len, 1u << 20, &out), 500);
    assert_int_equal(convert("jpeg;80", NULL, wide, len, 1u << 20, &out), 0);
    free(wide);
    wide = png_of(65501, 1, 3, &len);
    assert_int_equal(convert("jpeg;80", NULL, wide, len, 1u << 20, &out), 500);
    free(wide);
    sim_buf_free(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_table),
        cmocka_unit_test(test_convert),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
