/* config — see config.h. */
#include "core/config.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/log.h"

enum kind { K_STR, K_U32, K_U64, K_BOOL, K_LEVEL };

struct setting {
    const char *name;
    enum kind kind;
    size_t off;
    size_t size; /* K_STR: capacity */
    uint64_t min, max;
    const char *def;
    const char *help;
};

#define F(field) offsetof(struct config, field), sizeof(((struct config *)0)->field)

static const struct setting settings[] = {
    {"HOST", K_STR, F(host), 0, 0, "127.0.0.1", "address to listen on"},
    {"PORT", K_U32, F(port), 0, 65535, "8080", "TCP port (0: any free port, see PORT_FILE)"},
    {"PORT_FILE", K_STR, F(port_file), 0, 0, "", "write the bound port to this file"},
    {"THREADS", K_U32, F(threads), 0, 256, "0", "reactor threads (0: one per online CPU)"},
    {"LOG_LEVEL", K_LEVEL, F(log_level), 0, 0, "info", "debug, info, warn, error or off"},
    {"ACCESS_LOG", K_BOOL, F(access_log), 0, 0, "true", "one JSON line per request"},
    {"MAX_URL_BYTES", K_U64, F(max_url_bytes), 16, 1 << 20, "8192", "request target limit (414)"},
    {"MAX_HEADER_BYTES", K_U64, F(max_header_bytes), 256, 1 << 22, "32768",
     "all request header bytes (431)"},
    {"MAX_HEADER_COUNT", K_U64, F(max_header_count), 4, 10000, "100", "request headers (431)"},
    {"MAX_BODY_BYTES", K_U64, F(max_body_bytes), 0, 1ull << 32, "8388608",
     "request body limit (413)"},
    {"HEADER_TIMEOUT_MS", K_U32, F(header_timeout_ms), 10, 3600000, "10000",
     "first byte to end of headers (408, slowloris)"},
    {"BODY_TIMEOUT_MS", K_U32, F(body_timeout_ms), 10, 3600000, "60000",
     "end of headers to end of body (408)"},
    {"IDLE_TIMEOUT_MS", K_U32, F(idle_timeout_ms), 10, 86400000, "60000",
     "idle keep-alive connection"},
    {"SEND_TIMEOUT_MS", K_U32, F(send_timeout_ms), 10, 3600000, "60000",
     "no progress sending a response"},
    {"LINGER_MS", K_U32, F(linger_ms), 0, 60000, "2000",
     "read and drop input after a closing response"},
    {"SHUTDOWN_TIMEOUT_MS", K_U32, F(shutdown_timeout_ms), 0, 3600000, "10000",
     "SIGTERM: time in-flight requests get to finish"},
    {"MAX_CONNECTIONS", K_U64, F(max_connections), 1, 10000000, "20000",
     "open client connections (all reactors)"},
    {"MAX_OUT_BYTES", K_U64, F(max_out_bytes), 4096, 1ull << 32, "1048576",
     "queued response bytes per connection before reading pauses"},
    {"SEND_ZC_THRESHOLD", K_U64, F(send_zc_threshold), 0, 1ull << 32, "0",
     "in-memory bodies this big use send_zc (0: off)"},
    {"PIPE_SIZE", K_U64, F(pipe_size), 4096, 1 << 26, "1048576", "splice pipe size per connection"},
    {"RECV_BUFFERS", K_U32, F(recv_buffers), 8, 32768, "1024",
     "provided receive buffers per reactor (power of two)"},
    {"RECV_BUFFER_SIZE", K_U32, F(recv_buffer_size), 1024, 1 << 20, "16384",
     "bytes per receive buffer"},
    {"TLS_CERT_FILE", K_STR, F(tls_cert_file), 0, 0, "",
     "PEM certificate chain, leaf first; with TLS_KEY_FILE every listener speaks TLS 1.2 only"},
    {"TLS_KEY_FILE", K_STR, F(tls_key_file), 0, 0, "",
     "PEM private key of that certificate (RSA >= 2048 bits or EC P-256/384/521, unencrypted)"},
    {"TLS_SESSION_CACHE_BYTES", K_U64, F(tls_session_cache_bytes), 0, 1ull << 30, "1048576",
     "TLS session cache shared by all reactors, about 100 bytes per session (0: no resumption)"},
    {"STATIC_DIR", K_STR, F(static_dir), 0, 0, "", "serve this directory under /static/"},
    {"COMFYUI_URL", K_STR, F(comfyui_url), 0, 0, "", "one ComfyUI backend (http://host:port)"},
    {"COMFYUI_URLS", K_STR, F(comfyui_urls), 0, 0, "",
     "backends: url[;weight=N][;max=N][;tags=a:b],... (wins over COMFYUI_URL)"},
    {"COMFYUI_TIMEOUT_MS", K_U32, F(comfyui_timeout_ms), 100, 86400000, "600000",
     "execution time limit of one attempt (then interrupted, COMFYUI_TIMEOUT)"},
    {"COMFYUI_PROBE_INTERVAL_MS", K_U32, F(comfyui_probe_interval_ms), 50, 3600000, "5000",
     "health probe (/system_stats) interval"},
    {"COMFYUI_POLL_MS", K_U32, F(comfyui_poll_ms), 10, 60000, "500",
     "/history polling while a backend's WebSocket is down"},
    {"COMFYUI_WS_PING_MS", K_U32, F(comfyui_ws_ping_ms), 100, 3600000, "30000",
     "WebSocket ping interval"},
    {"COMFYUI_WS_SILENCE_MS", K_U32, F(comfyui_ws_silence_ms), 200, 3600000, "75000",
     "WebSocket silent this long: reconnect and reconcile"},
    {"COMFYUI_REQUEST_TIMEOUT_MS", K_U32, F(comfyui_request_timeout_ms), 100, 600000, "30000",
     "one control request to a backend (/prompt, /history, ...)"},
    {"COMFYUI_COLD_PENALTY_MS", K_U32, F(comfyui_cold_penalty_ms), 0, 600000, "2000",
     "routing cost of loading another checkpoint (model affinity)"},
    {"COMFYUI_MAX_ATTEMPTS", K_U32, F(comfyui_max_attempts), 1, 20, "3",
     "attempts per job across backends"},
    {"DATABASE_URL", K_STR, F(database_url), 0, 0, "",
     "sqlite:PATH (default: STORAGE_LOCAL_PATH/comfygate.db)"},
    {"STORAGE_PROVIDER", K_STR, F(storage_provider), 0, 0, "local",
     "where outputs are kept: local, or s3 (an S3-compatible bucket, S3_*)"},
    {"STORAGE_LOCAL_PATH", K_STR, F(storage_local_path), 0, 0, "./data",
     "data directory: database and outputs/<job id>/ (with s3: the staging area)"},
    {"S3_ENDPOINT", K_STR, F(s3_endpoint), 0, 0, "",
     "http(s)://host[:port] of the S3 API (e.g. https://s3.eu-west-1.amazonaws.com)"},
    {"S3_BUCKET", K_STR, F(s3_bucket), 0, 0, "", "bucket outputs are written to"},
    {"S3_REGION", K_STR, F(s3_region), 0, 0, "us-east-1", "region in the SigV4 signature"},
    {"S3_ACCESS_KEY_ID", K_STR, F(s3_access_key_id), 0, 0, "", "access key id"},
    {"S3_SECRET_ACCESS_KEY", K_STR, F(s3_secret_access_key), 0, 0, "", "secret access key"},
    {"S3_SESSION_TOKEN", K_STR, F(s3_session_token), 0, 0, "",
     "session token of temporary credentials (STS), sent as x-amz-security-token"},
    {"S3_PREFIX", K_STR, F(s3_prefix), 0, 0, "outputs/",
     "object keys are <S3_PREFIX><job id>/<file>"},
    {"S3_FORCE_PATH_STYLE", K_BOOL, F(s3_force_path_style), 0, 0, "true",
     "<endpoint>/<bucket>/<key> (MinIO, Ceph); false: <bucket>.<endpoint host>/<key>"},
    {"S3_PUBLIC_URL", K_STR, F(s3_public_url), 0, 0, "",
     "downloads redirect to <S3_PUBLIC_URL>/<key> (a public bucket or CDN) instead of a "
     "presigned URL"},
    {"S3_URL_TTL_SECONDS", K_U32, F(s3_url_ttl_seconds), 1, 604800, "3600",
     "how long a presigned download URL is valid"},
    {"S3_KEEP_LOCAL", K_BOOL, F(s3_keep_local), 0, 0, "true",
     "keep the staged copy after the upload (else base64 answers fetch it back)"},
    {"S3_TIMEOUT_MS", K_U32, F(s3_timeout_ms), 100, 3600000, "120000",
     "one upload or download, whole transfer"},
    {"S3_MAX_ATTEMPTS", K_U32, F(s3_max_attempts), 1, 20, "4",
     "tries per upload (transport errors, 5xx, 408, 429), with backoff"},
    {"S3_FETCHED_KEEP_SECONDS", K_U32, F(s3_fetched_keep_seconds), 1, 604800, "300",
     "S3_KEEP_LOCAL=false: a copy fetched back for a base64 answer is removed after this long "
     "unused"},
    {"WORKFLOWS_DIR", K_STR, F(workflows_dir), 0, 0, "./workflows",
     "bundled workflow templates loaded at start"},
    {"MAX_CONCURRENCY", K_U32, F(max_concurrency), 0, 1000000, "0",
     "jobs this gateway runs at once, over all its backends (0: as many as they take)"},
    {"MAX_QUEUE", K_U64, F(max_queue), 1, 10000000, "10000", "queued jobs, all tenants (429)"},
    {"MAX_QUEUE_PER_TENANT", K_U64, F(max_queue_per_tenant), 1, 10000000, "1000",
     "queued jobs of one tenant (429)"},
    {"MAX_IMAGE_SIZE", K_U64, F(max_image_size), 16, 65536, "2048",
     "largest width/height of any node input"},
    {"MAX_BATCH_SIZE", K_U64, F(max_batch_size), 1, 4096, "8", "largest batch_size input"},
    {"MAX_OUTPUT_BYTES", K_U64, F(max_output_bytes), 1024, 1ull << 40, "1073741824",
     "largest single output file fetched from a backend"},
    {"PRIVACY_MODE", K_BOOL, F(privacy_mode), 0, 0, "false",
     "redact text inputs and drop the graph once a job finishes; strip PNG text chunks"},
    {"CACHE_ENABLED", K_BOOL, F(cache_enabled), 0, 0, "true",
     "identical requests (workflow version + inputs) reuse a finished job's outputs"},
    {"CACHE_TTL_SECONDS", K_U32, F(cache_ttl_seconds), 1, 31536000, "86400",
     "how long a finished job serves cache hits"},
    {"CACHE_SHARED", K_BOOL, F(cache_shared), 0, 0, "false", "cache hits across tenants"},
    {"IDEMPOTENCY_TTL_SECONDS", K_U32, F(idempotency_ttl_seconds), 1, 31536000, "86400",
     "how long an Idempotency-Key is remembered"},
    {"MAX_JOBS_IN_MEMORY", K_U64, F(max_jobs_in_memory), 100, 100000000, "100000",
     "finished jobs kept in memory"},
    {"SHARED_STORE", K_BOOL, F(shared_store), 0, 0, "false",
     "several gateways (serve, worker) share this store: jobs are claimed from it, read from it"},
    {"JOB_LEASE_MS", K_U32, F(job_lease_ms), 1000, 3600000, "20000",
     "SHARED_STORE: a running job whose instance has not renewed it for this long is taken over"},
    {"SHARED_POLL_MS", K_U32, F(shared_poll_ms), 10, 60000, "200",
     "SHARED_STORE: how often an instance with room looks for queued jobs to claim"},
    {"ALLOWED_NODE_CLASSES", K_STR, F(allowed_node_classes), 0, 0, "default",
     "node classes a raw graph (POST /prompt) may use: comma-separated, `default` (ComfyUI's "
     "core model-free and sampling nodes) or `*` (any: trusted deployments)"},
    {"MAX_INPUT_IMAGE_BYTES", K_U64, F(max_input_image_bytes), 1024, 1ull << 32, "33554432",
     "largest input image of a raw graph (inline base64 or fetched URL)"},
    {"INPUT_URL_TIMEOUT_MS", K_U32, F(input_url_timeout_ms), 100, 600000, "30000",
     "fetching one input image URL"},
    {"INPUT_URL_ALLOWED_DOMAINS", K_STR, F(input_url_allowed_domains), 0, 0, "",
     "hosts input-image URLs may reach even on private addresses: example.com, *.example.com, "
     "IPs, CIDRs (comma-separated)"},
    {"API_KEYS", K_STR, F(api_keys), 0, 0, "",
     "key:role[:tenant],... (role admin or user; tenant default key-<key id>); only hashes are kept"},
    {"JWT_SECRET", K_STR, F(jwt_secret), 0, 0, "",
     "HS256 secret (32-512 bytes) for Bearer JWTs: sub is the tenant, role the role (empty: off)"},
    {"JWT_LEEWAY_S", K_U32, F(jwt_leeway_s), 0, 3600, "30", "clock skew allowed for exp, nbf, iat"},
    {"JWT_REQUIRE_EXP", K_BOOL, F(jwt_require_exp), 0, 0, "true", "refuse JWTs without exp"},
    {"JWT_MAX_BYTES", K_U32, F(jwt_max_bytes), 64, 16384, "8192", "longest JWT accepted"},
    {"JWT_AUDIENCE", K_STR, F(jwt_audience), 0, 0, "",
     "aud must contain this (empty: tokens carrying aud are refused)"},
    {"JWT_ISSUER", K_STR, F(jwt_issuer), 0, 0, "", "iss must equal this (empty: not checked)"},
    {"ALLOW_NO_AUTH", K_BOOL, F(allow_no_auth), 0, 0, "false",
     "without API_KEYS/JWT_SECRET, listen on a non-loopback HOST anyway (everyone is admin)"},
    {"RATE_LIMIT_MAX", K_U32, F(rate_limit_max), 0, 1000000, "0",
     "requests per RATE_LIMIT_WINDOW_MS, per API key and per client IP (0: off)"},
    {"RATE_LIMIT_WINDOW_MS", K_U32, F(rate_limit_window_ms), 1, 86400000, "60000",
     "time for an empty bucket to refill"},
    {"RATE_LIMIT_TABLE_SIZE", K_U32, F(rate_limit_table_size), 64, 4194304, "100000",
     "keys and addresses tracked by each limiter; when full, new ones pass untracked"},
    {"CORS_ORIGINS", K_STR, F(cors_origins), 0, 0, "",
     "browser origins allowed: comma-separated, or * (empty: CORS off)"},
    {"CORS_ALLOW_CREDENTIALS", K_BOOL, F(cors_allow_credentials), 0, 0, "false",
     "send Access-Control-Allow-Credentials (not allowed with *)"},
    {"CORS_MAX_AGE_S", K_U32, F(cors_max_age_s), 0, 86400, "600", "preflight cache time"},
    {"WEBHOOK_SECRET", K_STR, F(webhook_secret), 0, 0, "",
     "whsec_<base64 of 24-64 bytes>: signs webhooks (Standard Webhooks); needed for callbackUrl "
     "and webhook_v2"},
    {"WEBHOOK_SECRET_PREVIOUS", K_STR, F(webhook_secret_previous), 0, 0, "",
     "during a rotation: also signs with this one"},
    {"WEBHOOK_ALLOWED_DOMAINS", K_STR, F(webhook_allowed_domains), 0, 0, "",
     "hosts webhooks may reach even on private addresses: example.com, *.example.com, IPs, CIDRs"},
    {"WEBHOOK_MAX_ATTEMPTS", K_U32, F(webhook_max_attempts), 1, 100, "8",
     "attempts per event before it is marked failed"},
    {"WEBHOOK_RETRY_BASE_MS", K_U32, F(webhook_retry_base_ms), 1, 3600000, "1000",
     "first retry back-off (doubling, full jitter)"},
    {"WEBHOOK_RETRY_MAX_MS", K_U32, F(webhook_retry_max_ms), 1, 86400000, "3600000",
     "longest back-off, and cap on Retry-After"},
    {"WEBHOOK_TIMEOUT_MS", K_U32, F(webhook_timeout_ms), 100, 300000, "10000",
     "one delivery attempt, connect to last byte"},
    {"WEBHOOK_MAX_INFLIGHT", K_U32, F(webhook_max_inflight), 1, 10000, "64",
     "deliveries at once"},
    {"WEBHOOK_MAX_INFLIGHT_PER_HOST", K_U32, F(webhook_max_inflight_per_host), 1, 10000, "16",
     "deliveries at once to one receiver (scheme://host:port)"},
    {"WEBHOOK_MAX_PENDING", K_U32, F(webhook_max_pending), 1, 1000000, "10000",
     "undelivered events held in memory"},
    {"WEBHOOK_INLINE_MAX_BYTES", K_U64, F(webhook_inline_max_bytes), 0, 1ull << 30, "8388608",
     "prompt.complete carries the images as base64 up to this total (then URLs only)"},
};

