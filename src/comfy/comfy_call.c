/* comfy_call — see comfy_call.h. */
#include "comfy/comfy_call.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static int map_curl_error(CURLcode rc)
{
    switch (rc) {
    case CURLE_OK: return 0;
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST: return -ECONNREFUSED;
    case CURLE_OPERATION_TIMEDOUT: return -ETIMEDOUT;
    case CURLE_WRITE_ERROR: return -EFBIG;
    case CURLE_GOT_NOTHING:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_PARTIAL_FILE: return -ECONNRESET;
    default: return -EIO;
    }
}

static void done_cb(struct ring_curl_xfer *x, CURLcode rc, long status)
{
    struct comfy_call *c = (struct comfy_call *)x;
    c->curl_rc = rc;
    int err = map_curl_error(rc);
    if (!err && c->strip && status >= 200 && status <= 299 && png_strip_finish(&c->png) < 0)
        err = -EBADMSG; /* PRIVACY_MODE and not a complete PNG: do not keep it */
    if (err == -EFBIG && c->sink && c->sink->err && c->sink->err != -EFBIG)
        err = c->sink->err; /* the disk failed, not the size limit */
    c->cb(c, err, err ? 0 : status);
}

static size_t mem_write_cb(char *p, size_t size, size_t n, void *ud)
{
    struct comfy_call *c = ud;
    if (buf_append(&c->resp, p, size * n) < 0)
        return 0; /* over max_response: curl fails the transfer with CURLE_WRITE_ERROR */
    return size * n;
}

static void sink_writable(struct file_sink *s)
{
    struct comfy_call *c = s->ctx;
    if (c->paused) {
        c->paused = false;
        ring_curl_unpause(c->rc, &c->x);
    }
}

static void strip_emit(void *ctx, const unsigned char *p, size_t n)
{
    struct comfy_call *c = ctx;
    ssize_t w = file_sink_write(c->sink, p, n);
    if (w < 0 || (size_t)w != n)
        c->strip_err = -EIO;
}

static size_t sink_write_cb(char *p, size_t size, size_t n, void *ud)
{
    struct comfy_call *c = ud;
    long status = 0;
    curl_easy_getinfo(c->x.easy, CURLINFO_RESPONSE_CODE, &status);
    if (status < 200 || status > 299) /* an error page: keep it small, in memory */
        return mem_write_cb(p, size, n, ud);
    size_t total = size * n;
    /* curl cannot take a partial write: if the whole chunk does not fit now, accept nothing
     * and pause; curl delivers the same bytes again after unpause. */
    if (c->sink->size + total > c->sink->max_bytes)
        return 0;
    size_t room = file_sink_room(c->sink);
    if (room < total) {
        c->paused = true;
        return CURL_WRITEFUNC_PAUSE;
    }
    if (c->strip) {
        /* the filter emits at most what it is fed, so the room check above still holds */
        if (png_strip_feed(&c->png, (const unsigned char *)p, total, strip_emit, c) < 0 ||
            c->strip_err)
            return 0;
        return total;
    }
    ssize_t w = file_sink_write(c->sink, p, total);
    if (w < 0 || (size_t)w != total)
        return 0; /* room was checked, so this is a sink error: fail the transfer */
    return total;
}

static int setup(struct comfy_call *c, struct ring_curl *rc, const char *url,
                 const struct comfy_call_opts *o, comfy_call_cb cb, void *ctx)
{
    memset(c, 0, sizeof(*c));
    c->rc = rc;
    c->cb = cb;
    c->ctx = ctx;
    buf_init(&c->resp, o->max_response ? o->max_response : 1 << 20);
    c->x.easy = curl_easy_init();
    if (!c->x.easy)
        return -ENOMEM;
    CURL *e = c->x.easy;
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, mem_write_cb);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, c);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)(o->connect_timeout_ms ? o->connect_timeout_ms : 5000));
    if (o->timeout_ms)
        curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)o->timeout_ms);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(e, CURLOPT_USERAGENT, "comfygate/" COMFYGATE_VERSION);
    if (o->prepare && o->prepare(e, mem_write_cb, c, o->prepare_arg) != 0)
        return -EPERM;
    return 0;
}

