/*
 * sim_exec — steppable executor: scheduling, caching, timing and ComfyUI's WebSocket
 * messages around the node implementations of sim_ops (see sim_exec.h).
 */
#include "sim/sim_exec.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sim/sim_buf.h"
#include "sim/sim_graph.h"
#include "sim/sim_json.h"
#include "sim/sim_ops.h"
#include "sim/sim_queue.h"

#define STEP_CONTINUE (-3) /* internal: the node finished, pick the next one now */
#define INPUTS_MAX 64      /* declared inputs of one class */

/* The frames every node exception starts with (transcript 13). */
static const char *const frames_execute[] = {
    "  File \"/opt/ComfyUI/execution.py\", line 518, in execute\n    output_data, output_ui, "
    "has_subgraph, has_pending_tasks = await get_output_data(prompt_id, unique_id, obj, input"
    "_data_all, execution_block_cb=execution_block_cb, pre_execute_cb=pre_execute_cb, v3_data"
    "=v3_data)\n                                                              ^^^^^^^^^^^^^^^"
    "^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^"
    "^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^\n",
    "  File \"/opt/ComfyUI/execution.py\", line 329, in get_output_data\n    return_values = "
    "await _async_map_node_over_list(prompt_id, unique_id, obj, input_data_all, obj.FUNCTION,"
    " allow_interrupt=True, execution_block_cb=execution_block_cb, pre_execute_cb=pre_execute"
    "_cb, v3_data=v3_data)\n                    ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^"
    "^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^"
    "^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^\n",
    "  File \"/opt/ComfyUI/execution.py\", line 303, in _async_map_node_over_list\n    await "
    "process_inputs(input_dict, i)\n",
    "  File \"/opt/ComfyUI/execution.py\", line 291, in process_inputs\n    result = f(**inpu"
    "ts)\n             ^^^^^^^^^^^\n",
    NULL};

static const char oom_tips[] =
    "This error means you ran out of memory on your GPU.\n\nTIPS: If the workflow worked "
    "before you might have accidentally set the batch_size to a large number.";

static const char *const frames_injected[] = {
    "  File \"/opt/ComfyUI/comfy/model_management.py\", line 1284, in sim_fault\n"
    "    raise RuntimeError(message)\n",
    NULL};

enum phase {
    PHASE_PICK,    /* choose and start the next node */
    PHASE_RUNNING, /* a node is executing: ticks, hang or finish next */
    PHASE_DONE,    /* ended; waiting for sim_exec_result/sim_exec_finish */
};

enum pstate { P_PENDING, P_RUNNING, P_FINISHED };

/* ProgressRegistry entry, kept in insertion order. */
struct progress {
    int node;
    enum pstate state;
    json_t *value;
    json_t *max;
};

struct cache_entry {
    uint64_t sig;
    struct sim_node_result *result;
};

struct run {
    char prompt_id[SIM_PROMPT_ID_MAX];
    char *client_id; /* NULL: nobody gets the client-only messages */
    json_t *extra_data;
    struct sim_graph g;
    struct sim_node_result **results; /* per node: executed or cached outputs */
    struct progress *prog;
    size_t nprog;
    json_t *messages;   /* status_messages */
    json_t *ui_outputs; /* id -> {meta, output}, in execution order */
    json_t *executed;   /* ids executed in this run */
    bool success;
    enum phase phase;
    int cur;
    struct sim_op_out op;
    int op_rc;
    struct sim_op_error err;
    json_t *err_inputs; /* current_inputs of a failing node */
    int64_t tick;
    bool hang;
    enum sim_fault fault;
    bool fault_from_cfg; /* not asked for in extra_data: fault_times applies */
    const char *fault_node;
    const char *fault_class;
    bool fault_used;
    int64_t now_ms;
    struct tm now_tm;
};

struct sim_exec {
    struct sim_exec_config cfg;
    const struct sim_nodes *nodes;
    const struct sim_fs *fs;
    struct cache_entry *cache;
    size_t ncache;
    uint64_t rng;
    bool interrupt;
    bool active;
    uint64_t faults_hit; /* prompts the configured fault has hit (for fault_times) */
    struct run run;
};

