/* engine_files — local copies of stored outputs for the readers that need the bytes (the sync
 * POST /prompt answer, webhooks with inline images, base64 downloads). With an object store a
 * file may exist only in the bucket (another instance made it, or S3_KEEP_LOCAL=false): it is
 * fetched into the staging directory on the dispatcher, whose curl multi carries it.
 *
 * A copy the provider calls temporary is remembered and removed once unused for
 * fetched_keep_s (its mtime is its last use: the provider touches it when it is read again),
 * so the staging directory does not grow with every base64 answer. Copies an earlier process
 * left are found at start-up by the outputs of finished jobs (engine_files_adopt). Readers
 * open their copies as soon as they have them (the sync /prompt answer opens all its images
 * before it streams the first), so a copy removed later cannot cut an answer short. */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "jobs/engine.h"
#include "jobs/engine_internal.h"

struct files_local {
    struct storage_fetch f;
    struct engine *e;
    const struct engine_file *files;
    int *fds;
    size_t n, next;
    bool starting;    /* inside storage_fetch: a done now is an inline one */
    bool inline_done;
    int inline_err;
    engine_files_cb done;
    void *ctx;
};

static void finish(struct files_local *fl, int err)
{
    engine_files_cb done = fl->done;
    void *ctx = fl->ctx;
    fl->e->file_fetches--;
    free(fl);
    done(ctx, err);
}

static void fetch_next(struct files_local *fl);

#define MAX_COPIES 100000 /* past this many (~35 MB of entries), the oldest go at once */

struct fetched_copy {
    struct fetched_copy *next;
    char job[37];
    char name[300];
    int64_t used_ms;
};

static void remember_copy(struct engine *e, const char *job_id, const char *name, int64_t used_ms)
{
    struct fetched_copy *c = calloc(1, sizeof(*c));
    if (!c)
        return; /* not pruned: it stays on disk, like a kept copy */
    snprintf(c->job, sizeof(c->job), "%s", job_id);
    snprintf(c->name, sizeof(c->name), "%s", name);
    c->used_ms = used_ms;
    if (!e->copies_tail)
        e->copies_tail = &e->copies;
    *e->copies_tail = c;
    e->copies_tail = &c->next;
    e->ncopies++;
}

static int64_t mtime_ms(const struct stat *st)
{
    return (int64_t)st->st_mtim.tv_sec * 1000 + st->st_mtim.tv_nsec / 1000000;
}

void engine_files_prune(struct engine *e)
{
    int64_t now = job_now_ms();
    int64_t keep = (int64_t)e->cfg.fetched_keep_s * 1000;
    while (e->copies && (now - e->copies->used_ms >= keep || e->ncopies > MAX_COPIES)) {
        struct fetched_copy *c = e->copies;
        e->copies = c->next;
        if (!e->copies)
            e->copies_tail = &e->copies;
        e->ncopies--;
        c->next = NULL;
        struct storage_loc loc;
        struct stat st;
        if (storage_local_file(e->cfg.storage, c->job, c->name, &loc) < 0 ||
            fstatat(loc.dirfd, loc.path, &st, AT_SYMLINK_NOFOLLOW) < 0) {
            free(c); /* gone already */
            continue;
        }
        int64_t mtime = mtime_ms(&st);
        if (now - mtime < keep && e->ncopies < MAX_COPIES) { /* read again since: wait more */
            c->used_ms = mtime;
            *e->copies_tail = c;
            e->copies_tail = &c->next;
            e->ncopies++;
            if (e->copies == c) /* it was the only one */
                break;
            continue;
        }
        /* inline, like the fstatat above: a metadata operation on local disk, and done before
         * any fetch on this thread can find the copy and hand it to a reader */
        unlinkat(loc.dirfd, loc.path, 0);
        free(c);
    }
}

void engine_files_adopt(struct engine *e, const struct job *j)
{
    if (!e->cfg.storage->copies_temporary)
        return;
    for (size_t i = 0; i < j->noutputs; i++) {
        struct storage_loc loc;
        struct stat st;
        if (storage_local_file(e->cfg.storage, j->id, j->outputs[i].name, &loc) == 0 &&
            fstatat(loc.dirfd, loc.path, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode))
            remember_copy(e, j->id, j->outputs[i].name, mtime_ms(&st));
    }
}

void engine_files_free(struct engine *e)
{
    while (e->copies) {
        struct fetched_copy *c = e->copies;
        e->copies = c->next;
        free(c);
    }
    e->copies_tail = &e->copies;
    e->ncopies = 0;
}

/* Opens the copy just fetched (inline: a metadata operation on local disk, done before the
 * prune on this thread could remove it). */
static int open_copy(struct files_local *fl, const struct storage_fetch *f)
{
    struct storage_loc loc;
    int rc = storage_local_file(fl->e->cfg.storage, f->job_id, f->name, &loc);
    if (rc < 0)
        return rc;
    int fd = openat(loc.dirfd, loc.path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
    if (fd < 0)
        return -errno;
    fl->fds[fl->next - 1] = fd;
    return 0;
}

static void fetched_cb(struct storage_fetch *f, int err)
{
    struct files_local *fl = f->arg;
    if (err == 0 && f->temporary)
        remember_copy(fl->e, f->job_id, f->name, job_now_ms());
    if (err == 0 && fl->fds)
        err = open_copy(fl, f);
    if (fl->starting) { /* the provider answered at once: fetch_next's loop goes on */
        fl->inline_done = true;
        fl->inline_err = err;
        return;
    }
    if (err < 0)
        return finish(fl, err);
    fetch_next(fl);
}

/* A loop rather than recursion: the local provider answers every fetch inline. */
static void fetch_next(struct files_local *fl)
{
    while (fl->next < fl->n) {
        const struct engine_file *ef = &fl->files[fl->next++];
        fl->f = (struct storage_fetch){.ring = fl->e->ring,
                                       .curl = fl->e->curl,
                                       .job_id = ef->job,
                                       .name = ef->name,
                                       .key = ef->key,
                                       .sha256 = ef->sha256,
                                       .size = ef->size,
                                       .max_bytes = fl->e->cfg.max_output_bytes,
                                       .done = fetched_cb,
                                       .arg = fl};
        fl->starting = true;
        fl->inline_done = false;
        int rc = storage_fetch(fl->e->cfg.storage, &fl->f);
        fl->starting = false;
        if (rc < 0)
            return finish(fl, rc);
        if (!fl->inline_done)
            return; /* fetched_cb picks up from here */
        if (fl->inline_err < 0)
            return finish(fl, fl->inline_err);
    }
    finish(fl, 0);
}

void engine_files_local(struct engine *e, const struct engine_file *files, size_t n, int *fds,
                        engine_files_cb done, void *ctx)
{
    for (size_t i = 0; fds && i < n; i++)
        fds[i] = -1;
    struct files_local *fl = calloc(1, sizeof(*fl));
    if (!fl)
        return done(ctx, -ENOMEM);
    fl->e = e;
    fl->files = files;
    fl->fds = fds;
    fl->n = n;
    fl->done = done;
    fl->ctx = ctx;
    e->file_fetches++;
    fetch_next(fl);
}
