/*
 * sim_image — ComfyUI-shaped float32 tensors, image ops and torch's repr (see sim_image.h).
 */
#include "sim/sim_image.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* torch's default print options. */
#define REPR_PRECISION 4
#define REPR_THRESHOLD 1000
#define REPR_EDGEITEMS 3
#define REPR_LINEWIDTH 80
/* Most taps one Lanczos output may use (support 3 * downscale factor, capped). */
#define LANCZOS_TAPS 512

const char *sim_image_err_name(int err)
{
    switch (err) {
    case SIM_IMAGE_OK:
        return "ok";
    case SIM_IMAGE_ENOMEM:
        return "out of memory";
    case SIM_IMAGE_ETOOBIG:
        return "tensor too large";
    case SIM_IMAGE_EINVAL:
        return "invalid tensor shape";
    default:
        return "unknown";
    }
}

int sim_tensor_new(int ndim, const int64_t *shape, uint64_t max_numel, struct sim_tensor **out)
{
    *out = NULL;
    if (ndim < 1 || ndim > SIM_TENSOR_MAX_DIMS)
        return SIM_IMAGE_EINVAL;
    uint64_t numel = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0)
            return SIM_IMAGE_EINVAL;
        if (shape[i] > 0 && numel > UINT64_MAX / (uint64_t)shape[i])
            return SIM_IMAGE_ETOOBIG;
        numel *= (uint64_t)shape[i];
    }
    if (numel > max_numel || numel > SIZE_MAX / sizeof(float))
        return SIM_IMAGE_ETOOBIG;
    struct sim_tensor *t = calloc(1, sizeof(*t));
    if (t == NULL)
        return SIM_IMAGE_ENOMEM;
    t->data = calloc(numel > 0 ? numel : 1, sizeof(float));
    if (t->data == NULL) {
        free(t);
        return SIM_IMAGE_ENOMEM;
    }
    t->refs = 1;
    t->ndim = ndim;
    memcpy(t->shape, shape, (size_t)ndim * sizeof(int64_t));
    t->numel = (size_t)numel;
    *out = t;
    return SIM_IMAGE_OK;
}

struct sim_tensor *sim_tensor_ref(struct sim_tensor *t)
{
    if (t != NULL)
        t->refs++;
    return t;
}

void sim_tensor_unref(struct sim_tensor *t)
{
    if (t == NULL || --t->refs > 0)
        return;
    free(t->data);
    free(t);
}

/* --- torch repr ------------------------------------------------------------------------ */

struct repr_fmt {
    bool int_mode;
    bool sci_mode;
    int width;
    /* scan state */
    bool any;
    double min_abs, max_abs;
};

static size_t stride_of(const struct sim_tensor *t, int dim)
{
    size_t s = 1;
    for (int i = dim + 1; i < t->ndim; i++)
        s *= (size_t)t->shape[i];
    return s;
}

/* Index i of the printed (possibly summarised) sequence of n items; -1 marks the "...". */
static int64_t repr_index(int64_t n, bool summarize, int64_t i)
{
    if (!summarize || n <= 2 * REPR_EDGEITEMS)
        return i;
    if (i < REPR_EDGEITEMS)
        return i;
    if (i == REPR_EDGEITEMS)
        return -1;
    return n - (2 * REPR_EDGEITEMS + 1 - i);
}

static int64_t repr_count(int64_t n, bool summarize)
{
    return (summarize && n > 2 * REPR_EDGEITEMS) ? 2 * REPR_EDGEITEMS + 1 : n;
}

typedef void (*repr_visit_cb)(struct repr_fmt *f, float v);

static void repr_walk(const struct sim_tensor *t, int dim, size_t off, bool summarize,
                      struct repr_fmt *f, repr_visit_cb fn)
{
    int64_t n = repr_count(t->shape[dim], summarize);
    size_t stride = stride_of(t, dim);
    for (int64_t k = 0; k < n; k++) {
        int64_t i = repr_index(t->shape[dim], summarize, k);
        if (i < 0)
            continue;
        if (dim == t->ndim - 1)
            fn(f, t->data[off + (size_t)i]);
        else
            repr_walk(t, dim + 1, off + (size_t)i * stride, summarize, f, fn);
    }
}

