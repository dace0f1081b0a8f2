/* engine — see engine.h. This file runs jobs (dispatch, progress, outputs into storage, the
 * end of a run), answers queries and cancels, and starts and stops the engine. Its other parts:
 * engine_events.c (listeners), engine_persist.c (the store), engine_submit.c, engine_read.c,
 * engine_shared.c (SHARED_STORE), engine_hooks.c (webhooks), engine_prompt.c (raw graphs),
 * engine_recover.c (start-up), engine_files.c (local copies of stored outputs). */
#include "jobs/engine.h"

#include <bearssl.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "comfy/comfy_graph.h"
#include "core/b64.h"
#include "http/http_file.h"
#include "jobs/job_store.h"
#include "jobs/engine_internal.h"
#include "jobs/jobtable.h"
#include "jobs/keymap.h"
#include "jobs/workflow_store.h"
#include "webhook/webhook.h"

/* --- running jobs ------------------------------------------------------------------------------- */


static struct job *run_job(struct comfy_run *r)
{
    return r->ctx;
}

static int64_t span_ms(uint64_t from, uint64_t to)
{
    return from && to && to >= from ? (int64_t)((to - from) / 1000000) : -1;
}

static void run_state(struct comfy_run *r)
{
    struct job *j = run_job(r);
    const struct comfy_attempt *a = &r->att;
    j->upload_ms = span_ms(a->begun_ns, a->submitted_ns);
    j->backend_queue_ms = span_ms(a->submitted_ns, a->started_ns);
    j->execution_ms = span_ms(a->started_ns, a->exec_done_ns);
    j->fetch_ms = span_ms(a->exec_done_ns, a->finished_ns);
    j->nodes_done = a->nodes_done;
    j->nodes_total = a->nodes_total;
    snprintf(j->current_node, sizeof(j->current_node), "%s", a->current_node);
    snprintf(j->current_class, sizeof(j->current_class), "%s", a->current_class);
    j->step = a->step;
    j->steps = a->steps;
    snprintf(j->backend, sizeof(j->backend), "%s", a->be->spec.url);
    snprintf(j->prompt_id, sizeof(j->prompt_id), "%.39s", a->prompt_id);
    j->attempts = r->tries;
    if (a->state == CA_RUNNING)
        engine_hook(j->engine, j, "progress");
    if (j->subs && !j->done_emitting && j->status == JOB_RUNNING) /* as job_to_json has it */
        engine_emit(j->engine, j, "progress", job_progress_json(j));
}

static void finish_run(struct job *j);

/* An output on its way into storage: the job lists it only once the provider has it. */
struct out_commit {
    struct storage_commit c;
    struct job *job;
    struct job_output out;
};

static void output_listed(struct job *j, const struct job_output *src)
{
    for (size_t i = 0; i < j->noutputs; i++) {
        if (!strcmp(j->outputs[i].name, src->name)) { /* fetched again after a restart */
            j->outputs[i] = *src;
            return;
        }
    }
    if (j->noutputs == j->outputs_cap) {
        size_t nc = j->outputs_cap ? j->outputs_cap * 2 : 4;
        struct job_output *no = realloc(j->outputs, nc * sizeof(*no));
        if (!no) {
            j->storage_err = -ENOMEM;
            return;
        }
        j->outputs = no;
        j->outputs_cap = nc;
    }
    struct job_output *jo = &j->outputs[j->noutputs++];
    *jo = *src;
    engine_hook(j->engine, j, "output");
    if (j->subs) {
        char url[512];
        snprintf(url, sizeof(url), "/outputs/%s/%s", j->id, jo->name);
        engine_emit(j->engine, j, "output",
             json_pack("{s:s, s:I, s:s, s:s, s:s}", "filename", jo->name, "size",
                       (json_int_t)jo->size, "mime", jo->mime, "sha256", jo->sha256, "url", url));
    }
}

static void output_committed(struct storage_commit *c, int err)
{
    struct out_commit *oc = (struct out_commit *)c;
    struct job *j = oc->job;
    j->commits_pending--;
    if (err < 0) {
        if (!j->storage_err) {
            j->storage_err = err;
            snprintf(j->storage_detail, sizeof(j->storage_detail), "%s", c->detail);
        }
        engine_jlog(j->engine, j, "error", "output %s could not be stored: %s%s%s", oc->out.name,
             strerror(-err), c->detail[0] ? " — " : "", c->detail);
    } else {
        snprintf(oc->out.key, sizeof(oc->out.key), "%s", c->key);
        output_listed(j, &oc->out);
    }
    free(oc);
    if (j->commits_pending == 0 && j->run_finished)
        finish_run(j);
}

