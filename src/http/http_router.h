/* http_router — method + path pattern → handler.
 *
 * Patterns are split into segments: literals, `:name` (one non-empty segment) and a final
 * `*name` (the rest of the path, possibly empty). Built once at start-up, then shared read-only
 * by every reactor. A path that matches some route but not the method is a 405 with the list
 * of allowed methods; HEAD is served by GET routes. */
#ifndef COMFYGATE_HTTP_ROUTER_H
#define COMFYGATE_HTTP_ROUTER_H

#include <stddef.h>

struct http_exchange;
typedef void (*http_handler_fn)(struct http_exchange *ex, void *arg);

#define HTTP_MAX_PARAMS 8
#define HTTP_MAX_SEGS 16

struct http_param {
    const char *name;
    const char *value; /* points into the request path; not NUL-terminated */
    size_t len;
};

struct http_seg {
    char *text;
    size_t len;
    char kind; /* 'l' literal, ':' param, '*' rest */
};

struct http_route {
    int method; /* llhttp method */
    char *pattern;
    struct http_seg segs[HTTP_MAX_SEGS];
    unsigned nsegs;
    http_handler_fn fn;
    void *arg;
    unsigned tag; /* the application's (e.g. who may call it); 0 by default */
};

struct http_router {
    struct http_route *routes;
    size_t n, cap;
};

struct http_match {
    const struct http_route *route;
    struct http_param params[HTTP_MAX_PARAMS];
    unsigned nparams;
    char allow[160]; /* on HTTP_MATCH_METHOD: "GET, HEAD, POST" */
};

enum http_match_result {
    HTTP_MATCH_OK = 0,
    HTTP_MATCH_NOT_FOUND = 1,
    HTTP_MATCH_METHOD = 2,
};

void http_router_init(struct http_router *r);
void http_router_free(struct http_router *r);
/* method is a name ("GET"); returns 0, or -EINVAL for a bad pattern / unknown method. */
int http_router_add(struct http_router *r, const char *method, const char *pattern,
                    http_handler_fn fn, void *arg);
/* The same, with an application tag the before_route hook can read from the match. */
int http_router_add_tagged(struct http_router *r, const char *method, const char *pattern,
                           http_handler_fn fn, void *arg, unsigned tag);
enum http_match_result http_router_match(const struct http_router *r, int method,
                                         const char *path, size_t len, struct http_match *m);

#endif
