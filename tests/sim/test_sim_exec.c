/*
 * test_sim_exec — the executor end to end (queue + executor + in-memory files), checked
 * frame by frame against the WebSocket traffic and history of the recorded transcripts.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sim/sim_exec.h"
#include "sim/sim_json.h"
#include "sim/sim_png.h"
#include "sim/sim_queue.h"
#include "sim_test_util.h"

#define MODELS                                                                                     \
    "checkpoints=sd_xl_base_1.0.safetensors,v1-5-pruned-emaonly.safetensors;"                      \
    "loras=detail.safetensors;upscale_models=4x-UltraSharp.pth,RealESRGAN_x2plus.pth"

/* What comfysim's main loop does, without sockets: queue, executor, files, frames. */
struct harness {
    struct simt_fs fs;
    struct simt_ws ws;
    struct sim_nodes *nodes;
    struct sim_queue *q;
    struct sim_exec *e;
    int64_t now;
    int64_t elapsed;    /* simulated ms spent in the last run */
    int fault_calls[8]; /* fault_cb calls per enum sim_fault */
};

static struct harness *harness_new(int64_t exec_ms, int64_t step_ms, enum sim_fault fault)
{
    struct harness *h = calloc(1, sizeof(*h));
    char err[256];
    simt_fs_init(&h->fs);
    simt_ws_init(&h->ws);
    struct sim_nodes_config ncfg = {NULL, MODELS};
    assert_int_equal(sim_nodes_create(&ncfg, &h->nodes, err, sizeof(err)), 0);
    struct sim_queue_config qcfg = {0, 0, 42, simt_ws_status_cb, &h->ws};
    assert_int_equal(sim_queue_create(&qcfg, &h->q), 0);
    struct sim_exec_config ecfg = {.exec_ms = exec_ms,
                                   .step_ms = step_ms,
                                   .seed = 7,
                                   .fault = fault,
                                   .emit_cb = simt_ws_emit_cb,
                                   .binary_cb = simt_ws_binary_cb,
                                   .cb_ctx = &h->ws};
    assert_int_equal(sim_exec_create(&ecfg, h->nodes, &h->fs.fs, &h->e), 0);
    h->now = 1795424169074;
    return h;
}

/* fault_cb gets cb_ctx, which is &h->ws. */
static void record_fault_cb(void *ctx, enum sim_fault fault)
{
    struct harness *h = (struct harness *)((char *)ctx - offsetof(struct harness, ws));
    h->fault_calls[fault]++;
}

/* Recreates the executor with the fault settings of comfysim's newer flags. */
static void harness_faults(struct harness *h, enum sim_fault fault, const char *fault_class,
                           uint64_t times, int png_level)
{
    sim_exec_destroy(h->e);
    struct sim_exec_config ecfg = {.seed = 7,
                                   .fault = fault,
                                   .fault_class = fault_class,
                                   .fault_times = times,
                                   .png_level = png_level,
                                   .emit_cb = simt_ws_emit_cb,
                                   .binary_cb = simt_ws_binary_cb,
                                   .fault_cb = record_fault_cb,
                                   .cb_ctx = &h->ws};
    assert_int_equal(sim_exec_create(&ecfg, h->nodes, &h->fs.fs, &h->e), 0);
}

static void harness_free(struct harness *h)
{
    sim_exec_destroy(h->e);
    sim_queue_destroy(h->q);
    sim_nodes_destroy(h->nodes);
    simt_ws_free(&h->ws);
    simt_fs_free(&h->fs);
    free(h);
}

static json_t *post(struct harness *h, json_t *body, int want_status)
{
    json_t *resp = NULL;
    json_t *copy = json_deep_copy(body);
    int status = sim_queue_post_prompt(h->q, h->nodes, &h->fs.fs, copy, h->now, &resp);
    json_decref(copy);
    assert_int_equal(status, want_status);
    return resp;
}

static bool start_next(struct harness *h)
{
    const struct sim_queue_item *it = sim_queue_start_next(h->q);
    if (it == NULL)
        return false;
    assert_int_equal(
        sim_exec_start(h->e, it->prompt_id, it->prompt, it->extra_data, it->outputs, h->now), 0);
    h->elapsed = 0;
    return true;
}

/* Steps until the prompt ends (or max_steps), advancing the clock by each delay. */
static int64_t step_until_done(struct harness *h, int max_steps)
{
    int64_t d = 0;
    for (int i = 0; i < max_steps; i++) {
        d = sim_exec_step(h->e, h->now);
        if (d < 0)
            break;
        h->now += d;
        h->elapsed += d;
    }
    return d;
}

