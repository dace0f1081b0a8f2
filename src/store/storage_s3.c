/* storage_s3 — the S3 provider: outputs are objects "<S3_PREFIX><job>/<name>" in S3_BUCKET of
 * any S3-compatible store, so several gateways (SHARED_STORE) serve the same outputs.
 *
 * Outputs are still staged on local disk first (the local provider, in STORAGE_LOCAL_PATH);
 * commit uploads the staged file with a SigV4-signed PUT whose signed payload hash is the
 * SHA-256 the file_sink computed, so the store can refuse a body that does not match. The PUT
 * runs on the committing reactor's curl multi and reads the file through the ring: when its
 * buffer is empty the read callback pauses the transfer until an IORING_OP_READ refills it, so
 * nothing blocks the reactor. Transport errors, 5xx, 408 and 429 are retried with backoff.
 *
 * The staged copy is kept (S3_KEEP_LOCAL) as a cache for readers that need the bytes; a reader
 * on another instance, or after it was removed, fetches the object back into the staging
 * directory (a signed GET into a file_sink). Downloads are redirected to a presigned GET URL
 * (or S3_PUBLIC_URL/<key> for a public bucket or a CDN), so the bytes never cross the gateway. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <bearssl.h>

#include "store/file_sink.h"
#include "store/s3_resp.h"
#include "store/s3_sign.h"
#include "store/storage.h"

#define S3_IO_BUF (256 * 1024)

struct storage_s3 {
    struct storage local; /* the staging area, and the cached copies */
    struct s3_target t;
    char prefix[256];
    char public_url[1024];
    bool keep_local;
    uint32_t url_ttl_s;
    uint32_t timeout_ms;
    uint32_t max_attempts;
};

/* "HTTP 403 SignatureDoesNotMatch" from an S3 error document, or curl's reason. */
static void describe(char *out, size_t cap, const char *what, CURLcode rc, long status,
                     const struct s3_resp *r)
{
    if (rc != CURLE_OK) {
        snprintf(out, cap, "S3 %s: %s", what, curl_easy_strerror(rc));
        return;
    }
    s3_resp_describe(r, what, status, out, cap);
}

static int status_err(CURLcode rc, long status)
{
    if (rc == CURLE_OPERATION_TIMEDOUT)
        return -ETIMEDOUT;
    if (rc == CURLE_COULDNT_CONNECT || rc == CURLE_COULDNT_RESOLVE_HOST)
        return -ECONNREFUSED;
    if (rc != CURLE_OK)
        return -EIO;
    if (status == 403)
        return -EACCES;
    if (status == 404)
        return -ENOENT;
    return -EIO;
}

/* A signed request for key: headers and options every call shares. */
static CURL *signed_easy(const struct storage_s3 *s3, const char *method, const char *key,
                         const char *payload_hash, const char *mime, struct curl_slist **hdrs)
{
    char host[300], path[1400], url[1800], date[17], auth[600], line[700];
    if (s3_object_where(&s3->t, key, host, path, sizeof(path), url, sizeof(url)) < 0 ||
        s3_authorize(&s3->t, method, key, payload_hash, time(NULL), date, auth, sizeof(auth)) < 0)
        return NULL;
    CURL *e = curl_easy_init();
    if (!e)
        return NULL;
    struct curl_slist *h = NULL;
    /* the Host header is signed: send exactly the signed one, whatever curl would derive */
    snprintf(line, sizeof(line), "Host: %s", host);
    h = curl_slist_append(h, line);
    snprintf(line, sizeof(line), "x-amz-content-sha256: %s", payload_hash);
    h = curl_slist_append(h, line);
    snprintf(line, sizeof(line), "x-amz-date: %s", date);
    h = curl_slist_append(h, line);
    snprintf(line, sizeof(line), "Authorization: %s", auth);
    h = curl_slist_append(h, line);
    if (s3->t.session_token[0]) { /* signed by s3_authorize */
        char tok[sizeof(s3->t.session_token) + 32];
        snprintf(tok, sizeof(tok), "x-amz-security-token: %s", s3->t.session_token);
        h = curl_slist_append(h, tok);
    }
    if (mime) {
        snprintf(line, sizeof(line), "Content-Type: %s", mime);
        h = curl_slist_append(h, line);
    }
    h = curl_slist_append(h, "Expect:");
    *hdrs = h;
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_PATH_AS_IS, 1L); /* send exactly the path that was signed */
    curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)s3->timeout_ms);
    curl_easy_setopt(e, CURLOPT_USERAGENT, "comfygate/" COMFYGATE_VERSION);
    return e;
}

