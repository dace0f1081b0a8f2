/* comfy_attempt — one run of one graph on one backend: upload inputs, submit with a prompt_id
 * we chose, follow it (WebSocket events, or /history polling when the socket is down), fetch
 * every output with /view straight into storage, and report a single result.
 *
 * Exactly-once on the backend: the prompt_id is ours, and when a submit fails in transit the
 * attempt first asks the backend (/history, /queue) whether it already has that prompt before
 * sending it again. An attempt never finishes twice: on_done runs once, after which the owner
 * may free it. */
#ifndef COMFYGATE_COMFY_ATTEMPT_H
#define COMFYGATE_COMFY_ATTEMPT_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "comfy/comfy_backend.h"
#include "comfy/comfy_call.h"
#include "comfy/comfy_error.h"
#include "comfy/comfy_graph.h"
#include "store/file_sink.h"

#define COMFY_MAX_OUTPUTS 256

struct comfy_output {
    char node[64];
    char kind[16];       /* images, gifs, videos, audio, text, ... (history key) */
    char filename[256];  /* on the backend */
    char subfolder[256];
    char type[16];       /* output | temp | input */
    char local_name[300];
    uint64_t size;
    char sha256[65];
    bool stored;
    char *text; /* type "text": the content (owned) */
};

struct comfy_input_file {
    char name[256];  /* the file name LoadImage refers to, within subfolder */
    char path[1024]; /* local file to upload, or "" to upload data */
    const unsigned char *data; /* not owned; valid while the run lives */
    size_t len;
};

enum comfy_attempt_state {
    CA_IDLE,
    CA_UPLOADING,
    CA_SUBMITTING,
    CA_QUEUED, /* accepted by the backend */
    CA_RUNNING,
    CA_COLLECTING, /* finished there; fetching history and outputs */
    CA_DONE,
};

struct comfy_attempt_params {
    json_t *graph;          /* the rendered graph; a reference is taken */
    const char *prompt_id;  /* uuid chosen by the caller */
    int out_dirfd;          /* outputs are stored here */
    const char *upload_subfolder;
    const struct comfy_input_file *inputs;
    size_t ninputs;
    uint32_t timeout_ms;    /* execution time limit (0: none) */
    uint64_t max_output_bytes;
    bool strip_png_text;    /* PRIVACY_MODE */
    /* The prompt was submitted before (by an earlier gateway process): do not upload or
     * submit; find it on the backend (/history, /queue) and follow it. If the backend no longer
     * knows it, the attempt ends with COMFY_UNREACHABLE. */
    bool reattach;
    /* "jpeg;90" / "webp;80": PNG images are fetched converted by the backend
     * (/view?...&preview=...) and stored under .jpg / .webp; NULL or "": as produced */
    const char *preview;
};

struct comfy_attempt;
struct comfy_attempt_ops {
    void (*on_state)(struct comfy_attempt *a);    /* state or progress changed */
    void (*on_output)(struct comfy_attempt *a, const struct comfy_output *o); /* one stored */
    void (*on_done)(struct comfy_attempt *a);     /* final: a->err and friends are set */
    /* optional: a sampler preview image (p valid during the call) */
    void (*on_preview)(struct comfy_attempt *a, const char *mime, const unsigned char *p,
                       size_t n);
    /* optional: called once the inputs are uploaded, just before the prompt is sent. Returning
     * true holds the submit until comfy_attempt_submit_go (the owner first makes the prompt id
     * durable, so a crash can never leave a prompt running that nobody knows about). */
    bool (*before_submit)(struct comfy_attempt *a);
};

struct comfy_attempt {
    struct comfy_attempt *next; /* in the backend's list */
    struct comfy_backend *be;
    const struct comfy_attempt_ops *ops;
    void *ctx;
    enum comfy_attempt_state state;
    char prompt_id[64];
    json_t *graph;
    int out_dirfd;
    char upload_subfolder[128];
    const struct comfy_input_file *inputs;
    size_t ninputs, uploaded;
    uint32_t timeout_ms;
    uint64_t max_output_bytes;
    bool strip_png_text;
    char preview[16];
    int submit_tries;
    bool submit_unsure; /* a submit failed in transit: it may or may not be there */
    bool submit_held;   /* before_submit asked to wait */
    bool reattached;    /* following a prompt an earlier process submitted */

    /* progress */
    unsigned nodes_total, nodes_done, nodes_cached;
    char current_node[64];
    char current_class[128];
    unsigned step, steps;
    int backend_number; /* ComfyUI's queue number */
    /* time per executed node, from the WebSocket's executing events ({id: {"ms", "cached"}});
     * empty when the attempt was followed by polling only */
    json_t *node_times;
    uint64_t node_started_ns;
    uint64_t begun_ns;         /* attempt started (uploads begin) */
    uint64_t submitted_ns, started_ns, exec_done_ns, finished_ns;

    /* outputs */
    struct comfy_output *outputs; /* grows up to COMFY_MAX_OUTPUTS */
    unsigned noutputs, outputs_cap;
    unsigned next_fetch;
    bool fetching;
    bool history_done;  /* history read after completion */
    bool exec_finished; /* success / error / interrupted seen */
    struct file_sink sink;
    struct comfy_call dl_call;

    /* result */
    enum comfy_err err;
    char err_msg[1024];
    char err_node[64];
    char err_class[128];
    json_t *node_errors; /* validation details, or warnings with a 200 */
    bool canceling;
    bool timed_out;

    struct comfy_call call;     /* upload / submit / history / queue */
    struct comfy_call ctl_call; /* interrupt / queue delete */
    bool ctl_busy;
    struct ring_timer timeout_timer;
    struct ring_timer poll_timer;
    bool polling;
    unsigned poll_failures;
    unsigned history_tries;
    unsigned lost_suspect;
    int ctl_step;
    bool done_reported;
};

int comfy_attempt_start(struct comfy_attempt *a, struct comfy_backend *be,
                        const struct comfy_attempt_params *p, const struct comfy_attempt_ops *ops,
                        void *ctx);
/* Sends a submit that before_submit held. */
void comfy_attempt_submit_go(struct comfy_attempt *a);
/* Interrupts (running) or deletes (queued) the prompt; on_done follows with
 * COMFY_INTERRUPTED unless it had already finished. */
void comfy_attempt_cancel(struct comfy_attempt *a);
/* Gateway shutdown: stops every timer and transfer without calling on_done and without
 * touching the prompt on the backend (a restarted gateway re-queues the job). The attempt is
 * gone once comfy_attempt_quiet() is true. */
void comfy_attempt_abandon(struct comfy_attempt *a);
bool comfy_attempt_quiet(const struct comfy_attempt *a);
/* Releases everything; only after on_done. */
void comfy_attempt_free(struct comfy_attempt *a);
const char *comfy_attempt_state_name(enum comfy_attempt_state s);

/* Called by comfy_backend. */
void comfy_attempt_on_event(struct comfy_attempt *a, const struct comfy_event *ev);
void comfy_attempt_ws_down(struct comfy_attempt *a);
void comfy_attempt_on_preview(struct comfy_attempt *a, const char *mime, const unsigned char *p,
                              size_t n);
void comfy_attempt_ws_up(struct comfy_attempt *a);

#endif
