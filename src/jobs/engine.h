/* engine — the job engine: accepts jobs, keeps the priority queue, dispatches to the fleet,
 * records progress and outputs, persists every state change.
 *
 * Runs on the dispatcher reactor (the fleet's); the API reaches it with ring_call. A job is
 * acknowledged (202) only after its row is committed, so an accepted job survives a crash; at
 * start-up queued and running jobs are read back and queued again (a running one counts the
 * lost attempt). Queue order: higher priority first, FIFO within a priority. */
#ifndef COMFYGATE_ENGINE_H
#define COMFYGATE_ENGINE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "comfy/comfy_fleet.h"
#include "jobs/job.h"
#include "jobs/workflow.h"
#include "ring/ring.h"
#include "store/storage.h"
#include "store/store.h"

struct engine_config {
    size_t max_queue;            /* queued jobs, all tenants (429 QUEUE_FULL past it) */
    size_t max_concurrency;      /* jobs running at once (0: as many as the backends take) */
    size_t max_queue_per_tenant;
    size_t max_jobs_in_memory;   /* finished jobs beyond this are dropped from memory */
    uint32_t timeout_ms;         /* COMFYUI_TIMEOUT_MS */
    unsigned max_attempts;
    uint64_t max_output_bytes;
    uint32_t fetched_keep_s; /* temporary copies fetched from storage live this long unused */
    struct workflow_limits limits;
    struct storage *storage;     /* where outputs are staged and kept (not owned) */
    char workflows_dir[1024];    /* bundled templates */
    bool privacy_mode;
    bool cache_enabled;
    bool cache_shared;           /* cache hits across tenants */
    uint32_t cache_ttl_s;
    uint32_t idem_ttl_s;         /* idempotency keys */
    uint64_t max_input_image_bytes; /* raw graphs' input images */
    uint32_t input_url_timeout_ms;
    const struct urlguard *input_guard; /* SSRF rules for input image URLs (or NULL) */
    const struct urlguard *webhook_guard; /* for callbackUrl at submit (or NULL) */
    struct webhooks *webhooks;          /* NULL: no WEBHOOK_SECRET, callbackUrl refused */
    uint64_t webhook_inline_max;        /* prompt.complete: images inline up to this total */
    /* SHARED_STORE: several gateways on one store; jobs are claimed from it, leased, and read
     * from it when another instance runs them */
    bool shared;
    const char *instance_id;
    uint32_t lease_ms;
    uint32_t poll_ms;
};

struct engine;
struct urlguard;
struct webhooks;

/* Result of a submit, given to the callback on the dispatcher reactor. */
struct engine_submit {
    int status;         /* HTTP status: 202, or 4xx/5xx */
    const char *code;   /* error code when status is not 202 */
    char message[512];
    json_t *errors;     /* VALIDATION_ERROR details (owned by the callback) */
    struct job *job;    /* on 202 (or 200 for a cache hit) */
    long queue_position;
    bool replayed;      /* an idempotent repeat: job is the original one */
    bool cache_hit;     /* job is a new, already finished job sharing earlier outputs */
};

typedef void (*engine_submit_cb)(struct engine_submit *res, void *ctx);

int engine_new(struct engine **out, struct ring *r, struct comfy_fleet *fleet, struct store *st,
               const struct engine_config *cfg, char *err, size_t errlen);
void engine_stop(struct engine *e);
bool engine_idle(const struct engine *e);
void engine_free(struct engine *e);

/* body: {workflowId, workflowVersion?, inputs?, params?, priority?, metadata?}. idem_key: the
 * Idempotency-Key header (NULL: metadata.requestId, if any). */
void engine_submit(struct engine *e, const char *owner, json_t *body, const char *idem_key,
                   engine_submit_cb cb, void *ctx);
/* A raw ComfyUI graph (POST /prompt), already checked by prompt_req_parse: r's graph, metadata
 * and inline images are taken. body (the request as sent) is hashed for Idempotency-Key. */
struct prompt_req;
void engine_submit_graph(struct engine *e, const char *owner, struct prompt_req *r,
                         const json_t *body, const char *idem_key, engine_submit_cb cb, void *ctx);
/* A raw graph's answer (the sync POST /prompt reply and its webhook): {"id", "prompt",
 * "filenames", "outputs", "stats"} for a succeeded job, and the image files to inline as
 * base64 (*files: malloc'd, *nfiles). New reference; NULL if the job did not succeed. */
