/* storage_local — the local-disk provider: outputs live in <STORAGE_LOCAL_PATH>/outputs/<job>/.
 *
 * Staging is the final home, so a commit only has to make the file's *name* durable: the
 * file_sink already wrote, fsync'd and renamed the data, but a rename (and the mkdir of a new
 * job directory) survives a power cut only once the directory holding it is fsync'd. Commit
 * therefore fsyncs the job directory and the outputs directory through the ring, never on the
 * reactor thread itself. Keys are "outputs/<job>/<name>". */
#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/storage.h"

struct storage_local {
    int root_fd; /* <path>/outputs, O_PATH: what locate hands out */
    char root[1100];
};

static int local_stage_open(struct storage *s, const char *job_id)
{
    struct storage_local *l = s->impl;
    if (!storage_name_ok(job_id))
        return -EINVAL;
    /* a metadata operation on local disk: done inline (the commit makes it durable) */
    if (mkdirat(l->root_fd, job_id, 0755) < 0 && errno != EEXIST)
        return -errno;
    int fd = openat(l->root_fd, job_id, O_PATH | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
    return fd < 0 ? -errno : fd;
}

static void commit_finish(struct storage_commit *c)
{
    for (int i = 0; i < 2; i++) {
        if (c->fd[i] >= 0)
            close(c->fd[i]);
        c->fd[i] = -1;
    }
    c->done(c, c->err);
}

static void fsync_cb(struct ring_op *op, int res, uint32_t flags)
{
    (void)flags;
    struct storage_commit *c = ((struct storage_commit_op *)op)->c;
    if (res < 0 && !c->err)
        c->err = res;
    if (--c->pending == 0)
        commit_finish(c);
}

static int local_commit(struct storage *s, struct storage_commit *c)
{
    struct storage_local *l = s->impl;
    if (!storage_name_ok(c->job_id) || !storage_name_ok(c->name))
        return -EINVAL;
    snprintf(c->key, sizeof(c->key), "outputs/%s/%s", c->job_id, c->name);
    c->st = s;
    c->err = 0;
    c->detail[0] = '\0';
    c->fd[0] = openat(l->root_fd, c->job_id, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
    c->fd[1] = openat(l->root_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (c->fd[0] < 0 || c->fd[1] < 0) {
        c->err = -errno;
        commit_finish(c);
        return 0;
    }
    c->pending = 2;
    for (int i = 0; i < 2; i++) {
        c->sync[i].op.cb = fsync_cb;
        c->sync[i].c = c;
        struct io_uring_sqe *sqe = ring_sqe(c->ring);
        io_uring_prep_fsync(sqe, c->fd[i], 0);
        ring_sqe_set_op(sqe, &c->sync[i].op);
    }
    return 0;
}

static int local_locate(const struct storage *s, const char *job_id, const char *name,
                        const char *key, struct storage_loc *out)
{
    const struct storage_local *l = s->impl;
    (void)key; /* the key is derived from job and name; kept for providers that need it */
    if (!storage_name_ok(job_id) || !storage_name_ok(name))
        return -ENOENT;
    out->kind = STORAGE_LOC_FILE;
    out->dirfd = l->root_fd;
    snprintf(out->path, sizeof(out->path), "%s/%s", job_id, name);
    return 0;
}

/* Every object is a local file already: there is nothing to fetch, only to check. */
static int local_fetch(struct storage *s, struct storage_fetch *f)
{
    struct storage_loc loc;
    int rc = local_locate(s, f->job_id, f->name, f->key, &loc);
    struct stat st;
    if (rc == 0 && fstatat(loc.dirfd, loc.path, &st, AT_SYMLINK_NOFOLLOW) < 0)
        rc = -errno;
    f->done(f, rc);
    return 0;
}

static int local_file(const struct storage *s, const char *job_id, const char *name,
                      struct storage_loc *out)
{
    return local_locate(s, job_id, name, NULL, out);
}

/* file_sink's temporary names: ".<name>.part-<8 hex>" */
static bool is_temp_name(const char *n)
{
    size_t len = strlen(n);
    if (n[0] != '.' || len < 16)
        return false;
    const char *p = n + len - 14;
    return !memcmp(p, ".part-", 6) && strspn(p + 6, "0123456789abcdef") == 8;
}

static int local_stage_clean(struct storage *s, const char *job_id)
{
    struct storage_local *l = s->impl;
    if (!storage_name_ok(job_id))
        return -EINVAL;
    int fd = openat(l->root_fd, job_id, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return errno == ENOENT ? 0 : -errno;
    DIR *d = fdopendir(fd);
    if (!d) {
        close(fd);
        return -errno;
    }
    int removed = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (is_temp_name(de->d_name) && unlinkat(dirfd(d), de->d_name, 0) == 0)
            removed++;
    }
    closedir(d);
    return removed;
}

static void local_close(struct storage *s)
{
    struct storage_local *l = s->impl;
    if (l->root_fd >= 0)
        close(l->root_fd);
    free(l);
}

static const struct storage_ops local_ops = {
    .name = "local",
    .stage_open = local_stage_open,
    .commit = local_commit,
    .locate = local_locate,
    .fetch = local_fetch,
    .local_file = local_file,
    .stage_clean = local_stage_clean,
    .close = local_close,
};

int storage_local_open(struct storage *s, const char *local_path, char *err, size_t errlen)
{
    struct storage_local *l = calloc(1, sizeof(*l));
    if (!l) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    if (mkdir(local_path, 0755) < 0 && errno != EEXIST) {
        snprintf(err, errlen, "cannot create STORAGE_LOCAL_PATH %s: %s", local_path,
                 strerror(errno));
        free(l);
        return -errno;
    }
    snprintf(l->root, sizeof(l->root), "%s/outputs", local_path);
    if (mkdir(l->root, 0755) < 0 && errno != EEXIST) {
        snprintf(err, errlen, "cannot create %s: %s", l->root, strerror(errno));
        free(l);
        return -errno;
    }
    l->root_fd = open(l->root, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (l->root_fd < 0) {
        snprintf(err, errlen, "cannot open %s: %s", l->root, strerror(errno));
        free(l);
        return -errno;
    }
    s->ops = &local_ops;
    s->impl = l;
    s->copies_temporary = false;
    return 0;
}
