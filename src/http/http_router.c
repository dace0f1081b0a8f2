/* http_router — see http_router.h. A linear scan over pre-split patterns: the route table is
 * small (tens of routes) and this keeps matching allocation-free. */
#include "http/http_router.h"

#include <errno.h>
#include <llhttp.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

void http_router_init(struct http_router *r)
{
    memset(r, 0, sizeof(*r));
}

void http_router_free(struct http_router *r)
{
    for (size_t i = 0; i < r->n; i++)
        free(r->routes[i].pattern);
    free(r->routes);
    memset(r, 0, sizeof(*r));
}

static int method_from_name(const char *name)
{
    /* up to the last method llhttp 8 knows: llhttp_method_name() aborts on any other number
     * (it did for "FETCH"; found by the unit test) */
    for (int m = 0; m <= HTTP_FLUSH; m++) {
        const char *n = llhttp_method_name((llhttp_method_t)m);
        if (n && strcmp(n, name) == 0)
            return m;
    }
    return -1;
}

static int split_pattern(struct http_route *rt)
{
    char *p = rt->pattern;
    if (p[0] != '/')
        return -EINVAL;
    rt->nsegs = 0;
    if (p[1] == '\0')
        return 0; /* "/" has no segments */
    p++;
    while (p) {
        if (rt->nsegs == HTTP_MAX_SEGS)
            return -EINVAL;
        char *slash = strchr(p, '/');
        struct http_seg *s = &rt->segs[rt->nsegs++];
        s->len = slash ? (size_t)(slash - p) : strlen(p);
        s->kind = 'l';
        s->text = p;
        if (s->len > 0 && (p[0] == ':' || p[0] == '*')) {
            s->kind = p[0];
            s->text = p + 1;
            s->len--;
            if (s->kind == '*' && slash)
                return -EINVAL; /* a rest segment must come last */
        }
        if (slash)
            *slash = '\0';
        p = slash ? slash + 1 : NULL;
    }
    return 0;
}

int http_router_add(struct http_router *r, const char *method, const char *pattern,
                    http_handler_fn fn, void *arg)
{
    return http_router_add_tagged(r, method, pattern, fn, arg, 0);
}

int http_router_add_tagged(struct http_router *r, const char *method, const char *pattern,
                           http_handler_fn fn, void *arg, unsigned tag)
{
    int m = method_from_name(method);
    if (m < 0)
        return -EINVAL;
    if (r->n == r->cap) {
        size_t ncap = r->cap ? r->cap * 2 : 32;
        struct http_route *nr = realloc(r->routes, ncap * sizeof(*nr));
        if (!nr)
            return -ENOMEM;
        r->routes = nr;
        r->cap = ncap;
    }
    struct http_route *rt = &r->routes[r->n];
    memset(rt, 0, sizeof(*rt));
    rt->method = m;
    rt->pattern = strdup(pattern);
    rt->fn = fn;
    rt->arg = arg;
    rt->tag = tag;
    if (!rt->pattern)
        return -ENOMEM;
    int rc = split_pattern(rt);
    if (rc < 0) {
        free(rt->pattern);
        return rc;
    }
    r->n++;
    return 0;
}

/* Matches path segments against one route; fills params on success. */
static bool path_matches(const struct http_route *rt, const char *path, size_t len,
                         struct http_match *m)
{
    m->nparams = 0;
    if (len == 0 || path[0] != '/')
        return false;
    const char *p = path + 1, *end = path + len;
    bool root = len == 1; /* "/" has zero segments */
    for (unsigned i = 0; i < rt->nsegs; i++) {
        const struct http_seg *s = &rt->segs[i];
        if (s->kind == '*') {
            /* "/static" against the pattern "/static/" + "*path" leaves p one past the end: the
             * rest is empty (it was (size_t)-1 long before; found by the unit test) */
            const char *rest = p > end ? end : p;
            if (m->nparams < HTTP_MAX_PARAMS)
                m->params[m->nparams++] = (struct http_param){s->text, rest, (size_t)(end - rest)};
            return true;
        }
        if (root || p > end)
            return false;
        const char *slash = memchr(p, '/', (size_t)(end - p));
        const char *se = slash ? slash : end;
        size_t sl = (size_t)(se - p);
        if (s->kind == 'l') {
            if (sl != s->len || memcmp(p, s->text, sl) != 0)
                return false;
        } else {
            if (sl == 0 || m->nparams >= HTTP_MAX_PARAMS)
                return false;
            m->params[m->nparams++] = (struct http_param){s->text, p, sl};
        }
        p = slash ? slash + 1 : end + 1;
    }
    return root || p == end + 1;
}

/* Whole names only: a substring test took "LOCK" as listed once "UNLOCK" was. */
static bool allow_has(const char *allow, const char *name)
{
    size_t nl = strlen(name);
    for (const char *p = allow; *p;) {
        const char *comma = strchr(p, ',');
        size_t l = comma ? (size_t)(comma - p) : strlen(p);
        if (l == nl && memcmp(p, name, nl) == 0)
            return true;
        if (!comma)
            break;
        p = comma + 2; /* ", " */
    }
    return false;
}

static void allow_add(char *allow, size_t cap, const char *name)
{
    if (allow_has(allow, name))
        return;
    size_t l = strlen(allow);
    size_t nl = strlen(name);
    if (l + nl + 3 >= cap)
        return;
    if (l) {
        memcpy(allow + l, ", ", 2);
        l += 2;
    }
    memcpy(allow + l, name, nl + 1);
}

enum http_match_result http_router_match(const struct http_router *r, int method,
                                         const char *path, size_t len, struct http_match *m)
{
    bool path_seen = false;
    m->allow[0] = '\0';
    m->route = NULL;
    /* exact method first, then GET routes for HEAD */
    for (int pass = 0; pass < 2; pass++) {
        int want = pass == 0 ? method : HTTP_GET;
        if (pass == 1 && method != HTTP_HEAD)
            break;
        for (size_t i = 0; i < r->n; i++) {
            const struct http_route *rt = &r->routes[i];
            if (rt->method != want || !path_matches(rt, path, len, m))
                continue;
            m->route = rt;
            return HTTP_MATCH_OK;
        }
    }
    struct http_match scratch;
    for (size_t i = 0; i < r->n; i++) {
        const struct http_route *rt = &r->routes[i];
        if (!path_matches(rt, path, len, &scratch))
            continue;
        path_seen = true;
        allow_add(m->allow, sizeof(m->allow), llhttp_method_name((llhttp_method_t)rt->method));
        if (rt->method == HTTP_GET)
            allow_add(m->allow, sizeof(m->allow), "HEAD");
    }
    m->nparams = 0;
    return path_seen ? HTTP_MATCH_METHOD : HTTP_MATCH_NOT_FOUND;
}
