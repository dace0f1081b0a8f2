/* engine_persist — a job's row in the store: snapshots saved on the store thread (one in
 * flight per job, later changes coalesced into the next), the first save of a submit answering
 * the client, the write-ahead of an attempt releasing its submit, and a job's end announced
 * only once the row holding it is committed. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jobs/engine.h"
#include "jobs/engine_internal.h"
#include "jobs/job_store.h"
#include "jobs/jobtable.h"

/* --- persistence ------------------------------------------------------------------------------ */

struct engine_end_wait {
    struct engine_end_wait *next;
    engine_fetch_cb cb;
    void *ctx;
    bool ctx_owned; /* freed with the wait if it is dropped unanswered */
};

void engine_wait_end(struct engine *e, struct job *j, engine_fetch_cb cb, void *ctx, bool ctx_owned)
{
    struct engine_end_wait *w = j->end_unsaved ? calloc(1, sizeof(*w)) : NULL;
    if (!w) /* durable already (or no memory: answer now rather than never) */
        return cb(j, engine_queue_position(e, j), ctx);
    w->cb = cb;
    w->ctx = ctx;
    w->ctx_owned = ctx_owned;
    w->next = j->end_waiters;
    j->end_waiters = w;
}

/* A hard stop with the store stuck: the reads that waited are not answered (their reactors
 * are stopping too), only freed. */
void engine_end_waiters_free(struct job *j)
{
    while (j->end_waiters) {
        struct engine_end_wait *w = j->end_waiters;
        j->end_waiters = w->next;
        if (w->ctx_owned)
            free(w->ctx);
        free(w);
    }
}

/* j's final row is committed (or the store refused it: go on without it, as for every other
 * save): announce the end — to the listeners first, whose last event the waiting reads could
 * otherwise move on (a subscribe among them) — send the end webhook held back meanwhile, and
 * answer the reads that waited. gone: j is about to be freed (nothing is announced). */
void engine_end_durable(struct engine *e, struct job *j, bool gone)
{
    j->end_unsaved = false;
    j->end_saved = true;
    if (!gone) {
        engine_emit_status(e, j);
        if (j->end_hook_pending) {
            j->end_hook_pending = false;
            engine_hook_end(e, j);
        }
    }
    struct engine_end_wait *w = j->end_waiters;
    j->end_waiters = NULL;
    while (w) {
        struct engine_end_wait *next = w->next;
        w->cb(gone ? NULL : j, gone ? -1 : engine_queue_position(e, j), w->ctx);
        free(w);
        w = next;
    }
}


struct save_ctx {
    struct job_save save;
    struct engine *e;
    engine_submit_cb cb; /* the first save of a submit answers the client */
    void *cb_ctx;
    bool final; /* the snapshot holds a finished status */
    /* the snapshot holds the write-ahead of the attempt whose submit is held (its prompt id):
     * once committed, that submit may go, whatever was changed since */
    char write_ahead[40];
};

