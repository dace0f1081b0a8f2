/* api_jobs — workflows (read), jobs (submit, get, list, cancel) and their outputs. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "core/uuid.h"
#include "api/api_call.h"
#include "api/api_jobs_query.h"
#include "http/http_file.h"
#include "jobs/engine.h"

/* --- jobs --------------------------------------------------------------------------------------- */

static void submitted(struct engine_submit *res, void *ctx)
{
    struct api_call *c = ctx;
    if (res->status != 200 && res->status != 202) {
        if (res->status == 429)
            api_call_header(c, "Retry-After", "5");
        if (res->status == 409)
            api_call_header(c, "Retry-After", "1");
        if (res->errors) {
            c->status = res->status;
            c->code = res->code;
            c->details = res->errors;
            snprintf(c->message, sizeof(c->message), "%s", res->message);
            return api_call_done(c);
        }
        return api_call_error(c, res->status, res->code, "%s", res->message);
    }
    struct job *j = res->job;
    char poll[96];
    snprintf(poll, sizeof(poll), "/jobs/%s", j->id);
    api_call_header(c, "Location", poll);
    if (res->replayed)
        api_call_header(c, "Idempotency-Replayed", "true");
    if (res->cache_hit) { /* finished at once: the whole job */
        return api_call_json(c, 200, job_to_json(j, -1));
    }
    json_t *o = json_pack("{s:s, s:s, s:s}", "jobId", j->id, "status", job_status_name(j->status),
                          "pollUrl", poll);
    if (res->queue_position >= 0)
        json_object_set_new(o, "queue_position", json_integer(res->queue_position));
    api_call_json(c, 202, o);
}

static void submit_work(struct api_call *c)
{
    json_t *body = c->body;
    c->body = NULL;
    engine_submit(c->gw->engine, c->owner, body, c->name[0] ? c->name : NULL, submitted, c);
    json_decref(body);
}

static void jobs_post_cb(struct http_exchange *ex, void *arg)
{
    json_t *body = api_body_json(ex);
    if (!body)
        return;
    struct api_call *c = api_call_new(ex, arg, submit_work);
    if (!c) {
        json_decref(body);
        return;
    }
    c->body = body;
    size_t kl = 0;
    const char *key = http_header_get(http_req(ex), "idempotency-key", &kl);
    if (key) {
        bool ok = kl > 0 && kl < 256;
        for (size_t i = 0; ok && i < kl; i++)
            ok = key[i] > 0x20 && key[i] < 0x7f;
        if (!ok) {
            json_decref(body);
            free(c);
            http_respond_error(ex, 400, "VALIDATION_ERROR",
                               "Idempotency-Key must be 1-255 visible ASCII characters");
            return;
        }
        memcpy(c->name, key, kl);
        c->name[kl] = '\0';
    }
    api_call_start(c);
}

static void job_got(struct job *j, long pos, void *ctx)
{
    struct api_call *c = ctx;
    if (!j)
        return api_call_error(c, 404, "JOB_NOT_FOUND", "no job %s", c->id);
    json_t *o = job_to_json(j, pos);
    if (j->callback_url && c->gw->webhooks) /* every delivery of its events, and how it went */
        json_object_set_new(o, "webhooks", webhook_job_deliveries(c->gw->webhooks, j->id));
    api_call_json(c, 200, o);
}

static void job_get_work(struct api_call *c)
{
    engine_fetch(c->gw->engine, c->id, api_call_reader(c), job_got, c);
}

static bool job_id_param(struct http_exchange *ex, struct api_call *c, const char *name)
{
    if (http_param_copy(ex, name, c->id, sizeof(c->id)) < 0 || !uuid_valid(c->id)) {
        http_respond_error(ex, 404, "JOB_NOT_FOUND", "no such job");
        free(c);
        return false;
    }
    return true;
}

static void job_get_cb(struct http_exchange *ex, void *arg)
{
    struct api_call *c = api_call_new(ex, arg, job_get_work);
    if (c && job_id_param(ex, c, "id"))
        api_call_start(c);
}

static void job_canceled(int st, struct job *j, long pos, void *ctx)
{
    struct api_call *c = ctx;
    if (st == 404 || !j)
        return api_call_error(c, st == 503 ? 503 : 404, st == 503 ? "UNAVAILABLE" : "JOB_NOT_FOUND",
                              "no job %s", c->id);
    if (st == 409)
        return api_call_error(c, 409, "JOB_FINISHED", "job %s already %s", c->id,
                              job_status_name(j->status));
    api_call_json(c, 200, job_to_json(j, pos));
}

