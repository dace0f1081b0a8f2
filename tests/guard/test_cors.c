/* test_cors — CORS per the Fetch standard. The origin list matches exactly (scheme, host and
 * port; case of scheme and host aside), "null" only when listed, the wildcard answers "*" and
 * refuses credentials; every malformed CORS_ORIGINS entry stops start-up with a message saying
 * what is wrong. Actual requests and preflights get exactly the headers they should, Vary
 * included; requested header lists are parsed leniently but bounded, and only names this API
 * reads are echoed, in its own spelling. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "guard/cors.c"

static struct cors_config cfg; /* large: kept off the stack */

static void parse_ok(const char *origins, bool credentials)
{
    char err[256] = "";
    if (cors_parse(&cfg, origins, credentials, 600, err, sizeof(err)) != 0)
        fail_msg("\"%s\": %s", origins, err);
}

/* Parses origins expecting failure; the message must contain `want`. */
static void parse_bad(const char *origins, bool credentials, const char *want)
{
    char err[256] = "";
    assert_int_equal(cors_parse(&cfg, origins, credentials, 600, err, sizeof(err)), -EINVAL);
    if (!strstr(err, want))
        fail_msg("\"%s\": message \"%s\" lacks \"%s\"", origins, err, want);
    assert_false(cors_enabled(&cfg)); /* a caller that carries on gets CORS off */
}

static bool allowed(const char *origin)
{
    return cors_origin_allowed(&cfg, origin, strlen(origin));
}

/* The value of header `name` in h, or NULL. */
static const char *hval(const struct cors_headers *h, const char *name)
{
    for (unsigned i = 0; i < h->n; i++) {
        if (strcmp(h->h[i].name, name) == 0)
            return h->h[i].value;
    }
    return NULL;
}

static enum cors_verdict preflight(const char *origin, const char *method, const char *hdrs,
                                   struct cors_headers *h)
{
    return cors_preflight(&cfg, origin, origin ? strlen(origin) : 0, method,
                          method ? strlen(method) : 0, hdrs, hdrs ? strlen(hdrs) : 0, h);
}

/* --- configuration --------------------------------------------------------------------------- */

static void list_is_normalized(void **state)
{
    parse_ok(" https://app.example.com ,http://localhost:3000,\tHTTPS://App.Example.COM:443, "
             "http://A.com:80, https://a.com:08443, http://[::1]:3000, null",
             false);
    assert_true(cors_enabled(&cfg));
    assert_false(cfg.any);
    const char *want[] = {"https://app.example.com", "http://localhost:3000", "http://a.com",
                          "https://a.com:8443",      "http://[::1]:3000",     "null"};
    assert_int_equal(cfg.norigins, 6); /* the duplicate merged */
    for (unsigned i = 0; i < 6; i++) {
        assert_string_equal(cfg.origins[i].s, want[i]);
        assert_int_equal(cfg.origins[i].len, strlen(want[i]));
    }
    assert_string_equal(cfg.max_age, "600");
}

static void empty_means_off(void **state)
{
    struct cors_headers h;
    const char *offs[] = {"", "   ", "\t"};
    for (size_t i = 0; i < 3; i++) {
        parse_ok(offs[i], false);
        assert_false(cors_enabled(&cfg));
        assert_false(allowed("https://a.com"));
        assert_int_equal(cors_actual(&cfg, "https://a.com", 13, &h), CORS_NONE);
        assert_int_equal(h.n, 0);
        assert_int_equal(preflight("https://a.com", "GET", NULL, &h), CORS_NONE);
        assert_int_equal(h.n, 0);
    }
}

