/* test_http_parser — the I/O-less request parser: request fields, percent-decoding, resumption
 * across any split of the input, pipelining, chunked bodies, every limit at and one past its
 * value, request-smuggling defences, Expect, Upgrade and keep-alive. The accessors of a parsed
 * request (query, percent-decoding, header counts) are test_http_fields. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* before cmocka.h: cmocka defines a fail() macro, and the parser has a fail() function */
#include "http/http_parser.c"

#include <cmocka.h>

static const struct http_limits DEFAULT_LIM = {
    .max_url = 8192, .max_header_bytes = 32768, .max_headers = 100, .max_body = 1 << 20};

static struct http_parser P;

static int parser_setup(void **state)
{
    assert_int_equal(http_parser_init(&P, &DEFAULT_LIM), 0);
    return 0;
}

static int parser_teardown(void **state)
{
    http_parser_free(&P);
    return 0;
}

/* Feeds all of s at once. */
static enum http_parse_status feed(struct http_parser *p, const char *s, size_t *used)
{
    return http_parser_feed(p, s, strlen(s), used);
}

static void expect_done(struct http_parser *p, const char *s)
{
    size_t used = 0;
    assert_int_equal(feed(p, s, &used), HTTP_PARSE_DONE);
    assert_int_equal(used, strlen(s));
}

/* A fresh parser with `lim` must reject s with `status`. */
static void expect_error(const struct http_limits *lim, const char *s, size_t len, int status)
{
    struct http_parser p;
    assert_int_equal(http_parser_init(&p, lim), 0);
    size_t used = 0;
    enum http_parse_status st = http_parser_feed(&p, s, len, &used);
    if (st != HTTP_PARSE_ERROR || p.err_status != status)
        fail_msg("expected error %d, got status %d (%d) for: %.80s", status, st, p.err_status, s);
    assert_non_null(p.err_code);
    assert_non_null(p.err_msg);
    /* errors are sticky: nothing more is parsed on this connection */
    assert_int_equal(http_parser_feed(&p, "GET / HTTP/1.1\r\n\r\n", 18, &used), HTTP_PARSE_ERROR);
    assert_int_equal(used, 0);
    http_parser_free(&p);
}

static void expect_error_str(const struct http_limits *lim, const char *s, int status)
{
    expect_error(lim, s, strlen(s), status);
}

/* --- transcripts: the same input split differently must parse identically ------------------ */

static void describe(struct buf *o, const struct http_request *r, size_t off)
{
    buf_printf(o, "%s [%.*s] path=[%s] query=[%.*s] %d.%d ka=%d ec=%d up=%d @%zu\n",
               r->method_name, (int)r->target_len, r->target, r->path, (int)r->query_len,
               r->query, r->http_major, r->http_minor, r->keep_alive, r->expect_continue,
               r->upgrade, off);
    for (unsigned i = 0; i < r->nheaders; i++)
        buf_printf(o, "  %.*s: %.*s\n", (int)r->headers[i].name_len, r->headers[i].name,
                   (int)r->headers[i].value_len, r->headers[i].value);
    buf_printf(o, "  body %zu [%.*s]\n", r->body_len, (int)r->body_len, r->body);
}

static uint64_t rng_state;

static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

enum split { WHOLE, BYTES, RANDOM };

static size_t next_chunk(enum split how, size_t left)
{
    size_t n = left;
    if (how == BYTES)
        n = 1;
    else if (how == RANDOM)
        n = rng() % 4 == 0 ? 1 + rng() % 200 : 1 + rng() % 7;
    return n < left ? n : left;
}

/* Parses a whole connection's input, answering requests as the server does, and returns a
 * text transcript (caller frees). */
static char *transcript(const struct http_limits *lim, const char *in, size_t len,
                        enum split how)
{
    struct buf o;
    buf_init(&o, 1 << 20);
    struct http_parser p;
    assert_int_equal(http_parser_init(&p, lim), 0);
    size_t off = 0;
    bool stop = false;
    while (off < len && !stop) {
        size_t clen = next_chunk(how, len - off);
        const char *c = in + off;
        while (clen > 0) {
            size_t used = 0;
            enum http_parse_status st = http_parser_feed(&p, c, clen, &used);
            assert_true(used <= clen);
            c += used;
            clen -= used;
            off += used;
            if (st == HTTP_PARSE_MORE) {
                assert_int_equal(clen, 0);
                break;
            }
            if (st == HTTP_PARSE_CONTINUE) {
                buf_printf(&o, "CONTINUE @%zu\n", off);
                continue;
            }
            if (st == HTTP_PARSE_ERROR) {
                buf_printf(&o, "ERROR %d %s\n", p.err_status, p.err_code);
                stop = true;
                break;
            }
            describe(&o, &p.req, off);
            if (st == HTTP_PARSE_UPGRADE) {
                buf_printf(&o, "UPGRADE rest=%zu\n", len - off);
                stop = true;
                break;
            }
            http_parser_next(&p);
        }
    }
    if (!stop)
        buf_printf(&o, "END in_request=%d\n", http_parser_in_request(&p));
    http_parser_free(&p);
    return buf_steal(&o, NULL);
}

