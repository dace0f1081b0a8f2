/* tls_pem — a certificate chain and a private key from PEM text, with BearSSL's decoders
 * (br_pem_decoder, br_x509_decoder, br_skey_decoder), checked against each other.
 *
 * Runs once at start-up. Every failure is a sentence for a human: which input, what is wrong
 * with it, and what was expected. The key material is copied out of the decoders (whose
 * contexts are wiped) into memory this module owns and wipes again on free. */
#ifndef COMFYGATE_TLS_PEM_H
#define COMFYGATE_TLS_PEM_H

#include <bearssl.h>
#include <stddef.h>

#define TLS_CHAIN_MAX 10 /* certificates in a chain: leaf + intermediates (+ root, harmless) */

struct tls_keys {
    br_x509_certificate chain[TLS_CHAIN_MAX];
    size_t chain_len;
    int key_type; /* BR_KEYTYPE_RSA or BR_KEYTYPE_EC */
    br_rsa_private_key rsa;
    br_ec_private_key ec;
    unsigned char *key_mem; /* the key's big integers, owned */
    size_t key_mem_len;
    unsigned key_bits; /* RSA modulus size, or the curve's size */
};

/* Decodes the chain from cert_pem and the key from key_pem; cert_what/key_what name the inputs
 * in messages ("TLS_CERT_FILE /etc/x.pem"). Returns 0, or -1 with a message in err. */
int tls_keys_from_pem(struct tls_keys *k, const char *cert_pem, size_t cert_len,
                      const char *cert_what, const char *key_pem, size_t key_len,
                      const char *key_what, char *err, size_t cap);
void tls_keys_free(struct tls_keys *k);
/* The curve's name ("P-256") for BR_EC_* ids, or "unknown". */
const char *tls_curve_name(int curve);

#endif
