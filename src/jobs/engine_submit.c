/* engine_submit — accepting jobs: POST /jobs (a workflow and its inputs) and POST /prompt (a
 * raw ComfyUI graph): validation, idempotency keys, the result cache, queue bounds, and the
 * answer only once the job is durable. */
#include <bearssl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/uuid.h"
#include "jobs/engine_internal.h"
#include "jobs/job_store.h"
#include "jobs/prompt_req.h"
#include "net/urlguard.h"
#include "webhook/webhook.h"

static void submit_fail(engine_submit_cb cb, void *ctx, int status, const char *code,
                        json_t *errors, const char *fmt, const char *arg)
{
    struct engine_submit res;
    memset(&res, 0, sizeof(res));
    res.status = status;
    res.code = code;
    res.errors = errors;
    snprintf(res.message, sizeof(res.message), fmt, arg ? arg : "");
    cb(&res, ctx);
}

static struct job *job_new(struct engine *e, const char *owner, const struct workflow *w,
                           json_t *graph, json_t *inputs, json_t *body)
{
    struct job *j = calloc(1, sizeof(*j));
    if (!j)
        return NULL;
    j->engine = e;
    j->dirfd = -1;
    j->upload_ms = j->backend_queue_ms = j->execution_ms = j->fetch_ms = -1;
    uuid4(j->id);
    snprintf(j->owner, sizeof(j->owner), "%s", owner);
    snprintf(j->workflow_id, sizeof(j->workflow_id), "%s", w->id);
    j->workflow_version = w->version;
    snprintf(j->workflow_hash, sizeof(j->workflow_hash), "%s", w->hash);
    j->graph = graph;
    j->inputs = inputs;
    j->metadata = json_incref(json_object_get(body, "metadata"));
    j->priority = (int)json_integer_value(json_object_get(body, "priority"));
    j->seq = ++e->seq;
    j->status = JOB_QUEUED;
    j->created_ms = job_now_ms();
    j->nodes_total = (unsigned)json_object_size(graph);
    return j;
}

static int check_body(json_t *body, char *msg, size_t len)
{
    json_t *p = json_object_get(body, "priority");
    json_t *v = json_object_get(body, "workflowVersion");
    json_t *in = json_object_get(body, "inputs");
    json_t *md = json_object_get(body, "metadata");
    if (!json_is_object(body))
        snprintf(msg, len, "the body must be a JSON object");
    else if (!json_is_string(json_object_get(body, "workflowId")))
        snprintf(msg, len, "workflowId (string) is required");
    else if (p && (!json_is_integer(p) || json_integer_value(p) < -1000 ||
                   json_integer_value(p) > 1000))
        snprintf(msg, len, "priority must be an integer from -1000 to 1000");
    else if (v && !json_is_null(v) && (!json_is_integer(v) || json_integer_value(v) < 1 ||
                                       json_integer_value(v) > 1000000))
        snprintf(msg, len, "workflowVersion must be an integer from 1 to 1000000 (or absent: "
                 "the latest)");
    else if (in && !json_is_object(in))
        snprintf(msg, len, "inputs must be an object");
    else if (md && !json_is_object(md))
        snprintf(msg, len, "metadata must be an object");
    else if (json_object_get(body, "callbackUrl") &&
             !json_is_string(json_object_get(body, "callbackUrl")))
        snprintf(msg, len, "callbackUrl must be a string (an http or https URL)");
    else
        return 0;
    return -1;
}

