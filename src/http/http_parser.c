/* http_parser — see http_parser.h. */
#include "http/http_parser.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct hdr_span {
    size_t name_off, name_len, val_off, val_len;
};

#define PARSER(ll) ((struct http_parser *)(ll))

static int fail(struct http_parser *p, int status, const char *code, const char *msg)
{
    p->err_status = status;
    p->err_code = code;
    p->err_msg = msg;
    return -1;
}

static int on_message_begin(llhttp_t *ll)
{
    struct http_parser *p = PARSER(ll);
    p->began = true;
    return 0;
}

static int on_url(llhttp_t *ll, const char *at, size_t n)
{
    struct http_parser *p = PARSER(ll);
    if (p->target_len + n > p->lim->max_url)
        return fail(p, 414, "URI_TOO_LONG", "request target exceeds the configured limit");
    if (p->target_len == 0)
        p->target_off = p->head.len;
    if (buf_append(&p->head, at, n) < 0)
        return fail(p, 414, "URI_TOO_LONG", "request target exceeds the configured limit");
    p->target_len += n;
    return 0;
}

static int on_url_complete(llhttp_t *ll)
{
    struct http_parser *p = PARSER(ll);
    if (buf_append(&p->head, "", 1) < 0)
        return fail(p, 414, "URI_TOO_LONG", "request target exceeds the configured limit");
    return 0;
}

static int header_bytes_add(struct http_parser *p, size_t n)
{
    p->header_bytes += n;
    if (p->header_bytes > p->lim->max_header_bytes)
        return fail(p, 431, "HEADERS_TOO_LARGE", "request headers exceed the configured size");
    return 0;
}

/* llhttp 8 accepts an obs-fold (a header line starting with SP or HT continues the previous
 * value) and hands us the pieces without the line break, so no value ever holds a CR or LF.
 * Look at the raw bytes instead: in the header section a LF followed by SP or HT is a fold.
 * Called at each header span with the span's first byte included (llhttp starts a continued
 * value at the whitespace); the line state carries across reads in fold_lf. */
static int fold_check(struct http_parser *p, const char *upto)
{
    for (const char *s = p->fold_scan; s < upto; s++) {
        if (p->fold_lf && (*s == ' ' || *s == '\t'))
            return fail(p, 400, "BAD_REQUEST", "obsolete line folding in a header value");
        p->fold_lf = *s == '\n';
    }
    p->fold_scan = upto;
    return 0;
}

static int fold_check_span(struct http_parser *p, const char *at, size_t n)
{
    if (fold_check(p, at + (n > 0)) < 0)
        return -1;
    p->fold_scan = at + n;
    p->fold_lf = false;
    return 0;
}

/* Trailer fields (after a chunked body) come through the header callbacks too. They count
 * against the header limits but are not kept: appending them to p->head could move it and leave
 * the finished request's target, query and header pointers dangling (found by the unit test). */
static int on_trailer_field_complete(struct http_parser *p)
{
    if (p->nheaders >= p->lim->max_headers)
        return fail(p, 431, "HEADERS_TOO_LARGE", "too many request headers");
    p->nheaders++;
    return 0;
}

static int on_header_field(llhttp_t *ll, const char *at, size_t n)
{
    struct http_parser *p = PARSER(ll);
    if (p->headers_done)
        return header_bytes_add(p, n); /* a trailer */
    if (fold_check_span(p, at, n) < 0)
        return -1;
    if (!p->in_value && p->nheaders > 0 && p->spans[p->nheaders - 1].name_len == SIZE_MAX) {
        /* continuation of a field name split across reads */
    } else {
        if (p->nheaders >= p->lim->max_headers)
            return fail(p, 431, "HEADERS_TOO_LARGE", "too many request headers");
        struct hdr_span *s = &p->spans[p->nheaders++];
        s->name_off = p->head.len;
        s->name_len = SIZE_MAX;
        s->val_off = 0;
        s->val_len = 0;
        p->in_value = false;
    }
    if (header_bytes_add(p, n) < 0 || buf_append(&p->head, at, n) < 0)
        return fail(p, 431, "HEADERS_TOO_LARGE", "request headers exceed the configured size");
    return 0;
}