#define NSETTINGS (sizeof(settings) / sizeof(settings[0]))

static int parse_bool(const char *v, bool *out)
{
    if (!strcasecmp(v, "true") || !strcmp(v, "1") || !strcasecmp(v, "yes") || !strcasecmp(v, "on"))
        *out = true;
    else if (!strcasecmp(v, "false") || !strcmp(v, "0") || !strcasecmp(v, "no") ||
             !strcasecmp(v, "off"))
        *out = false;
    else
        return -1;
    return 0;
}

static int apply(struct config *c, const struct setting *s, const char *v, FILE *err)
{
    char *base = (char *)c + s->off;
    if (s->kind == K_STR) {
        if (strlen(v) >= s->size) {
            fprintf(err, "comfygate: %s is too long (at most %zu bytes)\n", s->name, s->size - 1);
            return -1;
        }
        memcpy(base, v, strlen(v) + 1);
        return 0;
    }
    if (s->kind == K_BOOL) {
        if (parse_bool(v, (bool *)base) < 0) {
            fprintf(err, "comfygate: %s must be true or false, got \"%s\"\n", s->name, v);
            return -1;
        }
        return 0;
    }
    if (s->kind == K_LEVEL) {
        int l = log_level_parse(v);
        if (l < 0) {
            fprintf(err, "comfygate: %s must be debug, info, warn, error or off, got \"%s\"\n",
                    s->name, v);
            return -1;
        }
        *(int *)base = l;
        return 0;
    }
    char *end;
    errno = 0;
    unsigned long long n = strtoull(v, &end, 10);
    if (!isdigit((unsigned char)v[0]) || *end || errno || n < s->min || n > s->max) {
        fprintf(err, "comfygate: %s must be a whole number from %llu to %llu, got \"%s\"\n",
                s->name, (unsigned long long)s->min, (unsigned long long)s->max, v);
        return -1;
    }
    if (s->kind == K_U32)
        *(uint32_t *)base = (uint32_t)n;
    else
        *(uint64_t *)base = (uint64_t)n;
    return 0;
}

