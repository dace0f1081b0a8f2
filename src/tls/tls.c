/* tls — see tls.h. */
#include "tls/tls.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tls/tls_pem.h"

/* The one session cache of the process: BearSSL's LRU behind a mutex (see tls.h for why it is
 * shared). The vtable comes first, so the engine's cache pointer is also a pointer to this. */
struct tls_cache {
    const br_ssl_session_cache_class *vtable;
    pthread_mutex_t lock;
    br_ssl_session_cache_lru lru;
    unsigned char *store;
};

/* The implementations every engine uses, chosen once. BearSSL's "full" set-up and its
 * set_default_* helpers pick them per engine by probing the CPU (CPUID for AES-NI, PCLMUL,
 * SSE2, RDRAND); in a virtual machine each CPUID traps to the hypervisor, and a resumed
 * handshake spent about a third of its CPU there (bench/ANALYSIS.md). */
struct tls_impl {
    const br_block_ctr_class *aes_ctr;
    br_ghash ghash;
    br_chacha20_run chacha20;
    br_poly1305_run poly1305;
    const br_ec_impl *ec;
    br_rsa_private rsa_private;
    br_rsa_pkcs1_sign rsa_sign;
    br_ecdsa_sign ecdsa_sign;
};

struct tls_server {
    struct tls_keys keys;
    struct tls_impl impl;
    uint16_t suites[3];
    const char *alpn[1];
    bool cache_on;
    struct tls_cache cache;
    size_t cache_bytes;
    char key_desc[32];
};

/* --- the shared session cache ---------------------------------------------------------------- */

static struct tls_cache *cache_of(const br_ssl_session_cache_class **ctx)
{
    return (struct tls_cache *)(void *)ctx;
}

static void cache_save(const br_ssl_session_cache_class **ctx, br_ssl_server_context *sc,
                       const br_ssl_session_parameters *params)
{
    struct tls_cache *c = cache_of(ctx);
    pthread_mutex_lock(&c->lock);
    c->lru.vtable->save(&c->lru.vtable, sc, params);
    pthread_mutex_unlock(&c->lock);
}

static int cache_load(const br_ssl_session_cache_class **ctx, br_ssl_server_context *sc,
                      br_ssl_session_parameters *params)
{
    struct tls_cache *c = cache_of(ctx);
    pthread_mutex_lock(&c->lock);
    int found = c->lru.vtable->load(&c->lru.vtable, sc, params);
    pthread_mutex_unlock(&c->lock);
    return found;
}

static const br_ssl_session_cache_class cache_class = {
    sizeof(struct tls_cache),
    cache_save,
    cache_load,
};

static int cache_init(struct tls_cache *c, size_t bytes)
{
    c->store = malloc(bytes);
    if (!c->store)
        return -1;
    c->vtable = &cache_class;
    pthread_mutex_init(&c->lock, NULL);
    br_ssl_session_cache_lru_init(&c->lru, c->store, bytes);
    return 0;
}

static void cache_fini(struct tls_cache *c, size_t bytes)
{
    if (!c->store)
        return;
    explicit_bzero(c->store, bytes); /* master secrets */
    free(c->store);
    pthread_mutex_destroy(&c->lock);
}

/* --- the server: keys and policy ---------------------------------------------------------------
 */

/* Server order: AES-128-GCM first (AES-NI makes it the cheapest), then AES-256-GCM, then
 * ChaCha20-Poly1305 for clients without AES hardware. The suites that match the key's type
 * only: ECDHE_ECDSA for an EC key, ECDHE_RSA for an RSA one. */
static void policy_init(struct tls_server *t)
{
    bool ec = t->keys.key_type == BR_KEYTYPE_EC;
    t->suites[0] =
        ec ? BR_TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 : BR_TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256;
    t->suites[1] =
        ec ? BR_TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384 : BR_TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384;
    t->suites[2] = ec ? BR_TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256
                      : BR_TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256;
    t->alpn[0] = "http/1.1";
    struct tls_impl *im = &t->impl;
    im->aes_ctr = br_aes_x86ni_ctr_get_vtable();
    if (!im->aes_ctr)
        im->aes_ctr = &br_aes_ct64_ctr_vtable;
    im->ghash = br_ghash_pclmul_get();
    if (!im->ghash)
        im->ghash = br_ghash_ctmul64;
    im->chacha20 = br_chacha20_sse2_get();
    if (!im->chacha20)
        im->chacha20 = br_chacha20_ct_run;
    im->poly1305 = br_poly1305_ctmulq_get();
    if (!im->poly1305)
        im->poly1305 = br_poly1305_ctmul_run;
    im->ec = br_ec_get_default();
    im->rsa_private = br_rsa_private_get_default();
    im->rsa_sign = br_rsa_pkcs1_sign_get_default();
    im->ecdsa_sign = br_ecdsa_sign_asn1_get_default();
    if (ec)
        snprintf(t->key_desc, sizeof(t->key_desc), "EC %s", tls_curve_name(t->keys.ec.curve));
    else
        snprintf(t->key_desc, sizeof(t->key_desc), "RSA-%u", t->keys.key_bits);
}

