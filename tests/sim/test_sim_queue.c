/*
 * test_sim_queue — POST /prompt numbering, the heap layout /queue shows, delete/clear and
 * their `status` broadcasts (transcript 09), history paging (transcript 05) and limits.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sim/sim_json.h"
#include "sim/sim_queue.h"
#include "sim_test_util.h"

struct fixture {
    struct sim_nodes *nodes;
    struct simt_fs fs;
    struct sim_queue *q;
    json_t *statuses; /* queue_remaining of each updated_cb */
};

static void status_cb(void *ctx, int remaining)
{
    struct fixture *f = ctx;
    json_array_append_new(f->statuses, json_integer(remaining));
}

static struct fixture *fixture_new(size_t max_pending, size_t max_history)
{
    struct fixture *f = calloc(1, sizeof(*f));
    char err[256];
    struct sim_nodes_config cfg = {NULL, NULL};
    assert_int_equal(sim_nodes_create(&cfg, &f->nodes, err, sizeof(err)), 0);
    simt_fs_init(&f->fs);
    f->statuses = json_array();
    struct sim_queue_config qc = {max_pending, max_history, 1, status_cb, f};
    assert_int_equal(sim_queue_create(&qc, &f->q), 0);
    return f;
}

static void fixture_free(struct fixture *f)
{
    sim_queue_destroy(f->q);
    sim_nodes_destroy(f->nodes);
    simt_fs_free(&f->fs);
    json_decref(f->statuses);
    free(f);
}

static json_t *post(struct fixture *f, const json_t *body, int want)
{
    json_t *resp = NULL, *copy = json_deep_copy(body);
    assert_int_equal(sim_queue_post_prompt(f->q, f->nodes, &f->fs.fs, copy, 1000, &resp), want);
    json_decref(copy);
    return resp;
}

/* Queue items with server-made ids (uuid4) replaced, so they compare with the recording. */
static json_t *normalise_queue(const json_t *q)
{
    json_t *out = simt_strip(q, NULL);
    static const char *const lists[2] = {"queue_running", "queue_pending"};
    for (int k = 0; k < 2; k++) {
        json_t *items = json_object_get(out, lists[k]);
        for (size_t i = 0; i < json_array_size(items); i++) {
            json_t *item = json_array_get(items, i);
            const char *id = json_string_value(json_array_get(item, 1));
            if (strncmp(id, "golden-", 7) != 0)
                json_array_set_new(item, 1, json_string("uuid"));
        }
    }
    return out;
}

static void check_queue(struct fixture *f, json_t *t, size_t step)
{
    json_t *got = sim_queue_get_queue(f->q);
    json_t *a = normalise_queue(got), *b = normalise_queue(simt_response_json(simt_step(t, step)));
    assert_true(simt_same_json(a, b));
    json_decref(a);
    json_decref(b);
    json_decref(got);
}

/* The status broadcasts the recorded client saw, against our updated_cb calls. */
static void check_statuses(struct fixture *f, json_t *t)
{
    json_t *frames = simt_ws_texts(t, "ws"), *want = json_array();
    for (size_t i = 1; i < json_array_size(frames); i++) {
        json_t *fr = json_array_get(frames, i);
        json_t *info =
            json_object_get(json_object_get(json_object_get(fr, "data"), "status"), "exec_info");
        if (strcmp(json_string_value(json_object_get(fr, "type")), "status") == 0)
            json_array_append(want, json_object_get(info, "queue_remaining"));
    }
    assert_true(simt_same_json(f->statuses, want));
    json_decref(frames);
    json_decref(want);
}

