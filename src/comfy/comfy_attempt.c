/* comfy_attempt — see comfy_attempt.h.
 *
 * The attempt is a small state machine over three kinds of asynchronous work: control calls
 * (`call`: upload, /prompt, /history, /queue; `ctl_call`: /interrupt, queue delete), output
 * downloads (`dl_call` + `sink`, one at a time), and backend events (WebSocket, or /history
 * polls while the socket is down). Every completion re-enters through one of the *_done
 * callbacks; finish() is the single exit. */
#include "comfy/comfy_attempt.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

static void submit(struct comfy_attempt *a);
static void collect(struct comfy_attempt *a);
static void fetch_next(struct comfy_attempt *a);
static void history_check(struct comfy_attempt *a, bool after_finish);

const char *comfy_attempt_state_name(enum comfy_attempt_state s)
{
    static const char *const n[] = {"idle",    "uploading",  "submitting", "queued",
                                    "running", "collecting", "done"};
    return n[s];
}

static void set_state(struct comfy_attempt *a, enum comfy_attempt_state s)
{
    a->state = s;
    if (a->ops->on_state)
        a->ops->on_state(a);
}

static void call_opts(const struct comfy_attempt *a, struct comfy_call_opts *o, size_t max)
{
    memset(o, 0, sizeof(*o));
    o->timeout_ms = a->be->cfg->request_timeout_ms;
    o->max_response = max;
}

/* --- the single exit ------------------------------------------------------------------------ */

static void finish(struct comfy_attempt *a, enum comfy_err err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void finish(struct comfy_attempt *a, enum comfy_err err, const char *fmt, ...)
{
    if (a->done_reported)
        return;
    a->done_reported = true;
    a->err = err;
    if (fmt && err != COMFY_OK) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(a->err_msg, sizeof(a->err_msg), fmt, ap);
        va_end(ap);
    }
    ring_timer_cancel(a->be->ring, &a->timeout_timer);
    ring_timer_cancel(a->be->ring, &a->poll_timer);
    comfy_call_cancel(&a->call);
    comfy_call_cancel(&a->ctl_call);
    comfy_call_cancel(&a->dl_call);
    if (a->fetching) {
        a->fetching = false;
        file_sink_abort(&a->sink, NULL);
    }
    a->finished_ns = a->be->ring->now_ns;
    struct comfy_backend *be = a->be;
    comfy_backend_detach(be, a);
    if (err == COMFY_OK) {
        double run_ms = a->started_ns ? (double)(a->finished_ns - a->started_ns) / 1e6 : -1;
        comfy_backend_report_success(be, run_ms);
    } else {
        be->failed++;
        if (err == COMFY_UNREACHABLE)
            comfy_backend_report_failure(be, a->err_msg);
        else
            snprintf(be->last_error, sizeof(be->last_error), "%s: %.200s", comfy_err_code(err),
                     a->err_msg);
    }
    a->state = CA_DONE;
    a->ops->on_done(a);
}

/* --- uploads ------------------------------------------------------------------------------ */

static void upload_next(struct comfy_attempt *a);

static void upload_done(struct comfy_call *c, int err, long status)
{
    struct comfy_attempt *a = c->ctx;
    comfy_call_release(c);
    if (err)
        return finish(a, COMFY_UNREACHABLE, "upload failed: %s", strerror(-err));
    if (status != 200)
        return finish(a, COMFY_VALIDATION, "backend refused input image %s (HTTP %ld)",
                      a->inputs[a->uploaded].name, status);
    a->uploaded++;
    upload_next(a);
}

/* Inputs are on the backend: the owner may hold the submit until it has recorded it. */
static void ready_to_submit(struct comfy_attempt *a)
{
    if (a->ops->before_submit && a->ops->before_submit(a)) {
        a->submit_held = true;
        return;
    }
    submit(a);
}

void comfy_attempt_submit_go(struct comfy_attempt *a)
{
    if (!a->submit_held || a->done_reported)
        return;
    a->submit_held = false;
    submit(a);
}