static int server_from_pem(struct tls_server **out, const char *cert_pem, size_t cert_len,
                           const char *cert_what, const char *key_pem, size_t key_len,
                           const char *key_what, size_t cache_bytes, char *err, size_t cap)
{
    struct tls_server *t = calloc(1, sizeof(*t));
    if (!t) {
        snprintf(err, cap, "TLS: out of memory");
        return -1;
    }
    if (tls_keys_from_pem(&t->keys, cert_pem, cert_len, cert_what, key_pem, key_len, key_what, err,
                          cap) < 0) {
        free(t);
        return -1;
    }
    policy_init(t);
    t->cache_on = cache_bytes > 0;
    if (t->cache_on && cache_init(&t->cache, cache_bytes) < 0) {
        snprintf(err, cap, "TLS_SESSION_CACHE_BYTES: cannot allocate %zu bytes", cache_bytes);
        tls_keys_free(&t->keys);
        free(t);
        return -1;
    }
    t->cache_bytes = cache_bytes;
    *out = t;
    return 0;
}

int tls_server_new_pem(struct tls_server **out, const char *cert_pem, size_t cert_len,
                       const char *key_pem, size_t key_len, size_t cache_bytes, char *err,
                       size_t cap)
{
    return server_from_pem(out, cert_pem, cert_len, "certificate PEM", key_pem, key_len, "key PEM",
                           cache_bytes, err, cap);
}

/* The whole file, NUL-terminated; NULL with a message in err. */
static char *file_read(const char *path, const char *what, size_t *len, char *err, size_t cap)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        snprintf(err, cap, "%s: cannot open: %s", what, strerror(errno));
        return NULL;
    }
    struct stat st;
    char *buf = NULL;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
        snprintf(err, cap, "%s: not a regular file", what);
    else if (st.st_size > (off_t)TLS_PEM_MAX)
        snprintf(err, cap, "%s: larger than %u bytes, so not a PEM certificate or key", what,
                 TLS_PEM_MAX);
    else if (!(buf = malloc((size_t)st.st_size + 1)))
        snprintf(err, cap, "%s: out of memory", what);
    size_t got = 0;
    while (buf && got < (size_t)st.st_size) {
        ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
        if (n <= 0) {
            snprintf(err, cap, "%s: cannot read: %s", what, n < 0 ? strerror(errno) : "short");
            free(buf);
            buf = NULL;
            break;
        }
        got += (size_t)n;
    }
    close(fd);
    if (buf) {
        buf[got] = '\0';
        *len = got;
    }
    return buf;
}

int tls_server_new(struct tls_server **out, const char *cert_file, const char *key_file,
                   size_t cache_bytes, char *err, size_t cap)
{
    char cw[1100], kw[1100];
    snprintf(cw, sizeof(cw), "TLS_CERT_FILE %s", cert_file);
    snprintf(kw, sizeof(kw), "TLS_KEY_FILE %s", key_file);
    size_t cl = 0, kl = 0;
    char *cert = file_read(cert_file, cw, &cl, err, cap);
    char *key = cert ? file_read(key_file, kw, &kl, err, cap) : NULL;
    int rc = -1;
    if (key)
        rc = server_from_pem(out, cert, cl, cw, key, kl, kw, cache_bytes, err, cap);
    free(cert);
    if (key) {
        explicit_bzero(key, kl);
        free(key);
    }
    return rc;
}

void tls_server_free(struct tls_server *t)
{
    if (!t)
        return;
    if (t->cache_on)
        cache_fini(&t->cache, t->cache_bytes);
    tls_keys_free(&t->keys);
    free(t);
}

const char *tls_server_key_desc(const struct tls_server *t)
{
    return t->key_desc;
}

size_t tls_server_chain_len(const struct tls_server *t)
{
    return t->keys.chain_len;
}

/* --- connections ------------------------------------------------------------------------------ */

