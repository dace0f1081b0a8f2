/* engine_read — reading jobs wherever they run. With one gateway a job is in this engine's
 * memory and read there. With a shared store (SHARED_STORE) a job another instance runs, or
 * that no instance has claimed yet, is read from the store instead: GET /jobs/:id and its
 * outputs and logs (engine_fetch), cancels (engine_cancel_any: a queued job nobody holds is
 * canceled in the store at once, a held one is flagged for its instance), the list (a store
 * query), and subscriptions (a poll of the store that turns changes into the same events). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jobs/engine_internal.h"

/* This engine's copy of j is the truth: no shared store, or we run it, or it ended here
 * without ever being claimed (a cache hit, a refusal). */
bool engine_authoritative(const struct engine *e, const struct job *j)
{
    if (!e->cfg.shared)
        return true;
    if (j->instance[0])
        return !strcmp(j->instance, e->cfg.instance_id);
    return job_finished(j);
}

/* --- one job from the store -------------------------------------------------------------------- */

struct fetch_req {
    struct store_req req;
    struct engine *e;
    char id[37];
    char reader[130];
    bool any_reader;
    json_t *rows, *outputs, *pos;
    engine_fetch_cb cb;
    void *ctx;
};

static int fetch_work(struct store *s, struct store_req *r)
{
    struct fetch_req *f = (struct fetch_req *)r;
    int rc = job_store_read(s, f->id, f->rows, f->outputs);
    json_t *row = json_array_get(f->rows, 0);
    if (rc != SQLITE_OK || !row)
        return rc;
    /* its place in the store's queue: jobs before it in the order the instances claim them */
    sqlite3_stmt *qt = store_stmt(s, "SELECT COUNT(*) AS n FROM jobs WHERE status = 'queued' AND"
                                     " (priority > ?1 OR (priority = ?1 AND (created_at < ?2 OR"
                                     " (created_at = ?2 AND rowid < ?3))))");
    if (!qt)
        return SQLITE_ERROR;
    sqlite3_bind_int64(qt, 1, json_integer_value(json_object_get(row, "priority")));
    sqlite3_bind_int64(qt, 2, json_integer_value(json_object_get(row, "created_at")));
    sqlite3_bind_int64(qt, 3, json_integer_value(json_object_get(row, "row_id")));
    return store_rows_json(qt, f->pos);
}

/* A job of the store as a struct job (outside the table; the caller frees it). */
static struct job *job_of(struct engine *e, json_t *row, json_t *outputs)
{
    struct job *j = engine_job_from_row(e, row);
    if (j)
        engine_job_outputs(j, outputs);
    return j;
}

static void fetch_done(struct store_req *r)
{
    struct fetch_req *f = (struct fetch_req *)r;
    json_t *row = json_array_get(f->rows, 0);
    const char *owner = json_string_value(json_object_get(row, "owner"));
    struct job *j = NULL;
    if (r->rc == 0 && row && (f->any_reader || (owner && !strcmp(owner, f->reader))))
        j = job_of(f->e, row, f->outputs);
    long pos = j && j->status == JOB_QUEUED
                   ? (long)json_integer_value(json_object_get(json_array_get(f->pos, 0), "n"))
                   : -1;
    f->cb(j, pos, f->ctx);
    job_free(j);
    json_decref(f->rows);
    json_decref(f->outputs);
    json_decref(f->pos);
    f->e->reads--;
    free(f);
}

void engine_fetch(struct engine *e, const char *id, const char *reader, engine_fetch_cb cb,
                  void *ctx)
{
    struct job *j = engine_job(e, id, reader);
    if (j && j->end_unsaved) /* finished, not yet durable: answer once it is */
        return engine_wait_end(e, j, cb, ctx, false);
    if (!e->cfg.shared || (j && engine_authoritative(e, j)) || !e->store)
        return cb(j, j ? engine_queue_position(e, j) : -1, ctx);
    struct fetch_req *f = calloc(1, sizeof(*f));
    if (!f)
        return cb(NULL, -1, ctx);
    f->e = e;
    snprintf(f->id, sizeof(f->id), "%s", id);
    snprintf(f->reader, sizeof(f->reader), "%s", reader ? reader : "");
    f->any_reader = reader == NULL;
    f->rows = json_array();
    f->outputs = json_array();
    f->pos = json_array();
    f->cb = cb;
    f->ctx = ctx;
    f->req.work = fetch_work;
    f->req.done = fetch_done;
    f->req.origin = e->ring;
    e->reads++;
    if (store_submit(e->store, &f->req) < 0) {
        f->req.rc = -1;
        fetch_done(&f->req);
    }
}

