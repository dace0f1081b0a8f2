/* http_response — building responses for an exchange: status line and headers, bodies from
 * memory, chunked streams, JSON errors, the access log line, and connection take-over. */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/http_internal.h"

const char *http_status_reason(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 411: return "Length Required";
    case 412: return "Precondition Failed";
    case 413: return "Payload Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 416: return "Range Not Satisfiable";
    case 417: return "Expectation Failed";
    case 422: return "Unprocessable Entity";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
    }
}

/* A client-supplied X-Request-Id is echoed only when it is short and plain. */
static bool request_id_sane(const char *v, size_t n)
{
    if (n == 0 || n > 64)
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = v[i];
        bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
                  ch == '-' || ch == '_' || ch == '.' || ch == ':';
        if (!ok)
            return false;
    }
    return true;
}

void exchange_reset(struct http_exchange *ex)
{
    struct http_conn *c = ex->conn;
    struct http_server *s = c->srv;
    ex->active = ex->responded = ex->streaming = ex->head = ex->close_after = false;
    ex->unframed = ex->aborted = false;
    ex->start_ns = s->ring->now_ns;
    ex->abort_cb = NULL;
    ex->abort_arg = NULL;
    ex->status = 0;
    ex->body_bytes = 0;
    ex->match.nparams = 0;
    ex->match.route = NULL;
    memset(ex->app_slot, 0, sizeof(ex->app_slot));
    buf_reset(&ex->headers, 8192);
    size_t n = 0;
    const char *rid = c->parser.req.nheaders ? http_header_get(&c->parser.req, "x-request-id", &n)
                                             : NULL;
    if (rid && request_id_sane(rid, n)) {
        memcpy(ex->request_id, rid, n);
        ex->request_id[n] = '\0';
    } else {
        /* prefix (14 hex) + counter (at least 8 hex), without snprintf on the hot path */
        static const char hex[] = "0123456789abcdef";
        size_t pl = strlen(s->id_prefix);
        memcpy(ex->request_id, s->id_prefix, pl);
        uint64_t v = ++s->req_counter;
        int digits = 8;
        while (digits < 16 && (v >> (4 * digits)))
            digits++;
        for (int i = digits - 1; i >= 0; i--, v >>= 4)
            ex->request_id[pl + (size_t)i] = hex[v & 15];
        ex->request_id[pl + (size_t)digits] = '\0';
    }
}

void exchange_log(struct http_exchange *ex)
{
    struct http_conn *c = ex->conn;
    struct http_server *s = c->srv;
    if (!s->cfg->access_log || s->log->level > LOG_INFO)
        return;
    const struct http_request *r = &c->parser.req;
    char path[512];
    const char *p = r->path ? r->path : "";
    json_escape(path, sizeof(path), p, strlen(p));
    uint64_t us = (ring_clock_ns() - ex->start_ns) / 1000;
    log_emit(s->log, LOG_INFO, "request",
             "\"requestId\":\"%s\",\"method\":\"%s\",\"path\":\"%s\",\"status\":%d,"
             "\"bytes\":%zu,\"durationUs\":%llu,\"peer\":\"%s\"",
             ex->request_id, r->method_name ? r->method_name : "-", path, ex->status,
             ex->body_bytes, (unsigned long long)us, c->peer);
}

/* Queues the status line and headers. clen < 0: chunked (or none for 1xx/204/304). */
/* A tiny writer for response heads: memcpy and a decimal formatter instead of snprintf, which
 * was the largest user-space cost of small responses (bench/ANALYSIS.md). */
struct head_w {
    char *p, *end;
    bool full;
};

static void put(struct head_w *w, const char *s, size_t n)
{
    if (w->full || (size_t)(w->end - w->p) < n) {
        w->full = true;
        return;
    }
    memcpy(w->p, s, n);
    w->p += n;
}

static void puts_(struct head_w *w, const char *s)
{
    put(w, s, strlen(s));
}

static void put_u64(struct head_w *w, uint64_t v)
{
    char tmp[24];
    int i = (int)sizeof(tmp);
    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    put(w, tmp + i, sizeof(tmp) - (size_t)i);
}

/* "Server: ...\r\nDate: ...\r\n", rebuilt once a second. */
static const char *head_common(struct http_server *s, size_t *len)
{
    const char *date = http_date(s); /* refreshes s->date_sec when the second changes */
    if (s->common_sec != s->date_sec || !s->common_len) {
        int n = snprintf(s->common, sizeof(s->common), "Server: %s\r\nDate: %s\r\n",
                         s->cfg->server_name, date);
        s->common_len = n > 0 && (size_t)n < sizeof(s->common) ? (size_t)n : 0;
        s->common_sec = s->date_sec;
    }
    *len = s->common_len;
    return s->common;
}