/* What br_ssl_server_init_full_* would do, narrowed to the policy: TLS 1.2, the three suites,
 * the hashes their PRFs and the ServerKeyExchange signature need (SHA-256, SHA-384: BearSSL
 * hashes the handshake with every configured hash, and the full set has six), and the
 * implementations chosen once in policy_init. */
static void engine_setup(br_ssl_server_context *sc, const struct tls_server *t)
{
    const struct tls_keys *k = &t->keys;
    const struct tls_impl *im = &t->impl;
    br_ssl_engine_context *e = &sc->eng;
    br_ssl_server_zero(sc);
    br_ssl_engine_set_versions(e, BR_TLS12, BR_TLS12);
    br_ssl_engine_set_suites(e, t->suites, sizeof(t->suites) / sizeof(t->suites[0]));
    br_ssl_engine_set_hash(e, br_sha256_ID, &br_sha256_vtable);
    br_ssl_engine_set_hash(e, br_sha384_ID, &br_sha384_vtable);
    br_ssl_engine_set_prf_sha256(e, &br_tls12_sha256_prf);
    br_ssl_engine_set_prf_sha384(e, &br_tls12_sha384_prf);
    br_ssl_engine_set_ec(e, im->ec);
    br_ssl_engine_set_gcm(e, &br_sslrec_in_gcm_vtable, &br_sslrec_out_gcm_vtable);
    br_ssl_engine_set_aes_ctr(e, im->aes_ctr);
    br_ssl_engine_set_ghash(e, im->ghash);
    br_ssl_engine_set_chapol(e, &br_sslrec_in_chapol_vtable, &br_sslrec_out_chapol_vtable);
    br_ssl_engine_set_chacha20(e, im->chacha20);
    br_ssl_engine_set_poly1305(e, im->poly1305);
    /* the key signs the ECDHE parameters; there is no RSA or static-ECDH key exchange */
    if (k->key_type == BR_KEYTYPE_RSA)
        br_ssl_server_set_single_rsa(sc, k->chain, k->chain_len, &k->rsa, BR_KEYTYPE_SIGN,
                                     im->rsa_private, im->rsa_sign);
    else
        br_ssl_server_set_single_ec(sc, k->chain, k->chain_len, &k->ec, BR_KEYTYPE_SIGN,
                                    BR_KEYTYPE_EC, im->ec, im->ecdsa_sign);
    br_ssl_engine_set_all_flags(e, BR_OPT_ENFORCE_SERVER_PREFERENCES | BR_OPT_NO_RENEGOTIATION |
                                       BR_OPT_FAIL_ON_ALPN_MISMATCH);
    br_ssl_engine_set_protocol_names(e, (const char **)t->alpn, 1);
    if (t->cache_on) /* the cache has its own lock; everything else in *t is read-only */
        br_ssl_server_set_cache(sc, &((struct tls_server *)t)->cache.vtable);
}

/* The engine's random generator, seeded from getrandom(2). BearSSL would otherwise seed every
 * new engine with its system seeder (a CPUID, then RDRAND), which is what rng_os_rand_done
 * records as done; if getrandom fails, it still does. */
static void engine_seed(br_ssl_engine_context *e)
{
    unsigned char seed[32];
    if (getrandom(seed, sizeof(seed), GRND_NONBLOCK) != (ssize_t)sizeof(seed))
        return;
    br_ssl_engine_inject_entropy(e, seed, sizeof(seed));
    e->rng_os_rand_done = 1;
    explicit_bzero(seed, sizeof(seed));
}

int tls_conn_new(struct tls_conn **out, const struct tls_server *t)
{
    /* Not zeroed: engine_setup clears the context, and the buffer is written before read. */
    struct tls_conn *tc = malloc(sizeof(*tc));
    if (!tc)
        return -ENOMEM;
    engine_setup(&tc->sc, t);
    br_ssl_engine_context *e = &tc->sc.eng;
    engine_seed(e);
    br_ssl_engine_set_buffer(e, tc->buf, sizeof(tc->buf), 1);
    if (!br_ssl_server_reset(&tc->sc)) {
        free(tc);
        return -EINVAL;
    }
    *out = tc;
    return 0;
}

void tls_conn_free(struct tls_conn *tc)
{
    free(tc);
}