/* --- commit: PUT the staged file ------------------------------------------------------------ */

struct s3_put {
    struct ring_curl_xfer x; /* first: the done callback gets it */
    struct storage_s3 *s3;
    struct storage_commit *c;
    int dirfd, fd;
    uint64_t size;
    char *buf;
    size_t len, off;   /* buffered bytes, and how many curl has taken */
    uint64_t file_off; /* file offset of the byte after the buffer */
    bool reading, paused, read_failed, done_waits; /* done_waits: end once the read lands */
    CURLcode end_rc; /* how the transfer ended (kept while a read is still in flight) */
    long end_status;
    unsigned attempt;
    struct ring_op read_op, unlink_op;
    struct ring_timer retry;
    struct curl_slist *hdrs;
    struct s3_resp resp;
};

static void put_attempt(struct s3_put *p);
static void put_ended(struct s3_put *p);

static void put_release_easy(struct s3_put *p)
{
    if (p->x.easy)
        curl_easy_cleanup(p->x.easy);
    p->x.easy = NULL;
    curl_slist_free_all(p->hdrs);
    p->hdrs = NULL;
}

static void put_finish(struct s3_put *p, int err)
{
    struct storage_commit *c = p->c;
    put_release_easy(p);
    if (p->fd >= 0)
        close(p->fd);
    if (p->dirfd >= 0)
        close(p->dirfd);
    free(p->buf);
    free(p);
    c->impl = NULL;
    c->err = err;
    c->done(c, err);
}

static void read_cb(struct ring_op *op, int res, uint32_t flags)
{
    (void)flags;
    struct s3_put *p = (struct s3_put *)((char *)op - offsetof(struct s3_put, read_op));
    p->reading = false;
    if (p->done_waits) { /* the transfer ended meanwhile: its buffer is free now */
        p->done_waits = false;
        return put_ended(p);
    }
    if (res <= 0) { /* 0: the file is shorter than it was: it changed under us */
        p->read_failed = true;
    } else {
        p->len = (size_t)res;
        p->off = 0;
        p->file_off += (uint64_t)res;
    }
    if (p->paused) {
        p->paused = false;
        ring_curl_unpause(p->c->curl, &p->x);
    }
}

static size_t put_read_cb(char *dst, size_t size, size_t n, void *ud)
{
    struct s3_put *p = ud;
    if (p->read_failed)
        return CURL_READFUNC_ABORT;
    if (p->off < p->len) {
        size_t k = p->len - p->off < size * n ? p->len - p->off : size * n;
        memcpy(dst, p->buf + p->off, k);
        p->off += k;
        return k;
    }
    if (p->file_off >= p->size)
        return 0;
    if (!p->reading) {
        uint64_t left = p->size - p->file_off;
        p->reading = true;
        p->read_op.cb = read_cb;
        struct io_uring_sqe *sqe = ring_sqe(p->c->ring);
        io_uring_prep_read(sqe, p->fd, p->buf, left < S3_IO_BUF ? (unsigned)left : S3_IO_BUF,
                           p->file_off);
        ring_sqe_set_op(sqe, &p->read_op);
    }
    p->paused = true;
    return CURL_READFUNC_PAUSE;
}

/* curl rewinds a body it must send again (a reused connection that closed, say) */
static int put_seek_cb(void *ud, curl_off_t offset, int origin)
{
    struct s3_put *p = ud;
    if (origin != SEEK_SET || offset < 0 || (uint64_t)offset > p->size || p->reading)
        return CURL_SEEKFUNC_CANTSEEK;
    p->file_off = (uint64_t)offset;
    p->len = p->off = 0;
    return CURL_SEEKFUNC_OK;
}

static void unlink_cb(struct ring_op *op, int res, uint32_t flags)
{
    (void)res; /* the object is safe in the bucket: a stale local copy is only a cache */
    (void)flags;
    struct s3_put *p = (struct s3_put *)((char *)op - offsetof(struct s3_put, unlink_op));
    put_finish(p, 0);
}