/* --- cancel, wherever the job is --------------------------------------------------------------- */

struct cancel_req {
    struct fetch_req f; /* first: the row read back for the answer */
    int64_t now;
    bool canceled;      /* it was queued and unclaimed: canceled in the store */
    bool flagged;       /* an instance holds it: flagged for it */
    engine_cancel_cb done;
    void *done_ctx;
};

static int cancel_work(struct store *s, struct store_req *r)
{
    struct cancel_req *c = (struct cancel_req *)r;
    const char *owner_guard = " AND (?2 = '' OR owner = ?2)";
    char q1[400], q2[300];
    snprintf(q1, sizeof(q1), "UPDATE jobs SET status = 'canceled', error_code = 'CANCELED',"
             " error_message = 'canceled while queued', finished_at = ?3, updated_at = ?3"
             " WHERE id = ?1 AND status = 'queued' AND instance IS NULL%s", owner_guard);
    snprintf(q2, sizeof(q2), "UPDATE jobs SET cancel_requested = 1 WHERE id = ?1 AND status IN"
             " ('queued', 'running')%s", owner_guard);
    for (int k = 0; k < 2; k++) {
        sqlite3_stmt *st = store_stmt(s, k == 0 ? q1 : q2);
        if (!st)
            return SQLITE_ERROR;
        sqlite3_bind_text(st, 1, c->f.id, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, c->f.any_reader ? "" : c->f.reader, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, c->now);
        if (sqlite3_step(st) != SQLITE_DONE)
            return SQLITE_ERROR;
        if (sqlite3_changes(s->db) == 1) {
            *(k == 0 ? &c->canceled : &c->flagged) = true;
            break;
        }
    }
    if (c->canceled) { /* a raw graph's inline images are not needed any more */
        sqlite3_stmt *st = store_stmt(s, "DELETE FROM job_inputs WHERE job_id = ?1");
        if (st) {
            sqlite3_bind_text(st, 1, c->f.id, -1, SQLITE_STATIC);
            sqlite3_step(st);
        }
    }
    return fetch_work(s, r);
}

static void cancel_fetched(struct job *j, long pos, void *ctx)
{
    struct cancel_req *c = ctx;
    int status = !j ? 404 : c->canceled || c->flagged ? 200 : 409;
    if (j && c->canceled)
        engine_hook_end(c->f.e, j); /* job.canceled for its callbackUrl, exactly once */
    c->done(status, j, pos, c->done_ctx);
}

/* A cancel's answer about a job whose end is not durable yet (it was canceled while queued,
 * or had just finished): given once it is, so a crash cannot take back what it says. */
struct cancel_wait {
    int status;
    engine_cancel_cb cb;
    void *ctx;
};

static void cancel_durable(struct job *j, long pos, void *ctx)
{
    struct cancel_wait *w = ctx;
    w->cb(j ? w->status : 404, j, pos, w->ctx);
    free(w);
}