int config_set(struct config *c, const char *name, const char *value, FILE *err)
{
    for (size_t i = 0; i < NSETTINGS; i++) {
        if (strcmp(settings[i].name, name) == 0)
            return apply(c, &settings[i], value, err);
    }
    fprintf(err, "comfygate: unknown setting %s\n", name);
    return -1;
}

/* An object key prefix: the key is signed and sent as is, so no segment may be rewritten on
 * the way (".", ".."), and none may start at the root. */
static bool s3_prefix_ok(const char *p)
{
    if (p[0] == '/')
        return false;
    for (const char *q = p; *q; q++) {
        if ((unsigned char)*q < 0x20 || *q == 0x7f || *q == '\\')
            return false;
    }
    for (const char *seg = p; *seg;) {
        size_t n = strcspn(seg, "/");
        if ((n == 1 && seg[0] == '.') || (n == 2 && seg[0] == '.' && seg[1] == '.'))
            return false;
        seg += n + (seg[n] == '/');
    }
    return true;
}

static int check(const struct config *c, FILE *err)
{
    bool s3 = !strcmp(c->storage_provider, "s3");
    if (!s3 && strcmp(c->storage_provider, "local") != 0) {
        fprintf(err, "comfygate: STORAGE_PROVIDER must be local or s3, got \"%s\"\n",
                c->storage_provider);
        return -1;
    }
    if (s3 && (!c->s3_endpoint[0] || !c->s3_bucket[0] || !c->s3_access_key_id[0] ||
               !c->s3_secret_access_key[0])) {
        fprintf(err, "comfygate: STORAGE_PROVIDER=s3 needs S3_ENDPOINT, S3_BUCKET, "
                     "S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY\n");
        return -1;
    }
    size_t bl = strlen(c->s3_bucket);
    bool bucket_ok = bl >= 3 && bl <= 63 && c->s3_bucket[0] != '.' && c->s3_bucket[0] != '-' &&
                     strspn(c->s3_bucket, "abcdefghijklmnopqrstuvwxyz0123456789.-") == bl;
    if (s3 && !bucket_ok) {
        fprintf(err, "comfygate: S3_BUCKET must be 3-63 characters of a-z, 0-9, '.' and '-', got "
                     "\"%s\"\n", c->s3_bucket);
        return -1;
    }
    if (s3 && !s3_prefix_ok(c->s3_prefix)) {
        fprintf(err, "comfygate: S3_PREFIX must not start with '/', hold \".\" or \"..\" segments "
                     "or control characters, got \"%s\"\n", c->s3_prefix);
        return -1;
    }
    if (s3 && strncmp(c->s3_endpoint, "http://", 7) && strncmp(c->s3_endpoint, "https://", 8)) {
        fprintf(err, "comfygate: S3_ENDPOINT must start with http:// or https://, got \"%s\"\n",
                c->s3_endpoint);
        return -1;
    }
    if (c->database_url[0] && strncmp(c->database_url, "sqlite:", 7) != 0) {
        fprintf(err, "comfygate: DATABASE_URL must be sqlite:PATH (PostgreSQL is not supported "
                     "yet), got \"%s\"\n", c->database_url);
        return -1;
    }
    if (!c->tls_cert_file[0] != !c->tls_key_file[0]) {
        bool cert = c->tls_cert_file[0] != '\0';
        fprintf(err, "comfygate: TLS_CERT_FILE and TLS_KEY_FILE go together: %s is set, %s is not\n",
                cert ? "TLS_CERT_FILE" : "TLS_KEY_FILE", cert ? "TLS_KEY_FILE" : "TLS_CERT_FILE");
        return -1;
    }
    if (c->recv_buffers & (c->recv_buffers - 1)) {
        fprintf(err, "comfygate: RECV_BUFFERS must be a power of two, got %u\n", c->recv_buffers);
        return -1;
    }
    return 0;
}

