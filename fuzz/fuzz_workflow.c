/* fuzz_workflow — libFuzzer harness for the JSON bodies that define and run workflows: a POST
 * /workflows document (workflow_parse: id, graph, schema, overlays, placeholders, hash) and a
 * POST /jobs body run against it (webhook_filter_parse on webhookEvents, then workflow_render
 * on inputs, as engine_submit does).
 *
 * Input: the workflow document, optionally followed by a NUL and the job body (raw NULs cannot
 * occur inside JSON text). Both are read as the API reads bodies (duplicate keys refused). A
 * document that does not parse as a workflow is replaced by a fixed one shaped like the bundled
 * icon_512 (a seed, a boolean overlay, defaults), so job bodies are explored either way.
 *
 * Besides crashes and sanitizer reports it checks what callers rely on: a refusal carries a
 * message; an accepted workflow has a valid id, a hex hash, every placeholder declared, an API
 * view (workflow_to_json) whenever its texts are within the API's limits, and the same hash when
 * its own view is parsed again; a filter is a known mask that survives its JSON round trip; a
 * render returns a graph and its final inputs, or errors, never both, and a graph within the
 * limits. Seed corpus: fuzz/corpus/workflow/ (the bundled workflows, job bodies, edge cases). */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"
#include "jobs/workflow.h"
#include "webhook/webhook_event.h"

static const char fixed_doc[] =
    "{\"id\": \"fixed\", \"template\": {"
    " \"4\": {\"class_type\": \"CheckpointLoaderSimple\", \"inputs\": {\"ckpt_name\": "
    "  \"{{checkpoint}}\"}},"
    " \"5\": {\"class_type\": \"EmptyLatentImage\", \"inputs\": {\"width\": \"{{width}}\","
    "  \"height\": 512, \"batch_size\": \"{{batch_size}}\"}},"
    " \"6\": {\"class_type\": \"CLIPTextEncode\", \"inputs\": {\"text\": \"{{prompt}}, icon\","
    "  \"clip\": [\"4\", 1]}},"
    " \"3\": {\"class_type\": \"KSampler\", \"inputs\": {\"seed\": \"{{seed}}\", \"model\":"
    "  [\"4\", 0], \"positive\": [\"6\", 0], \"latent_image\": [\"5\", 0]}},"
    " \"9\": {\"class_type\": \"SaveImage\", \"inputs\": {\"images\": [\"3\", 0]}}},"
    "\"overlays\": [{\"when\": \"upscale\", \"template\": {"
    " \"20\": {\"class_type\": \"UpscaleModelLoader\", \"inputs\": {\"model_name\": "
    "  \"{{upscale_model}}\"}}}}],"
    "\"schema\": {\"type\": \"object\", \"additionalProperties\": false, \"required\": "
    " [\"prompt\"], \"properties\": {"
    " \"prompt\": {\"type\": \"string\", \"minLength\": 1, \"maxLength\": 200},"
    " \"checkpoint\": {\"type\": \"string\", \"default\": \"a.safetensors\", \"pattern\":"
    "  \"^[A-Za-z0-9._-]+\\\\.safetensors$\"},"
    " \"width\": {\"type\": \"integer\", \"minimum\": 64, \"maximum\": 4096, \"default\": 512},"
    " \"batch_size\": {\"type\": \"integer\", \"minimum\": 1, \"maximum\": 16, \"default\": 1},"
    " \"upscale\": {\"type\": \"boolean\", \"default\": false},"
    " \"upscale_model\": {\"type\": \"string\", \"enum\": [\"x2.pth\", \"x4.pth\"],"
    "  \"default\": \"x2.pth\"},"
    " \"seed\": {\"type\": \"integer\", \"minimum\": 0, \"maximum\": 9007199254740991}}}}";

static const struct workflow_limits limits = {
    .max_nodes = 64, .max_image_size = 2048, .max_batch_size = 8};

static void check_msg(const char *err, size_t cap)
{
    CHECK(memchr(err, '\0', cap) && err[0] != '\0');
}

