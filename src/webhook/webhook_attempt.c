/* webhook_attempt — one signed POST of a delivery on the reactor's ring_curl, and what its
 * result means (webhook_retry.h). */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "webhook/webhook_internal.h"

char *wh_origin(const char *url, char *err, size_t errlen)
{
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL, *port = NULL, *user = NULL, *out = NULL;
    if (!u) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) != CURLUE_OK) {
        snprintf(err, errlen, "not a valid absolute URL");
    } else if (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0) {
        snprintf(err, errlen, "only http and https URLs are accepted");
    } else if (curl_url_get(u, CURLUPART_USER, &user, 0) == CURLUE_OK) {
        snprintf(err, errlen, "a URL with user:password is not accepted");
    } else {
        size_t n = strlen(scheme) + strlen(host) + strlen(port) + 5;
        out = malloc(n);
        if (out) {
            for (char *p = host; *p; p++)
                *p = (char)tolower((unsigned char)*p);
            snprintf(out, n, "%s://%s:%s", scheme, host, port);
        } else {
            snprintf(err, errlen, "out of memory");
        }
    }
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    curl_free(user);
    curl_url_cleanup(u);
    return out;
}

int webhook_url_check(const char *url, char *err, size_t errlen)
{
    if (strlen(url) > WH_URL_MAX) {
        snprintf(err, errlen, "longer than %d bytes", WH_URL_MAX);
        return -1;
    }
    for (const char *p = url; *p; p++) {
        if ((unsigned char)*p <= ' ' || (unsigned char)*p >= 0x7f) {
            snprintf(err, errlen, "contains a space, a control or a non-ASCII character");
            return -1;
        }
    }
    char *o = wh_origin(url, err, errlen);
    free(o);
    return o ? 0 : -1;
}

static size_t write_cb(char *p, size_t size, size_t n, void *ud)
{
    struct wh_attempt *a = ud;
    size_t len = size * n;
    size_t room = sizeof(a->resp_head) - 1 - a->resp_head_len;
    size_t keep = len < room ? len : room;
    memcpy(a->resp_head + a->resp_head_len, p, keep);
    a->resp_head_len += keep;
    a->resp_bytes += len;
    if (a->resp_bytes > a->d->w->cfg.max_response) {
        a->resp_capped = true; /* enough read: the status is all that counts */
        return 0;
    }
    return len;
}

static void attempt_free(struct wh_delivery *d)
{
    struct wh_attempt *a = d->att;
    if (!a)
        return;
    if (a->x.easy)
        curl_easy_cleanup(a->x.easy);
    curl_slist_free_all(a->hdrs);
    free(a->guard_ctx);
    free(a);
    d->att = NULL;
}

/* The start of the body, printable and on one line, for last_error. */
static void body_hint(const struct wh_attempt *a, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < a->resp_head_len && o + 1 < cap; i++) {
        unsigned char c = (unsigned char)a->resp_head[i];
        out[o++] = c < ' ' ? ' ' : c >= 0x7f ? '?' : (char)c; /* ASCII: it goes into JSON */
    }
    out[o] = '\0';
}

static void http_outcome(struct wh_attempt *a, long status, struct wh_outcome *o)
{
    o->status = status;
    o->verdict = webhook_status_verdict(status);
    if (o->verdict == WEBHOOK_V_DELIVERED)
        return;
    char hint[sizeof(a->resp_head)];
    body_hint(a, hint, sizeof(hint));
    snprintf(o->error, sizeof(o->error), "HTTP %ld%s%s", status,
             status >= 300 && status <= 399 ? " (redirects are not followed)" : "",
             hint[0] ? ": " : "");
    size_t n = strlen(o->error);
    snprintf(o->error + n, sizeof(o->error) - n, "%s", hint);
    struct curl_header *h = NULL;
    if (o->verdict == WEBHOOK_V_RETRY &&
        curl_easy_header(a->x.easy, "Retry-After", 0, CURLH_HEADER, -1, &h) == CURLHE_OK) {
        const struct webhook_config *c = &a->d->w->cfg;
        o->has_retry_after = webhook_retry_after_ms(h->value, (int64_t)time(NULL), c->retry_max_ms,
                                                    &o->retry_after_ms) == 0;
    }
}

static void curl_outcome(struct wh_attempt *a, CURLcode rc, struct wh_outcome *o)
{
    const struct webhook_guard *g = &a->d->w->cfg.guard;
    char why[160] = "";
    if (g->refused && g->refused(a->x.easy, rc, a->guard_ctx, g->arg, why, sizeof(why))) {
        o->verdict = WEBHOOK_V_REJECTED;
        snprintf(o->error, sizeof(o->error), "refused by the URL guard: %s", why);
        return;
    }
    /* a URL curl cannot use will not get better; everything else (refused, reset, timed out,
     * no such host yet) may */
    o->verdict = rc == CURLE_UNSUPPORTED_PROTOCOL || rc == CURLE_URL_MALFORMAT ? WEBHOOK_V_REJECTED
                                                                               : WEBHOOK_V_RETRY;
    snprintf(o->error, sizeof(o->error), "%.60s%s%.180s", curl_easy_strerror(rc),
             a->errbuf[0] ? ": " : "", a->errbuf);
}

