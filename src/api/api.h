/* api — the gateway's HTTP routes. Each api_*.c registers its own; api.c lists them. */
#ifndef COMFYGATE_API_H
#define COMFYGATE_API_H

struct gateway;

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
