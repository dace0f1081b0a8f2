/* cors — Cross-Origin Resource Sharing, per the Fetch standard's CORS protocol.
 *
 * Configuration (CORS_ORIGINS, CORS_ALLOW_CREDENTIALS, CORS_MAX_AGE_S) is parsed once by
 * cors_parse into a struct cors_config that is then immutable and shared read-only. For each
 * request the HTTP layer asks cors_actual (any request) or cors_preflight (OPTIONS with Origin
 * and Access-Control-Request-Method) for the response headers to add; both fill caller memory
 * and never allocate.
 *
 * What reaches a response is never the client's bytes: an allowed origin is answered with the
 * configured (normalized) copy, requested header names with this module's own spelling, so no
 * header value can carry anything a client injected. The Origin and
 * Access-Control-Request-Headers values are untrusted input (fuzzed: fuzz/fuzz_cors.c). */
#ifndef COMFYGATE_GUARD_CORS_H
#define COMFYGATE_GUARD_CORS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CORS_MAX_ORIGINS 64
/* "https://" + a 253-byte host name + ":65535" + NUL */
#define CORS_ORIGIN_MAX 272
/* Access-Control-Request-Headers longer than this is refused, not parsed. */
#define CORS_REQUEST_HEADERS_MAX 1024
#define CORS_MAX_AGE_MAX 86400
/* Room for every allowed request header name, joined by ", ". */
#define CORS_ALLOW_HEADERS_MAX 192
#define CORS_MAX_HEADERS 6

struct cors_origin {
    uint16_t len;
    char s[CORS_ORIGIN_MAX]; /* scheme://host[:port], lower case, no default port */
};

struct cors_config {
    bool any;         /* CORS_ORIGINS=*: every origin, answered with "*" */
    bool credentials; /* CORS_ALLOW_CREDENTIALS */
    uint32_t max_age_s;
    char max_age[12]; /* max_age_s, formatted once */
    unsigned norigins;
    struct cors_origin origins[CORS_MAX_ORIGINS];
};

/* origins: "" (CORS off: no CORS headers ever), "*", or a comma-separated list of origins
 * (scheme://host[:port], scheme http or https; spaces around entries are ignored; "null"
 * only when listed literally). Entries are normalized to what a browser sends: scheme and host
 * lower case, an IPv6 host as the URL standard writes it ([::1]), the default port (80, 443)
 * dropped; duplicates merged. Fails with -EINVAL and a one-line message
 * in err ("CORS_ORIGINS: ...") on anything else: a path or trailing slash, another scheme,
 * user info, a query, a wildcard subdomain, a non-ASCII host, a bad port, an empty entry, more
 * than CORS_MAX_ORIGINS entries, "*" with credentials, or max_age_s above CORS_MAX_AGE_MAX. */
int cors_parse(struct cors_config *cfg, const char *origins, bool credentials, uint32_t max_age_s,
               char *err, size_t errcap);

/* True if CORS is on (CORS_ORIGINS not empty). */
bool cors_enabled(const struct cors_config *cfg);
/* Whether a request's Origin value (not NUL-terminated) may read responses: listed (scheme and
 * host compared without regard to case, the port exactly), or anything non-empty under "*". */
bool cors_origin_allowed(const struct cors_config *cfg, const char *origin, size_t len);

enum cors_verdict {
    CORS_NONE,           /* CORS off, or no Origin header: nothing cross-origin to answer */
    CORS_ALLOWED,        /* add the headers; a preflight is answered 204 */
    CORS_DENIED_ORIGIN,  /* the origin is not allowed */
    CORS_DENIED_METHOD,  /* preflight: Access-Control-Request-Method not allowed */
    CORS_DENIED_HEADERS, /* preflight: a requested header not allowed, or the list too long */
};
const char *cors_verdict_name(enum cors_verdict v);

struct cors_header {
    const char *name;
    const char *value; /* static strings, the config's origin, or out->allow_headers */
};
struct cors_headers {
    unsigned n;
    struct cors_header h[CORS_MAX_HEADERS];
    char allow_headers[CORS_ALLOW_HEADERS_MAX];
};

/* Headers for any response to a request with the given Origin (NULL or length 0: none).
 * Allowed: Access-Control-Allow-Origin (the origin, or "*" under the wildcard),
 * Access-Control-Allow-Credentials: true when configured, Access-Control-Expose-Headers.
 * With a list of origins the answer depends on Origin, so "Vary: Origin" is added to every
 * response, allowed or not, with or without Origin: a shared cache must not hand one origin's
 * answer (or an answer without CORS headers) to another. The headers stay valid as long as
 * cfg and out. */
enum cors_verdict cors_actual(const struct cors_config *cfg, const char *origin, size_t len,
                              struct cors_headers *out);

/* A preflight: OPTIONS with Origin and Access-Control-Request-Method (the caller checks all
 * three; an OPTIONS without them is an ordinary request). req_headers is the
 * Access-Control-Request-Headers value (NULL: absent): names separated by commas and/or
 * spaces, any case; each must be one this API reads. Allowed: Access-Control-Allow-Origin,
 * -Credentials as for cors_actual, -Allow-Methods, -Allow-Headers (the requested names, when
 * any), -Max-Age; answer 204. Denied: only Vary. Recommended answer to a denied preflight:
 * 204 with no CORS headers, as to one with CORS off; the browser then refuses the real request
 * and says why in its console, and the verdict's name belongs in the access log. */
enum cors_verdict cors_preflight(const struct cors_config *cfg, const char *origin, size_t olen,
                                 const char *method, size_t mlen, const char *req_headers,
                                 size_t hlen, struct cors_headers *out);

#endif
