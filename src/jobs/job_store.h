/* job_store — jobs in SQLite: upsert of a job's snapshot (row + outputs + attempts), and the
 * start-up read of unfinished jobs. Snapshots are deep copies made on the dispatcher, so the
 * store thread never reads a job the dispatcher is changing. */
#ifndef COMFYGATE_JOB_STORE_H
#define COMFYGATE_JOB_STORE_H

#include <jansson.h>

#include "jobs/job.h"
#include "store/store.h"

struct job_blob {
    char name[80];
    unsigned char *data; /* owned by the save */
    size_t len;
};

struct job_save {
    struct store_req req;
    json_t *row; /* owned: the snapshot */
    struct job_blob *blobs; /* inline input images to store with the row (owned) */
    size_t nblobs;
    bool drop_blobs;        /* the job finished: its input images go */
    bool insert_only;       /* fail with SQLITE_CONSTRAINT if the id exists (no upsert) */
    bool strict_keys;       /* the idempotency key must be new (several gateways on a store) */
    bool idem_conflict;     /* out: it was not (SQLITE_CONSTRAINT) */
    struct job *job;
    void (*done)(struct job_save *s);
    void *ctx;
};

/* Snapshot of j (deep copies). */
json_t *job_store_snapshot(const struct job *j, const struct comfy_run *run);
/* Adds the idempotency key and cache entry (cache_expires_ms: 0 = none) to a snapshot. */
void job_store_snapshot_keys(json_t *row, const struct job *j, int64_t cache_expires_ms);
/* Queues the save; done runs on origin with s->req.rc. -EAGAIN if the store queue is full. */
int job_store_save(struct store *st, struct ring *origin, struct job_save *s);

/* Reads a job's inline input images on the store thread; done runs on origin (req.rc). */
struct job_blobs_load {
    struct store_req req;
    char job_id[37];
    struct job_blob *blobs; /* out: owned by the caller once done has run */
    size_t nblobs;
    void (*done)(struct job_blobs_load *l);
    void *ctx;
};
int job_store_blobs_load(struct store *st, struct ring *origin, struct job_blobs_load *l);

/* Store thread: appends job id's row ({"row_id": rowid, ...columns}) to rows and its output
 * rows to outputs. SQLite's result. */
int job_store_read(struct store *s, const char *id, json_t *rows, json_t *outputs);

/* Blocking (start-up only): {"jobs": the newest `limit` jobs plus every unfinished one, oldest
 * first; "outputs": their outputs; "idem": live idempotency keys; "cache": live cache entries},
 * and the largest seq ever used. */
json_t *job_store_load_recent(struct store *st, size_t limit, int64_t now_ms, uint64_t *max_seq);
/* Blocking: the row of one job (any status) as a snapshot, or NULL. */
json_t *job_store_load_one(struct store *st, const char *id);

#endif