bool sim_fault_parse(const char *name, enum sim_fault *out)
{
    /* in enum order */
    static const char *const names[] = {"none", "oom", "exception", "hang", "crash", "ws-drop"};
    for (int i = 0; i < (int)(sizeof(names) / sizeof(names[0])); i++) {
        if (strcmp(name, names[i]) == 0) {
            *out = (enum sim_fault)i;
            return true;
        }
    }
    return false;
}

int sim_exec_create(const struct sim_exec_config *cfg, const struct sim_nodes *nodes,
                    const struct sim_fs *fs, struct sim_exec **out)
{
    struct sim_exec *e = calloc(1, sizeof(*e));
    *out = NULL;
    if (e == NULL)
        return -ENOMEM;
    e->cfg = *cfg;
    if (e->cfg.hang_poll_ms <= 0)
        e->cfg.hang_poll_ms = 100;
    if (e->cfg.max_numel == 0)
        e->cfg.max_numel = 64ull << 20;
    if (e->cfg.max_file_bytes == 0)
        e->cfg.max_file_bytes = 64u << 20;
    if (e->cfg.cache_max == 0)
        e->cfg.cache_max = 4096;
    e->nodes = nodes;
    e->fs = fs;
    e->rng = cfg->seed ^ 0x5DEECE66Dull;
    e->cache = calloc(e->cfg.cache_max, sizeof(*e->cache));
    if (e->cache == NULL) {
        free(e);
        return -ENOMEM;
    }
    *out = e;
    return 0;
}

static void run_free(struct sim_exec *e);

void sim_exec_destroy(struct sim_exec *e)
{
    if (e == NULL)
        return;
    run_free(e);
    sim_exec_reset_cache(e);
    free(e->cache);
    free(e);
}

void sim_exec_reset_cache(struct sim_exec *e)
{
    for (size_t i = 0; i < e->ncache; i++)
        sim_node_result_unref(e->cache[i].result);
    e->ncache = 0;
}

size_t sim_exec_cache_size(const struct sim_exec *e)
{
    return e->ncache;
}

uint64_t sim_exec_faults_hit(const struct sim_exec *e)
{
    return e->faults_hit;
}

static struct sim_node_result *cache_get(const struct sim_exec *e, uint64_t sig)
{
    for (size_t i = 0; i < e->ncache; i++) {
        if (e->cache[i].sig == sig)
            return e->cache[i].result;
    }
    return NULL;
}

static void cache_put(struct sim_exec *e, uint64_t sig, struct sim_node_result *r)
{
    for (size_t i = 0; i < e->ncache; i++) {
        if (e->cache[i].sig == sig) {
            sim_node_result_unref(e->cache[i].result);
            e->cache[i].result = sim_node_result_ref(r);
            return;
        }
    }
    if (e->ncache == e->cfg.cache_max) {
        /* Full: the oldest entry goes (ComfyUI's classic cache has no bound). */
        sim_node_result_unref(e->cache[0].result);
        memmove(e->cache, e->cache + 1, (e->ncache - 1) * sizeof(*e->cache));
        e->ncache--;
    }
    e->cache[e->ncache++] = (struct cache_entry){sig, sim_node_result_ref(r)};
}

/* HierarchicalCache.clean_unused(): keep only keys the new prompt uses. */
static void cache_clean(struct sim_exec *e, const struct sim_graph *g)
{
    size_t kept = 0;
    for (size_t i = 0; i < e->ncache; i++) {
        bool used = false;
        for (size_t k = 0; k < g->n && !used; k++)
            used = g->v[k].sig == e->cache[i].sig;
        if (used)
            e->cache[kept++] = e->cache[i];
        else
            sim_node_result_unref(e->cache[i].result);
    }
    e->ncache = kept;
}

/* --- messages --------------------------------------------------------------------------- */

/* send_sync(type, data, client_id); client_only for messages sent only `if client_id`. */
static void emit(struct sim_exec *e, const char *type, json_t *data, bool client_only)
{
    if (data != NULL && e->cfg.emit_cb != NULL && (!client_only || e->run.client_id != NULL))
        e->cfg.emit_cb(e->cfg.cb_ctx, type, data, e->run.client_id);
    json_decref(data);
}

/* PromptExecutor.add_message: recorded for history, sent to the client (or all, if
 * broadcast and there is no client). */
