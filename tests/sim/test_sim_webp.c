/*
 * test_sim_webp — the lossless WebP encoder: the RIFF container and VP8L header, complete
 * length-limited prefix codes, LZ77 prefix values as a decoder reads them back, residuals of
 * the predictor, and refusals. (Decoding by an independent decoder is test_preview_pil.py's
 * job.)
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sim/sim_webp.c"

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint8_t *encode(const uint8_t *px, uint32_t w, uint32_t h, int ch, size_t *len)
{
    struct sim_buf out;
    sim_buf_init(&out, 1u << 24);
    assert_int_equal(sim_webp_encode(px, w, h, ch, 50, &out), SIM_WEBP_OK);
    return (uint8_t *)sim_buf_take(&out, len);
}

/* RIFF sizes (the chunk padded to even), the VP8L signature, 14-bit sizes, the alpha hint. */
static void check_container(const uint8_t *f, size_t len, uint32_t w, uint32_t h, bool alpha)
{
    assert_true(len >= 25 && len % 2 == 0);
    assert_memory_equal(f, "RIFF", 4);
    assert_int_equal(le32(f + 4), len - 8);
    assert_memory_equal(f + 8, "WEBPVP8L", 8);
    uint32_t chunk = le32(f + 16);
    assert_true(chunk + 20 == len || chunk + 21 == len);
    assert_int_equal(f[20], 0x2f);
    uint32_t bits = le32(f + 21);
    assert_int_equal((bits & 0x3fff) + 1, w);
    assert_int_equal(((bits >> 14) & 0x3fff) + 1, h);
    assert_int_equal((bits >> 28) & 1, alpha ? 1 : 0);
    assert_int_equal(bits >> 29, 0); /* version */
}

static void test_container(void **state)
{
    (void)state;
    static const uint32_t sizes[][2] = {{1, 1}, {17, 9}, {300, 2}, {16383, 1}};
    uint8_t *px = calloc(16383 * 4, 1);
    for (size_t i = 0; i < 16383 * 4; i++)
        px[i] = (uint8_t)(i * 7 + i / 5);
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        for (int ch = 1; ch <= 4; ch++) {
            size_t len;
            uint8_t *f = encode(px, sizes[i][0], sizes[i][1], ch, &len);
            /* alpha is used when some sample is not 255: always, with these bytes */
            check_container(f, len, sizes[i][0], sizes[i][1], ch == 2 || ch == 4);
            free(f);
        }
    }
    free(px);
}

/* Kraft sum of lengths: exactly 1 (in units of 2^-limit) for a complete code. */
static uint64_t kraft(const uint8_t *len, int n, int limit)
{
    uint64_t sum = 0;
    for (int i = 0; i < n; i++) {
        if (len[i] != 0)
            sum += UINT64_C(1) << (limit - len[i]);
    }
    return sum;
}

/* Fibonacci counts make an unlimited Huffman tree as deep as the alphabet is long. */
static void test_length_limit(void **state)
{
    (void)state;
    uint32_t freq[GREEN_SYMS] = {0};
    uint8_t len[GREEN_SYMS];
    uint32_t a = 1, b = 1;
    for (int i = 0; i < 40; i++) {
        freq[i * 7] = a;
        uint32_t c = a + b;
        a = b;
        b = c > (1u << 30) ? 1u << 30 : c;
    }
    assert_true(tree_lengths(freq, GREEN_SYMS, 1, len) > CODE_LEN_MAX);
    huff_lengths(freq, GREEN_SYMS, CODE_LEN_MAX, len);
    for (int i = 0; i < GREEN_SYMS; i++) {
        assert_true(len[i] <= CODE_LEN_MAX);
        assert_true((len[i] != 0) == (freq[i] != 0));
    }
    assert_int_equal(kraft(len, GREEN_SYMS, CODE_LEN_MAX), UINT64_C(1) << CODE_LEN_MAX);
    /* the code-length code: 19 symbols, 7 bits at most */
    uint32_t cl[CL_SYMS];
    for (int i = 0; i < CL_SYMS; i++)
        cl[i] = 1u << i;
    huff_lengths(cl, CL_SYMS, CL_LEN_MAX, len);
    assert_int_equal(kraft(len, CL_SYMS, CL_LEN_MAX), UINT64_C(1) << CL_LEN_MAX);
}

/* Canonical codes are prefix-free: no code is the start of a longer one. */
static void test_canonical(void **state)
{
    (void)state;
    static const uint8_t len[8] = {3, 3, 3, 3, 3, 2, 4, 4};
    uint16_t code[8];
    canonical_codes(len, 8, code);
    for (int i = 0; i < 8; i++) {
        for (int j = 0; j < 8; j++) {
            if (i == j || len[i] > len[j])
                continue;
            /* reversed codes: a prefix shows as equal low bits */
            assert_true((code[j] & ((1u << len[i]) - 1)) != code[i]);
        }
    }
    assert_int_equal(code[5], 0); /* the one 2-bit code comes first: 00 */
}

