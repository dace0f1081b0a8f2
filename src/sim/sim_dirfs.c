/*
 * sim_dirfs — sim_fs over <root>/{input,output,temp} (see sim_dirfs.h).
 */
#include "sim/sim_dirfs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *const folder_names[3] = {"input", "output", "temp"};

bool sim_dirfs_safe_path(const char *relpath)
{
    if (relpath[0] == '/' || strlen(relpath) >= SIM_PATH_MAX)
        return false;
    for (const char *p = relpath; *p;) {
        size_t len = strcspn(p, "/");
        if (len == 0 || (len == 1 && p[0] == '.') || (len == 2 && p[0] == '.' && p[1] == '.'))
            return false;
        p += len;
        if (*p == '/')
            p++;
    }
    return true;
}

static int dir_fd(void *ctx, enum sim_dir dir)
{
    const struct sim_dirfs *d = ctx;
    return (unsigned)dir < 3 ? d->dirs[dir] : -1;
}

static int fs_list(void *ctx, enum sim_dir dir, const char *subfolder, sim_fs_name_cb cb, void *arg)
{
    if (subfolder[0] != 0 && !sim_dirfs_safe_path(subfolder))
        return -ENOENT;
    int fd = openat(dir_fd(ctx, dir), subfolder[0] != 0 ? subfolder : ".",
                    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    DIR *dp = fdopendir(fd);
    if (dp == NULL) {
        close(fd);
        return -ENOMEM;
    }
    for (struct dirent *e; (e = readdir(dp)) != NULL;) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        bool is_dir = e->d_type == DT_DIR;
        if (e->d_type == DT_UNKNOWN) {
            struct stat st;
            is_dir = fstatat(fd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode);
        }
        cb(arg, e->d_name, is_dir);
    }
    closedir(dp);
    return 0;
}

static int fs_exists(void *ctx, enum sim_dir dir, const char *relpath)
{
    struct stat st;
    if (!sim_dirfs_safe_path(relpath))
        return -ENOENT;
    return fstatat(dir_fd(ctx, dir), relpath, &st, AT_SYMLINK_NOFOLLOW) == 0 ? 0 : -errno;
}

static int fs_read(void *ctx, enum sim_dir dir, const char *relpath, size_t max, uint8_t **data,
                   size_t *len)
{
    struct stat st;
    if (!sim_dirfs_safe_path(relpath))
        return -ENOENT;
    int fd = openat(dir_fd(ctx, dir), relpath, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int rc = fstat(fd, &st) == 0 ? 0 : -errno;
    if (rc == 0 && !S_ISREG(st.st_mode))
        rc = -EISDIR;
    if (rc == 0 && (size_t)st.st_size > max)
        rc = -EFBIG;
    *data = rc == 0 ? malloc((size_t)st.st_size + 1) : NULL;
    size_t got = 0;
    if (rc == 0 && *data == NULL)
        rc = -ENOMEM;
    while (rc == 0 && got < (size_t)st.st_size) {
        ssize_t n = read(fd, *data + got, (size_t)st.st_size - got);
        if (n <= 0)
            rc = n == 0 ? -EIO : -errno;
        else
            got += (size_t)n;
    }
    close(fd);
    if (rc != 0) {
        free(*data);
        *data = NULL;
    }
    *len = got;
    return rc;
}

/* mkdir -p of relpath's parent folders. */
static int make_parents(int root, const char *relpath)
{
    char path[SIM_PATH_MAX];
    snprintf(path, sizeof(path), "%s", relpath);
    for (char *p = strchr(path, '/'); p != NULL; p = strchr(p + 1, '/')) {
        *p = 0;
        if (mkdirat(root, path, 0755) < 0 && errno != EEXIST)
            return -errno;
        *p = '/';
    }
    return 0;
}

static int write_all(int fd, const void *data, size_t len)
{
    const uint8_t *p = data;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return n < 0 ? -errno : -EIO;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static int fs_write(void *ctx, enum sim_dir dir, const char *relpath, const void *data, size_t len)
{
    char tmp[SIM_PATH_MAX + 16];
    int root = dir_fd(ctx, dir);
    if (!sim_dirfs_safe_path(relpath))
        return -EINVAL;
    int rc = make_parents(root, relpath);
    snprintf(tmp, sizeof(tmp), "%s.tmp~", relpath);
    int fd = rc == 0
                 ? openat(root, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644)
                 : -1;
    if (rc == 0 && fd < 0)
        rc = -errno;
    if (rc == 0)
        rc = write_all(fd, data, len);
    if (fd >= 0 && close(fd) < 0 && rc == 0)
        rc = -errno;
    if (rc == 0 && renameat(root, tmp, root, relpath) < 0)
        rc = -errno;
    if (rc != 0 && fd >= 0)
        unlinkat(root, tmp, 0);
    return rc;
}

static const struct sim_fs_ops dirfs_ops = {fs_list, fs_exists, fs_read, fs_write};

int sim_dirfs_open(struct sim_dirfs *d, const char *root, char *err, size_t err_cap)
{
    char abs[SIM_PATH_MAX];
    memset(d, 0, sizeof(*d));
    d->dirs[0] = d->dirs[1] = d->dirs[2] = -1;
    if (mkdir(root, 0755) < 0 && errno != EEXIST) {
        snprintf(err, err_cap, "cannot create %s: %s", root, strerror(errno));
        return -errno;
    }
    if (realpath(root, abs) == NULL || strlen(abs) > SIM_PATH_MAX - 16) {
        snprintf(err, err_cap, "cannot resolve %s", root);
        return -ENOENT;
    }
    for (int i = 0; i < 3; i++) {
        char path[SIM_PATH_MAX + 16];
        snprintf(path, sizeof(path), "%s/%s", abs, folder_names[i]);
        if (mkdir(path, 0755) < 0 && errno != EEXIST) {
            snprintf(err, err_cap, "cannot create %s: %s", path, strerror(errno));
            sim_dirfs_close(d);
            return -errno;
        }
        d->dirs[i] = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (d->dirs[i] < 0) {
            snprintf(err, err_cap, "cannot open %s: %s", path, strerror(errno));
            sim_dirfs_close(d);
            return -errno;
        }
    }
    /* abs is at most SIM_PATH_MAX - 16 bytes (checked above) */
    snprintf(d->output_abs, sizeof(d->output_abs), "%.*s/output", SIM_PATH_MAX - 16, abs);
    snprintf(d->temp_abs, sizeof(d->temp_abs), "%.*s/temp", SIM_PATH_MAX - 16, abs);
    d->fs = (struct sim_fs){&dirfs_ops, d, d->output_abs, d->temp_abs};
    return 0;
}

void sim_dirfs_close(struct sim_dirfs *d)
{
    for (int i = 0; i < 3; i++) {
        if (d->dirs[i] >= 0)
            close(d->dirs[i]);
        d->dirs[i] = -1;
    }
}

int sim_dirfs_fd(const struct sim_dirfs *d, enum sim_dir dir)
{
    return (unsigned)dir < 3 ? d->dirs[dir] : -1;
}
