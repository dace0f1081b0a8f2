/* b64 — see b64.h. */
#include "core/b64.h"

#include <stdint.h>

static const char chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t b64_encode(const unsigned char *in, size_t n, char *out)
{
    size_t o = 0, i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = chars[v >> 18];
        out[o++] = chars[(v >> 12) & 63];
        out[o++] = chars[(v >> 6) & 63];
        out[o++] = chars[v & 63];
    }
    if (i < n) {
        uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0);
        out[o++] = chars[v >> 18];
        out[o++] = chars[(v >> 12) & 63];
        out[o++] = i + 1 < n ? chars[(v >> 6) & 63] : '=';
        out[o++] = '=';
    }
    return o;
}
