/* webhook_outbox — the webhook_deliveries and webhook_attempts rows (migration 3), written on
 * the store thread. A delivery's fields are not changed on the reactor while its write is in
 * progress (d->saving), so the work functions read them directly. */
#include <stdio.h>
#include <string.h>

#include "webhook/webhook_internal.h"

static const char *INSERT =
    "INSERT INTO webhook_deliveries (msg_id, job_id, url, event, payload, status, attempts,"
    " next_attempt_at, last_status, last_error, delivered_at, created_at, updated_at, instance)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, NULL, NULL, NULL, ?9, ?9, ?10)";

/* Only while the row is still ours: another instance may have taken it over (SHARED_STORE,
 * wh_outbox_adopt) when we looked dead. */
static const char *UPDATE =
    "UPDATE webhook_deliveries SET status = ?2, attempts = ?3, next_attempt_at = ?4,"
    " last_status = ?5, last_error = ?6, delivered_at = ?7, updated_at = ?8 WHERE msg_id = ?1"
    " AND instance IS ?9";

static const char *ATTEMPT =
    "INSERT OR REPLACE INTO webhook_attempts (msg_id, n, ts, http_status, error, duration_ms)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6)";

static void bind_ms(sqlite3_stmt *st, int i, int64_t ms)
{
    if (ms)
        sqlite3_bind_int64(st, i, ms);
    else
        sqlite3_bind_null(st, i);
}

static void bind_text(sqlite3_stmt *st, int i, const char *s)
{
    if (s && s[0])
        sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, i);
}

static int insert_work(struct store *s, struct store_req *r)
{
    struct wh_delivery *d = (struct wh_delivery *)r;
    /* "INSERT OR IGNORE ..." for an event with a caller-chosen id that may be stored already */
    char ignore[512];
    snprintf(ignore, sizeof(ignore), "INSERT OR IGNORE%s", INSERT + strlen("INSERT"));
    sqlite3_stmt *st = store_stmt(s, d->once ? ignore : INSERT);
    if (!st)
        return SQLITE_ERROR;
    sqlite3_bind_text(st, 1, d->id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, d->job->id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, d->url, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, d->event, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, d->payload, (int)d->payload_len, SQLITE_STATIC);
    sqlite3_bind_text(st, 6, wh_status_name(d->status), -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 7, (int)d->attempts);
    bind_ms(st, 8, d->next_ms);
    sqlite3_bind_int64(st, 9, d->created_ms);
    bind_text(st, 10, d->w->cfg.instance);
    if (sqlite3_step(st) != SQLITE_DONE)
        return SQLITE_ERROR;
    d->duplicate = d->once && sqlite3_changes(s->db) == 0;
    return SQLITE_OK;
}

static int attempt_row(struct store *s, struct wh_delivery *d)
{
    sqlite3_stmt *st = store_stmt(s, ATTEMPT);
    if (!st)
        return SQLITE_ERROR;
    sqlite3_bind_text(st, 1, d->id, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 2, (int)d->attempts);
    sqlite3_bind_int64(st, 3, d->att_ms);
    if (d->last_status)
        sqlite3_bind_int(st, 4, (int)d->last_status);
    else
        sqlite3_bind_null(st, 4);
    bind_text(st, 5, d->last_error);
    sqlite3_bind_int64(st, 6, d->att_duration_ms);
    return sqlite3_step(st) == SQLITE_DONE ? SQLITE_OK : SQLITE_ERROR;
}

static int update_work(struct store *s, struct store_req *r)
{
    struct wh_delivery *d = (struct wh_delivery *)r;
    sqlite3_stmt *st = store_stmt(s, UPDATE);
    if (!st)
        return SQLITE_ERROR;
    sqlite3_bind_text(st, 1, d->id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, wh_status_name(d->status), -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 3, (int)d->attempts);
    bind_ms(st, 4, d->status == WH_PENDING ? d->next_ms : 0);
    if (d->last_status)
        sqlite3_bind_int(st, 5, (int)d->last_status);
    else
        sqlite3_bind_null(st, 5);
    bind_text(st, 6, d->last_error);
    bind_ms(st, 7, d->delivered_ms);
    sqlite3_bind_int64(st, 8, d->updated_ms);
    bind_text(st, 9, d->w->cfg.instance);
    if (sqlite3_step(st) != SQLITE_DONE)
        return SQLITE_ERROR;
    d->taken_over = sqlite3_changes(s->db) == 0;
    if (d->taken_over)
        return SQLITE_OK;
    return d->write_attempt ? attempt_row(s, d) : SQLITE_OK;
}

static int submit(struct webhooks *w, struct wh_delivery *d, store_work_fn work, store_done_fn done)
{
    memset(&d->req, 0, sizeof(d->req));
    d->req.work = work;
    d->req.done = done;
    d->req.origin = w->ring;
    d->saving = true;
    w->nsaving++;
    int rc = store_submit(w->store, &d->req);
    if (rc < 0) {
        d->saving = false;
        w->nsaving--;
    }
    return rc;
}

