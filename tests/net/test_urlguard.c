/* test_urlguard — the SSRF guard's pure parts: address classification (every blocked range at
 * its edges, the IPv6 forms that embed IPv4, public addresses that must pass), the strict URL
 * parser (accept and reject tables), allowlists (exact, wildcard, IP, CIDR, case, trailing dot)
 * and the validation-time precheck. The .c is included so its static helpers are reachable.
 * Real connections through libcurl are in test_urlguard_curl.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <sys/un.h>

#include "net/urlguard.c"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* ---- classification ------------------------------------------------------------------------- */

struct addr_case {
    const char *addr;
    const char *why; /* NULL: public */
};

static const struct addr_case addr_cases[] = {
    /* IPv4, each range at both ends, and the public neighbours of the tricky ones */
    {"0.0.0.0", "a \"this network\" address"},
    {"0.255.255.255", "a \"this network\" address"},
    {"10.0.0.0", "a private address"},
    {"10.255.255.255", "a private address"},
    {"100.64.0.0", "a shared (CGNAT) address"},
    {"100.127.255.255", "a shared (CGNAT) address"},
    {"100.63.255.255", NULL},
    {"100.128.0.0", NULL},
    {"127.0.0.1", "a loopback address"},
    {"127.255.255.255", "a loopback address"},
    {"169.254.169.254", "a link-local (cloud metadata) address"},
    {"169.254.0.0", "a link-local address"},
    {"169.254.255.255", "a link-local address"},
    {"172.16.0.0", "a private address"},
    {"172.31.255.255", "a private address"},
    {"172.15.255.255", NULL},
    {"172.32.0.0", NULL},
    {"192.0.0.0", "an IETF protocol assignment address"},
    {"192.0.0.255", "an IETF protocol assignment address"},
    {"192.0.1.1", NULL},
    {"192.0.2.0", "a documentation address"},
    {"192.0.2.255", "a documentation address"},
    {"192.168.0.0", "a private address"},
    {"192.168.255.255", "a private address"},
    {"192.169.0.0", NULL},
    {"198.18.0.0", "a benchmarking address"},
    {"198.19.255.255", "a benchmarking address"},
    {"198.17.255.255", NULL},
    {"198.20.0.0", NULL},
    {"198.51.100.0", "a documentation address"},
    {"198.51.100.255", "a documentation address"},
    {"203.0.113.0", "a documentation address"},
    {"203.0.113.255", "a documentation address"},
    {"224.0.0.0", "a multicast address"},
    {"239.255.255.255", "a multicast address"},
    {"240.0.0.0", "a reserved address"},
    {"255.255.255.254", "a reserved address"},
    {"255.255.255.255", "the broadcast address"},
    {"8.8.8.8", NULL},
    {"1.1.1.1", NULL},
    {"93.184.216.34", NULL},
    {"223.255.255.255", NULL},
    {"11.0.0.0", NULL},
    {"9.255.255.255", NULL},
    {"126.255.255.255", NULL},
    {"128.0.0.0", NULL},
    /* IPv6 */
    {"::", "the unspecified address"},
    {"::1", "a loopback address"},
    {"::2", "a reserved address"},
    {"::127.0.0.1", "a reserved address"},     /* deprecated IPv4-compatible */
    {"::ffff:0:7f00:1", "a reserved address"}, /* SIIT */
    {"::ffff:127.0.0.1", "an IPv4-mapped loopback address"},
    {"::ffff:10.1.2.3", "an IPv4-mapped private address"},
    {"::ffff:169.254.169.254", "an IPv4-mapped link-local (cloud metadata) address"},
    {"::ffff:0.0.0.0", "an IPv4-mapped \"this network\" address"},
    {"::ffff:255.255.255.255", "an IPv4-mapped broadcast address"},
    {"::ffff:8.8.8.8", NULL},
    {"64:ff9b::7f00:1", "a NAT64 loopback address"},
    {"64:ff9b::a9fe:a9fe", "a NAT64 link-local (cloud metadata) address"},
    {"64:ff9b::c0a8:1", "a NAT64 private address"},
    {"64:ff9b::808:808", NULL},
    {"64:ff9b:1::1", "a local-use NAT64 address"},
    {"2002:7f00:1::", "a 6to4 loopback address"},
    {"2002:c0a8:101::1", "a 6to4 private address"},
    {"2002:a9fe:a9fe::", "a 6to4 link-local (cloud metadata) address"},
    {"2002:808:808::1", NULL},
    {"fc00::", "a unique local address"},
    {"fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "a unique local address"},
    {"fd00:ec2::254", "a unique local (cloud metadata) address"},
    {"fd00:ec2::253", "a unique local address"},
    {"fe80::1", "a link-local address"},
    {"febf:ffff::1", "a link-local address"},
    {"fec0::1", "a site-local address"},
    {"feff::1", "a site-local address"},
    {"ff00::", "a multicast address"},
    {"ff02::1", "a multicast address"},
    {"100::", "a discard-only address"},
    {"100::ffff:ffff:ffff:ffff", "a discard-only address"},
    {"2001:db8::", "a documentation address"},
    {"2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", "a documentation address"},
    {"3fff::1", "a documentation address"},
    {"3fff:fff::1", "a documentation address"},
    {"3fff:1000::1", NULL},
    {"2001::1", "a Teredo address"},
    {"2606:4700::1111", NULL},
    {"2001:4860:4860::8888", NULL},
    {"2a00:1450:4001::1", NULL},
    {"2001:db7::1", NULL},
    {"2001:1::1", NULL},
    {"fbff::1", NULL},
};

static socklen_t make_addr(const char *text, struct sockaddr_storage *ss)
{
    uint8_t a[16];
    int alen = ip_literal(text, a);
    assert_true(alen == 4 || alen == 16);
    sockaddr_from(ss, a, alen);
    return alen == 4 ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
}

static void classify_table(void **state)
{
    for (size_t i = 0; i < ARRAY_LEN(addr_cases); i++) {
        struct sockaddr_storage ss;
        socklen_t len = make_addr(addr_cases[i].addr, &ss);
        const char *why = urlguard_addr_blocked((struct sockaddr *)&ss, len);
        if (!addr_cases[i].why && why)
            fail_msg("%s: blocked as %s, want public", addr_cases[i].addr, why);
        if (addr_cases[i].why && (!why || strcmp(why, addr_cases[i].why) != 0))
            fail_msg("%s: got %s, want %s", addr_cases[i].addr, why ? why : "public",
                     addr_cases[i].why);
    }
}

/* Every IPv4 address blocked plainly is blocked in each embedding, and public ones pass. */
static void classify_embedded_agree(void **state)
{
    for (size_t i = 0; i < ARRAY_LEN(addr_cases); i++) {
        uint8_t a[16], v6[16];
        if (ip_literal(addr_cases[i].addr, a) != 4)
            continue;
        const char *plain = v4_why(be32(a), FORM_V4);
        static const uint8_t heads[3][12] = {
            {[10] = 0xff, [11] = 0xff},
            {0x00, 0x64, 0xff, 0x9b},
            {0x20, 0x02},
        };
        for (int k = 0; k < 3; k++) {
            memcpy(v6, heads[k], 12);
            memset(v6 + 12, 0, 4);
            memcpy(k == 2 ? v6 + 2 : v6 + 12, a, 4);
            if (k == 2)
                memset(v6 + 6, 0, 10);
            const char *why = v6_why(v6);
            if ((plain == NULL) != (why == NULL))
                fail_msg("%s embedded form %d disagrees", addr_cases[i].addr, k);
        }
    }
}

static void classify_other_families(void **state)
{
    struct sockaddr_un un = {.sun_family = AF_UNIX};
    struct sockaddr_in s4 = {.sin_family = AF_INET};
    s4.sin_addr.s_addr = htonl(0x08080808);
    assert_string_equal(urlguard_addr_blocked((struct sockaddr *)&un, sizeof un),
                        "an address of an unsupported family");
    assert_null(urlguard_addr_blocked((struct sockaddr *)&s4, sizeof s4));
    /* a length too short for the family is not trusted */
    assert_non_null(urlguard_addr_blocked((struct sockaddr *)&s4, sizeof s4 - 1));
    assert_non_null(urlguard_addr_blocked(NULL, 0));
}

/* ---- URL parsing ---------------------------------------------------------------------------- */

struct url_ok {
    const char *in;
    const char *url, *scheme, *host;
    unsigned port;
    bool ip;
};

static const struct url_ok url_accept[] = {
    {"http://example.com/", "http://example.com/", "http", "example.com", 80, false},
    {"http://example.com", "http://example.com/", "http", "example.com", 80, false},
    {"HTTPS://Example.COM.:8443/a?b=1#c", NULL, "https", "example.com", 8443, false},
    {"HtTp://h_x.example/p", NULL, "http", "h_x.example", 80, false},
    {"https://a-b.c-d.example/", NULL, "https", "a-b.c-d.example", 443, false},
    {"http://[2606:4700::1111]:8080/x", "http://[2606:4700::1111]:8080/x", "http",
     "2606:4700::1111", 8080, true},
    {"http://8.8.8.8", "http://8.8.8.8/", "http", "8.8.8.8", 80, true},
    {"http://h:1/", NULL, "http", "h", 1, false},
    {"http://h:65535/", NULL, "http", "h", 65535, false},
    {"http://h:/", "http://h/", "http", "h", 80, false},
    {"http://ex%41mple.com/", NULL, "http", "example.com", 80, false},
    {"http://h/%e2%82%ac?q=%20", NULL, "http", "h", 80, false},
    /* other IPv4 spellings parse; curl normalizes them and the precheck then classifies */
    {"http://2130706433/", "http://127.0.0.1/", "http", "127.0.0.1", 80, true},
    {"http://0x7f.1/", "http://127.0.0.1/", "http", "127.0.0.1", 80, true},
    {"http://017700000001/", "http://127.0.0.1/", "http", "127.0.0.1", 80, true},
    {"http://127.1/", "http://127.0.0.1/", "http", "127.0.0.1", 80, true},
    {"http://[::ffff:127.0.0.1]/", NULL, "http", "::ffff:127.0.0.1", 80, true},
    {"http://localhost/", NULL, "http", "localhost", 80, false},
};

static void parse_accept(void **state)
{
    char err[256];
    struct urlguard_url u;
    for (size_t i = 0; i < ARRAY_LEN(url_accept); i++) {
        const struct url_ok *c = &url_accept[i];
        err[0] = '\0';
        if (urlguard_parse_url(c->in, &u, err, sizeof err) != URLGUARD_OK)
            fail_msg("%s: refused: %s", c->in, err);
        if (c->url)
            assert_string_equal(u.url, c->url);
        assert_string_equal(u.scheme, c->scheme);
        assert_string_equal(u.host, c->host);
        assert_int_equal(u.port, c->port);
        assert_int_equal(u.host_is_ip, c->ip);
        /* what we hand to curl parses again to the same thing */
        struct urlguard_url again;
        assert_int_equal(urlguard_parse_url(u.url, &again, err, sizeof err), URLGUARD_OK);
        assert_string_equal(again.url, u.url);
        assert_string_equal(again.host, u.host);
        assert_int_equal(again.port, u.port);
    }
}

struct url_bad {
    const char *in;
    const char *err; /* a substring of the message, or NULL */
};

static const struct url_bad url_reject[] = {
    {"", "empty URL"},
    {"ftp://h/", "scheme \"ftp\" is not allowed"},
    {"file:///etc/passwd", "scheme \"file\" is not allowed (http and https only)"},
    {"file://localhost/etc/passwd", "scheme \"file\" is not allowed"},
    {"gopher://h:70/_x", "scheme \"gopher\" is not allowed"},
    {"dict://h/", "not allowed"},
    {"ws://h/", "not allowed"},
    {"httpx://h/", "not allowed"},
    {"javascript:alert(1)", "scheme \"javascript\" is not allowed"},
    {"data:text/plain,x", "scheme \"data\" is not allowed"},
    {"//h/x", "URL must be absolute"},
    {"/relative", "URL must be absolute"},
    {"h/x", "URL must be absolute"},
    {"http:/h/x", "URL must be absolute"},
    {"http:///x", "URL must be absolute"},
    {"http:h", "URL must be absolute"},
    {"http://", "URL must be absolute"},
    {"http://?x", "URL must be absolute"},
    {"http://#x", "URL must be absolute"},
    {"http://user:pw@h/", "credentials"},
    {"http://user@h/", "credentials"},
    {"http://@h/", "credentials"},
    {"http://:pw@h/", "credentials"},
    {"http://a@127.0.0.1@h/", NULL},
    {"http://h:0/", "port 0 is out of range"},
    {"http://h:65536/", "malformed URL"},
    {"http://h:99999999999/", "malformed URL"},
    {"http://h:-1/", "malformed URL"},
    {"http://h:8x/", "malformed URL"},
    {"http://[::1/", "malformed URL"},
    {"http://::1/", NULL},
    {"http://[127.0.0.1]/", NULL},
    {"http://[fe80::1%25eth0]/", "zone"},
    {"http://h/a b", "space, control or non-ASCII character at offset 10"},
    {"http://h/a\tb", "offset 10"},
    {"http://h/\x01", "offset 9"},
    {"http://h/\x7f", "offset 9"},
    {"http://h/x\r\nHost: evil", "offset 10"},
    {"http://h/caf\xc3\xa9", "non-ASCII"},
    {"http://caf\xc3\xa9.com/", "non-ASCII"},
    {" http://h/", "offset 0"},
    {"http://1.2.3.4.5/", "bad host name"},
    {"http://256.1.1.1/", "bad host name"},
    {"http://x.0x1f/", "bad host name"},
    {"http://a..b/", NULL},
    {"http://.a/", NULL},
    {"http://h\\x/", NULL},
    {"http://h;x/", NULL},
    {"http://h%2fx/", NULL},
    {"http://h%00x/", NULL},
    {"http://*.example.com/", NULL},
    {"http://exa%20mple.com/", NULL},
};

static void parse_reject(void **state)
{
    char err[256];
    struct urlguard_url u;
    for (size_t i = 0; i < ARRAY_LEN(url_reject); i++) {
        const struct url_bad *c = &url_reject[i];
        err[0] = '\0';
        if (urlguard_parse_url(c->in, &u, err, sizeof err) != URLGUARD_BAD_URL)
            fail_msg("\"%s\": accepted as %s", c->in, u.url);
        if (!err[0])
            fail_msg("\"%s\": no message", c->in);
        if (c->err && !strstr(err, c->err))
            fail_msg("\"%s\": message \"%s\" lacks \"%s\"", c->in, err, c->err);
        assert_string_equal(u.host, ""); /* nothing half-filled */
    }
    assert_int_equal(urlguard_parse_url(NULL, &u, err, sizeof err), URLGUARD_BAD_URL);
}

static void parse_length(void **state)
{
    char url[URLGUARD_URL_CAP + 16], err[128];
    struct urlguard_url u;
    strcpy(url, "http://example.com/");
    size_t n = strlen(url);
    memset(url + n, 'a', URLGUARD_DEFAULT_MAX_URL - n);
    url[URLGUARD_DEFAULT_MAX_URL] = '\0';
    assert_int_equal(urlguard_parse_url(url, &u, err, sizeof err), URLGUARD_OK);
    strcat(url, "a");
    assert_int_equal(urlguard_parse_url(url, &u, err, sizeof err), URLGUARD_BAD_URL);
    assert_string_equal(err, "URL longer than 2048 characters");
    assert_int_equal(urlguard_parse_url_max(url, 4000, &u, err, sizeof err), URLGUARD_OK);
    assert_int_equal(urlguard_parse_url_max("http://h/xx", 10, &u, err, sizeof err),
                     URLGUARD_BAD_URL);
    /* a host name longer than DNS allows */
    char host[300];
    memset(host, 'a', sizeof host);
    for (int i = 60; i < 299; i += 61)
        host[i] = '.';
    host[299] = '\0';
    snprintf(url, sizeof url, "http://%s/", host);
    assert_int_equal(urlguard_parse_url(url, &u, err, sizeof err), URLGUARD_BAD_URL);
    /* a label longer than 63 */
    memset(host, 'a', 64);
    strcpy(host + 64, ".com");
    snprintf(url, sizeof url, "http://%s/", host);
    assert_int_equal(urlguard_parse_url(url, &u, err, sizeof err), URLGUARD_BAD_URL);
    strcpy(host + 63, ".com"); /* 63 is fine */
    snprintf(url, sizeof url, "http://%s/", host);
    assert_int_equal(urlguard_parse_url(url, &u, err, sizeof err), URLGUARD_OK);
}

/* ---- allowlist ------------------------------------------------------------------------------ */

static void allow_match(void **state)
{
    struct urlguard_allowlist al;
    char err[128];
    assert_int_equal(urlguard_allowlist_parse(&al,
                                              " example.com, *.Example.ORG ,127.0.0.1,10.0.0.0/8,"
                                              "::1,fd00::/8,[fe80::]/10, hooks.test. ,,",
                                              err, sizeof err),
                     0);
    assert_int_equal(al.n, 8);
    static const struct {
        const char *host;
        bool want;
    } cases[] = {
        {"example.com", true},
        {"EXAMPLE.COM", true},
        {"example.com.", true},
        {"Example.Com.", true},
        {"a.example.com", false},
        {"xexample.com", false},
        {"example.com.evil", false},
        {"example.co", false},
        {"a.example.org", true},
        {"A.B.EXAMPLE.ORG", true},
        {"a.example.org.", true},
        {"example.org", false},
        {"badexample.org", false},
        {".example.org", false},
        {"hooks.test", true},
        {"hooks.test.", true},
        {"127.0.0.1", true},
        {"127.0.0.2", false},
        {"10.0.0.0", true},
        {"10.255.255.255", true},
        {"11.0.0.0", false},
        {"9.255.255.255", false},
        {"::1", true},
        {"[::1]", true},
        {"::2", false},
        {"fd12:3456::1", true},
        {"[FD00::1]", true},
        {"fe80::1", true},
        {"febf::1", true},
        {"fec0::1", false},
        {"::ffff:127.0.0.1", false},
        {"localhost", false},
        {"", false},
        {"[", false},
        {"[::1", false},
        {"[127.0.0.1]", false},
        {"[10.1.1.1]", false},
        {"127.0.0.1.evil", false},
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        if (urlguard_allowlist_match(&al, cases[i].host) != cases[i].want)
            fail_msg("%s: want %s", cases[i].host, cases[i].want ? "allowed" : "not allowed");
    }
    assert_false(urlguard_allowlist_match(&al, NULL));
}

static void allow_empty_and_any(void **state)
{
    struct urlguard_allowlist al;
    char err[128];
    assert_int_equal(urlguard_allowlist_parse(&al, NULL, err, sizeof err), 0);
    assert_int_equal(al.n, 0);
    assert_int_equal(urlguard_allowlist_parse(&al, "", err, sizeof err), 0);
    assert_int_equal(al.n, 0);
    assert_int_equal(urlguard_allowlist_parse(&al, " , ,\t,", err, sizeof err), 0);
    assert_int_equal(al.n, 0);
    assert_false(urlguard_allowlist_match(&al, "example.com"));
    /* a /0 is the operator's explicit choice: every literal of that family */
    assert_int_equal(urlguard_allowlist_parse(&al, "0.0.0.0/0", err, sizeof err), 0);
    assert_true(urlguard_allowlist_match(&al, "127.0.0.1"));
    assert_true(urlguard_allowlist_match(&al, "255.255.255.255"));
    assert_false(urlguard_allowlist_match(&al, "::1"));
    assert_false(urlguard_allowlist_match(&al, "example.com"));
    assert_int_equal(urlguard_allowlist_parse(&al, "192.168.1.128/25", err, sizeof err), 0);
    assert_true(urlguard_allowlist_match(&al, "192.168.1.255"));
    assert_false(urlguard_allowlist_match(&al, "192.168.1.127"));
}

static void allow_errors(void **state)
{
    static const char *bad[] = {
        "*",
        "*.",
        "*.*.example.com",
        "a.*.com",
        "ex*ample.com",
        "a..b",
        ".a",
        "exa mple.com",
        "10.0.0.1/8",
        "10.0.0.0/33",
        "::/129",
        "1.2.3.4/",
        "/8",
        "1.2.3.4/-1",
        "1.2.3.4/+8",
        "1.2.3.4/0x8",
        "1.2.3.4/08x",
        "1.2.3.4.5",
        "256.1.1.1",
        "[example.com]",
        "http://example.com",
        "example.com:80",
        "fe80::1%eth0",
        "[::1",
        "host/8",
        "[8.0.0.11]",
        "[10.0.0.0]/8",
        "[]",
        "*.[p]",
        "*.[::1]",
    };
    struct urlguard_allowlist al;
    char err[128];
    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        err[0] = '\0';
        if (urlguard_allowlist_parse(&al, bad[i], err, sizeof err) != -EINVAL)
            fail_msg("\"%s\" accepted", bad[i]);
        assert_true(err[0] != '\0');
    }
    char spec[URLGUARD_ALLOW_SPEC_MAX + 2];
    size_t n = 0;
    for (int i = 0; i <= URLGUARD_ALLOW_MAX; i++)
        n += (size_t)snprintf(spec + n, sizeof spec - n, "h%d.test,", i);
    assert_int_equal(urlguard_allowlist_parse(&al, spec, err, sizeof err), -EINVAL);
    assert_string_equal(err, "more than 64 allowlist entries");
    memset(spec, 'a', sizeof spec - 1);
    spec[sizeof spec - 1] = '\0';
    assert_int_equal(urlguard_allowlist_parse(&al, spec, err, sizeof err), -EINVAL);
    memset(spec, 'a', 300);
    spec[300] = '\0';
    assert_int_equal(urlguard_allowlist_parse(&al, spec, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "too long"));
}

