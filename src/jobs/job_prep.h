/* job_prep — gets a raw-graph job's input images ready just before it runs, on the dispatcher
 * reactor: images that came inline are read back from the store (they were committed with the
 * job), URLs are fetched through the fleet's ring_curl under the SSRF guard with a size cap and
 * must really be images; each is named by its content and every LoadImage node that used it is
 * pointed at "<tenant subfolder>/<name>", the place the attempt uploads it to.
 *
 * Nothing is kept on disk: the bytes live in memory for the run (a retry on another backend
 * uploads them again) and are freed with the prep. */
#ifndef COMFYGATE_JOB_PREP_H
#define COMFYGATE_JOB_PREP_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "comfy/comfy_attempt.h"
#include "comfy/comfy_call.h"
#include "jobs/job_store.h"
#include "net/urlguard.h"

struct job_prep_env {
    struct ring *ring;
    struct ring_curl *rc;
    struct store *store;
    uint64_t max_bytes;  /* one image (MAX_INPUT_IMAGE_BYTES) */
    uint64_t max_side;   /* its width and height as its header declares them (MAX_IMAGE_SIZE;
                          * 0: unchecked) */
    uint32_t timeout_ms; /* one fetch (INPUT_URL_TIMEOUT_MS) */
    const struct urlguard *guard; /* SSRF rules for the fetch (INPUT_URL_ALLOWED_DOMAINS) */
};

struct job_prep;
typedef void (*job_prep_done_fn)(struct job_prep *p);

struct job_prep {
    const struct job_prep_env *env;
    struct job_blobs_load load;
    struct comfy_call call;
    struct urlguard_ctx gctx;
    json_t *images; /* [{"node", "name"?, "url"?}] (a reference) */
    json_t *graph;  /* rewritten in place (a reference) */
    char subfolder[48];
    size_t next;
    struct comfy_input_file files[16];
    unsigned char *data[16]; /* owned bytes of files[i] */
    size_t nfiles;
    bool loading, fetching, canceled, finished;
    int err; /* 0, or -errno */
    char message[512];
    job_prep_done_fn done;
    void *ctx;
};

/* Starts; done runs once (later, never from inside this call) with p->err and p->message. */
int job_prep_start(struct job_prep *p, const struct job_prep_env *env, const char *job_id,
                   const char *owner, json_t *images, json_t *graph, job_prep_done_fn done,
                   void *ctx);
/* Stops a fetch; done will not run. The prep is quiet (freeable) once job_prep_quiet. */
void job_prep_cancel(struct job_prep *p);
bool job_prep_quiet(const struct job_prep *p);
void job_prep_free(struct job_prep *p);

#endif
