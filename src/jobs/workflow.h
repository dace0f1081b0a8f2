/* workflow — workflow templates: a ComfyUI API-format graph with {{placeholders}}, the input
 * schema that every placeholder must be declared in, and optional overlays (node sets merged
 * over the template when a boolean input is true, e.g. icon_512's 2x upscale).
 *
 * A workflow id has versions 1, 2, ...; an update makes a new version and a job pins the
 * version and content hash (SHA-256 of the canonical template, schema and overlays) it was
 * rendered from. The set lives on the dispatcher reactor; the store keeps every version. */
#ifndef COMFYGATE_WORKFLOW_H
#define COMFYGATE_WORKFLOW_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct workflow {
    char id[96];
    int version;
    char hash[65];
    char name[256];
    char description[1024];
    json_t *tmpl;         /* owned */
    json_t *schema;       /* owned */
    json_t *overlays;     /* owned; array of {"when": input, "template": {...}} or NULL */
    json_t *placeholders; /* owned; names used in template and overlays */
    char created_by[128];
    int64_t created_ms;
    bool bundled;
    bool deleted;
};

struct workflow_set {
    struct workflow **items; /* every version of every id */
    size_t n, cap;
    size_t max; /* bound on stored versions */
};

struct workflow_limits {
    size_t max_nodes;
    uint64_t max_image_size; /* width/height inputs of any node */
    uint64_t max_batch_size; /* batch_size inputs of any node */
};

/* Builds w from a document {id?, name?, description?, template, schema, overlays?}; id (if
 * not NULL) wins over the document's. Checks the id ([A-Za-z0-9_.-]{1,64}), the graph shape,
 * the schema subset, and that every placeholder is a schema property. err gets a message. */
int workflow_parse(const json_t *doc, const char *id, struct workflow *w, char *err, size_t len);
void workflow_free(struct workflow *w);

void workflow_set_init(struct workflow_set *s, size_t max);
void workflow_set_free(struct workflow_set *s);
/* Adds w (taken over) as the next version of its id; returns the version or -ENOSPC. If
 * keep_version is set, w->version is kept (loading from the store). */
int workflow_set_add(struct workflow_set *s, struct workflow *w, bool keep_version);
/* The version of id numbered version, deleted or not; NULL if there is none. */
struct workflow *workflow_set_find(const struct workflow_set *s, const char *id, int version);
/* version 0: the latest version that is not deleted. */
const struct workflow *workflow_set_get(const struct workflow_set *s, const char *id, int version);
/* Marks every version of id deleted; returns how many, 0 if none. */
int workflow_set_delete(struct workflow_set *s, const char *id);
/* Loads every *.json file of dir as a bundled workflow. */
int workflow_set_load_dir(struct workflow_set *s, const char *dir, char *err, size_t len);

/* The API view: id, version, hash, name, description, created_at, bundled, placeholders,
 * input schema, and (full) the template and overlays. New reference. */
json_t *workflow_to_json(const struct workflow *w, bool full);

/* Validates inputs (every failing field in *errors, a new JSON array) , applies defaults,
 * draws a random seed when the schema has "seed" and inputs lack it, merges overlays and
 * renders. Also enforces the image size and batch limits on the rendered graph. Returns the
 * graph and sets *final_inputs (new refs), or NULL with *errors set. */
json_t *workflow_render(const struct workflow *w, const json_t *inputs,
                        const struct workflow_limits *lim, json_t **final_inputs,
                        json_t **errors);
/* Checks width/height/batch_size inputs of every node of a graph against the limits; adds a
 * {"path","keyword","message"} per violation to errors. Returns the count. */
int workflow_check_limits(const json_t *graph, const struct workflow_limits *lim, json_t *errors);

#endif
