/* test_png_strip — the PRIVACY_MODE PNG filter. The PNGs a real ComfyUI SaveImage wrote (the
 * transcripts, path in argv[1]) lose their "prompt" tEXt and nothing else, and stay valid PNGs
 * (every CRC checked with zlib); synthetic files cover zTXt/iTXt, the eXIf/tIME mode, a 10 MB
 * text chunk, truncation, garbage and trailing bytes. Every case is run over many splits of the
 * input into feeds (whole, 1 byte, every two-piece split, random) and must give the same bytes.
 * Without the transcripts the synthetic cases still run and the program exits 77 (skipped). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>
#include <zlib.h>

#include "comfy/png_strip.h"

static const char *transcripts; /* argv[1] */

static const unsigned char sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};

/* ---- a growable byte buffer, for building inputs and collecting outputs ------------------ */

struct bytes {
    unsigned char *p;
    size_t len, cap;
};

static void bytes_put(struct bytes *b, const void *p, size_t n)
{
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n)
            cap *= 2;
        b->p = realloc(b->p, cap);
        assert_non_null(b->p);
        b->cap = cap;
    }
    if (n)
        memcpy(b->p + b->len, p, n);
    b->len += n;
}

static void bytes_free(struct bytes *b)
{
    free(b->p);
    memset(b, 0, sizeof *b);
}

static void put_be32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

static uint32_t get_be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Appends a chunk with a correct CRC. */
static void put_chunk(struct bytes *b, const char *type, const void *data, size_t n)
{
    unsigned char h[8], c[4];
    put_be32(h, (uint32_t)n);
    memcpy(h + 4, type, 4);
    uLong crc = crc32(0, h + 4, 4);
    crc = crc32(crc, data, (uInt)n);
    put_be32(c, (uint32_t)crc);
    bytes_put(b, h, 8);
    bytes_put(b, data, n);
    bytes_put(b, c, 4);
}

static const unsigned char ihdr[13] = {0, 0, 0, 8, 0, 0, 0, 8, 8, 2, 0, 0, 0}; /* 8x8 RGB */

/* ---- an independent chunk walker: the oracle the filter's output is checked against ------ */

static bool is_text(const unsigned char *type)
{
    return !memcmp(type, "tEXt", 4) || !memcmp(type, "zTXt", 4) || !memcmp(type, "iTXt", 4);
}

static bool is_exif_time(const unsigned char *type)
{
    return !memcmp(type, "eXIf", 4) || !memcmp(type, "tIME", 4);
}

/* Walks a whole PNG; fails the test unless it is a signature, IHDR first, IEND exactly at the
 * end, every CRC right. Returns the number of chunks; counts text chunks into *texts. */
static int walk_png(const unsigned char *p, size_t n, int *texts)
{
    size_t off = sizeof sig;
    int chunks = 0;
    bool iend = false;
    *texts = 0;
    assert_true(n >= sizeof sig);
    assert_memory_equal(p, sig, sizeof sig);
    while (off < n) {
        assert_false(iend);
        assert_true(n - off >= 12);
        uint32_t len = get_be32(p + off);
        assert_true(len <= 0x7fffffffu && n - off - 12 >= len);
        const unsigned char *type = p + off + 4;
        uLong crc = crc32(0, type, 4 + len);
        assert_int_equal(crc, get_be32(p + off + 8 + len));
        if (chunks == 0)
            assert_memory_equal(type, "IHDR", 4);
        iend = !memcmp(type, "IEND", 4);
        *texts += is_text(type);
        chunks++;
        off += 12 + (size_t)len;
    }
    assert_true(iend);
    return chunks;
}

/* What the filter must produce: the signature and every chunk the mode keeps, byte for byte. */
static void expected_output(const unsigned char *p, size_t n, unsigned flags, struct bytes *out,
                            uint32_t *dropped)
{
    size_t off = sizeof sig;
    *dropped = 0;
    bytes_put(out, p, sizeof sig);
    while (off < n) {
        uint32_t len = get_be32(p + off);
        const unsigned char *type = p + off + 4;
        bool drop = is_text(type) || ((flags & PNG_STRIP_EXIF_TIME) && is_exif_time(type));
        if (drop)
            (*dropped)++;
        else
            bytes_put(out, p + off, 12 + (size_t)len);
        off += 12 + (size_t)len;
    }
}

/* ---- driving the filter -------------------------------------------------------------------- */

