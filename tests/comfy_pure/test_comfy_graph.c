/* test_comfy_graph — the shape check catches every malformed graph and passes every graph real
 * clients sent in the transcripts (argv[1]); set_prefix rewrites every save node and nothing
 * else; checkpoint detection, iteration and output listing. Without the transcripts the
 * hand-written cases still run and the program exits 77 (skipped). */
#include <dirent.h>
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

#include "comfy/comfy_graph.c"

static const char *transcripts; /* argv[1] */

static json_t *J(const char *text)
{
    json_error_t err;
    json_t *j = json_loads(text, JSON_DECODE_ANY, &err);
    if (!j)
        fail_msg("bad test JSON (%s): %s", err.text, text);
    return j;
}

/* Expects check to fail with a message containing `want`. */
static void check_fails(const char *graph_text, size_t max_nodes, const char *want)
{
    json_t *g = J(graph_text);
    char err[256] = "";
    if (comfy_graph_check(g, max_nodes, err, sizeof err) != -1)
        fail_msg("accepted: %s", graph_text);
    if (!strstr(err, want))
        fail_msg("for %s: error \"%s\" lacks \"%s\"", graph_text, err, want);
    json_decref(g);
}

static void check_passes(const char *graph_text, size_t max_nodes)
{
    json_t *g = J(graph_text);
    char err[256] = "";
    if (comfy_graph_check(g, max_nodes, err, sizeof err) != 0)
        fail_msg("rejected (%s): %s", err, graph_text);
    json_decref(g);
}

#define EMPTY_IMAGE                                                                                \
    "{\"class_type\": \"EmptyImage\", \"inputs\": {\"width\": 64, \"height\": 64, "                \
    "\"batch_size\": 2, \"color\": 16744448}}"

/* Transcript 01's graph. */
static const char *const graph01 =
    "{\"1\": " EMPTY_IMAGE ", \"2\": {\"class_type\": \"SaveImage\", \"inputs\": "
    "{\"images\": [\"1\", 0], \"filename_prefix\": \"golden_success\"}}}";

static void well_formed_graphs_pass(void **state)
{
    check_passes(graph01, 2);
    check_passes("{\"1\": {\"class_type\": \"EmptyImage\"}}", 1); /* inputs may be missing */
    check_passes("{\"1\": {\"class_type\": \"X\", \"inputs\": {}}, \"2\": {\"class_type\": "
                 "\"Y\", \"inputs\": {\"a\": [\"1\", 3], \"b\": [\"1\", 0]}}}",
                 10);
    /* a diamond: 4 needs 2 and 3, both need 1 */
    check_passes("{\"4\": {\"class_type\": \"D\", \"inputs\": {\"a\": [\"2\", 0], \"b\": "
                 "[\"3\", 0]}}, \"2\": {\"class_type\": \"B\", \"inputs\": {\"a\": [\"1\", 0]}}, "
                 "\"3\": {\"class_type\": \"C\", \"inputs\": {\"a\": [\"1\", 0]}}, \"1\": "
                 "{\"class_type\": \"A\"}}",
                 10);
}