static void upload_next(struct comfy_attempt *a)
{
    if (a->uploaded == a->ninputs) {
        ready_to_submit(a);
        return;
    }
    const struct comfy_input_file *in = &a->inputs[a->uploaded];
    char url[700];
    comfy_backend_url(a->be, url, sizeof(url), "/upload/image");
    const char *fields[] = {"subfolder", a->upload_subfolder, "type", "input", "overwrite",
                            "true", NULL};
    struct comfy_call_opts o;
    call_opts(a, &o, 65536);
    o.timeout_ms = 0; /* large images on slow links: bounded by the connect timeout only */
    if (comfy_call_upload(&a->call, a->be->rc, url, in->name, in->path[0] ? in->path : NULL,
                          in->data, in->len, fields, &o, upload_done, a) < 0)
        finish(a, COMFY_UNREACHABLE, "cannot start upload");
}

/* --- submit -------------------------------------------------------------------------------- */

static void poll_start(struct comfy_attempt *a)
{
    if (!a->done_reported && !ring_timer_armed(&a->poll_timer))
        ring_timer_arm(a->be->ring, &a->poll_timer, a->be->cfg->poll_ms);
}

static void submit_refused(struct comfy_attempt *a, json_t *body, long status)
{
    json_t *e = json_object_get(body, "error");
    const char *msg = json_string_value(json_object_get(e, "message"));
    const char *det = json_string_value(json_object_get(e, "details"));
    json_t *ne = json_object_get(body, "node_errors");
    if (ne && json_object_size(ne) > 0)
        a->node_errors = json_incref(ne);
    if (status == 400)
        return finish(a, COMFY_VALIDATION, "%s%s%s", msg ? msg : "prompt refused",
                      det && det[0] ? ": " : "", det ? det : "");
    finish(a, COMFY_UNREACHABLE, "POST /prompt answered HTTP %ld", status);
}

static void submit_done(struct comfy_call *c, int err, long status)
{
    struct comfy_attempt *a = c->ctx;
    if (err) {
        comfy_call_release(c);
        /* It may have arrived: ask before sending it again (never run it twice). */
        a->submit_unsure = true;
        history_check(a, false);
        return;
    }
    json_t *body = json_loadb(c->resp.data, c->resp.len, 0, NULL);
    comfy_call_release(c);
    if (status != 200 || !body) {
        submit_refused(a, body, status);
        json_decref(body);
        return;
    }
    a->backend_number = (int)json_number_value(json_object_get(body, "number"));
    json_t *ne = json_object_get(body, "node_errors");
    if (ne && json_object_size(ne) > 0) /* some outputs invalid: the valid ones run */
        a->node_errors = json_incref(ne);
    json_decref(body);
    a->submit_unsure = false;
    if (a->exec_finished) {
        /* The backend's events overtook its answer (a prompt that ran at once): the collect
         * they started could not ask /history while this call was busy, so ask now. */
        history_check(a, true);
        return;
    }
    if (a->state < CA_QUEUED) /* execution_start may have come first too */
        set_state(a, CA_QUEUED);
    if (!a->be->ws_open)
        poll_start(a);
}

static void submit(struct comfy_attempt *a)
{
    if (a->submit_tries++ >= 3)
        return finish(a, COMFY_UNREACHABLE, "could not submit the prompt");
    json_t *req = json_pack("{s:O, s:s, s:s}", "prompt", a->graph, "client_id",
                            a->be->client_id, "prompt_id", a->prompt_id);
    char *body = req ? json_dumps(req, JSON_COMPACT) : NULL;
    json_decref(req);
    if (!body)
        return finish(a, COMFY_UNREACHABLE, "out of memory");
    char url[700];
    comfy_backend_url(a->be, url, sizeof(url), "/prompt");
    struct comfy_call_opts o;
    call_opts(a, &o, 4 << 20);
    set_state(a, CA_SUBMITTING);
    if (!a->submitted_ns)
        a->submitted_ns = a->be->ring->now_ns;
    int rc = comfy_call_json(&a->call, a->be->rc, "POST", url, body, &o, submit_done, a);
    free(body);
    if (rc < 0)
        finish(a, COMFY_UNREACHABLE, "cannot start submit");
}

/* --- outputs --------------------------------------------------------------------------------- */

