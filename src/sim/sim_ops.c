/*
 * sim_ops — node class implementations for the simulator (see sim_ops.h).
 */
#include "sim/sim_ops.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim/sim_buf.h"
#include "sim/sim_json.h"
#include "sim/sim_png.h"

#define TEXT_MAX (16u << 20)     /* largest PNG text chunk / PreviewAny text we build */
#define PNG_MAX_BYTES (1u << 30) /* largest PNG we encode */

/* Innermost traceback frames, as ComfyUI 0.8.0 reports them (transcript 13 for SaveImage). */
static const char *const frames_save_escape[] = {
    "  File \"/opt/ComfyUI/nodes.py\", line 1607, in save_images\n    full_output_folder, fil"
    "ename, counter, subfolder, filename_prefix = folder_paths.get_save_image_path(filename_p"
    "refix, self.output_dir, images[0].shape[1], images[0].shape[0])\n                       "
    "                                                 ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^"
    "^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^\n",
    "  File \"/opt/ComfyUI/folder_paths.py\", line 464, in get_save_image_path\n    raise Exc"
    "eption(err)\n",
    NULL};
static const char *const frames_save_write[] = {
    "  File \"/opt/ComfyUI/nodes.py\", line 1619, in save_images\n"
    "    img.save(os.path.join(full_output_folder, file), pnginfo=metadata, "
    "compress_level=self.compress_level)\n",
    NULL};
static const char *const frames_load_image[] = {
    "  File \"/opt/ComfyUI/nodes.py\", line 1670, in load_image\n"
    "    img = node_helpers.pillow(Image.open, image_path)\n"
    "          ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^\n",
    NULL};
static const char *const frames_sampler[] = {
    "  File \"/opt/ComfyUI/nodes.py\", line 1545, in sample\n"
    "    return common_ksampler(model, seed, steps, cfg, sampler_name, scheduler, positive, "
    "negative, latent_image, denoise=denoise)\n"
    "           ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^"
    "^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^\n",
    "  File \"/opt/ComfyUI/nodes.py\", line 1512, in common_ksampler\n"
    "    samples = comfy.sample.sample(model, noise, steps, cfg, sampler_name, scheduler, "
    "positive, negative, latent_image,\n",
    NULL};
/* ImageToMask asked for "alpha" of an RGB image. No transcript records it: the line number
 * is approximate, the source line is 0.8.0's. */
static const char *const frames_image_to_mask[] = {
    "  File \"/opt/ComfyUI/comfy_extras/nodes_mask.py\", line 134, in execute\n"
    "    mask = image[:, :, :, channels.index(channel)]\n",
    NULL};
static const char *const frames_generic[] = {
    "  File \"/opt/ComfyUI/nodes.py\", line 78, in execute\n    raise RuntimeError(msg)\n", NULL};

/* --- values ---------------------------------------------------------------------------- */

struct sim_node_result *sim_node_result_new(size_t n)
{
    struct sim_node_result *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return NULL;
    r->refs = 1;
    r->n = n < SIM_OUTPUTS_MAX ? n : SIM_OUTPUTS_MAX;
    return r;
}

struct sim_node_result *sim_node_result_ref(struct sim_node_result *r)
{
    if (r != NULL)
        r->refs++;
    return r;
}

void sim_value_clear(struct sim_value *v)
{
    free(v->s);
    sim_tensor_unref(v->t);
    memset(v, 0, sizeof(*v));
}

void sim_node_result_unref(struct sim_node_result *r)
{
    if (r == NULL || --r->refs > 0)
        return;
    for (size_t i = 0; i < SIM_OUTPUTS_MAX; i++)
        sim_value_clear(&r->v[i]);
    json_decref(r->ui);
    json_decref(r->ui_meta);
    free(r);
}

static uint64_t mix(uint64_t h, const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 0x100000001b3ull; /* FNV-1a 64 */
    }
    return h;
}

static uint64_t mix_u64(uint64_t h, uint64_t v)
{
    return mix(h, &v, sizeof(v));
}

static uint64_t mix_str(uint64_t h, const char *s)
{
    size_t n = strlen(s);
    return mix(mix_u64(h, n), s, n);
}

static const struct sim_op_input *arg(const struct sim_op_input *in, size_t nin, const char *name)
{
    for (size_t i = 0; i < nin; i++) {
        if (strcmp(in[i].name, name) == 0)
            return &in[i];
    }
    return NULL;
}

static const struct sim_value *arg_value(const struct sim_op_input *in, size_t nin,
                                         const char *name)
{
    const struct sim_op_input *a = arg(in, nin, name);
    return a != NULL ? a->value : NULL;
}

static int64_t arg_int(const struct sim_op_input *in, size_t nin, const char *name, int64_t dflt)
{
    const struct sim_op_input *a = arg(in, nin, name);
    double d;
    if (a != NULL && a->value != NULL && a->value->type == SIM_V_INT)
        return a->value->i;
    if (a != NULL && a->constant != NULL && sim_json_number(a->constant, &d))
        return json_is_integer(a->constant) ? json_integer_value(a->constant) : (int64_t)d;
    return dflt;
}

