/* engine_recover — start-up recovery: the newest jobs (and every unfinished one) come back
 * from the store with their outputs, idempotency keys and cache entries; jobs that were queued
 * or running when the gateway stopped are queued again. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jobs/engine_internal.h"
#include "jobs/job_store.h"

static void row_str(json_t *row, const char *k, char *dst, size_t cap)
{
    const char *v = json_string_value(json_object_get(row, k));
    snprintf(dst, cap, "%s", v ? v : "");
}

static json_t *row_json(json_t *row, const char *k)
{
    const char *v = json_string_value(json_object_get(row, k));
    return v ? json_loads(v, 0, NULL) : NULL;
}

static enum job_status status_from(const char *s)
{
    for (int i = JOB_QUEUED; i <= JOB_CANCELED; i++) {
        if (s && !strcmp(s, job_status_name((enum job_status)i)))
            return (enum job_status)i;
    }
    return JOB_FAILED;
}

struct job *engine_job_from_row(struct engine *e, json_t *row)
{
    struct job *j = calloc(1, sizeof(*j));
    if (!j)
        return NULL;
    j->engine = e;
    j->dirfd = -1;
    j->durable = true;
    j->upload_ms = j->backend_queue_ms = j->execution_ms = j->fetch_ms = -1;
    row_str(row, "id", j->id, sizeof(j->id));
    row_str(row, "owner", j->owner, sizeof(j->owner));
    row_str(row, "workflow_id", j->workflow_id, sizeof(j->workflow_id));
    row_str(row, "workflow_hash", j->workflow_hash, sizeof(j->workflow_hash));
    row_str(row, "backend", j->backend, sizeof(j->backend));
    row_str(row, "prompt_id", j->prompt_id, sizeof(j->prompt_id));
    row_str(row, "error_code", j->error_code, sizeof(j->error_code));
    row_str(row, "error_message", j->error_message, sizeof(j->error_message));
    row_str(row, "error_node", j->error_node, sizeof(j->error_node));
    row_str(row, "error_class", j->error_class, sizeof(j->error_class));
    row_str(row, "cache_of", j->cache_of, sizeof(j->cache_of));
    row_str(row, "cache_key", j->cache_key, sizeof(j->cache_key));
    j->workflow_version = (int)json_integer_value(json_object_get(row, "workflow_version"));
    j->inputs = row_json(row, "inputs");
    j->metadata = row_json(row, "metadata");
    j->graph = row_json(row, "graph");
    j->node_errors = row_json(row, "node_errors");
    j->priority = (int)json_integer_value(json_object_get(row, "priority"));
    j->seq = (uint64_t)json_integer_value(json_object_get(row, "seq"));
    j->attempts = (unsigned)json_integer_value(json_object_get(row, "attempts"));
    j->cache_hit = json_integer_value(json_object_get(row, "cache_hit")) != 0;
    j->created_ms = json_integer_value(json_object_get(row, "created_at"));
    j->started_ms = json_integer_value(json_object_get(row, "started_at"));
    j->finished_ms = json_integer_value(json_object_get(row, "finished_at"));
    j->status = status_from(json_string_value(json_object_get(row, "status")));
    j->nodes_total = (unsigned)json_object_size(j->graph);
    const char *kind = json_string_value(json_object_get(row, "kind"));
    j->kind = kind && !strcmp(kind, "prompt") ? JOB_KIND_PROMPT : JOB_KIND_WORKFLOW;
    j->request = row_json(row, "request");
    const char *cb = json_string_value(json_object_get(row, "callback_url"));
    j->callback_url = cb && cb[0] ? strdup(cb) : NULL;
    j->wh_mask = (unsigned)json_integer_value(json_object_get(row, "webhook_events"));
    row_str(row, "instance", j->instance, sizeof(j->instance));
    j->lease_until = json_integer_value(json_object_get(row, "lease_until"));
    json_t *log = row_json(row, "log");
    job_log_restore(j, log);
    json_decref(log);
    json_t *progress = row_json(row, "progress");
    job_progress_restore(j, progress);
    json_decref(progress);
    return j;
}

/* One output row onto j. */
static void output_from_row(struct job *j, json_t *o)
{
    {
        if (j->noutputs >= 4096)
            return;
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
        row_str(o, "name", jo->name, sizeof(jo->name));
        row_str(o, "mime", jo->mime, sizeof(jo->mime));
        row_str(o, "sha256", jo->sha256, sizeof(jo->sha256));
        row_str(o, "node", jo->node, sizeof(jo->node));
        row_str(o, "kind", jo->kind, sizeof(jo->kind));
        row_str(o, "storage_key", jo->key, sizeof(jo->key));
        jo->size = (uint64_t)json_integer_value(json_object_get(o, "size"));
    }
}

