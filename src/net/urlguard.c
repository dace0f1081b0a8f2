/* urlguard — see urlguard.h.
 *
 * Address checks work on the bytes curl is about to connect to, never on spellings: curl's URL
 * API already turns "2130706433", "0x7f.1" and "017700000001" into 127.0.0.1, and whatever a
 * name resolves to reaches the open-socket callback as a sockaddr. */
#include "net/urlguard.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

static void seterr(char *err, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void seterr(char *err, size_t n, const char *fmt, ...)
{
    va_list ap;
    if (!err || n == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, n, fmt, ap);
    va_end(ap);
}

const char *urlguard_rc_name(enum urlguard_rc rc)
{
    switch (rc) {
    case URLGUARD_OK:
        return "OK";
    case URLGUARD_BAD_URL:
        return "INVALID_URL";
    case URLGUARD_BLOCKED:
        return "SSRF_BLOCKED";
    case URLGUARD_TOO_BIG:
        return "RESPONSE_TOO_LARGE";
    case URLGUARD_TOO_MANY_REDIRECTS:
        return "TOO_MANY_REDIRECTS";
    }
    return "UNKNOWN";
}

/* ---- address classification ----------------------------------------------------------------- */

/* The plain IPv4 phrase and the phrases of the three IPv6 forms that embed an IPv4 address, so
 * that "::ffff:127.0.0.1" is reported as what it is and the phrases stay static strings. */
enum { FORM_V4, FORM_MAPPED, FORM_NAT64, FORM_6TO4, FORM_N };
#define PHRASES(art, what)                                                                         \
    {                                                                                              \
        art " " what " address", "an IPv4-mapped " what " address", "a NAT64 " what " address",    \
            "a 6to4 " what " address"                                                              \
    }

struct v4_range {
    uint32_t net; /* host byte order */
    uint8_t prefix;
    const char *why[FORM_N];
};

/* First match wins: the more specific entries come first. */
static const struct v4_range v4_blocked[] = {
    {0xa9fea9fe, 32, PHRASES("a", "link-local (cloud metadata)")}, /* 169.254.169.254 */
    {0x00000000, 8, PHRASES("a", "\"this network\"")},
    {0x0a000000, 8, PHRASES("a", "private")},
    {0x64400000, 10, PHRASES("a", "shared (CGNAT)")},
    {0x7f000000, 8, PHRASES("a", "loopback")},
    {0xa9fe0000, 16, PHRASES("a", "link-local")},
    {0xac100000, 12, PHRASES("a", "private")},
    {0xc0000000, 24, PHRASES("an", "IETF protocol assignment")},
    {0xc0000200, 24, PHRASES("a", "documentation")}, /* TEST-NET-1 */
    {0xc0a80000, 16, PHRASES("a", "private")},
    {0xc6120000, 15, PHRASES("a", "benchmarking")},
    {0xc6336400, 24, PHRASES("a", "documentation")}, /* TEST-NET-2 */
    {0xcb007100, 24, PHRASES("a", "documentation")}, /* TEST-NET-3 */
    {0xe0000000, 4, PHRASES("a", "multicast")},
    {0xffffffff, 32, PHRASES("the", "broadcast")},
    {0xf0000000, 4, PHRASES("a", "reserved")},
};

enum v6_action { V6_BLOCK, V6_MAPPED, V6_NAT64, V6_6TO4 };

struct v6_range {
    uint8_t net[16];
    uint8_t prefix;
    uint8_t action;  /* enum v6_action: block, or classify the embedded IPv4 address */
    const char *why; /* V6_BLOCK */
};

static const struct v6_range v6_ranges[] = {
    {{0}, 128, V6_BLOCK, "the unspecified address"},
    {{[15] = 1}, 128, V6_BLOCK, "a loopback address"},
    {{[10] = 0xff, [11] = 0xff}, 96, V6_MAPPED, NULL},
    {{0x00, 0x64, 0xff, 0x9b}, 96, V6_NAT64, NULL},
    /* RFC 8215 local-use NAT64: where the IPv4 address sits depends on the local prefix
     * length, so it cannot be classified */
    {{0x00, 0x64, 0xff, 0x9b, 0x00, 0x01}, 48, V6_BLOCK, "a local-use NAT64 address"},
    /* the rest of ::/8: deprecated IPv4-compatible ::a.b.c.d, SIIT ::ffff:0:a.b.c.d */
    {{0}, 8, V6_BLOCK, "a reserved address"},
    {{0x01, 0x00}, 64, V6_BLOCK, "a discard-only address"},
    {{0x20, 0x01, 0x0d, 0xb8}, 32, V6_BLOCK, "a documentation address"},
    /* Teredo: a tunnel whose client IPv4 address is obfuscated in the last bits; refused
     * rather than decoded */
    {{0x20, 0x01, 0x00, 0x00}, 32, V6_BLOCK, "a Teredo address"},
    {{0x3f, 0xff}, 20, V6_BLOCK, "a documentation address"}, /* RFC 9637 */
    {{0x20, 0x02}, 16, V6_6TO4, NULL},
    /* fd00:ec2::254, AWS's IPv6 instance metadata endpoint (inside fc00::/7 anyway) */
    {{0xfd, 0x00, 0x0e, 0xc2, [14] = 0x02, [15] = 0x54},
     128,
     V6_BLOCK,
     "a unique local (cloud metadata) address"},
    {{0xfc}, 7, V6_BLOCK, "a unique local address"},
    {{0xfe, 0x80}, 10, V6_BLOCK, "a link-local address"},
    {{0xfe, 0xc0}, 10, V6_BLOCK, "a site-local address"},
    {{0xff}, 8, V6_BLOCK, "a multicast address"},
};

/* Whether the first bits of a equal those of net. */
static bool prefix_eq(const uint8_t *a, const uint8_t *net, unsigned bits)
{
    unsigned full = bits / 8, rest = bits % 8;
    if (memcmp(a, net, full) != 0)
        return false;
    if (rest == 0)
        return true;
    uint8_t m = (uint8_t)(0xff << (8 - rest));
    return (a[full] & m) == (net[full] & m);
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static const char *v4_why(uint32_t a, int form)
{
    for (size_t i = 0; i < sizeof v4_blocked / sizeof *v4_blocked; i++) {
        const struct v4_range *r = &v4_blocked[i];
        uint32_t mask = r->prefix ? ~0u << (32 - r->prefix) : 0;
        if ((a & mask) == r->net)
            return r->why[form];
    }
    return NULL;
}

static const char *v6_why(const uint8_t *a)
{
    for (size_t i = 0; i < sizeof v6_ranges / sizeof *v6_ranges; i++) {
        const struct v6_range *r = &v6_ranges[i];
        if (!prefix_eq(a, r->net, r->prefix))
            continue;
        switch (r->action) {
        case V6_MAPPED:
            return v4_why(be32(a + 12), FORM_MAPPED);
        case V6_NAT64:
            return v4_why(be32(a + 12), FORM_NAT64);
        case V6_6TO4:
            return v4_why(be32(a + 2), FORM_6TO4);
        default:
            return r->why;
        }
    }
    return NULL;
}

const char *urlguard_addr_blocked(const struct sockaddr *sa, socklen_t len)
{
    /* copied out: a sockaddr passed as struct sockaddr * need not be aligned for the others */
    if (sa && sa->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in)) {
        struct sockaddr_in s4;
        memcpy(&s4, sa, sizeof s4);
        return v4_why(ntohl(s4.sin_addr.s_addr), FORM_V4);
    }
    if (sa && sa->sa_family == AF_INET6 && len >= (socklen_t)sizeof(struct sockaddr_in6)) {
        struct sockaddr_in6 s6;
        memcpy(&s6, sa, sizeof s6);
        return v6_why(s6.sin6_addr.s6_addr);
    }
    return "an address of an unsupported family";
}

/* ---- host names and IP literals ------------------------------------------------------------- */

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool is_hex(char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'f');
}

