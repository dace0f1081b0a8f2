/* test_comfy_event — every WebSocket text message recorded from a real ComfyUI (the
 * transcripts, path in argv[1]) parses into the right fields; malformed and hostile messages
 * are rejected or defaulted, and long strings are cut safely. Without the transcripts the
 * hand-written cases still run and the program exits 77 (skipped). */
#include <dirent.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "comfy/comfy_event.c"

static const char *transcripts; /* argv[1] */

static int parse_str(const char *s, struct comfy_event *ev)
{
    return comfy_event_parse(s, strlen(s), ev);
}

/* The name a transcript message's type must map to; independent of the module's own table. */
static enum comfy_event_type expected_type(const char *name)
{
    static const struct {
        const char *name;
        enum comfy_event_type type;
    } map[] = {
        {"status", CEV_STATUS},
        {"execution_start", CEV_EXECUTION_START},
        {"execution_cached", CEV_EXECUTION_CACHED},
        {"executing", CEV_EXECUTING},
        {"progress", CEV_PROGRESS},
        {"progress_state", CEV_PROGRESS_STATE},
        {"executed", CEV_EXECUTED},
        {"execution_success", CEV_EXECUTION_SUCCESS},
        {"execution_error", CEV_EXECUTION_ERROR},
        {"execution_interrupted", CEV_EXECUTION_INTERRUPTED},
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++) {
        if (strcmp(map[i].name, name) == 0)
            return map[i].type;
    }
    return CEV_UNKNOWN;
}

static const char *str_or_empty(const json_t *v)
{
    return json_is_string(v) ? json_string_value(v) : "";
}

/* What the parser must have made of one real message, field by field. */
static void check_against(const struct comfy_event *ev, const json_t *msg)
{
    const json_t *data = json_object_get(msg, "data");
    const char *type = json_string_value(json_object_get(msg, "type"));
    assert_string_equal(ev->type_name, type);
    assert_int_equal(ev->type, expected_type(type));
    assert_non_null(ev->root);
    assert_true(json_equal(ev->data, (json_t *)data));
    assert_string_equal(ev->prompt_id, str_or_empty(json_object_get(data, "prompt_id")));

    switch (ev->type) {
    case CEV_STATUS: {
        const json_t *q = json_object_get(
            json_object_get(json_object_get(data, "status"), "exec_info"), "queue_remaining");
        assert_true(json_is_integer(q));
        assert_int_equal(ev->queue_remaining, json_integer_value(q));
        assert_string_equal(ev->sid, str_or_empty(json_object_get(data, "sid")));
        break;
    }
    case CEV_EXECUTING: {
        const json_t *node = json_object_get(data, "node");
        assert_int_equal(ev->node_null, json_is_null(node));
        assert_string_equal(ev->node, str_or_empty(node));
        break;
    }
    case CEV_EXECUTED:
        assert_string_equal(ev->node, json_string_value(json_object_get(data, "node")));
        assert_non_null(ev->output);
        assert_true(json_equal(ev->output, json_object_get(data, "output")));
        break;
    case CEV_EXECUTION_CACHED:
        assert_non_null(ev->cached_nodes);
        assert_true(json_equal(ev->cached_nodes, json_object_get(data, "nodes")));
        break;
    case CEV_EXECUTION_ERROR: {
        const char *msg_text = json_string_value(json_object_get(data, "exception_message"));
        assert_string_equal(ev->exception_type,
                            json_string_value(json_object_get(data, "exception_type")));
        assert_true(strlen(ev->exception_message) < sizeof ev->exception_message);
        assert_memory_equal(ev->exception_message, msg_text, strlen(ev->exception_message));
    }
        /* fall through - error and interrupted both name the node "node_id" */
    case CEV_EXECUTION_INTERRUPTED:
        assert_string_equal(ev->node, json_string_value(json_object_get(data, "node_id")));
        assert_string_equal(ev->node_type, json_string_value(json_object_get(data, "node_type")));
        break;
    default:
        assert_string_equal(ev->node, "");
        break;
    }
    if (ev->type != CEV_STATUS)
        assert_int_equal(ev->queue_remaining, -1);
    if (ev->type != CEV_EXECUTED)
        assert_null(ev->output);
    if (ev->type != CEV_EXECUTION_CACHED)
        assert_null(ev->cached_nodes);
}

