/* engine_shared — several gateways on one job store (SHARED_STORE): `serve` instances accept
 * jobs into the store, every instance with a fleet (serve and `worker`) claims queued jobs from
 * it when it has room, best priority first, and holds each with a lease it renews while the
 * job runs. A job whose lease lapsed (its instance died) is taken over by another instance and
 * re-attached to its prompt on its backend, exactly as after a restart. A cancel asked at an
 * instance that does not run the job is written to the store and picked up by the one that
 * does, at its next renewal.
 *
 * The claim is a conditional UPDATE in the store's transaction (SQLite: the database lock
 * serialises the instances; PostgreSQL will do the same with row locks), so two instances can
 * never both run a job. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jobs/engine_internal.h"

/* --- claiming ------------------------------------------------------------------------------- */

struct claim_req {
    struct store_req req;
    struct engine *e;
    char instance[24];
    int64_t now, until, lease;
    unsigned want;
    char *backends;  /* our backends' URLs, a JSON array */
    json_t *ids;     /* claimed (queued ones, then taken-over ones) */
    json_t *rows;    /* their rows */
    json_t *outputs; /* the taken-over ones' outputs */
    json_t *counts;  /* {"*": queued in all, "<owner>": queued of one owner} */
};

static int claim_some(struct store *s, struct claim_req *c, const char *pick, const char *take)
{
    sqlite3_stmt *st = store_stmt(s, pick);
    if (!st)
        return SQLITE_ERROR;
    sqlite3_bind_int64(st, 1, c->now);
    sqlite3_bind_int(st, 2, (int)c->want);
    sqlite3_bind_text(st, 3, c->instance, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, c->backends ? c->backends : "[]", -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, c->now - 2 * c->lease);
    json_t *found = json_array();
    int rc = store_rows_json(st, found);
    size_t i;
    json_t *r;
    json_array_foreach(found, i, r)
    {
        sqlite3_stmt *up = rc == SQLITE_OK ? store_stmt(s, take) : NULL;
        if (!up)
            break;
        sqlite3_bind_text(up, 1, c->instance, -1, SQLITE_STATIC);
        sqlite3_bind_int64(up, 2, c->until);
        sqlite3_bind_text(up, 3, json_string_value(json_object_get(r, "id")), -1,
                          SQLITE_TRANSIENT);
        sqlite3_bind_int64(up, 4, c->now);
        if (sqlite3_step(up) != SQLITE_DONE)
            rc = SQLITE_ERROR;
        else if (sqlite3_changes(s->db) == 1)
            json_array_append(c->ids, json_object_get(r, "id"));
    }
    json_decref(found);
    return rc;
}

static int claimed_rows(struct store *s, struct claim_req *c)
{
    size_t i;
    json_t *id;
    json_array_foreach(c->ids, i, id)
    {
        if (job_store_read(s, json_string_value(id), c->rows, c->outputs) != SQLITE_OK)
            return SQLITE_ERROR;
    }
    return SQLITE_OK;
}

static int queue_counts(struct store *s, struct claim_req *c)
{
    sqlite3_stmt *st = store_stmt(s, "SELECT owner, COUNT(*) AS n FROM jobs WHERE status ="
                                     " 'queued' GROUP BY owner LIMIT 100000");
    json_t *rows = json_array();
    int rc = st ? store_rows_json(st, rows) : SQLITE_ERROR;
    json_int_t all = 0;
    size_t i;
    json_t *r;
    json_array_foreach(rows, i, r)
    {
        json_int_t n = json_integer_value(json_object_get(r, "n"));
        json_object_set_new(c->counts, json_string_value(json_object_get(r, "owner")),
                            json_integer(n));
        all += n;
    }
    json_object_set_new(c->counts, "*", json_integer(all));
    json_decref(rows);
    return rc;
}

static int claim_work(struct store *s, struct store_req *r)
{
    struct claim_req *c = (struct claim_req *)r;
    int rc = queue_counts(s, c);
    if (rc == SQLITE_OK && c->want)
        rc = claim_some(s, c,
                        "SELECT id FROM jobs WHERE status = 'queued' AND instance IS NULL"
                        " ORDER BY priority DESC, created_at, rowid LIMIT ?2",
                        "UPDATE jobs SET instance = ?1, lease_until = ?2 WHERE id = ?3 AND"
                        " status = 'queued' AND instance IS NULL");
    /* a lapsed lease: an instance with the job's backend re-attaches to its prompt at once;
     * after two more lease periods without one, any instance runs it again */
    if (rc == SQLITE_OK && c->want)
        rc = claim_some(s, c,
                        "SELECT id FROM jobs WHERE status = 'running' AND instance != ?3 AND"
                        " ((lease_until < ?1 AND backend IN (SELECT value FROM json_each(?4)))"
                        " OR lease_until < ?5) ORDER BY lease_until LIMIT ?2",
                        "UPDATE jobs SET instance = ?1, lease_until = ?2 WHERE id = ?3 AND"
                        " status = 'running' AND lease_until < ?4");
    if (rc == SQLITE_OK)
        rc = claimed_rows(s, c);
    return rc;
}