/* A numeric last label ("1.2.3.4.5", "256.1.1.1", "x.0x1f") is an IPv4 spelling curl did not
 * accept; resolvers disagree on such names, so they are refused rather than guessed at. */
static bool numeric_label(const char *l, size_t n)
{
    size_t i = (n >= 2 && l[0] == '0' && l[1] == 'x') ? 2 : 0;
    bool hex = i == 2;
    if (n == 0)
        return false;
    for (; i < n; i++) {
        if (!(hex ? is_hex(l[i]) : is_digit(l[i])))
            return false;
    }
    return true;
}

/* A lowercase DNS name without trailing dot: labels of 1-63 letters, digits, '-' or '_'. */
static bool name_ok(const char *s)
{
    size_t len = strlen(s), label = 0;
    if (len == 0 || len > 253)
        return false;
    for (size_t i = 0; i <= len; i++) {
        char c = s[i];
        if (c == '.' || c == '\0') {
            if (label == 0 || label > 63)
                return false;
            if (c == '\0')
                return !numeric_label(s + i - label, label);
            label = 0;
            continue;
        }
        if (!(is_digit(c) || (c >= 'a' && c <= 'z') || c == '-' || c == '_'))
            return false;
        label++;
    }
    return false;
}

/* Lowercases host into dst without brackets and without one trailing dot. -1 if it does not
 * fit or the brackets are unbalanced. */
