/*
 * test_comfysim_faults — comfysim's fault-injection and output flags over loopback, each
 * against the real binary: --fault crash (flag and per prompt), --fault ws-drop,
 * --fault-times, --view-delay-ms, --png-level with a large --max-pixels, --refuse-after.
 *
 * Timing is only ever checked from below (an answer no earlier than a delay); everything
 * else waits for events (EOF, /history entries, process exit) with generous limits.
 */
#include <dirent.h>
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "sim/sim_buf.h"
#include "sim/sim_json.h"
#include "sim/sim_png.h"
#include "sim_test_net.h"
#include "sim_test_util.h"

/* EmptyImage (node 1) -> SaveImage (node 2); extra_data carries a per-prompt fault if given. */
static json_t *image_prompt(int w, int h, const char *prefix, const char *client_id,
                            const char *fault)
{
    json_t *p = json_pack("{s:{s:{s:s, s:{s:i, s:i, s:i, s:i}}, s:{s:s, s:{s:[si], s:s}}}}",
                          "prompt", "1", "class_type", "EmptyImage", "inputs", "width", w, "height",
                          h, "batch_size", 1, "color", 0x336699, "2", "class_type", "SaveImage",
                          "inputs", "images", "1", 0, "filename_prefix", prefix);
    assert_non_null(p);
    if (client_id != NULL)
        json_object_set_new(p, "client_id", json_string(client_id));
    if (fault != NULL)
        json_object_set_new(p, "extra_data", json_pack("{s:s}", "comfysim_fault", fault));
    return p;
}

static char *post_image_prompt(unsigned port, int w, int h, const char *prefix,
                               const char *client_id, const char *fault)
{
    json_t *p = image_prompt(w, h, prefix, client_id, fault);
    char *id = simt_post_prompt(port, p);
    json_decref(p);
    return id;
}

static const char *msg_type(const json_t *m)
{
    const char *t = json_string_value(json_object_get(m, "type"));
    return t != NULL ? t : "";
}

static bool is_executing(const json_t *m, const char *node)
{
    const char *n = json_string_value(json_object_get(json_object_get(m, "data"), "node"));
    return strcmp(msg_type(m), "executing") == 0 && n != NULL && strcmp(n, node) == 0;
}

/* Reads a WebSocket to its end; counts close frames and notes what was seen. */
struct ws_end {
    int closes;
    bool success;      /* execution_success arrived */
    bool executing[3]; /* executing {node: "1"}, {node: "2"} */
};

static struct ws_end ws_read_to_eof(struct simt_wsc *w)
{
    struct ws_end e = {0};
    for (json_t *m; (m = simt_wsc_next(w)) != NULL; json_decref(m)) {
        if (json_is_true(json_object_get(m, "close")))
            e.closes++;
        if (strcmp(msg_type(m), "execution_success") == 0)
            e.success = true;
        for (int i = 1; i <= 2; i++) {
            char id[2] = {(char)('0' + i), 0};
            e.executing[i] |= is_executing(m, id);
        }
    }
    return e;
}

static size_t count_files(const char *root, const char *sub)
{
    char path[256];
    size_t n = 0;
    snprintf(path, sizeof(path), "%s/%s", root, sub);
    DIR *d = opendir(path);
    assert_non_null(d);
    for (struct dirent *de; (de = readdir(d)) != NULL;)
        n += de->d_name[0] != '.';
    closedir(d);
    return n;
}

static const char *status_str(const json_t *entry)
{
    return json_string_value(json_object_get(json_object_get(entry, "status"), "status_str"));
}

/* The data of the first status message of this type in a history entry, or NULL. */
static json_t *history_message(const json_t *entry, const char *type)
{
    json_t *msgs = json_object_get(json_object_get(entry, "status"), "messages");
    for (size_t i = 0; i < json_array_size(msgs); i++) {
        json_t *m = json_array_get(msgs, i);
        if (strcmp(json_string_value(json_array_get(m, 0)), type) == 0)
            return json_array_get(m, 1);
    }
    return NULL;
}

static json_t *saved_images(const json_t *entry)
{
    return json_object_get(json_object_get(json_object_get(entry, "outputs"), "2"), "images");
}

