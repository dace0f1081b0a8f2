/* engine — see engine.h. */
#include "jobs/engine.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "comfy/comfy_graph.h"
#include "http/http_file.h"
#include "jobs/job_store.h"

struct engine {
    struct ring *ring;
    struct comfy_fleet *fleet;
    struct store *store;
    struct engine_config cfg;
    struct workflow_set wf;
    int outputs_fd; /* <storage>/outputs */
    /* jobs by id */
    struct job **buckets;
    size_t nbuckets, njobs;
    /* all jobs, oldest first, for listing and eviction */
    struct job **order;
    size_t norder, order_cap;
    /* priority queue */
    struct job **heap;
    size_t heap_len, heap_cap;
    uint64_t seq;
    size_t running;
    bool stopping;
    struct ring_timer dispatch_timer;
};

/* --- jobs by id ---------------------------------------------------------------------------- */

static size_t hash_id(const char *s)
{
    size_t h = 1469598103934665603ull;
    while (*s)
        h = (h ^ (unsigned char)*s++) * 1099511628211ull;
    return h;
}

static int jobs_put(struct engine *e, struct job *j)
{
    if (e->njobs >= e->nbuckets) {
        size_t nb = e->nbuckets * 2;
        struct job **b = calloc(nb, sizeof(*b));
        if (!b)
            return -ENOMEM;
        for (size_t i = 0; i < e->nbuckets; i++) {
            for (struct job *x = e->buckets[i], *n; x; x = n) {
                n = x->hnext;
                size_t k = hash_id(x->id) & (nb - 1);
                x->hnext = b[k];
                b[k] = x;
            }
        }
        free(e->buckets);
        e->buckets = b;
        e->nbuckets = nb;
    }
    if (e->norder == e->order_cap) {
        size_t nc = e->order_cap ? e->order_cap * 2 : 1024;
        struct job **o = realloc(e->order, nc * sizeof(*o));
        if (!o)
            return -ENOMEM;
        e->order = o;
        e->order_cap = nc;
    }
    size_t k = hash_id(j->id) & (e->nbuckets - 1);
    j->hnext = e->buckets[k];
    e->buckets[k] = j;
    e->njobs++;
    e->order[e->norder++] = j;
    return 0;
}

static struct job *jobs_get(struct engine *e, const char *id)
{
    for (struct job *j = e->buckets[hash_id(id) & (e->nbuckets - 1)]; j; j = j->hnext) {
        if (!strcmp(j->id, id))
            return j;
    }
    return NULL;
}

/* Drops the oldest finished jobs from memory past max_jobs_in_memory (they stay in the store). */
static void jobs_evict(struct engine *e)
{
    size_t w = 0, drop = e->norder > e->cfg.max_jobs_in_memory
                             ? e->norder - e->cfg.max_jobs_in_memory
                             : 0;
    for (size_t i = 0; i < e->norder; i++) {
        struct job *j = e->order[i];
        if (drop && job_finished(j) && !j->persisting && !j->run) {
            struct job **pp = &e->buckets[hash_id(j->id) & (e->nbuckets - 1)];
            while (*pp != j)
                pp = &(*pp)->hnext;
            *pp = j->hnext;
            e->njobs--;
            job_free(j);
            drop--;
            continue;
        }
        e->order[w++] = j;
    }
    e->norder = w;
}

/* --- the queue ------------------------------------------------------------------------------- */

static bool before(const struct job *a, const struct job *b)
{
    return a->priority != b->priority ? a->priority > b->priority : a->seq < b->seq;
}

static void heap_set(struct engine *e, size_t i, struct job *j)
{
    e->heap[i] = j;
    j->heap_idx = i + 1;
}

static void heap_up(struct engine *e, size_t i)
{
    struct job *j = e->heap[i];
    while (i > 0 && before(j, e->heap[(i - 1) / 2])) {
        heap_set(e, i, e->heap[(i - 1) / 2]);
        i = (i - 1) / 2;
    }
    heap_set(e, i, j);
}

static void heap_down(struct engine *e, size_t i)
{
    struct job *j = e->heap[i];
    for (;;) {
        size_t l = 2 * i + 1, m = i;
        const struct job *best = j;
        if (l < e->heap_len && before(e->heap[l], best)) {
            m = l;
            best = e->heap[l];
        }
        if (l + 1 < e->heap_len && before(e->heap[l + 1], best))
            m = l + 1;
        if (m == i)
            break;
        heap_set(e, i, e->heap[m]);
        i = m;
    }
    heap_set(e, i, j);
}