static void sha256_hex(const char *s, size_t n, char out[65])
{
    br_sha256_context c;
    unsigned char d[32];
    br_sha256_init(&c);
    br_sha256_update(&c, s, n);
    br_sha256_out(&c, d);
    for (int i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", d[i]);
}

/* SHA-256 of canonical JSON (sorted keys, compact): equal documents, equal hashes. */
static void json_sha256(const json_t *v, char out[65])
{
    char *t = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
    sha256_hex(t ? t : "", t ? strlen(t) : 0, out);
    free(t);
}

/* Cache key: workflow id + version hash + canonical inputs and params (+ tenant unless
 * CACHE_SHARED). */
static void cache_key(const struct engine *e, const char *owner, const struct workflow *w,
                      const json_t *inputs, const json_t *params, char out[65])
{
    json_t *k = json_pack("{s:s, s:s, s:O, s:O, s:s}", "w", w->id, "h", w->hash, "i", inputs,
                          "p", params ? params : json_null(), "o",
                          e->cfg.cache_shared ? "" : owner);
    json_sha256(k, out);
    json_decref(k);
}

static void answer_job(engine_submit_cb cb, void *ctx, struct engine *e, struct job *j, int status,
                       bool replayed, bool hit)
{
    struct engine_submit res;
    memset(&res, 0, sizeof(res));
    res.status = status;
    res.job = j;
    res.queue_position = engine_queue_position(e, j);
    res.replayed = replayed;
    res.cache_hit = hit;
    cb(&res, ctx);
}

/* A repeat's answer about a job whose end is not durable yet: given once it is. */
struct replay_wait {
    struct engine *e;
    engine_submit_cb cb;
    void *ctx;
};

static void replay_durable(struct job *j, long pos, void *ctx)
{
    (void)pos;
    struct replay_wait *w = ctx;
    if (j)
        answer_job(w->cb, w->ctx, w->e, j, j->cache_hit ? 200 : 202, true, j->cache_hit);
    else
        submit_fail(w->cb, w->ctx, 409, "IDEMPOTENCY_CONFLICT", NULL, "%s",
                    "the job of this key is gone");
    free(w);
}

/* An idempotent repeat: same key and body → the same job; another body → 422; the first
 * request still being stored → 409 (retry shortly). Returns true when it answered. */
static bool idem_check(struct engine *e, const char *key, const char *hash, engine_submit_cb cb,
                       void *ctx)
{
    struct keymap_entry *ent = keymap_get(&e->idem, key, job_now_ms());
    if (!ent)
        return false;
    struct job *j = jobtable_get(&e->jt, ent->job_id);
    if (strcmp(ent->hash, hash) != 0)
        submit_fail(cb, ctx, 422, "IDEMPOTENCY_KEY_REUSE", NULL,
                    "%sthis idempotency key was used with a different request body", "");
    else if (!j)
        submit_fail(cb, ctx, 409, "IDEMPOTENCY_CONFLICT", NULL, "%s", "the job of this key is gone");
    else if (!j->durable && j->persisting)
        submit_fail(cb, ctx, 409, "IDEMPOTENCY_IN_PROGRESS", NULL, "%s",
                    "a request with this idempotency key is still being processed");
    else {
        struct replay_wait *w = malloc(sizeof(*w));
        if (w)
            *w = (struct replay_wait){e, cb, ctx};
        if (w)
            engine_wait_end(e, j, replay_durable, w, true); /* at once when durable already */
        else
            answer_job(cb, ctx, e, j, j->cache_hit ? 200 : 202, true, j->cache_hit);
    }
    return true;
}

/* A finished job with the same cache key → a new job that shares its outputs. */
static struct job *cache_share(struct job *nj, const struct job *orig)
{
    if (!orig || orig->status != JOB_SUCCEEDED || !orig->noutputs)
        return NULL;
    nj->outputs = malloc(orig->noutputs * sizeof(*nj->outputs));
    if (!nj->outputs)
        return NULL;
    memcpy(nj->outputs, orig->outputs, orig->noutputs * sizeof(*nj->outputs));
    nj->noutputs = nj->outputs_cap = orig->noutputs;
    snprintf(nj->cache_of, sizeof(nj->cache_of), "%s", orig->cache_of[0] ? orig->cache_of : orig->id);
    nj->cache_hit = true;
    nj->status = JOB_SUCCEEDED;
    nj->started_ms = nj->finished_ms = job_now_ms();
    nj->nodes_done = nj->nodes_total;
    json_decref(nj->graph); /* it never runs; a raw graph's answer shows the graph that ran */
    nj->graph = nj->kind == JOB_KIND_PROMPT && orig->graph ? json_deep_copy(orig->graph) : NULL;
    job_log(nj, "info", "cache hit: outputs of job %s", nj->cache_of);
    return nj;
}

static struct job *cache_hit(struct engine *e, struct job *nj)
{
    struct keymap_entry *ent = keymap_get(&e->cache, nj->cache_key, job_now_ms());
    return cache_share(nj, ent ? jobtable_get(&e->jt, ent->job_id) : NULL);
}

/* callbackUrl (or webhook_v2) and webhookEvents: 0, or -1 with the status, code and message
 * of the refusal. */
struct hook_req {
    const char *url;
    unsigned mask;
    int status;
    const char *code;
    char msg[400];
};

static int check_hook(const struct engine *e, const char *url, const json_t *events,
                      struct hook_req *h)
{
    h->url = url;
    h->status = 400;
    h->code = "VALIDATION_ERROR";
    if (webhook_filter_parse(events, &h->mask, h->msg, sizeof(h->msg)) < 0)
        return -1;
    if (!url)
        return events ? (snprintf(h->msg, sizeof(h->msg), "webhookEvents needs a callbackUrl"), -1)
                      : 0;
    if (!e->cfg.webhooks) {
        snprintf(h->msg, sizeof(h->msg), "webhooks are off on this gateway (no WEBHOOK_SECRET)");
        return -1;
    }
    if (webhook_url_check(url, h->msg, sizeof(h->msg)) < 0)
        return -1;
    struct urlguard_url u;
    if (e->cfg.webhook_guard &&
        urlguard_precheck(e->cfg.webhook_guard, url, &u, h->msg, sizeof(h->msg)) != URLGUARD_OK) {
        h->code = "SSRF_BLOCKED";
        return -1;
    }
    return 0;
}

static void hook_set(struct job *j, const struct hook_req *h)
{
    j->callback_url = h->url ? strdup(h->url) : NULL;
    j->wh_mask = h->mask;
}

static void blobs_free(struct job_blob *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(b[i].data);
    free(b);
}

static void accept_job(struct engine *e, struct job *j, const char *ikey, const char *body_hash,
                       struct job_blob *blobs, size_t nblobs, engine_submit_cb cb, void *ctx);
static void submit_end(struct engine *e, struct job *j, const char *ikey, const char *body_hash,
                       struct job_blob *blobs, size_t nblobs, engine_submit_cb cb, void *ctx);

/* MAX_QUEUE / MAX_QUEUE_PER_TENANT: this instance's queue, or with a shared store the counts
 * of the store's queue at the last poll (a fraction of a second old). */
static bool queue_full(const struct engine *e, const char *owner)
{
    if (!e->cfg.shared)
        return e->jt.nqueued >= e->cfg.max_queue ||
               jobtable_queued_for(&e->jt, owner) >= e->cfg.max_queue_per_tenant;
    json_int_t all = json_integer_value(json_object_get(e->queued_counts, "*"));
    json_int_t mine = json_integer_value(json_object_get(e->queued_counts, owner));
    return (uint64_t)all >= e->cfg.max_queue || (uint64_t)mine >= e->cfg.max_queue_per_tenant;
}

/* An Idempotency-Key (or metadata.requestId) seen before answers here; returns true then. */
static bool idem_first(struct engine *e, const char *owner, const char *key, const json_t *body,
                       char ikey[300], char body_hash[65], engine_submit_cb cb, void *ctx)
{
    if (!key)
        key = json_string_value(json_object_get(json_object_get(body, "metadata"), "requestId"));
    if (!key)
        return false;
    snprintf(ikey, 300, "%s\x1f%s", owner, key);
    json_sha256(body, body_hash);
    /* with a shared store the key is the store's: looked up after rendering (submit_end) */
    return !e->cfg.shared && idem_check(e, ikey, body_hash, cb, ctx);
}

void engine_submit(struct engine *e, const char *owner, json_t *body, const char *idem_key,
                   engine_submit_cb cb, void *ctx)
{
    char msg[256], body_hash[65], ikey[300] = "";
    if (check_body(body, msg, sizeof(msg)) < 0)
        return submit_fail(cb, ctx, 400, "VALIDATION_ERROR", NULL, "%s", msg);
    if (idem_first(e, owner, idem_key, body, ikey, body_hash, cb, ctx))
        return;
    struct hook_req hook;
    if (check_hook(e, json_string_value(json_object_get(body, "callbackUrl")),
                   json_object_get(body, "webhookEvents"), &hook) < 0)
        return submit_fail(cb, ctx, hook.status, hook.code, NULL, "%s", hook.msg);
    const char *wid = json_string_value(json_object_get(body, "workflowId"));
    int ver = (int)json_integer_value(json_object_get(body, "workflowVersion"));
    const struct workflow *w = workflow_set_get(&e->wf, wid, ver);
    if (!w || (ver == 0 && w->deleted))
        return submit_fail(cb, ctx, 404, "WORKFLOW_NOT_FOUND", NULL, "no workflow %s", wid);
    json_t *inputs = json_object_get(body, "inputs");
    json_t *empty = inputs ? NULL : json_object();
    json_t *final_inputs = NULL, *errors = NULL;
    json_t *graph = workflow_render(w, inputs ? inputs : empty, &e->cfg.limits, &final_inputs,
                                    &errors);
    json_decref(empty);
    if (!graph)
        return submit_fail(cb, ctx, 400, "VALIDATION_ERROR", errors, "%sinvalid inputs", "");
    struct job *j = job_new(e, owner, w, graph, final_inputs, body);
    if (!j)
        return submit_fail(cb, ctx, 503, "UNAVAILABLE", NULL, "%sout of memory", "");
    cache_key(e, owner, w, final_inputs, json_object_get(body, "params"), j->cache_key);
    hook_set(j, &hook);
    submit_end(e, j, ikey, body_hash, NULL, 0, cb, ctx);
}

/* --- SHARED_STORE: idempotency keys and cache entries are the store's ------------------------ */

struct preflight {
    struct store_req req;
    struct engine *e;
    struct job *j;
    char ikey[300], body_hash[65];
    struct job_blob *blobs;
    size_t nblobs;
    engine_submit_cb cb;
    void *ctx;
    int64_t now;
    json_t *idem, *cache, *rows, *outputs;
};

static int preflight_work(struct store *s, struct store_req *r)
{
    struct preflight *p = (struct preflight *)r;
    sqlite3_stmt *st;
    if (p->ikey[0]) {
        st = store_stmt(s, "SELECT job_id, body_hash FROM idempotency_keys WHERE owner = ?1 AND"
                           " key = ?2 AND expires_at > ?3");
        if (!st)
            return SQLITE_ERROR;
        sqlite3_bind_text(st, 1, p->j->owner, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, p->ikey, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, p->now);
        if (store_rows_json(st, p->idem) != SQLITE_OK)
            return SQLITE_ERROR;
    }
    if (!json_array_size(p->idem) && p->j->cache_key[0] && p->e->cfg.cache_enabled) {
        st = store_stmt(s, "SELECT job_id FROM cache_entries WHERE key = ?1 AND expires_at > ?2");
        if (!st)
            return SQLITE_ERROR;
        sqlite3_bind_text(st, 1, p->j->cache_key, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, p->now);
        if (store_rows_json(st, p->cache) != SQLITE_OK)
            return SQLITE_ERROR;
    }
    json_t *hit = json_array_get(json_array_size(p->idem) ? p->idem : p->cache, 0);
    const char *id = json_string_value(json_object_get(hit, "job_id"));
    return id ? job_store_read(s, id, p->rows, p->outputs) : SQLITE_OK;
}

static void preflight_done(struct store_req *r)
{
    struct preflight *p = (struct preflight *)r;
    struct engine *e = p->e;
    struct job *other = r->rc == 0 && json_array_size(p->rows)
                            ? engine_job_from_row(e, json_array_get(p->rows, 0))
                            : NULL;
    if (other)
        engine_job_outputs(other, p->outputs);
    json_t *idem = json_array_get(p->idem, 0);
    const char *hash = json_string_value(json_object_get(idem, "body_hash"));
    if (r->rc != 0) {
        job_free(p->j);
        blobs_free(p->blobs, p->nblobs);
        submit_fail(p->cb, p->ctx, 503, "STORE_UNAVAILABLE", NULL, "%sthe store did not answer",
                    "");
    } else if (idem && hash && strcmp(hash, p->body_hash) != 0) {
        job_free(p->j);
        blobs_free(p->blobs, p->nblobs);
        submit_fail(p->cb, p->ctx, 422, "IDEMPOTENCY_KEY_REUSE", NULL,
                    "%sthis idempotency key was used with a different request body", "");
    } else if (idem && other) { /* the same request again: the job it made */
        job_free(p->j);
        blobs_free(p->blobs, p->nblobs);
        answer_job(p->cb, p->ctx, e, other, other->cache_hit ? 200 : 202, true,
                   other->cache_hit);
    } else {
        if (!idem && other) /* a finished job with the same cache key, on any instance */
            cache_share(p->j, other);
        accept_job(e, p->j, p->ikey, p->body_hash, p->blobs, p->nblobs, p->cb, p->ctx);
    }
    job_free(other);
    json_decref(p->idem);
    json_decref(p->cache);
    json_decref(p->rows);
    json_decref(p->outputs);
    e->reads--;
    free(p);
}

/* Shared store: the idempotency key and the cache are looked up in the store, then the job is
 * accepted (or the earlier one replayed). Takes j and blobs. */
static void preflight(struct engine *e, struct job *j, const char *ikey, const char *body_hash,
                      struct job_blob *blobs, size_t nblobs, engine_submit_cb cb, void *ctx)
{
    struct preflight *p = calloc(1, sizeof(*p));
    if (!p) {
        job_free(j);
        blobs_free(blobs, nblobs);
        return submit_fail(cb, ctx, 503, "UNAVAILABLE", NULL, "%sout of memory", "");
    }
    p->e = e;
    p->j = j;
    /* the key column holds "<owner>\x1f<key>", as the local map does */
    snprintf(p->ikey, sizeof(p->ikey), "%s", ikey);
    snprintf(p->body_hash, sizeof(p->body_hash), "%s", body_hash);
    p->blobs = blobs;
    p->nblobs = nblobs;
    p->cb = cb;
    p->ctx = ctx;
    p->now = job_now_ms();
    p->idem = json_array();
    p->cache = json_array();
    p->rows = json_array();
    p->outputs = json_array();
    p->req.work = preflight_work;
    p->req.done = preflight_done;
    p->req.origin = e->ring;
    e->reads++;
    if (store_submit(e->store, &p->req) < 0) {
        p->req.rc = -1;
        preflight_done(&p->req);
    }
}

/* Every submit ends here: with a shared store through the store's keys, else at once. */
static void submit_end(struct engine *e, struct job *j, const char *ikey, const char *body_hash,
                       struct job_blob *blobs, size_t nblobs, engine_submit_cb cb, void *ctx)
{
    if (e->cfg.shared && e->store)
        return preflight(e, j, ikey, body_hash, blobs, nblobs, cb, ctx);
    accept_job(e, j, ikey, body_hash, blobs, nblobs, cb, ctx);
}

/* The common end of every submit: a cache hit, or a place in the queue; then the answer once
 * the job (and its inline input images) is committed. Takes j and blobs. */
static void accept_job(struct engine *e, struct job *j, const char *ikey, const char *body_hash,
                       struct job_blob *blobs, size_t nblobs, engine_submit_cb cb, void *ctx)
{
    const char *owner = j->owner;
    bool hit = e->cfg.cache_enabled && j->cache_key[0] && cache_hit(e, j);
    if (hit && e->cfg.privacy_mode)
        engine_redact(j);
    if (!hit && queue_full(e, owner)) {
        job_free(j);
        blobs_free(blobs, nblobs);
        return submit_fail(cb, ctx, 429, "QUEUE_FULL", NULL, "%sthe queue is full", "");
    }
    /* with a shared store, jobs wait there, not in this instance's queue */
    if (jobtable_put(&e->jt, j) < 0 || (!hit && !e->cfg.shared && jobtable_push(&e->jt, j) < 0)) {
        job_free(j);
        blobs_free(blobs, nblobs);
        return submit_fail(cb, ctx, 503, "UNAVAILABLE", NULL, "%sout of memory", "");
    }
    if (!hit)
        job_log(j, "info", "queued (priority %d)", j->priority);
    if (ikey[0]) {
        snprintf(j->idem_key, sizeof(j->idem_key), "%s", ikey);
        snprintf(j->idem_hash, sizeof(j->idem_hash), "%s", body_hash);
        j->idem_expires_ms = job_now_ms() + (int64_t)e->cfg.idem_ttl_s * 1000;
        keymap_put(&e->idem, ikey, j->id, body_hash, j->idem_expires_ms);
    }
    if (!e->store) {
        j->durable = true;
        blobs_free(blobs, nblobs);
        answer_job(cb, ctx, e, j, hit ? 200 : 202, false, hit);
        engine_dispatch(e);
        return;
    }
    /* Accepted only once durable: the answer goes out from saved_cb, after the commit. */
    if (engine_persist_with(e, j, cb, ctx, blobs, nblobs) < 0) { /* never accepted: gone */
        jobtable_unqueue(&e->jt, j);
        if (ikey[0])
            keymap_del(&e->idem, ikey);
        jobtable_forget(&e->jt, j);
        if (j->end_unsaved) /* a cache hit: reads that waited for it find nothing */
            engine_end_durable(e, j, true);
        job_free(j);
        return submit_fail(cb, ctx, 503, "STORE_BUSY", NULL, "%sthe store is overloaded", "");
    }
}


/* --- raw graphs (POST /prompt) --------------------------------------------------------------- */

/* {"convert_output"?, "webhook_v2"?, "images": [{"node", "name"} | {"node", "url"}]}. */
static json_t *prompt_request(const struct prompt_req *r)
{
    json_t *o = json_object();
    json_t *imgs = json_array();
    for (size_t i = 0; i < r->nimages; i++) {
        const struct prompt_image *im = &r->images[i];
        json_array_append_new(imgs, im->url[0] ? json_pack("{s:s, s:s}", "node", im->node, "url",
                                                           im->url)
                                               : json_pack("{s:s, s:s}", "node", im->node,
                                                           "name", im->name));
    }
    json_object_set_new(o, "images", imgs);
    if (r->convert_format[0])
        json_object_set_new(o, "convert_output", json_pack("{s:s, s:i}", "format",
                                                            r->convert_format, "quality",
                                                            r->convert_quality));
    if (r->webhook_v2[0])
        json_object_set_new(o, "webhook_v2", json_string(r->webhook_v2));
    return o;
}

static struct job *prompt_job(struct engine *e, const char *owner, struct prompt_req *r)
{
    struct job *j = calloc(1, sizeof(*j));
    if (!j)
        return NULL;
    j->engine = e;
    j->dirfd = -1;
    j->kind = JOB_KIND_PROMPT;
    j->upload_ms = j->backend_queue_ms = j->execution_ms = j->fetch_ms = -1;
    if (r->id[0])
        snprintf(j->id, sizeof(j->id), "%s", r->id);
    else
        uuid4(j->id);
    snprintf(j->owner, sizeof(j->owner), "%s", owner);
    j->graph = r->graph;
    r->graph = NULL;
    j->metadata = r->metadata;
    r->metadata = NULL;
    j->request = prompt_request(r);
    j->priority = r->priority;
    j->seq = ++e->seq;
    j->status = JOB_QUEUED;
    j->created_ms = job_now_ms();
    j->nodes_total = (unsigned)json_object_size(j->graph);
    return j;
}

/* Inline images go into the graph by name now, and to the store with the job. */
static struct job_blob *prompt_blobs(struct prompt_req *r, const char *owner, json_t *graph,
                                     size_t *n)
{
    char sub[48], ref[160];
    prompt_tenant_subfolder(owner, sub);
    struct job_blob *b = calloc(PROMPT_MAX_IMAGES, sizeof(*b));
    *n = 0;
    for (size_t i = 0; b && i < r->nimages; i++) {
        struct prompt_image *im = &r->images[i];
        if (!im->data)
            continue;
        snprintf(ref, sizeof(ref), "%s/%s", sub, im->name);
        json_object_set_new(json_object_get(json_object_get(graph, im->node), "inputs"),
                            "image", json_string(ref));
        snprintf(b[*n].name, sizeof(b[*n].name), "%s", im->name);
        b[*n].data = im->data;
        b[*n].len = im->len;
        im->data = NULL;
        (*n)++;
    }
    return b;
}

void engine_submit_graph(struct engine *e, const char *owner, struct prompt_req *r,
                         const json_t *body, const char *idem_key, engine_submit_cb cb, void *ctx)
{
    char body_hash[65], ikey[300] = "";
    if (idem_first(e, owner, idem_key, body, ikey, body_hash, cb, ctx))
        return;
    if (r->id[0] && jobtable_get(&e->jt, r->id))
        return submit_fail(cb, ctx, 409, "JOB_EXISTS", NULL, "a job with id %s exists", r->id);
    struct hook_req hook;
    if (check_hook(e, r->webhook_v2[0] ? r->webhook_v2 : NULL, NULL, &hook) < 0)
        return submit_fail(cb, ctx, hook.status, hook.code, NULL, "webhook_v2: %s", hook.msg);
    size_t nblobs = 0;
    struct job_blob *blobs = prompt_blobs(r, owner, r->graph, &nblobs);
    bool urls = false;
    for (size_t i = 0; i < r->nimages; i++)
        urls |= r->images[i].url[0] != 0;
    struct job *j = blobs ? prompt_job(e, owner, r) : NULL;
    if (!j) {
        blobs_free(blobs, nblobs);
        return submit_fail(cb, ctx, 503, "UNAVAILABLE", NULL, "%sout of memory", "");
    }
    j->insert_only = r->id[0] != 0; /* a client-chosen id must not overwrite another job */
    hook_set(j, &hook);
    if (!urls) { /* what a URL points at may change: only self-contained graphs hit the cache */
        json_t *k = json_pack("{s:O, s:O?, s:s}", "g", j->graph, "c",
                              json_object_get(j->request, "convert_output"), "o",
                              e->cfg.cache_shared ? "" : owner);
        json_sha256(k, j->cache_key);
        json_decref(k);
    }
    job_log(j, "info", "raw graph of %zu node(s), %zu input image(s)",
            json_object_size(j->graph), r->nimages);
    submit_end(e, j, ikey, body_hash, blobs, nblobs, cb, ctx);
}
