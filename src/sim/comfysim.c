/*
 * comfysim — a stand-in ComfyUI 0.8.0 server for tests and benchmarks of the gateway.
 *
 * One reactor thread (ring + http_server) serves ComfyUI's HTTP API and /ws from sim_server;
 * the main thread only parses flags, opens the data folder and the listening socket, and waits
 * for SIGINT/SIGTERM. Node durations, model files, node classes and faults are flags, so a
 * fleet of comfysims can look like different real backends.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>

#include "core/log.h"
#include "http/http_server.h"
#include "ring/ring.h"
#include "sim/sim_server.h"

#define MAX_PIXELS_MAX (1ull << 32) /* --max-pixels: 65536 x 65536 */
#define VIEW_DELAY_MAX_MS 3600000u  /* --view-delay-ms: an hour */

struct comfysim {
    struct sim_server_config cfg;
    const char *port_file;
    int log_level;
    struct sim_server *server;
    struct http_router router;
    struct http_server_config hcfg;
    struct logger log;
    struct ring ring;
    struct http_server *http;
    struct ring_msg stop_msg;
    int lfd;
    atomic_int state; /* 0 starting, 1 running, -1 failed */
    pthread_t thread;
};

static void usage(FILE *f)
{
    fprintf(f,
            "usage: comfysim [options]\n"
            "  --port N            TCP port (default 8188; 0 picks one)\n"
            "  --listen ADDR       address to bind (default 127.0.0.1)\n"
            "  --root DIR          data folder with input/ output/ temp/ (default ./comfysim)\n"
            "  --exec-ms N         simulated time per executed node (default 0)\n"
            "  --step-ms N         simulated time per sampler step / upscale tile (default 0)\n"
            "  --models SPEC       model files: checkpoints=a.safetensors,b.ckpt;loras=x\n"
            "  --nodes LIST        node classes to offer, comma-separated (default all)\n"
            "  --fault KIND        oom | exception | hang | crash | ws-drop, injected into every\n"
            "                      prompt when its node starts: crash exits with status 3,\n"
            "                      no cleanup; ws-drop cuts every WebSocket (no close frame)\n"
            "                      and the prompt runs on\n"
            "  --fault-class NAME  node class the fault hits (default KSampler)\n"
            "  --fault-times N     the fault hits only the first N prompts reaching that node\n"
            "                      (default 0: every prompt)\n"
            "  --max-pixels N      largest image (pixels) a node may make, 1..4294967296\n"
            "                      (default 16777216)\n"
            "  --png-level N       zlib level 0..9 of SaveImage files (default 4, as ComfyUI)\n"
            "  --view-delay-ms N   hold every /view answer back N ms, 0..3600000 (default 0)\n"
            "  --refuse-after N    after N accepted prompts stop listening and close every\n"
            "                      connection; the process keeps running (default 0: never)\n"
            "  --max-clients N     WebSocket clients (default 256)\n"
            "  --vram-mb N         report a CUDA device with this much VRAM (default: CPU)\n"
            "  --seed N            seed for prompt ids and preview names (default: random)\n"
            "  --port-file PATH    write the bound port there once listening\n"
            "  --log-level LEVEL   debug | info | warn | error | off (default warn)\n");
}

static uint64_t parse_u64(const char *s, const char *flag)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || end == s || *end != 0 || s[0] == '-') {
        fprintf(stderr, "comfysim: %s wants a number, not '%s'\n", flag, s);
        exit(2);
    }
    return v;
}

/* A number within [min, max], or a message and exit 2. */
static uint64_t parse_range(const char *s, const char *flag, uint64_t min, uint64_t max)
{
    uint64_t v = parse_u64(s, flag);
    if (v < min || v > max) {
        fprintf(stderr, "comfysim: %s wants %" PRIu64 "..%" PRIu64 ", not '%s'\n", flag, min, max,
                s);
        exit(2);
    }
    return v;
}

static uint64_t random_seed(void)
{
    uint64_t seed = 0;
    FILE *f = fopen("/dev/urandom", "rb");
    if (f == NULL || fread(&seed, sizeof(seed), 1, f) != 1)
        seed = (uint64_t)time(NULL) ^ (uint64_t)getpid() << 32;
    if (f != NULL)
        fclose(f);
    return seed;
}

