/* comfy_graph — see comfy_graph.h. Stateless; owns nothing. Graphs come from clients, so every
 * lookup checks the type it gets before using it. */
#include "comfy/comfy_graph.h"

#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* jansson's iteration API takes a non-const json_t even to read; these functions only read. */
#define GRAPH_MUT(g) ((json_t *)(g))

/* A node id goes into a file path (set_prefix) and into error text: ids longer than this are
 * cut, which keeps messages and paths bounded whatever the client sent. */
#define ID_SHOWN 64

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* In ComfyUI's API format any list input is a link (execution.py treats every list as
 * [node id, output index]), so each one must be well formed and name a node of the graph. */
static int check_link(const json_t *graph, const char *id, const char *name, const json_t *v,
                      char *err, size_t errlen)
{
    const json_t *from = json_array_get(v, 0);
    const json_t *index = json_array_get(v, 1);
    if (json_array_size(v) != 2 || !json_is_string(from)) {
        set_err(err, errlen, "node %.*s input %.*s: a link must be [\"<node id>\", <index>]",
                ID_SHOWN, id, ID_SHOWN, name);
        return -1;
    }
    if (!json_is_integer(index) || json_integer_value(index) < 0) {
        set_err(err, errlen, "node %.*s input %.*s: link index must be a non-negative integer",
                ID_SHOWN, id, ID_SHOWN, name);
        return -1;
    }
    if (!json_object_get(graph, json_string_value(from))) {
        set_err(err, errlen, "node %.*s input %.*s: links to missing node %.*s", ID_SHOWN, id,
                ID_SHOWN, name, ID_SHOWN, json_string_value(from));
        return -1;
    }
    return 0;
}

static int check_node(const json_t *graph, const char *id, const json_t *node, char *err,
                      size_t errlen)
{
    if (!json_is_object(node)) {
        set_err(err, errlen, "node %.*s is not an object", ID_SHOWN, id);
        return -1;
    }
    const json_t *class_type = json_object_get(node, "class_type");
    if (!json_is_string(class_type) || json_string_length(class_type) == 0) {
        set_err(err, errlen, "node %.*s has no class_type string", ID_SHOWN, id);
        return -1;
    }
    const json_t *inputs = json_object_get(node, "inputs");
    if (!inputs)
        return 0;
    if (!json_is_object(inputs)) {
        set_err(err, errlen, "node %.*s: inputs is not an object", ID_SHOWN, id);
        return -1;
    }
    const char *name;
    json_t *v;
    json_object_foreach(GRAPH_MUT(inputs), name, v)
    {
        if (json_is_array(v) && check_link(graph, id, name, v, err, errlen) < 0)
            return -1;
    }
    return 0;
}

/* ComfyUI runs a node after the nodes it links to, so a cycle can never run: it would only be
 * refused by the backend after the job was stored. Kahn's algorithm over the links (checked
 * already: each names a node of the graph). -1 with a node of the cycle named, -ENOMEM. */
static int check_acyclic(const json_t *graph, size_t n, char *err, size_t errlen)
{
    json_t *pos = json_object();
    const char **ids = calloc(n, sizeof(*ids));
    size_t *indeg = calloc(n, sizeof(*indeg)), *off = calloc(n + 1, sizeof(*off));
    size_t *edges = NULL, *queue = calloc(n, sizeof(*queue)), ne = 0, i = 0, done = 0;
    int rc = -ENOMEM;
    const char *id, *name;
    json_t *node, *v;
    if (!pos || !ids || !indeg || !off || !queue)
        goto out;
    json_object_foreach(GRAPH_MUT(graph), id, node)
    {
        json_object_set_new(pos, id, json_integer((json_int_t)i));
        ids[i++] = id;
    }
    /* off[d]..off[d+1]: the nodes that link to node d (d must run before each of them) */
    for (i = 0; i < n; i++) {
        json_object_foreach(json_object_get(json_object_get(graph, ids[i]), "inputs"), name, v)
        {
            if (json_is_array(v)) {
                const char *from = json_string_value(json_array_get(v, 0));
                off[json_integer_value(json_object_get(pos, from)) + 1]++;
                indeg[i]++;
                ne++;
            }
        }
    }
    for (i = 0; i < n; i++)
        off[i + 1] += off[i];
    edges = malloc((ne ? ne : 1) * sizeof(*edges));
    size_t *fill = calloc(n, sizeof(*fill));
    if (!edges || !fill) {
        free(fill);
        goto out;
    }
    for (i = 0; i < n; i++) {
        json_object_foreach(json_object_get(json_object_get(graph, ids[i]), "inputs"), name, v)
        {
            if (json_is_array(v)) {
                size_t d = (size_t)json_integer_value(
                    json_object_get(pos, json_string_value(json_array_get(v, 0))));
                edges[off[d] + fill[d]++] = i;
            }
        }
    }
    free(fill);
    size_t head = 0, tail = 0;
    for (i = 0; i < n; i++) {
        if (!indeg[i])
            queue[tail++] = i;
    }
    while (head < tail) {
        size_t d = queue[head++];
        done++;
        for (size_t e = off[d]; e < off[d + 1]; e++) {
            if (--indeg[edges[e]] == 0)
                queue[tail++] = edges[e];
        }
    }
    rc = 0;
    for (i = 0; i < n && done < n; i++) {
        if (indeg[i]) { /* waits on a node that never runs: in a cycle, or after one */
            set_err(err, errlen, "node %.*s: its links form a cycle (or follow one)", ID_SHOWN,
                    ids[i]);
            rc = -1;
            break;
        }
    }
out:
    json_decref(pos);
    free(ids);
    free(indeg);
    free(off);
    free(edges);
    free(queue);
    if (rc == -ENOMEM)
        set_err(err, errlen, "out of memory");
    return rc;
}