static int queue_push(struct engine *e, struct job *j)
{
    if (e->heap_len == e->heap_cap) {
        size_t nc = e->heap_cap ? e->heap_cap * 2 : 1024;
        struct job **h = realloc(e->heap, nc * sizeof(*h));
        if (!h)
            return -ENOMEM;
        e->heap = h;
        e->heap_cap = nc;
    }
    e->heap[e->heap_len++] = j;
    heap_up(e, e->heap_len - 1);
    return 0;
}

static void queue_remove(struct engine *e, struct job *j)
{
    if (!j->heap_idx)
        return;
    size_t i = j->heap_idx - 1;
    j->heap_idx = 0;
    e->heap_len--;
    if (i == e->heap_len)
        return;
    heap_set(e, i, e->heap[e->heap_len]);
    heap_down(e, i);
    heap_up(e, e->heap[i]->heap_idx - 1);
}

long engine_queue_position(const struct engine *e, const struct job *j)
{
    if (!j->heap_idx)
        return -1;
    long pos = 0;
    for (size_t i = 0; i < e->heap_len; i++)
        pos += before(e->heap[i], j);
    return pos;
}

static size_t queued_for(const struct engine *e, const char *owner)
{
    size_t n = 0;
    for (size_t i = 0; i < e->heap_len; i++)
        n += !strcmp(e->heap[i]->owner, owner);
    return n;
}

/* --- events ------------------------------------------------------------------------------------ */

struct sub_msg {
    struct ring_msg msg;
    struct engine_sub *sub;
    char event[16];
    char *data;
    bool final;
    bool closed;
};

static void sub_msg_cb(struct ring *r, struct ring_msg *m)
{
    struct sub_msg *sm = (struct sub_msg *)m;
    if (sm->closed)
        sm->sub->on_closed(sm->sub);
    else
        sm->sub->on_event(sm->sub, sm->event, sm->data, sm->final);
    free(sm);
}

static void sub_post(struct engine_sub *s, const char *event, json_t *data, bool final)
{
    struct sub_msg *sm = calloc(1, sizeof(*sm));
    if (!sm)
        return;
    sm->msg.cb = sub_msg_cb;
    sm->sub = s;
    snprintf(sm->event, sizeof(sm->event), "%s", event);
    sm->data = data ? json_dumps(data, JSON_COMPACT) : NULL;
    sm->final = final;
    ring_post(s->ring, &sm->msg);
}

/* Sends one event to every listener of j; a final status also detaches them. */
static void emit(struct engine *e, struct job *j, const char *event, json_t *data)
{
    bool final = !strcmp(event, "status") && job_finished(j);
    for (struct engine_sub *s = j->subs; s; s = s->next)
        sub_post(s, event, data, final);
    json_decref(data);
    if (final)
        j->subs = NULL; /* the API side unsubscribes each one when it sees `final` */
}

static void emit_status(struct engine *e, struct job *j)
{
    if (!j->subs || !strcmp(j->last_event_status, job_status_name(j->status)))
        return;
    snprintf(j->last_event_status, sizeof(j->last_event_status), "%s", job_status_name(j->status));
    emit(e, j, "status", job_to_json(j, engine_queue_position(e, j)));
}

/* --- persistence ------------------------------------------------------------------------------ */

static void persist(struct engine *e, struct job *j);
static void dispatch(struct engine *e);

struct save_ctx {
    struct job_save save;
    struct engine *e;
    engine_submit_cb cb; /* the first save of a submit answers the client */
    void *cb_ctx;
};

static void saved_cb(struct job_save *s)
{
    struct save_ctx *sc = (struct save_ctx *)s;
    struct engine *e = sc->e;
    struct job *j = s->job;
    j->persisting = false;
    if (sc->cb) {
        struct engine_submit res;
        memset(&res, 0, sizeof(res));
        if (s->req.rc != SQLITE_OK) {
            /* not durable, so not accepted: take it back out of the queue */
            queue_remove(e, j);
            j->status = JOB_FAILED;
            res.status = 503;
            res.code = "STORE_UNAVAILABLE";
            snprintf(res.message, sizeof(res.message), "the job could not be stored");
        } else {
            j->durable = true;
            res.status = 202;
            res.job = j;
            res.queue_position = engine_queue_position(e, j);
        }
        sc->cb(&res, sc->cb_ctx);
    }
    bool first = sc->cb != NULL;
    free(sc);
    if (j->dirty) {
        j->dirty = false;
        persist(e, j);
    }
    if (first)
        dispatch(e);
}

