/* webhook — see webhook.h. The HTTP request is webhook_attempt.c's, the SQL webhook_outbox.c's;
 * this file keeps the queues: per job (order), per host (limit), by due time (the heap). */
#include "webhook/webhook.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "webhook/webhook_internal.h"

#define container_of(p, type, member) ((type *)((char *)(p)-offsetof(type, member)))

void webhook_config_defaults(struct webhook_config *c)
{
    memset(c, 0, sizeof(*c));
    c->max_attempts = 8;
    c->retry_base_ms = 1000;
    c->retry_max_ms = 3600000;
    c->timeout_ms = 10000;
    c->max_inflight = 64;
    c->max_inflight_per_host = 16;
    c->max_pending = 10000;
    c->max_recent = 10000;
    c->max_response = 64 * 1024;
    c->max_payload = 256 * 1024;
}

const char *wh_status_name(enum wh_status s)
{
    switch (s) {
    case WH_PENDING:
        return "pending";
    case WH_DELIVERED:
        return "delivered";
    case WH_FAILED:
        return "failed";
    }
    return "pending";
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint64_t next_rand(struct webhooks *w)
{
    uint64_t z = (w->rng += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* --- jobs: every delivery in memory, and the pending ones in order ------------------------ */

static struct wh_job *job_get(struct webhooks *w, const char *id, bool create)
{
    struct wh_map_node *n = wh_map_get(&w->jobs, id);
    if (n || !create)
        return (struct wh_job *)n;
    size_t len = strlen(id);
    struct wh_job *j = calloc(1, sizeof(*j) + len + 1);
    if (!j)
        return NULL;
    memcpy(j->id, id, len + 1);
    j->node.key = j->id;
    wh_map_put(&w->jobs, &j->node);
    return j;
}

static void job_append(struct wh_job *j, struct wh_delivery *d)
{
    d->job = j;
    d->jprev = j->last;
    if (j->last)
        j->last->jnext = d;
    else
        j->first = d;
    j->last = d;
    if (d->status != WH_PENDING)
        return;
    if (j->qtail)
        j->qtail->qnext = d;
    else
        j->qhead = d;
    j->qtail = d;
}

static void job_dequeue(struct wh_job *j, struct wh_delivery *d)
{
    struct wh_delivery **p = &j->qhead, *prev = NULL;
    while (*p && *p != d) {
        prev = *p;
        p = &(*p)->qnext;
    }
    if (!*p)
        return;
    *p = d->qnext;
    if (j->qtail == d)
        j->qtail = prev;
    d->qnext = NULL;
}

static void delivery_free(struct wh_delivery *d)
{
    free(d->url);
    free(d->origin);
    free(d->payload);
    free(d);
}

/* Takes d out of its job (freeing the job when it was the last) and frees it. */
static void delivery_drop(struct webhooks *w, struct wh_delivery *d)
{
    struct wh_job *j = d->job;
    job_dequeue(j, d);
    if (d->jprev)
        d->jprev->jnext = d->jnext;
    else
        j->first = d->jnext;
    if (d->jnext)
        d->jnext->jprev = d->jprev;
    else
        j->last = d->jprev;
    if (!j->first) {
        wh_map_del(&w->jobs, &j->node);
        free(j);
    }
    delivery_free(d);
}

/* Finished deliveries are remembered, oldest evicted first, up to max_recent. */
static void finished_push(struct webhooks *w, struct wh_delivery *d)
{
    free(d->payload); /* the row keeps it; nothing will send it again */
    d->payload = NULL;
    d->fprev = w->ftail;
    d->fnext = NULL;
    if (w->ftail)
        w->ftail->fnext = d;
    else
        w->fhead = d;
    w->ftail = d;
    w->nfinished++;
    while (w->nfinished > w->cfg.max_recent) {
        struct wh_delivery *old = w->fhead;
        w->fhead = old->fnext;
        if (w->fhead)
            w->fhead->fprev = NULL;
        else
            w->ftail = NULL;
        w->nfinished--;
        delivery_drop(w, old);
    }
}

/* --- scheduling ---------------------------------------------------------------------------- */

static void arm_timer(struct webhooks *w)
{
    struct wh_heap_node *top = wh_heap_top(&w->heap);
    if (w->stopping || !top || w->ninflight >= w->cfg.max_inflight) {
        ring_timer_cancel(w->ring, &w->timer);
        return;
    }
    uint64_t now = ring_clock_ns();
    uint64_t after = top->due_ns > now ? (top->due_ns - now + 999999) / 1000000 : 0;
    ring_timer_arm(w->ring, &w->timer, after);
}

/* d goes into the heap when it is the next of its job to send and nothing is under way. */
static void make_ready(struct webhooks *w, struct wh_delivery *d)
{
    if (w->stopping || !d || d != d->job->qhead || !d->committed || d->saving || d->inflight ||
        d->due.idx || d->status != WH_PENDING)
        return;
    if (wh_heap_push(&w->heap, &d->due) == 0) /* cannot be full: it holds pending ones only */
        arm_timer(w);
}

static struct wh_host *host_get(struct webhooks *w, const char *origin)
{
    struct wh_map_node *n = wh_map_get(&w->hosts, origin);
    if (n)
        return (struct wh_host *)n;
    size_t len = strlen(origin);
    struct wh_host *h = calloc(1, sizeof(*h) + len + 1);
    if (!h)
        return NULL;
    memcpy(h->origin, origin, len + 1);
    h->node.key = h->origin;
    wh_map_put(&w->hosts, &h->node);
    return h;
}

static void host_put(struct webhooks *w, struct wh_host *h)
{
    if (h && !h->inflight && !h->released && !h->phead) {
        wh_map_del(&w->hosts, &h->node);
        free(h);
    }
}

/* An attempt to h ended: let parked deliveries back into the heap, as many as there is room
 * for (counting those already let back and not yet started). */
static void host_done(struct webhooks *w, struct wh_host *h)
{
    h->inflight--;
    while (h->phead && h->inflight + h->released < w->cfg.max_inflight_per_host) {
        struct wh_delivery *p = h->phead;
        h->phead = p->pnext;
        if (!h->phead)
            h->ptail = NULL;
        p->pnext = NULL;
        p->released = true;
        h->released++;
        wh_heap_push(&w->heap, &p->due);
    }
    host_put(w, h);
}

static void settle(struct webhooks *w, struct wh_delivery *d, const struct wh_outcome *o);
static void attempt_done(struct wh_delivery *d, const struct wh_outcome *o);

static void dispatch(struct webhooks *w, struct wh_delivery *d)
{
    struct wh_host *h = d->host ? d->host : host_get(w, d->origin);
    if (d->released) {
        d->released = false;
        h->released--;
    }
    /* A quarter of the slots is kept for receivers with nothing under way: however many
     * receivers hang, each up to its own cap, a healthy one still gets a slot at once. */
    unsigned busy_cap = w->cfg.max_inflight - w->cfg.max_inflight / 4;
    if (h && (h->inflight >= w->cfg.max_inflight_per_host ||
              (h->inflight > 0 && w->ninflight >= busy_cap))) {
        d->host = h; /* parked until one of the host's attempts ends */
        if (h->ptail)
            h->ptail->pnext = d;
        else
            h->phead = d;
        h->ptail = d;
        return;
    }
    d->host = NULL;
    d->att_ms = wall_ms();
    struct wh_outcome o;
    if (wh_attempt_start(w, d, &o, attempt_done) < 0) {
        host_put(w, h);
        settle(w, d, &o);
        return;
    }
    d->host = h;
    d->inflight = true;
    w->ninflight++;
    if (h)
        h->inflight++;
}

static void timer_cb(struct ring_timer *t)
{
    struct webhooks *w = container_of(t, struct webhooks, timer);
    uint64_t now = ring_clock_ns();
    while (!w->stopping && w->ninflight < w->cfg.max_inflight) {
        struct wh_heap_node *top = wh_heap_top(&w->heap);
        if (!top || top->due_ns > now)
            break;
        wh_heap_remove(&w->heap, top);
        dispatch(w, container_of(top, struct wh_delivery, due));
    }
    arm_timer(w);
}

/* --- outcomes ------------------------------------------------------------------------------ */

static void after_save(struct webhooks *w, struct wh_delivery *d)
{
    if (d->status == WH_PENDING) {
        make_ready(w, d);
        return;
    }
    struct wh_job *j = d->job;
    job_dequeue(j, d);
    w->npending--;
    struct wh_delivery *next = j->qhead; /* before d may be evicted, and j with it */
    finished_push(w, d);
    make_ready(w, next);
}

static void save_done(struct store_req *r)
{
    struct wh_delivery *d = (struct wh_delivery *)r;
    d->saving = false;
    d->w->nsaving--;
    if (d->taken_over && d->status == WH_PENDING) { /* it is another instance's to send now */
        d->status = WH_FAILED;
        snprintf(d->last_error, sizeof(d->last_error), "taken over by another instance");
    }
    /* A failed write leaves the row behind memory: after a restart the event may be sent once
     * more, under the same webhook-id, which receivers de-duplicate on. */
    after_save(d->w, d);
}

static void retry_later(struct webhooks *w, struct wh_delivery *d, const struct wh_outcome *o)
{
    uint64_t delay = o->has_retry_after
                         ? o->retry_after_ms
                         : webhook_backoff_ms(w->cfg.retry_base_ms, w->cfg.retry_max_ms,
                                              d->attempts, next_rand(w));
    d->next_ms = d->updated_ms + (int64_t)delay;
    d->due.due_ns = ring_clock_ns() + delay * 1000000ull;
    w->retried++;
}

static void settle(struct webhooks *w, struct wh_delivery *d, const struct wh_outcome *o)
{
    d->attempts++;
    d->last_status = o->status;
    d->updated_ms = wall_ms();
    d->write_attempt = true;
    snprintf(d->last_error, sizeof(d->last_error), "%s", o->error);
    if (o->verdict == WEBHOOK_V_DELIVERED) {
        d->status = WH_DELIVERED;
        d->delivered_ms = d->updated_ms;
        w->delivered++;
    } else if (o->verdict == WEBHOOK_V_REJECTED) {
        d->status = WH_FAILED;
        w->failed++;
        w->refused += strncmp(o->error, "refused by the URL guard", 24) == 0;
    } else if (d->attempts >= w->cfg.max_attempts) {
        d->status = WH_FAILED;
        snprintf(d->last_error, sizeof(d->last_error), "gave up after %u attempts: %.200s",
                 d->attempts, o->error);
        w->failed++;
    } else {
        retry_later(w, d, o);
    }
    if (wh_outbox_update(w, d, save_done) < 0)
        after_save(w, d); /* the store is full: carry on from memory (see save_done) */
}

static void attempt_done(struct wh_delivery *d, const struct wh_outcome *o)
{
    struct webhooks *w = d->w;
    d->inflight = false;
    w->ninflight--;
    struct wh_host *h = d->host;
    d->host = NULL;
    if (h)
        host_done(w, h);
    settle(w, d, o);
    arm_timer(w);
}

/* --- enqueue ------------------------------------------------------------------------------- */

static void insert_done(struct store_req *r)
{
    struct wh_delivery *d = (struct wh_delivery *)r;
    struct webhooks *w = d->w;
    d->saving = false;
    w->nsaving--;
    webhook_ack_cb ack = d->ack;
    void *ctx = d->ack_ctx;
    d->ack = NULL;
    if (r->rc != SQLITE_OK) {
        char id[WEBHOOK_ID_SIZE];
        memcpy(id, d->id, sizeof(id));
        struct wh_job *j = d->job;
        bool last = j->first == d && j->last == d;
        w->npending--;
        delivery_drop(w, d);
        if (!last)
            make_ready(w, j->qhead); /* a later event may have been waiting behind this one */
        if (ack)
            ack(ctx, id, -EIO);
        return;
    }
    d->committed = true;
    if (d->duplicate) { /* the event was stored before (and is or was sent from that row) */
        char id[WEBHOOK_ID_SIZE];
        memcpy(id, d->id, sizeof(id));
        struct wh_job *j = d->job;
        bool last = j->first == d && j->last == d;
        w->npending--;
        delivery_drop(w, d);
        if (!last)
            make_ready(w, j->qhead);
        if (ack)
            ack(ctx, id, 0);
        return;
    }
    if (ack)
        ack(ctx, d->id, 0);
    make_ready(w, d);
}

/* Event types are "a.b" names of [A-Za-z0-9_.] (the spec's advice), never empty. */
static bool type_ok(const char *t)
{
    size_t n = strlen(t);
    if (n == 0 || n >= WH_EVENT_SIZE)
        return false;
    for (const char *p = t; *p; p++) {
        if (!(*p == '.' || *p == '_' || (*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z') ||
              (*p >= 'A' && *p <= 'Z')))
            return false;
    }
    return true;
}

static char *build_payload(const char *type, int64_t now_ms, json_t *data, size_t *len)
{
    char ts[32];
    webhook_rfc3339(now_ms, ts);
    json_t *p = json_object();
    json_object_set_new(p, "type", json_string(type));
    json_object_set_new(p, "timestamp", json_string(ts));
    json_object_set_new(p, "data", data ? json_incref(data) : json_object());
    char *s = json_dumps(p, JSON_COMPACT);
    json_decref(p);
    *len = s ? strlen(s) : 0;
    return s;
}

static int delivery_new(struct webhooks *w, struct wh_delivery **out, const char *url,
                        const char *type, json_t *data)
{
    char err[128];
    struct wh_delivery *d = calloc(1, sizeof(*d));
    if (!d)
        return -ENOMEM;
    *out = d;
    d->w = w;
    d->created_ms = d->updated_ms = d->next_ms = wall_ms();
    d->due.due_ns = ring_clock_ns();
    snprintf(d->event, sizeof(d->event), "%s", type);
    d->url = strdup(url);
    d->origin = wh_origin(url, err, sizeof(err));
    if (!d->origin)
        return -EINVAL;
    d->payload = build_payload(type, d->created_ms, data, &d->payload_len);
    if (!d->url || !d->payload)
        return -ENOMEM;
    if (d->payload_len > w->cfg.max_payload)
        return -EMSGSIZE;
    return webhook_msg_id(d->id);
}

static int enqueue(struct webhooks *w, const char *job_id, const char *url, const char *type,
                   json_t *data, const char *once_id, webhook_ack_cb ack, void *ctx);

int webhook_enqueue_ack(struct webhooks *w, const char *job_id, const char *url, const char *type,
                        json_t *data, webhook_ack_cb ack, void *ctx)
{
    return enqueue(w, job_id, url, type, data, NULL, ack, ctx);
}

int webhook_enqueue_once(struct webhooks *w, const char *job_id, const char *key, const char *url,
                         const char *type, json_t *data)
{
    char id[WEBHOOK_ID_SIZE];
    webhook_msg_id_for(job_id, key, id);
    return enqueue(w, job_id, url, type, data, id, NULL, NULL);
}

static int enqueue(struct webhooks *w, const char *job_id, const char *url, const char *type,
                   json_t *data, const char *once_id, webhook_ack_cb ack, void *ctx)
{
    if (w->stopping)
        return -ESHUTDOWN;
    char err[128];
    if (!job_id || !job_id[0] || strlen(job_id) > 256 || !url ||
        webhook_url_check(url, err, sizeof(err)) < 0 || !type || !type_ok(type))
        return -EINVAL;
    if (w->npending + w->adopt_reserved >= w->cfg.max_pending)
        return -ENOSPC;
    struct wh_delivery *d = NULL;
    int rc = delivery_new(w, &d, url, type, data);
    struct wh_job *j = rc == 0 ? job_get(w, job_id, true) : NULL;
    if (rc == 0 && !j)
        rc = -ENOMEM;
    if (rc < 0) {
        if (d)
            delivery_free(d);
        return rc;
    }
    d->ack = ack;
    d->ack_ctx = ctx;
    if (once_id) {
        memcpy(d->id, once_id, WEBHOOK_ID_SIZE);
        d->once = true;
    }
    job_append(j, d);
    w->npending++;
    if (wh_outbox_insert(w, d, insert_done) < 0) {
        w->npending--;
        delivery_drop(w, d);
        return -EAGAIN;
    }
    return 0;
}

int webhook_enqueue(struct webhooks *w, const char *job_id, const char *url, const char *type,
                    json_t *data)
{
    return webhook_enqueue_ack(w, job_id, url, type, data, NULL, NULL);
}

/* --- start-up ------------------------------------------------------------------------------ */

static const char *row_str(json_t *row, const char *k)
{
    const char *s = json_string_value(json_object_get(row, k));
    return s ? s : "";
}

static int64_t row_int(json_t *row, const char *k)
{
    return json_integer_value(json_object_get(row, k));
}

static enum wh_status status_parse(const char *s)
{
    if (strcmp(s, "delivered") == 0)
        return WH_DELIVERED;
    return strcmp(s, "failed") == 0 ? WH_FAILED : WH_PENDING;
}

/* One row read back at start: pending ones are due at their next_attempt_at (or now). */
static int delivery_load(struct webhooks *w, json_t *row, int64_t now_ms)
{
    struct wh_delivery *d = calloc(1, sizeof(*d));
    if (!d)
        return -ENOMEM;
    char err[128];
    d->w = w;
    d->committed = true;
    snprintf(d->id, sizeof(d->id), "%s", row_str(row, "msg_id"));
    snprintf(d->event, sizeof(d->event), "%s", row_str(row, "event"));
    snprintf(d->last_error, sizeof(d->last_error), "%s", row_str(row, "last_error"));
    d->status = status_parse(row_str(row, "status"));
    d->attempts = (unsigned)row_int(row, "attempts");
    d->last_status = (long)row_int(row, "last_status");
    d->next_ms = row_int(row, "next_attempt_at");
    d->delivered_ms = row_int(row, "delivered_at");
    d->created_ms = row_int(row, "created_at");
    d->updated_ms = row_int(row, "updated_at");
    d->url = strdup(row_str(row, "url"));
    d->origin = wh_origin(d->url ? d->url : "", err, sizeof(err));
    if (!d->origin) /* not for a row we wrote; curl will refuse it and the delivery fail */
        d->origin = strdup("invalid:");
    if (d->status == WH_PENDING) {
        const char *p = row_str(row, "payload");
        d->payload_len = strlen(p);
        d->payload = strdup(p);
        int64_t wait = d->next_ms > now_ms ? d->next_ms - now_ms : 0;
        d->due.due_ns = ring_clock_ns() + (uint64_t)wait * 1000000ull;
    }
    struct wh_job *j = job_get(w, row_str(row, "job_id"), true);
    if (!d->url || !d->origin || !j || (d->status == WH_PENDING && !d->payload)) {
        delivery_free(d);
        return -ENOMEM;
    }
    job_append(j, d);
    if (d->status == WH_PENDING)
        w->npending++;
    else
        finished_push(w, d);
    return 0;
}

static int load(struct webhooks *w, char *err, size_t errlen)
{
    json_t *rows = wh_outbox_load(w->store, w->cfg.max_pending, w->cfg.max_recent,
                                  w->cfg.instance, wall_ms());
    if (!rows) {
        snprintf(err, errlen, "cannot read webhook deliveries from the store");
        return -EIO;
    }
    int64_t now = wall_ms();
    size_t i;
    json_t *row;
    int rc = 0;
    json_array_foreach(rows, i, row)
    {
        if (rc == 0)
            rc = delivery_load(w, row, now);
    }
    json_decref(rows);
    if (rc < 0) {
        snprintf(err, errlen, "out of memory reading webhook deliveries");
        return rc;
    }
    for (size_t b = 0; b <= w->jobs.mask; b++) {
        for (struct wh_map_node *n = w->jobs.buckets[b]; n; n = n->next)
            make_ready(w, ((struct wh_job *)n)->qhead);
    }
    return 0;
}

static int config_check(struct webhooks *w, const struct webhook_config *c, char *err,
                        size_t errlen)
{
    if (webhook_secret_parse(&w->secret, c->secret ? c->secret : "", "WEBHOOK_SECRET", err,
                             errlen) < 0)
        return -EINVAL;
    if (c->secret_previous && c->secret_previous[0] &&
        webhook_secret_parse(&w->secret_prev, c->secret_previous, "WEBHOOK_SECRET_PREVIOUS", err,
                             errlen) < 0)
        return -EINVAL;
    if (!c->max_attempts || !c->retry_base_ms || c->retry_max_ms < c->retry_base_ms ||
        !c->timeout_ms || !c->max_inflight || !c->max_pending || !c->max_payload) {
        snprintf(err, errlen,
                 "webhook settings out of range (attempts, retry, timeout, "
                 "in-flight and pending limits must be positive; RETRY_MAX >= RETRY_BASE)");
        return -EINVAL;
    }
    return 0;
}

static int setup(struct webhooks *w, struct ring *r, struct ring_curl *rc, struct store *st,
                 const struct webhook_config *cfg, char *err, size_t errlen)
{
    w->ring = r;
    w->store = st;
    w->cfg = *cfg;
    if (!w->cfg.max_inflight_per_host || w->cfg.max_inflight_per_host > w->cfg.max_inflight)
        w->cfg.max_inflight_per_host = w->cfg.max_inflight;
    w->cfg.secret = w->cfg.secret_previous = NULL; /* parsed; the caller's strings may go */
    w->timer.cb = timer_cb;
    if (getrandom(&w->rng, sizeof(w->rng), GRND_NONBLOCK) != (ssize_t)sizeof(w->rng))
        w->rng = ring_clock_ns(); /* jitter only needs to differ between processes */
    if (wh_map_init(&w->jobs, cfg->max_pending + cfg->max_recent) < 0 ||
        wh_map_init(&w->hosts, (size_t)cfg->max_inflight * 4) < 0 ||
        wh_heap_init(&w->heap, cfg->max_pending) < 0) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    w->rc = rc;
    if (!rc) {
        if (ring_curl_init(&w->own_rc, r) < 0) {
            snprintf(err, errlen, "cannot create a curl multi handle");
            return -ENOMEM;
        }
        w->rc = &w->own_rc;
        w->owns_rc = true;
    }
    return load(w, err, errlen);
}

int webhook_new(struct webhooks **out, struct ring *r, struct ring_curl *rc, struct store *st,
                const struct webhook_config *cfg, char *err, size_t errlen)
{
    *out = NULL;
    struct webhooks *w = calloc(1, sizeof(*w));
    if (!w) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    int e = config_check(w, cfg, err, errlen);
    if (e == 0)
        e = setup(w, r, rc, st, cfg, err, errlen);
    if (e < 0) {
        webhook_free(w);
        return e;
    }
    *out = w;
    return 0;
}

/* --- shutdown ------------------------------------------------------------------------------ */

static int seq_cmp(const void *a, const void *b)
{
    json_int_t x = json_integer_value(json_object_get(*(json_t *const *)a, "seq"));
    json_int_t y = json_integer_value(json_object_get(*(json_t *const *)b, "seq"));
    return x < y ? -1 : x > y;
}

static void adopt_done(struct store_req *r)
{
    struct wh_adopt *a = (struct wh_adopt *)r;
    struct webhooks *w = a->w;
    w->adopting = false;
    w->adopt_reserved = 0;
    /* rolled back (or read only in part): none of them is ours */
    size_t n = r->rc == SQLITE_OK ? json_array_size(a->rows) : 0;
    json_t **rows = n ? calloc(n, sizeof(*rows)) : NULL;
    for (size_t i = 0; rows && i < n; i++)
        rows[i] = json_array_get(a->rows, i);
    if (rows) /* a job's deliveries must go in the order they were made */
        qsort(rows, n, sizeof(*rows), seq_cmp);
    int64_t now = wall_ms();
    for (size_t i = 0; rows && i < n; i++) {
        if (delivery_load(w, rows[i], now) == 0)
            w->adopted++;
    }
    for (size_t i = 0; rows && i < n; i++) {
        struct wh_job *j = job_get(w, row_str(rows[i], "job_id"), false);
        if (j)
            make_ready(w, j->qhead);
    }
    free(rows);
    json_decref(a->rows);
    free(a);
}

void webhook_adopt(struct webhooks *w, int64_t dead_before_ms)
{
    if (!w || w->stopping || w->adopting || !w->cfg.instance || !w->cfg.instance[0] ||
        w->npending >= w->cfg.max_pending)
        return;
    struct wh_adopt *a = calloc(1, sizeof(*a));
    if (!a)
        return;
    a->w = w;
    a->rows = json_array();
    a->instance = w->cfg.instance;
    a->now_ms = wall_ms();
    a->dead_before = dead_before_ms;
    /* a batch at a time, and never more than half the room: new events keep theirs */
    size_t room = w->cfg.max_pending - w->npending;
    a->max = room / 2 < 256 ? room / 2 : 256;
    if (!a->max) {
        json_decref(a->rows);
        free(a);
        return;
    }
    w->adopt_reserved = a->max;
    if (!a->rows || wh_outbox_adopt(w, a, adopt_done) < 0) {
        json_decref(a->rows);
        free(a);
        return;
    }
    w->adopting = true;
}

void webhook_stop(struct webhooks *w)
{
    w->stopping = true;
    ring_timer_cancel(w->ring, &w->timer);
}

bool webhook_idle(const struct webhooks *w)
{
    return w->ninflight == 0 && w->nsaving == 0 && !w->adopting;
}

static void job_free(struct webhooks *w, struct wh_job *j)
{
    struct wh_delivery *d = j->first;
    while (d) {
        struct wh_delivery *n = d->jnext;
        if (d->att)
            wh_attempt_cancel(w, d);
        if (d->saving) /* past a hard stop: the store still holds it, so it is left behind */
            d->job = NULL;
        else
            delivery_free(d);
        d = n;
    }
    free(j);
}

void webhook_free(struct webhooks *w)
{
    if (!w)
        return;
    if (w->ring)
        ring_timer_cancel(w->ring, &w->timer);
    for (size_t b = 0; w->jobs.buckets && b <= w->jobs.mask; b++) {
        struct wh_map_node *n = w->jobs.buckets[b];
        while (n) {
            struct wh_map_node *next = n->next;
            job_free(w, (struct wh_job *)n);
            n = next;
        }
    }
    for (size_t b = 0; w->hosts.buckets && b <= w->hosts.mask; b++) {
        struct wh_map_node *n = w->hosts.buckets[b];
        while (n) {
            struct wh_map_node *next = n->next;
            free(n);
            n = next;
        }
    }
    if (w->owns_rc)
        ring_curl_fini(&w->own_rc);
    wh_map_fini(&w->jobs);
    wh_map_fini(&w->hosts);
    wh_heap_fini(&w->heap);
    free(w);
}

/* --- reading ------------------------------------------------------------------------------- */

/* Text that may come from outside (a guard's reason): JSON needs it to be UTF-8. */
static json_t *text_or_null(const char *s)
{
    if (!s || !s[0])
        return json_null();
    json_t *v = json_string(s);
    return v ? v : json_string("(not UTF-8)");
}

static json_t *time_or_null(int64_t ms)
{
    char ts[32];
    if (!ms)
        return json_null();
    webhook_rfc3339(ms, ts);
    return json_string(ts);
}

static json_t *delivery_json(const struct wh_delivery *d)
{
    json_t *o = json_object();
    json_object_set_new(o, "id", json_string(d->id));
    json_object_set_new(o, "event", json_string(d->event));
    json_object_set_new(o, "url", text_or_null(d->url));
    json_object_set_new(o, "status", json_string(wh_status_name(d->status)));
    json_object_set_new(o, "attempts", json_integer(d->attempts));
    json_object_set_new(o, "last_status",
                        d->last_status ? json_integer(d->last_status) : json_null());
    json_object_set_new(o, "last_error", text_or_null(d->last_error));
    json_object_set_new(o, "next_attempt_at",
                        time_or_null(d->status == WH_PENDING ? d->next_ms : 0));
    json_object_set_new(o, "delivered_at", time_or_null(d->delivered_ms));
    json_object_set_new(o, "created_at", time_or_null(d->created_ms));
    return o;
}

json_t *webhook_job_deliveries(struct webhooks *w, const char *job_id)
{
    json_t *a = json_array();
    struct wh_job *j = job_get(w, job_id, false);
    for (struct wh_delivery *d = j ? j->first : NULL; d; d = d->jnext)
        json_array_append_new(a, delivery_json(d));
    return a;
}

void webhook_get_stats(const struct webhooks *w, struct webhook_stats *s)
{
    s->pending = w->npending;
    s->inflight = w->ninflight;
    s->writing = w->nsaving;
    s->delivered = w->delivered;
    s->failed = w->failed;
    s->retried = w->retried;
    s->refused = w->refused;
}
