/*
 * sim_fs — ComfyUI's path rules over caller-supplied file callbacks (see sim_fs.h).
 */
#include "sim/sim_fs.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "sim/sim_json.h"

const char *sim_dir_name(enum sim_dir dir)
{
    switch (dir) {
    case SIM_DIR_INPUT:
        return "input";
    case SIM_DIR_OUTPUT:
        return "output";
    case SIM_DIR_TEMP:
        return "temp";
    }
    return "?";
}

bool sim_fs_normpath(const char *path, char *out, size_t cap)
{
    const char *comps[SIM_PATH_MAX / 2];
    size_t lens[SIM_PATH_MAX / 2], n = 0;
    if (path[0] == 0)
        return cap >= 2 && (strcpy(out, "."), true);
    bool abs = path[0] == '/';
    /* POSIX keeps exactly two leading slashes; three or more collapse to one. */
    int lead = abs ? ((path[1] == '/' && path[2] != '/') ? 2 : 1) : 0;
    for (const char *p = path; *p;) {
        while (*p == '/')
            p++;
        const char *s = p;
        while (*p && *p != '/')
            p++;
        size_t len = (size_t)(p - s);
        if (len == 0 || (len == 1 && s[0] == '.'))
            continue;
        if (len == 2 && s[0] == '.' && s[1] == '.') {
            if (n > 0 && !(lens[n - 1] == 2 && comps[n - 1][0] == '.' && comps[n - 1][1] == '.')) {
                n--;
                continue;
            }
            if (abs)
                continue;
        }
        if (n >= sizeof(comps) / sizeof(comps[0]))
            return false;
        comps[n] = s;
        lens[n++] = len;
    }
    size_t o = 0;
    for (int i = 0; i < lead; i++) {
        if (o + 1 >= cap)
            return false;
        out[o++] = '/';
    }
    for (size_t i = 0; i < n; i++) {
        if (o + lens[i] + 2 >= cap)
            return false;
        if (i > 0)
            out[o++] = '/';
        memcpy(out + o, comps[i], lens[i]);
        o += lens[i];
    }
    if (o == 0)
        out[o++] = '.';
    out[o] = 0;
    return true;
}

bool sim_fs_commonpath(const char *a, const char *b, char *out, size_t cap)
{
    /* Component-wise, like Python: "/a/bc" and "/a/b" only share "/a". */
    size_t o = 0;
    if (cap < 2)
        return false;
    out[o++] = '/';
    for (;;) {
        while (*a == '/')
            a++;
        while (*b == '/')
            b++;
        size_t la = strcspn(a, "/"), lb = strcspn(b, "/");
        if (la == 0 || la != lb || memcmp(a, b, la) != 0)
            break;
        if (o + la + 2 > cap)
            return false;
        if (o > 1)
            out[o++] = '/';
        memcpy(out + o, a, la);
        o += la;
        a += la;
        b += lb;
    }
    out[o] = 0;
    return true;
}

static bool has_dotdot(const char *rel)
{
    for (const char *p = rel; *p;) {
        const char *s = p;
        while (*p && *p != '/')
            p++;
        if (p - s == 2 && s[0] == '.' && s[1] == '.')
            return true;
        while (*p == '/')
            p++;
    }
    return false;
}

bool sim_fs_annotated(const char *name, enum sim_dir *dir, char *rel, size_t cap)
{
    static const struct {
        const char *tag;
        size_t cut; /* ComfyUI slices one more character than the tag: the space */
        enum sim_dir dir;
    } tags[] = {{"[output]", 9, SIM_DIR_OUTPUT},
                {"[input]", 8, SIM_DIR_INPUT},
                {"[temp]", 7, SIM_DIR_TEMP}};
    size_t n = strlen(name);
    *dir = SIM_DIR_INPUT;
    for (size_t i = 0; i < sizeof(tags) / sizeof(tags[0]); i++) {
        size_t tl = strlen(tags[i].tag);
        if (n >= tl && strcmp(name + n - tl, tags[i].tag) == 0) {
            *dir = tags[i].dir;
            n = n >= tags[i].cut ? n - tags[i].cut : 0;
            break;
        }
    }
    if (n + 1 > cap)
        return false;
    memcpy(rel, name, n);
    rel[n] = 0;
    /* The simulator's files stay inside their folders, whatever the path says. */
    return rel[0] != '/' && !has_dotdot(rel);
}