static int persist_with(struct engine *e, struct job *j, engine_submit_cb cb, void *ctx)
{
    struct save_ctx *sc = calloc(1, sizeof(*sc));
    if (!sc)
        return -ENOMEM;
    sc->e = e;
    sc->cb = cb;
    sc->cb_ctx = ctx;
    sc->save.job = j;
    sc->save.done = saved_cb;
    sc->save.row = job_store_snapshot(j, j->run);
    j->persisting = true;
    if (job_store_save(e->store, e->ring, &sc->save) < 0) {
        json_decref(sc->save.row);
        free(sc);
        j->persisting = false;
        return -EAGAIN;
    }
    return 0;
}

/* Saves j's current state; coalesces while a save is in flight. */
static void persist(struct engine *e, struct job *j)
{
    if (!e->store)
        return;
    if (j->persisting) {
        j->dirty = true;
        return;
    }
    persist_with(e, j, NULL, NULL);
}

/* --- running jobs ------------------------------------------------------------------------------- */

static void dispatch(struct engine *e);

static struct job *run_job(struct comfy_run *r)
{
    return r->ctx;
}

static void run_state(struct comfy_run *r)
{
    struct job *j = run_job(r);
    const struct comfy_attempt *a = &r->att;
    j->nodes_done = a->nodes_done;
    j->nodes_total = a->nodes_total;
    snprintf(j->current_node, sizeof(j->current_node), "%s", a->current_node);
    snprintf(j->current_class, sizeof(j->current_class), "%s", a->current_class);
    j->step = a->step;
    j->steps = a->steps;
    snprintf(j->backend, sizeof(j->backend), "%s", a->be->spec.url);
    snprintf(j->prompt_id, sizeof(j->prompt_id), "%.39s", a->prompt_id);
    j->attempts = r->tries;
    if (j->subs && !j->done_emitting) {
        json_t *o = job_to_json(j, -1);
        json_t *p = json_incref(json_object_get(o, "progress"));
        json_decref(o);
        if (p)
            emit(j->engine, j, "progress", p);
    }
}

static void run_output(struct comfy_run *r, const struct comfy_output *o)
{
    struct job *j = run_job(r);
    if (j->noutputs == j->outputs_cap) {
        size_t nc = j->outputs_cap ? j->outputs_cap * 2 : 4;
        struct job_output *no = realloc(j->outputs, nc * sizeof(*no));
        if (!no)
            return;
        j->outputs = no;
        j->outputs_cap = nc;
    }
    struct job_output *jo = &j->outputs[j->noutputs++];
    memset(jo, 0, sizeof(*jo));
    snprintf(jo->name, sizeof(jo->name), "%s", o->local_name);
    jo->size = o->size;
    snprintf(jo->mime, sizeof(jo->mime), "%s", http_file_mime(o->local_name));
    snprintf(jo->sha256, sizeof(jo->sha256), "%s", o->sha256);
    snprintf(jo->node, sizeof(jo->node), "%s", o->node);
    snprintf(jo->kind, sizeof(jo->kind), "%s", o->kind);
    if (j->subs) {
        char url[512];
        snprintf(url, sizeof(url), "/outputs/%s/%s", j->id, jo->name);
        emit(j->engine, j, "output",
             json_pack("{s:s, s:I, s:s, s:s, s:s}", "filename", jo->name, "size",
                       (json_int_t)jo->size, "mime", jo->mime, "sha256", jo->sha256, "url", url));
    }
}

