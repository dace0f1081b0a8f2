/* api_workflows — workflow templates: list, read (any version), and admin CRUD (create,
 * new version, delete), each change persisted and audited before it is acknowledged. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "api/api_call.h"
#include "jobs/engine.h"
#include "jobs/workflow_store.h"

/* --- workflows ---------------------------------------------------------------------------------- */

static void workflows_list_work(struct api_call *c)
{
    struct workflow_set *s = engine_workflows(c->gw->engine);
    json_t *arr = json_array();
    for (size_t i = 0; i < s->n; i++) {
        const struct workflow *w = s->items[i];
        if (!w->deleted && workflow_set_get(s, w->id, 0) == w)
            json_array_append_new(arr, workflow_to_json(w, false));
    }
    api_call_json(c, 200, json_pack("{s:o}", "workflows", arr));
}

static void workflows_list_cb(struct http_exchange *ex, void *arg)
{
    struct api_call *c = api_call_new(ex, arg, workflows_list_work);
    if (c)
        api_call_start(c);
}

static void workflow_get_work(struct api_call *c)
{
    const struct workflow *w = workflow_set_get(engine_workflows(c->gw->engine), c->id, c->version);
    if (!w || (c->version == 0 && w->deleted))
        return api_call_error(c, 404, "WORKFLOW_NOT_FOUND", "no workflow %s", c->id);
    api_call_json(c, 200, workflow_to_json(w, true));
}

static void workflow_get_cb(struct http_exchange *ex, void *arg)
{
    struct api_call *c = api_call_new(ex, arg, workflow_get_work);
    if (!c)
        return;
    http_param_copy(ex, "id", c->id, sizeof(c->id));
    char v[16];
    int len = http_query_get(http_req(ex), "version", v, sizeof(v));
    if (len != -1) {
        char *end;
        long n = strtol(v, &end, 10);
        if (len <= 0 || *end || n < 1 || n > 1000000) {
            free(c);
            http_respond_error(ex, 400, "VALIDATION_ERROR", "version must be a positive integer");
            return;
        }
        c->version = (int)n;
    }
    api_call_start(c);
}

/* --- admin changes ---------------------------------------------------------------------------- */

/* A change travels like an api_call (connection's reactor → dispatcher → back), but carries
 * the workflow parsed and checked on the connection's reactor (a bad body never reaches the
 * dispatcher) and waits on the dispatcher for the store. The set changes only after the save
 * has committed: no reader ever sees a change that could still be lost, and a failed save
 * needs no undo. Two changes racing for the same new version number (two PUTs, two POSTs of
 * one id) are told apart by the table's primary key: the later one gets 409. */
struct wf_change {
    struct ring_call rc;
    struct gateway *gw;
    struct http_exchange *ex;
    struct workflow w; /* moved into the set once durable */
    struct workflow_save save;
    /* answer */
    int status;
    const char *code;
    char message[320];
    char *json; /* owned */
    char location[192];
};

static struct wf_change *change_new(struct http_exchange *ex, struct gateway *gw,
                                    enum workflow_change kind)
{
    struct wf_change *ch = calloc(1, sizeof(*ch));
    if (!ch) {
        http_respond_error(ex, 503, "UNAVAILABLE", "out of memory");
        return NULL;
    }
    ch->gw = gw;
    ch->ex = ex;
    ch->save.change = kind;
    ch->save.ctx = ch;
    snprintf(ch->save.actor, sizeof(ch->save.actor), "%s", api_actor(ex));
    snprintf(ch->save.peer, sizeof(ch->save.peer), "%s", http_peer(ex));
    return ch;
}

static void change_free(struct wf_change *ch)
{
    workflow_free(&ch->w);
    json_decref(ch->save.row);
    free(ch->json);
    free(ch);
}

