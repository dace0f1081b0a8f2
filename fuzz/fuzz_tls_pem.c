/* fuzz_tls_pem — libFuzzer harness for the loading of TLS_CERT_FILE and TLS_KEY_FILE
 * (src/tls/tls_pem.c): the input is the certificate file, a NUL byte, then the key file; both
 * go through the PEM walker, BearSSL's X.509 and private-key decoders and the key/certificate
 * match. Seeds: the fuzz test key and certificate (tls_test_key.h) and an RSA chain and key made
 * by the integration tests' recipe (all throw-away test keys that protect nothing), whole and
 * damaged.
 *
 * Oracles beyond the sanitizers: a failure always comes with a message, a success always with
 * a chain and a key of a known type; and loading the same input twice gives the same answer
 * (nothing is left over from a previous load). */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tls/tls_pem.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_tls_pem: check failed: %s (%s:%d)\n", #cond, __FILE__,           \
                    __LINE__);                                                                     \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static int load(const char *cert, size_t cl, const char *key, size_t kl, char *err, size_t cap)
{
    struct tls_keys k;
    err[0] = '\0';
    int rc = tls_keys_from_pem(&k, cert, cl, "cert", key, kl, "key", err, cap);
    if (rc < 0) {
        CHECK(err[0] != '\0');
        return rc;
    }
    CHECK(k.chain_len >= 1 && k.chain_len <= TLS_CHAIN_MAX);
    CHECK(k.key_type == BR_KEYTYPE_RSA || k.key_type == BR_KEYTYPE_EC);
    CHECK(k.key_bits >= 256);
    tls_keys_free(&k);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *p = (const char *)data;
    const char *nul = memchr(p, 0, size);
    size_t cl = nul ? (size_t)(nul - p) : size;
    const char *key = nul ? nul + 1 : "";
    size_t kl = nul ? size - cl - 1 : 0;
    char e1[600], e2[600];
    int a = load(p, cl, key, kl, e1, sizeof(e1));
    int b = load(p, cl, key, kl, e2, sizeof(e2));
    CHECK(a == b && strcmp(e1, e2) == 0);
    return 0;
}