int comfy_graph_check(const json_t *graph, size_t max_nodes, char *err, size_t errlen)
{
    if (!json_is_object(graph)) {
        set_err(err, errlen, "graph is not an object");
        return -1;
    }
    size_t n = json_object_size(graph);
    if (n == 0) {
        set_err(err, errlen, "graph has no nodes");
        return -1;
    }
    if (n > max_nodes) {
        set_err(err, errlen, "graph has %zu nodes, more than the limit of %zu", n, max_nodes);
        return -1;
    }
    const char *id;
    json_t *node;
    json_object_foreach(GRAPH_MUT(graph), id, node)
    {
        if (check_node(graph, id, node, err, errlen) < 0)
            return -1;
    }
    return check_acyclic(graph, n, err, errlen) < 0 ? -1 : 0;
}

/* The node id becomes a path component: ComfyUI expands %...% in filename_prefix and treats
 * '/' as a subfolder, so anything outside a plain set is replaced ('.' included, which rules
 * out ".."). Real ids ("12", "5:3" inside subgraphs) pass unchanged. */
static void id_component(char *dst, size_t cap, const char *id)
{
    size_t n = 0;
    for (; id[n] && n + 1 < cap; n++) {
        char c = id[n];
        bool ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                  c == '-' || c == '_' || c == ':';
        dst[n] = ok ? c : '_';
    }
    dst[n] = '\0';
}

int comfy_graph_set_prefix(json_t *graph, const char *prefix)
{
    assert(prefix);
    if (!json_is_object(graph))
        return 0;
    int count = 0;
    const char *id;
    json_t *node;
    json_object_foreach(graph, id, node)
    {
        json_t *inputs = json_object_get(node, "inputs");
        const char *cls = json_string_value(json_object_get(node, "class_type"));
        /* core save nodes get one even when the graph left it out (ComfyUI requires it) */
        bool saver = cls && (!strcmp(cls, "SaveImage") || !strcmp(cls, "SaveAnimatedWEBP") ||
                             !strcmp(cls, "SaveAnimatedPNG") || !strcmp(cls, "SaveVideo") ||
                             !strcmp(cls, "SaveWEBM") || !strcmp(cls, "SaveAudio"));
        if (!json_is_object(inputs) || (!saver && !json_object_get(inputs, "filename_prefix")))
            continue;
        char comp[ID_SHOWN + 1];
        id_component(comp, sizeof comp, id);
        json_t *value = json_sprintf("%s/%s", prefix, comp);
        if (!value || json_object_set_new(inputs, "filename_prefix", value) < 0)
            return -ENOMEM; /* a half-rewritten graph must not be sent: the caller fails */
        count++;
    }
    return count;
}

/* A string input of one node, or NULL (absent, a link, or another type). */
static const char *string_input(const json_t *node, const char *name)
{
    return json_string_value(json_object_get(json_object_get(node, "inputs"), name));
}

static const char *first_input(const json_t *graph, const char *name, const char *class_part)
{
    const char *id;
    json_t *node;
    json_object_foreach(GRAPH_MUT(graph), id, node)
    {
        const char *class_type = json_string_value(json_object_get(node, "class_type"));
        const char *v = string_input(node, name);
        if (!v || !class_type)
            continue;
        if (!class_part || strstr(class_type, class_part))
            return v;
    }
    return NULL;
}

const char *comfy_graph_checkpoint(const json_t *graph)
{
    if (!json_is_object(graph))
        return NULL;
    /* In order of how surely the input names the main model: ckpt_name always does, unet_name
     * does for split-model graphs, model_name only on a loader (elsewhere it is anything). */
    const char *v = first_input(graph, "ckpt_name", NULL);
    if (!v)
        v = first_input(graph, "unet_name", NULL);
    if (!v)
        v = first_input(graph, "model_name", "Loader");
    return v;
}

int comfy_graph_each(const json_t *graph,
                     int (*fn)(const char *id, const char *class_type, json_t *inputs, void *ud),
                     void *ud)
{
    assert(fn);
    if (!json_is_object(graph))
        return 0;
    const char *id;
    json_t *node;
    json_object_foreach(GRAPH_MUT(graph), id, node)
    {
        const char *class_type = json_string_value(json_object_get(node, "class_type"));
        if (!class_type)
            continue;
        json_t *inputs = json_object_get(node, "inputs");
        int rc = fn(id, class_type, json_is_object(inputs) ? inputs : NULL, ud);
        if (rc != 0)
            return rc;
    }
    return 0;
}

static bool in_set(const char *s, const char *const *set)
{
    for (size_t i = 0; set && set[i]; i++) {
        if (strcmp(s, set[i]) == 0)
            return true;
    }
    return false;
}

json_t *comfy_graph_outputs(const json_t *graph, const char *const *output_classes)
{
    json_t *out = json_array();
    if (!out || !json_is_object(graph))
        return out;
    const char *id;
    json_t *node;
    json_object_foreach(GRAPH_MUT(graph), id, node)
    {
        const char *class_type = json_string_value(json_object_get(node, "class_type"));
        if (!class_type || !in_set(class_type, output_classes))
            continue;
        if (json_array_append_new(out, json_string(id)) < 0) {
            json_decref(out);
            return NULL;
        }
    }
    return out;
}
