/* gateway — the process: listeners, one reactor thread per core, signals, graceful stop.
 *
 * The main thread only starts the reactors and then waits for SIGTERM/SIGINT with sigwaitinfo;
 * it runs no event loop. Each reactor owns a ring, a logger, an http_server and its own
 * SO_REUSEPORT listener, so accepted connections never cross threads. */
#ifndef COMFYGATE_GATEWAY_H
#define COMFYGATE_GATEWAY_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "comfy/comfy_fleet.h"
#include "core/config.h"
#include "core/instance.h"
#include "core/log.h"
#include "jobs/engine.h"
#include "jobs/prompt_req.h"
#include "auth/auth.h"
#include "guard/cors.h"
#include "guard/ratelimit.h"
#include "net/urlguard.h"
#include "webhook/webhook.h"
#include "store/storage.h"
#include "store/store.h"
#include "http/http_router.h"
#include "http/http_server.h"
#include "ring/ring.h"

enum gateway_role {
    GATEWAY_SERVE,  /* the API and the dispatcher */
    GATEWAY_WORKER, /* the dispatcher only (SHARED_STORE): /health, /ready, /backends */
};

struct reactor {
    struct gateway *gw;
    int id;
    int lfd;
    pthread_t thread;
    struct ring ring;
    struct logger log;
    struct http_server *http;
    struct ring_msg stop_msg;
    uint64_t stop_ns; /* when the stop message arrived */
    struct ring_timer stop_timer;
    int start_rc;
};

struct gateway {
    const struct config *cfg;
    enum gateway_role role;
    struct http_router router;
    struct http_server_config hcfg;
    int static_fd;
    uint64_t start_ns;
    unsigned nreactors;
    struct reactor *reactors;
    unsigned port;
    atomic_bool stopping;
    atomic_uint running;
    /* ComfyUI backends: the fleet lives on reactor 0 (FLEET_REACTOR) */
    struct comfy_backend_spec *specs;
    size_t nspecs;
    struct comfy_backend_config bcfg;
    struct comfy_fleet *fleet;
    struct store *store;   /* its own thread */
    struct engine *engine; /* on FLEET_REACTOR */
    struct webhooks *webhooks; /* on FLEET_REACTOR; NULL without WEBHOOK_SECRET */
    struct storage storage; /* job outputs: shared read-only by every reactor */
    struct instance instance; /* our id among the gateways sharing the data directory */
    struct prompt_req_config prompt_cfg; /* POST /prompt checks (read-only) */
    /* api_guard.c: built at start-up, then read-only (the limiters lock inside) */
    struct auth auth;
    bool auth_ready;
    struct ratelimit *rl_ip, *rl_key;
    struct cors_config cors;
    struct urlguard *input_guard, *webhook_guard;
    struct tls_server *tls; /* TLS_CERT_FILE + TLS_KEY_FILE, shared read-only; NULL: plain */
    struct logger log; /* main thread */
};

#define FLEET_REACTOR 0

/* Runs the gateway until SIGTERM/SIGINT; returns the process exit code. */
int gateway_run(const struct config *cfg, enum gateway_role role);

#endif