/* KEY=VALUE lines; '#' comments; optional surrounding quotes; real environment wins. */
static const struct setting *setting_named(const char *name)
{
    for (size_t i = 0; i < NSETTINGS; i++) {
        if (!strcmp(settings[i].name, name))
            return &settings[i];
    }
    return NULL;
}

/* The value after '=': "quoted" or 'quoted' (what follows the closing quote is ignored), or
 * bare, up to a comment (" #..."), trimmed. NULL if a quote is not closed. */
static char *env_value(char *v)
{
    size_t vl = strcspn(v, "\r\n");
    v[vl] = '\0';
    while (*v == ' ' || *v == '\t')
        v++;
    if (*v == '"' || *v == '\'') {
        char *end = strchr(v + 1, *v);
        if (!end)
            return NULL;
        *end = '\0';
        return v + 1;
    }
    for (char *c = v; *c; c++) {
        if (*c == '#' && (c == v || c[-1] == ' ' || c[-1] == '\t')) {
            *c = '\0';
            break;
        }
    }
    size_t n = strlen(v);
    while (n && (v[n - 1] == ' ' || v[n - 1] == '\t'))
        v[--n] = '\0';
    return v;
}

/* KEY=VALUE lines (an "export " before the key is allowed; # comments). The real environment
 * wins over the file; within the file the last line of a key wins, as with other dotenv
 * readers. A key that names no setting is warned about (a typo would otherwise do nothing).
 * required: a file named with --env-file must exist. */
