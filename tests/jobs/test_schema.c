/* test_schema — the JSON-Schema subset: every keyword accepts and rejects what it should, every
 * failing field is reported at once with its JSON pointer, schema_check refuses anything outside
 * the subset (unknown keywords, bad patterns, defaults that break their own schema), defaults
 * never override given values, and hostile nesting is bounded. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "jobs/schema.c"

#define MAX_ERRORS 32

/* Parses JSON written with single quotes (tests stay readable without escaped quotes). */
static json_t *jq(const char *text)
{
    char *s = strdup(text);
    assert_non_null(s);
    for (char *p = s; *p; p++) {
        if (*p == '\'')
            *p = '"';
    }
    json_error_t e;
    json_t *v = json_loads(s, JSON_DECODE_ANY | JSON_ALLOW_NUL, &e);
    if (!v)
        fail_msg("bad test JSON: %s: %s", e.text, s);
    free(s);
    return v;
}

/* A chain of n one-element arrays around leaf, built without recursion. */
static json_t *deep_array(size_t n, json_t *leaf)
{
    json_t *v = leaf;
    for (size_t i = 0; i < n; i++) {
        json_t *a = json_array();
        assert_non_null(a);
        assert_int_equal(json_array_append_new(a, v), 0);
        v = a;
    }
    return v;
}

/* jansson frees recursively; unlinking one level at a time keeps the stack flat. */
static void deep_free(json_t *v)
{
    while (json_is_array(v) && json_array_size(v) == 1) {
        json_t *child = json_incref(json_array_get(v, 0));
        json_decref(v);
        v = child;
    }
    json_decref(v);
}

struct outcome {
    struct schema_error errors[MAX_ERRORS];
    struct schema_report rep;
    bool valid;
};

static void run(struct outcome *o, const char *schema, const char *value)
{
    json_t *s = jq(schema);
    json_t *v = jq(value);
    o->rep = (struct schema_report){.errors = o->errors, .cap = MAX_ERRORS};
    o->valid = schema_validate(s, v, &o->rep, 0);
    json_decref(s);
    json_decref(v);
}

static bool has_error(const struct outcome *o, const char *path, const char *keyword)
{
    for (size_t i = 0; i < o->rep.count; i++) {
        if (strcmp(o->errors[i].path, path) == 0 && strcmp(o->errors[i].keyword, keyword) == 0)
            return true;
    }
    return false;
}

static void print_errors(const struct outcome *o)
{
    for (size_t i = 0; i < o->rep.count; i++)
        print_error("  %s [%s] %s\n", o->errors[i].path, o->errors[i].keyword,
                    o->errors[i].message);
}

/* One keyword case: the value passes, or fails with exactly one error of `keyword` at `path`. */
struct kw_case {
    const char *schema;
    const char *value;
    const char *keyword; /* NULL: valid */
    const char *path;
};

static void run_cases(const struct kw_case *cases, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        struct outcome o;
        run(&o, cases[i].schema, cases[i].value);
        bool want_valid = cases[i].keyword == NULL;
        bool good = want_valid
                        ? o.valid && o.rep.count == 0
                        : !o.valid && o.rep.count == 1 &&
                              has_error(&o, cases[i].path ? cases[i].path : "", cases[i].keyword);
        if (!good) {
            print_errors(&o);
            fail_msg("case %zu: %s against %s", i, cases[i].value, cases[i].schema);
        }
        if (!want_valid)
            assert_true(o.errors[0].message[0] != '\0');
    }
}