int response_head(struct http_exchange *ex, int status, const char *ctype, int64_t clen)
{
    struct http_conn *c = ex->conn;
    struct http_server *s = c->srv;
    const struct http_request *r = &c->parser.req;
    char head[1024];
    struct head_w w = {head, head + sizeof(head), false};
    ex->status = status;
    ex->responded = true;
    if (s->shutting_down)
        ex->close_after = true;
    size_t cl;
    const char *common = head_common(s, &cl);
    puts_(&w, "HTTP/1.1 ");
    put_u64(&w, (uint64_t)status);
    put(&w, " ", 1);
    puts_(&w, http_status_reason(status));
    put(&w, "\r\n", 2);
    put(&w, common, cl);
    puts_(&w, "X-Request-Id: ");
    puts_(&w, ex->request_id);
    put(&w, "\r\n", 2);
    if (ctype) {
        puts_(&w, "Content-Type: ");
        puts_(&w, ctype);
        put(&w, "\r\n", 2);
    }
    bool bodyless = status < 200 || status == 204 || status == 304;
    if (!bodyless && clen >= 0) {
        puts_(&w, "Content-Length: ");
        put_u64(&w, (uint64_t)clen);
        put(&w, "\r\n", 2);
    } else if (!bodyless && r->http_minor == 0) {
        /* HTTP/1.0 has no chunked coding (RFC 9112 7): the body ends with the connection */
        ex->unframed = true;
        ex->close_after = true;
    } else if (!bodyless) {
        puts_(&w, "Transfer-Encoding: chunked\r\n");
    }
    if (status != 101 && ex->close_after)
        puts_(&w, "Connection: close\r\n");
    else if (status != 101 && r->http_minor == 0)
        puts_(&w, "Connection: keep-alive\r\n");
    if (w.full)
        return -ENOBUFS;
    int rc = out_append(c, head, (size_t)(w.p - head));
    if (rc == 0 && ex->headers.len)
        rc = out_append(c, ex->headers.data, ex->headers.len);
    if (rc == 0)
        rc = out_append(c, "\r\n", 2);
    exchange_log(ex);
    return rc;
}

static void finish(struct http_exchange *ex)
{
    struct http_conn *c = ex->conn;
    if (c->srv->log->level <= LOG_DEBUG)
        LOG(c->srv->log, LOG_DEBUG, "response queued", "\"requestId\":\"%s\"", ex->request_id);
    conn_exchange_done(c);
}

int http_add_header(struct http_exchange *ex, const char *name, const char *value)
{
    /* CR/LF in a value would let a caller inject headers; refuse it. */
    if (strpbrk(name, "\r\n:") || strpbrk(value, "\r\n"))
        return -EINVAL;
    return buf_printf(&ex->headers, "%s: %s\r\n", name, value);
}

void http_respond(struct http_exchange *ex, int status, const char *ctype, const void *body,
                  size_t len)
{
    struct http_conn *c = ex->conn;
    if (!ex->active || ex->responded)
        return;
    ex->body_bytes = len;
    if (!c->dead) {
        response_head(ex, status, ctype, (int64_t)len);
        if (len && !ex->head && status != 304 && status != 204)
            out_append(c, body, len);
    }
    finish(ex);
}

void http_respond_owned(struct http_exchange *ex, int status, const char *ctype, void *body,
                        size_t len, void (*free_fn)(void *))
{
    struct http_conn *c = ex->conn;
    if (!ex->active || ex->responded) {
        if (free_fn)
            free_fn(body);
        return;
    }
    ex->body_bytes = len;
    if (!c->dead) {
        response_head(ex, status, ctype, (int64_t)len);
        if (len && !ex->head) {
            out_append_ext(c, body, len, free_fn);
            body = NULL;
        }
    }
    if (body && free_fn)
        free_fn(body);
    finish(ex);
}

void http_respond_json(struct http_exchange *ex, int status, const char *json)
{
    http_respond(ex, status, "application/json", json, strlen(json));
}

