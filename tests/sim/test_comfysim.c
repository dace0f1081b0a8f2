/*
 * test_comfysim — the comfysim binary over loopback: transcript 01 (POST /prompt, the full
 * WebSocket sequence, /history, byte-identical PNGs from /view), transcript 03k's non-JSON
 * 500, 11's /object_info, 16's origin check, and a clean exit on SIGTERM.
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
        cmocka_unit_test(test_plain_answers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
