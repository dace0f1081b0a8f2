/* fuzz_http_request — libFuzzer harness for everything a client's request bytes reach before a
 * handler runs: http_parser (fed in chunks whose sizes derive from the input, to exercise
 * resumption), http_router_match on the gateway's route table, http_header_get,
 * http_query_get, http_pct_decode, and the Range / If-None-Match helpers of http_file.
 *
 * Oracles beyond the sanitizers: the parser's documented invariants (limits hold, consumed
 * counts add up, strings NUL-terminated, progress on every call) and a differential check:
 * the same input fed in one piece and in chunks must give the same sequence of results.
 *
 * Built twice: with -fsanitize=fuzzer under clang (fuzz/meson.build) and with a plain main
 * that replays the corpus (fuzz/replay_main.c, tests/fuzz/meson.build). */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/http_file.h"
#include "http/http_parser.h"
#include "http/http_router.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Not a crash from a sanitizer but a broken promise of the API: report and abort so that
 * libFuzzer saves the input. */
#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_http_request: check failed: %s (%s:%d)\n", #cond, __FILE__,   \
                    __LINE__);                                                                     \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* Limits small enough that inputs up to -max_len=65536 cross every one of them. */
static const struct http_limits LIMITS = {
    .max_url = 2048, .max_header_bytes = 8192, .max_headers = 32, .max_body = 16384};

static void handler(struct http_exchange *ex, void *arg)
{
    (void)ex;
    (void)arg;
}

/* The gateway's routes and the ones planned for it. Built once, read-only afterwards, exactly
 * as the server shares its router between reactors. */
static const struct http_router *router(void)
{
    static struct http_router r;
    static bool ready;
    static const struct {
        const char *method, *pattern;
    } routes[] = {
        {"GET", "/"},
        {"GET", "/health"},
        {"GET", "/ready"},
        {"HEAD", "/ready"},
        {"GET", "/static/*path"},
        {"GET", "/workflows"},
        {"POST", "/workflows"},
        {"GET", "/workflows/:id"},
        {"PUT", "/workflows/:id"},
        {"DELETE", "/workflows/:id"},
        {"GET", "/jobs"},
        {"POST", "/jobs"},
        {"GET", "/jobs/:id"},
        {"DELETE", "/jobs/:id"},
        {"POST", "/jobs/:id/cancel"},
        {"GET", "/jobs/:id/events"},
        {"GET", "/outputs/:jobId"},
        {"GET", "/outputs/:jobId/:file"},
        {"POST", "/prompt"},
        {"OPTIONS", "/*any"},
    };
    if (!ready) {
        http_router_init(&r);
        for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
            CHECK(http_router_add(&r, routes[i].method, routes[i].pattern, handler, NULL) == 0);
        ready = true;
    }
    return &r;
}

static uint64_t mix(uint64_t h, const void *p, size_t n)
{
    const unsigned char *s = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ s[i]) * 0x100000001b3ull;
    return h;
}

static uint64_t mix_u64(uint64_t h, uint64_t v)
{
    return mix(h, &v, sizeof(v));
}

/* Reads every byte of a span so that ASan sees any pointer or length that is off. */
static uint64_t touch(uint64_t h, const char *p, size_t n)
{
    return n ? mix(h, p, n) : h;
}

static void use_router(const struct http_request *r)
{
    struct http_match m;
    enum http_match_result res = http_router_match(router(), r->method, r->path, r->path_len, &m);
    uint64_t h = 0;
    if (res == HTTP_MATCH_OK) {
        CHECK(m.route != NULL);
        CHECK(m.nparams <= HTTP_MAX_PARAMS);
        for (unsigned i = 0; i < m.nparams; i++) {
            const struct http_param *pa = &m.params[i];
            /* a parameter always lies inside the path */
            CHECK(pa->value >= r->path && pa->len <= r->path_len);
            CHECK((size_t)(pa->value - r->path) <= r->path_len - pa->len);
            h = touch(h, pa->value, pa->len);
            h = touch(h, pa->name, strlen(pa->name));
            /* what the static handler does with *path */
            char rel[4096];
            if (pa->len < sizeof(rel)) {
                memcpy(rel, pa->value, pa->len);
                rel[pa->len] = '\0';
                if (http_path_safe(rel))
                    h = mix(h, http_file_mime(rel), 1);
            }
        }
    } else if (res == HTTP_MATCH_METHOD) {
        CHECK(m.allow[0] != '\0');
        CHECK(strlen(m.allow) < sizeof(m.allow));
    } else {
        CHECK(res == HTTP_MATCH_NOT_FOUND);
    }
    (void)h;
}

