/* workflow_store — see workflow_store.h.
 *
 * Rows of table workflows are the versions made through the API (bundled=0), each with its
 * own deleted flag. A bundled workflow lives in WORKFLOWS_DIR, not in the table, so every
 * deletion also leaves a tombstone row (version 0, bundled=1, deleted=1) that says "the
 * bundled versions of this id are deleted": the deletion survives a restart without copying
 * the file's content into the database (the store thread does not know which ids are bundled;
 * for the others the tombstone is inert). Versions made by updating a bundled workflow are
 * ordinary rows.
 *
 * Saves run on the store thread from a snapshot; the load runs once, blocking, before the
 * reactors serve requests. With SHARED_STORE, the refresh adds what other instances stored
 * since: new versions and deletions (a stored version never changes). */
#include "jobs/workflow_store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *INSERT_VERSION =
    "INSERT INTO workflows (id, version, hash, name, description, template, schema, overlays,"
    " created_by, created_at, deleted, bundled) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10,"
    " 0, 0)";

static const char *DELETE_ALL = "UPDATE workflows SET deleted = 1 WHERE id = ?1";

static const char *TOMBSTONE =
    "INSERT OR IGNORE INTO workflows (id, version, hash, template, schema, created_at, deleted,"
    " bundled) VALUES (?1, 0, '', 'null', 'null', ?2, 1, 1)";

static const char *AUDIT =
    "INSERT INTO audit_log (ts, actor, action, target, peer, detail) VALUES (?1, ?2, ?3, ?4, ?5,"
    " ?6)";

/* Changes whenever a version is added or a deletion is stored (versions are never removed). */
static const char *SIGNATURE =
    "SELECT count(*), coalesce(max(created_at), 0), coalesce(sum(deleted), 0) FROM workflows";

static const char *LOAD =
    "SELECT id, version, hash, name, description, template, schema, overlays, created_by,"
    " created_at, deleted, bundled FROM workflows ORDER BY id, version";

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

json_t *workflow_store_snapshot(const struct workflow *w)
{
    return json_pack("{s:s, s:i, s:s, s:s, s:s, s:o, s:o, s:o, s:s, s:I}", "id", w->id, "version",
                     w->version, "hash", w->hash, "name", w->name, "description", w->description,
                     "template", json_deep_copy(w->tmpl), "schema", json_deep_copy(w->schema),
                     "overlays", w->overlays ? json_deep_copy(w->overlays) : json_null(),
                     "created_by", w->created_by, "created_at", (json_int_t)w->created_ms);
}

/* --- saving ----------------------------------------------------------------------------------- */

