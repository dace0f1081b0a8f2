/*
 * sim_files — GET /view and the POST /upload routes for comfysim (see sim_files.h).
 */
#include "sim/sim_files.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "sim/sim_form.h"
#include "sim/sim_json.h"
#include "sim/sim_png.h"
#include "sim/sim_preview.h"
#include "sim/sim_routes.h"
#include "sim/sim_server.h"

#define FILE_MAX (512u << 20)  /* largest file /view re-encodes or an upload compares */
#define RENAME_MAX 10000       /* "name (N).png" attempts before giving up */
#define PIXELS_MAX (64u << 20) /* largest picture /view or /upload/mask decodes */
/* Largest picture /view?preview= converts (4096 x 4096): encoding runs on the reactor. */
#define PREVIEW_PIXELS_MAX (16u << 20)

static bool dir_by_type(const char *type, enum sim_dir *dir)
{
    static const char *const names[3] = {"input", "output", "temp"};
    for (int i = 0; i < 3; i++) {
        if (strcmp(type, names[i]) == 0) {
            *dir = (enum sim_dir)i;
            return true;
        }
    }
    return false;
}

/* os.path.join(root, sub) must stay under root: returns the relative, normalised part ("" for
 * root itself) or false. */
static bool sub_inside(const char *sub, char *rel, size_t cap)
{
    char full[SIM_PATH_MAX + 8], norm[SIM_PATH_MAX + 8];
    if (sub[0] == '/')
        return false;
    snprintf(full, sizeof(full), "/R/%s", sub);
    if (!sim_fs_normpath(full, norm, sizeof(norm)))
        return false;
    if (strcmp(norm, "/R") == 0) {
        rel[0] = 0;
        return true;
    }
    if (strncmp(norm, "/R/", 3) != 0 || strlen(norm + 3) >= cap)
        return false;
    strcpy(rel, norm + 3);
    return true;
}

static const char *base_name(const char *p)
{
    const char *s = strrchr(p, '/');
    return s != NULL ? s + 1 : p;
}

struct view_target {
    enum sim_dir dir;
    char rel[SIM_PATH_MAX * 2 + 2];
    char name[SIM_PATH_MAX];
};

/* server.py view_image's checks; returns 0 or the status to answer with. */
static int view_target(const struct http_request *r, struct view_target *t)
{
    char fname[SIM_PATH_MAX], type[32] = "output", sub[SIM_PATH_MAX], subrel[SIM_PATH_MAX];
    char name[SIM_PATH_MAX];
    if (http_query_get(r, "filename", fname, sizeof(fname)) < 0)
        return 404;
    /* annotated_filepath, with an explicit [type] tag taking precedence over ?type= */
    bool tagged = strstr(fname, "[output]") || strstr(fname, "[input]") || strstr(fname, "[temp]");
    if (!sim_fs_annotated(fname, &t->dir, name, sizeof(name)))
        return 400;
    if (name[0] == 0 || name[0] == '/' || strstr(name, "..") != NULL)
        return 400;
    if (!tagged) {
        http_query_get(r, "type", type, sizeof(type));
        if (!dir_by_type(type, &t->dir))
            return 400;
    }
    subrel[0] = 0;
    if (http_query_get(r, "subfolder", sub, sizeof(sub)) >= 0 &&
        !sub_inside(sub, subrel, sizeof(subrel)))
        return 403;
    snprintf(t->name, sizeof(t->name), "%s", base_name(name));
    snprintf(t->rel, sizeof(t->rel), "%s%s%s", subrel, subrel[0] ? "/" : "", t->name);
    return 0;
}

/* aiohttp writes filename="..." without the "inline;" the file helper would add */
static void add_disposition(struct http_exchange *ex, const struct view_target *t)
{
    char disp[SIM_PATH_MAX + 16];
    snprintf(disp, sizeof(disp), "filename=\"%s\"", t->name);
    http_add_header(ex, "Content-Disposition", disp);
}