static void test_type(void **state)
{
    static const struct kw_case cases[] = {
        {"{'type': 'string'}", "'x'", NULL, NULL},
        {"{'type': 'string'}", "1", "type", NULL},
        {"{'type': 'integer'}", "30", NULL, NULL},
        {"{'type': 'integer'}", "30.0", NULL, NULL}, /* a real with no fraction */
        {"{'type': 'integer'}", "-0.0", NULL, NULL},
        {"{'type': 'integer'}", "1e300", NULL, NULL}, /* every double this large is whole */
        {"{'type': 'integer'}", "30.5", "type", NULL},
        {"{'type': 'integer'}", "'30'", "type", NULL},
        {"{'type': 'integer'}", "true", "type", NULL},
        {"{'type': 'number'}", "30", NULL, NULL},
        {"{'type': 'number'}", "7.5", NULL, NULL},
        {"{'type': 'number'}", "'7.5'", "type", NULL},
        {"{'type': 'number'}", "null", "type", NULL},
        {"{'type': 'boolean'}", "false", NULL, NULL},
        {"{'type': 'boolean'}", "0", "type", NULL},
        {"{'type': 'object'}", "{}", NULL, NULL},
        {"{'type': 'object'}", "[]", "type", NULL},
        {"{'type': 'array'}", "[]", NULL, NULL},
        {"{'type': 'array'}", "{}", "type", NULL},
        {"{'type': ['string', 'integer']}", "5", NULL, NULL},
        {"{'type': ['string', 'integer']}", "'5'", NULL, NULL},
        {"{'type': ['string', 'integer']}", "5.5", "type", NULL},
        {"{'type': ['string', 'integer']}", "null", "type", NULL},
        {"{}", "null", NULL, NULL},
    };
    run_cases(cases, sizeof cases / sizeof cases[0]);
}

static void test_enum_mixed(void **state)
{
    const char *s = "{'enum': [1, 'a', true, null, {'k': [1]}, [2, 'x'], 2.5]}";
    const struct kw_case cases[] = {
        {s, "1", NULL, NULL},
        {s, "1.0", NULL, NULL}, /* 1 and 1.0 are equal */
        {s, "'a'", NULL, NULL},
        {s, "true", NULL, NULL},
        {s, "null", NULL, NULL},
        {s, "{'k': [1.0]}", NULL, NULL},
        {s, "[2, 'x']", NULL, NULL},
        {s, "2.5", NULL, NULL},
        {s, "'b'", "enum", NULL},
        {s, "false", "enum", NULL},
        {s, "2", "enum", NULL},
        {s, "'1'", "enum", NULL},
        {s, "{'k': [2]}", "enum", NULL},
        {s, "{'k': [1], 'j': 1}", "enum", NULL},
        {s, "['x', 2]", "enum", NULL},
        {s, "[2]", "enum", NULL},
    };
    run_cases(cases, sizeof cases / sizeof cases[0]);

    struct outcome o;
    run(&o, "{'enum': ['euler', 'dpmpp_2m']}", "'heun'");
    assert_string_equal(o.errors[0].message, "must be one of [\"euler\",\"dpmpp_2m\"]");

    /* A long list is cut, on a character boundary. */
    char big[2048] = "{'enum': [";
    for (int i = 0; i < 60; i++)
        strcat(big, i ? ", '猫猫猫猫猫'" : "'猫猫猫猫猫'");
    strcat(big, "]}");
    run(&o, big, "'x'");
    assert_int_equal(o.rep.count, 1);
    size_t len = strlen(o.errors[0].message);
    assert_string_equal(o.errors[0].message + len - 3, "...");
    json_t *msg = json_string(o.errors[0].message);
    assert_non_null(msg);
    json_decref(msg);
}

/* Type names from an unchecked schema are cut inside the message without splitting a
 * character. */
static void test_type_names_cut(void **state)
{
    char schema[512] = "{'type': ['a"; /* "a" puts byte 32 inside an "é" */
    for (int i = 0; i < 40; i++)
        strcat(schema, "é");
    strcat(schema, "', 'string']}");
    struct outcome o;
    run(&o, schema, "1");
    assert_int_equal(o.rep.count, 1);
    assert_non_null(strstr(o.errors[0].message, ", string"));
    json_t *msg = json_string(o.errors[0].message);
    assert_non_null(msg);
    json_decref(msg);
}

