/*
 * test_sim_ops — what single nodes compute and write: SaveImage/PreviewImage files and
 * metadata, LoadImage/LoadImageMask, GetImageSize, PreviewAny, model stand-ins, and the way
 * failures read (exception type and message).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sim/sim_json.h"
#include "sim/sim_ops.h"
#include "sim/sim_png.h"
#include "sim_test_util.h"

struct fixture {
    struct sim_nodes *nodes;
    struct simt_fs fs;
    struct tm now;
    uint64_t rng;
    json_t *prompt;
    json_t *pnginfo;
    struct sim_op_env env;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    char err[256];
    struct sim_nodes_config cfg = {NULL, NULL};
    if (sim_nodes_create(&cfg, &f->nodes, err, sizeof(err)) != 0)
        return -1;
    simt_fs_init(&f->fs);
    f->rng = 5;
    f->prompt = json_pack("{s:{s:s}}", "1", "class_type", "EmptyImage");
    f->pnginfo = json_pack("{s:{s:[]}}", "workflow", "nodes");
    f->env = (struct sim_op_env){&f->fs.fs, 1u << 22, 1u << 20, f->prompt, NULL,
                                 "9",       &f->now,  &f->rng,  0};
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    sim_nodes_destroy(f->nodes);
    simt_fs_free(&f->fs);
    json_decref(f->prompt);
    json_decref(f->pnginfo);
    free(f);
    return 0;
}

static int run(struct fixture *f, const char *cls, const struct sim_op_input *in, size_t nin,
               struct sim_op_out *out, struct sim_op_error *err)
{
    return sim_ops_run(sim_nodes_find(f->nodes, cls), &f->env, in, nin, out, err);
}

static struct sim_node_result *empty_image(struct fixture *f, int w, int h, int n)
{
    json_t *args = json_pack("[iiii]", w, h, n, 0x102030);
    struct sim_op_input in[4] = {{"width", json_array_get(args, 0), NULL},
                                 {"height", json_array_get(args, 1), NULL},
                                 {"batch_size", json_array_get(args, 2), NULL},
                                 {"color", json_array_get(args, 3), NULL}};
    struct sim_op_out out;
    struct sim_op_error err;
    assert_int_equal(run(f, "EmptyImage", in, 4, &out, &err), SIM_OPS_OK);
    json_decref(args);
    return out.result;
}

static void test_save_image(void **state)
{
    struct fixture *f = *state;
    struct sim_node_result *img = empty_image(f, 4, 2, 2);
    simt_fs_put(&f->fs, SIM_DIR_OUTPUT, "shots/cat_00004_.png", "x", 1);
    json_t *prefix = json_string("shots/cat");
    struct sim_op_input in[2] = {{"images", NULL, &img->v[0]}, {"filename_prefix", prefix, NULL}};
    struct sim_op_out out;
    struct sim_op_error err;
    f->env.extra_pnginfo = f->pnginfo;
    assert_int_equal(run(f, "SaveImage", in, 2, &out, &err), SIM_OPS_OK);
    json_t *want = json_pack("{s:[{s:s, s:s, s:s}, {s:s, s:s, s:s}]}", "images", "filename",
                             "cat_00005_.png", "subfolder", "shots", "type", "output", "filename",
                             "cat_00006_.png", "subfolder", "shots", "type", "output");
    assert_true(simt_same_json(out.result->ui, want));
    const struct simt_file *file = simt_fs_get(&f->fs, SIM_DIR_OUTPUT, "shots/cat_00006_.png");
    assert_non_null(file);
    char *text = NULL;
    assert_int_equal(sim_png_text_get(file->data, file->len, "prompt", &text, 1024), 0);
    assert_string_equal(text, "{\"1\": {\"class_type\": \"EmptyImage\"}}");
    free(text);
    assert_int_equal(sim_png_text_get(file->data, file->len, "workflow", &text, 1024), 0);
    assert_string_equal(text, "{\"nodes\": []}");
    free(text);
    sim_node_result_unref(out.result);
    json_decref(want);
    /* escaping the output folder */
    json_decref(prefix);
    prefix = json_string("../escape");
    in[1].constant = prefix;
    assert_int_equal(run(f, "SaveImage", in, 2, &out, &err), SIM_OPS_RAISED);
    assert_string_equal(err.type, "Exception");
    assert_non_null(strstr(err.message, "Saving image outside the output folder"));
    assert_non_null(err.frames);
    /* a failing disk */
    json_decref(prefix);
    prefix = json_string("ok");
    in[1].constant = prefix;
    f->fs.fail_writes = ENOSPC;
    assert_int_equal(run(f, "SaveImage", in, 2, &out, &err), SIM_OPS_RAISED);
    assert_string_equal(err.type, "OSError");
    assert_string_equal(err.message, "[Errno 28] No space left on device");
    f->fs.fail_writes = 0;
    json_decref(prefix);
    sim_node_result_unref(img);
}

