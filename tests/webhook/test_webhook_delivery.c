/* The delivery engine end to end, in-process: a real ring, ring_curl, store (a temporary
 * database file) and webhooks, against Node.js receivers that verify every delivery with the
 * npm standardwebhooks library and X-Signature with node's crypto (tests/js).
 *
 * Usage: test_webhook_delivery JS_DIR [TEST_GLOB]. Exit 77 when node is not installed (or io_uring
 * is unavailable); a missing node_modules is a failure, not a skip. No check measures time: waits
 * are for an event, with a generous limit. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "webhook/webhook.h"

#define SECRET "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
#define SECRET_PREV "whsec_BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc="
#define WAIT_MS 60000

static char node_bin[512], js_dir[512], tmp[64];

struct receiver {
    pid_t pid;
    int port;
    char log[128];
};
/* [0] knows SECRET, [1] knows SECRET_PREV (rotation) and is the one that hangs */
static struct receiver rx[2];

/* --- receivers --------------------------------------------------------------------------- */

static int receiver_start(struct receiver *r, int idx, const char *secret)
{
    char portfile[128], script[600];
    snprintf(portfile, sizeof(portfile), "%s/rx%d.port", tmp, idx);
    snprintf(r->log, sizeof(r->log), "%s/rx%d.log", tmp, idx);
    snprintf(script, sizeof(script), "%s/webhook_receiver.js", js_dir);
    r->pid = fork();
    if (r->pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        execl(node_bin, node_bin, script, secret, portfile, r->log, (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 2000; i++) {
        FILE *f = fopen(portfile, "r");
        if (f && fscanf(f, "%d", &r->port) == 1 && r->port > 0) {
            fclose(f);
            return 0;
        }
        if (f)
            fclose(f);
        if (waitpid(r->pid, NULL, WNOHANG) == r->pid)
            return -1;
        usleep(10000);
    }
    return -1;
}

static void receiver_stop(struct receiver *r)
{
    if (r->pid > 0) {
        kill(r->pid, SIGTERM);
        waitpid(r->pid, NULL, 0);
    }
    r->pid = 0;
}

/* The receiver's records (one JSON object per request) whose URL starts with path. */
static json_t *records(const struct receiver *r, const char *path)
{
    json_t *out = json_array();
    FILE *f = fopen(r->log, "r");
    char line[1 << 16];
    while (f && fgets(line, sizeof(line), f)) {
        json_t *rec = json_loads(line, 0, NULL);
        const char *url = json_string_value(json_object_get(rec, "url"));
        if (url && strncmp(url, path, strlen(path)) == 0)
            json_array_append(out, rec);
        json_decref(rec);
    }
    if (f)
        fclose(f);
    return out;
}

static void url_of(char *out, size_t cap, const struct receiver *r, const char *path)
{
    snprintf(out, cap, "http://127.0.0.1:%d%s", r->port, path);
}

/* --- the world: ring, curl, store, webhooks ----------------------------------------------- */

struct world {
    struct ring ring;
    struct ring_curl rc;
    struct store store;
    struct webhooks *wh;
    struct ring_timer tick;
    bool (*cond)(struct world *w, const void *arg);
    const void *arg;
    long long deadline;
    bool timed_out;
    unsigned acks, ack_errors;
    char last_ack[WEBHOOK_ID_SIZE];
    bool stop_on_ack;
};

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

static void tick_cb(struct ring_timer *t)
{
    struct world *w = (struct world *)((char *)t - offsetof(struct world, tick));
    ring_timer_arm(&w->ring, t, 20); /* so run_until's condition is looked at */
}

static bool run_done(struct ring *r)
{
    struct world *w = r->user;
    if (w->cond(w, w->arg))
        return true;
    w->timed_out = now_ms() > w->deadline;
    return w->timed_out;
}

static void run_until(struct world *w, bool (*cond)(struct world *, const void *), const void *arg,
                      const char *what)
{
    w->cond = cond;
    w->arg = arg;
    w->deadline = now_ms() + WAIT_MS;
    w->timed_out = false;
    ring_stop(&w->ring);
    assert_int_equal(ring_run(&w->ring, run_done), 0);
    if (w->timed_out)
        fail_msg("timed out waiting for %s", what);
}

static void config(struct webhook_config *c)
{
    webhook_config_defaults(c);
    c->secret = SECRET;
    c->max_attempts = 4;
    c->retry_base_ms = 50;
    c->retry_max_ms = 2000;
    c->timeout_ms = 1000;
    c->max_inflight = 8;
    c->max_inflight_per_host = 2;
}

static void world_open(struct world *w, const char *db, const struct webhook_config *c)
{
    memset(w, 0, sizeof(*w));
    struct ring_config rcfg = {
        .sq_entries = 256, .buf_count = 64, .buf_size = 4096, .max_timers = 1024};
    assert_int_equal(ring_init(&w->ring, &rcfg, 0), 0);
    w->ring.user = w;
    w->tick.cb = tick_cb;
    ring_timer_arm(&w->ring, &w->tick, 20);
    assert_int_equal(ring_curl_init(&w->rc, &w->ring), 0);
    char err[256] = "";
    char path[128];
    snprintf(path, sizeof(path), "%s/%s", tmp, db);
    struct store_config sc = {.path = path, .synchronous_full = true};
    if (store_open(&w->store, &sc, err, sizeof(err)) < 0)
        fail_msg("store: %s", err);
    if (webhook_new(&w->wh, &w->ring, &w->rc, &w->store, c, err, sizeof(err)) < 0)
        fail_msg("webhook_new: %s", err);
}

static bool idle(struct world *w, const void *arg)
{
    return webhook_idle(w->wh);
}

static void world_close(struct world *w)
{
    webhook_stop(w->wh);
    run_until(w, idle, NULL, "the webhooks to wind down");
    webhook_free(w->wh);
    ring_curl_fini(&w->rc);
    store_close(&w->store);
    ring_timer_cancel(&w->ring, &w->tick);
    ring_fini(&w->ring);
}

static void ack_cb(void *ctx, const char *id, int rc)
{
    struct world *w = ctx;
    w->acks++;
    w->ack_errors += rc != 0;
    snprintf(w->last_ack, sizeof(w->last_ack), "%s", id);
    if (w->stop_on_ack)
        webhook_stop(w->wh); /* before the first attempt can start */
}

static void enqueue(struct world *w, const char *job, const char *url, const char *type,
                    const char *data)
{
    json_t *d = json_loads(data, 0, NULL);
    assert_non_null(d);
    assert_int_equal(webhook_enqueue_ack(w->wh, job, url, type, d, ack_cb, w), 0);
    json_decref(d);
}

/* Every job named in arg (a NULL-terminated list) has deliveries, none of them pending, and
 * every outcome is written. */
static bool jobs_final(struct world *w, const void *arg)
{
    struct webhook_stats st;
    webhook_get_stats(w->wh, &st);
    if (st.writing)
        return false;
    for (const char *const *j = arg; *j; j++) {
        json_t *a = webhook_job_deliveries(w->wh, *j);
        bool ok = json_array_size(a) > 0;
        size_t i;
        json_t *d;
        json_array_foreach(a, i, d)
        {
            ok = ok && strcmp(json_string_value(json_object_get(d, "status")), "pending") != 0;
        }
        json_decref(a);
        if (!ok)
            return false;
    }
    return true;
}

static json_t *delivery(struct world *w, const char *job, size_t i)
{
    json_t *a = webhook_job_deliveries(w->wh, job);
    json_t *d = json_incref(json_array_get(a, i));
    json_decref(a);
    assert_non_null(d);
    return d;
}

static const char *str(json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "";
}

static long long num(json_t *o, const char *k)
{
    return json_integer_value(json_object_get(o, k));
}

/* --- the database as written --------------------------------------------------------------- */

struct q_req {
    struct store_req req;
    const char *sql;
    const char *arg;
    json_t *rows;
};

static int q_work(struct store *s, struct store_req *r)
{
    struct q_req *q = (struct q_req *)r;
    sqlite3_stmt *st = store_stmt(s, q->sql);
    if (!st)
        return SQLITE_ERROR;
    sqlite3_bind_text(st, 1, q->arg, -1, SQLITE_STATIC);
    while (sqlite3_step(st) == SQLITE_ROW) {
        json_t *row = json_object();
        for (int i = 0; i < sqlite3_column_count(st); i++) {
            json_t *v = sqlite3_column_type(st, i) == SQLITE_NULL ? json_null()
                        : sqlite3_column_type(st, i) == SQLITE_INTEGER
                            ? json_integer(sqlite3_column_int64(st, i))
                            : json_string((const char *)sqlite3_column_text(st, i));
            json_object_set_new(row, sqlite3_column_name(st, i), v);
        }
        json_array_append_new(q->rows, row);
    }
    return SQLITE_OK;
}

static json_t *query(struct world *w, const char *sql, const char *arg)
{
    struct q_req q;
    memset(&q, 0, sizeof(q));
    q.sql = sql;
    q.arg = arg;
    q.rows = json_array();
    assert_int_equal(store_run_sync(&w->store, q_work, &q.req), SQLITE_OK);
    return q.rows;
}

static json_t *attempt_rows(struct world *w, const char *msg_id)
{
    return query(w, "SELECT * FROM webhook_attempts WHERE msg_id = ?1 ORDER BY n", msg_id);
}

static json_t *delivery_row(struct world *w, const char *msg_id)
{
    json_t *rows = query(w, "SELECT * FROM webhook_deliveries WHERE msg_id = ?1", msg_id);
    json_t *row = json_incref(json_array_get(rows, 0));
    json_decref(rows);
    assert_non_null(row);
    return row;
}

/* Every record was verified by standardwebhooks and by X-Signature, with our headers. */
static void check_records_signed(json_t *recs)
{
    size_t i;
    json_t *r;
    json_array_foreach(recs, i, r)
    {
        if (!json_is_true(json_object_get(r, "verified")))
            fail_msg("standardwebhooks refused %s: %s", str(r, "id"), str(r, "verifyError"));
        assert_true(json_is_true(json_object_get(r, "xsigOk")));
        assert_string_equal(str(r, "method"), "POST");
        assert_string_equal(str(r, "contentType"), "application/json");
        assert_string_equal(str(r, "userAgent"), "comfygate/" COMFYGATE_VERSION);
        assert_true(json_is_null(json_object_get(r, "expect")));
        assert_int_equal(strncmp(str(r, "id"), "msg_", 4), 0);
    }
}

/* --- cases --------------------------------------------------------------------------------- */

static void test_delivered_in_order_and_verified(void **state)
{
    struct world w;
    struct webhook_config c;
    config(&c);
    world_open(&w, "a.db", &c);
    char url[128];
    url_of(url, sizeof(url), &rx[0], "/ok/j1");
    enqueue(&w, "j1", url, "job.queued", "{\"jobId\":\"j1\",\"status\":\"queued\"}");
    enqueue(&w, "j1", url, "job.running", "{\"jobId\":\"j1\",\"status\":\"running\"}");
    enqueue(&w, "j1", url, "job.succeeded",
            "{\"jobId\":\"j1\",\"status\":\"succeeded\",\"note\":\"caf\\u00e9 \\u2603\"}");
    const char *jobs[] = {"j1", NULL};
    run_until(&w, jobs_final, jobs, "j1's deliveries");
    assert_int_equal(w.acks, 3);
    assert_int_equal(w.ack_errors, 0);

    json_t *recs = records(&rx[0], "/ok/j1");
    assert_int_equal(json_array_size(recs), 3);
    check_records_signed(recs);
    static const char *const types[] = {"job.queued", "job.running", "job.succeeded"};
    for (size_t i = 0; i < 3; i++) {
        json_t *r = json_array_get(recs, i);
        json_t *d = delivery(&w, "j1", i);
        assert_string_equal(str(d, "status"), "delivered");
        assert_string_equal(str(d, "event"), types[i]);
        assert_string_equal(str(d, "url"), url);
        assert_int_equal(num(d, "attempts"), 1);
        assert_int_equal(num(d, "last_status"), 204);
        assert_true(json_is_null(json_object_get(d, "last_error")));
        assert_true(json_is_null(json_object_get(d, "next_attempt_at")));
        assert_true(json_is_string(json_object_get(d, "delivered_at")));
        assert_string_equal(str(r, "id"), str(d, "id")); /* in enqueue order */
        /* the body: compact {"type","timestamp","data"}, in that order */
        char prefix[64];
        snprintf(prefix, sizeof(prefix), "{\"type\":\"%s\",\"timestamp\":\"", types[i]);
        assert_int_equal(strncmp(str(r, "body"), prefix, strlen(prefix)), 0);
        json_t *body = json_loads(str(r, "body"), 0, NULL);
        assert_int_equal(strlen(str(body, "timestamp")), 24); /* 2024-05-01T12:00:00.123Z */
        assert_string_equal(str(json_object_get(body, "data"), "jobId"), "j1");
        json_decref(body);
        json_t *row = delivery_row(&w, str(d, "id"));
        assert_string_equal(str(row, "status"), "delivered");
        assert_string_equal(str(row, "payload"), str(r, "body")); /* the exact bytes sent */
        assert_string_equal(str(row, "job_id"), "j1");
        json_t *atts = attempt_rows(&w, str(d, "id"));
        assert_int_equal(json_array_size(atts), 1);
        assert_int_equal(num(json_array_get(atts, 0), "http_status"), 204);
        json_decref(atts);
        json_decref(row);
        json_decref(d);
    }
    json_t *last = json_loads(str(json_array_get(recs, 2), "body"), 0, NULL);
    assert_string_equal(str(json_object_get(last, "data"), "note"), "caf\xc3\xa9 \xe2\x98\x83");
    json_decref(last);
    assert_string_equal(w.last_ack, str(json_array_get(recs, 2), "id"));
    json_decref(recs);
    json_t *none = webhook_job_deliveries(w.wh, "no-such-job");
    assert_int_equal(json_array_size(none), 0);
    json_decref(none);
    world_close(&w);
}

/* The attempts of one event all carry its webhook-id; 500, 429 + Retry-After and a timeout
 * are retried until the receiver takes it. */
static void check_retried(struct world *w, const char *job, const char *path, size_t n,
                          long first_status)
{
    json_t *d = delivery(w, job, 0);
    assert_string_equal(str(d, "status"), "delivered");
    assert_int_equal(num(d, "attempts"), n);
    json_t *recs = records(&rx[0], path);
    assert_int_equal(json_array_size(recs), n);
    check_records_signed(recs);
    size_t i;
    json_t *r;
    json_array_foreach(recs, i, r)
    {
        assert_string_equal(str(r, "id"), str(d, "id"));
        assert_string_equal(str(r, "body"), str(json_array_get(recs, 0), "body"));
    }
    json_t *atts = attempt_rows(w, str(d, "id"));
    assert_int_equal(json_array_size(atts), n);
    json_t *a0 = json_array_get(atts, 0);
    if (first_status)
        assert_int_equal(num(a0, "http_status"), first_status);
    else
        assert_true(json_is_null(json_object_get(a0, "http_status")));
    assert_true(json_is_string(json_object_get(a0, "error")));
    assert_int_equal(num(json_array_get(atts, n - 1), "http_status"), 204);
    json_decref(atts);
    json_decref(recs);
    json_decref(d);
}

static void test_retries_keep_the_id(void **state)
{
    struct world w;
    struct webhook_config c;
    config(&c);
    world_open(&w, "b.db", &c);
    char u1[160], u2[160], u3[160];
    url_of(u1, sizeof(u1), &rx[0], "/r500?fail=500&times=2");
    url_of(u2, sizeof(u2), &rx[0], "/r429?fail=429&times=1&ra=1");
    url_of(u3, sizeof(u3), &rx[0], "/rhang?fail=hang&times=1");
    enqueue(&w, "r500", u1, "job.succeeded", "{\"n\":1}");
    enqueue(&w, "r429", u2, "job.failed", "{\"n\":2}");
    enqueue(&w, "rhang", u3, "job.canceled", "{\"n\":3}");
    const char *jobs[] = {"r500", "r429", "rhang", NULL};
    run_until(&w, jobs_final, jobs, "the retried deliveries");
    check_retried(&w, "r500", "/r500", 3, 500);
    check_retried(&w, "r429", "/r429", 2, 429);
    check_retried(&w, "rhang", "/rhang", 2, 0);
    json_t *d = delivery(&w, "rhang", 0);
    json_t *atts = attempt_rows(&w, str(d, "id"));
    const char *e = str(json_array_get(atts, 0), "error");
    assert_non_null(strstr(e, "imeout")); /* curl: "Timeout was reached" */
    json_decref(atts);
    json_decref(d);
    world_close(&w);
}

static void test_gone_fails_at_once(void **state)
{
    struct world w;
    struct webhook_config c;
    config(&c);
    world_open(&w, "c.db", &c);
    char url[160];
    url_of(url, sizeof(url), &rx[0], "/gone?fail=410&times=99");
    enqueue(&w, "gone", url, "job.succeeded", "{}");
    enqueue(&w, "gone", url, "job.output", "{}"); /* after the failed one, on its own merits */
    const char *jobs[] = {"gone", NULL};
    run_until(&w, jobs_final, jobs, "the 410 deliveries");
    for (size_t i = 0; i < 2; i++) {
        json_t *d = delivery(&w, "gone", i);
        assert_string_equal(str(d, "status"), "failed");
        assert_int_equal(num(d, "attempts"), 1);
        assert_int_equal(num(d, "last_status"), 410);
        assert_int_equal(strncmp(str(d, "last_error"), "HTTP 410: refused 410", 21), 0);
        json_t *row = delivery_row(&w, str(d, "id"));
        assert_string_equal(str(row, "status"), "failed");
        assert_int_equal(num(row, "attempts"), 1);
        json_decref(row);
        json_decref(d);
    }
    json_t *recs = records(&rx[0], "/gone");
    assert_int_equal(json_array_size(recs), 2);
    json_decref(recs);
    world_close(&w);
}

static void test_gives_up_after_max_attempts(void **state)
{
    struct world w;
    struct webhook_config c;
    config(&c);
    world_open(&w, "d.db", &c);
    char url[160];
    url_of(url, sizeof(url), &rx[0], "/always500?fail=503&times=99");
    enqueue(&w, "dead", url, "job.failed", "{\"x\":[1,2,3]}");
    const char *jobs[] = {"dead", NULL};
    run_until(&w, jobs_final, jobs, "the delivery to give up");
    json_t *d = delivery(&w, "dead", 0);
    assert_string_equal(str(d, "status"), "failed");
    assert_int_equal(num(d, "attempts"), 4);
    assert_int_equal(num(d, "last_status"), 503);
    assert_int_equal(strncmp(str(d, "last_error"), "gave up after 4 attempts: HTTP 503", 34), 0);
    json_t *row = delivery_row(&w, str(d, "id"));
    assert_string_equal(str(row, "status"), "failed");
    assert_int_equal(num(row, "attempts"), 4);
    assert_true(json_is_null(json_object_get(row, "next_attempt_at")));
    json_t *atts = attempt_rows(&w, str(d, "id"));
    assert_int_equal(json_array_size(atts), 4);
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(num(json_array_get(atts, i), "n"), i + 1);
        assert_int_equal(num(json_array_get(atts, i), "http_status"), 503);
    }
    json_t *recs = records(&rx[0], "/always500");
    assert_int_equal(json_array_size(recs), 4);
    check_records_signed(recs);
    json_decref(recs);
    json_decref(atts);
    json_decref(row);
    json_decref(d);
    struct webhook_stats st;
    webhook_get_stats(w.wh, &st);
    assert_int_equal(st.failed, 1);
    assert_int_equal(st.retried, 3);
    assert_int_equal(st.pending, 0);
    world_close(&w);
}

/* A port nobody listens on. */
static int closed_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t l = sizeof(a);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    getsockname(fd, (struct sockaddr *)&a, &l);
    close(fd);
    return ntohs(a.sin_port);
}

