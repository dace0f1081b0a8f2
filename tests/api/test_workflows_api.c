/* test_workflows_api — the workflow registry over HTTP against the real binary: the bundled
 * list, full reads, create / new version / delete with their answers, versions that stay
 * readable (and usable by jobs) after an update, every kind of bad body refused with nothing
 * stored, the audit log, and a restart on the same storage that brings back exactly the same
 * versions and hashes. No ComfyUI is needed: a submitted job just stays queued. */
#include <curl/curl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ts.h"
#include "ts_curl.h"
#include "ts_json.h"
#include "ts_proc.h"

static struct ts_server srv;
static char storage[256];
static char env_storage[320], env_workflows[1100];
static const char *server_env[] = {env_storage, env_workflows, NULL};

/* state carried from case to case */
static char hash_v1[65], hash_v2[65];
static char job_v1[64];

#define TEMPLATE                                                                                   \
    "{\"1\":{\"class_type\":\"EmptyImage\",\"inputs\":{\"width\":\"{{size}}\","                    \
    "\"height\":\"{{size}}\",\"batch_size\":1,\"color\":0}},"                                      \
    "\"2\":{\"class_type\":\"SaveImage\",\"inputs\":{\"images\":[\"1\",0],"                        \
    "\"filename_prefix\":\"x\"}}}"
#define SCHEMA(def)                                                                                \
    "{\"type\":\"object\",\"additionalProperties\":false,\"properties\":{"                         \
    "\"size\":{\"type\":\"integer\",\"minimum\":8,\"maximum\":512,\"default\":" def "},"           \
    "\"big\":{\"type\":\"boolean\",\"default\":false}}}"
#define OVERLAYS                                                                                   \
    "[{\"when\":\"big\",\"template\":{\"1\":{\"class_type\":\"EmptyImage\",\"inputs\":{"           \
    "\"width\":512,\"height\":512,\"batch_size\":1,\"color\":0}}}}]"

static const char *const X_V1 =
    "{\"id\":\"x\",\"name\":\"X\",\"description\":\"test\","
    "\"template\":" TEMPLATE ",\"schema\":" SCHEMA("64") ",\"overlays\":" OVERLAYS "}";
static const char *const X_V2 = "{\"name\":\"X2\",\"template\":" TEMPLATE
                                ",\"schema\":" SCHEMA("128") ",\"overlays\":" OVERLAYS "}";