static void run_done(struct comfy_run *r)
{
    struct job *j = run_job(r);
    struct engine *e = j->engine;
    run_state(r);
    if (r->err == COMFY_OK) {
        j->status = JOB_SUCCEEDED;
    } else {
        j->status = r->err == COMFY_INTERRUPTED && j->cancel_requested ? JOB_CANCELED : JOB_FAILED;
        snprintf(j->error_code, sizeof(j->error_code), "%s", comfy_err_code(r->err));
        snprintf(j->error_message, sizeof(j->error_message), "%s", r->message);
        snprintf(j->error_node, sizeof(j->error_node), "%s", r->err_node);
        snprintf(j->error_class, sizeof(j->error_class), "%s", r->err_class);
        if (r->node_errors)
            j->node_errors = json_incref(r->node_errors);
    }
    j->finished_ms = job_now_ms();
    j->done_emitting = true;
    persist(e, j); /* snapshot includes the attempt log of r */
    emit_status(e, j);
    comfy_run_free(r);
    free(r);
    j->run = NULL;
    if (j->dirfd >= 0)
        close(j->dirfd);
    j->dirfd = -1;
    e->running--;
    dispatch(e);
}

static const struct comfy_run_ops run_ops = {
    .on_state = run_state,
    .on_output = run_output,
    .on_done = run_done,
};

/* Creates <storage>/outputs/<id>/ (a metadata operation on local disk, done inline). */
static int job_dir(struct engine *e, struct job *j)
{
    if (mkdirat(e->outputs_fd, j->id, 0755) < 0 && errno != EEXIST)
        return -errno;
    j->dirfd = openat(e->outputs_fd, j->id, O_PATH | O_DIRECTORY | O_CLOEXEC);
    return j->dirfd < 0 ? -errno : 0;
}

static void fail_now(struct engine *e, struct job *j, const char *code, const char *msg)
{
    j->status = JOB_FAILED;
    snprintf(j->error_code, sizeof(j->error_code), "%s", code);
    snprintf(j->error_message, sizeof(j->error_message), "%s", msg);
    j->finished_ms = job_now_ms();
    persist(e, j);
    emit_status(e, j);
}

static bool start_job(struct engine *e, struct job *j)
{
    struct comfy_run *r = calloc(1, sizeof(*r));
    if (!r || job_dir(e, j) < 0) {
        free(r);
        fail_now(e, j, "STORAGE_ERROR", "cannot create the output directory");
        return false;
    }
    char sub[64];
    snprintf(sub, sizeof(sub), "comfygate/%s", j->id);
    comfy_graph_set_prefix(j->graph, sub);
    struct comfy_run_params p = {
        .graph = j->graph,
        .out_dirfd = j->dirfd,
        .upload_subfolder = "comfygate",
        .timeout_ms = e->cfg.timeout_ms,
        .route_timeout_ms = 3600000,
        .max_output_bytes = e->cfg.max_output_bytes,
        .max_attempts = e->cfg.max_attempts,
    };
    j->status = JOB_RUNNING;
    j->started_ms = job_now_ms();
    j->run = r;
    e->running++;
    if (comfy_run_start(r, e->fleet, &p, &run_ops, j) < 0) {
        j->run = NULL;
        e->running--;
        free(r);
        fail_now(e, j, "VALIDATION_ERROR", "the rendered graph is not a JSON object");
        return false;
    }
    if (j->run) {
        persist(e, j);
        emit_status(e, j);
    }
    return true;
}

/* Starts queued jobs while the head of the queue has somewhere to run. Strict priority: a
 * head job that must wait holds back the jobs behind it. */
static void dispatch(struct engine *e)
{
    while (e->heap_len && !e->stopping && e->fleet) {
        struct job *j = e->heap[0];
        if (!j->durable)
            break; /* its 202 has not gone out yet: it may still be refused */
        struct comfy_backend *b = NULL;
        char why[256];
        enum comfy_route rr = comfy_fleet_route(e->fleet, j->graph, NULL, &b, why, sizeof(why));
        if (rr == COMFY_ROUTE_BUSY || rr == COMFY_ROUTE_NO_BACKEND)
            break;
        queue_remove(e, j);
        if (rr == COMFY_ROUTE_UNSUPPORTED) {
            fail_now(e, j, "COMFYUI_UNSUPPORTED", why);
            continue;
        }
        start_job(e, j);
    }
    jobs_evict(e);
}

static void dispatch_timer_cb(struct ring_timer *t)
{
    struct engine *e = (struct engine *)((char *)t - offsetof(struct engine, dispatch_timer));
    dispatch(e);
    if (!e->stopping)
        ring_timer_arm(e->ring, &e->dispatch_timer, 100);
}

/* --- submit ------------------------------------------------------------------------------------- */