static void expect_same_under_splits(const struct http_limits *lim, const char *in, size_t len)
{
    char *whole = transcript(lim, in, len, WHOLE);
    char *bytes = transcript(lim, in, len, BYTES);
    assert_string_equal(bytes, whole);
    free(bytes);
    rng_state = 0x9e3779b97f4a7c15ull;
    for (int i = 0; i < 200; i++) {
        char *r = transcript(lim, in, len, RANDOM);
        assert_string_equal(r, whole);
        free(r);
    }
    free(whole);
}

/* --- basic requests ------------------------------------------------------------------------ */

static void simple_get(void **state)
{
    assert_false(http_parser_in_request(&P));
    expect_done(&P, "GET /health HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\n\r\n");
    const struct http_request *r = &P.req;
    assert_int_equal(r->method, HTTP_GET);
    assert_string_equal(r->method_name, "GET");
    assert_int_equal(r->http_major, 1);
    assert_int_equal(r->http_minor, 1);
    assert_int_equal(r->target_len, 7);
    assert_memory_equal(r->target, "/health", 7);
    assert_string_equal(r->path, "/health");
    assert_int_equal(r->path_len, 7);
    assert_string_equal(r->query, "");
    assert_int_equal(r->query_len, 0);
    assert_int_equal(r->nheaders, 2);
    assert_int_equal(r->headers[0].name_len, 4);
    assert_memory_equal(r->headers[0].name, "Host", 4);
    assert_int_equal(r->headers[0].value_len, 11);
    assert_memory_equal(r->headers[0].value, "example.com", 11);
    assert_int_equal(r->body_len, 0);
    assert_string_equal(r->body, "");
    assert_true(r->keep_alive);
    assert_false(r->expect_continue);
    assert_false(r->upgrade);
    assert_true(http_parser_in_request(&P));
    assert_true(P.headers_done);
    http_parser_next(&P);
    assert_false(http_parser_in_request(&P));
    assert_int_equal(P.req.nheaders, 0);
}

static void header_lookup(void **state)
{
    expect_done(&P, "GET / HTTP/1.1\r\nX-One: 1\r\nx-dup: first\r\nX-DUP: second\r\n"
                    "Empty:\r\nSpaced:   padded value  \r\n\r\n");
    size_t n = 99;
    const char *v = http_header_get(&P.req, "x-one", &n);
    assert_non_null(v);
    assert_int_equal(n, 1);
    assert_string_equal(v, "1"); /* values are NUL-terminated too */
    v = http_header_get(&P.req, "X-Dup", &n);
    assert_string_equal(v, "first"); /* the first of duplicates */
    v = http_header_get(&P.req, "empty", &n);
    assert_non_null(v);
    assert_int_equal(n, 0);
    v = http_header_get(&P.req, "spaced", &n);
    assert_non_null(v);
    assert_memory_equal(v, "padded value", 12); /* leading whitespace dropped */
    assert_null(http_header_get(&P.req, "x-on", NULL));
    assert_null(http_header_get(&P.req, "x-one-more", NULL));
    assert_null(http_header_get(&P.req, "", NULL));
    assert_non_null(http_header_get(&P.req, "X-ONE", NULL)); /* len may be NULL */
}

static void methods_and_versions(void **state)
{
    static const struct {
        const char *req;
        int method;
    } ok[] = {
        {"POST /p HTTP/1.1\r\nContent-Length: 0\r\n\r\n", HTTP_POST},
        {"PUT /p HTTP/1.1\r\nContent-Length: 0\r\n\r\n", HTTP_PUT},
        {"DELETE /p HTTP/1.1\r\n\r\n", HTTP_DELETE},
        {"HEAD /p HTTP/1.1\r\n\r\n", HTTP_HEAD},
        {"OPTIONS /p HTTP/1.1\r\n\r\n", HTTP_OPTIONS},
        {"PATCH /p HTTP/1.1\r\nContent-Length: 0\r\n\r\n", HTTP_PATCH},
        {"GET /p HTTP/1.0\r\n\r\n", HTTP_GET},
    };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        struct http_parser p;
        assert_int_equal(http_parser_init(&p, &DEFAULT_LIM), 0);
        expect_done(&p, ok[i].req);
        assert_int_equal(p.req.method, ok[i].method);
        http_parser_free(&p);
    }
    expect_error_str(&DEFAULT_LIM, "FOO / HTTP/1.1\r\n\r\n", 501); /* unknown method */
    expect_error_str(&DEFAULT_LIM, "get / HTTP/1.1\r\n\r\n", 501);
    expect_error_str(&DEFAULT_LIM, "GET / HTTP/2.0\r\n\r\n", 505);
    expect_error_str(&DEFAULT_LIM, "GET / HTTP/1.1 extra\r\n\r\n", 400);
    expect_error_str(&DEFAULT_LIM, "GET / FTP/1.1\r\n\r\n", 400);
    expect_error(&DEFAULT_LIM, "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11, 501);
    /* a header name must be a token: read otherwise by a proxy in front, it smuggles */
    expect_error_str(&DEFAULT_LIM, "GET / HTTP/1.1\r\nHost : x\r\n\r\n", 400);
    expect_error_str(&DEFAULT_LIM, "GET / HTTP/1.1\r\n: x\r\n\r\n", 400);
    expect_error_str(&DEFAULT_LIM, "GET / HTTP/1.1\r\nA: 1\r\n: x\r\n\r\n", 400);
    expect_error_str(&DEFAULT_LIM, "GET / HTTP/1.1\r\nX(y): x\r\n\r\n", 400);
    expect_error_str(&DEFAULT_LIM, "GET / HTTP/1.1\r\nHo\tst: x\r\n\r\n", 400);
    expect_done(&P, "GET / HTTP/1.1\r\nX-a.b_c~d!#$%&'*+^`|: x\r\n\r\n");
}

