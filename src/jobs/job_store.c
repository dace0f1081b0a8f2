/* job_store — see job_store.h. */
#include "jobs/job_store.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static const char *UPSERT =
    "INSERT INTO jobs (id, owner, workflow_id, workflow_version, workflow_hash, inputs, metadata,"
    " graph, priority, seq, status, cache_hit, attempts, backend, prompt_id, error_code,"
    " error_message, error_node, error_class, node_errors, created_at, started_at, finished_at,"
    " updated_at, cache_of, cache_key, kind, request, callback_url, webhook_events, instance,"
    " lease_until, log, progress) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13,"
    " ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26, ?27, ?28, ?29, ?30, ?31,"
    " ?32, ?33, ?34)"
    " ON CONFLICT(id) DO UPDATE SET status = excluded.status, attempts = excluded.attempts,"
    " backend = excluded.backend, prompt_id = excluded.prompt_id, error_code ="
    " excluded.error_code, error_message = excluded.error_message, error_node ="
    " excluded.error_node, error_class = excluded.error_class, node_errors ="
    " excluded.node_errors, started_at = excluded.started_at, finished_at ="
    " excluded.finished_at, updated_at = excluded.updated_at, inputs = excluded.inputs,"
    " graph = excluded.graph," /* PRIVACY_MODE drops it once the job finishes */
    " instance = excluded.instance, lease_until = excluded.lease_until, log = excluded.log,"
    " progress = excluded.progress"
    /* with several gateways on one store, only the instance that runs a job writes it */
    " WHERE jobs.instance IS NULL OR jobs.instance = excluded.instance";

static const char *OUTPUT =
    "INSERT OR REPLACE INTO outputs (job_id, name, size, mime, sha256, storage_key, node, kind,"
    " created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)";

static const char *ATTEMPT =
    "INSERT OR REPLACE INTO job_attempts (job_id, n, backend, prompt_id, error_code, message,"
    " started_at, ended_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)";

static json_t *str_or_null(const char *s)
{
    return s && s[0] ? json_string(s) : json_null();
}

/* Fields of raw-graph jobs (kind and request), added to every snapshot. */
static void snapshot_kind(json_t *row, const struct job *j)
{
    json_object_set_new(row, "kind", json_string(j->kind == JOB_KIND_PROMPT ? "prompt"
                                                                              : "workflow"));
    json_object_set_new(row, "request", j->request ? json_deep_copy(j->request) : json_null());
    json_object_set_new(row, "callback_url", j->callback_url ? json_string(j->callback_url)
                                                              : json_null());
    json_object_set_new(row, "webhook_events", json_integer(j->wh_mask));
    json_object_set_new(row, "instance", j->instance[0] ? json_string(j->instance) : json_null());
    json_object_set_new(row, "lease_until", j->lease_until ? json_integer(j->lease_until)
                                                           : json_null());
    json_object_set_new(row, "log", job_log_json(j));
    json_object_set_new(row, "progress", job_progress_json(j));
}