static bool output_known(const struct comfy_attempt *a, const struct comfy_output *o)
{
    for (unsigned i = 0; i < a->noutputs; i++) {
        const struct comfy_output *p = &a->outputs[i];
        if (!strcmp(p->node, o->node) && !strcmp(p->kind, o->kind) &&
            !strcmp(p->filename, o->filename) && !strcmp(p->subfolder, o->subfolder) &&
            !strcmp(p->type, o->type))
            return true;
    }
    return false;
}

/* A PNG image fetched as a preview in another format is stored under that format's extension. */
static bool converted(const struct comfy_attempt *a, const struct comfy_output *o)
{
    size_t n = strlen(o->filename);
    return a->preview[0] && !strcmp(o->kind, "images") && n > 4 &&
           !strcasecmp(o->filename + n - 4, ".png");
}

static void local_name(const struct comfy_attempt *a, struct comfy_output *o)
{
    snprintf(o->local_name, sizeof(o->local_name), "%s", o->filename);
    if (converted(a, o)) {
        size_t n = strlen(o->local_name);
        snprintf(o->local_name + n - 4, sizeof(o->local_name) - (n - 4), ".%s",
                 strncmp(a->preview, "jpeg", 4) ? "webp" : "jpg");
    }
    for (char *p = o->local_name; *p; p++) {
        if (*p == '/' || *p == '\\')
            *p = '_';
    }
    for (unsigned i = 0; i < a->noutputs; i++) {
        if (!strcmp(a->outputs[i].local_name, o->local_name)) {
            snprintf(o->local_name, sizeof(o->local_name), "%u_%s", a->noutputs, o->filename);
            break;
        }
    }
}

/* Adds the files (and text) one node's output lists, e.g. {"images": [{filename, subfolder,
 * type}, ...], "text": ["..."]}. Text is kept in `filename` and written as a .txt file. */
static void add_outputs(struct comfy_attempt *a, const char *node, json_t *out)
{
    const char *kind;
    json_t *list;
    json_object_foreach(out, kind, list)
    {
        size_t i;
        json_t *it;
        if (!json_is_array(list))
            continue;
        json_array_foreach(list, i, it)
        {
            if (a->noutputs == a->outputs_cap) {
                unsigned ncap = a->outputs_cap ? a->outputs_cap * 2 : 8;
                struct comfy_output *no;
                if (ncap > COMFY_MAX_OUTPUTS || !(no = realloc(a->outputs, ncap * sizeof(*no))))
                    return;
                a->outputs = no;
                a->outputs_cap = ncap;
            }
            struct comfy_output o;
            memset(&o, 0, sizeof(o));
            snprintf(o.node, sizeof(o.node), "%s", node);
            snprintf(o.kind, sizeof(o.kind), "%s", kind);
            if (json_is_object(it) && json_is_string(json_object_get(it, "filename"))) {
                snprintf(o.filename, sizeof(o.filename), "%s",
                         json_string_value(json_object_get(it, "filename")));
                const char *sf = json_string_value(json_object_get(it, "subfolder"));
                const char *ty = json_string_value(json_object_get(it, "type"));
                snprintf(o.subfolder, sizeof(o.subfolder), "%s", sf ? sf : "");
                snprintf(o.type, sizeof(o.type), "%s", ty ? ty : "output");
            } else if (json_is_string(it)) {
                snprintf(o.type, sizeof(o.type), "text");
                snprintf(o.filename, sizeof(o.filename), "%s_%s_%zu.txt", node, kind, i);
                if (output_known(a, &o))
                    continue;
                o.text = strdup(json_string_value(it));
            } else {
                continue;
            }
            if (output_known(a, &o))
                continue;
            local_name(a, &o);
            a->outputs[a->noutputs++] = o;
        }
    }
}

static void sink_closed(struct file_sink *s, int err)
{
    struct comfy_attempt *a = s->ctx;
    a->fetching = false;
    struct comfy_output *o = &a->outputs[a->next_fetch];
    if (err)
        return finish(a, COMFY_OUTPUT, "storing %s failed: %s", o->filename, strerror(-err));
    o->size = s->size;
    file_sink_sha256_hex(s, o->sha256);
    o->stored = true;
    a->next_fetch++;
    if (a->ops->on_output)
        a->ops->on_output(a, o);
    fetch_next(a);
}