static void submit_fail(engine_submit_cb cb, void *ctx, int status, const char *code,
                        json_t *errors, const char *fmt, const char *arg)
{
    struct engine_submit res;
    memset(&res, 0, sizeof(res));
    res.status = status;
    res.code = code;
    res.errors = errors;
    snprintf(res.message, sizeof(res.message), fmt, arg ? arg : "");
    cb(&res, ctx);
}

static struct job *job_new(struct engine *e, const char *owner, const struct workflow *w,
                           json_t *graph, json_t *inputs, json_t *body)
{
    struct job *j = calloc(1, sizeof(*j));
    if (!j)
        return NULL;
    j->engine = e;
    j->dirfd = -1;
    comfy_uuid4(j->id);
    snprintf(j->owner, sizeof(j->owner), "%s", owner);
    snprintf(j->workflow_id, sizeof(j->workflow_id), "%s", w->id);
    j->workflow_version = w->version;
    snprintf(j->workflow_hash, sizeof(j->workflow_hash), "%s", w->hash);
    j->graph = graph;
    j->inputs = inputs;
    j->metadata = json_incref(json_object_get(body, "metadata"));
    j->priority = (int)json_integer_value(json_object_get(body, "priority"));
    j->seq = ++e->seq;
    j->status = JOB_QUEUED;
    j->created_ms = job_now_ms();
    j->nodes_total = (unsigned)json_object_size(graph);
    return j;
}

static int check_body(json_t *body, char *msg, size_t len)
{
    json_t *p = json_object_get(body, "priority");
    json_t *in = json_object_get(body, "inputs");
    json_t *md = json_object_get(body, "metadata");
    if (!json_is_object(body))
        snprintf(msg, len, "the body must be a JSON object");
    else if (!json_is_string(json_object_get(body, "workflowId")))
        snprintf(msg, len, "workflowId (string) is required");
    else if (p && (!json_is_integer(p) || json_integer_value(p) < -1000 ||
                   json_integer_value(p) > 1000))
        snprintf(msg, len, "priority must be an integer from -1000 to 1000");
    else if (in && !json_is_object(in))
        snprintf(msg, len, "inputs must be an object");
    else if (md && !json_is_object(md))
        snprintf(msg, len, "metadata must be an object");
    else
        return 0;
    return -1;
}

void engine_submit(struct engine *e, const char *owner, json_t *body, engine_submit_cb cb,
                   void *ctx)
{
    char msg[256];
    if (check_body(body, msg, sizeof(msg)) < 0)
        return submit_fail(cb, ctx, 400, "VALIDATION_ERROR", NULL, "%s", msg);
    const char *wid = json_string_value(json_object_get(body, "workflowId"));
    int ver = (int)json_integer_value(json_object_get(body, "workflowVersion"));
    const struct workflow *w = workflow_set_get(&e->wf, wid, ver);
    if (!w || (ver == 0 && w->deleted))
        return submit_fail(cb, ctx, 404, "WORKFLOW_NOT_FOUND", NULL, "no workflow %s", wid);
    if (e->heap_len >= e->cfg.max_queue || queued_for(e, owner) >= e->cfg.max_queue_per_tenant)
        return submit_fail(cb, ctx, 429, "QUEUE_FULL", NULL, "%sthe queue is full", "");
    json_t *inputs = json_object_get(body, "inputs");
    json_t *empty = inputs ? NULL : json_object();
    json_t *final_inputs = NULL, *errors = NULL;
    json_t *graph = workflow_render(w, inputs ? inputs : empty, &e->cfg.limits, &final_inputs,
                                    &errors);
    json_decref(empty);
    if (!graph)
        return submit_fail(cb, ctx, 400, "VALIDATION_ERROR", errors, "%sinvalid inputs", "");
    struct job *j = job_new(e, owner, w, graph, final_inputs, body);
    if (!j || jobs_put(e, j) < 0 || queue_push(e, j) < 0) {
        if (j)
            job_free(j);
        return submit_fail(cb, ctx, 503, "UNAVAILABLE", NULL, "%sout of memory", "");
    }
    if (!e->store) {
        j->durable = true;
        struct engine_submit res = {.status = 202, .job = j};
        res.queue_position = engine_queue_position(e, j);
        cb(&res, ctx);
        dispatch(e);
        return;
    }
    /* Accepted only once durable: the 202 goes out from saved_cb, after the commit. */
    if (persist_with(e, j, cb, ctx) < 0) {
        queue_remove(e, j);
        j->status = JOB_FAILED;
        return submit_fail(cb, ctx, 503, "STORE_BUSY", NULL, "%sthe store is overloaded", "");
    }
}