static int host_normalize(const char *host, char *dst, size_t cap)
{
    size_t n = strlen(host);
    if (n > 0 && host[0] == '[') {
        if (n < 2 || host[n - 1] != ']')
            return -1;
        host++;
        n -= 2;
    } else if (n > 0 && host[n - 1] == '.') {
        n--;
    }
    if (n >= cap)
        return -1;
    for (size_t i = 0; i < n; i++) {
        char c = host[i];
        dst[i] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
    }
    dst[n] = '\0';
    return 0;
}

/* 4 (IPv4), 16 (IPv6) or 0: host is an IP literal in dotted-quad or RFC 4291 text form. */
static int ip_literal(const char *host, uint8_t *addr)
{
    if (inet_pton(AF_INET, host, addr) == 1)
        return 4;
    if (inet_pton(AF_INET6, host, addr) == 1)
        return 16;
    return 0;
}

/* host_normalize() then ip_literal(): 0 (a name), 4 or 16, or -1 if s does not normalize or
 * has brackets around anything but an IPv6 address. */
static int host_literal(const char *s, char *dst, size_t cap, uint8_t *addr)
{
    if (host_normalize(s, dst, cap) != 0)
        return -1;
    int alen = ip_literal(dst, addr);
    return (s[0] == '[' && alen != 16) ? -1 : alen;
}

static void sockaddr_from(struct sockaddr_storage *ss, const uint8_t *addr, int alen)
{
    memset(ss, 0, sizeof *ss);
    if (alen == 4) {
        struct sockaddr_in s4 = {.sin_family = AF_INET};
        memcpy(&s4.sin_addr, addr, 4);
        memcpy(ss, &s4, sizeof s4);
    } else {
        struct sockaddr_in6 s6 = {.sin6_family = AF_INET6};
        memcpy(&s6.sin6_addr, addr, 16);
        memcpy(ss, &s6, sizeof s6);
    }
}

/* ---- URL parsing ---------------------------------------------------------------------------- */

/* Length, characters and "scheme://authority" shape, on the raw string: curl is lenient where
 * we are not ("http:/x", "http:///x" and raw UTF-8 all parse there). */
static enum urlguard_rc check_raw(const char *url, size_t max_len, char *err, size_t errlen)
{
    size_t len = strnlen(url, max_len + 1);
    if (len == 0) {
        seterr(err, errlen, "empty URL");
        return URLGUARD_BAD_URL;
    }
    if (len > max_len) {
        seterr(err, errlen, "URL longer than %zu characters", max_len);
        return URLGUARD_BAD_URL;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)url[i];
        if (c <= 0x20 || c >= 0x7f) {
            seterr(err, errlen,
                   "URL has a space, control or non-ASCII character at offset %zu "
                   "(percent-encode it)",
                   i);
            return URLGUARD_BAD_URL;
        }
    }
    size_t s = strspn(url, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+.-");
    if (s == 0 || url[s] != ':') {
        seterr(err, errlen, "URL must be absolute: http[s]://host[:port]/path");
        return URLGUARD_BAD_URL;
    }
    if (!((s == 4 && strncasecmp(url, "http", 4) == 0) ||
          (s == 5 && strncasecmp(url, "https", 5) == 0))) {
        seterr(err, errlen, "scheme \"%.*s\" is not allowed (http and https only)",
               (int)(s > 16 ? 16 : s), url);
        return URLGUARD_BAD_URL;
    }
    if (strncmp(url + s, "://", 3) != 0 || !url[s + 3] || strchr("/?#", url[s + 3])) {
        seterr(err, errlen, "URL must be absolute: http[s]://host[:port]/path");
        return URLGUARD_BAD_URL;
    }
    return URLGUARD_OK;
}

/* Copies a part of h into dst. 0, or -1 if curl has no such part or it does not fit. */
static int get_part(CURLU *h, CURLUPart part, unsigned flags, char *dst, size_t cap)
{
    char *p = NULL;
    if (curl_url_get(h, part, &p, flags) != CURLUE_OK)
        return -1;
    size_t n = strlen(p);
    int rc = n < cap ? 0 : -1;
    if (rc == 0)
        memcpy(dst, p, n + 1);
    curl_free(p);
    return rc;
}

