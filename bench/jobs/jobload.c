/* jobload — the load generator of bench/jobs/run.sh: keeps N jobs in flight, each one the whole
 * loop a client goes through, and reports jobs/s, latency percentiles and its own CPU use.
 *
 *   gateway:  POST /jobs {"workflowId":"smoke","inputs":{"color":K}} → 202 → wait for the final
 *             status (Server-Sent Events on /jobs/:id/events, or GET /jobs/:id polls) → GET the
 *             output file.
 *   comfyui:  straight to a ComfyUI (comfysim): POST /prompt with the graph the gateway renders
 *             for smoke → wait on the WebSocket (/ws?clientId=...) for the prompt's end → GET
 *             /history/:id → GET /view of the image. The same loop a ComfyUI client runs.
 *   submit:   POST /jobs only (filling a queue); the status code mix is reported.
 *
 * Every job has a distinct color input, so neither the gateway's result cache nor ComfyUI's node
 * cache can answer it. One thread, libcurl's multi interface for HTTP (keep-alive connections),
 * a hand-rolled WebSocket reader for ComfyUI events (Debian's libcurl 7.88 has no WebSocket).
 * Bench code, not part of the gateway: it favours being short over being general.
 *
 * Output: one line of key=value pairs on stdout (see report()). */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum mode { M_GATEWAY, M_COMFYUI, M_SUBMIT };
enum state { S_IDLE, S_SUBMIT, S_WAIT, S_POLL_SLEEP, S_HISTORY, S_FETCH };

struct buf {
    char *p;
    size_t n, cap;
};

struct slot {
    CURL *e;
    enum state st;
    struct buf body;
    char post[1024];
    char id[64];      /* job id (gateway) or prompt id (comfyui) */
    char url[1024];   /* what to download */
    uint64_t t0;      /* job start */
    uint64_t next_ns; /* poll: when to ask again */
    bool final_seen, final_ok;
    size_t sse_scan; /* bytes of body already scanned for events */
};

static struct {
    enum mode mode;
    const char *base; /* http://127.0.0.1:PORT */
    int conc;
    double warmup_s, duration_s, drain_s;
    long jobs, warmup_jobs; /* count mode (jobs > 0) instead of a time window */
    long color;             /* next color input */
    bool poll;
    int poll_ms;
    int width;
    /* state */
    CURLM *m;
    struct slot *slots;
    struct curl_slist *json_hdr;
    uint64_t t_start, t_measure, t_end;
    long started, done_total, done_window, errors;
    long status_count[600];
    double *lat;
    size_t nlat, lat_cap;
    struct rusage ru0;
    uint64_t cpu_wall0;
    bool window_open, window_closed;
    double cpu_pct;
    double window_s;
    int stuck; /* jobs not finished when the drain time ran out */
    /* WebSocket (comfyui mode) */
    int ws_fd;
    struct buf ws_in;
    char client_id[64];
    char **early; /* prompt ids finished before their POST answer came back */
    size_t nearly;
} g;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void die(const char *what)
{
    fprintf(stderr, "jobload: %s\n", what);
    exit(1);
}

static void buf_add(struct buf *b, const void *p, size_t n)
{
    if (b->n + n + 1 > b->cap) {
        size_t nc = b->cap ? b->cap * 2 : 4096;
        while (nc < b->n + n + 1)
            nc *= 2;
        b->p = realloc(b->p, nc);
        if (!b->p)
            die("out of memory");
        b->cap = nc;
    }
    memcpy(b->p + b->n, p, n);
    b->n += n;
    b->p[b->n] = '\0';
}

static void lat_add(double ms)
{
    if (g.nlat == g.lat_cap) {
        g.lat_cap = g.lat_cap ? g.lat_cap * 2 : 4096;
        g.lat = realloc(g.lat, g.lat_cap * sizeof(*g.lat));
        if (!g.lat)
            die("out of memory");
    }
    g.lat[g.nlat++] = ms;
}

/* --- HTTP ---------------------------------------------------------------------------------- */

static size_t write_cb(char *p, size_t sz, size_t n, void *ud)
{
    struct slot *s = ud;
    buf_add(&s->body, p, sz * n);
    return sz * n;
}

static size_t discard_cb(char *p, size_t sz, size_t n, void *ud)
{
    (void)p;
    (void)ud;
    return sz * n;
}

typedef size_t (*write_fn)(char *p, size_t sz, size_t n, void *ud);

