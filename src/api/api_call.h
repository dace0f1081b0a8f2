/* api_call — the pattern every API handler that needs the engine follows: parse the request
 * on the reactor that owns the connection, carry it to the dispatcher reactor with ring_call,
 * do the work there, and come back to answer. The answer is a status plus a JSON text, or an
 * API error. */
#ifndef COMFYGATE_API_CALL_H
#define COMFYGATE_API_CALL_H

#include <jansson.h>

#include "gateway.h"

struct api_call;
typedef void (*api_work_fn)(struct api_call *c);

struct api_call {
    struct ring_call rc;
    struct gateway *gw;
    struct http_exchange *ex;
    api_work_fn work;     /* runs on the dispatcher; must end with api_call_done */
    /* request */
    char id[96];
    char name[320];
    char key[STORAGE_KEY_MAX];
    char owner[130]; /* the caller's tenant (jobs it creates are its own) */
    bool admin;
    json_t *body;
    long limit;
    int64_t after_ms, before_ms;
    uint64_t cursor;
    int status_filter;
    int version;
    bool want_bytes; /* an output download that needs the file itself (base64) */
    /* answer */
    int status;
    char *json; /* owned */
    const char *code;
    char message[512];
    json_t *details; /* extra fields for an error ("errors": [...]) */
    const char *location;
    /* a custom answer (files): runs on the connection's reactor when status is 200 */
    void (*reply)(struct api_call *c);
    char hdr_name[4][32];
    char hdr_value[4][128];
    unsigned nhdr;
};

struct api_call *api_call_new(struct http_exchange *ex, struct gateway *gw, api_work_fn work);
/* Sends c to the dispatcher reactor. */
void api_call_start(struct api_call *c);
/* On the dispatcher: the answer is ready (status + json, or status + code/message). */
void api_call_done(struct api_call *c);
void api_call_json(struct api_call *c, int status, json_t *o); /* takes o */
void api_call_error(struct api_call *c, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Adds a response header (up to 4). */
void api_call_header(struct api_call *c, const char *name, const char *value);
/* Answers an error with a details array: {"error":{...,"errors":[...]}} (takes details). */
void api_respond_error_details(struct http_exchange *ex, int status, const char *code,
                               const char *message, json_t *details);
/* The request body as a JSON object; answers 400 itself and returns NULL when it is not. */
json_t *api_body_json(struct http_exchange *ex);
/* Whose jobs the caller may read: NULL (every tenant's) for an admin, else its tenant. */
static inline const char *api_call_reader(const struct api_call *c)
{
    return c->admin ? NULL : c->owner;
}

#endif