/* One request; the status, or -1. The response stays in x (ts_xfer_free it). */
static long call(struct ts_xfer *x, const char *method, const char *path, const char *body)
{
    static const char *const hdrs[] = {"Content-Type: application/json", NULL};
    char url[1024];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", srv.port, path);
    if (ts_xfer_init(x, url, hdrs) < 0)
        return -1;
    curl_easy_setopt(x->easy, CURLOPT_CUSTOMREQUEST, method);
    if (body) {
        curl_easy_setopt(x->easy, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(x->easy, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    }
    if (ts_curl_perform(x) != CURLE_OK)
        return -1;
    return x->status;
}

/* The request's JSON answer (NULL when it is not JSON); *status gets the status. */
static json_t *call_json(const char *method, const char *path, const char *body, long *status)
{
    struct ts_xfer x;
    *status = call(&x, method, path, body);
    json_error_t je;
    json_t *j = x.body ? json_loadb(x.body, x.body_len, 0, &je) : NULL;
    ts_xfer_free(&x);
    return j;
}

/* The raw body of a GET (owned), for byte-for-byte comparisons. */
static char *get_text(const char *path, long *status)
{
    struct ts_xfer x;
    *status = call(&x, "GET", path, NULL);
    char *s = strdup(x.body ? x.body : "");
    ts_xfer_free(&x);
    return s;
}

static const char *str(const json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "";
}

static long long num(const json_t *o, const char *key)
{
    return json_integer_value(json_object_get(o, key));
}

/* "id@version#hash" of every listed workflow, one per line, sorted: the registry's identity. */
static char *list_identity(void)
{
    long st;
    json_t *j = call_json("GET", "/workflows", NULL, &st);
    TS_CHECK_INT(st, 200);
    json_t *arr = json_object_get(j, "workflows");
    size_t n = json_array_size(arr), i;
    char **lines = calloc(n + 1, sizeof(*lines));
    json_t *w;
    json_array_foreach(arr, i, w)
    {
        lines[i] = malloc(200);
        snprintf(lines[i], 200, "%s@%lld#%s\n", str(w, "id"), num(w, "version"), str(w, "hash"));
    }
    for (size_t a = 0; a < n; a++) { /* insertion sort: a handful of lines */
        for (size_t b = a; b > 0 && strcmp(lines[b - 1], lines[b]) > 0; b--) {
            char *t = lines[b];
            lines[b] = lines[b - 1];
            lines[b - 1] = t;
        }
    }
    char *out = calloc(1, n * 200 + 1);
    for (size_t a = 0; a < n; a++) {
        strcat(out, lines[a]);
        free(lines[a]);
    }
    free(lines);
    json_decref(j);
    return out;
}

static size_t audit_count(void)
{
    long st;
    json_t *j = call_json("GET", "/audit?limit=1000", NULL, &st);
    TS_CHECK_INT(st, 200);
    size_t n = json_array_size(json_object_get(j, "entries"));
    json_decref(j);
    return n;
}

/* --- cases ------------------------------------------------------------------------------------ */

static void setup(void)
{
    const char *wd = getenv("WORKFLOWS_DIR");
    TS_REQUIRE(wd && wd[0]);
    TS_REQUIRE(ts_mkdtemp(storage, sizeof(storage)) == 0);
    snprintf(env_storage, sizeof(env_storage), "STORAGE_LOCAL_PATH=%s/data", storage);
    snprintf(env_workflows, sizeof(env_workflows), "WORKFLOWS_DIR=%s", wd);
    TS_REQUIRE(ts_server_start(&srv, server_env) == 0);
}

static void teardown(void)
{
    TS_CHECK(ts_server_stop(&srv, 15000) == 0);
    ts_rmtree(storage);
}

static void test_list_bundled(void)
{
    char *ids = list_identity();
    static const char *const bundled[] = {"icon_512@1#", "sdxl_realism_v1@1#", "smoke@1#",
                                          "sprite_transparent_bg@1#"};
    const char *p = ids;
    for (int i = 0; i < 4; i++) {
        TS_CHECKF(strncmp(p, bundled[i], strlen(bundled[i])) == 0, "want %s in:\n%s", bundled[i],
                  ids);
        p = strchr(p, '\n');
        if (!p)
            break;
        p++;
    }
    TS_CHECKF(p && !*p, "more than the 4 bundled workflows:\n%s", ids);
    free(ids);
}

static void test_get_full(void)
{
    long st;
    json_t *w = call_json("GET", "/workflows/smoke", NULL, &st);
    TS_CHECK_INT(st, 200);
    TS_CHECK_STR(str(w, "id"), "smoke");
    TS_CHECK_INT(num(w, "version"), 1);
    TS_CHECK_INT(strlen(str(w, "hash")), 64);
    TS_CHECK(json_is_true(json_object_get(w, "bundled")));
    json_t *t = json_object_get(w, "template");
    TS_CHECK(json_is_object(t) && json_object_get(t, "1") && json_object_get(t, "2"));
    TS_CHECK_STR(str(json_object_get(t, "1"), "class_type"), "EmptyImage");
    TS_CHECK(json_is_object(json_object_get(json_object_get(w, "schema"), "properties")));
    json_decref(w);
    json_decref(call_json("GET", "/workflows/icon_512", NULL, &st));
    TS_CHECK_INT(st, 200);
    json_decref(call_json("GET", "/workflows/nope", NULL, &st));
    TS_CHECK_INT(st, 404);
}

static void test_create(void)
{
    struct ts_xfer x;
    TS_CHECK_INT(call(&x, "POST", "/workflows", X_V1), 201);
    char loc[256] = "";
    TS_CHECK(ts_xfer_header(&x, "location", loc, sizeof(loc)));
    TS_CHECK_STR(loc, "/workflows/x?version=1");
    json_t *w = x.body ? json_loads(x.body, 0, NULL) : NULL;
    TS_CHECK_INT(num(w, "version"), 1);
    TS_CHECK_STR(str(w, "name"), "X");
    TS_CHECK(json_is_object(json_object_get(w, "template")));
    TS_CHECK(json_is_array(json_object_get(w, "overlays")));
    snprintf(hash_v1, sizeof(hash_v1), "%s", str(w, "hash"));
    TS_CHECK_INT(strlen(hash_v1), 64);
    json_decref(w);
    ts_xfer_free(&x);

    long st;
    w = call_json("GET", "/workflows/x", NULL, &st);
    TS_CHECK_INT(st, 200);
    TS_CHECK_INT(num(w, "version"), 1);
    TS_CHECK_STR(str(w, "hash"), hash_v1);
    TS_CHECK_STR(str(w, "created_by"), "anonymous");
    json_decref(w);

    /* an id with a live version cannot be created again */
    TS_CHECK_INT(call(&x, "POST", "/workflows", X_V1), 409);
    ts_check_error_json(x.body, x.body_len, "WORKFLOW_EXISTS", NULL);
    ts_xfer_free(&x);
}

static void test_update(void)
{
    struct ts_xfer x;
    TS_CHECK_INT(call(&x, "PUT", "/workflows/x", X_V2), 201);
    char loc[256] = "";
    TS_CHECK(ts_xfer_header(&x, "location", loc, sizeof(loc)));
    TS_CHECK_STR(loc, "/workflows/x?version=2");
    json_t *w = x.body ? json_loads(x.body, 0, NULL) : NULL;
    TS_CHECK_INT(num(w, "version"), 2);
    TS_CHECK_STR(str(w, "name"), "X2");
    snprintf(hash_v2, sizeof(hash_v2), "%s", str(w, "hash"));
    TS_CHECK(strlen(hash_v2) == 64 && strcmp(hash_v1, hash_v2) != 0);
    json_decref(w);
    ts_xfer_free(&x);

    long st;
    w = call_json("GET", "/workflows/x?version=1", NULL, &st);
    TS_CHECK_INT(st, 200);
    TS_CHECK_INT(num(w, "version"), 1);
    TS_CHECK_STR(str(w, "hash"), hash_v1);
    TS_CHECK_STR(str(w, "name"), "X");
    json_decref(w);
    w = call_json("GET", "/workflows/x", NULL, &st);
    TS_CHECK_INT(num(w, "version"), 2);
    TS_CHECK_STR(str(w, "hash"), hash_v2);
    json_decref(w);

    TS_CHECK_INT(call(&x, "PUT", "/workflows/nope", X_V2), 404);
    ts_check_error_json(x.body, x.body_len, "WORKFLOW_NOT_FOUND", NULL);
    ts_xfer_free(&x);
}

/* A job pinned to version 1 after version 2 exists renders from (and reports) version 1. */
static void test_pinned_job(void)
{
    long st;
    json_t *r = call_json("POST", "/jobs", "{\"workflowId\":\"x\",\"workflowVersion\":1}", &st);
    TS_CHECK_INT(st, 202);
    snprintf(job_v1, sizeof(job_v1), "%s", str(r, "jobId"));
    json_decref(r);
    TS_REQUIRE(job_v1[0]);
    char path[128];
    snprintf(path, sizeof(path), "/jobs/%s", job_v1);
    json_t *j = call_json("GET", path, NULL, &st);
    TS_CHECK_INT(st, 200);
    TS_CHECK_INT(num(j, "workflowVersion"), 1);
    TS_CHECK_STR(str(j, "workflowHash"), hash_v1);
    TS_CHECK_STR(str(j, "status"), "queued");
    json_decref(j);

    /* without a version: the latest */
    r = call_json("POST", "/jobs", "{\"workflowId\":\"x\",\"inputs\":{\"size\":32}}", &st);
    TS_CHECK_INT(st, 202);
    snprintf(path, sizeof(path), "/jobs/%s", str(r, "jobId"));
    json_decref(r);
    j = call_json("GET", path, NULL, &st);
    TS_CHECK_INT(num(j, "workflowVersion"), 2);
    TS_CHECK_STR(str(j, "workflowHash"), hash_v2);
    json_decref(j);
}

/* Bundled workflows take new versions and deletions like any other. */
static void test_bundled_changes(void)
{
    long st;
    json_t *w = call_json("PUT", "/workflows/smoke",
                          "{\"template\":" TEMPLATE ",\"schema\":" SCHEMA("16") "}", &st);
    TS_CHECK_INT(st, 201);
    TS_CHECK_INT(num(w, "version"), 2);
    TS_CHECK(json_is_false(json_object_get(w, "bundled")));
    json_decref(w);
    w = call_json("GET", "/workflows/smoke?version=1", NULL, &st);
    TS_CHECK_INT(st, 200);
    TS_CHECK(json_is_true(json_object_get(w, "bundled")));
    json_decref(w);

    struct ts_xfer x;
    TS_CHECK_INT(call(&x, "DELETE", "/workflows/icon_512", NULL), 204);
    TS_CHECK_INT(x.body_len, 0);
    ts_xfer_free(&x);
    json_decref(call_json("GET", "/workflows/icon_512", NULL, &st));
    TS_CHECK_INT(st, 404);
}

static void check_refused(const char *method, const char *path, const char *body,
                          const char *want_in_message)
{
    struct ts_xfer x;
    long st = call(&x, method, path, body);
    TS_CHECKF(st == 400, "%s %s %.60s: status %ld, want 400", method, path, body, st);
    ts_check_error_json(x.body, x.body_len, "VALIDATION_ERROR", NULL);
    TS_CHECKF(x.body && strstr(x.body, want_in_message), "message of %.60s lacks \"%s\": %s", body,
              want_in_message, x.body ? x.body : "");
    ts_xfer_free(&x);
}

static void test_bad_bodies(void)
{
    long st;
    char *before = get_text("/workflows", &st);
    size_t audited = audit_count();
    static const char *const ok_schema = "{\"type\":\"object\",\"properties\":{"
                                         "\"n\":{\"type\":\"integer\",\"default\":1}}}";
    static const char *const node = "{\"1\":{\"class_type\":\"EmptyImage\",\"inputs\":{"
                                    "\"width\":\"{{n}}\"}}}";
    char b[1024];
    check_refused("POST", "/workflows", "{\"id\":\"bad\",", "malformed JSON");
    check_refused("POST", "/workflows", "[1,2]", "JSON object");
    snprintf(b, sizeof(b), "{\"id\":\"bad\",\"schema\":%s}", ok_schema);
    check_refused("POST", "/workflows", b, "template");
    snprintf(b, sizeof(b), "{\"id\":\"bad\",\"template\":[1],\"schema\":%s}", ok_schema);
    check_refused("POST", "/workflows", b, "template");
    snprintf(b, sizeof(b),
             "{\"id\":\"bad\",\"template\":%s,\"schema\":{\"type\":\"object\","
             "\"properties\":{}}}",
             node);
    check_refused("POST", "/workflows", b, "{{n}} is not declared");
    snprintf(b, sizeof(b),
             "{\"id\":\"bad\",\"template\":%s,\"schema\":{\"type\":\"object\","
             "\"properties\":{\"n\":{\"type\":\"integer\"}},\"oneOf\":[]}}",
             node);
    check_refused("POST", "/workflows", b, "oneOf");
    snprintf(b, sizeof(b), "{\"id\":\"../bad\",\"template\":%s,\"schema\":%s}", node, ok_schema);
    check_refused("POST", "/workflows", b, "workflow id");
    snprintf(b, sizeof(b), "{\"id\":\"b a d\",\"template\":%s,\"schema\":%s}", node, ok_schema);
    check_refused("POST", "/workflows", b, "workflow id");
    snprintf(b, sizeof(b),
             "{\"id\":\"bad\",\"template\":%s,\"schema\":%s,\"overlays\":"
             "[{\"when\":\"n\",\"template\":{}}]}",
             node, ok_schema);
    check_refused("POST", "/workflows", b, "boolean input");
    snprintf(b, sizeof(b), "{\"id\":\"bad\",\"templat\":%s,\"schema\":%s}", node, ok_schema);
    check_refused("POST", "/workflows", b, "unknown field");
    snprintf(b, sizeof(b), "{\"id\":\"bad\",\"name\":7,\"template\":%s,\"schema\":%s}", node,
             ok_schema);
    check_refused("POST", "/workflows", b, "name");
    /* the same checks guard a new version */
    check_refused("PUT", "/workflows/x", "{\"template\":\"no\"}", "template");
    snprintf(b, sizeof(b), "{\"id\":\"other\",\"template\":%s,\"schema\":%s}", node, ok_schema);
    check_refused("PUT", "/workflows/x", b, "id");

    char *after = get_text("/workflows", &st);
    TS_CHECKF(!strcmp(before, after), "list changed:\n%s\n%s", before, after);
    free(before);
    free(after);
    TS_CHECK_INT(audit_count(), audited);
    json_decref(call_json("GET", "/workflows/bad", NULL, &st));
    TS_CHECK_INT(st, 404);
    json_t *w = call_json("GET", "/workflows/x", NULL, &st);
    TS_CHECK_INT(num(w, "version"), 2);
    json_decref(w);
}

static void test_delete(void)
{
    struct ts_xfer x;
    TS_CHECK_INT(call(&x, "DELETE", "/workflows/x", NULL), 204);
    ts_xfer_free(&x);
    long st;
    json_t *e = call_json("GET", "/workflows/x", NULL, &st);
    TS_CHECK_INT(st, 404);
    json_decref(e);
    TS_CHECK_INT(call(&x, "POST", "/jobs", "{\"workflowId\":\"x\"}"), 404);
    ts_check_error_json(x.body, x.body_len, "WORKFLOW_NOT_FOUND", NULL);
    ts_xfer_free(&x);
    TS_CHECK_INT(call(&x, "DELETE", "/workflows/x", NULL), 404);
    ts_xfer_free(&x);
    TS_CHECK_INT(call(&x, "DELETE", "/workflows/never", NULL), 404);
    ts_xfer_free(&x);

    /* the job pinned to version 1 is unaffected; its version stays readable */
    char path[128];
    snprintf(path, sizeof(path), "/jobs/%s", job_v1);
    json_t *j = call_json("GET", path, NULL, &st);
    TS_CHECK_INT(st, 200);
    TS_CHECK_STR(str(j, "workflowHash"), hash_v1);
    json_decref(j);
    j = call_json("GET", "/workflows/x?version=1", NULL, &st);
    TS_CHECK_INT(st, 200);
    TS_CHECK_STR(str(j, "hash"), hash_v1);
    json_decref(j);
    char *ids = list_identity();
    TS_CHECKF(!strstr(ids, "x@"), "deleted workflow still listed:\n%s", ids);
    free(ids);
}

static const json_t *find_entry(const json_t *entries, const char *action, const char *target)
{
    size_t i;
    json_t *e;
    json_array_foreach(entries, i, e)
    {
        if (!strcmp(str(e, "action"), action) && !strcmp(str(e, "target"), target))
            return e;
    }
    return NULL;
}

static void check_audit(void)
{
    long st;
    json_t *j = call_json("GET", "/audit", NULL, &st);
    TS_CHECK_INT(st, 200);
    json_t *entries = json_object_get(j, "entries");
    TS_CHECK_INT(json_array_size(entries), 5);
    static const char *const want[][2] = {{"workflow.create", "x@1"},
                                          {"workflow.update", "x@2"},
                                          {"workflow.update", "smoke@2"},
                                          {"workflow.delete", "icon_512"},
                                          {"workflow.delete", "x"}};
    for (size_t i = 0; i < 5; i++) {
        const json_t *e = find_entry(entries, want[i][0], want[i][1]);
        TS_CHECKF(e, "no audit entry %s %s", want[i][0], want[i][1]);
        TS_CHECK_STR(str(e, "actor"), "anonymous");
        TS_CHECKF(!strncmp(str(e, "peer"), "127.0.0.1:", 10), "peer %s", str(e, "peer"));
        TS_CHECK(num(e, "ts") > 0);
        TS_CHECK(json_is_object(json_object_get(e, "detail")));
    }
    const json_t *up = find_entry(entries, "workflow.update", "x@2");
    TS_CHECK_STR(str(json_object_get(up, "detail"), "hash"), hash_v2);
    /* newest first */
    TS_CHECK_STR(str(json_array_get(entries, 0), "target"), "x");
    for (size_t i = 1; i < json_array_size(entries); i++)
        TS_CHECK(num(json_array_get(entries, i - 1), "id") > num(json_array_get(entries, i), "id"));
    json_decref(j);

    j = call_json("GET", "/audit?limit=2", NULL, &st);
    TS_CHECK_INT(st, 200);
    TS_CHECK_INT(json_array_size(json_object_get(j, "entries")), 2);
    json_decref(j);
    static const char *const bad[] = {"/audit?limit=0", "/audit?limit=1001", "/audit?limit=x",
                                      "/audit?limit="};
    for (int i = 0; i < 4; i++) {
        struct ts_xfer x;
        TS_CHECKF(call(&x, "GET", bad[i], NULL) == 400, "%s: %ld", bad[i], x.status);
        ts_xfer_free(&x);
    }
}

static void test_audit(void)
{
    check_audit();
}

/* Everything the registry showed comes back identical from the database. */
static void test_restart(void)
{
    static const char *const paths[] = {"/workflows/x?version=1", "/workflows/x?version=2",
                                        "/workflows/smoke?version=2"};
    char *list = list_identity();
    char *before[3];
    long st;
    for (int i = 0; i < 3; i++) {
        before[i] = get_text(paths[i], &st);
        TS_CHECK_INT(st, 200);
    }
    TS_REQUIRE(ts_server_stop(&srv, 15000) == 0);
    TS_REQUIRE(ts_server_start(&srv, server_env) == 0);

    char *list2 = list_identity();
    TS_CHECKF(!strcmp(list, list2), "list after restart:\n%s\nbefore:\n%s", list2, list);
    for (int i = 0; i < 3; i++) {
        char *after = get_text(paths[i], &st);
        TS_CHECK_INT(st, 200);
        TS_CHECKF(!strcmp(before[i], after), "%s after restart:\n%s\nbefore:\n%s", paths[i], after,
                  before[i]);
        free(after);
        free(before[i]);
    }
    free(list);
    free(list2);
    static const char *const gone[] = {"/workflows/x", "/workflows/icon_512"};
    for (int i = 0; i < 2; i++) {
        json_decref(call_json("GET", gone[i], NULL, &st));
        TS_CHECKF(st == 404, "%s after restart: %ld", gone[i], st);
    }
    json_t *w = call_json("GET", "/workflows/smoke", NULL, &st);
    TS_CHECK_INT(num(w, "version"), 2);
    json_decref(w);
    w = call_json("GET", "/workflows/icon_512?version=1", NULL, &st);
    TS_CHECK_INT(st, 200);
    json_decref(w);
    check_audit();

    /* numbering carries on after the restart, past deleted versions */
    w = call_json("POST", "/workflows", X_V1, &st);
    TS_CHECK_INT(st, 201);
    TS_CHECK_INT(num(w, "version"), 3);
    TS_CHECK_STR(str(w, "hash"), hash_v1);
    json_decref(w);
}

int main(int argc, char **argv)
{
    static const struct ts_test tests[] = {
        {"list_bundled", test_list_bundled},
        {"get_full", test_get_full},
        {"create", test_create},
        {"update", test_update},
        {"pinned_job", test_pinned_job},
        {"bundled_changes", test_bundled_changes},
        {"bad_bodies", test_bad_bodies},
        {"delete", test_delete},
        {"audit", test_audit},
        {"restart", test_restart},
        {NULL, NULL},
    };
    curl_global_init(CURL_GLOBAL_DEFAULT);
    int rc = ts_main_shared(argc, argv, tests, setup, teardown);
    curl_global_cleanup();
    return rc;
}
