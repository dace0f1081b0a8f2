/* store: migrations, group commit on the store thread, completions back on the reactor,
 * per-request rollback, the queue bound. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "store/store.h"
#include "store/store_schema.h"

#define N 2000

struct insert_req {
    struct store_req req;
    int id;
    bool fail;
    pthread_t done_thread;
    int *done_count;
};

static int insert_work(struct store *s, struct store_req *r)
{
    struct insert_req *ir = (struct insert_req *)r;
    sqlite3_stmt *st = store_stmt(s, "INSERT INTO audit_log (ts, actor, action) VALUES (?, ?, ?)");
    if (!st)
        return SQLITE_ERROR;
    sqlite3_bind_int(st, 1, ir->id);
    sqlite3_bind_text(st, 2, "test", -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, "insert", -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc != SQLITE_DONE)
        return rc;
    return ir->fail ? SQLITE_CONSTRAINT : SQLITE_OK; /* fail after writing: must roll back */
}

static void insert_done(struct store_req *r)
{
    struct insert_req *ir = (struct insert_req *)r;
    ir->done_thread = pthread_self();
    (*ir->done_count)++;
}

struct count_req {
    struct store_req req;
    int n;
};

static int count_rows(struct store *s, struct store_req *r)
{
    sqlite3_stmt *st = store_stmt(s, "SELECT COUNT(*) FROM audit_log");
    if (sqlite3_step(st) != SQLITE_ROW)
        return SQLITE_ERROR;
    ((struct count_req *)r)->n = sqlite3_column_int(st, 0);
    return SQLITE_OK;
}

static int rows(struct store *s)
{
    struct count_req c;
    memset(&c, 0, sizeof(c));
    assert_int_equal(store_run_sync(s, count_rows, &c.req), SQLITE_OK);
    return c.n;
}

static int latest_version(void)
{
    return store_migration(store_migration_count() - 1)->version;
}

static int done_count;
static bool all_done(struct ring *r)
{
    return done_count == N;
}

static void test_batches_and_rollback(void **state)
{
    char path[] = "/tmp/cg-store-XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    struct store s;
    char err[256];
    struct store_config cfg = {.path = path, .synchronous_full = true};
    assert_int_equal(store_open(&s, &cfg, err, sizeof(err)), 0);
    assert_int_equal(store_schema_version(&s), latest_version());

    struct ring ring;
    struct ring_config rc = {.sq_entries = 64, .buf_count = 8, .buf_size = 4096, .max_timers = 64};
    if (ring_init(&ring, &rc, 0) < 0)
        skip();
    struct insert_req *reqs = calloc(N, sizeof(*reqs));
    done_count = 0;
    for (int i = 0; i < N; i++) {
        reqs[i].req.work = insert_work;
        reqs[i].req.done = insert_done;
        reqs[i].req.origin = &ring;
        reqs[i].id = i;
        reqs[i].fail = i % 10 == 3;
        reqs[i].done_count = &done_count;
        assert_int_equal(store_submit(&s, &reqs[i].req), 0);
    }
    ring_stop(&ring);
    assert_int_equal(ring_run(&ring, all_done), 0);
    assert_int_equal(done_count, N);
    for (int i = 0; i < N; i++) {
        assert_true(pthread_equal(reqs[i].done_thread, pthread_self()));
        assert_int_equal(reqs[i].req.rc, reqs[i].fail ? SQLITE_CONSTRAINT : SQLITE_OK);
    }
    assert_int_equal(rows(&s), N - N / 10);
    assert_true(s.batches < (unsigned long long)N); /* requests were grouped */
    store_close(&s);
    ring_fini(&ring);
    free(reqs);

    /* reopen: the data is there and migrations are not applied twice */
    assert_int_equal(store_open(&s, &cfg, err, sizeof(err)), 0);
    assert_int_equal(store_schema_version(&s), latest_version());
    assert_int_equal(rows(&s), N - N / 10);
    store_close(&s);
    unlink(path);
    char wal[64];
    snprintf(wal, sizeof(wal), "%s-wal", path);
    unlink(wal);
    snprintf(wal, sizeof(wal), "%s-shm", path);
    unlink(wal);
}

static int slow_work(struct store *s, struct store_req *r)
{
    usleep(200000);
    return SQLITE_OK;
}

static void test_queue_bound(void **state)
{
    struct store s;
    char err[256];
    struct store_config cfg = {.path = ":memory:", .max_queue = 4, .max_batch = 1};
    assert_int_equal(store_open(&s, &cfg, err, sizeof(err)), 0);
    struct store_req r[8];
    memset(r, 0, sizeof(r));
    int refused = 0;
    for (int i = 0; i < 8; i++) {
        r[i].work = slow_work;
        if (store_submit(&s, &r[i]) == -EAGAIN)
            refused++;
    }
    assert_true(refused >= 3); /* one may already be running; at most 4 wait */
    store_close(&s);             /* finishes what was accepted */
}

static void test_bad_path(void **state)
{
    struct store s;
    char err[256] = "";
    struct store_config cfg = {.path = "/nonexistent-dir/x/y.db"};
    assert_int_equal(store_open(&s, &cfg, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "cannot open database"));
    store_close(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_batches_and_rollback),
        cmocka_unit_test(test_queue_bound),
        cmocka_unit_test(test_bad_path),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