static void request_targets(void **state)
{
    /* only origin-form (and OPTIONS *) is served: no proxying */
    expect_error_str(&DEFAULT_LIM, "GET http://example.com/ HTTP/1.1\r\n\r\n", 400);
    expect_error_str(&DEFAULT_LIM, "CONNECT example.com:443 HTTP/1.1\r\n\r\n", 400);
    expect_error_str(&DEFAULT_LIM, "GET x HTTP/1.1\r\n\r\n", 400);
    expect_done(&P, "OPTIONS * HTTP/1.1\r\n\r\n");
    assert_string_equal(P.req.path, "*");
    assert_string_equal(P.req.query, "");
}

static void query_split(void **state)
{
    expect_done(&P, "GET /jobs/1?x=1&y=two&flag HTTP/1.1\r\n\r\n");
    assert_string_equal(P.req.path, "/jobs/1");
    assert_int_equal(P.req.path_len, 7);
    assert_int_equal(P.req.query_len, 14);
    assert_memory_equal(P.req.query, "x=1&y=two&flag", 14);
    assert_int_equal(P.req.target_len, 22);
    http_parser_next(&P);
    expect_done(&P, "GET /a? HTTP/1.1\r\n\r\n");
    assert_string_equal(P.req.path, "/a");
    assert_int_equal(P.req.query_len, 0);
    http_parser_next(&P);
    expect_done(&P, "GET /a?b?c=%zz HTTP/1.1\r\n\r\n"); /* the query is not decoded here */
    assert_string_equal(P.req.path, "/a");
    assert_memory_equal(P.req.query, "b?c=%zz", 7);
}

static void percent_decoding(void **state)
{
    expect_done(&P, "GET /a%20b/%41%6a/c+d/%2F/%25 HTTP/1.1\r\n\r\n");
    assert_string_equal(P.req.path, "/a b/Aj/c+d///%");
    assert_int_equal(P.req.path_len, 15);
    assert_memory_equal(P.req.target, "/a%20b/%41%6a/c+d/%2F/%25", 25); /* raw kept */
    expect_error_str(&DEFAULT_LIM, "GET /a%00b HTTP/1.1\r\n\r\n", 400);
    expect_error_str(&DEFAULT_LIM, "GET /a%zzb HTTP/1.1\r\n\r\n", 400);
    expect_error_str(&DEFAULT_LIM, "GET /a%4 HTTP/1.1\r\n\r\n", 400);
    expect_error_str(&DEFAULT_LIM, "GET /a% HTTP/1.1\r\n\r\n", 400);
    expect_error_str(&DEFAULT_LIM, "GET /a%4? HTTP/1.1\r\n\r\n", 400);
    expect_error_str(&DEFAULT_LIM, "GET /a%-1 HTTP/1.1\r\n\r\n", 400);
}

/* --- resumption ----------------------------------------------------------------------------- */

static const char stream[] =
    "GET /a/b%20c?x=1&y=%41 HTTP/1.1\r\nHost: h\r\nUser-Agent: test/1.0\r\n"
    "X-Long-Header-Name-For-Splitting: some fairly long value to split across reads\r\n\r\n"
    "POST /jobs HTTP/1.1\r\nHost: h\r\nContent-Type: application/json\r\n"
    "Content-Length: 17\r\n\r\n{\"prompt\":\"cat\"}\n"
    "POST /up HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
    "5;ext=1\r\nhello\r\n1a\r\n, abcdefghijklmnopqrstuvwx\r\n0\r\n\r\n"
    "PUT /c HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\nbody"
    "GET /old HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
    "GET /ws HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n\x81\x02hi";

static void split_anywhere_same_result(void **state)
{
    char *t = transcript(&DEFAULT_LIM, stream, sizeof(stream) - 1, WHOLE);
    /* spot-check the reference transcript itself */
    assert_non_null(strstr(t, "GET [/a/b%20c?x=1&y=%41] path=[/a/b c] query=[x=1&y=%41]"));
    assert_non_null(strstr(t, "  body 17 [{\"prompt\":\"cat\"}\n]"));
    assert_non_null(strstr(t, "  body 31 [hello, abcdefghijklmnopqrstuvwx]"));
    assert_non_null(strstr(t, "CONTINUE @"));
    assert_non_null(strstr(t, "  body 4 [body]"));
    assert_non_null(strstr(t, "GET [/old] path=[/old] query=[] 1.0 ka=1"));
    assert_non_null(strstr(t, "up=1"));
    assert_non_null(strstr(t, "UPGRADE rest=4\n"));
    free(t);
    expect_same_under_splits(&DEFAULT_LIM, stream, sizeof(stream) - 1);

    /* after "Connection: close" nothing more is parsed: llhttp drops whatever follows, so a
     * request pipelined behind it is never seen */
    static const char closing[] = "DELETE /jobs/1 HTTP/1.1\r\nConnection: close\r\n\r\n"
                                  "GET /after HTTP/1.1\r\n\r\n";
    t = transcript(&DEFAULT_LIM, closing, sizeof(closing) - 1, WHOLE);
    assert_non_null(strstr(t, "DELETE [/jobs/1] path=[/jobs/1] query=[] 1.1 ka=0"));
    assert_null(strstr(t, "/after"));
    assert_non_null(strstr(t, "END in_request=0"));
    free(t);
    expect_same_under_splits(&DEFAULT_LIM, closing, sizeof(closing) - 1);
}