static void assert_success(const json_t *entry)
{
    assert_string_equal(status_str(entry), "success");
    assert_true(json_is_true(json_object_get(json_object_get(entry, "status"), "completed")));
    assert_int_equal(json_array_size(saved_images(entry)), 1);
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* --- --fault crash ------------------------------------------------------------------------- */

static void assert_crashed(struct simt_child *c, struct simt_wsc *w)
{
    struct ws_end e = ws_read_to_eof(w);
    int status = simt_wait(c);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 3);
    assert_false(e.success);
    assert_int_equal(e.closes, 0);
    assert_true(e.executing[1]); /* mid-run: the node before the fault had started */
    /* SaveImage (the fault node) never ran, so nothing was saved or could be in history */
    assert_int_equal(count_files(c->root, "output"), 0);
}

static void test_crash_flag(void **state)
{
    (void)state;
    const char *flags[] = {"--fault", "crash", "--fault-class", "SaveImage", "--exec-ms",
                           "100",     NULL};
    struct simt_child *c = simt_spawn(flags);
    struct simt_wsc *w = simt_wsc_open(c->port, "/ws?clientId=crash1");
    char *id = post_image_prompt(c->port, 8, 8, "crash", "crash1", NULL);
    assert_crashed(c, w);
    free(id);
    simt_wsc_close(w);
    simt_child_free(c);
}

/* No --fault: one prompt succeeds, then one asking for a crash in extra_data kills us. */
static void test_crash_per_prompt(void **state)
{
    (void)state;
    const char *flags[] = {"--exec-ms", "50", NULL};
    struct simt_child *c = simt_spawn(flags);
    char *ok = post_image_prompt(c->port, 8, 8, "fine", NULL, NULL);
    json_t *entry = simt_wait_history(c->port, ok);
    assert_success(entry);
    json_decref(entry);
    size_t saved = count_files(c->root, "output");
    struct simt_wsc *w = simt_wsc_open(c->port, "/ws?clientId=crash2");
    /* no KSampler in the graph: the fault hits the first output node, SaveImage (a new size,
     * so that EmptyImage runs rather than coming from the cache) */
    char *id = post_image_prompt(c->port, 16, 16, "doomed", "crash2", "crash");
    struct ws_end e = ws_read_to_eof(w);
    int status = simt_wait(c);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 3);
    assert_false(e.success);
    assert_true(e.executing[1]);
    assert_int_equal(count_files(c->root, "output"), saved);
    free(ok);
    free(id);
    simt_wsc_close(w);
    simt_child_free(c);
}

/* --- --fault ws-drop ------------------------------------------------------------------------ */

static void test_ws_drop(void **state)
{
    (void)state;
    const char *flags[] = {"--fault", "ws-drop", "--fault-class", "SaveImage", "--exec-ms",
                           "100",     NULL};
    struct simt_child *c = simt_spawn(flags);
    struct simt_wsc *w = simt_wsc_open(c->port, "/ws?clientId=drop1");
    struct simt_wsc *other = simt_wsc_open(c->port, "/ws?clientId=bystander");
    char *id = post_image_prompt(c->port, 16, 16, "dropped", "drop1", NULL);
    struct ws_end e = ws_read_to_eof(w);
    assert_int_equal(e.closes, 0); /* the TCP connection ended without a close frame */
    assert_false(e.success);       /* cut before the prompt ended */
    assert_true(e.executing[2]);   /* the fault node's start was the last thing said */
    struct ws_end o = ws_read_to_eof(other);
    assert_int_equal(o.closes, 0);
    /* the prompt ran on: the client finds out through /history */
    json_t *entry = simt_wait_history(c->port, id);
    assert_success(entry);
    const char *file =
        json_string_value(json_object_get(json_array_get(saved_images(entry), 0), "filename"));
    assert_non_null(file);
    assert_string_equal(file, "dropped_00001_.png");
    json_decref(entry);
    /* and the server takes WebSockets again */
    struct simt_wsc *again = simt_wsc_open(c->port, "/ws?clientId=drop1");
    json_t *hello = simt_wsc_next(again);
    assert_non_null(hello);
    assert_string_equal(msg_type(hello), "status");
    json_decref(hello);
    simt_wsc_close(again);
    simt_wsc_close(other);
    simt_wsc_close(w);
    free(id);
    simt_stop(c);
}

