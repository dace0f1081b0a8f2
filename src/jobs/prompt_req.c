/* prompt_req — see prompt_req.h. */
#include "jobs/prompt_req.h"

#include <bearssl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "comfy/comfy_graph.h"
#include "core/b64.h"
#include "core/uuid.h"
#include "net/urlguard.h"

const char PROMPT_DEFAULT_CLASSES[] =
    "CheckpointLoaderSimple,CLIPTextEncode,CLIPSetLastLayer,ConditioningCombine,"
    "ConditioningSetArea,ConditioningZeroOut,EmptyLatentImage,LatentUpscale,LatentUpscaleBy,"
    "KSampler,KSamplerAdvanced,VAEDecode,VAEEncode,VAEDecodeTiled,VAEEncodeTiled,VAELoader,"
    "LoraLoader,LoraLoaderModelOnly,UpscaleModelLoader,ImageUpscaleWithModel,EmptyImage,"
    "LoadImage,LoadImageMask,SaveImage,PreviewImage,ImageScale,ImageScaleBy,ImageInvert,"
    "ImageCrop,ImageBatch,ImagePadForOutpaint,ImageBlend,ImageBlur,ImageSharpen,GetImageSize,"
    "PreviewAny,MaskToImage,ImageToMask,InvertMask,SolidMask,JoinImageWithAlpha,"
    "SetLatentNoiseMask,RepeatLatentBatch,LatentFromBatch,PrimitiveNode";

bool prompt_class_allowed(const char *list, const char *cls)
{
    if (!list || !strcmp(list, "*"))
        return true;
    size_t n = strlen(cls);
    for (const char *p = list; *p;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        while (len && (*p == ' ' || *p == '\t')) { /* tolerate "A, B" */
            p++;
            len--;
        }
        while (len && (p[len - 1] == ' ' || p[len - 1] == '\t'))
            len--;
        if (len == n && !memcmp(p, cls, n))
            return true;
        if (!end)
            break;
        p = end + 1;
    }
    return false;
}

bool prompt_image_sniff(const unsigned char *p, size_t n, const char **ext, const char **mime)
{
    if (n >= 8 && !memcmp(p, "\x89PNG\r\n\x1a\n", 8)) {
        *ext = "png";
        *mime = "image/png";
    } else if (n >= 3 && p[0] == 0xff && p[1] == 0xd8 && p[2] == 0xff) {
        *ext = "jpg";
        *mime = "image/jpeg";
    } else if (n >= 12 && !memcmp(p, "RIFF", 4) && !memcmp(p + 8, "WEBP", 4)) {
        *ext = "webp";
        *mime = "image/webp";
    } else if (n >= 6 && (!memcmp(p, "GIF87a", 6) || !memcmp(p, "GIF89a", 6))) {
        *ext = "gif";
        *mime = "image/gif";
    } else {
        return false;
    }
    return true;
}

static uint32_t be16(const unsigned char *p)
{
    return (uint32_t)p[0] << 8 | p[1];
}

static uint32_t le16(const unsigned char *p)
{
    return (uint32_t)p[1] << 8 | p[0];
}

static uint32_t le24(const unsigned char *p)
{
    return (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0];
}

/* The frame header of a baseline, progressive or lossless JPEG: the first SOFn segment. */
static bool jpeg_size(const unsigned char *p, size_t n, uint32_t *w, uint32_t *h)
{
    size_t i = 2;
    while (i + 4 <= n) {
        if (p[i] != 0xff)
            return false;
        unsigned m = p[i + 1];
        if (m == 0xff) { /* fill bytes before a marker */
            i++;
            continue;
        }
        if (m == 0xd8 || m == 0x01 || (m >= 0xd0 && m <= 0xd7)) { /* no length */
            i += 2;
            continue;
        }
        if (m == 0xd9 || m == 0xda) /* end, or scan data before any frame header */
            return false;
        size_t len = be16(p + i + 2);
        if (len < 2)
            return false;
        if (m >= 0xc0 && m <= 0xcf && m != 0xc4 && m != 0xc8 && m != 0xcc) {
            if (len < 7 || i + 9 > n)
                return false;
            *h = be16(p + i + 5);
            *w = be16(p + i + 7);
            return true;
        }
        i += 2 + len;
    }
    return false;
}

