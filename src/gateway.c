/* gateway — see gateway.h. */
#include "gateway.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/api.h"
#include "tls/tls.h"

static int listen_socket(const struct config *cfg, unsigned port, unsigned *bound, FILE *err)
{
    struct addrinfo hints, *ai = NULL;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    char ps[16];
    snprintf(ps, sizeof(ps), "%u", port);
    int rc = getaddrinfo(cfg->host[0] ? cfg->host : NULL, ps, &hints, &ai);
    if (rc != 0) {
        fprintf(err, "comfygate: cannot resolve HOST %s: %s\n", cfg->host, gai_strerror(rc));
        return -1;
    }
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd >= 0) {
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
    }
    if (fd < 0 || bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 4096) < 0) {
        fprintf(err, "comfygate: cannot listen on %s:%u: %s\n", cfg->host, port, strerror(errno));
        if (fd >= 0)
            close(fd);
        freeaddrinfo(ai);
        return -1;
    }
    freeaddrinfo(ai);
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    getsockname(fd, (struct sockaddr *)&ss, &sl);
    *bound = ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                                      : ntohs(((struct sockaddr_in *)&ss)->sin_port);
    return fd;
}

static void stop_timer_cb(struct ring_timer *t)
{
    (void)t; /* reactor_done() does the check */
}

static void stop_cb(struct ring *r, struct ring_msg *m)
{
    struct reactor *re = r->user;
    re->stop_ns = r->now_ns;
    re->stop_timer.cb = stop_timer_cb; /* wakes the loop to notice the deadline */
    ring_timer_arm(r, &re->stop_timer, (uint64_t)re->gw->cfg->shutdown_timeout_ms + 5001);
    http_server_shutdown(re->http);
    if (re->id == FLEET_REACTOR && re->gw->engine)
        engine_stop(re->gw->engine);
    if (re->id == FLEET_REACTOR && re->gw->webhooks)
        webhook_stop(re->gw->webhooks);
    if (re->id == FLEET_REACTOR && re->gw->fleet)
        comfy_fleet_stop(re->gw->fleet);
    ring_stop(r);
}

static bool reactor_done(struct ring *r)
{
    struct reactor *re = r->user;
    /* A backend session that will not wind down must not keep the process alive: past the
     * grace period plus a margin, stop anyway (unfinished jobs are re-queued on the next start). */
    uint64_t grace_ns = ((uint64_t)re->gw->cfg->shutdown_timeout_ms + 5000) * 1000000ull;
    if (re->stop_ns && r->now_ns - re->stop_ns > grace_ns)
        return true;
    if (re->id == FLEET_REACTOR && re->gw->engine && !engine_idle(re->gw->engine))
        return false;
    if (re->id == FLEET_REACTOR && re->gw->webhooks && !webhook_idle(re->gw->webhooks))
        return false;
    if (re->id == FLEET_REACTOR && re->gw->fleet && !comfy_fleet_idle(re->gw->fleet))
        return false;
    return http_server_drained(re->http);
}

/* Webhook deliveries (when WEBHOOK_SECRET is set) on the fleet's reactor, through the fleet's
 * curl multi handle when there is one. Before the engine: its start-up recovery may enqueue. */
static int webhooks_start(struct reactor *re, char *err, size_t errlen)
{
    struct gateway *gw = re->gw;
    const struct config *c = gw->cfg;
    if (!c->webhook_secret[0])
        return 0;
    struct webhook_config wc;
    webhook_config_defaults(&wc);
    wc.secret = c->webhook_secret;
    wc.secret_previous = c->webhook_secret_previous;
    wc.max_attempts = c->webhook_max_attempts;
    wc.retry_base_ms = c->webhook_retry_base_ms;
    wc.retry_max_ms = c->webhook_retry_max_ms;
    wc.timeout_ms = c->webhook_timeout_ms;
    wc.max_inflight = c->webhook_max_inflight;
    wc.max_inflight_per_host = c->webhook_max_inflight_per_host;
    wc.max_pending = c->webhook_max_pending;
    /* prompt.complete carries its images as base64 (4/3 of their size) plus the answer */
    wc.max_payload = c->webhook_inline_max_bytes / 3 * 4 + (1u << 20);
    api_webhook_guard(gw, &wc.guard);
    wc.instance = gw->instance.id;
    return webhook_new(&gw->webhooks, &re->ring, gw->fleet ? &gw->fleet->rc : NULL, gw->store,
                       &wc, err, errlen);
}

