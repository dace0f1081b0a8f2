/* comfy_backend — see comfy_backend.h. */
#include "comfy/comfy_backend.h"

#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "comfy/comfy_attempt.h"

const char *comfy_health_name(enum comfy_health h)
{
    static const char *const names[] = {"unknown", "up", "down", "half-open"};
    return names[h];
}

/* --- COMFYUI_URLS ------------------------------------------------------------------------ */

static int spec_option(struct comfy_backend_spec *s, const char *opt, char *err, size_t errlen)
{
    char *end;
    if (!strncmp(opt, "weight=", 7)) {
        unsigned long v = strtoul(opt + 7, &end, 10);
        if (*end || v < 1 || v > 1000) {
            snprintf(err, errlen, "weight must be 1..1000 in \"%s\"", opt);
            return -1;
        }
        s->weight = (unsigned)v;
    } else if (!strncmp(opt, "max=", 4)) {
        unsigned long v = strtoul(opt + 4, &end, 10);
        if (*end || v < 1 || v > 64) {
            snprintf(err, errlen, "max must be 1..64 in \"%s\"", opt);
            return -1;
        }
        s->max_inflight = (unsigned)v;
    } else if (!strncmp(opt, "tags=", 5)) {
        snprintf(s->tags, sizeof(s->tags), "%s", opt + 5);
    } else {
        snprintf(err, errlen, "unknown backend option \"%s\" (weight=, max=, tags=)", opt);
        return -1;
    }
    return 0;
}

