/* test_comfy_caps — backend capabilities from /object_info: node classes present or absent,
 * model files present or absent in combo lists of both forms. Uses the real EmptyImage,
 * SaveImage, LoadImage and (empty) CheckpointLoaderSimple definitions recorded in transcript 11
 * (argv[1]) plus hand-written loaders shaped like the real ones, with files. Without the
 * transcripts the hand-written cases still run and the program exits 77 (skipped). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "comfy/comfy_caps.c"

static const char *transcripts; /* argv[1] */

static json_t *J(const char *text)
{
    json_error_t err;
    json_t *j = json_loads(text, JSON_DECODE_ANY, &err);
    if (!j)
        fail_msg("bad test JSON (%s): %s", err.text, text);
    return j;
}

/* CheckpointLoaderSimple as /object_info shows it (transcript 11), but with two files. */
#define CKPT_LOADER                                                                                \
    "{\"input\": {\"required\": {\"ckpt_name\": [[\"sd_xl_base_1.0.safetensors\", "                \
    "\"SD1.5/v1-5-pruned-emaonly.safetensors\"], {\"tooltip\": \"The name of the checkpoint "      \
    "(model) to load.\"}]}}, \"input_order\": {\"required\": [\"ckpt_name\"]}, \"output\": "       \
    "[\"MODEL\", \"CLIP\", \"VAE\"], \"output_is_list\": [false, false, false], "                  \
    "\"output_name\": [\"MODEL\", \"CLIP\", \"VAE\"], \"name\": \"CheckpointLoaderSimple\", "      \
    "\"display_name\": \"Load Checkpoint\", \"python_module\": \"nodes\", \"category\": "          \
    "\"loaders\", \"output_node\": false}"

/* A loader on the v3 schema: ["COMBO", {"options": [...]}]. */
#define UNET_LOADER                                                                                \
    "{\"input\": {\"required\": {\"unet_name\": [\"COMBO\", {\"options\": "                        \
    "[\"flux1-dev.safetensors\", \"wan2.1_t2v_1.3B_fp16.safetensors\"]}], \"weight_dtype\": "      \
    "[\"COMBO\", {\"options\": [\"default\", \"fp8_e4m3fn\"]}]}}, \"output\": [\"MODEL\"], "       \
    "\"name\": \"UNETLoader\", \"output_node\": false}"

/* An optional model input, old form. */
#define LORA_LOADER                                                                                \
    "{\"input\": {\"required\": {\"model\": [\"MODEL\"]}, \"optional\": {\"lora_name\": "          \
    "[[\"detail.safetensors\"]], \"strength_model\": [\"FLOAT\", {\"default\": 1.0}]}}, "          \
    "\"name\": \"LoraLoaderModelOnly\"}"

/* Hand-written stand-ins for the recorded nodes, used when the transcripts are absent. */
#define EMPTY_IMAGE_DEF                                                                            \
    "{\"input\": {\"required\": {\"width\": [\"INT\", {\"default\": 512, \"min\": 1}], "           \
    "\"height\": [\"INT\", {}], \"batch_size\": [\"INT\", {}], \"color\": [\"INT\", {}]}}}"
#define SAVE_IMAGE_DEF                                                                             \
    "{\"input\": {\"required\": {\"images\": [\"IMAGE\"], \"filename_prefix\": [\"STRING\", "      \
    "{\"default\": \"ComfyUI\"}]}}, \"output_node\": true}"
#define LOAD_IMAGE_DEF                                                                             \
    "{\"input\": {\"required\": {\"image\": [[\"example.png\", \"golden_top.png\"], "              \
    "{\"image_upload\": true}]}}}"

static json_t *transcript_step_body(json_t *t, size_t step, const char *key)
{
    json_t *s = json_array_get(json_object_get(t, "steps"), step);
    return json_object_get(json_object_get(json_object_get(s, "response"), "body"), key);
}

/* The object_info under test: recorded definitions when `recorded`, plus the hand-written
 * loaders. Also returns the real (file-less) CheckpointLoaderSimple when recorded. */
