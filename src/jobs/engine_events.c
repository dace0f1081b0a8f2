/* engine_events — what listeners hear of a job: Server-Sent Events and the synchronous
 * /prompt wait subscribe here; status changes, progress, outputs and log lines are posted to
 * each listener's reactor as messages (ring_post), in order. A job's final status detaches its
 * listeners, and is held back until the job's end is durable (engine_persist.c). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jobs/engine.h"
#include "jobs/engine_internal.h"
#include "jobs/job_store.h"
#include "jobs/jobtable.h"

/* --- events ------------------------------------------------------------------------------------ */

struct sub_msg {
    struct ring_msg msg;
    struct engine_sub *sub;
    char event[16];
    char *data;
    bool final;
    bool closed;
};

static void sub_msg_cb(struct ring *r, struct ring_msg *m)
{
    struct sub_msg *sm = (struct sub_msg *)m;
    if (sm->closed)
        sm->sub->on_closed(sm->sub);
    else
        sm->sub->on_event(sm->sub, sm->event, sm->data, sm->final);
    free(sm);
}

void engine_sub_post(struct engine_sub *s, const char *event, json_t *data, bool final)
{
    struct sub_msg *sm = calloc(1, sizeof(*sm));
    if (!sm)
        return;
    sm->msg.cb = sub_msg_cb;
    sm->sub = s;
    snprintf(sm->event, sizeof(sm->event), "%s", event);
    sm->data = data ? json_dumps(data, JSON_COMPACT) : NULL;
    sm->final = final;
    ring_post(s->ring, &sm->msg);
}

/* Sends one event to every listener of j; a final status also detaches them. */
void engine_emit(struct engine *e, struct job *j, const char *event, json_t *data)
{
    bool final = !strcmp(event, "status") && job_finished(j);
    for (struct engine_sub *s = j->subs; s; s = s->next)
        engine_sub_post(s, event, data, final);
    json_decref(data);
    if (final)
        j->subs = NULL; /* the API side unsubscribes each one when it sees `final` */
}

void engine_jlog(struct engine *e, struct job *j, const char *level, const char *fmt, ...)
{
    char msg[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    job_log(j, level, "%s", msg);
    if (j->subs)
        engine_emit(e, j, "log", job_log_last_json(j));
}

void jlog_job(struct job *j, const char *level, const char *fmt, ...)
{
    char msg[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    engine_jlog(j->engine, j, level, "%s", msg);
}

void engine_emit_status(struct engine *e, struct job *j)
{
    if (!j->subs || j->end_unsaved || !strcmp(j->last_event_status, job_status_name(j->status)))
        return;
    snprintf(j->last_event_status, sizeof(j->last_event_status), "%s", job_status_name(j->status));
    engine_emit(e, j, "status", job_to_json(j, engine_queue_position(e, j)));
}

/* --- subscriptions -------------------------------------------------------------------------- */

int engine_subscribe_seen(struct engine *e, struct engine_sub *s, const struct job *seen)
{
    struct job *j = jobtable_get(&e->jt, s->job_id);
    if (j && engine_authoritative(e, j))
        return engine_subscribe(e, NULL, s);
    /* another instance runs it (or will): its changes come from the store */
    bool final = job_finished(seen);
    json_t *d = job_to_json(seen, -1);
    engine_sub_post(s, "status", d, final);
    json_decref(d);
    if (!final && !engine_watch_add(e, s, seen))
        return 503;
    return 200;
}

int engine_subscribe(struct engine *e, const char *owner, struct engine_sub *s)
{
    struct job *j = engine_job(e, s->job_id, owner);
    if (!j)
        return 404;
    if (j->end_unsaved) { /* its end goes out once durable (end_durable), to s as well */
        j->last_event_status[0] = '\0';
        s->next = j->subs;
        j->subs = s;
        return 200;
    }
    snprintf(j->last_event_status, sizeof(j->last_event_status), "%s", job_status_name(j->status));
    bool final = job_finished(j);
    json_t *d = job_to_json(j, engine_queue_position(e, j));
    engine_sub_post(s, "status", d, final);
    json_decref(d);
    if (!final) {
        s->next = j->subs;
        j->subs = s;
    }
    return 200;
}

void engine_unsubscribe(struct engine *e, struct engine_sub *s)
{
    struct job *j = jobtable_get(&e->jt, s->job_id);
    for (struct engine_sub **pp = j ? &j->subs : NULL; pp && *pp; pp = &(*pp)->next) {
        if (*pp == s) {
            *pp = s->next;
            break;
        }
    }
    engine_watch_remove(e, s);
    /* FIFO mailbox: this arrives after every event already posted to s */
    struct sub_msg *sm = calloc(1, sizeof(*sm));
    if (!sm)
        return; /* leaks s rather than risk a use after free */
    sm->msg.cb = sub_msg_cb;
    sm->sub = s;
    sm->closed = true;
    ring_post(s->ring, &sm->msg);
}