/* ComfyUI could never run a node that (through its links) waits on itself. */
static void cycles_rejected(void **state)
{
    (void)state;
    check_fails("{\"2\": {\"class_type\": \"Y\", \"inputs\": {\"b\": [\"2\", 0]}}}", 10,
                "node 2: its links form a cycle");
    check_fails("{\"1\": {\"class_type\": \"X\", \"inputs\": {\"a\": [\"2\", 0]}}, \"2\": "
                "{\"class_type\": \"Y\", \"inputs\": {\"b\": [\"1\", 0]}}}",
                10, "cycle");
    /* a cycle further down, behind a node that is fine */
    check_fails("{\"1\": " EMPTY_IMAGE ", \"2\": {\"class_type\": \"Y\", \"inputs\": {\"a\": "
                "[\"1\", 0], \"b\": [\"4\", 0]}}, \"3\": {\"class_type\": \"Z\", \"inputs\": "
                "{\"a\": [\"2\", 0]}}, \"4\": {\"class_type\": \"W\", \"inputs\": {\"a\": "
                "[\"3\", 0]}}}",
                10, "cycle");
    /* a chain of 2000 nodes, each on the one before: fine, and quick */
    json_t *g = json_object();
    for (int i = 0; i < 2000; i++) {
        char id[16], prev[16];
        snprintf(id, sizeof id, "%d", i);
        snprintf(prev, sizeof prev, "%d", i - 1);
        json_object_set_new(g, id, i ? json_pack("{s:s, s:{s:[s, i]}}", "class_type", "N",
                                                 "inputs", "x", prev, 0)
                                     : json_pack("{s:s}", "class_type", "N"));
    }
    char err[128] = "";
    assert_int_equal(comfy_graph_check(g, 2000, err, sizeof err), 0);
    /* and once the first waits on the last, every node is in the cycle */
    json_object_set_new(json_object_get(g, "0"), "inputs",
                        json_pack("{s:[s, i]}", "loop", "1999", 0));
    assert_int_equal(comfy_graph_check(g, 2000, err, sizeof err), -1);
    assert_non_null(strstr(err, "cycle"));
    json_decref(g);
}

static void malformed_shapes_rejected(void **state)
{
    check_fails("[]", 10, "not an object");
    check_fails("\"graph\"", 10, "not an object");
    check_fails("{}", 10, "no nodes");
    /* the node itself */
    check_fails("{\"1\": [\"EmptyImage\"]}", 10, "node 1 is not an object");
    check_fails("{\"1\": \"EmptyImage\"}", 10, "node 1 is not an object");
    check_fails("{\"1\": null}", 10, "node 1 is not an object");
    check_fails("{\"1\": {\"inputs\": {}}}", 10, "node 1 has no class_type");
    check_fails("{\"7\": {\"class_type\": 5}}", 10, "node 7 has no class_type");
    check_fails("{\"7\": {\"class_type\": null}}", 10, "node 7 has no class_type");
    check_fails("{\"7\": {\"class_type\": \"\"}}", 10, "node 7 has no class_type");
    check_fails("{\"7\": {\"class_type\": \"X\", \"inputs\": [1]}}", 10, "inputs is not an object");
    check_fails("{\"7\": {\"class_type\": \"X\", \"inputs\": \"a\"}}", 10,
                "inputs is not an object");
    /* a later bad node behind a good one is still found */
    check_fails("{\"1\": " EMPTY_IMAGE ", \"2\": 3}", 10, "node 2 is not an object");

    json_t *g = J("{}");
    char err[64];
    assert_int_equal(comfy_graph_check(NULL, 10, err, sizeof err), -1);
    assert_int_equal(comfy_graph_check(g, 10, NULL, 0), -1); /* no error buffer: still fails */
    json_decref(g);
}

static void bad_links_rejected(void **state)
{
    /* transcript 03d: a link to node 99 which is not in the prompt */
    check_fails("{\"2\": {\"class_type\": \"SaveImage\", \"inputs\": {\"images\": [\"99\", 0], "
                "\"filename_prefix\": \"x\"}}}",
                10, "node 2 input images: links to missing node 99");
    static const char *const bad_index[] = {"-1", "\"0\"", "1.5", "null", "[0]", "{}", "true"};
    for (size_t i = 0; i < sizeof bad_index / sizeof bad_index[0]; i++) {
        char g[256];
        snprintf(g, sizeof g,
                 "{\"1\": " EMPTY_IMAGE ", \"2\": {\"class_type\": \"SaveImage\", "
                 "\"inputs\": {\"images\": [\"1\", %s]}}}",
                 bad_index[i]);
        check_fails(g, 10, "link index must be a non-negative integer");
    }
    static const char *const bad_shape[] = {
        "[]", "[\"1\"]", "[\"1\", 0, 0]", "[1, 0]", "[null, 0]", "[[\"1\"], 0]",
    };
    for (size_t i = 0; i < sizeof bad_shape / sizeof bad_shape[0]; i++) {
        char g[256];
        snprintf(g, sizeof g,
                 "{\"1\": " EMPTY_IMAGE ", \"2\": {\"class_type\": \"SaveImage\", "
                 "\"inputs\": {\"images\": %s}}}",
                 bad_shape[i]);
        check_fails(g, 10, "a link must be");
    }
}

