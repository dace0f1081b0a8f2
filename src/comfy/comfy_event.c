/* comfy_event — see comfy_event.h. Owns nothing beyond the parsed tree in ev->root; every
 * string field is a bounded copy, so a hostile backend can only get itself truncated. */
#include "comfy/comfy_event.h"

#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <string.h>

static const char *const type_names[] = {
    [CEV_UNKNOWN] = "unknown",
    [CEV_STATUS] = "status",
    [CEV_EXECUTION_START] = "execution_start",
    [CEV_EXECUTION_CACHED] = "execution_cached",
    [CEV_EXECUTING] = "executing",
    [CEV_PROGRESS] = "progress",
    [CEV_PROGRESS_STATE] = "progress_state",
    [CEV_EXECUTED] = "executed",
    [CEV_EXECUTION_SUCCESS] = "execution_success",
    [CEV_EXECUTION_ERROR] = "execution_error",
    [CEV_EXECUTION_INTERRUPTED] = "execution_interrupted",
};

#define TYPE_COUNT (sizeof type_names / sizeof type_names[0])

const char *comfy_event_type_name(enum comfy_event_type t)
{
    if ((unsigned)t >= TYPE_COUNT)
        return "unknown";
    return type_names[t];
}

/* Matches the whole string (length included), so "executing\u0000x" or a 1 MB name that
 * merely starts with a known one is never mistaken for it. */
static enum comfy_event_type type_from_json(const json_t *s)
{
    const char *v = json_string_value(s);
    size_t n = json_string_length(s);
    for (size_t i = 1; i < TYPE_COUNT; i++) {
        if (strlen(type_names[i]) == n && memcmp(type_names[i], v, n) == 0)
            return (enum comfy_event_type)i;
    }
    return CEV_UNKNOWN;
}

/* Copies a JSON string into dst[cap], truncating at a UTF-8 character boundary so the copy is
 * still valid UTF-8 (it may be put back into JSON, which jansson refuses otherwise). Anything
 * that is not a string leaves dst as it was (the default, ""). */
static void copy_str(char *dst, size_t cap, const json_t *v)
{
    assert(cap > 0);
    if (!json_is_string(v))
        return;
    const char *s = json_string_value(v);
    size_t n = json_string_length(v);
    if (n >= cap) {
        n = cap - 1;
        while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
            n--; /* s[n] continues the character that starts before it: cut before that one */
    }
    memcpy(dst, s, n);
    dst[n] = '\0';
}

/* queue_remaining is a count; anything else (negative, fractional, huge) is "absent". A real
 * is accepted only because of the JSON_DECODE_INT_AS_REAL fallback in comfy_event_parse. */
static int count_value(const json_t *v)
{
    if (json_is_integer(v)) {
        json_int_t i = json_integer_value(v);
        return i >= 0 && i <= INT_MAX ? (int)i : -1;
    }
    if (json_is_real(v)) {
        double d = json_real_value(v);
        return d >= 0 && d <= INT_MAX && d == (double)(int)d ? (int)d : -1;
    }
    return -1;
}

static void parse_status(struct comfy_event *ev, const json_t *data)
{
    const json_t *status = json_object_get(data, "status");
    const json_t *exec_info = json_object_get(status, "exec_info");
    ev->queue_remaining = count_value(json_object_get(exec_info, "queue_remaining"));
    copy_str(ev->sid, sizeof ev->sid, json_object_get(data, "sid"));
}

static void parse_executing(struct comfy_event *ev, const json_t *data)
{
    const json_t *node = json_object_get(data, "node");
    /* Only an explicit null means "finished": a missing key is a malformed message, and
     * treating it as the end would finish a prompt that is still running. */
    ev->node_null = json_is_null(node);
    copy_str(ev->node, sizeof ev->node, node);
}

static void parse_progress(struct comfy_event *ev, const json_t *data)
{
    const json_t *value = json_object_get(data, "value");
    const json_t *max = json_object_get(data, "max");
    copy_str(ev->node, sizeof ev->node, json_object_get(data, "node"));
    if (json_is_number(value))
        ev->value = json_number_value(value);
    if (json_is_number(max))
        ev->max = json_number_value(max);
}

/* execution_error and execution_interrupted name the node "node_id", not "node". */
static void parse_failure(struct comfy_event *ev, const json_t *data)
{
    copy_str(ev->node, sizeof ev->node, json_object_get(data, "node_id"));
    copy_str(ev->node_type, sizeof ev->node_type, json_object_get(data, "node_type"));
    if (ev->type != CEV_EXECUTION_ERROR)
        return;
    copy_str(ev->exception_type, sizeof ev->exception_type,
             json_object_get(data, "exception_type"));
    copy_str(ev->exception_message, sizeof ev->exception_message,
             json_object_get(data, "exception_message"));
}

static void parse_data(struct comfy_event *ev, json_t *data)
{
    copy_str(ev->prompt_id, sizeof ev->prompt_id, json_object_get(data, "prompt_id"));
    switch (ev->type) {
    case CEV_STATUS:
        parse_status(ev, data);
        break;
    case CEV_EXECUTING:
        parse_executing(ev, data);
        break;
    case CEV_PROGRESS:
        parse_progress(ev, data);
        break;
    case CEV_EXECUTED: {
        json_t *output = json_object_get(data, "output");
        copy_str(ev->node, sizeof ev->node, json_object_get(data, "node"));
        ev->output = json_is_object(output) ? output : NULL;
        break;
    }
    case CEV_EXECUTION_CACHED: {
        json_t *nodes = json_object_get(data, "nodes");
        ev->cached_nodes = json_is_array(nodes) ? nodes : NULL;
        break;
    }
    case CEV_EXECUTION_ERROR:
    case CEV_EXECUTION_INTERRUPTED:
        parse_failure(ev, data);
        break;
    default:
        break;
    }
}

int comfy_event_parse(const char *p, size_t n, struct comfy_event *ev)
{
    assert(ev);
    assert(p || n == 0);
    memset(ev, 0, sizeof *ev);
    ev->queue_remaining = -1;
    if (n == 0)
        return -EINVAL;

    json_error_t jerr;
    json_t *root = json_loadb(p, n, 0, &jerr);
    /* ComfyUI seeds go up to 2^64-1 and execution_error echoes them in current_inputs; jansson
     * rejects integers past INT64_MAX. Losing an error event to that would hang the job, so
     * parse such a message again with every number as a double. */
    if (!root && json_error_code(&jerr) == json_error_numeric_overflow)
        root = json_loadb(p, n, JSON_DECODE_INT_AS_REAL, &jerr);
    if (!json_is_object(root)) {
        json_decref(root);
        return -EINVAL;
    }
    const json_t *type = json_object_get(root, "type");
    if (!json_is_string(type)) {
        json_decref(root);
        return -EINVAL;
    }

    ev->root = root;
    ev->type = type_from_json(type);
    copy_str(ev->type_name, sizeof ev->type_name, type);
    json_t *data = json_object_get(root, "data");
    if (json_is_object(data)) {
        ev->data = data;
        parse_data(ev, data);
    }
    return 0;
}

void comfy_event_free(struct comfy_event *ev)
{
    if (!ev)
        return;
    json_decref(ev->root);
    /* Borrowed pointers die with root: clear them so a stale use fails loudly, and a second
     * free is harmless. */
    ev->root = NULL;
    ev->data = NULL;
    ev->output = NULL;
    ev->cached_nodes = NULL;
}