/* --- --fault-times -------------------------------------------------------------------------- */

static void test_fault_times_oom_once(void **state)
{
    (void)state;
    const char *flags[] = {"--fault", "oom", "--fault-class", "EmptyImage", "--fault-times",
                           "1",       NULL};
    struct simt_child *c = simt_spawn(flags);
    char *first = post_image_prompt(c->port, 8, 8, "retry", NULL, NULL);
    json_t *entry = simt_wait_history(c->port, first);
    assert_string_equal(status_str(entry), "error");
    json_t *err = history_message(entry, "execution_error");
    assert_non_null(err);
    assert_string_equal(json_string_value(json_object_get(err, "exception_type")),
                        "torch.OutOfMemoryError");
    assert_string_equal(json_string_value(json_object_get(err, "node_type")), "EmptyImage");
    json_decref(entry);
    for (int i = 0; i < 2; i++) { /* the retry, and every prompt after it, succeeds */
        char *again = post_image_prompt(c->port, 8, 8, "retry", NULL, NULL);
        entry = simt_wait_history(c->port, again);
        assert_success(entry);
        assert_null(history_message(entry, "execution_error"));
        json_decref(entry);
        free(again);
    }
    free(first);
    simt_stop(c);
}

/* --- --view-delay-ms ------------------------------------------------------------------------ */

#define VIEW_DELAY_MS 300

/* Sends a /view request on a fresh connection; returns the socket. */
static int view_send(unsigned port, const char *query)
{
    char req[512];
    int n = snprintf(req, sizeof(req),
                     "GET /view?%s HTTP/1.1\r\nHost: 127.0.0.1:%u\r\nConnection: close\r\n\r\n",
                     query, port);
    int fd = simt_dial(port);
    simt_send_all(fd, req, (size_t)n);
    return fd;
}

/* Reads the answer to its end; returns its status. */
static int view_finish(int fd, size_t *body_len)
{
    struct sim_buf in;
    char tmp[65536];
    sim_buf_init(&in, 64u << 20);
    for (ssize_t k; (k = recv(fd, tmp, sizeof(tmp), 0)) > 0;)
        sim_buf_put(&in, tmp, (size_t)k);
    close(fd);
    int status = 0;
    assert_true(in.len > 12);
    sscanf((const char *)in.data, "HTTP/1.1 %d", &status);
    const uint8_t *sep = memmem(in.data, in.len, "\r\n\r\n", 4);
    assert_non_null(sep);
    *body_len = in.len - (size_t)(sep + 4 - in.data);
    sim_buf_free(&in);
    return status;
}

static void test_view_delay(void **state)
{
    (void)state;
    char delay[16];
    snprintf(delay, sizeof(delay), "%d", VIEW_DELAY_MS);
    const char *flags[] = {"--view-delay-ms", delay, NULL};
    struct simt_child *c = simt_spawn(flags);
    char *id = post_image_prompt(c->port, 32, 32, "late", NULL, NULL);
    json_t *entry = simt_wait_history(c->port, id);
    assert_success(entry);
    json_decref(entry);
    struct stat st;
    char path[256];
    snprintf(path, sizeof(path), "%s/output/late_00001_.png", c->root);
    assert_int_equal(stat(path, &st), 0);
    /* two answers waiting at once, a file and a 404: each starts no earlier than the delay */
    int64_t t0 = now_ms();
    int a = view_send(c->port, "filename=late_00001_.png&type=output");
    int b = view_send(c->port, "filename=missing.png&type=output");
    char first;
    assert_int_equal(recv(a, &first, 1, MSG_PEEK), 1);
    assert_true(now_ms() - t0 >= VIEW_DELAY_MS);
    assert_int_equal(recv(b, &first, 1, MSG_PEEK), 1);
    assert_true(now_ms() - t0 >= VIEW_DELAY_MS);
    size_t len;
    assert_int_equal(view_finish(a, &len), 200);
    assert_int_equal(len, (size_t)st.st_size);
    assert_int_equal(view_finish(b, &len), 404);
    /* a client that leaves while its answer waits: the server must still end cleanly */
    close(view_send(c->port, "filename=late_00001_.png&type=output"));
    /* other routes are not delayed and are served meanwhile (no upper bound checked) */
    struct simt_reply q = simt_request(c->port, "GET", "/queue", NULL, NULL);
    assert_int_equal(q.status, 200);
    free(q.body);
    free(id);
    simt_stop(c);
}

