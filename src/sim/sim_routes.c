/*
 * sim_routes — ComfyUI's HTTP routes for comfysim (see sim_routes.h).
 */
#include "sim/sim_routes.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/sysinfo.h>

#include "sim/sim_files.h"
#include "sim/sim_json.h"
#include "sim/sim_server.h"

#define JSON_TYPE "application/json; charset=utf-8"
#define TEXT_TYPE "text/plain; charset=utf-8"
#define JSON_MAX (256u << 20) /* largest JSON answer (a long /history) */
#define BODY_MAX (256u << 20)

void sim_routes_json(struct http_exchange *ex, int status, json_t *v)
{
    size_t len = 0;
    char *text = v != NULL ? sim_json_dumps(v, JSON_MAX) : NULL;
    json_decref(v);
    if (text == NULL) {
        http_respond(ex, 500, TEXT_TYPE, "500 Internal Server Error", 25);
        return;
    }
    len = strlen(text);
    http_respond_owned(ex, status, JSON_TYPE, text, len, free);
}

/* aiohttp's web.Response(status=...): no body. */
void sim_routes_empty(struct http_exchange *ex, int status)
{
    http_respond(ex, status, "application/octet-stream", "", 0);
}

/* What aiohttp answers when a handler raises. */
void sim_routes_500(struct http_exchange *ex)
{
    static const char msg[] = "500 Internal Server Error\n\nServer got itself in trouble";
    http_respond(ex, 500, TEXT_TYPE, msg, sizeof(msg) - 1);
}

static bool is_loopback(const char *host, size_t n)
{
    return (n == 9 && strncasecmp(host, "localhost", 9) == 0) ||
           (n >= 4 && strncmp(host, "127.", 4) == 0) || (n == 3 && strncmp(host, "::1", 3) == 0);
}

/* "host[:port]" or "[v6]:port" split into host and whether a port was given. */
static size_t host_part(const char *s, size_t n, const char **host, bool *has_port)
{
    if (n > 0 && s[0] == '[') {
        const char *e = memchr(s, ']', n);
        size_t hl = e != NULL ? (size_t)(e - s - 1) : n - 1;
        *host = s + 1;
        *has_port = e != NULL && (size_t)(e - s) + 1 < n;
        return hl;
    }
    const char *c = memchr(s, ':', n);
    *host = s;
    *has_port = c != NULL;
    return c != NULL ? (size_t)(c - s) : n;
}

/* ComfyUI's origin_only_middleware: a loopback Host with a different Origin is refused. */
bool sim_routes_origin_ok(struct http_exchange *ex)
{
    size_t hlen, olen;
    const struct http_request *r = http_req(ex);
    const char *host = http_header_get(r, "Host", &hlen);
    const char *origin = http_header_get(r, "Origin", &olen);
    if (host == NULL || origin == NULL)
        return true;
    const char *o = memmem(origin, olen, "://", 3);
    if (o != NULL) {
        olen -= (size_t)(o + 3 - origin);
        origin = o + 3;
    }
    size_t slash = strcspn(origin, "/");
    olen = slash < olen ? slash : olen;
    const char *hh, *oh;
    bool hport, oport;
    size_t hhl = host_part(host, hlen, &hh, &hport), ohl = host_part(origin, olen, &oh, &oport);
    if (!is_loopback(hh, hhl) || hlen == 0 || olen == 0)
        return true;
    /* without a port on one side, ComfyUI compares host names only */
    bool same = (!oport || !hport) ? (hhl == ohl && strncasecmp(hh, oh, hhl) == 0)
                                   : (hlen == olen && strncasecmp(host, origin, hlen) == 0);
    if (!same)
        sim_routes_empty(ex, 403);
    return same;
}

/* await request.json(): NULL when the body is not JSON (the handler answers 500). */
static json_t *body_json(struct http_exchange *ex)
{
    const struct http_request *r = http_req(ex);
    json_error_t err;
    return sim_json_loads(r->body != NULL ? r->body : "", r->body_len, BODY_MAX, &err);
}