static void test_09_queue(void **state)
{
    (void)state;
    json_t *t = simt_load("09_queue.json");
    struct fixture *f = fixture_new(0, 0);
    /* The recording's server had answered 23 POSTs before: rejected ones count too. */
    json_t *noprompt = json_pack("{s:s}", "client_id", "x");
    for (int i = 0; i < 23; i++)
        json_decref(post(f, noprompt, 400));
    json_t *ids[6];
    for (size_t s = 0; s < 6; s++) {
        ids[s] = post(f, simt_request_json(simt_step(t, s)), 200);
        json_t *want = simt_strip(simt_response_json(simt_step(t, s)), NULL);
        json_t *got = simt_strip(ids[s], NULL);
        assert_true(simt_same_json(got, want)); /* number: 23, 24, 25, -26, 1.5, 27 */
        json_decref(want);
        json_decref(got);
        if (s == 0)
            assert_non_null(sim_queue_start_next(f->q)); /* A runs */
    }
    assert_string_equal(json_string_value(json_object_get(ids[5], "prompt_id")),
                        "golden-client-chosen-id-0001");
    check_queue(f, t, 6);
    json_t *gp = sim_queue_get_prompt(f->q);
    assert_true(simt_same_json(gp, simt_response_json(simt_step(t, 7))));
    json_decref(gp);
    /* delete B (pending) then A (running: no effect) */
    json_t *del_b = json_pack("{s:[O]}", "delete", json_object_get(ids[1], "prompt_id"));
    json_t *del_a = json_pack("{s:[O]}", "delete", json_object_get(ids[0], "prompt_id"));
    assert_int_equal(sim_queue_post_queue(f->q, del_b), 200);
    assert_int_equal(sim_queue_post_queue(f->q, del_a), 200);
    check_queue(f, t, 10);
    assert_int_equal(sim_queue_post_queue(f->q, simt_request_json(simt_step(t, 11))), 200);
    check_queue(f, t, 12);
    json_t *result = json_pack("{s:{}, s:{}}", "outputs", "meta");
    json_t *status =
        json_pack("{s:s, s:b, s:[]}", "status_str", "success", "completed", 1, "messages");
    assert_int_equal(sim_queue_task_done(f->q, result, status), 0);
    check_queue(f, t, 13);
    json_t *h =
        sim_queue_history_one(f->q, json_string_value(json_object_get(ids[1], "prompt_id")));
    assert_true(simt_same_json(h, simt_response_json(simt_step(t, 14)))); /* {} */
    check_statuses(f, t);                                                 /* 1 1 2 3 4 5 6 5 1 0 */
    for (int i = 0; i < 6; i++)
        json_decref(ids[i]);
    json_decref(h);
    json_decref(result);
    json_decref(status);
    json_decref(del_a);
    json_decref(del_b);
    json_decref(noprompt);
    json_decref(t);
    fixture_free(f);
}

static json_t *prompt_body(const char *prefix)
{
    return json_pack("{s:{s:{s:s, s:{s:i, s:i, s:i, s:i}}, s:{s:s, s:{s:[si], s:s}}}, s:s}",
                     "prompt", "1", "class_type", "EmptyImage", "inputs", "width", 8, "height", 8,
                     "batch_size", 1, "color", 0, "2", "class_type", "SaveImage", "inputs",
                     "images", "1", 0, "filename_prefix", prefix, "client_id", "c");
}

static void finish_running(struct fixture *f)
{
    json_t *result = json_pack("{s:{}, s:{}}", "outputs", "meta");
    json_t *status =
        json_pack("{s:s, s:b, s:[]}", "status_str", "success", "completed", 1, "messages");
    assert_non_null(sim_queue_start_next(f->q));
    assert_int_equal(sim_queue_task_done(f->q, result, status), 0);
    json_decref(result);
    json_decref(status);
}

static void test_05_history_paging(void **state)
{
    (void)state;
    struct fixture *f = fixture_new(0, 0);
    json_t *b0 = prompt_body("a"), *b1 = prompt_body("b");
    json_t *r0 = post(f, b0, 200), *r1 = post(f, b1, 200);
    finish_running(f);
    finish_running(f);
    const char *id0 = json_string_value(json_object_get(r0, "prompt_id"));
    const char *id1 = json_string_value(json_object_get(r1, "prompt_id"));
    long long one = 1, zero = 0;
    struct {
        const long long *max, *off;
        const char *first;
        size_t n;
    } cases[] = {{NULL, NULL, id0, 2}, {&one, NULL, id1, 1},   {&one, &zero, id0, 1},
                 {&one, &one, id1, 1}, {&zero, NULL, NULL, 0}, {&zero, &zero, id0, 1}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *h = sim_queue_history(f->q, cases[i].max, cases[i].off);
        assert_int_equal(json_object_size(h), cases[i].n);
        if (cases[i].first != NULL)
            assert_string_equal(json_object_iter_key(json_object_iter(h)), cases[i].first);
        json_decref(h);
    }
    /* the entry shape: prompt tuple, outputs, status, meta */
    json_t *e = sim_queue_history_one(f->q, id0);
    json_t *entry = json_object_get(e, id0);
    const char *keys[4], *k;
    size_t nk = 0;
    json_t *v;
    json_object_foreach(entry, k, v) keys[nk++] = k;
    assert_int_equal(nk, 4);
    assert_string_equal(keys[0], "prompt");
    assert_string_equal(keys[1], "outputs");
    assert_string_equal(keys[2], "status");
    assert_string_equal(keys[3], "meta");
    json_t *extra = json_array_get(json_object_get(entry, "prompt"), 3);
    assert_int_equal(json_integer_value(json_object_get(extra, "create_time")), 1000);
    json_decref(e);
    json_t *del = json_pack("{s:[s]}", "delete", id0);
    assert_int_equal(sim_queue_post_history(f->q, del), 200);
    assert_int_equal(sim_queue_history_size(f->q), 1);
    json_t *clear = json_pack("{s:b}", "clear", 1);
    assert_int_equal(sim_queue_post_history(f->q, clear), 200);
    assert_int_equal(sim_queue_history_size(f->q), 0);
    json_decref(del);
    json_decref(clear);
    json_decref(r0);
    json_decref(r1);
    json_decref(b0);
    json_decref(b1);
    fixture_free(f);
}