static void end_run(struct harness *h)
{
    json_t *result, *status;
    assert_int_equal(sim_exec_result(h->e, &result, &status), 0);
    assert_int_equal(sim_queue_task_done(h->q, result, status), 0);
    sim_exec_finish(h->e);
    json_decref(result);
    json_decref(status);
}

static void run_all(struct harness *h)
{
    while (start_next(h)) {
        assert_int_equal(step_until_done(h, 100000), SIM_EXEC_DONE);
        end_run(h);
    }
}

/* The transcript client's frames after its connect-time status, normalised. */
static json_t *want_frames(json_t *t, const char *key, const char *const *strip)
{
    json_t *all = simt_ws_texts(t, key);
    json_t *tail = json_array();
    for (size_t i = 1; i < json_array_size(all); i++)
        json_array_append(tail, json_array_get(all, i));
    json_t *out = simt_strip(tail, strip);
    json_decref(all);
    json_decref(tail);
    return out;
}

static json_t *got_frames(struct harness *h, const char *client, const char *const *strip)
{
    json_t *mine = simt_ws_for_client(&h->ws, client);
    json_t *out = simt_strip(mine, strip);
    json_decref(mine);
    return out;
}

/* A history entry with the volatile parts (prompt_id, number, times) normalised. */
static json_t *history_entry(json_t *history_answer)
{
    const char *key;
    json_t *val, *out = NULL;
    json_object_foreach(history_answer, key, val) out = simt_strip(val, NULL);
    if (out != NULL) {
        json_t *p = json_object_get(out, "prompt");
        json_array_set_new(p, 0, json_integer(0));
        json_array_set_new(p, 1, json_string("ID"));
    }
    return out;
}

static json_t *my_history(struct harness *h, json_t *post_resp)
{
    json_t *one =
        sim_queue_history_one(h->q, json_string_value(json_object_get(post_resp, "prompt_id")));
    json_t *entry = history_entry(one);
    json_decref(one);
    return entry;
}

static void check_history(struct harness *h, json_t *post_resp, json_t *t, size_t step)
{
    json_t *got = my_history(h, post_resp);
    json_t *want = history_entry(simt_response_json(simt_step(t, step)));
    assert_true(simt_same_json(got, want));
    json_decref(got);
    json_decref(want);
}

static void test_01_success(void **state)
{
    (void)state;
    json_t *t = simt_load("01_prompt_success.json");
    struct harness *h = harness_new(0, 0, SIM_FAULT_NONE);
    json_t *resp = post(h, simt_request_json(simt_step(t, 0)), 200);
    run_all(h);
    json_t *got = got_frames(h, "golden-c2b4c4f9", NULL);
    json_t *want = want_frames(t, "ws", NULL);
    assert_true(simt_same_json(got, want));
    check_history(h, resp, t, 1);
    /* The saved PNGs are byte-identical to what the real server wrote. */
    for (int i = 0; i < 2; i++) {
        char name[64], rec[64];
        size_t len;
        snprintf(name, sizeof(name), "golden_success_0000%d_.png", i + 1);
        snprintf(rec, sizeof(rec), "01_prompt_success_view_%d.png", i);
        uint8_t *png = simt_read_file(rec, &len);
        const struct simt_file *f = simt_fs_get(&h->fs, SIM_DIR_OUTPUT, name);
        assert_non_null(f);
        assert_int_equal(f->len, len);
        assert_memory_equal(f->data, png, len);
        free(png);
    }
    json_decref(got);
    json_decref(want);
    json_decref(resp);
    json_decref(t);
    harness_free(h);
}

static void test_02_cached_rerun(void **state)
{
    (void)state;
    json_t *t1 = simt_load("01_prompt_success.json"), *t = simt_load("02_prompt_cached_rerun.json");
    struct harness *h = harness_new(0, 0, SIM_FAULT_NONE);
    json_decref(post(h, simt_request_json(simt_step(t1, 0)), 200));
    run_all(h);
    json_array_clear(h->ws.frames);
    size_t files_before = h->fs.n;
    json_t *r1 = post(h, simt_request_json(simt_step(t, 0)), 200);
    run_all(h);
    assert_int_equal(h->fs.n, files_before); /* fully cached: nothing written */
    json_t *r2 = post(h, simt_request_json(simt_step(t, 2)), 200);
    run_all(h);
    assert_int_equal(json_integer_value(json_object_get(r1, "number")), 1);
    assert_int_equal(json_integer_value(json_object_get(r2, "number")), 2);
    json_t *got = got_frames(h, "golden-f060e705", NULL);
    json_t *want = want_frames(t, "ws", NULL);
    assert_true(simt_same_json(got, want));
    check_history(h, r1, t, 1);
    check_history(h, r2, t, 3);
    assert_non_null(simt_fs_get(&h->fs, SIM_DIR_OUTPUT, "golden_partial_00002_.png"));
    json_decref(got);
    json_decref(want);
    json_decref(r1);
    json_decref(r2);
    json_decref(t1);
    json_decref(t);
    harness_free(h);
}

