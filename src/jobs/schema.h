/* schema — a documented subset of JSON Schema for workflow inputs, checked strictly.
 *
 * Supported keywords (anything else in a schema is rejected by schema_check so that a typo
 * never silently weakens validation):
 *   type ("string" | "integer" | "number" | "boolean" | "object" | "array", or a list of them),
 *   properties, required, additionalProperties (boolean only), enum, minimum, maximum,
 *   exclusiveMinimum, exclusiveMaximum (numbers), minLength, maxLength, pattern (POSIX ERE via
 *   regcomp, matched unanchored like JSON Schema), minItems, maxItems, items (one schema),
 *   default, description, title, format (annotation only), examples.
 * "integer" accepts JSON integers and reals with no fractional part.
 * Strings are counted in Unicode code points for min/maxLength, and patterns match characters
 * too (under C.UTF-8 when pattern or string is not ASCII). A pattern is at most 512 bytes, has
 * no back-references and a bounded expansion of its repetitions ("(a{100}){100}" is refused).
 * A missing required property and a property refused by additionalProperties are reported at
 * that property's own path ("/prompt"). */
#ifndef COMFYGATE_SCHEMA_H
#define COMFYGATE_SCHEMA_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* One failing field. */
struct schema_error {
    char path[256];    /* JSON pointer of the value: "/steps", "/loras/0/name", "" for the root */
    char keyword[32];  /* "type", "required", "maximum", "pattern", ... */
    char message[256]; /* human readable: "must be at most 150" */
};

struct schema_report {
    struct schema_error *errors;
    size_t count;
    size_t cap;        /* errors beyond cap are counted in `dropped` */
    size_t dropped;
};

/* Checks that `schema` itself uses only the supported subset with well-typed values (and that
 * every pattern compiles, and every default validates against its own schema). Returns 0, or
 * -1 with a message in err. */
int schema_check(const json_t *schema, char *err, size_t errlen);

/* Validates value against schema, collecting EVERY failing field (not just the first) into rep
 * (rep->errors must point to cap entries; count and dropped are reset; rep may be NULL). Returns
 * true if valid. max_depth bounds recursion of both the schema and the value (default 32 when
 * 0). A schema that schema_check would refuse fails closed: an ill-typed keyword is an error. */
bool schema_validate(const json_t *schema, const json_t *value, struct schema_report *rep,
                     size_t max_depth);

/* Returns a new object: inputs plus, for each top-level property with a "default" that inputs
 * lacks, that default (deep copy). The values taken from inputs are shared with it, not copied.
 * Non-object inputs → NULL. */
json_t *schema_apply_defaults(const json_t *schema, const json_t *inputs);

/* The errors of rep as a JSON array [{"path","keyword","message"}] (new reference). */
json_t *schema_report_json(const struct schema_report *rep);

#endif
