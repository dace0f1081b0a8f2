/* tls_pem — see tls_pem.h. */
#include "tls/tls_pem.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tls/tls.h"

/* The decoded bytes of the PEM object being read; bounded by the input's size. */
struct der {
    unsigned char *data;
    size_t len, cap;
    bool oom;
};

static void der_push(void *ctx, const void *src, size_t n)
{
    struct der *d = ctx;
    if (d->oom)
        return;
    if (d->len + n > d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 4096;
        while (cap < d->len + n)
            cap *= 2;
        if (cap > TLS_PEM_MAX) {
            d->oom = true;
            return;
        }
        unsigned char *p = malloc(cap);
        if (!p) {
            d->oom = true;
            return;
        }
        if (d->len)
            memcpy(p, d->data, d->len);
        if (d->data) { /* it may hold a private key: no copy of it left behind */
            explicit_bzero(d->data, d->cap);
            free(d->data);
        }
        d->data = p;
        d->cap = cap;
    }
    memcpy(d->data + d->len, src, n);
    d->len += n;
}

static void der_free(struct der *d)
{
    if (d->data) {
        explicit_bzero(d->data, d->cap);
        free(d->data);
    }
    memset(d, 0, sizeof(*d));
}

/* Called for each complete PEM object; returns -1 (after writing err) to stop. */
typedef int (*pem_obj_fn)(void *arg, const char *name, const unsigned char *der, size_t len,
                          char *err, size_t cap);

struct pem_walk {
    br_pem_decoder_context pc;
    struct der d;
    char name[128];
    bool inside;
    size_t objects;
    pem_obj_fn fn;
    void *arg;
    const char *what;
};

static int pem_event(struct pem_walk *w, int ev, char *err, size_t cap)
{
    if (ev == BR_PEM_BEGIN_OBJ) {
        snprintf(w->name, sizeof(w->name), "%s", br_pem_decoder_name(&w->pc));
        w->d.len = 0;
        br_pem_decoder_setdest(&w->pc, der_push, &w->d);
        w->inside = true;
    } else if (ev == BR_PEM_END_OBJ) {
        w->inside = false;
        br_pem_decoder_setdest(&w->pc, NULL, NULL);
        w->objects++;
        if (w->d.oom) {
            snprintf(err, cap, "%s: PEM object \"%s\" is too large", w->what, w->name);
            return -1;
        }
        static const unsigned char none[1];
        /* an empty object has no buffer: never hand on a null pointer (found by fuzz_tls_pem) */
        return w->fn(w->arg, w->name, w->d.data ? w->d.data : none, w->d.len, err, cap);
    } else if (ev == BR_PEM_ERROR) {
        snprintf(err, cap, "%s: malformed PEM (bad base64, or a broken BEGIN/END line)", w->what);
        return -1;
    }
    return 0;
}

static int pem_feed(struct pem_walk *w, const char *p, size_t n, char *err, size_t cap)
{
    while (n > 0) {
        size_t k = br_pem_decoder_push(&w->pc, p, n);
        p += k;
        n -= k;
        if (pem_event(w, br_pem_decoder_event(&w->pc), err, cap) < 0)
            return -1;
    }
    return 0;
}

/* Runs fn for every object of a PEM text; returns the number of objects, or -1. */
static long pem_walk(const char *pem, size_t len, const char *what, pem_obj_fn fn, void *arg,
                     char *err, size_t cap)
{
    struct pem_walk *w = calloc(1, sizeof(*w));
    if (!w) {
        snprintf(err, cap, "%s: out of memory", what);
        return -1;
    }
    br_pem_decoder_init(&w->pc);
    w->fn = fn;
    w->arg = arg;
    w->what = what;
    /* BearSSL only sees a line once it is terminated: end a file without a final newline. */
    int rc = pem_feed(w, pem, len, err, cap);
    if (rc == 0)
        rc = pem_feed(w, "\n", 1, err, cap);
    if (rc == 0 && w->inside) {
        snprintf(err, cap, "%s: PEM object \"%s\" has no END line", what, w->name);
        rc = -1;
    }
    long n = rc < 0 ? -1 : (long)w->objects;
    der_free(&w->d);
    explicit_bzero(w, sizeof(*w));
    free(w);
    return n;
}