size_t tls_conn_recv(struct tls_conn *tc, const void *data, size_t len, tls_deliver_fn deliver,
                     void *arg)
{
    br_ssl_engine_context *e = &tc->sc.eng;
    const unsigned char *p = data;
    size_t used = 0;
    for (;;) {
        size_t n;
        unsigned char *app = br_ssl_engine_recvapp_buf(e, &n);
        if (app) { /* plaintext first: the engine reads no further record until it is taken */
            bool more = deliver(arg, app, n);
            br_ssl_engine_recvapp_ack(e, n);
            if (!more)
                return used;
            continue;
        }
        if (used == len)
            break;
        unsigned char *rec = br_ssl_engine_recvrec_buf(e, &n);
        if (!rec)
            break; /* a record must go out first, or the engine has failed or closed */
        if (n > len - used)
            n = len - used;
        memcpy(rec, p + used, n);
        br_ssl_engine_recvrec_ack(e, n);
        used += n;
    }
    return used;
}

/* --- names for logs -----------------------------------------------------------------------------
 */

const char *tls_error_name(int err)
{
    static const char *const names[] = {
        [BR_ERR_OK] = "OK",
        [BR_ERR_BAD_PARAM] = "BAD_PARAM",
        [BR_ERR_BAD_STATE] = "BAD_STATE",
        [BR_ERR_UNSUPPORTED_VERSION] = "UNSUPPORTED_VERSION",
        [BR_ERR_BAD_VERSION] = "BAD_VERSION",
        [BR_ERR_BAD_LENGTH] = "BAD_LENGTH",
        [BR_ERR_TOO_LARGE] = "TOO_LARGE",
        [BR_ERR_BAD_MAC] = "BAD_MAC",
        [BR_ERR_NO_RANDOM] = "NO_RANDOM",
        [BR_ERR_UNKNOWN_TYPE] = "UNKNOWN_TYPE",
        [BR_ERR_UNEXPECTED] = "UNEXPECTED",
        [BR_ERR_BAD_CCS] = "BAD_CCS",
        [BR_ERR_BAD_ALERT] = "BAD_ALERT",
        [BR_ERR_BAD_HANDSHAKE] = "BAD_HANDSHAKE",
        [BR_ERR_OVERSIZED_ID] = "OVERSIZED_ID",
        [BR_ERR_BAD_CIPHER_SUITE] = "BAD_CIPHER_SUITE",
        [BR_ERR_BAD_COMPRESSION] = "BAD_COMPRESSION",
        [BR_ERR_BAD_FRAGLEN] = "BAD_FRAGLEN",
        [BR_ERR_BAD_SECRENEG] = "BAD_SECRENEG",
        [BR_ERR_EXTRA_EXTENSION] = "EXTRA_EXTENSION",
        [BR_ERR_BAD_SNI] = "BAD_SNI",
        [BR_ERR_BAD_HELLO_DONE] = "BAD_HELLO_DONE",
        [BR_ERR_LIMIT_EXCEEDED] = "LIMIT_EXCEEDED",
        [BR_ERR_BAD_FINISHED] = "BAD_FINISHED",
        [BR_ERR_RESUME_MISMATCH] = "RESUME_MISMATCH",
        [BR_ERR_INVALID_ALGORITHM] = "INVALID_ALGORITHM",
        [BR_ERR_BAD_SIGNATURE] = "BAD_SIGNATURE",
        [BR_ERR_WRONG_KEY_USAGE] = "WRONG_KEY_USAGE",
        [BR_ERR_NO_CLIENT_AUTH] = "NO_CLIENT_AUTH",
        [BR_ERR_IO] = "IO",
    };
    if (err >= BR_ERR_SEND_FATAL_ALERT && err < BR_ERR_SEND_FATAL_ALERT + 256)
        return "SEND_FATAL_ALERT";
    if (err >= BR_ERR_RECV_FATAL_ALERT && err < BR_ERR_RECV_FATAL_ALERT + 256)
        return "RECV_FATAL_ALERT";
    if (err >= 0 && (size_t)err < sizeof(names) / sizeof(names[0]) && names[err])
        return names[err];
    return "OTHER";
}

const char *tls_suite_name(unsigned suite)
{
    switch (suite) {
    case BR_TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256:
        return "ECDHE-ECDSA-AES128-GCM-SHA256";
    case BR_TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384:
        return "ECDHE-ECDSA-AES256-GCM-SHA384";
    case BR_TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256:
        return "ECDHE-ECDSA-CHACHA20-POLY1305";
    case BR_TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256:
        return "ECDHE-RSA-AES128-GCM-SHA256";
    case BR_TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384:
        return "ECDHE-RSA-AES256-GCM-SHA384";
    case BR_TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256:
        return "ECDHE-RSA-CHACHA20-POLY1305";
    default:
        return "unknown";
    }
}