static void test_numbers(void **state)
{
    static const struct kw_case cases[] = {
        {"{'minimum': 1}", "1", NULL, NULL},
        {"{'minimum': 1}", "0", "minimum", NULL},
        {"{'minimum': 1}", "0.999", "minimum", NULL},
        {"{'maximum': 150}", "150", NULL, NULL},
        {"{'maximum': 150}", "150.0", NULL, NULL},
        {"{'maximum': 150}", "151", "maximum", NULL},
        {"{'exclusiveMinimum': 0}", "0.001", NULL, NULL},
        {"{'exclusiveMinimum': 0}", "0", "exclusiveMinimum", NULL},
        {"{'exclusiveMaximum': 1.5}", "1.4", NULL, NULL},
        {"{'exclusiveMaximum': 1.5}", "1.5", "exclusiveMaximum", NULL},
        /* exact for large integers, where doubles would round */
        {"{'maximum': 9007199254740992}", "9007199254740993", "maximum", NULL},
        {"{'minimum': 0, 'maximum': 18446744073709551615.0}", "4294967295", NULL, NULL},
        /* number keywords ignore other types */
        {"{'minimum': 10}", "'5'", NULL, NULL},
    };
    run_cases(cases, sizeof cases / sizeof cases[0]);

    struct outcome o;
    run(&o, "{'maximum': 150}", "200");
    assert_string_equal(o.errors[0].message, "must be at most 150");
    run(&o, "{'exclusiveMinimum': 0.1}", "0");
    assert_string_equal(o.errors[0].message, "must be greater than 0.1");
}

static void test_strings(void **state)
{
    static const struct kw_case cases[] = {
        {"{'minLength': 1}", "''", "minLength", NULL},
        {"{'minLength': 1}", "'a'", NULL, NULL},
        {"{'maxLength': 3}", "'猫猫猫'", NULL, NULL}, /* 9 bytes, 3 code points */
        {"{'maxLength': 2}", "'猫猫猫'", "maxLength", NULL},
        {"{'minLength': 4}", "'猫猫猫'", "minLength", NULL},
        {"{'maxLength': 1}", "'😀'", NULL, NULL},
        {"{'maxLength': 1}", "'é'", NULL, NULL},
        {"{'maxLength': 1}", "'ab'", "maxLength", NULL},
        {"{'pattern': '^[a-z_]+$'}", "'abc_d'", NULL, NULL},
        {"{'pattern': '^[a-z_]+$'}", "'abC'", "pattern", NULL},
        {"{'pattern': 'b'}", "'abc'", NULL, NULL}, /* unanchored */
        {"{'pattern': 'b'}", "'xyz'", "pattern", NULL},
        {"{'pattern': '^[0-9]{1,3}(\\\\.[0-9]{1,3}){3}$'}", "'10.0.0.1'", NULL, NULL},
        {"{'pattern': '^[0-9]{1,3}(\\\\.[0-9]{1,3}){3}$'}", "'10.0.0'", "pattern", NULL},
        {"{'pattern': 'c$'}", "'a\\u0000c'", NULL, NULL}, /* the whole string, past a NUL */
        {"{'pattern': '^a$'}", "'a\\u0000b'", "pattern", NULL},
        {"{'minLength': 5, 'pattern': 'x'}", "12", NULL, NULL}, /* ignored for non-strings */
        /* characters, not bytes, as minLength and maxLength count them */
        {"{'pattern': '^.{3}$'}", "'猫猫猫'", NULL, NULL},
        {"{'pattern': '^.{3}$'}", "'abcd'", "pattern", NULL},
        {"{'pattern': '^猫+😀$'}", "'猫猫猫😀'", NULL, NULL},
        {"{'pattern': '^[^a]$'}", "'é'", NULL, NULL},
        {"{'pattern': '^[é猫]+$'}", "'猫é猫'", NULL, NULL},
    };
    run_cases(cases, sizeof cases / sizeof cases[0]);

    struct outcome o;
    run(&o, "{'maxLength': 2, 'pattern': '^z'}", "'abc'");
    assert_int_equal(o.rep.count, 2);
    assert_true(has_error(&o, "", "maxLength"));
    assert_true(has_error(&o, "", "pattern"));
    assert_string_equal(o.errors[0].message, "must have at most 2 characters");
}

static void test_arrays(void **state)
{
    static const struct kw_case cases[] = {
        {"{'minItems': 1}", "[]", "minItems", NULL},
        {"{'minItems': 1}", "[0]", NULL, NULL},
        {"{'maxItems': 2}", "[1, 2]", NULL, NULL},
        {"{'maxItems': 2}", "[1, 2, 3]", "maxItems", NULL},
        {"{'items': {'type': 'integer'}}", "[1, 2, 3]", NULL, NULL},
        {"{'items': {'type': 'integer'}}", "[1, 'x', 3]", "type", "/1"},
        {"{'items': {'items': {'maximum': 1}}}", "[[0], [0, 1, 2]]", "maximum", "/1/2"},
        {"{'minItems': 1}", "{}", NULL, NULL},
    };
    run_cases(cases, sizeof cases / sizeof cases[0]);
}