static enum urlguard_rc parse_host(CURLU *h, struct urlguard_url *out, char *err, size_t errlen)
{
    char raw[URLGUARD_HOST_CAP + 4], zone[64];
    uint8_t addr[16];
    if (get_part(h, CURLUPART_HOST, 0, raw, sizeof raw) != 0 || !raw[0]) {
        seterr(err, errlen, "URL has no host, or it is too long");
        return URLGUARD_BAD_URL;
    }
    if (get_part(h, CURLUPART_ZONEID, 0, zone, sizeof zone) == 0) {
        seterr(err, errlen, "IPv6 zone IDs are not allowed");
        return URLGUARD_BAD_URL;
    }
    if (host_normalize(raw, out->host, sizeof out->host) != 0 || !out->host[0]) {
        seterr(err, errlen, "bad host");
        return URLGUARD_BAD_URL;
    }
    int alen = ip_literal(out->host, addr);
    /* curl enforces both already; a spelling is never trusted */
    if ((alen == 16) != (raw[0] == '[')) {
        seterr(err, errlen, "an IPv6 literal must be in brackets, and only an IPv6 literal");
        return URLGUARD_BAD_URL;
    }
    if (alen) {
        out->host_is_ip = true;
        sockaddr_from(&out->addr, addr, alen);
        return URLGUARD_OK;
    }
    if (!name_ok(out->host)) {
        seterr(err, errlen, "bad host name \"%.64s\"", out->host);
        return URLGUARD_BAD_URL;
    }
    return URLGUARD_OK;
}

static enum urlguard_rc parse_rest(CURLU *h, struct urlguard_url *out, char *err, size_t errlen)
{
    char port[8];
    enum urlguard_rc rc = parse_host(h, out, err, errlen);
    if (rc != URLGUARD_OK)
        return rc;
    if (get_part(h, CURLUPART_SCHEME, 0, out->scheme, sizeof out->scheme) != 0) {
        seterr(err, errlen, "URL has no scheme");
        return URLGUARD_BAD_URL;
    }
    for (char *c = out->scheme; *c; c++)
        *c = (*c >= 'A' && *c <= 'Z') ? (char)(*c - 'A' + 'a') : *c;
    if (get_part(h, CURLUPART_PORT, CURLU_DEFAULT_PORT, port, sizeof port) != 0) {
        seterr(err, errlen, "bad port");
        return URLGUARD_BAD_URL;
    }
    unsigned long p = strtoul(port, NULL, 10);
    if (p < 1 || p > 65535) {
        seterr(err, errlen, "port %s is out of range (1-65535)", port);
        return URLGUARD_BAD_URL;
    }
    out->port = (uint16_t)p;
    if (get_part(h, CURLUPART_URL, 0, out->url, sizeof out->url) != 0) {
        seterr(err, errlen, "URL too long once normalized");
        return URLGUARD_BAD_URL;
    }
    return URLGUARD_OK;
}

enum urlguard_rc urlguard_parse_url_max(const char *url, size_t max_len, struct urlguard_url *out,
                                        char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (!url) {
        seterr(err, errlen, "no URL");
        return URLGUARD_BAD_URL;
    }
    enum urlguard_rc rc = check_raw(url, max_len, err, errlen);
    if (rc != URLGUARD_OK)
        return rc;
    CURLU *h = curl_url();
    if (!h) {
        seterr(err, errlen, "out of memory");
        return URLGUARD_BAD_URL;
    }
    CURLUcode uc = curl_url_set(h, CURLUPART_URL, url, CURLU_DISALLOW_USER);
    if (uc == CURLUE_USER_NOT_ALLOWED) {
        seterr(err, errlen, "credentials (user:password@) are not allowed in the URL");
        rc = URLGUARD_BAD_URL;
    } else if (uc != CURLUE_OK) {
        seterr(err, errlen, "malformed URL (%s)", curl_url_strerror(uc));
        rc = URLGUARD_BAD_URL;
    } else {
        rc = parse_rest(h, out, err, errlen);
    }
    curl_url_cleanup(h);
    if (rc != URLGUARD_OK)
        memset(out, 0, sizeof *out);
    return rc;
}

enum urlguard_rc urlguard_parse_url(const char *url, struct urlguard_url *out, char *err,
                                    size_t errlen)
{
    return urlguard_parse_url_max(url, URLGUARD_DEFAULT_MAX_URL, out, err, errlen);
}

/* ---- allowlist ------------------------------------------------------------------------------ */

enum allow_kind { ALLOW_NAME = 1, ALLOW_WILDCARD, ALLOW_V4, ALLOW_V6 };

/* "10.0.0.0/8", "fd00::/8", "[fd00::]/8": the prefix length in decimal, no host bits set. */
static int allow_cidr(struct urlguard_allow *a, char *s, char *slash, char *err, size_t errlen)
{
    *slash = '\0';
    const char *bits = slash + 1;
    size_t nb = strlen(bits);
    char host[URLGUARD_HOST_CAP];
    int alen = host_literal(s, host, sizeof host, a->addr);
    unsigned prefix = (unsigned)atoi(bits);
    if (nb == 0 || nb > 3 || strspn(bits, "0123456789") != nb || alen <= 0 ||
        prefix > (unsigned)alen * 8) {
        seterr(err, errlen, "bad CIDR \"%s/%s\"", s, bits);
        return -EINVAL;
    }
    uint8_t net[16] = {0};
    memcpy(net, a->addr, (size_t)alen);
    for (unsigned i = prefix; i < (unsigned)alen * 8; i++)
        net[i / 8] &= (uint8_t) ~(0x80 >> (i % 8));
    if (memcmp(net, a->addr, (size_t)alen) != 0) {
        seterr(err, errlen, "CIDR \"%s/%s\" has host bits set", s, bits);
        return -EINVAL;
    }
    a->kind = alen == 4 ? ALLOW_V4 : ALLOW_V6;
    a->prefix = (uint8_t)prefix;
    return 0;
}