/* channel=rgb / channel=a: Pillow's split + save(format="PNG") at its default level 6. */
static void view_channel(struct http_exchange *ex, struct sim_server *s,
                         const struct view_target *t, bool alpha)
{
    uint8_t *data = NULL, *out = NULL;
    size_t len = 0;
    struct sim_png_image img;
    struct sim_buf png;
    sim_buf_init(&png, FILE_MAX);
    int rc = s->dirfs.fs.ops->read(s->dirfs.fs.ctx, t->dir, t->rel, FILE_MAX, &data, &len);
    if (rc == 0)
        rc = sim_png_decode(data, len, PIXELS_MAX, &img);
    free(data);
    if (rc != 0) {
        sim_routes_500(ex); /* Pillow could not open it */
        return;
    }
    size_t npx = (size_t)img.width * img.height;
    bool has_alpha = img.channels == 2 || img.channels == 4;
    out = malloc(npx * (alpha ? 4 : 3));
    for (size_t i = 0; out != NULL && i < npx; i++) {
        const uint8_t *p = img.pixels + i * (size_t)img.channels;
        uint8_t a = has_alpha ? p[img.channels - 1] : 255;
        if (alpha) {
            memset(out + 4 * i, 0, 3);
            out[4 * i + 3] = a;
        } else {
            out[3 * i] = p[0];
            out[3 * i + 1] = img.channels >= 3 ? p[1] : p[0];
            out[3 * i + 2] = img.channels >= 3 ? p[2] : p[0];
        }
    }
    rc = out != NULL ? sim_png_encode(out, img.width, img.height, alpha ? 4 : 3, 6, NULL, 0, &png)
                     : SIM_PNG_ENOMEM;
    free(out);
    sim_png_image_free(&img);
    add_disposition(ex, t);
    size_t plen;
    char *body = rc == 0 ? sim_buf_take(&png, &plen) : NULL;
    sim_buf_free(&png);
    if (body == NULL)
        sim_routes_500(ex);
    else
        http_respond_owned(ex, 200, "image/png", body, plen, free);
}

/* preview=<format>;<quality>: the file converted to WebP or JPEG (sim_preview.h says how
 * ComfyUI reads the parameter). */
static void view_preview(struct http_exchange *ex, struct sim_server *s,
                         const struct view_target *t, const char *preview, const char *channel)
{
    struct sim_preview p;
    uint8_t *data = NULL;
    size_t len = 0;
    struct sim_buf img;
    sim_preview_parse(preview, channel, &p);
    sim_buf_init(&img, FILE_MAX);
    int status = p.quality_ok
                     ? s->dirfs.fs.ops->read(s->dirfs.fs.ctx, t->dir, t->rel, FILE_MAX, &data, &len)
                     : 500;
    if (status == 0)
        status = sim_preview_convert(&p, data, len, PREVIEW_PIXELS_MAX, &img);
    free(data);
    size_t blen;
    char *body = status == 0 ? sim_buf_take(&img, &blen) : NULL;
    sim_buf_free(&img);
    if (status == 400) {
        sim_routes_empty(ex, 400);
    } else if (body == NULL) {
        sim_routes_500(ex);
    } else {
        add_disposition(ex, t);
        http_respond_owned(ex, 200, sim_preview_content_type(&p), body, blen, free);
    }
}

/* A query parameter decoded into a buffer as long as the query (so it always fits); NULL
 * when absent (or badly escaped, which aiohttp would keep as it is). */
static char *query_alloc(const struct http_request *r, const char *key)
{
    char *v = malloc(r->query_len + 1);
    if (v != NULL && http_query_get(r, key, v, r->query_len + 1) >= 0)
        return v;
    free(v);
    return NULL;
}

static void view_now(struct http_exchange *ex, struct sim_server *s)
{
    struct view_target t;
    struct stat st;
    char channel[16] = "rgba";
    if (!sim_routes_origin_ok(ex))
        return;
    int status = view_target(http_req(ex), &t);
    if (status != 0) {
        sim_routes_empty(ex, status);
        return;
    }
    int fd = sim_dirfs_fd(&s->dirfs, t.dir);
    if (!sim_dirfs_safe_path(t.rel) || fstatat(fd, t.rel, &st, AT_SYMLINK_NOFOLLOW) != 0 ||
        !S_ISREG(st.st_mode)) {
        sim_routes_empty(ex, 404);
        return;
    }
    char *preview = query_alloc(http_req(ex), "preview");
    if (preview != NULL) { /* server.py looks at preview before channel */
        char *chan = query_alloc(http_req(ex), "channel");
        view_preview(ex, s, &t, preview, chan);
        free(preview);
        free(chan);
        return;
    }
    http_query_get(http_req(ex), "channel", channel, sizeof(channel));
    if (strcmp(channel, "rgb") == 0 || strcmp(channel, "a") == 0) {
        view_channel(ex, s, &t, channel[0] == 'a');
        return;
    }
    /* rgba and anything else: the file itself */
    add_disposition(ex, &t);
    http_respond_file(ex, fd, t.rel, NULL);
}

/* --- --view-delay-ms: answers held back on ring timers, never by sleeping -------------------- */