static void test_objects(void **state)
{
    static const struct kw_case cases[] = {
        {"{'properties': {'a': {'type': 'string'}}}", "{'a': 'x', 'b': 1}", NULL, NULL},
        {"{'properties': {'a': {'type': 'string'}}}", "{'a': 1}", "type", "/a"},
        {"{'properties': {'a': {'type': 'string'}}}", "{}", NULL, NULL},
        {"{'required': ['a']}", "{'a': null}", NULL, NULL},
        {"{'required': ['a']}", "{'b': 1}", "required", "/a"},
        {"{'properties': {'a': {}}, 'additionalProperties': false}", "{'a': 1}", NULL, NULL},
        {"{'properties': {'a': {}}, 'additionalProperties': false}", "{'a': 1, 'zz': 2}",
         "additionalProperties", "/zz"},
        {"{'properties': {'a': {}}, 'additionalProperties': true}", "{'zz': 2}", NULL, NULL},
        {"{'additionalProperties': false}", "{'a/b~c': 1}", "additionalProperties", "/a~1b~0c"},
        {"{'required': ['x'], 'additionalProperties': false}", "[1]", NULL, NULL},
    };
    run_cases(cases, sizeof cases / sizeof cases[0]);
}

static const char sdxl_schema[] =
    "{'type': 'object', 'additionalProperties': false,"
    " 'required': ['prompt'],"
    " 'properties': {"
    "  'prompt': {'type': 'string', 'minLength': 1, 'maxLength': 2000,"
    "             'description': 'what to draw'},"
    "  'negative_prompt': {'type': 'string', 'maxLength': 2000, 'default': ''},"
    "  'seed': {'type': 'integer', 'minimum': 0, 'maximum': 4294967295, 'default': 0},"
    "  'steps': {'type': 'integer', 'minimum': 1, 'maximum': 150, 'default': 30},"
    "  'cfg': {'type': 'number', 'exclusiveMinimum': 0, 'maximum': 30, 'default': 7.5},"
    "  'width': {'type': 'integer', 'enum': [768, 1024, 1152], 'default': 1024},"
    "  'height': {'type': 'integer', 'enum': [768, 1024, 1152], 'default': 1024},"
    "  'batch_size': {'type': 'integer', 'minimum': 1, 'maximum': 8, 'default': 1},"
    "  'sampler': {'type': 'string', 'enum': ['euler', 'dpmpp_2m'], 'title': 'Sampler'},"
    "  'loras': {'type': 'array', 'maxItems': 4, 'default': [], 'items': {"
    "    'type': 'object', 'required': ['name'], 'additionalProperties': false,"
    "    'properties': {"
    "      'name': {'type': 'string', 'pattern': '^[A-Za-z0-9_.-]+\\\\.safetensors$'},"
    "      'strength': {'type': 'number', 'minimum': -2, 'maximum': 2, 'default': 1,"
    "                   'examples': [0.5, 1]}}}}}}";

/* Every failing field in one pass, each at its own path. */
static void test_all_errors_reported(void **state)
{
    struct outcome o;
    run(&o, sdxl_schema,
        "{'steps': 500, 'cfg': 0, 'width': '1024', 'height': 1000, 'batch_size': 2.5,"
        " 'sampler': 'heun', 'extra': 1, 'seed': -1,"
        " 'loras': [{'name': 'a.safetensors', 'strength': 3},"
        "           {'name': '../x.ckpt', 'bogus': true}, {'strength': 1}, 7]}");
    static const char *const want[][2] = {
        {"/seed", "minimum"},
        {"/steps", "maximum"},
        {"/cfg", "exclusiveMinimum"},
        {"/width", "type"},
        {"/width", "enum"},
        {"/height", "enum"},
        {"/batch_size", "type"},
        {"/sampler", "enum"},
        {"/loras/0/strength", "maximum"},
        {"/loras/1/name", "pattern"},
        {"/loras/1/bogus", "additionalProperties"},
        {"/loras/2/name", "required"},
        {"/loras/3", "type"},
        {"/prompt", "required"},
        {"/extra", "additionalProperties"},
    };
    size_t n = sizeof want / sizeof want[0];
    for (size_t i = 0; i < n; i++) {
        if (!has_error(&o, want[i][0], want[i][1])) {
            print_errors(&o);
            fail_msg("missing %s [%s]", want[i][0], want[i][1]);
        }
    }
    assert_false(o.valid);
    assert_int_equal(o.rep.count, n);
    assert_int_equal(o.rep.dropped, 0);

    /* A full, valid job passes. */
    run(&o, sdxl_schema,
        "{'prompt': 'a cat', 'steps': 30, 'cfg': 7.5, 'width': 1024, 'height': 768, 'seed': 7,"
        " 'loras': [{'name': 'detail.safetensors', 'strength': 0.5}]}");
    print_errors(&o);
    assert_true(o.valid);
    assert_int_equal(o.rep.count, 0);
}

