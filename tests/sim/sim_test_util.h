/*
 * sim_test_util — shared helpers of the comfysim unit tests: the transcripts folder, an
 * in-memory sim_fs, a recorder for the executor's WebSocket output, and JSON comparison in
 * CPython's own text form (so "equal" means "the same bytes a real server would send").
 */
#ifndef SIM_TEST_UTIL_H
#define SIM_TEST_UTIL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sim/sim_fs.h"

#define SIMT_SKIP 77 /* meson: test skipped */

/* The transcripts folder (env SIM_TRANSCRIPTS), or NULL when it does not exist. */
const char *simt_transcripts(void);
/* Exits 77 when the transcripts are missing. */
void simt_require_transcripts(void);
/* Loads NN_name.json from the transcripts; aborts the test on failure. New ref. */
json_t *simt_load(const char *file);
/* Reads a whole file from the transcripts folder (malloc'd). */
uint8_t *simt_read_file(const char *file, size_t *len);
/* The n-th step (0-based) of a transcript, and pieces of it (borrowed). */
json_t *simt_step(json_t *transcript, size_t n);
json_t *simt_request_json(json_t *step);
json_t *simt_response_json(json_t *step);
int simt_response_status(json_t *step);
/* The "json" of every text frame the transcript's client received (new ref array). */
json_t *simt_ws_texts(json_t *transcript, const char *key);

/* json.dumps(a) == json.dumps(b); prints both on mismatch. */
bool simt_same_json(const json_t *got, const json_t *want);
/* Copy of v with every "timestamp", "create_time", "prompt_id" and listed key removed. */
json_t *simt_strip(const json_t *v, const char *const *extra_keys);

/* --- in-memory filesystem --------------------------------------------------------------- */

struct simt_file {
    enum sim_dir dir;
    char path[SIM_PATH_MAX];
    uint8_t *data;
    size_t len;
};

#define SIMT_FILES_MAX 256

struct simt_fs {
    struct sim_fs fs; /* pass &t->fs to the engine */
    struct simt_file files[SIMT_FILES_MAX];
    size_t n;
    int fail_writes; /* errno to fail writes with, 0 for none */
};

void simt_fs_init(struct simt_fs *t);
void simt_fs_free(struct simt_fs *t);
int simt_fs_put(struct simt_fs *t, enum sim_dir dir, const char *path, const void *data,
                size_t len);
const struct simt_file *simt_fs_get(const struct simt_fs *t, enum sim_dir dir, const char *path);

/* --- WebSocket recorder --------------------------------------------------------------------- */

struct simt_ws {
    json_t *frames; /* [{"type", "data", "sid"} | {"binary": hex, "sid"}] in emission order */
};

void simt_ws_init(struct simt_ws *w);
void simt_ws_free(struct simt_ws *w);
void simt_ws_emit_cb(void *ctx, const char *type, const json_t *data, const char *sid);
void simt_ws_binary_cb(void *ctx, const uint8_t *data, size_t len, const char *sid);
/* Adds a `status` frame as the caller (the server) would, for queue updates. */
void simt_ws_status_cb(void *ctx, int queue_remaining);
/* The frames a client with this id would receive, as {"type", "data"} (new ref). */
json_t *simt_ws_for_client(const struct simt_ws *w, const char *client_id);

#endif
