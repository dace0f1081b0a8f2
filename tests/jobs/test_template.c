/* test_template — rendering a workflow template: exact placeholders keep their input's JSON
 * type, interpolation is plain text that is never re-scanned, keys are never touched, and
 * every limit (depth, string size, total output, placeholder count) is enforced, including on
 * values nested far deeper than the stack could recurse. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "jobs/template.c"

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

/* A chain of n one-element arrays (or one-member objects) around leaf, built without
 * recursion. */
static json_t *deep(size_t n, json_t *leaf, bool objects)
{
    json_t *v = leaf;
    for (size_t i = 0; i < n; i++) {
        json_t *c = objects ? json_object() : json_array();
        assert_non_null(c);
        if (objects)
            assert_int_equal(json_object_set_new(c, "a", v), 0);
        else
            assert_int_equal(json_array_append_new(c, v), 0);
        v = c;
    }
    return v;
}

/* jansson frees recursively; unlinking one level at a time keeps the stack flat. */
static void deep_free(json_t *v)
{
    for (;;) {
        json_t *child = NULL;
        if (json_is_array(v) && json_array_size(v) == 1)
            child = json_array_get(v, 0);
        else if (json_is_object(v) && json_object_size(v) == 1)
            child = json_object_iter_value(json_object_iter(v));
        if (!child)
            break;
        json_incref(child);
        json_decref(v);
        v = child;
    }
    json_decref(v);
}

/* Renders {"1": {"inputs": {"v": <field>}}} and returns the rendered field (new reference). */
static json_t *render_field(json_t *field, const json_t *inputs, struct template_result *res)
{
    json_t *tmpl = json_pack("{s:{s:{s:o}}}", "1", "inputs", "v", field);
    assert_non_null(tmpl);
    json_t *out = template_render(tmpl, inputs, NULL, res);
    json_decref(tmpl);
    if (!out)
        return NULL;
    json_t *v =
        json_incref(json_object_get(json_object_get(json_object_get(out, "1"), "inputs"), "v"));
    json_decref(out);
    return v;
}

static json_t *render_str(const char *field, const json_t *inputs, struct template_result *res)
{
    return render_field(json_string(field), inputs, res);
}

static void assert_renders_string(const char *field, const json_t *inputs, const char *want)
{
    struct template_result res;
    json_t *v = render_str(field, inputs, &res);
    if (!v)
        fail_msg("%s: %s (%s at %s)", field, template_err_name(res.err), res.name, res.path);
    assert_int_equal(res.err, TEMPLATE_OK);
    assert_true(json_is_string(v));
    assert_string_equal(json_string_value(v), want);
    json_decref(v);
}

static void assert_render_fails(const char *field, const json_t *inputs, enum template_err err,
                                const char *name)
{
    struct template_result res;
    json_t *v = render_str(field, inputs, &res);
    assert_null(v);
    assert_int_equal(res.err, err);
    assert_string_equal(res.name, name);
    assert_string_equal(res.path, "/1/inputs/v");
}

static const char sdxl[] =
    "{'3': {'class_type': 'KSampler', 'inputs': {'seed': '{{seed}}', 'steps': '{{steps}}',"
    "  'cfg': '{{cfg}}', 'sampler_name': 'euler', 'scheduler': 'normal', 'denoise': 1.0,"
    "  'model': ['4', 0], 'positive': ['6', 0], 'negative': ['7', 0],"
    "  'latent_image': ['5', 0]}},"
    " '4': {'class_type': 'CheckpointLoaderSimple',"
    "  'inputs': {'ckpt_name': 'sd_xl_base_1.0.safetensors'}},"
    " '5': {'class_type': 'EmptyLatentImage', 'inputs': {'width': '{{width}}',"
    "  'height': '{{ height }}', 'batch_size': '{{batch_size}}'}},"
    " '6': {'class_type': 'CLIPTextEncode', 'inputs': {'text': '{{prompt}}', 'clip': ['4', 1]}},"
    " '7': {'class_type': 'CLIPTextEncode',"
    "  'inputs': {'text': '{{negative_prompt}}', 'clip': ['4', 1]}},"
    " '8': {'class_type': 'VAEDecode', 'inputs': {'samples': ['3', 0], 'vae': ['4', 2]}},"
    " '9': {'class_type': 'SaveImage',"
    "  'inputs': {'filename_prefix': 'sdxl-{{seed}}-{{width}}x{{height}}', 'images': ['8', 0]}}}";

