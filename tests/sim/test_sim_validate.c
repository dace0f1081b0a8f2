/*
 * test_sim_validate — every validation answer recorded in transcripts 03a-03k and 07, plus
 * the rules around them: value conversion, links, exceptions, partial targets.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sim/sim_json.h"
#include "sim/sim_validate.h"
#include "sim_test_util.h"

struct fixture {
    struct sim_nodes *nodes;
    struct simt_fs fs;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    char err[256];
    struct sim_nodes_config cfg = {NULL, "checkpoints=a.safetensors"};
    if (sim_nodes_create(&cfg, &f->nodes, err, sizeof(err)) != 0)
        return -1;
    simt_fs_init(&f->fs);
    simt_fs_put(&f->fs, SIM_DIR_INPUT, "golden/golden_upload.png", "x", 1);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    sim_nodes_destroy(f->nodes);
    simt_fs_free(&f->fs);
    free(f);
    return 0;
}

/* The answer POST /prompt would give: the 400 body, or node_errors of an accepted prompt. */
static json_t *answer(struct fixture *f, json_t *body, bool *ok)
{
    json_t *prompt = json_object_get(body, "prompt");
    if (prompt == NULL) {
        *ok = false;
        return sim_validate_no_prompt_body();
    }
    struct sim_validate_result r;
    assert_int_equal(sim_validate_prompt(f->nodes, &f->fs.fs, prompt,
                                         json_object_get(body, "partial_execution_targets"), &r),
                     SIM_VALIDATE_OK);
    *ok = r.ok;
    json_t *out =
        r.ok ? json_pack("{s:O}", "node_errors", r.node_errors) : sim_validate_error_body(&r);
    sim_validate_result_free(&r);
    return out;
}

static void check_transcript(struct fixture *f, const char *file)
{
    json_t *t = simt_load(file);
    json_t *steps = json_object_get(t, "steps");
    for (size_t i = 0; i < json_array_size(steps); i++) {
        json_t *s = json_array_get(steps, i);
        json_t *req = json_object_get(s, "request");
        json_t *body = simt_request_json(s);
        if (strcmp(json_string_value(json_object_get(req, "path")), "/prompt") != 0 || body == NULL)
            continue;
        json_t *copy = json_deep_copy(body);
        bool ok;
        json_t *got = answer(f, copy, &ok);
        json_t *want = simt_response_json(s);
        assert_int_equal(ok ? 200 : 400, simt_response_status(s));
        if (ok) {
            json_t *ne = json_pack("{s:O}", "node_errors", json_object_get(want, "node_errors"));
            assert_true(simt_same_json(got, ne));
            json_decref(ne);
        } else {
            assert_true(simt_same_json(got, want));
        }
        json_decref(got);
        json_decref(copy);
    }
    json_decref(t);
}

static void test_transcripts(void **state)
{
    static const char *const files[] = {"03a_validation_unknown_class_type.json",
                                        "03b_validation_missing_required_input.json",
                                        "03c_validation_value_out_of_range.json",
                                        "03d_validation_link_to_missing_node.json",
                                        "03e_prompt_no_output_node.json",
                                        "03f_validation_bad_combo_value.json",
                                        "03g_validation_type_mismatch_link.json",
                                        "03h_validation_wrong_value_type.json",
                                        "03i_validation_loadimage_missing_file.json",
                                        "03j_validation_one_bad_output_of_two.json",
                                        "03k_prompt_malformed_requests.json",
                                        "07_upload_image.json",
                                        "01_prompt_success.json",
                                        "14_ws_binary_text_and_preview.json"};
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
        check_transcript(*state, files[i]);
}

static json_t *validate(struct fixture *f, const char *prompt_text, bool *ok, json_t **outputs)
{
    json_error_t err;
    json_t *prompt = sim_json_loads(prompt_text, strlen(prompt_text), 1u << 20, &err);
    assert_non_null(prompt);
    struct sim_validate_result r;
    assert_int_equal(sim_validate_prompt(f->nodes, &f->fs.fs, prompt, NULL, &r), SIM_VALIDATE_OK);
    *ok = r.ok;
    if (outputs != NULL)
        *outputs = json_incref(r.outputs);
    json_t *out = r.ok ? json_incref(prompt) : sim_validate_error_body(&r);
    sim_validate_result_free(&r);
    json_decref(prompt);
    return out;
}

#define IMG                                                                                        \
    "\"1\": {\"class_type\": \"EmptyImage\", \"inputs\": {\"width\": 8, \"height\": 8, "           \
    "\"batch_size\": 1, \"color\": 0}}"