/* Errors beyond the report's capacity are counted, and a NULL report still validates. */
static void test_report_cap(void **state)
{
    json_t *s = jq("{'items': {'type': 'string'}}");
    json_t *v = jq("[1, 2, 3, 4, 5]");
    struct schema_error errors[2];
    struct schema_report rep = {.errors = errors, .cap = 2, .count = 9, .dropped = 9};
    assert_false(schema_validate(s, v, &rep, 0));
    assert_int_equal(rep.count, 2);
    assert_int_equal(rep.dropped, 3);
    assert_string_equal(errors[1].path, "/1");
    assert_false(schema_validate(s, v, NULL, 0));
    json_t *ok = jq("['a']");
    assert_true(schema_validate(s, ok, NULL, 0));
    json_decref(ok);

    json_t *arr = schema_report_json(&rep);
    json_t *want = jq("[{'path': '/0', 'keyword': 'type', 'message': 'must be of type string'},"
                      " {'path': '/1', 'keyword': 'type', 'message': 'must be of type string'}]");
    assert_true(json_equal(arr, want));
    json_decref(arr);
    json_decref(want);
    json_decref(s);
    json_decref(v);
}

/* An unchecked, ill-typed schema fails closed rather than skipping the keyword. */
static void test_unchecked_schema_fails_closed(void **state)
{
    static const struct kw_case cases[] = {
        {"{'minimum': '1'}", "5", "minimum", NULL},
        {"{'maxLength': -1}", "'a'", "maxLength", NULL},
        {"{'pattern': '('}", "'a'", "pattern", NULL},
        {"{'type': 'float'}", "1.5", "type", NULL},
        {"{'type': [1]}", "1.5", "type", NULL},
        {"{'enum': 1}", "1", "enum", NULL},
        {"{'required': 'a'}", "{}", "required", NULL},
        {"{'required': [1]}", "{}", "required", NULL},
        {"{'type': []}", "1", "type", NULL},
        {"{'additionalProperties': {}}", "{}", "additionalProperties", NULL},
        {"{'properties': []}", "{}", "properties", NULL},
        {"{'items': 1}", "[1]", "schema", "/0"},
        {"[]", "1", "schema", NULL},
    };
    run_cases(cases, sizeof cases / sizeof cases[0]);
}

static void assert_check_fails(const char *schema, const char *needle)
{
    json_t *s = jq(schema);
    char err[256];
    int rc = schema_check(s, err, sizeof err);
    json_decref(s);
    if (rc != -1 || !strstr(err, needle))
        fail_msg("schema_check(%s) = %d \"%s\", wanted \"%s\"", schema, rc, err, needle);
}

static void test_check_accepts(void **state)
{
    static const char *const good[] = {
        sdxl_schema,
        "{}",
        "{'type': ['string', 'integer'], 'enum': ['a', 1]}",
        "{'type': 'string', 'format': 'uri', 'pattern': '^https?://', 'examples': []}",
        "{'minimum': 1, 'maximum': 1, 'minLength': 0, 'maxLength': 0}",
        "{'pattern': '^[0-9]{1,3}(\\\\.[0-9]{1,3}){3}$'}",
        "{'pattern': '[[:alpha:]][]a-]x{2,}'}",
        "{'pattern': '^(a|b{2}|c{,3}|d{0})$'}",
        "{'type': 'integer', 'default': 30.0}",
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        json_t *s = jq(good[i]);
        char err[256] = "untouched";
        if (schema_check(s, err, sizeof err) != 0)
            fail_msg("schema_check(%s): %s", good[i], err);
        assert_string_equal(err, "");
        json_decref(s);
    }
}

