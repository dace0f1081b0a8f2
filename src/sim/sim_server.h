/*
 * sim_server — one simulated ComfyUI server on one reactor: the engine (nodes, queue,
 * executor) over a data folder, driven by a ring timer, and its WebSocket clients.
 *
 * This is ComfyUI's PromptServer + prompt_worker: POST /prompt queues, a timer runs the next
 * prompt step by step (sim_exec), WebSocket messages go to the prompt's client or to every
 * client exactly as PromptServer.send_sync addresses them, and `status` is broadcast whenever
 * the queue changes. Everything runs on the reactor thread that attached the server; nothing
 * here blocks except the small local file operations of sim_dirfs.
 */
#ifndef SIM_SERVER_H
#define SIM_SERVER_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http/http_router.h"
#include "http/http_server.h"
#include "ring/ring.h"
#include "sim/sim_dirfs.h"
#include "sim/sim_exec.h"
#include "sim/sim_files.h"
#include "sim/sim_nodes.h"
#include "sim/sim_queue.h"
#include "sim/sim_ws.h"

#define SIM_SID_MAX 128 /* bytes of a WebSocket client id */

struct sim_server_config {
    const char *root;              /* data folder: input/, output/, temp/ */
    struct sim_nodes_config nodes; /* classes and model files */
    int64_t exec_ms, step_ms;      /* simulated node and sampler-step durations */
    enum sim_fault fault;          /* injected into every prompt (see fault_times) */
    const char *fault_class;
    uint64_t fault_times;   /* `fault` hits only the first N prompts reaching its node (0: all) */
    int png_level;          /* SaveImage's zlib level as SIM_PNG_LEVEL(n) (0: ComfyUI's 4) */
    uint32_t view_delay_ms; /* every /view answer starts this much later (0: at once) */
    uint64_t refuse_after;  /* after N accepted prompts: stop listening, cut every connection */
    uint64_t max_pixels;    /* largest image a node may produce or load */
    size_t max_clients;     /* WebSocket sessions (0: 256) */
    size_t max_pending;     /* queued prompts (0: 1000) */
    size_t max_history;     /* history entries (0: 10000) */
    uint64_t seed;          /* prompt ids, preview names */
    unsigned port;          /* reported in /system_stats argv */
    const char *listen;
    uint64_t vram_mb; /* 0: report a CPU device, like the recording */
};

struct sim_client {
    char sid[SIM_SID_MAX];
    struct sim_ws *ws;
    bool first; /* no message received yet (feature_flags handshake) */
};

struct sim_server {
    struct sim_server_config cfg;
    struct ring *ring;
    struct sim_nodes *nodes;
    struct sim_dirfs dirfs;
    struct sim_queue *queue;
    struct sim_exec *exec;
    struct ring_timer timer;       /* next executor step */
    struct ring_timer crash_timer; /* the crash fault, a reactor turn after it hit */
    struct sim_client *clients;
    size_t nclients;
    bool free_memory;         /* POST /free asked for it: applied before the next prompt */
    struct http_server *http; /* ours, for --refuse-after */
    uint64_t accepted;        /* prompts queued so far */
    struct sim_view_waits view_waits;
    uint64_t rng;
    char err[256];
};

/* Builds the engine over cfg->root (main thread, before the reactor starts). */
int sim_server_new(struct sim_server **out, const struct sim_server_config *cfg);
void sim_server_free(struct sim_server *s);
/* Binds the server to its reactor and the HTTP server serving it (on that reactor's thread). */
void sim_server_attach(struct sim_server *s, struct ring *r, struct http_server *http);
/* Registers every route, each also under /api, and /ws. */
int sim_server_routes(struct sim_server *s, struct http_router *router);
/* Starts the executor soon if it is idle and something is queued. */
void sim_server_kick(struct sim_server *s);
/* Sends {"type", "data"} to client sid, or to every client when sid is NULL. */
void sim_server_send(struct sim_server *s, const char *type, const json_t *data, const char *sid);
/* GET /ws?clientId=: the WebSocket upgrade. */
void sim_server_ws_cb(struct http_exchange *ex, void *arg);
/* The server's feature flags (/features and the WebSocket handshake). New ref. */
json_t *sim_server_features(void);
/* Closes every WebSocket (shutdown). */
void sim_server_close_clients(struct sim_server *s);
/* Cuts every WebSocket without a close frame (the ws-drop fault). */
void sim_server_drop_clients(struct sim_server *s);
/* POST /prompt queued one; call before answering. After cfg.refuse_after of them the server
 * stops listening and closes every connection (that answer goes out with Connection: close),
 * while the process keeps running: a backend that went away. */
void sim_server_prompt_accepted(struct sim_server *s);
/* Wall-clock milliseconds (time.time() * 1000). */
int64_t sim_server_now_ms(void);

#endif