static void test_preview_image(void **state)
{
    struct fixture *f = *state;
    struct sim_node_result *img = empty_image(f, 3, 3, 1);
    struct sim_op_input in[1] = {{"images", NULL, &img->v[0]}};
    struct sim_op_out out;
    struct sim_op_error err;
    assert_int_equal(run(f, "PreviewImage", in, 1, &out, &err), SIM_OPS_OK);
    json_t *entry = json_array_get(json_object_get(out.result->ui, "images"), 0);
    const char *name = json_string_value(json_object_get(entry, "filename"));
    assert_int_equal(strncmp(name, "ComfyUI_temp_", 13), 0);
    for (int i = 13; i < 18; i++)
        assert_non_null(strchr("abcdefghijklmnopqrstupvxyz", name[i]));
    assert_string_equal(name + 18, "_00001_.png");
    assert_string_equal(json_string_value(json_object_get(entry, "type")), "temp");
    assert_non_null(simt_fs_get(&f->fs, SIM_DIR_TEMP, name));
    sim_node_result_unref(out.result);
    sim_node_result_unref(img);
}

static void put_png(struct fixture *f, const char *name, const uint8_t *px, uint32_t w, uint32_t h,
                    int ch)
{
    struct sim_buf b;
    sim_buf_init(&b, 1u << 20);
    assert_int_equal(sim_png_encode(px, w, h, ch, 4, NULL, 0, &b), 0);
    simt_fs_put(&f->fs, SIM_DIR_INPUT, name, b.data, b.len);
    sim_buf_free(&b);
}

static void test_load_image(void **state)
{
    struct fixture *f = *state;
    uint8_t rgba[8] = {255, 0, 0, 0, 0, 255, 0, 255};
    put_png(f, "a.png", rgba, 2, 1, 4);
    uint8_t rgb[6] = {1, 2, 3, 4, 5, 6};
    put_png(f, "b.png", rgb, 2, 1, 3);
    simt_fs_put(&f->fs, SIM_DIR_INPUT, "bad.png", "nope", 4);
    json_t *names = json_pack("[ssss]", "a.png", "b.png", "bad.png", "gone.png");
    struct sim_op_input in[2] = {{"image", json_array_get(names, 0), NULL}};
    struct sim_op_out out;
    struct sim_op_error err;
    assert_int_equal(run(f, "LoadImage", in, 1, &out, &err), SIM_OPS_OK);
    assert_int_equal(out.result->v[0].t->shape[2], 2);
    assert_true(out.result->v[1].t->data[0] == 1.0f && out.result->v[1].t->data[1] == 0.0f);
    sim_node_result_unref(out.result);
    in[0].constant = json_array_get(names, 1);
    assert_int_equal(run(f, "LoadImage", in, 1, &out, &err), SIM_OPS_OK);
    assert_int_equal(out.result->v[1].t->shape[1], 64); /* no alpha: a 64x64 zero mask */
    sim_node_result_unref(out.result);
    in[0].constant = json_array_get(names, 2);
    assert_int_equal(run(f, "LoadImage", in, 1, &out, &err), SIM_OPS_RAISED);
    assert_string_equal(err.type, "PIL.UnidentifiedImageError");
    in[0].constant = json_array_get(names, 3);
    assert_int_equal(run(f, "LoadImage", in, 1, &out, &err), SIM_OPS_RAISED);
    assert_string_equal(err.type, "FileNotFoundError");
    /* LoadImageMask: red channel as is, alpha inverted */
    json_t *ch = json_pack("[ss]", "red", "alpha");
    in[0].constant = json_array_get(names, 0);
    in[1] = (struct sim_op_input){"channel", json_array_get(ch, 0), NULL};
    assert_int_equal(run(f, "LoadImageMask", in, 2, &out, &err), SIM_OPS_OK);
    assert_true(out.result->v[0].t->data[0] == 1.0f && out.result->v[0].t->data[1] == 0.0f);
    sim_node_result_unref(out.result);
    in[1].constant = json_array_get(ch, 1);
    assert_int_equal(run(f, "LoadImageMask", in, 2, &out, &err), SIM_OPS_OK);
    assert_true(out.result->v[0].t->data[0] == 1.0f && out.result->v[0].t->data[1] == 0.0f);
    sim_node_result_unref(out.result);
    /* a picture larger than the tensor limit */
    f->env.max_numel = 4;
    in[0].constant = json_array_get(names, 1);
    assert_int_equal(run(f, "LoadImage", in, 1, &out, &err), SIM_OPS_RAISED);
    assert_string_equal(err.type, "PIL.Image.DecompressionBombError");
    f->env.max_numel = 1u << 22;
    json_decref(ch);
    json_decref(names);
}

