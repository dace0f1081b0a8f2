/*
 * sim_graph — the prompt graph as ComfyUI's executor sees it.
 *
 * Two pieces of comfy_execution live here: the cache keys (CacheKeySetInputSignature: class,
 * IS_CHANGED, widget values and ancestors — LoadImage's IS_CHANGED being the SHA-256 of its
 * file, which is also written into the prompt as "is_changed" like the real DynamicPrompt)
 * and the ExecutionList (TopologicalSort.add_node plus ux_friendly_pick_node), whose choices
 * fix the order nodes run in and therefore the order of WebSocket messages.
 */
#ifndef SIM_GRAPH_H
#define SIM_GRAPH_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sim/sim_fs.h"
#include "sim/sim_nodes.h"

struct sim_graph_node {
    const char *id; /* key in the prompt */
    json_t *node;   /* the prompt entry (borrowed from sim_graph.prompt) */
    const struct sim_node_class *cls;
    uint64_t sig;  /* cache key */
    int sig_state; /* 0 not computed, 1 in progress (cycle guard), 2 done */
    bool cached;   /* sig is in the output cache: not scheduled unless an output */
    bool pending;  /* in the ExecutionList */
    int block_count;
    int *blocking; /* nodes waiting for this one, in insertion order */
    size_t nblocking, cap;
};

struct sim_graph {
    json_t *prompt; /* the copy being executed (owned) */
    struct sim_graph_node *v;
    size_t n;
    int *order; /* pendingNodes insertion order */
    size_t norder;
};

/* Indexes a (validated) prompt; takes a reference on it. Returns 0 or -ENOMEM. */
int sim_graph_build(struct sim_graph *g, const struct sim_nodes *nodes, json_t *prompt);
void sim_graph_free(struct sim_graph *g);
/* Index of node id, or -1. */
int sim_graph_find(const struct sim_graph *g, const char *id);
/* The node index a linked input points to (and its slot), or -1 for widget values. */
int sim_graph_link(const struct sim_graph *g, const json_t *value, int64_t *slot);
/* Computes every node's cache key; rng feeds keys that must never match (unreadable files). */
int sim_graph_signatures(struct sim_graph *g, const struct sim_fs *fs, size_t max_file_bytes,
                         uint64_t *rng);
/* ExecutionList.add_node(output): schedules it and its uncached ancestors. */
int sim_graph_add_output(struct sim_graph *g, int idx);
/* stage_node_execution(): -1 when nothing is left, -2 on a dependency cycle. */
int sim_graph_next(const struct sim_graph *g);
/* complete_node_execution(): unblocks the node's dependents. */
void sim_graph_complete(struct sim_graph *g, int idx);

#endif
