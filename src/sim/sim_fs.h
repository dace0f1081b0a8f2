/*
 * sim_fs — the simulator's only window on files, and ComfyUI's path rules.
 *
 * The engine modules never touch the filesystem: whoever embeds them (comfysim, a test)
 * supplies these callbacks over its input/, output/ and temp/ folders and decides how paths
 * map to real files. Here live the pure path rules ComfyUI applies before such calls:
 * posixpath.normpath/commonpath, folder_paths.get_save_image_path (prefix vars, subfolder,
 * the "outside the output folder" error, the `prefix_00001_` counter) and the "name [input]"
 * annotations LoadImage accepts.
 */
#ifndef SIM_FS_H
#define SIM_FS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define SIM_PATH_MAX 1024

enum sim_dir {
    SIM_DIR_INPUT,
    SIM_DIR_OUTPUT,
    SIM_DIR_TEMP,
};

typedef void (*sim_fs_name_cb)(void *arg, const char *name, bool is_dir);

struct sim_fs_ops {
    /* Calls name_cb for every entry of dir/subfolder ("" is the folder itself).
     * Returns 0, or -ENOENT when that folder does not exist. */
    int (*list)(void *ctx, enum sim_dir dir, const char *subfolder, sim_fs_name_cb name_cb,
                void *arg);
    /* 0 when dir/relpath exists (file or folder), -ENOENT otherwise. */
    int (*exists)(void *ctx, enum sim_dir dir, const char *relpath);
    /* Reads a whole file of at most max bytes into *data, malloc'd (the engine free()s it).
     * Returns 0, -ENOENT, -EFBIG past max, or another negative errno. */
    int (*read)(void *ctx, enum sim_dir dir, const char *relpath, size_t max, uint8_t **data,
                size_t *len);
    /* Creates or replaces dir/relpath, making parent folders as needed. 0 or -errno. */
    int (*write)(void *ctx, enum sim_dir dir, const char *relpath, const void *data, size_t len);
};

struct sim_fs {
    const struct sim_fs_ops *ops;
    void *ctx;
    /* Absolute folder names as the simulated server would report them; they only appear
     * inside error messages (e.g. "/opt/ComfyUI/output"). */
    const char *output_dir;
    const char *temp_dir;
};

const char *sim_dir_name(enum sim_dir dir);

/* Python posixpath.normpath into out; false if it does not fit. */
bool sim_fs_normpath(const char *path, char *out, size_t cap);
/* Python os.path.commonpath of two absolute normalized paths into out. */
bool sim_fs_commonpath(const char *a, const char *b, char *out, size_t cap);
/* folder_paths.annotated_filepath: strips " [input]"/"[output]"/"[temp]" suffixes; the
 * default folder is input. false if the name does not fit or climbs out with "..". */
bool sim_fs_annotated(const char *name, enum sim_dir *dir, char *rel, size_t cap);
/* True for file names whose extension maps to an "image/..." MIME type. */
bool sim_fs_is_image_name(const char *name);

struct sim_save_path {
    char subfolder[SIM_PATH_MAX]; /* as reported in the UI ("" or "a/b") */
    char filename[SIM_PATH_MAX];  /* base name, %batch_num% still to be replaced */
    int64_t counter;              /* first free number */
};

/*
 * folder_paths.get_save_image_path for `prefix` in `dir` (output or temp). On the "outside
 * the output folder" condition returns -EPERM and writes ComfyUI's message to err_msg.
 * `now` fills %year%... (localtime as the caller sees it); width/height fill %width%/%height%.
 */
int sim_fs_save_path(const struct sim_fs *fs, enum sim_dir dir, const char *prefix, int64_t width,
                     int64_t height, const struct tm *now, struct sim_save_path *out, char *err_msg,
                     size_t err_cap);
/* "<filename with %batch_num%>_<counter:05>_.png" joined with the subfolder for fs calls. */
bool sim_fs_save_name(const struct sim_save_path *sp, int64_t batch_number, int64_t counter,
                      char *file, size_t file_cap, char *relpath, size_t rel_cap);

#endif
