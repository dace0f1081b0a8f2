/*
 * test_sim_json — CPython-compatible JSON text, repr() and number parsing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sim/sim_json.h"
#include "sim_test_util.h"

static void test_float_repr(void **state)
{
    (void)state;
    /* Expected strings are CPython 3.11's repr(). */
    static const struct {
        double d;
        const char *want;
    } cases[] = {{0.1, "0.1"},         {1.0, "1.0"},
                 {8.0, "8.0"},         {1e22, "1e+22"},
                 {1.5e-7, "1.5e-07"},  {1.2345678901234568e17, "1.2345678901234568e+17"},
                 {2.5e-05, "2.5e-05"}, {0.0001, "0.0001"},
                 {1e16, "1e+16"},      {1e15, "1000000000000000.0"},
                 {-0.0, "-0.0"},       {3.14159, "3.14159"},
                 {-2.5, "-2.5"},       {5e-324, "5e-324"},
                 {100.0, "100.0"}};
    char out[32];
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        sim_json_float_repr(cases[i].d, out);
        assert_string_equal(out, cases[i].want);
    }
}

static void test_dumps_like_python(void **state)
{
    (void)state;
    json_error_t err;
    json_t *v = json_loads("{\"k\": \"\\u007f\\u00ff\\ud83d\\ude00\\\"\\\\\\n\\t/\", "
                           "\"n\": [1, 2.5, 0.1, true, false, null, {}, []]}",
                           0, &err);
    assert_non_null(v);
    char *s = sim_json_dumps(v, 4096);
    assert_string_equal(s, "{\"k\": \"\\u007f\\u00ff\\ud83d\\ude00\\\"\\\\\\n\\t/\", "
                           "\"n\": [1, 2.5, 0.1, true, false, null, {}, []]}");
    free(s);
    json_decref(v);
}

static void test_dumps_matches_recorded_lengths(void **state)
{
    (void)state;
    simt_require_transcripts();
    /* Content-Length of real answers equals the length of our text for the same JSON. */
    static const char *const files[] = {"11_object_info.json", "01_prompt_success.json",
                                        "09_queue.json", "03f_validation_bad_combo_value.json",
                                        "12_system_stats_models_free.json"};
    for (size_t f = 0; f < sizeof(files) / sizeof(files[0]); f++) {
        json_t *t = simt_load(files[f]);
        json_t *steps = json_object_get(t, "steps");
        for (size_t i = 0; i < json_array_size(steps); i++) {
            json_t *resp = json_object_get(json_array_get(steps, i), "response");
            json_t *body = json_object_get(json_object_get(resp, "body"), "json");
            if (body == NULL)
                continue;
            char *s = sim_json_dumps(body, 1u << 24);
            assert_non_null(s);
            assert_int_equal(strlen(s), json_integer_value(json_object_get(resp, "body_length")));
            free(s);
        }
        json_decref(t);
    }
}

static void test_repr_and_str(void **state)
{
    (void)state;
    json_t *v =
        json_pack("[ssss]", "a'b", "c\"d", "e'f\"g", "\x01\x1f\x7f\xc2\xa0\xc3\xa9\xe2\x80\x8b");
    struct sim_buf b;
    sim_buf_init(&b, 4096);
    sim_json_repr(v, &b);
    assert_string_equal((char *)b.data,
                        "[\"a'b\", 'c\"d', 'e\\'f\"g', '\\x01\\x1f\\x7f\\xa0\xc3\xa9\\u200b']");
    sim_buf_reset(&b);
    json_t *d = json_pack("{s:{s:s, s:{s:i, s:f, s:b, s:n}}}", "1", "class_type", "EmptyImage",
                          "inputs", "width", 8, "x", 0.5, "t", 1, "n");
    sim_json_str(d, &b);
    assert_string_equal((char *)b.data, "{'1': {'class_type': 'EmptyImage', 'inputs': {'width': 8, "
                                        "'x': 0.5, 't': True, 'n': None}}}");
    sim_buf_reset(&b);
    json_t *s = json_string("plain 'text'");
    sim_json_str(s, &b);
    assert_string_equal((char *)b.data, "plain 'text'");
    sim_buf_free(&b);
    json_decref(s);
    json_decref(d);
    json_decref(v);
}

static void test_rawnum(void **state)
{
    (void)state;
    json_t *v = json_pack("{s:o}", "max", sim_json_rawnum("18446744073709551615"));
    char *s = sim_json_dumps(v, 100);
    assert_string_equal(s, "{\"max\": 18446744073709551615}");
    double d;
    assert_true(sim_json_number(json_object_get(v, "max"), &d));
    assert_true(d > 1.8e19);
    assert_true(sim_json_is_rawnum(json_object_get(v, "max")));
    free(s);
    json_decref(v);
}

static void test_py_int_float(void **state)
{
    (void)state;
    long long i;
    double d;
    assert_true(sim_json_py_int(" 64 ", &i) && i == 64);
    assert_true(sim_json_py_int("-1_000", &i) && i == -1000);
    assert_true(sim_json_py_int("+7", &i) && i == 7);
    assert_false(sim_json_py_int("wide", &i));
    assert_false(sim_json_py_int("1.5", &i));
    assert_false(sim_json_py_int("1__0", &i));
    assert_false(sim_json_py_int("_1", &i));
    assert_false(sim_json_py_int("", &i));
    assert_true(sim_json_py_float("1e5", &d) && d == 1e5);
    assert_true(sim_json_py_float(" 2.5 ", &d) && d == 2.5);
    assert_true(sim_json_py_float("1_0.5", &d) && d == 10.5);
    assert_false(sim_json_py_float("0x10", &d));
    assert_false(sim_json_py_float("wide", &d));
}

static void test_limits(void **state)
{
    (void)state;
    json_t *v = json_pack("[sss]", "aaaaaaaaaa", "bbbbbbbbbb", "cccccccccc");
    assert_null(sim_json_dumps(v, 10)); /* over the maximum: refused, not truncated */
    struct sim_buf b;
    sim_buf_init(&b, 10);
    assert_int_equal(sim_json_dump(v, &b), SIM_BUF_ETOOBIG);
    sim_buf_free(&b);
    json_t *deep = json_array(), *cur = deep;
    for (int i = 0; i < SIM_JSON_MAX_DEPTH + 5; i++) {
        json_t *next = json_array();
        json_array_append_new(cur, next);
        cur = next;
    }
    assert_null(sim_json_dumps(deep, 1u << 20));
    json_decref(deep);
    json_decref(v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_float_repr),
        cmocka_unit_test(test_dumps_like_python),
        cmocka_unit_test(test_dumps_matches_recorded_lengths),
        cmocka_unit_test(test_repr_and_str),
        cmocka_unit_test(test_rawnum),
        cmocka_unit_test(test_py_int_float),
        cmocka_unit_test(test_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
