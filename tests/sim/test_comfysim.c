/*
 * test_comfysim — the comfysim binary over loopback: transcript 01 (POST /prompt, the full
 * WebSocket sequence, /history, byte-identical PNGs from /view), transcript 03k's non-JSON
 * 500, 11's /object_info, 16's origin check, and a clean exit on SIGTERM.
 *
 * The binary path comes from COMFYSIM (set by meson); the test starts it on an ephemeral port
 * in a fresh temporary folder and stops it by its PID.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "sim/sim_json.h"
#include "sim_test_util.h"

struct child {
    pid_t pid;
    unsigned port;
    char dir[64];
};

static struct child *spawn(void)
{
    struct child *c = calloc(1, sizeof(*c));
    char portfile[128], root[128];
    snprintf(c->dir, sizeof(c->dir), "/tmp/comfysim-test-XXXXXX");
    assert_non_null(mkdtemp(c->dir));
    snprintf(portfile, sizeof(portfile), "%s/port", c->dir);
    snprintf(root, sizeof(root), "%s/data", c->dir);
    c->pid = fork();
    assert_true(c->pid >= 0);
    if (c->pid == 0) {
        execl(getenv("COMFYSIM"), "comfysim", "--port", "0", "--port-file", portfile, "--root",
              root, "--seed", "1", (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 500 && c->port == 0; i++) {
        FILE *f = fopen(portfile, "r");
        if (f != NULL && fscanf(f, "%u", &c->port) != 1)
            c->port = 0;
        if (f != NULL)
            fclose(f);
        usleep(10000);
    }
    assert_true(c->port > 0);
    return c;
}

static void stop(struct child *c)
{
    int status = 0;
    kill(c->pid, SIGTERM);
    assert_int_equal(waitpid(c->pid, &status, 0), c->pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    char cmd[160];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", c->dir);
    assert_int_equal(system(cmd), 0);
    free(c);
}

static int dial(unsigned port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct timeval tv = {10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    return fd;
}

static void send_all(int fd, const void *p, size_t n)
{
    assert_int_equal(send(fd, p, n, 0), (ssize_t)n);
}

struct reply {
    int status;
    char head[4096];
    uint8_t *body;
    size_t len;
};

/* One request on a fresh connection (Connection: close), the whole answer read back. */
static struct reply request(unsigned port, const char *method, const char *path,
                            const char *headers, const char *body)
{
    struct reply r = {0};
    char req[8192];
    size_t blen = body != NULL ? strlen(body) : 0;
    int n = snprintf(req, sizeof(req),
                     "%s %s HTTP/1.1\r\nHost: 127.0.0.1:%u\r\nConnection: close\r\n%s"
                     "Content-Length: %zu\r\n\r\n%s",
                     method, path, port, headers != NULL ? headers : "", blen, body ? body : "");
    int fd = dial(port);
    send_all(fd, req, (size_t)n);
    struct sim_buf in;
    sim_buf_init(&in, 64u << 20);
    char tmp[65536];
    for (ssize_t k; (k = recv(fd, tmp, sizeof(tmp), 0)) > 0;)
        sim_buf_put(&in, tmp, (size_t)k);
    close(fd);
    const char *sep = strstr((const char *)in.data, "\r\n\r\n");
    assert_non_null(sep);
    size_t hl = (size_t)(sep - (const char *)in.data);
    memcpy(r.head, in.data, hl < sizeof(r.head) - 1 ? hl : sizeof(r.head) - 1);
    sscanf(r.head, "HTTP/1.1 %d", &r.status);
    r.len = in.len - hl - 4;
    r.body = malloc(r.len + 1);
    memcpy(r.body, sep + 4, r.len);
    r.body[r.len] = 0;
    sim_buf_free(&in);
    return r;
}

/* --- a minimal WebSocket client ---------------------------------------------------------- */

struct ws {
    int fd;
    uint8_t buf[1 << 16];
    size_t len;
};

static void ws_fill(struct ws *w, size_t need)
{
    while (w->len < need) {
        ssize_t k = recv(w->fd, w->buf + w->len, sizeof(w->buf) - w->len, 0);
        assert_true(k > 0);
        w->len += (size_t)k;
    }
}