/* RFC 9110 5.1: a field name is a token. "Host : x" or ": x" must not be read one way here and
 * another way by a proxy in front (request smuggling): 400. */
static bool field_name_ok(const char *s, size_t n)
{
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              (c && strchr("!#$%&'*+-.^_`|~", c))))
            return false;
    }
    return true;
}

static int on_header_field_complete(llhttp_t *ll)
{
    struct http_parser *p = PARSER(ll);
    if (p->headers_done)
        return on_trailer_field_complete(p);
    struct hdr_span *s = &p->spans[p->nheaders - 1];
    s->name_len = p->head.len - s->name_off;
    if (!field_name_ok(p->head.data + s->name_off, s->name_len))
        return fail(p, 400, "BAD_REQUEST", "a header field name is not a token");
    if (buf_append(&p->head, "", 1) < 0)
        return fail(p, 431, "HEADERS_TOO_LARGE", "request headers exceed the configured size");
    s->val_off = p->head.len;
    p->in_value = true;
    return 0;
}

static int on_header_value(llhttp_t *ll, const char *at, size_t n)
{
    struct http_parser *p = PARSER(ll);
    if (p->headers_done)
        return header_bytes_add(p, n); /* a trailer */
    if (fold_check_span(p, at, n) < 0)
        return -1;
    if (header_bytes_add(p, n) < 0 || buf_append(&p->head, at, n) < 0)
        return fail(p, 431, "HEADERS_TOO_LARGE", "request headers exceed the configured size");
    return 0;
}

static int on_header_value_complete(llhttp_t *ll)
{
    struct http_parser *p = PARSER(ll);
    if (p->headers_done)
        return 0; /* a trailer: not kept */
    struct hdr_span *s = &p->spans[p->nheaders - 1];
    s->val_len = p->head.len - s->val_off;
    if (buf_append(&p->head, "", 1) < 0)
        return fail(p, 431, "HEADERS_TOO_LARGE", "request headers exceed the configured size");
    /* An obs-fold (a value continued on the next line) is a smuggling vector; fold_check
     * catches it in the raw bytes. As a second line of defence, no value may hold a break. */
    const char *v = p->head.data + s->val_off;
    if (memchr(v, '\r', s->val_len) || memchr(v, '\n', s->val_len))
        return fail(p, 400, "BAD_REQUEST", "obsolete line folding in a header value");
    p->in_value = false;
    return 0;
}

static bool token_eq(const char *v, size_t n, const char *tok)
{
    size_t tl = strlen(tok);
    return n == tl && strncasecmp(v, tok, n) == 0;
}

static int check_path(struct http_parser *p)
{
    struct http_request *r = &p->req;
    const char *t = r->target;
    if (r->method == HTTP_OPTIONS && token_eq(t, r->target_len, "*")) {
        r->path = "*";
        r->path_len = 1;
        r->query = "";
        return 0;
    }
    if (r->target_len == 0 || t[0] != '/')
        return fail(p, 400, "BAD_REQUEST", "request target must be an absolute path");
    const char *q = memchr(t, '?', r->target_len);
    size_t plen = q ? (size_t)(q - t) : r->target_len;
    r->query = q ? q + 1 : "";
    r->query_len = q ? r->target_len - plen - 1 : 0;
    buf_reset(&p->path, 4096);
    if (buf_reserve(&p->path, plen) < 0)
        return fail(p, 414, "URI_TOO_LONG", "request target exceeds the configured limit");
    int n = http_pct_decode(t, plen, p->path.data, plen + 1, false);
    if (n < 0)
        return fail(p, 400, "BAD_REQUEST", "bad percent-encoding in the request path");
    p->path.len = (size_t)n;
    r->path = p->path.data;
    r->path_len = (size_t)n;
    return 0;
}