static void download_done(struct comfy_call *c, int err, long status)
{
    struct comfy_attempt *a = c->ctx;
    comfy_call_release(c);
    struct comfy_output *o = &a->outputs[a->next_fetch];
    if (err || status != 200) {
        a->fetching = false;
        file_sink_abort(&a->sink, NULL);
        return finish(a, COMFY_OUTPUT, "fetching %s failed: %s", o->filename,
                      err ? strerror(-err) : "unexpected HTTP status");
    }
    a->sink.ctx = a;
    file_sink_close(&a->sink, sink_closed);
}

static void fetch_text(struct comfy_attempt *a, struct comfy_output *o)
{
    size_t n = o->text ? strlen(o->text) : 0;
    if (n && file_sink_write(&a->sink, o->text, n) != (ssize_t)n) {
        a->fetching = false;
        file_sink_abort(&a->sink, NULL);
        return finish(a, COMFY_OUTPUT, "storing text output %s failed", o->filename);
    }
    a->sink.ctx = a;
    file_sink_close(&a->sink, sink_closed);
}

static void fetch_next(struct comfy_attempt *a)
{
    if (a->fetching || a->done_reported)
        return;
    while (a->next_fetch < a->noutputs && a->outputs[a->next_fetch].stored)
        a->next_fetch++;
    if (a->next_fetch == a->noutputs) {
        if (a->exec_finished && a->history_done)
            finish(a, COMFY_OK, NULL);
        return;
    }
    struct comfy_output *o = &a->outputs[a->next_fetch];
    if (file_sink_open(&a->sink, a->be->ring, a->out_dirfd, o->local_name,
                       a->max_output_bytes) < 0)
        return finish(a, COMFY_OUTPUT, "bad output name %s", o->local_name);
    a->fetching = true;
    if (!strcmp(o->type, "text"))
        return fetch_text(a, o);
    CURL *e = curl_easy_init();
    char *fn = curl_easy_escape(e, o->filename, 0);
    char *sf = curl_easy_escape(e, o->subfolder, 0);
    char *ty = curl_easy_escape(e, o->type, 0);
    char path[1200], url[1800];
    int pl = snprintf(path, sizeof(path), "/view?filename=%s&subfolder=%s&type=%s", fn, sf, ty);
    if (converted(a, o) && pl > 0 && (size_t)pl < sizeof(path))
        snprintf(path + pl, sizeof(path) - (size_t)pl, "&preview=%s", a->preview);
    curl_free(fn);
    curl_free(sf);
    curl_free(ty);
    curl_easy_cleanup(e);
    comfy_backend_url(a->be, url, sizeof(url), path);
    struct comfy_call_opts o2;
    call_opts(a, &o2, 65536);
    o2.timeout_ms = 0; /* big videos: progress is watched by the sink, not a wall clock */
    size_t nl = strlen(o->local_name);
    o2.strip_png_text = a->strip_png_text && nl > 4 && !strcasecmp(o->local_name + nl - 4, ".png");
    if (comfy_call_download(&a->dl_call, a->be->rc, url, &a->sink, &o2, download_done, a) < 0) {
        a->fetching = false;
        file_sink_abort(&a->sink, NULL);
        finish(a, COMFY_OUTPUT, "cannot start download");
    }
}

/* --- history and queue: completion without the WebSocket, reconcile, lost prompts ------------ */

static void queue_done(struct comfy_call *c, int err, long status);

static bool queue_has(json_t *list, const char *id)
{
    size_t i;
    json_t *it;
    json_array_foreach(list, i, it)
    {
        const char *pid = json_string_value(json_array_get(it, 1));
        if (pid && !strcmp(pid, id))
            return true;
    }
    return false;
}

