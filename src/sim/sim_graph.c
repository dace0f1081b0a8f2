/*
 * sim_graph — cache keys and execution order of a prompt graph (see sim_graph.h).
 */
#include "sim/sim_graph.h"

#include <bearssl.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "sim/sim_json.h"

#define FNV_BASIS 0xcbf29ce484222325ull

int sim_graph_build(struct sim_graph *g, const struct sim_nodes *nodes, json_t *prompt)
{
    memset(g, 0, sizeof(*g));
    size_t n = json_object_size(prompt);
    g->prompt = json_incref(prompt);
    g->v = calloc(n > 0 ? n : 1, sizeof(*g->v));
    g->order = calloc(n > 0 ? n : 1, sizeof(*g->order));
    if (g->v == NULL || g->order == NULL) {
        sim_graph_free(g);
        return -ENOMEM;
    }
    const char *id;
    json_t *node;
    json_object_foreach(prompt, id, node)
    {
        struct sim_graph_node *gn = &g->v[g->n++];
        gn->id = id;
        gn->node = node;
        gn->cls = sim_nodes_find(nodes, json_string_value(json_object_get(node, "class_type")));
    }
    return 0;
}

void sim_graph_free(struct sim_graph *g)
{
    for (size_t i = 0; g->v != NULL && i < g->n; i++)
        free(g->v[i].blocking);
    free(g->v);
    free(g->order);
    json_decref(g->prompt);
    memset(g, 0, sizeof(*g));
}

int sim_graph_find(const struct sim_graph *g, const char *id)
{
    for (size_t i = 0; i < g->n; i++) {
        if (strcmp(g->v[i].id, id) == 0)
            return (int)i;
    }
    return -1;
}

int sim_graph_link(const struct sim_graph *g, const json_t *value, int64_t *slot)
{
    /* graph_utils.is_link: [str, int|float]. */
    if (!json_is_array(value) || json_array_size(value) != 2 ||
        !json_is_string(json_array_get(value, 0)) || !json_is_number(json_array_get(value, 1)))
        return -1;
    *slot = (int64_t)json_number_value(json_array_get(value, 1));
    return sim_graph_find(g, json_string_value(json_array_get(value, 0)));
}

/* --- cache keys ------------------------------------------------------------------------ */

