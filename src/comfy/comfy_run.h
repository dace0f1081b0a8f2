/* comfy_run — runs one graph on the fleet until it succeeds or fails for good: routes it,
 * starts an attempt, and on failure applies the retry rule of the error class
 * (comfy_err_retry): unreachable or output errors → another backend after a back-off; OOM →
 * POST /free there, then one more try; everything else is final. Every attempt is recorded.
 *
 * While no capable backend has room (COMFY_ROUTE_BUSY / NO_BACKEND) the run waits, up to
 * route_timeout_ms; a graph no backend can run (COMFY_ROUTE_UNSUPPORTED) fails at once. */
#ifndef COMFYGATE_COMFY_RUN_H
#define COMFYGATE_COMFY_RUN_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "comfy/comfy_attempt.h"
#include "comfy/comfy_fleet.h"

#define COMFY_RUN_MAX_RECORDS 8

struct comfy_run_record {
    int backend;
    char prompt_id[40];
    enum comfy_err err;
    char message[256];
    uint64_t started_ns, ended_ns;
};

struct comfy_run_params {
    json_t *graph;        /* a reference is taken */
    int out_dirfd;
    const char *upload_subfolder;
    const struct comfy_input_file *inputs;
    size_t ninputs;
    uint32_t timeout_ms;       /* per attempt, on the backend */
    uint32_t route_timeout_ms; /* longest wait for a backend with room */
    uint64_t max_output_bytes;
    unsigned max_attempts;     /* default 3 */
    unsigned prior_tries;      /* attempts already made (lost to a gateway restart) */
    uint32_t backoff_ms;       /* first back-off; doubles; default 200 */
    bool strip_png_text;       /* PRIVACY_MODE */
    const char *preview;       /* see comfy_attempt_params (copied) */
};

struct comfy_run;
struct comfy_run_ops {
    void (*on_state)(struct comfy_run *r);  /* progress of the current attempt */
    void (*on_output)(struct comfy_run *r, const struct comfy_output *o);
    void (*on_done)(struct comfy_run *r);
    void (*on_preview)(struct comfy_run *r, const char *mime, const unsigned char *p, size_t n);
    /* optional: the current attempt (r->att: backend and prompt_id) is about to be submitted.
     * Return true to hold it until comfy_run_submit_go (see comfy_attempt_ops). */
    bool (*before_submit)(struct comfy_run *r);
};

struct comfy_run {
    struct comfy_fleet *fleet;
    const struct comfy_run_ops *ops;
    void *ctx;
    struct comfy_run_params p;
    struct comfy_attempt att;
    bool att_live;  /* att started and not yet freed */
    bool *exclude;  /* fleet->n flags */
    struct comfy_run_record recs[COMFY_RUN_MAX_RECORDS];
    unsigned nrecs;
    unsigned tries;
    bool oom_retried;
    bool canceled;
    bool done;
    char preview[16];
    uint32_t backoff;
    uint64_t wait_since_ns;
    struct ring_timer timer;
    /* result */
    enum comfy_err err;
    char message[1024];
    char err_node[64];
    char err_class[128];
    json_t *node_errors;
};

int comfy_run_start(struct comfy_run *r, struct comfy_fleet *f, const struct comfy_run_params *p,
                    const struct comfy_run_ops *ops, void *ctx);
/* Follows a prompt an earlier gateway process submitted to the backend at backend_url with
 * prompt_id; `tries` attempts were already made (this one included). If the backend is not
 * in the fleet, returns -ENOENT (nothing started); if it no longer knows the prompt, the run
 * goes on like after any unreachable attempt (another backend, counted). */
int comfy_run_resume(struct comfy_run *r, struct comfy_fleet *f, const struct comfy_run_params *p,
                     const struct comfy_run_ops *ops, void *ctx, const char *backend_url,
                     const char *prompt_id, unsigned tries);
/* Sends the submit before_submit held. */
void comfy_run_submit_go(struct comfy_run *r);
/* Cancels: on_done follows with COMFY_INTERRUPTED (unless it already finished). */
void comfy_run_cancel(struct comfy_run *r);
void comfy_run_free(struct comfy_run *r);
/* Gateway shutdown: stops without on_done (see comfy_attempt_abandon). */
void comfy_run_abandon(struct comfy_run *r);
bool comfy_run_quiet(const struct comfy_run *r);

#endif