static void test_check_rejects(void **state)
{
    assert_check_fails("{'maximun': 150}", "/maximun: unsupported keyword");
    assert_check_fails("{'properties': {'steps': {'type': 'integer', 'maximun': 150}}}",
                       "/properties/steps/maximun: unsupported keyword");
    assert_check_fails("{'items': {'items': {'$ref': '#'}}}", "/items/items/$ref: unsupported");
    assert_check_fails("{'$schema': 'x'}", "unsupported keyword");
    assert_check_fails("{'oneOf': []}", "unsupported keyword");
    assert_check_fails("[]", "a schema must be an object");
    assert_check_fails("{'properties': {'a': true}}", "/properties/a: a schema must be");
    assert_check_fails("{'items': [{}]}", "/items: a schema must be an object");
    assert_check_fails("{'type': 'float'}", "/type: unsupported type: float");
    assert_check_fails("{'type': 'null'}", "unsupported type: null");
    assert_check_fails("{'type': ['string', 'float']}", "/type: unsupported type: float");
    assert_check_fails("{'properties': []}", "/properties: must be an object of schemas");
    assert_check_fails("{'type': []}", "non-empty list");
    assert_check_fails("{'type': ['string', 'string']}", "twice: string");
    assert_check_fails("{'required': ['a', 1]}", "/required: must list strings");
    assert_check_fails("{'required': ['a', 'a']}", "twice: a");
    assert_check_fails("{'required': 'a'}", "must be a list");
    assert_check_fails("{'additionalProperties': {}}", "/additionalProperties: must be true");
    assert_check_fails("{'enum': []}", "/enum: must be a non-empty list");
    assert_check_fails("{'minimum': '1'}", "/minimum: must be a number");
    assert_check_fails("{'exclusiveMaximum': true}", "must be a number");
    assert_check_fails("{'minLength': -1}", "/minLength: must be a non-negative integer");
    assert_check_fails("{'maxItems': 1.0}", "/maxItems: must be a non-negative integer");
    assert_check_fails("{'description': 1}", "/description: must be a string");
    assert_check_fails("{'examples': 1}", "/examples: must be a list");
    assert_check_fails("{'minimum': 5, 'maximum': 1}", "minimum is greater than maximum");
    assert_check_fails("{'minLength': 5, 'maxLength': 1}", "minLength is greater");
    assert_check_fails("{'minItems': 2, 'maxItems': 1}", "minItems is greater");
}

static void test_check_patterns(void **state)
{
    assert_check_fails("{'pattern': '('}", "/pattern: does not compile");
    assert_check_fails("{'pattern': '[a-'}", "does not compile");
    assert_check_fails("{'pattern': 'a{2,1}'}", "does not compile");
    assert_check_fails("{'pattern': 5}", "/pattern: must be a string");
    assert_check_fails("{'pattern': '(a)\\\\1'}", "too complex");
    assert_check_fails("{'pattern': '((a{100}){100}){100}'}", "too complex");
    assert_check_fails("{'pattern': 'a{9999}'}", "too complex");
    assert_check_fails("{'pattern': '(a{,99}){,99}'}", "too complex");
    assert_check_fails("{'pattern': '((((((((((((a+)+)+)+)+)+)+)+)+)+)+)+)+'}", "too complex");
    assert_check_fails("{'pattern': 'a\\u0000b'}", "no NUL");

    char long_pat[600];
    memset(long_pat, 'a', sizeof long_pat);
    long_pat[sizeof long_pat - 1] = '\0';
    json_t *s = json_pack("{s:s}", "pattern", long_pat);
    char err[256];
    assert_int_equal(schema_check(s, err, sizeof err), -1);
    assert_non_null(strstr(err, "at most 512 bytes"));
    json_decref(s);

    /* Exactly 512 bytes is allowed. */
    long_pat[512] = '\0';
    s = json_pack("{s:s}", "pattern", long_pat);
    assert_int_equal(schema_check(s, err, sizeof err), 0);
    json_decref(s);
}