static void history_error(struct comfy_attempt *a, json_t *status)
{
    size_t i;
    json_t *m;
    json_array_foreach(json_object_get(status, "messages"), i, m)
    {
        const char *ev = json_string_value(json_array_get(m, 0));
        json_t *d = json_array_get(m, 1);
        if (ev && !strcmp(ev, "execution_interrupted"))
            return finish(a, a->timed_out ? COMFY_TIMEOUT : COMFY_INTERRUPTED,
                          "interrupted on the backend");
        if (ev && !strcmp(ev, "execution_error")) {
            struct comfy_event e;
            memset(&e, 0, sizeof(e));
            const char *s;
            if ((s = json_string_value(json_object_get(d, "node_id"))))
                snprintf(e.node, sizeof(e.node), "%s", s);
            if ((s = json_string_value(json_object_get(d, "node_type"))))
                snprintf(e.node_type, sizeof(e.node_type), "%s", s);
            if ((s = json_string_value(json_object_get(d, "exception_type"))))
                snprintf(e.exception_type, sizeof(e.exception_type), "%s", s);
            if ((s = json_string_value(json_object_get(d, "exception_message"))))
                snprintf(e.exception_message, sizeof(e.exception_message), "%s", s);
            e.type = CEV_EXECUTION_ERROR;
            comfy_attempt_on_event(a, &e);
            return;
        }
    }
    finish(a, COMFY_NODE_ERROR, "the backend reported an error without details");
}

static void history_entry(struct comfy_attempt *a, json_t *entry)
{
    const char *node;
    json_t *out;
    json_object_foreach(json_object_get(entry, "outputs"), node, out)
    {
        if (json_is_object(out))
            add_outputs(a, node, out);
    }
    json_t *status = json_object_get(entry, "status");
    const char *st = json_string_value(json_object_get(status, "status_str"));
    if (st && !strcmp(st, "error"))
        return history_error(a, status);
    if (!a->exec_done_ns)
        a->exec_done_ns = a->be->ring->now_ns;
    a->exec_finished = true;
    a->history_done = true;
    a->nodes_done = a->nodes_total;
    if (a->state < CA_COLLECTING)
        set_state(a, CA_COLLECTING);
    fetch_next(a);
}

static void history_done(struct comfy_call *c, int err, long status)
{
    struct comfy_attempt *a = c->ctx;
    bool after_finish = a->exec_finished;
    json_t *body = err == 0 && status == 200 ? json_loadb(c->resp.data, c->resp.len, 0, NULL)
                                             : NULL;
    comfy_call_release(c);
    if (!body) {
        if (++a->poll_failures >= 3 || a->submit_unsure)
            return finish(a, COMFY_UNREACHABLE, "backend not answering /history");
        poll_start(a);
        return;
    }
    a->poll_failures = 0;
    json_t *entry = json_object_get(body, a->prompt_id);
    if (entry) {
        a->submit_unsure = false;
        history_entry(a, entry);
    } else if (after_finish) {
        /* ComfyUI writes history a moment after execution_success: look again shortly, then
         * settle for the outputs the events announced. */
        if (++a->history_tries >= 20) {
            a->history_done = true;
            fetch_next(a);
        } else {
            ring_timer_arm(a->be->ring, &a->poll_timer, 25);
        }
    } else {
        char url[700];
        comfy_backend_url(a->be, url, sizeof(url), "/queue");
        struct comfy_call_opts o;
        call_opts(a, &o, 64 << 20);
        if (comfy_call_json(&a->call, a->be->rc, "GET", url, NULL, &o, queue_done, a) < 0)
            finish(a, COMFY_UNREACHABLE, "cannot query /queue");
    }
    json_decref(body);
}

static void queue_done(struct comfy_call *c, int err, long status)
{
    struct comfy_attempt *a = c->ctx;
    json_t *q = err == 0 && status == 200 ? json_loadb(c->resp.data, c->resp.len, 0, NULL) : NULL;
    comfy_call_release(c);
    if (!q) {
        if (++a->poll_failures >= 3 || a->submit_unsure)
            return finish(a, COMFY_UNREACHABLE, "backend not answering /queue");
        poll_start(a);
        return;
    }
    bool running = queue_has(json_object_get(q, "queue_running"), a->prompt_id);
    bool pending = queue_has(json_object_get(q, "queue_pending"), a->prompt_id);
    json_decref(q);
    if (running || pending) {
        a->lost_suspect = 0;
        if (a->submit_unsure) {
            a->submit_unsure = false;
            set_state(a, running ? CA_RUNNING : CA_QUEUED);
        }
        if (running && a->state == CA_QUEUED)
            set_state(a, CA_RUNNING);
        /* A re-attached prompt keeps being polled: its events go to the client id that
         * submitted it, which is ours again only if the instance id survived the restart. */
        if (!a->be->ws_open || a->reattached)
            poll_start(a);
        return;
    }
    if (a->submit_unsure) /* it never arrived: sending it again cannot run it twice */
        return submit(a);
    /* Neither queued nor in history: it may have just moved between the two; only a second
     * miss in a row means the backend lost it (restarted). */
    if (++a->lost_suspect >= 2)
        return finish(a, COMFY_UNREACHABLE, "the backend lost the prompt (restarted?)");
    ring_timer_arm(a->be->ring, &a->poll_timer, 20);
}