int sim_files_waits_init(struct sim_view_waits *w, struct sim_server *s, size_t n)
{
    memset(w, 0, sizeof(*w));
    w->slots = calloc(n, sizeof(*w->slots));
    if (w->slots == NULL)
        return -ENOMEM;
    w->n = n;
    for (size_t i = n; i-- > 0;) {
        w->slots[i].server = s;
        w->slots[i].next_free = w->free;
        w->free = &w->slots[i];
    }
    return 0;
}

void sim_files_waits_fini(struct sim_view_waits *w, struct ring *r)
{
    for (size_t i = 0; r != NULL && i < w->n; i++) {
        if (ring_timer_armed(&w->slots[i].timer))
            ring_timer_cancel(r, &w->slots[i].timer);
    }
    free(w->slots);
    memset(w, 0, sizeof(*w));
}

static void wait_release(struct sim_view_waits *w, struct sim_view_wait *v)
{
    v->ex = NULL;
    v->next_free = w->free;
    w->free = v;
}

static void view_wait_cb(struct ring_timer *t)
{
    struct sim_view_wait *v =
        (struct sim_view_wait *)((char *)t - offsetof(struct sim_view_wait, timer));
    struct sim_server *s = v->server;
    struct http_exchange *ex = v->ex;
    bool aborted = v->aborted;
    wait_release(&s->view_waits, v);
    http_on_abort(ex, NULL, NULL); /* the slot may be reused while the answer is under way */
    if (aborted)
        sim_routes_empty(ex, 503); /* nobody reads it: the exchange only has to end */
    else
        view_now(ex, s);
}

/* The connection died while we waited: end the exchange soon, from the timer (not from
 * inside the HTTP layer's close). */
static void view_abort_cb(struct http_exchange *ex, void *arg)
{
    struct sim_view_wait *v = arg;
    (void)ex;
    v->aborted = true;
    ring_timer_arm(v->server->ring, &v->timer, 0); /* moves an armed timer: cannot fail */
}

void sim_files_view_cb(struct http_exchange *ex, void *arg)
{
    struct sim_server *s = arg;
    if (s->cfg.view_delay_ms == 0) {
        view_now(ex, s);
        return;
    }
    struct sim_view_wait *v = s->view_waits.free;
    if (v == NULL) {
        sim_routes_empty(ex, 503); /* more waiting answers than connections: cannot happen */
        return;
    }
    v->timer.cb = view_wait_cb;
    if (ring_timer_arm(s->ring, &v->timer, s->cfg.view_delay_ms) != 0) {
        sim_routes_empty(ex, 503); /* the reactor's timer cap */
        return;
    }
    s->view_waits.free = v->next_free;
    v->ex = ex;
    v->aborted = false;
    http_on_abort(ex, view_abort_cb, v);
}

/* --- uploads ---------------------------------------------------------------------------------- */

struct upload {
    const struct sim_form_field *image;
    enum sim_dir dir;
    char type[16];
    char subfolder[SIM_PATH_MAX];
    char filename[SIM_PATH_MAX];
    char rel[SIM_PATH_MAX * 2 + 2];
    bool overwrite;
};

static void field_text(const struct sim_form_field *f, char *out, size_t cap, const char *dflt)
{
    size_t n = f == NULL ? 0 : f->len < cap - 1 ? f->len : cap - 1;
    if (f == NULL) {
        snprintf(out, cap, "%s", dflt);
        return;
    }
    memcpy(out, f->data, n);
    out[n] = 0;
}

/* The upload's path relative to its folder; false when it would leave the folder. */
static bool upload_rel(struct upload *u)
{
    char sub[SIM_PATH_MAX];
    if (!sub_inside(u->subfolder[0] ? u->subfolder : ".", sub, sizeof(sub)))
        return false;
    char joined[SIM_PATH_MAX * 2 + 2];
    snprintf(joined, sizeof(joined), "%s%s%s", sub, sub[0] ? "/" : "", u->filename);
    return sub_inside(joined, u->rel, sizeof(u->rel)) && u->rel[0] != 0;
}

/* "name (i).ext" as os.path.splitext splits it. */
static void renamed(const char *orig, int i, char *out, size_t cap)
{
    const char *base = base_name(orig), *dot = strrchr(base, '.');
    while (dot != NULL && dot > base && dot[-1] == '.')
        dot--; /* splitext keeps leading dots of the base with the stem */
    if (dot == NULL || dot == base)
        snprintf(out, cap, "%s (%d)", orig, i);
    else
        snprintf(out, cap, "%.*s (%d)%s", (int)(dot - orig), orig, i, dot);
}