static void run_output(struct comfy_run *r, const struct comfy_output *o)
{
    struct job *j = run_job(r);
    struct engine *e = j->engine;
    struct out_commit *oc = calloc(1, sizeof(*oc));
    if (!oc) {
        j->storage_err = -ENOMEM;
        return;
    }
    struct job_output *jo = &oc->out;
    snprintf(jo->name, sizeof(jo->name), "%s", o->local_name);
    jo->size = o->size;
    snprintf(jo->mime, sizeof(jo->mime), "%s", http_file_mime(o->local_name));
    snprintf(jo->sha256, sizeof(jo->sha256), "%s", o->sha256);
    snprintf(jo->node, sizeof(jo->node), "%s", o->node);
    snprintf(jo->kind, sizeof(jo->kind), "%s", o->kind);
    oc->job = j;
    oc->c.ring = e->ring;
    oc->c.curl = e->curl;
    oc->c.job_id = j->id;
    oc->c.name = jo->name;
    oc->c.mime = jo->mime;
    oc->c.size = jo->size;
    oc->c.sha256 = jo->sha256;
    oc->c.done = output_committed;
    j->commits_pending++;
    int rc = storage_commit(e->cfg.storage, &oc->c);
    if (rc < 0) /* not started: done will not run */
        output_committed(&oc->c, rc);
}

/* PRIVACY_MODE: every string input becomes "[redacted]" and the rendered graph (which holds
 * the prompts) is dropped, in memory and in the row saved next. */
void engine_redact(struct job *j)
{
    const char *k;
    json_t *v;
    json_object_foreach(j->inputs, k, v)
    {
        if (json_is_string(v))
            json_object_set_new(j->inputs, k, json_string("[redacted]"));
    }
    json_decref(j->graph);
    j->graph = NULL;
}

/* The run ended and every output it reported is in storage (or failed to get there). */
static void finish_run(struct job *j)
{
    struct engine *e = j->engine;
    if (j->lost) /* its lease went to another instance while outputs were being stored */
        return;
    struct comfy_run *r = j->run;
    if (r->att_live && json_object_size(r->att.node_times)) { /* the last attempt's */
        json_decref(j->node_times);
        j->node_times = json_deep_copy(r->att.node_times);
    }
    /* the attempts that came before, then the outcome */
    for (unsigned i = 0; i < r->nrecs; i++) {
        if (r->recs[i].err != COMFY_OK && i + 1 < r->nrecs)
            engine_jlog(e, j, "warn", "attempt %u on backend %d failed (%s), retried", i + 1,
                    r->recs[i].backend, comfy_err_code(r->recs[i].err));
    }
    if (r->err == COMFY_OK && j->storage_err) {
        j->status = JOB_FAILED;
        snprintf(j->error_code, sizeof(j->error_code), "STORAGE_ERROR");
        snprintf(j->error_message, sizeof(j->error_message),
                 "an output could not be stored: %s%s%s", strerror(-j->storage_err),
                 j->storage_detail[0] ? " (" : "", j->storage_detail[0] ? j->storage_detail : "");
        if (j->storage_detail[0])
            strncat(j->error_message, ")", sizeof(j->error_message) - strlen(j->error_message) - 1);
        engine_jlog(e, j, "error", "%s: %.150s", j->error_code, j->error_message);
    } else if (r->err == COMFY_OK) {
        j->status = JOB_SUCCEEDED;
        if (e->cfg.cache_enabled && j->cache_key[0])
            keymap_put(&e->cache, j->cache_key, j->id, NULL,
                       job_now_ms() + (int64_t)e->cfg.cache_ttl_s * 1000);
        engine_jlog(e, j, "info", "succeeded with %zu output(s)", j->noutputs);
    } else {
        j->status = r->err == COMFY_INTERRUPTED && j->cancel_requested ? JOB_CANCELED : JOB_FAILED;
        snprintf(j->error_code, sizeof(j->error_code), "%s", comfy_err_code(r->err));
        snprintf(j->error_message, sizeof(j->error_message), "%s", r->message);
        snprintf(j->error_node, sizeof(j->error_node), "%s", r->err_node);
        snprintf(j->error_class, sizeof(j->error_class), "%s", r->err_class);
        if (r->node_errors)
            j->node_errors = json_incref(r->node_errors);
        engine_jlog(e, j, "error", "%s: %.150s", j->error_code, j->error_message);
    }
    j->finished_ms = job_now_ms();
    if (e->cfg.privacy_mode)
        engine_redact(j);
    engine_persist(e, j); /* snapshot includes the attempt log of r */
    engine_emit_status(e, j);
    engine_hook_end(e, j);
    comfy_run_free(r);
    free(r);
    j->run = NULL;
    engine_prep_release(j); /* the input images lived as long as the run */
    if (j->dirfd >= 0)
        close(j->dirfd);
    j->dirfd = -1;
    e->running--;
    engine_dispatch(e);
}

