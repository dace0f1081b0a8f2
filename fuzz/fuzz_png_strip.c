/* fuzz_png_strip — libFuzzer harness for the PRIVACY_MODE PNG filter (src/comfy/png_strip).
 * Each input goes through the filter in both modes and three ways: whole, one byte per feed, and
 * in feeds whose sizes come from the input (a generator seeded with a hash of it, so that a
 * mutation also reshuffles the splits; empty feeds included). Besides crashes and sanitizer
 * reports it checks that the output never runs ahead of the input, that an error sticks, that
 * every split gives the same bytes and verdict as a whole-buffer reference walk written
 * independently here, and that an accepted output re-parses as a PNG chunk stream without text
 * chunks. Seed corpus: fuzz/corpus/png_strip/ (the PNGs ComfyUI wrote in the transcripts, and
 * crafted ones: every text kind, eXIf/tIME, truncated, trailing bytes, a huge length). */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"
#include "comfy/png_strip.h"

static const uint8_t png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static bool letters(const uint8_t *t)
{
    for (int i = 0; i < 4; i++) {
        if (!((t[i] >= 'A' && t[i] <= 'Z') || (t[i] >= 'a' && t[i] <= 'z')))
            return false;
    }
    return true;
}

static bool dropped_type(const uint8_t *t, unsigned flags)
{
    if (!memcmp(t, "tEXt", 4) || !memcmp(t, "zTXt", 4) || !memcmp(t, "iTXt", 4))
        return true;
    return (flags & PNG_STRIP_EXIF_TIME) && (!memcmp(t, "eXIf", 4) || !memcmp(t, "tIME", 4));
}

enum { REF_OK = 0, REF_TRUNCATED = 1, REF_INVALID = -1 };

/* The filter's contract over the whole input at once: what it must have emitted and whether
 * the stream is complete, cut short, or not a PNG chunk stream. */
static int ref_strip(const uint8_t *p, size_t n, unsigned flags, uint8_t *out, size_t *out_n)
{
    size_t off = sizeof png_sig;
    bool first = true;
    *out_n = 0;
    if (memcmp(p, png_sig, n < sizeof png_sig ? n : sizeof png_sig) != 0)
        return REF_INVALID;
    if (n < sizeof png_sig)
        return REF_TRUNCATED;
    memcpy(out, p, sizeof png_sig);
    *out_n = sizeof png_sig;
    while (off < n) {
        if (n - off < 8)
            return REF_TRUNCATED; /* a partial header emits nothing */
        uint32_t len = be32(p + off);
        const uint8_t *type = p + off + 4;
        if (len > 0x7fffffffu || !letters(type) || (first && memcmp(type, "IHDR", 4) != 0))
            return REF_INVALID;
        first = false;
        size_t whole = 12 + (size_t)len;
        size_t avail = n - off < whole ? n - off : whole;
        if (!dropped_type(type, flags)) {
            memcpy(out + *out_n, p + off, avail);
            *out_n += avail;
        }
        if (avail < whole)
            return REF_TRUNCATED;
        off += whole;
        if (!memcmp(type, "IEND", 4))
            return off == n ? REF_OK : REF_INVALID;
    }
    return REF_TRUNCATED;
}

/* An accepted output, walked again: signature, IHDR first, IEND exactly at the end, no
 * chunk the mode drops. */
static void check_output(const uint8_t *p, size_t n, unsigned flags)
{
    size_t off = sizeof png_sig;
    bool end = false;
    CHECK(n >= sizeof png_sig && memcmp(p, png_sig, sizeof png_sig) == 0);
    CHECK(n >= sizeof png_sig + 12 && memcmp(p + sizeof png_sig + 4, "IHDR", 4) == 0);
    while (off < n) {
        CHECK(!end);
        CHECK(n - off >= 12);
        uint32_t len = be32(p + off);
        CHECK(len <= 0x7fffffffu && n - off - 12 >= len);
        CHECK(letters(p + off + 4) && !dropped_type(p + off + 4, flags));
        end = !memcmp(p + off + 4, "IEND", 4);
        off += 12 + (size_t)len;
    }
    CHECK(end);
}

struct out {
    uint8_t *p;
    size_t len;
    size_t fed; /* input bytes handed to the filter so far, the current feed included */
};

static void emit_cb(void *ctx, const unsigned char *b, size_t n)
{
    struct out *o = ctx;
    CHECK(n > 0);
    CHECK(n <= o->fed - o->len); /* never more out than in; also bounds the copy */
    memcpy(o->p + o->len, b, n);
    o->len += n;
}

static uint64_t next_rand(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

/* way: 0 whole, 1 one byte per feed, 2 sizes from the input. Returns REF_* as the filter saw
 * it: REF_INVALID if a feed failed, else REF_OK or REF_TRUNCATED by finish. */
static int run(const uint8_t *data, size_t size, unsigned flags, int way, uint64_t seed,
               struct out *o)
{
    struct png_strip s;
    size_t off = 0;
    uint64_t rng = seed | 1;
    png_strip_init_flags(&s, flags);
    o->len = o->fed = 0;
    do {
        size_t m = size - off;
        if (way == 1 && m > 1)
            m = 1;
        if (way == 2) {
            uint64_t r = next_rand(&rng);
            size_t k = (r >> 8) % ((r & 1) ? 9 : 700); /* around headers, or across chunks */
            m = k < m ? k : m;
        }
        o->fed += m;
        int rc = png_strip_feed(&s, data + off, m, emit_cb, o);
        off += m;
        if (rc != 0) {
            size_t before = o->len;
            CHECK(rc == -EBADMSG);
            CHECK(png_strip_feed(&s, png_sig, sizeof png_sig, emit_cb, o) == -EBADMSG);
            CHECK(png_strip_finish(&s) == -EBADMSG);
            CHECK(o->len == before);
            return REF_INVALID;
        }
    } while (off < size);
    int fin = png_strip_finish(&s);
    CHECK(fin == 0 || fin == -EBADMSG);
    if (fin == 0) {
        /* complete: more bytes are an error, but an empty feed is not */
        CHECK(png_strip_feed(&s, NULL, 0, emit_cb, o) == 0);
        CHECK(png_strip_finish(&s) == 0);
    }
    return fin == 0 ? REF_OK : REF_TRUNCATED;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint64_t seed = 0xcbf29ce484222325ull; /* FNV-1a of the input seeds the splits */
    for (size_t i = 0; i < size; i++)
        seed = (seed ^ data[i]) * 0x100000001b3ull;
    uint8_t *want = malloc(size + 1);
    struct out o = {.p = malloc(size + 1)};
    CHECK(want && o.p);
    CHECK(png_strip_is_png(data, size) == (size >= 8 && !memcmp(data, png_sig, 8)));

    for (unsigned flags = 0; flags <= PNG_STRIP_EXIF_TIME; flags++) {
        size_t want_n;
        int verdict = ref_strip(data, size, flags, want, &want_n);
        for (int way = 0; way < 3; way++) {
            CHECK(run(data, size, flags, way, seed, &o) == verdict);
            CHECK(o.len == want_n && memcmp(o.p, want, want_n) == 0);
            if (verdict == REF_OK)
                check_output(o.p, o.len, flags);
        }
    }
    free(o.p);
    free(want);
    return 0;
}
