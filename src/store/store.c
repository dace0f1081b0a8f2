/* store — see store.h. */
#include "store/store.h"

#include <jansson.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store_schema.h"

#define STMT_CACHE 128

struct cached_stmt {
    const char *sql; /* pointer identity: callers pass string literals */
    sqlite3_stmt *st;
};

static int exec(sqlite3 *db, const char *sql)
{
    return sqlite3_exec(db, sql, NULL, NULL, NULL);
}

sqlite3_stmt *store_stmt(struct store *s, const char *sql)
{
    struct cached_stmt *c = (struct cached_stmt *)s->stmts;
    for (size_t i = 0; i < s->nstmts; i++) {
        if (c[i].sql == sql || strcmp(c[i].sql, sql) == 0) {
            sqlite3_reset(c[i].st);
            sqlite3_clear_bindings(c[i].st);
            return c[i].st;
        }
    }
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL) != SQLITE_OK)
        return NULL;
    if (s->nstmts < STMT_CACHE) {
        c[s->nstmts].sql = sql;
        c[s->nstmts].st = st;
        s->nstmts++;
    }
    /* past the cache size the statement is still usable but leaks until close: the cache is
     * sized well above the number of distinct statements in the program */
    return st;
}

int store_schema_version(struct store *s)
{
    sqlite3_stmt *st = store_stmt(s, "SELECT COALESCE(MAX(version), 0) FROM schema_version");
    int v = 0;
    if (st && sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int(st, 0);
    if (st)
        sqlite3_reset(st);
    return v;
}

static int migrate(struct store *s, char *err, size_t errlen)
{
    if (exec(s->db, "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, "
                    "applied_at INTEGER NOT NULL)") != SQLITE_OK) {
        snprintf(err, errlen, "cannot create schema_version: %s", sqlite3_errmsg(s->db));
        return -1;
    }
    int have = store_schema_version(s);
    for (size_t i = 0; i < store_migration_count(); i++) {
        const struct store_migration *m = store_migration(i);
        if (m->version <= have)
            continue;
        char sql[128];
        if (exec(s->db, "BEGIN IMMEDIATE") != SQLITE_OK) {
            snprintf(err, errlen, "migration %d failed: %s", m->version, sqlite3_errmsg(s->db));
            return -1;
        }
        /* another process sharing the database may have applied it meanwhile */
        if (store_schema_version(s) >= m->version) {
            exec(s->db, "COMMIT");
            continue;
        }
        if (exec(s->db, m->sql) != SQLITE_OK) {
            snprintf(err, errlen, "migration %d failed: %s", m->version, sqlite3_errmsg(s->db));
            exec(s->db, "ROLLBACK");
            return -1;
        }
        snprintf(sql, sizeof(sql),
                 "INSERT INTO schema_version VALUES (%d, CAST(strftime('%%s','now') AS INTEGER))",
                 m->version);
        if (exec(s->db, sql) != SQLITE_OK || exec(s->db, "COMMIT") != SQLITE_OK) {
            snprintf(err, errlen, "migration %d failed: %s", m->version, sqlite3_errmsg(s->db));
            exec(s->db, "ROLLBACK");
            return -1;
        }
    }
    return 0;
}

static void deliver(struct store_req *r)
{
    if (!r->done)
        return;
    if (r->origin)
        ring_post(r->origin, &r->msg);
    else
        r->done(r);
}

static void back_cb(struct ring *ring, struct ring_msg *m)
{
    struct store_req *r = (struct store_req *)m;
    r->done(r);
}

/* A cached statement left on a row keeps a read transaction open on its old snapshot; once
 * another process sharing the database has written, BEGIN IMMEDIATE could then never succeed
 * (SQLITE_BUSY_SNAPSHOT). Every batch starts with all of them reset. */
static void reset_all(struct store *s)
{
    struct cached_stmt *c = (struct cached_stmt *)s->stmts;
    for (size_t i = 0; i < s->nstmts; i++)
        sqlite3_reset(c[i].st);
}

/* One batch: a transaction holding a savepoint per request. */
static void run_batch(struct store *s, struct store_req *list)
{
    reset_all(s);
    int rc = exec(s->db, "BEGIN IMMEDIATE");
    for (struct store_req *r = list; r; r = r->next) {
        if (rc != SQLITE_OK) {
            r->rc = rc;
            continue;
        }
        exec(s->db, "SAVEPOINT req");
        r->rc = r->work ? r->work(s, r) : SQLITE_OK;
        if (r->rc != SQLITE_OK && r->rc != SQLITE_DONE && r->rc != SQLITE_ROW)
            exec(s->db, "ROLLBACK TO req");
        else
            r->rc = SQLITE_OK;
        exec(s->db, "RELEASE req");
    }
    if (rc == SQLITE_OK) {
        int crc = exec(s->db, "COMMIT");
        if (crc != SQLITE_OK) {
            exec(s->db, "ROLLBACK");
            for (struct store_req *r = list; r; r = r->next)
                r->rc = crc;
        }
    }
    s->batches++;
    while (list) {
        struct store_req *n = list->next;
        s->requests++;
        list->msg.cb = back_cb;
        deliver(list);
        list = n;
    }
}

static void *store_main(void *arg)
{
    struct store *s = arg;
    for (;;) {
        pthread_mutex_lock(&s->lock);
        while (!s->head && !s->stop)
            pthread_cond_wait(&s->cond, &s->lock);
        if (!s->head && s->stop) {
            pthread_mutex_unlock(&s->lock);
            return NULL;
        }
        struct store_req *list = s->head, *last = list;
        size_t n = 1;
        while (last->next && n < s->cfg.max_batch) {
            last = last->next;
            n++;
        }
        s->head = last->next;
        if (!s->head)
            s->tail = NULL;
        s->queued -= n;
        last->next = NULL;
        pthread_mutex_unlock(&s->lock);
        run_batch(s, list);
    }
}

int store_open(struct store *s, const struct store_config *cfg, char *err, size_t errlen)
{
    memset(s, 0, sizeof(*s));
    s->cfg = *cfg;
    if (!s->cfg.max_batch)
        s->cfg.max_batch = 256;
    if (!s->cfg.max_queue)
        s->cfg.max_queue = 100000;
    snprintf(s->path, sizeof(s->path), "%s", cfg->path);
    s->cfg.path = s->path;
    s->stmts = calloc(STMT_CACHE, sizeof(struct cached_stmt));
    if (!s->stmts)
        return -ENOMEM;
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
    if (sqlite3_open_v2(s->path, &s->db, flags, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "cannot open database %s: %s", s->path,
                 s->db ? sqlite3_errmsg(s->db) : "out of memory");
        return -1;
    }
    sqlite3_busy_timeout(s->db, 5000);
    exec(s->db, "PRAGMA journal_mode=WAL");
    exec(s->db, s->cfg.synchronous_full ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL");
    exec(s->db, "PRAGMA foreign_keys=ON");
    if (migrate(s, err, errlen) < 0)
        return -1;
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->cond, NULL);
    if (pthread_create(&s->thread, NULL, store_main, s) != 0) {
        snprintf(err, errlen, "cannot start the store thread");
        return -1;
    }
    s->started = true;
    return 0;
}

void store_close(struct store *s)
{
    if (s->started) {
        pthread_mutex_lock(&s->lock);
        s->stop = true;
        pthread_cond_signal(&s->cond);
        pthread_mutex_unlock(&s->lock);
        pthread_join(s->thread, NULL);
        pthread_mutex_destroy(&s->lock);
        pthread_cond_destroy(&s->cond);
        s->started = false;
    }
    struct cached_stmt *c = (struct cached_stmt *)s->stmts;
    for (size_t i = 0; c && i < s->nstmts; i++)
        sqlite3_finalize(c[i].st);
    free(s->stmts);
    s->stmts = NULL;
    s->nstmts = 0;
    if (s->db)
        sqlite3_close(s->db);
    s->db = NULL;
}

int store_submit(struct store *s, struct store_req *r)
{
    r->next = NULL;
    pthread_mutex_lock(&s->lock);
    if (s->queued >= s->cfg.max_queue || s->stop) {
        pthread_mutex_unlock(&s->lock);
        return -EAGAIN;
    }
    if (s->tail)
        s->tail->next = r;
    else
        s->head = r;
    s->tail = r;
    s->queued++;
    pthread_cond_signal(&s->cond);
    pthread_mutex_unlock(&s->lock);
    return 0;
}

struct sync_req {
    struct store_req req;
    store_work_fn work;
    struct store_req *inner;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool done;
};

static int sync_work(struct store *s, struct store_req *r)
{
    struct sync_req *sr = (struct sync_req *)r;
    return sr->work(s, sr->inner);
}

static void sync_done(struct store_req *r)
{
    struct sync_req *sr = (struct sync_req *)r;
    pthread_mutex_lock(&sr->lock);
    sr->done = true;
    pthread_cond_signal(&sr->cond);
    pthread_mutex_unlock(&sr->lock);
}

int store_run_sync(struct store *s, store_work_fn work, struct store_req *r)
{
    struct sync_req sr;
    memset(&sr, 0, sizeof(sr));
    sr.req.work = sync_work;
    sr.req.done = sync_done;
    sr.work = work;
    sr.inner = r;
    pthread_mutex_init(&sr.lock, NULL);
    pthread_cond_init(&sr.cond, NULL);
    if (store_submit(s, &sr.req) < 0)
        return SQLITE_BUSY;
    pthread_mutex_lock(&sr.lock);
    while (!sr.done)
        pthread_cond_wait(&sr.cond, &sr.lock);
    pthread_mutex_unlock(&sr.lock);
    pthread_mutex_destroy(&sr.lock);
    pthread_cond_destroy(&sr.cond);
    if (r)
        r->rc = sr.req.rc;
    return sr.req.rc;
}

static json_t *column_json(sqlite3_stmt *st, int i)
{
    switch (sqlite3_column_type(st, i)) {
    case SQLITE_NULL: return json_null();
    case SQLITE_INTEGER: return json_integer(sqlite3_column_int64(st, i));
    default:
        return json_stringn((const char *)sqlite3_column_text(st, i),
                            (size_t)sqlite3_column_bytes(st, i));
    }
}

int store_rows_json(sqlite3_stmt *st, json_t *rows)
{
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        json_t *row = json_object();
        for (int i = 0; i < sqlite3_column_count(st); i++)
            json_object_set_new(row, sqlite3_column_name(st, i), column_json(st, i));
        if (json_array_append_new(rows, row) < 0)
            return SQLITE_NOMEM;
    }
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}