static void start_http(struct slot *s, const char *url, const char *post, write_fn wfn)
{
    CURL *e = s->e;
    s->body.n = 0;
    if (s->body.p)
        s->body.p[0] = '\0';
    s->sse_scan = 0;
    curl_easy_setopt(e, CURLOPT_URL, url);
    if (post) {
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, post);
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)strlen(post));
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, g.json_hdr);
    } else {
        curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, NULL);
    }
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, wfn);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, s);
    /* an output under STORAGE_PROVIDER=s3 is a redirect to the object: fetch it from there */
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, s->st == S_FETCH ? 1L : 0L);
    if (curl_multi_add_handle(g.m, e) != CURLM_OK)
        die("curl_multi_add_handle");
}

/* --- jobs ---------------------------------------------------------------------------------- */

static void slot_start(struct slot *s);

static const char *const state_names[] = {"idle",       "submit",  "wait",
                                          "poll-sleep", "history", "fetch"};

static void job_end(struct slot *s, bool ok)
{
    uint64_t t = now_ns();
    if (!ok) {
        if (g.errors < 5 && g.mode != M_SUBMIT) { /* a few samples, to see what went wrong */
            long code = 0;
            curl_easy_getinfo(s->e, CURLINFO_RESPONSE_CODE, &code);
            fprintf(stderr, "jobload: job %s failed in %s (HTTP %ld): %.300s\n", s->id,
                    state_names[s->st], code, s->body.p ? s->body.p : "");
        }
        g.errors++;
    } else {
        g.done_total++;
        if (g.window_open && !g.window_closed) {
            g.done_window++;          /* throughput: every completion inside the window */
            if (s->t0 >= g.t_measure) /* latency: only jobs wholly inside it */
                lat_add((double)(t - s->t0) / 1e6);
        }
    }
    s->st = S_IDLE;
}

static void sim_graph(char *out, size_t len, long color, long n)
{
    /* what the gateway renders for smoke (see workflows/smoke.json and comfy_graph_set_prefix) */
    snprintf(out, len,
             "{\"prompt\":{\"1\":{\"class_type\":\"EmptyImage\",\"inputs\":{\"width\":%d,"
             "\"height\":64,\"batch_size\":1,\"color\":%ld}},\"2\":{\"class_type\":\"SaveImage\","
             "\"inputs\":{\"images\":[\"1\",0],\"filename_prefix\":"
             "\"comfygate/bench-%08ld-0000-0000-0000-000000000000/2\"}}},\"client_id\":\"%s\"}",
             g.width, color, n, g.client_id);
}

static void slot_start(struct slot *s)
{
    char url[1200];
    long color = g.color++;
    s->t0 = now_ns();
    s->final_seen = s->final_ok = false;
    s->id[0] = '\0';
    g.started++;
    s->st = S_SUBMIT;
    if (g.mode == M_COMFYUI) {
        sim_graph(s->post, sizeof(s->post), color & 0xffffff, g.started);
        snprintf(url, sizeof(url), "%s/prompt", g.base);
    } else {
        snprintf(s->post, sizeof(s->post),
                 "{\"workflowId\":\"smoke\",\"inputs\":{\"color\":%ld,\"width\":%d}}",
                 color & 0xffffff, g.width);
        snprintf(url, sizeof(url), "%s/jobs", g.base);
    }
    start_http(s, url, s->post, write_cb);
}

static void fetch(struct slot *s, const char *path)
{
    char p[sizeof(s->url)];
    snprintf(p, sizeof(p), "%s", path); /* path may be s->url itself */
    snprintf(s->url, sizeof(s->url), "%s%s", g.base, p);
    s->st = S_FETCH;
    start_http(s, s->url, NULL, discard_cb);
}

static size_t sse_write_cb(char *p, size_t sz, size_t n, void *ud);

static void wait_gateway(struct slot *s)
{
    char url[1200];
    snprintf(url, sizeof(url), "%s/jobs/%s%s", g.base, s->id, g.poll ? "" : "/events");
    s->st = S_WAIT;
    start_http(s, url, NULL, g.poll ? write_cb : sse_write_cb);
}