static void retry_cb(struct ring_timer *t)
{
    put_attempt((struct s3_put *)((char *)t - offsetof(struct s3_put, retry)));
}

static void put_done_cb(struct ring_curl_xfer *x, CURLcode rc, long status)
{
    struct s3_put *p = (struct s3_put *)x;
    p->end_rc = rc;
    p->end_status = status;
    put_release_easy(p);
    if (p->reading) { /* a timeout mid-read: the read still owns the buffer */
        p->done_waits = true;
        return;
    }
    put_ended(p);
}

/* The transfer is over and no read is in flight: done, retried, or failed. */
static void put_ended(struct s3_put *p)
{
    struct storage_commit *c = p->c;
    CURLcode rc = p->end_rc;
    long status = p->end_status;
    if (rc == CURLE_OK && status >= 200 && status <= 299) {
        if (p->s3->keep_local)
            return put_finish(p, 0);
        p->unlink_op.cb = unlink_cb;
        struct io_uring_sqe *sqe = ring_sqe(c->ring);
        io_uring_prep_unlinkat(sqe, p->dirfd, c->name, 0);
        ring_sqe_set_op(sqe, &p->unlink_op);
        return;
    }
    describe(c->detail, sizeof(c->detail), "PUT", rc, status, &p->resp);
    bool transient = (rc != CURLE_OK && !p->read_failed) || status >= 500 || status == 408 ||
                     status == 429 || (status == 400 && s3_resp_transient_400(&p->resp));
    if (transient && p->attempt < p->s3->max_attempts) {
        uint64_t ms = 100ull << (p->attempt < 6 ? p->attempt : 6);
        p->retry.cb = retry_cb;
        if (ring_timer_arm(c->ring, &p->retry, ms) == 0)
            return;
    }
    put_finish(p, p->read_failed ? -EIO : status_err(rc, status));
}

static void put_attempt(struct s3_put *p)
{
    struct storage_commit *c = p->c;
    p->attempt++;
    p->len = p->off = 0;
    p->file_off = 0;
    p->read_failed = false;
    p->resp.len = 0;
    p->resp.text[0] = '\0';
    p->x.easy = signed_easy(p->s3, "PUT", c->key, c->sha256, c->mime, &p->hdrs);
    if (!p->x.easy)
        return put_finish(p, -ENOMEM);
    CURL *e = p->x.easy;
    curl_easy_setopt(e, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(e, CURLOPT_INFILESIZE_LARGE, (curl_off_t)p->size);
    curl_easy_setopt(e, CURLOPT_READFUNCTION, put_read_cb);
    curl_easy_setopt(e, CURLOPT_READDATA, p);
    curl_easy_setopt(e, CURLOPT_SEEKFUNCTION, put_seek_cb);
    curl_easy_setopt(e, CURLOPT_SEEKDATA, p);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, s3_resp_write_cb);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &p->resp);
    curl_easy_setopt(e, CURLOPT_UPLOAD_BUFFERSIZE, 256L * 1024);
    if (ring_curl_start(c->curl, &p->x, put_done_cb) < 0)
        put_finish(p, -EIO);
}