static const char sdxl_inputs[] =
    "{'prompt': 'a cat', 'negative_prompt': 'blurry', 'seed': 42, 'steps': 30, 'cfg': 7.5,"
    " 'width': 1024, 'height': 768, 'batch_size': 1}";

static const json_t *node_input(const json_t *g, const char *node, const char *name)
{
    return json_object_get(json_object_get(json_object_get(g, node), "inputs"), name);
}

static void test_sdxl_graph(void **state)
{
    json_t *tmpl = jq(sdxl);
    json_t *in = jq(sdxl_inputs);
    struct template_result res;
    json_t *g = template_render(tmpl, in, NULL, &res);
    assert_non_null(g);
    assert_int_equal(res.err, TEMPLATE_OK);
    assert_true(json_is_integer(node_input(g, "3", "seed")));
    assert_int_equal(json_integer_value(node_input(g, "3", "seed")), 42);
    assert_int_equal(json_integer_value(node_input(g, "3", "steps")), 30);
    assert_true(json_is_real(node_input(g, "3", "cfg")));
    assert_true(json_real_value(node_input(g, "3", "cfg")) == 7.5);
    assert_int_equal(json_integer_value(node_input(g, "5", "height")), 768);
    assert_string_equal(json_string_value(node_input(g, "6", "text")), "a cat");
    assert_string_equal(json_string_value(node_input(g, "7", "text")), "blurry");
    assert_string_equal(json_string_value(node_input(g, "9", "filename_prefix")),
                        "sdxl-42-1024x768");
    /* Everything without a placeholder is carried over unchanged, links included. */
    assert_true(json_equal(node_input(g, "6", "clip"), node_input(tmpl, "6", "clip")));
    assert_true(json_equal(json_object_get(g, "8"), json_object_get(tmpl, "8")));
    assert_true(json_real_value(node_input(g, "3", "denoise")) == 1.0);
    assert_int_equal(json_object_size(g), json_object_size(tmpl));
    json_decref(g);
    json_decref(tmpl);
    json_decref(in);
}

