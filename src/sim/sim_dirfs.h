/*
 * sim_dirfs — sim_fs callbacks over a real directory tree, for the comfysim binary.
 *
 * <root>/input, <root>/output and <root>/temp play ComfyUI's folders. Every path the engine
 * hands over is relative to one of them; paths that are absolute or contain ".." are refused
 * before any system call, and files are opened with O_NOFOLLOW relative to the folder's
 * descriptor, so nothing outside the tree is ever touched. Writes go to a temporary name and
 * are renamed into place, so a reader never sees half a PNG.
 *
 * The calls are ordinary blocking file I/O on small files in a local test directory; comfysim
 * is a test double and accepts that on its reactor thread (the gateway proper never does).
 */
#ifndef SIM_DIRFS_H
#define SIM_DIRFS_H

#include <stdbool.h>
#include <stddef.h>

#include "sim/sim_fs.h"

struct sim_dirfs {
    struct sim_fs fs; /* hand &d->fs to the engine */
    int dirs[3];      /* O_PATH descriptors of input, output, temp (enum sim_dir order) */
    char output_abs[SIM_PATH_MAX];
    char temp_abs[SIM_PATH_MAX];
};

/* Creates the folders under root as needed and opens them. 0, or -errno with err set. */
int sim_dirfs_open(struct sim_dirfs *d, const char *root, char *err, size_t err_cap);
void sim_dirfs_close(struct sim_dirfs *d);
/* The folder's descriptor, for serving files (GET /view). */
int sim_dirfs_fd(const struct sim_dirfs *d, enum sim_dir dir);
/* True for a relative path without "." / ".." segments or empty components. */
bool sim_dirfs_safe_path(const char *relpath);

#endif
