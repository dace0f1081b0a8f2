/* comfy_caps — see comfy_caps.h. Owns one reference to the backend's /object_info tree and
 * nothing else; every query walks that tree and checks each type it meets, because
 * /object_info comes from the backend and its custom nodes, not from us. */
#include "comfy/comfy_caps.h"

#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* Bounds what goes into "why": names come from the client's graph. */
#define NAME_SHOWN 128

/* The file-picking inputs of the core loaders (see the header). */
static const char *const model_inputs[] = {
    "ckpt_name",  "unet_name",        "vae_name",      "lora_name",
    "clip_name",  "clip_name1",       "clip_name2",    "control_net_name",
    "model_name", "style_model_name", "upscale_model",
};

#define MODEL_INPUT_COUNT (sizeof model_inputs / sizeof model_inputs[0])

int comfy_caps_set(struct comfy_caps *c, json_t *object_info)
{
    assert(c);
    if (!json_is_object(object_info))
        return -EINVAL;
    json_incref(object_info); /* before clear: object_info may be the tree we already hold */
    comfy_caps_clear(c);
    c->object_info = object_info;
    c->node_count = json_object_size(object_info);
    return 0;
}

int comfy_caps_load(struct comfy_caps *c, const char *body, size_t n)
{
    assert(c);
    assert(body || n == 0);
    if (n == 0)
        return -EINVAL;
    json_error_t err;
    json_t *oi = json_loadb(body, n, 0, &err);
    /* Only numbers change: caps reads names and combo lists, never an input's min or max. */
    if (!oi && json_error_code(&err) == json_error_numeric_overflow)
        oi = json_loadb(body, n, JSON_DECODE_INT_AS_REAL, &err);
    int rc = comfy_caps_set(c, oi); /* -EINVAL for NULL too */
    json_decref(oi);
    return rc;
}

void comfy_caps_clear(struct comfy_caps *c)
{
    assert(c);
    json_decref(c->object_info);
    c->object_info = NULL;
    c->node_count = 0;
}

static const json_t *class_def(const struct comfy_caps *c, const char *class_type)
{
    const json_t *def = json_object_get(c->object_info, class_type);
    return json_is_object(def) ? def : NULL;
}

bool comfy_caps_has_class(const struct comfy_caps *c, const char *class_type)
{
    assert(c);
    return class_type && class_def(c, class_type) != NULL;
}

/* The option list of a combo input spec, in either form ComfyUI uses:
 *   [["a", "b"], {...}]                    (classic nodes)
 *   ["COMBO", {"options": ["a", "b"], ...}] (nodes on the v3 schema) */
static const json_t *combo_options(const json_t *spec)
{
    const json_t *first = json_array_get(spec, 0);
    if (json_is_array(first))
        return first;
    const char *kind = json_string_value(first);
    if (!kind || strcmp(kind, "COMBO") != 0)
        return NULL;
    const json_t *options = json_object_get(json_array_get(spec, 1), "options");
    return json_is_array(options) ? options : NULL;
}

static const json_t *input_spec(const json_t *def, const char *input)
{
    const json_t *sections = json_object_get(def, "input");
    const json_t *spec = json_object_get(json_object_get(sections, "required"), input);
    if (!spec)
        spec = json_object_get(json_object_get(sections, "optional"), input);
    return json_is_array(spec) ? spec : NULL;
}

const json_t *comfy_caps_models(const struct comfy_caps *c, const char *class_type,
                                const char *input)
{
    assert(c);
    if (!class_type || !input)
        return NULL;
    const json_t *def = class_def(c, class_type);
    return def ? combo_options(input_spec(def, input)) : NULL;
}

static bool list_has(const json_t *list, const char *value)
{
    size_t i;
    const json_t *item;
    json_array_foreach(list, i, item)
    {
        const char *s = json_string_value(item);
        if (s && strcmp(s, value) == 0)
            return true;
    }
    return false;
}

static void set_why(char *why, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_why(char *why, size_t len, const char *fmt, ...)
{
    if (!why || len == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, len, fmt, ap);
    va_end(ap);
}

/* Every model input of one node names a file the backend lists. Inputs the backend's
 * definition does not describe as a combo (links, custom nodes with other specs) are not ours
 * to judge: ComfyUI validates them itself. */
static bool node_models_present(const json_t *def, const char *id, const json_t *inputs, char *why,
                                size_t len)
{
    for (size_t i = 0; i < MODEL_INPUT_COUNT; i++) {
        const char *value = json_string_value(json_object_get(inputs, model_inputs[i]));
        if (!value)
            continue;
        const json_t *options = combo_options(input_spec(def, model_inputs[i]));
        if (options && !list_has(options, value)) {
            set_why(why, len, "model %.*s (%s of node %.*s) is not installed", NAME_SHOWN, value,
                    model_inputs[i], NAME_SHOWN, id);
            return false;
        }
    }
    return true;
}

bool comfy_caps_supports(const struct comfy_caps *c, const json_t *graph, char *why, size_t len)
{
    assert(c);
    if (!c->object_info) {
        set_why(why, len, "backend capabilities are not known yet");
        return false;
    }
    if (!json_is_object(graph)) {
        set_why(why, len, "graph is not an object");
        return false;
    }
    const char *id;
    json_t *node;
    /* jansson iterates through a non-const pointer; nothing here writes. */
    json_object_foreach((json_t *)graph, id, node)
    {
        const char *class_type = json_string_value(json_object_get(node, "class_type"));
        if (!class_type) {
            set_why(why, len, "node %.*s has no class_type", NAME_SHOWN, id);
            return false;
        }
        const json_t *def = class_def(c, class_type);
        if (!def) {
            set_why(why, len, "node class %.*s is not installed", NAME_SHOWN, class_type);
            return false;
        }
        if (!node_models_present(def, id, json_object_get(node, "inputs"), why, len))
            return false;
    }
    return true;
}