static void history_check(struct comfy_attempt *a, bool after_finish)
{
    (void)after_finish;
    if (a->done_reported || a->call.x.active)
        return;
    char path[200], url[800];
    snprintf(path, sizeof(path), "/history/%s", a->prompt_id);
    comfy_backend_url(a->be, url, sizeof(url), path);
    struct comfy_call_opts o;
    call_opts(a, &o, 64 << 20);
    if (comfy_call_json(&a->call, a->be->rc, "GET", url, NULL, &o, history_done, a) < 0)
        finish(a, COMFY_UNREACHABLE, "cannot query /history");
}

static void collect(struct comfy_attempt *a)
{
    if (!a->exec_done_ns)
        a->exec_done_ns = a->be->ring->now_ns;
    a->exec_finished = true;
    if (a->state < CA_COLLECTING)
        set_state(a, CA_COLLECTING);
    history_check(a, true);
}

static void poll_timer_cb(struct ring_timer *t)
{
    struct comfy_attempt *a =
        (struct comfy_attempt *)((char *)t - offsetof(struct comfy_attempt, poll_timer));
    if (a->done_reported)
        return;
    if (a->be->ws_open && !a->submit_unsure && !a->exec_finished && !a->lost_suspect &&
        !a->reattached)
        return; /* the socket is back; events will come */
    history_check(a, a->exec_finished);
}

/* --- events -------------------------------------------------------------------------------- */

static bool is_oom(const struct comfy_event *ev)
{
    return strstr(ev->exception_type, "OutOfMemory") ||
           strstr(ev->exception_message, "out of memory") ||
           strstr(ev->exception_message, "Allocation on device");
}

/* Closes the running node's time (the next one started, or the prompt finished). */
static void node_time_end(struct comfy_attempt *a)
{
    if (!a->current_node[0] || !a->node_started_ns || !a->node_times)
        return;
    double ms = (double)(a->be->ring->now_ns - a->node_started_ns) / 1e6;
    json_object_set_new(a->node_times, a->current_node,
                        json_pack("{s:f, s:b}", "ms", ms, "cached", 0));
    a->node_started_ns = 0;
}

static void on_executing(struct comfy_attempt *a, const struct comfy_event *ev)
{
    node_time_end(a);
    if (ev->node_null) {
        if (!a->exec_finished)
            collect(a);
        return;
    }
    if (a->current_node[0] && a->nodes_done < a->nodes_total)
        a->nodes_done++;
    snprintf(a->current_node, sizeof(a->current_node), "%s", ev->node);
    a->node_started_ns = a->be->ring->now_ns;
    json_t *n = json_object_get(a->graph, ev->node);
    const char *ct = json_string_value(json_object_get(n, "class_type"));
    snprintf(a->current_class, sizeof(a->current_class), "%s", ct ? ct : "");
    a->step = a->steps = 0;
    if (a->state < CA_RUNNING)
        a->state = CA_RUNNING;
    set_state(a, a->state);
}