/* One entry, already trimmed and lowercased in s. */
static int allow_entry(struct urlguard_allow *a, char *s, char *err, size_t errlen)
{
    char *slash = strchr(s, '/');
    memset(a, 0, sizeof *a);
    if (slash)
        return allow_cidr(a, s, slash, err, errlen);
    int alen = host_literal(s, a->name, sizeof a->name, a->addr);
    if (alen > 0) {
        a->kind = alen == 4 ? ALLOW_V4 : ALLOW_V6;
        a->prefix = (uint8_t)(alen * 8);
        a->name[0] = '\0';
        return 0;
    }
    bool wild = strncmp(s, "*.", 2) == 0;
    const char *name = s + (wild ? 2 : 0); /* "*.[p]" is not "*.p": brackets only around IPv6 */
    if (name[0] == '[' || host_normalize(name, a->name, sizeof a->name) != 0 ||
        !name_ok(a->name)) {
        seterr(err, errlen, "bad allowlist entry \"%.64s\"", s);
        return -EINVAL;
    }
    a->kind = wild ? ALLOW_WILDCARD : ALLOW_NAME;
    return 0;
}

int urlguard_allowlist_parse(struct urlguard_allowlist *al, const char *spec, char *err,
                             size_t errlen)
{
    char item[URLGUARD_HOST_CAP + 16];
    memset(al, 0, sizeof *al);
    if (!spec)
        return 0;
    if (strnlen(spec, URLGUARD_ALLOW_SPEC_MAX + 1) > URLGUARD_ALLOW_SPEC_MAX) {
        seterr(err, errlen, "allowlist longer than %d characters", URLGUARD_ALLOW_SPEC_MAX);
        return -EINVAL;
    }
    for (const char *p = spec; *p;) {
        size_t n = strcspn(p, ",");
        const char *b = p, *e = p + n;
        p = *e ? e + 1 : e;
        while (b < e && (*b == ' ' || *b == '\t'))
            b++;
        while (e > b && (e[-1] == ' ' || e[-1] == '\t'))
            e--;
        if (b == e)
            continue;
        if ((size_t)(e - b) >= sizeof item) {
            seterr(err, errlen, "allowlist entry \"%.32s...\" is too long", b);
            return -EINVAL;
        }
        if (al->n == URLGUARD_ALLOW_MAX) {
            seterr(err, errlen, "more than %d allowlist entries", URLGUARD_ALLOW_MAX);
            return -EINVAL;
        }
        for (size_t i = 0; i < (size_t)(e - b); i++)
            item[i] = (b[i] >= 'A' && b[i] <= 'Z') ? (char)(b[i] - 'A' + 'a') : b[i];
        item[e - b] = '\0';
        if (allow_entry(&al->e[al->n], item, err, errlen) != 0)
            return -EINVAL;
        al->n++;
    }
    return 0;
}

static bool name_match(const struct urlguard_allow *a, const char *host)
{
    if (a->kind == ALLOW_NAME)
        return strcmp(host, a->name) == 0;
    size_t hl = strlen(host), nl = strlen(a->name);
    return hl > nl + 1 && host[hl - nl - 1] == '.' && strcmp(host + hl - nl, a->name) == 0;
}

bool urlguard_allowlist_match(const struct urlguard_allowlist *al, const char *host)
{
    char h[URLGUARD_HOST_CAP];
    uint8_t addr[16];
    int alen = host ? host_literal(host, h, sizeof h, addr) : -1;
    if (alen < 0 || !h[0])
        return false;
    for (unsigned i = 0; i < al->n; i++) {
        const struct urlguard_allow *a = &al->e[i];
        bool ip_entry = a->kind == ALLOW_V4 || a->kind == ALLOW_V6;
        if (alen && ip_entry && (a->kind == ALLOW_V4) == (alen == 4) &&
            prefix_eq(addr, a->addr, a->prefix))
            return true;
        if (!alen && !ip_entry && name_match(a, h))
            return true;
    }
    return false;
}

/* ---- the guard ------------------------------------------------------------------------------ */