bool prompt_image_size(const unsigned char *p, size_t n, uint32_t *w, uint32_t *h)
{
    const char *ext, *mime;
    if (!prompt_image_sniff(p, n, &ext, &mime))
        return false;
    if (!strcmp(ext, "png")) {
        if (n < 24 || memcmp(p + 12, "IHDR", 4))
            return false;
        *w = (uint32_t)p[16] << 24 | (uint32_t)p[17] << 16 | (uint32_t)p[18] << 8 | p[19];
        *h = (uint32_t)p[20] << 24 | (uint32_t)p[21] << 16 | (uint32_t)p[22] << 8 | p[23];
        return true;
    }
    if (!strcmp(ext, "gif")) {
        if (n < 10)
            return false;
        *w = le16(p + 6);
        *h = le16(p + 8);
        return true;
    }
    if (!strcmp(ext, "webp")) {
        if (n >= 30 && !memcmp(p + 12, "VP8 ", 4) && p[23] == 0x9d && p[24] == 0x01 &&
            p[25] == 0x2a) {
            *w = le16(p + 26) & 0x3fff;
            *h = le16(p + 28) & 0x3fff;
            return true;
        }
        if (n >= 25 && !memcmp(p + 12, "VP8L", 4) && p[20] == 0x2f) {
            uint32_t b = (uint32_t)p[21] | (uint32_t)p[22] << 8 | (uint32_t)p[23] << 16 |
                         (uint32_t)p[24] << 24;
            *w = (b & 0x3fff) + 1;
            *h = ((b >> 14) & 0x3fff) + 1;
            return true;
        }
        if (n >= 30 && !memcmp(p + 12, "VP8X", 4)) {
            *w = le24(p + 24) + 1;
            *h = le24(p + 27) + 1;
            return true;
        }
        return false;
    }
    return jpeg_size(p, n, w, h);
}

static void sha256_hex(const void *p, size_t n, char *out, size_t hexchars)
{
    static const char hex[] = "0123456789abcdef";
    br_sha256_context c;
    unsigned char d[32];
    br_sha256_init(&c);
    br_sha256_update(&c, p, n);
    br_sha256_out(&c, d);
    for (size_t i = 0; i < hexchars / 2 && i < 32; i++) {
        out[2 * i] = hex[d[i] >> 4];
        out[2 * i + 1] = hex[d[i] & 15];
    }
    out[hexchars] = '\0';
}

bool prompt_image_name(const unsigned char *p, size_t n, char name[80])
{
    const char *ext, *mime;
    if (!prompt_image_sniff(p, n, &ext, &mime))
        return false;
    char h[33];
    sha256_hex(p, n, h, 32);
    snprintf(name, 80, "%s.%s", h, ext);
    return true;
}

void prompt_tenant_subfolder(const char *owner, char out[48])
{
    char h[17];
    sha256_hex(owner, strlen(owner), h, 16);
    snprintf(out, 48, "comfygate/t-%s", h);
}

static int fail(struct prompt_err *err, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail(struct prompt_err *err, int status, const char *code, const char *fmt, ...)
{
    err->status = status;
    err->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof(err->message), fmt, ap);
    va_end(ap);
    return -1;
}

/* Base64 text (a data: URI, or long enough and only of the alphabet to be nothing else). */
static bool looks_base64(const char *s, size_t n, const char **b64, size_t *b64len)
{
    if (n > 5 && !strncasecmp(s, "data:", 5)) {
        const char *comma = memchr(s, ',', n);
        if (!comma || comma - s < 12 || strncasecmp(comma - 7, ";base64", 7))
            return false;
        *b64 = comma + 1;
        *b64len = n - (size_t)(comma + 1 - s);
        return true;
    }
    if (n < 64)
        return false;
    size_t k = strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=");
    *b64 = s;
    *b64len = n;
    return k == n;
}

/* The SSRF guard's verdict on a URL we will fetch or post to; true (and err) when refused. */
static bool url_refused(const struct urlguard *g, const char *url, const char *what,
                        const char *node, struct prompt_err *err)
{
    if (!g)
        return false;
    struct urlguard_url u;
    char why[256];
    enum urlguard_rc rc = urlguard_precheck(g, url, &u, why, sizeof(why));
    if (rc == URLGUARD_OK)
        return false;
    fail(err, 400, rc == URLGUARD_BLOCKED ? "SSRF_BLOCKED" : "VALIDATION_ERROR", "%s%s%s: %s",
         what, node ? " " : "", node ? node : "", why);
    return true;
}