static double arg_float(const struct sim_op_input *in, size_t nin, const char *name, double dflt)
{
    const struct sim_op_input *a = arg(in, nin, name);
    double d;
    if (a != NULL && a->value != NULL && a->value->type == SIM_V_FLOAT)
        return a->value->f;
    if (a != NULL && a->constant != NULL && sim_json_number(a->constant, &d))
        return d;
    return dflt;
}

static const char *arg_str(const struct sim_op_input *in, size_t nin, const char *name,
                           const char *dflt)
{
    const struct sim_op_input *a = arg(in, nin, name);
    if (a != NULL && a->value != NULL && a->value->type == SIM_V_STRING)
        return a->value->s;
    if (a != NULL && json_is_string(a->constant))
        return json_string_value(a->constant);
    return dflt;
}

static int op_raise(struct sim_op_error *err, const char *type, const char *const *frames,
                    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static int op_raise(struct sim_op_error *err, const char *type, const char *const *frames,
                    const char *fmt, ...)
{
    va_list ap;
    snprintf(err->type, sizeof(err->type), "%s", type);
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof(err->message), fmt, ap);
    va_end(ap);
    err->frames = frames;
    err->oom = false;
    return SIM_OPS_RAISED;
}

void sim_ops_oom(struct sim_op_error *err, double requested_gib)
{
    /* torch's caching-allocator message, which ComfyUI reports for CUDA OOMs. */
    op_raise(err, "torch.OutOfMemoryError", frames_sampler,
             "Allocation on device 0 would exceed allowed memory. (out of memory)\n"
             "Currently allocated     : 21.87 GiB\n"
             "Requested               : %.2f GiB\n"
             "Device limit            : 23.64 GiB\n"
             "Free (according to CUDA): 19.94 MiB\n"
             "PyTorch limit (set by user-supplied memory fraction)\n"
             "                        : 17179869184.00 GiB",
             requested_gib);
    err->oom = true;
}

/* Tensor allocation failures read like the GPU running out of memory. */
static int tensor_failed(struct sim_op_error *err, int rc, uint64_t numel)
{
    if (rc == SIM_IMAGE_ETOOBIG) {
        sim_ops_oom(err, (double)numel * 4.0 / (1024.0 * 1024.0 * 1024.0));
        return SIM_OPS_RAISED;
    }
    return op_raise(err, rc == SIM_IMAGE_ENOMEM ? "MemoryError" : "RuntimeError", frames_generic,
                    "%s", rc == SIM_IMAGE_ENOMEM ? "" : sim_image_err_name(rc));
}

static int set_image(struct sim_op_out *out, size_t slot, struct sim_tensor *t, enum sim_vtype ty)
{
    out->result->v[slot].type = ty;
    out->result->v[slot].t = t;
    return SIM_OPS_OK;
}

/* --- model-free image nodes ----------------------------------------------------------- */

static int op_empty_image(const struct sim_op_env *env, const struct sim_op_input *in, size_t nin,
                          struct sim_op_out *out, struct sim_op_error *err)
{
    int64_t w = arg_int(in, nin, "width", 512), h = arg_int(in, nin, "height", 512);
    int64_t n = arg_int(in, nin, "batch_size", 1), color = arg_int(in, nin, "color", 0);
    struct sim_tensor *t;
    int rc = sim_image_empty(w, h, n, color, env->max_numel, &t);
    if (rc != SIM_IMAGE_OK)
        return tensor_failed(err, rc, (uint64_t)(w * h * n * 3));
    return set_image(out, 0, t, SIM_V_IMAGE);
}

static int op_invert(const struct sim_op_env *env, const struct sim_op_input *in, size_t nin,
                     struct sim_op_out *out, struct sim_op_error *err)
{
    const struct sim_value *img = arg_value(in, nin, "image");
    struct sim_tensor *t;
    int rc = sim_image_invert(img->t, env->max_numel, &t);
    if (rc != SIM_IMAGE_OK)
        return tensor_failed(err, rc, img->t->numel);
    return set_image(out, 0, t, SIM_V_IMAGE);
}

static int op_scale(const struct sim_op_env *env, const struct sim_op_input *in, size_t nin,
                    struct sim_op_out *out, struct sim_op_error *err)
{
    const struct sim_value *img = arg_value(in, nin, "image");
    enum sim_scale_method m = SIM_SCALE_NEAREST_EXACT;
    sim_scale_method_parse(arg_str(in, nin, "upscale_method", "nearest-exact"), &m);
    int64_t w = arg_int(in, nin, "width", 512), h = arg_int(in, nin, "height", 512);
    bool crop = strcmp(arg_str(in, nin, "crop", "disabled"), "center") == 0;
    struct sim_tensor *t;
    int rc = sim_image_scale(img->t, m, w, h, crop, env->max_numel, &t);
    if (rc != SIM_IMAGE_OK)
        return tensor_failed(err, rc, (uint64_t)(w * h * img->t->shape[0] * 3));
    return set_image(out, 0, t, SIM_V_IMAGE);
}