/* Collects output. Checks the streaming promise: every emitted range lies in the input being
 * fed, except a chunk header or the signature (8 bytes, from the filter's own memory). */
struct sink {
    struct bytes out;
    const unsigned char *in;
    size_t in_n;
    bool keep; /* store the bytes (else only count and checksum them) */
    size_t total;
    uLong crc;
    int foreign;      /* emitted ranges longer than 8 bytes not inside the input */
    int empty;        /* zero-length emits */
    bool feed_failed; /* run(): the error came from a feed, not from finish */
};

static void sink_cb(void *ctx, const unsigned char *p, size_t n)
{
    struct sink *k = ctx;
    uintptr_t a = (uintptr_t)p, in = (uintptr_t)k->in;
    bool inside = a >= in && a - in <= k->in_n && n <= k->in_n - (a - in);
    if (!inside && n > 8)
        k->foreign++;
    if (n == 0)
        k->empty++;
    if (k->keep)
        bytes_put(&k->out, p, n);
    k->total += n;
    k->crc = crc32(k->crc, p, (uInt)n);
}

static void sink_init(struct sink *k)
{
    memset(k, 0, sizeof *k);
    k->keep = true;
    k->crc = crc32(0, NULL, 0);
}

static int feed(struct png_strip *s, struct sink *k, const unsigned char *p, size_t n)
{
    k->in = p;
    k->in_n = n;
    return png_strip_feed(s, p, n, sink_cb, k);
}

static uint64_t rng_next(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

/* Feed sizes: 0 = whole, 1 = one byte, 2 = random (seeded; empty feeds included). */
static size_t next_size(int mode, uint64_t *rng, size_t left)
{
    size_t k = left;
    if (mode == 1)
        k = 1;
    if (mode == 2) {
        uint64_t r = rng_next(rng);
        static const size_t range[4] = {
            4,    /* 0..3: empty feeds too */
            16,   /* around a chunk header */
            300,  /* across whole small chunks */
            5000, /* most of a transcript file */
        };
        k = (r >> 8) % range[r & 3] + ((r & 3) != 0);
    }
    return k < left ? k : left;
}

/* Runs the whole input through a fresh filter; returns finish's result, or the first feed error
 * (and then checks that the error sticks). */
static int run(const unsigned char *p, size_t n, unsigned flags, int mode, uint64_t seed,
               struct sink *k)
{
    struct png_strip s;
    uint64_t rng = seed | 1;
    size_t off = 0;
    png_strip_init_flags(&s, flags);
    sink_init(k);
    do {
        size_t m = next_size(mode, &rng, n - off);
        int rc = feed(&s, k, p + off, m);
        if (rc != 0) {
            size_t before = k->total;
            assert_int_equal(rc, -EBADMSG);
            assert_int_equal(feed(&s, k, sig, sizeof sig), -EBADMSG);
            assert_int_equal(feed(&s, k, NULL, 0), -EBADMSG);
            assert_int_equal(png_strip_finish(&s), -EBADMSG);
            assert_int_equal(k->total, before);
            k->feed_failed = true;
            return rc;
        }
        off += m;
    } while (off < n);
    assert_int_equal(k->foreign, 0);
    assert_int_equal(k->empty, 0);
    return png_strip_finish(&s);
}

/* The input through every split this test knows; all must give exactly `want` and finish 0. */
static void check_all_splits(const unsigned char *p, size_t n, unsigned flags,
                             const struct bytes *want)
{
    struct sink k;
    for (int mode = 0; mode < 3; mode++) {
        for (uint64_t seed = 1; seed <= (mode == 2 ? 200u : 1u); seed++) {
            assert_int_equal(run(p, n, flags, mode, seed * 0x9e3779b97f4a7c15ull, &k), 0);
            assert_int_equal(k.out.len, want->len);
            assert_memory_equal(k.out.p, want->p, want->len);
            bytes_free(&k.out);
        }
    }
    /* every two-piece split: each header and length byte boundary */
    for (size_t cut = 0; cut <= n; cut++) {
        struct png_strip s;
        png_strip_init_flags(&s, flags);
        sink_init(&k);
        assert_int_equal(feed(&s, &k, p, cut), 0);
        assert_int_equal(feed(&s, &k, p + cut, n - cut), 0);
        assert_int_equal(png_strip_finish(&s), 0);
        assert_int_equal(k.out.len, want->len);
        assert_memory_equal(k.out.p, want->p, want->len);
        bytes_free(&k.out);
    }
}

/* Strips p both ways (default and PNG_STRIP_EXIF_TIME) and checks the output against the
 * oracle, over every split. Returns the default mode's dropped count. */
static uint32_t check_strip(const unsigned char *p, size_t n)
{
    uint32_t dropped = 0;
    for (unsigned flags = 0; flags <= PNG_STRIP_EXIF_TIME; flags++) {
        struct bytes want = {0};
        struct png_strip s;
        struct sink k;
        int texts;
        uint32_t want_dropped;
        expected_output(p, n, flags, &want, &want_dropped);
        walk_png(want.p, want.len, &texts);
        assert_int_equal(texts, 0);
        check_all_splits(p, n, flags, &want);

        png_strip_init_flags(&s, flags);
        sink_init(&k);
        assert_int_equal(feed(&s, &k, p, n), 0);
        assert_int_equal(png_strip_finish(&s), 0);
        assert_int_equal(png_strip_dropped(&s), want_dropped);
        if (flags == 0)
            dropped = want_dropped;
        bytes_free(&k.out);
        bytes_free(&want);
    }
    return dropped;
}

/* ---- the recorded ComfyUI PNGs ------------------------------------------------------------- */

static void load(const char *name, struct bytes *b)
{
    char path[4096];
    unsigned char buf[4096];
    snprintf(path, sizeof path, "%s/%s", transcripts, name);
    FILE *f = fopen(path, "rb");
    if (!f)
        fail_msg("%s: %s", path, strerror(errno));
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0)
        bytes_put(b, buf, n);
    fclose(f);
}

