/* comfy_graph — inspection and safe rewriting of ComfyUI API-format graphs
 * ({"<node id>": {"class_type": "...", "inputs": {...}}, ...}).
 *
 * Pure functions over jansson trees; they never trust the graph's shape (a node that is not an
 * object, inputs that are not an object, etc. are reported, not crashed on). */
#ifndef COMFYGATE_COMFY_GRAPH_H
#define COMFYGATE_COMFY_GRAPH_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* Checks the basic shape: a non-empty object of at most max_nodes nodes, each an object with
 * a string class_type and an object "inputs" (missing inputs is allowed: treated as {}), links
 * being [<string node id>, <non-negative int>] that name existing nodes, and no cycle through
 * the links. On failure writes a human message to err and returns -1. */
int comfy_graph_check(const json_t *graph, size_t max_nodes, char *err, size_t errlen);

/* Sets "filename_prefix" of every node that has a filename_prefix input, and of every core save
 * node (SaveImage, SaveAnimatedWEBP, SaveAnimatedPNG, SaveVideo, SaveWEBM, SaveAudio) even
 * without one, to "<prefix>/<node id>"
 * (ComfyUI puts a '/' prefix into a subfolder), so outputs are unique per job and traceable to
 * their node. A linked or non-string filename_prefix is replaced too, so a client cannot pick
 * the output path through another node. In the id, characters other than [A-Za-z0-9_:-] become
 * '_' and it is cut at 64 bytes (no "..", '/' or %...% from the client). Returns the number of
 * nodes rewritten, or -ENOMEM (the graph may then be partly rewritten: do not send it). */
int comfy_graph_set_prefix(json_t *graph, const char *prefix);

/* The first checkpoint-like model the graph loads (ckpt_name, unet_name, then model_name of
 * a loader), for model affinity; NULL if none. Borrowed string. */
const char *comfy_graph_checkpoint(const json_t *graph);

/* Calls fn for every node: id, class_type, inputs object (NULL when missing or not an object).
 * Nodes without a string class_type are skipped (comfy_graph_check reports them). Stops early
 * if fn returns non-zero and returns that value. */
int comfy_graph_each(const json_t *graph,
                     int (*fn)(const char *id, const char *class_type, json_t *inputs, void *ud),
                     void *ud);

/* Node ids whose class is an output node (SaveImage, PreviewImage, ...): by the set given
 * (NULL-terminated class names), as a JSON array of strings (new reference; NULL only when
 * out of memory). */
json_t *comfy_graph_outputs(const json_t *graph, const char *const *output_classes);

#endif
