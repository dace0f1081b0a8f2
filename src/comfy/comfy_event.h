/* comfy_event — parses one ComfyUI WebSocket text message into a flat struct.
 *
 * ComfyUI sends {"type": ..., "data": {...}} (transcripts 01, 02, 10, 13, 14, 15). This module
 * only reads; it never trusts the shape: a missing or mistyped field leaves the default, and
 * anything that is not a JSON object with a string "type" is -EINVAL. Fuzzed. */
#ifndef COMFYGATE_COMFY_EVENT_H
#define COMFYGATE_COMFY_EVENT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

enum comfy_event_type {
    CEV_UNKNOWN = 0, /* a type we do not use (crystools.monitor, feature_flags, ...) */
    CEV_STATUS,
    CEV_EXECUTION_START,
    CEV_EXECUTION_CACHED,
    CEV_EXECUTING,
    CEV_PROGRESS,
    CEV_PROGRESS_STATE,
    CEV_EXECUTED,
    CEV_EXECUTION_SUCCESS,
    CEV_EXECUTION_ERROR,
    CEV_EXECUTION_INTERRUPTED,
};

struct comfy_event {
    enum comfy_event_type type;
    char type_name[48];
    char prompt_id[80];    /* "" when absent */
    char node[64];         /* executing/executed/progress/error/interrupted node id */
    bool node_null;        /* executing with "node": null: the prompt is finished */
    int queue_remaining;   /* status; -1 when absent */
    char sid[80];          /* status on connect */
    double value, max;     /* progress */
    json_t *output;        /* executed: data.output (borrowed from root) */
    json_t *cached_nodes;  /* execution_cached: data.nodes (borrowed) */
    json_t *data;          /* the whole data object (borrowed) */
    char node_type[128];   /* execution_error / interrupted */
    char exception_type[128];
    char exception_message[1024];
    json_t *root; /* owned */
};

/* Returns 0, or -EINVAL for input that is not a ComfyUI message. On 0, comfy_event_free. */
int comfy_event_parse(const char *p, size_t n, struct comfy_event *ev);
void comfy_event_free(struct comfy_event *ev);
const char *comfy_event_type_name(enum comfy_event_type t);

#endif