/* A job's JSON (GET /jobs/:id or an SSE status event): final? and its first output's URL. */
static void job_json(struct slot *s, json_t *j)
{
    const char *st = json_string_value(json_object_get(j, "status"));
    if (!st || !strcmp(st, "queued") || !strcmp(st, "running"))
        return;
    s->final_seen = true;
    s->final_ok = !strcmp(st, "succeeded");
    const char *u =
        json_string_value(json_object_get(json_array_get(json_object_get(j, "outputs"), 0), "url"));
    if (!u)
        s->final_ok = false;
    else
        snprintf(s->url, sizeof(s->url), "%s", u);
}

/* Scans newly arrived SSE bytes for complete events; only "status" matters here. */
static void sse_scan(struct slot *s)
{
    for (;;) {
        char *start = s->body.p + s->sse_scan;
        char *end = strstr(start, "\n\n");
        if (!end)
            return;
        *end = '\0';
        if (!strncmp(start, "event: status\ndata: ", 20)) {
            json_t *j = json_loads(start + 20, 0, NULL);
            if (j)
                job_json(s, j);
            json_decref(j);
        }
        *end = '\n';
        s->sse_scan = (size_t)(end - s->body.p) + 2;
    }
}

static size_t sse_write_cb(char *p, size_t sz, size_t n, void *ud)
{
    struct slot *s = ud;
    buf_add(&s->body, p, sz * n);
    sse_scan(s);
    return sz * n;
}

static bool early_take(const char *id)
{
    for (size_t i = 0; i < g.nearly; i++) {
        if (!strcmp(g.early[i], id)) {
            free(g.early[i]);
            g.early[i] = g.early[--g.nearly];
            return true;
        }
    }
    return false;
}

static void history(struct slot *s)
{
    char url[1200];
    snprintf(url, sizeof(url), "%s/history/%s", g.base, s->id);
    s->st = S_HISTORY;
    start_http(s, url, NULL, write_cb);
}

/* /history/:id → the first image's /view URL. */
static bool history_view(struct slot *s, json_t *h)
{
    json_t *outs = json_object_get(json_object_get(h, s->id), "outputs");
    const char *node;
    json_t *o;
    json_object_foreach(outs, node, o)
    {
        json_t *img = json_array_get(json_object_get(o, "images"), 0);
        const char *fn = json_string_value(json_object_get(img, "filename"));
        const char *sf = json_string_value(json_object_get(img, "subfolder"));
        const char *ty = json_string_value(json_object_get(img, "type"));
        if (!fn)
            continue;
        char *efn = curl_easy_escape(s->e, fn, 0), *esf = curl_easy_escape(s->e, sf ? sf : "", 0);
        char path[900];
        snprintf(path, sizeof(path), "/view?filename=%s&subfolder=%s&type=%s", efn, esf,
                 ty ? ty : "output");
        curl_free(efn);
        curl_free(esf);
        fetch(s, path);
        return true;
    }
    return false;
}

static void http_done(struct slot *s, CURLcode rc)
{
    long code = 0;
    curl_easy_getinfo(s->e, CURLINFO_RESPONSE_CODE, &code);
    curl_multi_remove_handle(g.m, s->e);
    if (rc != CURLE_OK) {
        fprintf(stderr, "jobload: %s\n", curl_easy_strerror(rc));
        return job_end(s, false);
    }
    if (code > 0 && code < 600)
        g.status_count[code]++;
    json_t *j = NULL;
    switch (s->st) {
    case S_SUBMIT:
        if (g.mode == M_SUBMIT)
            return job_end(s, code == 202);
        if (code != 200 && code != 202)
            return job_end(s, false);
        j = json_loads(s->body.p ? s->body.p : "", 0, NULL);
        const char *id =
            json_string_value(json_object_get(j, g.mode == M_COMFYUI ? "prompt_id" : "jobId"));
        snprintf(s->id, sizeof(s->id), "%s", id ? id : "");
        json_decref(j);
        if (!s->id[0])
            return job_end(s, false);
        if (g.mode == M_COMFYUI) {
            s->st = S_WAIT;
            if (early_take(s->id))
                history(s);
            return;
        }
        wait_gateway(s);
        return;
    case S_WAIT: /* gateway: the SSE stream ended, or a poll answered */
        if (g.poll && code == 200) {
            j = json_loads(s->body.p ? s->body.p : "", 0, NULL);
            if (j)
                job_json(s, j);
            json_decref(j);
            if (!s->final_seen) {
                s->st = S_POLL_SLEEP;
                s->next_ns = now_ns() + (uint64_t)g.poll_ms * 1000000ull;
                return;
            }
        }
        if (!s->final_seen || !s->final_ok)
            return job_end(s, false);
        return fetch(s, s->url);
    case S_HISTORY:
        j = code == 200 ? json_loads(s->body.p ? s->body.p : "", 0, NULL) : NULL;
        bool ok = j && history_view(s, j);
        json_decref(j);
        if (!ok)
            job_end(s, false);
        return;
    case S_FETCH:
        return job_end(s, code == 200);
    default:
        return job_end(s, false);
    }
}