/* prefix_encode, undone as RFC 9649 5.2.2's decoder does. */
static void test_prefix_values(void **state)
{
    (void)state;
    for (uint32_t v = 1; v <= COPY_MAX; v++) {
        unsigned sym;
        int nbits;
        uint32_t extra, back;
        prefix_encode(v, &sym, &nbits, &extra);
        assert_true(sym < 24);
        if (sym < 4) {
            back = sym + 1;
        } else {
            int eb = (int)(sym - 2) >> 1;
            assert_int_equal(eb, nbits);
            back = ((2 + (sym & 1)) << eb) + extra + 1;
        }
        assert_int_equal(back, v);
    }
}

/* The predictor's residuals, undone in decoding order, give the pixels back. */
static void test_predictor_round_trip(void **state)
{
    (void)state;
    enum { W = 37, H = 21 };
    uint32_t px[W * H], orig[W * H];
    for (int i = 0; i < W * H; i++)
        orig[i] = px[i] = 0x01020304u * (uint32_t)(i % 11) + (uint32_t)(i / W) * 0x10u;
    uint32_t bw = (W + BLOCK - 1) / BLOCK, bh = (H + BLOCK - 1) / BLOCK;
    uint32_t modes[8];
    assert_true(bw * bh <= 8);
    for (uint32_t i = 0; i < bw * bh; i++)
        modes[i] = (i % 2 ? PRED_T : PRED_L) << 8;
    predict(px, W, H, modes, bw);
    for (uint32_t y = 0; y < H; y++) {
        for (uint32_t x = 0; x < W; x++) {
            size_t i = (size_t)y * W + x;
            uint32_t pred = x == 0 && y == 0                                         ? 0xff000000u
                            : y == 0                                                 ? px[i - 1]
                            : x == 0                                                 ? px[i - W]
                            : ((modes[(y / BLOCK) * bw + x / BLOCK] >> 8) == PRED_T) ? px[i - W]
                                                                                     : px[i - 1];
            uint32_t r = 0;
            for (int s = 0; s < 32; s += 8)
                r |= (((px[i] >> s) + (pred >> s)) & 0xffu) << s;
            px[i] = r;
        }
    }
    assert_memory_equal(px, orig, sizeof(px));
}

/* A flat picture is one literal and runs: tens of bytes, not one bit per pixel. */
static void test_flat_is_small(void **state)
{
    (void)state;
    uint8_t *px = malloc(300 * 300 * 3);
    for (size_t i = 0; i < 300 * 300; i++)
        memcpy(px + 3 * i, (const uint8_t[]){0x33, 0x66, 0xcc}, 3);
    size_t len;
    uint8_t *f = encode(px, 300, 300, 3, &len);
    check_container(f, len, 300, 300, false);
    assert_true(len < 200);
    free(f);
    free(px);
}

static void test_refusals(void **state)
{
    (void)state;
    uint8_t px[64] = {0};
    struct sim_buf out;
    sim_buf_init(&out, 1u << 20);
    assert_int_equal(sim_webp_encode(px, 0, 1, 3, 50, &out), SIM_WEBP_EINVAL);
    assert_int_equal(sim_webp_encode(px, 16384, 1, 3, 50, &out), SIM_WEBP_EINVAL);
    assert_int_equal(sim_webp_encode(px, 1, 1, 0, 50, &out), SIM_WEBP_EINVAL);
    assert_int_equal(sim_webp_encode(px, 1, 1, 3, 101, &out), SIM_WEBP_EINVAL);
    assert_int_equal(sim_webp_encode(px, 1, 1, 3, -1, &out), SIM_WEBP_EINVAL);
    assert_int_equal(sim_webp_encode(px, 1, 1, 3, 0, &out), SIM_WEBP_OK);
    sim_buf_free(&out);
    sim_buf_init(&out, 10);
    assert_int_equal(sim_webp_encode(px, 4, 4, 4, 50, &out), SIM_WEBP_ETOOBIG);
    sim_buf_free(&out);
    assert_string_equal(sim_webp_err_name(SIM_WEBP_EINVAL), "invalid argument");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_container),
        cmocka_unit_test(test_length_limit),
        cmocka_unit_test(test_canonical),
        cmocka_unit_test(test_prefix_values),
        cmocka_unit_test(test_predictor_round_trip),
        cmocka_unit_test(test_flat_is_small),
        cmocka_unit_test(test_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