static void job_cancel_work(struct api_call *c)
{
    engine_cancel_any(c->gw->engine, c->id, api_call_reader(c), job_canceled, c);
}

static void job_cancel_cb(struct http_exchange *ex, void *arg)
{
    struct api_call *c = api_call_new(ex, arg, job_cancel_work);
    if (c && job_id_param(ex, c, "id"))
        api_call_start(c);
}

static void jobs_listed(json_t *o, void *ctx)
{
    struct api_call *c = ctx;
    if (!o)
        return api_call_error(c, 503, "STORE_UNAVAILABLE", "the job store did not answer");
    api_call_json(c, 200, o);
}

static void jobs_list_work(struct api_call *c)
{
    struct engine_query q = {
        .owner = api_call_reader(c),
        .status = c->status_filter,
        .workflow_id = c->id[0] ? c->id : NULL,
        .after_ms = c->after_ms,
        .before_ms = c->before_ms,
        .cursor = c->cursor,
        .limit = (size_t)c->limit,
    };
    engine_list_any(c->gw->engine, &q, jobs_listed, c);
}

static void jobs_list_cb(struct http_exchange *ex, void *arg)
{
    struct api_call *c = api_call_new(ex, arg, jobs_list_work);
    if (!c)
        return;
    struct api_jobs_query q;
    char err[512];
    if (api_jobs_query_parse(http_req(ex), &q, err, sizeof(err)) < 0) {
        http_respond_error(ex, 400, "VALIDATION_ERROR", "%s", err);
        free(c);
        return;
    }
    c->limit = q.limit;
    c->after_ms = q.after_ms;
    c->before_ms = q.before_ms;
    c->cursor = q.cursor;
    snprintf(c->id, sizeof(c->id), "%s", q.workflow_id);
    c->status_filter = q.status;
    api_call_start(c);
}

static void job_logs_got(struct job *j, long pos, void *ctx)
{
    struct api_call *c = ctx;
    (void)pos;
    if (!j)
        return api_call_error(c, 404, "JOB_NOT_FOUND", "no job %s", c->id);
    api_call_json(c, 200, json_pack("{s:s, s:o}", "jobId", j->id, "logs", job_log_json(j)));
}

static void job_logs_work(struct api_call *c)
{
    engine_fetch(c->gw->engine, c->id, api_call_reader(c), job_logs_got, c);
}

static void job_logs_cb(struct http_exchange *ex, void *arg)
{
    struct api_call *c = api_call_new(ex, arg, job_logs_work);
    if (c && job_id_param(ex, c, "id"))
        api_call_start(c);
}

/* --- outputs -------------------------------------------------------------------------------------- */

static void outputs_listed(struct job *j, long pos, void *ctx)
{
    struct api_call *c = ctx;
    (void)pos;
    if (!j)
        return api_call_error(c, 404, "JOB_NOT_FOUND", "no job %s", c->id);
    json_t *o = job_to_json(j, -1);
    json_t *outs = json_incref(json_object_get(o, "outputs"));
    json_decref(o);
    api_call_json(c, 200, json_pack("{s:s, s:s, s:o}", "jobId", j->id, "status",
                                    job_status_name(j->status), "outputs", outs));
}

static void outputs_list_work(struct api_call *c)
{
    engine_fetch(c->gw->engine, c->id, api_call_reader(c), outputs_listed, c);
}

static void outputs_list_cb(struct http_exchange *ex, void *arg)
{
    struct api_call *c = api_call_new(ex, arg, outputs_list_work);
    if (c && job_id_param(ex, c, "jobId"))
        api_call_start(c);
}

/* A base64 download needs the bytes: with an object store they may first have to be fetched. */
struct out_fetch {
    struct engine_file f;
    struct api_call *c;
};

static void output_fetched(void *ctx, int err)
{
    struct out_fetch *of = ctx;
    struct api_call *c = of->c;
    free(of);
    if (err == -ENOENT)
        return api_call_error(c, 404, "OUTPUT_NOT_FOUND", "output %s is not in storage", c->name);
    if (err < 0)
        return api_call_error(c, 502, "STORAGE_ERROR", "output %s could not be read from "
                              "storage: %s", c->name, strerror(-err));
    c->status = 200;
    api_call_done(c);
}

/* Ownership and existence are checked on the dispatcher; the file itself is then served by
 * the connection's own reactor, zero-copy, from under <storage>/outputs. */
