/* fuzz_cors — libFuzzer harness for CORS (src/guard/cors): the Origin and
 * Access-Control-Request-Headers values clients send, and the CORS_ORIGINS parser.
 *
 * Input: one selector byte, then up to four fields separated by '\n': Origin, the requested
 * method, Access-Control-Request-Headers, and a CORS_ORIGINS value (a missing field is an
 * absent header). The selector picks a fixed configuration (a list, the list with credentials,
 * "*", CORS off) or the fourth field parsed as the configuration. Besides crashes and sanitizer
 * reports it checks that every header value is printable ASCII (nothing a client sent can
 * split a header), that Access-Control-Allow-Origin is "*" or the request's origin, that only
 * listed methods and known header names are allowed, that a preflight is never allowed for an
 * origin an actual request is refused, and that a configuration that parses is normalized for
 * good (each origin parses back to itself and is allowed). Seed corpus: fuzz/corpus/cors/. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"
#include "guard/cors.h"

static const char fixed_list[] =
    "https://app.example.com, http://localhost:3000, null, http://[::1]:8080";

/* Written again here, not taken from cors.c, so that a bug there cannot hide itself. */
static const char *const known_request_headers[] = {
    "authorization", "x-api-key", "content-type",  "idempotency-key", "x-request-id",
    "last-event-id", "range",     "if-none-match", "if-range",
};

static bool same_nocase(const char *a, const char *b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char x = a[i], y = b[i];
        if (x >= 'A' && x <= 'Z')
            x = (char)(x - 'A' + 'a');
        if (y >= 'A' && y <= 'Z')
            y = (char)(y - 'A' + 'a');
        if (x != y)
            return false;
    }
    return true;
}

static bool known_name(const char *p, size_t n)
{
    for (size_t i = 0; i < sizeof(known_request_headers) / sizeof(known_request_headers[0]); i++) {
        if (strlen(known_request_headers[i]) == n && same_nocase(p, known_request_headers[i], n))
            return true;
    }
    return false;
}

static void check_printable(const char *v)
{
    CHECK(v);
    size_t n = strlen(v);
    CHECK(n < 1024);
    for (size_t i = 0; i < n; i++)
        CHECK(v[i] >= 0x20 && v[i] < 0x7f);
}

static const char *value_of(const struct cors_headers *h, const char *name)
{
    const char *found = NULL;
    CHECK(h->n <= CORS_MAX_HEADERS);
    for (unsigned i = 0; i < h->n; i++) {
        check_printable(h->h[i].name);
        check_printable(h->h[i].value);
        if (strcmp(h->h[i].name, name) == 0) {
            CHECK(!found); /* never twice */
            found = h->h[i].value;
        }
    }
    return found;
}

/* Access-Control-Allow-Headers: ", "-joined known names. */
static void check_allow_headers(const char *v)
{
    while (*v) {
        const char *end = strchr(v, ',');
        size_t n = end ? (size_t)(end - v) : strlen(v);
        CHECK(known_name(v, n));
        v += n;
        if (*v) {
            CHECK(v[1] == ' ');
            v += 2;
        }
    }
}

struct field {
    const char *p;
    size_t n;
};