static bool same_bytes(struct sim_server *s, const struct upload *u)
{
    uint8_t *data = NULL;
    size_t len = 0;
    bool same =
        s->dirfs.fs.ops->read(s->dirfs.fs.ctx, u->dir, u->rel, FILE_MAX, &data, &len) == 0 &&
        len == u->image->len && memcmp(data, u->image->data, len) == 0;
    free(data);
    return same;
}

/* image_upload(): returns 0 with u filled (and whether it is a duplicate), or a status. */
static int prepare_upload(struct http_exchange *ex, struct sim_server *s, struct upload *u,
                          struct sim_form_field *fields, size_t *nfields, bool *dup)
{
    size_t ctlen = 0;
    const struct http_request *r = http_req(ex);
    const char *ct = http_header_get(r, "Content-Type", &ctlen);
    if (ct == NULL || sim_form_parse(ct, ctlen, r->body != NULL ? r->body : "", r->body_len, fields,
                                     SIM_FORM_FIELDS_MAX, nfields) != SIM_FORM_OK)
        return 400;
    memset(u, 0, sizeof(*u));
    u->image = sim_form_get(fields, *nfields, "image");
    field_text(sim_form_get(fields, *nfields, "type"), u->type, sizeof(u->type), "input");
    field_text(sim_form_get(fields, *nfields, "subfolder"), u->subfolder, sizeof(u->subfolder), "");
    char ow[8];
    field_text(sim_form_get(fields, *nfields, "overwrite"), ow, sizeof(ow), "");
    u->overwrite = strcmp(ow, "true") == 0 || strcmp(ow, "1") == 0;
    if (!dir_by_type(u->type, &u->dir))
        return 500; /* get_dir_by_type has no answer for it */
    if (u->image == NULL || !u->image->has_filename || u->image->filename[0] == 0)
        return 400;
    snprintf(u->filename, sizeof(u->filename), "%s", u->image->filename);
    if (!upload_rel(u))
        return 400;
    *dup = false;
    for (int i = 1; !u->overwrite && s->dirfs.fs.ops->exists(s->dirfs.fs.ctx, u->dir, u->rel) == 0;
         i++) {
        if (same_bytes(s, u)) {
            *dup = true; /* the same bytes under this name: nothing to write */
            break;
        }
        if (i > RENAME_MAX)
            return 500;
        renamed(u->image->filename, i, u->filename, sizeof(u->filename));
        if (!upload_rel(u))
            return 400;
    }
    return 0;
}

static void upload_answer(struct http_exchange *ex, const struct upload *u)
{
    sim_routes_json(ex, 200,
                    json_pack("{s:s, s:s, s:s}", "name", u->filename, "subfolder", u->subfolder,
                              "type", u->type));
}

void sim_files_upload_image_cb(struct http_exchange *ex, void *arg)
{
    struct sim_server *s = arg;
    struct sim_form_field fields[SIM_FORM_FIELDS_MAX];
    struct upload u;
    size_t n;
    bool dup;
    if (!sim_routes_origin_ok(ex))
        return;
    int status = prepare_upload(ex, s, &u, fields, &n, &dup);
    if (status == 0 && !dup &&
        s->dirfs.fs.ops->write(s->dirfs.fs.ctx, u.dir, u.rel, u.image->data, u.image->len) != 0)
        status = 500;
    if (status == 400)
        sim_routes_empty(ex, 400);
    else if (status != 0)
        sim_routes_500(ex);
    else
        upload_answer(ex, &u);
}

/* original_ref → the original's folder and path; false when ComfyUI would skip the copy. */
static bool mask_original(const json_t *ref, enum sim_dir *dir, char *rel, size_t cap)
{
    char name[SIM_PATH_MAX], sub[SIM_PATH_MAX];
    const char *fname = json_string_value(json_object_get(ref, "filename"));
    const char *type = json_string_value(json_object_get(ref, "type"));
    const char *subf = json_string_value(json_object_get(ref, "subfolder"));
    if (fname == NULL || !sim_fs_annotated(fname, dir, name, sizeof(name)) || name[0] == 0 ||
        name[0] == '/' || strstr(name, "..") != NULL)
        return false;
    bool tagged = strstr(fname, "[output]") || strstr(fname, "[input]") || strstr(fname, "[temp]");
    if (!tagged && !dir_by_type(type != NULL ? type : "output", dir))
        return false;
    sub[0] = 0;
    if (subf != NULL && subf[0] != 0 && !sub_inside(subf, sub, sizeof(sub)))
        return false;
    int n = snprintf(rel, cap, "%s%s%s", sub, sub[0] ? "/" : "", name);
    return n > 0 && (size_t)n < cap && sim_dirfs_safe_path(rel);
}