json_t *job_store_snapshot(const struct job *j, const struct comfy_run *run)
{
    json_t *outs = json_array();
    for (size_t i = 0; i < j->noutputs; i++) {
        const struct job_output *o = &j->outputs[i];
        json_array_append_new(outs, json_pack("{s:s, s:I, s:s, s:s, s:s, s:s, s:s}", "name",
                                              o->name, "size", (json_int_t)o->size, "mime",
                                              o->mime, "sha256", o->sha256, "node", o->node,
                                              "kind", o->kind, "key", o->key));
    }
    json_t *atts = json_array();
    for (unsigned i = 0; run && i < run->nrecs; i++) {
        const struct comfy_run_record *r = &run->recs[i];
        const char *url = r->backend >= 0 && (size_t)r->backend < run->fleet->n
                              ? run->fleet->backends[r->backend].spec.url
                              : "";
        json_array_append_new(atts, json_pack("{s:s, s:s, s:s, s:s}", "backend", url, "prompt_id",
                                              r->prompt_id, "error", comfy_err_code(r->err),
                                              "message", r->message));
    }
    json_t *row = json_pack(
        "{s:s, s:s, s:s, s:i, s:s, s:o, s:o, s:o, s:i, s:I, s:s, s:b, s:i, s:o, s:o, s:o, s:o,"
        " s:o, s:o, s:o, s:I, s:I, s:I, s:o, s:o}",
        "id", j->id, "owner", j->owner, "workflow_id", j->workflow_id, "workflow_version",
        j->workflow_version, "workflow_hash", j->workflow_hash, "inputs",
        j->inputs ? json_deep_copy(j->inputs) : json_null(), "metadata",
        j->metadata ? json_deep_copy(j->metadata) : json_null(), "graph",
        j->graph ? json_deep_copy(j->graph) : json_null(), "priority", j->priority, "seq",
        (json_int_t)j->seq, "status", job_status_name(j->status), "cache_hit", j->cache_hit,
        "attempts", (int)j->attempts, "backend", str_or_null(j->backend), "prompt_id",
        str_or_null(j->prompt_id), "error_code", str_or_null(j->error_code), "error_message",
        str_or_null(j->error_message), "error_node", str_or_null(j->error_node), "error_class",
        str_or_null(j->error_class), "node_errors",
        j->node_errors ? json_deep_copy(j->node_errors) : json_null(), "created_at",
        (json_int_t)j->created_ms, "started_at", (json_int_t)j->started_ms, "finished_at",
        (json_int_t)j->finished_ms, "outputs", outs, "attempt_log", atts);
    if (row)
        snapshot_kind(row, j);
    return row;
}

/* Idempotency key and cache entry of a job, added to its snapshot by the engine. */
void job_store_snapshot_keys(json_t *row, const struct job *j, int64_t cache_expires_ms)
{
    if (j->idem_key[0])
        json_object_set_new(row, "idem", json_pack("{s:s, s:s, s:I}", "key", j->idem_key, "hash",
                                                   j->idem_hash, "expires",
                                                   (json_int_t)j->idem_expires_ms));
    if (j->cache_of[0])
        json_object_set_new(row, "cache_of", json_string(j->cache_of));
    if (j->cache_key[0])
        json_object_set_new(row, "cache_key", json_string(j->cache_key));
    if (cache_expires_ms)
        json_object_set_new(row, "cache_expires", json_integer(cache_expires_ms));
}

static void bind_json(sqlite3_stmt *st, int i, json_t *v)
{
    if (!v || json_is_null(v)) {
        sqlite3_bind_null(st, i);
    } else if (json_is_string(v)) {
        sqlite3_bind_text(st, i, json_string_value(v), -1, SQLITE_TRANSIENT);
    } else if (json_is_integer(v)) {
        sqlite3_bind_int64(st, i, json_integer_value(v));
    } else if (json_is_boolean(v)) {
        sqlite3_bind_int(st, i, json_is_true(v));
    } else {
        char *s = json_dumps(v, JSON_COMPACT);
        sqlite3_bind_text(st, i, s ? s : "null", -1, SQLITE_TRANSIENT);
        free(s);
    }
}

static int save_keys(struct store *s, json_t *row, struct job_save *js)
{
    const char *id = json_string_value(json_object_get(row, "id"));
    json_t *idem = json_object_get(row, "idem");
    sqlite3_stmt *st;
    if (idem) {
        /* strict: another gateway on the store may have taken the key a moment ago */
        st = store_stmt(s, js->strict_keys
                               ? "INSERT INTO idempotency_keys (owner, key, body_hash, job_id,"
                                 " created_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"
                               : "INSERT OR IGNORE INTO idempotency_keys (owner, key, body_hash,"
                                 " job_id, created_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5,"
                                 " ?6)");
        if (!st)
            return SQLITE_ERROR;
        bind_json(st, 1, json_object_get(row, "owner"));
        bind_json(st, 2, json_object_get(idem, "key"));
        bind_json(st, 3, json_object_get(idem, "hash"));
        sqlite3_bind_text(st, 4, id, -1, SQLITE_STATIC);
        bind_json(st, 5, json_object_get(row, "created_at"));
        bind_json(st, 6, json_object_get(idem, "expires"));
        int step = sqlite3_step(st);
        if (step != SQLITE_DONE) {
            js->idem_conflict = step == SQLITE_CONSTRAINT;
            return js->idem_conflict ? SQLITE_CONSTRAINT : SQLITE_ERROR;
        }
    }
    json_t *cexp = json_object_get(row, "cache_expires");
    if (cexp) {
        st = store_stmt(s, "INSERT OR REPLACE INTO cache_entries (key, job_id, owner, created_at,"
                           " expires_at) VALUES (?1, ?2, ?3, ?4, ?5)");
        if (!st)
            return SQLITE_ERROR;
        bind_json(st, 1, json_object_get(row, "cache_key"));
        sqlite3_bind_text(st, 2, id, -1, SQLITE_STATIC);
        bind_json(st, 3, json_object_get(row, "owner"));
        bind_json(st, 4, json_object_get(row, "finished_at"));
        bind_json(st, 5, cexp);
        if (sqlite3_step(st) != SQLITE_DONE)
            return SQLITE_ERROR;
    }
    return SQLITE_OK;
}

