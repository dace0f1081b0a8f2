/* config — every setting, from the environment (and an optional .env file), validated once at
 * start-up and then immutable, shared read-only by all threads.
 *
 * Settings are described by one table (config.c) that drives parsing, defaults, range checks
 * and the `comfygate config` listing, so the README table and the code cannot drift apart. A
 * bad value is an error with a clear message (exit 2), never a silent default. */
#ifndef COMFYGATE_CONFIG_H
#define COMFYGATE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct config {
    char host[256];
    uint32_t port;
    char port_file[1024];
    uint32_t threads;
    int log_level;
    bool access_log;
    uint64_t max_url_bytes;
    uint64_t max_header_bytes;
    uint64_t max_header_count;
    uint64_t max_body_bytes;
    uint32_t header_timeout_ms;
    uint32_t body_timeout_ms;
    uint32_t idle_timeout_ms;
    uint32_t send_timeout_ms;
    uint32_t linger_ms;
    uint32_t shutdown_timeout_ms;
    uint64_t max_connections;
    uint64_t max_out_bytes;
    uint64_t send_zc_threshold;
    uint64_t pipe_size;
    uint32_t recv_buffers;
    uint32_t recv_buffer_size;
    char tls_cert_file[1024];
    char tls_key_file[1024];
    uint64_t tls_session_cache_bytes;
    char static_dir[1024];
    char comfyui_url[1024];
    char comfyui_urls[8192];
    uint32_t comfyui_timeout_ms;
    uint32_t comfyui_probe_interval_ms;
    uint32_t comfyui_poll_ms;
    uint32_t comfyui_ws_ping_ms;
    uint32_t comfyui_ws_silence_ms;
    uint32_t comfyui_request_timeout_ms;
    uint32_t comfyui_cold_penalty_ms;
    uint32_t comfyui_max_attempts;
    char database_url[1024];
    char storage_provider[16];
    char storage_local_path[1024];
    /* STORAGE_PROVIDER=s3 (src/store/storage_s3.c) */
    char s3_endpoint[512];
    char s3_bucket[64];
    char s3_region[64];
    char s3_access_key_id[129];
    char s3_secret_access_key[257];
    char s3_session_token[4096];
    char s3_prefix[256];
    bool s3_force_path_style;
    char s3_public_url[1024];
    uint32_t s3_url_ttl_seconds;
    bool s3_keep_local;
    uint32_t s3_timeout_ms;
    uint32_t s3_max_attempts;
    uint32_t s3_fetched_keep_seconds;
    char workflows_dir[1024];
    uint32_t max_concurrency;
    uint64_t max_queue;
    uint64_t max_queue_per_tenant;
    uint64_t max_image_size;
    uint64_t max_batch_size;
    uint64_t max_output_bytes;
    uint64_t max_jobs_in_memory;
    bool shared_store;
    uint32_t job_lease_ms;
    uint32_t shared_poll_ms;
    char allowed_node_classes[8192];
    uint64_t max_input_image_bytes;
    uint32_t input_url_timeout_ms;
    /* who may call (src/auth) */
    char api_keys[65536];
    char jwt_secret[520];
    uint32_t jwt_leeway_s;
    bool jwt_require_exp;
    uint32_t jwt_max_bytes;
    char jwt_audience[256];
    char jwt_issuer[256];
    bool allow_no_auth;
    /* abuse (src/guard) */
    uint32_t rate_limit_max;
    uint32_t rate_limit_window_ms;
    uint32_t rate_limit_table_size;
    char cors_origins[4096];
    bool cors_allow_credentials;
    uint32_t cors_max_age_s;
    /* outbound requests to user-supplied URLs (src/net) */
    char webhook_allowed_domains[8192];
    /* webhooks (src/webhook) */
    char webhook_secret[160];
    char webhook_secret_previous[160];
    uint32_t webhook_max_attempts;
    uint32_t webhook_retry_base_ms;
    uint32_t webhook_retry_max_ms;
    uint32_t webhook_timeout_ms;
    uint32_t webhook_max_inflight;
    uint32_t webhook_max_inflight_per_host;
    uint32_t webhook_max_pending;
    uint64_t webhook_inline_max_bytes;
    char input_url_allowed_domains[8192];
    bool privacy_mode;
    bool cache_enabled;
    bool cache_shared;
    uint32_t cache_ttl_seconds;
    uint32_t idempotency_ttl_seconds;
};

/* Loads defaults, then KEY=VALUE lines of env_file (variables already in the environment win;
 * a missing file is an error only if env_file_required), then the environment. On error writes
 * a message to err and returns -1. */
int config_load(struct config *c, const char *env_file, bool env_file_required, FILE *err);
/* Sets one setting by its variable name (also used for command-line flags). */
int config_set(struct config *c, const char *name, const char *value, FILE *err);
/* Prints the table of settings: name, default, meaning. */
void config_print_table(FILE *out);

#endif
