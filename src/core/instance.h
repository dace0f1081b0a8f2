/* instance — this process's identity among the gateways that share a data directory.
 *
 * The id names us to ComfyUI (the WebSocket clientId "comfygate-<id>-<n>", so a restarted
 * gateway gets the events of prompts it submitted before) and, with SHARED_STORE, in the job
 * store (which instance runs a job). It must be stable across restarts and distinct between
 * processes running at the same time: each process takes the first of the slot files
 * <dir>/instance-id, instance-id.1, ... that no living process holds (an flock held for the
 * life of the process; the kernel drops it when the process dies, kill -9 included), and keeps
 * the random id written in it. */
#ifndef COMFYGATE_INSTANCE_H
#define COMFYGATE_INSTANCE_H

#include <stddef.h>

#define INSTANCE_SLOTS 64

struct instance {
    int fd;       /* the slot file, locked */
    unsigned slot;
    char id[17];  /* 16 lowercase hex */
};

/* 0, or -1 with a message in err (no slot free, the directory not writable). */
int instance_take(struct instance *in, const char *dir, char *err, size_t errlen);
void instance_release(struct instance *in);

#endif