/* ---- guard and precheck --------------------------------------------------------------------- */

static void make_guard(struct urlguard *g, const char *allowed)
{
    struct urlguard_config c;
    char err[128];
    urlguard_config_defaults(&c);
    c.allowed = allowed;
    assert_int_equal(urlguard_init(g, &c, err, sizeof err), 0);
}

static void precheck_table(void **state)
{
    static struct urlguard g;
    make_guard(&g, NULL);
    static const struct {
        const char *url;
        enum urlguard_rc rc;
        const char *err;
    } cases[] = {
        {"http://127.0.0.1/", URLGUARD_BLOCKED, "127.0.0.1 is a loopback address"},
        {"http://2130706433:8080/", URLGUARD_BLOCKED, "127.0.0.1 is a loopback address"},
        {"http://0x7f.1/", URLGUARD_BLOCKED, "127.0.0.1 is a loopback address"},
        {"http://017700000001/", URLGUARD_BLOCKED, "127.0.0.1 is a loopback address"},
        {"http://0/", URLGUARD_BLOCKED, "0.0.0.0 is a \"this network\" address"},
        {"http://[::1]:9/", URLGUARD_BLOCKED, "::1 is a loopback address"},
        {"http://[::ffff:127.0.0.1]/", URLGUARD_BLOCKED,
         "::ffff:127.0.0.1 is an IPv4-mapped loopback address"},
        {"http://169.254.169.254/latest/meta-data/", URLGUARD_BLOCKED,
         "169.254.169.254 is a link-local (cloud metadata) address"},
        {"http://[fd00:ec2::254]/", URLGUARD_BLOCKED,
         "fd00:ec2::254 is a unique local (cloud metadata) address"},
        {"http://10.1.2.3/", URLGUARD_BLOCKED, "10.1.2.3 is a private address"},
        {"http://localhost:8080/", URLGUARD_BLOCKED, "localhost is a loopback name"},
        {"http://LocalHost./", URLGUARD_BLOCKED, "localhost is a loopback name"},
        {"http://a.b.localhost/", URLGUARD_BLOCKED, "a.b.localhost is a loopback name"},
        {"http://notlocalhost/", URLGUARD_OK, NULL},
        {"http://example.com/hook", URLGUARD_OK, NULL},
        {"https://8.8.8.8/", URLGUARD_OK, NULL},
        {"http://[2606:4700::1111]/", URLGUARD_OK, NULL},
        {"ftp://example.com/", URLGUARD_BAD_URL, "scheme \"ftp\" is not allowed"},
        {"http://u:p@example.com/", URLGUARD_BAD_URL, NULL},
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        char err[256] = "";
        struct urlguard_url u;
        enum urlguard_rc rc = urlguard_precheck(&g, cases[i].url, &u, err, sizeof err);
        if (rc != cases[i].rc)
            fail_msg("%s: %s (%s), want %s", cases[i].url, urlguard_rc_name(rc), err,
                     urlguard_rc_name(cases[i].rc));
        if (cases[i].err && !strstr(err, cases[i].err))
            fail_msg("%s: \"%s\", want \"%s\"", cases[i].url, err, cases[i].err);
    }
}

