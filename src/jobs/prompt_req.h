/* prompt_req — the body of a raw-graph request (POST /prompt, ComfyUI-compatible): checked and
 * taken apart before anything is stored. Pure: no I/O.
 *
 * {"prompt": <ComfyUI API-format graph>, "id"?: <uuid>, "webhook_v2"?: <url>,
 *  "convert_output"?: {"format": "png"|"jpeg"|"webp", "options"?: {"quality": 1..100}},
 *  "priority"?: -1000..1000, "metadata"?: {...}}
 *
 * The graph must have the basic shape, only node classes on the allowlist, and width, height
 * and batch_size inputs within the limits. The `image` input of every LoadImage-like node may
 * be a file name the backend already has, an http(s) URL (fetched when the job is dispatched)
 * or an image in base64 (a data: URI or bare): decoded here, identified by its magic bytes and
 * named by its content, so that the same image uploads once per backend. */
#ifndef COMFYGATE_PROMPT_REQ_H
#define COMFYGATE_PROMPT_REQ_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "jobs/workflow.h"

struct urlguard;

#define PROMPT_MAX_IMAGES 16
#define PROMPT_URL_MAX 2048

struct prompt_req_config {
    struct workflow_limits limits;
    const char *allowed_classes; /* comma-separated class names, or "*" for any */
    uint64_t max_image_bytes;    /* one decoded input image */
    /* SSRF rules checked at once for URLs given as IP literals (names are checked at connect
     * time); NULL: not checked here */
    const struct urlguard *input_guard;
    const struct urlguard *webhook_guard;
};

struct prompt_image {
    char node[64];
    char name[80];               /* "<sha256/32>.<ext>" once the bytes are known */
    char url[PROMPT_URL_MAX];    /* fetched at dispatch; "" when the bytes came inline */
    unsigned char *data;         /* inline: decoded (owned) */
    size_t len;
};

struct prompt_req {
    json_t *graph; /* owned */
    char id[37];   /* the client's job id, or "" */
    char webhook_v2[PROMPT_URL_MAX];
    char convert_format[8]; /* "" (as produced), "png", "jpeg" or "webp" */
    int convert_quality;
    int priority;
    json_t *metadata; /* owned or NULL */
    struct prompt_image images[PROMPT_MAX_IMAGES];
    size_t nimages;
};

/* What went wrong: an HTTP status, an API error code and a message. */
struct prompt_err {
    int status;
    const char *code;
    char message[512];
    json_t *errors; /* VALIDATION_ERROR details, or NULL (owned by the caller) */
};

/* 0, or -1 with err filled (and nothing owned by out). */
int prompt_req_parse(const json_t *body, const struct prompt_req_config *cfg,
                     struct prompt_req *out, struct prompt_err *err);
void prompt_req_free(struct prompt_req *r);

/* True when class is allowed by the comma-separated list (or "*"). */
bool prompt_class_allowed(const char *list, const char *cls);
/* Image type by magic bytes: sets ext and mime, or returns false. */
bool prompt_image_sniff(const unsigned char *p, size_t n, const char **ext, const char **mime);
/* The pixel size an image's header declares (PNG IHDR, JPEG SOFn, WebP VP8/VP8L/VP8X, GIF
 * screen): what decoding it would allocate, whatever its size in bytes. False if the header
 * cannot be read (an image cut short, or one of another kind). */
bool prompt_image_size(const unsigned char *p, size_t n, uint32_t *w, uint32_t *h);
/* "<sha256 of p, 32 hex>.<ext>" into name (80 bytes); false if not an image. */
bool prompt_image_name(const unsigned char *p, size_t n, char name[80]);
/* The backend subfolder a tenant's uploads go to: "comfygate/t-<16 hex of sha256(owner)>". */
void prompt_tenant_subfolder(const char *owner, char out[48]);

/* The default ALLOWED_NODE_CLASSES: ComfyUI's core model-free and sampling nodes. */
extern const char PROMPT_DEFAULT_CLASSES[];

#endif