static void output_file_found(struct job *j, long pos, void *ctx)
{
    struct api_call *c = ctx;
    (void)pos;
    const struct job_output *o = NULL;
    for (size_t i = 0; j && i < j->noutputs && !o; i++) {
        if (!strcmp(j->outputs[i].name, c->name))
            o = &j->outputs[i];
    }
    if (!o)
        return api_call_error(c, 404, "OUTPUT_NOT_FOUND", "no output %s", c->name);
    snprintf(c->key, sizeof(c->key), "%s", o->key);
    if (j->cache_of[0]) /* a cache hit serves the files of the job it shares them with */
        snprintf(c->id, sizeof(c->id), "%s", j->cache_of);
    if (!c->want_bytes) {
        c->status = 200;
        return api_call_done(c);
    }
    struct out_fetch *of = calloc(1, sizeof(*of));
    if (!of)
        return api_call_error(c, 503, "UNAVAILABLE", "out of memory");
    of->c = c;
    snprintf(of->f.job, sizeof(of->f.job), "%.36s", c->id);
    snprintf(of->f.name, sizeof(of->f.name), "%.299s", c->name);
    snprintf(of->f.key, sizeof(of->f.key), "%s", c->key);
    snprintf(of->f.sha256, sizeof(of->f.sha256), "%s", o->sha256);
    of->f.size = o->size;
    engine_files_local(c->gw->engine, &of->f, 1, NULL, output_fetched, of);
}

static void output_file_work(struct api_call *c)
{
    engine_fetch(c->gw->engine, c->id, api_call_reader(c), output_file_found, c);
}

/* Runs on the connection's reactor: asks the storage provider where the object is. A local
 * file is served zero-copy; a provider that hands out URLs gets a redirect. */
static void output_file_reply(struct api_call *c)
{
    struct storage_loc loc;
    bool b64 = c->want_bytes;
    int rc = b64 ? storage_local_file(&c->gw->storage, c->id, c->name, &loc)
                 : storage_locate(&c->gw->storage, c->id, c->name, c->key, &loc);
    if (rc < 0) {
        http_respond_error(c->ex, 404, "OUTPUT_NOT_FOUND", "output %s is not in storage", c->name);
        return;
    }
    if (loc.kind == STORAGE_LOC_URL) {
        http_add_header(c->ex, "Location", loc.path);
        http_respond(c->ex, 302, NULL, NULL, 0);
    } else if (b64) {
        http_respond_file_base64(c->ex, loc.dirfd, loc.path, c->name, http_file_mime(c->name));
    } else {
        struct http_file_opts o = {.disposition_name = c->name,
                                   .cache_control = "private, max-age=31536000, immutable"};
        http_respond_file(c->ex, loc.dirfd, loc.path, &o);
    }
}

static void output_file_cb(struct http_exchange *ex, void *arg)
{
    struct api_call *c = api_call_new(ex, arg, output_file_work);
    if (!c || !job_id_param(ex, c, "jobId"))
        return;
    if (http_param_copy(ex, "file", c->name, sizeof(c->name)) < 0 || !http_path_safe(c->name) ||
        strchr(c->name, '/')) {
        free(c);
        http_respond_error(ex, 404, "OUTPUT_NOT_FOUND", "no such output");
        return;
    }
    char enc[16];
    if (http_query_get(http_req(ex), "encoding", enc, sizeof(enc)) != -1 && strcmp(enc, "base64")) {
        free(c);
        http_respond_error(ex, 400, "VALIDATION_ERROR", "encoding must be base64");
        return;
    }
    c->want_bytes = http_query_get(http_req(ex), "encoding", enc, sizeof(enc)) >= 0;
    c->reply = output_file_reply;
    api_call_start(c);
}

int api_jobs_register(struct gateway *gw)
{
    struct http_router *r = &gw->router;
    if (http_router_add(r, "POST", "/jobs", jobs_post_cb, gw) < 0 ||
        http_router_add(r, "GET", "/jobs", jobs_list_cb, gw) < 0 ||
        http_router_add(r, "GET", "/jobs/:id", job_get_cb, gw) < 0 ||
        http_router_add(r, "POST", "/jobs/:id/cancel", job_cancel_cb, gw) < 0 ||
        http_router_add(r, "GET", "/jobs/:id/logs", job_logs_cb, gw) < 0 ||
        http_router_add(r, "GET", "/outputs/:jobId", outputs_list_cb, gw) < 0 ||
        http_router_add(r, "GET", "/outputs/:jobId/:file", output_file_cb, gw) < 0)
        return -1;
    return 0;
}