static void run_done(struct comfy_run *r)
{
    struct job *j = run_job(r);
    run_state(r);
    j->done_emitting = true;
    j->run_finished = true;
    if (j->commits_pending == 0)
        finish_run(j);
}

/* Sampler previews to listeners, at most PREVIEW_EVERY_MS apart (they can come per step). */
#define PREVIEW_EVERY_MS 500
#define PREVIEW_MAX_BYTES (512 * 1024)

static void run_preview(struct comfy_run *r, const char *mime, const unsigned char *p, size_t n)
{
    struct job *j = run_job(r);
    int64_t now = job_now_ms();
    if (!j->subs || n > PREVIEW_MAX_BYTES || now - j->last_preview_ms < PREVIEW_EVERY_MS)
        return;
    j->last_preview_ms = now;
    char *b64 = malloc(b64_len(n) + 1);
    if (!b64)
        return;
    b64[b64_encode(p, n, b64)] = '\0';
    engine_emit(j->engine, j, "preview", json_pack("{s:s, s:s, s:s}", "mime", mime, "node",
                                            j->current_node, "data", b64));
    free(b64);
}

/* Write-ahead of every attempt: the prompt id and backend are committed before the prompt is
 * sent, so after a crash the job is found on its backend instead of being run twice. */
static bool run_before_submit(struct comfy_run *r)
{
    struct job *j = run_job(r);
    struct engine *e = j->engine;
    if (!e->store)
        return false;
    snprintf(j->prompt_id, sizeof(j->prompt_id), "%.39s", r->att.prompt_id);
    snprintf(j->backend, sizeof(j->backend), "%s", r->att.be->spec.url);
    j->attempts = r->tries;
    j->submit_held = true;
    engine_persist(e, j);
    if (!j->persisting) { /* the store refused the write: go on without it */
        j->submit_held = false;
        return false;
    }
    return true;
}

static const struct comfy_run_ops run_ops = {
    .on_state = run_state,
    .on_output = run_output,
    .on_done = run_done,
    .on_preview = run_preview,
    .before_submit = run_before_submit,
};

/* The job's staging directory, where the backend's outputs are written. */
static int job_dir(struct engine *e, struct job *j)
{
    j->dirfd = storage_stage_open(e->cfg.storage, j->id);
    return j->dirfd < 0 ? j->dirfd : 0;
}


/* Ends a job that has no run (failed or canceled before one started). */
static void end_now(struct engine *e, struct job *j, enum job_status st, const char *code,
                    const char *msg)
{
    if (e->cfg.privacy_mode)
        engine_redact(j);
    j->status = st;
    snprintf(j->error_code, sizeof(j->error_code), "%s", code);
    snprintf(j->error_message, sizeof(j->error_message), "%s", msg);
    j->finished_ms = job_now_ms();
    engine_persist(e, j);
    engine_emit_status(e, j);
    engine_hook_end(e, j);
}

void engine_fail_now(struct engine *e, struct job *j, const char *code, const char *msg)
{
    end_now(e, j, JOB_FAILED, code, msg);
}