static bool healthy_done(struct world *w, const void *arg)
{
    const char *jobs[] = {"healthy", NULL};
    return jobs_final(w, jobs);
}

static bool no_writes(struct world *w, const void *arg)
{
    struct webhook_stats st;
    webhook_get_stats(w->wh, &st);
    return st.writing == 0;
}

/* Receivers that are down (connection refused) or hang (their share of in-flight slots taken)
 * do not hold up a job whose receiver is fine. */
static void test_bad_receivers_do_not_delay_others(void **state)
{
    struct world w;
    struct webhook_config c;
    config(&c);
    c.max_attempts = 100;
    c.retry_base_ms = 200;
    c.timeout_ms = 20000; /* the hanging ones stay in flight for the whole case */
    world_open(&w, "e.db", &c);
    char url[160], job[32];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/down", closed_port());
    for (int i = 0; i < 20; i++) {
        snprintf(job, sizeof(job), "down%d", i);
        enqueue(&w, job, url, "job.succeeded", "{}");
    }
    for (int i = 0; i < 6; i++) {
        char path[64];
        snprintf(path, sizeof(path), "/hang%d?fail=hang&times=99", i);
        url_of(url, sizeof(url), &rx[1], path);
        snprintf(job, sizeof(job), "hang%d", i);
        enqueue(&w, job, url, "job.succeeded", "{}");
    }
    url_of(url, sizeof(url), &rx[0], "/healthy");
    enqueue(&w, "healthy", url, "job.succeeded", "{}");
    run_until(&w, healthy_done, NULL, "the healthy receiver's delivery");
    json_t *d = delivery(&w, "healthy", 0);
    assert_string_equal(str(d, "status"), "delivered");
    json_decref(d);
    for (int i = 0; i < 20; i++) {
        snprintf(job, sizeof(job), "down%d", i);
        d = delivery(&w, job, 0);
        assert_string_equal(str(d, "status"), "pending");
        json_decref(d);
    }
    for (int i = 0; i < 6; i++) { /* they have not timed out: the healthy one did not wait */
        snprintf(job, sizeof(job), "hang%d", i);
        d = delivery(&w, job, 0);
        assert_int_equal(num(d, "attempts"), 0);
        json_decref(d);
    }
    struct webhook_stats st;
    webhook_get_stats(w.wh, &st);
    assert_true(st.inflight <= 2 + 2); /* the hanging host holds its 2 at most, plus the down */
    webhook_stop(w.wh);
    run_until(&w, no_writes, NULL, "the store writes to finish");
    webhook_free(w.wh); /* cancels the hanging requests: they stay pending in the store */
    w.wh = NULL;
    json_t *rows = query(&w,
                         "SELECT COUNT(*) AS n FROM webhook_deliveries WHERE status ="
                         " 'pending' AND url LIKE ?1",
                         "%/hang%");
    assert_int_equal(num(json_array_get(rows, 0), "n"), 6);
    json_decref(rows);
    ring_curl_fini(&w.rc);
    store_close(&w.store);
    ring_fini(&w.ring);
}

