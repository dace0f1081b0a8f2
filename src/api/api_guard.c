/* api_guard — what stands between the open internet and the routes: CORS, rate limits per
 * client address and per API key, authentication (API keys, HS256 JWTs) and roles. Runs as the
 * http_server's before_route hook on the connection's reactor, for every request, before its
 * handler: a preflight is answered here; a caller that is over its limit, unknown or not
 * allowed is answered here; otherwise the caller is written into the exchange's app slot,
 * where api_owner() and friends read it.
 *
 * Order, and why: preflights first (browsers send them without credentials); then the address
 * limit (so a flood of bad credentials costs the flooder, not us); then who is calling; then
 * the per-key limit; then the route's role. CORS headers go on every answer, errors included,
 * so browser code can read them. /health and /ready are public and never limited. */
#include <arpa/inet.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "api/api.h"
#include "gateway.h"

struct api_caller {
    bool set;
    bool admin;
    char tenant[AUTH_TENANT_MAX + 1];
    char id[140];
};

static struct api_caller *caller(struct http_exchange *ex)
{
    return http_app_slot(ex);
}

const char *api_owner(struct http_exchange *ex)
{
    const struct api_caller *c = caller(ex);
    return c->set ? c->tenant : "default";
}

bool api_is_admin(struct http_exchange *ex)
{
    const struct api_caller *c = caller(ex);
    return c->set && c->admin;
}

