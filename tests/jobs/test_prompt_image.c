/* prompt_image_size: the pixel size an input image declares in its header, for each format the
 * gateway takes (PNG, JPEG, WebP lossy/lossless/extended, GIF), and no size from a header cut
 * short. A small file can declare a huge image (a decompression bomb): this is what
 * MAX_IMAGE_SIZE is checked against before the image reaches a backend. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "jobs/prompt_req.h"

static void expect_size(const unsigned char *p, size_t n, uint32_t w, uint32_t h)
{
    uint32_t gw = 0, gh = 0;
    assert_true(prompt_image_size(p, n, &gw, &gh));
    assert_int_equal(gw, w);
    assert_int_equal(gh, h);
    /* every shorter prefix either reads the same size or none: never another one */
    for (size_t k = 0; k < n; k++) {
        uint32_t kw = 0, kh = 0;
        if (prompt_image_size(p, k, &kw, &kh)) {
            assert_int_equal(kw, w);
            assert_int_equal(kh, h);
        }
    }
}

static void png(void **state)
{
    (void)state;
    static const unsigned char p[] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0, 0, 0, 13,
                                      'I',  'H', 'D', 'R', 0, 1, 0x86, 0xa0, 0, 0, 0x40, 0x00,
                                      8,    2,   0,   0,   0};
    expect_size(p, sizeof(p), 100000, 16384);
    unsigned char bad[sizeof(p)];
    memcpy(bad, p, sizeof(p));
    memcpy(bad + 12, "IDAT", 4); /* the first chunk must be IHDR */
    uint32_t w, h;
    assert_false(prompt_image_size(bad, sizeof(bad), &w, &h));
}

static void gif(void **state)
{
    (void)state;
    static const unsigned char p[] = {'G', 'I', 'F', '8', '9', 'a', 0x10, 0x27, 0x20, 0x4e, 0};
    expect_size(p, sizeof(p), 10000, 20000);
}

static void webp(void **state)
{
    (void)state;
    /* lossy: frame tag, start code, 14-bit sizes */
    static const unsigned char vp8[] = {'R', 'I', 'F', 'F', 0, 0, 0, 0, 'W', 'E', 'B', 'P',
                                        'V', 'P', '8', ' ', 0, 0, 0, 0, 0, 0, 0, 0x9d, 0x01,
                                        0x2a, 0x00, 0x08, 0x00, 0x04};
    expect_size(vp8, sizeof(vp8), 2048, 1024);
    /* lossless: 0x2f, then width-1 and height-1 in 14 bits each */
    uint32_t bits = (4000 - 1) | (3000 - 1) << 14;
    unsigned char vp8l[] = {'R', 'I', 'F', 'F', 0, 0, 0, 0, 'W', 'E', 'B', 'P', 'V', 'P', '8',
                            'L', 0, 0, 0, 0, 0x2f, (unsigned char)bits,
                            (unsigned char)(bits >> 8), (unsigned char)(bits >> 16),
                            (unsigned char)(bits >> 24)};
    expect_size(vp8l, sizeof(vp8l), 4000, 3000);
    /* extended: 24-bit canvas width-1 and height-1 */
    static const unsigned char vp8x[] = {'R', 'I', 'F', 'F', 0, 0, 0, 0, 'W', 'E', 'B', 'P',
                                         'V', 'P', '8', 'X', 10, 0, 0, 0, 0, 0, 0, 0,
                                         0x9f, 0x86, 0x01, 0xff, 0xff, 0x00};
    expect_size(vp8x, sizeof(vp8x), 100000, 65536);
}

static void jpeg(void **state)
{
    (void)state;
    /* SOI, an APP0 segment to skip, fill bytes, then SOF2 (progressive) */
    static const unsigned char p[] = {0xff, 0xd8, 0xff, 0xe0, 0x00, 0x06, 'J', 'F', 'I', 'F',
                                      0xff, 0xff, 0xc2, 0x00, 0x0b, 0x08, 0x30, 0x39, 0x10,
                                      0x00, 0x01, 0x01, 0x11, 0x00};
    expect_size(p, sizeof(p), 4096, 12345);
    /* scan data before any frame header, or a DHT marker mistaken for one: no size */
    static const unsigned char sos[] = {0xff, 0xd8, 0xff, 0xda, 0x00, 0x08, 0, 0, 0, 0, 0, 0};
    static const unsigned char dht[] = {0xff, 0xd8, 0xff, 0xc4, 0x00, 0x09, 0, 0x30, 0, 0x30, 0,
                                        0};
    uint32_t w, h;
    assert_false(prompt_image_size(sos, sizeof(sos), &w, &h));
    assert_false(prompt_image_size(dht, sizeof(dht), &w, &h));
}

static void not_an_image(void **state)
{
    (void)state;
    uint32_t w, h;
    assert_false(prompt_image_size((const unsigned char *)"hello, world", 12, &w, &h));
    assert_false(prompt_image_size(NULL, 0, &w, &h));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(png),  cmocka_unit_test(gif),          cmocka_unit_test(webp),
        cmocka_unit_test(jpeg), cmocka_unit_test(not_an_image),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