void engine_cancel_any(struct engine *e, const char *id, const char *reader, engine_cancel_cb cb,
                       void *ctx)
{
    struct job *j = engine_job(e, id, reader);
    if (!e->cfg.shared || (j && engine_authoritative(e, j)) || !e->store) {
        int st = engine_cancel(e, id, reader);
        j = engine_job(e, id, reader);
        struct cancel_wait *w = j && j->end_unsaved ? malloc(sizeof(*w)) : NULL;
        if (w) {
            *w = (struct cancel_wait){st, cb, ctx};
            return engine_wait_end(e, j, cancel_durable, w, true);
        }
        return cb(st, j, j ? engine_queue_position(e, j) : -1, ctx);
    }
    struct cancel_req *c = calloc(1, sizeof(*c));
    if (!c)
        return cb(503, NULL, -1, ctx);
    c->f.e = e;
    snprintf(c->f.id, sizeof(c->f.id), "%s", id);
    snprintf(c->f.reader, sizeof(c->f.reader), "%s", reader ? reader : "");
    c->f.any_reader = reader == NULL;
    c->f.rows = json_array();
    c->f.outputs = json_array();
    c->f.pos = json_array();
    c->f.cb = cancel_fetched;
    c->f.ctx = c;
    c->done = cb;
    c->done_ctx = ctx;
    c->now = job_now_ms();
    c->f.req.work = cancel_work;
    c->f.req.done = fetch_done; /* frees c: f is its first member */
    c->f.req.origin = e->ring;
    e->reads++;
    if (store_submit(e->store, &c->f.req) < 0) {
        c->f.req.rc = -1;
        fetch_done(&c->f.req);
    }
}

/* --- the list, from the store -------------------------------------------------------------------- */

struct list_req {
    struct store_req req;
    struct engine *e;
    struct engine_query q;
    char owner[130], wf[100];
    json_t *rows, *outputs;
    engine_list_cb cb;
    void *ctx;
};

static int list_work(struct store *s, struct store_req *r)
{
    struct list_req *l = (struct list_req *)r;
    sqlite3_stmt *st = store_stmt(
        s, "SELECT rowid AS row_id, * FROM jobs WHERE (?1 = '' OR owner = ?1) AND (?2 = '' OR"
           " status = ?2) AND (?3 = '' OR workflow_id = ?3) AND (?4 = 0 OR created_at > ?4) AND"
           " (?5 = 0 OR created_at < ?5) AND (?6 = 0 OR rowid < ?6) ORDER BY rowid DESC LIMIT ?7");
    if (!st)
        return SQLITE_ERROR;
    sqlite3_bind_text(st, 1, l->owner, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, l->q.status < 0 ? "" : job_status_name((enum job_status)l->q.status),
                      -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, l->wf, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, l->q.after_ms);
    sqlite3_bind_int64(st, 5, l->q.before_ms);
    sqlite3_bind_int64(st, 6, (sqlite3_int64)l->q.cursor);
    sqlite3_bind_int64(st, 7, (sqlite3_int64)l->q.limit + 1);
    int rc = store_rows_json(st, l->rows);
    size_t i;
    json_t *row;
    json_array_foreach(l->rows, i, row)
    {
        sqlite3_stmt *ot = rc == SQLITE_OK ? store_stmt(s, "SELECT * FROM outputs WHERE job_id ="
                                                           " ?1 ORDER BY created_at, rowid")
                                           : NULL;
        if (!ot)
            return SQLITE_ERROR;
        sqlite3_bind_text(ot, 1, json_string_value(json_object_get(row, "id")), -1,
                          SQLITE_TRANSIENT);
        rc = store_rows_json(ot, l->outputs);
    }
    return rc;
}

static void list_done(struct store_req *r)
{
    struct list_req *l = (struct list_req *)r;
    json_t *arr = json_array();
    size_t i, n = json_array_size(l->rows);
    json_t *row;
    json_int_t last = 0;
    json_array_foreach(l->rows, i, row)
    {
        if (i == l->q.limit)
            break;
        struct job *j = job_of(l->e, row, l->outputs);
        if (j)
            json_array_append_new(arr, job_to_json(j, -1));
        job_free(j);
        last = json_integer_value(json_object_get(row, "row_id"));
    }
    char cur[32];
    snprintf(cur, sizeof(cur), "%lld", (long long)last);
    json_t *o = r->rc == 0 ? json_pack("{s:o, s:o}", "jobs", arr, "next_cursor",
                                       n > l->q.limit ? json_string(cur) : json_null())
                           : (json_decref(arr), NULL);
    l->cb(o, l->ctx);
    json_decref(l->rows);
    json_decref(l->outputs);
    l->e->reads--;
    free(l);
}