void comfy_attempt_on_event(struct comfy_attempt *a, const struct comfy_event *ev)
{
    if (a->done_reported || a->state < CA_SUBMITTING)
        return;
    switch (ev->type) {
    case CEV_EXECUTION_START:
        a->started_ns = a->be->ring->now_ns;
        set_state(a, CA_RUNNING);
        break;
    case CEV_EXECUTION_CACHED:
        a->nodes_cached = (unsigned)json_array_size(ev->cached_nodes);
        for (size_t i = 0; a->node_times && i < a->nodes_cached; i++) {
            const char *id = json_string_value(json_array_get(ev->cached_nodes, i));
            if (id)
                json_object_set_new(a->node_times, id,
                                    json_pack("{s:f, s:b}", "ms", 0.0, "cached", 1));
        }
        a->nodes_done = a->nodes_cached;
        set_state(a, a->state);
        break;
    case CEV_EXECUTING:
        on_executing(a, ev);
        break;
    case CEV_PROGRESS:
        a->step = (unsigned)ev->value;
        a->steps = (unsigned)ev->max;
        set_state(a, a->state);
        break;
    case CEV_EXECUTED:
        if (ev->output && json_is_object(ev->output))
            add_outputs(a, ev->node, ev->output);
        fetch_next(a);
        break;
    case CEV_EXECUTION_SUCCESS:
        node_time_end(a);
        a->nodes_done = a->nodes_total;
        collect(a);
        break;
    case CEV_EXECUTION_ERROR:
        snprintf(a->err_node, sizeof(a->err_node), "%s", ev->node);
        snprintf(a->err_class, sizeof(a->err_class), "%s", ev->node_type);
        if (is_oom(ev)) {
            comfy_backend_free_memory(a->be);
            finish(a, COMFY_OOM, "%s: %s", ev->exception_type, ev->exception_message);
        } else {
            finish(a, COMFY_NODE_ERROR, "%s: %s", ev->exception_type, ev->exception_message);
        }
        break;
    case CEV_EXECUTION_INTERRUPTED:
        finish(a, a->timed_out ? COMFY_TIMEOUT : COMFY_INTERRUPTED,
               a->timed_out ? "execution time limit reached" : "interrupted");
        break;
    default:
        break;
    }
}

void comfy_attempt_on_preview(struct comfy_attempt *a, const char *mime, const unsigned char *p,
                              size_t n)
{
    if (!a->done_reported && a->ops->on_preview)
        a->ops->on_preview(a, mime, p, n);
}

void comfy_attempt_ws_down(struct comfy_attempt *a)
{
    if (a->state >= CA_QUEUED && a->state <= CA_RUNNING)
        poll_start(a);
}

void comfy_attempt_ws_up(struct comfy_attempt *a)
{
    /* Events sent while we were away are lost: ask /history what happened meanwhile. */
    if (a->state >= CA_QUEUED && a->state <= CA_RUNNING)
        history_check(a, false);
}

/* --- cancel and timeout -------------------------------------------------------------------- */

static void ctl_done(struct comfy_call *c, int err, long status)
{
    struct comfy_attempt *a = c->ctx;
    comfy_call_release(c);
    a->ctl_busy = false;
    if (a->ctl_step == 1) { /* queue delete sent; now interrupt it if it is running */
        a->ctl_step = 2;
        char url[700], body[160];
        comfy_backend_url(a->be, url, sizeof(url), "/interrupt");
        snprintf(body, sizeof(body), "{\"prompt_id\":\"%s\"}", a->prompt_id);
        struct comfy_call_opts o;
        call_opts(a, &o, 4096);
        if (comfy_call_json(&a->ctl_call, a->be->rc, "POST", url, body, &o, ctl_done, a) == 0) {
            a->ctl_busy = true;
            return;
        }
    }
    finish(a, a->timed_out ? COMFY_TIMEOUT : COMFY_INTERRUPTED,
           a->timed_out ? "execution time limit reached" : "canceled");
}

static void stop_on_backend(struct comfy_attempt *a)
{
    if (a->ctl_busy || a->done_reported)
        return;
    char url[700], body[160];
    comfy_backend_url(a->be, url, sizeof(url), "/queue");
    snprintf(body, sizeof(body), "{\"delete\":[\"%s\"]}", a->prompt_id);
    struct comfy_call_opts o;
    call_opts(a, &o, 4096);
    a->ctl_step = 1;
    if (comfy_call_json(&a->ctl_call, a->be->rc, "POST", url, body, &o, ctl_done, a) == 0)
        a->ctl_busy = true;
    else
        finish(a, a->timed_out ? COMFY_TIMEOUT : COMFY_INTERRUPTED, "canceled");
}