static int save_children(struct store *s, json_t *row, struct job_save *js)
{
    const char *id = json_string_value(json_object_get(row, "id"));
    int krc = save_keys(s, row, js);
    if (krc != SQLITE_OK)
        return krc;
    size_t i;
    json_t *o;
    json_array_foreach(json_object_get(row, "outputs"), i, o)
    {
        sqlite3_stmt *st = store_stmt(s, OUTPUT);
        if (!st)
            return SQLITE_ERROR;
        const char *key = json_string_value(json_object_get(o, "key"));
        sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
        static const char *const cols[] = {"name", "size", "mime", "sha256"};
        for (int k = 0; k < 4; k++)
            bind_json(st, 2 + k, json_object_get(o, cols[k]));
        sqlite3_bind_text(st, 6, key ? key : "", -1, SQLITE_STATIC);
        bind_json(st, 7, json_object_get(o, "node"));
        bind_json(st, 8, json_object_get(o, "kind"));
        bind_json(st, 9, json_object_get(row, "finished_at"));
        if (sqlite3_step(st) != SQLITE_DONE)
            return SQLITE_ERROR;
    }
    json_array_foreach(json_object_get(row, "attempt_log"), i, o)
    {
        sqlite3_stmt *st = store_stmt(s, ATTEMPT);
        if (!st)
            return SQLITE_ERROR;
        sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
        sqlite3_bind_int(st, 2, (int)i + 1);
        bind_json(st, 3, json_object_get(o, "backend"));
        bind_json(st, 4, json_object_get(o, "prompt_id"));
        bind_json(st, 5, json_object_get(o, "error"));
        bind_json(st, 6, json_object_get(o, "message"));
        sqlite3_bind_null(st, 7);
        sqlite3_bind_null(st, 8);
        if (sqlite3_step(st) != SQLITE_DONE)
            return SQLITE_ERROR;
    }
    return SQLITE_OK;
}

/* Inline input images, written with the job's first save (so they are durable with it), and
 * removed in the save that finishes it. */
static int save_blobs(struct store *s, struct job_save *js)
{
    const char *id = json_string_value(json_object_get(js->row, "id"));
    for (size_t i = 0; i < js->nblobs; i++) {
        sqlite3_stmt *st = store_stmt(s, "INSERT OR REPLACE INTO job_inputs (job_id, name, data)"
                                         " VALUES (?1, ?2, ?3)");
        if (!st)
            return SQLITE_ERROR;
        sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, js->blobs[i].name, -1, SQLITE_STATIC);
        sqlite3_bind_blob64(st, 3, js->blobs[i].data, js->blobs[i].len, SQLITE_STATIC);
        if (sqlite3_step(st) != SQLITE_DONE)
            return SQLITE_ERROR;
    }
    if (!js->drop_blobs)
        return SQLITE_OK;
    sqlite3_stmt *st = store_stmt(s, "DELETE FROM job_inputs WHERE job_id = ?1");
    if (!st)
        return SQLITE_ERROR;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    return sqlite3_step(st) == SQLITE_DONE ? SQLITE_OK : SQLITE_ERROR;
}