#define SERVER(arg) ((struct sim_server *)(arg))

static void get_prompt_cb(struct http_exchange *ex, void *arg)
{
    if (sim_routes_origin_ok(ex))
        sim_routes_json(ex, 200, sim_queue_get_prompt(SERVER(arg)->queue));
}

static void post_prompt_cb(struct http_exchange *ex, void *arg)
{
    struct sim_server *s = arg;
    if (!sim_routes_origin_ok(ex))
        return;
    json_t *body = body_json(ex), *resp = NULL;
    if (body == NULL) {
        sim_routes_500(ex);
        return;
    }
    int status =
        sim_queue_post_prompt(s->queue, s->nodes, &s->dirfs.fs, body, sim_server_now_ms(), &resp);
    json_decref(body);
    if (resp == NULL) {
        sim_routes_500(ex);
        return;
    }
    if (status == 200)
        sim_server_prompt_accepted(s); /* before answering: --refuse-after closes after it */
    sim_routes_json(ex, status, resp);
    if (status == 200)
        sim_server_kick(s);
}

static void get_queue_cb(struct http_exchange *ex, void *arg)
{
    if (sim_routes_origin_ok(ex))
        sim_routes_json(ex, 200, sim_queue_get_queue(SERVER(arg)->queue));
}

static void post_queue_cb(struct http_exchange *ex, void *arg)
{
    if (!sim_routes_origin_ok(ex))
        return;
    json_t *body = body_json(ex);
    int status = body != NULL ? sim_queue_post_queue(SERVER(arg)->queue, body) : 500;
    json_decref(body);
    if (status == 200)
        sim_routes_empty(ex, 200);
    else
        sim_routes_500(ex);
}

static void interrupt_cb(struct http_exchange *ex, void *arg)
{
    struct sim_server *s = arg;
    if (!sim_routes_origin_ok(ex))
        return;
    json_t *body = body_json(ex); /* not JSON: treated as {} */
    json_t *id = json_object_get(body, "prompt_id");
    bool given = id != NULL && !(json_is_string(id) && json_string_length(id) == 0) &&
                 !json_is_null(id) && !json_is_false(id);
    /* a prompt_id only interrupts when it is the one running */
    if (!given || (json_is_string(id) && sim_queue_is_running(s->queue, json_string_value(id))))
        sim_exec_interrupt(s->exec);
    json_decref(body);
    sim_routes_empty(ex, 200);
}

static void free_cb(struct http_exchange *ex, void *arg)
{
    struct sim_server *s = arg;
    if (!sim_routes_origin_ok(ex))
        return;
    json_t *body = body_json(ex);
    if (body == NULL) {
        sim_routes_500(ex);
        return;
    }
    if (json_is_true(json_object_get(body, "free_memory"))) {
        s->free_memory = true;
        sim_server_kick(s); /* applied at once when idle, else before the next prompt */
    }
    json_decref(body);
    sim_routes_empty(ex, 200);
}

/* int(query[key]) if given; false when Python's int() would raise. */
static bool query_int(struct http_exchange *ex, const char *key, long long *v, bool *given)
{
    char tmp[64];
    int n = http_query_get(http_req(ex), key, tmp, sizeof(tmp));
    *given = n >= 0;
    return n < 0 || sim_json_py_int(tmp, v);
}

static void get_history_cb(struct http_exchange *ex, void *arg)
{
    long long max, off;
    bool has_max, has_off;
    if (!sim_routes_origin_ok(ex))
        return;
    if (!query_int(ex, "max_items", &max, &has_max) || !query_int(ex, "offset", &off, &has_off)) {
        sim_routes_500(ex);
        return;
    }
    sim_routes_json(
        ex, 200,
        sim_queue_history(SERVER(arg)->queue, has_max ? &max : NULL, has_off ? &off : NULL));
}

