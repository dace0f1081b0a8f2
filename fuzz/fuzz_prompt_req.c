/* fuzz_prompt_req — libFuzzer harness for POST /prompt bodies (src/jobs/prompt_req.c): the
 * input is parsed as JSON (as the API does, duplicates refused) and taken apart under two
 * configurations — the default class allowlist with tight limits and the SSRF guard, and "*"
 * with generous ones. Besides crashes and sanitizer reports it checks what callers rely on: a
 * refusal carries a status, a code and a terminated message; an acceptance owns a graph whose
 * inline images are real images with content names and whose URLs are http(s).
 * Seed corpus: fuzz/corpus/prompt_req/ (graphs with inline images, URLs, convert_output,
 * webhooks, bad classes). */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fuzz_check.h"
#include "jobs/prompt_req.h"
#include "net/urlguard.h"

static void check(const json_t *body, const struct prompt_req_config *cfg)
{
    struct prompt_req r;
    struct prompt_err e;
    int rc = prompt_req_parse(body, cfg, &r, &e);
    if (rc < 0) {
        CHECK(e.status >= 400 && e.status < 600 && e.code && e.code[0]);
        CHECK(memchr(e.message, '\0', sizeof(e.message)) != NULL);
        CHECK(r.graph == NULL && r.nimages == 0);
        json_decref(e.errors);
        return;
    }
    CHECK(json_is_object(r.graph) && r.nimages <= PROMPT_MAX_IMAGES);
    for (size_t i = 0; i < r.nimages; i++) {
        const struct prompt_image *im = &r.images[i];
        if (im->url[0]) {
            CHECK(!strncasecmp(im->url, "http://", 7) || !strncasecmp(im->url, "https://", 8));
            CHECK(im->data == NULL);
        } else {
            char name[80];
            CHECK(im->data && prompt_image_name(im->data, im->len, name));
            CHECK(!strcmp(name, im->name));
            uint32_t w, h; /* no decompression bomb gets through */
            CHECK(prompt_image_size(im->data, im->len, &w, &h));
            CHECK(w <= cfg->limits.max_image_size && h <= cfg->limits.max_image_size);
        }
    }
    prompt_req_free(&r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct urlguard guard;
    static int ready;
    if (!ready) {
        struct urlguard_config uc;
        urlguard_config_defaults(&uc);
        uc.allowed = "127.0.0.1,*.example.com";
        char err[256];
        CHECK(urlguard_init(&guard, &uc, err, sizeof(err)) == 0);
        ready = 1;
    }
    json_t *body = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
    if (!body)
        return 0;
    struct prompt_req_config tight = {
        .limits = {.max_nodes = 64, .max_image_size = 2048, .max_batch_size = 8},
        .allowed_classes = PROMPT_DEFAULT_CLASSES,
        .max_image_bytes = 4096,
        .input_guard = &guard,
        .webhook_guard = &guard,
    };
    struct prompt_req_config open = {
        .limits = {.max_nodes = 2000, .max_image_size = 65536, .max_batch_size = 4096},
        .allowed_classes = "*",
        .max_image_bytes = 1 << 24,
    };
    check(body, &tight);
    check(body, &open);
    json_decref(body);
    return 0;
}
