/* engine_prompt — a raw graph's input images before its run: job_prep loads the inline ones
 * from the store and fetches the URLs, then the run begins with them. A prep that is still
 * waiting on the store when its job goes away is parked until that completion has come back. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jobs/engine_internal.h"

static void prep_done_cb(struct job_prep *p)
{
    struct job *j = p->ctx;
    struct engine *e = j->engine;
    if (p->err && j->resume_pending) { /* its prompt may well be there: follow it anyway */
        jlog_job(j, "warn", "input images: %.150s (needed only if its prompt was lost)",
                 p->message);
        engine_prep_release(j);
        engine_run_begin(e, j, NULL, 0, NULL);
        return;
    }
    if (p->err) {
        char msg[sizeof(p->message)]; /* the abort frees p */
        snprintf(msg, sizeof(msg), "%s", p->message);
        jlog_job(j, "error", "input images: %.150s", msg);
        engine_run_abort(e, j, "INPUT_FETCH_FAILED", msg);
        engine_dispatch(e);
        return;
    }
    jlog_job(j, "info", "%zu input image(s) ready", p->nfiles);
    engine_run_begin(e, j, p->files, p->nfiles, p->subfolder);
}

bool engine_prep_start(struct engine *e, struct job *j)
{
    struct job_prep *p = calloc(1, sizeof(*p));
    if (!p) {
        engine_run_abort(e, j, "UNAVAILABLE", "out of memory");
        return false;
    }
    j->prep = p;
    if (job_prep_start(p, &e->prep_env, j->id, j->owner, json_object_get(j->request, "images"),
                       j->graph, prep_done_cb, j) < 0) {
        engine_run_abort(e, j, "STORE_BUSY", "cannot read the job's input images");
        return false;
    }
    engine_persist(e, j);
    return true;
}

void engine_prep_release(struct job *j)
{
    struct job_prep *p = j->prep;
    if (!p)
        return;
    j->prep = NULL;
    job_prep_cancel(p);
    if (job_prep_quiet(p)) {
        job_prep_free(p);
        free(p);
        return;
    }
    struct engine *e = j->engine; /* a store read is still out: free it once it is back */
    p->ctx = e->parked_preps;
    e->parked_preps = p;
}

void engine_prep_reap(struct engine *e, bool all)
{
    struct job_prep **pp = (struct job_prep **)&e->parked_preps;
    while (*pp) {
        struct job_prep *p = *pp;
        if (all || job_prep_quiet(p)) {
            *pp = p->ctx;
            job_prep_free(p);
            free(p);
        } else {
            pp = (struct job_prep **)&p->ctx;
        }
    }
}

/* --- the answer ------------------------------------------------------------------------------ */

json_t *engine_job_stats(const struct job *j)
{
    json_t *full = job_to_json(j, -1);
    json_t *t = json_object_get(full, "timings");
    int64_t start = j->started_ms ? j->started_ms : j->created_ms;
    int64_t end = j->finished_ms ? j->finished_ms : j->created_ms;
    json_t *st = json_pack("{s:I, s:I, s:O?, s:O?, s:i}", "total_ms",
                           (json_int_t)(end - j->created_ms), "queue_ms",
                           (json_int_t)(start - j->created_ms), "stages",
                           json_object_get(t, "stages"), "nodes", json_object_get(t, "nodes"),
                           "attempts", (int)j->attempts);
    json_decref(full);
    return st;
}

json_t *engine_prompt_answer(const struct job *j, struct engine_file **files, size_t *nfiles)
{
    *files = NULL;
    *nfiles = 0;
    if (j->status != JOB_SUCCEEDED)
        return NULL;
    struct engine_file *fs = calloc(j->noutputs ? j->noutputs : 1, sizeof(*fs));
    json_t *names = json_array();
    json_t *full = job_to_json(j, -1);
    json_t *o = fs && names && full ? json_pack("{s:s, s:O, s:O, s:O, s:o}", "id", j->id,
                                                 "prompt", j->graph ? j->graph : json_null(),
                                                 "filenames", names, "outputs",
                                                 json_object_get(full, "outputs"), "stats",
                                                 engine_job_stats(j))
                                     : NULL;
    for (size_t i = 0; o && i < j->noutputs; i++) {
        if (strncmp(j->outputs[i].mime, "image/", 6) != 0)
            continue; /* videos, audio, text: listed under outputs, not inlined */
        struct engine_file *f = &fs[(*nfiles)++];
        snprintf(f->name, sizeof(f->name), "%s", j->outputs[i].name);
        snprintf(f->job, sizeof(f->job), "%s", j->cache_of[0] ? j->cache_of : j->id);
        snprintf(f->key, sizeof(f->key), "%s", j->outputs[i].key);
        f->size = j->outputs[i].size;
        snprintf(f->sha256, sizeof(f->sha256), "%s", j->outputs[i].sha256);
        json_array_append_new(names, json_string(f->name));
    }
    json_decref(names);
    json_decref(full);
    if (!o) {
        free(fs);
        *nfiles = 0;
        return NULL;
    }
    *files = fs;
    return o;
}