/* One LoadImage-like node's image input: a name, a URL or inline bytes. */
static int take_image(struct prompt_req *r, const char *node, json_t *inputs,
                      const struct prompt_req_config *cfg, struct prompt_err *err)
{
    json_t *v = json_object_get(inputs, "image");
    if (!json_is_string(v))
        return 0; /* a link, or missing: ComfyUI's own validation speaks */
    const char *s = json_string_value(v);
    size_t n = json_string_length(v);
    const char *b64 = NULL;
    size_t b64len = 0;
    bool url = !strncasecmp(s, "http://", 7) || !strncasecmp(s, "https://", 8);
    bool inline_data = !url && looks_base64(s, n, &b64, &b64len);
    if (!url && !inline_data && strstr(s, "://"))
        return fail(err, 400, "VALIDATION_ERROR",
                    "node %s: only http and https image URLs are fetched", node);
    if (!url && !inline_data) {
        /* a file the backend has: never our upload area (another tenant's) nor a path out */
        if (!strncmp(s, "comfygate/", 10) || strstr(s, "..") || s[0] == '/' || strchr(s, '\\'))
            return fail(err, 400, "VALIDATION_ERROR", "node %s: image %.100s is not allowed",
                        node, s);
        return 0;
    }
    if (r->nimages == PROMPT_MAX_IMAGES)
        return fail(err, 400, "VALIDATION_ERROR", "at most 16 input images per prompt");
    struct prompt_image *im = &r->images[r->nimages];
    memset(im, 0, sizeof(*im));
    snprintf(im->node, sizeof(im->node), "%s", node);
    if (url) {
        if (n >= sizeof(im->url) || strpbrk(s, " \t\r\n"))
            return fail(err, 400, "VALIDATION_ERROR", "node %s: the image URL is not valid", node);
        if (url_refused(cfg->input_guard, s, "image of node", node, err))
            return -1;
        memcpy(im->url, s, n + 1);
        r->nimages++;
        return 0;
    }
    size_t cap = b64_decoded_max(b64len);
    if (cap > cfg->max_image_bytes + 3)
        return fail(err, 413, "PAYLOAD_TOO_LARGE", "node %s: the input image is larger than "
                    "MAX_INPUT_IMAGE_BYTES", node);
    im->data = malloc(cap ? cap : 1);
    if (!im->data)
        return fail(err, 503, "UNAVAILABLE", "out of memory");
    long d = b64_decode(b64, b64len, im->data, cap, B64_PADDING_OPTIONAL);
    const char *ext, *mime;
    if (d <= 0 || !prompt_image_sniff(im->data, (size_t)d, &ext, &mime)) {
        free(im->data);
        im->data = NULL;
        return fail(err, 400, "VALIDATION_ERROR", "node %s: the image is not base64 of a PNG, "
                    "JPEG, WebP or GIF file", node);
    }
    im->len = (size_t)d;
    uint32_t w = 0, h = 0;
    if (!prompt_image_size(im->data, im->len, &w, &h) || w > cfg->limits.max_image_size ||
        h > cfg->limits.max_image_size) {
        free(im->data);
        im->data = NULL;
        if (!w && !h)
            return fail(err, 400, "VALIDATION_ERROR", "node %s: the image's header does not "
                        "say its size (cut short?)", node);
        return fail(err, 400, "VALIDATION_ERROR", "node %s: the image is %ux%u, larger than "
                    "MAX_IMAGE_SIZE (%llu) on a side", node, w, h,
                    (unsigned long long)cfg->limits.max_image_size);
    }
    prompt_image_name(im->data, im->len, im->name);
    r->nimages++;
    return 0;
}

struct walk {
    struct prompt_req *r;
    const struct prompt_req_config *cfg;
    struct prompt_err *err;
};

static int node_cb(const char *id, const char *cls, json_t *inputs, void *ud)
{
    struct walk *w = ud;
    if (!prompt_class_allowed(w->cfg->allowed_classes, cls))
        return fail(w->err, 403, "NODE_CLASS_NOT_ALLOWED",
                    "node %s: class %.128s is not in ALLOWED_NODE_CLASSES", id, cls);
    if (!strcmp(cls, "LoadImage") || !strcmp(cls, "LoadImageMask"))
        return take_image(w->r, id, inputs, w->cfg, w->err);
    return 0;
}