void comfy_attempt_cancel(struct comfy_attempt *a)
{
    if (a->done_reported || a->canceling)
        return;
    a->canceling = true;
    if (a->state == CA_UPLOADING || a->state == CA_IDLE || a->submit_held)
        return finish(a, COMFY_INTERRUPTED, "canceled");
    if (a->state == CA_COLLECTING)
        return; /* it already ran; let the outputs land */
    stop_on_backend(a);
}

static void timeout_cb(struct ring_timer *t)
{
    struct comfy_attempt *a =
        (struct comfy_attempt *)((char *)t - offsetof(struct comfy_attempt, timeout_timer));
    if (a->done_reported || a->state == CA_COLLECTING)
        return;
    a->timed_out = true;
    if (a->state < CA_SUBMITTING || a->submit_held)
        return finish(a, COMFY_TIMEOUT, "execution time limit reached");
    stop_on_backend(a);
}

/* --- life ---------------------------------------------------------------------------------- */

int comfy_attempt_start(struct comfy_attempt *a, struct comfy_backend *be,
                        const struct comfy_attempt_params *p, const struct comfy_attempt_ops *ops,
                        void *ctx)
{
    memset(a, 0, sizeof(*a));
    if (strlen(p->prompt_id) >= sizeof(a->prompt_id) || !json_is_object(p->graph))
        return -EINVAL;
    a->be = be;
    a->ops = ops;
    a->ctx = ctx;
    snprintf(a->prompt_id, sizeof(a->prompt_id), "%s", p->prompt_id);
    snprintf(a->upload_subfolder, sizeof(a->upload_subfolder), "%s",
             p->upload_subfolder ? p->upload_subfolder : "");
    a->graph = json_incref(p->graph);
    a->out_dirfd = p->out_dirfd;
    a->inputs = p->inputs;
    a->ninputs = p->ninputs;
    a->timeout_ms = p->timeout_ms;
    a->max_output_bytes = p->max_output_bytes ? p->max_output_bytes : (1ull << 32);
    a->strip_png_text = p->strip_png_text;
    snprintf(a->preview, sizeof(a->preview), "%s", p->preview ? p->preview : "");
    a->nodes_total = (unsigned)json_object_size(p->graph);
    a->timeout_timer.cb = timeout_cb;
    a->poll_timer.cb = poll_timer_cb;
    a->begun_ns = be->ring->now_ns;
    a->node_times = json_object();
    comfy_backend_attach(be, a);
    const char *ck = comfy_graph_checkpoint(p->graph);
    if (ck)
        snprintf(be->last_ckpt, sizeof(be->last_ckpt), "%s", ck);
    if (a->timeout_ms)
        ring_timer_arm(be->ring, &a->timeout_timer, a->timeout_ms);
    if (p->reattach) {
        /* events sent while no gateway listened are lost: ask where it is */
        a->reattached = true;
        a->submitted_ns = a->begun_ns;
        set_state(a, CA_QUEUED);
        history_check(a, false);
    } else if (a->ninputs) {
        set_state(a, CA_UPLOADING);
        upload_next(a);
    } else {
        ready_to_submit(a);
    }
    return 0;
}

void comfy_attempt_abandon(struct comfy_attempt *a)
{
    if (a->done_reported)
        return;
    a->done_reported = true; /* nothing may report after this */
    ring_timer_cancel(a->be->ring, &a->timeout_timer);
    ring_timer_cancel(a->be->ring, &a->poll_timer);
    comfy_call_cancel(&a->call);
    comfy_call_cancel(&a->ctl_call);
    comfy_call_cancel(&a->dl_call);
    if (a->fetching)
        file_sink_abort(&a->sink, NULL);
    comfy_backend_detach(a->be, a);
    a->state = CA_DONE;
}

bool comfy_attempt_quiet(const struct comfy_attempt *a)
{
    return !a->fetching || a->sink.done;
}

void comfy_attempt_free(struct comfy_attempt *a)
{
    json_decref(a->graph);
    a->graph = NULL;
    json_decref(a->node_times);
    a->node_times = NULL;
    json_decref(a->node_errors);
    a->node_errors = NULL;
    for (unsigned i = 0; i < a->noutputs; i++)
        free(a->outputs[i].text);
    free(a->outputs);
    a->outputs = NULL;
    a->noutputs = a->outputs_cap = 0;
}