static void test_numbers_and_ids(void **state)
{
    (void)state;
    struct fixture *f = fixture_new(0, 0);
    json_t *b = prompt_body("x");
    json_object_set_new(b, "front", json_true());
    json_t *r = post(f, b, 200);
    char *s = sim_json_dumps(json_object_get(r, "number"), 64);
    assert_string_equal(s, "0"); /* -0 is 0 */
    free(s);
    json_decref(r);
    json_object_del(b, "front");
    json_object_set_new(b, "number", json_integer(5));
    r = post(f, b, 200);
    s = sim_json_dumps(json_object_get(r, "number"), 64);
    assert_string_equal(s, "5.0"); /* float(json_data['number']) */
    free(s);
    json_decref(r);
    json_object_set_new(b, "number", json_string("abc"));
    assert_null(post(f, b, 500));
    json_object_del(b, "number");
    json_object_set_new(b, "prompt_id", json_integer(77));
    r = post(f, b, 200);
    assert_string_equal(json_string_value(json_object_get(r, "prompt_id")), "77");
    json_decref(r);
    /* the counter moved for the front POST and this one, not for explicit numbers */
    json_object_del(b, "prompt_id");
    r = post(f, b, 200);
    assert_int_equal(json_integer_value(json_object_get(r, "number")), 2);
    json_decref(r);
    /* sensitive extra_data stays out of /queue */
    json_object_set_new(
        b, "extra_data",
        json_pack("{s:s, s:s}", "auth_token_comfy_org", "secret", "extra_pnginfo", "w"));
    r = post(f, b, 200);
    json_t *q = sim_queue_get_queue(f->q);
    char *qs = sim_json_dumps(q, 1u << 20);
    assert_null(strstr(qs, "secret"));
    assert_non_null(strstr(qs, "\"extra_pnginfo\": \"w\""));
    free(qs);
    json_decref(q);
    json_decref(r);
    /* what Python would raise on: 500 */
    json_object_set_new(b, "extra_data", json_integer(3));
    assert_null(post(f, b, 500));
    json_t *arr = json_array();
    assert_null(post(f, arr, 500));
    json_decref(arr);
    json_decref(b);
    fixture_free(f);
}

static void test_limits_and_delete_statuses(void **state)
{
    (void)state;
    struct fixture *f = fixture_new(2, 2);
    json_t *b = prompt_body("x");
    json_t *r1 = post(f, b, 200), *r2 = post(f, b, 200), *r3 = post(f, b, 503);
    assert_string_equal(json_string_value(json_object_get(json_object_get(r3, "error"), "type")),
                        "queue_full");
    json_decref(r3);
    r3 = post(f, b, 503);
    json_decref(r3);
    /* deleting down to one pending item, then the last: the last reports twice */
    json_array_clear(f->statuses);
    json_t *del = json_pack("{s:[OO]}", "delete", json_object_get(r1, "prompt_id"),
                            json_object_get(r2, "prompt_id"));
    assert_int_equal(sim_queue_post_queue(f->q, del), 200);
    json_t *want = json_pack("[iii]", 1, 0, 0);
    assert_true(simt_same_json(f->statuses, want));
    json_decref(want);
    json_decref(del);
    json_decref(r1);
    json_decref(r2);
    /* history keeps at most max + 1 entries (checked before each insert, like ComfyUI) */
    for (int i = 0; i < 5; i++) {
        json_decref(post(f, b, 200));
        finish_running(f);
    }
    assert_int_equal(sim_queue_history_size(f->q), 3);
    json_t *bad = json_pack("{s:i}", "delete", 5);
    assert_int_equal(sim_queue_post_queue(f->q, bad), 500);
    assert_int_equal(sim_queue_post_history(f->q, bad), 500);
    json_decref(bad);
    json_decref(b);
    fixture_free(f);
}

int main(void)
{
    simt_require_transcripts();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_09_queue),
        cmocka_unit_test(test_05_history_paging),
        cmocka_unit_test(test_numbers_and_ids),
        cmocka_unit_test(test_limits_and_delete_statuses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
