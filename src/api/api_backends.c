/* api_backends — GET /backends: each ComfyUI backend's health, queue depth, in-flight prompts,
 * counters, mean run time, last error and VRAM.
 *
 * The fleet lives on FLEET_REACTOR; a request that arrives on another reactor is carried there
 * as a ring message, the JSON is built there, and the text comes back the same way to be sent
 * by the reactor that owns the connection. */
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "gateway.h"

struct backends_msg {
    struct ring_msg msg;
    struct gateway *gw;
    struct http_exchange *ex;
    struct ring *origin;
    char *json;
};

static char *state_json(struct gateway *gw)
{
    json_t *arr = gw->fleet ? comfy_fleet_state_json(gw->fleet) : json_array();
    json_t *o = json_pack("{s:o, s:i}", "backends", arr, "count", (int)json_array_size(arr));
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return s;
}

static void reply_cb(struct ring *r, struct ring_msg *m)
{
    struct backends_msg *bm = (struct backends_msg *)m;
    if (bm->json)
        http_respond_owned(bm->ex, 200, "application/json", bm->json, strlen(bm->json), free);
    else
        http_respond_error(bm->ex, 500, "INTERNAL", "out of memory");
    free(bm);
}

static void build_cb(struct ring *r, struct ring_msg *m)
{
    struct backends_msg *bm = (struct backends_msg *)m;
    bm->json = state_json(bm->gw);
    bm->msg.cb = reply_cb;
    ring_post(bm->origin, &bm->msg);
}

static void backends_cb(struct http_exchange *ex, void *arg)
{
    struct gateway *gw = arg;
    struct ring *here = http_ring(ex);
    struct ring *fleet_ring = &gw->reactors[FLEET_REACTOR].ring;
    if (here == fleet_ring) {
        char *s = state_json(gw);
        if (s)
            http_respond_owned(ex, 200, "application/json", s, strlen(s), free);
        else
            http_respond_error(ex, 500, "INTERNAL", "out of memory");
        return;
    }
    struct backends_msg *bm = calloc(1, sizeof(*bm));
    if (!bm) {
        http_respond_error(ex, 503, "UNAVAILABLE", "out of memory");
        return;
    }
    bm->gw = gw;
    bm->ex = ex;
    bm->origin = here;
    bm->msg.cb = build_cb;
    ring_post(fleet_ring, &bm->msg);
}

int api_backends_register(struct gateway *gw)
{
    return http_router_add_tagged(&gw->router, "GET", "/backends", backends_cb, gw, API_ADMIN);
}