static void use_query(const struct http_request *r)
{
    static const char *const keys[] = {"limit", "offset", "status", "since", "q", "id", "", "a"};
    char v[64];
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        int n = http_query_get(r, keys[i], v, sizeof(v));
        CHECK(n >= -2 && n < (int)sizeof(v)); /* -1 absent, -2 unreadable */
        if (n >= 0)
            CHECK(v[n] == '\0');
        if (n == -2)
            CHECK(v[0] == '\0');
    }
    /* a key taken from the query itself, so that matches happen often */
    const char *eq = memchr(r->query, '=', r->query_len);
    if (eq && (size_t)(eq - r->query) < 32) {
        char key[32];
        size_t kl = (size_t)(eq - r->query);
        memcpy(key, r->query, kl);
        key[kl] = '\0';
        if (strlen(key) == kl) {
            char big[4096];
            int n = http_query_get(r, key, big, sizeof(big));
            CHECK(n >= -2 && n < (int)sizeof(big));
        }
    }
}

static void use_file_helpers(const struct http_request *r)
{
    size_t n;
    const char *range = http_header_get(r, "range", &n);
    if (range) {
        static const uint64_t sizes[] = {0, 1, 2, 100, 65536, UINT64_MAX / 2, UINT64_MAX};
        for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
            uint64_t first = 0, last = 0;
            enum http_range_result rr = http_range_parse(range, n, sizes[i], &first, &last);
            if (rr == HTTP_RANGE_OK)
                CHECK(first <= last && last < sizes[i]);
            else
                CHECK(rr == HTTP_RANGE_NONE || rr == HTTP_RANGE_UNSATISFIABLE);
        }
    }
    char etag[80];
    http_etag(etag, sizeof(etag), r->body_len, r->target_len, r->nheaders);
    const char *inm = http_header_get(r, "if-none-match", &n);
    if (inm) {
        (void)http_etag_match(inm, n, etag);
        (void)http_etag_match(inm, n, "\"a\"");
        /* and against the list's own first element, which must match itself */
        const char *comma = memchr(inm, ',', n);
        size_t el = comma ? (size_t)(comma - inm) : n;
        if (el > 0 && el < 64 && inm[0] == '"' && inm[el - 1] == '"' && !memchr(inm, ' ', el)) {
            char self[64];
            memcpy(self, inm, el);
            self[el] = '\0';
            if (strlen(self) == el && el > 1)
                CHECK(http_etag_match(inm, n, self));
        }
    }
    const char *ifr = http_header_get(r, "if-range", &n);
    if (ifr)
        (void)http_etag_match(ifr, n, etag);
}

/* Checks and uses one complete request; returns a digest of it for the differential check. */
static uint64_t use_request(const struct http_parser *p, const struct http_request *r)
{
    CHECK(r->method_name != NULL);
    CHECK(r->target_len <= p->lim->max_url);
    CHECK(r->nheaders <= p->lim->max_headers);
    CHECK(r->body_len <= p->lim->max_body);
    CHECK(r->path != NULL && strlen(r->path) == r->path_len);
    CHECK(r->body != NULL && r->body[r->body_len] == '\0');
    CHECK(r->query != NULL);
    uint64_t h = 0xcbf29ce484222325ull;
    h = mix_u64(h, (uint64_t)r->method);
    h = mix_u64(h, (uint64_t)(r->http_major * 10 + r->http_minor));
    h = mix_u64(h, (uint64_t)r->keep_alive | (uint64_t)r->expect_continue << 1 |
                       (uint64_t)r->upgrade << 2);
    h = touch(h, r->target, r->target_len);
    h = touch(h, r->path, r->path_len);
    h = touch(h, r->query, r->query_len);
    size_t hb = 0;
    for (unsigned i = 0; i < r->nheaders; i++) {
        const struct http_header *hd = &r->headers[i];
        CHECK(strlen(hd->name) == hd->name_len);
        CHECK(hd->value[hd->value_len] == '\0');
        hb += hd->name_len + hd->value_len;
        h = touch(h, hd->name, hd->name_len);
        h = touch(h, hd->value, hd->value_len);
        /* every header can be found by its own name */
        CHECK(http_header_get(r, hd->name, NULL) != NULL);
    }
    CHECK(hb <= p->lim->max_header_bytes);
    h = touch(h, r->body, r->body_len);
    static const char *const names[] = {"host", "content-type", "connection", "upgrade",
                                        "sec-websocket-key", "authorization", "x-request-id",
                                        "content-length", "transfer-encoding", "expect"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        size_t n = 0;
        const char *v = http_header_get(r, names[i], &n);
        if (v)
            h = touch(h, v, n);
    }
    use_router(r);
    use_query(r);
    use_file_helpers(r);
    return h;
}