/* The fleet and its curl multi handle live on one reactor; see gateway.h. */
static int engine_start(struct reactor *re)
{
    struct gateway *gw = re->gw;
    const struct config *c = gw->cfg;
    struct engine_config ec;
    memset(&ec, 0, sizeof(ec));
    ec.max_queue = c->max_queue;
    ec.max_concurrency = c->max_concurrency;
    ec.max_queue_per_tenant = c->max_queue_per_tenant;
    ec.max_jobs_in_memory = c->max_jobs_in_memory;
    ec.timeout_ms = c->comfyui_timeout_ms;
    ec.max_attempts = c->comfyui_max_attempts;
    ec.max_output_bytes = c->max_output_bytes;
    ec.fetched_keep_s = c->s3_fetched_keep_seconds;
    ec.limits.max_nodes = 2000;
    ec.privacy_mode = c->privacy_mode;
    ec.cache_enabled = c->cache_enabled;
    ec.cache_shared = c->cache_shared;
    ec.cache_ttl_s = c->cache_ttl_seconds;
    ec.idem_ttl_s = c->idempotency_ttl_seconds;
    ec.limits.max_image_size = c->max_image_size;
    ec.limits.max_batch_size = c->max_batch_size;
    ec.max_input_image_bytes = c->max_input_image_bytes;
    ec.input_guard = gw->input_guard;
    ec.input_url_timeout_ms = c->input_url_timeout_ms;
    ec.storage = &gw->storage;
    snprintf(ec.workflows_dir, sizeof(ec.workflows_dir), "%s", c->workflows_dir);
    char err[512];
    ec.webhook_guard = gw->webhook_guard;
    ec.shared = c->shared_store;
    ec.instance_id = gw->instance.id;
    ec.lease_ms = c->job_lease_ms;
    ec.poll_ms = c->shared_poll_ms;
    ec.webhook_inline_max = c->webhook_inline_max_bytes;
    if (webhooks_start(re, err, sizeof(err)) < 0) {
        LOG(&re->log, LOG_ERROR, "webhooks failed to start", "\"error\":\"%s\"", err);
        return -EINVAL;
    }
    ec.webhooks = gw->webhooks;
    int rc = engine_new(&gw->engine, &re->ring, gw->fleet, gw->store, &ec, err, sizeof(err));
    if (rc < 0) {
        LOG(&re->log, LOG_ERROR, "job engine failed to start", "\"error\":\"%s\"", err);
        return rc;
    }
    return 0;
}

static int fleet_start(struct reactor *re)
{
    struct gateway *gw = re->gw;
    if (!gw->nspecs)
        return engine_start(re);
    gw->fleet = calloc(1, sizeof(*gw->fleet));
    if (!gw->fleet)
        return -ENOMEM;
    int rc = comfy_fleet_init(gw->fleet, &re->ring, gw->specs, gw->nspecs, &gw->bcfg,
                              gw->cfg->comfyui_cold_penalty_ms);
    if (rc < 0)
        return rc;
    comfy_fleet_start(gw->fleet);
    LOG(&re->log, LOG_INFO, "fleet started", "\"backends\":%zu", gw->nspecs);
    return engine_start(re);
}

static void fleet_free(struct reactor *re)
{
    struct gateway *gw = re->gw;
    if (re->id != FLEET_REACTOR)
        return;
    if (gw->engine)
        engine_free(gw->engine);
    gw->engine = NULL;
    if (gw->webhooks) /* before the fleet: it uses the fleet's curl handle */
        webhook_free(gw->webhooks);
    gw->webhooks = NULL;
    if (!gw->fleet)
        return;
    comfy_fleet_fini(gw->fleet);
    free(gw->fleet);
    gw->fleet = NULL;
}

