/* fuzz_urlguard — libFuzzer harness for the SSRF guard's parsers (src/net/urlguard): the strict
 * URL parser with the validation-time precheck, the allowlist parser and matcher, and address
 * classification. The first byte picks the mode:
 *   0: the rest is a URL (up to its first NUL). An accepted URL must be normalized (scheme
 *      http/https, host lowercase without brackets or trailing dot and of the right alphabet,
 *      port 1-65535), must parse again to the same thing, and the precheck must block an IP
 *      literal exactly when classification does. A refused one leaves a message and nothing
 *      half-filled.
 *   1: the rest is an allowlist, then '\n' and host names, one a line. Every item of an
 *      accepted list must match what it names (a name or IP itself, a wildcard's subdomain, a
 *      CIDR's base address), in any case and with a trailing dot.
 *   2: the rest is an address: 16 bytes as IPv6, the first 4 as IPv4. The verdicts must agree
 *      with a reference written here from the ranges' text, and an IPv4 address must get the
 *      same verdict in each IPv6 form that embeds it.
 * Seed corpus: fuzz/corpus/urlguard/; dictionary: fuzz/urlguard.dict. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fuzz_check.h"
#include "net/urlguard.h"

/* ---- mode 0: URLs ------------------------------------------------------------------------- */

static bool host_shape_ok(const struct urlguard_url *u)
{
    uint8_t a[16];
    size_t n = strlen(u->host);
    if (n == 0 || u->host[n - 1] == '.')
        return false;
    if (u->host_is_ip)
        return inet_pton(u->addr.ss_family, u->host, a) == 1;
    return strspn(u->host, "abcdefghijklmnopqrstuvwxyz0123456789-_.") == n && n <= 253;
}

static const char *verdict(const struct urlguard_url *u)
{
    socklen_t len =
        u->addr.ss_family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
    return urlguard_addr_blocked((const struct sockaddr *)&u->addr, len);
}

static void fuzz_url(const char *s, const struct urlguard *g)
{
    static struct urlguard_url u, again;
    char err[256];
    err[0] = '\0';
    if (urlguard_parse_url_max(s, URLGUARD_URL_CAP - 1, &u, err, sizeof err) != URLGUARD_OK) {
        CHECK(err[0] != '\0' && u.host[0] == '\0' && u.url[0] == '\0');
        CHECK(urlguard_precheck(g, s, &u, err, sizeof err) == URLGUARD_BAD_URL);
        return;
    }
    CHECK(!strcmp(u.scheme, "http") || !strcmp(u.scheme, "https"));
    CHECK(u.port >= 1);
    CHECK(host_shape_ok(&u));
    CHECK(strlen(u.url) < URLGUARD_URL_CAP);
    CHECK(strncmp(u.url, u.scheme, strlen(u.scheme)) == 0);
    CHECK(urlguard_parse_url_max(u.url, URLGUARD_URL_CAP - 1, &again, err, sizeof err) ==
          URLGUARD_OK);
    CHECK(!strcmp(again.url, u.url) && !strcmp(again.host, u.host) && again.port == u.port &&
          again.host_is_ip == u.host_is_ip && !strcmp(again.scheme, u.scheme));
    if (strlen(s) > g->max_url_len)
        return;
    enum urlguard_rc rc = urlguard_precheck(g, s, &again, err, sizeof err);
    if (u.host_is_ip && !urlguard_allowlist_match(&g->allow, u.host))
        CHECK((rc == URLGUARD_BLOCKED) == (verdict(&u) != NULL));
    else if (u.host_is_ip)
        CHECK(rc == URLGUARD_OK);
}

/* ---- mode 1: allowlists -------------------------------------------------------------------- */

static bool match_variants(const struct urlguard_allowlist *al, const char *host)
{
    char up[300], dot[300];
    size_t n = strlen(host);
    if (n + 2 > sizeof up)
        return true;
    for (size_t i = 0; i <= n; i++)
        up[i] = (host[i] >= 'a' && host[i] <= 'z') ? (char)(host[i] - 32) : host[i];
    memcpy(dot, host, n);
    strcpy(dot + n, ".");
    bool ip = strchr(host, ':') != NULL || strspn(host, "0123456789.") == n;
    return urlguard_allowlist_match(al, host) && urlguard_allowlist_match(al, up) &&
           (ip || urlguard_allowlist_match(al, dot));
}

/* What one trimmed item of an accepted list must match. */
static void check_item(const struct urlguard_allowlist *al, char *item)
{
    char host[300];
    size_t n = strlen(item);
    if (n == 0 || n >= sizeof host - 2)
        return;
    char *slash = strchr(item, '/');
    if (slash) {
        *slash = '\0'; /* the base address of a CIDR is inside it */
        CHECK(urlguard_allowlist_match(al, item));
        return;
    }
    if (item[n - 1] == '.')
        item[--n] = '\0';
    if (strncmp(item, "*.", 2) == 0) {
        host[0] = 'x';
        strcpy(host + 1, item + 1);
        CHECK(match_variants(al, host));
        return;
    }
    CHECK(match_variants(al, item));
}