/* MaskToImage: [n, h, w] -> [n, h, w, 3] with the mask value in every channel. */
static int op_mask_to_image(const struct sim_op_env *env, const struct sim_op_input *in, size_t nin,
                            struct sim_op_out *out, struct sim_op_error *err)
{
    const struct sim_tensor *m = arg_value(in, nin, "mask")->t;
    int64_t n = m->ndim == 3 ? m->shape[0] : 1;
    int64_t shape[4] = {n, m->shape[m->ndim - 2], m->shape[m->ndim - 1], 3};
    struct sim_tensor *t;
    int rc = sim_tensor_new(4, shape, env->max_numel, &t);
    if (rc != SIM_IMAGE_OK)
        return tensor_failed(err, rc, m->numel * 3);
    for (size_t i = 0; i < m->numel; i++)
        t->data[3 * i] = t->data[3 * i + 1] = t->data[3 * i + 2] = m->data[i];
    return set_image(out, 0, t, SIM_V_IMAGE);
}

/* ImageToMask: image[:, :, :, ["red", "green", "blue", "alpha"].index(channel)]. */
static int op_image_to_mask(const struct sim_op_env *env, const struct sim_op_input *in, size_t nin,
                            struct sim_op_out *out, struct sim_op_error *err)
{
    const struct sim_tensor *img = arg_value(in, nin, "image")->t;
    static const char *const names[] = {"red", "green", "blue", "alpha"};
    const char *ch = arg_str(in, nin, "channel", "red");
    int64_t c = 0;
    while (c < 3 && strcmp(names[c], ch) != 0)
        c++;
    if (img->ndim == 4 && c >= img->shape[3]) /* "alpha" of an RGB image */
        return op_raise(err, "IndexError", frames_image_to_mask,
                        "index %lld is out of bounds for dimension 3 with size %lld", (long long)c,
                        (long long)img->shape[3]);
    struct sim_tensor *t;
    int rc = sim_image_channel(img, c, env->max_numel, &t);
    if (rc != SIM_IMAGE_OK)
        return tensor_failed(err, rc, img->numel / 3);
    return set_image(out, 0, t, SIM_V_MASK);
}

/* InvertMask: 1.0 - mask, whatever its shape. */
static int op_invert_mask(const struct sim_op_env *env, const struct sim_op_input *in, size_t nin,
                          struct sim_op_out *out, struct sim_op_error *err)
{
    const struct sim_tensor *m = arg_value(in, nin, "mask")->t;
    struct sim_tensor *t;
    int rc = sim_image_invert(m, env->max_numel, &t);
    if (rc != SIM_IMAGE_OK)
        return tensor_failed(err, rc, m->numel);
    return set_image(out, 0, t, SIM_V_MASK);
}

/* JoinImageWithAlpha: RGB plus 1 - alpha (a MASK is "transparent where 1"). */
static int op_join_alpha(const struct sim_op_env *env, const struct sim_op_input *in, size_t nin,
                         struct sim_op_out *out, struct sim_op_error *err)
{
    const struct sim_tensor *img = arg_value(in, nin, "image")->t;
    const struct sim_tensor *alpha = arg_value(in, nin, "alpha")->t;
    struct sim_tensor *t;
    int rc = sim_image_join_alpha(img, alpha, env->max_numel, &t);
    if (rc != SIM_IMAGE_OK)
        return tensor_failed(err, rc, img->numel / 3 * 4);
    return set_image(out, 0, t, SIM_V_IMAGE);
}

static int op_get_image_size(const struct sim_op_env *env, const struct sim_op_input *in,
                             size_t nin, struct sim_op_out *out, struct sim_op_error *err)
{
    const struct sim_tensor *t = arg_value(in, nin, "image")->t;
    int64_t dims[3] = {t->shape[2], t->shape[1], t->shape[0]}; /* width, height, batch */
    (void)env;
    for (size_t i = 0; i < 3; i++) {
        out->result->v[i].type = SIM_V_INT;
        out->result->v[i].i = dims[i];
    }
    char text[128];
    snprintf(text, sizeof(text), "width: %lld, height: %lld\n batch size: %lld", (long long)dims[0],
             (long long)dims[1], (long long)dims[2]);
    out->text = strdup(text);
    return out->text != NULL ? SIM_OPS_OK : op_raise(err, "MemoryError", frames_generic, "%s", "");
}