static void comfyui_outputs_lose_only_their_prompt(void **state)
{
    static const char *const files[] = {"01_prompt_success_view_0.png", "06_view_output.png",
                                        "07_upload_inverted.png"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        struct bytes in = {0};
        int texts;
        load(files[i], &in);
        /* the fixture is what SaveImage writes: valid, with the prompt in a tEXt chunk */
        int chunks = walk_png(in.p, in.len, &texts);
        assert_true(texts >= 1);
        int in_texts = texts;
        assert_non_null(memmem(in.p, in.len, "tEXtprompt\0{", 12));

        assert_int_equal(check_strip(in.p, in.len), in_texts);

        struct sink k;
        assert_int_equal(run(in.p, in.len, 0, 0, 0, &k), 0);
        assert_int_equal(walk_png(k.out.p, k.out.len, &texts), chunks - in_texts);
        assert_int_equal(texts, 0);
        assert_null(memmem(k.out.p, k.out.len, "class_type", 10));
        bytes_free(&k.out);
        bytes_free(&in);
    }
}

/* ---- synthetic files ----------------------------------------------------------------------- */

/* IHDR, every text kind (before and after IDAT), eXIf, tIME, IDAT, IEND. */
static void build_full(struct bytes *b)
{
    static const char prompt[] = "prompt\0{\"1\": {\"class_type\": \"SaveImage\"}}";
    static const char ztxt[] = "workflow\0\0x\x9c\x03\x00\x00\x00\x00\x01";
    static const char itxt[] = "workflow\0\0\0en\0workflow\0{\"nodes\": []}";
    static const unsigned char exif[] = {'M', 'M', 0, 42, 0, 0, 0, 8, 0, 0};
    static const unsigned char tm[] = {0x07, 0xea, 1, 7, 12, 0, 0};
    static const unsigned char idat[] = {0x78, 0x9c, 0x63, 0x60, 0x00,
                                         0x00, 0x00, 0x02, 0x00, 0x01};
    bytes_put(b, sig, sizeof sig);
    put_chunk(b, "IHDR", ihdr, sizeof ihdr);
    put_chunk(b, "tEXt", prompt, sizeof prompt - 1);
    put_chunk(b, "zTXt", ztxt, sizeof ztxt - 1);
    put_chunk(b, "eXIf", exif, sizeof exif);
    put_chunk(b, "iTXt", itxt, sizeof itxt - 1);
    put_chunk(b, "tIME", tm, sizeof tm);
    put_chunk(b, "IDAT", idat, sizeof idat);
    put_chunk(b, "tEXt", "Comment\0empty", 13);
    put_chunk(b, "tEXt", "", 0);
    put_chunk(b, "IEND", "", 0);
}