/* --- queries and cancel ------------------------------------------------------------------------ */

struct job *engine_job(struct engine *e, const char *id, const char *owner)
{
    struct job *j = jobs_get(e, id);
    if (j && owner && strcmp(j->owner, owner) != 0)
        return NULL; /* another tenant's job does not exist for this caller */
    return j;
}

int engine_cancel(struct engine *e, const char *id, const char *owner)
{
    struct job *j = engine_job(e, id, owner);
    if (!j)
        return 404;
    if (job_finished(j))
        return 409;
    j->cancel_requested = true;
    if (j->status == JOB_QUEUED) {
        queue_remove(e, j);
        j->status = JOB_CANCELED;
        j->finished_ms = job_now_ms();
        snprintf(j->error_code, sizeof(j->error_code), "CANCELED");
        snprintf(j->error_message, sizeof(j->error_message), "canceled while queued");
        persist(e, j);
        emit_status(e, j);
        return 200;
    }
    if (j->run)
        comfy_run_cancel(j->run); /* finishes through run_done */
    return 200;
}

json_t *engine_list(struct engine *e, const char *owner, int status, size_t limit)
{
    json_t *arr = json_array();
    for (size_t i = e->norder; i-- > 0 && json_array_size(arr) < limit;) {
        struct job *j = e->order[i];
        if ((owner && strcmp(j->owner, owner)) || (status >= 0 && (int)j->status != status))
            continue;
        json_array_append_new(arr, job_to_json(j, engine_queue_position(e, j)));
    }
    return arr;
}

int engine_subscribe(struct engine *e, const char *owner, struct engine_sub *s)
{
    struct job *j = engine_job(e, s->job_id, owner);
    if (!j)
        return 404;
    snprintf(j->last_event_status, sizeof(j->last_event_status), "%s", job_status_name(j->status));
    bool final = job_finished(j);
    json_t *d = job_to_json(j, engine_queue_position(e, j));
    sub_post(s, "status", d, final);
    json_decref(d);
    if (!final) {
        s->next = j->subs;
        j->subs = s;
    }
    return 200;
}

void engine_unsubscribe(struct engine *e, struct engine_sub *s)
{
    struct job *j = jobs_get(e, s->job_id);
    for (struct engine_sub **pp = j ? &j->subs : NULL; pp && *pp; pp = &(*pp)->next) {
        if (*pp == s) {
            *pp = s->next;
            break;
        }
    }
    /* FIFO mailbox: this arrives after every event already posted to s */
    struct sub_msg *sm = calloc(1, sizeof(*sm));
    if (!sm)
        return; /* leaks s rather than risk a use after free */
    sm->msg.cb = sub_msg_cb;
    sm->sub = s;
    sm->closed = true;
    ring_post(s->ring, &sm->msg);
}

struct workflow_set *engine_workflows(struct engine *e)
{
    return &e->wf;
}