static void apply_flag(struct comfysim *cs, int o, const char *value)
{
    struct sim_server_config *c = &cs->cfg;
    switch (o) {
    case 'p':
        c->port = (unsigned)parse_u64(value, "--port");
        break;
    case 'l':
        c->listen = value;
        break;
    case 'r':
        c->root = value;
        break;
    case 'e':
        c->exec_ms = (int64_t)parse_u64(value, "--exec-ms");
        break;
    case 's':
        c->step_ms = (int64_t)parse_u64(value, "--step-ms");
        break;
    case 'm':
        c->nodes.models = value;
        break;
    case 'n':
        c->nodes.classes = value;
        break;
    case 'c':
        c->fault_class = value;
        break;
    case 'x':
        /* bounded so that pixels * channels * sizeof(float) cannot overflow */
        c->max_pixels = parse_range(value, "--max-pixels", 1, MAX_PIXELS_MAX);
        break;
    case 't':
        c->fault_times = parse_u64(value, "--fault-times");
        break;
    case 'z':
        c->png_level = SIM_PNG_LEVEL((int)parse_range(value, "--png-level", 0, 9));
        break;
    case 'd':
        c->view_delay_ms = (uint32_t)parse_range(value, "--view-delay-ms", 0, VIEW_DELAY_MAX_MS);
        break;
    case 'R':
        c->refuse_after = parse_u64(value, "--refuse-after");
        break;
    case 'k':
        c->max_clients = (size_t)parse_u64(value, "--max-clients");
        break;
    case 'v':
        c->vram_mb = parse_u64(value, "--vram-mb");
        break;
    case 'S':
        c->seed = parse_u64(value, "--seed");
        break;
    case 'P':
        cs->port_file = value;
        break;
    case 'f':
        if (!sim_fault_parse(value, &c->fault)) {
            fprintf(stderr, "comfysim: --fault is oom, exception, hang, crash, ws-drop or none\n");
            exit(2);
        }
        break;
    case 'L':
        cs->log_level = log_level_parse(value);
        if (cs->log_level < 0) {
            fprintf(stderr, "comfysim: bad --log-level\n");
            exit(2);
        }
        break;
    case 'h':
        usage(stdout);
        exit(0);
    default:
        usage(stderr);
        exit(2);
    }
}

static void parse_flags(struct comfysim *cs, int argc, char **argv)
{
    static const struct option opts[] = {
        {"port", 1, 0, 'p'},         {"listen", 1, 0, 'l'},     {"root", 1, 0, 'r'},
        {"exec-ms", 1, 0, 'e'},      {"step-ms", 1, 0, 's'},    {"models", 1, 0, 'm'},
        {"nodes", 1, 0, 'n'},        {"fault", 1, 0, 'f'},      {"fault-class", 1, 0, 'c'},
        {"fault-times", 1, 0, 't'},  {"png-level", 1, 0, 'z'},  {"view-delay-ms", 1, 0, 'd'},
        {"refuse-after", 1, 0, 'R'}, {"max-pixels", 1, 0, 'x'}, {"max-clients", 1, 0, 'k'},
        {"vram-mb", 1, 0, 'v'},      {"seed", 1, 0, 'S'},       {"port-file", 1, 0, 'P'},
        {"log-level", 1, 0, 'L'},    {"help", 0, 0, 'h'},       {0, 0, 0, 0}};
    struct sim_server_config *c = &cs->cfg;
    c->port = 8188;
    c->listen = "127.0.0.1";
    c->root = "comfysim";
    c->seed = random_seed();
    cs->log_level = LOG_WARN;
    for (int o; (o = getopt_long(argc, argv, "h", opts, NULL)) != -1;) {
        apply_flag(cs, o, optarg);
    }
}

static int listen_socket(struct comfysim *cs)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *ai = NULL;
    char port[16];
    snprintf(port, sizeof(port), "%u", cs->cfg.port);
    if (getaddrinfo(cs->cfg.listen, port, &hints, &ai) != 0) {
        fprintf(stderr, "comfysim: cannot resolve %s\n", cs->cfg.listen);
        return -1;
    }
    int one = 1, fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd >= 0)
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (fd < 0 || bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 1024) < 0) {
        fprintf(stderr, "comfysim: cannot listen on %s:%u: %s\n", cs->cfg.listen, cs->cfg.port,
                strerror(errno));
        if (fd >= 0)
            close(fd);
        freeaddrinfo(ai);
        return -1;
    }
    freeaddrinfo(ai);
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    getsockname(fd, (struct sockaddr *)&ss, &sl);
    cs->cfg.port = ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                                            : ntohs(((struct sockaddr_in *)&ss)->sin_port);
    return fd;
}

