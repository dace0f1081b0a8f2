/* instance — see instance.h. */
#include "core/instance.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <unistd.h>

static bool id_ok(const char *s)
{
    return strlen(s) == 16 && strspn(s, "0123456789abcdef") == 16;
}

/* The id in a locked slot file, or a fresh one written (and fsync'd) into it. */
static int slot_id(struct instance *in)
{
    char buf[32] = "";
    ssize_t n = pread(in->fd, buf, sizeof(buf) - 1, 0);
    buf[n > 0 ? n : 0] = '\0';
    buf[strcspn(buf, "\r\n")] = '\0';
    if (id_ok(buf)) {
        memcpy(in->id, buf, sizeof(in->id));
        return 0;
    }
    unsigned char r[8];
    if (getrandom(r, sizeof(r), 0) != sizeof(r))
        return -EIO;
    for (int i = 0; i < 8; i++)
        snprintf(in->id + 2 * i, 3, "%02x", r[i]);
    char line[20];
    int len = snprintf(line, sizeof(line), "%s\n", in->id);
    if (ftruncate(in->fd, 0) < 0 || pwrite(in->fd, line, (size_t)len, 0) != len ||
        fsync(in->fd) < 0)
        return -errno;
    return 0;
}

int instance_take(struct instance *in, const char *dir, char *err, size_t errlen)
{
    memset(in, 0, sizeof(*in));
    in->fd = -1;
    for (unsigned s = 0; s < INSTANCE_SLOTS; s++) {
        char path[1200];
        if (s == 0)
            snprintf(path, sizeof(path), "%s/instance-id", dir);
        else
            snprintf(path, sizeof(path), "%s/instance-id.%u", dir, s);
        int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        if (fd < 0) {
            snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
            return -1;
        }
        if (flock(fd, LOCK_EX | LOCK_NB) < 0) { /* another living process has this one */
            close(fd);
            continue;
        }
        in->fd = fd;
        in->slot = s;
        if (slot_id(in) < 0) {
            snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
            instance_release(in);
            return -1;
        }
        return 0;
    }
    snprintf(err, errlen, "all %d instance slots in %s are held by running processes",
             INSTANCE_SLOTS, dir);
    return -1;
}

void instance_release(struct instance *in)
{
    if (in->fd >= 0)
        close(in->fd); /* drops the lock */
    in->fd = -1;
}