static void change_reply(struct ring_call *rc)
{
    struct wf_change *ch = (struct wf_change *)rc;
    struct http_exchange *ex = ch->ex;
    if (ch->status == 201 || ch->status == 204) {
        static const char *const actions[] = {"create", "update", "delete"};
        char actor[256];
        json_escape(actor, sizeof(actor), ch->save.actor, strlen(ch->save.actor));
        LOG(http_logger(ex), LOG_INFO, "workflow changed",
            "\"requestId\":\"%s\",\"action\":\"workflow.%s\",\"workflow\":\"%s\","
            "\"version\":%d,\"actor\":\"%s\"",
            http_request_id(ex), actions[ch->save.change], ch->save.id, ch->w.version, actor);
    }
    if (ch->json) {
        http_add_header(ex, "Location", ch->location);
        http_respond_owned(ex, ch->status, "application/json", ch->json, strlen(ch->json), free);
        ch->json = NULL;
    } else if (ch->status == 204) {
        http_respond(ex, 204, NULL, NULL, 0);
    } else {
        http_respond_error(ex, ch->status, ch->code, "%s", ch->message);
    }
    change_free(ch);
}

static void change_error(struct wf_change *ch, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void change_error(struct wf_change *ch, int status, const char *code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ch->message, sizeof(ch->message), fmt, ap);
    va_end(ap);
    ch->status = status;
    ch->code = code;
    ring_call_return(&ch->rc);
}

/* On the dispatcher, after the commit (or its failure). */
static void saved_cb(struct workflow_save *sv)
{
    struct wf_change *ch = sv->ctx;
    struct workflow_set *s = engine_workflows(ch->gw->engine);
    if (sv->req.rc == SQLITE_CONSTRAINT) {
        if (sv->change == WORKFLOW_CREATED)
            return change_error(ch, 409, "WORKFLOW_EXISTS", "workflow %s exists", sv->id);
        return change_error(ch, 409, "WORKFLOW_CONFLICT",
                            "workflow %s was changed concurrently; retry", sv->id);
    }
    if (sv->req.rc != SQLITE_OK)
        return change_error(ch, 503, "STORE_UNAVAILABLE", "the change could not be stored");
    if (sv->change == WORKFLOW_DELETED) {
        workflow_set_delete(s, sv->id);
        ch->status = 204;
        return ring_call_return(&ch->rc);
    }
    int version = ch->w.version;
    if (workflow_set_find(s, sv->id, version)) {
        /* SHARED_STORE: the refresh from the store (engine_workflows_refresh) was quicker */
        workflow_free(&ch->w);
    } else if (workflow_set_add(s, &ch->w, true) < 0) {
        /* committed but not in memory until a restart; change_work checks the bound
         * first, so only a burst of concurrent changes at the limit (or ENOMEM) gets here */
        ch->w.version = version;
        return change_error(ch, 500, "INTERNAL",
                            "workflow %s version %d is stored but could not "
                            "be loaded; it will be after a restart",
                            sv->id, version);
    }
    ch->w.version = version; /* for the log line: w itself has moved into the set */
    json_t *o = workflow_to_json(workflow_set_get(s, sv->id, version), true);
    ch->json = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (!ch->json)
        return change_error(ch, 500, "INTERNAL", "cannot encode the answer");
    snprintf(ch->location, sizeof(ch->location), "/workflows/%s?version=%d", sv->id, version);
    ch->status = 201;
    ring_call_return(&ch->rc);
}

static int next_version(const struct workflow_set *s, const char *id)
{
    int latest = 0;
    for (size_t i = 0; i < s->n; i++) {
        if (!strcmp(s->items[i]->id, id) && s->items[i]->version > latest)
            latest = s->items[i]->version;
    }
    return latest + 1;
}

static void change_work(struct ring_call *rc)
{
    struct wf_change *ch = (struct wf_change *)rc;
    struct gateway *gw = ch->gw;
    if (!gw->engine || !gw->store)
        return change_error(ch, 503, "UNAVAILABLE", "the job engine is not running");
    struct workflow_set *s = engine_workflows(gw->engine);
    const char *id = ch->save.id;
    bool live = workflow_set_get(s, id, 0) != NULL;
    if (ch->save.change == WORKFLOW_CREATED && live)
        return change_error(ch, 409, "WORKFLOW_EXISTS",
                            "workflow %s exists; PUT /workflows/%s makes a new version", id, id);
    if (ch->save.change != WORKFLOW_CREATED && !live)
        return change_error(ch, 404, "WORKFLOW_NOT_FOUND", "no workflow %s", id);
    if (ch->save.change != WORKFLOW_DELETED) {
        if (s->n >= s->max)
            return change_error(ch, 409, "WORKFLOW_LIMIT",
                                "the gateway holds its maximum of %zu workflow versions", s->max);
        ch->w.version = next_version(s, id);
        json_object_set_new(ch->save.row, "version", json_integer(ch->w.version));
    }
    ch->save.done = saved_cb;
    if (workflow_store_save(gw->store, rc->target, &ch->save) < 0)
        return change_error(ch, 503, "STORE_UNAVAILABLE", "the store is busy; retry");
}