static json_t *load_transcript(const char *name)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", transcripts, name);
    json_error_t err;
    json_t *t = json_load_file(path, 0, &err);
    /* 11_object_info holds KSampler's seed max 2^64-1, past json_int_t */
    if (!t && json_error_code(&err) == json_error_numeric_overflow)
        t = json_load_file(path, JSON_DECODE_INT_AS_REAL, &err);
    if (!t)
        fail_msg("%s: %s", path, err.text);
    return t;
}

/* Feeds every text frame of one stream ("ws" or "ws_observer") and counts frames per type. */
static void feed_frames(const json_t *ws, unsigned *seen, unsigned *unknown)
{
    size_t i;
    const json_t *frame;
    json_array_foreach(json_object_get(ws, "frames"), i, frame)
    {
        if (strcmp(str_or_empty(json_object_get(frame, "type")), "text") != 0)
            continue;
        const json_t *msg = json_object_get(frame, "json");
        /* Python's json.dumps (what aiohttp sends) uses ", " / ": " and escapes non-ASCII. */
        char *text = json_dumps(msg, JSON_ENSURE_ASCII);
        assert_non_null(text);
        struct comfy_event ev;
        assert_int_equal(parse_str(text, &ev), 0);
        check_against(&ev, msg);
        if (ev.type == CEV_UNKNOWN)
            (*unknown)++;
        seen[ev.type]++;
        comfy_event_free(&ev);
        free(text);
    }
}

static void every_transcript_message_parses(void **state)
{
    unsigned seen[TYPE_COUNT] = {0}, unknown = 0, files = 0;
    DIR *d = opendir(transcripts);
    assert_non_null(d);
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        size_t n = strlen(de->d_name);
        if (n < 5 || strcmp(de->d_name + n - 5, ".json") != 0)
            continue;
        json_t *t = load_transcript(de->d_name);
        feed_frames(json_object_get(t, "ws"), seen, &unknown);
        feed_frames(json_object_get(t, "ws_observer"), seen, &unknown);
        json_decref(t);
        files++;
    }
    closedir(d);
    assert_true(files >= 20);
    /* Every type ComfyUI sent while recording was met (no model-free node sends "progress");
     * feature_flags is the one type we do not use. */
    for (int t = CEV_STATUS; t <= CEV_EXECUTION_INTERRUPTED; t++) {
        if (t != CEV_PROGRESS && seen[t] == 0)
            fail_msg("no %s message in the transcripts", comfy_event_type_name(t));
    }
    assert_true(unknown >= 1);
    assert_true(seen[CEV_STATUS] > 50);
}

/* Frame k (counting text frames only) of a transcript's "ws" stream, parsed. */
static void parse_frame(const char *file, int k, struct comfy_event *ev)
{
    json_t *t = load_transcript(file);
    size_t i;
    const json_t *frame;
    int seen = 0;
    const json_t *msg = NULL;
    json_array_foreach(json_object_get(json_object_get(t, "ws"), "frames"), i, frame)
    {
        if (strcmp(str_or_empty(json_object_get(frame, "type")), "text") != 0)
            continue;
        if (seen++ == k || k < 0)
            msg = json_object_get(frame, "json"); /* k < 0: the last one */
    }
    assert_non_null(msg);
    char *text = json_dumps(msg, JSON_ENSURE_ASCII);
    json_decref(t);
    assert_int_equal(parse_str(text, ev), 0);
    free(text);
}

static void first_status_carries_sid(void **state)
{
    struct comfy_event ev;
    parse_frame("01_prompt_success.json", 0, &ev);
    assert_int_equal(ev.type, CEV_STATUS);
    assert_string_equal(ev.sid, "golden-c2b4c4f9");
    assert_int_equal(ev.queue_remaining, 0);
    assert_string_equal(ev.prompt_id, "");
    comfy_event_free(&ev);

    parse_frame("01_prompt_success.json", 1, &ev); /* the enqueue broadcast has no sid */
    assert_int_equal(ev.type, CEV_STATUS);
    assert_string_equal(ev.sid, "");
    assert_int_equal(ev.queue_remaining, 1);
    comfy_event_free(&ev);
}

static void success_sequence_ends_with_executing_null(void **state)
{
    struct comfy_event ev;
    parse_frame("01_prompt_success.json", -1, &ev);
    assert_int_equal(ev.type, CEV_EXECUTING);
    assert_true(ev.node_null);
    assert_string_equal(ev.node, "");
    assert_string_equal(ev.prompt_id, "4e058f0e-0165-4c41-936d-65306c3af08c");
    comfy_event_free(&ev);
}