/* An exact placeholder takes its input's JSON type, containers included. */
static void test_exact_typed(void **state)
{
    json_t *in = jq("{'steps': 30, 'cfg': 7.5, 'on': true, 'off': false, 'nothing': null,"
                    " 'obj': {'a': [1, 2]}, 'arr': ['x', 2], 'prompt': 'a cat'}");
    static const struct {
        const char *field;
        const char *want;
    } cases[] = {
        {"{{steps}}", "30"},     {"{{cfg}}", "7.5"},          {"{{on}}", "true"},
        {"{{off}}", "false"},    {"{{nothing}}", "null"},     {"{{obj}}", "{'a': [1, 2]}"},
        {"{{arr}}", "['x', 2]"}, {"{{prompt}}", "'a cat'"},   {"{{ steps }}", "30"},
        {"{{\tsteps\n}}", "30"}, {"{{  prompt}}", "'a cat'"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct template_result res;
        json_t *v = render_str(cases[i].field, in, &res);
        json_t *want = jq(cases[i].want);
        if (!v || !json_equal(v, want))
            fail_msg("%s did not render as %s", cases[i].field, cases[i].want);
        assert_int_equal(json_typeof(v), json_typeof(want));
        json_decref(v);
        json_decref(want);
    }
    json_decref(in);
}

/* A value is never re-scanned and never becomes structure, exact or interpolated. */
static void test_no_injection(void **state)
{
    const char *hostile = "a \"quoted\" }} {{x}} {\"k\": [1]} \\";
    json_t *in = json_pack("{s:s, s:s}", "prompt", hostile, "x", "INJECTED");
    json_t *out = render_str("{{prompt}}", in, NULL);
    assert_true(json_is_string(out));
    assert_string_equal(json_string_value(out), hostile);
    json_decref(out);

    char want[128];
    snprintf(want, sizeof want, "<%s>", hostile);
    assert_renders_string("<{{prompt}}>", in, want);

    json_t *in2 = jq("{'a': '{{b}}', 'b': 'B'}");
    assert_renders_string("{{a}}", in2, "{{b}}");
    assert_renders_string("x{{a}}", in2, "x{{b}}");
    json_decref(in2);
    json_decref(in);
}

static void test_interpolation(void **state)
{
    json_t *in = jq("{'seed': 42, 'neg': -7, 'cfg': 7.5, 'tenth': 0.1, 'one': 1.0, 'big': 1e300,"
                    " 'on': true, 'off': false, 'name': 'cat', 'empty': '', 'utf': 'é猫'}");
    assert_renders_string("pre-{{seed}}-post", in, "pre-42-post");
    assert_renders_string("{{seed}}-post", in, "42-post");
    assert_renders_string("pre-{{seed}}", in, "pre-42");
    assert_renders_string("{{seed}}{{seed}}", in, "4242");
    assert_renders_string("{{neg}}/{{cfg}}/{{tenth}}/{{one}}", in, "-7/7.5/0.1/1.0");
    assert_renders_string("<{{big}}>", in, "<1e+300>");
    assert_renders_string("{{on}},{{off}}", in, "true,false");
    assert_renders_string("a {{name}} and a {{ name }}", in, "a cat and a cat");
    assert_renders_string("[{{empty}}]", in, "[]");
    assert_renders_string("«{{utf}}»", in, "«é猫»");
    assert_renders_string("{{{seed}}}", in, "{42}");
    assert_renders_string("{{seed}}}}", in, "42}}");
    json_decref(in);
}

static void test_interpolate_bad_type(void **state)
{
    json_t *in = jq("{'obj': {'a': 1}, 'arr': [1], 'nothing': null, 'seed': 1}");
    assert_render_fails("x{{obj}}", in, TEMPLATE_BAD_TYPE, "obj");
    assert_render_fails("{{arr}} ", in, TEMPLATE_BAD_TYPE, "arr");
    assert_render_fails("{{seed}}{{nothing}}", in, TEMPLATE_BAD_TYPE, "nothing");
    json_decref(in);
}

static void test_missing_input(void **state)
{
    json_t *tmpl = jq(sdxl);
    json_t *in = jq("{'negative_prompt': '', 'seed': 1, 'steps': 2, 'cfg': 3, 'width': 4,"
                    " 'height': 5, 'batch_size': 6}");
    struct template_result res;
    assert_null(template_render(tmpl, in, NULL, &res));
    assert_int_equal(res.err, TEMPLATE_MISSING_INPUT);
    assert_string_equal(res.name, "prompt");
    assert_string_equal(res.path, "/6/inputs/text");
    assert_string_equal(template_err_name(res.err), "missing_input");
    json_decref(tmpl);

    /* Inside a longer string, and keys needing JSON-pointer escapes. */
    tmpl = jq("{'a/b': {'c~d': ['x', 'pre {{ghost}}']}}");
    assert_null(template_render(tmpl, in, NULL, &res));
    assert_int_equal(res.err, TEMPLATE_MISSING_INPUT);
    assert_string_equal(res.name, "ghost");
    assert_string_equal(res.path, "/a~1b/c~0d/1");
    json_decref(tmpl);

    /* Non-object inputs supply nothing; a null input is a value, not a missing one. */
    json_t *arr = jq("[1]");
    assert_render_fails("{{x}}", arr, TEMPLATE_MISSING_INPUT, "x");
    assert_render_fails("{{x}}", NULL, TEMPLATE_MISSING_INPUT, "x");
    json_decref(arr);
    json_decref(in);
}

static void test_keys_untouched(void **state)
{
    json_t *tmpl = jq("{'{{seed}}': {'inputs': {'{{steps}}': 'plain'}}}");
    json_t *in = jq("{'seed': 1, 'steps': 2}");
    struct template_result res;
    json_t *out = template_render(tmpl, in, NULL, &res);
    assert_non_null(out);
    assert_true(json_equal(out, tmpl));
    json_t *names = template_placeholders(tmpl, NULL);
    assert_int_equal(json_array_size(names), 0);
    json_decref(names);
    json_decref(out);
    json_decref(tmpl);
    json_decref(in);
}

/* Anything that is not "{{", a valid name, "}}" stays text and needs no input. */
static void test_invalid_names_are_text(void **state)
{
    json_t *in = jq("{'a': 1}");
    static const char *const texts[] = {
        "{{}}",   "{{ }}",   "{{1abc}}",  "{{a b}}",     "{{a!}}", "{{-a}}",
        "{seed}", "{{seed}", "{ {seed}}", "{{seed} }",   "}}{{",   "{{",
        "",       "{{.a}}",  "{{a\"}}",   "{{\\u0041}}",
    };
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++)
        assert_renders_string(texts[i], in, texts[i]);

    char name65[80] = "{{";
    memset(name65 + 2, 'n', 65);
    strcpy(name65 + 67, "}}");
    assert_renders_string(name65, in, name65);

    char name64[80] = "{{";
    memset(name64 + 2, 'n', 64);
    strcpy(name64 + 66, "}}");
    struct template_result res;
    assert_null(render_str(name64, in, &res));
    assert_int_equal(res.err, TEMPLATE_MISSING_INPUT);
    assert_int_equal(strlen(res.name), 64);

    json_t *dotted = jq("{'lora.strength-1': 0.5, '_x': 'u'}");
    assert_renders_string("{{lora.strength-1}}/{{_x}}", dotted, "0.5/u");
    json_decref(dotted);
    json_decref(in);
}