static int save_work(struct store *s, struct store_req *r)
{
    struct job_save *js = (struct job_save *)r;
    json_t *row = js->row;
    /* a client-chosen id's first save must not take over an existing job's row */
    char insert[2048];
    if (js->insert_only)
        snprintf(insert, sizeof(insert), "%.*s", (int)(strstr(UPSERT, " ON CONFLICT") - UPSERT),
                 UPSERT);
    sqlite3_stmt *st = store_stmt(s, js->insert_only ? insert : UPSERT);
    if (!st)
        return SQLITE_ERROR;
    static const char *const cols[] = {
        "id",          "owner",      "workflow_id", "workflow_version", "workflow_hash",
        "inputs",      "metadata",   "graph",       "priority",         "seq",
        "status",      "cache_hit",  "attempts",    "backend",          "prompt_id",
        "error_code",  "error_message", "error_node", "error_class",    "node_errors",
        "created_at",  "started_at", "finished_at"};
    for (int i = 0; i < 23; i++)
        bind_json(st, i + 1, json_object_get(row, cols[i]));
    sqlite3_bind_int64(st, 24, json_integer_value(json_object_get(row, "created_at")));
    bind_json(st, 25, json_object_get(row, "cache_of"));
    bind_json(st, 26, json_object_get(row, "cache_key"));
    bind_json(st, 27, json_object_get(row, "kind"));
    bind_json(st, 28, json_object_get(row, "request"));
    bind_json(st, 29, json_object_get(row, "callback_url"));
    bind_json(st, 30, json_object_get(row, "webhook_events"));
    bind_json(st, 31, json_object_get(row, "instance"));
    bind_json(st, 32, json_object_get(row, "lease_until"));
    bind_json(st, 33, json_object_get(row, "log"));
    bind_json(st, 34, json_object_get(row, "progress"));
    int step = sqlite3_step(st);
    if (step != SQLITE_DONE)
        return step == SQLITE_CONSTRAINT ? SQLITE_CONSTRAINT : SQLITE_ERROR;
    int rc = save_children(s, row, js);
    if (rc == SQLITE_OK)
        rc = save_blobs(s, js);
    return rc;
}

static void save_done(struct store_req *r)
{
    struct job_save *js = (struct job_save *)r;
    json_decref(js->row);
    js->row = NULL;
    for (size_t i = 0; i < js->nblobs; i++)
        free(js->blobs[i].data);
    free(js->blobs);
    js->blobs = NULL;
    js->nblobs = 0;
    js->done(js);
}

int job_store_save(struct store *st, struct ring *origin, struct job_save *s)
{
    s->req.work = save_work;
    s->req.done = save_done;
    s->req.origin = origin;
    return store_submit(st, &s->req);
}

static int blobs_load_work(struct store *s, struct store_req *r)
{
    struct job_blobs_load *l = (struct job_blobs_load *)r;
    sqlite3_stmt *st = store_stmt(s, "SELECT name, data FROM job_inputs WHERE job_id = ?1"
                                     " ORDER BY name LIMIT 64");
    if (!st)
        return SQLITE_ERROR;
    sqlite3_bind_text(st, 1, l->job_id, -1, SQLITE_STATIC);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct job_blob *nb = realloc(l->blobs, (l->nblobs + 1) * sizeof(*nb));
        if (!nb)
            return SQLITE_NOMEM;
        l->blobs = nb;
        struct job_blob *b = &l->blobs[l->nblobs];
        memset(b, 0, sizeof(*b));
        snprintf(b->name, sizeof(b->name), "%s", (const char *)sqlite3_column_text(st, 0));
        size_t n = (size_t)sqlite3_column_bytes(st, 1);
        b->data = malloc(n ? n : 1);
        if (!b->data)
            return SQLITE_NOMEM;
        if (n)
            memcpy(b->data, sqlite3_column_blob(st, 1), n);
        b->len = n;
        l->nblobs++;
    }
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

static void blobs_load_done(struct store_req *r)
{
    struct job_blobs_load *l = (struct job_blobs_load *)r;
    l->done(l);
}

int job_store_blobs_load(struct store *st, struct ring *origin, struct job_blobs_load *l)
{
    l->req.work = blobs_load_work;
    l->req.done = blobs_load_done;
    l->req.origin = origin;
    return store_submit(st, &l->req);
}

/* --- start-up reads -------------------------------------------------------------------------- */

