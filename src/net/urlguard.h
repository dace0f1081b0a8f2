/* urlguard — SSRF defences for every outbound request to a URL a user gave us (webhook
 * callbackUrl, input images fetched by URL).
 *
 * Three layers, each the backstop of the one before:
 *   1. urlguard_precheck() at request validation time: a strict URL parse (curl's URL API, then
 *      our rules) and, when the host is an IP literal, its classification. No DNS here: a
 *      reactor thread must never block in getaddrinfo.
 *   2. A header callback that checks every redirect's Location the same way before curl
 *      follows it, so a refused redirect has a precise reason.
 *   3. An open-socket callback that classifies the address curl is about to connect to, for
 *      every connection, after every redirect and whatever DNS answered this time (rebinding),
 *      and a pre-request callback that checks the address of the connection each request
 *      actually goes out on, since a multi handle's pool may hand over a keep-alive connection
 *      another transfer opened. These are the checks that matter; the others only refuse
 *      earlier and explain better.
 *
 * Blocked: loopback, private, CGNAT, link-local (cloud metadata), documentation, benchmarking,
 * multicast, reserved, and IPv6 forms embedding any of those (IPv4-mapped, NAT64, 6to4). A host
 * on the allowlist may reach any address; every other host must resolve to public addresses
 * only. The allowlist is matched against the URL's host, never against resolved addresses: an
 * entry "127.0.0.1" allows http://127.0.0.1/, not a name that resolves there.
 *
 * struct urlguard is built once from configuration and shared read-only by every thread; a
 * struct urlguard_ctx lives with one transfer and records why it was refused. */
#ifndef COMFYGATE_URLGUARD_H
#define COMFYGATE_URLGUARD_H

#include <curl/curl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define URLGUARD_URL_CAP 4096         /* buffer for a normalized URL, NUL included */
#define URLGUARD_DEFAULT_MAX_URL 2048 /* default limit on a URL's length */
#define URLGUARD_HOST_CAP 256         /* a DNS name is at most 253 characters */
#define URLGUARD_ALLOW_MAX 64         /* allowlist entries */
#define URLGUARD_ALLOW_SPEC_MAX 8192  /* allowlist setting length */
#define URLGUARD_REASON_CAP 384

enum urlguard_rc {
    URLGUARD_OK = 0,
    URLGUARD_BAD_URL,           /* malformed, or a form we refuse (scheme, userinfo, length) */
    URLGUARD_BLOCKED,           /* the destination is not public and the host not allowlisted */
    URLGUARD_TOO_BIG,           /* the response body exceeded max_bytes */
    URLGUARD_TOO_MANY_REDIRECTS /* more than max_redirects */
};
/* The API error code for rc: "OK", "INVALID_URL", "SSRF_BLOCKED", "RESPONSE_TOO_LARGE",
 * "TOO_MANY_REDIRECTS". */
const char *urlguard_rc_name(enum urlguard_rc rc);

/* A URL that passed urlguard_parse_url(). */
struct urlguard_url {
    char url[URLGUARD_URL_CAP];   /* as curl normalized it: give this to CURLOPT_URL */
    char scheme[8];               /* "http" or "https" */
    char host[URLGUARD_HOST_CAP]; /* lowercase, no brackets, no trailing dot */
    uint16_t port;                /* explicit, or the scheme's default */
    bool host_is_ip;              /* then addr holds it (decimal/hex/octal IPv4 normalized) */
    struct sockaddr_storage addr; /* port not set */
};

/* Strict parse: http/https only (any case), no userinfo, a host, IPv6 literals in brackets and
 * without a zone, port 1-65535, at most max_len characters of printable ASCII (no spaces,
 * controls or raw UTF-8: percent-encode), a DNS name of letters, digits, '-', '_' and dots whose
 * last label is not numeric. URLGUARD_OK or URLGUARD_BAD_URL with a message in err. */
enum urlguard_rc urlguard_parse_url_max(const char *url, size_t max_len, struct urlguard_url *out,
                                        char *err, size_t errlen);
/* The same with max_len URLGUARD_DEFAULT_MAX_URL. */
enum urlguard_rc urlguard_parse_url(const char *url, struct urlguard_url *out, char *err,
                                    size_t errlen);

/* NULL if sa is a public unicast address we may connect to; otherwise why not, a static phrase
 * such as "a loopback address" or, for IPv6 forms embedding an IPv4 address, "an IPv4-mapped
 * loopback address". Families other than AF_INET and AF_INET6 are blocked. */
const char *urlguard_addr_blocked(const struct sockaddr *sa, socklen_t len);

struct urlguard_allow {
    uint8_t kind; /* enum allow_kind in urlguard.c */
    uint8_t prefix;
    uint8_t addr[16];
    char name[URLGUARD_HOST_CAP]; /* lowercase; for "*.example.com", "example.com" */
};

struct urlguard_allowlist {
    struct urlguard_allow e[URLGUARD_ALLOW_MAX];
    unsigned n;
};

