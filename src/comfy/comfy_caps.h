/* comfy_caps — what one ComfyUI backend can run, learned from its /object_info, and whether a
 * graph needs anything it lacks (a node class, or a model file in a combo list).
 *
 * Model inputs are recognised by the backend's own definitions: a required/optional input
 * whose spec is a combo list (a JSON array of strings as element 0, or the newer
 * ["COMBO", {"options": [...]}] form) and whose name is one of ckpt_name, unet_name, vae_name,
 * lora_name, clip_name, clip_name1, clip_name2, control_net_name, model_name, style_model_name,
 * upscale_model (the file-picking inputs of the core loaders). A graph value for such an input
 * must be in the list. */
#ifndef COMFYGATE_COMFY_CAPS_H
#define COMFYGATE_COMFY_CAPS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

struct comfy_caps {
    json_t *object_info; /* owned: the backend's /object_info */
    size_t node_count;
};

/* Takes a reference to object_info (the parsed /object_info body). -EINVAL if not an object. */
int comfy_caps_set(struct comfy_caps *c, json_t *object_info);
/* Parses a /object_info body and sets it. Use this rather than json_loadb: every real
 * /object_info has KSampler's seed max 18446744073709551615, past jansson's json_int_t, so a
 * plain parse fails; this one retries with all numbers as doubles. -EINVAL if the body is not
 * a JSON object (c is then unchanged). */
int comfy_caps_load(struct comfy_caps *c, const char *body, size_t n);
void comfy_caps_clear(struct comfy_caps *c);
bool comfy_caps_has_class(const struct comfy_caps *c, const char *class_type);
/* True if this backend has every node class and model file the graph uses. If not, and why
 * is given, writes e.g. "node class FooNode is not installed" or
 * "model sdxl.safetensors (ckpt_name of node 4) is not installed". */
bool comfy_caps_supports(const struct comfy_caps *c, const json_t *graph, char *why, size_t len);
/* The model files listed for a folder-like input name (e.g. "ckpt_name" of
 * CheckpointLoaderSimple) as a borrowed JSON array, or NULL. */
const json_t *comfy_caps_models(const struct comfy_caps *c, const char *class_type,
                                const char *input);

#endif