/* A /view still waiting when SIGTERM comes: the shutdown timeout (5 s) cuts its connection,
 * the wait ends through the abort callback, and the process exits cleanly (ASan: no leak). */
static void test_view_delay_shutdown(void **state)
{
    (void)state;
    const char *flags[] = {"--view-delay-ms", "600000", NULL};
    struct simt_child *c = simt_spawn(flags);
    int fd = view_send(c->port, "filename=missing.png&type=output");
    struct simt_reply q = simt_request(c->port, "GET", "/queue", NULL, NULL); /* it is waiting */
    assert_int_equal(q.status, 200);
    free(q.body);
    simt_stop(c);
    char byte;
    assert_true(recv(fd, &byte, 1, 0) <= 0); /* cut, never answered */
    close(fd);
}

/* --- --png-level 0 with a large --max-pixels -------------------------------------------------- */

#define BIG_W 4096
#define BIG_H 4200

/* GET /view of a big file, noting the server's memory growth while the answer is under way. */
static uint8_t *view_big(struct simt_child *c, const char *name, size_t *len, long *grew_kib)
{
    char query[256];
    snprintf(query, sizeof(query), "filename=%s&type=output", name);
    long before = simt_rss_kib(c->pid);
    int fd = view_send(c->port, query);
    struct sim_buf in;
    char tmp[65536];
    sim_buf_init(&in, 256u << 20);
    ssize_t k = recv(fd, tmp, sizeof(tmp), 0);
    assert_true(k > 0);
    sim_buf_put(&in, tmp, (size_t)k);
    usleep(300 * 1000); /* the server has all the time it wants to buffer the file, if it does */
    long during = simt_rss_kib(c->pid);
    *grew_kib = during - before;
    while ((k = recv(fd, tmp, sizeof(tmp), 0)) > 0)
        sim_buf_put(&in, tmp, (size_t)k);
    close(fd);
    assert_int_equal(in.err, 0);
    const uint8_t *sep = memmem(in.data, in.len, "\r\n\r\n", 4);
    assert_non_null(sep);
    assert_memory_equal(in.data, "HTTP/1.1 200", 12);
    size_t hl = (size_t)(sep + 4 - in.data);
    *len = in.len - hl;
    uint8_t *body = malloc(*len);
    assert_non_null(body);
    memcpy(body, in.data + hl, *len);
    sim_buf_free(&in);
    return body;
}

static void test_png_level_0(void **state)
{
    (void)state;
    char px[32];
    snprintf(px, sizeof(px), "%d", BIG_W * BIG_H);
    const char *flags[] = {"--png-level", "0", "--max-pixels", px, NULL};
    struct simt_child *c = simt_spawn(flags);
    char *id = post_image_prompt(c->port, BIG_W, BIG_H, "huge", NULL, NULL);
    json_t *entry = simt_wait_history(c->port, id);
    assert_success(entry);
    json_decref(entry);
    size_t raw = (size_t)BIG_W * BIG_H * 3; /* EmptyImage is RGB, as in ComfyUI */
    struct stat st;
    char path[256];
    snprintf(path, sizeof(path), "%s/output/huge_00001_.png", c->root);
    assert_int_equal(stat(path, &st), 0);
    assert_true((size_t)st.st_size > raw); /* stored, not compressed */
    size_t len;
    long grew;
    uint8_t *png = view_big(c, "huge_00001_.png", &len, &grew);
    assert_int_equal(len, (size_t)st.st_size);
    /* spliced from the file: the server never holds the ~50 MB answer in memory */
    assert_true(grew < (long)(raw / 2 / 1024));
    struct sim_png_image img;
    assert_int_equal(sim_png_decode(png, len, (uint64_t)BIG_W * BIG_H, &img), SIM_PNG_OK);
    assert_int_equal(img.width, BIG_W);
    assert_int_equal(img.height, BIG_H);
    assert_int_equal(img.channels, 3);
    const uint8_t want[3] = {0x33, 0x66, 0x99};
    assert_memory_equal(img.pixels, want, 3);
    assert_memory_equal(img.pixels + raw - 3, want, 3);
    sim_png_image_free(&img);
    free(png);
    free(id);
    simt_stop(c);
}