static void test_conversions_are_kept(void **state)
{
    bool ok;
    /* "64" -> 64, 8.9 -> 8 (int() truncates), {"__value__": ...} unwrapped, True -> 1 */
    json_t *p =
        validate(*state,
                 "{\"1\": {\"class_type\": \"EmptyImage\", \"inputs\": {\"width\": \" 64 \", "
                 "\"height\": 8.9, \"batch_size\": {\"__value__\": 2}, \"color\": true}}, "
                 "\"2\": {\"class_type\": \"SaveImage\", \"inputs\": {\"images\": [\"1\", 0], "
                 "\"filename_prefix\": 5}}}",
                 &ok, NULL);
    assert_true(ok);
    char *s = sim_json_dumps(p, 4096);
    assert_string_equal(s,
                        "{\"1\": {\"class_type\": \"EmptyImage\", \"inputs\": {\"width\": 64, "
                        "\"height\": 8, \"batch_size\": 2, \"color\": 1}}, \"2\": {\"class_type\": "
                        "\"SaveImage\", \"inputs\": {\"images\": [\"1\", 0], \"filename_prefix\": "
                        "\"5\"}}}");
    free(s);
    json_decref(p);
}

static const char *node_error_type(json_t *body, const char *node)
{
    json_t *errs =
        json_object_get(json_object_get(json_object_get(body, "node_errors"), node), "errors");
    return json_string_value(json_object_get(json_array_get(errs, 0), "type"));
}

static void test_link_errors_and_exceptions(void **state)
{
    bool ok;
    /* a three-element link */
    json_t *b =
        validate(*state,
                 "{\"2\": {\"class_type\": \"SaveImage\", \"inputs\": {\"images\": [\"1\", 0, 1], "
                 "\"filename_prefix\": \"x\"}}}",
                 &ok, NULL);
    assert_false(ok);
    assert_string_equal(node_error_type(b, "2"), "bad_linked_input");
    json_decref(b);
    /* slot out of range: IndexError inside validate_inputs of the output */
    b = validate(*state,
                 "{" IMG
                 ", \"2\": {\"class_type\": \"SaveImage\", \"inputs\": {\"images\": [\"1\", 3], "
                 "\"filename_prefix\": \"x\"}}}",
                 &ok, NULL);
    assert_string_equal(node_error_type(b, "2"), "exception_during_validation");
    assert_string_equal(json_string_value(json_object_get(json_object_get(b, "error"), "details")),
                        "Exception when validating node: tuple index out of range");
    json_decref(b);
    /* a missing node two links down: caught by its parent, reported on the inner node */
    b = validate(*state,
                 "{\"1\": {\"class_type\": \"ImageInvert\", \"inputs\": {\"image\": [\"99\", 0]}}, "
                 "\"2\": {\"class_type\": \"SaveImage\", \"inputs\": {\"images\": [\"1\", 0], "
                 "\"filename_prefix\": \"x\"}}}",
                 &ok, NULL);
    assert_string_equal(node_error_type(b, "1"), "exception_during_inner_validation");
    json_t *e1 = json_array_get(
        json_object_get(json_object_get(json_object_get(b, "node_errors"), "1"), "errors"), 0);
    assert_string_equal(json_string_value(json_object_get(e1, "details")), "'99'");
    assert_int_equal(
        json_array_size(json_object_get(json_object_get(e1, "extra_info"), "traceback")), 2);
    json_decref(b);
    /* LoadImage without its image input: VALIDATE_INPUTS raises TypeError */
    b = validate(*state,
                 "{\"1\": {\"class_type\": \"LoadImage\", \"inputs\": {}}, \"2\": {\"class_type\": "
                 "\"PreviewImage\", \"inputs\": {\"images\": [\"1\", 0]}}}",
                 &ok, NULL);
    assert_string_equal(node_error_type(b, "1"), "exception_during_inner_validation");
    json_decref(b);
    /* a cycle is Python's RecursionError */
    b = validate(*state,
                 "{\"1\": {\"class_type\": \"ImageInvert\", \"inputs\": {\"image\": [\"3\", 0]}}, "
                 "\"3\": {\"class_type\": \"ImageInvert\", \"inputs\": {\"image\": [\"1\", 0]}}, "
                 "\"2\": {\"class_type\": \"SaveImage\", \"inputs\": {\"images\": [\"1\", 0], "
                 "\"filename_prefix\": \"x\"}}}",
                 &ok, NULL);
    assert_false(ok);
    json_decref(b);
}