static int check_framing(struct http_parser *p)
{
    struct http_request *r = &p->req;
    size_t n;
    const char *te = http_header_get(r, "transfer-encoding", &n);
    if (te && !token_eq(te, n, "chunked"))
        return fail(p, 501, "NOT_IMPLEMENTED", "only Transfer-Encoding: chunked is supported");
    if ((p->ll.flags & F_CONTENT_LENGTH) && p->ll.content_length > p->lim->max_body)
        return fail(p, 413, "PAYLOAD_TOO_LARGE", "request body exceeds the configured limit");
    const char *ex = http_header_get(r, "expect", &n);
    if (ex) {
        if (!token_eq(ex, n, "100-continue"))
            return fail(p, 417, "EXPECTATION_FAILED", "only Expect: 100-continue is supported");
        if (r->http_minor >= 1 && ((p->ll.flags & F_CHUNKED) || p->ll.content_length > 0))
            r->expect_continue = true;
    }
    return 0;
}

static int on_headers_complete(llhttp_t *ll)
{
    struct http_parser *p = PARSER(ll);
    struct http_request *r = &p->req;
    for (unsigned i = 0; i < p->nheaders; i++) {
        struct hdr_span *s = &p->spans[i];
        p->headers[i].name = p->head.data + s->name_off;
        p->headers[i].name_len = s->name_len;
        p->headers[i].value = p->head.data + s->val_off;
        p->headers[i].value_len = s->val_len;
    }
    r->headers = p->headers;
    r->nheaders = p->nheaders;
    r->method = llhttp_get_method(ll);
    r->method_name = llhttp_method_name((llhttp_method_t)r->method);
    r->http_major = llhttp_get_http_major(ll);
    r->http_minor = llhttp_get_http_minor(ll);
    r->target = p->head.data + p->target_off;
    r->target_len = p->target_len;
    if (r->http_major != 1)
        return fail(p, 505, "HTTP_VERSION_NOT_SUPPORTED", "only HTTP/1.x is supported");
    if (check_path(p) < 0 || check_framing(p) < 0)
        return -1;
    p->headers_done = true;
    if (r->expect_continue)
        return HPE_PAUSED;
    return 0;
}

/* llhttp 8.1 skips the two bytes after each chunk's data without looking at them, so
 * "5\r\nhelloXX0\r\n\r\n" parsed as a valid body: framing a front end would read differently.
 * Check them ourselves: right after the chunk data, or at the start of the next read if the
 * data ended this one. */
static int chunk_crlf_check(struct http_parser *p, const char *at)
{
    for (; p->crlf_left > 0 && at < p->feed_end; at++, p->crlf_left--) {
        if (*at != (p->crlf_left == 2 ? '\r' : '\n'))
            return fail(p, 400, "BAD_REQUEST", "chunk data not followed by CR LF");
    }
    return 0;
}

static int on_body(llhttp_t *ll, const char *at, size_t n)
{
    struct http_parser *p = PARSER(ll);
    if (buf_append(&p->body, at, n) < 0)
        return fail(p, 413, "PAYLOAD_TOO_LARGE", "request body exceeds the configured limit");
    if ((p->ll.flags & F_CHUNKED) && p->ll.content_length == 0) { /* this chunk's data ended */
        p->crlf_left = 2;
        return chunk_crlf_check(p, at + n);
    }
    return 0;
}

/* A chunk announced larger than what the body may still take is refused from its size line,
 * as a Content-Length is from the headers: no need to wait for (or read) its data first. */
static int on_chunk_header(llhttp_t *ll)
{
    struct http_parser *p = PARSER(ll);
    if (ll->content_length > p->lim->max_body - p->body.len)
        return fail(p, 413, "PAYLOAD_TOO_LARGE", "request body exceeds the configured limit");
    return 0;
}

static int on_message_complete(llhttp_t *ll)
{
    struct http_parser *p = PARSER(ll);
    struct http_request *r = &p->req;
    r->body = p->body.data ? p->body.data : "";
    r->body_len = p->body.len;
    r->keep_alive = llhttp_should_keep_alive(ll);
    r->upgrade = ll->upgrade;
    return r->upgrade ? 0 : HPE_PAUSED;
}