static int op_preview_any(const struct sim_op_env *env, const struct sim_op_input *in, size_t nin,
                          struct sim_op_out *out, struct sim_op_error *err)
{
    const struct sim_op_input *a = arg(in, nin, "source");
    char *text = NULL;
    (void)env;
    if (a != NULL && a->value != NULL) {
        text = sim_ops_value_text(a->value);
    } else if (a != NULL && a->constant != NULL) {
        struct sim_buf b;
        sim_buf_init(&b, TEXT_MAX);
        /* str for scalars, json.dumps for anything else */
        if (json_is_string(a->constant) || json_is_number(a->constant) ||
            json_is_boolean(a->constant))
            sim_json_str(a->constant, &b);
        else if (json_is_null(a->constant))
            sim_buf_puts(&b, "None");
        else
            sim_json_dump(a->constant, &b);
        text = sim_buf_take(&b, NULL);
    } else {
        text = strdup("None");
    }
    if (text == NULL)
        return op_raise(err, "MemoryError", frames_generic, "%s", "");
    out->result->ui = json_pack("{s:[s]}", "text", text);
    free(text);
    return out->result->ui != NULL ? SIM_OPS_OK
                                   : op_raise(err, "MemoryError", frames_generic, "%s", "");
}

/* --- files ------------------------------------------------------------------------------ */

static int read_input_file(const struct sim_op_env *env, const char *name, uint8_t **data,
                           size_t *len, struct sim_op_error *err)
{
    char rel[SIM_PATH_MAX];
    enum sim_dir dir;
    int rc = -ENOENT;
    if (sim_fs_annotated(name, &dir, rel, sizeof(rel)))
        rc = env->fs->ops->read(env->fs->ctx, dir, rel, env->max_file_bytes, data, len);
    if (rc == 0)
        return SIM_OPS_OK;
    if (rc == -ENOENT)
        return op_raise(err, "FileNotFoundError", frames_load_image,
                        "[Errno 2] No such file or directory: '/opt/ComfyUI/input/%s'", name);
    return op_raise(err, "OSError", frames_load_image, "[Errno %d] %s: '/opt/ComfyUI/input/%s'",
                    -rc, strerror(-rc), name);
}

/* Pillow's Image.open + decode, with our PNG decoder; other formats are not understood. */
static int load_png(const struct sim_op_env *env, const char *name, struct sim_png_image *img,
                    struct sim_op_error *err)
{
    uint8_t *data = NULL;
    size_t len = 0;
    if (read_input_file(env, name, &data, &len, err) != SIM_OPS_OK)
        return SIM_OPS_RAISED;
    uint64_t max_px = env->max_numel / 4 > 0 ? env->max_numel / 4 : 1;
    int rc = sim_png_decode(data, len, max_px, img);
    free(data);
    if (rc == SIM_PNG_OK)
        return SIM_OPS_OK;
    if (rc == SIM_PNG_ETOOBIG)
        return op_raise(err, "PIL.Image.DecompressionBombError", frames_load_image,
                        "Image size exceeds limit of %llu pixels, could be decompression bomb "
                        "DOS attack.",
                        (unsigned long long)max_px);
    return op_raise(err, "PIL.UnidentifiedImageError", frames_load_image,
                    "cannot identify image file '/opt/ComfyUI/input/%s'", name);
}

static int op_load_image(const struct sim_op_env *env, const struct sim_op_input *in, size_t nin,
                         struct sim_op_out *out, struct sim_op_error *err)
{
    struct sim_png_image img;
    if (load_png(env, arg_str(in, nin, "image", ""), &img, err) != SIM_OPS_OK)
        return SIM_OPS_RAISED;
    struct sim_tensor *t = NULL, *m = NULL;
    int rc =
        sim_image_from_pixels(img.pixels, img.width, img.height, img.channels, env->max_numel, &t);
    bool alpha = img.channels == 2 || img.channels == 4;
    int64_t empty[3] = {1, 64, 64};
    if (rc == SIM_IMAGE_OK && alpha)
        rc = sim_mask_from_channel(img.pixels, img.width, img.height, img.channels,
                                   img.channels - 1, true, env->max_numel, &m);
    else if (rc == SIM_IMAGE_OK)
        rc = sim_tensor_new(3, empty, env->max_numel, &m); /* no alpha: a 64x64 zero mask */
    uint64_t numel = (uint64_t)img.width * img.height * 3;
    sim_png_image_free(&img);
    if (rc != SIM_IMAGE_OK) {
        sim_tensor_unref(t);
        return tensor_failed(err, rc, numel);
    }
    set_image(out, 0, t, SIM_V_IMAGE);
    return set_image(out, 1, m, SIM_V_MASK);
}