static void add_message(struct sim_exec *e, const char *type, json_t *data, bool broadcast)
{
    struct run *r = &e->run;
    if (data == NULL)
        return;
    json_object_set_new(data, "timestamp", json_integer(r->now_ms));
    json_array_append_new(r->messages, json_pack("[sO]", type, data));
    emit(e, type, data, !broadcast);
}

static json_t *node_meta(const char *id)
{
    return json_pack("{s:s, s:s, s:n, s:s}", "node_id", id, "display_node", id, "parent_node",
                     "real_node_id", id);
}

static struct progress *progress_entry(struct run *r, int node)
{
    for (size_t i = 0; i < r->nprog; i++) {
        if (r->prog[i].node == node)
            return &r->prog[i];
    }
    struct progress *p = &r->prog[r->nprog++];
    *p = (struct progress){node, P_PENDING, json_integer(0), json_integer(1)};
    return p;
}

static void send_progress_state(struct sim_exec *e)
{
    struct run *r = &e->run;
    json_t *nodes = json_object();
    for (size_t i = 0; nodes != NULL && i < r->nprog; i++) {
        const struct progress *p = &r->prog[i];
        const char *id = r->g.v[p->node].id;
        if (p->state == P_PENDING)
            continue;
        json_object_set_new(nodes, id,
                            json_pack("{s:O, s:O, s:s, s:s, s:s, s:s, s:n, s:s}", "value", p->value,
                                      "max", p->max, "state",
                                      p->state == P_RUNNING ? "running" : "finished", "node_id", id,
                                      "prompt_id", r->prompt_id, "display_node_id", id,
                                      "parent_node_id", "real_node_id", id));
    }
    emit(e, "progress_state", json_pack("{s:s, s:o}", "prompt_id", r->prompt_id, "nodes", nodes),
         false);
}

static void set_progress(struct sim_exec *e, int node, enum pstate st, json_t *value, json_t *max)
{
    struct progress *p = progress_entry(&e->run, node);
    p->state = st;
    json_decref(p->value);
    json_decref(p->max);
    p->value = value;
    p->max = max;
    send_progress_state(e);
}

static void finish_progress(struct sim_exec *e, int node)
{
    struct progress *p = progress_entry(&e->run, node);
    set_progress(e, node, P_FINISHED, json_incref(p->max), json_incref(p->max));
}

/* --- ending a prompt ---------------------------------------------------------------------- */

static json_t *executed_ids(const struct run *r)
{
    return json_deep_copy(r->executed);
}

static void interrupted(struct sim_exec *e, int node)
{
    struct run *r = &e->run;
    const struct sim_graph_node *gn = &r->g.v[node];
    /* broadcast=True: it reaches every client when the prompt has no client_id. */
    add_message(e, "execution_interrupted",
                json_pack("{s:s, s:s, s:s, s:o}", "prompt_id", r->prompt_id, "node_id", gn->id,
                          "node_type", gn->cls->name, "executed", executed_ids(r)),
                true);
    r->success = false;
    r->phase = PHASE_DONE;
}

static json_t *traceback(const struct sim_op_error *err)
{
    json_t *tb = json_array();
    for (size_t i = 0; tb != NULL && frames_execute[i] != NULL; i++)
        json_array_append_new(tb, json_string(frames_execute[i]));
    for (size_t i = 0; tb != NULL && err->frames != NULL && err->frames[i] != NULL; i++)
        json_array_append_new(tb, json_string(err->frames[i]));
    return tb;
}

static json_t *all_node_ids(const struct run *r)
{
    json_t *ids = json_array();
    for (size_t i = 0; ids != NULL && i < r->g.n; i++)
        json_array_append_new(ids, json_string(r->g.v[i].id));
    return ids;
}