static void split_errors_same_result(void **state)
{
    static const struct http_limits lim = {
        .max_url = 32, .max_header_bytes = 64, .max_headers = 4, .max_body = 16};
    static const char *const bad[] = {
        "GET /ok HTTP/1.1\r\n\r\nGET /0123456789012345678901234567890123 HTTP/1.1\r\n\r\n",
        "GET /ok HTTP/1.1\r\n\r\nGET / HTTP/1.1\r\nX: 0123456789012345678901234567890123456"
        "789012345678901234567890123\r\n\r\n",
        "GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\nE: 5\r\n\r\n",
        "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n8\r\n01234567\r\n9\r\n012345678\r\n"
        "0\r\n\r\n",
        "POST / HTTP/1.1\r\nContent-Length: 17\r\n\r\n",
        "GET / HTTP/1.1\r\nX: a\r\n folded\r\n\r\n",
        "GET /%zz HTTP/1.1\r\n\r\n",
        "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n5\r\nhelloXX0\r\n\r\n",
        "POST / HTTP/1.1\r\nTransfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n",
        "GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\n\t3\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char *t = transcript(&lim, bad[i], strlen(bad[i]), WHOLE);
        assert_non_null(strstr(t, "ERROR "));
        free(t);
        expect_same_under_splits(&lim, bad[i], strlen(bad[i]));
    }
}

static void byte_by_byte_fields(void **state)
{
    /* names, values and the target arriving one byte per read are stitched back together */
    const char *s = "GET /some/long/path?with=query HTTP/1.1\r\nHeader-One: value one\r\n"
                    "Header-Two: value two\r\n\r\n";
    size_t len = strlen(s), used;
    for (size_t i = 0; i + 1 < len; i++) {
        assert_int_equal(http_parser_feed(&P, s + i, 1, &used), HTTP_PARSE_MORE);
        assert_int_equal(used, 1);
        assert_true(http_parser_in_request(&P));
    }
    assert_int_equal(http_parser_feed(&P, s + len - 1, 1, &used), HTTP_PARSE_DONE);
    assert_int_equal(used, 1);
    assert_string_equal(P.req.path, "/some/long/path");
    assert_int_equal(P.req.nheaders, 2);
    assert_string_equal(http_header_get(&P.req, "header-one", NULL), "value one");
    assert_string_equal(http_header_get(&P.req, "header-two", NULL), "value two");
    assert_int_equal(http_parser_feed(&P, s, 0, &used), HTTP_PARSE_MORE);
    assert_int_equal(used, 0);
}

/* --- pipelining ----------------------------------------------------------------------------- */

static void pipelined(void **state)
{
    const char *a = "GET /first HTTP/1.1\r\nHost: h\r\n\r\n";
    const char *b = "POST /second HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc";
    const char *c = "GET /third?q=1 HTTP/1.1\r\n\r\n";
    char all[256];
    snprintf(all, sizeof(all), "%s%s%s", a, b, c);
    const char *p = all;
    size_t left = strlen(all), used;

    assert_int_equal(http_parser_feed(&P, p, left, &used), HTTP_PARSE_DONE);
    assert_int_equal(used, strlen(a)); /* stops right after the first request */
    assert_string_equal(P.req.path, "/first");
    p += used, left -= used;
    http_parser_next(&P);

    assert_int_equal(http_parser_feed(&P, p, left, &used), HTTP_PARSE_DONE);
    assert_int_equal(used, strlen(b));
    assert_string_equal(P.req.path, "/second");
    assert_int_equal(P.req.body_len, 3);
    assert_string_equal(P.req.body, "abc");
    p += used, left -= used;
    http_parser_next(&P);

    assert_int_equal(http_parser_feed(&P, p, left, &used), HTTP_PARSE_DONE);
    assert_int_equal(used, strlen(c));
    assert_string_equal(P.req.path, "/third");
    assert_int_equal(used, left);
    http_parser_next(&P);
    assert_false(http_parser_in_request(&P));
}

static void pipelined_partial_tail(void **state)
{
    /* a complete request followed by half of the next one */
    const char *s = "GET /1 HTTP/1.1\r\n\r\nGET /2 HTT";
    size_t used;
    assert_int_equal(feed(&P, s, &used), HTTP_PARSE_DONE);
    assert_int_equal(used, 19);
    http_parser_next(&P);
    assert_int_equal(http_parser_feed(&P, s + 19, strlen(s) - 19, &used), HTTP_PARSE_MORE);
    assert_int_equal(used, strlen(s) - 19);
    assert_true(http_parser_in_request(&P));
    assert_int_equal(feed(&P, "P/1.1\r\n\r\n", &used), HTTP_PARSE_DONE);
    assert_int_equal(used, 9);
    assert_string_equal(P.req.path, "/2");
}

/* --- bodies --------------------------------------------------------------------------------- */

