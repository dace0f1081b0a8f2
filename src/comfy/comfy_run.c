/* comfy_run — see comfy_run.h. */
#include "comfy/comfy_run.h"

#include "core/uuid.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void route(struct comfy_run *r);

static void run_finish(struct comfy_run *r, enum comfy_err err, const char *msg)
{
    if (r->done)
        return;
    r->done = true;
    ring_timer_cancel(r->fleet->ring, &r->timer);
    r->err = err;
    if (msg)
        snprintf(r->message, sizeof(r->message), "%s", msg);
    r->ops->on_done(r);
}

static void att_state(struct comfy_attempt *a)
{
    struct comfy_run *r = a->ctx;
    if (r->ops->on_state)
        r->ops->on_state(r);
}

static void att_output(struct comfy_attempt *a, const struct comfy_output *o)
{
    struct comfy_run *r = a->ctx;
    if (r->ops->on_output)
        r->ops->on_output(r, o);
}

static void record_end(struct comfy_run *r, const struct comfy_attempt *a)
{
    if (r->nrecs == 0)
        return;
    struct comfy_run_record *rec = &r->recs[r->nrecs - 1];
    rec->err = a->err;
    snprintf(rec->message, sizeof(rec->message), "%.255s", a->err_msg);
    rec->ended_ns = a->finished_ns;
}

static void retry_later(struct comfy_run *r)
{
    uint32_t ms = r->backoff;
    r->backoff = r->backoff * 2 > 10000 ? 10000 : r->backoff * 2;
    ring_timer_arm(r->fleet->ring, &r->timer, ms);
}

static void att_done(struct comfy_attempt *a)
{
    struct comfy_run *r = a->ctx;
    record_end(r, a);
    enum comfy_err err = a->err;
    enum comfy_retry rule = comfy_err_retry(err);
    int be = a->be->idx;
    if (err == COMFY_OK || r->canceled || rule == COMFY_RETRY_NEVER || r->tries >= r->p.max_attempts ||
        (rule == COMFY_RETRY_AFTER_FREE && r->oom_retried)) {
        snprintf(r->err_node, sizeof(r->err_node), "%s", a->err_node);
        snprintf(r->err_class, sizeof(r->err_class), "%s", a->err_class);
        if (a->node_errors)
            r->node_errors = json_incref(a->node_errors);
        /* outputs stay in the attempt until comfy_run_free */
        run_finish(r, r->canceled && err != COMFY_OK ? COMFY_INTERRUPTED : err, a->err_msg);
        return;
    }
    if (rule == COMFY_RETRY_AFTER_FREE)
        r->oom_retried = true; /* the attempt already asked that backend to /free */
    else
        r->exclude[be] = true;
    comfy_attempt_free(&r->att);
    r->att_live = false;
    retry_later(r);
}

static void att_preview(struct comfy_attempt *a, const char *mime, const unsigned char *p,
                        size_t n)
{
    struct comfy_run *r = a->ctx;
    if (r->ops->on_preview)
        r->ops->on_preview(r, mime, p, n);
}

static bool att_before_submit(struct comfy_attempt *a)
{
    struct comfy_run *r = a->ctx;
    return r->ops->before_submit && r->ops->before_submit(r);
}

static const struct comfy_attempt_ops att_ops = {
    .on_state = att_state,
    .on_output = att_output,
    .on_done = att_done,
    .on_preview = att_preview,
    .before_submit = att_before_submit,
};

void comfy_run_submit_go(struct comfy_run *r)
{
    if (r->att_live)
        comfy_attempt_submit_go(&r->att);
}

static void start_attempt(struct comfy_run *r, struct comfy_backend *b, const char *pid,
                          bool reattach)
{
    struct comfy_attempt_params ap = {
        .graph = r->p.graph,
        .prompt_id = pid,
        .out_dirfd = r->p.out_dirfd,
        .upload_subfolder = r->p.upload_subfolder,
        .inputs = r->p.inputs,
        .ninputs = r->p.ninputs,
        .timeout_ms = r->p.timeout_ms,
        .max_output_bytes = r->p.max_output_bytes,
        .strip_png_text = r->p.strip_png_text,
        .reattach = reattach,
        .preview = r->preview,
    };
    if (!reattach)
        r->tries++;
    if (r->nrecs < COMFY_RUN_MAX_RECORDS) {
        struct comfy_run_record *rec = &r->recs[r->nrecs++];
        memset(rec, 0, sizeof(*rec));
        rec->backend = b->idx;
        snprintf(rec->prompt_id, sizeof(rec->prompt_id), "%s", pid);
        rec->started_ns = r->fleet->ring->now_ns;
    }
    r->att_live = true;
    if (comfy_attempt_start(&r->att, b, &ap, &att_ops, r) < 0) {
        r->att_live = false;
        run_finish(r, COMFY_VALIDATION, "the graph is not a JSON object");
    }
}