static void test_13_execution_error(void **state)
{
    (void)state;
    json_t *t = simt_load("13_execution_error.json");
    struct harness *h = harness_new(0, 0, SIM_FAULT_NONE);
    json_t *r1 = post(h, simt_request_json(simt_step(t, 0)), 200);
    run_all(h);
    json_t *r2 = post(h, simt_request_json(simt_step(t, 2)), 200);
    run_all(h);
    json_t *got = got_frames(h, "golden-13b9aa99", NULL);
    json_t *want = want_frames(t, "ws", NULL);
    assert_true(simt_same_json(got, want));
    check_history(h, r1, t, 1);
    check_history(h, r2, t, 3);
    json_decref(got);
    json_decref(want);
    json_decref(r1);
    json_decref(r2);
    json_decref(t);
    harness_free(h);
}

/* PreviewImage names carry five random letters: checked for shape, then blanked. */
static void blank_temp_names(json_t *v)
{
    if (json_is_array(v)) {
        for (size_t i = 0; i < json_array_size(v); i++)
            blank_temp_names(json_array_get(v, i));
        return;
    }
    const char *key;
    json_t *val;
    json_object_foreach(v, key, val)
    {
        const char *s = json_string_value(val);
        if (strcmp(key, "filename") == 0 && s != NULL && strncmp(s, "ComfyUI_temp_", 13) == 0) {
            assert_int_equal(strlen(s), strlen("ComfyUI_temp_abcde_00001_.png"));
            json_object_set_new(v, key, json_string("ComfyUI_temp_xxxxx"));
        } else {
            blank_temp_names(val);
        }
    }
}

static void test_14_binary_text_and_preview(void **state)
{
    (void)state;
    json_t *t = simt_load("14_ws_binary_text_and_preview.json");
    struct harness *h = harness_new(0, 0, SIM_FAULT_NONE);
    json_t *r = post(h, simt_request_json(simt_step(t, 0)), 200);
    run_all(h);
    json_t *got = got_frames(h, "golden-e9f6318d", NULL);
    json_t *want = want_frames(t, "ws", NULL);
    blank_temp_names(got);
    blank_temp_names(want);
    assert_true(simt_same_json(got, want));
    /* The observer sees only broadcasts: status and the binary TEXT frame. */
    json_t *obs = got_frames(h, "golden-observer-37eeb1", NULL);
    json_t *obs_want = want_frames(t, "ws_observer", NULL);
    assert_true(simt_same_json(obs, obs_want));
    json_t *hist = my_history(h, r);
    json_t *hist_want = history_entry(simt_response_json(simt_step(t, 1)));
    blank_temp_names(hist);
    blank_temp_names(hist_want);
    /* outputs_to_execute: ComfyUI lists a Python set (["4", "3"] here); we use prompt order. */
    json_array_set_new(json_object_get(hist, "prompt"), 4, json_pack("[ss]", "4", "3"));
    assert_true(simt_same_json(hist, hist_want));
    json_decref(hist);
    json_decref(hist_want);
    json_decref(obs);
    json_decref(obs_want);
    json_decref(got);
    json_decref(want);
    json_decref(r);
    json_decref(t);
    harness_free(h);
}

static void test_15_observers(void **state)
{
    (void)state;
    static const char *const files[2] = {"15_ws_prompt_without_client_id.json",
                                         "15b_ws_other_client.json"};
    for (int i = 0; i < 2; i++) {
        json_t *t = simt_load(files[i]);
        struct harness *h = harness_new(0, 0, SIM_FAULT_NONE);
        json_t *r = post(h, simt_request_json(simt_step(t, 0)), 200);
        run_all(h);
        const char *observer =
            json_string_value(json_object_get(json_object_get(t, "ws"), "client_id"));
        json_t *got = got_frames(h, observer, NULL);
        json_t *want = want_frames(t, "ws", NULL);
        assert_true(simt_same_json(got, want));
        check_history(h, r, t, 1);
        json_decref(got);
        json_decref(want);
        json_decref(r);
        json_decref(t);
        harness_free(h);
    }
}

