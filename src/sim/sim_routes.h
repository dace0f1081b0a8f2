/*
 * sim_routes — ComfyUI 0.8.0's HTTP API on top of sim_server: every route of server.py that
 * the gateway and its tests use, each also under /api, answering with aiohttp's statuses,
 * content types and bodies (JSON in CPython's text form, empty 200s as
 * application/octet-stream, the plain-text 500 for a body that is not JSON, 403 for a
 * loopback Host with a foreign Origin).
 */
#ifndef SIM_ROUTES_H
#define SIM_ROUTES_H

#include <jansson.h>
#include <stdbool.h>

#include "http/http_router.h"
#include "http/http_server.h"

struct sim_server;

int sim_routes_register(struct sim_server *s, struct http_router *router);
/* Answers with json.dumps(v) (v is consumed). */
void sim_routes_json(struct http_exchange *ex, int status, json_t *v);
/* aiohttp's body-less web.Response(status=...). */
void sim_routes_empty(struct http_exchange *ex, int status);
/* aiohttp's answer when a handler raises. */
void sim_routes_500(struct http_exchange *ex);
/* ComfyUI's origin check; answers 403 itself and returns false on a mismatch. */
bool sim_routes_origin_ok(struct http_exchange *ex);

#endif