static void get_history_one_cb(struct http_exchange *ex, void *arg)
{
    char id[SIM_PROMPT_ID_MAX];
    if (!sim_routes_origin_ok(ex))
        return;
    if (http_param_copy(ex, "id", id, sizeof(id)) < 0) {
        sim_routes_json(ex, 200, json_object());
        return;
    }
    sim_routes_json(ex, 200, sim_queue_history_one(SERVER(arg)->queue, id));
}

static void post_history_cb(struct http_exchange *ex, void *arg)
{
    if (!sim_routes_origin_ok(ex))
        return;
    json_t *body = body_json(ex);
    int status = body != NULL ? sim_queue_post_history(SERVER(arg)->queue, body) : 500;
    json_decref(body);
    if (status == 200)
        sim_routes_empty(ex, 200);
    else
        sim_routes_500(ex);
}

static void object_info_cb(struct http_exchange *ex, void *arg)
{
    struct sim_server *s = arg;
    if (sim_routes_origin_ok(ex))
        sim_routes_json(ex, 200, sim_nodes_object_info(s->nodes, &s->dirfs.fs));
}

static void object_info_one_cb(struct http_exchange *ex, void *arg)
{
    struct sim_server *s = arg;
    char name[SIM_NODE_NAME_MAX];
    if (!sim_routes_origin_ok(ex))
        return;
    if (http_param_copy(ex, "node_class", name, sizeof(name)) < 0) {
        sim_routes_json(ex, 200, json_object());
        return;
    }
    sim_routes_json(ex, 200, sim_nodes_object_info_one(s->nodes, name, &s->dirfs.fs));
}

static void models_cb(struct http_exchange *ex, void *arg)
{
    if (sim_routes_origin_ok(ex))
        sim_routes_json(ex, 200, sim_nodes_model_folders(SERVER(arg)->nodes));
}

static void models_folder_cb(struct http_exchange *ex, void *arg)
{
    char folder[64];
    if (!sim_routes_origin_ok(ex))
        return;
    json_t *files = http_param_copy(ex, "folder", folder, sizeof(folder)) < 0
                        ? NULL
                        : sim_nodes_model_files(SERVER(arg)->nodes, folder);
    if (files == NULL)
        sim_routes_empty(ex, 404);
    else
        sim_routes_json(ex, 200, files);
}

static void empty_list_cb(struct http_exchange *ex, void *arg)
{
    (void)arg;
    if (sim_routes_origin_ok(ex))
        sim_routes_json(ex, 200, json_array());
}

static void features_cb(struct http_exchange *ex, void *arg)
{
    (void)arg;
    if (sim_routes_origin_ok(ex))
        sim_routes_json(ex, 200, sim_server_features());
}

static json_t *device_json(const struct sim_server *s, uint64_t ram_total, uint64_t ram_free)
{
    if (s->cfg.vram_mb == 0)
        return json_pack("{s:s, s:s, s:n, s:I, s:I, s:I, s:I}", "name", "cpu", "type", "cpu",
                         "index", "vram_total", (json_int_t)ram_total, "vram_free",
                         (json_int_t)ram_free, "torch_vram_total", (json_int_t)ram_total,
                         "torch_vram_free", (json_int_t)ram_free);
    json_int_t total = (json_int_t)(s->cfg.vram_mb << 20), used = (json_int_t)(512ull << 20);
    return json_pack("{s:s, s:s, s:i, s:I, s:I, s:I, s:I}", "name",
                     "cuda:0 NVIDIA GeForce RTX 4090 : cudaMallocAsync", "type", "cuda", "index", 0,
                     "vram_total", total, "vram_free", total - used, "torch_vram_total", used,
                     "torch_vram_free", (json_int_t)(64ull << 20));
}

