/*
 * sim_preview — /view?preview=... parsing and conversion (see sim_preview.h).
 */
#include "sim/sim_preview.h"

#include <stdlib.h>
#include <string.h>

#include "sim/sim_jpeg.h"
#include "sim/sim_png.h"
#include "sim/sim_webp.h"

#define DEFAULT_QUALITY 90 /* server.py, when the last field is not a number */
#define LIBJPEG_DEFAULT 75 /* what Pillow leaves libjpeg at when quality is -1 */

/* str.isdigit() over ASCII: not empty, digits only. */
static bool all_digits(const char *s, size_t n)
{
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
    }
    return true;
}

/* The digits' value, or false when it is 2^63 or more (Pillow's ssize_t overflow). */
static bool digits_value(const char *s, size_t n, uint64_t *v)
{
    while (n > 1 && *s == '0') {
        s++;
        n--;
    }
    if (n > 19)
        return false; /* at least 10^19 */
    uint64_t x = 0;
    for (size_t i = 0; i < n; i++)
        x = x * 10 + (uint64_t)(s[i] - '0');
    *v = x;
    return x < (UINT64_C(1) << 63);
}

static void parse_quality(const char *last, size_t n, struct sim_preview *out)
{
    uint64_t v = DEFAULT_QUALITY;
    out->quality_ok = true;
    if (all_digits(last, n) && !digits_value(last, n, &v)) {
        out->quality_ok = false;
        return;
    }
    if (out->format == SIM_PREVIEW_WEBP) {
        out->quality_ok = v <= 100;
        out->quality = v <= 100 ? (int)v : 0;
        return;
    }
    int32_t q = (int32_t)(uint32_t)v; /* Pillow stores it in a C int */
    if (q == -1)
        q = LIBJPEG_DEFAULT;
    out->quality = q < 1 ? 1 : q > 100 ? 100 : q;
}

void sim_preview_parse(const char *preview, const char *channel, struct sim_preview *out)
{
    memset(out, 0, sizeof(*out));
    const char *semi = strchr(preview, ';'), *last = strrchr(preview, ';');
    size_t flen = semi != NULL ? (size_t)(semi - preview) : strlen(preview);
    last = last != NULL ? last + 1 : preview;
    bool alpha_channel = channel != NULL && strchr(channel, 'a') != NULL;
    out->format = flen == 4 && memcmp(preview, "jpeg", 4) == 0 && !alpha_channel ? SIM_PREVIEW_JPEG
                                                                                 : SIM_PREVIEW_WEBP;
    out->rgb = out->format == SIM_PREVIEW_JPEG || (channel != NULL && strcmp(channel, "rgb") == 0);
    parse_quality(last, strlen(last), out);
}

const char *sim_preview_content_type(const struct sim_preview *p)
{
    return p->format == SIM_PREVIEW_JPEG ? "image/jpeg" : "image/webp";
}

/* img.convert("RGB") for pictures with alpha: a 3-channel copy (malloc'd). */
static uint8_t *drop_alpha(const struct sim_png_image *img)
{
    size_t npx = (size_t)img->width * img->height;
    uint8_t *rgb = malloc(npx * 3);
    for (size_t i = 0; rgb != NULL && i < npx; i++) {
        const uint8_t *s = img->pixels + i * (size_t)img->channels;
        rgb[3 * i] = s[0];
        rgb[3 * i + 1] = img->channels >= 3 ? s[1] : s[0];
        rgb[3 * i + 2] = img->channels >= 3 ? s[2] : s[0];
    }
    return rgb;
}

static int encode(const struct sim_preview *p, const struct sim_png_image *img, struct sim_buf *out)
{
    const uint8_t *px = img->pixels;
    uint8_t *rgb = NULL;
    int ch = img->channels;
    if (p->rgb && (ch == 2 || ch == 4)) {
        rgb = drop_alpha(img);
        if (rgb == NULL)
            return 500;
        px = rgb;
        ch = 3;
    }
    int rc = p->format == SIM_PREVIEW_JPEG
                 ? sim_jpeg_encode(px, img->width, img->height, ch, p->quality, SIM_JPEG_420, out)
                 : sim_webp_encode(px, img->width, img->height, ch, p->quality, out);
    free(rgb);
    return rc == 0 ? 0 : 500;
}

int sim_preview_convert(const struct sim_preview *p, const uint8_t *file, size_t len,
                        uint64_t max_pixels, struct sim_buf *out)
{
    if (!p->quality_ok)
        return 500;
    struct sim_png_image img;
    int rc = sim_png_decode(file, len, max_pixels, &img);
    if (rc == SIM_PNG_ETOOBIG)
        return 400;
    if (rc != SIM_PNG_OK)
        return 500; /* Pillow could not open it (or comfysim cannot: PNG only) */
    int status = encode(p, &img, out);
    sim_png_image_free(&img);
    return status;
}
