/*
 * sim_exec — the simulated PromptExecutor, driven one step at a time.
 *
 * No threads, sockets or sleeping: the caller starts a prompt, then calls sim_exec_step()
 * whenever the delay it returned has passed (immediately, for exec_ms = step_ms = 0). Each
 * step does the next unit of work and reports the WebSocket traffic ComfyUI 0.8.0 would send,
 * in its order: execution_start, execution_cached, per node progress_state (running) /
 * executing / [progress per sampler step] / [binary TEXT] / executed / progress_state
 * (finished), then execution_success — or execution_error / execution_interrupted.
 *
 * The prompt's end is two-phase because ComfyUI's `status` broadcast (sent by the queue)
 * comes between execution_success and the final `executing {node: null}`:
 *     sim_exec_step() == SIM_EXEC_DONE  ->  sim_exec_result() -> sim_queue_task_done()
 *     (which triggers `status`)          ->  sim_exec_finish() (emits executing null).
 *
 * Node outputs are cached by a signature of class, inputs and ancestors (ComfyUI's "classic"
 * cache: entries not used by the current prompt are dropped when the next one starts), so a
 * re-run reports every node in execution_cached and replays `executed` with the old files.
 *
 * An interrupt takes effect where ComfyUI checks for it: when the next node starts (after
 * its `executing`), at each sampler step, and in an injected hang.
 *
 * Faults (for gateway tests): a CUDA-style torch.OutOfMemoryError, a node exception, a
 * hang that lasts until interrupted, or one of two faults outside the prompt that only the
 * caller can carry out (a process crash, dropped WebSockets: fault_cb is told when the node
 * starts, and the prompt then runs on) — from the config, or per prompt through extra_data
 * {"comfysim_fault": "oom" | "exception" | "hang" | "crash" | "ws-drop" | "none",
 *  "comfysim_fault_node": "<id>"}. The configured fault can be limited to the first N prompts
 * that reach the fault node (fault_times), so a retry after it succeeds.
 */
#ifndef SIM_EXEC_H
#define SIM_EXEC_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sim/sim_fs.h"
#include "sim/sim_nodes.h"
#include "sim/sim_png.h"

#define SIM_EXEC_DONE (-1) /* the prompt has ended: collect the result, then finish */
#define SIM_EXEC_IDLE (-2) /* no prompt is running */

enum sim_fault {
    SIM_FAULT_NONE,
    SIM_FAULT_OOM,       /* execution_error torch.OutOfMemoryError ("Allocation on device") */
    SIM_FAULT_EXCEPTION, /* execution_error RuntimeError from the node */
    SIM_FAULT_HANG,      /* the node never finishes until interrupted */
    SIM_FAULT_CRASH,     /* the process dies (fault_cb does it; a GPU driver crash); until
                            then the node hangs, so it never completes */
    SIM_FAULT_WS_DROP,   /* every WebSocket is cut (fault_cb does it); the prompt runs on */
};

/* Called for each JSON message; sid is the target client id, NULL for every client.
 * data is borrowed: serialise it before returning. Must not call back into sim_exec. */
typedef void (*sim_exec_emit_cb)(void *ctx, const char *type, const json_t *data, const char *sid);
/* Called for each binary frame (4-byte event type included); sid as above. */
typedef void (*sim_exec_binary_cb)(void *ctx, const uint8_t *data, size_t len, const char *sid);
/* Called when a SIM_FAULT_CRASH or SIM_FAULT_WS_DROP fault hits, right after the node's
 * `executing` message. After it returns, a WS_DROP node runs normally and a CRASH node hangs
 * (interruptible, like SIM_FAULT_HANG). Must not call back into sim_exec. */
typedef void (*sim_exec_fault_cb)(void *ctx, enum sim_fault fault);

struct sim_exec_config {
    int64_t exec_ms;         /* time each executed node takes */
    int64_t step_ms;         /* time per sampler step or upscale tile */
    int64_t hang_poll_ms;    /* interrupt polling period of a hung node (0: 100) */
    uint64_t max_numel;      /* largest tensor in elements; beyond it nodes fail as OOM
                                (0: 64 Mi, e.g. 4096x4096 RGB) */
    size_t max_file_bytes;   /* largest file LoadImage reads (0: 64 MiB) */
    size_t cache_max;        /* node results kept in the cache (0: 4096) */
    int64_t tz_offset_s;     /* local time offset used for %year% ... in filename prefixes */
    uint64_t seed;           /* PreviewImage's random prefixes */
    enum sim_fault fault;    /* fault injected into every prompt (per-prompt extra_data wins) */
    const char *fault_class; /* class the fault hits; NULL means KSampler, else the first
                                output node that executes */
    uint64_t fault_times;    /* `fault` hits only the first N prompts reaching the fault node
                                (0: all); per-prompt faults are not limited or counted */
    int png_level;           /* SaveImage's zlib level as SIM_PNG_LEVEL(n) (0: ComfyUI's 4) */
    sim_exec_emit_cb emit_cb;
    sim_exec_binary_cb binary_cb;
    sim_exec_fault_cb fault_cb; /* NULL: crash and ws-drop faults do nothing */
    void *cb_ctx;
};

struct sim_exec;

int sim_exec_create(const struct sim_exec_config *cfg, const struct sim_nodes *nodes,
                    const struct sim_fs *fs, struct sim_exec **out);
void sim_exec_destroy(struct sim_exec *e);

/*
 * Starts a validated prompt (borrowed; copied): sends execution_start and execution_cached.
 * outputs are the ids to execute; extra_data carries client_id (and extra_pnginfo).
 * now_ms is wall-clock time in ms, used for message timestamps. Returns 0, -EBUSY, -ENOMEM.
 */
int sim_exec_start(struct sim_exec *e, const char *prompt_id, const json_t *prompt,
                   const json_t *extra_data, const json_t *outputs, int64_t now_ms);
/* Does the next unit of work; returns ms until the next step is due (>= 0), SIM_EXEC_DONE
 * once the prompt has ended, or SIM_EXEC_IDLE when nothing is running. */
int64_t sim_exec_step(struct sim_exec *e, int64_t now_ms);
/* POST /interrupt for the running prompt (ignored when idle, as the flag is reset). */
void sim_exec_interrupt(struct sim_exec *e);
bool sim_exec_running(const struct sim_exec *e);
/* After SIM_EXEC_DONE: history {"outputs", "meta"} and {"status_str", "completed",
 * "messages"}, as new references. */
int sim_exec_result(struct sim_exec *e, json_t **history_result, json_t **status);
/* Ends the prompt: sends executing {node: null} to its client and returns to idle. */
void sim_exec_finish(struct sim_exec *e);
/* POST /free {"free_memory": true}: forget every cached output. */
void sim_exec_reset_cache(struct sim_exec *e);
size_t sim_exec_cache_size(const struct sim_exec *e);
/* Parses "oom", "exception", "hang", "crash", "ws-drop", "none". */
bool sim_fault_parse(const char *name, enum sim_fault *out);
/* How many prompts the configured fault has hit so far. */
uint64_t sim_exec_faults_hit(const struct sim_exec *e);

#endif