struct engine_file {
    char name[300];
    char job[37]; /* whose stored objects (a cache hit shares another job's) */
    char key[STORAGE_KEY_MAX];
    uint64_t size;
    char sha256[65]; /* what a copy fetched from storage must hash to */
};
json_t *engine_prompt_answer(const struct job *j, struct engine_file **files, size_t *nfiles);
/* On the dispatcher: makes sure each of files[0..n) has a local copy (storage_fetch, one after
 * another: a no-op for local storage, a download for an object store), then done(ctx, err)
 * with 0 or the first error. files must stay valid until done. fds (NULL, or n slots): each
 * copy is also opened for reading the moment it is there, so a temporary copy pruned later
 * (engine_files_prune) cannot be lost to its reader; the caller closes what is >= 0, on
 * error too. */
typedef void (*engine_files_cb)(void *ctx, int err);
void engine_files_local(struct engine *e, const struct engine_file *files, size_t n, int *fds,
                        engine_files_cb done, void *ctx);
/* stats of a finished job: total_ms, queue_ms, stages, nodes, attempts. */
json_t *engine_job_stats(const struct job *j);
struct engine_query;
/* NULL if unknown (or owned by someone else, when owner is not NULL). This engine's memory
 * only: with a shared store, use engine_fetch. */
struct job *engine_job(struct engine *e, const char *id, const char *owner);
/* The job wherever it runs (its instance's copy in the shared store when not here): cb gets it
 * (NULL: unknown to reader; reader NULL: any tenant's) and its queue position (-1: not queued),
 * on the dispatcher, now or later; j is only valid during cb. */
typedef void (*engine_fetch_cb)(struct job *j, long queue_position, void *ctx);
void engine_fetch(struct engine *e, const char *id, const char *reader, engine_fetch_cb cb,
                  void *ctx);
/* engine_cancel wherever the job runs: status 200 (canceled, or flagged for the instance that
 * runs it), 409 finished, 404 unknown; j and its position as after the cancel. */
typedef void (*engine_cancel_cb)(int status, struct job *j, long queue_position, void *ctx);
void engine_cancel_any(struct engine *e, const char *id, const char *reader, engine_cancel_cb cb,
                       void *ctx);
/* engine_list over the whole shared store (or this engine's memory without one); o is NULL if
 * the store failed. */
typedef void (*engine_list_cb)(json_t *o, void *ctx);
void engine_list_any(struct engine *e, const struct engine_query *q, engine_list_cb cb,
                     void *ctx);
long engine_queue_position(const struct engine *e, const struct job *j);
/* 200 canceled (or cancel under way), 409 already finished, 404 unknown. */
int engine_cancel(struct engine *e, const char *id, const char *owner);
struct engine_query {
    const char *owner;       /* NULL: every tenant (admin) */
    int status;              /* -1: any */
    const char *workflow_id; /* NULL: any */
    int64_t after_ms;        /* created strictly after (0: no bound) */
    int64_t before_ms;       /* created strictly before (0: no bound) */
    uint64_t cursor;         /* 0: from the newest; else only jobs with seq < cursor */
    size_t limit;
};
/* {"jobs": [...newest first...], "next_cursor": "<seq>" | null}. *unsaved: a listed job whose
 * end is not durable yet, if any (engine_list_any answers once it is); *newest: the seq of the
 * first job listed (0: none). */
json_t *engine_list(struct engine *e, const struct engine_query *q, struct job **unsaved,
                    uint64_t *newest);
struct workflow_set *engine_workflows(struct engine *e);

/* Server-sent events. A subscriber lives on its own reactor (`ring`); events reach it there by
 * message, in order: first a "status" event with the whole job, then "status", "progress",
 * "output" and "log" as they happen. on_event gets the data text (owned by the callee);
 * `final` is set on the last event (the job finished). After engine_unsubscribe, on_closed
 * runs on the subscriber's reactor once no more events can arrive: free it there. */
struct engine_sub;
struct engine_sub {
    struct engine_sub *next;
    struct ring *ring;
    char job_id[37];
    void (*on_event)(struct engine_sub *s, const char *event, char *data, bool final);
    void (*on_closed)(struct engine_sub *s);
    bool removed;
};
/* On the dispatcher. 404 if the job is unknown to owner, else 200. */
int engine_subscribe(struct engine *e, const char *owner, struct engine_sub *s);
void engine_unsubscribe(struct engine *e, struct engine_sub *s);
/* The same for a job just read with engine_fetch (seen: valid during the call): a job another
 * instance runs is followed through the store. 200, or 503. */
int engine_subscribe_seen(struct engine *e, struct engine_sub *s, const struct job *seen);

#endif