static void test_placeholders_order_dedup(void **state)
{
    json_t *tmpl = jq("{'b': {'x': '{{zeta}} {{alpha}}', 'y': ['{{alpha}}', 5, '{{ mid }}']},"
                      " 'a': {'z': 'p{{zeta}}q{{omega}}', 'k': '{{bad name}}'}, 'n': null}");
    json_t *names = template_placeholders(tmpl, NULL);
    json_t *want = jq("['zeta', 'alpha', 'mid', 'omega']");
    assert_true(json_equal(names, want));
    json_decref(names);
    json_decref(want);

    json_t *sd = jq(sdxl);
    names = template_placeholders(sd, NULL);
    want = jq("['seed', 'steps', 'cfg', 'width', 'height', 'batch_size', 'prompt',"
              " 'negative_prompt']");
    assert_true(json_equal(names, want));
    json_decref(names);
    json_decref(want);
    json_decref(sd);
    json_decref(tmpl);
}

static void test_not_object(void **state)
{
    json_t *in = jq("{}");
    json_t *arr = jq("['{{a}}']");
    struct template_result res;
    assert_null(template_render(arr, in, NULL, &res));
    assert_int_equal(res.err, TEMPLATE_NOT_OBJECT);
    assert_null(template_render(NULL, in, NULL, &res));
    assert_int_equal(res.err, TEMPLATE_NOT_OBJECT);
    json_t *s = json_string("{{a}}");
    assert_null(template_render(s, in, NULL, NULL)); /* res is optional */
    json_decref(s);
    json_decref(arr);
    json_decref(in);
}

/* The rendered graph shares nothing with the inputs. */
static void test_output_is_independent(void **state)
{
    json_t *in = jq("{'obj': {'list': [1, 2]}}");
    json_t *out = render_str("{{obj}}", in, NULL);
    assert_non_null(out);
    json_array_append_new(json_object_get(json_object_get(in, "obj"), "list"), json_integer(3));
    json_t *want = jq("{'list': [1, 2]}");
    assert_true(json_equal(out, want));
    json_decref(want);
    json_decref(out);
    json_decref(in);
}

static void test_embedded_nul(void **state)
{
    json_t *in = json_pack("{s:s#}", "p", "a\0b", (int)3);
    json_t *out = render_str("<{{p}}>", in, NULL);
    assert_int_equal(json_string_length(out), 5);
    assert_memory_equal(json_string_value(out), "<a\0b>", 5);
    json_decref(out);
    json_decref(in);
}

static void test_limit_depth(void **state)
{
    struct template_limits lim = {.max_depth = 3};
    json_t *in = jq("{'a': 1, 'deep': [[1]], 'deeper': [[[1]]]}");
    json_t *ok = jq("{'1': {'inputs': {'v': '{{a}}'}}}");
    json_t *too = jq("{'1': {'inputs': {'v': ['{{a}}']}}}");
    struct template_result res;
    json_t *out = template_render(ok, in, &lim, &res);
    assert_non_null(out);
    json_decref(out);
    assert_null(template_render(too, in, &lim, &res));
    assert_int_equal(res.err, TEMPLATE_TOO_LARGE);
    assert_string_equal(res.path, "/1/inputs/v");
    assert_null(template_placeholders(too, &lim));
    json_t *names = template_placeholders(ok, &lim);
    assert_int_equal(json_array_size(names), 1);
    json_decref(names);

    /* A substituted container counts from where it lands: "v" is at level 4, so [[1]] needs a
     * limit of 5. */
    lim.max_depth = 4;
    json_t *t2 = jq("{'1': {'inputs': {'v': '{{deep}}'}}}");
    out = template_render(t2, in, &lim, &res);
    assert_null(out);
    assert_int_equal(res.err, TEMPLATE_TOO_LARGE);
    assert_string_equal(res.name, "deep");
    lim.max_depth = 5;
    out = template_render(t2, in, &lim, &res);
    assert_non_null(out);
    json_decref(out);
    json_decref(t2);
    json_decref(ok);
    json_decref(too);
    json_decref(in);
}

