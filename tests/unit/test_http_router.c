/* test_http_router — pattern matching (literals, :params, *rest, root, trailing slashes), HEAD
 * served by GET, 404 versus 405 with the Allow list, and the pattern limits. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "http/http_router.c"

/* Handlers are never called here; distinct addresses identify the route that matched. */
static void h_health(struct http_exchange *ex, void *arg)
{
}
static void h_any(struct http_exchange *ex, void *arg)
{
}

static int tag[32]; /* route arg = &tag[i] */

static struct http_router R;

static int setup_gateway_routes(void **state)
{
    static const struct {
        const char *m, *p;
    } routes[] = {
        {"GET", "/"},                       /* 0 */
        {"GET", "/health"},                 /* 1 */
        {"GET", "/ready"},                  /* 2 */
        {"GET", "/static/*path"},           /* 3 */
        {"GET", "/workflows"},              /* 4 */
        {"POST", "/workflows"},             /* 5 */
        {"GET", "/workflows/:id"},          /* 6 */
        {"GET", "/jobs"},                   /* 7 */
        {"POST", "/jobs"},                  /* 8 */
        {"GET", "/jobs/:id"},               /* 9 */
        {"DELETE", "/jobs/:id"},            /* 10 */
        {"POST", "/jobs/:id/cancel"},       /* 11 */
        {"GET", "/jobs/:id/events"},        /* 12 */
        {"GET", "/outputs/:jobId"},         /* 13 */
        {"GET", "/outputs/:jobId/:file"},   /* 14 */
        {"POST", "/prompt"},                /* 15 */
        {"HEAD", "/ready"},                 /* 16: an explicit HEAD route wins over GET */
    };
    http_router_init(&R);
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
        http_handler_fn fn = i == 1 ? h_health : h_any;
        assert_int_equal(http_router_add(&R, routes[i].m, routes[i].p, fn, &tag[i]), 0);
    }
    return 0;
}

static int teardown_routes(void **state)
{
    http_router_free(&R);
    return 0;
}

static struct http_match M;

static enum http_match_result match(int method, const char *path)
{
    memset(&M, 0x5a, sizeof(M)); /* results must not depend on what was there before */
    return http_router_match(&R, method, path, strlen(path), &M);
}

static int route_index(void)
{
    assert_non_null(M.route);
    return (int)((int *)M.route->arg - tag);
}

static void expect_route(int method, const char *path, int idx)
{
    assert_int_equal(match(method, path), HTTP_MATCH_OK);
    assert_int_equal(route_index(), idx);
}

static void expect_param(unsigned i, const char *name, const char *value)
{
    assert_true(i < M.nparams);
    assert_string_equal(M.params[i].name, name);
    assert_int_equal(M.params[i].len, strlen(value));
    assert_memory_equal(M.params[i].value, value, strlen(value));
}

static void literals(void **state)
{
    expect_route(HTTP_GET, "/health", 1);
    assert_ptr_equal(M.route->fn, h_health);
    assert_int_equal(M.nparams, 0);
    expect_route(HTTP_GET, "/ready", 2);
    expect_route(HTTP_GET, "/workflows", 4);
    expect_route(HTTP_POST, "/workflows", 5);
    expect_route(HTTP_POST, "/prompt", 15);
    assert_int_equal(match(HTTP_GET, "/healthz"), HTTP_MATCH_NOT_FOUND);
    assert_int_equal(match(HTTP_GET, "/healt"), HTTP_MATCH_NOT_FOUND);
    assert_int_equal(match(HTTP_GET, "/Health"), HTTP_MATCH_NOT_FOUND); /* case matters */
    assert_int_equal(match(HTTP_GET, "/health/x"), HTTP_MATCH_NOT_FOUND);
    assert_int_equal(match(HTTP_GET, "/nope"), HTTP_MATCH_NOT_FOUND);
    assert_int_equal(M.allow[0], '\0');
    assert_null(M.route);
}

