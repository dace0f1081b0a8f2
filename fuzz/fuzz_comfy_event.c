/* fuzz_comfy_event — libFuzzer harness for the pure ComfyUI JSON modules. Every input goes to
 * comfy_event_parse (a WebSocket text message from a backend); an input that is JSON is also
 * taken as a client graph (comfy_graph_*) and as a backend's /object_info (comfy_caps_*).
 * Besides crashes and sanitizer reports it checks the invariants callers rely on: fixed-size
 * fields always terminated, node_null only on "executing" with an empty node, and a graph that
 * passed comfy_graph_check still passing after comfy_graph_set_prefix.
 * Seed corpus: fuzz/corpus/comfy_event/ (every distinct message shape of the recorded ComfyUI
 * transcripts, plus malformed ones, graphs and an /object_info). */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"
#include "comfy/comfy_caps.h"
#include "comfy/comfy_event.h"
#include "comfy/comfy_graph.h"

/* Definitions shaped like a real backend's, in both combo forms; built once (a harness may keep
 * read-only state across inputs). */
static const char known_object_info[] =
    "{\"EmptyImage\": {\"input\": {\"required\": {\"width\": [\"INT\", {}]}}},"
    " \"SaveImage\": {\"input\": {\"required\": {\"images\": [\"IMAGE\"],"
    "   \"filename_prefix\": [\"STRING\", {}]}}},"
    " \"CheckpointLoaderSimple\": {\"input\": {\"required\": {\"ckpt_name\":"
    "   [[\"sd_xl_base_1.0.safetensors\"], {}]}}},"
    " \"UNETLoader\": {\"input\": {\"required\": {\"unet_name\": [\"COMBO\","
    "   {\"options\": [\"flux1-dev.safetensors\"]}]}}},"
    " \"KSampler\": {\"input\": {\"required\": {\"seed\": [\"INT\","
    "   {\"max\": 18446744073709551615}]}}}}";

static const struct comfy_caps *known_caps(void)
{
    static struct comfy_caps caps;
    static int loaded;
    if (!loaded) {
        CHECK(comfy_caps_load(&caps, known_object_info, sizeof known_object_info - 1) == 0);
        loaded = 1;
    }
    return &caps;
}

static void fuzz_event(const uint8_t *data, size_t size)
{
    struct comfy_event ev;
    if (comfy_event_parse((const char *)data, size, &ev) != 0) {
        CHECK(ev.root == NULL);
        return;
    }
    CHECK(ev.root != NULL);
    CHECK(memchr(ev.type_name, '\0', sizeof ev.type_name));
    CHECK(memchr(ev.prompt_id, '\0', sizeof ev.prompt_id));
    CHECK(memchr(ev.node, '\0', sizeof ev.node));
    CHECK(memchr(ev.sid, '\0', sizeof ev.sid));
    CHECK(memchr(ev.node_type, '\0', sizeof ev.node_type));
    CHECK(memchr(ev.exception_type, '\0', sizeof ev.exception_type));
    CHECK(memchr(ev.exception_message, '\0', sizeof ev.exception_message));
    CHECK(!ev.node_null || (ev.type == CEV_EXECUTING && ev.node[0] == '\0'));
    CHECK(ev.queue_remaining >= -1);
    CHECK(comfy_event_type_name(ev.type) != NULL);
    /* the copies must stay valid UTF-8: they are put back into JSON */
    json_t *s = json_string(ev.exception_message);
    CHECK(s != NULL);
    json_decref(s);
    comfy_event_free(&ev);
}

static int count_cb(const char *id, const char *class_type, json_t *inputs, void *ud)
{
    CHECK(id && class_type && (!inputs || json_is_object(inputs)));
    return ++*(int *)ud >= 1000 ? 1 : 0;
}

static void fuzz_graph(json_t *graph)
{
    static const char *const outputs[] = {"SaveImage", "PreviewImage", NULL};
    char err[128], why[128];
    int n = 0;
    int checked = comfy_graph_check(graph, 256, err, sizeof err);
    (void)comfy_graph_checkpoint(graph);
    (void)comfy_graph_each(graph, count_cb, &n);
    json_decref(comfy_graph_outputs(graph, outputs));
    (void)comfy_caps_supports(known_caps(), graph, why, sizeof why);
    int rewritten = comfy_graph_set_prefix(graph, "job-1");
    CHECK(rewritten >= 0);
    if (checked == 0)
        CHECK(comfy_graph_check(graph, 256, err, sizeof err) == 0);
}

static void fuzz_object_info(const uint8_t *data, size_t size, json_t *graph)
{
    struct comfy_caps caps = {0};
    char why[128];
    if (comfy_caps_load(&caps, (const char *)data, size) != 0)
        return;
    (void)comfy_caps_supports(&caps, graph, why, sizeof why);
    const char *first = json_object_iter_key(json_object_iter(caps.object_info));
    if (first) {
        (void)comfy_caps_has_class(&caps, first);
        (void)comfy_caps_models(&caps, first, "ckpt_name");
        (void)comfy_caps_models(&caps, first, "unet_name");
    }
    comfy_caps_clear(&caps);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_event(data, size);
    json_t *root = json_loadb((const char *)data, size, JSON_DECODE_ANY, NULL);
    if (!root)
        return 0;
    /* object_info first: fuzz_graph rewrites the tree */
    fuzz_object_info(data, size, root);
    fuzz_graph(root);
    json_decref(root);
    return 0;
}
