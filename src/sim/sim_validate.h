/*
 * sim_validate — ComfyUI 0.8.0's validate_prompt / validate_inputs, in C.
 *
 * Given the `prompt` of a POST /prompt body, produces what the real server answers: the
 * invalid_prompt / prompt_no_outputs / prompt_outputs_failed_validation error with its
 * per-node errors (required_input_missing, bad_linked_input, return_type_mismatch,
 * invalid_input_type, value_smaller_than_min, value_bigger_than_max, value_not_in_list,
 * custom_validation_failed, exception_during_validation / _inner_validation with the Python
 * traceback ComfyUI would print), or the list of valid outputs to execute — plus node_errors
 * for the invalid ones when at least one output is valid (then the prompt is still queued).
 *
 * Like the real code, validation converts widget values in place (INT/FLOAT/STRING/BOOLEAN,
 * "__value__" wrappers), so the prompt later shown by /queue and /history carries them.
 * LoadImage's file check goes through sim_fs, so the caller owns the filesystem.
 */
#ifndef SIM_VALIDATE_H
#define SIM_VALIDATE_H

#include <jansson.h>
#include <stdbool.h>

#include "sim/sim_fs.h"
#include "sim/sim_nodes.h"

#define SIM_PROMPT_NODES_MAX 4096  /* nodes in one prompt; more is refused (500) */
#define SIM_VALIDATE_DEPTH_MAX 200 /* link chain depth; deeper is Python's RecursionError */

enum sim_validate_err {
    SIM_VALIDATE_OK = 0,
    SIM_VALIDATE_ENOMEM = -1,  /* allocation failed */
    SIM_VALIDATE_EPYTHON = -2, /* the real server raises outside its handlers: answer 500 */
    SIM_VALIDATE_ETOOBIG = -3, /* more than SIM_PROMPT_NODES_MAX nodes */
};

struct sim_validate_result {
    bool ok;             /* at least one output validated: queue it */
    json_t *error;       /* when !ok: the "error" object of the 400 answer */
    json_t *node_errors; /* always an object (may be {} or non-empty with ok) */
    json_t *outputs;     /* ids of the outputs to execute, in prompt order */
};

const char *sim_validate_err_name(int err);
/*
 * Validates `prompt` (modified in place as described above). partial_targets is the body's
 * partial_execution_targets array or NULL. Returns SIM_VALIDATE_OK with res filled (check
 * res->ok), or an error and res empty.
 */
int sim_validate_prompt(const struct sim_nodes *nodes, const struct sim_fs *fs, json_t *prompt,
                        const json_t *partial_targets, struct sim_validate_result *res);
void sim_validate_result_free(struct sim_validate_result *res);
/* {"error": res->error, "node_errors": res->node_errors}: the 400 body. New ref. */
json_t *sim_validate_error_body(const struct sim_validate_result *res);
/* The 400 body for a POST /prompt without "prompt". New ref. */
json_t *sim_validate_no_prompt_body(void);

#endif
