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
#include "jobs/workflow_store.h"

struct engine {
    struct ring *ring;
    struct comfy_fleet *fleet;
    struct ring_curl *curl;    /* the fleet's multi, or own_curl for an instance without one */
    struct ring_curl own_curl;
    bool own_curl_live;
    unsigned file_fetches;     /* engine_files_local calls in flight */
    struct fetched_copy *copies, **copies_tail; /* temporary local copies, oldest first */
    size_t ncopies;
    struct workflow_refresh wf_refresh; /* SHARED_STORE: other instances' workflow changes */
    bool wf_refreshing;
    uint64_t last_wf_refresh_ms;
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
    /* SHARED_STORE (engine_shared.c) */
    bool claiming, renewing;
    json_t *queued_counts; /* from the last poll: {"*": all queued, "<owner>": one owner's} */
    uint64_t last_poll_ms, last_renew_ms;
    uint64_t last_adopt_ms; /* SHARED_STORE: last look for a dead instance's webhooks */
    struct job *lost; /* jobs whose lease another instance took, waiting for their run to stop */
    struct engine_watch *watches; /* subscriptions to jobs other instances run (engine_read.c) */
    bool watching;
    unsigned reads; /* store reads in flight for API callers */
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
/* A dispatched job starts (engine.c): status running, its run (or input images) begin. */
bool engine_start_job(struct engine *e, struct job *j);
/* Ends a job that has no run as failed, with code and message (engine.c). */
void engine_fail_now(struct engine *e, struct job *j, const char *code, const char *msg);
/* A job from its store row (engine_recover.c); not in the job table yet. */
struct job *engine_job_from_row(struct engine *e, json_t *row);
/* Adds output rows ({job_id, name, ...}) to the jobs of the table they belong to. */
void engine_outputs_from_rows(struct engine *e, json_t *outs);
/* The same for one job outside the table (rows of other jobs are skipped). */
void engine_job_outputs(struct job *j, json_t *outs);
/* engine_shared.c: claim queued jobs (and lapsed leases) when there is room, and refresh the
 * queue counts; renew our leases, pick up cancels asked elsewhere. */
void engine_shared_poll(struct engine *e, bool counts_only);
void engine_shared_renew(struct engine *e);
/* Puts a job we hold back into the store's queue for any instance, and drops it here. */
void engine_shared_release(struct engine *e, struct job *j);
/* engine_read.c: is this engine's copy of j the truth (no shared store, or we run it)? */
bool engine_authoritative(const struct engine *e, const struct job *j);
/* engine_read.c: subscriptions served by polling the store; the engine's sub_post. */
bool engine_watch_add(struct engine *e, struct engine_sub *s, const struct job *seen);
void engine_watch_remove(struct engine *e, struct engine_sub *s);
void engine_watch_poll(struct engine *e);
void engine_watch_free(struct engine *e);
void engine_sub_post(struct engine_sub *s, const char *event, json_t *data, bool final);
/* A job another instance took over: its run stops here, unsaved, and it leaves memory. */
void engine_release_lost(struct engine *e, struct job *j);
/* Start-up: reads back recent jobs, idempotency keys and cache entries; queues again every job
 * that was queued or running (engine_recover.c). */
int engine_recover(struct engine *e);
/* Start-up: re-attaches a job that was running to its prompt on its backend (engine.c). False
 * when it cannot (no such backend configured now): queue it again instead. */
bool engine_reattach(struct engine *e, struct job *j);

/* engine_events.c: sends an event to every listener of j (takes data); a final status also
 * detaches them. */
void engine_emit(struct engine *e, struct job *j, const char *event, json_t *data);
/* The job's status event, when it changed since the last one (and its end is durable). */
void engine_emit_status(struct engine *e, struct job *j);
/* A log line for the job, also sent to its listeners as a "log" event. */
void engine_jlog(struct engine *e, struct job *j, const char *level, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* engine_files.c: removes temporary copies unused for cfg.fetched_keep_s (dispatch timer);
 * frees what is left at the end. */
void engine_files_prune(struct engine *e);
/* Start-up: the copies of j's outputs an earlier process fetched are pruned like this one's
 * (their mtime is their last use). */
void engine_files_adopt(struct engine *e, const struct job *j);
void engine_files_free(struct engine *e);

/* engine_persist.c: j's final row is committed: announce its end, answer the waiting reads. */
void engine_end_durable(struct engine *e, struct job *j, bool gone);
void engine_end_waiters_free(struct job *j);
/* Calls cb once j's final row is committed (at once if it is; with NULL if j is freed
 * meanwhile): the wait of every read that could show an end. ctx_owned: ctx is a malloc'd
 * block that cb frees, freed here instead if a hard stop drops the wait. */
void engine_wait_end(struct engine *e, struct job *j, engine_fetch_cb cb, void *ctx,
                     bool ctx_owned);

#endif
