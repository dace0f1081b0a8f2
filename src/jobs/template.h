/* template — renders a workflow template (a ComfyUI API-format graph with {{placeholders}})
 * with a job's inputs.
 *
 * Rules:
 *  - A JSON string that is exactly one placeholder, "{{name}}", becomes the input's value with
 *    its JSON type ("{{steps}}" → 30, "{{prompt}}" → "a cat", an object or array stays one).
 *  - A placeholder inside a longer string is interpolated as text: strings verbatim, numbers
 *    and booleans in their JSON spelling; an object, array or null there is an error.
 *  - Placeholders are found in string values only, never in object keys, and substituted
 *    values are never re-scanned, so no input can inject JSON structure or more placeholders.
 *  - Names are [A-Za-z_][A-Za-z0-9_.-]{0,63}; whitespace inside the braces is allowed
 *    ("{{ seed }}"). "{{" not followed by a valid name and "}}" is left as text.
 *  - A placeholder with no value in `inputs` is an error naming it (the caller merges schema
 *    defaults into inputs first).
 * Limits: output size and nesting depth are bounded (template_limits; a NULL lim or a zero
 * field means the default). */
#ifndef COMFYGATE_TEMPLATE_H
#define COMFYGATE_TEMPLATE_H

#include <jansson.h>
#include <stddef.h>

struct template_limits {
    size_t max_depth;        /* nesting of the template (default 64) */
    size_t max_string;       /* bytes of one rendered string (default 1 MiB) */
    size_t max_placeholders; /* occurrences in one template (default 10000) */
    size_t max_output;       /* bytes of all strings in the rendered graph (default 16 MiB) */
};

enum template_err {
    TEMPLATE_OK = 0,
    TEMPLATE_MISSING_INPUT,  /* a placeholder has no value: `name` says which */
    TEMPLATE_BAD_TYPE,       /* object/array/null interpolated into a longer string */
    TEMPLATE_TOO_LARGE,      /* a limit was hit */
    TEMPLATE_NOT_OBJECT,     /* the template is not a JSON object */
    TEMPLATE_NO_MEMORY,      /* an allocation failed */
};

struct template_result {
    enum template_err err;
    char name[72];     /* the placeholder concerned */
    char path[256];    /* where in the template, as a JSON pointer ("/3/inputs/seed") */
};

/* Collects the distinct placeholder names used in tmpl into a new JSON array of strings, in
 * first-use order. NULL if tmpl exceeds the limits. */
json_t *template_placeholders(const json_t *tmpl, const struct template_limits *lim);

/* Returns a new rendered graph, or NULL with res->err set. inputs is a JSON object. */
json_t *template_render(const json_t *tmpl, const json_t *inputs,
                        const struct template_limits *lim, struct template_result *res);

const char *template_err_name(enum template_err e);
void template_limits_default(struct template_limits *lim);

#endif
