/* comfy_fleet — every configured ComfyUI backend, and the choice of where a graph runs.
 *
 * The fleet lives on one reactor and owns that reactor's ring_curl multi handle for backend
 * traffic. Routing: only backends that are healthy, know their capabilities, have room
 * (max_inflight) and have every node class and model file the graph needs; among them the
 * smallest expected wait (queue depth × mean run time / weight), plus a cold-load penalty for
 * a backend whose last checkpoint differs from the graph's (model affinity). Ties rotate. */
#ifndef COMFYGATE_COMFY_FLEET_H
#define COMFYGATE_COMFY_FLEET_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "comfy/comfy_backend.h"
#include "ring/ring_curl.h"

#define COMFY_MAX_BACKENDS 256

enum comfy_route {
    COMFY_ROUTE_OK = 0,
    COMFY_ROUTE_BUSY,        /* capable backends are up, all full: wait */
    COMFY_ROUTE_DOWN,        /* capable backends exist, none of them up now: wait (others may
                              * run what they can meanwhile) */
    COMFY_ROUTE_UNSUPPORTED, /* no known backend has what the graph needs */
    COMFY_ROUTE_NO_BACKEND,  /* nothing is up yet (or everything is excluded) */
};

struct comfy_fleet {
    struct ring *ring;
    struct ring_curl rc;
    struct comfy_backend *backends;
    size_t n;
    struct comfy_backend_config cfg;
    double cold_penalty_ms;
    char instance_id[20];
    unsigned rr; /* rotating tie-break */
};

int comfy_fleet_init(struct comfy_fleet *f, struct ring *r, const struct comfy_backend_spec *specs,
                     size_t n, const struct comfy_backend_config *cfg, double cold_penalty_ms);
void comfy_fleet_start(struct comfy_fleet *f);
void comfy_fleet_stop(struct comfy_fleet *f);
bool comfy_fleet_idle(const struct comfy_fleet *f);
void comfy_fleet_fini(struct comfy_fleet *f);

/* exclude: NULL or f->n flags (backends this job already failed on). On a result other than
 * OK, why (if given) says what is missing. */
enum comfy_route comfy_fleet_route(struct comfy_fleet *f, const json_t *graph,
                                   const bool *exclude, struct comfy_backend **out, char *why,
                                   size_t len);
json_t *comfy_fleet_state_json(const struct comfy_fleet *f);
/* The backend configured with this URL, or NULL. */
struct comfy_backend *comfy_fleet_find(struct comfy_fleet *f, const char *url);
/* Defaults for every backend setting. */
void comfy_backend_config_defaults(struct comfy_backend_config *c);

#endif