static void scan_range(struct repr_fmt *f, float v)
{
    if (v == 0 || !isfinite(v))
        return;
    double a = fabs((double)v);
    if (!f->any || a < f->min_abs)
        f->min_abs = a;
    if (!f->any || a > f->max_abs)
        f->max_abs = a;
    f->any = true;
    if (v != ceilf(v))
        f->int_mode = false;
}

static int fmt_plain(const struct repr_fmt *f, float v, char *out, size_t n)
{
    double d = (double)v;
    if (f->sci_mode)
        return snprintf(out, n, "%.*e", REPR_PRECISION, d);
    if (f->int_mode)
        return snprintf(out, n, isfinite(d) ? "%.0f." : "%.0f", d);
    return snprintf(out, n, "%.*f", REPR_PRECISION, d);
}

static void scan_width(struct repr_fmt *f, float v)
{
    char tmp[64];
    if (v == 0 || !isfinite(v))
        return;
    int len = fmt_plain(f, v, tmp, sizeof(tmp));
    if (len > f->width)
        f->width = len;
}

/* torch's _Formatter: int mode, fixed or scientific, and one common width. */
static void repr_formatter(const struct sim_tensor *t, bool summarize, struct repr_fmt *f)
{
    memset(f, 0, sizeof(*f));
    f->int_mode = true;
    f->width = 1;
    repr_walk(t, 0, 0, summarize, f, scan_range);
    if (!f->any)
        return;
    double ratio = f->max_abs / f->min_abs;
    if (f->int_mode)
        f->sci_mode = ratio > 1000.0 || f->max_abs > 1.0e8;
    else
        f->sci_mode = ratio > 1000.0 || f->max_abs > 1.0e8 || f->min_abs < 1.0e-4;
    repr_walk(t, 0, 0, summarize, f, scan_width);
}

static void repr_elem(const struct repr_fmt *f, float v, struct sim_buf *out)
{
    char tmp[64];
    int len = fmt_plain(f, v, tmp, sizeof(tmp));
    for (int i = len; i < f->width; i++)
        sim_buf_putc(out, ' ');
    sim_buf_puts(out, tmp);
}

static void repr_vector(const struct sim_tensor *t, size_t off, int indent, bool summarize,
                        const struct repr_fmt *f, struct sim_buf *out)
{
    int64_t n = repr_count(t->shape[t->ndim - 1], summarize);
    int per_line = (REPR_LINEWIDTH - indent) / (f->width + 2);
    if (per_line < 1)
        per_line = 1;
    sim_buf_putc(out, '[');
    for (int64_t k = 0; k < n; k++) {
        if (k > 0 && k % per_line == 0) {
            sim_buf_puts(out, ",\n");
            for (int s = 0; s < indent + 1; s++)
                sim_buf_putc(out, ' ');
        } else if (k > 0) {
            sim_buf_puts(out, ", ");
        }
        int64_t i = repr_index(t->shape[t->ndim - 1], summarize, k);
        if (i < 0)
            sim_buf_puts(out, " ...");
        else
            repr_elem(f, t->data[off + (size_t)i], out);
    }
    sim_buf_putc(out, ']');
}

static void repr_dim(const struct sim_tensor *t, int dim, size_t off, int indent, bool summarize,
                     const struct repr_fmt *f, struct sim_buf *out)
{
    if (dim == t->ndim - 1) {
        repr_vector(t, off, indent, summarize, f, out);
        return;
    }
    int64_t n = repr_count(t->shape[dim], summarize);
    size_t stride = stride_of(t, dim);
    sim_buf_putc(out, '[');
    for (int64_t k = 0; k < n; k++) {
        if (k > 0) {
            sim_buf_putc(out, ',');
            for (int nl = 0; nl < t->ndim - dim - 1; nl++)
                sim_buf_putc(out, '\n');
            for (int s = 0; s < indent + 1; s++)
                sim_buf_putc(out, ' ');
        }
        int64_t i = repr_index(t->shape[dim], summarize, k);
        if (i < 0)
            sim_buf_puts(out, "...");
        else
            repr_dim(t, dim + 1, off + (size_t)i * stride, indent + 1, summarize, f, out);
    }
    sim_buf_putc(out, ']');
}