static void executed_output_is_borrowed_from_root(void **state)
{
    struct comfy_event ev;
    const char *want = "golden_success_00001_.png";
    for (int k = 0;; k++) {
        parse_frame("01_prompt_success.json", k, &ev);
        if (ev.type == CEV_EXECUTED)
            break;
        comfy_event_free(&ev);
    }
    assert_string_equal(ev.node, "2");
    json_t *images = json_object_get(ev.output, "images");
    assert_int_equal(json_array_size(images), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(images, 0), "filename")),
                        want);
    assert_ptr_equal(ev.output, json_object_get(ev.data, "output"));
    assert_ptr_equal(ev.data, json_object_get(ev.root, "data"));
    comfy_event_free(&ev);
}

static void cached_rerun_lists_cached_nodes(void **state)
{
    struct comfy_event ev;
    for (int k = 0;; k++) {
        parse_frame("02_prompt_cached_rerun.json", k, &ev);
        if (ev.type == CEV_EXECUTION_CACHED && json_array_size(ev.cached_nodes) == 2)
            break;
        comfy_event_free(&ev);
    }
    assert_string_equal(json_string_value(json_array_get(ev.cached_nodes, 0)), "1");
    assert_string_equal(json_string_value(json_array_get(ev.cached_nodes, 1)), "2");
    assert_int_equal(strlen(ev.prompt_id), 36);
    comfy_event_free(&ev);
}

static void execution_error_fields(void **state)
{
    struct comfy_event ev;
    for (int k = 0;; k++) {
        parse_frame("13_execution_error.json", k, &ev);
        if (ev.type == CEV_EXECUTION_ERROR)
            break;
        comfy_event_free(&ev);
    }
    assert_string_equal(ev.node, "3");
    assert_string_equal(ev.node_type, "SaveImage");
    assert_string_equal(ev.exception_type, "Exception");
    assert_non_null(
        strstr(ev.exception_message, "Saving image outside the output folder is not allowed"));
    assert_string_equal(ev.prompt_id, "5bc0a2a7-935b-49a3-9df3-a7584488fef9");
    assert_false(ev.node_null);
    comfy_event_free(&ev);
}

static void execution_interrupted_fields(void **state)
{
    struct comfy_event ev;
    for (int k = 0;; k++) {
        parse_frame("10_interrupt.json", k, &ev);
        if (ev.type == CEV_EXECUTION_INTERRUPTED)
            break;
        comfy_event_free(&ev);
    }
    assert_string_equal(ev.node, "5");
    assert_string_equal(ev.node_type, "ImageScale");
    assert_string_equal(ev.prompt_id, "b24c6541-830e-41bf-aef0-96e1a5792bdc");
    assert_string_equal(ev.exception_type, "");
    comfy_event_free(&ev);
}

static void feature_flags_is_unknown(void **state)
{
    struct comfy_event ev;
    parse_frame("15c_ws_feature_flags_and_no_client_id.json", 0, &ev);
    if (ev.type == CEV_STATUS) { /* the order of the two handshake frames is not ours */
        comfy_event_free(&ev);
        parse_frame("15c_ws_feature_flags_and_no_client_id.json", 1, &ev);
    }
    assert_int_equal(ev.type, CEV_UNKNOWN);
    assert_string_equal(ev.type_name, "feature_flags");
    assert_non_null(json_object_get(ev.data, "max_upload_size"));
    comfy_event_free(&ev);
}

/* --- hand-written cases (no transcripts needed) ----------------------------------------- */

/* Shaped like main.py's progress hook: {"value", "max", "prompt_id", "node"}. */
static void progress_value_and_max(void **state)
{
    struct comfy_event ev;
    assert_int_equal(parse_str("{\"type\": \"progress\", \"data\": {\"value\": 3, \"max\": 20, "
                               "\"prompt_id\": \"p1\", \"node\": \"3\"}}",
                               &ev),
                     0);
    assert_int_equal(ev.type, CEV_PROGRESS);
    assert_true(ev.value == 3.0 && ev.max == 20.0);
    assert_string_equal(ev.node, "3");
    assert_string_equal(ev.prompt_id, "p1");
    comfy_event_free(&ev);

    assert_int_equal(
        parse_str("{\"type\":\"progress\",\"data\":{\"value\":0.5,\"max\":\"20\"}}", &ev), 0);
    assert_true(ev.value == 0.5 && ev.max == 0.0); /* a string max is ignored */
    comfy_event_free(&ev);
}