static void run_params(const struct engine *e, const struct job *j, struct comfy_run_params *p,
                       char preview[16])
{
    memset(p, 0, sizeof(*p));
    json_t *conv = json_object_get(j->request, "convert_output");
    const char *fmt = json_string_value(json_object_get(conv, "format"));
    preview[0] = '\0';
    if (fmt && strcmp(fmt, "png") != 0) { /* the backend converts (ComfyUI's /view preview) */
        snprintf(preview, 16, "%s;%d", fmt,
                 (int)json_integer_value(json_object_get(conv, "quality")));
        p->preview = preview;
    }
    p->graph = j->graph;
    p->out_dirfd = j->dirfd;
    p->upload_subfolder = "comfygate";
    if (j->prep) { /* a raw graph's input images: uploaded first, to the tenant's subfolder */
        p->inputs = j->prep->files;
        p->ninputs = j->prep->nfiles;
        p->upload_subfolder = j->prep->subfolder;
    }
    p->timeout_ms = e->cfg.timeout_ms;
    p->route_timeout_ms = 3600000;
    p->max_output_bytes = e->cfg.max_output_bytes;
    p->max_attempts = e->cfg.max_attempts;
    p->prior_tries = j->attempts; /* attempts lost to a gateway restart count too */
    p->strip_png_text = e->cfg.privacy_mode;
}

/* Start-up: follow a job that was running when the gateway stopped on the backend that has its
 * prompt. False when that cannot be tried (no such backend now): the caller queues it again. */
bool engine_reattach(struct engine *e, struct job *j)
{
    if (!e->fleet || !j->graph || !j->prompt_id[0] || !j->backend[0])
        return false;
    /* A raw graph with input images needs them again if its prompt turned out lost: they
     * are loaded first (from the store, or fetched), then engine_run_begin follows it. */
    if (json_array_size(json_object_get(j->request, "images")) > 0) {
        if (!comfy_fleet_find(e->fleet, j->backend) || job_dir(e, j) < 0)
            return false; /* queued again: it runs anew wherever there is room */
        j->resume_pending = true;
        e->running++;
        engine_prep_start(e, j); /* ends j itself if it cannot start */
        return true;
    }
    struct comfy_run *r = calloc(1, sizeof(*r));
    if (!r || job_dir(e, j) < 0) {
        free(r);
        return false;
    }
    struct comfy_run_params p;
    char preview[16];
    run_params(e, j, &p, preview);
    j->run = r;
    e->running++;
    if (comfy_run_resume(r, e->fleet, &p, &run_ops, j, j->backend, j->prompt_id,
                         j->attempts) < 0) {
        j->run = NULL;
        e->running--;
        free(r);
        close(j->dirfd);
        j->dirfd = -1;
        return false;
    }
    engine_jlog(e, j, "warn", "the gateway restarted while it ran: re-attached to prompt %s on %s",
         j->prompt_id, j->backend);
    return true;
}

static void run_abort_as(struct engine *e, struct job *j, enum job_status st, const char *code,
                         const char *msg)
{
    engine_prep_release(j);
    if (j->dirfd >= 0)
        close(j->dirfd);
    j->dirfd = -1;
    e->running--;
    end_now(e, j, st, code, msg);
}

void engine_run_abort(struct engine *e, struct job *j, const char *code, const char *msg)
{
    run_abort_as(e, j, JOB_FAILED, code, msg);
}

bool engine_run_begin(struct engine *e, struct job *j, const struct comfy_input_file *inputs,
                      size_t ninputs, const char *subfolder)
{
    struct comfy_run *r = calloc(1, sizeof(*r));
    if (!r) {
        engine_run_abort(e, j, "UNAVAILABLE", "out of memory");
        return false;
    }
    struct comfy_run_params p;
    char preview[16];
    run_params(e, j, &p, preview);
    if (inputs) {
        p.inputs = inputs;
        p.ninputs = ninputs;
        p.upload_subfolder = subfolder;
    }
    j->run = r;
    if (j->resume_pending) { /* engine_reattach of a job with input images */
        j->resume_pending = false;
        if (!inputs) /* they could not be loaded: a lost prompt cannot run again */
            p.max_attempts = j->attempts ? j->attempts : 1;
        if (comfy_run_resume(r, e->fleet, &p, &run_ops, j, j->backend, j->prompt_id,
                             j->attempts) == 0) {
            engine_jlog(e, j, "warn", "the gateway restarted while it ran: re-attached to prompt"
                        " %s on %s", j->prompt_id, j->backend);
            engine_emit_status(e, j);
            return true;
        }
        if (!inputs) {
            j->run = NULL;
            free(r);
            engine_run_abort(e, j, "INPUT_FETCH_FAILED", "the gateway restarted while it ran,"
                             " its backend is gone and its input images could not be loaded");
            return false;
        }
        engine_jlog(e, j, "warn", "the gateway restarted while it ran and its backend %s is"
                    " gone: runs again", j->backend);
    }
    if (comfy_run_start(r, e->fleet, &p, &run_ops, j) < 0) {
        j->run = NULL;
        free(r);
        engine_run_abort(e, j, "VALIDATION_ERROR", "the graph is not a JSON object");
        return false;
    }
    if (j->run) {
        /* An attempt submitted at once has just saved its write-ahead, which carries the
         * running state too: a second save would add a commit and hold back nothing. */
        if (!j->submit_held)
            engine_persist(e, j);
        engine_emit_status(e, j);
    }
    return true;
}