static void node_limit(void **state)
{
    const char *three = "{\"1\": {\"class_type\": \"A\"}, \"2\": {\"class_type\": \"A\"}, "
                        "\"3\": {\"class_type\": \"A\"}}";
    check_passes(three, 3);
    check_fails(three, 2, "3 nodes, more than the limit of 2");
    check_fails(three, 0, "limit of 0");

    /* a large graph is checked without trouble, and the limit applies to it */
    json_t *g = json_object();
    for (int i = 0; i < 5000; i++) {
        char id[16], from[16];
        snprintf(id, sizeof id, "%d", i);
        snprintf(from, sizeof from, "%d", i - 1);
        json_t *node = i ? json_pack("{s:s, s:{s:[s,i]}}", "class_type", "ImageInvert",
                                     "inputs", "image", from, 0)
                         : json_pack("{s:s}", "class_type", "LoadImage");
        json_object_set_new(g, id, node);
    }
    char err[128];
    assert_int_equal(comfy_graph_check(g, 5000, err, sizeof err), 0);
    assert_int_equal(comfy_graph_check(g, 4999, err, sizeof err), -1);
    json_decref(g);
}

static void error_text_bounded(void **state)
{
    char id[2000];
    memset(id, 'n', sizeof id - 1);
    id[sizeof id - 1] = '\0';
    json_t *g = json_object();
    json_object_set_new(g, id, json_integer(1));
    char err[512];
    assert_int_equal(comfy_graph_check(g, 10, err, sizeof err), -1);
    assert_true(strlen(err) < 100); /* the id is cut at 64 bytes */
    char tiny[8];
    assert_int_equal(comfy_graph_check(g, 10, tiny, sizeof tiny), -1);
    assert_int_equal(strlen(tiny), 7);
    json_decref(g);
}

/* --- set_prefix ------------------------------------------------------------------------- */

static void set_prefix_rewrites_save_nodes_only(void **state)
{
    json_t *g =
        J("{"
          "\"1\": " EMPTY_IMAGE ","
          "\"2\": {\"class_type\": \"SaveImage\", \"inputs\": {\"images\": [\"1\", 0], "
          "        \"filename_prefix\": \"golden_success\"}},"
          "\"3\": {\"class_type\": \"PreviewImage\", \"inputs\": {\"images\": [\"1\", 0]}},"
          "\"4\": {\"class_type\": \"SaveAnimatedWEBP\", \"inputs\": {\"images\": [\"1\", "
          "        0], \"filename_prefix\": \"ComfyUI\", \"fps\": 6.0, \"lossless\": false}},"
          "\"5\": {\"class_type\": \"SaveAudio\", \"inputs\": {\"audio\": [\"9\", 0], "
          "        \"filename_prefix\": \"audio/ComfyUI\"}},"
          "\"6\": {\"class_type\": \"Note\", \"inputs\": {\"text\": \"filename_prefix\", "
          "        \"prefix\": \"keep\", \"filename\": \"keep\"}},"
          "\"7\": {\"class_type\": \"NoInputs\"},"
          "\"8\": [\"not\", \"a\", \"node\"],"
          "\"9\": {\"class_type\": \"Odd\", \"inputs\": \"filename_prefix\"}"
          "}");
    json_t *want = json_deep_copy(g);
    assert_int_equal(comfy_graph_set_prefix(g, "job-42"), 3);
    json_object_set_new(json_object_get(json_object_get(want, "2"), "inputs"), "filename_prefix",
                        json_string("job-42/2"));
    json_object_set_new(json_object_get(json_object_get(want, "4"), "inputs"), "filename_prefix",
                        json_string("job-42/4"));
    json_object_set_new(json_object_get(json_object_get(want, "5"), "inputs"), "filename_prefix",
                        json_string("job-42/5"));
    assert_true(json_equal(g, want)); /* those three strings changed; nothing else did */
    json_decref(want);

    /* idempotent for a second job id: the prefix is replaced, not appended */
    assert_int_equal(comfy_graph_set_prefix(g, "job-43"), 3);
    assert_string_equal(json_string_value(json_object_get(
                            json_object_get(json_object_get(g, "2"), "inputs"), "filename_prefix")),
                        "job-43/2");
    json_decref(g);

    assert_int_equal(comfy_graph_set_prefix(NULL, "p"), 0);
    json_t *arr = J("[1]");
    assert_int_equal(comfy_graph_set_prefix(arr, "p"), 0);
    json_decref(arr);
}