int sim_tensor_repr(const struct sim_tensor *t, struct sim_buf *out)
{
    static const char prefix[] = "tensor(";
    if (t->numel == 0) {
        sim_buf_puts(out, "tensor([])");
        return out->err;
    }
    bool summarize = t->numel > REPR_THRESHOLD;
    struct repr_fmt f;
    repr_formatter(t, summarize, &f);
    sim_buf_puts(out, prefix);
    repr_dim(t, 0, 0, (int)sizeof(prefix) - 1, summarize, &f, out);
    sim_buf_putc(out, ')');
    return out->err;
}

/* --- model-free image nodes ----------------------------------------------------------- */

static int new_image(int64_t n, int64_t h, int64_t w, int64_t c, uint64_t max_numel,
                     struct sim_tensor **out)
{
    int64_t shape[4] = {n, h, w, c};
    return sim_tensor_new(c > 0 ? 4 : 3, shape, max_numel, out);
}

int sim_image_empty(int64_t w, int64_t h, int64_t batch, int64_t color, uint64_t max_numel,
                    struct sim_tensor **out)
{
    int rc = new_image(batch, h, w, 3, max_numel, out);
    if (rc != SIM_IMAGE_OK)
        return rc;
    /* torch.full() rounds the Python float (a double) once to float32. */
    float rgb[3] = {(float)(((color >> 16) & 0xFF) / 255.0), (float)(((color >> 8) & 0xFF) / 255.0),
                    (float)((color & 0xFF) / 255.0)};
    float *p = (*out)->data;
    for (size_t i = 0; i < (*out)->numel; i += 3) {
        p[i] = rgb[0];
        p[i + 1] = rgb[1];
        p[i + 2] = rgb[2];
    }
    return SIM_IMAGE_OK;
}

int sim_image_invert(const struct sim_tensor *img, uint64_t max_numel, struct sim_tensor **out)
{
    int rc = sim_tensor_new(img->ndim, img->shape, max_numel, out);
    if (rc != SIM_IMAGE_OK)
        return rc;
    for (size_t i = 0; i < img->numel; i++)
        (*out)->data[i] = 1.0f - img->data[i];
    return SIM_IMAGE_OK;
}

void sim_image_to_u8(const struct sim_tensor *img, int64_t index, uint8_t *px)
{
    size_t n = (size_t)(img->shape[1] * img->shape[2] * img->shape[3]);
    const float *src = img->data + (size_t)index * n;
    for (size_t i = 0; i < n; i++) {
        /* numpy: float32 multiply, clip, then astype(uint8) truncates. */
        float v = 255.0f * src[i];
        if (!(v > 0))
            v = 0;
        if (v > 255)
            v = 255;
        px[i] = (uint8_t)v;
    }
}

int sim_image_from_pixels(const uint8_t *px, uint32_t w, uint32_t h, int channels,
                          uint64_t max_numel, struct sim_tensor **out)
{
    int rc = new_image(1, h, w, 3, max_numel, out);
    if (rc != SIM_IMAGE_OK)
        return rc;
    float *o = (*out)->data;
    for (size_t i = 0; i < (size_t)w * h; i++) {
        const uint8_t *p = px + i * (size_t)channels;
        /* Pillow's convert("RGB"): gray is replicated and alpha dropped, not blended. */
        uint8_t r = p[0], g = channels >= 3 ? p[1] : p[0], b = channels >= 3 ? p[2] : p[0];
        o[3 * i] = (float)r / 255.0f;
        o[3 * i + 1] = (float)g / 255.0f;
        o[3 * i + 2] = (float)b / 255.0f;
    }
    return SIM_IMAGE_OK;
}

int sim_mask_from_channel(const uint8_t *px, uint32_t w, uint32_t h, int channels, int channel,
                          bool invert, uint64_t max_numel, struct sim_tensor **out)
{
    int rc = new_image(1, h, w, 0, max_numel, out);
    if (rc != SIM_IMAGE_OK)
        return rc;
    for (size_t i = 0; i < (size_t)w * h; i++) {
        float m = (float)px[i * (size_t)channels + (size_t)channel] / 255.0f;
        (*out)->data[i] = invert ? 1.0f - m : m;
    }
    return SIM_IMAGE_OK;
}

