/* ts_curl — see ts_curl.h. */
#include "ts_curl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static size_t body_cb(char *p, size_t size, size_t n, void *arg)
{
    struct ts_xfer *x = arg;
    size_t len = size * n;
    size_t keep = 0;
    if (x->body_len < x->max_body)
        keep = x->max_body - x->body_len < len ? x->max_body - x->body_len : len;
    if (keep) {
        char *nb = realloc(x->body, x->body_len + keep + 1);
        if (!nb)
            return 0;
        x->body = nb;
        memcpy(x->body + x->body_len, p, keep);
        x->body[x->body_len + keep] = '\0';
    }
    x->body_len += len;
    return len;
}

static size_t header_cb(char *p, size_t size, size_t n, void *arg)
{
    struct ts_xfer *x = arg;
    size_t len = size * n;
    if (len >= 5 && strncmp(p, "HTTP/", 5) == 0)
        x->headers_len = 0; /* a new response (after a 100 Continue, say) */
    char *nh = realloc(x->headers, x->headers_len + len + 1);
    if (!nh)
        return 0;
    x->headers = nh;
    memcpy(x->headers + x->headers_len, p, len);
    x->headers_len += len;
    x->headers[x->headers_len] = '\0';
    return len;
}

int ts_xfer_init(struct ts_xfer *x, const char *url, const char *const *req_headers)
{
    memset(x, 0, sizeof(*x));
    x->max_body = 1 << 20;
    x->easy = curl_easy_init();
    if (!x->easy)
        return -1;
    for (const char *const *h = req_headers; h && *h; h++)
        x->req_headers = curl_slist_append(x->req_headers, *h);
    curl_easy_setopt(x->easy, CURLOPT_URL, url);
    curl_easy_setopt(x->easy, CURLOPT_HTTPHEADER, x->req_headers);
    curl_easy_setopt(x->easy, CURLOPT_WRITEFUNCTION, body_cb);
    curl_easy_setopt(x->easy, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(x->easy, CURLOPT_HEADERFUNCTION, header_cb);
    curl_easy_setopt(x->easy, CURLOPT_HEADERDATA, x);
    curl_easy_setopt(x->easy, CURLOPT_PRIVATE, x);
    curl_easy_setopt(x->easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(x->easy, CURLOPT_TIMEOUT_MS, 60000L); /* liveness only */
    curl_easy_setopt(x->easy, CURLOPT_NOPROXY, "*");
    return 0;
}

void ts_xfer_reset(struct ts_xfer *x)
{
    x->status = 0;
    x->body_len = 0;
    x->headers_len = 0;
    if (x->body)
        x->body[0] = '\0';
}

void ts_xfer_free(struct ts_xfer *x)
{
    if (x->easy)
        curl_easy_cleanup(x->easy);
    curl_slist_free_all(x->req_headers);
    free(x->body);
    free(x->headers);
    memset(x, 0, sizeof(*x));
}

bool ts_xfer_header(const struct ts_xfer *x, const char *name, char *dst, size_t cap)
{
    size_t nl = strlen(name);
    const char *p = x->headers;
    while (p && *p) {
        const char *eol = strstr(p, "\r\n");
        size_t ll = eol ? (size_t)(eol - p) : strlen(p);
        if (ll > nl && p[nl] == ':' && strncasecmp(p, name, nl) == 0) {
            const char *v = p + nl + 1;
            while (*v == ' ')
                v++;
            size_t vl = ll - (size_t)(v - p);
            snprintf(dst, cap, "%.*s", (int)vl, v);
            return true;
        }
        p = eol ? eol + 2 : NULL;
    }
    return false;
}

CURLcode ts_curl_perform(struct ts_xfer *x)
{
    CURLcode rc = curl_easy_perform(x->easy);
    curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &x->status);
    return rc;
}

long ts_curl_get(struct ts_xfer *x, int port, const char *path, const char *const *hdrs)
{
    char url[2048];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port, path);
    if (ts_xfer_init(x, url, hdrs) < 0)
        return -1;
    if (ts_curl_perform(x) != CURLE_OK)
        return -1;
    return x->status;
}