/* 100000 levels: far past what recursion could survive, so only the limit stops it. */
static void test_limit_depth_huge(void **state)
{
    json_t *tmpl = deep(100000, json_string("{{a}}"), true);
    json_t *in = jq("{'a': 1}");
    struct template_result res;
    assert_null(template_placeholders(tmpl, NULL));
    assert_null(template_render(tmpl, in, NULL, &res));
    assert_int_equal(res.err, TEMPLATE_TOO_LARGE);
    deep_free(tmpl);

    json_t *val = deep(100000, json_integer(1), false);
    json_object_set_new(in, "deep", val);
    json_t *out = render_str("{{deep}}", in, &res);
    assert_null(out);
    assert_int_equal(res.err, TEMPLATE_TOO_LARGE);
    assert_string_equal(res.name, "deep");
    json_incref(val);
    json_decref(in);
    deep_free(val);
}

static void test_limit_sizes(void **state)
{
    json_t *in = jq("{'s': '0123456789', 'n': 12345}");
    struct template_limits lim = {.max_string = 12};
    json_t *tmpl = jq("{'1': {'inputs': {'v': 'ab{{s}}'}}}");
    struct template_result res;
    json_t *out = template_render(tmpl, in, &lim, &res);
    assert_non_null(out); /* exactly 12 bytes */
    json_decref(out);
    json_decref(tmpl);
    static const char *const too_big[] = {
        "abc{{s}}",
        "{{s}}{{n}}",
        "0123456789abcd",
        "{{s}}{{s}}",
    };
    for (size_t i = 0; i < sizeof too_big / sizeof too_big[0]; i++) {
        tmpl = json_pack("{s:{s:{s:s}}}", "1", "inputs", "v", too_big[i]);
        assert_null(template_render(tmpl, in, &lim, &res));
        assert_int_equal(res.err, TEMPLATE_TOO_LARGE);
        json_decref(tmpl);
    }

    /* An exact string input is held to the same bound. */
    lim.max_string = 9;
    tmpl = jq("{'1': {'inputs': {'v': '{{s}}'}}}");
    assert_null(template_render(tmpl, in, &lim, &res));
    assert_int_equal(res.err, TEMPLATE_TOO_LARGE);
    assert_string_equal(res.name, "s");
    json_decref(tmpl);

    /* The whole output: 3 x 10 bytes fits in 30, not in 29. */
    lim = (struct template_limits){.max_output = 30};
    tmpl = jq("{'1': {'inputs': {'a': '{{s}}', 'b': ['{{s}}', '{{s}}']}}}");
    out = template_render(tmpl, in, &lim, &res);
    assert_non_null(out);
    json_decref(out);
    lim.max_output = 29;
    assert_null(template_render(tmpl, in, &lim, &res));
    assert_int_equal(res.err, TEMPLATE_TOO_LARGE);
    assert_string_equal(res.path, "/1/inputs/b/1");
    json_decref(tmpl);
    json_decref(in);
}

static void test_limit_count(void **state)
{
    json_t *in = jq("{'a': 1}");
    json_t *tmpl = jq("{'1': {'inputs': {'x': '{{a}}', 'y': '{{a}}-{{a}}'}}}");
    struct template_limits lim = {.max_placeholders = 3};
    struct template_result res;
    json_t *out = template_render(tmpl, in, &lim, &res);
    assert_non_null(out);
    json_decref(out);
    json_t *names = template_placeholders(tmpl, &lim);
    assert_int_equal(json_array_size(names), 1);
    json_decref(names);

    lim.max_placeholders = 2;
    assert_null(template_render(tmpl, in, &lim, &res));
    assert_int_equal(res.err, TEMPLATE_TOO_LARGE);
    assert_string_equal(res.name, "a");
    assert_string_equal(res.path, "/1/inputs/y");
    assert_null(template_placeholders(tmpl, &lim));
    json_decref(tmpl);
    json_decref(in);
}