/* Removes `status` frames: their interleaving with a run depends on HTTP timing. */
static json_t *without_status(json_t *frames)
{
    json_t *out = json_array();
    for (size_t i = 0; i < json_array_size(frames); i++) {
        json_t *f = json_array_get(frames, i);
        const char *type = json_string_value(json_object_get(f, "type"));
        if (type == NULL || strcmp(type, "status") != 0)
            json_array_append(out, f);
    }
    json_decref(frames);
    return out;
}

static void test_10_interrupt(void **state)
{
    (void)state;
    static const char *const strip[] = {"executed", NULL};
    json_t *t = simt_load("10_interrupt.json");
    struct harness *h = harness_new(600, 0, SIM_FAULT_NONE);
    json_t *ra = post(h, simt_request_json(simt_step(t, 0)), 200);
    json_t *rb = post(h, simt_request_json(simt_step(t, 1)), 200);
    assert_true(start_next(h));
    /* Run until node 4 is executing, then interrupt: node 4 finishes, node 5 is stopped. */
    for (;;) {
        int64_t d = sim_exec_step(h->e, h->now);
        assert_true(d >= 0);
        h->now += d;
        json_t *last = json_array_get(h->ws.frames, json_array_size(h->ws.frames) - 1);
        json_t *data = json_object_get(last, "data");
        if (strcmp(json_string_value(json_object_get(last, "type")), "executing") == 0 &&
            strcmp(json_string_value(json_object_get(data, "node")), "4") == 0)
            break;
    }
    sim_exec_interrupt(h->e);
    assert_int_equal(step_until_done(h, 100), SIM_EXEC_DONE);
    end_run(h);
    run_all(h);
    json_t *got = without_status(got_frames(h, "golden-93164b1f", strip));
    json_t *want = without_status(want_frames(t, "ws", strip));
    assert_true(simt_same_json(got, want));
    /* executed is a Python set there: same members. */
    json_t *hist = sim_queue_history_one(h->q, json_string_value(json_object_get(ra, "prompt_id")));
    json_t *entry = json_object_iter_value(json_object_iter(hist));
    json_t *msgs = json_object_get(json_object_get(entry, "status"), "messages");
    json_t *ex = json_object_get(json_array_get(json_array_get(msgs, 2), 1), "executed");
    json_t *ex_want = json_pack("[ssss]", "1", "2", "3", "4");
    assert_true(simt_same_json(ex, ex_want));
    json_decref(ex_want);
    json_decref(hist);
    check_history(h, rb, t, 4);
    json_t *ha = my_history(h, ra), *ha_want = history_entry(simt_response_json(simt_step(t, 3)));
    json_t *a = simt_strip(ha, strip), *b = simt_strip(ha_want, strip);
    assert_true(simt_same_json(a, b));
    json_decref(a);
    json_decref(b);
    json_decref(ha);
    json_decref(ha_want);
    json_decref(got);
    json_decref(want);
    json_decref(ra);
    json_decref(rb);
    json_decref(t);
    harness_free(h);
}

static json_t *sd_prompt(int64_t seed, const char *text, int steps, bool upscale)
{
    json_t *p = json_pack(
        "{s:{s:s, s:{s:s}}, s:{s:s, s:{s:s, s:[si]}}, s:{s:s, s:{s:s, s:[si]}},"
        " s:{s:s, s:{s:i, s:i, s:i}},"
        " s:{s:s, s:{s:[si], s:I, s:i, s:f, s:s, s:s, s:[si], s:[si], s:[si], s:f}},"
        " s:{s:s, s:{s:[si], s:[si]}}, s:{s:s, s:{s:[si], s:s}}}",
        "4", "class_type", "CheckpointLoaderSimple", "inputs", "ckpt_name",
        "sd_xl_base_1.0.safetensors", "6", "class_type", "CLIPTextEncode", "inputs", "text", text,
        "clip", "4", 1, "7", "class_type", "CLIPTextEncode", "inputs", "text", "blurry", "clip",
        "4", 1, "5", "class_type", "EmptyLatentImage", "inputs", "width", 128, "height", 96,
        "batch_size", 2, "3", "class_type", "KSampler", "inputs", "model", "4", 0, "seed",
        (json_int_t)seed, "steps", steps, "cfg", 8.0, "sampler_name", "euler", "scheduler",
        "normal", "positive", "6", 0, "negative", "7", 0, "latent_image", "5", 0, "denoise", 1.0,
        "8", "class_type", "VAEDecode", "inputs", "samples", "3", 0, "vae", "4", 2, "9",
        "class_type", "SaveImage", "inputs", "images", "8", 0, "filename_prefix", "sd/run");
    if (upscale) {
        json_object_set_new(p, "10",
                            json_pack("{s:s, s:{s:s}}", "class_type", "UpscaleModelLoader",
                                      "inputs", "model_name", "RealESRGAN_x2plus.pth"));
        json_object_set_new(p, "11",
                            json_pack("{s:s, s:{s:[si], s:[si]}}", "class_type",
                                      "ImageUpscaleWithModel", "inputs", "upscale_model", "10", 0,
                                      "image", "8", 0));
        json_object_set_new(p, "12",
                            json_pack("{s:s, s:{s:[si], s:s}}", "class_type", "SaveImage", "inputs",
                                      "images", "11", 0, "filename_prefix", "sd/up"));
    }
    return json_pack("{s:o, s:s}", "prompt", p, "client_id", "sd-client");
}