static void config_errors(void **state)
{
    static const struct {
        const char *in, *want;
    } cases[] = {
        {"https://a.com/", "remove the trailing slash"},
        {"https://a.com/app", "no path, query or fragment"},
        {"https://a.com?x=1", "no path, query or fragment"},
        {"https://a.com#top", "no path, query or fragment"},
        {"ftp://a.com", "the scheme must be http or https"},
        {"ws://a.com", "the scheme must be http or https"},
        {"a.com", "expected scheme://host[:port]"},
        {"https:/a.com", "expected scheme://host[:port]"},
        {"https://", "no host"},
        {"https://:8080", "no host"},
        {"https://user@a.com", "no user info"},
        {"https://*.a.com", "wildcard subdomains are not supported"},
        {"https://a.com:", "empty port"},
        {"https://a.com:0", "port must be a number"},
        {"https://a.com:65536", "port must be a number"},
        {"https://a.com:123456", "port must be a number"},
        {"https://a.com:80a", "port must be a number"},
        {"https://a.com:-1", "port must be a number"},
        {"https://a..com", "empty label"},
        {"https://.a.com", "empty label"},
        {"https://a.com.", "empty label"},
        {"https://a_b.com", "invalid character"},
        {"https://b\303\274cher.de", "xn--"},
        {"https://a com", "space or control character"},
        {"https://[::1", "unclosed IPv6"},
        {"https://[zz::1]", "bad IPv6"},
        {"https://[]", "bad IPv6"},
        {"https://[fe80::1%25eth0]", "bad IPv6"},
        {"https://[1.2.3.4]", "bad IPv6"},
        {"https://[::1]x", "unexpected characters after the host"},
        {"https://a.com,", "empty entry"},
        {",https://a.com", "empty entry"},
        {"https://a.com, ,https://b.com", "empty entry"},
        {"*,https://a.com", "\"*\" must be the only entry"},
        {"https://a.com, *", "\"*\" must be the only entry"},
        {"*,*", "\"*\" must be the only entry"},
        {"nul", "expected scheme://host[:port]"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        parse_bad(cases[i].in, false, cases[i].want);
}

static void config_bounds(void **state)
{
    static char list[CORS_MAX_ORIGINS * 32 + 64];
    size_t len = 0;
    for (int i = 0; i < CORS_MAX_ORIGINS; i++)
        len += (size_t)snprintf(list + len, sizeof(list) - len, "%shttps://h%d.example",
                                i ? "," : "", i);
    parse_ok(list, false);
    assert_int_equal(cfg.norigins, CORS_MAX_ORIGINS);
    snprintf(list + len, sizeof(list) - len, ",https://one-more.example");
    parse_bad(list, false, "more than 64 origins");

    /* a 253-byte host is the longest; the whole entry still fits */
    char host[300];
    memset(host, 'a', sizeof(host));
    for (int i = 63; i < 253; i += 64)
        host[i] = '.';
    snprintf(list, sizeof(list), "https://%.253s:65535", host);
    parse_ok(list, false);
    assert_int_equal(cfg.origins[0].len, strlen(list));
    assert_true(allowed(list));
    snprintf(list, sizeof(list), "https://%.254s", host);
    parse_bad(list, false, "longer than 253");
    snprintf(list, sizeof(list), "https://%.270s", host);
    parse_bad(list, false, "too long");

    char err[256];
    assert_int_equal(cors_parse(&cfg, "https://a.com", false, CORS_MAX_AGE_MAX, err, sizeof(err)),
                     0);
    assert_string_equal(cfg.max_age, "86400");
    assert_int_equal(
        cors_parse(&cfg, "https://a.com", false, CORS_MAX_AGE_MAX + 1, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "CORS_MAX_AGE_S"));
    /* a tiny message buffer truncates, never overflows */
    assert_int_equal(cors_parse(&cfg, "https://a.com/", false, 600, err, 8), -EINVAL);
    assert_int_equal(strlen(err), 7);
}

static void wildcard_with_credentials_refused(void **state)
{
    parse_bad("*", true, "no wildcard with credentials");
    parse_bad(" * ", true, "no wildcard with credentials");
    parse_ok("https://a.com", true);
    assert_true(cfg.credentials);
}

/* --- matching -------------------------------------------------------------------------------- */

static void list_match_is_exact(void **state)
{
    parse_ok("https://a.com", false);
    assert_true(allowed("https://a.com"));
    assert_true(allowed("HTTPS://A.COM"));
    assert_true(allowed("https://A.com"));
    const char *no[] = {
        "https://a.com:8443",
        "http://a.com",
        "https://a.com:443",
        "https://a.com/",
        "https://a.co",
        "https://a.comm",
        "https://sub.a.com",
        "https://a.com.evil.example",
        "null",
        "https://a.com ",
        " https://a.com",
        "",
        "a.com",
        "https://a.com:",
        "*",
    };
    for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++) {
        if (allowed(no[i]))
            fail_msg("\"%s\" allowed", no[i]);
    }
    assert_false(cors_origin_allowed(&cfg, "https://a.com\0", 14)); /* a NUL is a byte too */
    assert_false(cors_origin_allowed(&cfg, NULL, 0));

    parse_ok("https://a.com:8443", false);
    assert_true(allowed("https://a.com:8443"));
    assert_false(allowed("https://a.com"));
    parse_ok("http://a.com", false);
    assert_true(allowed("http://a.com"));
    assert_false(allowed("https://a.com"));
}

static void ipv6_hosts_as_browsers_write_them(void **state)
{
    /* the URL standard's serialization: what a browser puts in Origin */
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"http://[::1]", "http://[::1]"},
        {"http://[0:0:0:0:0:0:0:1]:8080", "http://[::1]:8080"},
        {"http://[2001:DB8:0000:0:1::1]", "http://[2001:db8::1:0:0:1]"},
        {"http://[1:0:0:2:0:0:0:3]", "http://[1:0:0:2::3]"},      /* the longest run */
        {"http://[1:0:0:2:3:0:0:4]", "http://[1::2:3:0:0:4]"},    /* the first of equals */
        {"http://[1:0:2:3:4:5:6:7]", "http://[1:0:2:3:4:5:6:7]"}, /* one zero: as is */
        {"http://[1::2:3:4:5:6:7]", "http://[1:0:2:3:4:5:6:7]"},
        {"https://[::ffff:1.2.3.4]", "https://[::ffff:102:304]"}, /* never dotted */
        {"http://[::]", "http://[::]"},
        {"http://[1::]", "http://[1::]"},
        {"http://[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535",
         "http://[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        parse_ok(cases[i].in, false);
        assert_string_equal(cfg.origins[0].s, cases[i].out);
        assert_true(allowed(cases[i].out));
    }
}