static void start_on(struct comfy_run *r, struct comfy_backend *b)
{
    char pid[37];
    uuid4(pid);
    start_attempt(r, b, pid, false);
}

static void route(struct comfy_run *r)
{
    if (r->done)
        return;
    if (r->canceled)
        return run_finish(r, COMFY_INTERRUPTED, "canceled");
    struct comfy_backend *b = NULL;
    char why[256];
    enum comfy_route rr = comfy_fleet_route(r->fleet, r->p.graph, r->exclude, &b, why, sizeof(why));
    if (rr == COMFY_ROUTE_OK) {
        r->wait_since_ns = 0;
        return start_on(r, b);
    }
    if (rr == COMFY_ROUTE_UNSUPPORTED)
        return run_finish(r, COMFY_VALIDATION, why);
    if (rr == COMFY_ROUTE_NO_BACKEND && r->tries > 0) {
        /* every backend that could run it has failed it: start over with all of them */
        bool any = false;
        for (size_t i = 0; i < r->fleet->n; i++)
            any |= r->exclude[i];
        if (any) {
            memset(r->exclude, 0, r->fleet->n * sizeof(bool));
            ring_timer_arm(r->fleet->ring, &r->timer, r->backoff);
            return;
        }
    }
    uint64_t now = r->fleet->ring->now_ns;
    if (!r->wait_since_ns)
        r->wait_since_ns = now;
    if (now - r->wait_since_ns >= (uint64_t)r->p.route_timeout_ms * 1000000ull)
        return run_finish(r, COMFY_UNREACHABLE, why);
    ring_timer_arm(r->fleet->ring, &r->timer, 50);
}

static void timer_cb(struct ring_timer *t)
{
    struct comfy_run *r = (struct comfy_run *)((char *)t - offsetof(struct comfy_run, timer));
    route(r);
}

static int run_init(struct comfy_run *r, struct comfy_fleet *f, const struct comfy_run_params *p,
                    const struct comfy_run_ops *ops, void *ctx)
{
    memset(r, 0, sizeof(*r));
    if (!json_is_object(p->graph))
        return -EINVAL;
    r->fleet = f;
    r->ops = ops;
    r->ctx = ctx;
    r->p = *p;
    r->p.graph = json_incref(p->graph);
    snprintf(r->preview, sizeof(r->preview), "%s", p->preview ? p->preview : "");
    r->p.preview = NULL; /* the copy above is what lives */
    if (!r->p.max_attempts)
        r->p.max_attempts = 3;
    if (!r->p.backoff_ms)
        r->p.backoff_ms = 200;
    if (!r->p.route_timeout_ms)
        r->p.route_timeout_ms = 30000;
    r->backoff = r->p.backoff_ms;
    r->tries = p->prior_tries;
    r->exclude = calloc(f->n, sizeof(bool));
    if (!r->exclude) {
        json_decref(r->p.graph);
        r->p.graph = NULL;
        return -ENOMEM;
    }
    r->timer.cb = timer_cb;
    return 0;
}

int comfy_run_start(struct comfy_run *r, struct comfy_fleet *f, const struct comfy_run_params *p,
                    const struct comfy_run_ops *ops, void *ctx)
{
    int rc = run_init(r, f, p, ops, ctx);
    if (rc == 0)
        route(r);
    return rc;
}

int comfy_run_resume(struct comfy_run *r, struct comfy_fleet *f, const struct comfy_run_params *p,
                     const struct comfy_run_ops *ops, void *ctx, const char *backend_url,
                     const char *prompt_id, unsigned tries)
{
    struct comfy_backend *b = comfy_fleet_find(f, backend_url);
    if (!b || strlen(prompt_id) >= 40)
        return -ENOENT;
    int rc = run_init(r, f, p, ops, ctx);
    if (rc < 0)
        return rc;
    r->tries = tries ? tries : 1;
    start_attempt(r, b, prompt_id, true);
    return 0;
}

void comfy_run_cancel(struct comfy_run *r)
{
    if (r->done || r->canceled)
        return;
    r->canceled = true;
    if (r->att_live && r->att.state != CA_DONE)
        comfy_attempt_cancel(&r->att);
    else
        run_finish(r, COMFY_INTERRUPTED, "canceled");
}

void comfy_run_free(struct comfy_run *r)
{
    ring_timer_cancel(r->fleet->ring, &r->timer);
    if (r->att_live)
        comfy_attempt_free(&r->att);
    r->att_live = false;
    json_decref(r->p.graph);
    r->p.graph = NULL;
    json_decref(r->node_errors);
    r->node_errors = NULL;
    free(r->exclude);
    r->exclude = NULL;
}

void comfy_run_abandon(struct comfy_run *r)
{
    r->done = true;
    ring_timer_cancel(r->fleet->ring, &r->timer);
    if (r->att_live)
        comfy_attempt_abandon(&r->att);
}

bool comfy_run_quiet(const struct comfy_run *r)
{
    return !r->att_live || comfy_attempt_quiet(&r->att);
}
