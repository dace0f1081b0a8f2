/* ts_tls — TLS for the integration tests: a throw-away CA and server certificates made with the
 * openssl command-line tool at test time, TLS client connections with OpenSSL's libssl on top
 * of ts_conn (so every ts_net reader works over TLS as it does over TCP), and runs of external
 * tools such as `openssl s_client` whose output a test searches.
 *
 * The client side is deliberately another implementation than the server's (OpenSSL against
 * BearSSL): a test passes only if the two agree on the wire. */
#ifndef COMFYGATE_TS_TLS_H
#define COMFYGATE_TS_TLS_H

#include <stdbool.h>
#include <stddef.h>

#include "ts_net.h"

/* Files in a scratch directory. Leaf certificates are for DNS:localhost and IP:127.0.0.1,
 * signed by the CA; the chain files hold the leaf, then the CA. */
struct ts_certs {
    char dir[256];
    char ca[320];          /* what clients trust */
    char rsa_chain[320];   /* RSA-2048 leaf + CA */
    char rsa_key[320];     /* PKCS#8 */
    char ec_chain[320];    /* EC P-256 leaf + CA */
    char ec_key[320];      /* PKCS#8 */
    char ec_key_sec1[320]; /* the same EC key as "EC PRIVATE KEY" (SEC1) */
    char other_key[320];   /* an RSA-2048 key of no certificate */
};

/* True if the openssl tool runs (tests that need it skip themselves otherwise). */
bool ts_tls_tool_available(void);
/* Makes the CA and both leaves (a few seconds: RSA key generation). 0, or -1 after recording a
 * failure. */
int ts_certs_make(struct ts_certs *k);
void ts_certs_remove(struct ts_certs *k);

struct ts_tls_opts {
    const char *cafile;  /* verify the chain against it and the name "localhost"; NULL: none */
    const char *alpn;    /* offer this one protocol; NULL: no ALPN extension */
    const char *ciphers; /* OpenSSL TLS 1.2 cipher list; NULL: OpenSSL's defaults */
    bool tls13_only;     /* offer TLS 1.3 and nothing older */
    void *session;       /* SSL_SESSION * to resume, or NULL */
};

/* TLS handshake on an open connection; from then on ts_conn_send and ts_conn_fill go through
 * TLS. 0, -EPROTO if the handshake failed (ts_tls_error() says why), -ETIMEDOUT. */
int ts_tls_start(struct ts_conn *c, const struct ts_tls_opts *o, int timeout_ms);
/* ts_conn_open + ts_tls_start. */
int ts_tls_open(struct ts_conn *c, int port, const struct ts_tls_opts *o, int timeout_ms);
/* The last handshake failure, for messages. */
const char *ts_tls_error(void);
/* After the handshake: the cipher's OpenSSL name, the ALPN protocol ("" if none), the protocol
 * version ("TLSv1.2"), whether the session was resumed, and the session (SSL_SESSION *, to be
 * freed with ts_tls_session_free) for a later resumption. */
const char *ts_tls_cipher(const struct ts_conn *c);
const char *ts_tls_alpn(const struct ts_conn *c, char *buf, size_t cap);
const char *ts_tls_version(const struct ts_conn *c);
bool ts_tls_resumed(const struct ts_conn *c);
void *ts_tls_session(const struct ts_conn *c);
void ts_tls_session_free(void *session);
/* Sends close_notify (the TLS goodbye) without closing the socket. */
void ts_tls_shutdown(struct ts_conn *c);
/* True once the server's close_notify has been read (a clean TLS close, not just TCP's). */
bool ts_tls_closed_cleanly(const struct ts_conn *c);
/* The first flight of an OpenSSL client (a real TLS 1.2 ClientHello record) into buf; its
 * length, or -1. For tests that stop in the middle of a handshake. */
int ts_tls_client_hello(unsigned char *buf, size_t cap);

/* Used by ts_net for a TLS connection: like recv/send with a deadline. */
int ts_tls_read(struct ts_conn *c, void *p, size_t n, int timeout_ms);
int ts_tls_write(struct ts_conn *c, const void *p, size_t n);
void ts_tls_free(struct ts_conn *c);

/* One-shot GET over TLS without verification (readiness checks): the status, or -errno. */
int ts_https_status(int port, const char *path, int timeout_ms);

/* Runs a program (argv[0] is looked up in PATH) in cwd (NULL: here), with `in` on its stdin
 * (NULL: nothing), collecting stdout and stderr together into out (up to cap-1 bytes, NUL-
 * terminated). Returns the exit code, 128 + the signal, or -1 (not started, or killed after
 * timeout_ms). */
int ts_run_tool(const char *const *argv, const char *cwd, const char *in, char *out, size_t cap,
                int timeout_ms);

#endif
