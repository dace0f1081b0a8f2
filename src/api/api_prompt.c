/* api_prompt — POST /prompt: a raw ComfyUI graph, as users of the ComfyUI API wrappers expect.
 *
 * With webhook_v2 the answer is 202 at once and the outcome goes to the webhook later. Without
 * it the request waits: the job is subscribed to on the dispatcher, and once it has finished
 * the answer {id, prompt, filenames, stats, images: [base64...]} is streamed, each image read
 * through the ring and encoded as it goes (never a whole file in memory). A failed job answers
 * with a JSON error carrying the job id.
 *
 * The call walks through steps, each owning the struct alone: submit (ring_call) → wait for
 * the final status (subscription; freed only after on_closed) → collect (ring_call) → stream.
 * Collect opens every image as soon as its local copy is there, before the answer starts: a
 * slow client holds the files it has yet to read, so a fetched copy pruned meanwhile
 * (engine_files) cannot cut the answer short. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/api.h"
#include "api/api_call.h"
#include "http/http_file.h"
#include "jobs/engine.h"
#include "jobs/prompt_req.h"

struct prompt_call {
    struct ring_call rc;
    struct engine_sub sub;
    struct ring_msg unsub;
    struct gateway *gw;
    struct http_exchange *ex; /* NULL once answered (or the client left) */
    struct prompt_req req;
    json_t *body;
    char owner[130];
    char idem[256];
    bool sync;
    bool replayed; /* an Idempotency-Key seen before: the earlier job */
    bool subscribed, final_seen, collecting;
    /* outcome */
    int status;
    const char *code;
    char message[512];
    json_t *details; /* error details or the answer's head (owned) */
    char job_id[37];
    struct engine_file *files;
    int *fds; /* files[i] open for reading (-1 once handed to the stream) */
    size_t nfiles, next;
};

static void call_free(struct prompt_call *pc)
{
    prompt_req_free(&pc->req);
    json_decref(pc->body);
    json_decref(pc->details);
    for (size_t i = 0; pc->fds && i < pc->nfiles; i++) {
        if (pc->fds[i] >= 0)
            close(pc->fds[i]);
    }
    free(pc->fds);
    free(pc->files);
    free(pc);
}

static void respond_error(struct prompt_call *pc)
{
    if (!pc->ex)
        return;
    if (pc->details)
        api_respond_error_details(pc->ex, pc->status, pc->code, pc->message, pc->details);
    else
        http_respond_error(pc->ex, pc->status, pc->code, "%s", pc->message);
    pc->details = NULL;
    pc->ex = NULL;
}

/* --- streaming the answer -------------------------------------------------------------------- */

static void stream_next(struct http_exchange *ex, void *arg, int err)
{
    struct prompt_call *pc = arg;
    if (err < 0) { /* the client left or a file vanished: cut the body short */
        http_stream_abort(ex);
        pc->ex = NULL;
        return call_free(pc);
    }
    if (pc->next > 0 && http_stream_write(ex, "\"", 1) < 0)
        return stream_next(ex, pc, -1);
    if (pc->next == pc->nfiles) {
        http_stream_write(ex, "]}", 2);
        http_stream_end(ex);
        pc->ex = NULL;
        return call_free(pc);
    }
    int fd = pc->fds[pc->next];
    pc->fds[pc->next++] = -1;
    if (http_stream_write(ex, pc->next > 1 ? ",\"" : "\"", pc->next > 1 ? 2 : 1) < 0) {
        close(fd);
        return stream_next(ex, pc, -1);
    }
    http_stream_fd_base64(ex, fd, stream_next, pc);
}

static void stream_answer(struct prompt_call *pc)
{
    if (pc->replayed)
        http_add_header(pc->ex, "Idempotency-Replayed", "true");
    char *head = json_dumps(pc->details, JSON_COMPACT);
    size_t n = head ? strlen(head) : 0;
    if (!head || n < 2 || http_stream_begin(pc->ex, 200, "application/json") < 0 ||
        http_stream_write(pc->ex, head, n - 1) < 0 ||
        http_stream_write(pc->ex, ",\"images\":[", 11) < 0) {
        free(head);
        return stream_next(pc->ex, pc, -1);
    }
    free(head);
    stream_next(pc->ex, pc, 0);
}

/* --- collect: the finished job's files and stats, read on the dispatcher --------------------- */

static int error_status(const char *code)
{
    if (!strcmp(code, "COMFYUI_VALIDATION") || !strcmp(code, "COMFYUI_UNSUPPORTED"))
        return 400;
    if (!strcmp(code, "INPUT_FETCH_FAILED"))
        return 422;
    if (!strcmp(code, "CANCELED"))
        return 409;
    if (!strcmp(code, "COMFYUI_TIMEOUT"))
        return 504;
    return 502;
}