/* A client must not choose the output path: not through a link, nor through the node id. */
static void set_prefix_cannot_be_steered(void **state)
{
    json_t *g =
        J("{"
          "\"1\": {\"class_type\": \"PrimitiveString\", \"inputs\": {\"value\": \"../x\"}},"
          "\"2\": {\"class_type\": \"SaveImage\", \"inputs\": {\"filename_prefix\": "
          "        [\"1\", 0]}},"
          "\"../../etc\": {\"class_type\": \"SaveImage\", \"inputs\": {\"filename_prefix\": "
          "        \"a\"}},"
          "\"%date:yyyy%\": {\"class_type\": \"SaveImage\", \"inputs\": "
          "        {\"filename_prefix\": null}},"
          "\"12:5\": {\"class_type\": \"SaveImage\", \"inputs\": {\"filename_prefix\": "
          "        \"b\"}}"
          "}");
    assert_int_equal(comfy_graph_set_prefix(g, "j"), 4);
#define PREFIX_OF(id)                                                                              \
    json_string_value(                                                                             \
        json_object_get(json_object_get(json_object_get(g, id), "inputs"), "filename_prefix"))
    assert_string_equal(PREFIX_OF("2"), "j/2");
    assert_string_equal(PREFIX_OF("../../etc"), "j/______etc");
    assert_string_equal(PREFIX_OF("%date:yyyy%"), "j/_date:yyyy_");
    assert_string_equal(PREFIX_OF("12:5"), "j/12:5"); /* subgraph ids pass unchanged */
    assert_string_equal(json_string_value(json_object_get(
                            json_object_get(json_object_get(g, "1"), "inputs"), "value")),
                        "../x");
    json_decref(g);

    char long_id[300];
    memset(long_id, '7', sizeof long_id - 1);
    long_id[sizeof long_id - 1] = '\0';
    g = json_pack("{s:{s:s, s:{s:s}}}", long_id, "class_type", "SaveImage", "inputs",
                  "filename_prefix", "x");
    assert_int_equal(comfy_graph_set_prefix(g, "j"), 1);
    assert_int_equal(strlen(PREFIX_OF(long_id)), 2 + ID_SHOWN);
#undef PREFIX_OF
    json_decref(g);
}

/* --- checkpoint, each, outputs --------------------------------------------------------- */

