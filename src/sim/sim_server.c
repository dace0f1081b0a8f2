/*
 * sim_server — engine + driver + WebSocket clients of one comfysim (see sim_server.h).
 */
#include "sim/sim_server.h"

#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "sim/sim_json.h"
#include "sim/sim_routes.h"

#define DEFAULT_MAX_CLIENTS 256
#define MESSAGE_MAX (64u << 20) /* one WebSocket message (a huge execution_error) */
#define SIM_CRASH_STATUS 3      /* exit status of an injected crash */

int64_t sim_server_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* --- WebSocket clients ---------------------------------------------------------------------- */

static void drop_client(struct sim_server *s, size_t i)
{
    struct sim_ws *ws = s->clients[i].ws;
    s->clients[i] = s->clients[--s->nclients];
    sim_ws_close(ws);
}

static void send_text(struct sim_server *s, size_t i, const char *text, size_t len)
{
    if (sim_ws_send_text(s->clients[i].ws, text, len) < 0)
        drop_client(s, i);
}

void sim_server_send(struct sim_server *s, const char *type, const json_t *data, const char *sid)
{
    json_t *msg = json_pack("{s:s, s:O}", "type", type, "data", data);
    size_t len;
    struct sim_buf b;
    sim_buf_init(&b, MESSAGE_MAX);
    if (msg == NULL || sim_json_dump(msg, &b) != 0) {
        json_decref(msg);
        sim_buf_free(&b);
        return;
    }
    char *text = sim_buf_take(&b, &len);
    /* backwards, so dropping a dead client does not skip the next one */
    for (size_t i = s->nclients; text != NULL && i-- > 0;) {
        if (sid == NULL || strcmp(s->clients[i].sid, sid) == 0)
            send_text(s, i, text, len);
    }
    free(text);
    json_decref(msg);
}

static void emit_cb(void *ctx, const char *type, const json_t *data, const char *sid)
{
    sim_server_send(ctx, type, data, sid);
}

static void binary_cb(void *ctx, const uint8_t *data, size_t len, const char *sid)
{
    struct sim_server *s = ctx;
    for (size_t i = s->nclients; i-- > 0;) {
        if (sid != NULL && strcmp(s->clients[i].sid, sid) != 0)
            continue;
        if (sim_ws_send_binary(s->clients[i].ws, data, len) < 0)
            drop_client(s, i);
    }
}

/* PromptServer.queue_updated: a status broadcast for every queue change. */
static void status_cb(void *ctx, int remaining)
{
    json_t *data = json_pack("{s:{s:{s:i}}}", "status", "exec_info", "queue_remaining", remaining);
    sim_server_send(ctx, "status", data, NULL);
    json_decref(data);
}

static ssize_t find_ws(const struct sim_server *s, const struct sim_ws *ws)
{
    for (size_t i = 0; i < s->nclients; i++) {
        if (s->clients[i].ws == ws)
            return (ssize_t)i;
    }
    return -1;
}

json_t *sim_server_features(void)
{
    return json_pack("{s:b, s:i, s:{s:{s:b}}}", "supports_preview_metadata", 1, "max_upload_size",
                     104857600, "extension", "manager", "supports_v4", 1);
}

/* Only a first message of type feature_flags is answered, with the server's flags. */
static void ws_text_cb(void *ctx, struct sim_ws *ws, const char *p, size_t n)
{
    struct sim_server *s = ctx;
    ssize_t i = find_ws(s, ws);
    if (i < 0 || !s->clients[i].first)
        return;
    s->clients[i].first = false;
    json_error_t err;
    json_t *msg = sim_json_loads(p, n, SIM_WS_MSG_MAX, &err);
    const char *type = json_string_value(json_object_get(msg, "type"));
    if (type != NULL && strcmp(type, "feature_flags") == 0) {
        json_t *flags = sim_server_features();
        char sid[SIM_SID_MAX];
        snprintf(sid, sizeof(sid), "%s", s->clients[i].sid);
        sim_server_send(s, "feature_flags", flags, sid);
        json_decref(flags);
    }
    json_decref(msg);
}

static void ws_close_cb(void *ctx, struct sim_ws *ws)
{
    struct sim_server *s = ctx;
    ssize_t i = find_ws(s, ws);
    if (i >= 0)
        s->clients[i] = s->clients[--s->nclients];
}

static const struct sim_ws_ops ws_ops = {ws_text_cb, ws_close_cb};

/* uuid.uuid4().hex: the sid of a client that did not bring one. */
static void new_sid(struct sim_server *s, char *out)
{
    for (int i = 0; i < 32; i++) {
        s->rng = s->rng * 6364136223846793005ull + 1442695040888963407ull;
        out[i] = "0123456789abcdef"[(s->rng >> 33) & 15];
    }
    out[12] = '4'; /* version 4 */
    out[16] = "89ab"[(s->rng >> 40) & 3];
    out[32] = 0;
}