const char *api_actor(struct http_exchange *ex)
{
    const struct api_caller *c = caller(ex);
    return c->set ? c->id : "anonymous";
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* --- CORS --------------------------------------------------------------------------------------- */

static void add_cors(struct http_exchange *ex, const struct cors_headers *h)
{
    for (unsigned i = 0; i < h->n; i++)
        http_add_header(ex, h->h[i].name, h->h[i].value);
}

/* True when it answered (a preflight). */
static bool cors(struct gateway *gw, struct http_exchange *ex)
{
    if (!cors_enabled(&gw->cors))
        return false;
    const struct http_request *r = http_req(ex);
    size_t ol = 0, ml = 0, hl = 0;
    const char *origin = http_header_get(r, "origin", &ol);
    if (!origin)
        return false;
    const char *method = http_header_get(r, "access-control-request-method", &ml);
    struct cors_headers h;
    if (r->method == HTTP_OPTIONS && method) {
        const char *hdrs = http_header_get(r, "access-control-request-headers", &hl);
        cors_preflight(&gw->cors, origin, ol, method, ml, hdrs, hl, &h);
        add_cors(ex, &h);
        http_respond(ex, 204, NULL, NULL, 0);
        return true;
    }
    cors_actual(&gw->cors, origin, ol, &h);
    add_cors(ex, &h);
    return false;
}

/* --- rate limits ------------------------------------------------------------------------------ */

static void add_limit_headers(struct http_exchange *ex, const struct ratelimit_result *r)
{
    struct ratelimit_headers h;
    ratelimit_format_headers(r, &h);
    for (unsigned i = 0; i < h.n; i++) {
        if (r->allowed && !strcasecmp(h.h[i].name, "Retry-After"))
            continue;
        http_add_header(ex, h.h[i].name, h.h[i].value);
    }
}

/* Takes a token for key; true (and a 429 sent) when over the limit. */
static bool limited(struct ratelimit *rl, struct http_exchange *ex, const char *key,
                    struct ratelimit_result *res)
{
    if (!rl || ratelimit_take(rl, key, now_ms(), 1, res) < 0 || !res->tracked)
        return false;
    if (res->allowed)
        return false;
    add_limit_headers(ex, res);
    http_respond_error(ex, 429, "RATE_LIMITED", "too many requests: at most %u per %u ms",
                       res->limit, http_app(ex) ? ((struct gateway *)http_app(ex))->cfg
                                                              ->rate_limit_window_ms
                                                : 0);
    return true;
}

/* --- who is calling --------------------------------------------------------------------------- */

static bool authenticate(struct gateway *gw, struct http_exchange *ex, struct api_caller *c)
{
    if (!auth_enabled(&gw->auth)) {
        c->set = true; /* no keys configured: everyone is the default tenant's admin */
        c->admin = true;
        snprintf(c->tenant, sizeof(c->tenant), "default");
        snprintf(c->id, sizeof(c->id), "anonymous");
        return true;
    }
    const struct http_request *r = http_req(ex);
    size_t kl = 0, al = 0;
    const char *key = http_header_get(r, "x-api-key", &kl);
    const char *authz = http_header_get(r, "authorization", &al);
    struct auth_principal p;
    /* a credential header sent twice (a proxy adding its own, say) is never half-read */
    enum auth_err e = http_header_count(r, "x-api-key") > 1 ||
                              http_header_count(r, "authorization") > 1
                          ? AUTH_MALFORMED_HEADER
                          : auth_check(&gw->auth, key, kl, authz, al, time(NULL), &p);
    if (e != AUTH_OK) {
        http_add_header(ex, "WWW-Authenticate", "Bearer realm=\"comfygate\"");
        if (e == AUTH_MALFORMED_HEADER)
            http_respond_error(ex, 400, "BAD_CREDENTIALS_HEADER",
                               "send one credential: X-API-Key or Authorization: Bearer");
        else if (e == AUTH_MISSING)
            http_respond_error(ex, 401, "UNAUTHORIZED", "an API key or a bearer token is required");
        else if (e == AUTH_INVALID_TOKEN)
            http_respond_error(ex, 401, "UNAUTHORIZED", "the bearer token is not valid (%s)",
                               jwt_err_name(p.jwt_err));
        else
            http_respond_error(ex, 401, "UNAUTHORIZED", "the API key is not valid");
        return false;
    }
    c->set = true;
    c->admin = p.role == AUTH_ADMIN;
    snprintf(c->tenant, sizeof(c->tenant), "%s", p.tenant);
    if (p.kind == AUTH_KIND_API_KEY)
        snprintf(c->id, sizeof(c->id), "key:%s", p.id);
    else
        snprintf(c->id, sizeof(c->id), "%s", p.id);
    return true;
}

bool api_before_route(struct http_exchange *ex, enum http_match_result mr,
                      const struct http_match *m)
{
    struct gateway *gw = http_app(ex);
    if (cors(gw, ex))
        return true;
    unsigned access = mr == HTTP_MATCH_OK && m->route ? m->route->tag : API_USER;
    if (access == API_PUBLIC)
        return false;
    struct ratelimit_result ip_res = {0}, key_res = {0};
    char key[RATELIMIT_KEY_MAX];
    if (gw->rl_ip && ratelimit_ip_key_str(http_peer_ip(ex), key, sizeof(key)) >= 0 &&
        limited(gw->rl_ip, ex, key, &ip_res))
        return true;
    struct api_caller *c = caller(ex);
    if (!authenticate(gw, ex, c))
        return true;
    if (gw->rl_key && auth_enabled(&gw->auth)) {
        snprintf(key, sizeof(key), "k:%.60s", c->id);
        if (limited(gw->rl_key, ex, key, &key_res))
            return true;
    }
    /* the tighter of the two budgets is the one the client needs to see */
    const struct ratelimit_result *show = &ip_res;
    if (key_res.tracked && (!ip_res.tracked || key_res.remaining < ip_res.remaining))
        show = &key_res;
    if (show->tracked)
        add_limit_headers(ex, show);
    if (access == API_ADMIN && !c->admin) {
        http_respond_error(ex, 403, "FORBIDDEN", "this needs the admin role");
        return true;
    }
    return false;
}

/* --- start-up --------------------------------------------------------------------------------- */

/* HOST is loopback (or a name that resolves only to loopback addresses). */
static bool host_is_loopback(const char *host)
{
    if (!host[0])
        return false; /* every address */
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE}, *ai = NULL;
    if (getaddrinfo(host, NULL, &hints, &ai) != 0)
        return false;
    bool all = ai != NULL;
    for (struct addrinfo *a = ai; a; a = a->ai_next) {
        if (a->ai_family == AF_INET)
            all &= (ntohl(((struct sockaddr_in *)a->ai_addr)->sin_addr.s_addr) >> 24) == 127;
        else if (a->ai_family == AF_INET6)
            all &= IN6_IS_ADDR_LOOPBACK(&((struct sockaddr_in6 *)a->ai_addr)->sin6_addr);
        else
            all = false;
    }
    freeaddrinfo(ai);
    return all;
}