void http_respond_error(struct http_exchange *ex, int status, const char *code, const char *fmt,
                        ...)
{
    char msg[512], emsg[1024], body[1400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    json_escape(emsg, sizeof(emsg), msg, strlen(msg));
    int n = snprintf(body, sizeof(body),
                     "{\"error\":{\"code\":\"%s\",\"message\":\"%s\",\"requestId\":\"%s\"}}", code,
                     emsg, ex->request_id);
    if (n < 0 || (size_t)n >= sizeof(body))
        n = snprintf(body, sizeof(body), "{\"error\":{\"code\":\"%s\"}}", code);
    http_respond(ex, status, "application/json", body, (size_t)n);
}

int http_stream_begin(struct http_exchange *ex, int status, const char *ctype)
{
    if (!ex->active || ex->responded)
        return -EINVAL;
    ex->streaming = true;
    if (ex->conn->dead)
        return -EPIPE;
    return response_head(ex, status, ctype, -1);
}

int http_stream_write(struct http_exchange *ex, const void *p, size_t n)
{
    struct http_conn *c = ex->conn;
    if (!ex->streaming)
        return -EINVAL;
    if (c->dead)
        return -EPIPE;
    if (n == 0 || ex->head)
        return 0;
    if (c->out_bytes > 4 * c->srv->cfg->max_out_bytes)
        return -ENOBUFS;
    char hdr[24];
    int hl = snprintf(hdr, sizeof(hdr), "%zx\r\n", n);
    int rc = ex->unframed ? 0 : out_append(c, hdr, (size_t)hl);
    if (rc == 0)
        rc = out_append(c, p, n);
    if (rc == 0 && !ex->unframed)
        rc = out_append(c, "\r\n", 2);
    ex->body_bytes += n;
    out_flush_later(c);
    return rc;
}

void http_stream_end(struct http_exchange *ex)
{
    if (!ex->streaming || !ex->active)
        return;
    if (!ex->conn->dead && !ex->head && !ex->unframed && !ex->aborted)
        out_append(ex->conn, "0\r\n\r\n", 5);
    ex->streaming = false;
    finish(ex);
}

void http_stream_abort(struct http_exchange *ex)
{
    if (!ex->streaming || !ex->active)
        return;
    ex->aborted = true;
    ex->conn->closing = true;
    ex->close_after = true;
    http_stream_end(ex);
}

size_t http_stream_pending(const struct http_exchange *ex)
{
    return ex->conn->out_bytes;
}

void http_stream_on_drain(struct http_exchange *ex, void (*cb)(struct http_exchange *, void *),
                          void *arg)
{
    struct http_conn *c = ex->conn;
    if (c->dead || c->out_bytes <= c->srv->cfg->max_out_bytes / 2) {
        cb(ex, arg);
        return;
    }
    ex->drain_cb = cb;
    ex->drain_arg = arg;
}

void http_on_abort(struct http_exchange *ex, void (*cb)(struct http_exchange *, void *),
                   void *arg)
{
    ex->abort_cb = cb;
    ex->abort_arg = arg;
}

/* --- getters ------------------------------------------------------------------------------- */

const struct http_request *http_req(const struct http_exchange *ex)
{
    return &ex->conn->parser.req;
}

const char *http_request_id(const struct http_exchange *ex)
{
    return ex->request_id;
}

const char *http_param(const struct http_exchange *ex, const char *name, size_t *len)
{
    for (unsigned i = 0; i < ex->match.nparams; i++) {
        if (strcmp(ex->match.params[i].name, name) == 0) {
            if (len)
                *len = ex->match.params[i].len;
            return ex->match.params[i].value;
        }
    }
    return NULL;
}

int http_param_copy(const struct http_exchange *ex, const char *name, char *dst, size_t cap)
{
    size_t n;
    const char *v = http_param(ex, name, &n);
    if (!v || n + 1 > cap)
        return -1;
    memcpy(dst, v, n);
    dst[n] = '\0';
    return (int)n;
}

struct ring *http_ring(const struct http_exchange *ex)
{
    return ex->conn->srv->ring;
}

const char *http_peer(const struct http_exchange *ex)
{
    return ex->conn->peer;
}

const char *http_peer_ip(const struct http_exchange *ex)
{
    return ex->conn->peer_ip;
}

void *http_app_slot(struct http_exchange *ex)
{
    return ex->app_slot;
}

const void *http_app_slot_const(const struct http_exchange *ex)
{
    return ex->app_slot;
}

struct logger *http_logger(const struct http_exchange *ex)
{
    return ex->conn->srv->log;
}

void *http_app(const struct http_exchange *ex)
{
    return ex->conn->srv->app;
}

bool http_is_head(const struct http_exchange *ex)
{
    return ex->head;
}

/* --- take-over ----------------------------------------------------------------------------- */

struct http_conn *http_upgrade(struct http_exchange *ex, const char *headers,
                               const struct http_upgrade_ops *ops, void *ctx)
{
    struct http_conn *c = ex->conn;
    if (!ex->active || ex->responded || c->dead)
        return NULL;
    if (headers && buf_append_str(&ex->headers, headers) < 0)
        return NULL;
    ex->close_after = false;
    response_head(ex, 101, NULL, -1);
    c->raw = true;
    c->up_ops = ops;
    c->up_ctx = ctx;
    conn_timer_set(c, T_NONE);
    finish(ex);
    return c;
}

int http_conn_write(struct http_conn *c, const void *p, size_t n)
{
    if (c->dead)
        return -EPIPE;
    if (c->out_bytes > 4 * c->srv->cfg->max_out_bytes)
        return -ENOBUFS;
    int rc = out_append(c, p, n);
    out_flush_later(c);
    return rc;
}

void http_conn_close(struct http_conn *c)
{
    if (c->dead)
        return;
    c->up_ops = NULL; /* the owner asked: no on_close back into it */
    c->closing = true;
    out_flush_later(c);
}