static void content_length_body(void **state)
{
    size_t used;
    assert_int_equal(feed(&P, "POST /p HTTP/1.1\r\nContent-Length: 10\r\n\r\n01234", &used),
                     HTTP_PARSE_MORE);
    assert_true(P.headers_done);
    assert_int_equal(feed(&P, "56789EXTRA", &used), HTTP_PARSE_DONE);
    assert_int_equal(used, 5);
    assert_int_equal(P.req.body_len, 10);
    assert_string_equal(P.req.body, "0123456789");
}

static void binary_body(void **state)
{
    const char head[] = "POST /p HTTP/1.1\r\nContent-Length: 4\r\n\r\n";
    char req[64];
    memcpy(req, head, sizeof(head) - 1);
    memcpy(req + sizeof(head) - 1, "\0\1\0\xff", 4);
    size_t used;
    assert_int_equal(http_parser_feed(&P, req, sizeof(head) - 1 + 4, &used), HTTP_PARSE_DONE);
    assert_int_equal(P.req.body_len, 4);
    assert_memory_equal(P.req.body, "\0\1\0\xff", 4);
}

static void chunked_body(void **state)
{
    expect_done(&P, "POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                    "4\r\nWiki\r\n5;name=val\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\n\r\n");
    assert_int_equal(P.req.body_len, 23);
    assert_string_equal(P.req.body, "Wikipedia in\r\n\r\nchunks.");
    assert_true(P.req.keep_alive);
    http_parser_next(&P);
    /* an empty chunked body */
    expect_done(&P, "POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n");
    assert_int_equal(P.req.body_len, 0);
    assert_string_equal(P.req.body, "");
    http_parser_next(&P);
    /* transfer-coding names are case-insensitive */
    expect_done(&P, "POST /c HTTP/1.1\r\nTransfer-Encoding: Chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n");
    assert_string_equal(P.req.body, "x");
}

static void chunked_trailers_keep_headers(void **state)
{
    /* Trailer fields come through the same callbacks as headers. They must not disturb the
     * request's headers, target or query, which point into the parser's storage. */
    char req[2048];
    char trailer[1200];
    memset(trailer, 't', sizeof(trailer) - 1);
    trailer[sizeof(trailer) - 1] = '\0';
    snprintf(req, sizeof(req),
             "POST /t?x=1 HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
             "3\r\nabc\r\n0\r\nX-Checksum: %s\r\nX-Other: 1\r\n\r\n",
             trailer);
    expect_done(&P, req);
    assert_string_equal(P.req.body, "abc");
    assert_int_equal(P.req.nheaders, 2);
    assert_string_equal(http_header_get(&P.req, "host", NULL), "h");
    assert_string_equal(http_header_get(&P.req, "transfer-encoding", NULL), "chunked");
    assert_memory_equal(P.req.target, "/t?x=1", 6);
    assert_memory_equal(P.req.query, "x=1", 3);
    char v[8];
    assert_int_equal(http_query_get(&P.req, "x", v, sizeof(v)), 1);
    http_parser_next(&P);
    expect_done(&P, "GET /after HTTP/1.1\r\nA: b\r\n\r\n");
    assert_int_equal(P.req.nheaders, 1);
    assert_string_equal(http_header_get(&P.req, "a", NULL), "b");
}

static void chunked_trailers_limited(void **state)
{
    /* trailers still count against the header limits: no unbounded memory through them */
    static const struct http_limits lim = {
        .max_url = 64, .max_header_bytes = 64, .max_headers = 4, .max_body = 64};
    char req[512];
    char big[80];
    memset(big, 'v', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    snprintf(req, sizeof(req),
             "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX: %s\r\n\r\n", big);
    expect_error_str(&lim, req, 431);
    expect_error_str(&lim,
                     "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n"
                     "A: 1\r\nB: 1\r\nC: 1\r\nD: 1\r\n\r\n",
                     431);
}

/* --- limits: exactly at the limit passes, one past fails with the right status --------------- */

static const struct http_limits SMALL = {
    .max_url = 64, .max_header_bytes = 128, .max_headers = 4, .max_body = 32};

static char *repeat(char *dst, char c, size_t n)
{
    memset(dst, c, n);
    dst[n] = '\0';
    return dst;
}

/* Parses s in one piece and byte by byte with `lim`; both must reach the same outcome. */
static void expect_outcome(const struct http_limits *lim, const char *s, int status)
{
    char *t = transcript(lim, s, strlen(s), WHOLE);
    char *b = transcript(lim, s, strlen(s), BYTES);
    assert_string_equal(t, b);
    if (status == 0) {
        if (strstr(t, "ERROR"))
            fail_msg("unexpected %s", t);
    } else {
        char want[32];
        snprintf(want, sizeof(want), "ERROR %d ", status);
        if (!strstr(t, want))
            fail_msg("wanted %d, got %s", status, t);
    }
    free(t);
    free(b);
}

static void limit_url(void **state)
{
    char path[128], req[256];
    repeat(path, 'a', 63); /* "/" + 63 = 64 bytes: exactly the limit */
    snprintf(req, sizeof(req), "GET /%s HTTP/1.1\r\n\r\n", path);
    expect_outcome(&SMALL, req, 0);
    repeat(path, 'a', 64);
    snprintf(req, sizeof(req), "GET /%s HTTP/1.1\r\n\r\n", path);
    expect_outcome(&SMALL, req, 414);
    /* the query counts too */
    repeat(path, 'q', 62);
    snprintf(req, sizeof(req), "GET /?%s HTTP/1.1\r\n\r\n", path);
    expect_outcome(&SMALL, req, 0);
    snprintf(req, sizeof(req), "GET /?%sq HTTP/1.1\r\n\r\n", path);
    expect_outcome(&SMALL, req, 414);
    /* a huge target is refused as it arrives, before the line ends */
    struct http_parser p;
    assert_int_equal(http_parser_init(&p, &SMALL), 0);
    size_t used;
    assert_int_equal(feed(&p, "GET /", &used), HTTP_PARSE_MORE);
    for (int i = 0; i < 63; i++)
        assert_int_equal(http_parser_feed(&p, "a", 1, &used), HTTP_PARSE_MORE);
    assert_int_equal(http_parser_feed(&p, "a", 1, &used), HTTP_PARSE_ERROR);
    assert_int_equal(p.err_status, 414);
    assert_string_equal(p.err_code, "URI_TOO_LONG");
    http_parser_free(&p);
}

static void limit_header_bytes(void **state)
{
    /* names + values: "X" + 127 value bytes = 128 */
    char v[256], req[1400];
    repeat(v, 'v', 127);
    snprintf(req, sizeof(req), "GET / HTTP/1.1\r\nX: %s\r\n\r\n", v);
    expect_outcome(&SMALL, req, 0);
    repeat(v, 'v', 128);
    snprintf(req, sizeof(req), "GET / HTTP/1.1\r\nX: %s\r\n\r\n", v);
    expect_outcome(&SMALL, req, 431);
    /* spread over several headers: 4 x (2 + 30) = 128 */
    repeat(v, 'w', 30);
    snprintf(req, sizeof(req), "GET / HTTP/1.1\r\nH1: %s\r\nH2: %s\r\nH3: %s\r\nH4: %s\r\n\r\n",
             v, v, v, v);
    expect_outcome(&SMALL, req, 0);
    snprintf(req, sizeof(req), "GET / HTTP/1.1\r\nH1: %s\r\nH2: %s\r\nH3: %s\r\nH4: %sw\r\n\r\n",
             v, v, v, v);
    expect_outcome(&SMALL, req, 431);
    /* a name alone over the limit */
    repeat(v, 'n', 129);
    snprintf(req, sizeof(req), "GET / HTTP/1.1\r\n%s: x\r\n\r\n", v);
    expect_outcome(&SMALL, req, 431);
    struct http_parser p;
    assert_int_equal(http_parser_init(&p, &SMALL), 0);
    assert_int_equal(http_parser_feed(&p, req, strlen(req), &(size_t){0}), HTTP_PARSE_ERROR);
    assert_string_equal(p.err_code, "HEADERS_TOO_LARGE");
    http_parser_free(&p);
}

static void limit_header_count(void **state)
{
    expect_outcome(&SMALL, "GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n", 0);
    expect_outcome(&SMALL, "GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\nE: 5\r\n\r\n", 431);
    /* empty values count as headers too */
    expect_outcome(&SMALL, "GET / HTTP/1.1\r\nA:\r\nB:\r\nC:\r\nD:\r\nE:\r\n\r\n", 431);
}

static void limit_body(void **state)
{
    char body[64], req[256];
    repeat(body, 'b', 32);
    snprintf(req, sizeof(req), "POST / HTTP/1.1\r\nContent-Length: 32\r\n\r\n%s", body);
    expect_outcome(&SMALL, req, 0);
    snprintf(req, sizeof(req), "POST / HTTP/1.1\r\nContent-Length: 33\r\n\r\n%sb", body);
    expect_outcome(&SMALL, req, 413);
    /* a declared length over the limit is refused at the headers, before any body arrives */
    struct http_parser p;
    assert_int_equal(http_parser_init(&p, &SMALL), 0);
    size_t used;
    assert_int_equal(feed(&p, "POST / HTTP/1.1\r\nContent-Length: 99999999999\r\n\r\n", &used),
                     HTTP_PARSE_ERROR);
    assert_int_equal(p.err_status, 413);
    assert_string_equal(p.err_code, "PAYLOAD_TOO_LARGE");
    http_parser_free(&p);
    /* chunked: counted as the chunks arrive */
    repeat(body, 'c', 16);
    snprintf(req, sizeof(req),
             "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n%s\r\n10\r\n%s\r\n"
             "0\r\n\r\n",
             body, body);
    expect_outcome(&SMALL, req, 0);
    snprintf(req, sizeof(req),
             "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n%s\r\n11\r\n%sc\r\n"
             "0\r\n\r\n",
             body, body);
    expect_outcome(&SMALL, req, 413);
    /* a huge chunk is refused as it streams in */
    snprintf(req, sizeof(req),
             "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nffffffff\r\n%s%s%s", body,
             body, body);
    expect_outcome(&SMALL, req, 413);
}

static void limit_body_zero(void **state)
{
    static const struct http_limits lim = {
        .max_url = 64, .max_header_bytes = 128, .max_headers = 4, .max_body = 0};
    expect_outcome(&lim, "POST / HTTP/1.1\r\nContent-Length: 0\r\n\r\n", 0);
    expect_outcome(&lim, "POST / HTTP/1.1\r\nContent-Length: 1\r\n\r\nx", 413);
    expect_outcome(&lim, "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 0);
    expect_outcome(&lim, "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n",
                   413);
}

/* --- smuggling ------------------------------------------------------------------------------ */

static void smuggling(void **state)
{
    /* both framings: ambiguous between front end and us */
    expect_error_str(&DEFAULT_LIM,
                     "POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
                     "0\r\n\r\nGET /smuggled HTTP/1.1\r\n\r\n",
                     400);
    expect_error_str(&DEFAULT_LIM,
                     "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n"
                     "0\r\n\r\n",
                     400);
    /* two Content-Lengths */
    expect_error_str(&DEFAULT_LIM,
                     "POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", 400);
    expect_error_str(&DEFAULT_LIM,
                     "POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello", 400);
    expect_error_str(&DEFAULT_LIM, "POST / HTTP/1.1\r\nContent-Length: 5, 6\r\n\r\nhello!", 400);
    /* malformed lengths */
    expect_error_str(&DEFAULT_LIM, "POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400);
    expect_error_str(&DEFAULT_LIM, "POST / HTTP/1.1\r\nContent-Length: 1x\r\n\r\nx", 400);
    expect_error_str(&DEFAULT_LIM, "POST / HTTP/1.1\r\nContent-Length: +1\r\n\r\nx", 400);
    expect_error_str(&DEFAULT_LIM,
                     "POST / HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n", 400);
    /* obs-fold: a header continued on the next line */
    expect_error_str(&DEFAULT_LIM, "GET / HTTP/1.1\r\nX-A: one\r\n two\r\n\r\n", 400);
    expect_error_str(&DEFAULT_LIM,
                     "POST / HTTP/1.1\r\nTransfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n", 400);
    expect_error_str(&DEFAULT_LIM, "GET / HTTP/1.1\r\nX-A: one\r\n\ttwo\r\n\r\n", 400);
    /* whitespace between the name and the colon */
    expect_error_str(&DEFAULT_LIM, "POST / HTTP/1.1\r\nContent-Length : 5\r\n\r\nhello", 400);
    expect_error_str(&DEFAULT_LIM, "GET / HTTP/1.1\r\n X: y\r\n\r\n", 400);
    /* bad chunk sizes */
    const char *te = "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
    static const char *const chunks[] = {"zz\r\nab\r\n0\r\n\r\n", "-1\r\n", "0x5\r\nhello\r\n",
                                         "\r\n", "fffffffffffffffff\r\n",
                                         /* chunk data must end in CR LF (llhttp 8.1 skips
                                          * the two bytes unchecked) */
                                         "5\r\nhelloXX0\r\n\r\n",
                                         "5\r\nhelloXX5\r\nworld\r\n0\r\n\r\n",
                                         "5\r\nhello\rX0\r\n\r\n", "5\r\nhelloX\n0\r\n\r\n",
                                         "5\r\nhello\n\r0\r\n\r\n"};
    for (size_t i = 0; i < sizeof(chunks) / sizeof(chunks[0]); i++) {
        char req[256];
        snprintf(req, sizeof(req), "%s%s", te, chunks[i]);
        expect_error_str(&DEFAULT_LIM, req, 400);
    }
    /* transfer codings other than exactly "chunked" */
    expect_error_str(&DEFAULT_LIM,
                     "POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", 501);
    expect_error_str(&DEFAULT_LIM,
                     "POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 501);
    /* chunked not last: llhttp itself refuses the framing (400) before we see the value */
    expect_error_str(&DEFAULT_LIM,
                     "POST / HTTP/1.1\r\nTransfer-Encoding: chunked, identity\r\n\r\n", 400);
    expect_error_str(&DEFAULT_LIM,
                     "POST / HTTP/1.1\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n", 501);
    /* bare CR inside a header value or the request line */
    expect_error_str(&DEFAULT_LIM, "GET / HTTP/1.1\r\nX: a\rb\r\n\r\n", 400);
    expect_error_str(&DEFAULT_LIM, "GET /a\rb HTTP/1.1\r\n\r\n", 400);
    /* a NUL in a header value */
    static const char nul[] = "GET / HTTP/1.1\r\nX: a\0b\r\n\r\n";
    expect_error(&DEFAULT_LIM, nul, sizeof(nul) - 1, 400);
}

/* --- Expect, Upgrade, keep-alive ------------------------------------------------------------ */

static void expect_continue(void **state)
{
    const char *head = "POST /upload HTTP/1.1\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n";
    size_t used;
    assert_int_equal(feed(&P, head, &used), HTTP_PARSE_CONTINUE);
    assert_int_equal(used, strlen(head));
    assert_true(P.headers_done);
    assert_true(P.req.expect_continue);
    /* the caller sends "100 Continue" and keeps feeding */
    assert_int_equal(http_parser_feed(&P, "", 0, &used), HTTP_PARSE_MORE);
    assert_int_equal(feed(&P, "hel", &used), HTTP_PARSE_MORE);
    assert_int_equal(used, 3);
    assert_int_equal(feed(&P, "lo", &used), HTTP_PARSE_DONE);
    assert_int_equal(used, 2);
    assert_string_equal(P.req.body, "hello");
    assert_true(P.req.expect_continue);
}

static void expect_continue_same_buffer(void **state)
{
    /* head and body in one read: CONTINUE stops at the end of the head */
    const char *body = "2\r\nok\r\n0\r\n\r\n";
    const char *s = "PUT /x HTTP/1.1\r\nExpect: 100-Continue\r\nTransfer-Encoding: chunked\r\n\r\n"
                    "2\r\nok\r\n0\r\n\r\n";
    size_t used, head = strlen(s) - strlen(body);
    assert_int_equal(feed(&P, s, &used), HTTP_PARSE_CONTINUE);
    assert_int_equal(used, head);
    assert_int_equal(feed(&P, s + head, &used), HTTP_PARSE_DONE);
    assert_int_equal(used, strlen(body));
    assert_string_equal(P.req.body, "ok");
}

static void expect_without_body_or_old_version(void **state)
{
    /* nothing to wait for: no CONTINUE */
    expect_done(&P, "POST /x HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 0\r\n\r\n");
    assert_false(P.req.expect_continue);
    http_parser_next(&P);
    expect_done(&P, "GET /x HTTP/1.1\r\nExpect: 100-continue\r\n\r\n");
    assert_false(P.req.expect_continue);
    http_parser_next(&P);
    /* HTTP/1.0 clients do not understand 1xx */
    expect_done(&P, "POST /x HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nhi");
    assert_false(P.req.expect_continue);
    /* other expectations are refused */
    expect_error_str(&DEFAULT_LIM, "POST / HTTP/1.1\r\nExpect: 200-ok\r\nContent-Length: 1\r\n\r\nx",
                     417);
    /* a body too large for the limit is refused before inviting it */
    expect_error_str(&SMALL,
                     "POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 33\r\n\r\n", 413);
}

static void upgrade(void **state)
{
    const char *head = "GET /ws HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\n"
                       "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\r\n";
    char s[256];
    snprintf(s, sizeof(s), "%s\x81\x05hello", head);
    size_t used;
    assert_int_equal(feed(&P, s, &used), HTTP_PARSE_UPGRADE);
    assert_int_equal(used, strlen(head)); /* the frame bytes belong to the new protocol */
    assert_true(P.req.upgrade);
    assert_string_equal(P.req.path, "/ws");
    assert_string_equal(http_header_get(&P.req, "upgrade", NULL), "websocket");
    /* a handler may refuse the upgrade and answer normally: parsing then goes on */
    http_parser_next(&P);
    expect_done(&P, "GET /next HTTP/1.1\r\n\r\n");
    assert_string_equal(P.req.path, "/next");
    assert_false(P.req.upgrade);
}

static void upgrade_needs_connection_header(void **state)
{
    expect_done(&P, "GET /ws HTTP/1.1\r\nUpgrade: websocket\r\n\r\n");
    assert_false(P.req.upgrade);
}

static void keep_alive_rules(void **state)
{
    static const struct {
        const char *req;
        bool keep;
    } cases[] = {
        {"GET / HTTP/1.1\r\n\r\n", true},
        {"GET / HTTP/1.1\r\nConnection: close\r\n\r\n", false},
        {"GET / HTTP/1.1\r\nConnection: Close\r\n\r\n", false},
        {"GET / HTTP/1.1\r\nConnection: keep-alive\r\n\r\n", true},
        {"GET / HTTP/1.0\r\n\r\n", false},
        {"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", true},
        {"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", true},
        {"GET / HTTP/1.0\r\nConnection: close\r\n\r\n", false},
        {"POST / HTTP/1.0\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\nx", true},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct http_parser p;
        assert_int_equal(http_parser_init(&p, &DEFAULT_LIM), 0);
        expect_done(&p, cases[i].req);
        if (p.req.keep_alive != cases[i].keep)
            fail_msg("keep_alive %d for %s", p.req.keep_alive, cases[i].req);
        http_parser_free(&p);
    }
}

static void reuse_after_next(void **state)
{
    /* many requests on one parser: storage is reused and nothing leaks from one to the next */
    char req[128];
    for (int i = 0; i < 1000; i++) {
        snprintf(req, sizeof(req), "POST /r/%d?i=%d HTTP/1.1\r\nX-I: %d\r\nContent-Length: 1\r\n\r\n%c",
                 i, i, i, 'a' + i % 26);
        expect_done(&P, req);
        char path[32], v[16];
        snprintf(path, sizeof(path), "/r/%d", i);
        assert_string_equal(P.req.path, path);
        assert_int_equal(P.req.nheaders, 2);
        snprintf(path, sizeof(path), "%d", i);
        assert_string_equal(http_header_get(&P.req, "x-i", NULL), path);
        assert_int_equal(http_query_get(&P.req, "i", v, sizeof(v)), (int)strlen(path));
        assert_int_equal(P.req.body[0], 'a' + i % 26);
        http_parser_next(&P);
    }
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, parser_setup, parser_teardown)
    const struct CMUnitTest tests[] = {
        T(simple_get),
        T(header_lookup),
        T(methods_and_versions),
        T(request_targets),
        T(query_split),
        T(percent_decoding),
        T(split_anywhere_same_result),
        T(split_errors_same_result),
        T(byte_by_byte_fields),
        T(pipelined),
        T(pipelined_partial_tail),
        T(content_length_body),
        T(binary_body),
        T(chunked_body),
        T(chunked_trailers_keep_headers),
        T(chunked_trailers_limited),
        T(limit_url),
        T(limit_header_bytes),
        T(limit_header_count),
        T(limit_body),
        T(limit_body_zero),
        T(smuggling),
        T(expect_continue),
        T(expect_continue_same_buffer),
        T(expect_without_body_or_old_version),
        T(upgrade),
        T(upgrade_needs_connection_header),
        T(keep_alive_rules),
        T(reuse_after_next),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