static void saved_cb(struct job_save *s)
{
    struct save_ctx *sc = (struct save_ctx *)s;
    struct engine *e = sc->e;
    struct job *j = s->job;
    j->persisting = false;
    if (sc->cb && s->req.rc != SQLITE_OK) {
        /* not durable, so not accepted: it never existed (and is never saved again: with a
         * client-chosen id, the row may be another job's) */
        struct engine_submit res;
        memset(&res, 0, sizeof(res));
        res.status = 503;
        res.code = "STORE_UNAVAILABLE";
        snprintf(res.message, sizeof(res.message), "the job could not be stored");
        if (s->req.rc == SQLITE_CONSTRAINT && s->idem_conflict) {
            res.status = 409; /* another gateway took the key a moment ago: retry to replay */
            res.code = "IDEMPOTENCY_IN_PROGRESS";
            snprintf(res.message, sizeof(res.message),
                     "a request with this idempotency key is still being processed");
        } else if (s->req.rc == SQLITE_CONSTRAINT) {
            res.status = 409;
            res.code = "JOB_EXISTS";
            snprintf(res.message, sizeof(res.message), "a job with id %s exists", j->id);
        }
        jobtable_unqueue(&e->jt, j);
        if (j->idem_key[0])
            keymap_del(&e->idem, j->idem_key);
        jobtable_forget(&e->jt, j); /* first: a list made again must not find it */
        if (j->end_unsaved)
            engine_end_durable(e, j, true);
        sc->cb(&res, sc->cb_ctx);
        free(sc);
        job_free(j);
        return;
    }
    if (sc->cb) {
        struct engine_submit res;
        memset(&res, 0, sizeof(res));
        {
            j->durable = true;
            j->insert_only = false;
            res.status = j->cache_hit ? 200 : 202;
            res.cache_hit = j->cache_hit;
            res.job = j;
            res.queue_position = engine_queue_position(e, j);
        }
        sc->cb(&res, sc->cb_ctx);
        if (j->cache_hit)
            engine_hook_end(e, j);
        else
            engine_hook(e, j, "queued");
        if (e->cfg.shared && !job_finished(j)) {
            /* the store has it now, for whichever instance claims it first (maybe us) */
            jobtable_forget(&e->jt, j);
            free(sc);
            job_free(j);
            engine_shared_poll(e, false);
            return;
        }
    }
    bool first = sc->cb != NULL;
    if (sc->final && s->req.rc != SQLITE_OK) /* announced all the same: see engine_end_durable */
        engine_jlog(e, j, "error", "the final state could not be stored (SQLite %d): after a "
                    "restart the job may run again", s->req.rc);
    if (sc->final && j->end_unsaved)
        engine_end_durable(e, j, false);
    bool wrote_ahead = j->submit_held && sc->write_ahead[0] &&
                       !strcmp(sc->write_ahead, j->prompt_id);
    free(sc);
    if (wrote_ahead) {
        /* the attempt's prompt id is on disk (or the store failed: run anyway rather than
         * stall): a crash from here on finds the prompt again instead of running it twice.
         * A save still to come (dirty) does not hold the submit back. */
        j->submit_held = false;
        if (j->run)
            comfy_run_submit_go(j->run);
    }
    if (j->dirty) {
        j->dirty = false;
        engine_persist(e, j);
    }
    if (first)
        engine_dispatch(e);
}

int engine_persist_with(struct engine *e, struct job *j, engine_submit_cb cb, void *ctx,
                        struct job_blob *blobs, size_t nblobs)
{
    struct save_ctx *sc = calloc(1, sizeof(*sc));
    if (!sc) {
        for (size_t i = 0; i < nblobs; i++)
            free(blobs[i].data);
        free(blobs);
        return -ENOMEM;
    }
    sc->save.blobs = blobs;
    sc->save.nblobs = nblobs;
    /* a finished raw-graph job's inline input images are no longer needed */
    sc->save.drop_blobs = j->kind == JOB_KIND_PROMPT && job_finished(j);
    sc->save.insert_only = j->insert_only && cb;
    sc->save.strict_keys = e->cfg.shared && cb;
    sc->e = e;
    sc->cb = cb;
    sc->cb_ctx = ctx;
    sc->final = job_finished(j);
    if (sc->final && !j->end_saved) /* a cache hit is created finished: its first save too */
        j->end_unsaved = true;
    sc->save.job = j;
    sc->save.done = saved_cb;
    if (j->submit_held)
        snprintf(sc->write_ahead, sizeof(sc->write_ahead), "%s", j->prompt_id);
    sc->save.row = job_store_snapshot(j, j->run);
    int64_t cexp = 0;
    if (j->status == JOB_SUCCEEDED && !j->cache_hit && e->cfg.cache_enabled && j->cache_key[0])
        cexp = j->finished_ms + (int64_t)e->cfg.cache_ttl_s * 1000;
    job_store_snapshot_keys(sc->save.row, j, cexp);
    j->persisting = true;
    if (job_store_save(e->store, e->ring, &sc->save) < 0) {
        json_decref(sc->save.row);
        for (size_t i = 0; i < nblobs; i++)
            free(blobs[i].data);
        free(blobs);
        free(sc);
        j->persisting = false;
        if (j->end_unsaved && !cb)
            engine_end_durable(e, j, false);
        return -EAGAIN;
    }
    return 0;
}

/* Saves j's current state; coalesces while a save is in flight. */
void engine_persist(struct engine *e, struct job *j)
{
    if (!e->store)
        return;
    if (job_finished(j) && !j->end_saved)
        j->end_unsaved = true;
    if (j->persisting) {
        j->dirty = true;
        return;
    }
    engine_persist_with(e, j, NULL, NULL, NULL, 0);
}