static void test_check_defaults(void **state)
{
    assert_check_fails("{'type': 'integer', 'maximum': 150, 'default': 200}",
                       "/default: violates its own schema: must be at most 150");
    assert_check_fails("{'properties': {'steps': {'type': 'integer', 'default': 'many'}}}",
                       "/properties/steps/default: violates its own schema");
    assert_check_fails("{'items': {'enum': ['a'], 'default': 'b'}}", "/items/default");
    assert_check_fails(
        "{'properties': {'lora': {'type': 'object', 'required': ['name'], 'default': {}}}}",
        "violates its own schema at /name: is required");
    assert_check_fails("{'type': 'array', 'items': {'type': 'string'}, 'default': ['a', 1]}",
                       "at /1: must be of type string");
}

static void test_check_depth(void **state)
{
    char schema[4096] = "";
    for (int i = 0; i < 40; i++)
        strcat(schema, "{'items': ");
    strcat(schema, "{}");
    for (int i = 0; i < 40; i++)
        strcat(schema, "}");
    assert_check_fails(schema, "is nested deeper than 32 levels");
}

static void test_check_err_optional(void **state)
{
    json_t *s = jq("{'bogus': 1}");
    assert_int_equal(schema_check(s, NULL, 0), -1);
    char err[8];
    assert_int_equal(schema_check(s, err, sizeof err), -1);
    assert_int_equal(strlen(err), 7); /* cut to fit */
    assert_int_equal(schema_check(NULL, err, sizeof err), -1);
    json_decref(s);
}

static void test_apply_defaults(void **state)
{
    json_t *schema = jq(sdxl_schema);
    json_t *in = jq("{'prompt': 'a cat', 'steps': 12, 'cfg': null, 'loras': [{'name': 'x'}]}");
    json_t *out = schema_apply_defaults(schema, in);
    json_t *want = jq("{'prompt': 'a cat', 'steps': 12, 'cfg': null,"
                      " 'loras': [{'name': 'x'}], 'negative_prompt': '', 'seed': 0,"
                      " 'width': 1024, 'height': 1024, 'batch_size': 1}");
    assert_true(json_equal(out, want));
    /* Nested defaults (loras/0/strength) are not applied: top level only. */
    assert_null(json_object_get(json_array_get(json_object_get(out, "loras"), 0), "strength"));
    /* The inputs themselves are untouched. */
    assert_int_equal(json_object_size(in), 4);

    /* Defaults are copies: changing one in the output leaves the schema alone. */
    json_t *in2 = jq("{}");
    json_t *out2 = schema_apply_defaults(schema, in2);
    json_array_append_new(json_object_get(out2, "loras"), json_integer(1));
    json_t *def =
        json_object_get(json_object_get(json_object_get(schema, "properties"), "loras"), "default");
    assert_int_equal(json_array_size(def), 0);

    json_t *arr = jq("[]");
    assert_null(schema_apply_defaults(schema, arr));
    assert_null(schema_apply_defaults(schema, NULL));
    json_t *none = jq("{'type': 'object'}");
    json_t *out3 = schema_apply_defaults(none, in);
    assert_true(json_equal(out3, in));
    json_decref(out3);
    json_decref(none);
    json_decref(arr);
    json_decref(out2);
    json_decref(in2);
    json_decref(want);
    json_decref(out);
    json_decref(in);
    json_decref(schema);
}

/* A 100000-deep value: validation stops at the depth bound, never recursing that far. */
static void test_deep_value(void **state)
{
    json_t *value = deep_array(100000, json_integer(1));
    struct schema_error errors[4];
    struct schema_report rep = {.errors = errors, .cap = 4};

    json_t *flat = jq("{'type': 'array', 'maxItems': 1}");
    assert_true(schema_validate(flat, value, &rep, 0));

    /* A schema that follows the nesting 40 levels down meets the bound of 32 first. */
    json_t *schema = jq("{}");
    for (int i = 0; i < 40; i++)
        schema = json_pack("{s:s, s:o}", "type", "array", "items", schema);
    assert_false(schema_validate(schema, value, &rep, 0));
    assert_int_equal(rep.count, 1);
    assert_string_equal(errors[0].keyword, "depth");
    assert_int_equal(strlen(errors[0].path), 2 * 32); /* "/0" x 32 */
    assert_false(schema_validate(schema, value, &rep, 3));
    assert_string_equal(errors[0].path, "/0/0/0");

    /* Comparing against a nested enum entry is bounded too. */
    json_t *en = jq("{'enum': [[[[[1]]]]]}");
    assert_false(schema_validate(en, value, &rep, 0));
    assert_string_equal(errors[0].keyword, "enum");

    json_t *in = json_pack("{s:O}", "deep", value);
    json_t *out = schema_apply_defaults(flat, in);
    assert_non_null(out);
    json_decref(out);
    json_decref(in);

    json_decref(en);
    json_decref(schema);
    json_decref(flat);
    deep_free(value);
}