/* --- the certificate chain ------------------------------------------------------------------ */

struct chain_walk {
    struct tls_keys *k;
    const char *what;
};

static int cert_obj(void *arg, const char *name, const unsigned char *der, size_t len, char *err,
                    size_t cap)
{
    struct chain_walk *cw = arg;
    struct tls_keys *k = cw->k;
    if (strcmp(name, "CERTIFICATE") != 0 && strcmp(name, "X509 CERTIFICATE") != 0)
        return 0; /* e.g. the key kept in the same file: not ours to read here */
    if (k->chain_len == TLS_CHAIN_MAX) {
        snprintf(err, cap, "%s: more than %d certificates", cw->what, TLS_CHAIN_MAX);
        return -1;
    }
    unsigned char *copy = malloc(len ? len : 1);
    if (!copy) {
        snprintf(err, cap, "%s: out of memory", cw->what);
        return -1;
    }
    memcpy(copy, der, len);
    k->chain[k->chain_len].data = copy;
    k->chain[k->chain_len].data_len = len;
    k->chain_len++;
    return 0;
}

/* Every certificate must decode as X.509; the leaf's public key is left in *leaf. */
static int chain_check(struct tls_keys *k, const char *what, br_x509_decoder_context *leaf,
                       char *err, size_t cap)
{
    for (size_t i = k->chain_len; i-- > 0;) { /* the leaf last, so its decoder stays filled */
        br_x509_decoder_init(leaf, NULL, NULL);
        br_x509_decoder_push(leaf, k->chain[i].data, k->chain[i].data_len);
        int e = br_x509_decoder_last_error(leaf);
        if (e != 0) {
            snprintf(err, cap, "%s: certificate #%zu is not valid DER X.509 (BearSSL error %d)",
                     what, i + 1, e);
            return -1;
        }
    }
    if (!br_x509_decoder_get_pkey(leaf)) {
        snprintf(err, cap, "%s: the first certificate has no usable public key", what);
        return -1;
    }
    return 0;
}

/* --- the private key ------------------------------------------------------------------------ */

struct key_walk {
    struct tls_keys *k;
    const char *what;
    bool found;
};

static unsigned char *key_copy(struct tls_keys *k, size_t *at, const unsigned char *src, size_t len)
{
    unsigned char *dst = k->key_mem + *at;
    memcpy(dst, src, len);
    *at += len;
    return dst;
}

static int key_keep_rsa(struct tls_keys *k, const br_rsa_private_key *sk)
{
    k->key_mem_len = sk->plen + sk->qlen + sk->dplen + sk->dqlen + sk->iqlen;
    k->key_mem = malloc(k->key_mem_len);
    if (!k->key_mem)
        return -1;
    size_t at = 0;
    k->rsa = *sk;
    k->rsa.p = key_copy(k, &at, sk->p, sk->plen);
    k->rsa.q = key_copy(k, &at, sk->q, sk->qlen);
    k->rsa.dp = key_copy(k, &at, sk->dp, sk->dplen);
    k->rsa.dq = key_copy(k, &at, sk->dq, sk->dqlen);
    k->rsa.iq = key_copy(k, &at, sk->iq, sk->iqlen);
    k->key_type = BR_KEYTYPE_RSA;
    k->key_bits = sk->n_bitlen;
    return 0;
}

static int key_keep_ec(struct tls_keys *k, const br_ec_private_key *sk)
{
    k->key_mem_len = sk->xlen;
    k->key_mem = malloc(sk->xlen ? sk->xlen : 1);
    if (!k->key_mem)
        return -1;
    size_t at = 0;
    k->ec = *sk;
    k->ec.x = key_copy(k, &at, sk->x, sk->xlen);
    k->key_type = BR_KEYTYPE_EC;
    k->key_bits = sk->curve == BR_EC_secp256r1 ? 256 : sk->curve == BR_EC_secp384r1 ? 384 : 521;
    return 0;
}