static void test_limits_default(void **state)
{
    struct template_limits lim;
    template_limits_default(&lim);
    assert_int_equal(lim.max_depth, 64);
    assert_int_equal(lim.max_string, 1024 * 1024);
    assert_int_equal(lim.max_placeholders, 10000);
    assert_int_equal(lim.max_output, 16 * 1024 * 1024);

    /* 64 levels render with the defaults, 65 do not. */
    json_t *in = jq("{'a': 1}");
    struct template_result res;
    json_t *t64 = deep(64, json_string("{{a}}"), true);
    json_t *out = template_render(t64, in, NULL, &res);
    assert_non_null(out);
    json_decref(out);
    json_t *t65 = deep(1, t64, true);
    assert_null(template_render(t65, in, NULL, &res));
    assert_int_equal(res.err, TEMPLATE_TOO_LARGE);
    json_decref(t65);
    json_decref(in);
}

/* A path cut at its buffer's end still ends on a whole UTF-8 character. */
static void test_long_path_valid_utf8(void **state)
{
    char key[400] = "";
    for (int i = 0; i < 100; i++)
        strcat(key, "猫");
    json_t *tmpl = json_pack("{s:{s:s}}", "a", key, "{{missing}}");
    json_t *in = json_object();
    for (size_t shift = 0; shift < 3; shift++) {
        json_t *t = json_pack("{s:O}", shift == 0 ? "b" : shift == 1 ? "bb" : "bbb", tmpl);
        struct template_result res;
        assert_null(template_render(t, in, NULL, &res));
        assert_int_equal(res.err, TEMPLATE_MISSING_INPUT);
        json_t *p = json_string(res.path);
        assert_non_null(p); /* jansson refuses invalid UTF-8 */
        json_decref(p);
        json_decref(t);
    }
    json_decref(in);
    json_decref(tmpl);
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

/* Every allocation jansson makes for a render fails once in turn: each failure must come back
 * as TEMPLATE_NO_MEMORY (or NULL from template_placeholders) with nothing leaked. */
static void test_out_of_memory(void **state)
{
    json_t *tmpl = jq(sdxl);
    json_t *in = jq(sdxl_inputs);
    json_object_set_new(in, "prompt", jq("{'nested': ['a', {'b': [1, 2.5, null]}]}"));
    json_set_alloc_funcs(budget_malloc, free);
    bool rendered = false;
    for (long n = 0; !rendered; n++) {
        assert_true(n < 100000);
        struct template_result res;
        alloc_budget = n;
        json_t *out = template_render(tmpl, in, NULL, &res);
        json_t *names = template_placeholders(tmpl, NULL);
        alloc_budget = -1;
        rendered = out != NULL;
        if (!out)
            assert_int_equal(res.err, TEMPLATE_NO_MEMORY);
        json_decref(out);
        json_decref(names);
    }
    json_set_alloc_funcs(malloc, free);
    json_decref(in);
    json_decref(tmpl);
}

static void test_err_names(void **state)
{
    assert_string_equal(template_err_name(TEMPLATE_OK), "ok");
    assert_string_equal(template_err_name(TEMPLATE_MISSING_INPUT), "missing_input");
    assert_string_equal(template_err_name(TEMPLATE_BAD_TYPE), "bad_type");
    assert_string_equal(template_err_name(TEMPLATE_TOO_LARGE), "too_large");
    assert_string_equal(template_err_name(TEMPLATE_NOT_OBJECT), "not_object");
    assert_string_equal(template_err_name(TEMPLATE_NO_MEMORY), "no_memory");
    assert_string_equal(template_err_name((enum template_err)99), "unknown");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sdxl_graph),
        cmocka_unit_test(test_exact_typed),
        cmocka_unit_test(test_no_injection),
        cmocka_unit_test(test_interpolation),
        cmocka_unit_test(test_interpolate_bad_type),
        cmocka_unit_test(test_missing_input),
        cmocka_unit_test(test_keys_untouched),
        cmocka_unit_test(test_invalid_names_are_text),
        cmocka_unit_test(test_placeholders_order_dedup),
        cmocka_unit_test(test_not_object),
        cmocka_unit_test(test_output_is_independent),
        cmocka_unit_test(test_embedded_nul),
        cmocka_unit_test(test_limit_depth),
        cmocka_unit_test(test_limit_depth_huge),
        cmocka_unit_test(test_limit_sizes),
        cmocka_unit_test(test_limit_count),
        cmocka_unit_test(test_limits_default),
        cmocka_unit_test(test_long_path_valid_utf8),
        cmocka_unit_test(test_out_of_memory),
        cmocka_unit_test(test_err_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