static int load_env_file(const char *path, bool required, FILE *err)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        if (!required && errno == ENOENT)
            return 0;
        fprintf(err, "comfygate: --env-file %s: %s\n", path, strerror(errno));
        return -1;
    }
    char line[4096], *from_file[NSETTINGS];
    size_t nfrom = 0;
    int lineno = 0, rc = 0;
    while (rc == 0 && fgets(line, sizeof(line), f)) {
        lineno++;
        char *p = line;
        while (isspace((unsigned char)*p))
            p++;
        if (*p == '#' || *p == '\0')
            continue;
        if (!strncmp(p, "export ", 7))
            p += 7;
        char *eq = strchr(p, '=');
        char *v = eq ? env_value(eq + 1) : NULL;
        if (!v) {
            fprintf(err, "comfygate: %s:%d: expected KEY=VALUE%s\n", path, lineno,
                    eq ? " (a quote is not closed)" : "");
            rc = -1;
            break;
        }
        *eq = '\0';
        char *k = p, *ke = eq;
        while (ke > k && isspace((unsigned char)ke[-1]))
            *--ke = '\0';
        const struct setting *s = setting_named(k);
        if (!s) {
            fprintf(err, "comfygate: %s:%d: warning: %s is not a setting (see `comfygate "
                         "config`), ignored\n", path, lineno, k);
            continue;
        }
        bool ours = false;
        for (size_t i = 0; i < nfrom; i++)
            ours |= from_file[i] == s->name;
        if (!ours && getenv(k))
            continue; /* set in the real environment */
        if (!ours)
            from_file[nfrom++] = (char *)s->name;
        setenv(k, v, 1);
    }
    fclose(f);
    return rc;
}

int config_load(struct config *c, const char *env_file, bool env_file_required, FILE *err)
{
    memset(c, 0, sizeof(*c));
    for (size_t i = 0; i < NSETTINGS; i++) {
        if (apply(c, &settings[i], settings[i].def, err) < 0)
            return -1;
    }
    if (env_file && load_env_file(env_file, env_file_required, err) < 0)
        return -1;
    for (size_t i = 0; i < NSETTINGS; i++) {
        const char *v = getenv(settings[i].name);
        if (v && apply(c, &settings[i], v, err) < 0)
            return -1;
    }
    return check(c, err);
}

void config_print_table(FILE *out)
{
    fprintf(out, "| variable | default | meaning |\n| --- | --- | --- |\n");
    for (size_t i = 0; i < NSETTINGS; i++)
        fprintf(out, "| `%s` | `%s` | %s |\n", settings[i].name, settings[i].def,
                settings[i].help);
}
