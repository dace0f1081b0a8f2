/* job — one job: what was asked, where it is, what came out. Owned by the engine on the
 * dispatcher reactor; the API reads it through job_to_json. */
#ifndef COMFYGATE_JOB_H
#define COMFYGATE_JOB_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "comfy/comfy_run.h"
#include "store/storage.h"
#include "webhook/webhook_event.h"

enum job_status {
    JOB_QUEUED = 0,
    JOB_RUNNING,
    JOB_SUCCEEDED,
    JOB_FAILED,
    JOB_CANCELED,
};

enum job_kind {
    JOB_KIND_WORKFLOW = 0, /* POST /jobs: a workflow template and its inputs */
    JOB_KIND_PROMPT,       /* POST /prompt: a raw ComfyUI graph */
};

struct job_output {
    char name[300];
    uint64_t size;
    char mime[64];
    char sha256[65];
    char node[64];
    char kind[16];
    char key[STORAGE_KEY_MAX]; /* where the storage provider keeps it */
};

struct engine;
struct engine_sub;

struct job {
    struct job *hnext; /* engine hash chain */
    struct engine *engine;
    char id[37];
    char owner[128];
    enum job_kind kind;
    /* JOB_KIND_PROMPT: {"convert_output"?: {format, quality}, "webhook_v2"?: url,
     * "images"?: [{"node", "name"?, "url"?}]} (input images: inline ones are stored by name,
     * URLs are fetched at dispatch) */
    json_t *request;
    struct job_prep *prep; /* dispatch: input images being loaded or fetched */
    char *callback_url;    /* callbackUrl / webhook_v2 (owned), or NULL */
    /* SHARED_STORE: the instance that runs it ("" before one claimed it) and until when its
     * lease holds (Unix ms); another instance takes a running job over once it lapsed */
    char instance[24];
    int64_t lease_until;
    unsigned wh_mask;      /* webhookEvents (webhook_event.h) */
    struct webhook_throttle wh_throttle;
    char workflow_id[96];
    int workflow_version;
    char workflow_hash[65];
    json_t *inputs;   /* after defaults and seed */
    json_t *metadata; /* as given */
    json_t *graph;    /* rendered; dropped once finished */
    int priority;
    uint64_t seq;
    bool queued; /* in the queue (jobtable) */
    struct job *q_left, *q_right; /* queue treap (jobtable.c) */
    uint32_t q_weight, q_size;
    enum job_status status;
    bool cache_hit;
    unsigned attempts;
    char backend[512];
    char prompt_id[40];
    /* progress */
    unsigned nodes_done, nodes_total;
    char current_node[64];
    char current_class[128];
    unsigned step, steps;
    /* error */
    char error_code[40];
    char error_message[1024];
    char error_node[64];
    char error_class[128];
    json_t *node_errors;
    /* outputs */
    struct job_output *outputs;
    size_t noutputs, outputs_cap;
    int64_t created_ms, started_ms, finished_ms;
    /* stages of the last attempt, ms (-1: not reached) */
    int64_t upload_ms, backend_queue_ms, execution_ms, fetch_ms;
    json_t *node_times; /* last attempt: {node id: {"ms", "cached"}} (not persisted) */
    struct comfy_run *run;
    int dirfd; /* staging directory of the outputs while running */
    unsigned commits_pending; /* outputs being made durable by the storage provider */
    int storage_err;          /* the first failed commit (-errno) */
    char storage_detail[200]; /* the provider's account of storage_err */
    bool run_finished;        /* the run ended; finishing waits for commits_pending */
    bool submit_held;         /* the attempt waits for its prompt id to be durable */
    bool resume_pending;      /* running at a restart: follows its prompt once its input
                               * images are loaded again (a lost prompt runs elsewhere) */
    bool insert_only;         /* its first save must not replace a row (client-chosen id) */
    bool persisting; /* a store write is in flight */
    bool dirty;      /* state changed while it was */
    bool cancel_requested;
    bool durable; /* its row is committed */
    /* Finished in memory but its final row is not committed yet: the end is not announced
     * (SSE, sync /prompt) and reads wait (end_waiters) until it is, so no client sees an end
     * that a crash could take back. */
    bool end_unsaved;
    bool end_saved;
    bool end_hook_pending; /* the end webhook, held back until the end is durable */
    bool lost;             /* SHARED_STORE: another instance took it over; never finish it here */
    struct engine_end_wait *end_waiters;
    struct engine_sub *subs; /* SSE listeners */
    char last_event_status[16];
    bool done_emitting;
    int64_t last_preview_ms;
    char cache_key[65];  /* SHA-256 of workflow, version hash, canonical inputs */
    char cache_of[37];   /* a cache hit: the job whose outputs it shares */
    char idem_key[300];  /* owner \x1f key, when the submit carried one */
    char idem_hash[65];
    int64_t idem_expires_ms;
    /* the job's log, a bounded ring of sanitised lines; allocated as lines come (most jobs
     * have two or three), up to JOB_LOG_LINES */
    struct job_log {
        int64_t ts;
        char level[8];
        char message[200];
    } *log;
    unsigned log_cap;
    unsigned nlog; /* total lines ever; the ring keeps the last JOB_LOG_LINES */
};

#define JOB_LOG_LINES 32

const char *job_status_name(enum job_status s);
bool job_finished(const struct job *j);
/* The API view. queue_position < 0: not queued (omitted). base: URL prefix for links ("" ok). */
json_t *job_to_json(const struct job *j, long queue_position);
int64_t job_now_ms(void);
void job_free(struct job *j);
/* Adds a line to the job's log (printf-style; URLs lose any user:password@). */
void job_log(struct job *j, const char *level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
json_t *job_log_json(const struct job *j);
/* The last log line as job_log_json gives it, or NULL when there is none. */
json_t *job_log_last_json(const struct job *j);
/* The "progress" object of a running job's API view. */
json_t *job_progress_json(const struct job *j);
/* Puts back what job_log_json and job_progress_json gave (a job read from the store). */
void job_log_restore(struct job *j, const json_t *log);
void job_progress_restore(struct job *j, const json_t *progress);

#endif