static void done_cb(struct ring_curl_xfer *x, CURLcode rc, long status)
{
    struct wh_attempt *a = (struct wh_attempt *)x;
    struct wh_delivery *d = a->d;
    struct wh_outcome o;
    memset(&o, 0, sizeof(o));
    /* a body past max_response ends the read with a write error, but the status is known */
    if (rc == CURLE_OK || (rc == CURLE_WRITE_ERROR && a->resp_capped && status > 0))
        http_outcome(a, status, &o);
    else
        curl_outcome(a, rc, &o);
    d->att_duration_ms = (uint32_t)((ring_clock_ns() - a->start_ns) / 1000000);
    void (*done)(struct wh_delivery *, const struct wh_outcome *) = a->done;
    attempt_free(d);
    done(d, &o);
}

static int add_header(struct wh_attempt *a, const char *fmt, const char *v)
{
    char line[256];
    snprintf(line, sizeof(line), fmt, v);
    struct curl_slist *l = curl_slist_append(a->hdrs, line);
    if (!l)
        return -ENOMEM;
    a->hdrs = l;
    return 0;
}

/* The Standard Webhooks headers, signed now: each attempt has its own timestamp. */
static int sign_headers(struct webhooks *w, struct wh_delivery *d, struct wh_attempt *a)
{
    char ts[24], sig[WEBHOOK_SIG_SIZE], xsig[WEBHOOK_XSIG_SIZE];
    int64_t now = (int64_t)time(NULL);
    snprintf(ts, sizeof(ts), "%lld", (long long)now);
    webhook_signature(&w->secret, &w->secret_prev, d->id, now, d->payload, d->payload_len, sig);
    webhook_signature_hex(&w->secret, d->payload, d->payload_len, xsig);
    int rc = 0;
    rc |= add_header(a, "Content-Type: %s", "application/json");
    rc |= add_header(a, "webhook-id: %s", d->id);
    rc |= add_header(a, "webhook-timestamp: %s", ts);
    rc |= add_header(a, "webhook-signature: %s", sig);
    rc |= add_header(a, "X-Signature: %s", xsig);
    rc |= add_header(a, "Expect:%s", ""); /* no 100-continue round trip */
    return rc ? -ENOMEM : 0;
}

static void setup(struct webhooks *w, struct wh_delivery *d, struct wh_attempt *a)
{
    CURL *e = a->x.easy;
    const struct webhook_config *c = &w->cfg;
    curl_easy_setopt(e, CURLOPT_URL, d->url);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)c->timeout_ms);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)c->timeout_ms);
    curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(e, CURLOPT_USERAGENT, "comfygate/" COMFYGATE_VERSION);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, a->hdrs);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, d->payload);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)d->payload_len);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, write_cb);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, a);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, a->errbuf);
}

int wh_attempt_start(struct webhooks *w, struct wh_delivery *d, struct wh_outcome *o,
                     void (*done)(struct wh_delivery *d, const struct wh_outcome *o))
{
    memset(o, 0, sizeof(*o));
    o->verdict = WEBHOOK_V_RETRY;
    snprintf(o->error, sizeof(o->error), "out of memory");
    struct wh_attempt *a = calloc(1, sizeof(*a));
    if (!a)
        return -1;
    d->att = a;
    a->d = d;
    a->done = done;
    a->start_ns = ring_clock_ns();
    a->x.easy = curl_easy_init();
    if (!a->x.easy || sign_headers(w, d, a) < 0) {
        attempt_free(d);
        return -1;
    }
    setup(w, d, a);
    const struct webhook_guard *g = &w->cfg.guard;
    char why[160] = "";
    if (g->ctx_size && !(a->guard_ctx = calloc(1, g->ctx_size))) {
        attempt_free(d);
        return -1;
    }
    if (g->prepare && g->prepare(a->x.easy, d->url, write_cb, a, a->guard_ctx, g->arg, why,
                                 sizeof(why)) < 0) {
        o->verdict = WEBHOOK_V_REJECTED;
        snprintf(o->error, sizeof(o->error), "refused by the URL guard: %s", why);
        attempt_free(d);
        return -1;
    }
    if (ring_curl_start(w->rc, &a->x, done_cb) < 0) {
        snprintf(o->error, sizeof(o->error), "could not start the request");
        attempt_free(d);
        return -1;
    }
    return 0;
}

void wh_attempt_cancel(struct webhooks *w, struct wh_delivery *d)
{
    if (d->att)
        ring_curl_cancel(w->rc, &d->att->x);
    attempt_free(d);
}
