/* webhook_event — see webhook_event.h. */
#include "webhook/webhook_event.h"

#include <stdio.h>
#include <string.h>

static const struct {
    const char *name;
    unsigned bit;
} filters[] = {
    {"queued", WEBHOOK_F_QUEUED},       {"running", WEBHOOK_F_RUNNING},
    {"progress", WEBHOOK_F_PROGRESS},   {"output", WEBHOOK_F_OUTPUT},
    {"completed", WEBHOOK_F_COMPLETED},
};
#define NFILTERS (sizeof(filters) / sizeof(filters[0]))

static unsigned filter_bit(const char *name)
{
    for (size_t i = 0; i < NFILTERS; i++) {
        if (strcmp(filters[i].name, name) == 0)
            return filters[i].bit;
    }
    return 0;
}

int webhook_filter_parse(const json_t *v, unsigned *mask, char *err, size_t errlen)
{
    *mask = WEBHOOK_F_DEFAULT;
    if (!v)
        return 0;
    if (!json_is_array(v)) {
        snprintf(err, errlen,
                 "webhookEvents must be an array of queued, running, progress, "
                 "output, completed");
        return -1;
    }
    unsigned m = 0;
    size_t i;
    const json_t *e;
    json_array_foreach(v, i, e)
    {
        unsigned bit = json_is_string(e) ? filter_bit(json_string_value(e)) : 0;
        if (!bit) {
            char shown[48] = "a non-string";
            if (json_is_string(e))
                snprintf(shown, sizeof(shown), "\"%.40s\"", json_string_value(e));
            snprintf(err, errlen,
                     "webhookEvents[%zu]: unknown event %s (expected queued, "
                     "running, progress, output or completed)",
                     i, shown);
            return -1;
        }
        m |= bit;
    }
    *mask = m;
    return 0;
}

json_t *webhook_filter_json(unsigned mask)
{
    json_t *a = json_array();
    for (size_t i = 0; i < NFILTERS; i++) {
        if (mask & filters[i].bit)
            json_array_append_new(a, json_string(filters[i].name));
    }
    return a;
}

/* The part after the first '.', or the whole type. */
static const char *event_name(const char *type)
{
    const char *dot = strchr(type, '.');
    return dot ? dot + 1 : type;
}

bool webhook_event_terminal(const char *type)
{
    static const char *const terminal[] = {"job.succeeded", "job.failed", "job.canceled",
                                           "prompt.complete", "prompt.failed"};
    for (size_t i = 0; i < sizeof(terminal) / sizeof(terminal[0]); i++) {
        if (strcmp(type, terminal[i]) == 0)
            return true;
    }
    return false;
}

bool webhook_event_wanted(unsigned mask, const char *type)
{
    if (webhook_event_terminal(type))
        return true;
    if (strncmp(type, "job.", 4) != 0)
        return false;
    unsigned bit = filter_bit(event_name(type));
    return bit && bit != WEBHOOK_F_COMPLETED && (mask & bit);
}

bool webhook_throttle_pass(struct webhook_throttle *t, uint64_t now_ms)
{
    if (t->passed && now_ms < t->last_ms + WEBHOOK_PROGRESS_INTERVAL_MS)
        return false;
    t->passed = true;
    t->last_ms = now_ms;
    return true;
}

bool webhook_should_send(unsigned mask, struct webhook_throttle *t, const char *type,
                         uint64_t now_ms)
{
    if (!webhook_event_wanted(mask, type))
        return false;
    if (t && strcmp(type, "job.progress") == 0)
        return webhook_throttle_pass(t, now_ms);
    return true;
}
