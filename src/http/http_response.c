/* http_response — building responses for an exchange: status line and headers, bodies from
 * memory, chunked streams, JSON errors, the access log line, and connection take-over. */
#include <errno.h>
#include <stdarg.h>
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
    ex->start_ns = s->ring->now_ns;
    ex->abort_cb = NULL;
    ex->abort_arg = NULL;
    ex->status = 0;
    ex->body_bytes = 0;
    ex->match.nparams = 0;
    ex->match.route = NULL;
    buf_reset(&ex->headers, 8192);
    size_t n = 0;
    const char *rid = c->parser.req.nheaders ? http_header_get(&c->parser.req, "x-request-id", &n)
                                             : NULL;
    if (rid && request_id_sane(rid, n)) {
        memcpy(ex->request_id, rid, n);
        ex->request_id[n] = '\0';
    } else {
        snprintf(ex->request_id, sizeof(ex->request_id), "%s%08llx", s->id_prefix,
                 (unsigned long long)++s->req_counter);
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
int response_head(struct http_exchange *ex, int status, const char *ctype, int64_t clen)
{
    struct http_conn *c = ex->conn;
    struct http_server *s = c->srv;
    const struct http_request *r = &c->parser.req;
    char head[1024];
    ex->status = status;
    ex->responded = true;
    if (s->shutting_down)
        ex->close_after = true;
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 %d %s\r\nServer: %s\r\nDate: %s\r\nX-Request-Id: %s\r\n", status,
                     http_status_reason(status), s->cfg->server_name, http_date(s),
                     ex->request_id);
    size_t len = (size_t)n;
    if (ctype && len < sizeof(head))
        len += (size_t)snprintf(head + len, sizeof(head) - len, "Content-Type: %s\r\n", ctype);
    bool bodyless = status < 200 || status == 204 || status == 304;
    if (!bodyless && len < sizeof(head)) {
        if (clen >= 0)
            len += (size_t)snprintf(head + len, sizeof(head) - len, "Content-Length: %lld\r\n",
                                    (long long)clen);
        else
            len += (size_t)snprintf(head + len, sizeof(head) - len,
                                    "Transfer-Encoding: chunked\r\n");
    }
    if (len < sizeof(head) && status != 101) {
        if (ex->close_after)
            len += (size_t)snprintf(head + len, sizeof(head) - len, "Connection: close\r\n");
        else if (r->http_minor == 0)
            len += (size_t)snprintf(head + len, sizeof(head) - len, "Connection: keep-alive\r\n");
    }
    if (len >= sizeof(head))
        return -ENOBUFS;
    int rc = out_append(c, head, len);
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
    int rc = out_append(c, hdr, (size_t)hl);
    if (rc == 0)
        rc = out_append(c, p, n);
    if (rc == 0)
        rc = out_append(c, "\r\n", 2);
    ex->body_bytes += n;
    out_flush_later(c);
    return rc;
}

void http_stream_end(struct http_exchange *ex)
{
    if (!ex->streaming || !ex->active)
        return;
    if (!ex->conn->dead && !ex->head)
        out_append(ex->conn, "0\r\n\r\n", 5);
    ex->streaming = false;
    finish(ex);
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