/* A list from memory showing a job whose end is not durable yet: made again once it is, from
 * the same newest job down (jobs submitted meanwhile do not join the page), so each round
 * waits for a job of the page that ended since the last: the rounds are bounded by the page
 * however many jobs end elsewhere (with a status filter, by the jobs of the pinned range). */
struct list_wait {
    struct engine *e;
    struct engine_query q;
    char owner[130], wf[100];
    engine_list_cb cb;
    void *ctx;
};

static void list_again(struct job *j, long pos, void *ctx)
{
    (void)j, (void)pos;
    struct list_wait *w = ctx;
    w->q.owner = w->q.owner ? w->owner : NULL;
    w->q.workflow_id = w->q.workflow_id ? w->wf : NULL;
    engine_list_any(w->e, &w->q, w->cb, w->ctx); /* copies what it keeps */
    free(w);
}

void engine_list_any(struct engine *e, const struct engine_query *q, engine_list_cb cb, void *ctx)
{
    if (!e->cfg.shared || !e->store) { /* a shared store holds durable rows only */
        struct job *unsaved = NULL;
        uint64_t newest = 0;
        json_t *o = engine_list(e, q, &unsaved, &newest);
        struct list_wait *w = unsaved ? calloc(1, sizeof(*w)) : NULL;
        if (!w)
            return cb(o, ctx);
        json_decref(o);
        *w = (struct list_wait){.e = e, .q = *q, .cb = cb, .ctx = ctx};
        w->q.cursor = newest + 1; /* seq < cursor: from the same newest job down */
        snprintf(w->owner, sizeof(w->owner), "%s", q->owner ? q->owner : "");
        snprintf(w->wf, sizeof(w->wf), "%s", q->workflow_id ? q->workflow_id : "");
        return engine_wait_end(e, unsaved, list_again, w, true);
    }
    struct list_req *l = calloc(1, sizeof(*l));
    if (!l)
        return cb(NULL, ctx);
    l->e = e;
    l->q = *q;
    snprintf(l->owner, sizeof(l->owner), "%s", q->owner ? q->owner : "");
    snprintf(l->wf, sizeof(l->wf), "%s", q->workflow_id ? q->workflow_id : "");
    l->rows = json_array();
    l->outputs = json_array();
    l->cb = cb;
    l->ctx = ctx;
    l->req.work = list_work;
    l->req.done = list_done;
    l->req.origin = e->ring;
    e->reads++;
    if (store_submit(e->store, &l->req) < 0) {
        l->req.rc = -1;
        list_done(&l->req);
    }
}

/* --- subscriptions to jobs this instance does not run: the store, polled ------------------- */

struct engine_watch {
    struct engine_watch *next;
    char id[37];
    struct engine_sub *subs;
    char status[16];
    char *progress; /* the last progress sent, as JSON text */
    size_t noutputs;
};

struct watch_req {
    struct store_req req;
    struct engine *e;
    json_t *ids, *rows, *outputs;
};

static int watch_work(struct store *s, struct store_req *r)
{
    struct watch_req *w = (struct watch_req *)r;
    size_t i;
    json_t *id;
    json_array_foreach(w->ids, i, id)
    {
        if (job_store_read(s, json_string_value(id), w->rows, w->outputs) != SQLITE_OK)
            return SQLITE_ERROR;
    }
    return SQLITE_OK;
}

static void watch_free(struct engine_watch *w)
{
    free(w->progress);
    free(w);
}