static struct ws *ws_open(unsigned port, const char *path)
{
    struct ws *w = calloc(1, sizeof(*w));
    char req[512];
    int n = snprintf(req, sizeof(req),
                     "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%u\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                     "Sec-WebSocket-Version: 13\r\n\r\n",
                     path, port);
    w->fd = dial(port);
    send_all(w->fd, req, (size_t)n);
    for (;;) {
        ws_fill(w, w->len + 1);
        uint8_t *end = memmem(w->buf, w->len, "\r\n\r\n", 4);
        if (end == NULL)
            continue;
        assert_non_null(strstr((char *)w->buf, " 101 "));
        assert_non_null(strstr((char *)w->buf, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")); /* RFC 6455 */
        size_t used = (size_t)(end + 4 - w->buf);
        memmove(w->buf, end + 4, w->len - used);
        w->len -= used;
        return w;
    }
}

/* The next message: text frames parsed as JSON, binary ones as {"binary": true, "len"}. */
static json_t *ws_next(struct ws *w)
{
    ws_fill(w, 2);
    size_t n = w->buf[1] & 127, hdr = 2;
    if (n == 126) {
        ws_fill(w, 4);
        n = (size_t)w->buf[2] << 8 | w->buf[3];
        hdr = 4;
    } else if (n == 127) {
        ws_fill(w, 10);
        n = 0;
        for (int i = 0; i < 8; i++)
            n = n << 8 | w->buf[2 + i];
        hdr = 10;
    }
    assert_true(hdr + n <= sizeof(w->buf));
    ws_fill(w, hdr + n);
    int op = w->buf[0] & 15;
    json_error_t err;
    json_t *v = op == 1 ? sim_json_loads((const char *)w->buf + hdr, n, n + 1, &err)
                        : json_pack("{s:b, s:I}", "binary", 1, "len", (json_int_t)n);
    memmove(w->buf, w->buf + hdr + n, w->len - hdr - n);
    w->len -= hdr + n;
    assert_non_null(v);
    return v;
}

static void ws_close(struct ws *w)
{
    close(w->fd);
    free(w);
}

static void test_transcript_01(void **state)
{
    (void)state;
    struct child *c = spawn();
    json_t *t = simt_load("01_prompt_success.json");
    const char *cid = json_string_value(json_object_get(json_object_get(t, "ws"), "client_id"));
    char path[128];
    snprintf(path, sizeof(path), "/ws?clientId=%s", cid);
    struct ws *w = ws_open(c->port, path);
    json_t *got = json_array();
    json_array_append_new(got, ws_next(w));
    char *body = sim_json_dumps(simt_request_json(simt_step(t, 0)), 1u << 20);
    struct reply r =
        request(c->port, "POST", "/prompt", "Content-Type: application/json\r\n", body);
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
        struct reply v = request(c->port, "GET", view, NULL, NULL);
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
    ws_close(w);
    json_decref(t);
    stop(c);
}

static void test_plain_answers(void **state)
{
    (void)state;
    struct child *c = spawn();
    struct reply r = request(c->port, "POST", "/prompt", NULL, "this is not json");
    assert_int_equal(r.status, 500);
    assert_string_equal((char *)r.body,
                        "500 Internal Server Error\n\nServer got itself in trouble");
    free(r.body);
    json_t *t = simt_load("11_object_info.json");
    r = request(c->port, "GET", "/api/object_info/ImageInvert", NULL, NULL);
    assert_int_equal(r.status, 200);
    char *want = sim_json_dumps(simt_response_json(simt_step(t, 3)), 1u << 20);
    assert_string_equal((char *)r.body, want);
    free(want);
    free(r.body);
    r = request(c->port, "GET", "/system_stats", "Origin: http://evil.example\r\n", NULL);
    assert_int_equal(r.status, 403);
    free(r.body);
    r = request(c->port, "GET", "/history/unknown-id", NULL, NULL);
    assert_string_equal((char *)r.body, "{}");
    free(r.body);
    json_decref(t);
    stop(c);
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
