/*
 * sim_test_net — comfysim over loopback for the integration tests (see sim_test_net.h).
 */
#include "sim_test_net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "sim/sim_buf.h"
#include "sim/sim_json.h"

#define FLAGS_MAX 32
#define BODY_MAX (256u << 20) /* largest answer simt_request reads (a level-0 PNG) */

struct simt_child *simt_spawn(const char *const *flags)
{
    struct simt_child *c = calloc(1, sizeof(*c));
    char portfile[128];
    const char *argv[FLAGS_MAX + 12];
    size_t n = 0;
    assert_non_null(c);
    snprintf(c->dir, sizeof(c->dir), "/tmp/comfysim-test-XXXXXX");
    assert_non_null(mkdtemp(c->dir));
    snprintf(portfile, sizeof(portfile), "%s/port", c->dir);
    snprintf(c->root, sizeof(c->root), "%s/data", c->dir);
    const char *fixed[] = {"comfysim", "--port", "0", "--port-file", portfile, "--root",
                           c->root,    "--seed", "1"};
    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
        argv[n++] = fixed[i];
    for (size_t i = 0; flags != NULL && flags[i] != NULL; i++) {
        assert_true(i < FLAGS_MAX);
        argv[n++] = flags[i];
    }
    argv[n] = NULL;
    c->pid = fork();
    assert_true(c->pid >= 0);
    if (c->pid == 0) {
        execv(getenv("COMFYSIM"), (char *const *)argv);
        _exit(127);
    }
    for (int i = 0; i < 1000 && c->port == 0; i++) {
        FILE *f = fopen(portfile, "r");
        if (f != NULL && fscanf(f, "%u", &c->port) != 1)
            c->port = 0;
        if (f != NULL)
            fclose(f);
        if (c->port == 0)
            usleep(10000);
    }
    assert_true(c->port > 0);
    return c;
}

void simt_child_free(struct simt_child *c)
{
    char cmd[160];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", c->dir);
    assert_int_equal(system(cmd), 0);
    free(c);
}

int simt_wait(struct simt_child *c)
{
    int status = 0;
    assert_true(c->pid > 0);
    assert_int_equal(waitpid(c->pid, &status, 0), c->pid);
    c->pid = 0;
    return status;
}

void simt_stop(struct simt_child *c)
{
    assert_int_equal(kill(c->pid, SIGTERM), 0);
    int status = simt_wait(c);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    simt_child_free(c);
}

long simt_rss_kib(pid_t pid)
{
    char path[64], line[256];
    long kib = -1;
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    while (f != NULL && fgets(line, sizeof(line), f) != NULL) {
        if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
            break;
    }
    if (f != NULL)
        fclose(f);
    return kib;
}

int simt_try_dial(unsigned port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct timeval tv = {10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        int err = errno;
        close(fd);
        return -err;
    }
    return fd;
}

int simt_dial(unsigned port)
{
    int fd = simt_try_dial(port);
    if (fd < 0)
        fprintf(stderr, "connect to port %u: %s\n", port, strerror(-fd));
    assert_true(fd >= 0);
    return fd;
}

void simt_send_all(int fd, const void *p, size_t n)
{
    assert_int_equal(send(fd, p, n, MSG_NOSIGNAL), (ssize_t)n);
}

struct simt_reply simt_request(unsigned port, const char *method, const char *path,
                               const char *headers, const char *body)
{
    struct simt_reply r = {0};
    size_t blen = body != NULL ? strlen(body) : 0;
    size_t cap = blen + 1024 + strlen(path) + (headers != NULL ? strlen(headers) : 0);
    char *req = malloc(cap);
    assert_non_null(req);
    int n = snprintf(req, cap,
                     "%s %s HTTP/1.1\r\nHost: 127.0.0.1:%u\r\nConnection: close\r\n%s"
                     "Content-Length: %zu\r\n\r\n%s",
                     method, path, port, headers != NULL ? headers : "", blen, body ? body : "");
    assert_true(n > 0 && (size_t)n < cap);
    int fd = simt_dial(port);
    simt_send_all(fd, req, (size_t)n);
    free(req);
    struct sim_buf in;
    sim_buf_init(&in, BODY_MAX);
    char tmp[65536];
    for (ssize_t k; (k = recv(fd, tmp, sizeof(tmp), 0)) > 0;)
        sim_buf_put(&in, tmp, (size_t)k);
    close(fd);
    assert_int_equal(in.err, 0);
    const char *sep = in.data != NULL ? memmem(in.data, in.len, "\r\n\r\n", 4) : NULL;
    assert_non_null(sep);
    size_t hl = (size_t)(sep - (const char *)in.data);
    memcpy(r.head, in.data, hl < sizeof(r.head) - 1 ? hl : sizeof(r.head) - 1);
    sscanf(r.head, "HTTP/1.1 %d", &r.status);
    r.len = in.len - hl - 4;
    r.body = malloc(r.len + 1);
    assert_non_null(r.body);
    memcpy(r.body, sep + 4, r.len);
    r.body[r.len] = 0;
    sim_buf_free(&in);
    return r;
}

