/* job_prep — see job_prep.h. */
#include "jobs/job_prep.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jobs/prompt_req.h"

static void finish(struct job_prep *p, int err, const char *fmt, const char *a, const char *b)
{
    p->loading = p->fetching = false;
    if (p->canceled || p->finished)
        return;
    p->finished = true;
    p->err = err;
    if (fmt)
        snprintf(p->message, sizeof(p->message), fmt, a ? a : "", b ? b : "");
    p->done(p);
}

/* Points every LoadImage node that used image `it` at the uploaded file. */
static void bind_image(struct job_prep *p, json_t *it, const char *name)
{
    const char *node = json_string_value(json_object_get(it, "node"));
    json_t *inputs = json_object_get(json_object_get(p->graph, node ? node : ""), "inputs");
    char ref[160];
    snprintf(ref, sizeof(ref), "%s/%s", p->subfolder, name);
    if (json_is_object(inputs))
        json_object_set_new(inputs, "image", json_string(ref));
    json_object_set_new(it, "name", json_string(name));
}

/* Adds bytes under a content name (the same image twice is uploaded once). Takes data. */
static int add_file(struct job_prep *p, const char *name, unsigned char *data, size_t len)
{
    for (size_t i = 0; i < p->nfiles; i++) {
        if (!strcmp(p->files[i].name, name)) {
            free(data);
            return 0;
        }
    }
    if (p->nfiles == sizeof(p->files) / sizeof(p->files[0])) {
        free(data);
        return -E2BIG;
    }
    struct comfy_input_file *f = &p->files[p->nfiles];
    memset(f, 0, sizeof(*f));
    snprintf(f->name, sizeof(f->name), "%s", name);
    f->data = data;
    f->len = len;
    p->data[p->nfiles++] = data;
    return 0;
}

static void fetch_next(struct job_prep *p);

static void fetched_cb(struct comfy_call *c, int err, long status)
{
    struct job_prep *p = c->ctx;
    json_t *it = json_array_get(p->images, p->next);
    const char *url = json_string_value(json_object_get(it, "url"));
    p->fetching = false;
    if (p->canceled) {
        comfy_call_release(c);
        return;
    }
    char name[80];
    if (p->env->guard && urlguard_ctx_finish(&p->gctx, c->curl_rc) != URLGUARD_OK) {
        char why[URLGUARD_REASON_CAP + 64];
        urlguard_ctx_message(&p->gctx, c->curl_rc, why, sizeof(why));
        comfy_call_release(c);
        return finish(p, -EPERM, "fetching input image %.300s refused: %s", url, why);
    }
    if (err || status < 200 || status > 299) {
        char why[64];
        snprintf(why, sizeof(why), "%s", err == -EFBIG ? "larger than MAX_INPUT_IMAGE_BYTES"
                                         : err ? strerror(-err) : "HTTP error");
        if (!err)
            snprintf(why, sizeof(why), "HTTP %ld", status);
        comfy_call_release(c);
        return finish(p, -EIO, "fetching input image %.300s failed: %s", url, why);
    }
    if (!prompt_image_name((const unsigned char *)c->resp.data, c->resp.len, name)) {
        comfy_call_release(c);
        return finish(p, -EINVAL, "input image %.300s is not a PNG, JPEG, WebP or GIF file%s",
                      url, "");
    }
    uint32_t w = 0, h = 0;
    if (p->env->max_side &&
        (!prompt_image_size((const unsigned char *)c->resp.data, c->resp.len, &w, &h) ||
         w > p->env->max_side || h > p->env->max_side)) {
        comfy_call_release(c);
        char dims[48];
        snprintf(dims, sizeof(dims), "%ux%u", w, h);
        return finish(p, -EFBIG, "input image %.300s is %s, larger than MAX_IMAGE_SIZE on a "
                      "side (or its header does not say)", url, dims);
    }
    unsigned char *data = malloc(c->resp.len ? c->resp.len : 1);
    if (!data) {
        comfy_call_release(c);
        return finish(p, -ENOMEM, "out of memory%s%s", "", "");
    }
    memcpy(data, c->resp.data, c->resp.len);
    size_t len = c->resp.len;
    comfy_call_release(c);
    bind_image(p, it, name);
    if (add_file(p, name, data, len) < 0)
        return finish(p, -E2BIG, "too many input images%s%s", "", "");
    p->next++;
    fetch_next(p);
}