struct load_req {
    struct store_req req;
    json_t *rows;
    uint64_t max_seq;
    const char *id;
    size_t limit;
    int64_t now_ms;
};

static int load_rows(struct store *s, struct load_req *lr, sqlite3_stmt *st)
{
    (void)s;
    return store_rows_json(st, lr->rows);
}

static int load_query(struct store *s, struct load_req *lr, const char *key, const char *sql,
                      int64_t bind)
{
    sqlite3_stmt *st = store_stmt(s, sql);
    if (!st)
        return SQLITE_ERROR;
    if (bind >= 0)
        sqlite3_bind_int64(st, 1, bind);
    json_t *saved = lr->rows;
    lr->rows = json_array();
    int rc = load_rows(s, lr, st);
    json_object_set_new(saved, key, lr->rows);
    lr->rows = saved;
    return rc;
}

static int load_recent_work(struct store *s, struct store_req *r)
{
    struct load_req *lr = (struct load_req *)r;
    sqlite3_stmt *st = store_stmt(s, "SELECT COALESCE(MAX(seq), 0) FROM jobs");
    if (!st || sqlite3_step(st) != SQLITE_ROW)
        return SQLITE_ERROR;
    lr->max_seq = (uint64_t)sqlite3_column_int64(st, 0);
    int64_t floor = lr->max_seq > lr->limit ? (int64_t)(lr->max_seq - lr->limit) : 0;
    int rc = load_query(s, lr, "jobs", "SELECT * FROM jobs WHERE seq > ?1 OR status IN ('queued',"
                        " 'running') ORDER BY seq", floor);
    if (rc == SQLITE_OK)
        rc = load_query(s, lr, "outputs", "SELECT o.* FROM outputs o JOIN jobs j ON j.id ="
                        " o.job_id WHERE j.seq > ?1 ORDER BY o.created_at, o.rowid", floor);
    if (rc == SQLITE_OK)
        rc = load_query(s, lr, "idem", "SELECT * FROM idempotency_keys WHERE expires_at > ?1",
                        lr->now_ms);
    if (rc == SQLITE_OK)
        rc = load_query(s, lr, "cache", "SELECT * FROM cache_entries WHERE expires_at > ?1",
                        lr->now_ms);
    return rc;
}

json_t *job_store_load_recent(struct store *st, size_t limit, int64_t now_ms, uint64_t *max_seq)
{
    struct load_req lr;
    memset(&lr, 0, sizeof(lr));
    lr.rows = json_object();
    lr.limit = limit;
    lr.now_ms = now_ms;
    if (store_run_sync(st, load_recent_work, &lr.req) != SQLITE_OK) {
        json_decref(lr.rows);
        return NULL;
    }
    *max_seq = lr.max_seq;
    return lr.rows;
}

static int load_one_work(struct store *s, struct store_req *r)
{
    struct load_req *lr = (struct load_req *)r;
    sqlite3_stmt *st = store_stmt(s, "SELECT * FROM jobs WHERE id = ?1");
    if (!st)
        return SQLITE_ERROR;
    sqlite3_bind_text(st, 1, lr->id, -1, SQLITE_STATIC);
    return load_rows(s, lr, st);
}

json_t *job_store_load_one(struct store *st, const char *id)
{
    struct load_req lr;
    memset(&lr, 0, sizeof(lr));
    lr.rows = json_array();
    lr.id = id;
    json_t *row = NULL;
    if (store_run_sync(st, load_one_work, &lr.req) == SQLITE_OK)
        row = json_incref(json_array_get(lr.rows, 0));
    json_decref(lr.rows);
    return row;
}

int job_store_read(struct store *s, const char *id, json_t *rows, json_t *outputs)
{
    sqlite3_stmt *st = store_stmt(s, "SELECT rowid AS row_id, * FROM jobs WHERE id = ?1");
    sqlite3_stmt *ot = store_stmt(s, "SELECT * FROM outputs WHERE job_id = ?1"
                                     " ORDER BY created_at, rowid");
    if (!st || !ot)
        return SQLITE_ERROR;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(ot, 1, id, -1, SQLITE_TRANSIENT);
    int rc = store_rows_json(st, rows);
    return rc == SQLITE_OK ? store_rows_json(ot, outputs) : rc;
}