static int decode_file(struct sim_server *s, enum sim_dir dir, const char *rel,
                       struct sim_png_image *img, uint8_t **raw, size_t *len)
{
    int rc = s->dirfs.fs.ops->read(s->dirfs.fs.ctx, dir, rel, FILE_MAX, raw, len);
    return rc == 0 ? sim_png_decode(*raw, *len, PIXELS_MAX, img) : rc;
}

/* The original as RGBA with the mask's alpha, its text chunks kept; level 4 like ComfyUI. */
static int merge_alpha(const struct sim_png_image *orig, const uint8_t *orig_raw, size_t orig_len,
                       const struct sim_png_image *mask, struct sim_buf *out)
{
    static const char *const keys[2] = {"prompt", "workflow"};
    size_t npx = (size_t)orig->width * orig->height;
    uint8_t *px = malloc(npx * 4);
    if (px == NULL)
        return SIM_PNG_ENOMEM;
    bool mask_alpha = mask->channels == 2 || mask->channels == 4;
    for (size_t i = 0; i < npx; i++) {
        const uint8_t *o = orig->pixels + i * (size_t)orig->channels;
        px[4 * i] = o[0];
        px[4 * i + 1] = orig->channels >= 3 ? o[1] : o[0];
        px[4 * i + 2] = orig->channels >= 3 ? o[2] : o[0];
        px[4 * i + 3] =
            mask_alpha ? mask->pixels[i * (size_t)mask->channels + mask->channels - 1] : 255;
    }
    struct sim_png_text texts[2];
    char *values[2] = {NULL, NULL};
    size_t nt = 0;
    for (int k = 0; k < 2; k++) {
        if (sim_png_text_get(orig_raw, orig_len, keys[k], &values[k], FILE_MAX) == SIM_PNG_OK)
            texts[nt++] = (struct sim_png_text){keys[k], values[k]};
    }
    int rc = sim_png_encode(px, orig->width, orig->height, 4, 4, texts, nt, out);
    free(values[0]);
    free(values[1]);
    free(px);
    return rc;
}

/* upload_mask's image_save_function. Returns 0 (also when it writes nothing, as ComfyUI
 * ignores that function's answer) or 500 where Pillow or json.loads would raise. */
static int save_mask(struct sim_server *s, const struct sim_form_field *fields, size_t n,
                     const struct upload *u)
{
    const struct sim_form_field *f = sim_form_get(fields, n, "original_ref");
    json_error_t err;
    json_t *ref = f != NULL ? sim_json_loads(f->data, f->len, 1u << 20, &err) : NULL;
    char rel[SIM_PATH_MAX * 2];
    enum sim_dir dir;
    struct stat st;
    if (ref == NULL)
        return 500;
    bool go = mask_original(ref, &dir, rel, sizeof(rel)) &&
              fstatat(sim_dirfs_fd(&s->dirfs, dir), rel, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
              S_ISREG(st.st_mode);
    json_decref(ref);
    if (!go)
        return 0;
    struct sim_png_image orig = {0}, mask = {0};
    uint8_t *raw = NULL;
    size_t len = 0;
    struct sim_buf png;
    sim_buf_init(&png, FILE_MAX);
    int rc = decode_file(s, dir, rel, &orig, &raw, &len);
    if (rc == 0)
        rc = sim_png_decode((const uint8_t *)u->image->data, u->image->len, PIXELS_MAX, &mask);
    if (rc == 0 && (mask.width != orig.width || mask.height != orig.height))
        rc = -1; /* Pillow's putalpha: "images do not match" */
    if (rc == 0)
        rc = merge_alpha(&orig, raw, len, &mask, &png);
    if (rc == 0)
        rc = s->dirfs.fs.ops->write(s->dirfs.fs.ctx, u->dir, u->rel, png.data, png.len);
    sim_png_image_free(&orig);
    sim_png_image_free(&mask);
    free(raw);
    sim_buf_free(&png);
    return rc == 0 ? 0 : 500;
}

void sim_files_upload_mask_cb(struct http_exchange *ex, void *arg)
{
    struct sim_server *s = arg;
    struct sim_form_field fields[SIM_FORM_FIELDS_MAX];
    struct upload u;
    size_t n;
    bool dup;
    if (!sim_routes_origin_ok(ex))
        return;
    int status = prepare_upload(ex, s, &u, fields, &n, &dup);
    if (status == 0 && !dup)
        status = save_mask(s, fields, n, &u);
    if (status == 400)
        sim_routes_empty(ex, 400);
    else if (status != 0)
        sim_routes_500(ex);
    else
        upload_answer(ex, &u);
}