static void failed(struct sim_exec *e, int node)
{
    struct run *r = &e->run;
    const struct sim_graph_node *gn = &r->g.v[node];
    struct sim_buf msg;
    sim_buf_init(&msg, sizeof(r->err.message) + sizeof(oom_tips) + 2);
    /* "{}\n{}".format(ex, tips): the message always ends in a newline plus the tips. */
    sim_buf_printf(&msg, "%s\n%s", r->err.message, r->err.oom ? oom_tips : "");
    json_t *inputs = r->err_inputs != NULL ? json_incref(r->err_inputs) : json_object();
    json_t *mes = json_pack(
        "{s:s, s:s, s:s, s:o, s:s, s:s, s:o, s:o, s:o}", "prompt_id", r->prompt_id, "node_id",
        gn->id, "node_type", gn->cls->name, "executed", executed_ids(r), "exception_message",
        msg.data != NULL ? (const char *)msg.data : "", "exception_type", r->err.type, "traceback",
        traceback(&r->err), "current_inputs", inputs, "current_outputs", all_node_ids(r));
    sim_buf_free(&msg);
    add_message(e, "execution_error", mes, false);
    r->success = false;
    r->phase = PHASE_DONE;
}

static void cycle_failed(struct sim_exec *e)
{
    struct run *r = &e->run;
    /* Should not happen after validation (cycles fail there); report it like ComfyUI. */
    add_message(e, "execution_error",
                json_pack("{s:s, s:s, s:s, s:o, s:s, s:s, s:[], s:{}, s:o}", "prompt_id",
                          r->prompt_id, "node_id", "", "node_type", "", "executed", executed_ids(r),
                          "exception_message", "Dependency cycle detected\n", "exception_type",
                          "comfy_execution.graph.DependencyCycleError", "traceback",
                          "current_inputs", "current_outputs", all_node_ids(r)),
                false);
    r->success = false;
    r->phase = PHASE_DONE;
}

/* --- running nodes ------------------------------------------------------------------------ */

static const struct sim_value *linked_value(const struct run *r, const json_t *val)
{
    int64_t slot;
    int from = sim_graph_link(&r->g, val, &slot);
    const struct sim_node_result *res = from >= 0 ? r->results[from] : NULL;
    if (res == NULL || slot < 0 || (size_t)slot >= res->n)
        return NULL;
    return &res->v[slot];
}

/* The declared inputs the node was given, as sim_ops wants them. */
static size_t node_inputs(const struct run *r, int node, struct sim_op_input *in, size_t max)
{
    static const char *const cats[2] = {"required", "optional"};
    const struct sim_graph_node *gn = &r->g.v[node];
    json_t *given = json_object_get(gn->node, "inputs");
    size_t n = 0;
    for (int k = 0; k < 2; k++) {
        const char *name;
        json_t *spec;
        json_object_foreach(json_object_get(json_object_get(gn->cls->info, "input"), cats[k]), name,
                            spec)
        {
            json_t *val = json_object_get(given, name);
            if (val == NULL || n == max)
                continue;
            const struct sim_value *linked = json_is_array(val) ? linked_value(r, val) : NULL;
            in[n++] = (struct sim_op_input){name, json_is_array(val) ? NULL : val, linked};
        }
    }
    return n;
}

static json_t *format_json(const json_t *v)
{
    struct sim_buf b;
    if (!json_is_object(v) && !json_is_array(v))
        return json_incref((json_t *)v);
    sim_buf_init(&b, 1u << 24);
    sim_json_repr(v, &b); /* str() of a dict */
    json_t *s = b.err == 0 ? json_string((const char *)b.data) : NULL;
    sim_buf_free(&b);
    return s;
}

/* get_input_data + format_value: execution_error's current_inputs. */
static json_t *format_inputs(const struct run *r, int node)
{
    const struct sim_graph_node *gn = &r->g.v[node];
    json_t *out = json_object();
    const char *name;
    json_t *val;
    json_object_foreach(json_object_get(gn->node, "inputs"), name, val)
    {
        const struct sim_value *lv = json_is_array(val) ? linked_value(r, val) : NULL;
        if (json_is_array(val))
            json_object_set_new(
                out, name, json_pack("[o]", lv != NULL ? sim_ops_format_value(lv) : json_null()));
        else if (sim_node_input(gn->cls, name, NULL) != NULL)
            json_object_set_new(out, name, json_pack("[o]", format_json(val)));
    }
    if (gn->cls->flags & SIM_NODE_F_V3)
        return out; /* V3 nodes get hidden values elsewhere */
    json_object_foreach(json_object_get(json_object_get(gn->cls->info, "input"), "hidden"), name,
                        val)
    {
        const char *kind = json_string_value(val);
        json_t *pnginfo = json_object_get(r->extra_data, "extra_pnginfo");
        if (kind != NULL && strcmp(kind, "PROMPT") == 0)
            json_object_set_new(out, name, json_pack("[o]", format_json(r->g.prompt)));
        else if (kind != NULL && strcmp(kind, "EXTRA_PNGINFO") == 0)
            json_object_set_new(
                out, name, json_pack("[o]", pnginfo != NULL ? format_json(pnginfo) : json_null()));
        else if (kind != NULL && strcmp(kind, "UNIQUE_ID") == 0)
            json_object_set_new(out, name, json_pack("[s]", gn->id));
    }
    return out;
}