bool engine_start_job(struct engine *e, struct job *j)
{
    if (job_dir(e, j) < 0) {
        engine_fail_now(e, j, "STORAGE_ERROR", "cannot create the output directory");
        return false;
    }
    char sub[64];
    snprintf(sub, sizeof(sub), "comfygate/%s", j->id);
    comfy_graph_set_prefix(j->graph, sub);
    j->status = JOB_RUNNING;
    j->started_ms = job_now_ms();
    engine_jlog(e, j, "info", "dispatched");
    engine_hook(e, j, "running");
    e->running++;
    if (json_array_size(json_object_get(j->request, "images")) > 0)
        return engine_prep_start(e, j); /* the run begins once its input images are ready */
    return engine_run_begin(e, j, NULL, 0, NULL);
}

/* Queued jobs passed over at one dispatch because every backend that could run them is down. */
#define DISPATCH_SKIP_MAX 64

/* Starts queued jobs while the head of the queue has somewhere to run. Strict priority: a
 * head job waiting for room on its backends holds back the jobs behind it. But a job whose
 * backends are all down (a GPU lost, the only one with its model) is passed over, up to
 * DISPATCH_SKIP_MAX of them, so it does not stop the rest of the fleet until they are back. */
void engine_dispatch(struct engine *e)
{
    size_t skip = 0;
    while (!e->stopping && e->fleet &&
           (!e->cfg.max_concurrency || e->running < e->cfg.max_concurrency)) {
        struct job *j = jobtable_at(&e->jt, skip);
        if (!j || !j->durable)
            break; /* none, or its 202 has not gone out yet: it may still be refused */
        struct comfy_backend *b = NULL;
        char why[256];
        enum comfy_route rr = comfy_fleet_route(e->fleet, j->graph, NULL, &b, why, sizeof(why));
        if (rr == COMFY_ROUTE_DOWN && skip < DISPATCH_SKIP_MAX) {
            skip++;
            continue;
        }
        if (rr == COMFY_ROUTE_BUSY || rr == COMFY_ROUTE_NO_BACKEND || rr == COMFY_ROUTE_DOWN)
            break;
        jobtable_unqueue(&e->jt, j);
        if (rr == COMFY_ROUTE_UNSUPPORTED) {
            engine_fail_now(e, j, "COMFYUI_UNSUPPORTED", why);
            continue;
        }
        engine_start_job(e, j);
    }
    jobtable_evict(&e->jt, e->cfg.max_jobs_in_memory);
}

/* Lost jobs whose run has stopped leave memory: they are another instance's now. */
static void reap_lost(struct engine *e)
{
    struct job **pp = &e->lost;
    while (*pp) {
        struct job *j = *pp;
        if ((j->run && !comfy_run_quiet(j->run)) || j->persisting || j->commits_pending ||
            (j->prep && !job_prep_quiet(j->prep))) {
            pp = &j->hnext;
            continue;
        }
        *pp = j->hnext;
        if (j->run) {
            comfy_run_free(j->run);
            free(j->run);
        }
        engine_prep_release(j);
        if (j->dirfd >= 0)
            close(j->dirfd);
        job_free(j);
    }
}

void engine_release_lost(struct engine *e, struct job *j)
{
    j->lost = true;
    if (j->run)
        comfy_run_abandon(j->run);
    if (j->run || j->prep)
        e->running--;
    jobtable_unqueue(&e->jt, j);
    jobtable_forget(&e->jt, j);
    j->hnext = e->lost; /* out of the table: the chain link is free */
    e->lost = j;
}

static void wf_refreshed(struct workflow_refresh *r, int changes)
{
    struct engine *e = r->ctx;
    (void)changes;
    e->wf_refreshing = false;
}

/* SHARED_STORE: workflows made, updated or deleted at another instance are served here within
 * a second or so (a new job pins what this instance knows). */
