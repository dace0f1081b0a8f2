/* job — see job.h. */
#include "jobs/job.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

const char *job_status_name(enum job_status s)
{
    static const char *const names[] = {"queued", "running", "succeeded", "failed", "canceled"};
    return names[s];
}

bool job_finished(const struct job *j)
{
    return j->status >= JOB_SUCCEEDED;
}

int64_t job_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static json_t *ms_or_null(int64_t ms)
{
    return ms ? json_integer(ms) : json_null();
}

json_t *job_progress_json(const struct job *j)
{
    double value = j->nodes_total ? (double)j->nodes_done / j->nodes_total : 0;
    if (j->steps && j->nodes_total)
        value += (double)j->step / j->steps / j->nodes_total;
    if (value > 1)
        value = 1;
    return json_pack("{s:f, s:i, s:i, s:s?, s:s?, s:i, s:i}", "value", value, "nodes_done",
                     (int)j->nodes_done, "nodes_total", (int)j->nodes_total, "current_node",
                     j->current_node[0] ? j->current_node : NULL, "current_class",
                     j->current_class[0] ? j->current_class : NULL, "step", (int)j->step, "steps",
                     (int)j->steps);
}

static json_t *outputs_json(const struct job *j)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < j->noutputs; i++) {
        const struct job_output *o = &j->outputs[i];
        char url[512];
        snprintf(url, sizeof(url), "/outputs/%s/%s", j->id, o->name);
        json_array_append_new(arr, json_pack("{s:s, s:I, s:s, s:s, s:s, s:s, s:s}", "filename",
                                             o->name, "size", (json_int_t)o->size, "mime", o->mime,
                                             "sha256", o->sha256, "node", o->node, "kind", o->kind,
                                             "url", url));
    }
    return arr;
}

json_t *job_to_json(const struct job *j, long queue_position)
{
    char self[128], events[160], cancel[160];
    snprintf(self, sizeof(self), "/jobs/%s", j->id);
    snprintf(events, sizeof(events), "/jobs/%s/events", j->id);
    snprintf(cancel, sizeof(cancel), "/jobs/%s/cancel", j->id);
    json_t *o = json_pack("{s:s, s:s, s:s, s:i, s:s, s:i, s:b, s:i, s:O, s:O}", "id", j->id,
                          "status", job_status_name(j->status), "workflowId", j->workflow_id,
                          "workflowVersion", j->workflow_version, "workflowHash",
                          j->workflow_hash, "priority", j->priority, "cacheHit", j->cache_hit,
                          "attempts", (int)j->attempts, "inputs",
                          j->inputs ? j->inputs : json_null(), "metadata",
                          j->metadata ? j->metadata : json_null());
    if (j->callback_url && j->kind != JOB_KIND_PROMPT) {
        json_object_set_new(o, "callbackUrl", json_string(j->callback_url));
        json_object_set_new(o, "webhookEvents", webhook_filter_json(j->wh_mask));
    }
    if (j->kind == JOB_KIND_PROMPT) { /* a raw graph: no workflow */
        json_object_set_new(o, "kind", json_string("prompt"));
        json_object_del(o, "workflowId");
        json_object_del(o, "workflowVersion");
        json_object_del(o, "workflowHash");
        json_t *wh = json_object_get(j->request, "webhook_v2");
        if (wh)
            json_object_set(o, "webhook_v2", wh);
    }
    if (queue_position >= 0)
        json_object_set_new(o, "queue_position", json_integer(queue_position));
    if (j->status == JOB_RUNNING)
        json_object_set_new(o, "progress", job_progress_json(j));
    json_object_set_new(o, "outputs", outputs_json(j));
    if (j->error_code[0]) {
        json_object_set_new(o, "error",
                            json_pack("{s:s, s:s, s:s?, s:s?, s:O?}", "code", j->error_code,
                                      "message", j->error_message, "node_id",
                                      j->error_node[0] ? j->error_node : NULL, "class_type",
                                      j->error_class[0] ? j->error_class : NULL, "node_errors",
                                      j->node_errors));
    }
    if (j->backend[0])
        json_object_set_new(o, "backend", json_string(j->backend));
    if (j->prompt_id[0]) /* ComfyUI's id of the current (or last) attempt */
        json_object_set_new(o, "promptId", json_string(j->prompt_id));
    if (j->instance[0]) /* SHARED_STORE: the gateway that runs (or ran) it */
        json_object_set_new(o, "instance", json_string(j->instance));
    int64_t qms = (j->started_ms ? j->started_ms : (j->finished_ms ? j->finished_ms : 0));
    json_object_set_new(
        o, "timings",
        json_pack("{s:I, s:o, s:o, s:o, s:o}", "queued_at", (json_int_t)j->created_ms,
                  "started_at", ms_or_null(j->started_ms), "finished_at",
                  ms_or_null(j->finished_ms), "queue_ms",
                  qms ? json_integer(qms - j->created_ms) : json_null(), "run_ms",
                  j->started_ms && j->finished_ms ? json_integer(j->finished_ms - j->started_ms)
                                                  : json_null()));
    json_t *stages = json_object();
    const int64_t st[] = {j->upload_ms, j->backend_queue_ms, j->execution_ms, j->fetch_ms};
    const char *const names[] = {"upload_ms", "backend_queue_ms", "execution_ms", "fetch_ms"};
    for (int i = 0; i < 4; i++)
        json_object_set_new(stages, names[i], st[i] >= 0 && j->started_ms ? json_integer(st[i])
                                                                           : json_null());
    json_object_set_new(json_object_get(o, "timings"), "stages", stages);
    if (j->node_times) { /* ComfyUI execution time per node, with its class */
        json_t *nodes = json_deep_copy(j->node_times);
        const char *id;
        json_t *n;
        json_object_foreach(nodes, id, n)
        {
            const char *cls = json_string_value(
                json_object_get(json_object_get(j->graph, id), "class_type"));
            if (cls)
                json_object_set_new(n, "class_type", json_string(cls));
        }
        json_object_set_new(json_object_get(o, "timings"), "nodes", nodes);
    }
    json_object_set_new(o, "urls", json_pack("{s:s, s:s, s:s}", "self", self, "events", events,
                                             "cancel", cancel));
    if (j->cache_of[0])
        json_object_set_new(o, "cacheOf", json_string(j->cache_of));
    return o;
}