static bool fault_hits(struct sim_exec *e, int node)
{
    struct run *r = &e->run;
    const struct sim_graph_node *gn = &r->g.v[node];
    if (r->fault == SIM_FAULT_NONE || r->fault_used)
        return false;
    if (r->fault_from_cfg && e->cfg.fault_times > 0 && e->faults_hit >= e->cfg.fault_times)
        return false;
    if (r->fault_node != NULL)
        return strcmp(r->fault_node, gn->id) == 0;
    if (r->fault_class != NULL)
        return strcmp(r->fault_class, gn->cls->name) == 0;
    return sim_node_is_output(gn->cls);
}

/* Returns true when the fault replaces the node's work, false when the node still runs. */
static bool inject_fault(struct sim_exec *e)
{
    struct run *r = &e->run;
    const struct sim_graph_node *gn = &r->g.v[r->cur];
    r->fault_used = true;
    if (r->fault_from_cfg)
        e->faults_hit++;
    if (r->fault == SIM_FAULT_CRASH || r->fault == SIM_FAULT_WS_DROP) {
        /* outside the prompt: only the caller can crash the process or cut its sockets */
        if (e->cfg.fault_cb != NULL)
            e->cfg.fault_cb(e->cfg.cb_ctx, r->fault);
        if (r->fault == SIM_FAULT_WS_DROP)
            return false;
    }
    if (r->fault == SIM_FAULT_HANG || r->fault == SIM_FAULT_CRASH) {
        /* a crashing node never completes, however long the caller takes to die */
        r->hang = true;
        return true;
    }
    r->op_rc = SIM_OPS_RAISED;
    if (r->fault == SIM_FAULT_OOM) {
        sim_ops_oom(&r->err, 2.0);
        return true;
    }
    snprintf(r->err.type, sizeof(r->err.type), "RuntimeError");
    snprintf(r->err.message, sizeof(r->err.message), "comfysim: injected failure in %s (node %s)",
             gn->cls->name, gn->id);
    r->err.frames = frames_injected;
    r->err.oom = false;
    return true;
}

/* Starts a node: progress_state running, executing, interrupt check, then the work. */
static int64_t begin_node(struct sim_exec *e, int node)
{
    struct run *r = &e->run;
    const struct sim_graph_node *gn = &r->g.v[node];
    set_progress(e, node, P_RUNNING, json_real(0.0), json_real(1.0));
    emit(e, "executing",
         json_pack("{s:s, s:s, s:s}", "node", gn->id, "display_node", gn->id, "prompt_id",
                   r->prompt_id),
         true);
    if (e->interrupt) {
        interrupted(e, node);
        return SIM_EXEC_DONE;
    }
    r->cur = node;
    r->tick = 0;
    r->hang = false;
    r->op_rc = SIM_OPS_OK;
    memset(&r->op, 0, sizeof(r->op));
    struct sim_op_input in[INPUTS_MAX];
    size_t nin = node_inputs(r, node, in, INPUTS_MAX);
    bool replaced = fault_hits(e, node) && inject_fault(e);
    if (!replaced) {
        json_t *pnginfo = json_object_get(r->extra_data, "extra_pnginfo");
        struct sim_op_env env = {e->fs,       e->cfg.max_numel, e->cfg.max_file_bytes,
                                 r->g.prompt, pnginfo,          gn->id,
                                 &r->now_tm,  &e->rng,          e->cfg.png_level};
        r->op_rc = sim_ops_run(gn->cls, &env, in, nin, &r->op, &r->err);
    }
    if (r->op_rc != SIM_OPS_OK)
        r->err_inputs = format_inputs(r, node);
    r->phase = PHASE_RUNNING;
    if (r->hang)
        return e->cfg.hang_poll_ms;
    return e->cfg.exec_ms + (r->op_rc == SIM_OPS_OK && r->op.ticks > 0 ? e->cfg.step_ms : 0);
}