static json_t *make_object_info(bool recorded, json_t **real_ckpt)
{
    json_t *oi = json_object();
    *real_ckpt = NULL;
    if (recorded) {
        char path[4096];
        snprintf(path, sizeof path, "%s/11_object_info.json", transcripts);
        json_error_t err;
        /* KSampler's seed max (2^64-1) is past json_int_t: see comfy_caps_load */
        json_t *t = json_load_file(path, JSON_DECODE_INT_AS_REAL, &err);
        assert_non_null(t);
        json_t *one = transcript_step_body(t, 0, "json");           /* /object_info/EmptyImage */
        json_t *all = transcript_step_body(t, 2, "json_truncated"); /* /object_info, cut */
        assert_non_null(json_object_get(one, "EmptyImage"));
        json_object_set(oi, "EmptyImage", json_object_get(one, "EmptyImage"));
        json_object_set(oi, "SaveImage", json_object_get(all, "SaveImage"));
        json_object_set(oi, "LoadImage", json_object_get(all, "LoadImage"));
        json_object_set(oi, "KSampler", json_object_get(all, "KSampler"));
        assert_non_null(json_object_get(oi, "KSampler"));
        *real_ckpt = json_incref(json_object_get(all, "CheckpointLoaderSimple"));
        assert_non_null(*real_ckpt);
        json_decref(t);
    } else {
        json_object_set_new(oi, "EmptyImage", J(EMPTY_IMAGE_DEF));
        json_object_set_new(oi, "SaveImage", J(SAVE_IMAGE_DEF));
        json_object_set_new(oi, "LoadImage", J(LOAD_IMAGE_DEF));
        json_object_set_new(oi, "KSampler", J("{\"input\": {\"required\": {}}}"));
    }
    json_object_set_new(oi, "CheckpointLoaderSimple", J(CKPT_LOADER));
    json_object_set_new(oi, "UNETLoader", J(UNET_LOADER));
    json_object_set_new(oi, "LoraLoaderModelOnly", J(LORA_LOADER));
    return oi;
}

struct fixture {
    struct comfy_caps caps;
    json_t *real_ckpt; /* NULL without transcripts */
};

static int setup_recorded(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    json_t *oi = make_object_info(true, &f->real_ckpt);
    assert_int_equal(comfy_caps_set(&f->caps, oi), 0);
    json_decref(oi); /* caps keeps its own reference */
    *state = f;
    return 0;
}

static int setup_own(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    json_t *oi = make_object_info(false, &f->real_ckpt);
    assert_int_equal(comfy_caps_set(&f->caps, oi), 0);
    json_decref(oi);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    comfy_caps_clear(&f->caps);
    json_decref(f->real_ckpt);
    free(f);
    return 0;
}

/* Runs supports on graph text; checks the verdict and, when refused, the reason. */
static void expect_supports(const struct comfy_caps *c, const char *graph_text, bool want,
                            const char *want_why)
{
    json_t *g = J(graph_text);
    char why[256] = "";
    bool got = comfy_caps_supports(c, g, why, sizeof why);
    if (got != want)
        fail_msg("supports gave %d (%s) for %s", got, why, graph_text);
    if (want_why && strcmp(why, want_why) != 0)
        fail_msg("why \"%s\", want \"%s\"", why, want_why);
    json_decref(g);
}

/* Transcript 01's graph. */
static const char *const graph01 =
    "{\"1\": {\"class_type\": \"EmptyImage\", \"inputs\": {\"width\": 64, \"height\": 64, "
    "\"batch_size\": 2, \"color\": 16744448}}, \"2\": {\"class_type\": \"SaveImage\", "
    "\"inputs\": {\"images\": [\"1\", 0], \"filename_prefix\": \"golden_success\"}}}";