static int op_load_image_mask(const struct sim_op_env *env, const struct sim_op_input *in,
                              size_t nin, struct sim_op_out *out, struct sim_op_error *err)
{
    struct sim_png_image img;
    if (load_png(env, arg_str(in, nin, "image", ""), &img, err) != SIM_OPS_OK)
        return SIM_OPS_RAISED;
    const char *ch = arg_str(in, nin, "channel", "alpha");
    /* After Pillow's convert("RGBA"): gray fills R, G and B, missing alpha reads 255. */
    int c = ch[0] == 'r' ? 0 : ch[0] == 'g' ? 1 : ch[0] == 'b' ? 2 : 3;
    int src = img.channels <= 2 ? (c == 3 ? 1 : 0) : c;
    bool has_alpha = img.channels == 2 || img.channels == 4;
    struct sim_tensor *m;
    int rc = sim_tensor_new(3, (int64_t[3]){1, img.height, img.width}, env->max_numel, &m);
    for (size_t i = 0; rc == SIM_IMAGE_OK && i < (size_t)img.width * img.height; i++) {
        float v = (c == 3 && !has_alpha)
                      ? 1.0f
                      : (float)img.pixels[i * (size_t)img.channels + (size_t)src] / 255.0f;
        m->data[i] = c == 3 ? 1.0f - v : v;
    }
    sim_png_image_free(&img);
    if (rc != SIM_IMAGE_OK)
        return tensor_failed(err, rc, 0);
    return set_image(out, 0, m, SIM_V_MASK);
}

/* PngInfo: "prompt" then one chunk per extra_pnginfo key, each json.dumps()'d. */
static int png_texts(const struct sim_op_env *env, struct sim_png_text *texts, char **owned,
                     size_t max)
{
    size_t n = 0;
    if (env->prompt != NULL && n < max) {
        owned[n] = sim_json_dumps(env->prompt, TEXT_MAX);
        texts[n] = (struct sim_png_text){"prompt", owned[n]};
        n++;
    }
    const char *key;
    json_t *val;
    json_object_foreach((json_t *)env->extra_pnginfo, key, val)
    {
        if (n >= max || strlen(key) == 0 || strlen(key) > 79)
            continue;
        owned[n] = sim_json_dumps(val, TEXT_MAX);
        texts[n] = (struct sim_png_text){key, owned[n]};
        n++;
    }
    for (size_t i = 0; i < n; i++) {
        if (owned[i] == NULL)
            return -ENOMEM;
    }
    return (int)n;
}

static int write_png(const struct sim_op_env *env, enum sim_dir dir, const struct sim_tensor *t,
                     int64_t index, int level, const struct sim_png_text *texts, size_t ntexts,
                     const char *relpath, struct sim_op_error *err)
{
    /* Image.fromarray() makes RGB or RGBA from the last dimension; so does our encoder. */
    int64_t w = t->shape[2], h = t->shape[1], c = t->shape[3];
    uint8_t *px = malloc((size_t)(w * h * c));
    struct sim_buf png;
    sim_buf_init(&png, PNG_MAX_BYTES);
    int rc = px != NULL ? 0 : SIM_PNG_ENOMEM;
    if (rc == 0) {
        sim_image_to_u8(t, index, px);
        rc = sim_png_encode(px, (uint32_t)w, (uint32_t)h, (int)c, level, texts, ntexts, &png);
    }
    free(px);
    if (rc == 0)
        rc = env->fs->ops->write(env->fs->ctx, dir, relpath, png.data, png.len);
    sim_buf_free(&png);
    if (rc == 0)
        return SIM_OPS_OK;
    if (rc < 0 && rc >= -4095 && rc != SIM_PNG_ENOMEM)
        return op_raise(err, "OSError", frames_save_write, "[Errno %d] %s", -rc, strerror(-rc));
    return op_raise(err, "MemoryError", frames_save_write, "%s", "");
}

/* PreviewImage always uses 1; SaveImage 4 unless comfysim was told otherwise. */
static int save_level(const struct sim_op_env *env, bool preview)
{
    if (preview)
        return 1;
    return env->png_level > 0 ? env->png_level - SIM_PNG_LEVEL(0) : SIM_PNG_SAVE_LEVEL;
}

/* SaveImage.save_images (PreviewImage: temp folder, random prefix suffix, level 1). */
static int save_images(const struct sim_op_env *env, const struct sim_tensor *t, const char *prefix,
                       bool preview, struct sim_op_out *out, struct sim_op_error *err)
{
    enum sim_dir dir = preview ? SIM_DIR_TEMP : SIM_DIR_OUTPUT;
    char full[SIM_PATH_MAX], msg[SIM_OP_MSG_MAX], file[SIM_PATH_MAX], rel[SIM_PATH_MAX];
    struct sim_save_path sp;
    snprintf(full, sizeof(full), "%s", prefix);
    if (preview) {
        /* The real alphabet: "abcdefghijklmnopqrstupvxyz" (no 'w', two 'p'). */
        static const char letters[] = "abcdefghijklmnopqrstupvxyz";
        char suffix[12] = "_temp_";
        for (int i = 0; i < 5; i++) {
            *env->rng = *env->rng * 6364136223846793005ull + 1442695040888963407ull;
            suffix[6 + i] = letters[(*env->rng >> 33) % 26];
        }
        suffix[11] = 0;
        snprintf(full, sizeof(full), "%s%s", prefix, suffix);
    }
    int rc = sim_fs_save_path(env->fs, dir, full, t->shape[2], t->shape[1], env->now, &sp, msg,
                              sizeof(msg));
    if (rc == -EPERM)
        return op_raise(err, "Exception", frames_save_escape, "%s", msg);
    if (rc != 0)
        return op_raise(err, "OSError", frames_save_write, "[Errno 36] File name too long");
    struct sim_png_text texts[16];
    char *owned[16] = {0};
    int ntexts = png_texts(env, texts, owned, 16);
    json_t *images = json_array();
    rc = (ntexts < 0 || images == NULL) ? op_raise(err, "MemoryError", frames_save_write, "%s", "")
                                        : SIM_OPS_OK;
    for (int64_t b = 0; rc == SIM_OPS_OK && b < t->shape[0]; b++) {
        if (!sim_fs_save_name(&sp, b, sp.counter + b, file, sizeof(file), rel, sizeof(rel))) {
            rc = op_raise(err, "OSError", frames_save_write, "[Errno 36] File name too long");
            break;
        }
        rc = write_png(env, dir, t, b, save_level(env, preview), texts, (size_t)ntexts, rel, err);
        if (rc == SIM_OPS_OK)
            json_array_append_new(images,
                                  json_pack("{s:s, s:s, s:s}", "filename", file, "subfolder",
                                            sp.subfolder, "type", sim_dir_name(dir)));
    }
    for (int i = 0; i < 16; i++)
        free(owned[i]);
    if (rc == SIM_OPS_OK)
        out->result->ui = json_pack("{s:O}", "images", images);
    json_decref(images);
    return rc;
}