static size_t count_type(json_t *frames, const char *type)
{
    size_t n = 0;
    for (size_t i = 0; i < json_array_size(frames); i++)
        n += strcmp(json_string_value(json_object_get(json_array_get(frames, i), "type")), type) ==
             0;
    return n;
}

static void check_png(const struct simt_file *f, uint32_t w, uint32_t hgt)
{
    struct sim_png_image img;
    assert_non_null(f);
    assert_int_equal(sim_png_decode(f->data, f->len, 1u << 24, &img), 0);
    assert_int_equal(img.width, w);
    assert_int_equal(img.height, hgt);
    sim_png_image_free(&img);
}

static void test_sd_workflow(void **state)
{
    (void)state;
    struct harness *h = harness_new(10, 5, SIM_FAULT_NONE);
    json_t *body = sd_prompt(1234, "a lighthouse at dusk", 4, true);
    json_decref(post(h, body, 200));
    assert_true(start_next(h));
    assert_int_equal(step_until_done(h, 1000), SIM_EXEC_DONE);
    /* 10 executed nodes * 10 ms + 4 sampler steps * 5 ms + 2 upscale tiles (batch 2) * 5 ms */
    assert_int_equal(h->elapsed, 10 * 10 + 4 * 5 + 2 * 5);
    end_run(h);
    json_t *frames = got_frames(h, "sd-client", NULL);
    assert_int_equal(count_type(frames, "progress"), 4 + 2);
    assert_int_equal(count_type(frames, "executed"), 2);
    assert_int_equal(count_type(frames, "execution_success"), 1);
    json_t *first = NULL;
    for (size_t i = 0; i < json_array_size(frames) && first == NULL; i++) {
        json_t *f = json_array_get(frames, i);
        if (strcmp(json_string_value(json_object_get(f, "type")), "progress") == 0)
            first = json_object_get(f, "data");
    }
    json_t *want_first = json_pack("{s:i, s:i, s:s}", "value", 1, "max", 4, "node", "3");
    assert_true(simt_same_json(first, want_first));
    json_decref(want_first);
    check_png(simt_fs_get(&h->fs, SIM_DIR_OUTPUT, "sd/run_00001_.png"), 128, 96);
    check_png(simt_fs_get(&h->fs, SIM_DIR_OUTPUT, "sd/run_00002_.png"), 128, 96);
    check_png(simt_fs_get(&h->fs, SIM_DIR_OUTPUT, "sd/up_00002_.png"), 256, 192);
    /* Same seed and text: same pixels; another seed: different ones. */
    const struct simt_file *a = simt_fs_get(&h->fs, SIM_DIR_OUTPUT, "sd/run_00001_.png");
    json_t *body2 = sd_prompt(1235, "a lighthouse at dusk", 4, false);
    json_decref(post(h, body2, 200));
    run_all(h);
    const struct simt_file *b = simt_fs_get(&h->fs, SIM_DIR_OUTPUT, "sd/run_00003_.png");
    assert_non_null(b);
    assert_true(a->len != b->len || memcmp(a->data, b->data, a->len) != 0);
    json_decref(frames);
    json_decref(body);
    json_decref(body2);
    harness_free(h);
}

static json_t *error_of(struct harness *h, json_t *resp)
{
    json_t *hist =
        sim_queue_history_one(h->q, json_string_value(json_object_get(resp, "prompt_id")));
    json_t *entry = json_object_iter_value(json_object_iter(hist));
    json_t *msgs = json_object_get(json_object_get(entry, "status"), "messages");
    json_t *last = json_incref(json_array_get(msgs, json_array_size(msgs) - 1));
    json_decref(hist);
    return last;
}

