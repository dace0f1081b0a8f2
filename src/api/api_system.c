/* api_system — liveness, readiness and the optional static directory. */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "api/api.h"
#include "gateway.h"

static void health_cb(struct http_exchange *ex, void *arg)
{
    struct gateway *gw = arg;
    char body[160];
    uint64_t up = (ring_clock_ns() - gw->start_ns) / 1000000000ull;
    int n = snprintf(body, sizeof(body), "{\"ok\":true,\"version\":\"%s\",\"uptime_s\":%llu}",
                     COMFYGATE_VERSION, (unsigned long long)up);
    http_respond(ex, 200, "application/json", body, (size_t)n);
}

static void ready_cb(struct http_exchange *ex, void *arg)
{
    struct gateway *gw = arg;
    if (atomic_load(&gw->stopping)) {
        http_add_header(ex, "Retry-After", "5");
        http_respond_json(ex, 503, "{\"ready\":false,\"reason\":\"shutting down\"}");
        return;
    }
    http_respond_json(ex, 200, "{\"ready\":true}");
}

static void static_cb(struct http_exchange *ex, void *arg)
{
    struct gateway *gw = arg;
    char rel[4096];
    if (http_param_copy(ex, "path", rel, sizeof(rel)) < 0) {
        http_respond_error(ex, 404, "NOT_FOUND", "no such file");
        return;
    }
    http_respond_file(ex, gw->static_fd, rel, NULL);
}

int api_system_register(struct gateway *gw)
{
    if (http_router_add_tagged(&gw->router, "GET", "/health", health_cb, gw, API_PUBLIC) < 0 ||
        http_router_add_tagged(&gw->router, "GET", "/ready", ready_cb, gw, API_PUBLIC) < 0)
        return -1;
    if (gw->cfg->static_dir[0]) {
        gw->static_fd = open(gw->cfg->static_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (gw->static_fd < 0) {
            fprintf(stderr, "comfygate: STATIC_DIR %s is not a readable directory\n",
                    gw->cfg->static_dir);
            return -1;
        }
        if (http_router_add_tagged(&gw->router, "GET", "/static/*path", static_cb, gw,
                                   API_PUBLIC) < 0)
            return -1;
    }
    return 0;
}
