/*
 * sim_ops — what each simulated node class computes.
 *
 * Model-free nodes really run (EmptyImage, ImageInvert, ImageScale, LoadImage, LoadImageMask,
 * MaskToImage, ImageToMask, InvertMask, JoinImageWithAlpha, SaveImage (RGB or RGBA PNGs),
 * PreviewImage, GetImageSize, PreviewAny) with ComfyUI's float32 semantics and file
 * naming. Model nodes are stand-ins: loaders, text encoders and samplers pass 64-bit identities
 * derived from their inputs (checkpoint name, prompt text, seed, ...), and VAEDecode turns the
 * final identity into a deterministic picture of the requested size and batch, so SD-style
 * graphs run end to end and write real PNGs whose pixels depend on seed and prompt.
 *
 * This module only computes; the executor (sim_exec) owns scheduling, caching, timing and
 * the WebSocket messages. A node that "raises" fills sim_op_error the way the Python
 * exception would read in ComfyUI's execution_error.
 */
#ifndef SIM_OPS_H
#define SIM_OPS_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "sim/sim_fs.h"
#include "sim/sim_image.h"
#include "sim/sim_nodes.h"

#define SIM_OUTPUTS_MAX 4 /* RETURN_TYPES per class (CheckpointLoaderSimple has 3) */
#define SIM_OP_MSG_MAX 2048

enum sim_vtype {
    SIM_V_NONE,
    SIM_V_INT,
    SIM_V_FLOAT,
    SIM_V_STRING,
    SIM_V_IMAGE,
    SIM_V_MASK,
    SIM_V_LATENT,
    SIM_V_MODEL,
    SIM_V_CLIP,
    SIM_V_VAE,
    SIM_V_COND,
    SIM_V_UPSCALE_MODEL,
};

struct sim_value {
    enum sim_vtype type;
    int64_t i;            /* INT */
    double f;             /* FLOAT; UPSCALE_MODEL: scale factor */
    char *s;              /* STRING (owned) */
    struct sim_tensor *t; /* IMAGE, MASK (one reference owned) */
    uint64_t id;          /* identity of simulated model data (MODEL ... LATENT content) */
    int64_t n, lw, lh;    /* LATENT: batch and size in latent pixels (image / 8) */
};

/* A node's outputs and UI output, shared by the cache and downstream nodes. */
struct sim_node_result {
    int refs;
    size_t n;
    struct sim_value v[SIM_OUTPUTS_MAX];
    json_t *ui;      /* e.g. {"images": [...]} or {"text": [...]}; NULL for non-UI nodes */
    json_t *ui_meta; /* {node_id, display_node, ...} of the run that produced ui */
};

/* One declared input as the node sees it: a widget constant or a linked value. */
struct sim_op_input {
    const char *name;
    const json_t *constant;
    const struct sim_value *value;
};

struct sim_op_env {
    const struct sim_fs *fs;
    uint64_t max_numel;    /* tensor element limit: beyond it a node fails like CUDA OOM */
    size_t max_file_bytes; /* largest input file LoadImage reads */
    const json_t *prompt;  /* hidden PROMPT (with is_changed), written into PNGs */
    const json_t *extra_pnginfo;
    const char *node_id;
    const struct tm *now; /* for %year% ... in filename_prefix */
    uint64_t *rng;        /* PreviewImage's random file prefix */
    int png_level;        /* SaveImage's zlib level as SIM_PNG_LEVEL(n) (0: ComfyUI's 4) */
};

struct sim_op_out {
    struct sim_node_result *result;
    int64_t ticks; /* ProgressBar steps: KSampler steps, upscale tiles */
    char *text;    /* send_progress_text payload (GetImageSize), malloc'd, or NULL */
};

struct sim_op_error {
    char type[64];                /* exception_type, e.g. "Exception" */
    char message[SIM_OP_MSG_MAX]; /* str(exception) */
    const char *const *frames;    /* traceback frames below process_inputs, NULL-terminated */
    bool oom;                     /* an OutOfMemoryError: ComfyUI appends its tips */
};

enum sim_ops_rc {
    SIM_OPS_OK = 0,
    SIM_OPS_RAISED = 1, /* the node raised: err is filled */
};

/* Runs class c on its inputs. Returns SIM_OPS_OK (out filled) or SIM_OPS_RAISED. */
int sim_ops_run(const struct sim_node_class *c, const struct sim_op_env *env,
                const struct sim_op_input *in, size_t nin, struct sim_op_out *out,
                struct sim_op_error *err);
/* Fills err as a torch OutOfMemoryError ("Allocation on device ..."). */
void sim_ops_oom(struct sim_op_error *err, double requested_gib);

struct sim_node_result *sim_node_result_new(size_t n);
struct sim_node_result *sim_node_result_ref(struct sim_node_result *r);
void sim_node_result_unref(struct sim_node_result *r);
void sim_value_clear(struct sim_value *v);
/* ComfyUI's format_value() of a node input, for execution_error.current_inputs. New ref. */
json_t *sim_ops_format_value(const struct sim_value *v);
/* Python str() of a value, as PreviewAny shows it; malloc'd. */
char *sim_ops_value_text(const struct sim_value *v);

#endif