static bool acked(struct world *w, const void *arg)
{
    return w->acks > 0 && webhook_idle(w->wh);
}

/* Acknowledged, then everything stops before a request is made: after a restart on the same
 * database the event is delivered, once, under the id it was acknowledged with. */
static void test_durable_across_restart(void **state)
{
    struct world w;
    struct webhook_config c;
    config(&c);
    world_open(&w, "f.db", &c);
    w.stop_on_ack = true;
    char url[160], id[WEBHOOK_ID_SIZE];
    url_of(url, sizeof(url), &rx[0], "/durable");
    enqueue(&w, "dur", url, "job.succeeded", "{\"kept\":true}");
    run_until(&w, acked, NULL, "the event to be committed");
    assert_int_equal(w.ack_errors, 0);
    snprintf(id, sizeof(id), "%s", w.last_ack);
    json_t *recs = records(&rx[0], "/durable");
    assert_int_equal(json_array_size(recs), 0);
    json_decref(recs);
    webhook_free(w.wh);
    ring_curl_fini(&w.rc);
    store_close(&w.store);
    ring_timer_cancel(&w.ring, &w.tick);
    ring_fini(&w.ring);

    world_open(&w, "f.db", &c);
    const char *jobs[] = {"dur", NULL};
    run_until(&w, jobs_final, jobs, "the delivery after the restart");
    json_t *d = delivery(&w, "dur", 0);
    assert_string_equal(str(d, "id"), id);
    assert_string_equal(str(d, "status"), "delivered");
    json_decref(d);
    world_close(&w);

    world_open(&w, "f.db", &c); /* and not again: it is remembered as delivered */
    struct webhook_stats st;
    webhook_get_stats(w.wh, &st);
    assert_int_equal(st.pending, 0);
    d = delivery(&w, "dur", 0);
    assert_string_equal(str(d, "status"), "delivered");
    json_decref(d);
    world_close(&w);
    recs = records(&rx[0], "/durable");
    assert_int_equal(json_array_size(recs), 1);
    assert_string_equal(str(json_array_get(recs, 0), "id"), id);
    check_records_signed(recs);
    json_decref(recs);
}

