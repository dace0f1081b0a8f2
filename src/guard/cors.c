/* cors — see cors.h. */
#include "guard/cors.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* Response headers a script on an allowed origin may read (the rest stay hidden by the
 * browser): what this API's clients act on. */
static const char expose_headers[] =
    "X-Request-Id, Location, Retry-After, RateLimit-Limit, RateLimit-Remaining, "
    "RateLimit-Reset, Idempotency-Replayed, ETag, Content-Range, Content-Disposition";

static const char allow_methods[] = "GET, HEAD, POST, PUT, DELETE";

/* Request headers this API reads. A preflight asking for any other is refused rather than
 * allowed blindly, so a page cannot send headers the gateway never expected from a browser. */
static const char *const request_headers[] = {
    "Authorization", "X-API-Key", "Content-Type",  "Idempotency-Key", "X-Request-Id",
    "Last-Event-ID", "Range",     "If-None-Match", "If-Range",
};
#define NREQUEST_HEADERS (sizeof(request_headers) / sizeof(request_headers[0]))

/* --- ASCII helpers (locale-independent) ---------------------------------------------------- */

static char lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

static bool eq_nocase(const char *a, const char *b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (lower(a[i]) != lower(b[i]))
            return false;
    }
    return true;
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool is_name_char(char c)
{
    return is_digit(c) || (lower(c) >= 'a' && lower(c) <= 'z') || c == '-' || c == '.';
}

/* --- parsing the configuration ------------------------------------------------------------- */

/* Writes `CORS_ORIGINS: "<entry>" is not an origin: <why>` and returns -EINVAL. A long entry
 * is cut short so that the reason fits in a modest buffer. */
static int bad_entry(char *err, size_t cap, const char *p, size_t n, const char *why)
{
    snprintf(err, cap, "CORS_ORIGINS: \"%.*s%s\" is not an origin: %s", (int)(n > 80 ? 80 : n), p,
             n > 80 ? "..." : "", why);
    return -EINVAL;
}

/* A host name or IPv4 address: dot-separated non-empty labels of letters, digits and '-'. */
static const char *host_name_error(const char *h, size_t n)
{
    if (n > 253)
        return "the host name is longer than 253 bytes";
    for (size_t i = 0; i < n; i++) {
        if (h[i] == '*')
            return "wildcard subdomains are not supported; list each origin";
        if ((unsigned char)h[i] >= 0x80)
            return "write a non-ASCII host name in its xn-- (punycode) form";
        if (!is_name_char(h[i]))
            return "invalid character in the host";
        if (h[i] == '.' && (i == 0 || i == n - 1 || h[i - 1] == '.'))
            return "empty label in the host name";
    }
    return NULL;
}

/* Writes a as the URL standard serializes an IPv6 host, which is what a browser puts in Origin:
 * lower-case hex pieces without leading zeros, the first longest run of two or more zero
 * pieces written "::", never a dotted IPv4 tail (unlike inet_ntop). */
static void ipv6_serialize(const struct in6_addr *a, char *out, size_t cap)
{
    unsigned piece[8];
    int best = -1, best_len = 1, len = 0;
    for (int i = 0; i < 8; i++) {
        piece[i] = (unsigned)a->s6_addr[2 * i] << 8 | a->s6_addr[2 * i + 1];
        len = piece[i] ? 0 : len + 1;
        if (len > best_len) {
            best = i - len + 1;
            best_len = len;
        }
    }
    size_t o = 0;
    for (int i = 0; i < 8; i++) {
        if (i == best) {
            o += (size_t)snprintf(out + o, cap - o, "%s", i == 0 ? "::" : ":");
            i += best_len - 1;
            continue;
        }
        o += (size_t)snprintf(out + o, cap - o, "%x%s", piece[i], i < 7 ? ":" : "");
    }
}

/* "[v6]": the address between the brackets must parse; out gets its serialized form. */
static const char *ipv6_host(const char *h, size_t n, char *out, size_t cap)
{
    char text[INET6_ADDRSTRLEN + 8];
    struct in6_addr a;
    if (n < 3 || n - 2 >= sizeof(text))
        return "bad IPv6 address";
    memcpy(text, h + 1, n - 2);
    text[n - 2] = '\0';
    if (inet_pton(AF_INET6, text, &a) != 1)
        return "bad IPv6 address";
    out[0] = '[';
    ipv6_serialize(&a, out + 1, cap - 2);
    strcat(out, "]");
    return NULL;
}