static void send_text_frame(struct sim_exec *e, const char *node_id, const char *text)
{
    struct sim_buf b;
    sim_buf_init(&b, 16u << 20);
    sim_buf_put_be32(&b, 3); /* BinaryEventTypes.TEXT */
    sim_buf_put_be32(&b, (uint32_t)strlen(node_id));
    sim_buf_puts(&b, node_id);
    sim_buf_puts(&b, text);
    /* send_progress_text passes sid=None: every socket gets it. */
    if (b.err == 0 && e->cfg.binary_cb != NULL)
        e->cfg.binary_cb(e->cfg.cb_ctx, b.data, b.len, NULL);
    sim_buf_free(&b);
}

static void finish_node(struct sim_exec *e)
{
    struct run *r = &e->run;
    int node = r->cur;
    const struct sim_graph_node *gn = &r->g.v[node];
    struct sim_node_result *res = r->op.result;
    if (r->op.text != NULL)
        send_text_frame(e, gn->id, r->op.text);
    if (res->ui != NULL) {
        res->ui_meta = node_meta(gn->id);
        json_object_set_new(r->ui_outputs, gn->id,
                            json_pack("{s:O, s:O}", "meta", res->ui_meta, "output", res->ui));
        emit(e, "executed",
             json_pack("{s:s, s:s, s:O, s:s}", "node", gn->id, "display_node", gn->id, "output",
                       res->ui, "prompt_id", r->prompt_id),
             true);
    }
    finish_progress(e, node);
    json_array_append_new(r->executed, json_string(gn->id));
    cache_put(e, gn->sig, res);
    r->results[node] = res; /* the run keeps the op's reference */
    free(r->op.text);
    memset(&r->op, 0, sizeof(r->op));
    sim_graph_complete(&r->g, node);
    r->phase = PHASE_PICK;
}

/* After the node's time has passed: sampler ticks, a hang, an error or the end. */
static int64_t continue_node(struct sim_exec *e)
{
    struct run *r = &e->run;
    const struct sim_graph_node *gn = &r->g.v[r->cur];
    if (r->hang) {
        if (!e->interrupt)
            return e->cfg.hang_poll_ms;
        interrupted(e, r->cur);
        return SIM_EXEC_DONE;
    }
    if (r->op_rc != SIM_OPS_OK) {
        failed(e, r->cur);
        return SIM_EXEC_DONE;
    }
    if (r->tick < r->op.ticks) {
        /* ProgressBar hook: interrupt check, progress_state, then progress. */
        if (e->interrupt) {
            interrupted(e, r->cur);
            return SIM_EXEC_DONE;
        }
        r->tick++;
        set_progress(e, r->cur, P_RUNNING, json_integer(r->tick), json_integer(r->op.ticks));
        emit(e, "progress",
             json_pack("{s:I, s:I, s:s, s:s}", "value", (json_int_t)r->tick, "max",
                       (json_int_t)r->op.ticks, "prompt_id", r->prompt_id, "node", gn->id),
             false);
        if (r->tick < r->op.ticks)
            return e->cfg.step_ms;
    }
    finish_node(e);
    return STEP_CONTINUE;
}

/* A cached output node: its UI output is replayed, nothing runs. */
static void replay_cached(struct sim_exec *e, int node)
{
    struct run *r = &e->run;
    const struct sim_graph_node *gn = &r->g.v[node];
    const struct sim_node_result *res = r->results[node];
    emit(e, "executed",
         json_pack("{s:s, s:s, s:O, s:s}", "node", gn->id, "display_node", gn->id, "output",
                   res->ui != NULL ? res->ui : json_null(), "prompt_id", r->prompt_id),
         true);
    if (res->ui != NULL)
        json_object_set_new(r->ui_outputs, gn->id,
                            json_pack("{s:O, s:O}", "meta",
                                      res->ui_meta != NULL ? res->ui_meta : json_null(), "output",
                                      res->ui));
    finish_progress(e, node);
    sim_graph_complete(&r->g, node);
}