/* A claimed job: ours to run now (or as soon as a backend has room). */
static void adopt(struct engine *e, json_t *row)
{
    const char *id = json_string_value(json_object_get(row, "id"));
    struct job *j = jobtable_get(&e->jt, id ? id : "");
    if (j && (j->run || j->prep))
        return; /* cannot be: we hold it already */
    if (j) { /* a stale copy (submitted here): the store's row is the truth */
        jobtable_unqueue(&e->jt, j);
        jobtable_forget(&e->jt, j);
        job_free(j);
    }
    j = engine_job_from_row(e, row);
    if (!j || jobtable_put(&e->jt, j) < 0) {
        job_free(j);
        return;
    }
    snprintf(j->instance, sizeof(j->instance), "%s", e->cfg.instance_id);
    j->lease_until = job_now_ms() + e->cfg.lease_ms;
}

static void claim_done(struct store_req *r)
{
    struct claim_req *c = (struct claim_req *)r;
    struct engine *e = c->e;
    e->claiming = false;
    if (r->rc == SQLITE_OK) {
        json_decref(e->queued_counts);
        e->queued_counts = json_incref(c->counts);
        size_t i;
        json_t *row;
        json_array_foreach(c->rows, i, row)
            adopt(e, row);
        engine_outputs_from_rows(e, c->outputs);
        json_array_foreach(c->rows, i, row)
        {
            struct job *j = jobtable_get(&e->jt, json_string_value(json_object_get(row, "id")));
            if (!j || j->queued || j->run || j->prep)
                continue;
            if (j->status == JOB_RUNNING && engine_reattach(e, j))
                continue; /* its instance died: follow its prompt */
            if (j->status == JOB_RUNNING)
                job_log(j, "warn", "its instance stopped renewing it: queued again here");
            j->status = JOB_QUEUED;
            j->started_ms = 0;
            jobtable_push(&e->jt, j);
        }
    }
    json_decref(c->ids);
    json_decref(c->rows);
    json_decref(c->outputs);
    json_decref(c->counts);
    free(c->backends);
    free(c);
    if (!e->stopping)
        engine_dispatch(e);
}

/* Backend slots free now, less the claimed jobs already waiting for one. */
static unsigned room(const struct engine *e)
{
    if (!e->fleet || e->stopping)
        return 0;
    long free = 0;
    for (size_t i = 0; i < e->fleet->n; i++) {
        const struct comfy_backend *b = &e->fleet->backends[i];
        if (comfy_backend_available(b))
            free += (long)b->spec.max_inflight - (long)b->inflight;
    }
    free -= (long)e->jt.nqueued;
    if (e->cfg.max_concurrency && free > (long)e->cfg.max_concurrency - (long)e->running)
        free = (long)e->cfg.max_concurrency - (long)e->running;
    return free <= 0 ? 0 : free > 32 ? 32 : (unsigned)free;
}

void engine_shared_poll(struct engine *e, bool counts_only)
{
    if (e->claiming || !e->store)
        return;
    unsigned want = counts_only ? 0 : room(e);
    struct claim_req *c = calloc(1, sizeof(*c));
    if (!c)
        return;
    c->e = e;
    snprintf(c->instance, sizeof(c->instance), "%s", e->cfg.instance_id);
    c->now = job_now_ms();
    c->until = c->now + e->cfg.lease_ms;
    c->lease = e->cfg.lease_ms;
    c->want = want;
    json_t *urls = json_array();
    for (size_t i = 0; e->fleet && i < e->fleet->n; i++)
        json_array_append_new(urls, json_string(e->fleet->backends[i].spec.url));
    c->backends = json_dumps(urls, JSON_COMPACT);
    json_decref(urls);
    c->ids = json_array();
    c->rows = json_array();
    c->outputs = json_array();
    c->counts = json_object();
    c->req.work = claim_work;
    c->req.done = claim_done;
    c->req.origin = e->ring;
    e->claiming = true;
    if (store_submit(e->store, &c->req) < 0) {
        e->claiming = false;
        json_decref(c->ids);
        json_decref(c->rows);
        json_decref(c->outputs);
        json_decref(c->counts);
        free(c->backends);
        free(c);
    }
}

/* --- leases and cancels asked elsewhere ------------------------------------------------------- */

struct renew_req {
    struct store_req req;
    struct engine *e;
    char instance[24];
    int64_t until;
    json_t *jobs;     /* [{id, progress, log}] of the jobs we run */
    json_t *lost;     /* ids whose lease another instance holds now */
    json_t *cancels;  /* ids someone asked to cancel */
};