static int op_save(const struct sim_op_env *env, const struct sim_op_input *in, size_t nin,
                   struct sim_op_out *out, struct sim_op_error *err, bool preview)
{
    const struct sim_value *img = arg_value(in, nin, "images");
    const char *prefix = arg_str(in, nin, "filename_prefix", "ComfyUI");
    return save_images(env, img->t, preview ? "ComfyUI" : prefix, preview, out, err);
}

/* --- simulated model nodes -------------------------------------------------------------- */

static int op_checkpoint(const struct sim_op_input *in, size_t nin, struct sim_op_out *out)
{
    uint64_t h = mix_str(0xcbf29ce484222325ull, arg_str(in, nin, "ckpt_name", ""));
    static const enum sim_vtype types[3] = {SIM_V_MODEL, SIM_V_CLIP, SIM_V_VAE};
    for (size_t i = 0; i < 3; i++) {
        out->result->v[i].type = types[i];
        out->result->v[i].id = mix_u64(h, i + 1);
    }
    return SIM_OPS_OK;
}

static int op_lora(const struct sim_op_input *in, size_t nin, struct sim_op_out *out)
{
    const struct sim_value *model = arg_value(in, nin, "model"), *clip = arg_value(in, nin, "clip");
    double sm = arg_float(in, nin, "strength_model", 1.0);
    double sc = arg_float(in, nin, "strength_clip", 1.0);
    uint64_t lora = mix_str(0xcbf29ce484222325ull, arg_str(in, nin, "lora_name", ""));
    out->result->v[0] = (struct sim_value){.type = SIM_V_MODEL, .id = model->id};
    out->result->v[1] = (struct sim_value){.type = SIM_V_CLIP, .id = clip->id};
    /* LoraLoader returns its inputs untouched when both strengths are 0. */
    if (sm != 0 || sc != 0) {
        out->result->v[0].id = mix(mix_u64(model->id, lora), &sm, sizeof(sm));
        out->result->v[1].id = mix(mix_u64(clip->id, lora), &sc, sizeof(sc));
    }
    return SIM_OPS_OK;
}

static int op_clip_encode(const struct sim_op_input *in, size_t nin, struct sim_op_out *out)
{
    const struct sim_value *clip = arg_value(in, nin, "clip");
    out->result->v[0].type = SIM_V_COND;
    out->result->v[0].id =
        mix_str(mix_u64(0xcbf29ce484222325ull, clip->id), arg_str(in, nin, "text", ""));
    return SIM_OPS_OK;
}

static int op_empty_latent(const struct sim_op_input *in, size_t nin, struct sim_op_out *out)
{
    struct sim_value *v = &out->result->v[0];
    v->type = SIM_V_LATENT;
    v->lw = arg_int(in, nin, "width", 512) / 8;
    v->lh = arg_int(in, nin, "height", 512) / 8;
    v->n = arg_int(in, nin, "batch_size", 1);
    v->id = 0; /* torch.zeros */
    return SIM_OPS_OK;
}

static int op_ksampler(const struct sim_op_input *in, size_t nin, struct sim_op_out *out)
{
    static const char *const ids[] = {"model", "positive", "negative", "latent_image"};
    static const char *const nums[] = {"seed", "steps"};
    static const char *const strs[] = {"sampler_name", "scheduler"};
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < 4; i++)
        h = mix_u64(h, arg_value(in, nin, ids[i])->id);
    for (size_t i = 0; i < 2; i++)
        h = mix_u64(h, (uint64_t)arg_int(in, nin, nums[i], 0));
    for (size_t i = 0; i < 2; i++)
        h = mix_str(h, arg_str(in, nin, strs[i], ""));
    double f[2] = {arg_float(in, nin, "cfg", 8.0), arg_float(in, nin, "denoise", 1.0)};
    h = mix(h, f, sizeof(f));
    const struct sim_value *latent = arg_value(in, nin, "latent_image");
    out->result->v[0] = *latent;
    out->result->v[0].s = NULL;
    out->result->v[0].t = NULL;
    out->result->v[0].id = h;
    out->ticks = arg_int(in, nin, "steps", 20);
    return SIM_OPS_OK;
}