/* --- ComfyUI WebSocket --------------------------------------------------------------------- */

static void ws_connect(void)
{
    const char *hp = strstr(g.base, "://");
    hp = hp ? hp + 3 : g.base;
    const char *colon = strrchr(hp, ':');
    if (!colon)
        die("--url needs a port");
    int port = atoi(colon + 1);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    g.ws_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(g.ws_fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (g.ws_fd < 0 || connect(g.ws_fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
        die("cannot connect the WebSocket");
    char req[512];
    int n = snprintf(req, sizeof(req),
                     "GET /ws?clientId=%s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                     "Sec-WebSocket-Version: 13\r\n\r\n",
                     g.client_id, port);
    if (write(g.ws_fd, req, (size_t)n) != n)
        die("WebSocket handshake");
    char head[4096];
    size_t hl = 0;
    char *eoh = NULL;
    while (!eoh) {
        ssize_t r = read(g.ws_fd, head + hl, sizeof(head) - 1 - hl);
        if (r <= 0)
            die("WebSocket handshake");
        hl += (size_t)r;
        head[hl] = '\0';
        eoh = strstr(head, "\r\n\r\n");
        if (!eoh && hl == sizeof(head) - 1)
            die("WebSocket handshake");
    }
    if (strncmp(head, "HTTP/1.1 101", 12) != 0)
        die("WebSocket handshake refused");
    eoh += 4;
    buf_add(&g.ws_in, eoh, hl - (size_t)(eoh - head)); /* frames right behind the head */
    fcntl(g.ws_fd, F_SETFL, fcntl(g.ws_fd, F_GETFL) | O_NONBLOCK);
}

static void prompt_finished(const char *pid)
{
    for (int i = 0; i < g.conc; i++) {
        struct slot *s = &g.slots[i];
        if (s->st == S_WAIT && !strcmp(s->id, pid))
            return history(s);
    }
    /* before the POST /prompt answer: remember it (bounded by the prompts in flight) */
    g.early = realloc(g.early, (g.nearly + 1) * sizeof(*g.early));
    g.early[g.nearly++] = strdup(pid);
}

static void ws_text(const char *p, size_t n)
{
    json_t *j = json_loadb(p, n, 0, NULL);
    const char *type = json_string_value(json_object_get(j, "type"));
    json_t *d = json_object_get(j, "data");
    const char *pid = json_string_value(json_object_get(d, "prompt_id"));
    /* ComfyUI's end of a prompt: "executing" with node null (after execution_success);
     * errors and interrupts end it too (the /history step then fails the job) */
    if (type && pid &&
        ((!strcmp(type, "executing") && json_is_null(json_object_get(d, "node"))) ||
         !strcmp(type, "execution_error") || !strcmp(type, "execution_interrupted")))
        prompt_finished(pid);
    json_decref(j);
}

static void ws_read(void)
{
    char tmp[65536];
    for (;;) {
        ssize_t r = read(g.ws_fd, tmp, sizeof(tmp));
        if (r == 0)
            die("WebSocket closed by the server");
        if (r < 0) {
            if (errno == EAGAIN)
                break;
            die("WebSocket read");
        }
        buf_add(&g.ws_in, tmp, (size_t)r);
    }
    size_t off = 0;
    for (;;) {
        unsigned char *f = (unsigned char *)g.ws_in.p + off;
        size_t avail = g.ws_in.n - off;
        if (avail < 2)
            break;
        size_t hl = 2;
        uint64_t len = f[1] & 0x7f;
        if (len == 126) {
            if (avail < 4)
                break;
            len = (uint64_t)f[2] << 8 | f[3];
            hl = 4;
        } else if (len == 127) {
            if (avail < 10)
                break;
            len = 0;
            for (int i = 0; i < 8; i++)
                len = len << 8 | f[2 + i];
            hl = 10;
        }
        if (avail < hl + len)
            break;
        int op = f[0] & 0x0f;
        if (op == 1)
            ws_text((const char *)f + hl, (size_t)len);
        else if (op == 8)
            die("WebSocket closed by the server");
        else if (op == 9) { /* ping → pong (client frames are masked; a zero mask) */
            unsigned char pong[6] = {0x8a, 0x80, 0, 0, 0, 0};
            if (len == 0 && write(g.ws_fd, pong, sizeof(pong)) < 0)
                die("WebSocket pong");
        }
        off += hl + (size_t)len;
    }
    memmove(g.ws_in.p, g.ws_in.p + off, g.ws_in.n - off);
    g.ws_in.n -= off;
}

/* --- the loop ------------------------------------------------------------------------------ */

static void cpu_mark(struct rusage *ru)
{
    getrusage(RUSAGE_SELF, ru);
}

static double ru_s(const struct rusage *ru)
{
    return (double)ru->ru_utime.tv_sec + ru->ru_utime.tv_usec / 1e6 + ru->ru_stime.tv_sec +
           ru->ru_stime.tv_usec / 1e6;
}

static bool want_more(uint64_t t)
{
    if (g.jobs > 0)
        return g.started < g.jobs + g.warmup_jobs;
    return t < g.t_end;
}

static void window_tick(uint64_t t)
{
    if (!g.window_open) {
        bool open = g.jobs > 0 ? g.done_total + g.errors >= g.warmup_jobs : t >= g.t_measure;
        if (open) {
            g.window_open = true;
            g.t_measure = t;
            cpu_mark(&g.ru0);
            g.cpu_wall0 = t;
        }
    }
}

static void window_close(uint64_t t)
{
    if (!g.window_open || g.window_closed)
        return;
    g.window_closed = true;
    struct rusage ru1;
    cpu_mark(&ru1);
    g.window_s = (double)(t - g.t_measure) / 1e9;
    g.cpu_pct = g.window_s > 0 ? (ru_s(&ru1) - ru_s(&g.ru0)) / g.window_s * 100 : 0;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double pct(double p)
{
    if (!g.nlat)
        return 0;
    size_t i = (size_t)(p / 100 * (double)(g.nlat - 1) + 0.5);
    return g.lat[i];
}

static void report(void)
{
    qsort(g.lat, g.nlat, sizeof(*g.lat), cmp_d);
    double mean = 0;
    for (size_t i = 0; i < g.nlat; i++)
        mean += g.lat[i];
    mean = g.nlat ? mean / (double)g.nlat : 0;
    printf("jobs=%ld jobs_all=%ld secs=%.3f jobs_per_s=%.1f p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f "
           "mean_ms=%.3f max_ms=%.3f errors=%ld stuck=%d client_cpu_pct=%.1f codes=",
           g.done_window, g.done_total, g.window_s,
           g.window_s > 0 ? (double)g.done_window / g.window_s : 0, pct(50), pct(90), pct(99), mean,
           g.nlat ? g.lat[g.nlat - 1] : 0, g.errors, g.stuck, g.cpu_pct);
    bool first = true;
    for (int c = 0; c < 600; c++) {
        if (g.status_count[c]) {
            printf("%s%d:%ld", first ? "" : ",", c, g.status_count[c]);
            first = false;
        }
    }
    printf("%s\n", first ? "none" : "");
}

static void usage(void)
{
    fprintf(stderr,
            "usage: jobload --mode gateway|comfyui|submit --url http://127.0.0.1:PORT\n"
            "  [--conc N] [--duration S --warmup S | --jobs N --warmup-jobs N] [--color-base K]\n"
            "  [--poll-ms MS (gateway: poll GET /jobs/:id instead of SSE)] [--width W]\n"
            "  [--drain S]\n");
    exit(2);
}

static void parse(int argc, char **argv)
{
    static const struct option opts[] = {
        {"mode", 1, 0, 'm'},        {"url", 1, 0, 'u'},        {"conc", 1, 0, 'c'},
        {"duration", 1, 0, 'd'},    {"warmup", 1, 0, 'w'},     {"jobs", 1, 0, 'n'},
        {"warmup-jobs", 1, 0, 'W'}, {"color-base", 1, 0, 'k'}, {"poll-ms", 1, 0, 'p'},
        {"width", 1, 0, 'x'},       {"drain", 1, 0, 'D'},      {0, 0, 0, 0}};
    g.conc = 1;
    g.duration_s = 5;
    g.drain_s = 30;
    g.width = 64;
    int o;
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (o) {
        case 'm':
            g.mode = !strcmp(optarg, "gateway")   ? M_GATEWAY
                     : !strcmp(optarg, "comfyui") ? M_COMFYUI
                     : !strcmp(optarg, "submit")  ? M_SUBMIT
                                                  : (usage(), M_GATEWAY);
            break;
        case 'u':
            g.base = optarg;
            break;
        case 'c':
            g.conc = atoi(optarg);
            break;
        case 'd':
            g.duration_s = atof(optarg);
            break;
        case 'w':
            g.warmup_s = atof(optarg);
            break;
        case 'n':
            g.jobs = atol(optarg);
            break;
        case 'W':
            g.warmup_jobs = atol(optarg);
            break;
        case 'k':
            g.color = atol(optarg);
            break;
        case 'p':
            g.poll = true;
            g.poll_ms = atoi(optarg);
            break;
        case 'x':
            g.width = atoi(optarg);
            break;
        case 'D':
            g.drain_s = atof(optarg);
            break;
        default:
            usage();
        }
    }
    if (!g.base || g.conc < 1 || g.conc > 10000)
        usage();
}

int main(int argc, char **argv)
{
    parse(argc, argv);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    g.m = curl_multi_init();
    curl_multi_setopt(g.m, CURLMOPT_MAXCONNECTS, (long)g.conc * 2 + 8);
    g.json_hdr = curl_slist_append(NULL, "Content-Type: application/json");
    g.json_hdr = curl_slist_append(g.json_hdr, "Expect:");
    g.slots = calloc((size_t)g.conc, sizeof(*g.slots));
    for (int i = 0; i < g.conc; i++) {
        CURL *e = curl_easy_init();
        curl_easy_setopt(e, CURLOPT_PRIVATE, &g.slots[i]);
        curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
        curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(e, CURLOPT_TIMEOUT, 120L);
        g.slots[i].e = e;
    }
    g.ws_fd = -1;
    if (g.mode == M_COMFYUI) {
        snprintf(g.client_id, sizeof(g.client_id), "jobload-%d-%ld", getpid(), (long)time(NULL));
        ws_connect();
    }
    g.t_start = now_ns();
    g.t_measure = g.t_start + (uint64_t)(g.warmup_s * 1e9);
    g.t_end = g.t_measure + (uint64_t)(g.duration_s * 1e9);
    uint64_t drain_until = 0;
    for (;;) {
        int running;
        curl_multi_perform(g.m, &running);
        CURLMsg *msg;
        int q;
        while ((msg = curl_multi_info_read(g.m, &q))) {
            if (msg->msg != CURLMSG_DONE)
                continue;
            struct slot *s;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&s);
            http_done(s, msg->data.result);
        }
        if (g.ws_fd >= 0)
            ws_read();
        uint64_t t = now_ns();
        window_tick(t);
        bool more = want_more(t);
        if (!more) {
            if (g.jobs == 0) /* a time window ends on time; a count ends with its last job */
                window_close(t);
            if (!drain_until)
                drain_until = t + (uint64_t)(g.drain_s * 1e9);
        }
        int busy = 0, timeout_ms = 50;
        bool started = false;
        for (int i = 0; i < g.conc; i++) {
            struct slot *s = &g.slots[i];
            if (s->st == S_POLL_SLEEP && t >= s->next_ns) {
                wait_gateway(s);
                started = true;
            }
            if (s->st == S_POLL_SLEEP) {
                int w = (int)((s->next_ns - t + 999999) / 1000000);
                timeout_ms = w < timeout_ms ? w : timeout_ms;
            }
            if (s->st == S_IDLE && more && want_more(t)) {
                slot_start(s);
                started = true;
            }
            busy += s->st != S_IDLE;
        }
        if (!busy && !more)
            break;
        if (drain_until && t > drain_until) {
            fprintf(stderr, "jobload: %d jobs still in flight after the drain time\n", busy);
            g.stuck = busy;
            break;
        }
        if (started)
            continue; /* let curl send them at once */
        struct curl_waitfd wfd = {.fd = g.ws_fd, .events = CURL_WAIT_POLLIN};
        curl_multi_poll(g.m, g.ws_fd >= 0 ? &wfd : NULL, g.ws_fd >= 0 ? 1 : 0, timeout_ms, NULL);
    }
    window_close(now_ns());
    report();
    return 0;
}
