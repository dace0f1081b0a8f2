/* store — the SQLite database, on a thread of its own.
 *
 * Reactors never touch SQLite: they hand a `struct store_req` to store_submit(); the store
 * thread runs its `work` function, and `done` runs back on the submitting reactor (through
 * ring_post). The thread takes every request queued at that moment and runs them inside ONE
 * transaction, so a burst of job submissions costs one WAL fsync (group commit); a request
 * whose work fails is rolled back to its own savepoint without disturbing the others.
 *
 * The database is in WAL mode with synchronous=FULL by default: once `done` reports success,
 * the change survives a kill -9 and a power cut. Migrations are a numbered list applied in
 * order, recorded in schema_version. */
#ifndef COMFYGATE_STORE_H
#define COMFYGATE_STORE_H

#include <pthread.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>

#include "ring/ring.h"

struct store;
struct store_req;

/* Runs on the store thread inside a transaction (savepoint). Return 0 or an SQLite error
 * code; on error the request's changes are rolled back. */
typedef int (*store_work_fn)(struct store *s, struct store_req *r);
/* Runs on the origin reactor (or, with origin NULL, on the store thread right after commit). */
typedef void (*store_done_fn)(struct store_req *r);

struct store_req {
    struct ring_msg msg; /* used to come back to the origin */
    struct store_req *next;
    store_work_fn work;
    store_done_fn done;
    struct ring *origin;
    int rc; /* SQLite result of work, or of the commit */
};

struct store_config {
    const char *path;       /* database file; ":memory:" for tests */
    bool synchronous_full;  /* FULL (default) or NORMAL */
    size_t max_batch;       /* requests per transaction (default 256) */
    size_t max_queue;       /* queued requests before store_submit refuses (default 100000) */
};

struct store {
    sqlite3 *db;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct store_req *head, *tail;
    size_t queued;
    bool stop;
    bool started;
    struct store_config cfg;
    char path[1024];
    /* statement cache, indexed by enum store_stmt in store_sql.h */
    sqlite3_stmt **stmts;
    size_t nstmts;
    unsigned long long batches, requests; /* counters */
};

/* Opens (creating) the database and applies migrations on the calling thread, then starts the
 * store thread. On error writes a message to err. */
int store_open(struct store *s, const struct store_config *cfg, char *err, size_t errlen);
/* Finishes every queued request, then stops the thread and closes the database. */
void store_close(struct store *s);
/* Queues r. Thread-safe. Returns -EAGAIN when the queue is at max_queue (the caller answers
 * 503/429), 0 otherwise. */
int store_submit(struct store *s, struct store_req *r);
/* Runs work on the store thread and waits for it (start-up, CLI and tests only: it blocks,
 * so never on a reactor). */
int store_run_sync(struct store *s, store_work_fn work, struct store_req *r);

/* A prepared statement by its SQL text, cached on the store (store thread only). Reset and
 * bindings cleared before it is returned. */
sqlite3_stmt *store_stmt(struct store *s, const char *sql);
int store_schema_version(struct store *s);
/* Steps st to its end, appending each row to rows as an object {column: value} (NULL → null,
 * integers → integers, everything else → strings). SQLITE_OK or the error. Store thread. */
struct json_t;
int store_rows_json(sqlite3_stmt *st, struct json_t *rows);

#endif