/* The same picture at the default level is far smaller: the flag is what made it big. */
static void test_png_level_default(void **state)
{
    (void)state;
    struct simt_child *c = simt_spawn(NULL);
    char *id = post_image_prompt(c->port, 256, 256, "small", NULL, NULL);
    json_t *entry = simt_wait_history(c->port, id);
    assert_success(entry);
    json_decref(entry);
    struct stat st;
    char path[256];
    snprintf(path, sizeof(path), "%s/output/small_00001_.png", c->root);
    assert_int_equal(stat(path, &st), 0);
    assert_true((size_t)st.st_size < 256 * 256 * 3 / 10);
    free(id);
    simt_stop(c);
}

/* --- --refuse-after --------------------------------------------------------------------------- */

/* A keep-alive GET /queue answered in full on fd, which stays open. */
static void keepalive_queue(int fd, unsigned port)
{
    char req[160], buf[8192];
    size_t have = 0;
    int n = snprintf(req, sizeof(req), "GET /queue HTTP/1.1\r\nHost: 127.0.0.1:%u\r\n\r\n", port);
    simt_send_all(fd, req, (size_t)n);
    for (;;) {
        ssize_t k = recv(fd, buf + have, sizeof(buf) - 1 - have, 0);
        assert_true(k > 0);
        have += (size_t)k;
        buf[have] = 0;
        const char *sep = strstr(buf, "\r\n\r\n");
        const char *cl = strcasestr(buf, "Content-Length:");
        if (sep != NULL && cl != NULL && have >= (size_t)(sep + 4 - buf) + strtoul(cl + 15, 0, 10))
            break;
    }
    assert_null(strcasestr(buf, "Connection: close"));
}

static void test_refuse_after(void **state)
{
    (void)state;
    const char *flags[] = {"--refuse-after", "2", NULL};
    struct simt_child *c = simt_spawn(flags);
    struct simt_wsc *w = simt_wsc_open(c->port, "/ws?clientId=watcher");
    int idle = simt_dial(c->port);
    keepalive_queue(idle, c->port);
    char *first = post_image_prompt(c->port, 8, 8, "r", NULL, NULL);
    int fd = simt_try_dial(c->port); /* one prompt: still listening */
    assert_true(fd >= 0);
    close(fd);
    json_t *p = image_prompt(8, 8, "r", NULL, NULL);
    char *body = sim_json_dumps(p, 1u << 20);
    struct simt_reply r =
        simt_request(c->port, "POST", "/prompt", "Content-Type: application/json\r\n", body);
    assert_int_equal(r.status, 200); /* the second prompt is accepted, then the doors close */
    assert_non_null(strstr(r.head, "Connection: close"));
    assert_int_equal(simt_try_dial(c->port), -ECONNREFUSED);
    assert_int_equal(simt_try_dial(c->port), -ECONNREFUSED);
    struct ws_end e = ws_read_to_eof(w); /* every open connection is cut */
    assert_int_equal(e.closes, 0);
    char byte;
    assert_int_equal(recv(idle, &byte, 1, 0), 0);
    close(idle);
    int status;
    assert_int_equal(waitpid(c->pid, &status, WNOHANG), 0); /* the process keeps running */
    free(r.body);
    free(body);
    json_decref(p);
    free(first);
    simt_wsc_close(w);
    simt_stop(c);
}

int main(void)
{
    if (getenv("COMFYSIM") == NULL)
        return SIMT_SKIP;
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crash_flag),   cmocka_unit_test(test_crash_per_prompt),
        cmocka_unit_test(test_ws_drop),      cmocka_unit_test(test_fault_times_oom_once),
        cmocka_unit_test(test_view_delay),   cmocka_unit_test(test_view_delay_shutdown),
        cmocka_unit_test(test_png_level_0),  cmocka_unit_test(test_png_level_default),
        cmocka_unit_test(test_refuse_after),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