static int op_vae_decode(const struct sim_op_env *env, const struct sim_op_input *in, size_t nin,
                         struct sim_op_out *out, struct sim_op_error *err)
{
    const struct sim_value *lat = arg_value(in, nin, "samples"), *vae = arg_value(in, nin, "vae");
    struct sim_tensor *t;
    int rc = sim_image_pattern(lat->lw * 8, lat->lh * 8, lat->n, mix_u64(lat->id, vae->id),
                               env->max_numel, &t);
    if (rc != SIM_IMAGE_OK)
        return tensor_failed(err, rc, (uint64_t)(lat->lw * lat->lh * 64 * lat->n * 3));
    return set_image(out, 0, t, SIM_V_IMAGE);
}

/* "4x-UltraSharp.pth", "RealESRGAN_x2plus.pth": the digit next to an 'x'; 4 otherwise. */
static double model_scale(const char *name)
{
    for (const char *p = name; *p; p++) {
        if ((*p == 'x' || *p == 'X') && p > name && p[-1] >= '1' && p[-1] <= '8')
            return p[-1] - '0';
        if ((*p == 'x' || *p == 'X') && p[1] >= '1' && p[1] <= '8')
            return p[1] - '0';
    }
    return 4;
}

static int op_upscale_loader(const struct sim_op_input *in, size_t nin, struct sim_op_out *out)
{
    const char *name = arg_str(in, nin, "model_name", "");
    out->result->v[0].type = SIM_V_UPSCALE_MODEL;
    out->result->v[0].id = mix_str(0xcbf29ce484222325ull, name);
    out->result->v[0].f = model_scale(name);
    return SIM_OPS_OK;
}

static int op_upscale_with_model(const struct sim_op_env *env, const struct sim_op_input *in,
                                 size_t nin, struct sim_op_out *out, struct sim_op_error *err)
{
    const struct sim_value *model = arg_value(in, nin, "upscale_model");
    const struct sim_tensor *img = arg_value(in, nin, "image")->t;
    int64_t w = (int64_t)(img->shape[2] * model->f), h = (int64_t)(img->shape[1] * model->f);
    struct sim_tensor *t;
    int rc = sim_image_scale(img, SIM_SCALE_BILINEAR, w, h, false, env->max_numel, &t);
    if (rc != SIM_IMAGE_OK)
        return tensor_failed(err, rc, (uint64_t)(w * h * img->shape[0] * 3));
    /* comfy.utils.get_tiled_scale_steps with 512px tiles overlapping by 32. */
    out->ticks = img->shape[0] * ((img->shape[1] + 479) / 480) * ((img->shape[2] + 479) / 480);
    return set_image(out, 0, t, SIM_V_IMAGE);
}

int sim_ops_run(const struct sim_node_class *c, const struct sim_op_env *env,
                const struct sim_op_input *in, size_t nin, struct sim_op_out *out,
                struct sim_op_error *err)
{
    memset(out, 0, sizeof(*out));
    out->result = sim_node_result_new(json_array_size(sim_node_outputs(c)));
    if (out->result == NULL)
        return op_raise(err, "MemoryError", frames_generic, "%s", "");
    int rc;
    switch (c->kind) {
    case SIM_NODE_EMPTY_IMAGE:
        rc = op_empty_image(env, in, nin, out, err);
        break;
    case SIM_NODE_IMAGE_INVERT:
        rc = op_invert(env, in, nin, out, err);
        break;
    case SIM_NODE_IMAGE_SCALE:
        rc = op_scale(env, in, nin, out, err);
        break;
    case SIM_NODE_MASK_TO_IMAGE:
        rc = op_mask_to_image(env, in, nin, out, err);
        break;
    case SIM_NODE_IMAGE_TO_MASK:
        rc = op_image_to_mask(env, in, nin, out, err);
        break;
    case SIM_NODE_INVERT_MASK:
        rc = op_invert_mask(env, in, nin, out, err);
        break;
    case SIM_NODE_JOIN_IMAGE_WITH_ALPHA:
        rc = op_join_alpha(env, in, nin, out, err);
        break;
    case SIM_NODE_GET_IMAGE_SIZE:
        rc = op_get_image_size(env, in, nin, out, err);
        break;
    case SIM_NODE_PREVIEW_ANY:
        rc = op_preview_any(env, in, nin, out, err);
        break;
    case SIM_NODE_LOAD_IMAGE:
        rc = op_load_image(env, in, nin, out, err);
        break;
    case SIM_NODE_LOAD_IMAGE_MASK:
        rc = op_load_image_mask(env, in, nin, out, err);
        break;
    case SIM_NODE_SAVE_IMAGE:
    case SIM_NODE_PREVIEW_IMAGE:
        rc = op_save(env, in, nin, out, err, c->kind == SIM_NODE_PREVIEW_IMAGE);
        break;
    case SIM_NODE_CHECKPOINT_LOADER:
        rc = op_checkpoint(in, nin, out);
        break;
    case SIM_NODE_LORA_LOADER:
        rc = op_lora(in, nin, out);
        break;
    case SIM_NODE_CLIP_TEXT_ENCODE:
        rc = op_clip_encode(in, nin, out);
        break;
    case SIM_NODE_EMPTY_LATENT:
        rc = op_empty_latent(in, nin, out);
        break;
    case SIM_NODE_KSAMPLER:
        rc = op_ksampler(in, nin, out);
        break;
    case SIM_NODE_VAE_DECODE:
        rc = op_vae_decode(env, in, nin, out, err);
        break;
    case SIM_NODE_UPSCALE_MODEL_LOADER:
        rc = op_upscale_loader(in, nin, out);
        break;
    case SIM_NODE_IMAGE_UPSCALE_WITH_MODEL:
        rc = op_upscale_with_model(env, in, nin, out, err);
        break;
    default:
        rc = op_raise(err, "NotImplementedError", frames_generic, "%s", c->name);
    }
    if (rc != SIM_OPS_OK) {
        sim_node_result_unref(out->result);
        free(out->text);
        memset(out, 0, sizeof(*out));
    }
    return rc;
}

