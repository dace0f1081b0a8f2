/*
 * test_sim_image — ComfyUI tensor semantics: float32 values, SaveImage's byte conversion,
 * resizing rules and torch's repr (checked against transcript 13).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sim/sim_image.h"
#include "sim_test_util.h"

#define LIMIT (1u << 24)

static void test_repr_matches_execution_error(void **state)
{
    (void)state;
    simt_require_transcripts();
    json_t *t = simt_load("13_execution_error.json");
    json_t *hist = simt_response_json(simt_step(t, 1));
    json_t *entry = json_object_iter_value(json_object_iter(hist));
    json_t *err = json_array_get(
        json_array_get(json_object_get(json_object_get(entry, "status"), "messages"), 2), 1);
    const char *want = json_string_value(
        json_array_get(json_object_get(json_object_get(err, "current_inputs"), "images"), 0));
    struct sim_tensor *a, *b;
    assert_int_equal(sim_image_empty(8, 8, 1, 1193046, LIMIT, &a), 0);
    assert_int_equal(sim_image_invert(a, LIMIT, &b), 0);
    struct sim_buf out;
    sim_buf_init(&out, 1u << 20);
    sim_tensor_repr(b, &out);
    assert_string_equal((char *)out.data, want);
    sim_buf_free(&out);
    sim_tensor_unref(a);
    sim_tensor_unref(b);
    json_decref(t);
}

static void test_repr_summarised_and_int_mode(void **state)
{
    (void)state;
    struct sim_tensor *m;
    int64_t shape[3] = {1, 64, 64};
    assert_int_equal(sim_tensor_new(3, shape, LIMIT, &m), 0);
    struct sim_buf out;
    sim_buf_init(&out, 1u << 20);
    sim_tensor_repr(m, &out);
    /* torch: zeros print as "0." and 4096 elements are summarised around "..." */
    assert_string_equal((char *)out.data, "tensor([[[0., 0., 0.,  ..., 0., 0., 0.],\n"
                                          "         [0., 0., 0.,  ..., 0., 0., 0.],\n"
                                          "         [0., 0., 0.,  ..., 0., 0., 0.],\n"
                                          "         ...,\n"
                                          "         [0., 0., 0.,  ..., 0., 0., 0.],\n"
                                          "         [0., 0., 0.,  ..., 0., 0., 0.],\n"
                                          "         [0., 0., 0.,  ..., 0., 0., 0.]]])");
    sim_buf_reset(&out);
    int64_t v[1] = {3};
    struct sim_tensor *s;
    assert_int_equal(sim_tensor_new(1, v, LIMIT, &s), 0);
    s->data[0] = 1e-5f;
    s->data[1] = 2.0f;
    s->data[2] = 0;
    sim_tensor_repr(s, &out);
    assert_string_equal((char *)out.data, "tensor([1.0000e-05, 2.0000e+00, 0.0000e+00])");
    sim_buf_free(&out);
    sim_tensor_unref(s);
    sim_tensor_unref(m);
}

static void test_empty_image_and_bytes(void **state)
{
    (void)state;
    struct sim_tensor *t;
    assert_int_equal(sim_image_empty(3, 2, 2, 0xFF8000, LIMIT, &t), 0);
    assert_int_equal(t->ndim, 4);
    assert_int_equal(t->shape[0], 2);
    assert_int_equal(t->shape[1], 2);
    assert_int_equal(t->shape[2], 3);
    assert_int_equal(t->shape[3], 3);
    assert_true(t->data[1] == (float)(128 / 255.0));
    uint8_t rgb[18];
    sim_image_to_u8(t, 1, rgb);
    for (int i = 0; i < 6; i++) {
        assert_int_equal(rgb[3 * i], 255);
        assert_int_equal(rgb[3 * i + 1], 128);
        assert_int_equal(rgb[3 * i + 2], 0);
    }
    /* SaveImage truncates: 255 * (1 - 18/255) in float32 is a hair under 237 -> 236 */
    struct sim_tensor *e, *inv;
    assert_int_equal(sim_image_empty(1, 1, 1, 0x123456, LIMIT, &e), 0);
    assert_int_equal(sim_image_invert(e, LIMIT, &inv), 0);
    sim_image_to_u8(inv, 0, rgb);
    float want = 255.0f * (1.0f - (float)(0x12 / 255.0));
    assert_int_equal(rgb[0], (uint8_t)want);
    sim_tensor_unref(e);
    sim_tensor_unref(inv);
    sim_tensor_unref(t);
}

static void test_limits(void **state)
{
    (void)state;
    struct sim_tensor *t = NULL;
    assert_int_equal(sim_image_empty(4096, 4096, 2, 0, 4096ull * 4096 * 3, &t), SIM_IMAGE_ETOOBIG);
    assert_null(t);
    int64_t bad[2] = {-1, 2};
    assert_int_equal(sim_tensor_new(2, bad, LIMIT, &t), SIM_IMAGE_EINVAL);
    int64_t huge[4] = {INT64_MAX / 2, 4, 4, 4};
    assert_int_equal(sim_tensor_new(4, huge, UINT64_MAX, &t), SIM_IMAGE_ETOOBIG);
}

