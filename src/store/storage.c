/* storage — see storage.h: the provider table and helpers every provider shares. */
#include "store/storage.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

int storage_open(struct storage *s, const struct storage_config *cfg, char *err, size_t errlen)
{
    memset(s, 0, sizeof(*s));
    const char *p = cfg->provider && cfg->provider[0] ? cfg->provider : "local";
    if (!strcmp(p, "local"))
        return storage_local_open(s, cfg->local_path, err, errlen);
    if (!strcmp(p, "s3"))
        return storage_s3_open(s, cfg->local_path, &cfg->s3, err, errlen);
    snprintf(err, errlen, "STORAGE_PROVIDER %s is not known (known: local, s3)", p);
    return -EINVAL;
}

void storage_close(struct storage *s)
{
    if (s->ops)
        s->ops->close(s);
    s->ops = NULL;
    s->impl = NULL;
}

int storage_name_ok(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > 255 || !strcmp(name, ".") || !strcmp(name, ".."))
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)name[i];
        if (ch == '/' || ch < 0x20 || ch == 0x7f)
            return 0;
    }
    return 1;
}