/* ":port" or nothing; *port is 0 when absent. */
static const char *port_error(const char *p, size_t n, unsigned *port)
{
    *port = 0;
    if (n == 0)
        return NULL;
    if (n == 1)
        return "empty port";
    unsigned v = 0;
    for (size_t i = 1; i < n; i++) {
        if (!is_digit(p[i]) || i > 5)
            return "the port must be a number from 1 to 65535";
        v = v * 10 + (unsigned)(p[i] - '0');
    }
    if (v == 0 || v > 65535)
        return "the port must be a number from 1 to 65535";
    *port = v;
    return NULL;
}

/* Splits "host[:port]" (no '/', '?', '#', '@' left) and checks both halves; host gets the
 * host in its normalized form (cap: CORS_ORIGIN_MAX). */
static const char *authority_error(const char *h, size_t n, char *host, unsigned *port)
{
    size_t hl = 0;
    if (n && h[0] == '[') {
        const char *close = memchr(h, ']', n);
        if (!close)
            return "unclosed IPv6 address";
        hl = (size_t)(close - h) + 1;
    } else {
        while (hl < n && h[hl] != ':')
            hl++;
    }
    if (hl == 0)
        return "no host";
    if (hl < n && h[hl] != ':')
        return "unexpected characters after the host";
    const char *why;
    if (h[0] == '[') {
        why = ipv6_host(h, hl, host, CORS_ORIGIN_MAX);
    } else {
        why = host_name_error(h, hl);
        for (size_t i = 0; i < hl && !why; i++)
            host[i] = lower(h[i]);
        host[hl] = '\0';
    }
    return why ? why : port_error(h + hl, n - hl, port);
}

static const char *shape_error(const char *p, size_t n, const char **host)
{
    const char *sep = memmem(p, n, "://", 3);
    if (!sep)
        return "expected scheme://host[:port]";
    *host = sep + 3;
    size_t rest = n - (size_t)(*host - p);
    for (size_t i = 0; i < rest; i++) {
        char c = (*host)[i];
        if (c == '/' && i == rest - 1)
            return "remove the trailing slash (an origin has no path)";
        if (c == '/' || c == '?' || c == '#')
            return "an origin has no path, query or fragment";
        if (c == '@')
            return "an origin has no user info";
        if ((unsigned char)c <= ' ' || c == 0x7f)
            return "space or control character";
    }
    return NULL;
}

/* One list entry (trimmed, not "*") into its normalized form. */
static int parse_origin(const char *p, size_t n, struct cors_origin *o, char *err, size_t cap)
{
    if (n == 4 && eq_nocase(p, "null", 4)) {
        o->len = (uint16_t)snprintf(o->s, sizeof(o->s), "null");
        return 0;
    }
    if (n >= CORS_ORIGIN_MAX)
        return bad_entry(err, cap, p, n, "too long");
    const char *host;
    const char *why = shape_error(p, n, &host);
    if (why)
        return bad_entry(err, cap, p, n, why);
    size_t scheme_len = (size_t)(host - 3 - p);
    bool https = scheme_len == 5 && eq_nocase(p, "https", 5);
    if (!https && !(scheme_len == 4 && eq_nocase(p, "http", 4)))
        return bad_entry(err, cap, p, n, "the scheme must be http or https");
    char name[CORS_ORIGIN_MAX];
    unsigned port;
    why = authority_error(host, n - (size_t)(host - p), name, &port);
    if (why)
        return bad_entry(err, cap, p, n, why);
    /* browsers never write the scheme's default port, so neither may the list */
    if (port == (https ? 443u : 80u))
        port = 0;
    int len = snprintf(o->s, sizeof(o->s), "%s://%s", https ? "https" : "http", name);
    if (port)
        len += snprintf(o->s + len, sizeof(o->s) - (size_t)len, ":%u", port);
    o->len = (uint16_t)len;
    return 0;
}