static void change_start(struct wf_change *ch)
{
    ring_call(&ch->gw->reactors[FLEET_REACTOR].ring, http_ring(ch->ex), &ch->rc, change_work,
              change_reply);
}

/* The fields a body may have; anything else is most likely a typo of one of them. */
static int check_body(const json_t *doc, const char *path_id, char *err, size_t len)
{
    static const char *const allowed[] = {"id",     "name",        "description", "template",
                                          "schema", "inputSchema", "overlays",    NULL};
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)doc, key, v)
    {
        bool known = false;
        for (const char *const *k = allowed; *k; k++)
            known |= !strcmp(*k, key);
        if (!known) {
            snprintf(err, len,
                     "unknown field \"%.64s\" (allowed: id, name, description, "
                     "template, schema, overlays)",
                     key);
            return -1;
        }
    }
    const json_t *id = json_object_get(doc, "id");
    if (path_id && id && (!json_is_string(id) || strcmp(json_string_value(id), path_id) != 0)) {
        snprintf(err, len, "id in the body must be the id of the path (%s)", path_id);
        return -1;
    }
    return 0; /* name and description: workflow_parse */
}

/* POST and PUT: the body becomes a workflow here, on the connection's reactor. */
static void change_with_body(struct http_exchange *ex, struct gateway *gw,
                             enum workflow_change kind, const char *path_id)
{
    json_t *doc = api_body_json(ex);
    if (!doc)
        return;
    struct wf_change *ch = change_new(ex, gw, kind);
    if (!ch) {
        json_decref(doc);
        return;
    }
    char err[320];
    int rc = check_body(doc, path_id, err, sizeof(err));
    if (rc == 0)
        rc = workflow_parse(doc, path_id, &ch->w, err, sizeof(err));
    json_decref(doc);
    if (rc < 0) {
        change_free(ch);
        http_respond_error(ex, 400, "VALIDATION_ERROR", "%s", err);
        return;
    }
    snprintf(ch->w.created_by, sizeof(ch->w.created_by), "%s", ch->save.actor);
    snprintf(ch->save.id, sizeof(ch->save.id), "%s", ch->w.id);
    ch->save.row = workflow_store_snapshot(&ch->w);
    if (!ch->save.row) {
        change_free(ch);
        http_respond_error(ex, 503, "UNAVAILABLE", "out of memory");
        return;
    }
    change_start(ch);
}

static void workflow_post_cb(struct http_exchange *ex, void *arg)
{
    change_with_body(ex, arg, WORKFLOW_CREATED, NULL);
}

/* A path id that is too long cannot name a workflow: 404, as for any unknown id. */
static bool id_param(struct http_exchange *ex, char *id, size_t cap)
{
    if (http_param_copy(ex, "id", id, cap) < 0) {
        http_respond_error(ex, 404, "WORKFLOW_NOT_FOUND", "no such workflow");
        return false;
    }
    return true;
}

static void workflow_put_cb(struct http_exchange *ex, void *arg)
{
    char id[96];
    if (id_param(ex, id, sizeof(id)))
        change_with_body(ex, arg, WORKFLOW_UPDATED, id);
}

static void workflow_delete_cb(struct http_exchange *ex, void *arg)
{
    char id[96];
    if (!id_param(ex, id, sizeof(id)))
        return;
    struct wf_change *ch = change_new(ex, arg, WORKFLOW_DELETED);
    if (!ch)
        return;
    snprintf(ch->save.id, sizeof(ch->save.id), "%s", id);
    change_start(ch);
}

/* --- audit log -------------------------------------------------------------------------------- */

/* Read straight from the store thread back to the connection's reactor: the dispatcher has
 * nothing to do with it. */