static int guard_cb(CURL *easy, curl_write_callback write, void *write_data, void *arg)
{
    struct job_prep *p = arg;
    urlguard_ctx_init(&p->gctx, write, write_data);
    return urlguard_curl_apply(easy, p->env->guard, &p->gctx);
}

/* URLs, one at a time, in request order. */
static void fetch_next(struct job_prep *p)
{
    json_t *it;
    while ((it = json_array_get(p->images, p->next)) &&
           !json_is_string(json_object_get(it, "url")))
        p->next++;
    if (!it)
        return finish(p, 0, NULL, NULL, NULL);
    struct comfy_call_opts o = {
        .timeout_ms = p->env->timeout_ms,
        .max_response = p->env->max_bytes,
        .prepare = p->env->guard ? guard_cb : NULL,
        .prepare_arg = p,
    };
    p->fetching = true;
    if (comfy_call_json(&p->call, p->env->rc, "GET",
                        json_string_value(json_object_get(it, "url")), NULL, &o, fetched_cb,
                        p) < 0) {
        comfy_call_release(&p->call);
        finish(p, -EIO, "cannot start fetching an input image%s%s", "", "");
    }
}

/* Inline images are back from the store: bind them, then fetch the URLs. */
static void loaded_cb(struct job_blobs_load *l)
{
    struct job_prep *p = l->ctx;
    p->loading = false;
    for (size_t i = 0; i < l->nblobs; i++) {
        if (p->canceled || l->req.rc != 0 ||
            add_file(p, l->blobs[i].name, l->blobs[i].data, l->blobs[i].len) < 0)
            free(l->blobs[i].data);
    }
    free(l->blobs);
    l->blobs = NULL;
    if (p->canceled)
        return;
    if (l->req.rc != 0)
        return finish(p, -EIO, "cannot read the job's input images from the store%s%s", "", "");
    size_t i;
    json_t *it;
    json_array_foreach(p->images, i, it)
    {
        const char *name = json_string_value(json_object_get(it, "name"));
        if (json_object_get(it, "url") || !name)
            continue;
        bool have = false;
        for (size_t k = 0; k < p->nfiles; k++)
            have |= !strcmp(p->files[k].name, name);
        if (!have)
            return finish(p, -ENOENT, "input image %s of node %s is gone", name,
                          json_string_value(json_object_get(it, "node")));
        bind_image(p, it, name);
    }
    fetch_next(p);
}

int job_prep_start(struct job_prep *p, const struct job_prep_env *env, const char *job_id,
                   const char *owner, json_t *images, json_t *graph, job_prep_done_fn done,
                   void *ctx)
{
    memset(p, 0, sizeof(*p));
    p->env = env;
    p->images = json_incref(images);
    p->graph = json_incref(graph);
    p->done = done;
    p->ctx = ctx;
    prompt_tenant_subfolder(owner, p->subfolder);
    snprintf(p->load.job_id, sizeof(p->load.job_id), "%s", job_id);
    p->load.done = loaded_cb;
    p->load.ctx = p;
    if (!env->store)
        return -EINVAL;
    p->loading = true;
    if (job_store_blobs_load(env->store, env->ring, &p->load) < 0) {
        p->loading = false;
        return -EAGAIN;
    }
    return 0;
}

void job_prep_cancel(struct job_prep *p)
{
    p->canceled = true;
    if (p->fetching) {
        comfy_call_cancel(&p->call);
        comfy_call_release(&p->call);
        p->fetching = false;
    }
}

bool job_prep_quiet(const struct job_prep *p)
{
    return !p->loading && !p->fetching;
}

void job_prep_free(struct job_prep *p)
{
    for (size_t i = 0; i < p->nfiles; i++)
        free(p->data[i]);
    p->nfiles = 0;
    json_decref(p->images);
    json_decref(p->graph);
    p->images = p->graph = NULL;
}