static int add_entry(struct cors_config *cfg, const char *p, size_t n, char *err, size_t cap)
{
    struct cors_origin o;
    if (n == 0) {
        snprintf(err, cap, "CORS_ORIGINS: empty entry in the list (stray comma?)");
        return -EINVAL;
    }
    if (n == 1 && p[0] == '*') {
        cfg->any = true;
        return 0;
    }
    int rc = parse_origin(p, n, &o, err, cap);
    if (rc < 0)
        return rc;
    for (unsigned i = 0; i < cfg->norigins; i++) {
        if (cfg->origins[i].len == o.len && memcmp(cfg->origins[i].s, o.s, o.len) == 0)
            return 0; /* listed twice: harmless */
    }
    if (cfg->norigins == CORS_MAX_ORIGINS) {
        snprintf(err, cap, "CORS_ORIGINS: more than %d origins", CORS_MAX_ORIGINS);
        return -EINVAL;
    }
    cfg->origins[cfg->norigins++] = o;
    return 0;
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t';
}

static int parse_list(struct cors_config *cfg, const char *s, char *err, size_t cap)
{
    size_t n = strlen(s), i = 0, entries = 0;
    while (n && is_space(s[n - 1]))
        n--;
    while (i < n && is_space(s[i]))
        i++;
    if (i == n)
        return 0; /* empty: CORS off */
    for (;;) {
        size_t start = i, end;
        while (i < n && s[i] != ',')
            i++;
        end = i;
        while (start < end && is_space(s[start]))
            start++;
        while (end > start && is_space(s[end - 1]))
            end--;
        int rc = add_entry(cfg, s + start, end - start, err, cap);
        if (rc < 0)
            return rc;
        entries++;
        if (i == n)
            break;
        i++; /* the comma */
    }
    if (cfg->any && entries > 1) {
        snprintf(err, cap, "CORS_ORIGINS: \"*\" must be the only entry");
        return -EINVAL;
    }
    return 0;
}

int cors_parse(struct cors_config *cfg, const char *origins, bool credentials, uint32_t max_age_s,
               char *err, size_t errcap)
{
    memset(cfg, 0, sizeof(*cfg));
    int rc = parse_list(cfg, origins, err, errcap);
    if (rc == 0 && cfg->any && credentials) {
        snprintf(err, errcap,
                 "CORS_ALLOW_CREDENTIALS=true cannot be combined with "
                 "CORS_ORIGINS=* (no wildcard with credentials): list the origins");
        rc = -EINVAL;
    }
    if (rc == 0 && max_age_s > CORS_MAX_AGE_MAX) {
        snprintf(err, errcap, "CORS_MAX_AGE_S must be at most %d, got %u", CORS_MAX_AGE_MAX,
                 max_age_s);
        rc = -EINVAL;
    }
    if (rc < 0) {
        memset(cfg, 0, sizeof(*cfg)); /* a caller that goes on anyway gets CORS off */
        return rc;
    }
    cfg->credentials = credentials;
    cfg->max_age_s = max_age_s;
    snprintf(cfg->max_age, sizeof(cfg->max_age), "%u", max_age_s);
    return 0;
}

/* --- answering ----------------------------------------------------------------------------- */

bool cors_enabled(const struct cors_config *cfg)
{
    return cfg->any || cfg->norigins > 0;
}

/* The Access-Control-Allow-Origin value for origin, or NULL if it is not allowed. */
static const char *allow_origin(const struct cors_config *cfg, const char *origin, size_t len)
{
    if (!origin || len == 0)
        return NULL;
    if (cfg->any)
        return "*";
    for (unsigned i = 0; i < cfg->norigins; i++) {
        const struct cors_origin *o = &cfg->origins[i];
        if (o->len == len && eq_nocase(o->s, origin, len))
            return o->s;
    }
    return NULL;
}

bool cors_origin_allowed(const struct cors_config *cfg, const char *origin, size_t len)
{
    return allow_origin(cfg, origin, len) != NULL;
}

const char *cors_verdict_name(enum cors_verdict v)
{
    switch (v) {
    case CORS_NONE:
        return "none";
    case CORS_ALLOWED:
        return "allowed";
    case CORS_DENIED_ORIGIN:
        return "denied_origin";
    case CORS_DENIED_METHOD:
        return "denied_method";
    case CORS_DENIED_HEADERS:
        return "denied_headers";
    }
    return "unknown";
}

static void add(struct cors_headers *out, const char *name, const char *value)
{
    assert(out->n < CORS_MAX_HEADERS);
    out->h[out->n].name = name;
    out->h[out->n].value = value;
    out->n++;
}