static uint64_t mix(uint64_t h, const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

static uint64_t mix_str(uint64_t h, const char *s)
{
    uint64_t n = strlen(s);
    return mix(mix(h, &n, sizeof(n)), s, n);
}

/* LoadImage.IS_CHANGED: sha256 of the file, hex. false when the file cannot be read. */
static bool file_sha256(const struct sim_fs *fs, const json_t *image, size_t max, char *hex)
{
    char rel[SIM_PATH_MAX];
    enum sim_dir dir;
    uint8_t *data = NULL, digest[32];
    size_t len = 0;
    if (!json_is_string(image) ||
        !sim_fs_annotated(json_string_value(image), &dir, rel, sizeof(rel)) || fs == NULL ||
        fs->ops == NULL || fs->ops->read(fs->ctx, dir, rel, max, &data, &len) != 0)
        return false;
    br_sha256_context ctx;
    br_sha256_init(&ctx);
    br_sha256_update(&ctx, data, len);
    br_sha256_out(&ctx, digest);
    free(data);
    for (int i = 0; i < 32; i++) {
        static const char digits[] = "0123456789abcdef";
        hex[2 * i] = digits[digest[i] >> 4];
        hex[2 * i + 1] = digits[digest[i] & 15];
    }
    hex[64] = 0;
    return true;
}

static int cmp_keys(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static uint64_t sig_of(struct sim_graph *g, int idx, int depth);

/* Inputs in sorted key order: widgets by value, links by the ancestor's key and slot. */
static uint64_t mix_inputs(struct sim_graph *g, json_t *inputs, uint64_t h, int depth)
{
    size_t n = json_object_size(inputs), k = 0;
    const char **keys = malloc((n > 0 ? n : 1) * sizeof(*keys));
    const char *key;
    json_t *val;
    if (keys == NULL)
        return mix(h, &depth, sizeof(depth));
    json_object_foreach(inputs, key, val) keys[k++] = key;
    qsort(keys, n, sizeof(*keys), cmp_keys);
    for (size_t i = 0; i < n; i++) {
        val = json_object_get(inputs, keys[i]);
        int64_t slot;
        int from = sim_graph_link(g, val, &slot);
        h = mix_str(h, keys[i]);
        if (from >= 0) {
            uint64_t anc[2] = {sig_of(g, from, depth + 1), (uint64_t)slot};
            h = mix(mix_str(h, "ANCESTOR"), anc, sizeof(anc));
            continue;
        }
        char *text = sim_json_dumps(val, 1u << 24);
        h = mix_str(h, text != NULL ? text : "");
        free(text);
    }
    free(keys);
    return h;
}

static uint64_t sig_of(struct sim_graph *g, int idx, int depth)
{
    struct sim_graph_node *gn = &g->v[idx];
    if (gn->sig_state == 2)
        return gn->sig;
    if (gn->sig_state == 1 || depth > 1000)
        return FNV_BASIS ^ (uint64_t)idx; /* cycle: never executed anyway */
    gn->sig_state = 1;
    uint64_t h = mix_str(FNV_BASIS, gn->cls != NULL ? gn->cls->name : "");
    json_t *changed = json_array_get(json_object_get(gn->node, "is_changed"), 0);
    if (json_is_string(changed))
        h = mix_str(h, json_string_value(changed));
    if (gn->cls != NULL && (gn->cls->flags & SIM_NODE_F_SIG_UNIQUE_ID))
        h = mix_str(h, gn->id);
    gn->sig = mix_inputs(g, json_object_get(gn->node, "inputs"), h, depth);
    gn->sig_state = 2;
    return gn->sig;
}

int sim_graph_signatures(struct sim_graph *g, const struct sim_fs *fs, size_t max_file_bytes,
                         uint64_t *rng)
{
    char hex[65];
    for (size_t i = 0; i < g->n; i++) {
        struct sim_graph_node *gn = &g->v[i];
        if (gn->cls == NULL || !(gn->cls->flags & SIM_NODE_F_FILE_INPUT))
            continue;
        json_t *image = json_object_get(json_object_get(gn->node, "inputs"), "image");
        if (file_sha256(fs, image, max_file_bytes, hex)) {
            if (json_object_set_new(gn->node, "is_changed", json_pack("[s]", hex)) != 0)
                return -ENOMEM;
        } else {
            /* IS_CHANGED raised: ComfyUI stores NaN, which never equals itself. */
            *rng = *rng * 6364136223846793005ull + 1442695040888963407ull;
            gn->sig_state = 2;
            gn->sig = *rng;
        }
    }
    for (size_t i = 0; i < g->n; i++)
        sig_of(g, (int)i, 0);
    return 0;
}

/* --- ExecutionList --------------------------------------------------------------------- */

static int add_blocking(struct sim_graph_node *from, int to)
{
    for (size_t i = 0; i < from->nblocking; i++) {
        if (from->blocking[i] == to)
            return 0; /* several sockets of one input node count once */
    }
    if (from->nblocking == from->cap) {
        size_t cap = from->cap > 0 ? from->cap * 2 : 4;
        int *p = realloc(from->blocking, cap * sizeof(*p));
        if (p == NULL)
            return -ENOMEM;
        from->blocking = p;
        from->cap = cap;
    }
    from->blocking[from->nblocking++] = to;
    return 1;
}

/* Upper bound on links: every input of every node. */
static size_t count_inputs(const struct sim_graph *g)
{
    size_t total = 0;
    for (size_t i = 0; i < g->n; i++)
        total += json_object_size(json_object_get(g->v[i].node, "inputs"));
    return total;
}

int sim_graph_add_output(struct sim_graph *g, int idx)
{
    size_t max_links = count_inputs(g), sp = 0, nl = 0;
    int *stack = malloc((max_links + 1) * sizeof(*stack));
    int *links = malloc((2 * max_links + 1) * sizeof(*links));
    int rc = (stack != NULL && links != NULL) ? 0 : -ENOMEM;
    if (rc == 0)
        stack[sp++] = idx;
    while (rc == 0 && sp > 0) {
        int u = stack[--sp];
        if (g->v[u].pending)
            continue;
        g->v[u].pending = true;
        g->order[g->norder++] = u;
        const char *key;
        json_t *val;
        json_object_foreach(json_object_get(g->v[u].node, "inputs"), key, val)
        {
            int64_t slot;
            int from = sim_graph_link(g, val, &slot);
            if (from < 0 || g->v[from].cached)
                continue;
            stack[sp++] = from;
            links[2 * nl] = from;
            links[2 * nl + 1] = u;
            nl++;
        }
    }
    for (size_t i = 0; rc == 0 && i < nl; i++) {
        int added = add_blocking(&g->v[links[2 * i]], links[2 * i + 1]);
        if (added < 0)
            rc = added;
        else if (added > 0)
            g->v[links[2 * i + 1]].block_count++;
    }
    free(stack);
    free(links);
    return rc;
}

static bool is_output(const struct sim_graph *g, int i)
{
    return g->v[i].cls != NULL && sim_node_is_output(g->v[i].cls);
}

static bool blocks_output(const struct sim_graph *g, int i, int depth)
{
    for (size_t k = 0; k < g->v[i].nblocking; k++) {
        int b = g->v[i].blocking[k];
        if (depth == 0 ? is_output(g, b) : blocks_output(g, b, depth - 1))
            return true;
    }
    return false;
}

int sim_graph_next(const struct sim_graph *g)
{
    int first = -1;
    bool any = false;
    for (size_t k = 0; k < g->norder; k++) {
        int i = g->order[k];
        any |= g->v[i].pending;
        if (!g->v[i].pending || g->v[i].block_count != 0)
            continue;
        if (first < 0)
            first = i;
        if (is_output(g, i))
            return i; /* ux_friendly_pick_node: outputs first */
    }
    if (first < 0)
        return any ? -2 : -1;
    /* then whatever unblocks an output, then what unblocks that */
    for (int depth = 0; depth < 2; depth++) {
        for (size_t k = 0; k < g->norder; k++) {
            int i = g->order[k];
            if (g->v[i].pending && g->v[i].block_count == 0 && blocks_output(g, i, depth))
                return i;
        }
    }
    return first;
}

void sim_graph_complete(struct sim_graph *g, int idx)
{
    struct sim_graph_node *gn = &g->v[idx];
    gn->pending = false;
    for (size_t k = 0; k < gn->nblocking; k++)
        g->v[gn->blocking[k]].block_count--;
    gn->nblocking = 0;
}
