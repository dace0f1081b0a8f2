/* ts_json — see ts_json.h. */
#include "ts_json.h"

#include <jansson.h>
#include <string.h>

#include "ts.h"

static const char *member_str(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

int ts_check_error_json_at(const char *file, int line, const char *body, size_t len,
                           const char *code, const char *request_id)
{
    json_error_t jerr;
    json_t *root = json_loadb(body, len, 0, &jerr);
    int bad = 0;
    if (!json_is_object(root) || json_object_size(root) != 1) {
        ts_fail(file, line, "error body is not {\"error\":{...}}: %.*s", (int)len, body);
        json_decref(root);
        return -1;
    }
    json_t *e = json_object_get(root, "error");
    const char *c = member_str(e, "code"), *m = member_str(e, "message"),
               *rid = member_str(e, "requestId");
    if (!json_is_object(e) || json_object_size(e) != 3 || !c || !m || !rid) {
        ts_fail(file, line, "error object must have exactly code, message, requestId: %.*s",
                (int)len, body);
        bad = -1;
    } else {
        if (code && strcmp(c, code) != 0) {
            ts_fail(file, line, "error code \"%s\", want \"%s\"", c, code);
            bad = -1;
        }
        if (!m[0] || !rid[0]) {
            ts_fail(file, line, "empty message or requestId: %.*s", (int)len, body);
            bad = -1;
        }
        if (request_id && strcmp(rid, request_id) != 0) {
            ts_fail(file, line, "requestId \"%s\", want \"%s\"", rid, request_id);
            bad = -1;
        }
    }
    json_decref(root);
    return bad;
}
