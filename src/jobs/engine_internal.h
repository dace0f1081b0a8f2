/* engine_internal — the engine's state and the helpers its files share (engine.c: running
 * jobs; engine_submit.c: accepting them; engine_prompt.c: raw graphs' input images;
 * engine_recover.c: start-up). Not for use outside src/jobs. */
#ifndef COMFYGATE_ENGINE_INTERNAL_H
#define COMFYGATE_ENGINE_INTERNAL_H

#include "jobs/engine.h"
#include "jobs/job_prep.h"
#include "jobs/job_store.h"
#include "jobs/jobtable.h"
#include "jobs/keymap.h"

struct engine {
    struct ring *ring;
    struct comfy_fleet *fleet;
    struct store *store;
    struct engine_config cfg;
    struct workflow_set wf;
    struct jobtable jt; /* jobs by id, in order, and the queue */
    uint64_t seq;
    size_t running;
    bool stopping;
    struct keymap idem;  /* owner \x1f key → job */
    struct keymap cache; /* cache key → succeeded job */
    unsigned long ticks;
    struct ring_timer dispatch_timer;
    struct job_prep_env prep_env; /* fetching raw graphs' input images */
    void *parked_preps; /* job_preps of gone jobs still waiting on the store (linked by ctx) */
    unsigned hook_reads; /* raw graphs' images being read for their prompt.complete webhook */
};

/* Saves j's current state (coalesced while a save is in flight). */
void engine_persist(struct engine *e, struct job *j);
/* Saves j now; cb (if given) answers the submit once the row is committed. blobs (taken) are
 * inline input images stored with the row. -EAGAIN if the store refuses. */
int engine_persist_with(struct engine *e, struct job *j, engine_submit_cb cb, void *ctx,
                        struct job_blob *blobs, size_t nblobs);
/* Starts queued jobs while the head of the queue has somewhere to run. */
void engine_dispatch(struct engine *e);
/* PRIVACY_MODE: text inputs become "[redacted]", the rendered graph goes. */
void engine_redact(struct job *j);
/* A dispatched job (status running, counted in e->running) starts its run on the fleet with
 * these input images uploaded to subfolder first. False if it failed at once. */
bool engine_run_begin(struct engine *e, struct job *j, const struct comfy_input_file *inputs,
                      size_t ninputs, const char *subfolder);
/* A dispatched job that could not start its run: it fails with code and message. */
void engine_run_abort(struct engine *e, struct job *j, const char *code, const char *msg);
/* engine_prompt.c: a raw graph's input images are fetched/loaded, then engine_run_begin. */
bool engine_prep_start(struct engine *e, struct job *j);
void engine_prep_release(struct job *j);
/* engine_hooks.c: a job's webhook event ("queued", "running", "progress", "output": sent when
 * its webhookEvents ask), and its end (always, exactly once). */
void engine_hook(struct engine *e, struct job *j, const char *event);
void engine_hook_end(struct engine *e, struct job *j);
/* Frees parked preps that are quiet (all: every one, at shutdown). */
void engine_prep_reap(struct engine *e, bool all);
/* A log line on the job, also sent to its listeners (engine.c). */
void jlog_job(struct job *j, const char *level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Start-up: reads back recent jobs, idempotency keys and cache entries; queues again every job
 * that was queued or running (engine_recover.c). */
int engine_recover(struct engine *e);
/* Start-up: re-attaches a job that was running to its prompt on its backend (engine.c). False
 * when it cannot (no such backend configured now): queue it again instead. */
bool engine_reattach(struct engine *e, struct job *j);

#endif