void sim_server_ws_cb(struct http_exchange *ex, void *arg)
{
    struct sim_server *s = arg;
    char sid[SIM_SID_MAX];
    int n = http_query_get(http_req(ex), "clientId", sid, sizeof(sid));
    if (n <= 0)
        new_sid(s, sid);
    for (size_t i = 0; i < s->nclients; i++) {
        if (strcmp(s->clients[i].sid, sid) == 0) {
            drop_client(s, i); /* a reconnect replaces the old socket */
            break;
        }
    }
    if (s->nclients == s->cfg.max_clients) {
        http_respond(ex, 503, "text/plain; charset=utf-8", "", 0);
        return;
    }
    struct sim_ws *ws = sim_ws_accept(ex, &ws_ops, s);
    if (ws == NULL)
        return;
    struct sim_client *c = &s->clients[s->nclients++];
    snprintf(c->sid, sizeof(c->sid), "%s", sid);
    c->ws = ws;
    c->first = true;
    json_t *data = json_pack("{s:{s:{s:i}}, s:s}", "status", "exec_info", "queue_remaining",
                             sim_queue_remaining(s->queue), "sid", sid);
    sim_server_send(s, "status", data, sid);
    json_decref(data);
}

void sim_server_close_clients(struct sim_server *s)
{
    while (s->nclients > 0)
        drop_client(s, s->nclients - 1);
}

void sim_server_drop_clients(struct sim_server *s)
{
    while (s->nclients > 0)
        sim_ws_abort(s->clients[--s->nclients].ws);
}

void sim_server_prompt_accepted(struct sim_server *s)
{
    s->accepted++;
    if (s->cfg.refuse_after == 0 || s->accepted != s->cfg.refuse_after || s->http == NULL)
        return;
    fprintf(stderr, "comfysim: %" PRIu64 " prompts accepted, refusing connections\n", s->accepted);
    sim_server_drop_clients(s);
    /* Refused, not merely unanswered: http_server_shutdown ends the listen state (the port
     * stays bound, so connect() gets ECONNREFUSED rather than someone else's server), closes
     * idle connections and lets busy ones finish their answer with Connection: close. The
     * reactor keeps running (no ring_stop), and so does the prompt worker. */
    http_server_shutdown(s->http);
}

static void crash_cb(struct ring_timer *t)
{
    static const char msg[] = "comfysim: injected crash\n";
    (void)t;
    ssize_t n = write(STDERR_FILENO, msg, sizeof(msg) - 1);
    (void)n;
    _exit(SIM_CRASH_STATUS); /* like a GPU driver crash: no cleanup, no flushing, no goodbye */
}

/* CRASH and WS_DROP: the faults the I/O-less executor leaves to us. */
static void fault_cb(void *ctx, enum sim_fault fault)
{
    struct sim_server *s = ctx;
    if (fault == SIM_FAULT_CRASH) {
        /* Die on the reactor's next turn, not inside this one: the answer to POST /prompt
         * may still be queued in this turn (the worker starts at once), and in ComfyUI it
         * has long gone out before a node runs. Meanwhile the node hangs. 1 ms, because a
         * 0 ms timer would fire within the current timer pass. */
        if (ring_timer_arm(s->ring, &s->crash_timer, 1) != 0)
            crash_cb(&s->crash_timer);
        return;
    }
    if (fault == SIM_FAULT_WS_DROP)
        sim_server_drop_clients(s);
}

/* --- the prompt worker ---------------------------------------------------------------------- */

static void end_prompt(struct sim_server *s)
{
    json_t *result = NULL, *status = NULL;
    if (sim_exec_result(s->exec, &result, &status) == 0)
        sim_queue_task_done(s->queue, result, status); /* broadcasts status */
    json_decref(result);
    json_decref(status);
    sim_exec_finish(s->exec); /* executing {node: null} */
}

static bool start_prompt(struct sim_server *s)
{
    if (s->free_memory) {
        sim_exec_reset_cache(s->exec);
        s->free_memory = false;
    }
    const struct sim_queue_item *it = sim_queue_start_next(s->queue);
    if (it == NULL)
        return false;
    if (sim_exec_start(s->exec, it->prompt_id, it->prompt, it->extra_data, it->outputs,
                       sim_server_now_ms()) != 0) {
        /* could not even start (memory): file it as failed rather than wedge the queue */
        json_t *res = json_pack("{s:{}, s:{}}", "outputs", "meta");
        json_t *st =
            json_pack("{s:s, s:b, s:[]}", "status_str", "error", "completed", 0, "messages");
        sim_queue_task_done(s->queue, res, st);
        json_decref(res);
        json_decref(st);
        return true;
    }
    return true;
}