int comfy_backend_specs_parse(const char *list, struct comfy_backend_spec *out, size_t max,
                              char *err, size_t errlen)
{
    char tmp[8192];
    if (strlen(list) >= sizeof(tmp)) {
        snprintf(err, errlen, "backend list too long");
        return -1;
    }
    snprintf(tmp, sizeof(tmp), "%s", list);
    int n = 0;
    char *save = NULL;
    for (char *item = strtok_r(tmp, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
        while (*item == ' ')
            item++;
        if (!*item)
            continue;
        if ((size_t)n == max) {
            snprintf(err, errlen, "more than %zu backends", max);
            return -1;
        }
        struct comfy_backend_spec *s = &out[n];
        memset(s, 0, sizeof(*s));
        s->weight = 1;
        s->max_inflight = 1;
        char *save2 = NULL;
        char *url = strtok_r(item, ";", &save2);
        size_t ul = strlen(url);
        while (ul && (url[ul - 1] == '/' || url[ul - 1] == ' '))
            url[--ul] = '\0';
        if ((strncmp(url, "http://", 7) && strncmp(url, "https://", 8)) || ul >= sizeof(s->url)) {
            snprintf(err, errlen, "backend URL must start with http:// or https://: \"%s\"", url);
            return -1;
        }
        /* a base URL: no spaces (a comment left after it, say), query, fragment or quoting */
        const char *host = url + (url[4] == 's' ? 8 : 7);
        bool ok = *host && *host != '/' && *host != ':';
        for (const char *c = url; ok && *c; c++)
            ok = (unsigned char)*c > ' ' && (unsigned char)*c < 0x7f && !strchr("#?\"<>\\^`{|}", *c);
        if (!ok) {
            snprintf(err, errlen, "backend URL is not a plain http(s)://host[:port][/path]: "
                     "\"%.200s\"", url);
            return -1;
        }
        snprintf(s->url, sizeof(s->url), "%s", url);
        for (char *o = strtok_r(NULL, ";", &save2); o; o = strtok_r(NULL, ";", &save2)) {
            if (spec_option(s, o, err, errlen) < 0)
                return -1;
        }
        n++;
    }
    if (n == 0) {
        snprintf(err, errlen, "no backend URL given");
        return -1;
    }
    return n;
}

/* --- health ------------------------------------------------------------------------------ */

static void probe_arm(struct comfy_backend *b, uint32_t ms)
{
    if (!b->stopping)
        ring_timer_arm(b->ring, &b->probe_timer, ms);
}

void comfy_backend_report_failure(struct comfy_backend *b, const char *what)
{
    snprintf(b->last_error, sizeof(b->last_error), "%s", what);
    b->fails++;
    if (b->health == COMFY_HEALTH_HALF_OPEN ||
        (b->fails >= b->cfg->fail_threshold && b->health != COMFY_HEALTH_DOWN)) {
        b->open_ms = b->health == COMFY_HEALTH_HALF_OPEN && b->open_ms
                         ? (b->open_ms * 2 > b->cfg->open_max_ms ? b->cfg->open_max_ms
                                                                 : b->open_ms * 2)
                         : b->cfg->open_ms;
        b->health = COMFY_HEALTH_DOWN;
        b->open_until_ns = b->ring->now_ns + (uint64_t)b->open_ms * 1000000ull;
        probe_arm(b, b->open_ms);
    }
}

void comfy_backend_report_success(struct comfy_backend *b, double run_ms)
{
    b->done++;
    if (run_ms >= 0)
        b->mean_run_ms = b->mean_run_ms <= 0 ? run_ms : 0.8 * b->mean_run_ms + 0.2 * run_ms;
}

static void ws_connect(struct comfy_backend *b);
static void caps_load(struct comfy_backend *b);

static void probe_done(struct comfy_call *c, int err, long status)
{
    struct comfy_backend *b = c->ctx;
    b->probing = false;
    if (err == 0 && status == 200) {
        json_t *j = json_loadb(c->resp.data, c->resp.len, 0, NULL);
        json_t *dev = json_array_get(json_object_get(j, "devices"), 0);
        if (dev) {
            b->vram_total = (uint64_t)json_integer_value(json_object_get(dev, "vram_total"));
            b->vram_free = (uint64_t)json_integer_value(json_object_get(dev, "vram_free"));
        }
        json_decref(j);
        bool was_down = b->health != COMFY_HEALTH_UP;
        b->health = COMFY_HEALTH_UP;
        b->fails = 0;
        b->open_ms = 0;
        if (was_down || !b->caps_loaded)
            caps_load(b);
        if (!b->ws_active)
            ws_connect(b);
    } else {
        char what[160];
        snprintf(what, sizeof(what), "health probe failed: %s",
                 err ? strerror(-err) : "unexpected status");
        if (b->health == COMFY_HEALTH_UNKNOWN)
            b->fails = b->cfg->fail_threshold; /* never seen up: open at once */
        comfy_backend_report_failure(b, what);
    }
    comfy_call_release(c);
    if (b->health != COMFY_HEALTH_DOWN)
        probe_arm(b, b->cfg->probe_interval_ms);
}

static void probe_timer_cb(struct ring_timer *t)
{
    struct comfy_backend *b =
        (struct comfy_backend *)((char *)t - offsetof(struct comfy_backend, probe_timer));
    if (b->probing || b->stopping)
        return;
    if (b->health == COMFY_HEALTH_DOWN && b->ring->now_ns >= b->open_until_ns)
        b->health = COMFY_HEALTH_HALF_OPEN;
    char url[600];
    comfy_backend_url(b, url, sizeof(url), "/system_stats");
    struct comfy_call_opts o = {.timeout_ms = b->cfg->probe_timeout_ms,
                                .connect_timeout_ms = b->cfg->probe_timeout_ms,
                                .max_response = 1 << 20};
    if (comfy_call_json(&b->probe_call, b->rc, "GET", url, NULL, &o, probe_done, b) == 0)
        b->probing = true;
    else
        probe_arm(b, b->cfg->probe_interval_ms);
}

/* --- capabilities ------------------------------------------------------------------------ */

static void caps_done(struct comfy_call *c, int err, long status)
{
    struct comfy_backend *b = c->ctx;
    b->caps_loading = false;
    /* comfy_caps_load, not json_loadb: real /object_info holds 2^64-1 (KSampler's seed max),
     * which jansson refuses as an integer */
    if (err == 0 && status == 200 && comfy_caps_load(&b->caps, c->resp.data, c->resp.len) == 0)
        b->caps_loaded = true;
    else
        comfy_backend_report_failure(b, "cannot read /object_info");
    comfy_call_release(c);
}

static void caps_load(struct comfy_backend *b)
{
    if (b->caps_loading || b->stopping)
        return;
    char url[600];
    comfy_backend_url(b, url, sizeof(url), "/object_info");
    struct comfy_call_opts o = {.timeout_ms = 30000, .max_response = b->cfg->max_object_info};
    if (comfy_call_json(&b->info_call, b->rc, "GET", url, NULL, &o, caps_done, b) == 0)
        b->caps_loading = true;
}

/* --- WebSocket ----------------------------------------------------------------------------- */

static void ws_on_open(void *ctx)
{
    struct comfy_backend *b = ctx;
    bool reconnect = b->ws_ever_open;
    b->ws_open = true;
    b->ws_ever_open = true;
    b->ws_retry = 0;
    if (reconnect)
        caps_load(b); /* the server may have restarted with other nodes or models */
    for (struct comfy_attempt *a = b->attempts, *n; a; a = n) {
        n = a->next;
        comfy_attempt_ws_up(a);
    }
}

static void ws_on_text(void *ctx, const char *p, size_t n)
{
    struct comfy_backend *b = ctx;
    struct comfy_event ev;
    if (comfy_event_parse(p, n, &ev) < 0)
        return;
    if (ev.type == CEV_STATUS && ev.queue_remaining >= 0)
        b->queue_remaining = ev.queue_remaining;
    if (ev.type == CEV_EXECUTION_START)
        snprintf(b->running_prompt, sizeof(b->running_prompt), "%.63s", ev.prompt_id);
    if (ev.type == CEV_EXECUTING && ev.node_null)
        b->running_prompt[0] = '\0';
    if (ev.prompt_id[0]) {
        for (struct comfy_attempt *a = b->attempts, *nx; a; a = nx) {
            nx = a->next;
            if (strcmp(a->prompt_id, ev.prompt_id) == 0) {
                comfy_attempt_on_event(a, &ev);
                break;
            }
        }
    }
    comfy_event_free(&ev);
}

/* Sampler previews (types 1, 2 and 4) go to the attempt of the prompt running there. */
static void ws_on_binary(void *ctx, const unsigned char *p, size_t n)
{
    struct comfy_backend *b = ctx;
    struct comfy_ws_binary bin;
    if (!b->running_prompt[0] || comfy_ws_binary_parse(p, n, &bin) < 0)
        return;
    if (bin.type != COMFY_WS_BIN_PREVIEW_IMAGE && bin.type != COMFY_WS_BIN_UNENCODED_PREVIEW_IMAGE &&
        bin.type != COMFY_WS_BIN_PREVIEW_WITH_METADATA)
        return;
    const char *mime = bin.image_format == COMFY_WS_IMAGE_PNG ? "image/png" : "image/jpeg";
    if (bin.type == COMFY_WS_BIN_PREVIEW_WITH_METADATA)
        mime = bin.len > 3 && bin.data[0] == 0x89 ? "image/png" : "image/jpeg";
    for (struct comfy_attempt *a = b->attempts; a; a = a->next) {
        if (!strcmp(a->prompt_id, b->running_prompt)) {
            comfy_attempt_on_preview(a, mime, bin.data, bin.len);
            break;
        }
    }
}

static void ws_schedule(struct comfy_backend *b)
{
    if (b->stopping)
        return;
    uint32_t ms = b->ws_retry ? b->ws_retry : b->cfg->ws_retry_ms;
    b->ws_retry = ms * 2 > 30000 ? 30000 : ms * 2;
    ring_timer_arm(b->ring, &b->ws_timer, ms);
}

static void ws_on_close(void *ctx, int err)
{
    struct comfy_backend *b = ctx;
    bool was_open = b->ws_open;
    b->ws_open = false;
    b->ws_active = false;
    if (was_open) {
        for (struct comfy_attempt *a = b->attempts, *n; a; a = n) {
            n = a->next;
            comfy_attempt_ws_down(a);
        }
    }
    ws_schedule(b);
}

static const struct comfy_ws_ops ws_ops = {
    .on_open = ws_on_open,
    .on_text = ws_on_text,
    .on_binary = ws_on_binary,
    .on_close = ws_on_close,
};

static int resolve(struct comfy_backend *b, struct sockaddr_storage *ss, socklen_t *sl)
{
    struct addrinfo hints, *ai = NULL;
    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = SOCK_STREAM;
    char port[8];
    snprintf(port, sizeof(port), "%u", b->port);
    if (getaddrinfo(b->host, port, &hints, &ai) != 0 || !ai)
        return -1;
    memcpy(ss, ai->ai_addr, ai->ai_addrlen);
    *sl = ai->ai_addrlen;
    freeaddrinfo(ai);
    return 0;
}

static void ws_connect(struct comfy_backend *b)
{
    if (b->ws_active || b->stopping || !comfy_ws_idle(&b->ws))
        return;
    struct sockaddr_storage ss;
    socklen_t sl;
    if (strncmp(b->spec.url, "https://", 8) == 0 || resolve(b, &ss, &sl) < 0) {
        ws_schedule(b); /* wss is not supported yet: attempts poll /history instead */
        return;
    }
    struct comfy_ws_config wc = {
        .connect_timeout_ms = b->cfg->request_timeout_ms,
        .handshake_timeout_ms = b->cfg->request_timeout_ms,
        .ping_interval_ms = b->cfg->ws_ping_ms,
        .silence_timeout_ms = b->cfg->ws_silence_ms,
        .max_message = 8 << 20,
    };
    char hosthdr[300], path[128];
    snprintf(hosthdr, sizeof(hosthdr), "%s:%u", b->host, b->port);
    snprintf(path, sizeof(path), "/ws?clientId=%s", b->client_id);
    if (comfy_ws_open(&b->ws, b->ring, (struct sockaddr *)&ss, sl, hosthdr, path, &wc, &ws_ops, b) ==
        0)
        b->ws_active = true;
    else
        ws_schedule(b);
}

static void ws_timer_cb(struct ring_timer *t)
{
    struct comfy_backend *b =
        (struct comfy_backend *)((char *)t - offsetof(struct comfy_backend, ws_timer));
    if (!comfy_ws_idle(&b->ws)) {
        ring_timer_arm(b->ring, &b->ws_timer, 50);
        return;
    }
    if (b->health == COMFY_HEALTH_UP)
        ws_connect(b);
    else
        ws_schedule(b);
}

/* --- life ---------------------------------------------------------------------------------- */

static int parse_host_port(struct comfy_backend *b)
{
    CURLU *u = curl_url();
    char *host = NULL, *port = NULL;
    int rc = -1;
    if (u && curl_url_set(u, CURLUPART_URL, b->spec.url, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) == CURLUE_OK) {
        size_t hl = strlen(host);
        if (host[0] == '[' && hl > 2) { /* IPv6 literal */
            memmove(host, host + 1, hl - 2);
            host[hl - 2] = '\0';
        }
        snprintf(b->host, sizeof(b->host), "%s", host);
        b->port = (uint16_t)atoi(port);
        rc = 0;
    }
    curl_free(host);
    curl_free(port);
    curl_url_cleanup(u);
    return rc;
}

int comfy_backend_init(struct comfy_backend *b, struct comfy_fleet *f, int idx,
                       const struct comfy_backend_spec *spec, struct ring *r, struct ring_curl *rc,
                       const struct comfy_backend_config *cfg, const char *instance_id)
{
    memset(b, 0, sizeof(*b));
    b->fleet = f;
    b->idx = idx;
    b->spec = *spec;
    b->ring = r;
    b->rc = rc;
    b->cfg = cfg;
    b->queue_remaining = 0;
    if (parse_host_port(b) < 0)
        return -EINVAL;
    snprintf(b->client_id, sizeof(b->client_id), "comfygate-%s-%d", instance_id, idx);
    b->probe_timer.cb = probe_timer_cb;
    b->ws_timer.cb = ws_timer_cb;
    return 0;
}

void comfy_backend_start(struct comfy_backend *b)
{
    probe_arm(b, 0);
}

void comfy_backend_stop(struct comfy_backend *b)
{
    b->stopping = true;
    ring_timer_cancel(b->ring, &b->probe_timer);
    ring_timer_cancel(b->ring, &b->ws_timer);
    if (b->probing)
        comfy_call_cancel(&b->probe_call);
    if (b->caps_loading)
        comfy_call_cancel(&b->info_call);
    if (b->freeing)
        comfy_call_cancel(&b->free_call);
    b->probing = b->caps_loading = b->freeing = false;
    if (b->ws_active)
        comfy_ws_close(&b->ws);
    b->ws_active = b->ws_open = false;
    comfy_caps_clear(&b->caps);
}

bool comfy_backend_idle(const struct comfy_backend *b)
{
    return comfy_ws_idle(&b->ws);
}

bool comfy_backend_available(const struct comfy_backend *b)
{
    return b->health == COMFY_HEALTH_UP && b->caps_loaded && !b->stopping &&
           b->inflight < b->spec.max_inflight;
}

double comfy_backend_expected_wait_ms(const struct comfy_backend *b)
{
    double mean = b->mean_run_ms > 0 ? b->mean_run_ms : 1000.0;
    unsigned depth = (unsigned)b->queue_remaining > b->inflight ? (unsigned)b->queue_remaining
                                                               : b->inflight;
    return depth * mean / (double)b->spec.weight;
}

static void free_done(struct comfy_call *c, int err, long status)
{
    struct comfy_backend *b = c->ctx;
    b->freeing = false;
    comfy_call_release(c);
}

void comfy_backend_free_memory(struct comfy_backend *b)
{
    if (b->freeing || b->stopping)
        return;
    char url[600];
    comfy_backend_url(b, url, sizeof(url), "/free");
    struct comfy_call_opts o = {.timeout_ms = b->cfg->request_timeout_ms, .max_response = 4096};
    if (comfy_call_json(&b->free_call, b->rc, "POST", url,
                        "{\"unload_models\":true,\"free_memory\":true}", &o, free_done, b) == 0)
        b->freeing = true;
}

void comfy_backend_url(const struct comfy_backend *b, char *dst, size_t cap, const char *path)
{
    snprintf(dst, cap, "%s%s", b->spec.url, path);
}

json_t *comfy_backend_state_json(const struct comfy_backend *b)
{
    return json_pack("{s:s, s:s, s:b, s:b, s:I, s:i, s:i, s:I, s:I, s:f, s:s, s:I, s:I, s:b, s:i, s:s,"
                     " s:s}",
                     "url", b->spec.url, "health", comfy_health_name(b->health), "healthy",
                     b->health == COMFY_HEALTH_UP, "capabilities", b->caps_loaded, "node_classes",
                     (json_int_t)b->caps.node_count, "queue_depth", b->queue_remaining, "in_flight",
                     (int)b->inflight, "done", (json_int_t)b->done, "failed",
                     (json_int_t)b->failed, "mean_run_ms", b->mean_run_ms, "last_error",
                     b->last_error, "vram_free", (json_int_t)b->vram_free, "vram_total",
                     (json_int_t)b->vram_total, "websocket", b->ws_open, "weight",
                     (int)b->spec.weight, "tags", b->spec.tags, "last_checkpoint", b->last_ckpt);
}

void comfy_backend_attach(struct comfy_backend *b, struct comfy_attempt *a)
{
    a->next = b->attempts;
    b->attempts = a;
    b->inflight++;
}

void comfy_backend_detach(struct comfy_backend *b, struct comfy_attempt *a)
{
    for (struct comfy_attempt **pp = &b->attempts; *pp; pp = &(*pp)->next) {
        if (*pp == a) {
            *pp = a->next;
            b->inflight--;
            break;
        }
    }
    a->next = NULL;
}