char *simt_post_prompt(unsigned port, const json_t *body)
{
    char *text = sim_json_dumps(body, 1u << 20);
    assert_non_null(text);
    struct simt_reply r =
        simt_request(port, "POST", "/prompt", "Content-Type: application/json\r\n", text);
    free(text);
    if (r.status != 200)
        fprintf(stderr, "POST /prompt: %d %s\n", r.status, (char *)r.body);
    assert_int_equal(r.status, 200);
    json_error_t err;
    json_t *v = sim_json_loads((const char *)r.body, r.len, r.len + 1, &err);
    free(r.body);
    const char *id = json_string_value(json_object_get(v, "prompt_id"));
    assert_non_null(id);
    char *out = strdup(id);
    json_decref(v);
    return out;
}

json_t *simt_wait_history(unsigned port, const char *prompt_id)
{
    char path[256];
    snprintf(path, sizeof(path), "/history/%s", prompt_id);
    for (int i = 0; i < 6000; i++) {
        struct simt_reply r = simt_request(port, "GET", path, NULL, NULL);
        assert_int_equal(r.status, 200);
        json_error_t err;
        json_t *v = sim_json_loads((const char *)r.body, r.len, r.len + 1, &err);
        free(r.body);
        assert_non_null(v);
        json_t *entry = json_incref(json_object_get(v, prompt_id));
        json_decref(v);
        if (entry != NULL)
            return entry;
        usleep(10000);
    }
    fail_msg("prompt %s never reached /history", prompt_id);
    return NULL;
}

/* --- WebSocket client ------------------------------------------------------------------------ */

/* false at EOF or on a reset before `need` bytes are buffered. */
static bool wsc_fill(struct simt_wsc *w, size_t need)
{
    assert_true(need <= sizeof(w->buf));
    while (w->len < need) {
        ssize_t k = recv(w->fd, w->buf + w->len, sizeof(w->buf) - w->len, 0);
        if (k == 0 || (k < 0 && errno == ECONNRESET))
            return false;
        if (k < 0)
            fprintf(stderr, "WebSocket recv: %s\n", strerror(errno));
        assert_true(k > 0); /* a timeout is a failure, not an end */
        w->len += (size_t)k;
    }
    return true;
}

struct simt_wsc *simt_wsc_open(unsigned port, const char *path)
{
    struct simt_wsc *w = calloc(1, sizeof(*w));
    char req[512];
    assert_non_null(w);
    int n = snprintf(req, sizeof(req),
                     "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%u\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                     "Sec-WebSocket-Version: 13\r\n\r\n",
                     path, port);
    w->fd = simt_dial(port);
    simt_send_all(w->fd, req, (size_t)n);
    for (;;) {
        assert_true(wsc_fill(w, w->len + 1));
        uint8_t *end = memmem(w->buf, w->len, "\r\n\r\n", 4);
        if (end == NULL)
            continue;
        *end = 0;
        assert_non_null(strstr((char *)w->buf, " 101 "));
        assert_non_null(strstr((char *)w->buf, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")); /* RFC 6455 */
        size_t used = (size_t)(end + 4 - w->buf);
        memmove(w->buf, end + 4, w->len - used);
        w->len -= used;
        return w;
    }
}

json_t *simt_wsc_next(struct simt_wsc *w)
{
    if (!wsc_fill(w, 2))
        return NULL;
    size_t n = w->buf[1] & 127, hdr = 2;
    if (n == 126) {
        if (!wsc_fill(w, 4))
            return NULL;
        n = (size_t)w->buf[2] << 8 | w->buf[3];
        hdr = 4;
    } else if (n == 127) {
        if (!wsc_fill(w, 10))
            return NULL;
        n = 0;
        for (int i = 0; i < 8; i++)
            n = n << 8 | w->buf[2 + i];
        hdr = 10;
    }
    assert_true(hdr + n <= sizeof(w->buf));
    if (!wsc_fill(w, hdr + n))
        return NULL;
    int op = w->buf[0] & 15;
    json_error_t err;
    json_t *v;
    if (op == 1)
        v = sim_json_loads((const char *)w->buf + hdr, n, n + 1, &err);
    else if (op == 8)
        v = json_pack("{s:b}", "close", 1);
    else
        v = json_pack("{s:b, s:I}", "binary", 1, "len", (json_int_t)n);
    memmove(w->buf, w->buf + hdr + n, w->len - hdr - n);
    w->len -= hdr + n;
    assert_non_null(v);
    return v;
}

void simt_wsc_close(struct simt_wsc *w)
{
    close(w->fd);
    free(w);
}
