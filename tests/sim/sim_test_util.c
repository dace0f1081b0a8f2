/*
 * sim_test_util — helpers shared by the comfysim unit tests (see sim_test_util.h).
 */
#include "sim_test_util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "sim/sim_json.h"

const char *simt_transcripts(void)
{
    const char *dir = getenv("SIM_TRANSCRIPTS");
    struct stat st;
    if (dir == NULL || stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return NULL;
    return dir;
}

void simt_require_transcripts(void)
{
    if (simt_transcripts() == NULL) {
        fprintf(stderr, "transcripts folder missing (SIM_TRANSCRIPTS): skipped\n");
        exit(SIMT_SKIP);
    }
}

json_t *simt_load(const char *file)
{
    json_error_t err;
    size_t len;
    uint8_t *text = simt_read_file(file, &len);
    /* Transcript 11 holds 2^64-1 (KSampler's seed max), which plain jansson refuses. */
    json_t *v = sim_json_loads((const char *)text, len, 64u << 20, &err);
    free(text);
    if (v == NULL) {
        fprintf(stderr, "cannot load %s: %s\n", file, err.text);
        abort();
    }
    return v;
}

uint8_t *simt_read_file(const char *file, size_t *len)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", simt_transcripts(), file);
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        abort();
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    uint8_t *data = malloc((size_t)n + 1);
    if (data == NULL || fread(data, 1, (size_t)n, f) != (size_t)n)
        abort();
    fclose(f);
    *len = (size_t)n;
    return data;
}

json_t *simt_step(json_t *transcript, size_t n)
{
    return json_array_get(json_object_get(transcript, "steps"), n);
}

json_t *simt_request_json(json_t *step)
{
    return json_object_get(json_object_get(json_object_get(step, "request"), "body"), "json");
}

json_t *simt_response_json(json_t *step)
{
    return json_object_get(json_object_get(json_object_get(step, "response"), "body"), "json");
}

int simt_response_status(json_t *step)
{
    return (int)json_integer_value(json_object_get(json_object_get(step, "response"), "status"));
}

json_t *simt_ws_texts(json_t *transcript, const char *key)
{
    json_t *out = json_array();
    json_t *frames = json_object_get(json_object_get(transcript, key), "frames");
    for (size_t i = 0; i < json_array_size(frames); i++) {
        json_t *f = json_array_get(frames, i);
        const char *type = json_string_value(json_object_get(f, "type"));
        if (strcmp(type, "text") == 0)
            json_array_append(out, json_object_get(f, "json"));
        else if (strcmp(type, "binary") == 0)
            json_array_append_new(out, json_pack("{s:O}", "binary", json_object_get(f, "decoded")));
    }
    return out;
}

bool simt_same_json(const json_t *got, const json_t *want)
{
    char *g = sim_json_dumps(got, 64u << 20), *w = sim_json_dumps(want, 64u << 20);
    bool same = g != NULL && w != NULL && strcmp(g, w) == 0;
    if (!same)
        fprintf(stderr, "--- got:\n%s\n--- want:\n%s\n", g ? g : "(null)", w ? w : "(null)");
    free(g);
    free(w);
    return same;
}

static bool stripped_key(const char *key, const char *const *extra)
{
    if (strcmp(key, "timestamp") == 0 || strcmp(key, "create_time") == 0 ||
        strcmp(key, "prompt_id") == 0)
        return true;
    for (size_t i = 0; extra != NULL && extra[i] != NULL; i++) {
        if (strcmp(key, extra[i]) == 0)
            return true;
    }
    return false;
}

json_t *simt_strip(const json_t *v, const char *const *extra_keys)
{
    if (json_is_array(v)) {
        json_t *out = json_array();
        for (size_t i = 0; i < json_array_size(v); i++)
            json_array_append_new(out, simt_strip(json_array_get(v, i), extra_keys));
        return out;
    }
    if (!json_is_object(v))
        return json_deep_copy(v);
    json_t *out = json_object();
    const char *key;
    json_t *val;
    json_object_foreach((json_t *)v, key, val)
    {
        if (!stripped_key(key, extra_keys))
            json_object_set_new(out, key, simt_strip(val, extra_keys));
    }
    return out;
}

/* --- in-memory filesystem ----------------------------------------------------------------- */

static int fs_list(void *ctx, enum sim_dir dir, const char *subfolder, sim_fs_name_cb cb, void *arg)
{
    struct simt_fs *t = ctx;
    size_t sl = strlen(subfolder);
    bool found = sl == 0;
    char(*seen)[SIM_PATH_MAX] = calloc(SIMT_FILES_MAX, SIM_PATH_MAX);
    size_t nseen = 0;
    if (seen == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < t->n; i++) {
        const char *p = t->files[i].path;
        if (t->files[i].dir != dir)
            continue;
        if (sl > 0 && (strncmp(p, subfolder, sl) != 0 || p[sl] != '/'))
            continue;
        found = true;
        const char *rest = sl > 0 ? p + sl + 1 : p;
        const char *slash = strchr(rest, '/');
        size_t len = slash != NULL ? (size_t)(slash - rest) : strlen(rest);
        bool dup = false;
        for (size_t k = 0; k < nseen && !dup; k++)
            dup = strlen(seen[k]) == len && strncmp(seen[k], rest, len) == 0;
        if (dup)
            continue;
        memcpy(seen[nseen], rest, len);
        seen[nseen][len] = 0;
        cb(arg, seen[nseen++], slash != NULL);
    }
    free(seen);
    return found ? 0 : -ENOENT;
}

