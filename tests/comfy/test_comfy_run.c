/* comfy_run against a real comfysim process: an input image uploaded to the backend's
 * per-tenant subfolder, LoadImage → ImageInvert → SaveImage, PreviewImage (a temp output) and
 * GetImageSize → PreviewAny (a text output); every output stored through the file sink. And a
 * prompt whose end comes over the WebSocket before the POST /prompt answer (a second comfysim
 * whose SaveImage hangs, so that the injected end is the only one).
 * Usage: test_comfy_run COMFYSIM_BIN INPUT_PNG. Exit 77 when io_uring or the input is missing. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "comfy/comfy_run.h"

static const char *sim_bin, *input_png;
static char tmp[64];
static pid_t sim_pid, hang_pid;
static int sim_port, hang_port;

/* A comfysim in <tmp>/<name> (its root and port file there); fault: "" or a --fault kind for
 * SaveImage. */
static int start_sim(const char *name, const char *fault, pid_t *pid, int *port)
{
    char portfile[128], root[128];
    snprintf(portfile, sizeof(portfile), "%s/%s.port", tmp, name);
    snprintf(root, sizeof(root), "%s/%s", tmp, name);
    *pid = fork();
    if (*pid == 0) {
        if (fault[0])
            execl(sim_bin, sim_bin, "--port", "0", "--port-file", portfile, "--root", root,
                  "--fault", fault, "--fault-class", "SaveImage", (char *)NULL);
        else
            execl(sim_bin, sim_bin, "--port", "0", "--port-file", portfile, "--root", root,
                  (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 500; i++) {
        FILE *f = fopen(portfile, "r");
        if (f && fscanf(f, "%d", port) == 1 && *port > 0) {
            fclose(f);
            return 0;
        }
        if (f)
            fclose(f);
        usleep(10000);
    }
    return -1;
}

struct world {
    struct ring ring;
    struct comfy_fleet fleet;
    struct comfy_run run;
    bool done;
    bool timed_out;
    struct ring_timer deadline;
    unsigned outputs_seen;
};

static bool backend_ready(struct ring *r)
{
    struct world *w = r->user;
    return comfy_backend_available(&w->fleet.backends[0]) && w->fleet.backends[0].ws_open;
}

static bool fleet_idle(struct ring *r)
{
    struct world *w = r->user;
    return comfy_fleet_idle(&w->fleet);
}

static bool run_done(struct ring *r)
{
    struct world *w = r->user;
    return w->done || w->timed_out;
}

static void deadline_cb(struct ring_timer *t)
{
    struct world *w = (struct world *)((char *)t - offsetof(struct world, deadline));
    w->timed_out = true;
}

static void on_output(struct comfy_run *r, const struct comfy_output *o)
{
    ((struct world *)r->ctx)->outputs_seen++;
}

static void on_done(struct comfy_run *r)
{
    ((struct world *)r->ctx)->done = true;
}

static const struct comfy_run_ops ops = {.on_output = on_output, .on_done = on_done};

static const struct comfy_output *find(const struct comfy_attempt *a, const char *type,
                                       const char *node)
{
    for (unsigned i = 0; i < a->noutputs; i++) {
        if (!strcmp(a->outputs[i].type, type) && !strcmp(a->outputs[i].node, node))
            return &a->outputs[i];
    }
    return NULL;
}

static void test_upload_and_every_output_kind(void **state)
{
    struct world *w = calloc(1, sizeof(*w));
    struct ring_config rc = {.sq_entries = 256, .buf_count = 64, .buf_size = 16384,
                             .max_timers = 1024};
    if (ring_init(&w->ring, &rc, 0) < 0)
        skip();
    w->ring.user = w;
    struct comfy_backend_spec spec;
    char err[128];
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", sim_port);
    assert_int_equal(comfy_backend_specs_parse(url, &spec, 1, err, sizeof(err)), 1);
    struct comfy_backend_config bc;
    comfy_backend_config_defaults(&bc);
    bc.probe_interval_ms = 100;
    assert_int_equal(comfy_fleet_init(&w->fleet, &w->ring, &spec, 1, &bc, 0), 0);
    comfy_fleet_start(&w->fleet);
    ring_stop(&w->ring);
    assert_int_equal(ring_run(&w->ring, backend_ready), 0);

    json_t *graph = json_loads(
        "{\"1\": {\"class_type\": \"LoadImage\", \"inputs\": {\"image\": \"tenant-a/in.png\"}},"
        " \"2\": {\"class_type\": \"ImageInvert\", \"inputs\": {\"image\": [\"1\", 0]}},"
        " \"3\": {\"class_type\": \"SaveImage\", \"inputs\": {\"images\": [\"2\", 0],"
        "        \"filename_prefix\": \"x\"}},"
        " \"4\": {\"class_type\": \"PreviewImage\", \"inputs\": {\"images\": [\"1\", 0]}},"
        " \"5\": {\"class_type\": \"GetImageSize\", \"inputs\": {\"image\": [\"1\", 0]}},"
        " \"6\": {\"class_type\": \"PreviewAny\", \"inputs\": {\"source\": [\"5\", 0]}}}",
        0, NULL);
    assert_non_null(graph);
    comfy_graph_set_prefix(graph, "comfygate/job1");
    char outdir[128];
    snprintf(outdir, sizeof(outdir), "%s/out", tmp);
    mkdir(outdir, 0755);
    int dirfd = open(outdir, O_PATH | O_DIRECTORY);
    struct comfy_input_file in;
    memset(&in, 0, sizeof(in));
    snprintf(in.name, sizeof(in.name), "in.png");
    snprintf(in.path, sizeof(in.path), "%s", input_png);
    struct comfy_run_params p = {.graph = graph, .out_dirfd = dirfd, .upload_subfolder = "tenant-a",
                                 .inputs = &in, .ninputs = 1, .timeout_ms = 30000,
                                 .route_timeout_ms = 5000};
    assert_int_equal(comfy_run_start(&w->run, &w->fleet, &p, &ops, w), 0);
    ring_stop(&w->ring);
    assert_int_equal(ring_run(&w->ring, run_done), 0);
    if (w->run.err != COMFY_OK)
        fail_msg("run failed: %s %s", comfy_err_code(w->run.err), w->run.message);

    /* the upload landed in the tenant's subfolder on the backend */
    char up[256];
    snprintf(up, sizeof(up), "%s/sim/input/tenant-a/in.png", tmp);
    struct stat st, src;
    assert_int_equal(stat(up, &st), 0);
    assert_int_equal(stat(input_png, &src), 0);
    assert_int_equal(st.st_size, src.st_size);

    const struct comfy_attempt *a = &w->run.att;
    const struct comfy_output *saved = find(a, "output", "3");
    const struct comfy_output *temp = find(a, "temp", "4");
    const struct comfy_output *text = find(a, "text", "6");
    assert_non_null(saved);
    assert_non_null(temp);
    assert_non_null(text);
    assert_true(saved->stored && temp->stored && text->stored);
    assert_int_equal(w->outputs_seen, a->noutputs);
    for (unsigned i = 0; i < a->noutputs; i++) { /* each one is on disk at its size */
        char path[700];
        snprintf(path, sizeof(path), "%s/%s", outdir, a->outputs[i].local_name);
        assert_int_equal(stat(path, &st), 0);
        assert_int_equal((uint64_t)st.st_size, a->outputs[i].size);
        assert_true(st.st_size > 0);
        assert_int_equal(strlen(a->outputs[i].sha256), 64);
    }
    /* the PNGs are PNGs; the text is what PreviewAny showed */
    char path[700], buf[256] = "";
    snprintf(path, sizeof(path), "%s/%s", outdir, saved->local_name);
    FILE *f = fopen(path, "rb");
    assert_int_equal(fread(buf, 1, 8, f), 8);
    fclose(f);
    assert_memory_equal(buf, "\x89PNG\r\n\x1a\n", 8);
    snprintf(path, sizeof(path), "%s/%s", outdir, text->local_name);
    f = fopen(path, "rb");
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    assert_non_null(strstr(buf, "64"));

    comfy_run_free(&w->run);
    json_decref(graph);
    close(dirfd);
    comfy_fleet_stop(&w->fleet);
    ring_stop(&w->ring);
    assert_int_equal(ring_run(&w->ring, fleet_idle), 0); /* the WebSocket winds down */
    comfy_fleet_fini(&w->fleet);
    ring_fini(&w->ring);
    free(w);
}

/* A prompt that runs at once can have its whole life reported on the WebSocket before the
 * POST /prompt answer is read. Its end must not be lost: the attempt asks /history once the
 * answer is in. The end is injected while the submit is in flight, on a backend whose
 * SaveImage hangs, so no real end can come and rescue a lost one. */
static void test_end_before_submit_answer(void **state)
{
    struct world *w = calloc(1, sizeof(*w));
    struct ring_config rc = {.sq_entries = 256, .buf_count = 64, .buf_size = 16384,
                             .max_timers = 1024};
    if (ring_init(&w->ring, &rc, 0) < 0)
        skip();
    w->ring.user = w;
    struct comfy_backend_spec spec;
    char err[128], url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", hang_port);
    assert_int_equal(comfy_backend_specs_parse(url, &spec, 1, err, sizeof(err)), 1);
    struct comfy_backend_config bc;
    comfy_backend_config_defaults(&bc);
    bc.probe_interval_ms = 100;
    assert_int_equal(comfy_fleet_init(&w->fleet, &w->ring, &spec, 1, &bc, 0), 0);
    comfy_fleet_start(&w->fleet);
    ring_stop(&w->ring);
    assert_int_equal(ring_run(&w->ring, backend_ready), 0);

    json_t *graph = json_loads(
        "{\"1\": {\"class_type\": \"EmptyImage\", \"inputs\": {\"width\": 8, \"height\": 8,"
        "        \"batch_size\": 1, \"color\": 0}},"
        " \"2\": {\"class_type\": \"SaveImage\", \"inputs\": {\"images\": [\"1\", 0],"
        "        \"filename_prefix\": \"x\"}}}",
        0, NULL);
    assert_non_null(graph);
    char outdir[128];
    snprintf(outdir, sizeof(outdir), "%s/out-hang", tmp);
    mkdir(outdir, 0755);
    int dirfd = open(outdir, O_PATH | O_DIRECTORY);
    struct comfy_run_params p = {.graph = graph, .out_dirfd = dirfd, .timeout_ms = 30000,
                                 .route_timeout_ms = 5000};
    assert_int_equal(comfy_run_start(&w->run, &w->fleet, &p, &ops, w), 0);
    struct comfy_attempt *a = &w->run.att;
    assert_true(w->run.att_live);
    assert_int_equal(a->state, CA_SUBMITTING); /* POST /prompt sent, its answer not read yet */

    struct comfy_event ev;
    memset(&ev, 0, sizeof(ev));
    ev.type = CEV_EXECUTION_SUCCESS;
    snprintf(ev.prompt_id, sizeof(ev.prompt_id), "%s", a->prompt_id);
    comfy_attempt_on_event(a, &ev);

    w->deadline.cb = deadline_cb;
    ring_timer_arm(&w->ring, &w->deadline, 10000);
    ring_stop(&w->ring);
    assert_int_equal(ring_run(&w->ring, run_done), 0);
    ring_timer_cancel(&w->ring, &w->deadline);
    if (!w->done)
        fail_msg("the run never finished: the end reported before the submit answer was lost");
    /* history never lists the hung prompt: the run settles for the (no) outputs announced */
    assert_int_equal(w->run.err, COMFY_OK);

    comfy_run_free(&w->run);
    json_decref(graph);
    close(dirfd);
    comfy_fleet_stop(&w->fleet);
    ring_stop(&w->ring);
    assert_int_equal(ring_run(&w->ring, fleet_idle), 0);
    comfy_fleet_fini(&w->fleet);
    ring_fini(&w->ring);
    free(w);
}

int main(int argc, char **argv)
{
    if (argc < 3 || access(argv[2], R_OK) != 0)
        return 77;
    sim_bin = argv[1];
    input_png = argv[2];
    snprintf(tmp, sizeof(tmp), "/tmp/cg-run-XXXXXX");
    if (!mkdtemp(tmp) || start_sim("sim", "", &sim_pid, &sim_port) < 0 ||
        start_sim("hang", "hang", &hang_pid, &hang_port) < 0)
        return 1;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_upload_and_every_output_kind),
                                       cmocka_unit_test(test_end_before_submit_answer)};
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    kill(sim_pid, SIGKILL);
    waitpid(sim_pid, NULL, 0);
    kill(hang_pid, SIGKILL);
    waitpid(hang_pid, NULL, 0);
    curl_global_cleanup();
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", tmp);
    if (system(cmd) != 0)
        rc = rc ? rc : 1;
    return rc;
}