static void check_request(const struct cors_config *cfg, struct field f[4])
{
    struct cors_headers a, p;
    enum cors_verdict va = cors_actual(cfg, f[0].p, f[0].n, &a);
    bool ok = cors_origin_allowed(cfg, f[0].p, f[0].n);
    CHECK((va == CORS_ALLOWED) == (cors_enabled(cfg) && ok));
    const char *acao = value_of(&a, "Access-Control-Allow-Origin");
    CHECK((acao != NULL) == (va == CORS_ALLOWED));
    if (acao)
        CHECK(strcmp(acao, "*") == 0 ||
              (strlen(acao) == f[0].n && same_nocase(acao, f[0].p, f[0].n)));
    CHECK(!value_of(&a, "Access-Control-Allow-Credentials") || (acao && strcmp(acao, "*") != 0));

    enum cors_verdict vp = cors_preflight(cfg, f[0].p, f[0].n, f[1].p, f[1].n, f[2].p, f[2].n, &p);
    CHECK(vp != CORS_ALLOWED || va == CORS_ALLOWED);
    const char *allow = value_of(&p, "Access-Control-Allow-Headers");
    if (vp == CORS_ALLOWED) {
        CHECK(f[1].n >= 3 && f[1].n <= 6);
        CHECK(f[2].n <= CORS_REQUEST_HEADERS_MAX);
        CHECK(value_of(&p, "Access-Control-Allow-Methods") &&
              value_of(&p, "Access-Control-Max-Age"));
        if (allow)
            check_allow_headers(allow);
    } else {
        CHECK(!allow && !value_of(&p, "Access-Control-Allow-Origin"));
    }
}

/* A configuration that parsed: each origin is in its final form and matches itself. */
static void check_normalized(const struct cors_config *cfg)
{
    static struct cors_config again;
    char err[256];
    for (unsigned i = 0; i < cfg->norigins; i++) {
        const struct cors_origin *o = &cfg->origins[i];
        CHECK(o->len == strlen(o->s) && o->len > 0);
        check_printable(o->s);
        for (size_t k = 0; k < o->len; k++)
            CHECK(!(o->s[k] >= 'A' && o->s[k] <= 'Z') && o->s[k] != ' ' && o->s[k] != ',');
        CHECK(cors_origin_allowed(cfg, o->s, o->len));
        CHECK(cors_parse(&again, o->s, false, 0, err, sizeof(err)) == 0);
        CHECK(again.norigins == 1 && strcmp(again.origins[0].s, o->s) == 0);
    }
}

static void split(const uint8_t *data, size_t size, struct field f[4])
{
    size_t off = 0;
    for (int i = 0; i < 4; i++) {
        f[i].p = NULL;
        f[i].n = 0;
        if (off > size || (i > 0 && off == size))
            continue;
        const uint8_t *nl = memchr(data + off, '\n', size - off);
        size_t end = nl ? (size_t)(nl - data) : size;
        f[i].p = (const char *)data + off;
        f[i].n = end - off;
        off = end + 1;
        if (!nl)
            off = size + 1;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct cors_config fixed[4], fuzzed;
    static bool ready;
    char err[256];
    if (!ready) {
        CHECK(cors_parse(&fixed[0], fixed_list, false, 600, err, sizeof(err)) == 0);
        CHECK(cors_parse(&fixed[1], fixed_list, true, 7200, err, sizeof(err)) == 0);
        CHECK(cors_parse(&fixed[2], "*", false, 0, err, sizeof(err)) == 0);
        CHECK(cors_parse(&fixed[3], "", false, 600, err, sizeof(err)) == 0);
        ready = true;
    }
    if (size == 0)
        return 0;
    struct field f[4];
    split(data + 1, size - 1, f);
    unsigned sel = data[0] % 5;
    if (sel < 4) {
        check_request(&fixed[sel], f);
        return 0;
    }
    /* the fourth field as CORS_ORIGINS (NUL-terminated copy; a NUL inside ends it early) */
    char *text = malloc(f[3].n + 1);
    CHECK(text);
    if (f[3].n)
        memcpy(text, f[3].p, f[3].n);
    text[f[3].n] = '\0';
    err[0] = '\0';
    bool creds = data[0] & 0x80;
    if (cors_parse(&fuzzed, text, creds, 600, err, sizeof(err)) == 0) {
        CHECK(!(fuzzed.any && creds));
        check_normalized(&fuzzed);
        check_request(&fuzzed, f);
    } else {
        CHECK(strncmp(err, "CORS_", 5) == 0 && !cors_enabled(&fuzzed));
    }
    free(text);
    return 0;
}