static void *reactor_main(void *arg)
{
    struct reactor *re = arg;
    struct gateway *gw = re->gw;
    const struct config *cfg = gw->cfg;
    struct ring_config rc = {
        .sq_entries = 4096,
        .buf_count = cfg->recv_buffers,
        .buf_size = cfg->recv_buffer_size,
        .max_timers = cfg->max_connections * 2 + 1024,
    };
    log_init(&re->log, STDOUT_FILENO, (enum log_level)cfg->log_level, re->id);
    re->start_rc = ring_init(&re->ring, &rc, re->id);
    if (re->start_rc == 0) {
        re->ring.user = re;
        re->start_rc = http_server_new(&re->http, &re->ring, &re->log, &gw->hcfg, &gw->router,
                                       re->lfd, gw);
    }
    if (re->start_rc == 0 && re->id == FLEET_REACTOR)
        re->start_rc = fleet_start(re);
    if (re->start_rc < 0) {
        LOG(&re->log, LOG_ERROR, "reactor failed to start", "\"error\":\"%s\"",
            strerror(-re->start_rc));
        log_flush(&re->log);
        atomic_fetch_add(&gw->running, 1);
        return NULL;
    }
    re->stop_msg.cb = stop_cb;
    atomic_fetch_add(&gw->running, 1);
    int rc2 = ring_run(&re->ring, reactor_done);
    if (rc2 < 0)
        LOG(&re->log, LOG_ERROR, "reactor loop failed", "\"error\":\"%s\"", strerror(-rc2));
    http_server_free(re->http);
    fleet_free(re);
    log_flush(&re->log);
    close(re->lfd);
    ring_fini(&re->ring);
    return NULL;
}

static void http_config_from(struct http_server_config *h, const struct config *c,
                             unsigned nreactors)
{
    memset(h, 0, sizeof(*h));
    h->limits.max_url = c->max_url_bytes;
    h->limits.max_header_bytes = c->max_header_bytes;
    h->limits.max_headers = c->max_header_count;
    h->limits.max_body = c->max_body_bytes;
    h->header_timeout_ms = c->header_timeout_ms;
    h->body_timeout_ms = c->body_timeout_ms;
    h->idle_timeout_ms = c->idle_timeout_ms;
    h->send_timeout_ms = c->send_timeout_ms;
    h->linger_ms = c->linger_ms;
    h->shutdown_timeout_ms = c->shutdown_timeout_ms;
    h->max_conns = (c->max_connections + nreactors - 1) / nreactors;
    h->max_out_bytes = c->max_out_bytes;
    h->zc_threshold = c->send_zc_threshold;
    h->pipe_size = c->pipe_size;
    h->access_log = c->access_log;
    h->server_name = "comfygate";
}

static int write_port_file(const char *path, unsigned port)
{
    char tmp[1100];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f)
        return -1;
    fprintf(f, "%u\n", port);
    if (fclose(f) != 0)
        return -1;
    return rename(tmp, path);
}

static int start_reactors(struct gateway *gw)
{
    const struct config *cfg = gw->cfg;
    unsigned port = cfg->port;
    for (unsigned i = 0; i < gw->nreactors; i++) {
        struct reactor *re = &gw->reactors[i];
        re->gw = gw;
        re->id = (int)i;
        re->lfd = listen_socket(cfg, port, &port, stderr);
        if (re->lfd < 0)
            return -1;
    }
    gw->port = port;
    for (unsigned i = 0; i < gw->nreactors; i++) {
        if (pthread_create(&gw->reactors[i].thread, NULL, reactor_main, &gw->reactors[i]) != 0)
            return -1;
    }
    while (atomic_load(&gw->running) < gw->nreactors)
        usleep(1000);
    for (unsigned i = 0; i < gw->nreactors; i++) {
        if (gw->reactors[i].start_rc < 0)
            return -1;
    }
    return 0;
}

static void wait_for_signal(struct gateway *gw, const sigset_t *set)
{
    for (;;) {
        siginfo_t si;
        int sig = sigwaitinfo(set, &si);
        if (sig == SIGTERM || sig == SIGINT)
            break;
    }
    atomic_store(&gw->stopping, true);
    LOG(&gw->log, LOG_INFO, "shutting down", "\"graceMs\":%u", gw->cfg->shutdown_timeout_ms);
    for (unsigned i = 0; i < gw->nreactors; i++)
        ring_post(&gw->reactors[i].ring, &gw->reactors[i].stop_msg);
}

static int backends_from(struct gateway *gw)
{
    const struct config *cfg = gw->cfg;
    const char *list = cfg->comfyui_urls[0] ? cfg->comfyui_urls : cfg->comfyui_url;
    struct comfy_backend_config *b = &gw->bcfg;
    comfy_backend_config_defaults(b);
    b->probe_interval_ms = cfg->comfyui_probe_interval_ms;
    b->poll_ms = cfg->comfyui_poll_ms;
    b->ws_ping_ms = cfg->comfyui_ws_ping_ms;
    b->ws_silence_ms = cfg->comfyui_ws_silence_ms;
    b->request_timeout_ms = cfg->comfyui_request_timeout_ms;
    if (!list[0])
        return 0;
    gw->specs = calloc(COMFY_MAX_BACKENDS, sizeof(*gw->specs));
    if (!gw->specs)
        return -1;
    char err[256];
    int n = comfy_backend_specs_parse(list, gw->specs, COMFY_MAX_BACKENDS, err, sizeof(err));
    if (n < 0) {
        fprintf(stderr, "comfygate: %s: %s\n", cfg->comfyui_urls[0] ? "COMFYUI_URLS" : "COMFYUI_URL",
                err);
        return -1;
    }
    gw->nspecs = (size_t)n;
    return 0;
}