int comfy_call_json(struct comfy_call *c, struct ring_curl *rc, const char *method,
                    const char *url, const char *json, const struct comfy_call_opts *o,
                    comfy_call_cb cb, void *ctx)
{
    int r = setup(c, rc, url, o, cb, ctx);
    if (r < 0)
        return r;
    if (strcmp(method, "POST") == 0) {
        c->body = strdup(json ? json : "");
        if (!c->body)
            return -ENOMEM;
        c->hdrs = curl_slist_append(NULL, "Content-Type: application/json");
        c->hdrs = curl_slist_append(c->hdrs, "Expect:");
        curl_easy_setopt(c->x.easy, CURLOPT_HTTPHEADER, c->hdrs);
        curl_easy_setopt(c->x.easy, CURLOPT_POSTFIELDS, c->body);
        curl_easy_setopt(c->x.easy, CURLOPT_POSTFIELDSIZE, (long)strlen(c->body));
    }
    return ring_curl_start(rc, &c->x, done_cb);
}

int comfy_call_upload(struct comfy_call *c, struct ring_curl *rc, const char *url,
                      const char *filename, const char *path, const void *data, size_t len,
                      const char *const *fields, const struct comfy_call_opts *o,
                      comfy_call_cb cb, void *ctx)
{
    int r = setup(c, rc, url, o, cb, ctx);
    if (r < 0)
        return r;
    c->mime = curl_mime_init(c->x.easy);
    curl_mimepart *part = curl_mime_addpart(c->mime);
    curl_mime_name(part, "image");
    if (path)
        curl_mime_filedata(part, path);
    else
        curl_mime_data(part, data, len);
    curl_mime_filename(part, filename);
    curl_mime_type(part, "application/octet-stream");
    for (size_t i = 0; fields && fields[i] && fields[i + 1]; i += 2) {
        part = curl_mime_addpart(c->mime);
        curl_mime_name(part, fields[i]);
        curl_mime_data(part, fields[i + 1], CURL_ZERO_TERMINATED);
    }
    c->hdrs = curl_slist_append(NULL, "Expect:");
    curl_easy_setopt(c->x.easy, CURLOPT_HTTPHEADER, c->hdrs);
    curl_easy_setopt(c->x.easy, CURLOPT_MIMEPOST, c->mime);
    return ring_curl_start(rc, &c->x, done_cb);
}

int comfy_call_download(struct comfy_call *c, struct ring_curl *rc, const char *url,
                        struct file_sink *sink, const struct comfy_call_opts *o,
                        comfy_call_cb cb, void *ctx)
{
    int r = setup(c, rc, url, o, cb, ctx);
    if (r < 0)
        return r;
    c->sink = sink;
    sink->ctx = c;
    c->strip = o->strip_png_text;
    png_strip_init(&c->png);
    sink->on_writable = sink_writable;
    curl_easy_setopt(c->x.easy, CURLOPT_WRITEFUNCTION, sink_write_cb);
    curl_easy_setopt(c->x.easy, CURLOPT_BUFFERSIZE, 256L * 1024);
    return ring_curl_start(rc, &c->x, done_cb);
}

void comfy_call_cancel(struct comfy_call *c)
{
    if (c->rc && c->x.easy)
        ring_curl_cancel(c->rc, &c->x);
    comfy_call_release(c);
}

void comfy_call_release(struct comfy_call *c)
{
    if (c->x.easy)
        curl_easy_cleanup(c->x.easy);
    c->x.easy = NULL;
    if (c->mime)
        curl_mime_free(c->mime);
    c->mime = NULL;
    curl_slist_free_all(c->hdrs);
    c->hdrs = NULL;
    free(c->body);
    c->body = NULL;
    buf_free(&c->resp);
    if (c->sink)
        c->sink->on_writable = NULL;
    c->sink = NULL;
}