struct splitter {
    uint64_t state;
    int mode; /* 0: all at once, 1: byte by byte, 2: small chunks, 3: larger chunks */
};

static size_t next_len(struct splitter *s, size_t left)
{
    size_t n = left;
    s->state ^= s->state << 13;
    s->state ^= s->state >> 7;
    s->state ^= s->state << 17;
    if (s->mode == 1)
        n = 1;
    else if (s->mode == 2)
        n = 1 + s->state % 16;
    else if (s->mode == 3)
        n = 1 + s->state % 1500;
    return n < left ? n : left;
}

/* Feeds the whole input as one connection would receive it and answers each request as the
 * server does. Returns a digest of everything that happened. */
static uint64_t run_connection(const char *in, size_t len, struct splitter *sp)
{
    struct http_parser p;
    CHECK(http_parser_init(&p, &LIMITS) == 0);
    uint64_t h = 0x84222325cbf29ce4ull;
    size_t off = 0;
    bool stop = false;
    while (off < len && !stop) {
        size_t clen = next_len(sp, len - off);
        const char *c = in + off;
        int stalls = 0;
        while (clen > 0 && !stop) {
            size_t used = 99999999;
            enum http_parse_status st = http_parser_feed(&p, c, clen, &used);
            CHECK(used <= clen);
            c += used;
            clen -= used;
            off += used;
            /* a status that asks for more work must move forward, or the server spins */
            stalls = used == 0 ? stalls + 1 : 0;
            CHECK(stalls < 3);
            switch (st) {
            case HTTP_PARSE_MORE:
                CHECK(clen == 0);
                break;
            case HTTP_PARSE_CONTINUE:
                CHECK(p.req.expect_continue && p.headers_done);
                h = mix_u64(h, 0xC0 + off);
                break;
            case HTTP_PARSE_DONE:
            case HTTP_PARSE_UPGRADE:
                h = mix_u64(h, use_request(&p, &p.req));
                h = mix_u64(h, (uint64_t)st << 32 | off);
                /* the server answers (an upgrade may be refused) and reads on */
                http_parser_next(&p);
                break;
            case HTTP_PARSE_ERROR:
                CHECK(p.err_status >= 400 && p.err_status <= 599);
                CHECK(p.err_code != NULL && p.err_msg != NULL);
                /* Which error wins may depend on the split: a target that is both too long
                 * and malformed is a 414 when llhttp hands it over in pieces and a 400 when
                 * it sees the bad byte before reporting the span. Either closes the
                 * connection, so only "an error here" is compared. */
                h = mix_u64(h, 0xe0e0e0e0ull);
                stop = true;
                break;
            default:
                CHECK(!"unknown status");
            }
        }
    }
    http_parser_free(&p);
    return h;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *in = (const char *)data;
    /* one pass in a single piece, one split where the input itself decides how */
    struct splitter whole = {.state = 1, .mode = 0};
    uint64_t a = run_connection(in, size, &whole);
    uint64_t seed = mix(0xcbf29ce484222325ull, data, size < 64 ? size : 64) | 1;
    struct splitter split = {.state = seed, .mode = 1 + (int)(seed >> 40) % 3};
    uint64_t b = run_connection(in, size, &split);
    CHECK(a == b); /* splitting the input must not change the outcome */
    return 0;
}