/* A 1 MiB answer is read up to max_response, then dropped: the 200 still counts. */
static void test_big_response_is_capped(void **state)
{
    struct world w;
    struct webhook_config c;
    config(&c);
    world_open(&w, "g.db", &c);
    char url[160];
    url_of(url, sizeof(url), &rx[0], "/big?big=1");
    enqueue(&w, "big", url, "job.succeeded", "{}");
    const char *jobs[] = {"big", NULL};
    run_until(&w, jobs_final, jobs, "the delivery with a big answer");
    json_t *d = delivery(&w, "big", 0);
    assert_string_equal(str(d, "status"), "delivered");
    assert_int_equal(num(d, "last_status"), 200);
    assert_int_equal(num(d, "attempts"), 1);
    json_decref(d);
    world_close(&w);
}

struct guard_log {
    unsigned calls;
    bool easy_seen;
};

static int guard_prepare(CURL *easy, const char *url, curl_write_callback write, void *write_data,
                         void *ctx, void *arg, char *why, size_t whylen)
{
    (void)write;
    (void)write_data;
    (void)ctx;
    struct guard_log *g = arg;
    g->calls++;
    g->easy_seen = g->easy_seen || easy != NULL;
    if (strstr(url, "/forbidden")) {
        snprintf(why, whylen, "address not allowed");
        return -1;
    }
    return 0;
}

