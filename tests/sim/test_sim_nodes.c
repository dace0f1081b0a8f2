/*
 * test_sim_nodes — /object_info and /models data against transcripts 11 and 12, and the
 * registry's configuration (class subsets, model files per folder).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sim/sim_json.h"
#include "sim/sim_nodes.h"
#include "sim_test_util.h"

static struct sim_nodes *make(const char *classes, const char *models)
{
    struct sim_nodes *n;
    char err[256];
    struct sim_nodes_config cfg = {classes, models};
    assert_int_equal(sim_nodes_create(&cfg, &n, err, sizeof(err)), 0);
    return n;
}

/* The input folder of transcript 07/11: two top-level images, a subfolder, a text file. */
static void input_files(struct simt_fs *t)
{
    simt_fs_init(t);
    simt_fs_put(t, SIM_DIR_INPUT, "golden_top.png", "x", 1);
    simt_fs_put(t, SIM_DIR_INPUT, "example.png", "x", 1);
    simt_fs_put(t, SIM_DIR_INPUT, "golden/golden_upload.png", "x", 1);
    simt_fs_put(t, SIM_DIR_INPUT, "notes.txt", "x", 1);
}

static void test_object_info_one(void **state)
{
    (void)state;
    json_t *t = simt_load("11_object_info.json");
    struct sim_nodes *n = make(NULL, NULL);
    struct simt_fs fs;
    input_files(&fs);
    json_t *got = sim_nodes_object_info_one(n, "EmptyImage", &fs.fs);
    assert_true(simt_same_json(got, simt_response_json(simt_step(t, 0))));
    char *text = sim_json_dumps(got, 1u << 20);
    assert_int_equal(strlen(text), 625); /* the recorded Content-Length */
    free(text);
    json_decref(got);
    got = sim_nodes_object_info_one(n, "NoSuchNode", &fs.fs);
    assert_true(simt_same_json(got, simt_response_json(simt_step(t, 1))));
    json_decref(got);
    got = sim_nodes_object_info_one(n, "ImageInvert", &fs.fs);
    assert_true(simt_same_json(got, simt_response_json(simt_step(t, 3))));
    json_decref(got);
    simt_fs_free(&fs);
    sim_nodes_destroy(n);
    json_decref(t);
}

static void test_object_info_all_recorded_classes(void **state)
{
    (void)state;
    json_t *t = simt_load("11_object_info.json");
    json_t *rec = json_object_get(
        json_object_get(json_object_get(simt_step(t, 2), "response"), "body"), "json_truncated");
    struct sim_nodes *n = make(NULL, NULL);
    struct simt_fs fs;
    input_files(&fs);
    json_t *all = sim_nodes_object_info(n, &fs.fs);
    size_t checked = 0;
    const char *name;
    json_t *want;
    json_object_foreach(rec, name, want)
    {
        json_t *got = json_object_get(all, name);
        if (strcmp(name, "ImageBlur") == 0) {
            assert_null(got); /* not simulated */
            continue;
        }
        assert_non_null(got);
        assert_true(simt_same_json(got, want));
        checked++;
    }
    assert_int_equal(checked, 10);
    /* every offered class is a real ComfyUI class */
    json_t *names = json_object_get(json_object_get(simt_step(t, 2), "response"), "all_node_names");
    json_object_foreach(all, name, want)
    {
        bool known = false;
        for (size_t i = 0; i < json_array_size(names) && !known; i++)
            known = strcmp(json_string_value(json_array_get(names, i)), name) == 0;
        assert_true(known);
    }
    json_decref(all);
    simt_fs_free(&fs);
    sim_nodes_destroy(n);
    json_decref(t);
}