static int auth_setup(struct gateway *gw, FILE *err)
{
    const struct config *c = gw->cfg;
    struct auth_config ac;
    auth_config_default(&ac);
    ac.api_keys = c->api_keys;
    ac.jwt_secret = c->jwt_secret;
    ac.jwt_leeway_s = c->jwt_leeway_s;
    ac.jwt_require_exp = c->jwt_require_exp;
    ac.jwt_max_len = c->jwt_max_bytes;
    ac.jwt_audience = c->jwt_audience[0] ? c->jwt_audience : NULL;
    ac.jwt_issuer = c->jwt_issuer[0] ? c->jwt_issuer : NULL;
    char msg[512];
    if (auth_init(&gw->auth, &ac, msg, sizeof(msg)) < 0) {
        fprintf(err, "comfygate: %s\n", msg);
        return -1;
    }
    gw->auth_ready = true;
    if (!auth_enabled(&gw->auth) && !host_is_loopback(c->host) && !c->allow_no_auth) {
        fprintf(err, "comfygate: no API_KEYS or JWT_SECRET: refusing to listen on %s (not "
                     "loopback) without authentication; set them, or ALLOW_NO_AUTH=true\n",
                c->host[0] ? c->host : "every address");
        return -1;
    }
    return 0;
}

static int limits_setup(struct gateway *gw, FILE *err)
{
    const struct config *c = gw->cfg;
    if (!c->rate_limit_max)
        return 0;
    struct ratelimit_config rc = {.max = c->rate_limit_max, .window_ms = c->rate_limit_window_ms,
                                  .capacity = c->rate_limit_table_size};
    /* two tables: a flood of addresses cannot push the API keys out */
    if (ratelimit_new(&gw->rl_ip, &rc) < 0 || ratelimit_new(&gw->rl_key, &rc) < 0) {
        fprintf(err, "comfygate: cannot set up the rate limiter (RATE_LIMIT_*)\n");
        return -1;
    }
    return 0;
}

static int guards_setup(struct gateway *gw, FILE *err)
{
    const struct config *c = gw->cfg;
    char msg[512];
    struct urlguard_config uc;
    urlguard_config_defaults(&uc);
    uc.allowed = c->input_url_allowed_domains;
    uc.follow_redirects = true;
    uc.max_redirects = 3;
    uc.max_bytes = c->max_input_image_bytes;
    uc.timeout_ms = c->input_url_timeout_ms;
    gw->input_guard = calloc(1, sizeof(*gw->input_guard));
    gw->webhook_guard = calloc(1, sizeof(*gw->webhook_guard));
    if (!gw->input_guard || !gw->webhook_guard ||
        urlguard_init(gw->input_guard, &uc, msg, sizeof(msg)) < 0) {
        fprintf(err, "comfygate: INPUT_URL_ALLOWED_DOMAINS: %s\n", msg);
        return -1;
    }
    urlguard_config_defaults(&uc);
    uc.allowed = c->webhook_allowed_domains;
    uc.follow_redirects = false; /* a webhook receiver answers where it was asked */
    uc.max_bytes = 1ull << 40;   /* the webhook module caps what it reads itself */
    uc.timeout_ms = c->webhook_timeout_ms;
    uc.connect_timeout_ms = c->webhook_timeout_ms;
    if (urlguard_init(gw->webhook_guard, &uc, msg, sizeof(msg)) < 0) {
        fprintf(err, "comfygate: WEBHOOK_ALLOWED_DOMAINS: %s\n", msg);
        return -1;
    }
    return 0;
}

