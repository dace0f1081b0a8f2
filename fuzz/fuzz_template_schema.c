/* fuzz_template_schema — libFuzzer harness for the pure job modules (src/jobs: template,
 * schema). The input is split at NUL bytes into up to three JSON texts: a workflow template, a
 * job's inputs and an input schema (a missing part is absent; raw NULs cannot occur inside
 * JSON text, "\u0000" escapes still can). Each schema goes through schema_check,
 * schema_validate (default and tiny depth bounds) and schema_apply_defaults; each template
 * through template_placeholders and template_render (default and tiny limits) with both the
 * raw and the defaulted inputs. Besides crashes and sanitizer reports it checks the
 * invariants callers rely on: results and error codes agree, fixed-size fields are terminated
 * and valid UTF-8 (they go into JSON error bodies), a render succeeds only if every placeholder
 * has an input, and defaults never replace a given value.
 * Seed corpus: fuzz/corpus/template_schema/ (an SDXL txt2img graph with its inputs and schema,
 * and variations of each). */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"
#include "jobs/schema.h"
#include "jobs/template.h"

#define PARTS 3
#define REPORT_CAP 8

static void check_text(const char *s, size_t cap)
{
    CHECK(memchr(s, '\0', cap) != NULL);
    json_t *str = json_string(s); /* NULL on invalid UTF-8 */
    CHECK(str != NULL);
    json_decref(str);
}

static void check_render(const json_t *tmpl, const json_t *inputs, const json_t *names,
                         const struct template_limits *lim)
{
    struct template_result res;
    json_t *out = template_render(tmpl, inputs, lim, &res);
    CHECK((out != NULL) == (res.err == TEMPLATE_OK));
    CHECK(res.err >= TEMPLATE_OK && res.err <= TEMPLATE_NO_MEMORY);
    CHECK(strcmp(template_err_name(res.err), "unknown") != 0);
    check_text(res.name, sizeof res.name);
    check_text(res.path, sizeof res.path);
    if (res.err == TEMPLATE_MISSING_INPUT) {
        CHECK(res.name[0] != '\0');
        CHECK(!json_object_get(inputs, res.name));
    }
    if (!out)
        return;
    CHECK(json_is_object(out));
    /* Rendering succeeded, so every placeholder the template uses had an input. */
    for (size_t i = 0; names && i < json_array_size(names); i++) {
        const json_t *name = json_array_get(names, i);
        CHECK(json_object_getn(inputs, json_string_value(name), json_string_length(name)));
    }
    char *text = json_dumps(out, JSON_COMPACT | JSON_ENCODE_ANY);
    CHECK(text != NULL);
    free(text);
    json_decref(out);
}

static void fuzz_template(const json_t *tmpl, const json_t *inputs, const json_t *defaulted)
{
    static const struct template_limits tiny = {
        .max_depth = 4, .max_string = 64, .max_placeholders = 8, .max_output = 256};
    json_t *names = template_placeholders(tmpl, NULL);
    for (size_t i = 0; names && i < json_array_size(names); i++) {
        const json_t *name = json_array_get(names, i);
        CHECK(json_is_string(name));
        CHECK(json_string_length(name) >= 1 && json_string_length(name) <= 64);
    }
    check_render(tmpl, inputs, names, NULL);
    check_render(tmpl, inputs, names, &tiny);
    if (defaulted)
        check_render(tmpl, defaulted, names, NULL);
    json_t *tiny_names = template_placeholders(tmpl, &tiny);
    json_decref(tiny_names);
    json_decref(names);
}

static void fuzz_validate(const json_t *schema, const json_t *value, size_t max_depth)
{
    struct schema_error errors[REPORT_CAP];
    struct schema_report rep = {.errors = errors, .cap = REPORT_CAP};
    bool ok = schema_validate(schema, value, &rep, max_depth);
    CHECK(ok == (rep.count == 0 && rep.dropped == 0));
    CHECK(rep.count <= rep.cap);
    for (size_t i = 0; i < rep.count; i++) {
        check_text(errors[i].path, sizeof errors[i].path);
        check_text(errors[i].keyword, sizeof errors[i].keyword);
        check_text(errors[i].message, sizeof errors[i].message);
        CHECK(errors[i].keyword[0] != '\0');
    }
    json_t *arr = schema_report_json(&rep);
    CHECK(arr != NULL && json_array_size(arr) == rep.count);
    json_decref(arr);
    CHECK(schema_validate(schema, value, NULL, max_depth) == ok);
}

/* Returns the inputs with defaults applied (or NULL), after checking that nothing given was
 * replaced. */
static json_t *fuzz_schema(const json_t *schema, const json_t *inputs)
{
    char err[256];
    int rc = schema_check(schema, err, sizeof err);
    CHECK(rc == 0 || rc == -1);
    if (rc != 0)
        CHECK(err[0] != '\0');
    check_text(err, sizeof err);
    if (inputs) {
        fuzz_validate(schema, inputs, 0);
        fuzz_validate(schema, inputs, 3);
    }
    json_t *out = schema_apply_defaults(schema, inputs);
    CHECK((out != NULL) == json_is_object(inputs));
    const char *key;
    json_t *val;
    json_object_foreach((json_t *)inputs, key, val) {
        CHECK(json_equal(json_object_get(out, key), val));
    }
    return out;
}

static json_t *load(const uint8_t *data, size_t size)
{
    return json_loadb((const char *)data, size, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *part[PARTS] = {NULL, NULL, NULL};
    size_t at = 0;
    for (int i = 0; i < PARTS && at <= size; i++) {
        const uint8_t *nul = memchr(data + at, '\0', size - at);
        size_t len = nul ? (size_t)(nul - (data + at)) : size - at;
        part[i] = load(data + at, len);
        at += len + 1;
    }
    json_t *tmpl = part[0], *inputs = part[1], *schema = part[2];
    json_t *defaulted = NULL;
    if (schema)
        defaulted = fuzz_schema(schema, inputs);
    if (tmpl)
        fuzz_template(tmpl, inputs, defaulted);
    json_decref(defaulted);
    for (int i = 0; i < PARTS; i++)
        json_decref(part[i]);
    return 0;
}
