/*
 * sim_queue — POST /prompt handling, PromptQueue heap and history (see sim_queue.h).
 */
#include "sim/sim_queue.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim/sim_json.h"
#include "sim/sim_validate.h"

#define DEFAULT_MAX_PENDING 1000
#define DEFAULT_MAX_HISTORY 10000

/* execution.SENSITIVE_EXTRA_DATA_KEYS: kept out of /queue and /history. */
static const char *const sensitive_keys[] = {"auth_token_comfy_org", "api_key_comfy_org"};

struct sim_queue {
    struct sim_queue_config cfg;
    int64_t counter;              /* server.number */
    uint64_t rng;                 /* uuid4 state */
    struct sim_queue_item **heap; /* PromptQueue.queue, heapq layout */
    size_t n;
    struct sim_queue_item *running;
    json_t *history; /* prompt_id -> entry, insertion ordered like a Python dict */
};

static void updated(struct sim_queue *q)
{
    if (q->cfg.updated_cb != NULL)
        q->cfg.updated_cb(q->cfg.cb_ctx, sim_queue_remaining(q));
}

int sim_queue_create(const struct sim_queue_config *cfg, struct sim_queue **out)
{
    struct sim_queue *q = calloc(1, sizeof(*q));
    *out = NULL;
    if (q == NULL)
        return -ENOMEM;
    q->cfg = *cfg;
    if (q->cfg.max_pending == 0)
        q->cfg.max_pending = DEFAULT_MAX_PENDING;
    if (q->cfg.max_history == 0)
        q->cfg.max_history = DEFAULT_MAX_HISTORY;
    q->rng = cfg->seed;
    q->heap = calloc(q->cfg.max_pending, sizeof(*q->heap));
    q->history = json_object();
    if (q->heap == NULL || q->history == NULL) {
        sim_queue_destroy(q);
        return -ENOMEM;
    }
    *out = q;
    return 0;
}

static void item_free(struct sim_queue_item *it)
{
    if (it == NULL)
        return;
    json_decref(it->number);
    json_decref(it->prompt);
    json_decref(it->extra_data);
    json_decref(it->outputs);
    json_decref(it->sensitive);
    free(it);
}

void sim_queue_destroy(struct sim_queue *q)
{
    if (q == NULL)
        return;
    for (size_t i = 0; i < q->n; i++)
        item_free(q->heap[i]);
    item_free(q->running);
    free(q->heap);
    json_decref(q->history);
    free(q);
}

int sim_queue_remaining(const struct sim_queue *q)
{
    return (int)q->n + (q->running != NULL ? 1 : 0);
}

/* --- heapq, line for line, so the pending array matches the real server's ------------- */

/* Tuple comparison (number, prompt_id, ...): ties on both never compare as less. */
static bool item_less(const struct sim_queue_item *a, const struct sim_queue_item *b)
{
    if (a->order != b->order)
        return a->order < b->order;
    return strcmp(a->prompt_id, b->prompt_id) < 0;
}

static void sift_down(struct sim_queue_item **h, size_t start, size_t pos)
{
    struct sim_queue_item *item = h[pos];
    while (pos > start) {
        size_t parent = (pos - 1) >> 1;
        if (!item_less(item, h[parent]))
            break;
        h[pos] = h[parent];
        pos = parent;
    }
    h[pos] = item;
}

static void sift_up(struct sim_queue_item **h, size_t n, size_t pos)
{
    size_t start = pos, child = 2 * pos + 1;
    struct sim_queue_item *item = h[pos];
    while (child < n) {
        size_t right = child + 1;
        if (right < n && !item_less(h[child], h[right]))
            child = right;
        h[pos] = h[child];
        pos = child;
        child = 2 * pos + 1;
    }
    h[pos] = item;
    sift_down(h, start, pos);
}

static struct sim_queue_item *heap_pop(struct sim_queue *q)
{
    struct sim_queue_item *last = q->heap[--q->n];
    if (q->n == 0)
        return last;
    struct sim_queue_item *top = q->heap[0];
    q->heap[0] = last;
    sift_up(q->heap, q->n, 0);
    return top;
}

static void heapify(struct sim_queue *q)
{
    for (size_t i = q->n / 2; i-- > 0;)
        sift_up(q->heap, q->n, i);
}

/* --- POST /prompt ---------------------------------------------------------------------- */