static void params(void **state)
{
    expect_route(HTTP_GET, "/jobs/abc123", 9);
    assert_int_equal(M.nparams, 1);
    expect_param(0, "id", "abc123");
    /* the value points into the path itself */
    const char *path = "/outputs/j-1/image_00001.png";
    assert_int_equal(http_router_match(&R, HTTP_GET, path, strlen(path), &M), HTTP_MATCH_OK);
    assert_int_equal(route_index(), 14);
    assert_int_equal(M.nparams, 2);
    expect_param(0, "jobId", "j-1");
    expect_param(1, "file", "image_00001.png");
    assert_ptr_equal(M.params[0].value, path + 9);
    expect_route(HTTP_GET, "/outputs/j-1", 13);
    expect_route(HTTP_POST, "/jobs/42/cancel", 11);
    expect_param(0, "id", "42");
    expect_route(HTTP_GET, "/jobs/42/events", 12);
    expect_route(HTTP_DELETE, "/jobs/42", 10);
    /* a parameter is one non-empty segment */
    assert_int_equal(match(HTTP_POST, "/jobs//cancel"), HTTP_MATCH_NOT_FOUND);
    assert_int_equal(match(HTTP_GET, "/jobs/42/events/x"), HTTP_MATCH_NOT_FOUND);
    assert_int_equal(match(HTTP_GET, "/outputs/a/b/c"), HTTP_MATCH_NOT_FOUND);
}

static void rest(void **state)
{
    expect_route(HTTP_GET, "/static/css/site.css", 3);
    assert_int_equal(M.nparams, 1);
    expect_param(0, "path", "css/site.css");
    expect_route(HTTP_GET, "/static/a", 3);
    expect_param(0, "path", "a");
    expect_route(HTTP_GET, "/static/a//b/", 3); /* the rest is taken verbatim */
    expect_param(0, "path", "a//b/");
    expect_route(HTTP_GET, "/static/", 3);
    expect_param(0, "path", "");
    /* "/static" with no slash: the rest is empty too, and it must stay inside the path */
    const char *p = "/static";
    assert_int_equal(http_router_match(&R, HTTP_GET, p, 7, &M), HTTP_MATCH_OK);
    assert_int_equal(M.nparams, 1);
    assert_int_equal(M.params[0].len, 0);
    assert_true(M.params[0].value >= p && M.params[0].value <= p + 7);
    assert_int_equal(match(HTTP_GET, "/staticx/a"), HTTP_MATCH_NOT_FOUND);
}

static void root(void **state)
{
    expect_route(HTTP_GET, "/", 0);
    assert_int_equal(M.nparams, 0);
    assert_int_equal(match(HTTP_GET, "//"), HTTP_MATCH_NOT_FOUND);
    assert_int_equal(match(HTTP_GET, ""), HTTP_MATCH_NOT_FOUND);
    assert_int_equal(match(HTTP_GET, "health"), HTTP_MATCH_NOT_FOUND); /* not absolute */

    /* a rest route at the root matches everything, including "/" itself */
    struct http_router r;
    http_router_init(&r);
    assert_int_equal(http_router_add(&r, "GET", "/*all", h_any, NULL), 0);
    assert_int_equal(http_router_match(&r, HTTP_GET, "/", 1, &M), HTTP_MATCH_OK);
    assert_int_equal(M.nparams, 1);
    assert_int_equal(M.params[0].len, 0);
    assert_int_equal(http_router_match(&r, HTTP_GET, "/x/y", 4, &M), HTTP_MATCH_OK);
    assert_int_equal(M.params[0].len, 3);
    assert_memory_equal(M.params[0].value, "x/y", 3);
    http_router_free(&r);
}

static void trailing_slash(void **state)
{
    /* no silent redirect or aliasing: "/jobs/" is neither "/jobs" nor "/jobs/:id" */
    assert_int_equal(match(HTTP_GET, "/jobs/"), HTTP_MATCH_NOT_FOUND);
    assert_int_equal(match(HTTP_GET, "/health/"), HTTP_MATCH_NOT_FOUND);
    assert_int_equal(match(HTTP_GET, "/jobs/1/"), HTTP_MATCH_NOT_FOUND);
    /* a pattern with a trailing slash wants one */
    struct http_router r;
    http_router_init(&r);
    assert_int_equal(http_router_add(&r, "GET", "/dir/", h_any, NULL), 0);
    assert_int_equal(http_router_match(&r, HTTP_GET, "/dir/", 5, &M), HTTP_MATCH_OK);
    assert_int_equal(http_router_match(&r, HTTP_GET, "/dir", 4, &M), HTTP_MATCH_NOT_FOUND);
    http_router_free(&r);
}