static int key_decode(struct key_walk *kw, const unsigned char *der, size_t len, char *err,
                      size_t cap)
{
    br_skey_decoder_context *dc = malloc(sizeof(*dc));
    if (!dc) {
        snprintf(err, cap, "%s: out of memory", kw->what);
        return -1;
    }
    br_skey_decoder_init(dc);
    br_skey_decoder_push(dc, der, len);
    int e = br_skey_decoder_last_error(dc), rc = -1;
    const br_rsa_private_key *rsa = br_skey_decoder_get_rsa(dc);
    const br_ec_private_key *ec = br_skey_decoder_get_ec(dc);
    if (e != 0)
        snprintf(err, cap, "%s: the private key cannot be decoded (BearSSL error %d)", kw->what, e);
    else if (rsa && rsa->n_bitlen < 2048)
        snprintf(err, cap, "%s: RSA key of %u bits; at least 2048 are required", kw->what,
                 rsa->n_bitlen);
    else if (ec && ec->curve != BR_EC_secp256r1 && ec->curve != BR_EC_secp384r1 &&
             ec->curve != BR_EC_secp521r1)
        snprintf(err, cap, "%s: EC key on an unsupported curve (%s); use P-256, P-384 or P-521",
                 kw->what, tls_curve_name(ec->curve));
    else if ((rsa ? key_keep_rsa(kw->k, rsa) : ec ? key_keep_ec(kw->k, ec) : -1) < 0)
        snprintf(err, cap, "%s: out of memory", kw->what);
    else
        rc = 0;
    explicit_bzero(dc, sizeof(*dc));
    free(dc);
    return rc;
}

static int key_obj(void *arg, const char *name, const unsigned char *der, size_t len, char *err,
                   size_t cap)
{
    struct key_walk *kw = arg;
    if (!strcmp(name, "ENCRYPTED PRIVATE KEY")) {
        snprintf(err, cap,
                 "%s: the private key is encrypted; give it unencrypted "
                 "(openssl pkey -in KEY -out KEY.plain)",
                 kw->what);
        return -1;
    }
    bool ours = !strcmp(name, "PRIVATE KEY") || !strcmp(name, "RSA PRIVATE KEY") ||
                !strcmp(name, "EC PRIVATE KEY");
    if (!ours && strstr(name, "PRIVATE KEY")) {
        snprintf(err, cap, "%s: unsupported key \"%s\"; RSA or EC keys only", kw->what, name);
        return -1;
    }
    if (!ours || kw->found)
        return 0; /* EC PARAMETERS, certificates, a second key: not used */
    kw->found = true;
    return key_decode(kw, der, len, err, cap);
}

/* --- the key belongs to the certificate ------------------------------------------------------- */

static const unsigned char *trim0(const unsigned char *p, size_t *n)
{
    while (*n > 0 && p[0] == 0) {
        p++;
        (*n)--;
    }
    return p;
}

static bool same_int(const unsigned char *a, size_t an, const unsigned char *b, size_t bn)
{
    a = trim0(a, &an);
    b = trim0(b, &bn);
    return an == bn && memcmp(a, b, an) == 0;
}

/* Same modulus: the same key pair (the exponent cannot be recomputed from every key, and the
 * signature check below covers it). */
static bool rsa_matches(const br_rsa_private_key *sk, const br_rsa_public_key *pk)
{
    br_rsa_compute_modulus modulus = br_rsa_compute_modulus_get_default();
    size_t nlen = modulus(NULL, sk);
    unsigned char *n = nlen ? malloc(nlen) : NULL;
    bool same = n && modulus(n, sk) == nlen && same_int(n, nlen, pk->n, pk->nlen);
    free(n);
    return same;
}

static bool ec_matches(const br_ec_private_key *sk, const br_ec_public_key *pk)
{
    unsigned char q[BR_EC_KBUF_PUB_MAX_SIZE];
    if (sk->curve != pk->curve)
        return false;
    size_t qlen = br_ec_compute_pub(br_ec_get_default(), NULL, q, sk);
    return qlen != 0 && qlen == pk->qlen && memcmp(q, pk->q, qlen) == 0;
}

/* Signs a fixed digest with the private key and verifies it with the certificate's public key:
 * what every handshake will do, so a damaged key (wrong CRT values) fails here, not there. */
