/*
 * sim_files — ComfyUI's file routes for comfysim: GET /view (with channel=rgb|a re-encoded
 * like Pillow does, preview=jpeg|webp;Q converted by sim_preview) and POST /upload/image,
 * /upload/mask (multipart; dedup by content, "name (1).png" renaming, overwrite, the mask's
 * alpha copied onto original_ref).
 */
#ifndef SIM_FILES_H
#define SIM_FILES_H

#include <stdbool.h>
#include <stddef.h>

#include "http/http_server.h"
#include "ring/ring.h"

struct sim_server;

/* The HTTP server's connection cap: each connection has at most one answer waiting. */
#define SIM_VIEW_WAITS_MAX 4096

/* One /view answer held back by --view-delay-ms, waiting on its ring timer. */
struct sim_view_wait {
    struct ring_timer timer;
    struct sim_server *server;
    struct http_exchange *ex; /* NULL: the slot is free */
    bool aborted;             /* the client is gone: answer cheaply, do not open the file */
    struct sim_view_wait *next_free;
};

/* A fixed pool of waits, allocated once at start (only when a delay is configured). */
struct sim_view_waits {
    struct sim_view_wait *slots;
    size_t n;
    struct sim_view_wait *free;
};

int sim_files_waits_init(struct sim_view_waits *w, struct sim_server *s, size_t n);
/* Cancels the timers of waits still armed on r (shutdown) and frees the pool. */
void sim_files_waits_fini(struct sim_view_waits *w, struct ring *r);

/* GET /view; with cfg.view_delay_ms, the answer (whatever it is) starts that much later. */
void sim_files_view_cb(struct http_exchange *ex, void *arg);
void sim_files_upload_image_cb(struct http_exchange *ex, void *arg);
void sim_files_upload_mask_cb(struct http_exchange *ex, void *arg);

#endif
