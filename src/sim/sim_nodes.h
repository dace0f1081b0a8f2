/*
 * sim_nodes — the node classes a simulated ComfyUI backend offers.
 *
 * Each class is described by its /object_info entry, kept as the JSON a real 0.8.0 server
 * sends (verbatim from the recorded transcript where one exists). That JSON is also what
 * validation reads — input types, defaults, min/max, combo lists — exactly as ComfyUI's
 * validate_inputs reads INPUT_TYPES(). Model combos (ckpt_name, lora_name, model_name) come
 * from the configured model files, and LoadImage's image list from the input folder when
 * /object_info is asked for. Which classes exist and which model files each folder holds are
 * configuration, so simulated backends in one fleet can differ.
 */
#ifndef SIM_NODES_H
#define SIM_NODES_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "sim/sim_fs.h"

#define SIM_NODES_MAX 32         /* classes in one registry */
#define SIM_NODE_NAME_MAX 64     /* class name bytes, NUL included */
#define SIM_MODEL_FILES_MAX 1024 /* files per model folder */
#define SIM_MODEL_NAME_MAX 256   /* model file name bytes, NUL included */
#define SIM_INPUT_FILES_MAX 4096 /* LoadImage combo entries listed from input/ */

/* Which behaviour sim_ops runs for a class. */
enum sim_node_kind {
    SIM_NODE_KSAMPLER,
    SIM_NODE_CHECKPOINT_LOADER,
    SIM_NODE_CLIP_TEXT_ENCODE,
    SIM_NODE_VAE_DECODE,
    SIM_NODE_EMPTY_LATENT,
    SIM_NODE_SAVE_IMAGE,
    SIM_NODE_PREVIEW_IMAGE,
    SIM_NODE_LOAD_IMAGE,
    SIM_NODE_LOAD_IMAGE_MASK,
    SIM_NODE_IMAGE_SCALE,
    SIM_NODE_IMAGE_INVERT,
    SIM_NODE_EMPTY_IMAGE,
    SIM_NODE_LORA_LOADER,
    SIM_NODE_UPSCALE_MODEL_LOADER,
    SIM_NODE_IMAGE_UPSCALE_WITH_MODEL,
    SIM_NODE_MASK_TO_IMAGE,
    SIM_NODE_IMAGE_TO_MASK,
    SIM_NODE_INVERT_MASK,
    SIM_NODE_JOIN_IMAGE_WITH_ALPHA,
    SIM_NODE_GET_IMAGE_SIZE,
    SIM_NODE_PREVIEW_ANY,
};

/* Class flags. */
#define SIM_NODE_F_OUTPUT 0x1u        /* OUTPUT_NODE: validated and run as an output */
#define SIM_NODE_F_V3 0x2u            /* a comfy_api V3 node (hidden inputs differ) */
#define SIM_NODE_F_SIG_UNIQUE_ID 0x4u /* has hidden UNIQUE_ID: node id is part of its cache key */
#define SIM_NODE_F_FILE_INPUT 0x8u    /* LoadImage-style: VALIDATE_INPUTS(image) + IS_CHANGED */

struct sim_node_class {
    char name[SIM_NODE_NAME_MAX];
    enum sim_node_kind kind;
    unsigned flags;
    json_t *info; /* the /object_info entry, owned by the registry */
};

struct sim_nodes_config {
    /* Comma-separated class names to offer; NULL or "" offers every known class. */
    const char *classes;
    /* Model files per folder: "checkpoints=a.safetensors,b.ckpt;loras=x.safetensors".
     * Folders are the ones /models lists; NULL leaves every folder empty. */
    const char *models;
};

enum sim_nodes_err {
    SIM_NODES_OK = 0,
    SIM_NODES_ENOMEM = -1,   /* allocation failed */
    SIM_NODES_ECLASS = -2,   /* unknown or repeated class name in the config */
    SIM_NODES_EFOLDER = -3,  /* unknown model folder in the config */
    SIM_NODES_ETOOMANY = -4, /* more files or classes than the limits allow */
    SIM_NODES_ESYNTAX = -5,  /* malformed models spec (name too long, empty) */
};

struct sim_nodes;

const char *sim_nodes_err_name(int err);
/* Builds a registry; on error *out is NULL and err_msg says which name was refused. */
int sim_nodes_create(const struct sim_nodes_config *cfg, struct sim_nodes **out, char *err_msg,
                     size_t err_cap);
void sim_nodes_destroy(struct sim_nodes *nodes);

const struct sim_node_class *sim_nodes_find(const struct sim_nodes *nodes, const char *name);
size_t sim_nodes_count(const struct sim_nodes *nodes);
const struct sim_node_class *sim_nodes_at(const struct sim_nodes *nodes, size_t i);

/* GET /object_info: every class, with LoadImage's list from fs (may be NULL). New ref. */
json_t *sim_nodes_object_info(const struct sim_nodes *nodes, const struct sim_fs *fs);
/* GET /object_info/{name}: {name: entry}, or {} for an unknown class. New ref. */
json_t *sim_nodes_object_info_one(const struct sim_nodes *nodes, const char *name,
                                  const struct sim_fs *fs);
/* GET /models: the folder names. New ref. */
json_t *sim_nodes_model_folders(const struct sim_nodes *nodes);
/* GET /models/{folder}: sorted file names, or NULL for an unknown folder (404). New ref. */
json_t *sim_nodes_model_files(const struct sim_nodes *nodes, const char *folder);
/* True if folder holds file (a combo check, for loaders). */
bool sim_nodes_has_model(const struct sim_nodes *nodes, const char *folder, const char *file);

/* Input spec [type, {extra}] of a declared input and its category ("required", "optional",
 * "hidden"), or NULL. Borrowed reference. */
json_t *sim_node_input(const struct sim_node_class *c, const char *name, const char **category);
/* The RETURN_TYPES array (borrowed). */
json_t *sim_node_outputs(const struct sim_node_class *c);
bool sim_node_is_output(const struct sim_node_class *c);
const char *sim_node_display_name(const struct sim_node_class *c);

#endif
