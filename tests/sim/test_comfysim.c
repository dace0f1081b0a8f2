/*
 * test_comfysim — the comfysim binary over loopback: transcript 01 (POST /prompt, the full
 * WebSocket sequence, /history, byte-identical PNGs from /view), transcript 06 (every /view
 * variant: plain, channel=, preview=jpeg/webp conversions, the error statuses), transcript
 * 03k's non-JSON 500, 11's /object_info, 16's origin check, and a clean exit on SIGTERM.
 *
 * The binary path comes from COMFYSIM (set by meson); sim_test_net starts it on an ephemeral
 * port in a fresh temporary folder and stops it by its PID.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cmocka.h>

#include "sim/sim_json.h"
#include "sim_test_net.h"
#include "sim_test_util.h"

/* The next WebSocket message, which must come. */
static json_t *ws_next(struct simt_wsc *w)
{
    json_t *m = simt_wsc_next(w);
    assert_non_null(m);
    return m;
}

static void test_transcript_01(void **state)
{
    (void)state;
    struct simt_child *c = simt_spawn(NULL);
    json_t *t = simt_load("01_prompt_success.json");
    const char *cid = json_string_value(json_object_get(json_object_get(t, "ws"), "client_id"));
    char path[128];
    snprintf(path, sizeof(path), "/ws?clientId=%s", cid);
    struct simt_wsc *w = simt_wsc_open(c->port, path);
    json_t *got = json_array();
    json_array_append_new(got, ws_next(w));
    char *body = sim_json_dumps(simt_request_json(simt_step(t, 0)), 1u << 20);
    struct simt_reply r =
        simt_request(c->port, "POST", "/prompt", "Content-Type: application/json\r\n", body);
    assert_int_equal(r.status, 200);
    for (;;) {
        json_t *m = ws_next(w);
        json_array_append_new(got, m);
        json_t *d = json_object_get(m, "data");
        if (strcmp(json_string_value(json_object_get(m, "type")), "executing") == 0 &&
            json_is_null(json_object_get(d, "node")))
            break;
    }
    static const char *const strip[] = {"sid", NULL};
    json_t *want_all = simt_ws_texts(t, "ws");
    json_t *a = simt_strip(got, strip), *b = simt_strip(want_all, strip);
    assert_true(simt_same_json(a, b));
    /* the saved files, served back byte for byte */
    for (int i = 0; i < 2; i++) {
        char view[160], rec[64];
        size_t len;
        snprintf(view, sizeof(view),
                 "/view?filename=golden_success_0000%d_.png&subfolder=&type="
                 "output",
                 i + 1);
        snprintf(rec, sizeof(rec), "01_prompt_success_view_%d.png", i);
        struct simt_reply v = simt_request(c->port, "GET", view, NULL, NULL);
        uint8_t *png = simt_read_file(rec, &len);
        assert_int_equal(v.status, 200);
        assert_int_equal(v.len, len);
        assert_memory_equal(v.body, png, len);
        assert_non_null(strstr(v.head, "Content-Disposition: filename=\"golden_success_0000"));
        free(png);
        free(v.body);
    }
    json_decref(a);
    json_decref(b);
    json_decref(want_all);
    json_decref(got);
    free(body);
    free(r.body);
    simt_wsc_close(w);
    json_decref(t);
    simt_stop(c);
}

/* The value of a recorded response header, or NULL. */
static const char *step_header(json_t *step, const char *name)
{
    json_t *hs = json_object_get(json_object_get(step, "response"), "headers");
    for (size_t i = 0; i < json_array_size(hs); i++) {
        json_t *h = json_array_get(hs, i);
        if (strcasecmp(json_string_value(json_array_get(h, 0)), name) == 0)
            return json_string_value(json_array_get(h, 1));
    }
    return NULL;
}

static void assert_header(const struct simt_reply *r, const char *name, const char *value)
{
    char line[512];
    snprintf(line, sizeof(line), "\r\n%s: %s\r\n", name, value);
    char head[sizeof(r->head) + 2];
    snprintf(head, sizeof(head), "%s\r\n", r->head);
    if (strstr(head, line) == NULL)
        fprintf(stderr, "no \"%s: %s\" in:\n%s\n", name, value, r->head);
    assert_non_null(strstr(head, line));
}