/* The guard is asked before every attempt; a refused URL fails at once, with its reason, and
 * is never requested. */
static void test_guard_refusal(void **state)
{
    struct world w;
    struct webhook_config c;
    struct guard_log g = {0};
    config(&c);
    c.guard.prepare = guard_prepare;
    c.guard.arg = &g;
    world_open(&w, "h.db", &c);
    char bad[160], good[160];
    url_of(bad, sizeof(bad), &rx[0], "/forbidden");
    url_of(good, sizeof(good), &rx[0], "/allowed");
    enqueue(&w, "guarded", bad, "job.succeeded", "{}");
    enqueue(&w, "allowed", good, "job.succeeded", "{}");
    const char *jobs[] = {"guarded", "allowed", NULL};
    run_until(&w, jobs_final, jobs, "the guarded deliveries");
    json_t *d = delivery(&w, "guarded", 0);
    assert_string_equal(str(d, "status"), "failed");
    assert_int_equal(num(d, "attempts"), 1);
    assert_string_equal(str(d, "last_error"), "refused by the URL guard: address not allowed");
    assert_true(json_is_null(json_object_get(d, "last_status")));
    json_decref(d);
    d = delivery(&w, "allowed", 0);
    assert_string_equal(str(d, "status"), "delivered");
    json_decref(d);
    assert_int_equal(g.calls, 2);
    assert_true(g.easy_seen);
    json_t *recs = records(&rx[0], "/forbidden");
    assert_int_equal(json_array_size(recs), 0);
    json_decref(recs);
    struct webhook_stats st;
    webhook_get_stats(w.wh, &st);
    assert_int_equal(st.refused, 1);
    world_close(&w);
}