static void test_faults(void **state)
{
    (void)state;
    struct harness *h = harness_new(0, 0, SIM_FAULT_NONE);
    json_t *body = sd_prompt(1, "x", 3, false);
    json_object_set_new(body, "extra_data", json_pack("{s:s}", "comfysim_fault", "oom"));
    json_t *r = post(h, body, 200);
    run_all(h);
    json_t *m = error_of(h, r);
    assert_string_equal(json_string_value(json_array_get(m, 0)), "execution_error");
    json_t *d = json_array_get(m, 1);
    assert_string_equal(json_string_value(json_object_get(d, "exception_type")),
                        "torch.OutOfMemoryError");
    assert_string_equal(json_string_value(json_object_get(d, "node_type")), "KSampler");
    assert_non_null(
        strstr(json_string_value(json_object_get(d, "exception_message")), "Allocation on device"));
    assert_non_null(strstr(json_string_value(json_object_get(d, "exception_message")),
                           "This error means you ran out of memory on your GPU."));
    assert_true(json_is_string(
        json_array_get(json_object_get(json_object_get(d, "current_inputs"), "model"), 0)));
    json_decref(m);
    json_decref(r);
    /* An exception in a chosen node. */
    json_object_set_new(
        body, "extra_data",
        json_pack("{s:s, s:s}", "comfysim_fault", "exception", "comfysim_fault_node", "8"));
    r = post(h, body, 200);
    run_all(h);
    m = error_of(h, r);
    d = json_array_get(m, 1);
    assert_string_equal(json_string_value(json_object_get(d, "node_id")), "8");
    assert_string_equal(json_string_value(json_object_get(d, "exception_type")), "RuntimeError");
    json_decref(m);
    json_decref(r);
    /* A hang: never ends until interrupted. */
    json_object_set_new(body, "extra_data", json_pack("{s:s}", "comfysim_fault", "hang"));
    json_object_set_new(
        json_object_get(json_object_get(json_object_get(body, "prompt"), "3"), "inputs"), "seed",
        json_integer(99));
    r = post(h, body, 200);
    assert_true(start_next(h));
    for (int i = 0; i < 50; i++)
        assert_true(sim_exec_step(h->e, h->now) >= 0);
    sim_exec_interrupt(h->e);
    assert_int_equal(sim_exec_step(h->e, h->now), SIM_EXEC_DONE);
    end_run(h);
    m = error_of(h, r);
    assert_string_equal(json_string_value(json_array_get(m, 0)), "execution_interrupted");
    assert_string_equal(json_string_value(json_object_get(json_array_get(m, 1), "node_id")), "3");
    json_decref(m);
    json_decref(r);
    json_decref(body);
    harness_free(h);
}

static void test_config_fault_and_interrupt_per_step(void **state)
{
    (void)state;
    struct harness *h = harness_new(0, 10, SIM_FAULT_EXCEPTION);
    json_t *body = sd_prompt(5, "y", 20, false);
    json_t *r = post(h, body, 200);
    run_all(h);
    json_t *m = error_of(h, r);
    assert_string_equal(json_string_value(json_object_get(json_array_get(m, 1), "node_type")),
                        "KSampler");
    json_decref(m);
    json_decref(r);
    /* extra_data "none" overrides the config; an interrupt stops the sampler mid-way. */
    json_object_set_new(body, "extra_data", json_pack("{s:s}", "comfysim_fault", "none"));
    r = post(h, body, 200);
    assert_true(start_next(h));
    json_array_clear(h->ws.frames);
    for (int i = 0; i < 12; i++)
        assert_true(sim_exec_step(h->e, h->now) >= 0);
    sim_exec_interrupt(h->e);
    assert_int_equal(sim_exec_step(h->e, h->now), SIM_EXEC_DONE);
    end_run(h);
    json_t *frames = got_frames(h, "sd-client", NULL);
    assert_true(count_type(frames, "progress") > 0 && count_type(frames, "progress") < 20);
    assert_int_equal(count_type(frames, "execution_interrupted"), 1);
    json_decref(frames);
    json_decref(r);
    json_decref(body);
    harness_free(h);
}

static const char *status_of(struct harness *h, json_t *resp)
{
    json_t *hist =
        sim_queue_history_one(h->q, json_string_value(json_object_get(resp, "prompt_id")));
    json_t *entry = json_object_iter_value(json_object_iter(hist));
    const char *s =
        json_string_value(json_object_get(json_object_get(entry, "status"), "status_str"));
    static char out[32];
    snprintf(out, sizeof(out), "%s", s != NULL ? s : "");
    json_decref(hist);
    return out;
}