static void not_a_message_is_einval(void **state)
{
    static const char *const bad[] = {
        "not json",
        "[]",
        "[{\"type\": \"status\"}]",
        "\"status\"",
        "42",
        "null",
        "{}",
        "{\"data\": {}}",
        "{\"type\": null}",
        "{\"type\": 7, \"data\": {}}",
        "{\"type\": {\"name\": \"status\"}}",
        "{\"type\": [\"status\"]}",
        "{\"type\": \"status\"",
        "{\"type\": \"status\"} trailing",
        "{\"type\": \"st\\u0000atus\"}", /* NUL inside a string: jansson refuses it */
        "{\"type\": \"\xff\xfe\"}",      /* not UTF-8 */
        " ",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct comfy_event ev;
        memset(&ev, 0xA5, sizeof ev);
        if (parse_str(bad[i], &ev) != -EINVAL)
            fail_msg("accepted: %s", bad[i]);
        assert_null(ev.root);
        assert_null(ev.data);
        comfy_event_free(&ev); /* harmless after a failure */
    }
    struct comfy_event ev;
    assert_int_equal(comfy_event_parse("", 0, &ev), -EINVAL);
    /* a message cut short by a length that stops before the closing brace */
    const char *whole = "{\"type\": \"status\"}";
    assert_int_equal(comfy_event_parse(whole, strlen(whole) - 1, &ev), -EINVAL);
    assert_int_equal(comfy_event_parse(whole, strlen(whole), &ev), 0);
    comfy_event_free(&ev);
}

static void wrong_field_types_leave_defaults(void **state)
{
    struct comfy_event ev;
    assert_int_equal(parse_str("{\"type\": \"status\", \"data\": [1, 2]}", &ev), 0);
    assert_int_equal(ev.type, CEV_STATUS);
    assert_null(ev.data);
    assert_int_equal(ev.queue_remaining, -1);
    comfy_event_free(&ev);

    assert_int_equal(parse_str("{\"type\": \"status\"}", &ev), 0); /* no data at all */
    assert_int_equal(ev.queue_remaining, -1);
    assert_string_equal(ev.sid, "");
    comfy_event_free(&ev);

    static const char *const bad_queue[] = {
        "\"3\"", "-1", "1.5", "99999999999", "null", "{}", "[3]",
    };
    for (size_t i = 0; i < sizeof bad_queue / sizeof bad_queue[0]; i++) {
        char msg[200];
        snprintf(msg, sizeof msg,
                 "{\"type\":\"status\",\"data\":{\"status\":{\"exec_info\":"
                 "{\"queue_remaining\":%s}},\"sid\":5}}",
                 bad_queue[i]);
        assert_int_equal(parse_str(msg, &ev), 0);
        if (ev.queue_remaining != -1)
            fail_msg("queue_remaining %s gave %d", bad_queue[i], ev.queue_remaining);
        assert_string_equal(ev.sid, "");
        comfy_event_free(&ev);
    }
    assert_int_equal(parse_str("{\"type\":\"status\",\"data\":{\"status\":7}}", &ev), 0);
    assert_int_equal(ev.queue_remaining, -1);
    comfy_event_free(&ev);

    assert_int_equal(
        parse_str("{\"type\":\"executing\",\"data\":{\"node\":5,\"prompt_id\":6}}", &ev), 0);
    assert_string_equal(ev.node, "");
    assert_false(ev.node_null);
    assert_string_equal(ev.prompt_id, "");
    comfy_event_free(&ev);

    /* a missing node is not "finished" */
    assert_int_equal(parse_str("{\"type\":\"executing\",\"data\":{\"prompt_id\":\"p\"}}", &ev), 0);
    assert_false(ev.node_null);
    comfy_event_free(&ev);

    assert_int_equal(
        parse_str("{\"type\":\"executed\",\"data\":{\"node\":\"2\",\"output\":[1]}}", &ev), 0);
    assert_null(ev.output);
    assert_string_equal(ev.node, "2");
    comfy_event_free(&ev);

    assert_int_equal(parse_str("{\"type\":\"execution_cached\",\"data\":{\"nodes\":{}}}", &ev), 0);
    assert_null(ev.cached_nodes);
    comfy_event_free(&ev);

    assert_int_equal(parse_str("{\"type\":\"execution_error\",\"data\":{\"node_id\":[\"3\"],"
                               "\"node_type\":1,\"exception_type\":null,"
                               "\"exception_message\":{\"m\":1}}}",
                               &ev),
                     0);
    assert_int_equal(ev.type, CEV_EXECUTION_ERROR);
    assert_string_equal(ev.node, "");
    assert_string_equal(ev.node_type, "");
    assert_string_equal(ev.exception_type, "");
    assert_string_equal(ev.exception_message, "");
    comfy_event_free(&ev);
}