int wh_outbox_insert(struct webhooks *w, struct wh_delivery *d, store_done_fn done)
{
    d->inserting = true;
    return submit(w, d, insert_work, done);
}

int wh_outbox_update(struct webhooks *w, struct wh_delivery *d, store_done_fn done)
{
    d->inserting = false;
    return submit(w, d, update_work, done);
}

/* --- start-up read ---------------------------------------------------------------------- */

struct load_req {
    struct store_req req;
    json_t *rows;
    size_t max_pending, max_recent;
    const char *instance; /* only this gateway's deliveries (several may share the store) */
    int64_t now_ms;
};

/* Pending rows by the (status, next_attempt_at) index, recent finished ones by updated_at;
 * together in creation order so each job's list comes back in order. */
static const char *LOAD =
    "SELECT msg_id, job_id, url, event, payload, status, attempts, next_attempt_at,"
    " last_status, last_error, delivered_at, created_at, updated_at FROM webhook_deliveries"
    " WHERE rowid IN (SELECT rowid FROM webhook_deliveries WHERE status = 'pending'"
    "                 AND (instance IS NULL OR instance = ?3)"
    "                 ORDER BY created_at, rowid LIMIT ?1)"
    " OR rowid IN (SELECT rowid FROM webhook_deliveries WHERE status != 'pending'"
    "              AND (instance IS NULL OR instance = ?3) ORDER BY updated_at DESC LIMIT ?2)"
    " ORDER BY created_at, rowid";

static int load_work(struct store *s, struct store_req *r)
{
    struct load_req *lr = (struct load_req *)r;
    if (lr->instance) { /* alive, before reading our rows: nobody may take them meanwhile */
        sqlite3_stmt *hb = store_stmt(s, WH_HEARTBEAT);
        if (!hb)
            return SQLITE_ERROR;
        sqlite3_bind_text(hb, 1, lr->instance, -1, SQLITE_STATIC);
        sqlite3_bind_int64(hb, 2, lr->now_ms);
        if (sqlite3_step(hb) != SQLITE_DONE)
            return SQLITE_ERROR;
    }
    sqlite3_stmt *st = store_stmt(s, LOAD);
    if (!st)
        return SQLITE_ERROR;
    sqlite3_bind_int64(st, 1, (sqlite3_int64)lr->max_pending);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)lr->max_recent);
    if (lr->instance)
        sqlite3_bind_text(st, 3, lr->instance, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, 3);
    return store_rows_json(st, lr->rows);
}

json_t *wh_outbox_load(struct store *st, size_t max_pending, size_t max_recent,
                       const char *instance, int64_t now_ms)
{
    struct load_req lr;
    memset(&lr, 0, sizeof(lr));
    lr.rows = json_array();
    lr.max_pending = max_pending;
    lr.max_recent = max_recent;
    lr.instance = instance && instance[0] ? instance : NULL;
    lr.now_ms = now_ms;
    if (store_run_sync(st, load_work, &lr.req) != SQLITE_OK) {
        json_decref(lr.rows);
        return NULL;
    }
    return lr.rows;
}

/* --- taking over a dead instance's deliveries (SHARED_STORE) ------------------------------- */

/* The pending deliveries of instances not seen since dead_before become ours, in one
 * statement: two live instances can never both take the same one. */
static const char *ADOPT =
    "UPDATE webhook_deliveries SET instance = ?1 WHERE rowid IN ("
    " SELECT d.rowid FROM webhook_deliveries d JOIN instances i ON i.id = d.instance"
    " WHERE d.status = 'pending' AND d.instance != ?1 AND i.seen_at < ?2"
    " ORDER BY d.created_at, d.rowid LIMIT ?3)"
    " RETURNING msg_id, job_id, url, event, payload, status, attempts, next_attempt_at,"
    " last_status, last_error, delivered_at, created_at, updated_at, rowid AS seq";

static int adopt_work(struct store *s, struct store_req *r)
{
    struct wh_adopt *a = (struct wh_adopt *)r;
    sqlite3_stmt *hb = store_stmt(s, WH_HEARTBEAT); /* we are alive */
    if (!hb)
        return SQLITE_ERROR;
    sqlite3_bind_text(hb, 1, a->instance, -1, SQLITE_STATIC);
    sqlite3_bind_int64(hb, 2, a->now_ms);
    if (sqlite3_step(hb) != SQLITE_DONE)
        return SQLITE_ERROR;
    sqlite3_stmt *st = store_stmt(s, ADOPT);
    if (!st)
        return SQLITE_ERROR;
    sqlite3_bind_text(st, 1, a->instance, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, a->dead_before);
    sqlite3_bind_int64(st, 3, (sqlite3_int64)a->max);
    return store_rows_json(st, a->rows);
}

int wh_outbox_adopt(struct webhooks *w, struct wh_adopt *a, store_done_fn done)
{
    a->req.work = adopt_work;
    a->req.done = done;
    a->req.origin = w->ring;
    return store_submit(w->store, &a->req);
}