/* Signed with both secrets while rotating: a receiver that knows only the previous one
 * verifies too. */
static void test_rotation_both_secrets_verify(void **state)
{
    struct world w;
    struct webhook_config c;
    config(&c);
    c.secret_previous = SECRET_PREV;
    world_open(&w, "i.db", &c);
    char u0[160], u1[160];
    url_of(u0, sizeof(u0), &rx[0], "/rot");
    url_of(u1, sizeof(u1), &rx[1], "/rot");
    enqueue(&w, "rot0", u0, "job.succeeded", "{}");
    enqueue(&w, "rot1", u1, "job.succeeded", "{}");
    const char *jobs[] = {"rot0", "rot1", NULL};
    run_until(&w, jobs_final, jobs, "the rotation deliveries");
    for (int i = 0; i < 2; i++) {
        json_t *recs = records(&rx[i], "/rot");
        assert_int_equal(json_array_size(recs), 1);
        if (!json_is_true(json_object_get(json_array_get(recs, 0), "verified")))
            fail_msg("receiver %d: %s", i, str(json_array_get(recs, 0), "verifyError"));
        const char *sig = str(json_array_get(recs, 0), "signature");
        assert_non_null(strchr(sig, ' ')); /* two signatures */
        json_decref(recs);
    }
    world_close(&w);
}