static void null_only_when_listed(void **state)
{
    parse_ok("https://a.com", false);
    assert_false(allowed("null"));
    parse_ok("https://a.com, null", false);
    assert_true(allowed("null"));
    assert_true(allowed("NULL")); /* any case, like a host; browsers send "null" */
    parse_ok("NULL", false);
    assert_string_equal(cfg.origins[0].s, "null");
}

static void wildcard(void **state)
{
    struct cors_headers h;
    parse_ok("*", false);
    assert_true(cfg.any);
    assert_true(allowed("https://anything.example:1234"));
    /* "*" makes responses public: an opaque origin reads nothing it could not anyway */
    assert_true(allowed("null"));
    assert_false(allowed(""));
    assert_int_equal(cors_actual(&cfg, "https://x.example", 17, &h), CORS_ALLOWED);
    assert_int_equal(h.n, 2); /* the same for every origin: no Vary */
    assert_string_equal(hval(&h, "Access-Control-Allow-Origin"), "*");
    assert_null(hval(&h, "Access-Control-Allow-Credentials"));
    assert_null(hval(&h, "Vary"));
    assert_int_equal(cors_actual(&cfg, NULL, 0, &h), CORS_NONE);
    assert_int_equal(h.n, 0);
}

/* --- actual requests ------------------------------------------------------------------------- */

static void actual_request_headers(void **state)
{
    struct cors_headers h;
    parse_ok("https://app.example.com", false);
    assert_int_equal(cors_actual(&cfg, "https://APP.example.com", 23, &h), CORS_ALLOWED);
    assert_int_equal(h.n, 3);
    assert_string_equal(hval(&h, "Vary"), "Origin");
    /* the configured copy answers, not the client's bytes */
    assert_ptr_equal(hval(&h, "Access-Control-Allow-Origin"), cfg.origins[0].s);
    assert_string_equal(hval(&h, "Access-Control-Expose-Headers"),
                        "X-Request-Id, Location, Retry-After, RateLimit-Limit, "
                        "RateLimit-Remaining, RateLimit-Reset, Idempotency-Replayed, ETag, "
                        "Content-Range, Content-Disposition");
    assert_null(hval(&h, "Access-Control-Allow-Credentials"));

    /* denied, or no Origin at all: still Vary, nothing else */
    assert_int_equal(cors_actual(&cfg, "https://evil.example", 20, &h), CORS_DENIED_ORIGIN);
    assert_int_equal(h.n, 1);
    assert_string_equal(hval(&h, "Vary"), "Origin");
    assert_int_equal(cors_actual(&cfg, NULL, 0, &h), CORS_NONE);
    assert_int_equal(h.n, 1);
    assert_int_equal(cors_actual(&cfg, "", 0, &h), CORS_NONE);
    assert_int_equal(h.n, 1);
}