static void timer_cb(struct ring_timer *t)
{
    struct sim_server *s = (struct sim_server *)((char *)t - offsetof(struct sim_server, timer));
    for (;;) {
        if (!sim_exec_running(s->exec) && !start_prompt(s)) {
            if (s->free_memory) {
                sim_exec_reset_cache(s->exec); /* the worker applies /free while idle too */
                s->free_memory = false;
            }
            return;
        }
        if (!sim_exec_running(s->exec))
            continue;
        int64_t d = sim_exec_step(s->exec, sim_server_now_ms());
        if (d > 0) {
            ring_timer_arm(s->ring, &s->timer, (uint64_t)d);
            return;
        }
        if (d == SIM_EXEC_DONE)
            end_prompt(s);
        /* d == 0: the next step is due now, but yield so requests get served in between */
        if (d == 0 || d == SIM_EXEC_DONE) {
            ring_timer_arm(s->ring, &s->timer, 0);
            return;
        }
    }
}

void sim_server_kick(struct sim_server *s)
{
    if (s->ring != NULL && !ring_timer_armed(&s->timer) && !sim_exec_running(s->exec))
        ring_timer_arm(s->ring, &s->timer, 0);
}

/* --- life cycle ------------------------------------------------------------------------------ */

static int engine_new(struct sim_server *s)
{
    struct sim_queue_config qc = {s->cfg.max_pending, s->cfg.max_history, s->cfg.seed, status_cb,
                                  s};
    int rc = sim_queue_create(&qc, &s->queue);
    if (rc != 0)
        return rc;
    uint64_t max_px = s->cfg.max_pixels > 0 ? s->cfg.max_pixels : 16ull << 20;
    struct sim_exec_config ec = {
        .exec_ms = s->cfg.exec_ms,
        .step_ms = s->cfg.step_ms,
        .max_numel = max_px * 3,
        .seed = s->cfg.seed ^ 0xC0FFEE,
        .fault = s->cfg.fault,
        .fault_class = s->cfg.fault_class,
        .fault_times = s->cfg.fault_times,
        .png_level = s->cfg.png_level,
        .emit_cb = emit_cb,
        .binary_cb = binary_cb,
        .fault_cb = fault_cb,
        .cb_ctx = s,
    };
    return sim_exec_create(&ec, s->nodes, &s->dirfs.fs, &s->exec);
}

int sim_server_new(struct sim_server **out, const struct sim_server_config *cfg)
{
    struct sim_server *s = calloc(1, sizeof(*s));
    *out = s;
    if (s == NULL)
        return -ENOMEM;
    s->cfg = *cfg;
    if (s->cfg.max_clients == 0)
        s->cfg.max_clients = DEFAULT_MAX_CLIENTS;
    s->rng = cfg->seed;
    s->timer.cb = timer_cb;
    s->crash_timer.cb = crash_cb;
    s->dirfs.dirs[0] = s->dirfs.dirs[1] = s->dirfs.dirs[2] = -1;
    s->clients = calloc(s->cfg.max_clients, sizeof(*s->clients));
    if (s->clients == NULL)
        return -ENOMEM;
    int rc = sim_nodes_create(&cfg->nodes, &s->nodes, s->err, sizeof(s->err));
    if (rc != 0)
        return -EINVAL;
    rc = sim_dirfs_open(&s->dirfs, cfg->root, s->err, sizeof(s->err));
    if (rc != 0)
        return rc;
    if (cfg->view_delay_ms > 0 &&
        sim_files_waits_init(&s->view_waits, s, SIM_VIEW_WAITS_MAX) != 0) {
        snprintf(s->err, sizeof(s->err), "out of memory for the /view delay timers");
        return -ENOMEM;
    }
    rc = engine_new(s);
    if (rc != 0)
        snprintf(s->err, sizeof(s->err), "cannot create the engine: %s", strerror(-rc));
    return rc;
}

void sim_server_free(struct sim_server *s)
{
    if (s == NULL)
        return;
    if (s->ring != NULL && ring_timer_armed(&s->timer))
        ring_timer_cancel(s->ring, &s->timer);
    if (s->ring != NULL && ring_timer_armed(&s->crash_timer))
        ring_timer_cancel(s->ring, &s->crash_timer);
    sim_server_close_clients(s);
    sim_files_waits_fini(&s->view_waits, s->ring);
    sim_exec_destroy(s->exec);
    sim_queue_destroy(s->queue);
    sim_nodes_destroy(s->nodes);
    sim_dirfs_close(&s->dirfs);
    free(s->clients);
    free(s);
}

void sim_server_attach(struct sim_server *s, struct ring *r, struct http_server *http)
{
    s->ring = r;
    s->http = http;
}

int sim_server_routes(struct sim_server *s, struct http_router *router)
{
    return sim_routes_register(s, router);
}