static void system_stats_cb(struct http_exchange *ex, void *arg)
{
    struct sim_server *s = arg;
    struct sysinfo si;
    char port[16];
    if (!sim_routes_origin_ok(ex))
        return;
    if (sysinfo(&si) != 0)
        memset(&si, 0, sizeof(si));
    uint64_t total = (uint64_t)si.totalram * si.mem_unit,
             freeb = (uint64_t)si.freeram * si.mem_unit;
    snprintf(port, sizeof(port), "%u", s->cfg.port);
    json_t *sys = json_pack("{s:s, s:I, s:I, s:s, s:s, s:n, s:s, s:s, s:s, s:b, s:[sssss]}", "os",
                            "linux", "ram_total", (json_int_t)total, "ram_free", (json_int_t)freeb,
                            "comfyui_version", "0.8.0", "required_frontend_version", "1.35.9",
                            "installed_templates_version", "required_templates_version", "0.7.67",
                            "python_version", "3.11.2 (main, Apr 28 2025, 14:11:48) [GCC 12.2.0]",
                            "pytorch_version", s->cfg.vram_mb == 0 ? "1.13.0a0" : "2.5.1+cu124",
                            "embedded_python", 0, "argv", "main.py", "--listen",
                            s->cfg.listen != NULL ? s->cfg.listen : "127.0.0.1", "--port", port);
    sim_routes_json(
        ex, 200, json_pack("{s:o, s:[o]}", "system", sys, "devices", device_json(s, total, freeb)));
}

static void options_cb(struct http_exchange *ex, void *arg)
{
    (void)arg;
    if (sim_routes_origin_ok(ex))
        sim_routes_empty(ex, 200);
}

static void not_found_cb(struct http_exchange *ex, void *arg)
{
    (void)arg;
    if (sim_routes_origin_ok(ex))
        http_respond(ex, 404, TEXT_TYPE, "404: Not Found", 14);
}

static void index_cb(struct http_exchange *ex, void *arg)
{
    static const char page[] = "<!DOCTYPE html><html><head><title>ComfyUI</title></head>"
                               "<body></body></html>";
    (void)arg;
    if (sim_routes_origin_ok(ex))
        http_respond(ex, 200, "text/html", page, sizeof(page) - 1);
}

/* Each route twice, plain and under /api, as ComfyUI registers them. */
static int add2(struct http_router *router, const char *method, const char *path,
                http_handler_fn fn, void *arg)
{
    char api[128];
    snprintf(api, sizeof(api), "/api%s", path);
    if (http_router_add(router, method, path, fn, arg) < 0 ||
        http_router_add(router, method, api, fn, arg) < 0)
        return -1;
    return 0;
}

int sim_routes_register(struct sim_server *s, struct http_router *router)
{
    static const struct {
        const char *method, *path;
        http_handler_fn fn;
    } routes[] = {
        {"GET", "/prompt", get_prompt_cb},
        {"POST", "/prompt", post_prompt_cb},
        {"GET", "/queue", get_queue_cb},
        {"POST", "/queue", post_queue_cb},
        {"POST", "/interrupt", interrupt_cb},
        {"POST", "/free", free_cb},
        {"GET", "/history", get_history_cb},
        {"POST", "/history", post_history_cb},
        {"GET", "/history/:id", get_history_one_cb},
        {"GET", "/object_info", object_info_cb},
        {"GET", "/object_info/:node_class", object_info_one_cb},
        {"GET", "/models", models_cb},
        {"GET", "/models/:folder", models_folder_cb},
        {"GET", "/embeddings", empty_list_cb},
        {"GET", "/extensions", empty_list_cb},
        {"GET", "/features", features_cb},
        {"GET", "/system_stats", system_stats_cb},
        {"GET", "/view", sim_files_view_cb},
        {"POST", "/upload/image", sim_files_upload_image_cb},
        {"POST", "/upload/mask", sim_files_upload_mask_cb},
        {"GET", "/ws", sim_server_ws_cb},
    };
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
        if (add2(router, routes[i].method, routes[i].path, routes[i].fn, s) < 0)
            return -1;
    }
    static const char *const methods[] = {"GET", "POST", "PUT", "DELETE", "PATCH"};
    if (http_router_add(router, "GET", "/", index_cb, s) < 0 ||
        http_router_add(router, "OPTIONS", "/*rest", options_cb, s) < 0)
        return -1;
    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
        if (http_router_add(router, methods[i], "/*rest", not_found_cb, s) < 0)
            return -1;
    }
    return 0;
}