/* One recorded /view answer against ours. The only known difference: ComfyUI's WebP is lossy
 * ("VP8 " chunk), comfysim's lossless ("VP8L"), so its size differs too (sim_webp.h). */
static void check_view_step(unsigned port, json_t *step)
{
    const char *path = json_string_value(json_object_get(json_object_get(step, "request"), "path"));
    json_t *body = json_object_get(json_object_get(step, "response"), "body");
    struct simt_reply r = simt_request(port, "GET", path, NULL, NULL);
    print_message("%s -> %d\n", path, r.status);
    assert_int_equal(r.status, simt_response_status(step));
    assert_header(&r, "Content-Type", step_header(step, "Content-Type"));
    const char *disp = step_header(step, "Content-Disposition");
    if (disp != NULL)
        assert_header(&r, "Content-Disposition", disp);
    if (json_is_true(json_object_get(body, "empty"))) {
        assert_int_equal(r.len, 0);
    } else if (strstr(path, "preview=webp") != NULL) {
        assert_true(r.len > 20);
        assert_memory_equal(r.body, "RIFF", 4);
        assert_memory_equal(r.body + 8, "WEBPVP8L", 8); /* the transcript: "WEBPVP8 " */
    } else {
        char hex[33];
        assert_int_equal(r.len, json_integer_value(json_object_get(body, "length")));
        for (int i = 0; i < 16; i++)
            snprintf(hex + 2 * i, 3, "%02x", r.body[i]);
        assert_string_equal(hex, json_string_value(json_object_get(body, "first16_hex")));
        const char *saved = json_string_value(json_object_get(body, "saved_as"));
        size_t len;
        uint8_t *want = saved != NULL ? simt_read_file(saved, &len) : NULL;
        if (want != NULL)
            assert_memory_equal(r.body, want, len);
        free(want);
    }
    free(r.body);
}

static void test_transcript_06(void **state)
{
    (void)state;
    struct simt_child *c = simt_spawn(NULL);
    json_t *t = simt_load("06_view.json");
    char *id = simt_post_prompt(c->port, simt_request_json(simt_step(t, 0)));
    json_decref(simt_wait_history(c->port, id));
    size_t views = 0;
    for (size_t i = 0; i < json_array_size(json_object_get(t, "steps")); i++) {
        json_t *step = simt_step(t, i);
        const char *path =
            json_string_value(json_object_get(json_object_get(step, "request"), "path"));
        if (strncmp(path, "/view", 5) == 0) {
            check_view_step(c->port, step);
            views++;
        }
    }
    assert_int_equal(views, 11);
    free(id);
    json_decref(t);
    simt_stop(c);
}

static void test_plain_answers(void **state)
{
    (void)state;
    struct simt_child *c = simt_spawn(NULL);
    struct simt_reply r = simt_request(c->port, "POST", "/prompt", NULL, "this is not json");
    assert_int_equal(r.status, 500);
    assert_string_equal((char *)r.body,
                        "500 Internal Server Error\n\nServer got itself in trouble");
    free(r.body);
    json_t *t = simt_load("11_object_info.json");
    r = simt_request(c->port, "GET", "/api/object_info/ImageInvert", NULL, NULL);
    assert_int_equal(r.status, 200);
    char *want = sim_json_dumps(simt_response_json(simt_step(t, 3)), 1u << 20);
    assert_string_equal((char *)r.body, want);
    free(want);
    free(r.body);
    r = simt_request(c->port, "GET", "/system_stats", "Origin: http://evil.example\r\n", NULL);
    assert_int_equal(r.status, 403);
    free(r.body);
    r = simt_request(c->port, "GET", "/history/unknown-id", NULL, NULL);
    assert_string_equal((char *)r.body, "{}");
    free(r.body);
    json_decref(t);
    simt_stop(c);
}

int main(void)
{
    simt_require_transcripts();
    if (getenv("COMFYSIM") == NULL)
        return SIMT_SKIP;
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_transcript_01),
        cmocka_unit_test(test_transcript_06),
        cmocka_unit_test(test_plain_answers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