static char *repeat(const char *unit, size_t times, const char *before, const char *after)
{
    size_t u = strlen(unit), b = strlen(before), a = strlen(after);
    char *s = malloc(b + u * times + a + 1);
    assert_non_null(s);
    memcpy(s, before, b);
    for (size_t i = 0; i < times; i++)
        memcpy(s + b + i * u, unit, u);
    memcpy(s + b + u * times, after, a + 1);
    return s;
}

static void huge_strings_truncated(void **state)
{
    struct comfy_event ev;
    char *msg = repeat("x", 100000, "{\"type\":\"execution_error\",\"data\":{\"prompt_id\":\"",
                       "\",\"node_id\":\"3\",\"exception_message\":\"boom\"}}");
    assert_int_equal(parse_str(msg, &ev), 0);
    assert_int_equal(strlen(ev.prompt_id), sizeof ev.prompt_id - 1);
    assert_string_equal(ev.node, "3");
    assert_string_equal(ev.exception_message, "boom");
    comfy_event_free(&ev);
    free(msg);

    msg = repeat("y", 5000, "{\"type\":\"execution_error\",\"data\":{\"exception_message\":\"",
                 "\"}}");
    assert_int_equal(parse_str(msg, &ev), 0);
    assert_int_equal(strlen(ev.exception_message), sizeof ev.exception_message - 1);
    comfy_event_free(&ev);
    free(msg);

    /* an unknown type with a long name: cut, and still unknown */
    msg = repeat("z", 1000, "{\"type\":\"", "\"}");
    assert_int_equal(parse_str(msg, &ev), 0);
    assert_int_equal(ev.type, CEV_UNKNOWN);
    assert_int_equal(strlen(ev.type_name), sizeof ev.type_name - 1);
    comfy_event_free(&ev);
    free(msg);

    /* a known name followed by more is not the known type */
    msg = repeat("g", 100, "{\"type\":\"executing", "\",\"data\":{\"node\":null}}");
    assert_int_equal(parse_str(msg, &ev), 0);
    assert_int_equal(ev.type, CEV_UNKNOWN);
    assert_false(ev.node_null);
    comfy_event_free(&ev);
    free(msg);
}

/* Cutting in the middle of a multi-byte character would leave invalid UTF-8. */
static void truncation_keeps_utf8_whole(void **state)
{
    struct comfy_event ev;
    /* 2-byte characters: 79 bytes available, byte 79 would be the first half of the 40th */
    char *msg = repeat("\xc3\xa9", 200, "{\"type\":\"status\",\"data\":{\"sid\":\"", "\"}}");
    assert_int_equal(parse_str(msg, &ev), 0);
    assert_int_equal(strlen(ev.sid), 78); /* 39 whole characters */
    json_t *s = json_string(ev.sid);      /* NULL if not valid UTF-8 */
    assert_non_null(s);
    json_decref(s);
    comfy_event_free(&ev);
    free(msg);

    /* 4-byte characters into the 64-byte node field */
    msg = repeat("\xf0\x9f\x98\x80", 40, "{\"type\":\"executing\",\"data\":{\"node\":\"", "\"}}");
    assert_int_equal(parse_str(msg, &ev), 0);
    assert_int_equal(strlen(ev.node), 60);
    s = json_string(ev.node);
    assert_non_null(s);
    json_decref(s);
    comfy_event_free(&ev);
    free(msg);
}