bool sim_fs_is_image_name(const char *name)
{
    static const char *const exts[] = {"png", "jpg",  "jpeg", "jpe", "gif",  "bmp",  "webp",
                                       "tif", "tiff", "ico",  "svg", "avif", "heic", "heif",
                                       "jxl", "pbm",  "pgm",  "ppm", "pnm",  "tga",  "psd"};
    const char *dot = strrchr(name, '.');
    if (dot == NULL || dot == name)
        return false;
    for (size_t i = 0; i < sizeof(exts) / sizeof(exts[0]); i++) {
        if (strcasecmp(dot + 1, exts[i]) == 0)
            return true;
    }
    return false;
}

static bool replace_all(char *s, size_t cap, const char *from, const char *to)
{
    char tmp[SIM_PATH_MAX];
    size_t fl = strlen(from), tl = strlen(to), o = 0;
    for (const char *p = s; *p;) {
        if (strncmp(p, from, fl) == 0) {
            if (o + tl >= sizeof(tmp))
                return false;
            memcpy(tmp + o, to, tl);
            o += tl;
            p += fl;
        } else {
            if (o + 1 >= sizeof(tmp))
                return false;
            tmp[o++] = *p++;
        }
    }
    if (o + 1 > cap)
        return false;
    memcpy(s, tmp, o);
    s[o] = 0;
    return true;
}

static bool compute_vars(char *p, size_t cap, int64_t w, int64_t h, const struct tm *now)
{
    char v[7][24];
    snprintf(v[0], sizeof(v[0]), "%lld", (long long)w);
    snprintf(v[1], sizeof(v[1]), "%lld", (long long)h);
    snprintf(v[2], sizeof(v[2]), "%d", now->tm_year + 1900);
    snprintf(v[3], sizeof(v[3]), "%02d", now->tm_mon + 1);
    snprintf(v[4], sizeof(v[4]), "%02d", now->tm_mday);
    snprintf(v[5], sizeof(v[5]), "%02d", now->tm_hour);
    snprintf(v[6], sizeof(v[6]), "%02d", now->tm_min);
    char sec[8];
    snprintf(sec, sizeof(sec), "%02d", now->tm_sec);
    return replace_all(p, cap, "%width%", v[0]) && replace_all(p, cap, "%height%", v[1]) &&
           replace_all(p, cap, "%year%", v[2]) && replace_all(p, cap, "%month%", v[3]) &&
           replace_all(p, cap, "%day%", v[4]) && replace_all(p, cap, "%hour%", v[5]) &&
           replace_all(p, cap, "%minute%", v[6]) && replace_all(p, cap, "%second%", sec);
}

struct counter_scan {
    const char *filename; /* wanted base name */
    size_t prefix_len;    /* len(basename(filename_prefix)) */
    int64_t best;         /* highest number seen, -1 if none */
};

/* get_save_image_path's map_filename + filter: "<name>_<digits>_..." entries count. */
static void counter_cb(void *arg, const char *name, bool is_dir)
{
    struct counter_scan *cs = arg;
    size_t n = strlen(name), pl = cs->prefix_len + 1 < n ? cs->prefix_len + 1 : n;
    (void)is_dir;
    if (pl == 0 || name[pl - 1] != '_' || pl - 1 != strlen(cs->filename) ||
        strncmp(name, cs->filename, pl - 1) != 0)
        return;
    char digits[64];
    size_t dl = strcspn(name + pl, "_");
    long long d = 0;
    if (dl < sizeof(digits)) {
        memcpy(digits, name + pl, dl);
        digits[dl] = 0;
        if (!sim_json_py_int(digits, &d))
            d = 0;
    }
    if (d > cs->best)
        cs->best = d;
}

