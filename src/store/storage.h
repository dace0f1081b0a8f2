/* storage — where job outputs live: the interface every storage provider implements.
 *
 * Outputs are always *staged* first in a local directory per job (a backend's /view download is
 * streamed there by file_sink: temporary name, fsync, rename), because that is the one write
 * path that is crash-safe and never holds a file in memory. `commit` then makes a staged file
 * durable in the provider and names it with a storage key; for the local provider the staged
 * file already is the final one, while an object-store provider uploads it. Readers ask
 * `locate` how to serve an object: a local file (a directory and a relative path, served
 * zero-copy through the ring) or a URL (e.g. a presigned GET, answered with a redirect).
 * Readers that need the bytes themselves (base64 answers, webhooks with inline images) first
 * `fetch` the object, which makes sure a local copy exists (a no-op for the local provider,
 * a download into the staging directory for an object store), then open `local_file`.
 *
 * A provider is created at start-up from the configuration and is then shared read-only by
 * every reactor: stage_open and locate may run on any reactor thread; commit runs on the
 * reactor passed in the request, and its done callback comes back on that reactor. */
#ifndef COMFYGATE_STORAGE_H
#define COMFYGATE_STORAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ring/ring.h"
#include "ring/ring_curl.h"

#define STORAGE_KEY_MAX 400

struct storage;

enum storage_loc_kind {
    STORAGE_LOC_FILE, /* dirfd + path: a file on this machine */
    STORAGE_LOC_URL,  /* path is a URL the client may fetch */
};

struct storage_loc {
    enum storage_loc_kind kind;
    int dirfd;      /* FILE: owned by the provider, never closed by the caller */
    char path[8192]; /* FILE: relative to dirfd, no "..", no leading '/'; URL: absolute (a
                      * presigned one carries the session token) */
};

/* One staged file to commit. Embedded in its owner; valid until done has run. */
struct storage_commit {
    struct ring *ring;    /* done runs here */
    struct ring_curl *curl; /* that ring's curl multi, for providers that upload */
    const char *job_id;
    const char *name;     /* file name in the job's staging directory */
    const char *mime;
    uint64_t size;
    const char *sha256;   /* lowercase hex */
    char key[STORAGE_KEY_MAX]; /* out: where the object now lives */
    char detail[200];          /* out: on failure, the provider's account of it (or "") */
    void (*done)(struct storage_commit *c, int err); /* err: 0 or -errno */
    /* the provider's, while the commit is in flight */
    struct storage *st;
    void *impl;
    struct storage_commit_op {
        struct ring_op op;
        struct storage_commit *c;
    } sync[2];
    int fd[2];
    unsigned pending;
    int err;
};

/* Makes sure object `name` of job `job_id` (stored under `key`) has a local copy. Embedded in
 * its owner; valid until done has run. */
struct storage_fetch {
    struct ring *ring;
    struct ring_curl *curl;
    const char *job_id;
    const char *name;
    const char *key;
    const char *sha256; /* lowercase hex the copy must hash to ("" or NULL: unchecked) */
    uint64_t size;      /* and its size (with sha256) */
    uint64_t max_bytes;
    void (*done)(struct storage_fetch *f, int err); /* err: 0, -ENOENT, -EBADMSG (the bytes
                                                     * differ), or another -errno */
    void *arg;                                      /* the owner's */
    void *impl;                                     /* the provider's, while in flight */
    bool temporary; /* out: the local copy is a cache the owner should drop when unused (its
                     * mtime is the last use) */
};

struct storage_ops {
    const char *name;
    /* A directory (O_PATH) to stage a job's outputs in, created if needed; the caller closes
     * it. Negative errno on failure. */
    int (*stage_open)(struct storage *s, const char *job_id);
    /* Starts making c durable; c->done follows on c->ring (possibly before this returns). */
    int (*commit)(struct storage *s, struct storage_commit *c);
    /* How to serve object `name` of job `job_id` (stored under `key`); -ENOENT if unknown. */
    int (*locate)(const struct storage *s, const char *job_id, const char *name, const char *key,
                  struct storage_loc *out);
    /* Starts f; f->done follows on f->ring (possibly before this returns). */
    int (*fetch)(struct storage *s, struct storage_fetch *f);
    /* The local copy of an object (STORAGE_LOC_FILE), -ENOENT if there is none. */
    int (*local_file)(const struct storage *s, const char *job_id, const char *name,
                      struct storage_loc *out);
    /* Removes what an interrupted write left in a job's staging directory (file_sink's
     * temporary files). Blocking: start-up recovery only. Returns the number removed. */
    int (*stage_clean)(struct storage *s, const char *job_id);
    void (*close)(struct storage *s);
};

struct storage {
    const struct storage_ops *ops;
    void *impl;
    bool copies_temporary; /* every local copy of a finished output is a cache (what fetch
                            * calls temporary): S3 without S3_KEEP_LOCAL */
};

/* S3_* settings: an S3-compatible object store. */
struct storage_s3_config {
    const char *endpoint;   /* http(s)://host[:port][/path] */
    const char *bucket;
    const char *region;
    const char *access_key;
    const char *secret_key;
    const char *session_token; /* "" or NULL: none (long-term keys) */
    const char *prefix;     /* prepended to "<job>/<name>" */
    const char *public_url; /* "": downloads get presigned URLs; else <public_url>/<key> */
    bool path_style;
    bool keep_local;        /* keep the staged copy after the upload (serves base64 locally) */
    uint32_t url_ttl_s;
    uint32_t timeout_ms;
    uint32_t max_attempts;
};

struct storage_config {
    const char *provider;   /* "local" or "s3" */
    const char *local_path; /* STORAGE_LOCAL_PATH: outputs go to <local_path>/outputs */
    struct storage_s3_config s3;
};

/* Creates the configured provider; on error writes a message to err. */
int storage_open(struct storage *s, const struct storage_config *cfg, char *err, size_t errlen);
void storage_close(struct storage *s);

static inline int storage_stage_open(struct storage *s, const char *job_id)
{
    return s->ops->stage_open(s, job_id);
}
static inline int storage_commit(struct storage *s, struct storage_commit *c)
{
    return s->ops->commit(s, c);
}
static inline int storage_locate(const struct storage *s, const char *job_id, const char *name,
                                 const char *key, struct storage_loc *out)
{
    return s->ops->locate(s, job_id, name, key, out);
}

static inline int storage_fetch(struct storage *s, struct storage_fetch *f)
{
    return s->ops->fetch(s, f);
}
static inline int storage_local_file(const struct storage *s, const char *job_id,
                                     const char *name, struct storage_loc *out)
{
    return s->ops->local_file(s, job_id, name, out);
}

static inline int storage_stage_clean(struct storage *s, const char *job_id)
{
    return s->ops->stage_clean(s, job_id);
}

/* True when name is a plain file name: no '/', not "." or "..", no control characters. */
int storage_name_ok(const char *name);

/* The local provider (storage_local.c). */
int storage_local_open(struct storage *s, const char *local_path, char *err, size_t errlen);
/* The S3 provider (storage_s3.c): staging in local_path as above, objects in the bucket. */
int storage_s3_open(struct storage *s, const char *local_path, const struct storage_s3_config *c,
                    char *err, size_t errlen);

#endif