static void every_text_kind_dropped(void **state)
{
    struct bytes in = {0}, out = {0};
    uint32_t dropped;
    int texts;
    build_full(&in);
    assert_int_equal(walk_png(in.p, in.len, &texts), 10);
    assert_int_equal(texts, 5);
    assert_int_equal(check_strip(in.p, in.len), 5);

    /* default: eXIf and tIME stay; with the flag they go too */
    expected_output(in.p, in.len, 0, &out, &dropped);
    assert_int_equal(walk_png(out.p, out.len, &texts), 5);
    assert_non_null(memmem(out.p, out.len, "eXIf", 4));
    assert_non_null(memmem(out.p, out.len, "tIME", 4));
    bytes_free(&out);
    expected_output(in.p, in.len, PNG_STRIP_EXIF_TIME, &out, &dropped);
    assert_int_equal(walk_png(out.p, out.len, &texts), 3);
    assert_int_equal(dropped, 7);
    bytes_free(&out);
    bytes_free(&in);
}

/* Only the exact type codes go: tEXT (another chunk, by case) and unknown ones stay. */
static void similar_types_kept(void **state)
{
    struct bytes in = {0};
    bytes_put(&in, sig, sizeof sig);
    put_chunk(&in, "IHDR", ihdr, sizeof ihdr);
    put_chunk(&in, "tEXT", "a\0b", 3);
    put_chunk(&in, "teXt", "a\0b", 3);
    put_chunk(&in, "zTXT", "a\0b", 3);
    put_chunk(&in, "exIf", "", 0);
    put_chunk(&in, "prVt", "x", 1);
    put_chunk(&in, "IEND", "", 0);
    assert_int_equal(check_strip(in.p, in.len), 0);
    bytes_free(&in);
}

/* The filter holds no chunk: a 10 MB tEXt goes by with nothing emitted, a 10 MB IDAT comes out
 * as it goes in (output trails input by at most one pending 8-byte header). */
static void huge_chunks_stream_in_constant_memory(void **state)
{
    enum { HUGE = 10 * 1024 * 1024, PIECE = 65521 };
    unsigned char *piece = malloc(PIECE);
    struct png_strip s;
    struct sink k;
    struct bytes head = {0}, tail = {0};
    unsigned char hdr[8], crc[4] = {1, 2, 3, 4};
    assert_non_null(piece);
    assert_true(sizeof s <= 32);
    memset(piece, 'w', PIECE);

    for (int kind = 0; kind < 2; kind++) {
        const char *type = kind == 0 ? "tEXt" : "IDAT";
        size_t in_total = 0;
        head.len = tail.len = 0;
        bytes_put(&head, sig, sizeof sig);
        put_chunk(&head, "IHDR", ihdr, sizeof ihdr);
        put_chunk(&tail, "IEND", "", 0);
        put_be32(hdr, HUGE);
        memcpy(hdr + 4, type, 4);

        png_strip_init(&s);
        sink_init(&k);
        k.keep = false;
        assert_int_equal(feed(&s, &k, head.p, head.len), 0);
        assert_int_equal(feed(&s, &k, hdr, 5), 0); /* a split header: nothing to decide yet */
        assert_int_equal(k.total, head.len);
        assert_int_equal(feed(&s, &k, hdr + 5, 3), 0);
        in_total = head.len + 8;
        for (size_t done = 0; done < HUGE;) {
            size_t m = HUGE - done < PIECE ? HUGE - done : PIECE;
            assert_int_equal(feed(&s, &k, piece, m), 0);
            done += m;
            in_total += m;
            assert_int_equal(k.total, kind == 0 ? head.len : in_total);
        }
        assert_int_equal(feed(&s, &k, crc, 4), 0);
        assert_int_equal(feed(&s, &k, tail.p, tail.len), 0);
        assert_int_equal(png_strip_finish(&s), 0);
        assert_int_equal(k.foreign, 0);
        assert_int_equal(png_strip_dropped(&s), kind == 0 ? 1 : 0);
        assert_int_equal(k.total, head.len + tail.len + (kind == 0 ? 0 : 8 + HUGE + 4));
    }
    bytes_free(&head);
    bytes_free(&tail);
    free(piece);
}

static void truncated_input_fails_finish(void **state)
{
    struct bytes in = {0}, want = {0};
    uint32_t dropped;
    build_full(&in);
    expected_output(in.p, in.len, 0, &want, &dropped);
    for (size_t cut = 0; cut < in.len; cut++) {
        struct sink k;
        for (int mode = 0; mode < 3; mode++) {
            assert_int_equal(run(in.p, cut, 0, mode, cut + 1, &k), -EBADMSG);
            /* what did come out is a prefix of the right output */
            assert_true(k.out.len <= want.len);
            assert_memory_equal(k.out.p, want.p, k.out.len);
            bytes_free(&k.out);
        }
    }
    bytes_free(&want);
    bytes_free(&in);
}