static void head_served_by_get(void **state)
{
    expect_route(HTTP_HEAD, "/health", 1);
    assert_int_equal(M.route->method, HTTP_GET);
    expect_route(HTTP_HEAD, "/jobs/7", 9);
    expect_param(0, "id", "7");
    expect_route(HTTP_HEAD, "/ready", 16); /* the explicit HEAD route */
    assert_int_equal(M.route->method, HTTP_HEAD);
    /* HEAD on a POST-only path is a 405 */
    assert_int_equal(match(HTTP_HEAD, "/prompt"), HTTP_MATCH_METHOD);
    assert_string_equal(M.allow, "POST");
}

static void method_not_allowed(void **state)
{
    assert_int_equal(match(HTTP_POST, "/health"), HTTP_MATCH_METHOD);
    assert_string_equal(M.allow, "GET, HEAD");
    assert_null(M.route);
    assert_int_equal(M.nparams, 0);
    assert_int_equal(match(HTTP_PUT, "/jobs"), HTTP_MATCH_METHOD);
    assert_string_equal(M.allow, "GET, HEAD, POST");
    assert_int_equal(match(HTTP_PUT, "/jobs/9"), HTTP_MATCH_METHOD);
    assert_string_equal(M.allow, "GET, HEAD, DELETE");
    assert_int_equal(match(HTTP_GET, "/jobs/9/cancel"), HTTP_MATCH_METHOD);
    assert_string_equal(M.allow, "POST");
    assert_int_equal(match(HTTP_GET, "/prompt"), HTTP_MATCH_METHOD);
    assert_string_equal(M.allow, "POST");
    assert_int_equal(match(HTTP_DELETE, "/ready"), HTTP_MATCH_METHOD);
    assert_string_equal(M.allow, "GET, HEAD"); /* HEAD listed once */
}

static void allow_distinct_similar_names(void **state)
{
    /* method names that contain one another must each be listed */
    struct http_router r;
    http_router_init(&r);
    assert_int_equal(http_router_add(&r, "UNLOCK", "/res", h_any, NULL), 0);
    assert_int_equal(http_router_add(&r, "LOCK", "/res", h_any, NULL), 0);
    assert_int_equal(http_router_add(&r, "UNLINK", "/res", h_any, NULL), 0);
    assert_int_equal(http_router_add(&r, "LINK", "/res", h_any, NULL), 0);
    assert_int_equal(http_router_match(&r, HTTP_GET, "/res", 4, &M), HTTP_MATCH_METHOD);
    assert_string_equal(M.allow, "UNLOCK, LOCK, UNLINK, LINK");
    http_router_free(&r);
}

static void allow_list_bounded(void **state)
{
    /* many methods on one path: the list is truncated at a method boundary, never overflows */
    static const char *ms[] = {"GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE",
                               "COPY", "LOCK", "MKCOL", "MOVE", "PROPFIND", "PROPPATCH",
                               "SEARCH", "UNLOCK", "BIND", "REBIND", "UNBIND", "ACL",
                               "REPORT", "MKACTIVITY", "CHECKOUT", "MERGE", "M-SEARCH",
                               "NOTIFY", "SUBSCRIBE", "UNSUBSCRIBE", "PURGE", "MKCALENDAR"};
    struct http_router r;
    http_router_init(&r);
    for (size_t i = 0; i < sizeof(ms) / sizeof(ms[0]); i++)
        assert_int_equal(http_router_add(&r, ms[i], "/x", h_any, NULL), 0);
    assert_int_equal(http_router_match(&r, HTTP_CONNECT, "/x", 2, &M), HTTP_MATCH_METHOD);
    size_t l = strlen(M.allow);
    assert_true(l < sizeof(M.allow));
    assert_true(l > 0 && M.allow[l - 1] != ' ' && M.allow[l - 1] != ',');
    assert_memory_equal(M.allow, "GET, HEAD, POST, PUT, DELETE", 28);
    http_router_free(&r);
}