static void workflows_refresh(struct engine *e, uint64_t now)
{
    uint64_t every = e->cfg.poll_ms > 1000 ? e->cfg.poll_ms : 1000;
    if (e->wf_refreshing || now - e->last_wf_refresh_ms < every || !e->store)
        return;
    e->last_wf_refresh_ms = now;
    e->wf_refresh.set = &e->wf;
    e->wf_refresh.done = wf_refreshed;
    e->wf_refresh.ctx = e;
    if (workflow_store_refresh(e->store, e->ring, &e->wf_refresh) == 0)
        e->wf_refreshing = true;
}

static void shared_tick(struct engine *e)
{
    uint64_t now = (uint64_t)job_now_ms();
    workflows_refresh(e, now);
    if (now - e->last_poll_ms >= e->cfg.poll_ms) {
        e->last_poll_ms = now;
        engine_shared_poll(e, false);
    }
    engine_watch_poll(e);
    if (now - e->last_renew_ms >= e->cfg.lease_ms / 3) {
        e->last_renew_ms = now;
        engine_shared_renew(e);
    }
    /* an instance not seen alive for three leases is gone: its pending webhooks are ours */
    if (e->cfg.webhooks && now - e->last_adopt_ms >= e->cfg.lease_ms) {
        e->last_adopt_ms = now;
        webhook_adopt(e->cfg.webhooks, (int64_t)now - 3 * (int64_t)e->cfg.lease_ms);
    }
    reap_lost(e);
}

static void dispatch_timer_cb(struct ring_timer *t)
{
    struct engine *e = (struct engine *)((char *)t - offsetof(struct engine, dispatch_timer));
    engine_dispatch(e);
    if (e->cfg.shared)
        shared_tick(e);
    engine_prep_reap(e, false);
    if (e->copies)
        engine_files_prune(e);
    if (++e->ticks % 600 == 0) { /* once a minute: expired idempotency keys and cache entries */
        keymap_sweep(&e->idem, job_now_ms());
        keymap_sweep(&e->cache, job_now_ms());
    }
    if (!e->stopping)
        ring_timer_arm(e->ring, &e->dispatch_timer,
                       e->cfg.shared && e->cfg.poll_ms < 100 ? e->cfg.poll_ms : 100);
}

/* --- queries and cancel ------------------------------------------------------------------------ */

struct job *engine_job(struct engine *e, const char *id, const char *owner)
{
    struct job *j = jobtable_get(&e->jt, id);
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
        jobtable_unqueue(&e->jt, j);
        j->status = JOB_CANCELED;
        j->finished_ms = job_now_ms();
        snprintf(j->error_code, sizeof(j->error_code), "CANCELED");
        snprintf(j->error_message, sizeof(j->error_message), "canceled while queued");
        if (e->cfg.privacy_mode)
            engine_redact(j);
        engine_persist(e, j);
        engine_emit_status(e, j);
        engine_hook_end(e, j);
        return 200;
    }
    if (j->prep && j->resume_pending) { /* its prompt may be running: follow it to stop it */
        engine_prep_release(j);
        engine_run_begin(e, j, NULL, 0, NULL);
    }
    if (j->run) {
        comfy_run_cancel(j->run); /* finishes through run_done */
    } else if (j->prep) { /* still getting its input images */
        run_abort_as(e, j, JOB_CANCELED, "CANCELED", "canceled while its input images loaded");
        engine_dispatch(e);
    }
    return 200;
}

static bool query_match(const struct job *j, const struct engine_query *q)
{
    return (!q->owner || !strcmp(j->owner, q->owner)) && (q->status < 0 || (int)j->status == q->status) &&
           (!q->workflow_id || !strcmp(j->workflow_id, q->workflow_id)) &&
           (!q->after_ms || j->created_ms > q->after_ms) &&
           (!q->before_ms || j->created_ms < q->before_ms) && (!q->cursor || j->seq < q->cursor);
}

json_t *engine_list(struct engine *e, const struct engine_query *q, struct job **unsaved,
                    uint64_t *newest)
{
    *unsaved = NULL;
    *newest = 0;
    json_t *arr = json_array();
    uint64_t last = 0;
    bool more = false;
    /* order[] is by creation, so by seq: walk it from the newest */
    for (size_t i = e->jt.norder; i-- > 0;) {
        struct job *j = e->jt.order[i];
        if (!query_match(j, q))
            continue;
        if (json_array_size(arr) == q->limit) {
            more = true;
            break;
        }
        json_array_append_new(arr, job_to_json(j, engine_queue_position(e, j)));
        last = j->seq;
        if (!*newest)
            *newest = j->seq;
        if (j->end_unsaved && !*unsaved)
            *unsaved = j;
    }
    char cur[32];
    snprintf(cur, sizeof(cur), "%llu", (unsigned long long)last);
    return json_pack("{s:o, s:o}", "jobs", arr, "next_cursor", more ? json_string(cur) : json_null());
}