static void test_enqueue_refusals(void **state)
{
    struct world w;
    struct webhook_config c;
    config(&c);
    c.max_pending = 2;
    c.max_payload = 200;
    world_open(&w, "j.db", &c);
    char url[160], err[128];
    url_of(url, sizeof(url), &rx[1], "/slow?fail=hang&times=99");
    json_t *data = json_object();
    assert_int_equal(webhook_enqueue(w.wh, "x", "ftp://127.0.0.1/x", "job.succeeded", data),
                     -EINVAL);
    assert_int_equal(webhook_enqueue(w.wh, "x", "not a url", "job.succeeded", data), -EINVAL);
    assert_int_equal(webhook_enqueue(w.wh, "x", url, "job succeeded", data), -EINVAL);
    assert_int_equal(webhook_enqueue(w.wh, "x", url, "", data), -EINVAL);
    assert_int_equal(webhook_enqueue(w.wh, "", url, "job.succeeded", data), -EINVAL);
    json_object_set_new(data, "pad",
                        json_string("0123456789012345678901234567890123456789"
                                    "0123456789012345678901234567890123456789"
                                    "0123456789012345678901234567890123456789"));
    assert_int_equal(webhook_enqueue(w.wh, "x", url, "job.succeeded", data), -EMSGSIZE);
    json_object_del(data, "pad");
    assert_int_equal(webhook_enqueue(w.wh, "x", url, "job.succeeded", data), 0);
    assert_int_equal(webhook_enqueue(w.wh, "x", url, "job.output", data), 0);
    assert_int_equal(webhook_enqueue(w.wh, "y", url, "job.succeeded", data), -ENOSPC);
    assert_int_equal(webhook_url_check("https://example.com:8443/hook?a=1", err, sizeof(err)), 0);
    assert_int_equal(webhook_url_check("http://user:pw@example.com/", err, sizeof(err)), -1);
    assert_non_null(strstr(err, "user:password"));
    assert_int_equal(webhook_url_check("gopher://example.com/", err, sizeof(err)), -1);
    assert_int_equal(webhook_url_check("http://exa mple.com/", err, sizeof(err)), -1);
    assert_int_equal(webhook_url_check("/relative", err, sizeof(err)), -1);
    webhook_stop(w.wh);
    assert_int_equal(webhook_enqueue(w.wh, "y", url, "job.succeeded", data), -ESHUTDOWN);
    json_decref(data);
    run_until(&w, no_writes, NULL, "the inserts");
    webhook_free(w.wh); /* the first may be in flight (hanging): cancelled */
    ring_curl_fini(&w.rc);
    store_close(&w.store);
    ring_timer_cancel(&w.ring, &w.tick);
    ring_fini(&w.ring);
}