/* --- the webhook deliveries' guard --------------------------------------------------------- */

static int wh_guard_prepare(CURL *easy, const char *url, curl_write_callback write,
                            void *write_data, void *ctx, void *arg, char *why, size_t whylen)
{
    const struct urlguard *g = arg;
    struct urlguard_url u;
    if (urlguard_precheck(g, url, &u, why, whylen) != URLGUARD_OK)
        return -1;
    urlguard_ctx_init(ctx, write, write_data);
    if (urlguard_curl_apply(easy, g, ctx) < 0) {
        snprintf(why, whylen, "the guard could not be applied");
        return -1;
    }
    return 0;
}

static bool wh_guard_refused(CURL *easy, CURLcode rc, void *ctx, void *arg, char *why,
                             size_t whylen)
{
    (void)easy;
    (void)arg;
    enum urlguard_rc r = urlguard_ctx_finish(ctx, rc);
    if (r != URLGUARD_BLOCKED && r != URLGUARD_TOO_MANY_REDIRECTS && r != URLGUARD_BAD_URL)
        return false; /* a long answer is the receiver's business: the status decides */
    urlguard_ctx_message(ctx, rc, why, whylen);
    return true;
}

void api_webhook_guard(struct gateway *gw, struct webhook_guard *g)
{
    g->ctx_size = sizeof(struct urlguard_ctx);
    g->prepare = wh_guard_prepare;
    g->refused = wh_guard_refused;
    g->arg = gw->webhook_guard;
}

int api_guard_init(struct gateway *gw, FILE *err)
{
    const struct config *c = gw->cfg;
    char msg[512];
    if (cors_parse(&gw->cors, c->cors_origins, c->cors_allow_credentials, c->cors_max_age_s, msg,
                   sizeof(msg)) < 0) {
        fprintf(err, "comfygate: %s\n", msg);
        return -1;
    }
    if (auth_setup(gw, err) < 0 || limits_setup(gw, err) < 0 || guards_setup(gw, err) < 0)
        return -1;
    struct webhook_secret ws;
    if ((c->webhook_secret[0] &&
         webhook_secret_parse(&ws, c->webhook_secret, "WEBHOOK_SECRET", msg, sizeof(msg)) < 0) ||
        (c->webhook_secret_previous[0] &&
         webhook_secret_parse(&ws, c->webhook_secret_previous, "WEBHOOK_SECRET_PREVIOUS", msg,
                              sizeof(msg)) < 0)) {
        fprintf(err, "comfygate: %s\n", msg);
        return -1;
    }
    if (c->webhook_retry_max_ms < c->webhook_retry_base_ms) {
        fprintf(err, "comfygate: WEBHOOK_RETRY_MAX_MS must be at least WEBHOOK_RETRY_BASE_MS\n");
        return -1;
    }
    gw->prompt_cfg.input_guard = gw->input_guard;
    gw->prompt_cfg.webhook_guard = gw->webhook_guard;
    gw->hcfg.before_route = api_before_route;
    return 0;
}

void api_guard_free(struct gateway *gw)
{
    if (gw->auth_ready)
        auth_free(&gw->auth);
    gw->auth_ready = false;
    ratelimit_free(gw->rl_ip);
    ratelimit_free(gw->rl_key);
    gw->rl_ip = gw->rl_key = NULL;
    free(gw->input_guard);
    free(gw->webhook_guard);
    gw->input_guard = gw->webhook_guard = NULL;
}