struct workflow_set *engine_workflows(struct engine *e)
{
    return &e->wf;
}

/* --- life ------------------------------------------------------------------------------------- */

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
    e->curl = fleet ? &fleet->rc : &e->own_curl;
    workflow_set_init(&e->wf, 100000);
    *out = e; /* as on every error path below, the gateway stops */
    if (!fleet) { /* an API-only instance still reads objects back from an object store */
        if (ring_curl_init(&e->own_curl, r) < 0)
            return -ENOMEM;
        e->own_curl_live = true;
    }
    if (jobtable_init(&e->jt) < 0 || keymap_init(&e->idem, 1000000) < 0 || keymap_init(&e->cache, 1000000) < 0)
        return -ENOMEM;
    /* No bundled templates where none were shipped is fine (workflows can be created through
     * the API); a directory that exists but holds a broken template is not. */
    struct stat wst;
    if (cfg->workflows_dir[0] && stat(cfg->workflows_dir, &wst) == 0 &&
        workflow_set_load_dir(&e->wf, cfg->workflows_dir, err, errlen) < 0)
        return -EINVAL;
    if (st && workflow_store_load(st, &e->wf, err, errlen) < 0)
        return -EIO;
    if (!cfg->storage) {
        snprintf(err, errlen, "no output storage configured");
        return -EINVAL;
    }
    e->prep_env = (struct job_prep_env){
        .ring = r,
        .rc = fleet ? &fleet->rc : NULL,
        .store = st,
        .max_bytes = cfg->max_input_image_bytes ? cfg->max_input_image_bytes : 32u << 20,
        .max_side = cfg->limits.max_image_size,
        .timeout_ms = cfg->input_url_timeout_ms ? cfg->input_url_timeout_ms : 30000,
        .guard = cfg->input_guard,
    };
    /* after prep_env: a recovered job with input images loads them again */
    if (st && engine_recover(e) < 0) {
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
    for (size_t i = 0; i < e->jt.norder; i++) {
        struct job *j = e->jt.order[i];
        if (j->run)
            comfy_run_abandon(j->run);
        else if (j->prep)
            job_prep_cancel(j->prep);
    }
}

bool engine_idle(const struct engine *e)
{
    for (size_t i = 0; i < e->jt.norder; i++) {
        const struct job *j = e->jt.order[i];
        if (j->persisting || j->commits_pending || (j->run && !comfy_run_quiet(j->run)) ||
            (j->prep && !job_prep_quiet(j->prep)))
            return false;
    }
    for (const struct job_prep *p = e->parked_preps; p; p = p->ctx) {
        if (!job_prep_quiet(p))
            return false;
    }
    for (const struct job *j = e->lost; j; j = j->hnext) {
        if ((j->run && !comfy_run_quiet(j->run)) || j->persisting || j->commits_pending)
            return false;
    }
    return e->hook_reads == 0 && !e->file_fetches && !e->wf_refreshing && !e->claiming && !e->renewing && !e->reads && !e->watching;
}

void engine_free(struct engine *e)
{
    for (size_t i = 0; i < e->jt.norder; i++) {
        struct job *j = e->jt.order[i];
        if (j->run) {
            comfy_run_free(j->run);
            free(j->run);
        }
        if (j->dirfd >= 0)
            close(j->dirfd);
        if (j->prep) {
            job_prep_free(j->prep);
            free(j->prep);
        }
        engine_end_waiters_free(j);
        job_free(j);
    }
    engine_prep_reap(e, true);
    engine_files_free(e);
    reap_lost(e); /* what is still busy at a hard stop is left to the process's end */
    engine_watch_free(e);
    json_decref(e->queued_counts);
    jobtable_fini(&e->jt);
    keymap_free(&e->idem);
    keymap_free(&e->cache);
    workflow_set_free(&e->wf);
    if (e->own_curl_live)
        ring_curl_fini(&e->own_curl);
    free(e);
}

long engine_queue_position(const struct engine *e, const struct job *j)
{
    return jobtable_position(&e->jt, j);
}