static void checkpoint_detection(void **state)
{
    json_t *g = J("{\"3\": {\"class_type\": \"KSampler\", \"inputs\": {\"model\": [\"4\", 0]}},"
                  "\"4\": {\"class_type\": \"CheckpointLoaderSimple\", \"inputs\": "
                  "       {\"ckpt_name\": \"sd_xl_base_1.0.safetensors\"}}}");
    assert_string_equal(comfy_graph_checkpoint(g), "sd_xl_base_1.0.safetensors");
    json_decref(g);

    /* ckpt_name wins over a unet_name that comes first */
    g = J("{\"1\": {\"class_type\": \"UNETLoader\", \"inputs\": {\"unet_name\": \"flux.sft\"}},"
          "\"2\": {\"class_type\": \"ImageOnlyCheckpointLoader\", \"inputs\": "
          "       {\"ckpt_name\": \"svd.safetensors\"}}}");
    assert_string_equal(comfy_graph_checkpoint(g), "svd.safetensors");
    json_decref(g);

    g = J("{\"1\": {\"class_type\": \"UNETLoader\", \"inputs\": {\"unet_name\": \"flux.sft\", "
          "\"weight_dtype\": \"default\"}}, \"2\": {\"class_type\": \"UpscaleModelLoader\", "
          "\"inputs\": {\"model_name\": \"4x.pth\"}}}");
    assert_string_equal(comfy_graph_checkpoint(g), "flux.sft");
    json_decref(g);

    /* model_name counts only on a loader */
    g = J("{\"1\": {\"class_type\": \"SomeSampler\", \"inputs\": {\"model_name\": \"x\"}},"
          "\"2\": {\"class_type\": \"UpscaleModelLoader\", \"inputs\": {\"model_name\": "
          "\"4x.pth\"}}}");
    assert_string_equal(comfy_graph_checkpoint(g), "4x.pth");
    json_decref(g);

    /* a linked or non-string ckpt_name is not a file name */
    g = J("{\"1\": {\"class_type\": \"CheckpointLoaderSimple\", \"inputs\": {\"ckpt_name\": "
          "[\"2\", 0]}}, \"2\": {\"class_type\": \"P\", \"inputs\": {\"ckpt_name\": 5}},"
          "\"3\": [1], \"4\": {\"inputs\": {\"ckpt_name\": \"no-class\"}}}");
    assert_null(comfy_graph_checkpoint(g));
    json_decref(g);

    g = J(graph01);
    assert_null(comfy_graph_checkpoint(g));
    json_decref(g);
    assert_null(comfy_graph_checkpoint(NULL));
}

struct visit {
    char seen[256];
    int stop_at; /* return 99 on this visit (1-based), 0: never */
    int visits;
    int null_inputs;
};

static int visit_cb(const char *id, const char *class_type, json_t *inputs, void *ud)
{
    struct visit *v = ud;
    size_t n = strlen(v->seen);
    snprintf(v->seen + n, sizeof v->seen - n, "%s=%s;", id, class_type);
    if (!inputs)
        v->null_inputs++;
    else
        assert_true(json_is_object(inputs));
    v->visits++;
    return v->visits == v->stop_at ? 99 : 0;
}

static void each_visits_in_order(void **state)
{
    json_t *g = J("{\"1\": " EMPTY_IMAGE ", \"2\": {\"class_type\": \"SaveImage\", \"inputs\": {}},"
                  "\"x\": 5, \"y\": {\"inputs\": {}}, \"3\": {\"class_type\": \"NoInputs\"},"
                  "\"4\": {\"class_type\": \"BadInputs\", \"inputs\": [1]}}");
    struct visit v = {.stop_at = 0};
    assert_int_equal(comfy_graph_each(g, visit_cb, &v), 0);
    assert_string_equal(v.seen, "1=EmptyImage;2=SaveImage;3=NoInputs;4=BadInputs;");
    assert_int_equal(v.null_inputs, 2);

    struct visit stop = {.stop_at = 2};
    assert_int_equal(comfy_graph_each(g, visit_cb, &stop), 99);
    assert_string_equal(stop.seen, "1=EmptyImage;2=SaveImage;");
    json_decref(g);

    struct visit none = {.stop_at = 0};
    assert_int_equal(comfy_graph_each(NULL, visit_cb, &none), 0);
    assert_int_equal(none.visits, 0);
}

static void outputs_by_class(void **state)
{
    static const char *const out_classes[] = {"SaveImage", "PreviewImage", "PreviewAny", NULL};
    /* transcript 14's graph, plus a malformed node */
    json_t *g = J("{\"1\": " EMPTY_IMAGE ", \"2\": {\"class_type\": \"GetImageSize\", "
                  "\"inputs\": {\"image\": [\"1\", 0]}}, \"3\": {\"class_type\": \"PreviewAny\", "
                  "\"inputs\": {\"source\": [\"2\", 0]}}, \"4\": {\"class_type\": "
                  "\"PreviewImage\", \"inputs\": {\"images\": [\"1\", 0]}}, \"5\": 1}");
    json_t *out = comfy_graph_outputs(g, out_classes);
    json_t *want = J("[\"3\", \"4\"]");
    assert_true(json_equal(out, want));
    json_decref(out);
    json_decref(want);

    out = comfy_graph_outputs(g, NULL);
    assert_true(json_is_array(out));
    assert_int_equal(json_array_size(out), 0);
    json_decref(out);
    json_decref(g);

    out = comfy_graph_outputs(NULL, out_classes);
    assert_true(json_is_array(out));
    assert_int_equal(json_array_size(out), 0);
    json_decref(out);
}

