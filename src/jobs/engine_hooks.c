/* engine_hooks — a job's webhook events. A job with a callbackUrl (POST /jobs) or webhook_v2
 * (POST /prompt) gets the events its webhookEvents filter names (job.queued, job.running,
 * job.progress, job.output; progress at most twice a second) and always its end: job.succeeded,
 * job.failed or job.canceled, or for a raw graph prompt.complete / prompt.failed, whose body is
 * the synchronous /prompt answer: the images inline as base64 (read here through the ring,
 * never on the reactor's own time) when they fit in WEBHOOK_INLINE_MAX_BYTES, URLs otherwise.
 *
 * A job's end is enqueued under a webhook-id derived from the job, written only once: start-up
 * recovery enqueues it again for recently finished jobs, which closes the gap of a crash between
 * the job's last save and the event's own, without ever sending it twice. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/b64.h"
#include "jobs/engine_internal.h"
#include "webhook/webhook.h"

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void engine_hook(struct engine *e, struct job *j, const char *event)
{
    if (!e->cfg.webhooks || !j->callback_url || j->kind == JOB_KIND_PROMPT)
        return; /* raw graphs tell only their end, as the ComfyUI API wrappers do */
    char type[32];
    snprintf(type, sizeof(type), "job.%s", event);
    if (!webhook_should_send(j->wh_mask, &j->wh_throttle, type, mono_ms()))
        return;
    json_t *data = job_to_json(j, engine_queue_position(e, j));
    int rc = webhook_enqueue(e->cfg.webhooks, j->id, j->callback_url, type, data);
    json_decref(data);
    if (rc < 0)
        job_log(j, "warn", "webhook %s not queued: %s", type, strerror(-rc));
}

/* --- a raw graph's end: its images read through the ring, then the event ------------------- */

struct hook_read {
    struct ring_op op;
    struct engine *e;
    char job_id[37];
    char *url;
    json_t *data; /* the answer; "images" is filled here */
    struct engine_file *files;
    size_t nfiles, next;
    int fd;
    unsigned char *buf;
    size_t len, got;
    char path[sizeof(((struct storage_loc *)0)->path)]; /* the open in flight reads it when the ring submits, not at prep */
};

static void read_next_file(struct hook_read *h);

static void read_finish(struct hook_read *h, bool ok)
{
    struct engine *e = h->e;
    if (!ok) { /* a file could not be read: the receiver gets the URLs instead */
        json_object_set_new(h->data, "images", json_array());
        json_object_set_new(h->data, "images_inlined", json_false());
    }
    int rc = webhook_enqueue_once(e->cfg.webhooks, h->job_id, "end", h->url, "prompt.complete",
                                  h->data);
    if (rc < 0) {
        struct job *j = jobtable_get(&e->jt, h->job_id);
        if (j)
            job_log(j, "warn", "webhook prompt.complete not queued: %s", strerror(-rc));
    }
    e->hook_reads--;
    json_decref(h->data);
    free(h->files);
    free(h->url);
    free(h->buf);
    free(h);
}

static void file_read_cb(struct ring_op *op, int res, uint32_t flags)
{
    (void)flags;
    struct hook_read *h = (struct hook_read *)op;
    if (res <= 0) {
        close(h->fd);
        return read_finish(h, false); /* an error, or the file shrank */
    }
    h->got += (size_t)res;
    if (h->got < h->len) {
        struct io_uring_sqe *sqe = ring_sqe(h->e->ring);
        io_uring_prep_read(sqe, h->fd, h->buf + h->got, (unsigned)(h->len - h->got), h->got);
        ring_sqe_set_op(sqe, &h->op);
        return;
    }
    close(h->fd);
    char *b64 = malloc(b64_len(h->len) + 1);
    if (!b64)
        return read_finish(h, false);
    b64[b64_encode(h->buf, h->len, b64)] = '\0';
    json_array_append_new(json_object_get(h->data, "images"), json_string_nocheck(b64));
    free(b64);
    free(h->buf);
    h->buf = NULL;
    read_next_file(h);
}

