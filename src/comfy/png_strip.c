/* png_strip — see png_strip.h. Owns nothing: a state machine driven byte-range by byte-range
 * over the caller's buffers. Chunk data never passes through the struct, so a 2 GB IDAT costs
 * what a 2 byte one does, and the split of the input into feeds cannot change the output. */
#include "comfy/png_strip.h"

#include <assert.h>
#include <errno.h>
#include <string.h>

enum png_strip_state {
    PS_SIG,  /* checking the 8-byte signature */
    PS_HEAD, /* collecting a chunk's length and type into hdr */
    PS_PASS, /* emitting the current chunk's data and CRC */
    PS_SKIP, /* swallowing a dropped chunk's data and CRC */
    PS_DONE, /* IEND's CRC went through: only the end of input is valid now */
    PS_ERR,  /* sticky */
};

typedef void emit_fn(void *ctx, const unsigned char *out, size_t len);

static const unsigned char png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};

/* PNG spec 5.3: a length is an unsigned 4-byte integer limited to 2^31-1, so that readers
 * with signed 32-bit lengths stay safe. Anything above means the stream is not a PNG. */
#define PNG_LEN_MAX 0x7fffffffu
#define PNG_HDR_LEN 8
#define PNG_CRC_LEN 4u

void png_strip_init_flags(struct png_strip *s, unsigned flags)
{
    assert(s);
    assert((flags & ~(unsigned)PNG_STRIP_EXIF_TIME) == 0);
    memset(s, 0, sizeof *s);
    s->flags = flags;
    s->state = PS_SIG;
}

void png_strip_init(struct png_strip *s)
{
    png_strip_init_flags(s, 0);
}

bool png_strip_is_png(const unsigned char *p, size_t n)
{
    return n >= sizeof png_sig && memcmp(p, png_sig, sizeof png_sig) == 0;
}

uint32_t png_strip_dropped(const struct png_strip *s)
{
    return s->dropped;
}

int png_strip_finish(const struct png_strip *s)
{
    return s->state == PS_DONE ? 0 : -EBADMSG;
}

static bool type_is(const unsigned char *type, const char *name)
{
    return memcmp(type, name, 4) == 0;
}

/* PNG spec 5.4: type codes are ASCII letters only; anything else is not a chunk boundary, which
 * catches a corrupt length early instead of skipping a random distance. */
static bool type_valid(const unsigned char *type)
{
    for (int i = 0; i < 4; i++) {
        unsigned char c = type[i] & ~0x20u; /* fold case: bit 5 is the chunk's property bit */
        if (c < 'A' || c > 'Z')
            return false;
    }
    return true;
}

static bool should_drop(const struct png_strip *s, const unsigned char *type)
{
    if (type_is(type, "tEXt") || type_is(type, "zTXt") || type_is(type, "iTXt"))
        return true;
    if (s->flags & PNG_STRIP_EXIF_TIME)
        return type_is(type, "eXIf") || type_is(type, "tIME");
    return false;
}

/* s->hdr holds a whole chunk header: check it, then pass or skip the chunk. */
static void on_header(struct png_strip *s, emit_fn *emit, void *ctx)
{
    const unsigned char *type = s->hdr + 4;
    uint32_t len = (uint32_t)s->hdr[0] << 24 | (uint32_t)s->hdr[1] << 16 |
                   (uint32_t)s->hdr[2] << 8 | (uint32_t)s->hdr[3];

    s->got = 0;
    /* IHDR first (spec 5.6) rejects a non-PNG that happens to start with the signature, and
     * guarantees a dropped chunk is never the first thing a reader sees. */
    if (len > PNG_LEN_MAX || !type_valid(type) || (!s->seen_ihdr && !type_is(type, "IHDR"))) {
        s->state = PS_ERR;
        return;
    }
    s->seen_ihdr = true;
    s->left = len + PNG_CRC_LEN; /* cannot wrap: len <= 2^31-1 */
    if (should_drop(s, type)) {
        s->state = PS_SKIP;
        if (s->dropped < UINT32_MAX)
            s->dropped++;
        return;
    }
    s->last = type_is(type, "IEND");
    s->state = PS_PASS;
    emit(ctx, s->hdr, PNG_HDR_LEN);
}

/* Each take_* consumes at least one byte, or sets PS_ERR; it returns the bytes consumed. */
static size_t take_sig(struct png_strip *s, const unsigned char *p, size_t n, emit_fn *emit,
                       void *ctx)
{
    size_t i = 0;
    /* byte by byte, so that a non-PNG fails on its first wrong byte whatever the split */
    while (i < n && s->got < sizeof png_sig) {
        if (p[i] != png_sig[s->got]) {
            s->state = PS_ERR;
            return i;
        }
        s->got++;
        i++;
    }
    if (s->got == sizeof png_sig) {
        s->got = 0;
        s->state = PS_HEAD;
        emit(ctx, png_sig, sizeof png_sig);
    }
    return i;
}

static size_t take_head(struct png_strip *s, const unsigned char *p, size_t n, emit_fn *emit,
                        void *ctx)
{
    size_t k = PNG_HDR_LEN - s->got;
    if (k > n)
        k = n;
    memcpy(s->hdr + s->got, p, k);
    s->got += (uint8_t)k;
    if (s->got == PNG_HDR_LEN)
        on_header(s, emit, ctx);
    return k;
}

/* Data and CRC of the current chunk: straight from the input to emit, or nowhere. */
static size_t take_body(struct png_strip *s, const unsigned char *p, size_t n, emit_fn *emit,
                        void *ctx)
{
    size_t k = n < s->left ? n : s->left;
    assert(s->left > 0);
    if (s->state == PS_PASS)
        emit(ctx, p, k);
    s->left -= (uint32_t)k;
    if (s->left == 0)
        s->state = s->last ? PS_DONE : PS_HEAD;
    return k;
}

int png_strip_feed(struct png_strip *s, const unsigned char *p, size_t n, emit_fn *emit, void *ctx)
{
    assert(s && emit);
    assert(p || n == 0);
    while (n > 0 && s->state != PS_ERR) {
        size_t k = 0;
        switch (s->state) {
        case PS_SIG:
            k = take_sig(s, p, n, emit, ctx);
            break;
        case PS_HEAD:
            k = take_head(s, p, n, emit, ctx);
            break;
        case PS_PASS:
        case PS_SKIP:
            k = take_body(s, p, n, emit, ctx);
            break;
        default: /* PS_DONE: a PNG ends at IEND; trailing bytes are smuggled or corrupt */
            s->state = PS_ERR;
            break;
        }
        p += k;
        n -= k;
    }
    return s->state == PS_ERR ? -EBADMSG : 0;
}