static void test_combos_and_types(void **state)
{
    bool ok;
    /* long combo lists are not echoed back */
    json_t *b = validate(
        *state,
        "{\"1\": {\"class_type\": \"CheckpointLoaderSimple\", \"inputs\": {\"ckpt_name\": "
        "\"a.safetensors\"}}, \"2\": {\"class_type\": \"CLIPTextEncode\", \"inputs\": {\"text\": "
        "\"x\", \"clip\": [\"1\", 1]}}, \"3\": {\"class_type\": \"EmptyLatentImage\", \"inputs\": "
        "{\"width\": 512, \"height\": 512, \"batch_size\": 1}}, \"4\": {\"class_type\": "
        "\"KSampler\", \"inputs\": {\"model\": [\"1\", 0], \"seed\": 18446744073709551615, "
        "\"steps\": 20, \"cfg\": 8, \"sampler_name\": \"nope\", \"scheduler\": \"normal\", "
        "\"positive\": [\"2\", 0], \"negative\": [\"2\", 0], \"latent_image\": [\"3\", 0], "
        "\"denoise\": 1}}, \"5\": {\"class_type\": \"VAEDecode\", \"inputs\": {\"samples\": "
        "[\"4\", 0], \"vae\": [\"1\", 2]}}, \"6\": {\"class_type\": \"SaveImage\", \"inputs\": "
        "{\"images\": [\"5\", 0], \"filename_prefix\": \"x\"}}}",
        &ok, NULL);
    assert_false(ok);
    json_t *e = json_array_get(
        json_object_get(json_object_get(json_object_get(b, "node_errors"), "4"), "errors"), 0);
    assert_string_equal(json_string_value(json_object_get(e, "details")),
                        "sampler_name: 'nope' not in (list of length 44)");
    assert_true(json_is_null(json_object_get(json_object_get(e, "extra_info"), "input_config")));
    json_decref(b);
    /* a float min: "Value -0.5 smaller than min of 0.0"; FLOAT inputs become floats */
    b = validate(*state,
                 "{\"1\": {\"class_type\": \"LoraLoader\", \"inputs\": {\"model\": [\"2\", 0], "
                 "\"clip\": [\"2\", 1], \"lora_name\": \"l\", \"strength_model\": -500, "
                 "\"strength_clip\": \"x\"}}, \"2\": {\"class_type\": \"CheckpointLoaderSimple\", "
                 "\"inputs\": {\"ckpt_name\": \"a.safetensors\"}}, \"3\": {\"class_type\": "
                 "\"PreviewAny\", \"inputs\": {\"source\": [\"1\", 0]}}}",
                 &ok, NULL);
    json_t *errs =
        json_object_get(json_object_get(json_object_get(b, "node_errors"), "1"), "errors");
    assert_int_equal(json_array_size(errs), 3);
    assert_string_equal(json_string_value(json_object_get(json_array_get(errs, 0), "message")),
                        "Value not in list");
    assert_string_equal(json_string_value(json_object_get(json_array_get(errs, 1), "message")),
                        "Value -500.0 smaller than min of -100.0");
    assert_string_equal(json_string_value(json_object_get(json_array_get(errs, 2), "details")),
                        "strength_clip, x, could not convert string to float: 'x'");
    json_decref(b);
}

static void test_outputs_and_targets(void **state)
{
    struct fixture *f = *state;
    bool ok;
    json_t *outputs;
    json_t *p = validate(
        f,
        "{\"9\": {\"class_type\": \"PreviewImage\", \"inputs\": {\"images\": [\"1\", 0]}}, " IMG
        ", \"3\": {\"class_type\": \"SaveImage\", \"inputs\": {\"images\": "
        "[\"1\", 0], \"filename_prefix\": \"x\"}}}",
        &ok, &outputs);
    assert_true(ok);
    json_t *want = json_pack("[ss]", "9", "3"); /* prompt order */
    assert_true(simt_same_json(outputs, want));
    json_decref(want);
    json_decref(outputs);
    /* partial_execution_targets limits the outputs */
    json_t *body = json_pack("{s:O, s:[s]}", "prompt", p, "partial_execution_targets", "3");
    struct sim_validate_result r;
    assert_int_equal(sim_validate_prompt(f->nodes, &f->fs.fs, json_object_get(body, "prompt"),
                                         json_object_get(body, "partial_execution_targets"), &r),
                     0);
    assert_int_equal(json_array_size(r.outputs), 1);
    sim_validate_result_free(&r);
    json_decref(body);
    json_decref(p);
    /* Python raises (500) on prompts that are not objects */
    json_t *bad = json_integer(5);
    assert_int_equal(sim_validate_prompt(f->nodes, &f->fs.fs, bad, NULL, &r), SIM_VALIDATE_EPYTHON);
    json_decref(bad);
    bad = json_pack("{s:i}", "1", 5);
    assert_int_equal(sim_validate_prompt(f->nodes, &f->fs.fs, bad, NULL, &r), SIM_VALIDATE_EPYTHON);
    json_decref(bad);
    bad = json_array();
    assert_int_equal(sim_validate_prompt(f->nodes, &f->fs.fs, bad, NULL, &r), SIM_VALIDATE_OK);
    assert_string_equal(json_string_value(json_object_get(r.error, "type")), "prompt_no_outputs");
    sim_validate_result_free(&r);
    json_decref(bad);
}

int main(void)
{
    simt_require_transcripts();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_transcripts),
        cmocka_unit_test(test_conversions_are_kept),
        cmocka_unit_test(test_link_errors_and_exceptions),
        cmocka_unit_test(test_combos_and_types),
        cmocka_unit_test(test_outputs_and_targets),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
