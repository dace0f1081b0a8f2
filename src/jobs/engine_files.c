/* engine_files — local copies of stored outputs for the readers that need the bytes (the sync
 * POST /prompt answer, webhooks with inline images, base64 downloads). With an object store a
 * file may exist only in the bucket (another instance made it, or S3_KEEP_LOCAL=false): it is
 * fetched into the staging directory on the dispatcher, whose curl multi carries it. */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>

#include "jobs/engine.h"
#include "jobs/engine_internal.h"

struct files_local {
    struct storage_fetch f;
    struct engine *e;
    const struct engine_file *files;
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

static void fetched_cb(struct storage_fetch *f, int err)
{
    struct files_local *fl = f->arg;
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

void engine_files_local(struct engine *e, const struct engine_file *files, size_t n,
                        engine_files_cb done, void *ctx)
{
    struct files_local *fl = calloc(1, sizeof(*fl));
    if (!fl)
        return done(ctx, -ENOMEM);
    fl->e = e;
    fl->files = files;
    fl->n = n;
    fl->done = done;
    fl->ctx = ctx;
    e->file_fetches++;
    fetch_next(fl);
}