void job_free(struct job *j)
{
    if (!j)
        return;
    json_decref(j->inputs);
    json_decref(j->metadata);
    json_decref(j->graph);
    json_decref(j->node_errors);
    json_decref(j->request);
    json_decref(j->node_times);
    free(j->callback_url);
    free(j->outputs);
    free(j->log);
    free(j);
}

/* Removes "user:password@" from every URL in s (credentials must not reach a log). */
static void strip_userinfo(char *s)
{
    char *p = s;
    while ((p = strstr(p, "://"))) {
        p += 3;
        char *end = p + strcspn(p, "/ \"");
        char *at = memchr(p, '@', (size_t)(end - p));
        if (at)
            memmove(p, at + 1, strlen(at + 1) + 1);
    }
}

void job_log(struct job *j, const char *level, const char *fmt, ...)
{
    /* line i lives at i % JOB_LOG_LINES: the ring grows (4, 8, 16, 32) before it wraps */
    if (j->nlog < JOB_LOG_LINES && j->nlog == j->log_cap) {
        unsigned nc = j->log_cap ? j->log_cap * 2 : 4;
        struct job_log *nl = realloc(j->log, nc * sizeof(*nl));
        if (!nl)
            return; /* out of memory: the line is lost, not the job */
        j->log = nl;
        j->log_cap = nc;
    }
    struct job_log *l = &j->log[j->nlog % JOB_LOG_LINES];
    l->ts = job_now_ms();
    snprintf(l->level, sizeof(l->level), "%s", level);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(l->message, sizeof(l->message), fmt, ap);
    va_end(ap);
    strip_userinfo(l->message);
    j->nlog++;
}

static json_t *log_line_json(const struct job_log *l)
{
    return json_pack("{s:I, s:s, s:s}", "ts", (json_int_t)l->ts, "level", l->level, "message",
                     l->message);
}

json_t *job_log_last_json(const struct job *j)
{
    return j->nlog ? log_line_json(&j->log[(j->nlog - 1) % JOB_LOG_LINES]) : NULL;
}

json_t *job_log_json(const struct job *j)
{
    unsigned first = j->nlog > JOB_LOG_LINES ? j->nlog - JOB_LOG_LINES : 0;
    json_t *arr = json_array();
    for (unsigned i = first; i < j->nlog; i++)
        json_array_append_new(arr, log_line_json(&j->log[i % JOB_LOG_LINES]));
    return arr;
}

void job_progress_restore(struct job *j, const json_t *p)
{
    if (!json_is_object(p))
        return;
    j->nodes_done = (unsigned)json_integer_value(json_object_get(p, "nodes_done"));
    unsigned total = (unsigned)json_integer_value(json_object_get(p, "nodes_total"));
    if (total)
        j->nodes_total = total;
    const char *n = json_string_value(json_object_get(p, "current_node"));
    const char *c = json_string_value(json_object_get(p, "current_class"));
    snprintf(j->current_node, sizeof(j->current_node), "%s", n ? n : "");
    snprintf(j->current_class, sizeof(j->current_class), "%s", c ? c : "");
    j->step = (unsigned)json_integer_value(json_object_get(p, "step"));
    j->steps = (unsigned)json_integer_value(json_object_get(p, "steps"));
}

void job_log_restore(struct job *j, const json_t *log)
{
    size_t i;
    json_t *l;
    json_array_foreach(log, i, l)
    {
        const char *lv = json_string_value(json_object_get(l, "level"));
        const char *m = json_string_value(json_object_get(l, "message"));
        unsigned before = j->nlog;
        job_log(j, lv ? lv : "info", "%s", m ? m : "");
        if (j->nlog != before) /* the line's own time, not now */
            j->log[before % JOB_LOG_LINES].ts = json_integer_value(json_object_get(l, "ts"));
    }
}