static void precheck_allowlisted(void **state)
{
    static struct urlguard g;
    struct urlguard_url u;
    char err[256];
    make_guard(&g, "127.0.0.1,localhost,*.internal,10.0.0.0/8");
    assert_int_equal(urlguard_precheck(&g, "http://127.0.0.1:9/", &u, err, sizeof err), 0);
    assert_int_equal(urlguard_precheck(&g, "http://2130706433:9/", &u, err, sizeof err), 0);
    assert_int_equal(urlguard_precheck(&g, "http://localhost/", &u, err, sizeof err), 0);
    assert_int_equal(urlguard_precheck(&g, "http://10.9.9.9/", &u, err, sizeof err), 0);
    assert_int_equal(urlguard_precheck(&g, "http://hooks.internal/", &u, err, sizeof err), 0);
    assert_int_equal(urlguard_precheck(&g, "http://127.0.0.2/", &u, err, sizeof err),
                     URLGUARD_BLOCKED);
    assert_int_equal(urlguard_precheck(&g, "http://a.localhost/", &u, err, sizeof err),
                     URLGUARD_BLOCKED);
    /* the allowlist never excuses a bad URL */
    assert_int_equal(urlguard_precheck(&g, "ftp://127.0.0.1/", &u, err, sizeof err),
                     URLGUARD_BAD_URL);
    assert_int_equal(urlguard_precheck(&g, "http://u@127.0.0.1/", &u, err, sizeof err),
                     URLGUARD_BAD_URL);
}