static int s3_commit(struct storage *s, struct storage_commit *c)
{
    struct storage_s3 *s3 = s->impl;
    if (!storage_name_ok(c->job_id) || !storage_name_ok(c->name) || !c->curl || !c->sha256 ||
        strlen(c->sha256) != 64)
        return -EINVAL;
    int n = snprintf(c->key, sizeof(c->key), "%s%s/%s", s3->prefix, c->job_id, c->name);
    if (n < 0 || (size_t)n >= sizeof(c->key))
        return -ENAMETOOLONG;
    c->st = s;
    c->err = 0;
    c->detail[0] = '\0';
    struct s3_put *p = calloc(1, sizeof(*p));
    if (!p)
        return -ENOMEM;
    p->s3 = s3;
    p->c = c;
    p->fd = -1;
    c->impl = p;
    p->buf = malloc(S3_IO_BUF);
    p->dirfd = storage_stage_open(&s3->local, c->job_id);
    if (!p->buf || p->dirfd < 0) {
        put_finish(p, p->buf ? p->dirfd : -ENOMEM);
        return 0;
    }
    p->fd = openat(p->dirfd, c->name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    struct stat st;
    if (p->fd < 0 || fstat(p->fd, &st) < 0) {
        put_finish(p, -errno);
        return 0;
    }
    p->size = (uint64_t)st.st_size;
    put_attempt(p);
    return 0;
}

/* --- fetch: GET the object back into the staging directory ----------------------------------- */

struct s3_get {
    struct ring_curl_xfer x; /* first */
    struct storage_s3 *s3;
    struct storage_fetch *f;
    int dirfd;
    struct file_sink sink;
    bool paused;
    int result;
    int write_err;    /* sticky: once a write failed, every later one fails too */
    br_sha256_context sha; /* of the body as received: checked before the copy is named */
    uint64_t got;
    struct curl_slist *hdrs;
    struct s3_resp resp;
};

static void get_finish(struct s3_get *g, int err)
{
    struct storage_fetch *f = g->f;
    if (g->x.easy)
        curl_easy_cleanup(g->x.easy);
    curl_slist_free_all(g->hdrs);
    if (g->dirfd >= 0)
        close(g->dirfd);
    free(g);
    f->impl = NULL;
    f->done(f, err);
}

static void get_sink_done(struct file_sink *s, int err)
{
    struct s3_get *g = s->ctx;
    get_finish(g, g->result ? g->result : err);
}

static void get_writable(struct file_sink *s)
{
    struct s3_get *g = s->ctx;
    if (g->paused) {
        g->paused = false;
        ring_curl_unpause(g->f->curl, &g->x);
    }
}

static size_t get_write_cb(char *p, size_t size, size_t n, void *ud)
{
    struct s3_get *g = ud;
    long status = 0;
    curl_easy_getinfo(g->x.easy, CURLINFO_RESPONSE_CODE, &status);
    if (status != 200) /* an error document: keep its start for the log */
        return s3_resp_write_cb(p, size, n, &g->resp);
    size_t total = size * n;
    /* A refused chunk must fail the transfer for good: curl may replay paused data inside
     * curl_easy_pause, where an error is not reported to anyone. */
    if (!g->write_err && g->sink.err)
        g->write_err = g->sink.err; /* the disk failed: it will never have room again */
    if (!g->write_err && g->sink.size + total > g->sink.max_bytes)
        g->write_err = -EFBIG;
    if (g->write_err)
        return 0;
    if (file_sink_room(&g->sink) < total) { /* all or nothing: curl repeats it after unpause */
        g->paused = true;
        return CURL_WRITEFUNC_PAUSE;
    }
    ssize_t w = file_sink_write(&g->sink, p, total);
    if (w != (ssize_t)total) {
        g->write_err = w < 0 ? (int)w : -EIO;
        return 0;
    }
    br_sha256_update(&g->sha, p, total);
    g->got += total;
    return total;
}

/* The body is the object the output recorded: its size and SHA-256. */
static bool get_body_ok(struct s3_get *g)
{
    const struct storage_fetch *f = g->f;
    if (!f->sha256 || strlen(f->sha256) != 64)
        return true; /* nothing to check against */
    unsigned char d[32];
    char hex[65];
    br_sha256_out(&g->sha, d);
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", d[i]);
    return g->got == f->size && !strcmp(hex, f->sha256);
}

static void get_done_cb(struct ring_curl_xfer *x, CURLcode rc, long status)
{
    struct s3_get *g = (struct s3_get *)x;
    if (rc == CURLE_OK && status == 200 && !g->write_err && get_body_ok(g))
        return file_sink_close(&g->sink, get_sink_done);
    g->result = g->write_err                       ? g->write_err
                : rc == CURLE_OK && status == 200 ? -EBADMSG /* not the bytes we stored */
                                                  : status_err(rc, status);
    file_sink_abort(&g->sink, get_sink_done);
}

static int s3_fetch(struct storage *s, struct storage_fetch *f)
{
    struct storage_s3 *s3 = s->impl;
    if (!storage_name_ok(f->job_id) || !storage_name_ok(f->name) || !f->key || !f->key[0])
        return -ENOENT;
    struct s3_get *g = calloc(1, sizeof(*g));
    if (!g)
        return -ENOMEM;
    g->s3 = s3;
    g->f = f;
    f->impl = g;
    br_sha256_init(&g->sha);
    g->dirfd = storage_stage_open(&s3->local, f->job_id);
    if (g->dirfd < 0) {
        get_finish(g, g->dirfd);
        return 0;
    }
    f->temporary = false;
    struct stat st;
    if (fstatat(g->dirfd, f->name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode)) {
        if (!s3->keep_local) /* a copy fetched earlier, used again: its mtime says so */
            utimensat(g->dirfd, f->name, NULL, AT_SYMLINK_NOFOLLOW);
        get_finish(g, 0); /* the staged copy is still here */
        return 0;
    }
    g->x.easy = signed_easy(s3, "GET", f->key, S3_EMPTY_SHA256, NULL, &g->hdrs);
    int rc = g->x.easy ? file_sink_open(&g->sink, f->ring, g->dirfd, f->name,
                                        f->max_bytes ? f->max_bytes : UINT64_MAX)
                       : -ENOMEM;
    if (rc < 0) {
        get_finish(g, rc);
        return 0;
    }
    f->temporary = !s3->keep_local; /* without S3_KEEP_LOCAL a copy is only a cache */
    g->sink.ctx = g;
    g->sink.on_writable = get_writable;
    curl_easy_setopt(g->x.easy, CURLOPT_WRITEFUNCTION, get_write_cb);
    curl_easy_setopt(g->x.easy, CURLOPT_WRITEDATA, g);
    curl_easy_setopt(g->x.easy, CURLOPT_BUFFERSIZE, 256L * 1024);
    if (ring_curl_start(f->curl, &g->x, get_done_cb) < 0) {
        g->result = -EIO;
        file_sink_abort(&g->sink, get_sink_done);
    }
    return 0;
}

/* --- locate, the local copy, and the rest ----------------------------------------------------- */

static int s3_locate(const struct storage *s, const char *job_id, const char *name,
                     const char *key, struct storage_loc *out)
{
    const struct storage_s3 *s3 = s->impl;
    (void)job_id;
    (void)name;
    if (!key || !key[0])
        return -ENOENT;
    out->kind = STORAGE_LOC_URL;
    out->dirfd = -1;
    if (s3->public_url[0]) {
        char ekey[1200];
        if (s3_uri_encode(ekey, sizeof(ekey), key, true) < 0)
            return -ENAMETOOLONG;
        int n = snprintf(out->path, sizeof(out->path), "%s/%s", s3->public_url, ekey);
        return n < 0 || (size_t)n >= sizeof(out->path) ? -ENAMETOOLONG : 0;
    }
    return s3_presign_get(&s3->t, key, time(NULL), s3->url_ttl_s, out->path,
                          sizeof(out->path)) < 0
               ? -ENAMETOOLONG
               : 0;
}

static int s3_local_file(const struct storage *s, const char *job_id, const char *name,
                         struct storage_loc *out)
{
    const struct storage_s3 *s3 = s->impl;
    int rc = storage_locate(&s3->local, job_id, name, NULL, out);
    struct stat st;
    if (rc == 0 && fstatat(out->dirfd, out->path, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return -ENOENT;
    return rc;
}

static int s3_stage_open(struct storage *s, const char *job_id)
{
    struct storage_s3 *s3 = s->impl;
    return storage_stage_open(&s3->local, job_id);
}

static int s3_stage_clean(struct storage *s, const char *job_id)
{
    struct storage_s3 *s3 = s->impl;
    return storage_stage_clean(&s3->local, job_id);
}

static void s3_close(struct storage *s)
{
    struct storage_s3 *s3 = s->impl;
    storage_close(&s3->local);
    memset(s3->t.secret, 0, sizeof(s3->t.secret));
    free(s3);
}

static const struct storage_ops s3_ops = {
    .name = "s3",
    .stage_open = s3_stage_open,
    .commit = s3_commit,
    .locate = s3_locate,
    .fetch = s3_fetch,
    .local_file = s3_local_file,
    .stage_clean = s3_stage_clean,
    .close = s3_close,
};

static bool bucket_ok(const char *b)
{
    size_t n = strlen(b);
    return n >= 3 && n <= 63 && strspn(b, "abcdefghijklmnopqrstuvwxyz0123456789.-") == n &&
           b[0] != '.' && b[0] != '-';
}

static int s3_settings(struct storage_s3 *s3, const struct storage_s3_config *c, char *err,
                       size_t errlen)
{
    if (s3_target_endpoint(&s3->t, c->endpoint ? c->endpoint : "", err, errlen) < 0)
        return -EINVAL;
    if (!c->bucket || !bucket_ok(c->bucket)) {
        snprintf(err, errlen, "S3_BUCKET must be 3-63 characters of a-z, 0-9, '.' and '-'");
        return -EINVAL;
    }
    if (!c->access_key || !c->access_key[0] || !c->secret_key || !c->secret_key[0] ||
        strlen(c->access_key) >= sizeof(s3->t.access_key) ||
        strlen(c->secret_key) >= sizeof(s3->t.secret) || strpbrk(c->access_key, "/\r\n ")) {
        snprintf(err, errlen, "STORAGE_PROVIDER=s3 needs S3_ACCESS_KEY_ID and "
                              "S3_SECRET_ACCESS_KEY");
        return -EINVAL;
    }
    const char *tok = c->session_token ? c->session_token : "";
    bool tok_ok = strlen(tok) < sizeof(s3->t.session_token);
    for (const char *p = tok; *p; p++)
        tok_ok &= *p > ' ' && *p != 0x7f; /* it goes into a header line as is */
    if (!tok_ok) {
        snprintf(err, errlen, "S3_SESSION_TOKEN must be printable, without spaces, and "
                              "shorter than %zu bytes", sizeof(s3->t.session_token));
        return -EINVAL;
    }
    const char *region = c->region && c->region[0] ? c->region : "us-east-1";
    const char *prefix = c->prefix ? c->prefix : "";
    if (strlen(region) >= sizeof(s3->t.region) || strpbrk(region, "/\r\n ") ||
        strlen(prefix) >= sizeof(s3->prefix) || prefix[0] == '/' || strpbrk(prefix, "\r\n") ||
        strlen(c->public_url ? c->public_url : "") >= sizeof(s3->public_url)) {
        snprintf(err, errlen, "S3_REGION, S3_PREFIX (no leading '/') or S3_PUBLIC_URL is not "
                              "valid");
        return -EINVAL;
    }
    snprintf(s3->t.bucket, sizeof(s3->t.bucket), "%s", c->bucket);
    snprintf(s3->t.region, sizeof(s3->t.region), "%s", region);
    snprintf(s3->t.access_key, sizeof(s3->t.access_key), "%s", c->access_key);
    snprintf(s3->t.secret, sizeof(s3->t.secret), "%s", c->secret_key);
    snprintf(s3->t.session_token, sizeof(s3->t.session_token), "%s",
             c->session_token ? c->session_token : "");
    snprintf(s3->prefix, sizeof(s3->prefix), "%s", prefix);
    snprintf(s3->public_url, sizeof(s3->public_url), "%s", c->public_url ? c->public_url : "");
    size_t pl = strlen(s3->public_url);
    while (pl && s3->public_url[pl - 1] == '/')
        s3->public_url[--pl] = '\0';
    s3->t.path_style = c->path_style;
    s3->keep_local = c->keep_local;
    s3->url_ttl_s = c->url_ttl_s ? c->url_ttl_s : 3600;
    s3->timeout_ms = c->timeout_ms ? c->timeout_ms : 60000;
    s3->max_attempts = c->max_attempts ? c->max_attempts : 3;
    return 0;
}

int storage_s3_open(struct storage *s, const char *local_path, const struct storage_s3_config *c,
                    char *err, size_t errlen)
{
    struct storage_s3 *s3 = calloc(1, sizeof(*s3));
    if (!s3) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    int rc = s3_settings(s3, c, err, errlen);
    if (rc == 0)
        rc = storage_local_open(&s3->local, local_path, err, errlen);
    if (rc < 0) {
        free(s3);
        return rc;
    }
    s->ops = &s3_ops;
    s->impl = s3;
    s->copies_temporary = !s3->keep_local;
    return 0;
}