void engine_outputs_from_rows(struct engine *e, json_t *outs)
{
    size_t i;
    json_t *o;
    json_array_foreach(outs, i, o)
    {
        struct job *j = jobtable_get(&e->jt, json_string_value(json_object_get(o, "job_id")) ?: "");
        if (j)
            output_from_row(j, o);
    }
}

void engine_job_outputs(struct job *j, json_t *outs)
{
    size_t i;
    json_t *o;
    json_array_foreach(outs, i, o)
    {
        const char *id = json_string_value(json_object_get(o, "job_id"));
        if (id && !strcmp(id, j->id))
            output_from_row(j, o);
    }
}

static void recover_keys(struct engine *e, json_t *idem, json_t *cache)
{
    size_t i;
    json_t *r;
    json_array_foreach(idem, i, r)
    {
        const char *job = json_string_value(json_object_get(r, "job_id"));
        const char *key = json_string_value(json_object_get(r, "key"));
        const char *hash = json_string_value(json_object_get(r, "body_hash"));
        if (job && key)
            keymap_put(&e->idem, key, job, hash,
                       json_integer_value(json_object_get(r, "expires_at")));
    }
    json_array_foreach(cache, i, r)
    {
        const char *job = json_string_value(json_object_get(r, "job_id"));
        const char *key = json_string_value(json_object_get(r, "key"));
        if (job && key)
            keymap_put(&e->cache, key, job, NULL,
                       json_integer_value(json_object_get(r, "expires_at")));
    }
}

/* Reads back the recent jobs; every job that was queued or running when the gateway stopped
 * is queued again (a running one had its attempt interrupted: it counts). */
int engine_recover(struct engine *e)
{
    uint64_t max_seq = 0;
    json_t *all = job_store_load_recent(e->store, e->cfg.max_jobs_in_memory, job_now_ms(),
                                        &max_seq);
    if (!all)
        return -1;
    e->seq = max_seq;
    size_t i;
    json_t *row;
    json_array_foreach(json_object_get(all, "jobs"), i, row)
    {
        struct job *j = engine_job_from_row(e, row);
        if (!j)
            continue;
        bool unfinished = !job_finished(j);
        if (e->cfg.shared && unfinished && strcmp(j->instance, e->cfg.instance_id) != 0) {
            job_free(j); /* in the store for whoever claims it, or another instance's */
            continue;
        }
        if (unfinished && !j->graph) {
            j->status = JOB_FAILED; /* cannot run again without its graph */
            snprintf(j->error_code, sizeof(j->error_code), "LOST");
        }
        if (jobtable_put(&e->jt, j) < 0) {
            job_free(j);
            continue;
        }
        if (unfinished && j->graph) {
            int swept = storage_stage_clean(e->cfg.storage, j->id);
            if (swept > 0)
                job_log(j, "warn", "removed %d partly written output file(s)", swept);
        }
    }
    engine_outputs_from_rows(e, json_object_get(all, "outputs"));
    for (size_t k = 0; k < e->jt.norder; k++) {
        if (job_finished(e->jt.order[k]))
            engine_files_adopt(e, e->jt.order[k]);
    }
    /* Outputs first: a re-attached job fetches its files again over the same names. */
    for (size_t k = 0; k < e->jt.norder; k++) {
        struct job *j = e->jt.order[k];
        if (job_finished(j) || !j->graph || j->run || j->queued)
            continue;
        if (j->status == JOB_RUNNING && engine_reattach(e, j))
            continue;
        if (j->status == JOB_RUNNING)
            job_log(j, "warn", "the gateway restarted while it ran: queued again");
        j->status = JOB_QUEUED;
        j->started_ms = 0;
        if (e->cfg.shared) { /* back to the store's queue, for any instance */
            engine_shared_release(e, j);
            k--;
            continue;
        }
        jobtable_push(&e->jt, j);
        engine_persist(e, j);
    }
    recover_keys(e, json_object_get(all, "idem"), json_object_get(all, "cache"));
    /* A crash between a job's last save and its end event's: enqueue the end again for jobs
     * that finished lately (the event's id is the job's, so a stored one is not sent twice). */
    int64_t lately = job_now_ms() - 24 * 3600 * 1000ll;
    for (size_t k = 0; k < e->jt.norder; k++) {
        struct job *j = e->jt.order[k];
        if (job_finished(j) && j->callback_url && j->finished_ms > lately)
            engine_hook_end(e, j);
    }
    json_decref(all);
    return 0;
}