void urlguard_config_defaults(struct urlguard_config *c)
{
    *c = (struct urlguard_config){
        .allowed = NULL,
        .max_url_len = URLGUARD_DEFAULT_MAX_URL,
        .follow_redirects = false,
        .max_redirects = 3,
        .max_bytes = 10u << 20,
        .timeout_ms = 30000,
        .connect_timeout_ms = 10000,
    };
}

int urlguard_init(struct urlguard *g, const struct urlguard_config *c, char *err, size_t errlen)
{
    memset(g, 0, sizeof *g);
    if (c->max_url_len < 16 || c->max_url_len >= URLGUARD_URL_CAP) {
        seterr(err, errlen, "URL length limit must be 16-%d", URLGUARD_URL_CAP - 1);
        return -EINVAL;
    }
    if (c->follow_redirects && (c->max_redirects < 1 || c->max_redirects > 20)) {
        seterr(err, errlen, "redirect limit must be 1-20");
        return -EINVAL;
    }
    /* curl_off_t is signed: keep the limit representable for CURLOPT_MAXFILESIZE_LARGE */
    if (c->max_bytes < 1 || c->max_bytes > (uint64_t)INT64_MAX || c->timeout_ms < 1 ||
        c->connect_timeout_ms < 1 || c->timeout_ms > INT32_MAX ||
        c->connect_timeout_ms > INT32_MAX) {
        seterr(err, errlen, "size and time limits must be positive");
        return -EINVAL;
    }
    if (urlguard_allowlist_parse(&g->allow, c->allowed, err, errlen) != 0)
        return -EINVAL;
    g->max_url_len = c->max_url_len;
    g->follow_redirects = c->follow_redirects;
    g->max_redirects = c->follow_redirects ? c->max_redirects : 0;
    g->max_bytes = c->max_bytes;
    g->timeout_ms = c->timeout_ms;
    g->connect_timeout_ms = c->connect_timeout_ms;
    return 0;
}

/* "localhost" and its subdomains are loopback by definition (RFC 6761), and curl resolves them
 * itself without asking DNS. */
static bool is_localhost(const char *host)
{
    size_t n = strlen(host);
    return strcmp(host, "localhost") == 0 || (n > 10 && strcmp(host + n - 10, ".localhost") == 0);
}

enum urlguard_rc urlguard_precheck(const struct urlguard *g, const char *url,
                                   struct urlguard_url *out, char *err, size_t errlen)
{
    enum urlguard_rc rc = urlguard_parse_url_max(url, g->max_url_len, out, err, errlen);
    if (rc != URLGUARD_OK || urlguard_allowlist_match(&g->allow, out->host))
        return rc;
    if (out->host_is_ip) {
        const char *why =
            urlguard_addr_blocked((const struct sockaddr *)&out->addr, sizeof out->addr);
        if (why) {
            seterr(err, errlen, "%s is %s", out->host, why);
            return URLGUARD_BLOCKED;
        }
    } else if (is_localhost(out->host)) {
        seterr(err, errlen, "%s is a loopback name", out->host);
        return URLGUARD_BLOCKED;
    }
    return URLGUARD_OK;
}

/* ---- curl ----------------------------------------------------------------------------------- */

static void refuse(struct urlguard_ctx *ctx, enum urlguard_rc rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Keeps the first refusal: later ones are consequences of it. */
static void refuse(struct urlguard_ctx *ctx, enum urlguard_rc rc, const char *fmt, ...)
{
    va_list ap;
    if (ctx->rc != URLGUARD_OK)
        return;
    ctx->rc = rc;
    va_start(ap, fmt);
    vsnprintf(ctx->reason, sizeof ctx->reason, fmt, ap);
    va_end(ap);
}

/* The host of the URL curl is working on now. CURLINFO_EFFECTIVE_URL is curl's current URL,
 * which it replaces with the redirect target before it connects there (tests/net checks it). */
static int current_host(struct urlguard_ctx *ctx, char *host, size_t cap)
{
    char *eff = NULL;
    char raw[URLGUARD_HOST_CAP + 4];
    if (curl_easy_getinfo(ctx->easy, CURLINFO_EFFECTIVE_URL, &eff) != CURLE_OK || !eff)
        return -1;
    CURLU *h = curl_url();
    if (!h)
        return -1;
    int rc = -1;
    if (curl_url_set(h, CURLUPART_URL, eff, CURLU_NON_SUPPORT_SCHEME) == CURLUE_OK &&
        get_part(h, CURLUPART_HOST, 0, raw, sizeof raw) == 0)
        rc = host_normalize(raw, host, cap);
    curl_url_cleanup(h);
    return rc;
}

/* The one connect-time decision: may the transfer talk to sa for the host it is on now? Records
 * the refusal. */
static bool destination_ok(struct urlguard_ctx *ctx, const struct sockaddr *sa, socklen_t len)
{
    char host[URLGUARD_HOST_CAP], text[INET6_ADDRSTRLEN] = "?";
    uint8_t lit[16];
    struct sockaddr_storage ss = {0};
    memcpy(&ss, sa, len < sizeof ss ? len : sizeof ss);
    if (ss.ss_family != AF_INET && ss.ss_family != AF_INET6) {
        refuse(ctx, URLGUARD_BLOCKED, "address family %d is not allowed", ss.ss_family);
        return false;
    }
    if (current_host(ctx, host, sizeof host) != 0) {
        refuse(ctx, URLGUARD_BLOCKED, "cannot tell which host is being connected to");
        return false;
    }
    if (urlguard_allowlist_match(&ctx->g->allow, host))
        return true;
    const char *why = urlguard_addr_blocked((const struct sockaddr *)&ss, len);
    if (!why)
        return true;
    if (ss.ss_family == AF_INET)
        inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, text, sizeof text);
    else
        inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, text, sizeof text);
    if (ip_literal(host, lit))
        refuse(ctx, URLGUARD_BLOCKED, "%s is %s", text, why);
    else
        refuse(ctx, URLGUARD_BLOCKED, "%s is %s (resolved from %s)", text, why, host);
    return false;
}