struct audit_read {
    struct store_req req;
    struct http_exchange *ex;
    int limit;
    json_t *rows; /* built on the store thread, handed over with the request */
};

static const char *AUDIT_LIST = "SELECT id, ts, actor, action, target, peer, detail"
                                " FROM audit_log ORDER BY id DESC LIMIT ?1";

static json_t *text_or_null(sqlite3_stmt *st, int i)
{
    const char *t = (const char *)sqlite3_column_text(st, i);
    return t ? json_string(t) : json_null();
}

static int audit_work(struct store *s, struct store_req *r)
{
    struct audit_read *ar = (struct audit_read *)r;
    sqlite3_stmt *st = store_stmt(s, AUDIT_LIST);
    if (!st)
        return SQLITE_ERROR;
    sqlite3_bind_int(st, 1, ar->limit);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *d = (const char *)sqlite3_column_text(st, 6);
        json_t *detail = d ? json_loads(d, JSON_DECODE_ANY, NULL) : NULL;
        json_array_append_new(ar->rows,
                              json_pack("{s:I, s:I, s:o, s:o, s:o, s:o, s:o}", "id",
                                        (json_int_t)sqlite3_column_int64(st, 0), "ts",
                                        (json_int_t)sqlite3_column_int64(st, 1), "actor",
                                        text_or_null(st, 2), "action", text_or_null(st, 3),
                                        "target", text_or_null(st, 4), "peer", text_or_null(st, 5),
                                        "detail", detail ? detail : json_null()));
    }
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

static void audit_done(struct store_req *r)
{
    struct audit_read *ar = (struct audit_read *)r;
    char *s = NULL;
    if (r->rc == SQLITE_OK) {
        json_t *o = json_pack("{s:O}", "entries", ar->rows);
        s = o ? json_dumps(o, JSON_COMPACT) : NULL;
        json_decref(o);
    }
    if (s)
        http_respond_owned(ar->ex, 200, "application/json", s, strlen(s), free);
    else
        http_respond_error(ar->ex, 503, "STORE_UNAVAILABLE", "cannot read the audit log");
    json_decref(ar->rows);
    free(ar);
}

static void audit_cb(struct http_exchange *ex, void *arg)
{
    struct gateway *gw = arg;
    long limit = 100;
    char v[32];
    if (http_query_get(http_req(ex), "limit", v, sizeof(v)) != -1) {
        char *end;
        limit = strtol(v, &end, 10);
        if (!v[0] || *end || limit < 1 || limit > 1000) {
            http_respond_error(ex, 400, "VALIDATION_ERROR", "limit must be 1..1000");
            return;
        }
    }
    struct audit_read *ar = calloc(1, sizeof(*ar));
    if (ar)
        ar->rows = json_array();
    if (!ar || !ar->rows || !gw->store) {
        if (ar)
            json_decref(ar->rows);
        free(ar);
        http_respond_error(ex, 503, "UNAVAILABLE", "the audit log is not available");
        return;
    }
    ar->ex = ex;
    ar->limit = (int)limit;
    ar->req.work = audit_work;
    ar->req.done = audit_done;
    ar->req.origin = http_ring(ex);
    if (store_submit(gw->store, &ar->req) < 0) {
        json_decref(ar->rows);
        free(ar);
        http_add_header(ex, "Retry-After", "1");
        http_respond_error(ex, 503, "STORE_UNAVAILABLE", "the store is busy; retry");
    }
}

int api_workflows_register(struct gateway *gw)
{
    struct http_router *r = &gw->router;
    if (http_router_add(r, "GET", "/workflows", workflows_list_cb, gw) < 0 ||
        http_router_add(r, "GET", "/workflows/:id", workflow_get_cb, gw) < 0 ||
        http_router_add_tagged(r, "POST", "/workflows", workflow_post_cb, gw, API_ADMIN) < 0 ||
        http_router_add_tagged(r, "PUT", "/workflows/:id", workflow_put_cb, gw, API_ADMIN) < 0 ||
        http_router_add_tagged(r, "DELETE", "/workflows/:id", workflow_delete_cb, gw, API_ADMIN) < 0 ||
        http_router_add_tagged(r, "GET", "/audit", audit_cb, gw, API_ADMIN) < 0)
        return -1;
    return 0;
}