/* --fault-times: the configured fault hits the first N prompts that reach its node; faults
 * asked for per prompt are neither limited nor counted. */
static void test_fault_times(void **state)
{
    (void)state;
    struct harness *h = harness_new(0, 0, SIM_FAULT_NONE);
    harness_faults(h, SIM_FAULT_OOM, NULL, 1, 0);
    json_t *body = sd_prompt(1, "x", 3, false);
    json_t *r = post(h, body, 200);
    run_all(h);
    json_t *m = error_of(h, r);
    assert_string_equal(json_string_value(json_object_get(json_array_get(m, 1), "exception_type")),
                        "torch.OutOfMemoryError");
    json_decref(m);
    json_decref(r);
    assert_int_equal(sim_exec_faults_hit(h->e), 1);
    r = post(h, body, 200); /* the retry */
    run_all(h);
    assert_string_equal(status_of(h, r), "success");
    json_decref(r);
    json_object_set_new(
        json_object_get(json_object_get(json_object_get(body, "prompt"), "3"), "inputs"), "seed",
        json_integer(2));
    r = post(h, body, 200); /* reaches KSampler again: still no fault */
    run_all(h);
    assert_string_equal(status_of(h, r), "success");
    json_decref(r);
    json_object_set_new(body, "extra_data", json_pack("{s:s}", "comfysim_fault", "exception"));
    json_object_set_new(
        json_object_get(json_object_get(json_object_get(body, "prompt"), "3"), "inputs"), "seed",
        json_integer(3));
    r = post(h, body, 200);
    run_all(h);
    assert_string_equal(status_of(h, r), "error");
    assert_int_equal(sim_exec_faults_hit(h->e), 1);
    json_decref(r);
    json_decref(body);
    harness_free(h);
}

/* crash and ws-drop are carried out by the caller: the executor tells it once, when the node
 * starts; a crashing node then never completes, a ws-drop node runs on. */
static void test_crash_and_ws_drop(void **state)
{
    (void)state;
    struct harness *h = harness_new(0, 0, SIM_FAULT_NONE);
    harness_faults(h, SIM_FAULT_CRASH, "VAEDecode", 0, 0);
    json_t *body = sd_prompt(1, "x", 3, false);
    json_t *r = post(h, body, 200);
    assert_true(start_next(h));
    for (int i = 0; i < 50; i++)
        assert_true(sim_exec_step(h->e, h->now) >= 0);
    assert_int_equal(h->fault_calls[SIM_FAULT_CRASH], 1);
    json_t *frames = got_frames(h, "sd-client", NULL);
    json_t *last = json_array_get(frames, json_array_size(frames) - 1);
    assert_string_equal(json_string_value(json_object_get(last, "type")), "executing");
    assert_string_equal(json_string_value(json_object_get(json_object_get(last, "data"), "node")),
                        "8");
    json_decref(frames);
    assert_null(simt_fs_get(&h->fs, SIM_DIR_OUTPUT, "sd/run_00001_.png"));
    sim_exec_interrupt(h->e); /* only for the test: a real comfysim is gone by now */
    assert_int_equal(sim_exec_step(h->e, h->now), SIM_EXEC_DONE);
    end_run(h);
    json_decref(r);
    json_object_set_new(body, "extra_data", json_pack("{s:s}", "comfysim_fault", "ws-drop"));
    r = post(h, body, 200);
    run_all(h);
    assert_int_equal(h->fault_calls[SIM_FAULT_WS_DROP], 1);
    assert_int_equal(h->fault_calls[SIM_FAULT_CRASH], 1);
    assert_string_equal(status_of(h, r), "success");
    assert_non_null(simt_fs_get(&h->fs, SIM_DIR_OUTPUT, "sd/run_00001_.png"));
    json_decref(r);
    json_decref(body);
    harness_free(h);
}