const struct simt_file *simt_fs_get(const struct simt_fs *t, enum sim_dir dir, const char *path)
{
    for (size_t i = 0; i < t->n; i++) {
        if (t->files[i].dir == dir && strcmp(t->files[i].path, path) == 0)
            return &t->files[i];
    }
    return NULL;
}

static int fs_exists(void *ctx, enum sim_dir dir, const char *relpath)
{
    return simt_fs_get(ctx, dir, relpath) != NULL ? 0 : -ENOENT;
}

static int fs_read(void *ctx, enum sim_dir dir, const char *relpath, size_t max, uint8_t **data,
                   size_t *len)
{
    const struct simt_file *f = simt_fs_get(ctx, dir, relpath);
    if (f == NULL)
        return -ENOENT;
    if (f->len > max)
        return -EFBIG;
    *data = malloc(f->len + 1);
    if (*data == NULL)
        return -ENOMEM;
    memcpy(*data, f->data, f->len);
    *len = f->len;
    return 0;
}

int simt_fs_put(struct simt_fs *t, enum sim_dir dir, const char *path, const void *data, size_t len)
{
    struct simt_file *f = (struct simt_file *)simt_fs_get(t, dir, path);
    if (f == NULL) {
        if (t->n == SIMT_FILES_MAX)
            return -ENOSPC;
        f = &t->files[t->n++];
        f->dir = dir;
        snprintf(f->path, sizeof(f->path), "%s", path);
    } else {
        free(f->data);
    }
    f->data = malloc(len + 1);
    memcpy(f->data, data, len);
    f->len = len;
    return 0;
}

static int fs_write(void *ctx, enum sim_dir dir, const char *relpath, const void *data, size_t len)
{
    struct simt_fs *t = ctx;
    if (t->fail_writes != 0)
        return -t->fail_writes;
    return simt_fs_put(t, dir, relpath, data, len);
}

static const struct sim_fs_ops simt_ops = {fs_list, fs_exists, fs_read, fs_write};

void simt_fs_init(struct simt_fs *t)
{
    memset(t, 0, sizeof(*t));
    t->fs.ops = &simt_ops;
    t->fs.ctx = t;
    t->fs.output_dir = "/opt/ComfyUI/output";
    t->fs.temp_dir = "/opt/ComfyUI/temp";
}

void simt_fs_free(struct simt_fs *t)
{
    for (size_t i = 0; i < t->n; i++)
        free(t->files[i].data);
    t->n = 0;
}

/* --- WebSocket recorder ------------------------------------------------------------------ */

void simt_ws_init(struct simt_ws *w)
{
    w->frames = json_array();
}

void simt_ws_free(struct simt_ws *w)
{
    json_decref(w->frames);
}

void simt_ws_emit_cb(void *ctx, const char *type, const json_t *data, const char *sid)
{
    struct simt_ws *w = ctx;
    json_array_append_new(w->frames,
                          json_pack("{s:s, s:O, s:s?}", "type", type, "data", data, "sid", sid));
}

void simt_ws_binary_cb(void *ctx, const uint8_t *data, size_t len, const char *sid)
{
    struct simt_ws *w = ctx;
    /* Decoded like the transcripts: TEXT frames carry node_id and text. */
    uint32_t idlen =
        len >= 8 ? (uint32_t)data[4] << 24 | data[5] << 16 | data[6] << 8 | data[7] : 0;
    json_t *dec = json_pack("{s:s%, s:s%}", "node_id", (const char *)data + 8, (size_t)idlen,
                            "text", (const char *)data + 8 + idlen, len - 8 - idlen);
    json_array_append_new(w->frames, json_pack("{s:o, s:i, s:s?}", "binary", dec, "event",
                                               len >= 4 ? data[3] : -1, "sid", sid));
}

void simt_ws_status_cb(void *ctx, int queue_remaining)
{
    struct simt_ws *w = ctx;
    json_array_append_new(w->frames, json_pack("{s:s, s:{s:{s:{s:i}}}, s:n}", "type", "status",
                                               "data", "status", "exec_info", "queue_remaining",
                                               queue_remaining, "sid"));
}

json_t *simt_ws_for_client(const struct simt_ws *w, const char *client_id)
{
    json_t *out = json_array();
    for (size_t i = 0; i < json_array_size(w->frames); i++) {
        json_t *f = json_array_get(w->frames, i);
        const char *sid = json_string_value(json_object_get(f, "sid"));
        if (sid != NULL && (client_id == NULL || strcmp(sid, client_id) != 0))
            continue;
        if (json_object_get(f, "binary") != NULL)
            json_array_append_new(out, json_pack("{s:O}", "binary", json_object_get(f, "binary")));
        else
            json_array_append_new(out, json_pack("{s:O, s:O}", "type", json_object_get(f, "type"),
                                                 "data", json_object_get(f, "data")));
    }
    return out;
}