static void classes_present_and_absent(void **state)
{
    struct fixture *f = *state;
    const struct comfy_caps *c = &f->caps;
    assert_int_equal(c->node_count, 7);
    assert_true(comfy_caps_has_class(c, "EmptyImage"));
    assert_true(comfy_caps_has_class(c, "SaveImage"));
    assert_true(comfy_caps_has_class(c, "LoadImage"));
    assert_false(comfy_caps_has_class(c, "NoSuchNode")); /* transcript 03a's class */
    assert_false(comfy_caps_has_class(c, "emptyimage"));
    assert_false(comfy_caps_has_class(c, ""));
    assert_false(comfy_caps_has_class(c, NULL));

    expect_supports(c, graph01, true, NULL);
    expect_supports(c,
                    "{\"1\": {\"class_type\": \"NoSuchNode\", \"inputs\": {}}, \"2\": "
                    "{\"class_type\": \"SaveImage\", \"inputs\": {\"images\": [\"1\", 0], "
                    "\"filename_prefix\": \"x\"}}}",
                    false, "node class NoSuchNode is not installed");
}

static void model_lists_both_forms(void **state)
{
    struct fixture *f = *state;
    const struct comfy_caps *c = &f->caps;
    const json_t *ckpts = comfy_caps_models(c, "CheckpointLoaderSimple", "ckpt_name");
    assert_int_equal(json_array_size(ckpts), 2);
    assert_string_equal(json_string_value(json_array_get(ckpts, 0)), "sd_xl_base_1.0.safetensors");
    const json_t *unets = comfy_caps_models(c, "UNETLoader", "unet_name"); /* COMBO form */
    assert_int_equal(json_array_size(unets), 2);
    assert_string_equal(json_string_value(json_array_get(unets, 0)), "flux1-dev.safetensors");
    const json_t *loras = comfy_caps_models(c, "LoraLoaderModelOnly", "lora_name"); /* optional */
    assert_int_equal(json_array_size(loras), 1);
    const json_t *images = comfy_caps_models(c, "LoadImage", "image"); /* recorded combo */
    assert_int_equal(json_array_size(images), 2);
    assert_string_equal(json_string_value(json_array_get(images, 1)), "golden_top.png");

    assert_null(comfy_caps_models(c, "EmptyImage", "width")); /* ["INT", {...}] */
    assert_null(comfy_caps_models(c, "SaveImage", "filename_prefix"));
    assert_null(comfy_caps_models(c, "SaveImage", "images")); /* ["IMAGE"] */
    assert_null(comfy_caps_models(c, "CheckpointLoaderSimple", "vae_name"));
    assert_null(comfy_caps_models(c, "NoSuchNode", "ckpt_name"));
    assert_null(comfy_caps_models(c, NULL, "ckpt_name"));
    assert_null(comfy_caps_models(c, "UNETLoader", NULL));
}

#define CKPT_GRAPH(name)                                                                           \
    "{\"4\": {\"class_type\": \"CheckpointLoaderSimple\", \"inputs\": {\"ckpt_name\": \"" name     \
    "\"}}, \"9\": {\"class_type\": \"SaveImage\", \"inputs\": {\"images\": [\"4\", 0], "           \
    "\"filename_prefix\": \"x\"}}}"