/* The database file DATABASE_URL names ("sqlite:PATH" or "sqlite://PATH"), or the default
 * inside the data directory. */
static int database_path(const struct config *cfg, char *path, size_t cap)
{
    const char *u = cfg->database_url;
    if (!u[0]) {
        snprintf(path, cap, "%s/comfygate.db", cfg->storage_local_path);
        return 0;
    }
    size_t skip = !strncmp(u, "sqlite://", 9) ? 9 : !strncmp(u, "sqlite:", 7) ? 7 : 0;
    if (!skip || !u[skip]) {
        fprintf(stderr, "comfygate: DATABASE_URL %.*s... is not supported: use sqlite:PATH\n",
                (int)strcspn(u, ":"), u);
        return -1;
    }
    snprintf(path, cap, "%s", u + skip);
    return 0;
}

/* The data directory and outputs (the storage provider), and the database (its thread starts
 * here). */
static int data_open(struct gateway *gw)
{
    const struct config *cfg = gw->cfg;
    char path[1200], err[512];
    struct storage_config stc = {
        .provider = cfg->storage_provider,
        .local_path = cfg->storage_local_path,
        .s3 = {.endpoint = cfg->s3_endpoint,
               .bucket = cfg->s3_bucket,
               .region = cfg->s3_region,
               .access_key = cfg->s3_access_key_id,
               .secret_key = cfg->s3_secret_access_key,
               .session_token = cfg->s3_session_token,
               .prefix = cfg->s3_prefix,
               .public_url = cfg->s3_public_url,
               .path_style = cfg->s3_force_path_style,
               .keep_local = cfg->s3_keep_local,
               .url_ttl_s = cfg->s3_url_ttl_seconds,
               .timeout_ms = cfg->s3_timeout_ms,
               .max_attempts = cfg->s3_max_attempts}};
    if (storage_open(&gw->storage, &stc, err, sizeof(err)) < 0) {
        fprintf(stderr, "comfygate: %s\n", err);
        return -1;
    }
    if (instance_take(&gw->instance, cfg->storage_local_path, err, sizeof(err)) < 0) {
        fprintf(stderr, "comfygate: %s\n", err);
        return -1;
    }
    snprintf(gw->bcfg.instance_id, sizeof(gw->bcfg.instance_id), "%s", gw->instance.id);
    if (database_path(cfg, path, sizeof(path)) < 0)
        return -1;
    gw->store = calloc(1, sizeof(*gw->store));
    struct store_config sc = {.path = path, .synchronous_full = true};
    if (!gw->store || store_open(gw->store, &sc, err, sizeof(err)) < 0) {
        fprintf(stderr, "comfygate: %s\n", err);
        return -1;
    }
    return 0;
}

/* TLS_CERT_FILE and TLS_KEY_FILE, decoded and checked here on the main thread before any
 * reactor starts; every reactor then shares them read-only. A bad file stops start-up. */
static int tls_load(struct gateway *gw)
{
    const struct config *cfg = gw->cfg;
    if (!cfg->tls_cert_file[0])
        return 0;
    char err[2600];
    if (tls_server_new(&gw->tls, cfg->tls_cert_file, cfg->tls_key_file,
                       cfg->tls_session_cache_bytes, err, sizeof(err)) < 0) {
        fprintf(stderr, "comfygate: %s\n", err);
        return -1;
    }
    gw->hcfg.tls = gw->tls;
    return 0;
}

/* Undoes what gateway_run sets up before storage and the reactors: the way out of a start-up
 * error too, so a bad setting exits 2 with nothing leaked (under LeakSanitizer, as CI runs it,
 * a leak on that path turned the exit code into 1). */
static void setup_release(struct gateway *gw)
{
    api_unregister(gw);
    api_guard_free(gw);
    http_router_free(&gw->router);
    free(gw->specs);
    gw->specs = NULL;
    tls_server_free(gw->tls);
    gw->tls = NULL;
    gw->hcfg.tls = NULL;
}