static void actual_request_with_credentials(void **state)
{
    struct cors_headers h;
    parse_ok("https://app.example.com,http://localhost:3000", true);
    assert_int_equal(cors_actual(&cfg, "http://localhost:3000", 21, &h), CORS_ALLOWED);
    assert_int_equal(h.n, 4);
    assert_string_equal(hval(&h, "Access-Control-Allow-Origin"), "http://localhost:3000");
    assert_string_equal(hval(&h, "Access-Control-Allow-Credentials"), "true");
    assert_string_equal(hval(&h, "Vary"), "Origin");
    assert_int_equal(cors_actual(&cfg, "http://localhost:3001", 21, &h), CORS_DENIED_ORIGIN);
    assert_null(hval(&h, "Access-Control-Allow-Credentials"));
}

/* --- preflights ------------------------------------------------------------------------------ */

static const char *const vary_list =
    "Origin, Access-Control-Request-Method, Access-Control-Request-Headers";

static void preflight_allowed(void **state)
{
    struct cors_headers h;
    parse_ok("https://app.example.com", true);
    assert_int_equal(preflight("https://app.example.com", "POST", "authorization,content-type", &h),
                     CORS_ALLOWED);
    assert_int_equal(h.n, 6);
    assert_string_equal(hval(&h, "Vary"), vary_list);
    assert_string_equal(hval(&h, "Access-Control-Allow-Origin"), "https://app.example.com");
    assert_string_equal(hval(&h, "Access-Control-Allow-Credentials"), "true");
    assert_string_equal(hval(&h, "Access-Control-Allow-Methods"), "GET, HEAD, POST, PUT, DELETE");
    assert_string_equal(hval(&h, "Access-Control-Allow-Headers"), "Authorization, Content-Type");
    assert_string_equal(hval(&h, "Access-Control-Max-Age"), "600");

    const char *methods[] = {"GET", "HEAD", "POST", "PUT", "DELETE"};
    for (size_t i = 0; i < 5; i++)
        assert_int_equal(preflight("https://app.example.com", methods[i], NULL, &h), CORS_ALLOWED);
    /* no headers requested: no Access-Control-Allow-Headers */
    assert_int_equal(h.n, 5);
    assert_null(hval(&h, "Access-Control-Allow-Headers"));
    assert_int_equal(preflight("https://app.example.com", "GET", "", &h), CORS_ALLOWED);
    assert_null(hval(&h, "Access-Control-Allow-Headers"));
}

static void preflight_denied(void **state)
{
    struct cors_headers h;
    parse_ok("https://app.example.com", false);
    assert_int_equal(preflight("https://evil.example", "GET", NULL, &h), CORS_DENIED_ORIGIN);
    assert_int_equal(h.n, 1);
    assert_string_equal(hval(&h, "Vary"), vary_list);
    const char *methods[] = {"PATCH", "OPTIONS", "get", "Post", "", "GET ", "CONNECT", "TRACE"};
    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
        assert_int_equal(preflight("https://app.example.com", methods[i], NULL, &h),
                         CORS_DENIED_METHOD);
        assert_int_equal(h.n, 1);
    }
    assert_int_equal(preflight("https://app.example.com", NULL, NULL, &h), CORS_DENIED_METHOD);
    const char *hdrs[] = {
        "x-foo",
        "authorization,x-foo",
        "cookie",
        "content-type;q=1",
        "authorization\r\nx: y",
        "author ization",
        "x-api-key\x01",
    };
    for (size_t i = 0; i < sizeof(hdrs) / sizeof(hdrs[0]); i++) {
        assert_int_equal(preflight("https://app.example.com", "PUT", hdrs[i], &h),
                         CORS_DENIED_HEADERS);
        assert_int_equal(h.n, 1);
    }
    assert_int_equal(preflight(NULL, "GET", NULL, &h), CORS_NONE);
    assert_int_equal(h.n, 1);
    assert_string_equal(cors_verdict_name(CORS_DENIED_HEADERS), "denied_headers");
    assert_string_equal(cors_verdict_name(CORS_ALLOWED), "allowed");
    assert_string_equal(cors_verdict_name((enum cors_verdict)99), "unknown");
}

