/* fuzz_tls_record — libFuzzer harness for the TLS record path: bytes from a client, pushed
 * into a server engine set up exactly as the gateway sets one up (src/tls: TLS 1.2, ECDHE +
 * AEAD suites, ALPN http/1.1, the shared session cache), with the records it answers taken as a
 * socket would take them. The engine's key is the throw-away test key of tls_test_key.h, loaded
 * through the same PEM path as TLS_CERT_FILE / TLS_KEY_FILE.
 *
 * Input: byte 0 chooses how the rest is cut into receives (0: all at once; n: pieces of n * 7
 * bytes), the rest is the client's byte stream. Seeds (corpus/tls_record/) are real client
 * flights captured from openssl s_client talking to comfygate through a recording proxy —
 * ClientHellos of every kind the tests use, a whole handshake with its Finished and a request —
 * plus truncated and damaged records; each starts with a 0 or a small chunk byte.
 *
 * Each input runs twice, fed at once and in chunks (unless byte 0 is 0), since the engine
 * takes a whole record and a trickle by different paths.
 *
 * Oracles beyond the sanitizers: tls_conn_recv never claims more than it was given, and the
 * engine is never stuck — it can read, or has a record to send, or is closed; a stuck engine
 * would hang a connection until its timeout. (No differential check between the two runs: the
 * outcome legitimately depends on the interleaving. Fed at once, bytes the client sent without
 * waiting for our flight can fail the engine — or fail it differently — before that flight was
 * taken; and an unencrypted handshake record is parsed as its bytes come, so a bad one fails at
 * a different byte.) The engine's random generator is re-seeded with a constant so that runs
 * are reproducible. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tls/tls.h"
#include "tls_test_key.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_tls_record: check failed: %s (%s:%d)\n", #cond, __FILE__,        \
                    __LINE__);                                                                     \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* Loaded once and shared, as the gateway shares it between reactors. */
static const struct tls_server *server(void)
{
    static struct tls_server *t;
    if (!t) {
        char err[512];
        if (tls_server_new_pem(&t, tls_test_cert_pem, sizeof(tls_test_cert_pem) - 1,
                               tls_test_key_pem, sizeof(tls_test_key_pem) - 1, 64 << 10, err,
                               sizeof(err)) < 0) {
            fprintf(stderr, "fuzz_tls_record: test key: %s\n", err);
            abort();
        }
    }
    return t;
}

/* What a run did (for a debugger looking at a saved input). */
struct outcome {
    int err;          /* br_ssl_engine_last_error at the end */
    unsigned state;   /* br_ssl_engine_current_state at the end */
    size_t plaintext; /* application bytes delivered */
    size_t records;   /* record bytes the server sent */
    size_t consumed;  /* input bytes taken */
};

static bool deliver(void *arg, const unsigned char *p, size_t n)
{
    struct outcome *o = arg;
    CHECK(n > 0 && p != NULL);
    o->plaintext += n;
    return true;
}

/* Takes every record the engine wants to send; true if there was one. */
static bool drain(br_ssl_engine_context *e, struct outcome *o)
{
    bool any = false;
    size_t len;
    unsigned char *rec;
    while ((rec = br_ssl_engine_sendrec_buf(e, &len)) != NULL) {
        CHECK(len > 0);
        o->records += len;
        br_ssl_engine_sendrec_ack(e, len);
        any = true;
    }
    return any;
}

/* Feeds the stream in pieces of `chunk` bytes (0: at once), as receives would. */
static void run(const uint8_t *p, size_t n, size_t chunk, struct outcome *o)
{
    memset(o, 0, sizeof(*o));
    struct tls_conn *tc;
    CHECK(tls_conn_new(&tc, server()) == 0);
    br_ssl_engine_context *e = tls_engine(tc);
    br_hmac_drbg_init(&e->rng, &br_sha256_vtable, "fuzz", 4); /* reproducible randomness */
    size_t off = 0;
    while (off < n) {
        size_t piece = chunk && chunk < n - off ? chunk : n - off;
        size_t used = tls_conn_recv(tc, p + off, piece, deliver, o);
        CHECK(used <= piece);
        off += used;
        bool sent = drain(e, o);
        unsigned st = br_ssl_engine_current_state(e);
        if (st & BR_SSL_CLOSED)
            break;
        /* not stuck: it took bytes, sent a record, or can read now */
        CHECK(used > 0 || sent || (st & BR_SSL_RECVREC));
        if (used == 0 && !sent)
            break; /* cannot happen after the check; keeps the loop finite regardless */
    }
    o->consumed = off;
    o->err = br_ssl_engine_last_error(e);
    o->state = br_ssl_engine_current_state(e);
    CHECK(tls_error_name(o->err) != NULL);
    tls_conn_free(tc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    struct outcome o;
    run(data + 1, size - 1, 0, &o);
    if (data[0] != 0)
        run(data + 1, size - 1, (size_t)data[0] * 7, &o);
    return 0;
}
