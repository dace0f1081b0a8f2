/* webhook_event — which of a job's events are sent (pure).
 *
 * A job's `webhookEvents` is an array of "queued", "running", "progress", "output" and
 * "completed" (like Replicate's webhook_events_filter); absent means ["completed"]. Event types
 * are "<kind>.<name>": job.queued, job.running, job.progress, job.output, and the terminal
 * job.succeeded, job.failed, job.canceled (raw ComfyUI graphs: prompt.complete,
 * prompt.failed). Terminal events are always sent, whatever the filter: a receiver that asked
 * for webhooks must learn how the job ended. Progress is throttled per job to at most one
 * event per 500 ms (so never more than 2 in any second); the throttle is a small struct the
 * caller keeps with the job, and the last progress before completion may be dropped. */
#ifndef COMFYGATE_WEBHOOK_EVENT_H
#define COMFYGATE_WEBHOOK_EVENT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum webhook_filter {
    WEBHOOK_F_QUEUED = 1 << 0,
    WEBHOOK_F_RUNNING = 1 << 1,
    WEBHOOK_F_PROGRESS = 1 << 2,
    WEBHOOK_F_OUTPUT = 1 << 3,
    WEBHOOK_F_COMPLETED = 1 << 4, /* terminal events: implied, kept for the round trip */
};
#define WEBHOOK_F_DEFAULT WEBHOOK_F_COMPLETED
#define WEBHOOK_PROGRESS_INTERVAL_MS 500

/* v: the request's webhookEvents (NULL when absent: the default). Returns 0 and the mask, or
 * -1 with a message for a 400 in err ("webhookEvents[2]: unknown event \"x\" ..."). */
int webhook_filter_parse(const json_t *v, unsigned *mask, char *err, size_t errlen);
/* The mask back as the JSON array a job shows (new reference). */
json_t *webhook_filter_json(unsigned mask);

/* job.succeeded, job.failed, job.canceled, prompt.complete, prompt.failed. */
bool webhook_event_terminal(const char *type);
/* Terminal, or named by the mask; unknown types are not sent. */
bool webhook_event_wanted(unsigned mask, const char *type);

struct webhook_throttle {
    uint64_t last_ms; /* when the last progress event passed */
    bool passed;      /* one has passed */
};
/* True (and the time recorded) when a progress event at now_ms may go. */
bool webhook_throttle_pass(struct webhook_throttle *t, uint64_t now_ms);
/* What the job engine asks before webhook_enqueue: the filter, then for job.progress the
 * throttle (t may be NULL for jobs that never send progress). */
bool webhook_should_send(unsigned mask, struct webhook_throttle *t, const char *type,
                         uint64_t now_ms);

#endif