int engine_outputs_dirfd(struct engine *e, const char *job_id)
{
    return openat(e->outputs_fd, job_id, O_PATH | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
}

/* --- life ------------------------------------------------------------------------------------- */

static int open_storage(struct engine *e, char *err, size_t errlen)
{
    char path[1200];
    mkdir(e->cfg.storage_path, 0755);
    snprintf(path, sizeof(path), "%s/outputs", e->cfg.storage_path);
    mkdir(path, 0755);
    e->outputs_fd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (e->outputs_fd < 0) {
        snprintf(err, errlen, "cannot use STORAGE_LOCAL_PATH %s: %s", e->cfg.storage_path,
                 strerror(errno));
        return -1;
    }
    return 0;
}

/* Queues every job that was queued or running when the gateway stopped. */
static int recover(struct engine *e)
{
    uint64_t max_seq = 0;
    json_t *rows = job_store_load_unfinished(e->store, &max_seq);
    if (!rows)
        return -1;
    e->seq = max_seq;
    size_t i;
    json_t *row;
    json_array_foreach(rows, i, row)
    {
        struct job *j = calloc(1, sizeof(*j));
        const char *graph = json_string_value(json_object_get(row, "graph"));
        json_t *g = graph ? json_loads(graph, 0, NULL) : NULL;
        if (!j || !g) {
            free(j);
            json_decref(g);
            continue;
        }
        j->engine = e;
        j->dirfd = -1;
        j->durable = true;
        snprintf(j->id, sizeof(j->id), "%s", json_string_value(json_object_get(row, "id")));
        snprintf(j->owner, sizeof(j->owner), "%s",
                 json_string_value(json_object_get(row, "owner")));
        const char *s = json_string_value(json_object_get(row, "workflow_id"));
        snprintf(j->workflow_id, sizeof(j->workflow_id), "%s", s ? s : "");
        j->workflow_version = (int)json_integer_value(json_object_get(row, "workflow_version"));
        s = json_string_value(json_object_get(row, "workflow_hash"));
        snprintf(j->workflow_hash, sizeof(j->workflow_hash), "%s", s ? s : "");
        s = json_string_value(json_object_get(row, "inputs"));
        j->inputs = s ? json_loads(s, 0, NULL) : NULL;
        s = json_string_value(json_object_get(row, "metadata"));
        j->metadata = s ? json_loads(s, 0, NULL) : NULL;
        j->graph = g;
        j->priority = (int)json_integer_value(json_object_get(row, "priority"));
        j->seq = (uint64_t)json_integer_value(json_object_get(row, "seq"));
        j->attempts = (unsigned)json_integer_value(json_object_get(row, "attempts"));
        j->created_ms = json_integer_value(json_object_get(row, "created_at"));
        j->nodes_total = (unsigned)json_object_size(g);
        j->status = JOB_QUEUED;
        if (jobs_put(e, j) < 0 || queue_push(e, j) < 0)
            job_free(j);
        else
            persist(e, j);
    }
    json_decref(rows);
    return 0;
}

int engine_new(struct engine **out, struct ring *r, struct comfy_fleet *fleet, struct store *st,
               const struct engine_config *cfg, char *err, size_t errlen)
{
    struct engine *e = calloc(1, sizeof(*e));
    if (!e)
        return -ENOMEM;
    e->ring = r;
    e->fleet = fleet;
    e->store = st;
    e->cfg = *cfg;
    e->outputs_fd = -1;
    e->nbuckets = 1024;
    e->buckets = calloc(e->nbuckets, sizeof(*e->buckets));
    workflow_set_init(&e->wf, 100000);
    *out = e;
    if (!e->buckets)
        return -ENOMEM;
    if (cfg->workflows_dir[0] &&
        workflow_set_load_dir(&e->wf, cfg->workflows_dir, err, errlen) < 0)
        return -EINVAL;
    if (open_storage(e, err, errlen) < 0)
        return -EINVAL;
    if (st && recover(e) < 0) {
        snprintf(err, errlen, "cannot read unfinished jobs from the store");
        return -EIO;
    }
    e->dispatch_timer.cb = dispatch_timer_cb;
    ring_timer_arm(r, &e->dispatch_timer, 100);
    return 0;
}

void engine_stop(struct engine *e)
{
    e->stopping = true;
    ring_timer_cancel(e->ring, &e->dispatch_timer);
    /* Running jobs are left "running" in the store, not canceled: the next start re-queues
     * them (the interrupted attempt counts). */
    for (size_t i = 0; i < e->norder; i++) {
        if (e->order[i]->run)
            comfy_run_abandon(e->order[i]->run);
    }
}

bool engine_idle(const struct engine *e)
{
    for (size_t i = 0; i < e->norder; i++) {
        const struct job *j = e->order[i];
        if (j->persisting || (j->run && !comfy_run_quiet(j->run)))
            return false;
    }
    return true;
}

void engine_free(struct engine *e)
{
    for (size_t i = 0; i < e->norder; i++) {
        struct job *j = e->order[i];
        if (j->run) {
            comfy_run_free(j->run);
            free(j->run);
        }
        if (j->dirfd >= 0)
            close(j->dirfd);
        job_free(j);
    }
    free(e->order);
    free(e->buckets);
    free(e->heap);
    workflow_set_free(&e->wf);
    if (e->outputs_fd >= 0)
        close(e->outputs_fd);
    free(e);
}