/* Every new connection: refused before socket(), so not even a SYN reaches a blocked address. */
static curl_socket_t opensocket_cb(void *clientp, curlsocktype purpose, struct curl_sockaddr *a)
{
    struct urlguard_ctx *ctx = clientp;
    if (!destination_ok(ctx, &a->addr, a->addrlen))
        return CURL_SOCKET_BAD;
    return socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
}

/* Every request, on a new or a reused connection. A multi handle's connection pool is shared by
 * all its transfers: a guarded transfer (or its redirect) to a host name an unguarded transfer
 * already holds a keep-alive connection to would otherwise ride on that connection without
 * curl opening a socket. CURLOPT_FRESH_CONNECT cannot close this: curl ignores it on redirects. */
static int prereq_cb(void *clientp, char *primary_ip, char *local_ip, int primary_port,
                     int local_port)
{
    struct urlguard_ctx *ctx = clientp;
    struct sockaddr_storage ss;
    uint8_t addr[16];
    int alen = primary_ip ? ip_literal(primary_ip, addr) : 0;
    if (!alen) {
        refuse(ctx, URLGUARD_BLOCKED, "connected to an address that cannot be checked");
        return CURL_PREREQFUNC_ABORT;
    }
    sockaddr_from(&ss, addr, alen);
    socklen_t len = alen == 4 ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
    if (!destination_ok(ctx, (const struct sockaddr *)&ss, len))
        return CURL_PREREQFUNC_ABORT;
    /* another address of the name was refused, this one is fine: that refusal is no reason
     * for whatever may still go wrong with the transfer */
    if (ctx->rc == URLGUARD_BLOCKED) {
        ctx->rc = URLGUARD_OK;
        ctx->reason[0] = '\0';
    }
    return CURL_PREREQFUNC_OK;
}

/* A redirect target is held to the same rules as the URL the user gave, before curl follows
 * it; refusing here names the target, where the connect-time check alone could not. */
static bool redirect_ok(struct urlguard_ctx *ctx, const char *v, size_t n)
{
    char loc[URLGUARD_URL_CAP], err[URLGUARD_REASON_CAP];
    char *eff = NULL, *abs = NULL;
    struct urlguard_url u;
    while (n > 0 && (*v == ' ' || *v == '\t')) {
        v++;
        n--;
    }
    while (n > 0 && strchr(" \t\r\n", v[n - 1]))
        n--;
    if (n >= sizeof loc) {
        refuse(ctx, URLGUARD_BLOCKED, "redirect to a URL longer than %d characters",
               URLGUARD_URL_CAP - 1);
        return false;
    }
    memcpy(loc, v, n);
    loc[n] = '\0';
    CURLU *h = curl_url();
    bool ok = h && curl_easy_getinfo(ctx->easy, CURLINFO_EFFECTIVE_URL, &eff) == CURLE_OK && eff &&
              curl_url_set(h, CURLUPART_URL, eff, CURLU_NON_SUPPORT_SCHEME) == CURLUE_OK &&
              curl_url_set(h, CURLUPART_URL, loc, CURLU_NON_SUPPORT_SCHEME) == CURLUE_OK &&
              curl_url_get(h, CURLUPART_URL, &abs, 0) == CURLUE_OK;
    curl_url_cleanup(h);
    if (!ok) {
        refuse(ctx, URLGUARD_BLOCKED, "redirect to an invalid URL \"%.200s\"", loc);
    } else if (urlguard_precheck(ctx->g, abs, &u, err, sizeof err) != URLGUARD_OK) {
        refuse(ctx, URLGUARD_BLOCKED, "redirect to %.200s refused: %s", abs, err);
        ok = false;
    }
    curl_free(abs);
    return ok;
}