static const char *base_name(const char *p)
{
    const char *s = strrchr(p, '/');
    return s != NULL ? s + 1 : p;
}

static int check_inside(const char *root, const char *subfolder, char *err_msg, size_t err_cap)
{
    char full[SIM_PATH_MAX * 2], abs_full[SIM_PATH_MAX * 2], common[SIM_PATH_MAX * 2];
    /* os.path.join drops the root when the subfolder is absolute. */
    if (subfolder[0] == '/')
        snprintf(full, sizeof(full), "%s", subfolder);
    else
        snprintf(full, sizeof(full), "%s/%s", root, subfolder);
    if (!sim_fs_normpath(full, abs_full, sizeof(abs_full)) ||
        !sim_fs_commonpath(root, abs_full, common, sizeof(common)))
        return -ENAMETOOLONG;
    if (strcmp(common, root) == 0)
        return 0;
    snprintf(err_msg, err_cap,
             "**** ERROR: Saving image outside the output folder is not allowed.\n"
             " full_output_folder: %s\n         output_dir: %s\n         commonpath: %s",
             abs_full, root, common);
    return -EPERM;
}

int sim_fs_save_path(const struct sim_fs *fs, enum sim_dir dir, const char *prefix, int64_t width,
                     int64_t height, const struct tm *now, struct sim_save_path *out, char *err_msg,
                     size_t err_cap)
{
    char p[SIM_PATH_MAX], norm[SIM_PATH_MAX];
    const char *root = dir == SIM_DIR_TEMP ? fs->temp_dir : fs->output_dir;
    if (strlen(prefix) >= sizeof(p))
        return -ENAMETOOLONG;
    strcpy(p, prefix);
    if (strchr(p, '%') != NULL && !compute_vars(p, sizeof(p), width, height, now))
        return -ENAMETOOLONG;
    if (!sim_fs_normpath(p, norm, sizeof(norm)))
        return -ENAMETOOLONG;
    const char *slash = strrchr(norm, '/');
    size_t sub_len = slash == NULL ? 0 : (size_t)(slash - norm);
    if (slash == norm)
        sub_len = 1; /* dirname("/x") is "/" */
    memcpy(out->subfolder, norm, sub_len);
    out->subfolder[sub_len] = 0;
    snprintf(out->filename, sizeof(out->filename), "%s", base_name(norm));
    int rc = check_inside(root, out->subfolder, err_msg, err_cap);
    if (rc != 0)
        return rc;
    struct counter_scan cs = {out->filename, strlen(base_name(p)), -1};
    rc = fs->ops->list(fs->ctx, dir, out->subfolder, counter_cb, &cs);
    out->counter = (rc == 0 && cs.best >= 0) ? cs.best + 1 : 1;
    return 0;
}

bool sim_fs_save_name(const struct sim_save_path *sp, int64_t batch_number, int64_t counter,
                      char *file, size_t file_cap, char *relpath, size_t rel_cap)
{
    char name[SIM_PATH_MAX], num[24];
    snprintf(name, sizeof(name), "%s", sp->filename);
    snprintf(num, sizeof(num), "%lld", (long long)batch_number);
    if (!replace_all(name, sizeof(name), "%batch_num%", num))
        return false;
    int n = snprintf(file, file_cap, "%s_%05lld_.png", name, (long long)counter);
    if (n < 0 || (size_t)n >= file_cap)
        return false;
    if (sp->subfolder[0] == 0)
        n = snprintf(relpath, rel_cap, "%s", file);
    else
        n = snprintf(relpath, rel_cap, "%s/%s", sp->subfolder, file);
    return n >= 0 && (size_t)n < rel_cap;
}