static void collect_failed(struct prompt_call *pc, const struct job *j)
{
    pc->code = j->status == JOB_CANCELED ? "CANCELED" : j->error_code;
    pc->status = error_status(pc->code);
    snprintf(pc->message, sizeof(pc->message), "job %s %s: %.400s", j->id,
             job_status_name(j->status), j->error_message);
    if (j->node_errors) { /* ComfyUI's per-node validation errors, as it gives them */
        pc->details = json_array();
        const char *node;
        json_t *ne;
        json_object_foreach(j->node_errors, node, ne)
        {
            json_array_append_new(pc->details, json_pack("{s:s, s:O}", "node_id", node,
                                                         "node_errors", ne));
        }
    }
}

/* On the dispatcher: each image has a local copy to stream from, or the answer is an error. */
static void files_ready(void *ctx, int err)
{
    struct prompt_call *pc = ctx;
    if (err < 0) {
        json_decref(pc->details); /* the answer's head: not error details */
        pc->details = NULL;
        pc->status = 502;
        pc->code = "STORAGE_ERROR";
        snprintf(pc->message, sizeof(pc->message), "job %s succeeded but its images could not be "
                 "read back from storage: %s", pc->job_id, strerror(-err));
    }
    ring_call_return(&pc->rc);
}

static void collected(struct job *j, long pos, void *ctx)
{
    struct prompt_call *pc = ctx;
    (void)pos;
    pc->status = 200;
    if (!j) {
        pc->status = 404;
        pc->code = "JOB_NOT_FOUND";
        snprintf(pc->message, sizeof(pc->message), "job %s is gone", pc->job_id);
    } else if (j->status != JOB_SUCCEEDED) {
        collect_failed(pc, j);
    } else {
        pc->details = engine_prompt_answer(j, &pc->files, &pc->nfiles);
        if (!pc->details) {
            pc->status = 503;
            pc->code = "UNAVAILABLE";
            snprintf(pc->message, sizeof(pc->message), "out of memory");
        } else if ((pc->fds = malloc((pc->nfiles ? pc->nfiles : 1) * sizeof(*pc->fds)))) {
            /* each image is opened as soon as its copy is there (engine_files_local) */
            return engine_files_local(pc->gw->engine, pc->files, pc->nfiles, pc->fds,
                                      files_ready, pc);
        } else {
            pc->status = 503;
            pc->code = "UNAVAILABLE";
            snprintf(pc->message, sizeof(pc->message), "out of memory");
        }
    }
    ring_call_return(&pc->rc);
}

static void collect_work(struct ring_call *rc)
{
    struct prompt_call *pc = (struct prompt_call *)rc;
    if (!pc->gw->engine) {
        pc->status = 503;
        pc->code = "UNAVAILABLE";
        snprintf(pc->message, sizeof(pc->message), "the job engine is not running");
        return ring_call_return(rc);
    }
    engine_fetch(pc->gw->engine, pc->job_id, pc->owner, collected, pc);
}

static void collect_reply(struct ring_call *rc)
{
    struct prompt_call *pc = (struct prompt_call *)rc;
    if (!pc->ex)
        return call_free(pc);
    if (pc->status != 200) {
        respond_error(pc);
        return call_free(pc);
    }
    stream_answer(pc);
}

/* --- waiting for the job (sync) ---------------------------------------------------------------- */

static void unsub_cb(struct ring *r, struct ring_msg *m)
{
    struct prompt_call *pc = (struct prompt_call *)((char *)m - offsetof(struct prompt_call, unsub));
    engine_unsubscribe(pc->gw->engine, &pc->sub);
}

/* The subscription is over (no event can arrive any more): collect, or give up. */
static void on_closed(struct engine_sub *sub)
{
    struct prompt_call *pc = (struct prompt_call *)((char *)sub - offsetof(struct prompt_call, sub));
    if (!pc->ex)
        return call_free(pc);
    pc->collecting = true;
    ring_call(&pc->gw->reactors[FLEET_REACTOR].ring, http_ring(pc->ex), &pc->rc, collect_work,
              collect_reply);
}

static void end_wait(struct prompt_call *pc)
{
    pc->unsub.cb = unsub_cb;
    ring_post(&pc->gw->reactors[FLEET_REACTOR].ring, &pc->unsub);
}

static void on_event(struct engine_sub *sub, const char *event, char *data, bool final)
{
    struct prompt_call *pc = (struct prompt_call *)((char *)sub - offsetof(struct prompt_call, sub));
    free(data);
    if (!final || pc->final_seen)
        return;
    pc->final_seen = true;
    if (pc->subscribed) /* else submit_reply, right behind, ends the wait */
        end_wait(pc);
}

static void on_abort(struct http_exchange *ex, void *arg)
{
    struct prompt_call *pc = arg;
    if (!pc->ex || pc->collecting)
        return; /* the stream notices by itself */
    http_respond_error(ex, 503, "UNAVAILABLE", "the client left"); /* dropped cheaply */
    pc->ex = NULL;
    if (pc->subscribed && !pc->final_seen) {
        pc->final_seen = true;
        end_wait(pc); /* the job goes on; the answer has nobody to go to */
    }
}