static void http_defaults(struct http_server_config *h)
{
    memset(h, 0, sizeof(*h));
    h->limits = (struct http_limits){8192, 65536, 100, 256u << 20};
    h->header_timeout_ms = 30000;
    h->body_timeout_ms = 120000;
    h->idle_timeout_ms = 120000;
    h->send_timeout_ms = 60000;
    h->linger_ms = 1000;
    h->shutdown_timeout_ms = 5000;
    h->max_conns = 4096;
    h->max_out_bytes = 64u << 20;
    h->pipe_size = 1u << 20;
    h->server_name = "Python/3.11 aiohttp/3.8.4"; /* what the recorded server sent */
}

static void stop_cb(struct ring *r, struct ring_msg *m)
{
    struct comfysim *cs = r->user;
    (void)m;
    sim_server_close_clients(cs->server);
    http_server_shutdown(cs->http);
    ring_stop(r);
}

static bool reactor_done(struct ring *r)
{
    struct comfysim *cs = r->user;
    return http_server_drained(cs->http);
}

static void *reactor_main(void *arg)
{
    struct comfysim *cs = arg;
    struct ring_config rc = {
        .sq_entries = 1024, .buf_count = 1024, .buf_size = 16384, .max_timers = 2 * 4096 + 64};
    log_init(&cs->log, STDOUT_FILENO, (enum log_level)cs->log_level, 0);
    int err = ring_init(&cs->ring, &rc, 0);
    if (err == 0) {
        cs->ring.user = cs;
        err = http_server_new(&cs->http, &cs->ring, &cs->log, &cs->hcfg, &cs->router, cs->lfd,
                              cs->server);
    }
    if (err != 0) {
        fprintf(stderr, "comfysim: cannot start: %s\n", strerror(-err));
        atomic_store(&cs->state, -1);
        return NULL;
    }
    sim_server_attach(cs->server, &cs->ring, cs->http);
    cs->stop_msg.cb = stop_cb;
    atomic_store(&cs->state, 1);
    ring_run(&cs->ring, reactor_done);
    http_server_free(cs->http);
    sim_server_free(cs->server); /* its timer lives on this ring */
    cs->server = NULL;
    log_flush(&cs->log);
    ring_fini(&cs->ring);
    return NULL;
}

static int write_port_file(const char *path, unsigned port)
{
    char tmp[4096];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (f == NULL)
        return -1;
    fprintf(f, "%u\n", port);
    return fclose(f) == 0 ? rename(tmp, path) : -1;
}

static int start(struct comfysim *cs)
{
    if (sim_server_new(&cs->server, &cs->cfg) != 0) {
        fprintf(stderr, "comfysim: %s\n", cs->server != NULL ? cs->server->err : "out of memory");
        return -1;
    }
    http_router_init(&cs->router);
    if (sim_server_routes(cs->server, &cs->router) != 0 || (cs->lfd = listen_socket(cs)) < 0)
        return -1;
    cs->server->cfg.port = cs->cfg.port;
    http_defaults(&cs->hcfg);
    if (pthread_create(&cs->thread, NULL, reactor_main, cs) != 0)
        return -1;
    while (atomic_load(&cs->state) == 0)
        usleep(1000);
    if (atomic_load(&cs->state) < 0) {
        pthread_join(cs->thread, NULL);
        return -1;
    }
    if (cs->port_file != NULL && write_port_file(cs->port_file, cs->cfg.port) != 0)
        fprintf(stderr, "comfysim: cannot write %s\n", cs->port_file);
    fprintf(stderr, "comfysim: listening on %s:%u (data in %s)\n", cs->cfg.listen, cs->cfg.port,
            cs->cfg.root);
    return 0;
}

static int run(struct comfysim *cs)
{
    sigset_t set;
    signal(SIGPIPE, SIG_IGN);
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL); /* the reactor thread inherits the mask */
    cs->lfd = -1;
    int rc = start(cs);
    if (rc == 0) {
        int sig;
        sigwait(&set, &sig);
        ring_post(&cs->ring, &cs->stop_msg);
        pthread_join(cs->thread, NULL);
    }
    if (cs->lfd >= 0)
        close(cs->lfd);
    sim_server_free(cs->server);
    http_router_free(&cs->router);
    return rc == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
    /* on the heap: the logger alone holds a 64 KiB buffer */
    struct comfysim *cs = calloc(1, sizeof(*cs));
    if (cs == NULL)
        return 1;
    parse_flags(cs, argc, argv);
    int rc = run(cs);
    free(cs);
    return rc;
}
