/* comfy_call — one asynchronous HTTP request to a ComfyUI backend, on the reactor's
 * ring_curl multi handle.
 *
 * A call owns its easy handle, request body and a bounded response buffer; or, for
 * downloads, streams the body into a file_sink with back-pressure (the transfer pauses while
 * the sink's buffers are all being written). The callback gets a negative errno for
 * transport failures (-ECONNREFUSED, -ETIMEDOUT, -EFBIG for a body over its limit, -EIO),
 * otherwise 0 and the HTTP status. */
#ifndef COMFYGATE_COMFY_CALL_H
#define COMFYGATE_COMFY_CALL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "ring/ring_curl.h"
#include "comfy/png_strip.h"
#include "store/file_sink.h"

struct comfy_call;
typedef void (*comfy_call_cb)(struct comfy_call *c, int err, long status);

struct comfy_call {
    struct ring_curl_xfer x;
    struct ring_curl *rc;
    struct buf resp;
    struct curl_slist *hdrs;
    char *body;
    curl_mime *mime;
    struct file_sink *sink;
    bool paused;
    bool sink_full;
    bool strip;          /* PNG text chunks are dropped on the way into the sink */
    int strip_err;
    struct png_strip png;
    comfy_call_cb cb;
    void *ctx;
    CURLcode curl_rc; /* curl's own result, for callers that need more than err */
};

struct comfy_call_opts {
    uint32_t timeout_ms;         /* whole transfer; 0: none */
    uint32_t connect_timeout_ms; /* 0: 5000 */
    size_t max_response;         /* bytes kept in c->resp */
    bool strip_png_text;         /* downloads: drop tEXt/zTXt/iTXt (PRIVACY_MODE) */
    /* optional: last say on the easy handle (the SSRF guard for user-supplied URLs), given the
     * write callback the call would use so that it can be wrapped; non-zero fails the start */
    int (*prepare)(CURL *easy, curl_write_callback write, void *write_data, void *arg);
    void *prepare_arg;
};

/* method "GET"/"POST"; json may be NULL (no body) for POST. The url is copied by curl. */
int comfy_call_json(struct comfy_call *c, struct ring_curl *rc, const char *method,
                    const char *url, const char *json, const struct comfy_call_opts *o,
                    comfy_call_cb cb, void *ctx);
/* POST multipart to /upload/image or /upload/mask: field "image" from the file at path (or
 * data/len when path is NULL), plus the given text fields (NULL-terminated name/value pairs). */
int comfy_call_upload(struct comfy_call *c, struct ring_curl *rc, const char *url,
                      const char *filename, const char *path, const void *data, size_t len,
                      const char *const *fields, const struct comfy_call_opts *o,
                      comfy_call_cb cb, void *ctx);
/* GET url streaming a 2xx body into sink (already opened); other statuses are kept in resp. */
int comfy_call_download(struct comfy_call *c, struct ring_curl *rc, const char *url,
                        struct file_sink *sink, const struct comfy_call_opts *o,
                        comfy_call_cb cb, void *ctx);
/* Stops the call; its callback will not run. Safe on an idle call. */
void comfy_call_cancel(struct comfy_call *c);
/* Frees the buffers of a finished call (the response body too). */
void comfy_call_release(struct comfy_call *c);

#endif