static void garbage_rejected_from_first_bytes(void **state)
{
    static const struct {
        const char *what;
        const char *p;
        size_t n;
    } bad[] = {
        {"jpeg", "\xff\xd8\xff\xe0\0\x10JFIF\0", 11},
        {"gif", "GIF89a\x01\0\x01\0", 10},
        {"webp", "RIFF\0\0\0\0WEBPVP8 ", 16},
        {"html", "<!DOCTYPE html>", 15},
        {"json", "{\"error\": \"x\"}", 14},
        {"png via a text-mode transfer", "\x89PNG\n\n\x1a\n", 8},
        {"png signature cut short", "\x89PNG\r\n\x1a", 7},
        {"one zero byte", "", 1},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const unsigned char *p = (const unsigned char *)bad[i].p;
        struct sink k;
        assert_false(png_strip_is_png(p, bad[i].n));
        int rc = run(p, bad[i].n, 0, 1, 1, &k);
        if (rc != -EBADMSG)
            fail_msg("%s: %d", bad[i].what, rc);
        assert_int_equal(k.total, 0);
        bytes_free(&k.out);
    }
    assert_true(png_strip_is_png(sig, 8));
    assert_false(png_strip_is_png(sig, 7));
    assert_false(png_strip_is_png(NULL, 0));
}

/* A signature followed by something that is not a chunk stream. */
static void bad_structure_rejected(void **state)
{
    static const struct {
        const char *what;
        const char *hdr; /* 8 bytes: length, type */
        bool ok;         /* a valid header: only finish fails (the chunk is cut short) */
    } cases[] = {
        {"length 2^31", "\x80\0\0\0IHDR", false},
        {"length 2^32-1", "\xff\xff\xff\xffIHDR", false},
        {"digit in type", "\0\0\0\x0dIHD1", false},
        {"space in type", "\0\0\0\x0dIH R", false},
        {"bracket in type", "\0\0\0\x0dIH[R", false},
        {"non-ASCII type", "\0\0\0\x0d\xc9HDR", false},
        {"IDAT first", "\0\0\0\x0aIDAT", false},
        {"tEXt before IHDR", "\0\0\0\x05tEXt", false},
        {"IEND first", "\0\0\0\0IEND", false},
        {"length 2^31-1 is allowed", "\x7f\xff\xff\xffIHDR", true},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct bytes in = {0};
        struct sink k;
        bytes_put(&in, sig, sizeof sig);
        bytes_put(&in, cases[i].hdr, 8);
        bytes_put(&in, "\0\0\0\0", 4);
        for (int mode = 0; mode < 3; mode++) {
            int rc = run(in.p, in.len, 0, mode, 7, &k);
            if (rc != -EBADMSG || k.feed_failed == cases[i].ok)
                fail_msg("%s: %d (feed_failed %d)", cases[i].what, rc, k.feed_failed);
            /* the signature, plus the header and what came of the chunk when it was valid */
            assert_int_equal(k.total, cases[i].ok ? in.len : 8);
            bytes_free(&k.out);
        }
        bytes_free(&in);
    }
    /* chunks later on, after a valid IHDR (where the IHDR-first rule cannot catch them) */
    static const char *const later[] = {
        "\x80\0\0\0tEXt", "\0\0\0\0ID1T", "\0\0\0\0IDA[",    "\0\0\0\0@DAT",
        "\0\0\0\0`DAT",   "\0\0\0\0{DAT", "\0\0\0\0\311DAT", "\0\0\0\0tEX\0",
    };
    for (size_t i = 0; i < sizeof later / sizeof later[0]; i++) {
        struct bytes in = {0};
        struct sink k;
        bytes_put(&in, sig, sizeof sig);
        put_chunk(&in, "IHDR", ihdr, sizeof ihdr);
        bytes_put(&in, later[i], 8);
        put_chunk(&in, "IEND", "", 0);
        assert_int_equal(run(in.p, in.len, 0, 1, 1, &k), -EBADMSG);
        assert_true(k.feed_failed);
        assert_int_equal(k.total, 8 + 25);
        bytes_free(&k.out);
        bytes_free(&in);
    }
}