static void test_size_preview_any_and_values(void **state)
{
    struct fixture *f = *state;
    struct sim_node_result *img = empty_image(f, 48, 32, 3);
    struct sim_op_input in[1] = {{"image", NULL, &img->v[0]}};
    struct sim_op_out out;
    struct sim_op_error err;
    assert_int_equal(run(f, "GetImageSize", in, 1, &out, &err), SIM_OPS_OK);
    assert_string_equal(out.text, "width: 48, height: 32\n batch size: 3");
    assert_int_equal(out.result->v[0].i, 48);
    struct sim_op_input src = {"source", NULL, &out.result->v[0]};
    struct sim_op_out any;
    assert_int_equal(run(f, "PreviewAny", &src, 1, &any, &err), SIM_OPS_OK);
    json_t *want = json_pack("{s:[s]}", "text", "48");
    assert_true(simt_same_json(any.result->ui, want));
    json_decref(want);
    sim_node_result_unref(any.result);
    src.value = &img->v[0];
    assert_int_equal(run(f, "PreviewAny", &src, 1, &any, &err), SIM_OPS_OK);
    assert_int_equal(
        strncmp(json_string_value(json_array_get(json_object_get(any.result->ui, "text"), 0)),
                "tensor([[[[", 11),
        0);
    sim_node_result_unref(any.result);
    free(out.text);
    sim_node_result_unref(out.result);
    /* format_value: scalars stay JSON scalars, objects become their str() */
    struct sim_value v = {.type = SIM_V_MODEL, .id = 0x1234};
    json_t *fv = sim_ops_format_value(&v);
    assert_string_equal(json_string_value(fv),
                        "<comfy.model_patcher.ModelPatcher object at 0x7f0000012340>");
    json_decref(fv);
    struct sim_value lat = {.type = SIM_V_LATENT, .n = 1, .lw = 2, .lh = 1};
    fv = sim_ops_format_value(&lat);
    assert_string_equal(json_string_value(fv), "{'samples': tensor([[[[0., 0.]],\n\n"
                                               "         [[0., 0.]],\n\n"
                                               "         [[0., 0.]],\n\n"
                                               "         [[0., 0.]]]])}");
    json_decref(fv);
    struct sim_value fl = {.type = SIM_V_FLOAT, .f = 0.5};
    fv = sim_ops_format_value(&fl);
    assert_true(json_is_real(fv));
    json_decref(fv);
    sim_node_result_unref(img);
}

static void test_model_stand_ins(void **state)
{
    struct fixture *f = *state;
    json_t *c = json_pack("[ss]", "RealESRGAN_x2plus.pth", "4x-UltraSharp.pth");
    struct sim_op_input in[2] = {{"model_name", json_array_get(c, 0), NULL}};
    struct sim_op_out m2, m4, up;
    struct sim_op_error err;
    assert_int_equal(run(f, "UpscaleModelLoader", in, 1, &m2, &err), SIM_OPS_OK);
    in[0].constant = json_array_get(c, 1);
    assert_int_equal(run(f, "UpscaleModelLoader", in, 1, &m4, &err), SIM_OPS_OK);
    assert_true(m2.result->v[0].f == 2 && m4.result->v[0].f == 4);
    struct sim_node_result *img = empty_image(f, 600, 500, 1);
    in[0] = (struct sim_op_input){"upscale_model", NULL, &m2.result->v[0]};
    in[1] = (struct sim_op_input){"image", NULL, &img->v[0]};
    assert_int_equal(run(f, "ImageUpscaleWithModel", in, 2, &up, &err), SIM_OPS_OK);
    assert_int_equal(up.result->v[0].t->shape[2], 1200);
    assert_int_equal(up.ticks, 4); /* ceil(500/480) * ceil(600/480) tiles */
    sim_node_result_unref(up.result);
    /* beyond the tensor limit the node fails like a CUDA OOM */
    in[0].value = &m4.result->v[0];
    assert_int_equal(run(f, "ImageUpscaleWithModel", in, 2, &up, &err), SIM_OPS_RAISED);
    assert_string_equal(err.type, "torch.OutOfMemoryError");
    assert_true(err.oom);
    assert_int_equal(
        strncmp(err.message, "Allocation on device 0 would exceed allowed memory.", 51), 0);
    sim_node_result_unref(img);
    sim_node_result_unref(m2.result);
    sim_node_result_unref(m4.result);
    json_decref(c);
}