static void fuzz_allowlist(char *s)
{
    static struct urlguard_allowlist al;
    char err[256];
    char *hosts = strchr(s, '\n');
    if (hosts)
        *hosts++ = '\0';
    err[0] = '\0';
    if (urlguard_allowlist_parse(&al, s, err, sizeof err) != 0) {
        CHECK(err[0] != '\0');
        return;
    }
    CHECK(al.n <= URLGUARD_ALLOW_MAX);
    for (char *save = NULL, *it = strtok_r(s, ",", &save); it; it = strtok_r(NULL, ",", &save)) {
        while (*it == ' ' || *it == '\t')
            it++;
        size_t n = strlen(it);
        while (n > 0 && (it[n - 1] == ' ' || it[n - 1] == '\t'))
            it[--n] = '\0';
        check_item(&al, it);
    }
    for (char *save = NULL, *h = hosts ? strtok_r(hosts, "\n", &save) : NULL; h;
         h = strtok_r(NULL, "\n", &save))
        (void)urlguard_allowlist_match(&al, h);
}

/* ---- mode 2: addresses --------------------------------------------------------------------- */

static const char *const ref_v4[] = {
    "0.0.0.0/8",       "10.0.0.0/8",     "100.64.0.0/10", "127.0.0.0/8",    "169.254.0.0/16",
    "172.16.0.0/12",   "192.0.0.0/24",   "192.0.2.0/24",  "192.168.0.0/16", "198.18.0.0/15",
    "198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/4",   "240.0.0.0/4",
};

/* ::ffff:0:0/96, 64:ff9b::/96 and 2002::/16 embed IPv4 and are judged by it */
static const char *const ref_v6[] = {
    "::/128",    "::1/128",  "64:ff9b:1::/48", "100::/64",  "2001::/32", "2001:db8::/32",
    "3fff::/20", "fc00::/7", "fe80::/10",      "fec0::/10", "ff00::/8",
};

static bool in_cidr(const uint8_t *a, int family, const char *cidr)
{
    char buf[64];
    uint8_t net[16];
    strcpy(buf, cidr);
    char *slash = strchr(buf, '/');
    *slash = '\0';
    unsigned bits = (unsigned)atoi(slash + 1);
    CHECK(inet_pton(family, buf, net) == 1);
    for (unsigned i = 0; i < bits; i++) {
        unsigned m = 0x80u >> (i % 8);
        if ((a[i / 8] & m) != (net[i / 8] & m))
            return false;
    }
    return true;
}

static bool ref_v4_blocked(const uint8_t *a)
{
    for (size_t i = 0; i < sizeof ref_v4 / sizeof *ref_v4; i++) {
        if (in_cidr(a, AF_INET, ref_v4[i]))
            return true;
    }
    return false;
}

static bool ref_v6_blocked(const uint8_t *a)
{
    static const uint8_t mapped[12] = {[10] = 0xff, [11] = 0xff};
    static const uint8_t nat64[12] = {0x00, 0x64, 0xff, 0x9b};
    if (!memcmp(a, mapped, 12) || !memcmp(a, nat64, 12))
        return ref_v4_blocked(a + 12);
    if (a[0] == 0x20 && a[1] == 0x02)
        return ref_v4_blocked(a + 2);
    if (a[0] == 0) /* ::/8 reserved, the embedding forms above excepted */
        return true;
    for (size_t i = 0; i < sizeof ref_v6 / sizeof *ref_v6; i++) {
        if (in_cidr(a, AF_INET6, ref_v6[i]))
            return true;
    }
    return false;
}

static const char *classify6(const uint8_t *a)
{
    struct sockaddr_in6 s6 = {.sin6_family = AF_INET6};
    memcpy(&s6.sin6_addr, a, 16);
    return urlguard_addr_blocked((const struct sockaddr *)&s6, sizeof s6);
}

static void fuzz_addr(const uint8_t *p, size_t n)
{
    uint8_t a[16] = {0}, e[16];
    memcpy(a, p, n < 16 ? n : 16);
    struct sockaddr_in s4 = {.sin_family = AF_INET};
    memcpy(&s4.sin_addr, a, 4);
    const char *why4 = urlguard_addr_blocked((const struct sockaddr *)&s4, sizeof s4);
    CHECK((why4 != NULL) == ref_v4_blocked(a));
    CHECK((classify6(a) != NULL) == ref_v6_blocked(a));
    static const uint8_t heads[2][12] = {{[10] = 0xff, [11] = 0xff}, {0x00, 0x64, 0xff, 0x9b}};
    for (int k = 0; k < 2; k++) {
        memcpy(e, heads[k], 12);
        memcpy(e + 12, a, 4);
        CHECK((classify6(e) != NULL) == (why4 != NULL));
    }
    memset(e, 0, sizeof e);
    e[0] = 0x20;
    e[1] = 0x02;
    memcpy(e + 2, a, 4);
    memcpy(e + 6, a + 4, 10); /* the rest of a 6to4 address does not matter */
    CHECK((classify6(e) != NULL) == (why4 != NULL));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct urlguard g;
    static bool ready;
    if (!ready) {
        struct urlguard_config c;
        urlguard_config_defaults(&c);
        c.allowed = "allowed.test,*.allowed.test,127.0.0.1,10.0.0.0/8,::1";
        CHECK(urlguard_init(&g, &c, NULL, 0) == 0);
        ready = true;
    }
    if (size == 0)
        return 0;
    char *s = malloc(size);
    CHECK(s);
    memcpy(s, data + 1, size - 1);
    s[size - 1] = '\0';
    switch (data[0] % 3) {
    case 0:
        fuzz_url(s, &g);
        break;
    case 1:
        fuzz_allowlist(s);
        break;
    default:
        fuzz_addr(data + 1, size - 1);
        break;
    }
    free(s);
    return 0;
}