/* Descriptors: every client connection, backend socket, open output and image held by an
 * answer needs one. The soft limit is often 1024 while the hard one is far higher: take the
 * hard one (as nginx's worker_rlimit_nofile would), and say so if it is still short of
 * MAX_CONNECTIONS. */
static void raise_nofile(struct gateway *gw)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        getrlimit(RLIMIT_NOFILE, &rl);
    }
    uint64_t want = gw->cfg->max_connections;
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < want)
        LOG(&gw->log, LOG_WARN, "few file descriptors for MAX_CONNECTIONS",
            "\"nofile\":%llu,\"wanted\":%llu,\"hint\":\"raise LimitNOFILE / ulimit -n\"",
            (unsigned long long)rl.rlim_cur, (unsigned long long)want);
}

int gateway_run(const struct config *cfg, enum gateway_role role)
{
    struct gateway gw;
    memset(&gw, 0, sizeof(gw));
    gw.role = role;
    gw.instance.fd = -1;
    gw.cfg = cfg;
    gw.start_ns = ring_clock_ns();
    gw.static_fd = -1;
    log_init(&gw.log, STDOUT_FILENO, (enum log_level)cfg->log_level, -1);
    gw.log.autoflush = 1;
    raise_nofile(&gw);
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    gw.nreactors = cfg->threads ? cfg->threads : (unsigned)(ncpu > 0 ? ncpu : 1);
    http_config_from(&gw.hcfg, cfg, gw.nreactors);
    gw.prompt_cfg.limits.max_nodes = 2000;
    gw.prompt_cfg.limits.max_image_size = cfg->max_image_size;
    gw.prompt_cfg.limits.max_batch_size = cfg->max_batch_size;
    gw.prompt_cfg.max_image_bytes = cfg->max_input_image_bytes;
    gw.prompt_cfg.allowed_classes = strcmp(cfg->allowed_node_classes, "default")
                                        ? cfg->allowed_node_classes
                                        : PROMPT_DEFAULT_CLASSES;
    http_router_init(&gw.router);
    if (backends_from(&gw) < 0 || api_register(&gw) < 0 || api_guard_init(&gw, stderr) < 0 ||
        tls_load(&gw) < 0) {
        setup_release(&gw);
        return 2;
    }

    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &set, NULL); /* inherited by every reactor thread */
    sigdelset(&set, SIGPIPE);

    /* libcurl's global state must be set up before any thread uses it. */
    curl_global_init(CURL_GLOBAL_DEFAULT);
    if (data_open(&gw) < 0) {
        setup_release(&gw);
        free(gw.store); /* allocated, not opened */
        storage_close(&gw.storage);
        instance_release(&gw.instance);
        curl_global_cleanup();
        return 2;
    }
    gw.reactors = calloc(gw.nreactors, sizeof(*gw.reactors));
    if (!gw.reactors || start_reactors(&gw) < 0) {
        fprintf(stderr, "comfygate: failed to start\n");
        return 1;
    }
    if (cfg->port_file[0] && write_port_file(cfg->port_file, gw.port) < 0)
        fprintf(stderr, "comfygate: cannot write PORT_FILE %s: %s\n", cfg->port_file,
                strerror(errno));
    LOG(&gw.log, LOG_INFO, "listening", "\"host\":\"%s\",\"port\":%u,\"reactors\":%u,"
        "\"version\":\"%s\"", cfg->host, gw.port, gw.nreactors, COMFYGATE_VERSION);
    if (!auth_enabled(&gw.auth))
        LOG(&gw.log, LOG_WARN, "authentication is off: every caller is an admin of tenant default",
            "\"allowNoAuth\":%s,\"hint\":\"set API_KEYS or JWT_SECRET\"",
            cfg->allow_no_auth ? "true" : "false");
    if (gw.tls)
        LOG(&gw.log, LOG_INFO, "tls", "\"key\":\"%s\",\"chain\":%zu,\"sessionCacheBytes\":%llu",
            tls_server_key_desc(gw.tls), tls_server_chain_len(gw.tls),
            (unsigned long long)cfg->tls_session_cache_bytes);
    wait_for_signal(&gw, &set);
    for (unsigned i = 0; i < gw.nreactors; i++)
        pthread_join(gw.reactors[i].thread, NULL);
    LOG(&gw.log, LOG_INFO, "stopped", "%s", "\"clean\":true");
    setup_release(&gw);
    free(gw.reactors);
    if (gw.store) {
        store_close(gw.store);
        free(gw.store);
    }
    storage_close(&gw.storage);
    instance_release(&gw.instance);
    curl_global_cleanup();
    return 0;
}