static void model_files_present_and_absent(void **state)
{
    struct fixture *f = *state;
    const struct comfy_caps *c = &f->caps;
    expect_supports(c, CKPT_GRAPH("sd_xl_base_1.0.safetensors"), true, NULL);
    expect_supports(c,
                    "{\"3\": {\"class_type\": \"KSampler\", \"inputs\": {\"model\": [\"4\", 0], "
                    "\"seed\": 5}}, \"4\": {\"class_type\": \"CheckpointLoaderSimple\", "
                    "\"inputs\": {\"ckpt_name\": \"sd_xl_base_1.0.safetensors\"}}}",
                    true, NULL);
    expect_supports(c, CKPT_GRAPH("SD1.5/v1-5-pruned-emaonly.safetensors"), true, NULL);
    expect_supports(c, CKPT_GRAPH("sdxl.safetensors"), false,
                    "model sdxl.safetensors (ckpt_name of node 4) is not installed");
    /* exact match, as ComfyUI's own validation does */
    expect_supports(c, CKPT_GRAPH("SD1.5\\\\v1-5-pruned-emaonly.safetensors"), false, NULL);
    expect_supports(c, CKPT_GRAPH("sd_xl_base_1.0"), false, NULL);

    /* new COMBO form */
    expect_supports(c,
                    "{\"1\": {\"class_type\": \"UNETLoader\", \"inputs\": {\"unet_name\": "
                    "\"flux1-dev.safetensors\", \"weight_dtype\": \"default\"}}}",
                    true, NULL);
    expect_supports(c,
                    "{\"1\": {\"class_type\": \"UNETLoader\", \"inputs\": {\"unet_name\": "
                    "\"flux1-schnell.safetensors\", \"weight_dtype\": \"default\"}}}",
                    false,
                    "model flux1-schnell.safetensors (unet_name of node 1) is not installed");
    /* a combo that is not a model input is ComfyUI's to validate, not ours */
    expect_supports(c,
                    "{\"1\": {\"class_type\": \"UNETLoader\", \"inputs\": {\"unet_name\": "
                    "\"flux1-dev.safetensors\", \"weight_dtype\": \"fp64\"}}}",
                    true, NULL);
    /* optional model input */
    expect_supports(c,
                    "{\"1\": {\"class_type\": \"LoraLoaderModelOnly\", \"inputs\": {\"model\": "
                    "[\"2\", 0], \"lora_name\": \"nsfw.safetensors\"}}, \"2\": {\"class_type\": "
                    "\"UNETLoader\", \"inputs\": {\"unet_name\": \"flux1-dev.safetensors\"}}}",
                    false, "model nsfw.safetensors (lora_name of node 1) is not installed");
    /* a linked model input cannot be judged here */
    expect_supports(c,
                    "{\"4\": {\"class_type\": \"CheckpointLoaderSimple\", \"inputs\": "
                    "{\"ckpt_name\": [\"5\", 0]}}, \"5\": {\"class_type\": \"EmptyImage\"}}",
                    true, NULL);
    /* LoadImage's image is not a model input: uploads in subfolders are valid (transcript 07) */
    expect_supports(c,
                    "{\"1\": {\"class_type\": \"LoadImage\", \"inputs\": {\"image\": "
                    "\"golden/golden_upload.png\"}}}",
                    true, NULL);
    /* a model input name on a node whose definition does not list it */
    expect_supports(c,
                    "{\"1\": {\"class_type\": \"EmptyImage\", \"inputs\": {\"ckpt_name\": \"x\"}}}",
                    true, NULL);
}

/* The real CheckpointLoaderSimple of the recorded backend lists no checkpoint at all. */
static void recorded_backend_has_no_checkpoints(void **state)
{
    struct fixture *f = *state;
    assert_non_null(f->real_ckpt);
    json_t *oi = json_deep_copy(f->caps.object_info);
    json_object_set(oi, "CheckpointLoaderSimple", f->real_ckpt);
    struct comfy_caps real = {0};
    assert_int_equal(comfy_caps_set(&real, oi), 0);
    json_decref(oi);
    const json_t *ckpts = comfy_caps_models(&real, "CheckpointLoaderSimple", "ckpt_name");
    assert_non_null(ckpts);
    assert_int_equal(json_array_size(ckpts), 0);
    expect_supports(&real, CKPT_GRAPH("sd_xl_base_1.0.safetensors"), false,
                    "model sd_xl_base_1.0.safetensors (ckpt_name of node 4) is not installed");
    expect_supports(&real, graph01, true, NULL);
    comfy_caps_clear(&real);
}

