/*
 * test_sim_graph — execution order (ComfyUI's ExecutionList + ux_friendly_pick_node) and
 * cache keys (signatures, IS_CHANGED file hashes).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sim/sim_graph.h"
#include "sim/sim_json.h"
#include "sim_test_util.h"

static struct sim_nodes *registry(void)
{
    struct sim_nodes *n;
    char err[256];
    struct sim_nodes_config cfg = {NULL, NULL};
    assert_int_equal(sim_nodes_create(&cfg, &n, err, sizeof(err)), 0);
    return n;
}

static json_t *parse(const char *text)
{
    json_error_t err;
    json_t *v = json_loads(text, 0, &err);
    assert_non_null(v);
    return v;
}

/* Runs the ExecutionList to the end and returns the ids in the order they would run. */
static char *order_of(struct sim_nodes *n, json_t *prompt, const char *const *outputs)
{
    struct sim_graph g;
    uint64_t rng = 1;
    static char out[256];
    assert_int_equal(sim_graph_build(&g, n, prompt), 0);
    assert_int_equal(sim_graph_signatures(&g, NULL, 1024, &rng), 0);
    for (size_t i = 0; outputs[i] != NULL; i++)
        assert_int_equal(sim_graph_add_output(&g, sim_graph_find(&g, outputs[i])), 0);
    out[0] = 0;
    for (int idx; (idx = sim_graph_next(&g)) >= 0;) {
        strcat(out, g.v[idx].id);
        strcat(out, " ");
        sim_graph_complete(&g, idx);
    }
    sim_graph_free(&g);
    return out;
}

static const char sd[] =
    "{\"4\": {\"class_type\": \"CheckpointLoaderSimple\", \"inputs\": {\"ckpt_name\": \"m\"}}, "
    "\"6\": {\"class_type\": \"CLIPTextEncode\", \"inputs\": {\"text\": \"p\", \"clip\": [\"4\", "
    "1]}}, "
    "\"7\": {\"class_type\": \"CLIPTextEncode\", \"inputs\": {\"text\": \"n\", \"clip\": [\"4\", "
    "1]}}, "
    "\"5\": {\"class_type\": \"EmptyLatentImage\", \"inputs\": {\"width\": 64, \"height\": 64, "
    "\"batch_size\": 1}}, "
    "\"3\": {\"class_type\": \"KSampler\", \"inputs\": {\"model\": [\"4\", 0], \"seed\": 1, "
    "\"steps\": 2, \"cfg\": 8.0, \"sampler_name\": \"euler\", \"scheduler\": \"normal\", "
    "\"positive\": [\"6\", 0], \"negative\": [\"7\", 0], \"latent_image\": [\"5\", 0], "
    "\"denoise\": 1.0}}, "
    "\"8\": {\"class_type\": \"VAEDecode\", \"inputs\": {\"samples\": [\"3\", 0], \"vae\": [\"4\", "
    "2]}}, "
    "\"9\": {\"class_type\": \"SaveImage\", \"inputs\": {\"images\": [\"8\", 0], "
    "\"filename_prefix\": \"x\"}}}";

static void test_order(void **state)
{
    (void)state;
    struct sim_nodes *n = registry();
    /* transcript 14: EmptyImage, PreviewImage first (an output), then GetImageSize, PreviewAny */
    json_t *p14 =
        parse("{\"1\": {\"class_type\": \"EmptyImage\", \"inputs\": {\"width\": 48, "
              "\"height\": 32, \"batch_size\": 3, \"color\": 43520}}, \"2\": "
              "{\"class_type\": \"GetImageSize\", \"inputs\": {\"image\": [\"1\", 0]}}, "
              "\"3\": {\"class_type\": \"PreviewAny\", \"inputs\": {\"source\": [\"2\", 0]}}, "
              "\"4\": {\"class_type\": \"PreviewImage\", \"inputs\": {\"images\": [\"1\", 0]}}}");
    static const char *const outs14[] = {"3", "4", NULL};
    assert_string_equal(order_of(n, p14, outs14), "1 4 2 3 ");
    static const char *const outs14b[] = {"4", "3", NULL}; /* ComfyUI's set order */
    assert_string_equal(order_of(n, p14, outs14b), "1 4 2 3 ");
    /* the default SD graph: loader, latent, negative, positive, sampler, decode, save */
    json_t *psd = parse(sd);
    static const char *const outs_sd[] = {"9", NULL};
    assert_string_equal(order_of(n, psd, outs_sd), "4 5 7 6 3 8 9 ");
    /* a cycle (only possible without validation) is reported, not looped on */
    json_t *cyc =
        parse("{\"1\": {\"class_type\": \"ImageInvert\", \"inputs\": {\"image\": [\"2\", 0]}}, "
              "\"2\": {\"class_type\": \"ImageInvert\", \"inputs\": {\"image\": [\"1\", 0]}}, "
              "\"3\": {\"class_type\": \"SaveImage\", \"inputs\": {\"images\": [\"1\", 0], "
              "\"filename_prefix\": \"x\"}}}");
    struct sim_graph g;
    uint64_t rng = 1;
    assert_int_equal(sim_graph_build(&g, n, cyc), 0);
    assert_int_equal(sim_graph_signatures(&g, NULL, 1024, &rng), 0);
    assert_int_equal(sim_graph_add_output(&g, sim_graph_find(&g, "3")), 0);
    assert_int_equal(sim_graph_next(&g), -2);
    sim_graph_free(&g);
    json_decref(cyc);
    json_decref(p14);
    json_decref(psd);
    sim_nodes_destroy(n);
}