static void test_models(void **state)
{
    (void)state;
    json_t *t = simt_load("12_system_stats_models_free.json");
    struct sim_nodes *n = make(NULL, NULL);
    json_t *got = sim_nodes_model_folders(n);
    assert_true(simt_same_json(got, simt_response_json(simt_step(t, 1))));
    json_decref(got);
    got = sim_nodes_model_files(n, "checkpoints");
    assert_true(simt_same_json(got, simt_response_json(simt_step(t, 2))));
    json_decref(got);
    assert_null(sim_nodes_model_files(n, "nonexistent_folder")); /* 404 */
    sim_nodes_destroy(n);
    /* configured files: sorted, de-duplicated, and in the loader combos */
    n = make(NULL, "checkpoints=b.safetensors,a.safetensors,b.safetensors;"
                   "upscale_models=4x-UltraSharp.pth;loras=");
    got = sim_nodes_model_files(n, "checkpoints");
    json_t *want = json_pack("[ss]", "a.safetensors", "b.safetensors");
    assert_true(simt_same_json(got, want));
    json_t *info = sim_nodes_object_info_one(n, "CheckpointLoaderSimple", NULL);
    json_t *combo = json_array_get(
        json_object_get(
            json_object_get(
                json_object_get(json_object_get(info, "CheckpointLoaderSimple"), "input"),
                "required"),
            "ckpt_name"),
        0);
    assert_true(simt_same_json(combo, want));
    json_decref(info);
    info = sim_nodes_object_info_one(n, "UpscaleModelLoader", NULL);
    char *text = sim_json_dumps(info, 1u << 20);
    assert_non_null(strstr(text, "\"model_name\": [\"COMBO\", {\"multiselect\": false, "
                                 "\"options\": [\"4x-UltraSharp.pth\"]}]"));
    assert_true(sim_nodes_has_model(n, "upscale_models", "4x-UltraSharp.pth"));
    assert_false(sim_nodes_has_model(n, "loras", "x"));
    free(text);
    json_decref(info);
    json_decref(want);
    json_decref(got);
    sim_nodes_destroy(n);
    json_decref(t);
}

static void test_config(void **state)
{
    (void)state;
    struct sim_nodes *n = make("EmptyImage,SaveImage", NULL);
    assert_int_equal(sim_nodes_count(n), 2);
    assert_non_null(sim_nodes_find(n, "SaveImage"));
    assert_null(sim_nodes_find(n, "KSampler"));
    assert_true(sim_node_is_output(sim_nodes_find(n, "SaveImage")));
    assert_false(sim_node_is_output(sim_nodes_find(n, "EmptyImage")));
    sim_nodes_destroy(n);
    struct sim_nodes_config bad[] = {
        {"EmptyImage,Bogus", NULL}, {NULL, "nosuchfolder=a.ckpt"}, {NULL, "checkpoints"}};
    int want[] = {SIM_NODES_ECLASS, SIM_NODES_EFOLDER, SIM_NODES_ESYNTAX};
    for (size_t i = 0; i < 3; i++) {
        char err[256];
        assert_int_equal(sim_nodes_create(&bad[i], &n, err, sizeof(err)), want[i]);
        assert_null(n);
        assert_true(strlen(err) > 0);
    }
    /* every class: outputs, display names and the V3 shape where ComfyUI uses it */
    n = make(NULL, NULL);
    assert_int_equal(sim_nodes_count(n), 21);
    const struct sim_node_class *c = sim_nodes_find(n, "GetImageSize");
    assert_int_equal(json_array_size(sim_node_outputs(c)), 3);
    assert_string_equal(sim_node_display_name(c), "Get Image Size");
    const char *cat = NULL;
    assert_non_null(sim_node_input(c, "unique_id", &cat));
    assert_string_equal(cat, "hidden");
    char *ks = sim_json_dumps(sim_nodes_find(n, "KSampler")->info, 1u << 20);
    assert_non_null(strstr(ks, "\"max\": 18446744073709551615"));
    free(ks);
    sim_nodes_destroy(n);
}

int main(void)
{
    simt_require_transcripts();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_object_info_one),
        cmocka_unit_test(test_object_info_all_recorded_classes),
        cmocka_unit_test(test_models),
        cmocka_unit_test(test_config),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
