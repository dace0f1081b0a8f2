/* api — the gateway's HTTP routes. Each api_*.c registers its own; api.c lists them. */
#ifndef COMFYGATE_API_H
#define COMFYGATE_API_H

#include <stdbool.h>
#include <stdio.h>

#include "http/http_router.h"

struct gateway;

/* Who may call a route (its router tag). */
enum api_access {
    API_USER = 0, /* any authenticated caller; a user sees only its own tenant's jobs */
    API_PUBLIC,   /* anyone (health checks, static files) */
    API_ADMIN,    /* admin role only: workflow changes, backends, audit */
};

/* api_guard.c: authentication, rate limits, CORS and the outbound URL guards, built from the
 * configuration at start-up (a bad setting: message on err, -1). */
int api_guard_init(struct gateway *gw, FILE *err);
void api_guard_free(struct gateway *gw);
/* The webhook deliveries' URL guard: WEBHOOK_ALLOWED_DOMAINS through the SSRF rules. */
struct webhook_guard;
void api_webhook_guard(struct gateway *gw, struct webhook_guard *g);
/* The http_server's before_route hook: CORS, rate limits, who is calling, may they. */
bool api_before_route(struct http_exchange *ex, enum http_match_result mr,
                      const struct http_match *m);
/* The caller (set by api_before_route): its tenant, whether it is an admin, and its id for the
 * audit log ("key-<id>", "jwt:<sub>", or "anonymous" without authentication). */
const char *api_owner(struct http_exchange *ex);
bool api_is_admin(struct http_exchange *ex);
const char *api_actor(struct http_exchange *ex);

int api_register(struct gateway *gw);
void api_unregister(struct gateway *gw);

/* api_system.c: /health, /ready, /static/... */
int api_system_register(struct gateway *gw);
/* api_backends.c: GET /backends (the fleet's per-backend state) */
int api_backends_register(struct gateway *gw);
/* api_jobs.c: workflows, jobs, outputs */
int api_jobs_register(struct gateway *gw);
/* api_workflows.c: workflows list/read/CRUD */
int api_workflows_register(struct gateway *gw);
/* api_events.c: GET /jobs/:id/events (SSE) */
int api_events_register(struct gateway *gw);
/* api_prompt.c: POST /prompt (raw ComfyUI graphs) */
int api_prompt_register(struct gateway *gw);

#endif
