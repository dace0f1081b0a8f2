/* http_fields — see http_fields.h. */
#include "http/http_fields.h"

#include <string.h>
#include <strings.h>

#include "http/http_parser.h"

const char *http_header_get(const struct http_request *r, const char *name, size_t *len)
{
    size_t nl = strlen(name);
    for (unsigned i = 0; i < r->nheaders; i++) {
        const struct http_header *h = &r->headers[i];
        if (h->name_len == nl && strncasecmp(h->name, name, nl) == 0) {
            if (len)
                *len = h->value_len;
            return h->value;
        }
    }
    return NULL;
}

unsigned http_header_count(const struct http_request *r, const char *name)
{
    size_t nl = strlen(name);
    unsigned n = 0;
    for (unsigned i = 0; i < r->nheaders; i++)
        n += r->headers[i].name_len == nl && strncasecmp(r->headers[i].name, name, nl) == 0;
    return n;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int http_pct_decode(const char *src, size_t n, char *dst, size_t cap, bool plus_space)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char c = src[i];
        if (c == '%') {
            if (i + 2 >= n)
                return -1;
            int hi = hexval(src[i + 1]), lo = hexval(src[i + 2]);
            if (hi < 0 || lo < 0)
                return -1;
            c = (char)(hi * 16 + lo);
            if (c == '\0')
                return -1;
            i += 2;
        } else if (c == '+' && plus_space) {
            c = ' ';
        } else if (c == '\0') {
            return -1;
        }
        if (o + 1 >= cap)
            return -1;
        dst[o++] = c;
    }
    if (o >= cap)
        return -1;
    dst[o] = '\0';
    return (int)o;
}

int http_query_get(const struct http_request *r, const char *key, char *dst, size_t cap)
{
    size_t kl = strlen(key);
    const char *q = r->query, *end = r->query + r->query_len;
    while (q < end) {
        const char *amp = memchr(q, '&', (size_t)(end - q));
        const char *pe = amp ? amp : end;
        const char *eq = memchr(q, '=', (size_t)(pe - q));
        const char *ke = eq ? eq : pe;
        if ((size_t)(ke - q) == kl && memcmp(q, key, kl) == 0) {
            const char *v = eq ? eq + 1 : pe;
            int n = http_pct_decode(v, (size_t)(pe - v), dst, cap, true);
            if (n < 0 && cap)
                dst[0] = '\0';
            return n < 0 ? -2 : n;
        }
        q = pe + 1;
    }
    return -1;
}