static void pattern_limits(void **state)
{
    struct http_router r;
    http_router_init(&r);
    char pat[128] = "";
    for (int i = 0; i < HTTP_MAX_SEGS; i++)
        strcat(pat, "/s");
    assert_int_equal(http_router_add(&r, "GET", pat, h_any, NULL), 0); /* exactly the max */
    strcat(pat, "/s");
    assert_int_equal(http_router_add(&r, "GET", pat, h_any, NULL), -EINVAL); /* one past */
    assert_int_equal(r.n, 1);
    /* a path with more segments than any route: no match, no overrun */
    char path[256] = "";
    for (int i = 0; i < 40; i++)
        strcat(path, "/s");
    assert_int_equal(http_router_match(&r, HTTP_GET, path, strlen(path), &M),
                     HTTP_MATCH_NOT_FOUND);
    path[2 * HTTP_MAX_SEGS] = '\0';
    assert_int_equal(http_router_match(&r, HTTP_GET, path, strlen(path), &M), HTTP_MATCH_OK);

    assert_int_equal(http_router_add(&r, "GET", "no-slash", h_any, NULL), -EINVAL);
    assert_int_equal(http_router_add(&r, "GET", "", h_any, NULL), -EINVAL);
    assert_int_equal(http_router_add(&r, "GET", "/a/*rest/b", h_any, NULL), -EINVAL);
    assert_int_equal(http_router_add(&r, "FETCH", "/a", h_any, NULL), -EINVAL);
    assert_int_equal(http_router_add(&r, "get", "/a", h_any, NULL), -EINVAL);
    assert_int_equal(r.n, 1); /* failed adds leave the table as it was */
    http_router_free(&r);
}

static void many_routes_grow(void **state)
{
    struct http_router r;
    http_router_init(&r);
    char pat[32];
    for (int i = 0; i < 200; i++) {
        snprintf(pat, sizeof(pat), "/r%d/:p", i);
        assert_int_equal(http_router_add(&r, "GET", pat, h_any, &tag[i % 32]), 0);
    }
    for (int i = 0; i < 200; i += 7) {
        char path[32];
        snprintf(path, sizeof(path), "/r%d/v%d", i, i);
        assert_int_equal(http_router_match(&r, HTTP_GET, path, strlen(path), &M),
                         HTTP_MATCH_OK);
        char seg[16];
        int sl = snprintf(seg, sizeof(seg), "r%d", i);
        assert_int_equal(M.route->segs[0].len, (size_t)sl);
        assert_memory_equal(M.route->segs[0].text, seg, (size_t)sl);
        expect_param(0, "p", path + sl + 2);
    }
    http_router_free(&r);
}

/* A route's tag (who may call it) comes back with the match; plain adds carry 0. */
static void route_tags(void **state)
{
    struct http_router r;
    http_router_init(&r);
    assert_int_equal(http_router_add_tagged(&r, "GET", "/admin/:x", h_any, NULL, 7), 0);
    assert_int_equal(http_router_add(&r, "GET", "/open", h_any, NULL), 0);
    assert_int_equal(http_router_match(&r, HTTP_GET, "/admin/a", 8, &M), HTTP_MATCH_OK);
    assert_int_equal(M.route->tag, 7);
    assert_int_equal(http_router_match(&r, HTTP_GET, "/open", 5, &M), HTTP_MATCH_OK);
    assert_int_equal(M.route->tag, 0);
    assert_int_equal(http_router_add_tagged(&r, "BOGUS", "/b", h_any, NULL, 1), -EINVAL);
    http_router_free(&r);
}

static void pattern_text_matches(void **state)
{
    expect_route(HTTP_GET, "/outputs/a/b", 14);
    assert_int_equal(M.route->nsegs, 3);
    assert_int_equal(M.route->segs[0].kind, 'l');
    assert_int_equal(M.route->segs[1].kind, ':');
    assert_int_equal(M.route->segs[2].kind, ':');
    assert_int_equal(M.route->segs[2].len, 4);
    assert_memory_equal(M.route->segs[2].text, "file", 4);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(literals, setup_gateway_routes, teardown_routes),
        cmocka_unit_test_setup_teardown(params, setup_gateway_routes, teardown_routes),
        cmocka_unit_test_setup_teardown(rest, setup_gateway_routes, teardown_routes),
        cmocka_unit_test_setup_teardown(root, setup_gateway_routes, teardown_routes),
        cmocka_unit_test_setup_teardown(trailing_slash, setup_gateway_routes, teardown_routes),
        cmocka_unit_test_setup_teardown(head_served_by_get, setup_gateway_routes,
                                        teardown_routes),
        cmocka_unit_test_setup_teardown(method_not_allowed, setup_gateway_routes,
                                        teardown_routes),
        cmocka_unit_test_setup_teardown(pattern_text_matches, setup_gateway_routes,
                                        teardown_routes),
        cmocka_unit_test(allow_distinct_similar_names),
        cmocka_unit_test(allow_list_bounded),
        cmocka_unit_test(pattern_limits),
        cmocka_unit_test(many_routes_grow),
        cmocka_unit_test(route_tags),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
