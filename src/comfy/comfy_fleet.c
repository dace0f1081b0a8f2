/* comfy_fleet — see comfy_fleet.h. */
#include "comfy/comfy_fleet.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "comfy/comfy_graph.h"

void comfy_backend_config_defaults(struct comfy_backend_config *c)
{
    memset(c, 0, sizeof(*c));
    c->probe_interval_ms = 5000;
    c->probe_timeout_ms = 2000;
    c->fail_threshold = 3;
    c->open_ms = 2000;
    c->open_max_ms = 60000;
    c->ws_ping_ms = 30000;
    c->ws_silence_ms = 75000;
    c->ws_retry_ms = 250;
    c->poll_ms = 500;
    c->request_timeout_ms = 30000;
    c->max_object_info = 64ull << 20;
}

int comfy_fleet_init(struct comfy_fleet *f, struct ring *r, const struct comfy_backend_spec *specs,
                     size_t n, const struct comfy_backend_config *cfg, double cold_penalty_ms)
{
    memset(f, 0, sizeof(*f));
    if (n == 0 || n > COMFY_MAX_BACKENDS)
        return -EINVAL;
    f->ring = r;
    f->cfg = *cfg;
    f->cold_penalty_ms = cold_penalty_ms;
    uint32_t rnd = 0;
    if (getrandom(&rnd, sizeof(rnd), 0) != sizeof(rnd))
        rnd = (uint32_t)ring_clock_ns();
    if (cfg->instance_id[0])
        snprintf(f->instance_id, sizeof(f->instance_id), "%s", cfg->instance_id);
    else
        snprintf(f->instance_id, sizeof(f->instance_id), "%08x", rnd);
    int rc = ring_curl_init(&f->rc, r);
    if (rc < 0)
        return rc;
    /* Keep-alive connections to every backend: without a size, curl's connection cache holds
     * 4 per transfer *in progress*, a few at a quiet moment, so it closed idle backend
     * connections and the next call connected again. Room for what a backend can have in
     * flight at once (its attempts' control and download calls, probe, /free), plus input
     * URL fetches. */
    long conns = 32;
    for (size_t i = 0; i < n; i++)
        conns += 2 * (long)(specs[i].max_inflight ? specs[i].max_inflight : 1) + 2;
    curl_multi_setopt(f->rc.multi, CURLMOPT_MAXCONNECTS, conns);
    f->backends = calloc(n, sizeof(*f->backends));
    if (!f->backends)
        return -ENOMEM;
    f->n = n;
    for (size_t i = 0; i < n; i++) {
        rc = comfy_backend_init(&f->backends[i], f, (int)i, &specs[i], r, &f->rc, &f->cfg,
                                f->instance_id);
        if (rc < 0)
            return rc;
    }
    return 0;
}

void comfy_fleet_start(struct comfy_fleet *f)
{
    for (size_t i = 0; i < f->n; i++)
        comfy_backend_start(&f->backends[i]);
}

void comfy_fleet_stop(struct comfy_fleet *f)
{
    for (size_t i = 0; i < f->n; i++)
        comfy_backend_stop(&f->backends[i]);
}

bool comfy_fleet_idle(const struct comfy_fleet *f)
{
    for (size_t i = 0; i < f->n; i++) {
        if (!comfy_backend_idle(&f->backends[i]))
            return false;
    }
    return true;
}

void comfy_fleet_fini(struct comfy_fleet *f)
{
    free(f->backends);
    f->backends = NULL;
    ring_curl_fini(&f->rc);
}

static double route_cost(const struct comfy_fleet *f, const struct comfy_backend *b,
                         const char *ckpt)
{
    double cost = comfy_backend_expected_wait_ms(b);
    /* Same checkpoint loaded: no load. Nothing loaded yet: a load, but nothing evicted. Another
     * one loaded: a load that also throws away what a later job may want again. */
    if (ckpt && !b->last_ckpt[0])
        cost += f->cold_penalty_ms / 2;
    else if (ckpt && strcmp(b->last_ckpt, ckpt) != 0)
        cost += f->cold_penalty_ms;
    return cost;
}

/* Why no backend can take the graph now: BUSY when one that could run it is busy or unhealthy,
 * UNSUPPORTED (with the first reason, in rotation order) when none of the known ones can. */
static enum comfy_route route_none(struct comfy_fleet *f, const json_t *graph, const bool *exclude,
                                   char *why, size_t len)
{
    char first_why[256] = "";
    bool any_known = false, any_capable = false;
    for (size_t k = 0; k < f->n; k++) {
        size_t i = (k + f->rr) % f->n;
        struct comfy_backend *b = &f->backends[i];
        if ((exclude && exclude[i]) || !b->caps_loaded)
            continue;
        any_known = true;
        char w[256];
        if (comfy_caps_supports(&b->caps, graph, w, sizeof(w))) {
            any_capable = true;
            if (b->health == COMFY_HEALTH_UP && !b->stopping) { /* up, only full */
                if (why)
                    snprintf(why, len, "every capable backend is busy");
                return COMFY_ROUTE_BUSY;
            }
            continue;
        }
        if (!first_why[0])
            snprintf(first_why, sizeof(first_why), "%s", w);
    }
    if (any_capable) {
        if (why)
            snprintf(why, len, "no backend that can run it is up");
        return COMFY_ROUTE_DOWN;
    }
    if (any_known) {
        if (why)
            snprintf(why, len, "%s", first_why);
        return COMFY_ROUTE_UNSUPPORTED;
    }
    if (why)
        snprintf(why, len, "no ComfyUI backend is reachable");
    return COMFY_ROUTE_NO_BACKEND;
}

enum comfy_route comfy_fleet_route(struct comfy_fleet *f, const json_t *graph,
                                   const bool *exclude, struct comfy_backend **out, char *why,
                                   size_t len)
{
    const char *ckpt = comfy_graph_checkpoint(graph);
    struct comfy_backend *best = NULL;
    double best_cost = 0;
    *out = NULL;
    /* Only backends with room are candidates, and their availability and cost are a few
     * field reads while a capability check walks the graph against /object_info: the check
     * runs last, only for a backend that would beat the best so far. A busy fleet (the usual
     * state under load, asked again at every dispatch) then costs one capability check (in
     * route_none), an idle one a few, not one per backend. */
    for (size_t k = 0; k < f->n; k++) {
        size_t i = (k + f->rr) % f->n;
        struct comfy_backend *b = &f->backends[i];
        if ((exclude && exclude[i]) || !comfy_backend_available(b))
            continue;
        double c = route_cost(f, b, ckpt);
        /* equal cost: the heavier weight wins, equal weights rotate (rr start) */
        bool better =
            !best || c < best_cost || (c == best_cost && b->spec.weight > best->spec.weight);
        if (better && comfy_caps_supports(&b->caps, graph, NULL, 0)) {
            best = b;
            best_cost = c;
        }
    }
    if (best) {
        f->rr++;
        *out = best;
        return COMFY_ROUTE_OK;
    }
    return route_none(f, graph, exclude, why, len);
}

json_t *comfy_fleet_state_json(const struct comfy_fleet *f)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < f->n; i++)
        json_array_append_new(arr, comfy_backend_state_json(&f->backends[i]));
    return arr;
}

struct comfy_backend *comfy_fleet_find(struct comfy_fleet *f, const char *url)
{
    for (size_t i = 0; i < f->n; i++) {
        if (!strcmp(f->backends[i].spec.url, url))
            return &f->backends[i];
    }
    return NULL;
}
