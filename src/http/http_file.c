/* http_file — file responses: an asynchronous openat2 through the ring (RESOLVE_BENEATH and
 * no symlinks, so nothing outside the root can ever be served), then headers and a CH_FILE
 * chunk that http_out splices to the socket. */
#include "http/http_file.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "http/http_internal.h"

static const struct {
    const char *ext;
    const char *type;
} mime_table[] = {
    {"png", "image/png"},         {"jpg", "image/jpeg"},          {"jpeg", "image/jpeg"},
    {"webp", "image/webp"},       {"gif", "image/gif"},           {"svg", "image/svg+xml"},
    {"bmp", "image/bmp"},         {"tif", "image/tiff"},          {"tiff", "image/tiff"},
    {"mp4", "video/mp4"},         {"webm", "video/webm"},         {"mov", "video/quicktime"},
    {"mp3", "audio/mpeg"},        {"wav", "audio/wav"},           {"flac", "audio/flac"},
    {"ogg", "audio/ogg"},         {"json", "application/json"},   {"txt", "text/plain; charset=utf-8"},
    {"html", "text/html; charset=utf-8"}, {"css", "text/css"},   {"js", "text/javascript"},
    {"glb", "model/gltf-binary"}, {"safetensors", "application/octet-stream"},
};

const char *http_file_mime(const char *name)
{
    const char *dot = strrchr(name, '.');
    const char *slash = strrchr(name, '/');
    if (!dot || (slash && dot < slash))
        return "application/octet-stream";
    for (size_t i = 0; i < sizeof(mime_table) / sizeof(mime_table[0]); i++) {
        if (strcasecmp(dot + 1, mime_table[i].ext) == 0)
            return mime_table[i].type;
    }
    return "application/octet-stream";
}

static bool parse_u64(const char **p, const char *end, uint64_t *out)
{
    const char *s = *p;
    uint64_t v = 0;
    if (s >= end || *s < '0' || *s > '9')
        return false;
    /* more digits than fit: still a number (RFC 9110 allows any), past every file's end */
    while (s < end && *s >= '0' && *s <= '9') {
        unsigned d = (unsigned)(*s - '0');
        v = v > (UINT64_MAX - d) / 10 ? UINT64_MAX : v * 10 + d;
        s++;
    }
    *p = s;
    *out = v;
    return true;
}

enum http_range_result http_range_parse(const char *v, size_t n, uint64_t size, uint64_t *first,
                                        uint64_t *last)
{
    const char *p = v, *end = v + n;
    while (p < end && *p == ' ')
        p++;
    if ((size_t)(end - p) < 6 || strncasecmp(p, "bytes=", 6) != 0)
        return HTTP_RANGE_NONE;
    p += 6;
    while (p < end && *p == ' ')
        p++;
    if (p < end && memchr(p, ',', (size_t)(end - p)))
        return HTTP_RANGE_NONE;
    uint64_t a = 0, b = 0;
    if (p < end && *p == '-') { /* suffix: the last b bytes */
        p++;
        if (!parse_u64(&p, end, &b) || p != end)
            return HTTP_RANGE_NONE;
        if (b == 0 || size == 0)
            return HTTP_RANGE_UNSATISFIABLE;
        *first = b >= size ? 0 : size - b;
        *last = size - 1;
        return HTTP_RANGE_OK;
    }
    if (!parse_u64(&p, end, &a) || p >= end || *p != '-')
        return HTTP_RANGE_NONE;
    p++;
    if (p == end) {
        b = size ? size - 1 : 0;
    } else if (!parse_u64(&p, end, &b) || p != end || b < a) {
        return HTTP_RANGE_NONE;
    }
    if (a >= size)
        return HTTP_RANGE_UNSATISFIABLE;
    if (b >= size)
        b = size - 1;
    *first = a;
    *last = b;
    return HTTP_RANGE_OK;
}

void http_etag(char *dst, size_t cap, uint64_t size, uint64_t mtime_ns, uint64_t ino)
{
    snprintf(dst, cap, "\"%" PRIx64 "-%" PRIx64 "-%" PRIx64 "\"", size, mtime_ns, ino);
}

bool http_etag_match(const char *inm, size_t n, const char *etag)
{
    size_t el = strlen(etag);
    const char *p = inm, *end = inm + n;
    while (p < end) {
        while (p < end && (*p == ' ' || *p == ','))
            p++;
        if (p < end && *p == '*')
            return true;
        if (end - p >= 2 && p[0] == 'W' && p[1] == '/')
            p += 2; /* weak comparison for If-None-Match */
        const char *e = p;
        while (e < end && *e != ',')
            e++;
        const char *t = e;
        while (t > p && t[-1] == ' ')
            t--;
        if ((size_t)(t - p) == el && memcmp(p, etag, el) == 0)
            return true;
        p = e;
    }
    return false;
}

bool http_path_safe(const char *rel)
{
    if (!rel || !rel[0] || rel[0] == '/')
        return false;
    const char *p = rel;
    for (;;) {
        const char *s = strchr(p, '/');
        size_t len = s ? (size_t)(s - p) : strlen(p);
        if (len == 0 || (len == 1 && p[0] == '.') || (len == 2 && p[0] == '.' && p[1] == '.'))
            return false;
        if (memchr(p, '\\', len))
            return false;
        if (!s)
            return true;
        p = s + 1;
    }
}

/* --- the response ------------------------------------------------------------------------ */