static void file_open_cb(struct ring_op *op, int res, uint32_t flags)
{
    (void)flags;
    struct hook_read *h = (struct hook_read *)op;
    if (res < 0)
        return read_finish(h, false);
    h->fd = res;
    h->got = 0;
    h->buf = malloc(h->len ? h->len : 1);
    if (!h->buf || !h->len) {
        close(h->fd);
        return read_finish(h, h->buf != NULL && h->len == 0);
    }
    h->op.cb = file_read_cb;
    struct io_uring_sqe *sqe = ring_sqe(h->e->ring);
    io_uring_prep_read(sqe, h->fd, h->buf, (unsigned)h->len, 0);
    ring_sqe_set_op(sqe, &h->op);
}

static void read_next_file(struct hook_read *h)
{
    if (h->next == h->nfiles)
        return read_finish(h, true);
    const struct engine_file *f = &h->files[h->next++];
    struct storage_loc loc;
    if (storage_local_file(h->e->cfg.storage, f->job, f->name, &loc) < 0)
        return read_finish(h, false);
    h->len = f->size;
    h->op.cb = file_open_cb;
    snprintf(h->path, sizeof(h->path), "%s", loc.path);
    struct io_uring_sqe *sqe = ring_sqe(h->e->ring);
    io_uring_prep_openat(sqe, loc.dirfd, h->path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW, 0);
    ring_sqe_set_op(sqe, &h->op);
}

/* Every file has a local copy now (or could not get one: the receiver gets the URLs). */
static void hook_files_ready(void *ctx, int err)
{
    struct hook_read *h = ctx;
    if (err < 0)
        return read_finish(h, false);
    read_next_file(h);
}

static void prompt_end(struct engine *e, struct job *j)
{
    if (j->status != JOB_SUCCEEDED) {
        json_t *data = json_pack("{s:s, s:{s:s, s:s, s:O?}, s:o}", "id", j->id, "error", "code",
                                 j->status == JOB_CANCELED ? "CANCELED" : j->error_code,
                                 "message", j->error_message, "node_errors", j->node_errors,
                                 "stats", engine_job_stats(j));
        if (webhook_enqueue_once(e->cfg.webhooks, j->id, "end", j->callback_url,
                                 "prompt.failed", data) < 0)
            job_log(j, "warn", "webhook prompt.failed not queued");
        json_decref(data);
        return;
    }
    struct hook_read *h = calloc(1, sizeof(*h));
    if (!h)
        return;
    h->e = e;
    h->fd = -1;
    snprintf(h->job_id, sizeof(h->job_id), "%s", j->id);
    h->url = strdup(j->callback_url);
    h->data = engine_prompt_answer(j, &h->files, &h->nfiles);
    uint64_t total = 0;
    for (size_t i = 0; i < h->nfiles; i++)
        total += h->files[i].size;
    e->hook_reads++;
    if (!h->url || !h->data)
        return read_finish(h, false);
    json_object_set_new(h->data, "images", json_array());
    json_object_set_new(h->data, "images_inlined", json_true());
    if (total > e->cfg.webhook_inline_max) /* too big to inline: outputs carry the URLs */
        return read_finish(h, false);
    engine_files_local(e, h->files, h->nfiles, NULL, hook_files_ready, h);
}

void engine_hook_end(struct engine *e, struct job *j)
{
    if (!e->cfg.webhooks || !j->callback_url || !job_finished(j))
        return;
    if (j->end_unsaved) { /* a crash could still take this end back: engine_end_durable */
        j->end_hook_pending = true;
        return;
    }
    if (j->kind == JOB_KIND_PROMPT)
        return prompt_end(e, j);
    char type[32];
    snprintf(type, sizeof(type), "job.%s", job_status_name(j->status));
    json_t *data = job_to_json(j, -1);
    if (webhook_enqueue_once(e->cfg.webhooks, j->id, "end", j->callback_url, type, data) < 0)
        job_log(j, "warn", "webhook %s not queued", type);
    json_decref(data);
}