static uint64_t splitmix64(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

int sim_image_pattern(int64_t w, int64_t h, int64_t batch, uint64_t seed, uint64_t max_numel,
                      struct sim_tensor **out)
{
    int rc = new_image(batch, h, w, 3, max_numel, out);
    if (rc != SIM_IMAGE_OK)
        return rc;
    float *o = (*out)->data;
    for (int64_t b = 0; b < batch; b++) {
        uint64_t s = seed + (uint64_t)b;
        uint64_t r = splitmix64(&s);
        /* Two gradients and a ring, each placed by the seed: cheap, smooth, compressible. */
        int64_t cx = (int64_t)(r % (uint64_t)w), cy = (int64_t)((r >> 20) % (uint64_t)h);
        int base[3] = {(int)(r >> 40) & 255, (int)(r >> 48) & 255, (int)(r >> 56) & 255};
        for (int64_t y = 0; y < h; y++) {
            for (int64_t x = 0; x < w; x++) {
                int64_t dx = x - cx, dy = y - cy;
                int ring = (int)(((dx * dx + dy * dy) >> 6) & 63);
                int v[3] = {base[0] + (int)(x * 255 / w), base[1] + (int)(y * 255 / h),
                            base[2] + ring * 4};
                for (int c = 0; c < 3; c++)
                    *o++ = (float)(v[c] & 255) / 255.0f;
            }
        }
    }
    return SIM_IMAGE_OK;
}

bool sim_scale_method_parse(const char *name, enum sim_scale_method *m)
{
    static const char *const names[] = {"nearest-exact", "bilinear", "area", "bicubic", "lanczos"};
    for (int i = 0; i < 5; i++) {
        if (strcmp(name, names[i]) == 0) {
            *m = (enum sim_scale_method)i;
            return true;
        }
    }
    return false;
}

/* --- resizing (common_upscale) -------------------------------------------------------- */

/* Per-output-index source taps along one axis. */
struct taps {
    int n;
    int64_t *idx;
    float *w;
};

static void taps_free(struct taps *t)
{
    free(t->idx);
    free(t->w);
}

static void cubic_coeffs(float t, float c[4])
{
    const float a = -0.75f; /* torch's bicubic A */
    float x1 = t + 1.0f, x2 = 1.0f - t, x3 = 2.0f - t;
    c[0] = ((a * x1 - 5.0f * a) * x1 + 8.0f * a) * x1 - 4.0f * a;
    c[1] = ((a + 2.0f) * t - (a + 3.0f)) * t * t + 1.0f;
    c[2] = ((a + 2.0f) * x2 - (a + 3.0f)) * x2 * x2 + 1.0f;
    c[3] = ((a * x3 - 5.0f * a) * x3 + 8.0f * a) * x3 - 4.0f * a;
}

static int64_t clampi(int64_t v, int64_t lo, int64_t hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

/* Taps for one output index, following torch.nn.functional.interpolate (align_corners off). */
static void taps_one(enum sim_scale_method m, int64_t in, int64_t out, int64_t d, int64_t *idx,
                     float *w)
{
    float scale = (float)in / (float)out;
    float real = scale * ((float)d + 0.5f) - 0.5f;
    if (m == SIM_SCALE_NEAREST_EXACT) {
        idx[0] = clampi((int64_t)floorf(((float)d + 0.5f) * scale), 0, in - 1);
        w[0] = 1.0f;
    } else if (m == SIM_SCALE_BILINEAR) {
        if (real < 0)
            real = 0;
        int64_t i0 = clampi((int64_t)real, 0, in - 1);
        float l1 = real - (float)i0;
        idx[0] = i0;
        idx[1] = i0 < in - 1 ? i0 + 1 : i0;
        w[0] = 1.0f - l1;
        w[1] = l1;
    } else if (m == SIM_SCALE_BICUBIC) {
        float fl = floorf(real);
        cubic_coeffs(real - fl, w);
        for (int k = 0; k < 4; k++)
            idx[k] = clampi((int64_t)fl - 1 + k, 0, in - 1);
    }
}

static int taps_build(enum sim_scale_method m, int64_t in, int64_t out, struct taps *t)
{
    int n = m == SIM_SCALE_NEAREST_EXACT ? 1 : m == SIM_SCALE_BILINEAR ? 2 : 4;
    if (m == SIM_SCALE_AREA)
        n = (int)((in + out - 1) / out) + 1;
    t->n = n;
    t->idx = calloc((size_t)(out * n), sizeof(*t->idx));
    t->w = calloc((size_t)(out * n), sizeof(*t->w));
    if (t->idx == NULL || t->w == NULL) {
        taps_free(t);
        return SIM_IMAGE_ENOMEM;
    }
    for (int64_t d = 0; d < out; d++) {
        int64_t *idx = t->idx + d * n;
        float *w = t->w + d * n;
        if (m != SIM_SCALE_AREA) {
            taps_one(m, in, out, d, idx, w);
            continue;
        }
        /* adaptive_avg_pool: window [floor(d*in/out), ceil((d+1)*in/out)). */
        int64_t start = d * in / out, end = ((d + 1) * in + out - 1) / out;
        for (int64_t k = 0; k < n; k++) {
            idx[k] = start + k < end ? start + k : start;
            w[k] = start + k < end ? 1.0f / (float)(end - start) : 0.0f;
        }
    }
    return SIM_IMAGE_OK;
}

struct view {
    const struct sim_tensor *t;
    int64_t y0, x0, h, w; /* crop window inside t */
};

static int resample(const struct view *v, enum sim_scale_method m, int64_t ow, int64_t oh,
                    uint64_t max_numel, struct sim_tensor **out)
{
    int64_t n = v->t->shape[0], c = v->t->shape[3], tw = v->t->shape[2];
    struct taps tx = {0}, ty = {0};
    struct sim_tensor *mid = NULL;
    int rc = taps_build(m, v->w, ow, &tx);
    if (rc == SIM_IMAGE_OK)
        rc = taps_build(m, v->h, oh, &ty);
    if (rc == SIM_IMAGE_OK)
        rc = new_image(n, v->h, ow, c, max_numel, &mid);
    if (rc == SIM_IMAGE_OK)
        rc = new_image(n, oh, ow, c, max_numel, out);
    for (int64_t b = 0; rc == SIM_IMAGE_OK && b < n; b++) {
        for (int64_t y = 0; y < v->h; y++) {
            const float *row = v->t->data + ((b * v->t->shape[1] + v->y0 + y) * tw + v->x0) * c;
            float *o = mid->data + ((b * v->h + y) * ow) * c;
            for (int64_t x = 0; x < ow; x++)
                for (int64_t ch = 0; ch < c; ch++) {
                    float s = 0;
                    for (int k = 0; k < tx.n; k++)
                        s += tx.w[x * tx.n + k] * row[tx.idx[x * tx.n + k] * c + ch];
                    o[x * c + ch] = s;
                }
        }
        for (int64_t y = 0; y < oh; y++) {
            float *o = (*out)->data + ((b * oh + y) * ow) * c;
            for (int64_t i = 0; i < ow * c; i++) {
                float s = 0;
                for (int k = 0; k < ty.n; k++)
                    s += ty.w[y * ty.n + k] *
                         mid->data[((b * v->h + ty.idx[y * ty.n + k]) * ow) * c + i];
                o[i] = s;
            }
        }
    }
    taps_free(&tx);
    taps_free(&ty);
    sim_tensor_unref(mid);
    return rc;
}

static double lanczos3(double x)
{
    if (x == 0)
        return 1.0;
    if (x <= -3.0 || x >= 3.0)
        return 0.0;
    double px = M_PI * x;
    return 3.0 * sin(px) * sin(px / 3.0) / (px * px);
}

/* Pillow-style filter taps for one output index: support widens when downscaling. */
static int64_t lanczos_taps(int64_t in, int64_t out, int64_t d, float *ws, int64_t *first)
{
    double scale = (double)in / (double)out, fs = scale > 1.0 ? scale : 1.0;
    double support = 3.0 * fs, center = ((double)d + 0.5) * scale, total = 0, w[LANCZOS_TAPS];
    int64_t xmin = (int64_t)(center - support + 0.5), xmax = (int64_t)(center + support + 0.5);
    xmin = xmin < 0 ? 0 : xmin;
    xmax = xmax > in ? in : xmax;
    if (xmax - xmin > LANCZOS_TAPS)
        xmax = xmin + LANCZOS_TAPS;
    for (int64_t k = xmin; k < xmax; k++)
        total += w[k - xmin] = lanczos3(((double)k - center + 0.5) / fs);
    for (int64_t k = xmin; k < xmax; k++)
        ws[k - xmin] = (float)(total != 0 ? w[k - xmin] / total : 0);
    *first = xmin;
    return xmax - xmin;
}

static uint8_t clip8(float s)
{
    /* Pillow rounds half up and clips to 0..255 after every pass. */
    return (uint8_t)(s <= 0 ? 0 : s >= 255 ? 255 : (int)(s + 0.5f));
}

/* Horizontal pass: `lines` rows of `in` pixels of c bytes each into rows of `out` pixels. */
static void lanczos_rows(const uint8_t *src, int64_t in, int64_t out, int64_t lines, int64_t c,
                         uint8_t *dst)
{
    float ws[LANCZOS_TAPS];
    for (int64_t d = 0; d < out; d++) {
        int64_t first, n = lanczos_taps(in, out, d, ws, &first);
        for (int64_t l = 0; l < lines; l++) {
            const uint8_t *row = src + (l * in + first) * c;
            for (int64_t ch = 0; ch < c; ch++) {
                float s = 0;
                for (int64_t k = 0; k < n; k++)
                    s += ws[k] * row[k * c + ch];
                dst[(l * out + d) * c + ch] = clip8(s);
            }
        }
    }
}

/* Vertical pass: whole rows of `width` bytes are blended, which vectorises. */
static void lanczos_cols(const uint8_t *src, int64_t in, int64_t out, int64_t width, float *acc,
                         uint8_t *dst)
{
    float ws[LANCZOS_TAPS];
    for (int64_t d = 0; d < out; d++) {
        int64_t first, n = lanczos_taps(in, out, d, ws, &first);
        memset(acc, 0, (size_t)width * sizeof(*acc));
        for (int64_t k = 0; k < n; k++) {
            const uint8_t *row = src + (first + k) * width;
            for (int64_t x = 0; x < width; x++)
                acc[x] += ws[k] * row[x];
        }
        for (int64_t x = 0; x < width; x++)
            dst[d * width + x] = clip8(acc[x]);
    }
}

static int lanczos(const struct view *v, int64_t ow, int64_t oh, uint64_t max_numel,
                   struct sim_tensor **out)
{
    int64_t n = v->t->shape[0], c = v->t->shape[3];
    size_t in_px = (size_t)(v->h * v->w), mid_px = (size_t)(v->h * ow);
    int rc = new_image(n, oh, ow, c, max_numel, out);
    if (rc != SIM_IMAGE_OK)
        return rc;
    uint8_t *a = malloc(in_px * (size_t)c), *b = malloc(mid_px * (size_t)c);
    uint8_t *o = malloc((size_t)(oh * ow * c));
    float *acc = malloc((size_t)(ow * c) * sizeof(float));
    bool ok = a != NULL && b != NULL && o != NULL && acc != NULL;
    for (int64_t i = 0; ok && i < n; i++) {
        /* ComfyUI hands Pillow 8-bit pixels: clip(255 * x).astype(uint8) */
        for (int64_t y = 0; y < v->h; y++) {
            const float *row =
                v->t->data + ((i * v->t->shape[1] + v->y0 + y) * v->t->shape[2] + v->x0) * c;
            for (int64_t x = 0; x < v->w * c; x++) {
                float f = 255.0f * row[x];
                a[y * v->w * c + x] = (uint8_t)(f > 0 ? (f < 255 ? f : 255) : 0);
            }
        }
        lanczos_rows(a, v->w, ow, v->h, c, b);
        lanczos_cols(b, v->h, oh, ow * c, acc, o);
        float *dst = (*out)->data + (size_t)(i * oh * ow * c), lut[256];
        /* x / 255 in float32 as numpy divides; a table keeps it exact and cheap */
        for (int k = 0; k < 256; k++)
            lut[k] = (float)k / 255.0f;
        for (int64_t k = 0; k < oh * ow * c; k++)
            dst[k] = lut[o[k]];
    }
    if (!ok) {
        sim_tensor_unref(*out);
        *out = NULL;
        rc = SIM_IMAGE_ENOMEM;
    }
    free(a);
    free(b);
    free(o);
    free(acc);
    return rc;
}

int sim_image_scale(const struct sim_tensor *img, enum sim_scale_method m, int64_t w, int64_t h,
                    bool crop_center, uint64_t max_numel, struct sim_tensor **out)
{
    *out = NULL;
    if (img->ndim != 4)
        return SIM_IMAGE_EINVAL;
    int64_t ih = img->shape[1], iw = img->shape[2];
    if (w == 0 && h == 0) {
        *out = sim_tensor_ref((struct sim_tensor *)img);
        return SIM_IMAGE_OK;
    }
    /* Python's round() is round-half-even, which is rint() in the default FP mode. */
    if (w == 0)
        w = (int64_t)fmax(1.0, rint((double)iw * (double)h / (double)ih));
    else if (h == 0)
        h = (int64_t)fmax(1.0, rint((double)ih * (double)w / (double)iw));
    struct view v = {img, 0, 0, ih, iw};
    if (crop_center) {
        double old_aspect = (double)iw / (double)ih, new_aspect = (double)w / (double)h;
        if (old_aspect > new_aspect)
            v.x0 = (int64_t)rint((iw - iw * (new_aspect / old_aspect)) / 2);
        else if (old_aspect < new_aspect)
            v.y0 = (int64_t)rint((ih - ih * (old_aspect / new_aspect)) / 2);
        v.w = iw - 2 * v.x0;
        v.h = ih - 2 * v.y0;
        if (v.w <= 0 || v.h <= 0)
            return SIM_IMAGE_EINVAL;
    }
    if (m == SIM_SCALE_LANCZOS)
        return lanczos(&v, w, h, max_numel, out);
    return resample(&v, m, w, h, max_numel, out);
}

/* --- mask <-> image channels ------------------------------------------------------------ */

int sim_image_channel(const struct sim_tensor *img, int64_t channel, uint64_t max_numel,
                      struct sim_tensor **out)
{
    *out = NULL;
    if (img->ndim != 4 || channel < 0 || channel >= img->shape[3])
        return SIM_IMAGE_EINVAL;
    int64_t c = img->shape[3];
    int rc = sim_tensor_new(3, img->shape, max_numel, out);
    if (rc != SIM_IMAGE_OK)
        return rc;
    for (size_t i = 0; i < (*out)->numel; i++)
        (*out)->data[i] = img->data[i * (size_t)c + (size_t)channel];
    return SIM_IMAGE_OK;
}

/* resize_mask(): interpolate(mask.reshape(-1, 1, h, w), size, mode="bilinear"), which is
 * ImageScale's bilinear resample on a one-channel image. */
static int mask_resize(const struct sim_tensor *mask, int64_t h, int64_t w, uint64_t max_numel,
                       struct sim_tensor **out)
{
    int64_t mh = mask->shape[mask->ndim - 2], mw = mask->shape[mask->ndim - 1];
    int64_t n = (int64_t)mask->numel / (mh * mw);
    /* A borrowed 4-D view of the mask's data; sim_image_scale only reads it. */
    struct sim_tensor view = {1, 4, {n, mh, mw, 1}, mask->numel, mask->data};
    /* w, h > 0 (checked by the caller), so the result is always a new tensor, never view. */
    return sim_image_scale(&view, SIM_SCALE_BILINEAR, w, h, false, max_numel, out);
}

int sim_image_join_alpha(const struct sim_tensor *img, const struct sim_tensor *mask,
                         uint64_t max_numel, struct sim_tensor **out)
{
    *out = NULL;
    if (img->ndim != 4 || img->shape[3] < 3 || img->shape[1] <= 0 || img->shape[2] <= 0 ||
        mask->ndim < 2 || mask->ndim > 3 || mask->numel == 0)
        return SIM_IMAGE_EINVAL;
    int64_t h = img->shape[1], w = img->shape[2], c = img->shape[3];
    /* batch_size = min(len(image), len(alpha)); len() of a 2-D mask is its height */
    int64_t n = img->shape[0] < mask->shape[0] ? img->shape[0] : mask->shape[0];
    struct sim_tensor *a;
    int rc = mask_resize(mask, h, w, max_numel, &a);
    if (rc != SIM_IMAGE_OK)
        return rc;
    if (a->shape[0] < n) { /* torch would raise IndexError on alpha[i] */
        sim_tensor_unref(a);
        return SIM_IMAGE_EINVAL;
    }
    rc = new_image(n, h, w, 4, max_numel, out);
    size_t px = (size_t)(n * h * w);
    for (size_t i = 0; rc == SIM_IMAGE_OK && i < px; i++) {
        const float *s = img->data + i * (size_t)c;
        float *d = (*out)->data + i * 4;
        d[0] = s[0];
        d[1] = s[1];
        d[2] = s[2];
        d[3] = 1.0f - a->data[i];
    }
    sim_tensor_unref(a);
    return rc;
}