/* --png-level: SaveImage's zlib level (0 stores the rows), previews keep level 1. */
static void test_png_level(void **state)
{
    (void)state;
    size_t raw = 128 * 96 * 3;
    struct harness *h = harness_new(0, 0, SIM_FAULT_NONE);
    json_t *body = sd_prompt(1, "x", 3, false);
    json_decref(post(h, body, 200));
    run_all(h);
    const struct simt_file *f = simt_fs_get(&h->fs, SIM_DIR_OUTPUT, "sd/run_00001_.png");
    assert_non_null(f);
    assert_true(f->len < raw);
    harness_faults(h, SIM_FAULT_NONE, NULL, 0, SIM_PNG_LEVEL(0));
    json_decref(post(h, body, 200)); /* a new executor: nothing cached, SaveImage runs */
    run_all(h);
    f = simt_fs_get(&h->fs, SIM_DIR_OUTPUT, "sd/run_00003_.png");
    assert_non_null(f);
    assert_true(f->len > raw);
    check_png(f, 128, 96);
    json_decref(body);
    harness_free(h);
}

static void test_classic_cache_keeps_only_last_prompt(void **state)
{
    (void)state;
    struct harness *h = harness_new(0, 0, SIM_FAULT_NONE);
    json_t *a = sd_prompt(1, "a", 2, false), *b = sd_prompt(2, "b", 2, false);
    json_decref(post(h, a, 200));
    json_decref(post(h, b, 200));
    json_decref(post(h, a, 200));
    json_decref(post(h, a, 200));
    run_all(h);
    json_t *all = sim_queue_history(h->q, NULL, NULL);
    /* B shares the checkpoint, the negative prompt and the latent with A; the classic cache
     * drops A's other nodes when B starts, so A's second run re-runs them. */
    static const size_t want[4] = {0, 3, 3, 7};
    size_t i = 0;
    const char *key;
    json_t *entry;
    json_object_foreach(all, key, entry)
    {
        json_t *msgs = json_object_get(json_object_get(entry, "status"), "messages");
        json_t *cached = json_object_get(json_array_get(json_array_get(msgs, 1), 1), "nodes");
        assert_int_equal(json_array_size(cached), want[i]);
        i++;
    }
    assert_int_equal(i, 4);
    json_decref(all);
    json_decref(a);
    json_decref(b);
    harness_free(h);
}

static void test_load_image_is_changed(void **state)
{
    (void)state;
    struct harness *h = harness_new(0, 0, SIM_FAULT_NONE);
    size_t len;
    uint8_t *png = simt_read_file("07_upload_inverted.png", &len);
    simt_fs_put(&h->fs, SIM_DIR_INPUT, "golden/golden_upload.png", png, len);
    json_t *t = simt_load("07_upload_image.json");
    json_t *r = post(h, simt_request_json(simt_step(t, 10)), 200);
    run_all(h);
    const struct simt_file *f = simt_fs_get(&h->fs, SIM_DIR_OUTPUT, "golden_inverted_00001_.png");
    assert_non_null(f);
    char *meta = NULL;
    assert_int_equal(sim_png_text_get(f->data, f->len, "prompt", &meta, 1u << 20), 0);
    /* The PNG's prompt carries IS_CHANGED (sha256 of the input); /history does not. */
    assert_non_null(strstr(meta, "\"is_changed\": [\""));
    json_t *hist = my_history(h, r);
    char *hs = sim_json_dumps(hist, 1u << 20);
    assert_null(strstr(hs, "is_changed"));
    /* Inverting the inverted recording gives back pixels that invert to the recording. */
    struct sim_png_image a, b;
    assert_int_equal(sim_png_decode(png, len, 1u << 20, &a), 0);
    assert_int_equal(sim_png_decode(f->data, f->len, 1u << 20, &b), 0);
    for (size_t i = 0; i < (size_t)a.width * a.height * 3; i++)
        assert_true(abs((int)a.pixels[i] + (int)b.pixels[i] - 255) <= 1);
    sim_png_image_free(&a);
    sim_png_image_free(&b);
    free(hs);
    free(meta);
    free(png);
    json_decref(hist);
    json_decref(r);
    json_decref(t);
    harness_free(h);
}

int main(void)
{
    simt_require_transcripts();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_01_success),
        cmocka_unit_test(test_02_cached_rerun),
        cmocka_unit_test(test_13_execution_error),
        cmocka_unit_test(test_14_binary_text_and_preview),
        cmocka_unit_test(test_15_observers),
        cmocka_unit_test(test_10_interrupt),
        cmocka_unit_test(test_sd_workflow),
        cmocka_unit_test(test_faults),
        cmocka_unit_test(test_config_fault_and_interrupt_per_step),
        cmocka_unit_test(test_fault_times),
        cmocka_unit_test(test_crash_and_ws_drop),
        cmocka_unit_test(test_png_level),
        cmocka_unit_test(test_classic_cache_keeps_only_last_prompt),
        cmocka_unit_test(test_load_image_is_changed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