static void requested_header_lists(void **state)
{
    struct cors_headers h;
    parse_ok("*", false);
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"x-api-key", "X-API-Key"},
        {"X-API-KEY", "X-API-Key"},
        {" , ,authorization ,\t, content-type ,,", "Authorization, Content-Type"},
        {"authorization content-type", "Authorization, Content-Type"},
        {"range,RANGE, Range", "Range"},
        {"if-range,if-none-match,last-event-id", "Last-Event-ID, If-None-Match, If-Range"},
        {"authorization,x-api-key,content-type,idempotency-key,x-request-id,last-event-id,range,"
         "if-none-match,if-range",
         "Authorization, X-API-Key, Content-Type, Idempotency-Key, X-Request-Id, Last-Event-ID, "
         "Range, If-None-Match, If-Range"},
        {" , ", NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(preflight("https://a.example", "POST", cases[i].in, &h), CORS_ALLOWED);
        const char *got = hval(&h, "Access-Control-Allow-Headers");
        if (cases[i].out)
            assert_string_equal(got, cases[i].out);
        else
            assert_null(got);
    }
    assert_string_equal(hval(&h, "Vary"),
                        "Access-Control-Request-Method, Access-Control-Request-Headers");
}

static void requested_header_list_is_bounded(void **state)
{
    struct cors_headers h;
    static char big[CORS_REQUEST_HEADERS_MAX + 2];
    parse_ok("https://a.example", false);
    /* exactly the bound: parsed (empty elements and one name) */
    memset(big, ',', CORS_REQUEST_HEADERS_MAX);
    memcpy(big + CORS_REQUEST_HEADERS_MAX - 5, "range", 5);
    big[CORS_REQUEST_HEADERS_MAX] = '\0';
    assert_int_equal(preflight("https://a.example", "GET", big, &h), CORS_ALLOWED);
    assert_string_equal(hval(&h, "Access-Control-Allow-Headers"), "Range");
    /* one byte more: refused without looking */
    memset(big, ' ', CORS_REQUEST_HEADERS_MAX + 1);
    big[CORS_REQUEST_HEADERS_MAX + 1] = '\0';
    assert_int_equal(preflight("https://a.example", "GET", big, &h), CORS_DENIED_HEADERS);
    /* the length given is what counts, not a NUL */
    assert_int_equal(cors_preflight(&cfg, "https://a.example", 17, "GET", 3, "range,x-foo", 5, &h),
                     CORS_ALLOWED);
    assert_int_equal(cors_preflight(&cfg, "https://a.examplez", 17, "GETX", 3, NULL, 0, &h),
                     CORS_ALLOWED);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(list_is_normalized),
        cmocka_unit_test(empty_means_off),
        cmocka_unit_test(config_errors),
        cmocka_unit_test(config_bounds),
        cmocka_unit_test(wildcard_with_credentials_refused),
        cmocka_unit_test(list_match_is_exact),
        cmocka_unit_test(ipv6_hosts_as_browsers_write_them),
        cmocka_unit_test(null_only_when_listed),
        cmocka_unit_test(wildcard),
        cmocka_unit_test(actual_request_headers),
        cmocka_unit_test(actual_request_with_credentials),
        cmocka_unit_test(preflight_allowed),
        cmocka_unit_test(preflight_denied),
        cmocka_unit_test(requested_header_lists),
        cmocka_unit_test(requested_header_list_is_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