/* --- how values read in error reports and PreviewAny ------------------------------------ */

static void repr_zeros(struct sim_buf *b, int ndim, const int64_t *shape)
{
    struct sim_tensor *t;
    if (sim_tensor_new(ndim, shape, 1u << 24, &t) != SIM_IMAGE_OK) {
        sim_buf_puts(b, "tensor(...)");
        return;
    }
    sim_tensor_repr(t, b);
    sim_tensor_unref(t);
}

/* str() of an opaque Python object: its class and a stable, address-looking id. */
static void object_text(struct sim_buf *b, const char *cls, uint64_t id)
{
    sim_buf_printf(b, "<%s object at 0x7f%09llx0>", cls, (unsigned long long)(id & 0xFFFFFFFFFull));
}

char *sim_ops_value_text(const struct sim_value *v)
{
    struct sim_buf b;
    char num[32];
    sim_buf_init(&b, TEXT_MAX);
    switch (v->type) {
    case SIM_V_INT:
        sim_buf_printf(&b, "%lld", (long long)v->i);
        break;
    case SIM_V_FLOAT:
        sim_json_float_repr(v->f, num);
        sim_buf_puts(&b, num);
        break;
    case SIM_V_STRING:
        sim_buf_puts(&b, v->s != NULL ? v->s : "");
        break;
    case SIM_V_IMAGE:
    case SIM_V_MASK:
        sim_tensor_repr(v->t, &b);
        break;
    case SIM_V_LATENT:
        sim_buf_puts(&b, "{'samples': ");
        repr_zeros(&b, 4, (int64_t[4]){v->n, 4, v->lh, v->lw});
        sim_buf_puts(&b, "}");
        break;
    case SIM_V_COND:
        sim_buf_puts(&b, "[[");
        repr_zeros(&b, 3, (int64_t[3]){1, 77, 768});
        sim_buf_puts(&b, ", {'pooled_output': ");
        repr_zeros(&b, 2, (int64_t[2]){1, 768});
        sim_buf_puts(&b, "}]]");
        break;
    case SIM_V_MODEL:
        object_text(&b, "comfy.model_patcher.ModelPatcher", v->id);
        break;
    case SIM_V_CLIP:
        object_text(&b, "comfy.sd.CLIP", v->id);
        break;
    case SIM_V_VAE:
        object_text(&b, "comfy.sd.VAE", v->id);
        break;
    case SIM_V_UPSCALE_MODEL:
        object_text(&b, "spandrel.__helpers.model_descriptor.ImageModelDescriptor", v->id);
        break;
    case SIM_V_NONE:
        sim_buf_puts(&b, "None");
        break;
    }
    return sim_buf_take(&b, NULL);
}

json_t *sim_ops_format_value(const struct sim_value *v)
{
    /* format_value keeps None, int, float, bool and str as they are; str() for the rest. */
    switch (v->type) {
    case SIM_V_NONE:
        return json_null();
    case SIM_V_INT:
        return json_integer(v->i);
    case SIM_V_FLOAT:
        return json_real(v->f);
    case SIM_V_STRING:
        return json_string(v->s != NULL ? v->s : "");
    default:
        break;
    }
    char *text = sim_ops_value_text(v);
    json_t *out = text != NULL ? json_string(text) : NULL;
    free(text);
    return out;
}