static void set_and_clear(void **state)
{
    struct comfy_caps c = {0};
    json_t *arr = J("[]");
    assert_int_equal(comfy_caps_set(&c, arr), -EINVAL);
    assert_int_equal(comfy_caps_set(&c, NULL), -EINVAL);
    assert_null(c.object_info);
    json_decref(arr);

    json_t *oi = J("{\"A\": {}, \"B\": {}}");
    assert_int_equal(comfy_caps_set(&c, oi), 0);
    assert_int_equal(oi->refcount, 2);
    assert_int_equal(c.node_count, 2);
    assert_int_equal(comfy_caps_set(&c, oi), 0); /* the same tree again */
    assert_int_equal(oi->refcount, 2);
    json_t *other = J("{\"C\": {}}");
    assert_int_equal(comfy_caps_set(&c, other), 0); /* replacing drops the old reference */
    assert_int_equal(oi->refcount, 1);
    assert_int_equal(c.node_count, 1);
    assert_false(comfy_caps_has_class(&c, "A"));
    /* a failed set keeps what was there */
    assert_int_equal(comfy_caps_set(&c, json_null()), -EINVAL);
    assert_true(comfy_caps_has_class(&c, "C"));
    comfy_caps_clear(&c);
    assert_null(c.object_info);
    assert_int_equal(c.node_count, 0);
    assert_int_equal(other->refcount, 1);
    comfy_caps_clear(&c); /* twice is harmless */
    json_decref(oi);
    json_decref(other);

    /* no capabilities known: nothing is supported, nothing is present */
    assert_false(comfy_caps_has_class(&c, "A"));
    assert_null(comfy_caps_models(&c, "A", "ckpt_name"));
    char why[64];
    json_t *g = J(graph01);
    assert_false(comfy_caps_supports(&c, g, why, sizeof why));
    assert_string_equal(why, "backend capabilities are not known yet");
    json_decref(g);
}

/* Real /object_info bodies carry KSampler's seed max, 2^64-1 (transcript 11): a plain jansson
 * parse fails on it, comfy_caps_load does not. */
static void load_body_with_huge_integers(void **state)
{
    static const char body[] =
        "{\"KSampler\": {\"input\": {\"required\": {\"seed\": [\"INT\", {\"default\": 0, "
        "\"min\": 0, \"max\": 18446744073709551615, \"control_after_generate\": true}]}}}, "
        "\"CheckpointLoaderSimple\": " CKPT_LOADER "}";
    json_error_t err;
    assert_null(json_loadb(body, sizeof body - 1, 0, &err));

    struct comfy_caps c = {0};
    assert_int_equal(comfy_caps_load(&c, body, sizeof body - 1), 0);
    assert_int_equal(c.node_count, 2);
    assert_true(comfy_caps_has_class(&c, "KSampler"));
    assert_int_equal(json_array_size(comfy_caps_models(&c, "CheckpointLoaderSimple", "ckpt_name")),
                     2);
    /* a bad body leaves what was loaded */
    assert_int_equal(comfy_caps_load(&c, "[1]", 3), -EINVAL);
    assert_int_equal(comfy_caps_load(&c, "{\"a\":", 5), -EINVAL);
    assert_int_equal(comfy_caps_load(&c, "", 0), -EINVAL);
    assert_int_equal(comfy_caps_load(&c, "{\"x\": 1e999999}", 15), -EINVAL);
    assert_true(comfy_caps_has_class(&c, "KSampler"));
    comfy_caps_clear(&c);
}

/* A backend's /object_info (custom nodes included) is not trusted either. */
static void odd_object_info_shapes(void **state)
{
    struct comfy_caps c = {0};
    json_t *oi = J("{"
                   "\"Num\": 5,"
                   "\"NoInput\": {},"
                   "\"InputArr\": {\"input\": [1]},"
                   "\"ReqArr\": {\"input\": {\"required\": [\"ckpt_name\"]}},"
                   "\"SpecStr\": {\"input\": {\"required\": {\"ckpt_name\": \"a.ckpt\"}}},"
                   "\"SpecEmpty\": {\"input\": {\"required\": {\"ckpt_name\": []}}},"
                   "\"ComboBare\": {\"input\": {\"required\": {\"ckpt_name\": [\"COMBO\"]}}},"
                   "\"ComboOptStr\": {\"input\": {\"required\": {\"ckpt_name\": [\"COMBO\", "
                   "    {\"options\": \"a.ckpt\"}]}}},"
                   "\"ComboMixed\": {\"input\": {\"required\": {\"ckpt_name\": [\"COMBO\", "
                   "    {\"options\": [1, null, \"a.ckpt\", [\"b.ckpt\"]]}]}}}"
                   "}");
    assert_int_equal(comfy_caps_set(&c, oi), 0);
    json_decref(oi);
    assert_false(comfy_caps_has_class(&c, "Num"));
    assert_true(comfy_caps_has_class(&c, "NoInput"));
    static const char *const no_list[] = {"NoInput",   "InputArr",  "ReqArr",     "SpecStr",
                                          "SpecEmpty", "ComboBare", "ComboOptStr"};
    for (size_t i = 0; i < sizeof no_list / sizeof no_list[0]; i++) {
        char g[200];
        assert_null(comfy_caps_models(&c, no_list[i], "ckpt_name"));
        snprintf(g, sizeof g,
                 "{\"1\": {\"class_type\": \"%s\", \"inputs\": {\"ckpt_name\": "
                 "\"z.ckpt\"}}}",
                 no_list[i]);
        expect_supports(&c, g, true, NULL);
    }
    expect_supports(&c, "{\"1\": {\"class_type\": \"Num\"}}", false,
                    "node class Num is not installed");
    expect_supports(&c,
                    "{\"1\": {\"class_type\": \"ComboMixed\", \"inputs\": {\"ckpt_name\": "
                    "\"a.ckpt\"}}}",
                    true, NULL);
    expect_supports(&c,
                    "{\"1\": {\"class_type\": \"ComboMixed\", \"inputs\": {\"ckpt_name\": "
                    "\"b.ckpt\"}}}",
                    false, NULL);
    comfy_caps_clear(&c);
}