/* --- the prompt's life cycle ---------------------------------------------------------------- */

static void set_now(struct sim_exec *e, int64_t now_ms)
{
    time_t t = (time_t)(now_ms / 1000 + e->cfg.tz_offset_s);
    e->run.now_ms = now_ms;
    gmtime_r(&t, &e->run.now_tm);
}

static void run_free(struct sim_exec *e)
{
    struct run *r = &e->run;
    for (size_t i = 0; r->results != NULL && i < r->g.n; i++)
        sim_node_result_unref(r->results[i]);
    for (size_t i = 0; i < r->nprog; i++) {
        json_decref(r->prog[i].value);
        json_decref(r->prog[i].max);
    }
    sim_node_result_unref(r->op.result);
    free(r->op.text);
    free(r->results);
    free(r->prog);
    free(r->client_id);
    sim_graph_free(&r->g);
    json_decref(r->extra_data);
    json_decref(r->messages);
    json_decref(r->ui_outputs);
    json_decref(r->executed);
    json_decref(r->err_inputs);
    memset(r, 0, sizeof(*r));
    e->active = false;
}

/* client_id, and the fault this prompt asks for, from extra_data. */
static int read_extra_data(struct sim_exec *e, const json_t *extra_data)
{
    struct run *r = &e->run;
    json_t *client = json_object_get(extra_data, "client_id");
    if (client != NULL && !json_is_null(client)) {
        struct sim_buf b;
        sim_buf_init(&b, 4096);
        sim_json_str(client, &b);
        r->client_id = sim_buf_take(&b, NULL);
        if (r->client_id == NULL)
            return -ENOMEM;
    }
    r->extra_data = extra_data != NULL ? json_deep_copy(extra_data) : json_object();
    r->fault = e->cfg.fault;
    r->fault_class = e->cfg.fault_class != NULL ? e->cfg.fault_class : "KSampler";
    const char *fault = json_string_value(json_object_get(r->extra_data, "comfysim_fault"));
    r->fault_from_cfg = fault == NULL || !sim_fault_parse(fault, &r->fault);
    r->fault_node = json_string_value(json_object_get(r->extra_data, "comfysim_fault_node"));
    return r->extra_data != NULL ? 0 : -ENOMEM;
}

/* Cache keys, cache cleaning and execution_cached. */
static int mark_cached(struct sim_exec *e)
{
    struct run *r = &e->run;
    int rc = sim_graph_signatures(&r->g, e->fs, e->cfg.max_file_bytes, &e->rng);
    if (rc != 0)
        return rc;
    cache_clean(e, &r->g);
    json_t *cached = json_array();
    bool fault_class_present = false;
    for (size_t i = 0; cached != NULL && i < r->g.n; i++) {
        struct sim_node_result *res = cache_get(e, r->g.v[i].sig);
        fault_class_present |= strcmp(r->g.v[i].cls->name, r->fault_class) == 0;
        if (res == NULL)
            continue;
        r->g.v[i].cached = true;
        r->results[i] = sim_node_result_ref(res);
        json_array_append_new(cached, json_string(r->g.v[i].id));
    }
    if (!fault_class_present)
        r->fault_class = NULL; /* no such node: the fault hits the first output instead */
    add_message(e, "execution_cached",
                json_pack("{s:o, s:s}", "nodes", cached, "prompt_id", r->prompt_id), false);
    return cached != NULL ? 0 : -ENOMEM;
}

static int schedule_outputs(struct run *r, const json_t *outputs)
{
    for (size_t i = 0; i < json_array_size(outputs); i++) {
        int idx = sim_graph_find(&r->g, json_string_value(json_array_get(outputs, i)));
        if (idx >= 0 && sim_graph_add_output(&r->g, idx) != 0)
            return -ENOMEM;
    }
    return 0;
}