static bool sign_verify(const struct tls_keys *k, const br_x509_pkey *pk)
{
    static const unsigned char digest[32] = "comfygate TLS key self-test....";
    unsigned char sig[520], back[32];
    if (k->key_type == BR_KEYTYPE_RSA) {
        size_t slen = (k->rsa.n_bitlen + 7) / 8;
        if (slen > sizeof(sig) ||
            !br_rsa_pkcs1_sign_get_default()(BR_HASH_OID_SHA256, digest, 32, &k->rsa, sig))
            return false;
        return br_rsa_pkcs1_vrfy_get_default()(sig, slen, BR_HASH_OID_SHA256, 32, &pk->key.rsa,
                                               back) &&
               memcmp(back, digest, 32) == 0;
    }
    size_t slen = br_ecdsa_sign_asn1_get_default()(br_ec_get_default(), &br_sha256_vtable, digest,
                                                   &k->ec, sig);
    return slen && br_ecdsa_vrfy_asn1_get_default()(br_ec_get_default(), digest, 32, &pk->key.ec,
                                                    sig, slen);
}

static int key_match(const struct tls_keys *k, const br_x509_pkey *pk, const char *cert_what,
                     const char *key_what, char *err, size_t cap)
{
    const char *kt = k->key_type == BR_KEYTYPE_RSA ? "an RSA" : "an EC";
    const char *ct = pk->key_type == BR_KEYTYPE_RSA ? "an RSA" : "an EC";
    if (pk->key_type != k->key_type) {
        snprintf(err, cap, "%s holds %s key but the certificate in %s has %s key", key_what, kt,
                 cert_what, ct);
        return -1;
    }
    bool ok = k->key_type == BR_KEYTYPE_RSA ? rsa_matches(&k->rsa, &pk->key.rsa)
                                            : ec_matches(&k->ec, &pk->key.ec);
    if (!ok) {
        snprintf(err, cap, "%s does not match the certificate in %s (another key pair)", key_what,
                 cert_what);
        return -1;
    }
    if (!sign_verify(k, pk)) {
        snprintf(err, cap,
                 "%s: a signature made with it does not verify with the certificate in "
                 "%s (damaged key?)",
                 key_what, cert_what);
        return -1;
    }
    return 0;
}

int tls_keys_from_pem(struct tls_keys *k, const char *cert_pem, size_t cert_len,
                      const char *cert_what, const char *key_pem, size_t key_len,
                      const char *key_what, char *err, size_t cap)
{
    memset(k, 0, sizeof(*k));
    struct chain_walk cw = {k, cert_what};
    long n = pem_walk(cert_pem, cert_len, cert_what, cert_obj, &cw, err, cap);
    if (n >= 0 && k->chain_len == 0) {
        snprintf(err, cap, "%s: no PEM CERTIFICATE in it%s", cert_what,
                 n == 0 ? " (not a PEM file)" : "");
        n = -1;
    }
    struct key_walk kw = {k, key_what, false};
    if (n >= 0)
        n = pem_walk(key_pem, key_len, key_what, key_obj, &kw, err, cap);
    if (n >= 0 && !kw.found) {
        snprintf(err, cap, "%s: no PEM PRIVATE KEY in it%s", key_what,
                 n == 0 ? " (not a PEM file)" : "");
        n = -1;
    }
    br_x509_decoder_context *leaf = n >= 0 ? malloc(sizeof(*leaf)) : NULL;
    if (n >= 0 && !leaf) {
        snprintf(err, cap, "%s: out of memory", cert_what);
        n = -1;
    }
    if (n >= 0 && (chain_check(k, cert_what, leaf, err, cap) < 0 ||
                   key_match(k, br_x509_decoder_get_pkey(leaf), cert_what, key_what, err, cap) < 0))
        n = -1;
    free(leaf);
    if (n < 0) {
        tls_keys_free(k);
        return -1;
    }
    return 0;
}

void tls_keys_free(struct tls_keys *k)
{
    for (size_t i = 0; i < k->chain_len; i++)
        free(k->chain[i].data);
    if (k->key_mem) {
        explicit_bzero(k->key_mem, k->key_mem_len);
        free(k->key_mem);
    }
    memset(k, 0, sizeof(*k));
}

const char *tls_curve_name(int curve)
{
    switch (curve) {
    case BR_EC_secp256r1:
        return "P-256";
    case BR_EC_secp384r1:
        return "P-384";
    case BR_EC_secp521r1:
        return "P-521";
    case BR_EC_curve25519:
        return "X25519";
    default:
        return "unknown";
    }
}