static void guard_config(void **state)
{
    static struct urlguard g;
    struct urlguard_config c;
    char err[128];
    urlguard_config_defaults(&c);
    assert_int_equal(c.max_url_len, 2048);
    assert_int_equal(c.max_redirects, 3);
    assert_false(c.follow_redirects);
    assert_int_equal(urlguard_init(&g, &c, err, sizeof err), 0);
    assert_int_equal(g.max_redirects, 0); /* not following: curl's MAXREDIRS 0 too */
    c.follow_redirects = true;
    assert_int_equal(urlguard_init(&g, &c, err, sizeof err), 0);
    assert_int_equal(g.max_redirects, 3);
    struct urlguard_config bad[] = {c, c, c, c, c, c, c};
    bad[0].max_url_len = 15;
    bad[1].max_url_len = URLGUARD_URL_CAP;
    bad[2].max_redirects = 0;
    bad[3].max_redirects = 21;
    bad[4].max_bytes = 0;
    bad[5].timeout_ms = 0;
    bad[6].allowed = "*";
    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        err[0] = '\0';
        assert_int_equal(urlguard_init(&g, &bad[i], err, sizeof err), -EINVAL);
        assert_true(err[0] != '\0');
    }
}

static void rc_names(void **state)
{
    assert_string_equal(urlguard_rc_name(URLGUARD_OK), "OK");
    assert_string_equal(urlguard_rc_name(URLGUARD_BAD_URL), "INVALID_URL");
    assert_string_equal(urlguard_rc_name(URLGUARD_BLOCKED), "SSRF_BLOCKED");
    assert_string_equal(urlguard_rc_name(URLGUARD_TOO_BIG), "RESPONSE_TOO_LARGE");
    assert_string_equal(urlguard_rc_name(URLGUARD_TOO_MANY_REDIRECTS), "TOO_MANY_REDIRECTS");
    assert_string_equal(urlguard_rc_name((enum urlguard_rc)99), "UNKNOWN");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(classify_table),
        cmocka_unit_test(classify_embedded_agree),
        cmocka_unit_test(classify_other_families),
        cmocka_unit_test(parse_accept),
        cmocka_unit_test(parse_reject),
        cmocka_unit_test(parse_length),
        cmocka_unit_test(allow_match),
        cmocka_unit_test(allow_empty_and_any),
        cmocka_unit_test(allow_errors),
        cmocka_unit_test(precheck_table),
        cmocka_unit_test(precheck_allowlisted),
        cmocka_unit_test(guard_config),
        cmocka_unit_test(rc_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
