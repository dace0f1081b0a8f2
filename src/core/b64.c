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

size_t b64url_encode(const unsigned char *in, size_t n, char *out)
{
    static const char url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t o = 0;
    uint32_t acc = 0;
    unsigned bits = 0;
    for (size_t i = 0; i < n; i++) {
        acc = (acc << 8) | in[i];
        bits += 8;
        while (bits >= 6) {
            bits -= 6;
            out[o++] = url[(acc >> bits) & 63];
        }
        acc &= (1u << bits) - 1;
    }
    if (bits > 0)
        out[o++] = url[(acc << (6 - bits)) & 63];
    return o;
}

/* 0..63 for a character of the alphabet, -1 otherwise. */
static int b64_value(unsigned char ch, bool url)
{
    if (ch >= 'A' && ch <= 'Z')
        return ch - 'A';
    if (ch >= 'a' && ch <= 'z')
        return ch - 'a' + 26;
    if (ch >= '0' && ch <= '9')
        return ch - '0' + 52;
    if (ch == (url ? '-' : '+'))
        return 62;
    if (ch == (url ? '_' : '/'))
        return 63;
    return -1;
}

long b64_decode(const char *in, size_t n, unsigned char *out, size_t cap, unsigned flags)
{
    bool url = flags & B64_URL;
    size_t pad = 0;
    while (pad < 2 && n > 0 && in[n - 1] == '=') {
        n--;
        pad++;
    }
    if (pad && (flags & B64_NO_PADDING))
        return -1;
    if (n % 4 == 1 || (pad && (n + pad) % 4 != 0))
        return -1; /* a lone sextet, or padding that does not complete a quantum */
    if (!pad && n % 4 != 0 && !(flags & (B64_NO_PADDING | B64_PADDING_OPTIONAL)))
        return -1;
    size_t need = n / 4 * 3 + (n % 4 ? n % 4 - 1 : 0);
    if (need > cap)
        return -1;
    size_t o = 0;
    uint32_t acc = 0;
    unsigned bits = 0;
    for (size_t i = 0; i < n; i++) {
        int v = b64_value((unsigned char)in[i], url);
        if (v < 0)
            return -1;
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (unsigned char)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    if (acc != 0)
        return -1; /* non-canonical: leftover bits must be zero */
    return (long)o;
}