static int parse_convert(json_t *c, struct prompt_req *r, struct prompt_err *err)
{
    if (!c)
        return 0;
    const char *f = json_string_value(json_object_get(c, "format"));
    json_t *q = json_object_get(json_object_get(c, "options"), "quality");
    if (!json_is_object(c) || !f || (strcmp(f, "png") && strcmp(f, "jpeg") && strcmp(f, "webp")))
        return fail(err, 400, "VALIDATION_ERROR",
                    "convert_output.format must be png, jpeg or webp");
    if (q && (!json_is_integer(q) || json_integer_value(q) < 1 || json_integer_value(q) > 100))
        return fail(err, 400, "VALIDATION_ERROR",
                    "convert_output.options.quality must be 1 to 100");
    snprintf(r->convert_format, sizeof(r->convert_format), "%s", f);
    r->convert_quality = q ? (int)json_integer_value(q) : (strcmp(f, "webp") ? 90 : 80);
    return 0;
}

static int parse_fields(const json_t *body, const struct prompt_req_config *cfg,
                        struct prompt_req *r, struct prompt_err *err)
{
    json_t *id = json_object_get(body, "id");
    json_t *wh = json_object_get(body, "webhook_v2");
    json_t *p = json_object_get(body, "priority");
    json_t *md = json_object_get(body, "metadata");
    if (json_object_get(body, "webhook"))
        return fail(err, 400, "VALIDATION_ERROR", "webhook (unsigned) is not supported: use "
                    "webhook_v2, signed per Standard Webhooks");
    if (id && (!json_is_string(id) || !uuid_valid(json_string_value(id))))
        return fail(err, 400, "VALIDATION_ERROR", "id must be a lowercase UUID");
    if (id)
        snprintf(r->id, sizeof(r->id), "%s", json_string_value(id));
    if (wh && (!json_is_string(wh) || json_string_length(wh) >= sizeof(r->webhook_v2) ||
               (strncmp(json_string_value(wh), "http://", 7) &&
                strncmp(json_string_value(wh), "https://", 8))))
        return fail(err, 400, "VALIDATION_ERROR", "webhook_v2 must be an http(s) URL");
    if (wh && url_refused(cfg->webhook_guard, json_string_value(wh), "webhook_v2", NULL, err))
        return -1;
    if (wh)
        snprintf(r->webhook_v2, sizeof(r->webhook_v2), "%s", json_string_value(wh));
    if (p && (!json_is_integer(p) || json_integer_value(p) < -1000 || json_integer_value(p) > 1000))
        return fail(err, 400, "VALIDATION_ERROR",
                    "priority must be an integer from -1000 to 1000");
    r->priority = p ? (int)json_integer_value(p) : 0;
    if (md && !json_is_object(md))
        return fail(err, 400, "VALIDATION_ERROR", "metadata must be an object");
    r->metadata = json_incref(md);
    return parse_convert(json_object_get(body, "convert_output"), r, err);
}

int prompt_req_parse(const json_t *body, const struct prompt_req_config *cfg,
                     struct prompt_req *out, struct prompt_err *err)
{
    memset(out, 0, sizeof(*out));
    memset(err, 0, sizeof(*err));
    json_t *g = json_object_get(body, "prompt");
    char msg[256];
    if (!json_is_object(body))
        fail(err, 400, "VALIDATION_ERROR", "the body must be a JSON object");
    else if (!g)
        fail(err, 400, "VALIDATION_ERROR", "prompt (a ComfyUI API-format graph) is required");
    else if (comfy_graph_check(g, cfg->limits.max_nodes, msg, sizeof(msg)) < 0)
        fail(err, 400, "VALIDATION_ERROR", "prompt: %s", msg);
    else if (parse_fields(body, cfg, out, err) == 0) {
        out->graph = json_deep_copy(g);
        struct walk w = {.r = out, .cfg = cfg, .err = err};
        json_t *errs = json_array();
        if (!out->graph || !errs)
            fail(err, 503, "UNAVAILABLE", "out of memory");
        else if (comfy_graph_each(out->graph, node_cb, &w) == 0 &&
                 workflow_check_limits(out->graph, &cfg->limits, errs) > 0) {
            fail(err, 400, "VALIDATION_ERROR", "the graph exceeds MAX_IMAGE_SIZE or "
                 "MAX_BATCH_SIZE");
            err->errors = json_incref(errs);
        }
        json_decref(errs);
    }
    if (err->status) {
        prompt_req_free(out);
        return -1;
    }
    return 0;
}

void prompt_req_free(struct prompt_req *r)
{
    json_decref(r->graph);
    r->graph = NULL;
    json_decref(r->metadata);
    r->metadata = NULL;
    for (size_t i = 0; i < r->nimages; i++) {
        free(r->images[i].data);
        r->images[i].data = NULL;
    }
    r->nimages = 0;
}