static uint64_t next_random(struct sim_queue *q)
{
    uint64_t z = (q->rng += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static void make_uuid4(struct sim_queue *q, char *out)
{
    uint8_t b[16];
    uint64_t r0 = next_random(q), r1 = next_random(q);
    for (int i = 0; i < 8; i++) {
        b[i] = (uint8_t)(r0 >> (8 * i));
        b[8 + i] = (uint8_t)(r1 >> (8 * i));
    }
    b[6] = (uint8_t)((b[6] & 0x0F) | 0x40);
    b[8] = (uint8_t)((b[8] & 0x3F) | 0x80);
    sprintf(out, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
            b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14],
            b[15]);
}

/* Python truthiness of a JSON value. */
static bool truthy(const json_t *v)
{
    double d;
    if (json_is_boolean(v))
        return json_is_true(v);
    if (sim_json_number(v, &d))
        return d != 0;
    if (json_is_string(v))
        return json_string_length(v) > 0;
    if (json_is_array(v))
        return json_array_size(v) > 0;
    return json_is_object(v) && json_object_size(v) > 0;
}

/* The number this POST gets; false when float(json_data['number']) would raise. */
static bool take_number(struct sim_queue *q, const json_t *body, json_t **number, double *order)
{
    json_t *given = json_object_get(body, "number");
    double d;
    if (given != NULL) {
        if (json_is_boolean(given))
            d = json_is_true(given);
        else if (!sim_json_number(given, &d) &&
                 !(json_is_string(given) && sim_json_py_float(json_string_value(given), &d)))
            return false;
        *order = d;
        *number = isfinite(d) ? json_real(d) : NULL;
        return *number != NULL;
    }
    int64_t n = q->counter++;
    if (truthy(json_object_get(body, "front")))
        n = -n;
    *order = (double)n;
    *number = json_integer(n);
    return *number != NULL;
}

/* extra_data with client_id added; NULL with *status 500 when Python would raise. */
static json_t *take_extra_data(const json_t *body, bool valid, int *status)
{
    json_t *given = json_object_get(body, "extra_data");
    json_t *client = json_object_get(body, "client_id");
    json_t *extra = given != NULL ? json_incref(given) : json_object();
    if (!json_is_object(extra)) {
        /* extra_data["client_id"] = ... or ["create_time"] = ... fails on non-dicts. */
        if (client != NULL || valid)
            *status = 500;
        return extra;
    }
    if (client != NULL && json_object_set(extra, "client_id", client) != 0)
        *status = -ENOMEM;
    return extra;
}

static int prompt_id_of(struct sim_queue *q, const json_t *body, char *out)
{
    json_t *given = json_object_get(body, "prompt_id");
    if (given == NULL) {
        make_uuid4(q, out);
        return 0;
    }
    struct sim_buf b;
    sim_buf_init(&b, SIM_PROMPT_ID_MAX - 1);
    sim_json_str(given, &b); /* str(json_data["prompt_id"]) */
    int rc = b.err == 0 ? 0 : -E2BIG;
    if (rc == 0)
        memcpy(out, b.len > 0 ? (const char *)b.data : "", b.len + 1);
    sim_buf_free(&b);
    return rc;
}

static json_t *sim_error_body(const char *type, const char *message)
{
    return json_pack("{s:{s:s, s:s, s:s, s:{}}, s:{}}", "error", "type", type, "message", message,
                     "details", "", "extra_info", "node_errors");
}

/* Holds the sensitive extra_data keys back, stamps create_time and queues the item. */
static int enqueue(struct sim_queue *q, struct sim_queue_item *it, int64_t now_ms)
{
    it->sensitive = json_object();
    if (it->sensitive == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < sizeof(sensitive_keys) / sizeof(sensitive_keys[0]); i++) {
        json_t *v = json_object_get(it->extra_data, sensitive_keys[i]);
        if (v != NULL) {
            json_object_set(it->sensitive, sensitive_keys[i], v);
            json_object_del(it->extra_data, sensitive_keys[i]);
        }
    }
    if (json_object_set_new(it->extra_data, "create_time", json_integer(now_ms)) != 0)
        return -ENOMEM;
    q->heap[q->n++] = it;
    sift_down(q->heap, 0, q->n - 1);
    updated(q);
    return 0;
}

/* Validation onwards, once number and prompt_id are settled. */
static int validate_and_queue(struct sim_queue *q, const struct sim_nodes *nodes,
                              const struct sim_fs *fs, json_t *body, struct sim_queue_item *it,
                              int64_t now_ms, json_t **resp)
{
    struct sim_validate_result vr;
    int rc = sim_validate_prompt(nodes, fs, it->prompt,
                                 json_object_get(body, "partial_execution_targets"), &vr);
    if (rc == SIM_VALIDATE_ENOMEM)
        return -ENOMEM;
    if (rc != SIM_VALIDATE_OK)
        return 500;
    int status = 0;
    it->extra_data = take_extra_data(body, vr.ok, &status);
    if (status == 0 && !vr.ok) {
        *resp = sim_validate_error_body(&vr);
        status = 400;
    } else if (status == 0 && q->n >= q->cfg.max_pending) {
        *resp = sim_error_body("queue_full", "comfysim: too many prompts are pending");
        status = 503;
    } else if (status == 0) {
        it->outputs = json_incref(vr.outputs);
        *resp = json_pack("{s:s, s:O, s:O}", "prompt_id", it->prompt_id, "number", it->number,
                          "node_errors", vr.node_errors);
        status = *resp != NULL ? enqueue(q, it, now_ms) : -ENOMEM;
        status = status == 0 ? 200 : status;
    }
    sim_validate_result_free(&vr);
    return status;
}

int sim_queue_post_prompt(struct sim_queue *q, const struct sim_nodes *nodes,
                          const struct sim_fs *fs, json_t *body, int64_t now_ms, json_t **resp)
{
    *resp = NULL;
    if (!json_is_object(body))
        return 500; /* `"number" in json_data` on a non-dict raises or misbehaves */
    struct sim_queue_item *it = calloc(1, sizeof(*it));
    if (it == NULL)
        return -ENOMEM;
    int status = take_number(q, body, &it->number, &it->order) ? 0 : 500;
    json_t *prompt = json_object_get(body, "prompt");
    if (status == 0 && prompt == NULL) {
        *resp = sim_validate_no_prompt_body();
        status = *resp != NULL ? 400 : -ENOMEM;
    }
    if (status == 0 && prompt_id_of(q, body, it->prompt_id) != 0) {
        *resp = sim_error_body("invalid_prompt_id", "comfysim: prompt_id is too long");
        status = 400;
    }
    if (status == 0) {
        it->prompt = json_incref(prompt);
        status = validate_and_queue(q, nodes, fs, body, it, now_ms, resp);
    }
    if (status != 200) {
        item_free(it);
        if (status != 400 && status != 503) {
            json_decref(*resp);
            *resp = NULL;
        }
    }
    return status;
}

/* --- /queue and /prompt ------------------------------------------------------------------ */

/* item[:5]: the tuple as the API shows it, without the sensitive part. */
static json_t *item_json(const struct sim_queue_item *it)
{
    return json_pack("[OsOOO]", it->number, it->prompt_id, it->prompt, it->extra_data, it->outputs);
}

json_t *sim_queue_get_queue(const struct sim_queue *q)
{
    json_t *running = json_array(), *pending = json_array();
    json_t *out = json_pack("{s:o, s:o}", "queue_running", running, "queue_pending", pending);
    if (out == NULL)
        return NULL;
    if (q->running != NULL && json_array_append_new(running, item_json(q->running)) != 0) {
        json_decref(out);
        return NULL;
    }
    for (size_t i = 0; i < q->n; i++) {
        if (json_array_append_new(pending, item_json(q->heap[i])) != 0) {
            json_decref(out);
            return NULL;
        }
    }
    return out;
}

json_t *sim_queue_get_prompt(const struct sim_queue *q)
{
    return json_pack("{s:{s:i}}", "exec_info", "queue_remaining", sim_queue_remaining(q));
}

static void wipe_queue(struct sim_queue *q)
{
    for (size_t i = 0; i < q->n; i++)
        item_free(q->heap[i]);
    q->n = 0;
    updated(q);
}

/* PromptQueue.delete_queue_item: the first pending match only; the running one never. */
static void delete_pending(struct sim_queue *q, const char *prompt_id)
{
    for (size_t i = 0; i < q->n; i++) {
        if (strcmp(q->heap[i]->prompt_id, prompt_id) != 0)
            continue;
        if (q->n == 1) {
            wipe_queue(q); /* which also reports an update: two status frames */
        } else {
            item_free(q->heap[i]);
            memmove(&q->heap[i], &q->heap[i + 1], (q->n - i - 1) * sizeof(q->heap[0]));
            q->n--;
            heapify(q);
        }
        updated(q);
        return;
    }
}

/* Calls fn for each element of what Python would iterate: list items, dict keys, chars. */
static bool for_each_id(const json_t *v, void (*fn)(struct sim_queue *, const char *),
                        struct sim_queue *q)
{
    char one[5];
    if (json_is_array(v)) {
        for (size_t i = 0; i < json_array_size(v); i++) {
            json_t *e = json_array_get(v, i);
            if (json_is_array(e) || json_is_object(e))
                return false; /* unhashable for history.pop; never equal for the queue */
            if (json_is_string(e))
                fn(q, json_string_value(e));
        }
        return true;
    }
    if (json_is_object(v)) {
        const char *key;
        json_t *val;
        json_object_foreach((json_t *)v, key, val)
        {
            (void)val;
            fn(q, key);
        }
        return true;
    }
    if (!json_is_string(v))
        return false;
    const unsigned char *s = (const unsigned char *)json_string_value(v);
    while (*s) {
        size_t len = (*s >= 0xF0) ? 4 : (*s >= 0xE0) ? 3 : (*s >= 0xC0) ? 2 : 1;
        memcpy(one, s, len);
        one[len] = 0;
        fn(q, one);
        s += strnlen((const char *)s, len);
    }
    return true;
}

int sim_queue_post_queue(struct sim_queue *q, const json_t *body)
{
    if (!json_is_object(body))
        return 200;
    json_t *clear = json_object_get(body, "clear"), *del = json_object_get(body, "delete");
    if (clear != NULL && truthy(clear))
        wipe_queue(q);
    if (del != NULL && !for_each_id(del, delete_pending, q))
        return 500;
    return 200;
}

/* --- running and history ------------------------------------------------------------- */

const struct sim_queue_item *sim_queue_start_next(struct sim_queue *q)
{
    if (q->running != NULL || q->n == 0)
        return NULL;
    q->running = heap_pop(q);
    updated(q);
    return q->running;
}

const struct sim_queue_item *sim_queue_running(const struct sim_queue *q)
{
    return q->running;
}

bool sim_queue_is_running(const struct sim_queue *q, const char *prompt_id)
{
    return q->running != NULL && strcmp(q->running->prompt_id, prompt_id) == 0;
}

int sim_queue_task_done(struct sim_queue *q, const json_t *result, const json_t *status)
{
    struct sim_queue_item *it = q->running;
    if (it == NULL)
        return -EINVAL;
    /* Checked before inserting, like ComfyUI: the history can hold max + 1 entries. */
    if (json_object_size(q->history) > q->cfg.max_history)
        json_object_del(q->history, json_object_iter_key(json_object_iter(q->history)));
    json_t *entry = json_pack("{s:o, s:{}, s:O}", "prompt", item_json(it), "outputs", "status",
                              status != NULL ? status : json_null());
    if (entry == NULL || json_object_update(entry, (json_t *)result) != 0 ||
        json_object_set_new(q->history, it->prompt_id, entry) != 0) {
        json_decref(entry);
        return -ENOMEM;
    }
    q->running = NULL;
    item_free(it);
    updated(q);
    return 0;
}

json_t *sim_queue_history_one(const struct sim_queue *q, const char *prompt_id)
{
    json_t *out = json_object();
    json_t *entry = json_object_get(q->history, prompt_id);
    if (out != NULL && entry != NULL && json_object_set(out, prompt_id, entry) != 0) {
        json_decref(out);
        return NULL;
    }
    return out;
}

json_t *sim_queue_history(const struct sim_queue *q, const long long *max_items,
                          const long long *offset)
{
    json_t *out = json_object();
    long long i = 0, n = (long long)json_object_size(q->history);
    long long first = offset != NULL ? *offset : -1;
    /* get_history: with max_items alone the newest N; offset counts from the oldest. */
    if (first < 0 && max_items != NULL)
        first = n - *max_items;
    const char *key;
    json_t *entry;
    json_object_foreach(q->history, key, entry)
    {
        if (out == NULL)
            break;
        if (i++ < first)
            continue;
        if (json_object_set(out, key, entry) != 0) {
            json_decref(out);
            return NULL;
        }
        if (max_items != NULL && (long long)json_object_size(out) >= *max_items)
            break;
    }
    return out;
}

static void delete_history(struct sim_queue *q, const char *prompt_id)
{
    json_object_del(q->history, prompt_id);
}

int sim_queue_post_history(struct sim_queue *q, const json_t *body)
{
    if (!json_is_object(body))
        return 200;
    json_t *clear = json_object_get(body, "clear"), *del = json_object_get(body, "delete");
    if (clear != NULL && truthy(clear))
        json_object_clear(q->history);
    if (del != NULL && !for_each_id(del, delete_history, q))
        return 500;
    return 200;
}

size_t sim_queue_history_size(const struct sim_queue *q)
{
    return json_object_size(q->history);
}