/* --- real graphs from the transcripts -------------------------------------------------- */

/* Every graph a client POSTed while recording has a sound shape, except 03d (link to a
 * missing node) and the empty prompt of 03k; ComfyUI rejected those too. */
static void transcript_graphs(void **state)
{
    DIR *d = opendir(transcripts);
    assert_non_null(d);
    struct dirent *de;
    int passed = 0, failed = 0;
    while ((de = readdir(d)) != NULL) {
        size_t n = strlen(de->d_name);
        if (n < 5 || strcmp(de->d_name + n - 5, ".json") != 0)
            continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", transcripts, de->d_name);
        json_error_t jerr;
        json_t *t = json_load_file(path, 0, &jerr);
        /* 11_object_info holds KSampler's seed max 2^64-1, past json_int_t */
        if (!t && json_error_code(&jerr) == json_error_numeric_overflow)
            t = json_load_file(path, JSON_DECODE_INT_AS_REAL, &jerr);
        assert_non_null(t);
        size_t i;
        json_t *step;
        json_array_foreach(json_object_get(t, "steps"), i, step)
        {
            json_t *body = json_object_get(json_object_get(step, "request"), "body");
            json_t *graph = json_object_get(json_object_get(body, "json"), "prompt");
            if (!graph)
                continue;
            char err[256];
            bool bad = strncmp(de->d_name, "03d", 3) == 0 || json_object_size(graph) == 0;
            int rc = comfy_graph_check(graph, 64, err, sizeof err);
            if (rc != (bad ? -1 : 0))
                fail_msg("%s step %zu: check gave %d (%s)", de->d_name, i, rc, err);
            if (bad) {
                failed++;
                continue;
            }
            passed++;
            /* every save node gets the job prefix; 01's SaveImage is node 2 */
            json_t *copy = json_deep_copy(graph);
            int saves = comfy_graph_set_prefix(copy, "job");
            assert_true(saves >= 0);
            if (strncmp(de->d_name, "01", 2) == 0) {
                assert_int_equal(saves, 1);
                assert_string_equal(
                    json_string_value(json_object_get(
                        json_object_get(json_object_get(copy, "2"), "inputs"), "filename_prefix")),
                    "job/2");
            }
            json_decref(copy);
        }
        json_decref(t);
    }
    closedir(d);
    assert_true(passed >= 15);
    assert_int_equal(failed, 2);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest own[] = {
        cmocka_unit_test(well_formed_graphs_pass),
        cmocka_unit_test(malformed_shapes_rejected),
        cmocka_unit_test(cycles_rejected),
        cmocka_unit_test(bad_links_rejected),
        cmocka_unit_test(node_limit),
        cmocka_unit_test(error_text_bounded),
        cmocka_unit_test(set_prefix_rewrites_save_nodes_only),
        cmocka_unit_test(set_prefix_cannot_be_steered),
        cmocka_unit_test(checkpoint_detection),
        cmocka_unit_test(each_visits_in_order),
        cmocka_unit_test(outputs_by_class),
    };
    const struct CMUnitTest recorded[] = {
        cmocka_unit_test(transcript_graphs),
    };
    int failed = cmocka_run_group_tests_name("comfy_graph", own, NULL, NULL);
    struct stat st;
    transcripts = argc > 1 ? argv[1] : NULL;
    if (!transcripts || stat(transcripts, &st) != 0 || !S_ISDIR(st.st_mode)) {
        printf("# transcripts not found (%s): recorded cases skipped\n",
               transcripts ? transcripts : "no path given");
        return failed ? 1 : 77;
    }
    failed += cmocka_run_group_tests_name("comfy_graph_transcripts", recorded, NULL, NULL);
    return failed ? 1 : 0;
}