static const llhttp_settings_t settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_url_complete = on_url_complete,
    .on_header_field = on_header_field,
    .on_header_field_complete = on_header_field_complete,
    .on_header_value = on_header_value,
    .on_header_value_complete = on_header_value_complete,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_chunk_header = on_chunk_header,
    .on_message_complete = on_message_complete,
};

int http_parser_init(struct http_parser *p, const struct http_limits *lim)
{
    memset(p, 0, sizeof(*p));
    p->lim = lim;
    /* target + names + values + a NUL after each + slack for the field separators */
    buf_init(&p->head, lim->max_url + lim->max_header_bytes + 2 * lim->max_headers + 16);
    buf_init(&p->body, lim->max_body);
    buf_init(&p->path, lim->max_url + 1);
    p->spans = calloc(lim->max_headers ? lim->max_headers : 1, sizeof(*p->spans));
    p->headers = calloc(lim->max_headers ? lim->max_headers : 1, sizeof(*p->headers));
    if (!p->spans || !p->headers)
        return -ENOMEM;
    llhttp_init(&p->ll, HTTP_REQUEST, &settings);
    return 0;
}

void http_parser_free(struct http_parser *p)
{
    buf_free(&p->head);
    buf_free(&p->body);
    buf_free(&p->path);
    free(p->spans);
    free(p->headers);
}

void http_parser_next(struct http_parser *p)
{
    buf_reset(&p->head, 16384);
    buf_reset(&p->body, 65536);
    p->nheaders = 0;
    p->header_bytes = 0;
    p->target_off = p->target_len = 0;
    p->in_value = false;
    p->began = false;
    p->headers_done = false;
    p->fold_lf = false;
    p->crlf_left = 0;
    memset(&p->req, 0, sizeof(p->req));
}

static enum http_parse_status map_error(struct http_parser *p, llhttp_errno_t e)
{
    if (p->err_status == 0) {
        p->err_status = 400;
        p->err_code = "BAD_REQUEST";
        p->err_msg = llhttp_get_error_reason(&p->ll);
        if (e == HPE_INVALID_METHOD) {
            p->err_status = 501;
            p->err_code = "NOT_IMPLEMENTED";
            p->err_msg = "unknown request method";
        }
        if (!p->err_msg)
            p->err_msg = llhttp_errno_name(e);
    }
    return HTTP_PARSE_ERROR;
}

enum http_parse_status http_parser_feed(struct http_parser *p, const char *data, size_t len,
                                        size_t *consumed)
{
    *consumed = 0;
    if (p->err_status)
        return HTTP_PARSE_ERROR;
    if (p->paused) {
        llhttp_resume(&p->ll);
        p->paused = false;
    }
    if (p->upgrade_paused) {
        llhttp_resume_after_upgrade(&p->ll);
        p->upgrade_paused = false;
    }
    if (len == 0)
        return HTTP_PARSE_MORE;
    p->fold_scan = data;
    p->feed_end = data + len;
    if (chunk_crlf_check(p, data) < 0)
        return HTTP_PARSE_ERROR;
    llhttp_errno_t e = llhttp_execute(&p->ll, data, len);
    if (e == HPE_OK) {
        *consumed = len;
        /* still in the header section: a line break at the end of this read may be folded
         * at the start of the next one */
        if (p->began && !p->headers_done && fold_check(p, data + len) < 0)
            return HTTP_PARSE_ERROR;
        return HTTP_PARSE_MORE;
    }
    const char *pos = llhttp_get_error_pos(&p->ll);
    *consumed = pos ? (size_t)(pos - data) : len;
    if (e == HPE_PAUSED) {
        p->paused = true;
        return p->req.body ? HTTP_PARSE_DONE : HTTP_PARSE_CONTINUE;
    }
    if (e == HPE_PAUSED_UPGRADE) {
        p->upgrade_paused = true;
        return HTTP_PARSE_UPGRADE;
    }
    return map_error(p, e);
}