static size_t header_cb(char *p, size_t size, size_t nmemb, void *ud)
{
    struct urlguard_ctx *ctx = ud;
    size_t n = size * nmemb;
    long status = 0;
    if (!ctx->g->follow_redirects || n < 9 || strncasecmp(p, "location:", 9) != 0)
        return n;
    /* curl only follows a Location of a 3xx; its status line came before this header */
    curl_easy_getinfo(ctx->easy, CURLINFO_RESPONSE_CODE, &status);
    if (status < 300 || status > 399)
        return n;
    return redirect_ok(ctx, p + 9, n - 9) ? n : 0;
}

/* Counts body bytes: CURLOPT_MAXFILESIZE_LARGE only looks at Content-Length in curl 7.88, and a
 * close-delimited or chunked body has none. */
static size_t write_cb(char *p, size_t size, size_t nmemb, void *ud)
{
    struct urlguard_ctx *ctx = ud;
    size_t n = size * nmemb;
    if (n > ctx->g->max_bytes - ctx->bytes) {
        refuse(ctx, URLGUARD_TOO_BIG, "response body larger than %llu bytes",
               (unsigned long long)ctx->g->max_bytes);
        return 0;
    }
    size_t r = ctx->sink ? ctx->sink(p, size, nmemb, ctx->sink_data) : n;
    if (r == n) /* not CURL_WRITEFUNC_PAUSE: curl delivers paused data again */
        ctx->bytes += n;
    return r;
}

void urlguard_ctx_init(struct urlguard_ctx *ctx, curl_write_callback sink, void *sink_data)
{
    memset(ctx, 0, sizeof *ctx);
    ctx->sink = sink;
    ctx->sink_data = sink_data;
}

int urlguard_curl_apply(CURL *easy, const struct urlguard *g, struct urlguard_ctx *ctx)
{
    int bad = 0;
#define SET(opt, val) bad |= curl_easy_setopt(easy, opt, val) != CURLE_OK
    ctx->g = g;
    ctx->easy = easy;
    ctx->bytes = 0;
    ctx->rc = URLGUARD_OK;
    ctx->reason[0] = '\0';
    SET(CURLOPT_PROTOCOLS_STR, "http,https");
    SET(CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    SET(CURLOPT_FOLLOWLOCATION, g->follow_redirects ? 1L : 0L);
    SET(CURLOPT_MAXREDIRS, (long)g->max_redirects);
    SET(CURLOPT_OPENSOCKETFUNCTION, opensocket_cb);
    SET(CURLOPT_OPENSOCKETDATA, ctx);
    SET(CURLOPT_PREREQFUNCTION, prereq_cb);
    SET(CURLOPT_PREREQDATA, ctx);
    SET(CURLOPT_HEADERFUNCTION, header_cb);
    SET(CURLOPT_HEADERDATA, ctx);
    SET(CURLOPT_WRITEFUNCTION, write_cb);
    SET(CURLOPT_WRITEDATA, ctx);
    SET(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)g->max_bytes);
    SET(CURLOPT_TIMEOUT_MS, (long)g->timeout_ms);
    SET(CURLOPT_CONNECTTIMEOUT_MS, (long)g->connect_timeout_ms);
    /* "" disables proxies even when http_proxy & co. are set; NOPROXY "*" says it twice */
    SET(CURLOPT_PROXY, "");
    SET(CURLOPT_NOPROXY, "*");
    /* credentials the caller may add stay with the first host */
    SET(CURLOPT_UNRESTRICTED_AUTH, 0L);
#undef SET
    return bad ? -EINVAL : 0;
}

enum urlguard_rc urlguard_ctx_finish(struct urlguard_ctx *ctx, CURLcode rc)
{
    if (rc == CURLE_FILESIZE_EXCEEDED)
        refuse(ctx, URLGUARD_TOO_BIG, "response body larger than %llu bytes (Content-Length)",
               (unsigned long long)ctx->g->max_bytes);
    else if (rc == CURLE_TOO_MANY_REDIRECTS)
        refuse(ctx, URLGUARD_TOO_MANY_REDIRECTS, "more than %u redirects",
               (unsigned)ctx->g->max_redirects);
    return ctx->rc;
}

void urlguard_ctx_message(const struct urlguard_ctx *ctx, CURLcode rc, char *buf, size_t n)
{
    if (ctx->rc != URLGUARD_OK)
        seterr(buf, n, "%s: %s", urlguard_rc_name(ctx->rc), ctx->reason);
    else if (rc != CURLE_OK)
        seterr(buf, n, "%s", curl_easy_strerror(rc));
    else
        seterr(buf, n, "%s", "");
}