/* --- submit ------------------------------------------------------------------------------------ */

static void submitted(struct engine_submit *res, void *ctx)
{
    struct prompt_call *pc = ctx;
    pc->status = res->status;
    if (res->status != 200 && res->status != 202) {
        pc->code = res->code;
        pc->details = res->errors;
        snprintf(pc->message, sizeof(pc->message), "%s", res->message);
        return ring_call_return(&pc->rc);
    }
    snprintf(pc->job_id, sizeof(pc->job_id), "%s", res->job->id);
    pc->replayed = res->replayed;
    snprintf(pc->sub.job_id, sizeof(pc->sub.job_id), "%s", res->job->id);
    if (pc->sync && engine_subscribe_seen(pc->gw->engine, &pc->sub, res->job) != 200)
        pc->status = 500;
    ring_call_return(&pc->rc);
}

static void submit_work(struct ring_call *rc)
{
    struct prompt_call *pc = (struct prompt_call *)rc;
    if (!pc->gw->engine) {
        pc->status = 503;
        pc->code = "UNAVAILABLE";
        snprintf(pc->message, sizeof(pc->message), "the job engine is not running");
        return ring_call_return(rc);
    }
    engine_submit_graph(pc->gw->engine, pc->owner, &pc->req, pc->body,
                        pc->idem[0] ? pc->idem : NULL, submitted, pc);
}

static void submit_reply(struct ring_call *rc)
{
    struct prompt_call *pc = (struct prompt_call *)rc;
    if (pc->status != 200 && pc->status != 202) {
        if (pc->status == 429 && pc->ex)
            http_add_header(pc->ex, "Retry-After", "5");
        respond_error(pc);
        return call_free(pc);
    }
    if (!pc->sync && !pc->ex)
        return call_free(pc);
    if (pc->sync) {
        pc->subscribed = true;
        if (pc->final_seen || !pc->ex)
            end_wait(pc);
        return;
    }
    char loc[64];
    snprintf(loc, sizeof(loc), "/jobs/%s", pc->job_id);
    http_add_header(pc->ex, "Location", loc);
    if (pc->replayed)
        http_add_header(pc->ex, "Idempotency-Replayed", "true");
    json_t *o = json_pack("{s:s, s:s, s:s}", "id", pc->job_id, "status",
                          pc->status == 200 ? "succeeded" : "queued", "pollUrl", loc);
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    http_respond_owned(pc->ex, 202, "application/json", s, s ? strlen(s) : 0, free);
    pc->ex = NULL;
    call_free(pc);
}

/* --- the route ------------------------------------------------------------------------------- */

static bool idem_header(struct http_exchange *ex, char out[256])
{
    size_t kl = 0;
    const char *key = http_header_get(http_req(ex), "idempotency-key", &kl);
    if (!key)
        return true;
    bool ok = kl > 0 && kl < 256;
    for (size_t i = 0; ok && i < kl; i++)
        ok = key[i] > 0x20 && key[i] < 0x7f;
    if (ok) {
        memcpy(out, key, kl);
        out[kl] = '\0';
    }
    return ok;
}

static void prompt_post_cb(struct http_exchange *ex, void *arg)
{
    struct gateway *gw = arg;
    json_t *body = api_body_json(ex);
    if (!body)
        return;
    struct prompt_call *pc = calloc(1, sizeof(*pc));
    if (!pc) {
        json_decref(body);
        return http_respond_error(ex, 503, "UNAVAILABLE", "out of memory");
    }
    pc->gw = gw;
    pc->ex = ex;
    pc->body = body;
    snprintf(pc->owner, sizeof(pc->owner), "%s", api_owner(ex));
    if (!idem_header(ex, pc->idem)) {
        call_free(pc);
        return http_respond_error(ex, 400, "VALIDATION_ERROR",
                                  "Idempotency-Key must be 1-255 visible ASCII characters");
    }
    struct prompt_err err;
    if (prompt_req_parse(body, &gw->prompt_cfg, &pc->req, &err) < 0) {
        pc->status = err.status;
        pc->code = err.code;
        pc->details = err.errors;
        snprintf(pc->message, sizeof(pc->message), "%s", err.message);
        respond_error(pc);
        return call_free(pc);
    }
    pc->sync = !pc->req.webhook_v2[0];
    pc->sub.ring = http_ring(ex);
    pc->sub.on_event = on_event;
    pc->sub.on_closed = on_closed;
    http_on_abort(ex, on_abort, pc);
    ring_call(&gw->reactors[FLEET_REACTOR].ring, http_ring(ex), &pc->rc, submit_work,
              submit_reply);
}

int api_prompt_register(struct gateway *gw)
{
    return http_router_add(&gw->router, "POST", "/prompt", prompt_post_cb, gw);
}
