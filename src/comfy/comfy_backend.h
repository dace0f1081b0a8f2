/* comfy_backend — one ComfyUI server as the gateway sees it: its address, health (probes of
 * /system_stats behind a circuit breaker), capabilities (/object_info, read at connect and
 * after every reconnect), its WebSocket session (one per backend, shared by every attempt,
 * with a client_id of our own), and the counters the API and routing read.
 *
 * Lives on one reactor (the fleet's) and is driven by its ring: all HTTP goes through that
 * reactor's ring_curl, the WebSocket through comfy_ws. WebSocket events are dispatched to the
 * attempt that owns the prompt_id. When the WebSocket is down, attempts fall back to polling
 * /history/{id}; when it comes back, every attempt reconciles with /history (a stale socket
 * must never leave a finished job "running"). */
#ifndef COMFYGATE_COMFY_BACKEND_H
#define COMFYGATE_COMFY_BACKEND_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "comfy/comfy_call.h"
#include "comfy/comfy_caps.h"
#include "comfy/comfy_event.h"
#include "comfy/comfy_ws.h"
#include "ring/ring_curl.h"

struct comfy_attempt;
struct comfy_fleet;

struct comfy_backend_spec {
    char url[512]; /* http://host:port (no trailing slash) */
    unsigned weight;       /* routing preference, default 1 */
    unsigned max_inflight; /* prompts submitted at once, default 1 (ComfyUI runs one at a time;
                              a second one queued there hides the fetch latency) */
    char tags[256];        /* free-form, ':'-separated */
};

/* Parses COMFYUI_URLS: "url[;weight=N][;max=N][;tags=a:b],url2,...". Returns the count, or -1
 * with a message in err. */
int comfy_backend_specs_parse(const char *list, struct comfy_backend_spec *out, size_t max,
                              char *err, size_t errlen);

enum comfy_health {
    COMFY_HEALTH_UNKNOWN = 0, /* not probed yet */
    COMFY_HEALTH_UP,          /* circuit closed */
    COMFY_HEALTH_DOWN,        /* circuit open until open_until_ns */
    COMFY_HEALTH_HALF_OPEN,   /* cool-down over; the next probe decides */
};
const char *comfy_health_name(enum comfy_health h);

struct comfy_backend_config {
    uint32_t probe_interval_ms;  /* /system_stats */
    uint32_t probe_timeout_ms;
    unsigned fail_threshold;     /* consecutive failures that open the circuit */
    uint32_t open_ms;            /* first cool-down; doubles up to open_max_ms */
    uint32_t open_max_ms;
    uint32_t ws_ping_ms;
    uint32_t ws_silence_ms;      /* no frame for this long: reconnect */
    uint32_t ws_retry_ms;        /* reconnect back-off start */
    uint32_t poll_ms;            /* /history polling while the WebSocket is down */
    uint32_t request_timeout_ms; /* control calls (prompt, history, queue, interrupt) */
    uint64_t max_object_info;    /* bytes */
    /* This gateway's id in every backend's client_id ("comfygate-<id>-<n>"). Kept across
     * restarts so that a re-attached prompt's events reach us again; empty: random. */
    char instance_id[20];
};

struct comfy_backend {
    struct comfy_fleet *fleet;
    struct ring *ring;
    struct ring_curl *rc;
    const struct comfy_backend_config *cfg;
    int idx;
    struct comfy_backend_spec spec;
    char host[256];
    uint16_t port;
    char client_id[64];

    /* health */
    enum comfy_health health;
    unsigned fails;
    uint32_t open_ms;
    uint64_t open_until_ns;
    struct ring_timer probe_timer;
    struct comfy_call probe_call;
    bool probing;
    uint64_t vram_free, vram_total;

    /* capabilities */
    struct comfy_caps caps;
    bool caps_loaded;
    bool caps_loading;
    struct comfy_call info_call;

    /* WebSocket */
    struct comfy_ws ws;
    bool ws_open;      /* handshake done */
    bool ws_active;    /* a session exists (connecting or open) */
    bool ws_ever_open;
    uint32_t ws_retry;
    struct ring_timer ws_timer;

    /* load and statistics */
    int queue_remaining; /* from the last WebSocket status */
    unsigned inflight;   /* our attempts on it */
    uint64_t done, failed;
    double mean_run_ms;  /* EWMA of execution time */
    char last_ckpt[256]; /* model affinity */
    char last_error[256];
    struct comfy_attempt *attempts; /* list of our attempts on it */
    char running_prompt[64];        /* binary previews carry no prompt id: they are its */
    /* /free calls after OOM */
    struct comfy_call free_call;
    bool freeing;
    bool stopping;
};

int comfy_backend_init(struct comfy_backend *b, struct comfy_fleet *f, int idx,
                       const struct comfy_backend_spec *spec, struct ring *r, struct ring_curl *rc,
                       const struct comfy_backend_config *cfg, const char *instance_id);
void comfy_backend_start(struct comfy_backend *b);
/* Stops timers, calls and the WebSocket; attempts must be gone first. */
void comfy_backend_stop(struct comfy_backend *b);
bool comfy_backend_idle(const struct comfy_backend *b);

/* Healthy, capabilities known, and below max_inflight. */
bool comfy_backend_available(const struct comfy_backend *b);
/* Expected wait in ms before a new prompt would start there. */
double comfy_backend_expected_wait_ms(const struct comfy_backend *b);
/* A transport failure seen by an attempt counts against the circuit breaker. */
void comfy_backend_report_failure(struct comfy_backend *b, const char *what);
void comfy_backend_report_success(struct comfy_backend *b, double run_ms);
/* POST /free {"unload_models": true, "free_memory": true} (after an OOM). */
void comfy_backend_free_memory(struct comfy_backend *b);
/* Builds "<base url><path>" into dst. */
void comfy_backend_url(const struct comfy_backend *b, char *dst, size_t cap, const char *path);
/* JSON object with the per-backend state for the API (new reference). */
json_t *comfy_backend_state_json(const struct comfy_backend *b);

/* Used by comfy_attempt: link/unlink an attempt for event dispatch. */
void comfy_backend_attach(struct comfy_backend *b, struct comfy_attempt *a);
void comfy_backend_detach(struct comfy_backend *b, struct comfy_attempt *a);

#endif