static void bytes_after_iend_rejected(void **state)
{
    struct bytes in = {0};
    struct png_strip s;
    struct sink k;
    build_full(&in);
    size_t n = in.len;

    struct bytes want = {0};
    uint32_t dropped;
    expected_output(in.p, n, 0, &want, &dropped);

    /* in the same feed: everything up to IEND was emitted, then the error */
    bytes_put(&in, "\0", 1);
    for (int mode = 0; mode < 3; mode++) {
        assert_int_equal(run(in.p, in.len, 0, mode, 3, &k), -EBADMSG);
        assert_true(k.feed_failed);
        assert_int_equal(k.out.len, want.len);
        assert_memory_equal(k.out.p, want.p, want.len);
        bytes_free(&k.out);
    }
    /* in a later feed; an empty feed after IEND is harmless */
    png_strip_init(&s);
    sink_init(&k);
    assert_int_equal(feed(&s, &k, in.p, n), 0);
    assert_int_equal(png_strip_finish(&s), 0);
    assert_int_equal(feed(&s, &k, NULL, 0), 0);
    assert_int_equal(png_strip_finish(&s), 0);
    size_t out = k.total;
    assert_int_equal(feed(&s, &k, in.p + n, 1), -EBADMSG);
    assert_int_equal(png_strip_finish(&s), -EBADMSG);
    assert_int_equal(k.total, out);
    bytes_free(&k.out);

    /* a second PNG glued on: no smuggling a text chunk past the filter */
    struct bytes twice = {0};
    bytes_put(&twice, in.p, n);
    bytes_put(&twice, in.p, n);
    assert_int_equal(run(twice.p, twice.len, 0, 2, 5, &k), -EBADMSG);
    assert_null(memmem(k.out.p, k.out.len, "tEXt", 4));
    bytes_free(&k.out);
    bytes_free(&twice);
    bytes_free(&want);
    bytes_free(&in);
}

/* CRCs are not the filter's business: a dropped chunk's bad CRC is irrelevant, a kept chunk's
 * goes through untouched for the reader to judge. */
static void crcs_not_checked(void **state)
{
    struct bytes in = {0};
    struct sink k;
    bytes_put(&in, sig, sizeof sig);
    put_chunk(&in, "IHDR", ihdr, sizeof ihdr);
    put_chunk(&in, "tEXt", "prompt\0{}", 9);
    in.p[in.len - 1] ^= 0xff;
    size_t kept = in.len;
    put_chunk(&in, "IDAT", "\x78\x9c", 2);
    in.p[in.len - 1] ^= 0xff;
    put_chunk(&in, "IEND", "", 0);
    assert_int_equal(run(in.p, in.len, 0, 1, 1, &k), 0);
    assert_int_equal(k.out.len, in.len - (kept - 8 - 25));
    assert_memory_equal(k.out.p + 8 + 25, in.p + kept, in.len - kept);
    bytes_free(&k.out);
    bytes_free(&in);
}

static void minimal_png_passes(void **state)
{
    struct bytes in = {0};
    bytes_put(&in, sig, sizeof sig);
    put_chunk(&in, "IHDR", ihdr, sizeof ihdr);
    put_chunk(&in, "IEND", "", 0);
    assert_int_equal(check_strip(in.p, in.len), 0);
    bytes_free(&in);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest own[] = {
        cmocka_unit_test(every_text_kind_dropped),
        cmocka_unit_test(similar_types_kept),
        cmocka_unit_test(minimal_png_passes),
        cmocka_unit_test(huge_chunks_stream_in_constant_memory),
        cmocka_unit_test(truncated_input_fails_finish),
        cmocka_unit_test(garbage_rejected_from_first_bytes),
        cmocka_unit_test(bad_structure_rejected),
        cmocka_unit_test(bytes_after_iend_rejected),
        cmocka_unit_test(crcs_not_checked),
    };
    const struct CMUnitTest recorded[] = {
        cmocka_unit_test(comfyui_outputs_lose_only_their_prompt),
    };
    int failed = cmocka_run_group_tests_name("png_strip", own, NULL, NULL);
    struct stat st;
    transcripts = argc > 1 ? argv[1] : NULL;
    if (!transcripts || stat(transcripts, &st) != 0 || !S_ISDIR(st.st_mode)) {
        printf("# transcripts not found (%s): recorded cases skipped\n",
               transcripts ? transcripts : "no path given");
        return failed ? 1 : 77;
    }
    failed += cmocka_run_group_tests_name("png_strip_transcripts", recorded, NULL, NULL);
    return failed ? 1 : 0;
}
