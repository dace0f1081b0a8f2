/* api_events — GET /jobs/:id/events: Server-Sent Events for one job (status, progress,
 * output), until it finishes or the client leaves.
 *
 * The subscription lives on the dispatcher; events arrive here by message, in order, and are
 * written to the stream by the connection's own reactor. A comment line every 15 s keeps
 * proxies from timing the stream out. Freed only on the "closed" message, which the
 * dispatcher posts after the last event. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "api/api_call.h"
#include "jobs/engine.h"

#define SSE_PING_MS 15000

struct sse {
    struct engine_sub sub;
    struct ring_call rc;
    struct ring_msg unsub;
    struct gateway *gw;
    struct http_exchange *ex; /* NULL once the response is finished */
    struct ring_timer ping;
    char owner[130];
    bool admin;
    int status;
    bool started;
    bool subscribed; /* the dispatcher confirmed the subscription */
    bool aborted;    /* the client left before that */
};

static void sse_end(struct sse *s);

static void unsub_cb(struct ring *r, struct ring_msg *m)
{
    struct sse *s = (struct sse *)((char *)m - offsetof(struct sse, unsub));
    engine_unsubscribe(s->gw->engine, &s->sub);
}

/* Finishes the HTTP response (once) and asks the dispatcher to drop the subscription. */
static void sse_end(struct sse *s)
{
    if (!s->ex)
        return;
    ring_timer_cancel(http_ring(s->ex), &s->ping);
    if (s->started)
        http_stream_end(s->ex);
    else /* finishes the exchange; nobody is listening any more */
        http_respond_error(s->ex, 503, "UNAVAILABLE", "the client left");
    s->ex = NULL;
    s->unsub.cb = unsub_cb;
    ring_post(&s->gw->reactors[FLEET_REACTOR].ring, &s->unsub);
}

static void on_closed(struct engine_sub *sub)
{
    free((struct sse *)sub);
}

static bool sse_begin(struct sse *s)
{
    if (s->started)
        return true;
    s->started = true;
    http_add_header(s->ex, "Cache-Control", "no-cache");
    http_add_header(s->ex, "X-Accel-Buffering", "no");
    if (http_stream_begin(s->ex, 200, "text/event-stream") < 0)
        return false;
    ring_timer_arm(http_ring(s->ex), &s->ping, SSE_PING_MS);
    return true;
}

static void on_event(struct engine_sub *sub, const char *event, char *data, bool final)
{
    struct sse *s = (struct sse *)sub;
    if (s->aborted && !s->subscribed) {
        free(data); /* the subscribe reply, right behind, ends it */
        return;
    }
    if (s->ex && sse_begin(s)) {
        char head[64];
        int n = snprintf(head, sizeof(head), "event: %s\ndata: ", event);
        /* JSON from jansson has no raw newlines, so one data: line carries it */
        if (http_stream_write(s->ex, head, (size_t)n) < 0 ||
            http_stream_write(s->ex, data ? data : "null", data ? strlen(data) : 4) < 0 ||
            http_stream_write(s->ex, "\n\n", 2) < 0)
            final = true; /* the client is gone or not reading: stop */
    }
    free(data);
    if (final)
        sse_end(s);
}

static void ping_cb(struct ring_timer *t)
{
    struct sse *s = (struct sse *)((char *)t - offsetof(struct sse, ping));
    if (!s->ex)
        return;
    if (http_stream_write(s->ex, ": ping\n\n", 8) < 0)
        return sse_end(s);
    ring_timer_arm(http_ring(s->ex), &s->ping, SSE_PING_MS);
}

static void on_abort(struct http_exchange *ex, void *arg)
{
    struct sse *s = arg;
    if (s->subscribed)
        sse_end(s);
    else
        s->aborted = true;
}

static void subscribe_seen(struct job *j, long pos, void *ctx)
{
    struct sse *s = ctx;
    (void)pos;
    s->status = j ? engine_subscribe_seen(s->gw->engine, &s->sub, j) : 404;
    ring_call_return(&s->rc);
}

static void subscribe_work(struct ring_call *rc)
{
    struct sse *s = (struct sse *)((char *)rc - offsetof(struct sse, rc));
    if (!s->gw->engine) {
        s->status = 503;
        return ring_call_return(rc);
    }
    engine_fetch(s->gw->engine, s->sub.job_id, s->admin ? NULL : s->owner, subscribe_seen, s);
}

static void subscribe_reply(struct ring_call *rc)
{
    struct sse *s = (struct sse *)((char *)rc - offsetof(struct sse, rc));
    if (s->status == 200) {
        s->subscribed = true;
        if (s->aborted)
            sse_end(s);
        return; /* events (the first one came before this reply) drive the rest */
    }
    if (s->status == 404)
        http_respond_error(s->ex, 404, "JOB_NOT_FOUND", "no job %s", s->sub.job_id);
    else
        http_respond_error(s->ex, 503, "UNAVAILABLE", "the job engine is not running");
    free(s);
}

static void events_cb(struct http_exchange *ex, void *arg)
{
    struct gateway *gw = arg;
    struct sse *s = calloc(1, sizeof(*s));
    if (!s) {
        http_respond_error(ex, 503, "UNAVAILABLE", "out of memory");
        return;
    }
    s->gw = gw;
    s->ex = ex;
    s->sub.ring = http_ring(ex);
    s->sub.on_event = on_event;
    s->sub.on_closed = on_closed;
    s->ping.cb = ping_cb;
    snprintf(s->owner, sizeof(s->owner), "%s", api_owner(ex));
    s->admin = api_is_admin(ex);
    if (http_param_copy(ex, "id", s->sub.job_id, sizeof(s->sub.job_id)) != 36) {
        free(s);
        http_respond_error(ex, 404, "JOB_NOT_FOUND", "no such job");
        return;
    }
    http_on_abort(ex, on_abort, s);
    ring_call(&gw->reactors[FLEET_REACTOR].ring, http_ring(ex), &s->rc, subscribe_work,
              subscribe_reply);
}

int api_events_register(struct gateway *gw)
{
    return http_router_add(&gw->router, "GET", "/jobs/:id/events", events_cb, gw);
}