static void add_allow_origin(const struct cors_config *cfg, const char *value,
                             struct cors_headers *out)
{
    add(out, "Access-Control-Allow-Origin", value);
    if (cfg->credentials)
        add(out, "Access-Control-Allow-Credentials", "true");
}

static void reset(struct cors_headers *out)
{
    out->n = 0;
    out->allow_headers[0] = '\0';
}

enum cors_verdict cors_actual(const struct cors_config *cfg, const char *origin, size_t len,
                              struct cors_headers *out)
{
    reset(out);
    if (!cors_enabled(cfg))
        return CORS_NONE;
    if (!cfg->any)
        add(out, "Vary", "Origin");
    if (!origin || len == 0)
        return CORS_NONE;
    const char *value = allow_origin(cfg, origin, len);
    if (!value)
        return CORS_DENIED_ORIGIN;
    add_allow_origin(cfg, value, out);
    add(out, "Access-Control-Expose-Headers", expose_headers);
    return CORS_ALLOWED;
}

static bool method_allowed(const char *m, size_t n)
{
    /* methods are case-sensitive; browsers upper-case the standard ones before asking */
    static const char *const methods[] = {"GET", "HEAD", "POST", "PUT", "DELETE"};
    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
        if (strlen(methods[i]) == n && memcmp(methods[i], m, n) == 0)
            return true;
    }
    return false;
}

static int request_header_index(const char *p, size_t n)
{
    for (size_t i = 0; i < NREQUEST_HEADERS; i++) {
        if (strlen(request_headers[i]) == n && eq_nocase(request_headers[i], p, n))
            return (int)i;
    }
    return -1;
}

/* Access-Control-Request-Headers → a bit per allowed name; -1 if any name is not allowed or
 * the value is too long. Commas, spaces and tabs separate; empty elements are skipped, as
 * HTTP list syntax asks of recipients. */
static int request_headers_mask(const char *p, size_t n, uint32_t *mask)
{
    size_t i = 0;
    *mask = 0;
    if (n > CORS_REQUEST_HEADERS_MAX)
        return -1;
    while (i < n) {
        if (p[i] == ',' || is_space(p[i])) {
            i++;
            continue;
        }
        size_t start = i;
        while (i < n && p[i] != ',' && !is_space(p[i]))
            i++;
        int k = request_header_index(p + start, i - start);
        if (k < 0)
            return -1;
        *mask |= 1u << k;
    }
    return 0;
}

/* The names in mask, in this module's spelling, joined by ", ". */
static void join_headers(uint32_t mask, char *dst, size_t cap)
{
    size_t len = 0;
    for (size_t i = 0; i < NREQUEST_HEADERS; i++) {
        if (!(mask & (1u << i)))
            continue;
        int n = snprintf(dst + len, cap - len, "%s%s", len ? ", " : "", request_headers[i]);
        assert(n > 0 && (size_t)n < cap - len); /* CORS_ALLOW_HEADERS_MAX holds them all */
        len += (size_t)n;
    }
}

enum cors_verdict cors_preflight(const struct cors_config *cfg, const char *origin, size_t olen,
                                 const char *method, size_t mlen, const char *req_headers,
                                 size_t hlen, struct cors_headers *out)
{
    uint32_t mask;
    reset(out);
    if (!cors_enabled(cfg))
        return CORS_NONE;
    /* the verdict depends on all three request headers (and, with a list, the value on one) */
    add(out, "Vary",
        cfg->any ? "Access-Control-Request-Method, Access-Control-Request-Headers"
                 : "Origin, Access-Control-Request-Method, Access-Control-Request-Headers");
    if (!origin || olen == 0)
        return CORS_NONE;
    const char *value = allow_origin(cfg, origin, olen);
    if (!value)
        return CORS_DENIED_ORIGIN;
    if (!method || !method_allowed(method, mlen))
        return CORS_DENIED_METHOD;
    if (request_headers_mask(req_headers ? req_headers : "", req_headers ? hlen : 0, &mask) < 0)
        return CORS_DENIED_HEADERS;
    add_allow_origin(cfg, value, out);
    add(out, "Access-Control-Allow-Methods", allow_methods);
    if (mask) {
        join_headers(mask, out->allow_headers, sizeof(out->allow_headers));
        add(out, "Access-Control-Allow-Headers", out->allow_headers);
    }
    add(out, "Access-Control-Max-Age", cfg->max_age);
    return CORS_ALLOWED;
}