static uint64_t sig(struct sim_nodes *n, const char *text, const char *id, struct sim_fs *fs)
{
    json_t *p = parse(text);
    struct sim_graph g;
    uint64_t rng = 1;
    assert_int_equal(sim_graph_build(&g, n, p), 0);
    assert_int_equal(sim_graph_signatures(&g, fs, 1u << 20, &rng), 0);
    uint64_t s = g.v[sim_graph_find(&g, id)].sig;
    sim_graph_free(&g);
    json_decref(p);
    return s;
}

static void test_signatures(void **state)
{
    (void)state;
    struct sim_nodes *n = registry();
    char other[sizeof(sd)];
    strcpy(other, sd);
    char *seed = strstr(other, "\"seed\": 1");
    seed[8] = '2'; /* another seed: the sampler and what follows change, the rest does not */
    assert_true(sig(n, sd, "4", NULL) == sig(n, other, "4", NULL));
    assert_true(sig(n, sd, "6", NULL) == sig(n, other, "6", NULL));
    assert_true(sig(n, sd, "3", NULL) != sig(n, other, "3", NULL));
    assert_true(sig(n, sd, "9", NULL) != sig(n, other, "9", NULL));
    /* node ids do not matter... */
    const char a[] = "{\"1\": {\"class_type\": \"EmptyImage\", \"inputs\": {\"width\": 8, "
                     "\"height\": 8, \"batch_size\": 1, \"color\": 0}}}";
    const char b[] = "{\"7\": {\"class_type\": \"EmptyImage\", \"inputs\": {\"color\": 0, "
                     "\"batch_size\": 1, \"height\": 8, \"width\": 8}}}";
    assert_true(sig(n, a, "1", NULL) == sig(n, b, "7", NULL));
    /* ...except for classes with a hidden UNIQUE_ID */
    const char c[] = "{\"1\": {\"class_type\": \"EmptyImage\", \"inputs\": {\"width\": 8, "
                     "\"height\": 8, \"batch_size\": 1, \"color\": 0}}, \"2\": {\"class_type\": "
                     "\"GetImageSize\", \"inputs\": {\"image\": [\"1\", 0]}}}";
    const char d[] = "{\"1\": {\"class_type\": \"EmptyImage\", \"inputs\": {\"width\": 8, "
                     "\"height\": 8, \"batch_size\": 1, \"color\": 0}}, \"5\": {\"class_type\": "
                     "\"GetImageSize\", \"inputs\": {\"image\": [\"1\", 0]}}}";
    assert_true(sig(n, c, "2", NULL) != sig(n, d, "5", NULL));
    sim_nodes_destroy(n);
}

static void test_is_changed(void **state)
{
    (void)state;
    simt_require_transcripts();
    struct sim_nodes *n = registry();
    struct simt_fs fs;
    simt_fs_init(&fs);
    size_t len;
    uint8_t *png = simt_read_file("07_upload_inverted.png", &len);
    simt_fs_put(&fs, SIM_DIR_INPUT, "sub/in.png", png, len);
    json_t *p =
        parse("{\"1\": {\"class_type\": \"LoadImage\", \"inputs\": {\"image\": \"sub/in.png\"}}}");
    struct sim_graph g;
    uint64_t rng = 1;
    assert_int_equal(sim_graph_build(&g, n, p), 0);
    assert_int_equal(sim_graph_signatures(&g, &fs.fs, 1u << 20, &rng), 0);
    /* sha256 of the file, as LoadImage.IS_CHANGED, stored in the executed prompt */
    json_t *want =
        json_pack("[s]", "3ebfd654593573e18d66c4edc9546c11a621f55bc6a4552b7143a4fb5a8ba8e8");
    assert_true(simt_same_json(json_object_get(json_object_get(p, "1"), "is_changed"), want));
    uint64_t before = g.v[0].sig;
    sim_graph_free(&g);
    /* new bytes under the same name: a new cache key */
    png[len - 20] ^= 0xFF;
    simt_fs_put(&fs, SIM_DIR_INPUT, "sub/in.png", png, len);
    json_object_del(json_object_get(p, "1"), "is_changed");
    assert_int_equal(sim_graph_build(&g, n, p), 0);
    assert_int_equal(sim_graph_signatures(&g, &fs.fs, 1u << 20, &rng), 0);
    assert_true(g.v[0].sig != before);
    sim_graph_free(&g);
    json_decref(want);
    json_decref(p);
    free(png);
    simt_fs_free(&fs);
    sim_nodes_destroy(n);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_order),
        cmocka_unit_test(test_signatures),
        cmocka_unit_test(test_is_changed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