/* Parses "example.com,*.example.com,127.0.0.1,10.0.0.0/8,::1,fd00::/8" (spaces around entries
 * and empty entries ignored; names case-insensitive, one trailing dot ignored; a CIDR must not
 * have host bits set). NULL or "" is the empty list. 0, or -EINVAL with a message in err. */
int urlguard_allowlist_parse(struct urlguard_allowlist *al, const char *spec, char *err,
                             size_t errlen);
/* Whether a URL host (any case, brackets and one trailing dot allowed) is on the list: a name
 * by exact or wildcard entries (a wildcard matches subdomains at any depth, not the domain
 * itself), an IP literal by IP and CIDR entries of its family. */
bool urlguard_allowlist_match(const struct urlguard_allowlist *al, const char *host);

/* Settings of one use (webhooks, input images); see urlguard_config_defaults(). */
struct urlguard_config {
    const char *allowed;         /* allowlist, see urlguard_allowlist_parse() */
    uint32_t max_url_len;        /* 16 .. URLGUARD_URL_CAP - 1 */
    bool follow_redirects;       /* false for webhooks */
    uint32_t max_redirects;      /* when following: 1 .. 20 */
    uint64_t max_bytes;          /* response body limit, >= 1 */
    uint32_t timeout_ms;         /* whole transfer, >= 1 */
    uint32_t connect_timeout_ms; /* each connect, >= 1 */
};

/* max_url_len 2048, no redirects (max 3 when enabled), 10 MiB, 30 s, connect 10 s, no
 * allowlist. */
void urlguard_config_defaults(struct urlguard_config *c);

/* Immutable after urlguard_init(); shared read-only. */
struct urlguard {
    struct urlguard_allowlist allow;
    uint32_t max_url_len;
    bool follow_redirects;
    uint32_t max_redirects;
    uint64_t max_bytes;
    uint32_t timeout_ms;
    uint32_t connect_timeout_ms;
};

/* 0, or -EINVAL with a message in err (bad allowlist, value out of range). */
int urlguard_init(struct urlguard *g, const struct urlguard_config *c, char *err, size_t errlen);

/* Request validation (POST /jobs): parses url into out and, when its host is an IP literal
 * that is not allowlisted, classifies it; "localhost" and "*.localhost" are refused here too.
 * DNS names are not resolved: the connect-time check covers them. URLGUARD_OK, BAD_URL or
 * BLOCKED with a message in err ("127.0.0.1 is a loopback address"). */
enum urlguard_rc urlguard_precheck(const struct urlguard *g, const char *url,
                                   struct urlguard_url *out, char *err, size_t errlen);

/* One transfer's guard state; embedded in the transfer's owner, alive until curl is done. */
struct urlguard_ctx {
    curl_write_callback sink; /* receives the body (NULL: discarded) */
    void *sink_data;
    const struct urlguard *g;
    CURL *easy;
    uint64_t bytes;                   /* body bytes passed to sink */
    enum urlguard_rc rc;              /* the first refusal */
    char reason[URLGUARD_REASON_CAP]; /* its message, "" while rc is URLGUARD_OK */
};

/* sink has CURLOPT_WRITEFUNCTION's contract, CURL_WRITEFUNC_PAUSE included. */
void urlguard_ctx_init(struct urlguard_ctx *ctx, curl_write_callback sink, void *sink_data);

/* Configures easy (whose CURLOPT_URL the caller sets, normally to urlguard_url.url) so that the
 * guard holds for every connection it opens: protocols http/https (redirects too), the
 * open-socket check, redirects per g, body limit, timeouts, no proxy whatever the environment.
 * Takes CURLOPT_OPENSOCKETFUNCTION, PREREQFUNCTION, WRITEFUNCTION, HEADERFUNCTION and their
 * data: the caller must not set them afterwards (nor CURLOPT_PROXY, CONNECT_TO, RESOLVE or
 * FOLLOWLOCATION). A refused connection fails with CURLE_COULDNT_CONNECT (new) or
 * CURLE_ABORTED_BY_CALLBACK (reused), a refused redirect or body with CURLE_WRITE_ERROR; ctx
 * says why. 0, or -EINVAL if curl refused an option. */
int urlguard_curl_apply(CURL *easy, const struct urlguard *g, struct urlguard_ctx *ctx);

/* After the transfer: records refusals curl itself detected (Content-Length over the limit,
 * too many redirects) unless one was already recorded. Returns ctx->rc. A refusal of one of a
 * name's addresses is forgotten once curl went on with another, allowed one. */
enum urlguard_rc urlguard_ctx_finish(struct urlguard_ctx *ctx, CURLcode rc);

/* "SSRF_BLOCKED: 127.0.0.1 is a loopback address" for a refusal, else curl's message for rc,
 * else "" for success. */
void urlguard_ctx_message(const struct urlguard_ctx *ctx, CURLcode rc, char *buf, size_t n);

#endif