static void bind_str(sqlite3_stmt *st, int i, const json_t *row, const char *key)
{
    const char *s = json_string_value(json_object_get(row, key));
    if (s)
        sqlite3_bind_text(st, i, s, -1, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(st, i);
}

/* JSON columns hold compact text; a null value (no overlays) is SQL NULL. */
static int bind_doc(sqlite3_stmt *st, int i, const json_t *v)
{
    if (!v || json_is_null(v))
        return sqlite3_bind_null(st, i);
    char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    if (!s)
        return SQLITE_NOMEM;
    return sqlite3_bind_text(st, i, s, -1, free);
}

static int insert_version(struct store *s, const json_t *row)
{
    sqlite3_stmt *st = store_stmt(s, INSERT_VERSION);
    if (!st)
        return SQLITE_ERROR;
    bind_str(st, 1, row, "id");
    sqlite3_bind_int(st, 2, (int)json_integer_value(json_object_get(row, "version")));
    bind_str(st, 3, row, "hash");
    bind_str(st, 4, row, "name");
    bind_str(st, 5, row, "description");
    if (bind_doc(st, 6, json_object_get(row, "template")) != SQLITE_OK ||
        bind_doc(st, 7, json_object_get(row, "schema")) != SQLITE_OK ||
        bind_doc(st, 8, json_object_get(row, "overlays")) != SQLITE_OK)
        return SQLITE_NOMEM;
    bind_str(st, 9, row, "created_by");
    sqlite3_bind_int64(st, 10, json_integer_value(json_object_get(row, "created_at")));
    /* SQLITE_CONSTRAINT here means a concurrent change took this version number first */
    int rc = sqlite3_step(st);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

static int delete_all(struct store *s, const char *id, int64_t ts)
{
    sqlite3_stmt *st = store_stmt(s, DELETE_ALL);
    if (!st)
        return SQLITE_ERROR;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    if (sqlite3_step(st) != SQLITE_DONE)
        return SQLITE_ERROR;
    st = store_stmt(s, TOMBSTONE);
    if (!st)
        return SQLITE_ERROR;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, ts);
    return sqlite3_step(st) == SQLITE_DONE ? SQLITE_OK : SQLITE_ERROR;
}

static int audit(struct store *s, const struct workflow_save *ws, int64_t ts)
{
    static const char *const actions[] = {
        [WORKFLOW_CREATED] = "workflow.create",
        [WORKFLOW_UPDATED] = "workflow.update",
        [WORKFLOW_DELETED] = "workflow.delete",
    };
    char target[128];
    json_t *detail;
    if (ws->change == WORKFLOW_DELETED) {
        snprintf(target, sizeof(target), "%s", ws->id);
        detail = json_object();
    } else {
        int version = (int)json_integer_value(json_object_get(ws->row, "version"));
        snprintf(target, sizeof(target), "%s@%d", ws->id, version);
        detail =
            json_pack("{s:i, s:O, s:O}", "version", version, "hash",
                      json_object_get(ws->row, "hash"), "name", json_object_get(ws->row, "name"));
    }
    sqlite3_stmt *st = store_stmt(s, AUDIT);
    if (!st || !detail) {
        json_decref(detail);
        return SQLITE_ERROR;
    }
    sqlite3_bind_int64(st, 1, ts);
    sqlite3_bind_text(st, 2, ws->actor, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, actions[ws->change], -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, target, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 5, ws->peer, -1, SQLITE_STATIC);
    int rc = bind_doc(st, 6, detail);
    json_decref(detail);
    if (rc != SQLITE_OK)
        return rc;
    return sqlite3_step(st) == SQLITE_DONE ? SQLITE_OK : SQLITE_ERROR;
}

/* The change and its audit row share the request's savepoint: both or neither. */
static int save_work(struct store *s, struct store_req *r)
{
    struct workflow_save *ws = (struct workflow_save *)r;
    int64_t ts = now_ms();
    int rc =
        ws->change == WORKFLOW_DELETED ? delete_all(s, ws->id, ts) : insert_version(s, ws->row);
    if (rc != SQLITE_OK)
        return rc;
    return audit(s, ws, ts);
}

static void save_done(struct store_req *r)
{
    struct workflow_save *ws = (struct workflow_save *)r;
    json_decref(ws->row);
    ws->row = NULL;
    ws->done(ws);
}

int workflow_store_save(struct store *st, struct ring *origin, struct workflow_save *s)
{
    s->req.work = save_work;
    s->req.done = save_done;
    s->req.origin = origin;
    return store_submit(st, &s->req);
}

int workflow_store_save_sync(struct store *st, struct workflow_save *s)
{
    int rc = store_run_sync(st, save_work, &s->req);
    json_decref(s->row);
    s->row = NULL;
    return rc;
}

/* --- start-up load ---------------------------------------------------------------------------- */

struct load_req {
    struct store_req req;
    json_t *rows;
};

static json_t *column_doc(sqlite3_stmt *st, int i)
{
    const char *text = (const char *)sqlite3_column_text(st, i);
    if (!text)
        return NULL;
    return json_loads(text, JSON_DECODE_ANY, NULL);
}

static json_t *column_str(sqlite3_stmt *st, int i)
{
    const char *text = (const char *)sqlite3_column_text(st, i);
    return json_string(text ? text : "");
}

static int read_rows(struct store *s, json_t *rows)
{
    sqlite3_stmt *st = store_stmt(s, LOAD);
    if (!st)
        return SQLITE_ERROR;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        json_t *row = json_object();
        json_object_set_new(row, "id", column_str(st, 0));
        json_object_set_new(row, "version", json_integer(sqlite3_column_int(st, 1)));
        json_object_set_new(row, "hash", column_str(st, 2));
        json_object_set_new(row, "name", column_str(st, 3));
        json_object_set_new(row, "description", column_str(st, 4));
        json_t *doc = column_doc(st, 5);
        if (doc)
            json_object_set_new(row, "template", doc);
        doc = column_doc(st, 6);
        if (doc)
            json_object_set_new(row, "schema", doc);
        doc = column_doc(st, 7);
        if (doc)
            json_object_set_new(row, "overlays", doc);
        json_object_set_new(row, "created_by", column_str(st, 8));
        json_object_set_new(row, "created_at", json_integer(sqlite3_column_int64(st, 9)));
        json_object_set_new(row, "deleted", json_boolean(sqlite3_column_int(st, 10)));
        json_object_set_new(row, "bundled", json_boolean(sqlite3_column_int(st, 11)));
        json_array_append_new(rows, row);
    }
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

static int load_work(struct store *s, struct store_req *r)
{
    return read_rows(s, ((struct load_req *)r)->rows);
}

static void mark_bundled_deleted(struct workflow_set *s, const char *id)
{
    for (size_t i = 0; i < s->n; i++) {
        if (s->items[i]->bundled && !strcmp(s->items[i]->id, id))
            s->items[i]->deleted = true;
    }
}

/* Rebuilds one version from its row; the recomputed hash must equal the stored one, or the
 * jobs pinned to it would name content that no longer exists. */
static int load_version(struct workflow_set *s, const json_t *row, char *err, size_t len)
{
    const char *id = json_string_value(json_object_get(row, "id"));
    int version = (int)json_integer_value(json_object_get(row, "version"));
    struct workflow w;
    char werr[256];
    if (workflow_parse(row, id, &w, werr, sizeof(werr)) < 0) {
        snprintf(err, len, "stored workflow %s version %d: %s", id, version, werr);
        workflow_free(&w);
        return -1;
    }
    if (strcmp(w.hash, json_string_value(json_object_get(row, "hash"))) != 0) {
        snprintf(err, len, "stored workflow %s version %d: content does not match its hash", id,
                 version);
        workflow_free(&w);
        return -1;
    }
    w.version = version;
    w.created_ms = json_integer_value(json_object_get(row, "created_at"));
    snprintf(w.created_by, sizeof(w.created_by), "%s",
             json_string_value(json_object_get(row, "created_by")));
    bool deleted = json_is_true(json_object_get(row, "deleted"));
    /* A stored version that has the id and number of a bundled one (a file added to
     * WORKFLOWS_DIR after the id was created through the API) replaces it: jobs pinned that
     * version and hash. */
    struct workflow *old = workflow_set_find(s, id, version);
    if (old) {
        workflow_free(old);
        *old = w;
        old->deleted = deleted;
        return 0;
    }
    if (workflow_set_add(s, &w, true) < 0) {
        snprintf(err, len, "too many workflow versions (limit %zu)", s->max);
        workflow_free(&w);
        return -1;
    }
    s->items[s->n - 1]->deleted = deleted;
    return 0;
}

int workflow_store_load(struct store *st, struct workflow_set *s, char *err, size_t len)
{
    struct load_req lr;
    memset(&lr, 0, sizeof(lr));
    lr.rows = json_array();
    if (!lr.rows || store_run_sync(st, load_work, &lr.req) != SQLITE_OK) {
        snprintf(err, len, "cannot read workflows from the store");
        json_decref(lr.rows);
        return -1;
    }
    int rc = 0;
    size_t i;
    json_t *row;
    json_array_foreach(lr.rows, i, row)
    {
        const char *id = json_string_value(json_object_get(row, "id"));
        if (json_is_true(json_object_get(row, "bundled"))) {
            if (json_is_true(json_object_get(row, "deleted")))
                mark_bundled_deleted(s, id);
            continue;
        }
        rc = load_version(s, row, err, len);
        if (rc < 0)
            break;
    }
    json_decref(lr.rows);
    return rc;
}

/* --- refresh (SHARED_STORE) -------------------------------------------------------------------- */

static int refresh_work(struct store *s, struct store_req *r)
{
    struct workflow_refresh *wr = (struct workflow_refresh *)r;
    sqlite3_stmt *st = store_stmt(s, SIGNATURE);
    if (!st)
        return SQLITE_ERROR;
    if (sqlite3_step(st) != SQLITE_ROW)
        return SQLITE_ERROR;
    int64_t sig[3];
    for (int i = 0; i < 3; i++)
        sig[i] = sqlite3_column_int64(st, i);
    wr->changed = memcmp(sig, wr->sig, sizeof(sig)) != 0;
    if (!wr->changed)
        return SQLITE_OK;
    memcpy(wr->sig, sig, sizeof(sig));
    wr->rows = json_array();
    return wr->rows ? read_rows(s, wr->rows) : SQLITE_NOMEM;
}

/* On the requesting reactor: versions it lacks are added, deletions applied; a version it
 * has is never replaced (it is the same content: the hash is checked on the way in). */
static void refresh_done(struct store_req *r)
{
    struct workflow_refresh *wr = (struct workflow_refresh *)r;
    int changes = 0;
    size_t i;
    json_t *row;
    json_array_foreach(wr->rows, i, row)
    {
        const char *id = json_string_value(json_object_get(row, "id"));
        bool deleted = json_is_true(json_object_get(row, "deleted"));
        if (json_is_true(json_object_get(row, "bundled"))) { /* a tombstone */
            for (size_t k = 0; deleted && k < wr->set->n; k++) {
                struct workflow *w = wr->set->items[k];
                if (w->bundled && !w->deleted && !strcmp(w->id, id)) {
                    w->deleted = true;
                    changes++;
                }
            }
            continue;
        }
        int version = (int)json_integer_value(json_object_get(row, "version"));
        struct workflow *have = workflow_set_find(wr->set, id, version);
        if (have) {
            if (deleted && !have->deleted) {
                have->deleted = true;
                changes++;
            }
            continue;
        }
        char err[300];
        if (load_version(wr->set, row, err, sizeof(err)) == 0)
            changes++;
        else
            wr->sig[0] = -1; /* try again next time */
    }
    json_decref(wr->rows);
    wr->rows = NULL;
    if (r->rc != SQLITE_OK)
        wr->sig[0] = -1;
    wr->done(wr, changes);
}

int workflow_store_refresh(struct store *st, struct ring *origin, struct workflow_refresh *r)
{
    r->req.work = refresh_work;
    r->req.done = refresh_done;
    r->req.origin = origin;
    r->rows = NULL;
    r->changed = false;
    return store_submit(st, &r->req);
}