/* ImageToMask -> InvertMask -> JoinImageWithAlpha -> SaveImage: the sprite chain. */
static void test_mask_nodes_and_rgba(void **state)
{
    struct fixture *f = *state;
    struct sim_node_result *img = empty_image(f, 2, 2, 1); /* 0x102030 */
    img->v[0].t->data[0] = 1.0f;                           /* pixel 0 red = 1 */
    json_t *ch = json_pack("[ss]", "red", "alpha");
    struct sim_op_input in[2] = {{"image", NULL, &img->v[0]},
                                 {"channel", json_array_get(ch, 0), NULL}};
    struct sim_op_out m, inv, rgba, saved;
    struct sim_op_error err;
    assert_int_equal(run(f, "ImageToMask", in, 2, &m, &err), SIM_OPS_OK);
    const struct sim_tensor *mt = m.result->v[0].t;
    assert_int_equal(m.result->v[0].type, SIM_V_MASK);
    assert_int_equal(mt->ndim, 3);
    assert_true(mt->data[0] == 1.0f && mt->data[1] == (float)(0x10 / 255.0));
    /* an RGB image has no alpha: torch's IndexError */
    in[1].constant = json_array_get(ch, 1);
    assert_int_equal(run(f, "ImageToMask", in, 2, &rgba, &err), SIM_OPS_RAISED);
    assert_string_equal(err.type, "IndexError");
    assert_string_equal(err.message, "index 3 is out of bounds for dimension 3 with size 3");
    struct sim_op_input mi = {"mask", NULL, &m.result->v[0]};
    assert_int_equal(run(f, "InvertMask", &mi, 1, &inv, &err), SIM_OPS_OK);
    assert_true(inv.result->v[0].t->data[0] == 0.0f);
    assert_true(inv.result->v[0].t->data[1] == 1.0f - (float)(0x10 / 255.0));
    /* alpha = 1 - mask: the inverted red channel comes back as alpha = red */
    in[1] = (struct sim_op_input){"alpha", NULL, &inv.result->v[0]};
    assert_int_equal(run(f, "JoinImageWithAlpha", in, 2, &rgba, &err), SIM_OPS_OK);
    const struct sim_tensor *t = rgba.result->v[0].t;
    assert_int_equal(t->shape[3], 4);
    assert_true(t->data[0] == 1.0f && t->data[3] == 1.0f);
    assert_true(t->data[4] == (float)(0x10 / 255.0) && t->data[5] == (float)(0x20 / 255.0));
    assert_true(t->data[7] == 1.0f - (1.0f - (float)(0x10 / 255.0)));
    /* a smaller mask is resized bilinearly first: a 1x1 mask of 0.25 gives alpha 0.75 */
    struct sim_tensor *small;
    assert_int_equal(sim_tensor_new(3, (int64_t[3]){1, 1, 1}, 16, &small), SIM_IMAGE_OK);
    small->data[0] = 0.25f;
    struct sim_value sv = {.type = SIM_V_MASK, .t = small};
    in[1].value = &sv;
    struct sim_op_out r2;
    assert_int_equal(run(f, "JoinImageWithAlpha", in, 2, &r2, &err), SIM_OPS_OK);
    for (int i = 0; i < 4; i++)
        assert_true(r2.result->v[0].t->data[4 * i + 3] == 0.75f);
    sim_node_result_unref(r2.result);
    sim_value_clear(&sv);
    /* SaveImage writes an RGBA PNG (colour type 6) with the alpha bytes */
    json_t *prefix = json_string("sprite");
    struct sim_op_input si[2] = {{"images", NULL, &rgba.result->v[0]},
                                 {"filename_prefix", prefix, NULL}};
    assert_int_equal(run(f, "SaveImage", si, 2, &saved, &err), SIM_OPS_OK);
    const struct simt_file *file = simt_fs_get(&f->fs, SIM_DIR_OUTPUT, "sprite_00001_.png");
    assert_non_null(file);
    assert_int_equal(file->data[25], 6);
    struct sim_png_image png;
    assert_int_equal(sim_png_decode(file->data, file->len, 64, &png), SIM_PNG_OK);
    assert_int_equal(png.channels, 4);
    /* alpha 1 - (1 - r) loses a float32 ulp, so 255 * it truncates to 15, not 16 */
    uint8_t want[8] = {255, 0x20, 0x30, 255, 0x10, 0x20, 0x30, 0x0f};
    assert_memory_equal(png.pixels, want, 8);
    sim_png_image_free(&png);
    json_decref(prefix);
    sim_node_result_unref(saved.result);
    sim_node_result_unref(rgba.result);
    sim_node_result_unref(inv.result);
    sim_node_result_unref(m.result);
    sim_node_result_unref(img);
    json_decref(ch);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_save_image),      cmocka_unit_test(test_preview_image),
        cmocka_unit_test(test_load_image),      cmocka_unit_test(test_size_preview_any_and_values),
        cmocka_unit_test(test_model_stand_ins), cmocka_unit_test(test_mask_nodes_and_rgba),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