static int renew_work(struct store *s, struct store_req *r)
{
    struct renew_req *q = (struct renew_req *)r;
    size_t i;
    json_t *j;
    json_array_foreach(q->jobs, i, j)
    {
        sqlite3_stmt *st = store_stmt(s, "UPDATE jobs SET lease_until = ?1, progress = ?2, log ="
                                         " ?3 WHERE id = ?4 AND instance = ?5");
        if (!st)
            return SQLITE_ERROR;
        char *p = json_dumps(json_object_get(j, "progress"), JSON_COMPACT);
        char *l = json_dumps(json_object_get(j, "log"), JSON_COMPACT);
        sqlite3_bind_int64(st, 1, q->until);
        sqlite3_bind_text(st, 2, p ? p : "null", -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 3, l ? l : "[]", -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 4, json_string_value(json_object_get(j, "id")), -1,
                          SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 5, q->instance, -1, SQLITE_STATIC);
        free(p);
        free(l);
        if (sqlite3_step(st) != SQLITE_DONE)
            return SQLITE_ERROR;
        if (sqlite3_changes(s->db) == 0)
            json_array_append(q->lost, json_object_get(j, "id"));
    }
    sqlite3_stmt *st = store_stmt(s, "SELECT id FROM jobs WHERE instance = ?1 AND"
                                     " cancel_requested = 1 AND status IN ('queued', 'running')");
    if (!st)
        return SQLITE_ERROR;
    sqlite3_bind_text(st, 1, q->instance, -1, SQLITE_STATIC);
    return store_rows_json(st, q->cancels);
}

static void renew_done(struct store_req *r)
{
    struct renew_req *q = (struct renew_req *)r;
    struct engine *e = q->e;
    e->renewing = false;
    size_t i;
    json_t *x;
    json_array_foreach(q->lost, i, x)
    {
        struct job *j = jobtable_get(&e->jt, json_string_value(x));
        if (j && (j->run || j->prep)) { /* too late: another instance took it over; let it go */
            job_log(j, "error", "the lease on this job was lost to another instance");
            engine_release_lost(e, j);
        }
    }
    json_array_foreach(q->cancels, i, x)
    {
        const char *id = json_string_value(json_object_get(x, "id"));
        struct job *j = jobtable_get(&e->jt, id ? id : "");
        if (j && !job_finished(j) && !j->cancel_requested) {
            job_log(j, "info", "canceled through another instance");
            engine_cancel(e, j->id, NULL);
        }
    }
    json_decref(q->jobs);
    json_decref(q->lost);
    json_decref(q->cancels);
    free(q);
}

void engine_shared_renew(struct engine *e)
{
    if (e->renewing || !e->store)
        return;
    struct renew_req *q = calloc(1, sizeof(*q));
    if (!q)
        return;
    q->e = e;
    snprintf(q->instance, sizeof(q->instance), "%s", e->cfg.instance_id);
    q->until = job_now_ms() + e->cfg.lease_ms;
    q->jobs = json_array();
    q->lost = json_array();
    q->cancels = json_array();
    for (size_t i = 0; i < e->jt.norder; i++) {
        struct job *j = e->jt.order[i];
        if (job_finished(j) || strcmp(j->instance, e->cfg.instance_id) != 0)
            continue;
        j->lease_until = q->until;
        json_array_append_new(q->jobs, json_pack("{s:s, s:o, s:o}", "id", j->id, "progress",
                                                 job_progress_json(j), "log", job_log_json(j)));
    }
    q->req.work = renew_work;
    q->req.done = renew_done;
    q->req.origin = e->ring;
    e->renewing = true;
    if (store_submit(e->store, &q->req) < 0) {
        e->renewing = false;
        json_decref(q->jobs);
        json_decref(q->lost);
        json_decref(q->cancels);
        free(q);
    }
}

/* --- giving a job back ---------------------------------------------------------------------- */

struct release_req {
    struct store_req req;
    struct engine *e;
    char id[37], instance[24];
    json_t *log;
};

static int release_work(struct store *s, struct store_req *r)
{
    struct release_req *q = (struct release_req *)r;
    sqlite3_stmt *st = store_stmt(s, "UPDATE jobs SET status = 'queued', instance = NULL,"
                                     " lease_until = NULL, started_at = NULL, log = ?3 WHERE"
                                     " id = ?1 AND instance = ?2 AND status IN ('queued',"
                                     " 'running')");
    if (!st)
        return SQLITE_ERROR;
    char *l = json_dumps(q->log, JSON_COMPACT);
    sqlite3_bind_text(st, 1, q->id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, q->instance, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, l ? l : "[]", -1, SQLITE_TRANSIENT);
    free(l);
    return sqlite3_step(st) == SQLITE_DONE ? SQLITE_OK : SQLITE_ERROR;
}

static void release_done(struct store_req *r)
{
    struct release_req *q = (struct release_req *)r;
    q->e->reads--;
    json_decref(q->log);
    free(q);
}

void engine_shared_release(struct engine *e, struct job *j)
{
    struct release_req *q = calloc(1, sizeof(*q));
    if (q) {
        q->e = e;
        snprintf(q->id, sizeof(q->id), "%s", j->id);
        snprintf(q->instance, sizeof(q->instance), "%s", e->cfg.instance_id);
        q->log = job_log_json(j);
        q->req.work = release_work;
        q->req.done = release_done;
        q->req.origin = e->ring;
        e->reads++;
        if (store_submit(e->store, &q->req) < 0) {
            e->reads--;
            json_decref(q->log);
            free(q);
        }
    }
    jobtable_unqueue(&e->jt, j);
    jobtable_forget(&e->jt, j);
    job_free(j);
}