static void send_file(struct http_exchange *ex, int fd, const struct stat *st)
{
    struct http_conn *c = ex->conn;
    const struct http_request *r = &c->parser.req;
    char etag[80], lm[40], buf[320];
    uint64_t mt = (uint64_t)st->st_mtim.tv_sec * 1000000000ull + (uint64_t)st->st_mtim.tv_nsec;
    http_etag(etag, sizeof(etag), (uint64_t)st->st_size, mt, (uint64_t)st->st_ino);
    struct tm tm;
    gmtime_r(&st->st_mtim.tv_sec, &tm);
    strftime(lm, sizeof(lm), "%a, %d %b %Y %H:%M:%S GMT", &tm);
    http_add_header(ex, "ETag", etag);
    http_add_header(ex, "Last-Modified", lm);
    http_add_header(ex, "Accept-Ranges", "bytes");
    if (ex->fopts.cache_control)
        http_add_header(ex, "Cache-Control", ex->fopts.cache_control);
    if (ex->fopts.disposition_name) {
        snprintf(buf, sizeof(buf), "inline; filename=\"%s\"", ex->fopts.disposition_name);
        http_add_header(ex, "Content-Disposition", buf);
    }
    const char *ctype = ex->fopts.content_type ? ex->fopts.content_type
                                               : http_file_mime(ex->file_path);
    size_t n;
    const char *inm = http_header_get(r, "if-none-match", &n);
    if (inm && http_etag_match(inm, n, etag)) {
        close(fd);
        http_respond(ex, 304, NULL, NULL, 0);
        return;
    }
    uint64_t size = (uint64_t)st->st_size, first = 0, last = size ? size - 1 : 0;
    int status = 200;
    const char *rv = http_header_get(r, "range", &n);
    const char *ifr = http_header_get(r, "if-range", NULL);
    if (rv && (!ifr || strcmp(ifr, etag) == 0) && (r->method == HTTP_GET || r->method == HTTP_HEAD)) {
        enum http_range_result rr = http_range_parse(rv, n, size, &first, &last);
        if (rr == HTTP_RANGE_UNSATISFIABLE) {
            close(fd);
            snprintf(buf, sizeof(buf), "bytes */%" PRIu64, size);
            http_add_header(ex, "Content-Range", buf);
            http_respond_error(ex, 416, "RANGE_NOT_SATISFIABLE", "range outside the file");
            return;
        }
        if (rr == HTTP_RANGE_OK) {
            status = 206;
            snprintf(buf, sizeof(buf), "bytes %" PRIu64 "-%" PRIu64 "/%" PRIu64, first, last, size);
            http_add_header(ex, "Content-Range", buf);
        }
    }
    uint64_t len = size ? last - first + 1 : 0;
    ex->body_bytes = len;
    if (!c->dead) {
        response_head(ex, status, ctype, (int64_t)len);
        if (!ex->head)
            out_append_file(c, fd, (off_t)first, len);
        else
            close(fd);
    } else {
        close(fd);
    }
    conn_exchange_done(c);
}

void file_open_cb(struct ring_op *op, int res, uint32_t flags)
{
    struct http_exchange *ex =
        (struct http_exchange *)((char *)op - offsetof(struct http_exchange, open_op));
    struct http_conn *c = ex->conn;
    c->inflight--; /* the exchange itself still holds the connection */
    if (res < 0) {
        if (res == -ENOENT || res == -ELOOP || res == -EXDEV || res == -ENOTDIR)
            http_respond_error(ex, 404, "NOT_FOUND", "no such file");
        else if (res == -EACCES || res == -EPERM)
            http_respond_error(ex, 403, "FORBIDDEN", "file not readable");
        else
            http_respond_error(ex, 500, "INTERNAL", "cannot open file: %s", strerror(-res));
        return;
    }
    struct stat st;
    if (fstat(res, &st) < 0 || !S_ISREG(st.st_mode)) {
        close(res);
        http_respond_error(ex, 404, "NOT_FOUND", "no such file");
        return;
    }
    send_file(ex, res, &st);
}

static const char *keep(char *dst, size_t cap, const char *src)
{
    if (!src)
        return NULL;
    snprintf(dst, cap, "%s", src);
    return dst;
}

void http_respond_file(struct http_exchange *ex, int dirfd, const char *relpath,
                       const struct http_file_opts *opts)
{
    struct http_conn *c = ex->conn;
    if (!ex->active || ex->responded)
        return;
    if (!http_path_safe(relpath)) {
        http_respond_error(ex, 404, "NOT_FOUND", "no such file");
        return;
    }
    free(ex->file_path);
    ex->file_path = strdup(relpath);
    if (!ex->file_path) {
        http_respond_error(ex, 500, "INTERNAL", "out of memory");
        return;
    }
    memset(&ex->fopts, 0, sizeof(ex->fopts));
    if (opts) {
        ex->fopts.content_type = keep(ex->fopt_ctype, sizeof(ex->fopt_ctype), opts->content_type);
        ex->fopts.disposition_name =
            keep(ex->fopt_disp, sizeof(ex->fopt_disp), opts->disposition_name);
        ex->fopts.cache_control = keep(ex->fopt_cc, sizeof(ex->fopt_cc), opts->cache_control);
    }
    memset(&ex->how, 0, sizeof(ex->how));
    ex->how.flags = O_RDONLY | O_CLOEXEC | O_NOCTTY;
    ex->how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
    ex->open_op.cb = file_open_cb;
    struct io_uring_sqe *sqe = ring_sqe(c->srv->ring);
    io_uring_prep_openat2(sqe, dirfd, ex->file_path, &ex->how);
    ring_sqe_set_op(sqe, &ex->open_op);
    c->inflight++;
}
