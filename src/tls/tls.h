/* tls — the server side of TLS 1.2 with BearSSL, without any I/O.
 *
 * A struct tls_server holds what every connection shares: the certificate chain and private key
 * (decoded from PEM once, on the main thread, before any reactor starts; read-only afterwards)
 * and the policy — TLS 1.2 only (BearSSL has no 1.3), ECDHE key exchange with AES-GCM or
 * ChaCha20-Poly1305 in the server's order, ALPN "http/1.1" with a mismatch refused (RFC 7301),
 * no renegotiation — plus the session cache, the one piece of it that changes.
 *
 * The session cache is shared by all reactors behind a mutex, not one per reactor: SO_REUSEPORT
 * hashes every new connection of a client to a random reactor, so a per-reactor cache would
 * resume only 1 in THREADS sessions. The lock is taken once per full handshake (save) and once
 * per resumption attempt (load), for the length of a tree lookup, never across I/O.
 *
 * A struct tls_conn is one connection's BearSSL server engine and its I/O buffer. Like the
 * engine itself it only transforms bytes: tls_conn_recv() takes ciphertext and hands back
 * plaintext; the caller moves records between the engine and the socket (src/http/http_tls.c
 * does it through the ring). */
#ifndef COMFYGATE_TLS_H
#define COMFYGATE_TLS_H

#include <bearssl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Largest PEM file accepted: a chain is a few KiB; anything this big is a mistake. */
#define TLS_PEM_MAX (1u << 20)

/* Per connection: the engine context (about 4 KiB) and one buffer for a whole incoming record
 * and a whole outgoing one (BR_SSL_BUFSIZE_BIDI, 33,178 bytes): about 37 KiB in all. A server
 * cannot use a smaller input half, since the client chooses its record size. */
struct tls_conn {
    br_ssl_server_context sc;
    unsigned char buf[BR_SSL_BUFSIZE_BIDI];
};

struct tls_server;

/* Loads cert_file (PEM: the leaf certificate first, then its chain) and key_file (PEM: RSA or
 * EC, PKCS#1, SEC1 or unencrypted PKCS#8), checks that the key matches the leaf certificate and
 * sets up a session cache of cache_bytes (0: no resumption). On error returns -1 with a message
 * naming the setting and the file in err. */
int tls_server_new(struct tls_server **out, const char *cert_file, const char *key_file,
                   size_t cache_bytes, char *err, size_t cap);
/* The same from PEM text in memory (the fuzzer's embedded test key). */
int tls_server_new_pem(struct tls_server **out, const char *cert_pem, size_t cert_len,
                       const char *key_pem, size_t key_len, size_t cache_bytes, char *err,
                       size_t cap);
void tls_server_free(struct tls_server *t);
/* "RSA-2048" or "EC P-256", for the start-up log line. */
const char *tls_server_key_desc(const struct tls_server *t);
/* Certificates in the chain. */
size_t tls_server_chain_len(const struct tls_server *t);

/* A new engine, ready for a handshake; -ENOMEM or -EINVAL (BearSSL refused the set-up). */
int tls_conn_new(struct tls_conn **out, const struct tls_server *t);
void tls_conn_free(struct tls_conn *tc);
static inline br_ssl_engine_context *tls_engine(struct tls_conn *tc)
{
    return &tc->sc.eng;
}

/* Receives plaintext as it is decrypted; returns false to stop (the connection is gone). The
 * bytes are valid only during the call. */
typedef bool (*tls_deliver_fn)(void *arg, const unsigned char *p, size_t n);

/* Pushes received ciphertext into the engine, handing every piece of decrypted application
 * data to deliver. Returns the bytes consumed: fewer than len when the engine must send a
 * record before it reads on (mid-handshake) or has failed or closed; the caller keeps the rest
 * and pushes it again once the pending record is out. */
size_t tls_conn_recv(struct tls_conn *tc, const void *data, size_t len, tls_deliver_fn deliver,
                     void *arg);

/* BearSSL error code (br_ssl_engine_last_error) → a short name for logs ("BAD_MAC",
 * "RECV_FATAL_ALERT", ...). */
const char *tls_error_name(int err);
/* Cipher suite number → its IANA name, or "unknown". */
const char *tls_suite_name(unsigned suite);

#endif