static int start_run(struct sim_exec *e, const json_t *prompt, const json_t *extra_data,
                     const json_t *outputs)
{
    struct run *r = &e->run;
    /* DynamicPrompt works on a copy: "is_changed" lands there, not in /history. */
    json_t *copy = json_deep_copy(prompt);
    int rc = copy != NULL ? sim_graph_build(&r->g, e->nodes, copy) : -ENOMEM;
    json_decref(copy);
    for (size_t i = 0; rc == 0 && i < r->g.n; i++)
        rc = r->g.v[i].cls != NULL ? 0 : -EINVAL; /* only validated prompts get here */
    if (rc != 0)
        return rc;
    r->results = calloc(r->g.n + 1, sizeof(*r->results));
    r->prog = calloc(r->g.n + 1, sizeof(*r->prog));
    r->messages = json_array();
    r->ui_outputs = json_object();
    r->executed = json_array();
    if (r->results == NULL || r->prog == NULL || r->messages == NULL || r->ui_outputs == NULL ||
        r->executed == NULL)
        return -ENOMEM;
    rc = read_extra_data(e, extra_data);
    if (rc != 0)
        return rc;
    add_message(e, "execution_start", json_pack("{s:s}", "prompt_id", r->prompt_id), false);
    rc = mark_cached(e);
    return rc == 0 ? schedule_outputs(r, outputs) : rc;
}

int sim_exec_start(struct sim_exec *e, const char *prompt_id, const json_t *prompt,
                   const json_t *extra_data, const json_t *outputs, int64_t now_ms)
{
    if (e->active)
        return -EBUSY;
    memset(&e->run, 0, sizeof(e->run));
    e->active = true;
    e->interrupt = false; /* execute() starts with interrupt_processing(False) */
    snprintf(e->run.prompt_id, sizeof(e->run.prompt_id), "%s", prompt_id);
    set_now(e, now_ms);
    int rc = start_run(e, prompt, extra_data, outputs);
    if (rc != 0) {
        run_free(e);
        return rc;
    }
    e->run.phase = PHASE_PICK;
    return 0;
}

int64_t sim_exec_step(struct sim_exec *e, int64_t now_ms)
{
    struct run *r = &e->run;
    if (!e->active)
        return SIM_EXEC_IDLE;
    set_now(e, now_ms);
    for (;;) {
        if (r->phase == PHASE_DONE)
            return SIM_EXEC_DONE;
        if (r->phase == PHASE_RUNNING) {
            int64_t d = continue_node(e);
            if (d != STEP_CONTINUE)
                return d;
            continue;
        }
        int node = sim_graph_next(&r->g);
        if (node == -1) {
            add_message(e, "execution_success", json_pack("{s:s}", "prompt_id", r->prompt_id),
                        false);
            r->success = true;
            r->phase = PHASE_DONE;
        } else if (node == -2) {
            cycle_failed(e);
        } else if (r->g.v[node].cached) {
            replay_cached(e, node);
        } else {
            int64_t d = begin_node(e, node);
            if (d != STEP_CONTINUE)
                return d;
        }
    }
}

void sim_exec_interrupt(struct sim_exec *e)
{
    if (e->active)
        e->interrupt = true;
}

bool sim_exec_running(const struct sim_exec *e)
{
    return e->active;
}

int sim_exec_result(struct sim_exec *e, json_t **history_result, json_t **status)
{
    struct run *r = &e->run;
    *history_result = NULL;
    *status = NULL;
    if (!e->active || r->phase != PHASE_DONE)
        return -EINVAL;
    json_t *outputs = json_object(), *meta = json_object();
    const char *id;
    json_t *ui;
    json_object_foreach(r->ui_outputs, id, ui)
    {
        json_object_set(outputs, id, json_object_get(ui, "output"));
        json_object_set(meta, id, json_object_get(ui, "meta"));
    }
    *history_result = json_pack("{s:o, s:o}", "outputs", outputs, "meta", meta);
    *status = json_pack("{s:s, s:b, s:O}", "status_str", r->success ? "success" : "error",
                        "completed", r->success, "messages", r->messages);
    if (*history_result == NULL || *status == NULL) {
        json_decref(*history_result);
        json_decref(*status);
        *history_result = *status = NULL;
        return -ENOMEM;
    }
    return 0;
}

void sim_exec_finish(struct sim_exec *e)
{
    if (!e->active)
        return;
    emit(e, "executing", json_pack("{s:n, s:s}", "node", "prompt_id", e->run.prompt_id), true);
    run_free(e);
}