static bool id_valid(const char *id)
{
    size_t n = strlen(id);
    if (n == 0 || n > 64 || !strcmp(id, ".") || !strcmp(id, ".."))
        return false;
    return strspn(id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") == n;
}

/* The API refuses longer texts before workflow_parse (api_workflows.c check_body). */
static bool texts_within_api_limits(const json_t *doc, const struct workflow *w)
{
    const json_t *name = json_object_get(doc, "name");
    const json_t *desc = json_object_get(doc, "description");
    return (!name || json_string_length(name) < sizeof(w->name)) &&
           (!desc || json_string_length(desc) < sizeof(w->description));
}

/* The workflow's own view, parsed again, is the same workflow. */
static void check_round_trip(const struct workflow *w, const json_t *view)
{
    json_t *doc =
        json_pack("{s:s, s:O, s:O}", "id", w->id, "template", json_object_get(view, "template"),
                  "schema", json_object_get(view, "schema"));
    CHECK(doc);
    if (w->overlays)
        json_object_set(doc, "overlays", w->overlays);
    struct workflow again;
    char err[320];
    CHECK(workflow_parse(doc, NULL, &again, err, sizeof(err)) == 0);
    CHECK(strcmp(again.hash, w->hash) == 0);
    CHECK(json_equal(again.placeholders, w->placeholders));
    workflow_free(&again);
    json_decref(doc);
}

static bool parse_workflow(const json_t *doc, struct workflow *w)
{
    char err[320];
    /* an id from the path (PUT /workflows/:id) when the body has none */
    const char *path_id = json_object_get(doc, "id") ? NULL : "from-path";
    if (workflow_parse(doc, path_id, w, err, sizeof(err)) < 0) {
        check_msg(err, sizeof(err));
        workflow_free(w);
        return false;
    }
    CHECK(id_valid(w->id));
    CHECK(strlen(w->hash) == 64 && strspn(w->hash, "0123456789abcdef") == 64);
    CHECK(memchr(w->name, '\0', sizeof(w->name)) &&
          memchr(w->description, '\0', sizeof(w->description)));
    CHECK(json_is_object(w->tmpl) && json_is_object(w->schema) && json_is_array(w->placeholders));
    const json_t *props = json_object_get(w->schema, "properties");
    size_t i;
    const json_t *name;
    json_array_foreach(w->placeholders, i, name)
    {
        CHECK(json_object_get(props, json_string_value(name)));
    }
    if (texts_within_api_limits(doc, w)) {
        json_t *view = workflow_to_json(w, true);
        CHECK(view);
        check_round_trip(w, view);
        json_decref(view);
    }
    return true;
}

static void check_filter(const json_t *events)
{
    unsigned mask = 0;
    char err[400];
    if (webhook_filter_parse(events, &mask, err, sizeof(err)) < 0) {
        check_msg(err, sizeof(err));
        return;
    }
    CHECK((mask & ~0x1fu) == 0);
    CHECK(events || mask == WEBHOOK_F_DEFAULT);
    json_t *back = webhook_filter_json(mask);
    unsigned again = 0;
    CHECK(webhook_filter_parse(back, &again, err, sizeof(err)) == 0 && again == mask);
    json_decref(back);
}

static void check_errors(const json_t *errors)
{
    CHECK(json_is_array(errors) && json_array_size(errors) > 0);
    size_t i;
    const json_t *e;
    json_array_foreach(errors, i, e)
    {
        CHECK(json_is_string(json_object_get(e, "path")) &&
              json_is_string(json_object_get(e, "message")));
    }
}

/* engine_submit: inputs absent → {}; then the render and its limits. */
static void check_render(const struct workflow *w, const json_t *body)
{
    const json_t *inputs = json_object_get(body, "inputs");
    json_t *empty = inputs ? NULL : json_object();
    json_t *final_inputs = NULL, *errors = NULL;
    json_t *g = workflow_render(w, inputs ? inputs : empty, &limits, &final_inputs, &errors);
    json_decref(empty);
    if (!g) {
        CHECK(!final_inputs);
        check_errors(errors);
        json_decref(errors);
        return;
    }
    CHECK(!errors && json_is_object(g) && json_is_object(final_inputs));
    json_t *more = json_array();
    CHECK(workflow_check_limits(g, &limits, more) == 0);
    json_decref(more);
    json_decref(g);
    json_decref(final_inputs);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct workflow fixed;
    static bool ready;
    if (!ready) {
        json_t *doc = json_loads(fixed_doc, 0, NULL);
        CHECK(doc && parse_workflow(doc, &fixed));
        json_decref(doc);
        ready = true;
    }
    const uint8_t *nul = memchr(data, '\0', size);
    size_t wlen = nul ? (size_t)(nul - data) : size;
    json_t *doc = json_loadb((const char *)data, wlen, JSON_REJECT_DUPLICATES, NULL);
    struct workflow w;
    bool own = doc && parse_workflow(doc, &w);
    json_decref(doc);
    json_t *body = NULL;
    if (nul)
        body = json_loadb((const char *)nul + 1, size - wlen - 1, JSON_REJECT_DUPLICATES, NULL);
    if (json_is_object(body)) {
        check_filter(json_object_get(body, "webhookEvents"));
        check_render(own ? &w : &fixed, body);
    } else if (body) {
        check_filter(body); /* any JSON value as webhookEvents */
    } else if (!nul && own) {
        check_render(&w, NULL); /* a job with no inputs: the defaults alone */
    }
    json_decref(body);
    if (own)
        workflow_free(&w);
    return 0;
}