static void malformed_graphs_refused(void **state)
{
    struct fixture *f = *state;
    const struct comfy_caps *c = &f->caps;
    expect_supports(c, "[]", false, "graph is not an object");
    expect_supports(c, "{\"1\": 5}", false, "node 1 has no class_type");
    expect_supports(c, "{\"1\": {\"class_type\": [\"EmptyImage\"]}}", false,
                    "node 1 has no class_type");
    /* inputs of the wrong type: nothing to check in them, the class is present */
    expect_supports(c, "{\"1\": {\"class_type\": \"EmptyImage\", \"inputs\": [1]}}", true, NULL);
    assert_false(comfy_caps_supports(c, NULL, NULL, 0));

    /* the reason is cut to the buffer, and a long name is cut in it */
    char name[1000];
    memset(name, 'Q', sizeof name - 1);
    name[sizeof name - 1] = '\0';
    json_t *g = json_pack("{s:{s:s}}", "1", "class_type", name);
    char why[300];
    assert_false(comfy_caps_supports(c, g, why, sizeof why));
    assert_true(strlen(why) < 200);
    char tiny[10];
    assert_false(comfy_caps_supports(c, g, tiny, sizeof tiny));
    assert_string_equal(tiny, "node clas");
    json_decref(g);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest own[] = {
        cmocka_unit_test_setup_teardown(classes_present_and_absent, setup_own, teardown),
        cmocka_unit_test_setup_teardown(model_lists_both_forms, setup_own, teardown),
        cmocka_unit_test_setup_teardown(model_files_present_and_absent, setup_own, teardown),
        cmocka_unit_test_setup_teardown(malformed_graphs_refused, setup_own, teardown),
        cmocka_unit_test(set_and_clear),
        cmocka_unit_test(odd_object_info_shapes),
        cmocka_unit_test(load_body_with_huge_integers),
    };
    const struct CMUnitTest recorded[] = {
        cmocka_unit_test_setup_teardown(classes_present_and_absent, setup_recorded, teardown),
        cmocka_unit_test_setup_teardown(model_lists_both_forms, setup_recorded, teardown),
        cmocka_unit_test_setup_teardown(model_files_present_and_absent, setup_recorded, teardown),
        cmocka_unit_test_setup_teardown(recorded_backend_has_no_checkpoints, setup_recorded,
                                        teardown),
    };
    int failed = cmocka_run_group_tests_name("comfy_caps", own, NULL, NULL);
    struct stat st;
    transcripts = argc > 1 ? argv[1] : NULL;
    if (!transcripts || stat(transcripts, &st) != 0 || !S_ISDIR(st.st_mode)) {
        printf("# transcripts not found (%s): recorded cases skipped\n",
               transcripts ? transcripts : "no path given");
        return failed ? 1 : 77;
    }
    failed += cmocka_run_group_tests_name("comfy_caps_transcripts", recorded, NULL, NULL);
    return failed ? 1 : 0;
}