static void test_long_path_valid_utf8(void **state)
{
    char key[400] = "";
    for (int i = 0; i < 100; i++)
        strcat(key, "猫");
    json_t *schema = jq("{'additionalProperties': false, 'maxLength': 0}");
    for (size_t shift = 0; shift < 3; shift++) {
        json_t *inner = json_pack("{s:i}", key, 1);
        json_t *v = json_pack("{s:o}", shift == 0 ? "b" : shift == 1 ? "bb" : "bbb", inner);
        json_t *s = json_pack("{s:{s:O}}", "properties",
                              shift == 0   ? "b"
                              : shift == 1 ? "bb"
                                           : "bbb",
                              schema);
        struct schema_error errors[2];
        struct schema_report rep = {.errors = errors, .cap = 2};
        assert_false(schema_validate(s, v, &rep, 0));
        assert_int_equal(rep.count, 1);
        json_t *arr = schema_report_json(&rep);
        assert_int_equal(json_array_size(arr), 1); /* jansson refuses invalid UTF-8 */
        json_decref(arr);
        json_decref(s);
        json_decref(v);
    }
    json_decref(schema);
}

/* Allocations jansson may still make before failing; -1: no limit. Test-only state. */
static long alloc_budget = -1;

static void *budget_malloc(size_t n)
{
    if (alloc_budget == 0)
        return NULL;
    if (alloc_budget > 0)
        alloc_budget--;
    return malloc(n);
}

/* Every allocation jansson makes fails once in turn: each API reports it (or degrades a
 * message) and leaks nothing. */
static void test_out_of_memory(void **state)
{
    json_t *schema = jq(sdxl_schema);
    json_t *bad = jq("{'sampler': 'heun', 'extra': 1, 'loras': [{'name': 'x'}]}");
    json_set_alloc_funcs(budget_malloc, free);
    bool done = false;
    for (long n = 0; !done; n++) {
        assert_true(n < 100000);
        char err[256];
        struct schema_error errors[8];
        struct schema_report rep = {.errors = errors, .cap = 8};
        alloc_budget = n;
        int rc = schema_check(schema, err, sizeof err);
        bool valid = schema_validate(schema, bad, &rep, 0);
        json_t *arr = schema_report_json(&rep);
        json_t *out = schema_apply_defaults(schema, bad);
        alloc_budget = -1;
        assert_true(rc == 0 || strstr(err, "out of memory"));
        assert_false(valid);
        assert_int_equal(rep.count, 4); /* messages may lose detail, never an error */
        done = rc == 0 && arr && out;
        json_decref(arr);
        json_decref(out);
    }
    json_set_alloc_funcs(malloc, free);
    json_decref(bad);
    json_decref(schema);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_type),
        cmocka_unit_test(test_enum_mixed),
        cmocka_unit_test(test_type_names_cut),
        cmocka_unit_test(test_numbers),
        cmocka_unit_test(test_strings),
        cmocka_unit_test(test_arrays),
        cmocka_unit_test(test_objects),
        cmocka_unit_test(test_all_errors_reported),
        cmocka_unit_test(test_report_cap),
        cmocka_unit_test(test_unchecked_schema_fails_closed),
        cmocka_unit_test(test_check_accepts),
        cmocka_unit_test(test_check_rejects),
        cmocka_unit_test(test_check_patterns),
        cmocka_unit_test(test_check_defaults),
        cmocka_unit_test(test_check_depth),
        cmocka_unit_test(test_check_err_optional),
        cmocka_unit_test(test_apply_defaults),
        cmocka_unit_test(test_deep_value),
        cmocka_unit_test(test_long_path_valid_utf8),
        cmocka_unit_test(test_out_of_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
