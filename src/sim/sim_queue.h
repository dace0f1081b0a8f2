/*
 * sim_queue — ComfyUI's prompt queue and history, and the request handlers around them.
 *
 * Mirrors server.py's POST /prompt (the `number` counter that counts every POST without a
 * number — rejected ones included —, `front` → negative number, an explicit number kept as a
 * float, client-chosen prompt_id used as given, extra_data/client_id/create_time, sensitive
 * keys held back) and execution.PromptQueue: a binary heap with Python heapq's exact layout
 * (/queue shows the raw heap array), one running item, and an insertion-ordered, bounded
 * history with /history's max_items/offset paging.
 *
 * ComfyUI broadcasts a `status` message each time PromptQueue calls server.queue_updated();
 * updated_cb is called at exactly those points (twice when the last pending item is deleted,
 * as the real code does), so the caller can send the same frames. Callbacks must not call
 * back into the queue.
 */
#ifndef SIM_QUEUE_H
#define SIM_QUEUE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sim/sim_fs.h"
#include "sim/sim_nodes.h"

#define SIM_PROMPT_ID_MAX 256 /* bytes of a prompt_id (str() of what the client sent) */

struct sim_queue_config {
    size_t max_pending; /* pending prompts; POST /prompt past it answers 503 (0: 1000) */
    size_t max_history; /* ComfyUI's MAXIMUM_HISTORY_SIZE (0: 10000) */
    uint64_t seed;      /* seeds the uuid4 generator for server-chosen prompt ids */
    void (*updated_cb)(void *ctx, int queue_remaining);
    void *cb_ctx;
};

/* One queued prompt: the tuple (number, prompt_id, prompt, extra_data, outputs, sensitive). */
struct sim_queue_item {
    json_t *number; /* integer, or real when the client sent "number" */
    double order;   /* numeric value of number: lower runs first */
    char prompt_id[SIM_PROMPT_ID_MAX];
    json_t *prompt;     /* validated (converted) prompt */
    json_t *extra_data; /* client_id, create_time, ... */
    json_t *outputs;    /* outputs to execute */
    json_t *sensitive;  /* extra_data keys kept out of /queue and /history */
};

struct sim_queue;

int sim_queue_create(const struct sim_queue_config *cfg, struct sim_queue **out);
void sim_queue_destroy(struct sim_queue *q);

/*
 * POST /prompt with the parsed JSON body (a body that is not JSON is the caller's 500).
 * Sets *resp to the JSON answer (NULL when the answer is the plain-text 500) and returns the
 * HTTP status: 200, 400, 500 or 503; negative errno on allocation failure.
 */
int sim_queue_post_prompt(struct sim_queue *q, const struct sim_nodes *nodes,
                          const struct sim_fs *fs, json_t *body, int64_t now_ms, json_t **resp);
/* GET /queue. New ref. */
json_t *sim_queue_get_queue(const struct sim_queue *q);
/* GET /prompt: {"exec_info": {"queue_remaining": N}}. New ref. */
json_t *sim_queue_get_prompt(const struct sim_queue *q);
/* Pending plus running, as reported in `status` messages. */
int sim_queue_remaining(const struct sim_queue *q);
/* POST /queue {clear, delete}; returns 200, or 500 when Python would raise. */
int sim_queue_post_queue(struct sim_queue *q, const json_t *body);

/* PromptQueue.get(): moves the next prompt to running; NULL when idle or already running. */
const struct sim_queue_item *sim_queue_start_next(struct sim_queue *q);
const struct sim_queue_item *sim_queue_running(const struct sim_queue *q);
bool sim_queue_is_running(const struct sim_queue *q, const char *prompt_id);
/*
 * PromptQueue.task_done(): files the running prompt in history with `result` ({"outputs",
 * "meta"}) and `status` ({"status_str", "completed", "messages"}); both are borrowed.
 */
int sim_queue_task_done(struct sim_queue *q, const json_t *result, const json_t *status);

/* GET /history/{id}: {id: entry} or {}. New ref. */
json_t *sim_queue_history_one(const struct sim_queue *q, const char *prompt_id);
/* GET /history?max_items=&offset=; NULL means the parameter was not given. New ref. */
json_t *sim_queue_history(const struct sim_queue *q, const long long *max_items,
                          const long long *offset);
/* POST /history {clear, delete}; returns 200 or 500. */
int sim_queue_post_history(struct sim_queue *q, const json_t *body);
size_t sim_queue_history_size(const struct sim_queue *q);

#endif