static void test_scale(void **state)
{
    (void)state;
    struct sim_tensor *src, *out;
    assert_int_equal(sim_image_empty(64, 32, 1, 0x336699, LIMIT, &src), 0);
    for (int m = SIM_SCALE_NEAREST_EXACT; m <= SIM_SCALE_LANCZOS; m++) {
        assert_int_equal(sim_image_scale(src, (enum sim_scale_method)m, 100, 0, false, LIMIT, &out),
                         0);
        /* height 0 keeps the aspect ratio: round(32 * 100 / 64) = 50 */
        assert_int_equal(out->shape[2], 100);
        assert_int_equal(out->shape[1], 50);
        uint8_t *rgb = malloc(100 * 50 * 3);
        sim_image_to_u8(out, 0, rgb);
        /* a flat image stays flat (within a rounding step) whatever the filter */
        for (size_t i = 0; i < 100 * 50; i++)
            assert_true(abs(rgb[3 * i] - 0x33) <= 1 && abs(rgb[3 * i + 1] - 0x66) <= 1 &&
                        abs(rgb[3 * i + 2] - 0x99) <= 1);
        free(rgb);
        sim_tensor_unref(out);
    }
    /* nearest-exact picks source pixel floor((x + 0.5) * in / out) */
    struct sim_tensor *ramp;
    assert_int_equal(sim_image_empty(4, 1, 1, 0, LIMIT, &ramp), 0);
    for (int x = 0; x < 4; x++)
        ramp->data[3 * x] = (float)x;
    assert_int_equal(sim_image_scale(ramp, SIM_SCALE_NEAREST_EXACT, 2, 1, false, LIMIT, &out), 0);
    assert_true(out->data[0] == 1.0f && out->data[3] == 3.0f);
    sim_tensor_unref(out);
    assert_int_equal(sim_image_scale(ramp, SIM_SCALE_BILINEAR, 8, 1, false, LIMIT, &out), 0);
    assert_true(out->data[0] == 0.0f && out->data[3] == 0.25f && out->data[21] == 3.0f);
    sim_tensor_unref(out);
    /* crop center: 64x32 to a square keeps the middle 32 columns */
    assert_int_equal(sim_image_scale(src, SIM_SCALE_AREA, 16, 16, true, LIMIT, &out), 0);
    assert_int_equal(out->shape[1], 16);
    assert_int_equal(out->shape[2], 16);
    sim_tensor_unref(out);
    /* 0x0 returns the image itself */
    assert_int_equal(sim_image_scale(src, SIM_SCALE_AREA, 0, 0, false, LIMIT, &out), 0);
    assert_ptr_equal(out, src);
    sim_tensor_unref(out);
    enum sim_scale_method m;
    assert_true(sim_scale_method_parse("lanczos", &m) && m == SIM_SCALE_LANCZOS);
    assert_false(sim_scale_method_parse("cubic-foo", &m));
    sim_tensor_unref(ramp);
    sim_tensor_unref(src);
}

static void test_pixels_masks_pattern(void **state)
{
    (void)state;
    uint8_t la[4] = {10, 0, 200, 255};
    struct sim_tensor *img, *mask, *p1, *p2, *p3;
    assert_int_equal(sim_image_from_pixels(la, 2, 1, 2, LIMIT, &img), 0);
    assert_true(img->data[0] == 10.0f / 255.0f && img->data[2] == 10.0f / 255.0f);
    assert_int_equal(sim_mask_from_channel(la, 2, 1, 2, 1, true, LIMIT, &mask), 0);
    assert_true(mask->data[0] == 1.0f && mask->data[1] == 0.0f);
    assert_int_equal(sim_image_pattern(16, 8, 2, 99, LIMIT, &p1), 0);
    assert_int_equal(sim_image_pattern(16, 8, 2, 99, LIMIT, &p2), 0);
    assert_int_equal(sim_image_pattern(16, 8, 2, 100, LIMIT, &p3), 0);
    assert_memory_equal(p1->data, p2->data, p1->numel * sizeof(float));
    assert_true(memcmp(p1->data, p3->data, p1->numel * sizeof(float)) != 0);
    sim_tensor_unref(p1);
    sim_tensor_unref(p2);
    sim_tensor_unref(p3);
    sim_tensor_unref(img);
    sim_tensor_unref(mask);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_repr_matches_execution_error),
        cmocka_unit_test(test_repr_summarised_and_int_mode),
        cmocka_unit_test(test_empty_image_and_bytes),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_scale),
        cmocka_unit_test(test_pixels_masks_pattern),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