/* Seeds go up to 2^64-1; an execution_error echoing one must not be lost. */
static void integers_past_int64_still_parse(void **state)
{
    struct comfy_event ev;
    assert_int_equal(parse_str("{\"type\":\"execution_error\",\"data\":{\"prompt_id\":\"p\","
                               "\"node_id\":\"3\",\"node_type\":\"KSampler\","
                               "\"exception_type\":\"RuntimeError\",\"exception_message\":\"m\","
                               "\"current_inputs\":{\"seed\":[18446744073709551615]}}}",
                               &ev),
                     0);
    assert_int_equal(ev.type, CEV_EXECUTION_ERROR);
    assert_string_equal(ev.node_type, "KSampler");
    assert_string_equal(ev.prompt_id, "p");
    comfy_event_free(&ev);

    /* counts read from doubles in that mode are still exact */
    assert_int_equal(parse_str("{\"type\":\"status\",\"data\":{\"status\":{\"exec_info\":"
                               "{\"queue_remaining\":2}},\"big\":-99999999999999999999}}",
                               &ev),
                     0);
    assert_int_equal(ev.queue_remaining, 2);
    comfy_event_free(&ev);

    json_t *huge = json_real(1e300), *negative = json_real(-0.5), *whole = json_real(7.0);
    assert_int_equal(count_value(huge), -1); /* no UB converting a huge double */
    assert_int_equal(count_value(negative), -1);
    assert_int_equal(count_value(whole), 7);
    json_decref(huge);
    json_decref(negative);
    json_decref(whole);
}

static void type_name_round_trip(void **state)
{
    for (int t = CEV_UNKNOWN; t <= CEV_EXECUTION_INTERRUPTED; t++) {
        struct comfy_event ev;
        char msg[128];
        const char *name = comfy_event_type_name(t);
        snprintf(msg, sizeof msg, "{\"type\": \"%s\"}", name);
        assert_int_equal(parse_str(msg, &ev), 0);
        assert_int_equal(ev.type, t);
        comfy_event_free(&ev);
    }
    /* only the whole name counts: prefixes, other cases and extensions are other types */
    static const char *const near[] = {"", "statu", "execution", "exec", "EXECUTING", "status "};
    for (size_t i = 0; i < sizeof near / sizeof near[0]; i++) {
        struct comfy_event ev;
        char msg[128];
        snprintf(msg, sizeof msg, "{\"type\": \"%s\", \"data\": {\"node\": null}}", near[i]);
        assert_int_equal(parse_str(msg, &ev), 0);
        if (ev.type != CEV_UNKNOWN)
            fail_msg("type \"%s\" taken for %s", near[i], comfy_event_type_name(ev.type));
        assert_string_equal(ev.type_name, near[i]);
        assert_false(ev.node_null);
        comfy_event_free(&ev);
    }
    assert_string_equal(comfy_event_type_name(CEV_EXECUTION_ERROR), "execution_error");
    assert_string_equal(comfy_event_type_name((enum comfy_event_type)999), "unknown");
    assert_string_equal(comfy_event_type_name((enum comfy_event_type) - 1), "unknown");
}

static void free_twice_is_harmless(void **state)
{
    struct comfy_event ev;
    assert_int_equal(parse_str("{\"type\":\"executed\",\"data\":{\"output\":{}}}", &ev), 0);
    comfy_event_free(&ev);
    assert_null(ev.root);
    assert_null(ev.output);
    comfy_event_free(&ev);
    comfy_event_free(NULL);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest own[] = {
        cmocka_unit_test(progress_value_and_max),
        cmocka_unit_test(not_a_message_is_einval),
        cmocka_unit_test(wrong_field_types_leave_defaults),
        cmocka_unit_test(huge_strings_truncated),
        cmocka_unit_test(truncation_keeps_utf8_whole),
        cmocka_unit_test(integers_past_int64_still_parse),
        cmocka_unit_test(type_name_round_trip),
        cmocka_unit_test(free_twice_is_harmless),
    };
    const struct CMUnitTest recorded[] = {
        cmocka_unit_test(every_transcript_message_parses),
        cmocka_unit_test(first_status_carries_sid),
        cmocka_unit_test(success_sequence_ends_with_executing_null),
        cmocka_unit_test(executed_output_is_borrowed_from_root),
        cmocka_unit_test(cached_rerun_lists_cached_nodes),
        cmocka_unit_test(execution_error_fields),
        cmocka_unit_test(execution_interrupted_fields),
        cmocka_unit_test(feature_flags_is_unknown),
    };
    int failed = cmocka_run_group_tests_name("comfy_event", own, NULL, NULL);
    struct stat st;
    transcripts = argc > 1 ? argv[1] : NULL;
    if (!transcripts || stat(transcripts, &st) != 0 || !S_ISDIR(st.st_mode)) {
        printf("# transcripts not found (%s): recorded cases skipped\n",
               transcripts ? transcripts : "no path given");
        return failed ? 1 : 77;
    }
    failed += cmocka_run_group_tests_name("comfy_event_transcripts", recorded, NULL, NULL);
    return failed ? 1 : 0;
}