static int find_node(void)
{
    const char *env = getenv("NODE");
    if (env && access(env, X_OK) == 0) {
        snprintf(node_bin, sizeof(node_bin), "%s", env);
        return 0;
    }
    const char *path = getenv("PATH");
    char buf[4096];
    snprintf(buf, sizeof(buf), "%s", path ? path : "/usr/local/bin:/usr/bin:/bin");
    for (char *save = NULL, *dir = strtok_r(buf, ":", &save); dir;
         dir = strtok_r(NULL, ":", &save)) {
        snprintf(node_bin, sizeof(node_bin), "%s/node", dir);
        if (access(node_bin, X_OK) == 0)
            return 0;
    }
    return -1;
}

static bool io_uring_works(void)
{
    struct ring r;
    struct ring_config rc = {.sq_entries = 8, .buf_count = 8, .buf_size = 4096, .max_timers = 8};
    if (ring_init(&r, &rc, 0) < 0)
        return false;
    ring_fini(&r);
    return true;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return 2;
    snprintf(js_dir, sizeof(js_dir), "%s", argv[1]);
    if (argc > 2)
        cmocka_set_test_filter(argv[2]); /* e.g. "*durable*" */
    if (find_node() < 0) {
        fprintf(stderr, "node is not installed: skipped\n");
        return 77;
    }
    char mod[700];
    snprintf(mod, sizeof(mod), "%s/node_modules/standardwebhooks/package.json", js_dir);
    if (access(mod, R_OK) != 0) {
        fprintf(stderr, "%s is missing: run scripts/deps.sh test (npm ci in tests/js)\n", mod);
        return 1;
    }
    if (!io_uring_works()) {
        fprintf(stderr, "io_uring is unavailable: skipped\n");
        return 77;
    }
    snprintf(tmp, sizeof(tmp), "/tmp/cg-webhook-XXXXXX");
    if (!mkdtemp(tmp))
        return 1;
    signal(SIGPIPE, SIG_IGN);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    int rc = 1;
    if (receiver_start(&rx[0], 0, SECRET) == 0 && receiver_start(&rx[1], 1, SECRET_PREV) == 0) {
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_delivered_in_order_and_verified),
            cmocka_unit_test(test_retries_keep_the_id),
            cmocka_unit_test(test_gone_fails_at_once),
            cmocka_unit_test(test_gives_up_after_max_attempts),
            cmocka_unit_test(test_bad_receivers_do_not_delay_others),
            cmocka_unit_test(test_durable_across_restart),
            cmocka_unit_test(test_big_response_is_capped),
            cmocka_unit_test(test_guard_refusal),
            cmocka_unit_test(test_rotation_both_secrets_verify),
            cmocka_unit_test(test_enqueue_refusals),
        };
        rc = cmocka_run_group_tests(tests, NULL, NULL);
    } else {
        fprintf(stderr, "a node receiver did not start\n");
    }
    receiver_stop(&rx[0]);
    receiver_stop(&rx[1]);
    curl_global_cleanup();
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", tmp);
    if (system(cmd) != 0 && rc == 0)
        rc = 1;
    return rc;
}