/* What changed since the last poll, as the events a local job would have sent. */
static bool watch_emit(struct engine_watch *w, const struct job *j)
{
    bool final = job_finished(j);
    for (size_t i = w->noutputs; i < j->noutputs; i++) {
        const struct job_output *o = &j->outputs[i];
        char url[512];
        snprintf(url, sizeof(url), "/outputs/%s/%s", j->id, o->name);
        json_t *d = json_pack("{s:s, s:I, s:s, s:s, s:s}", "filename", o->name, "size",
                              (json_int_t)o->size, "mime", o->mime, "sha256", o->sha256, "url",
                              url);
        for (struct engine_sub *s = w->subs; s; s = s->next)
            engine_sub_post(s, "output", d, false);
        json_decref(d);
    }
    w->noutputs = j->noutputs;
    json_t *p = job_progress_json(j);
    char *pt = json_dumps(p, JSON_COMPACT);
    if (j->status == JOB_RUNNING && pt && (!w->progress || strcmp(pt, w->progress))) {
        for (struct engine_sub *s = w->subs; s; s = s->next)
            engine_sub_post(s, "progress", p, false);
        free(w->progress);
        w->progress = pt;
        pt = NULL;
    }
    free(pt);
    json_decref(p);
    if (strcmp(w->status, job_status_name(j->status)) != 0) {
        snprintf(w->status, sizeof(w->status), "%s", job_status_name(j->status));
        json_t *d = job_to_json(j, -1);
        for (struct engine_sub *s = w->subs; s; s = s->next)
            engine_sub_post(s, "status", d, final);
        json_decref(d);
    }
    return final;
}

static void watch_done(struct store_req *r)
{
    struct watch_req *q = (struct watch_req *)r;
    struct engine *e = q->e;
    e->watching = false;
    size_t i;
    json_t *row;
    json_array_foreach(q->rows, i, row)
    {
        const char *id = json_string_value(json_object_get(row, "id"));
        struct engine_watch **pp = &e->watches;
        while (*pp && strcmp((*pp)->id, id ? id : ""))
            pp = &(*pp)->next;
        struct job *j = *pp ? job_of(e, row, q->outputs) : NULL;
        if (j && watch_emit(*pp, j)) { /* it ended: the subscribers detach themselves */
            struct engine_watch *w = *pp;
            *pp = w->next;
            watch_free(w);
        }
        job_free(j);
    }
    json_decref(q->ids);
    json_decref(q->rows);
    json_decref(q->outputs);
    free(q);
}

void engine_watch_poll(struct engine *e)
{
    if (e->watching || !e->watches || !e->store)
        return;
    struct watch_req *q = calloc(1, sizeof(*q));
    if (!q)
        return;
    q->e = e;
    q->ids = json_array();
    q->rows = json_array();
    q->outputs = json_array();
    size_t n = 0;
    for (struct engine_watch *w = e->watches; w && n < 256; w = w->next, n++)
        json_array_append_new(q->ids, json_string(w->id));
    q->req.work = watch_work;
    q->req.done = watch_done;
    q->req.origin = e->ring;
    e->watching = true;
    if (store_submit(e->store, &q->req) < 0) {
        e->watching = false;
        json_decref(q->ids);
        json_decref(q->rows);
        json_decref(q->outputs);
        free(q);
    }
}

bool engine_watch_add(struct engine *e, struct engine_sub *s, const struct job *seen)
{
    struct engine_watch *w = e->watches;
    while (w && strcmp(w->id, s->job_id))
        w = w->next;
    if (!w) {
        w = calloc(1, sizeof(*w));
        if (!w)
            return false;
        snprintf(w->id, sizeof(w->id), "%s", s->job_id);
        snprintf(w->status, sizeof(w->status), "%s", job_status_name(seen->status));
        w->noutputs = seen->noutputs;
        w->next = e->watches;
        e->watches = w;
    }
    s->next = w->subs;
    w->subs = s;
    return true;
}

void engine_watch_remove(struct engine *e, struct engine_sub *s)
{
    for (struct engine_watch **wp = &e->watches; *wp; wp = &(*wp)->next) {
        for (struct engine_sub **pp = &(*wp)->subs; *pp; pp = &(*pp)->next) {
            if (*pp != s)
                continue;
            *pp = s->next;
            if (!(*wp)->subs) { /* nobody listens any more */
                struct engine_watch *w = *wp;
                *wp = w->next;
                watch_free(w);
            }
            return;
        }
    }
}

void engine_watch_free(struct engine *e)
{
    while (e->watches) {
        struct engine_watch *w = e->watches;
        e->watches = w->next;
        watch_free(w);
    }
}
