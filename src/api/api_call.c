/* api_call — see api_call.h. */
#include "api/api_call.h"
#include "api/api.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void reply_cb(struct ring_call *rc)
{
    struct api_call *c = (struct api_call *)rc;
    if (c->reply && c->status == 200) {
        c->reply(c);
        json_decref(c->body);
        free(c);
        return;
    }
    for (unsigned i = 0; i < c->nhdr; i++)
        http_add_header(c->ex, c->hdr_name[i], c->hdr_value[i]);
    if (c->json) {
        http_respond_owned(c->ex, c->status, "application/json", c->json, strlen(c->json), free);
        c->json = NULL;
    } else if (c->details) {
        api_respond_error_details(c->ex, c->status, c->code, c->message, c->details);
        c->details = NULL;
    } else {
        http_respond_error(c->ex, c->status, c->code ? c->code : "INTERNAL", "%s", c->message);
    }
    json_decref(c->body);
    free(c);
}

static void work_cb(struct ring_call *rc)
{
    struct api_call *c = (struct api_call *)rc;
    if (!c->gw->engine) {
        api_call_error(c, 503, "UNAVAILABLE", "the job engine is not running");
        return;
    }
    c->work(c);
}

struct api_call *api_call_new(struct http_exchange *ex, struct gateway *gw, api_work_fn work)
{
    struct api_call *c = calloc(1, sizeof(*c));
    if (!c) {
        http_respond_error(ex, 503, "UNAVAILABLE", "out of memory");
        return NULL;
    }
    c->gw = gw;
    c->ex = ex;
    c->work = work;
    c->status_filter = -1;
    snprintf(c->owner, sizeof(c->owner), "%s", api_owner(ex));
    c->admin = api_is_admin(ex);
    return c;
}

void api_call_start(struct api_call *c)
{
    ring_call(&c->gw->reactors[FLEET_REACTOR].ring, http_ring(c->ex), &c->rc, work_cb, reply_cb);
}

void api_call_header(struct api_call *c, const char *name, const char *value)
{
    if (c->nhdr == 4)
        return;
    snprintf(c->hdr_name[c->nhdr], sizeof(c->hdr_name[0]), "%s", name);
    snprintf(c->hdr_value[c->nhdr], sizeof(c->hdr_value[0]), "%s", value);
    c->nhdr++;
}

void api_call_done(struct api_call *c)
{
    ring_call_return(&c->rc);
}

void api_call_json(struct api_call *c, int status, json_t *o)
{
    c->status = status;
    c->json = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (!c->json) {
        c->status = 500;
        c->code = "INTERNAL";
        snprintf(c->message, sizeof(c->message), "cannot encode the answer");
    }
    api_call_done(c);
}

void api_call_error(struct api_call *c, int status, const char *code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->message, sizeof(c->message), fmt, ap);
    va_end(ap);
    c->status = status;
    c->code = code;
    api_call_done(c);
}

void api_respond_error_details(struct http_exchange *ex, int status, const char *code,
                               const char *message, json_t *details)
{
    json_t *o = json_pack("{s:{s:s, s:s, s:s, s:o}}", "error", "code", code, "message", message,
                          "requestId", http_request_id(ex), "errors",
                          details ? details : json_array());
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (s)
        http_respond_owned(ex, status, "application/json", s, strlen(s), free);
    else
        http_respond_error(ex, status, code, "%s", message);
}

json_t *api_body_json(struct http_exchange *ex)
{
    const struct http_request *r = http_req(ex);
    json_error_t je;
    /* depth is bounded by jansson (2048); duplicate keys are an error, not a silent pick */
    json_t *j = json_loadb(r->body, r->body_len, JSON_REJECT_DUPLICATES, &je);
    if (!j) {
        http_respond_error(ex, 400, "VALIDATION_ERROR", "malformed JSON at line %d column %d: %s",
                           je.line, je.column, je.text);
        return NULL;
    }
    if (!json_is_object(j)) {
        json_decref(j);
        http_respond_error(ex, 400, "VALIDATION_ERROR", "the body must be a JSON object");
        return NULL;
    }
    return j;
}
