/* b64: RFC 4648 test vectors both ways, the URL alphabet, the padding rules and everything a
 * strict decoder must refuse. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/b64.h"

static const char *const plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
static const char *const coded[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=",
                                    "Zm9vYmFy"};

static void rfc4648_vectors(void **state)
{
    (void)state;
    for (int i = 0; i < 7; i++) {
        char out[16];
        size_t n = b64_encode((const unsigned char *)plain[i], strlen(plain[i]), out);
        assert_int_equal(n, strlen(coded[i]));
        assert_memory_equal(out, coded[i], n);
        unsigned char dec[16];
        long d = b64_decode(coded[i], strlen(coded[i]), dec, sizeof(dec), 0);
        assert_int_equal(d, (long)strlen(plain[i]));
        assert_memory_equal(dec, plain[i], (size_t)d);
    }
}

static void padding_rules(void **state)
{
    (void)state;
    unsigned char d[16];
    /* unpadded: only when allowed */
    assert_int_equal(b64_decode("Zg", 2, d, sizeof(d), 0), -1);
    assert_int_equal(b64_decode("Zg", 2, d, sizeof(d), B64_PADDING_OPTIONAL), 1);
    assert_int_equal(b64_decode("Zg", 2, d, sizeof(d), B64_NO_PADDING), 1);
    /* padded: an error where padding is forbidden (JWT) */
    assert_int_equal(b64_decode("Zg==", 4, d, sizeof(d), B64_NO_PADDING), -1);
    /* padding that does not complete a quantum */
    assert_int_equal(b64_decode("Zg=", 3, d, sizeof(d), 0), -1);
    assert_int_equal(b64_decode("Zm9v=", 5, d, sizeof(d), 0), -1);
    assert_int_equal(b64_decode("===", 3, d, sizeof(d), 0), -1);
}

static void refuses_garbage(void **state)
{
    (void)state;
    unsigned char d[16];
    static const char *const bad[] = {"Zm9v YmFy", "Zm9v\nYmFy", "Zm9v!mFy", "Z", "Zm9vY",
                                      "Zh==" /* leftover bits set: non-canonical */};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(b64_decode(bad[i], strlen(bad[i]), d, sizeof(d), B64_PADDING_OPTIONAL),
                         -1);
    /* does not fit */
    assert_int_equal(b64_decode("Zm9vYmFy", 8, d, 5, 0), -1);
    assert_int_equal(b64_decode("Zm9vYmFy", 8, d, 6, 0), 6);
}

static void url_alphabet(void **state)
{
    (void)state;
    const unsigned char raw[] = {0xfb, 0xff, 0xbf};
    char std[8];
    assert_int_equal(b64_encode(raw, 3, std), 4);
    assert_memory_equal(std, "+/+/", 4);
    unsigned char d[8];
    assert_int_equal(b64_decode("-_-_", 4, d, sizeof(d), B64_URL | B64_NO_PADDING), 3);
    assert_memory_equal(d, raw, 3);
    /* each alphabet refuses the other's characters */
    assert_int_equal(b64_decode("+/+/", 4, d, sizeof(d), B64_URL), -1);
    assert_int_equal(b64_decode("-_-_", 4, d, sizeof(d), 0), -1);
}

/* Every byte value survives a round trip, at every length modulo 3. */
static void round_trip(void **state)
{
    (void)state;
    unsigned char src[258], dec[258];
    char enc[400];
    for (int i = 0; i < 258; i++)
        src[i] = (unsigned char)(i * 7 + 3);
    for (size_t n = 0; n <= sizeof(src); n++) {
        size_t e = b64_encode(src, n, enc);
        assert_int_equal(e, b64_len(n));
        assert_true(b64_decoded_max(e) >= n);
        assert_int_equal(b64_decode(enc, e, dec, sizeof(dec), 0), (long)n);
        assert_memory_equal(dec, src, n);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(rfc4648_vectors), cmocka_unit_test(padding_rules),
        cmocka_unit_test(refuses_garbage), cmocka_unit_test(url_alphabet),
        cmocka_unit_test(round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
