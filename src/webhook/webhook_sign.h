/* webhook_sign — Standard Webhooks signing (pure: no I/O but getrandom for message ids).
 *
 * A secret is configured as "whsec_<base64>" (24 to 64 bytes once decoded, as the spec asks).
 * Each attempt is signed over "{webhook-id}.{webhook-timestamp}.{body}" with HMAC-SHA256 and
 * sent as "webhook-signature: v1,<base64>"; during a secret rotation the previous secret signs
 * too and both signatures go in the header, space-separated, so receivers holding either secret
 * verify. Receivers written to the simpler scheme get "X-Signature: sha256=<hex>", the
 * HMAC-SHA256 of the body alone with the current secret (no timestamp: no replay protection). */
#ifndef COMFYGATE_WEBHOOK_SIGN_H
#define COMFYGATE_WEBHOOK_SIGN_H

#include <stddef.h>
#include <stdint.h>

#define WEBHOOK_SECRET_MIN 24
#define WEBHOOK_SECRET_MAX 64
/* "msg_" + 27 base62 characters + NUL (as long as a KSUID, never a '.') */
#define WEBHOOK_ID_SIZE 32
/* "v1,<44 base64>" for the current secret and, rotating, a space and the previous one, + NUL */
#define WEBHOOK_SIG_SIZE 96
/* "sha256=" + 64 hex + NUL */
#define WEBHOOK_XSIG_SIZE 72

struct webhook_secret {
    unsigned char key[WEBHOOK_SECRET_MAX];
    size_t len; /* 0: none */
};

/* Parses "whsec_<base64>" (standard alphabet, padding optional). name is the setting's name
 * for the message ("WEBHOOK_SECRET"). Returns 0, or -1 with a message in err. */
int webhook_secret_parse(struct webhook_secret *s, const char *text, const char *name, char *err,
                         size_t errlen);

/* A fresh random "msg_..." id. Returns 0, or -errno if the kernel gave no randomness. */
int webhook_msg_id(char out[WEBHOOK_ID_SIZE]);
/* A stable id for (job, key): "msg_" + hex of SHA-256("<job>/<key>"), the same every time. */
void webhook_msg_id_for(const char *job_id, const char *key, char out[WEBHOOK_ID_SIZE]);

/* "v1,<base64 HMAC>" of id.timestamp.body with one secret; returns its length. */
size_t webhook_sign_v1(const struct webhook_secret *s, const char *id, int64_t timestamp,
                       const char *body, size_t len, char out[WEBHOOK_SIG_SIZE]);
/* The webhook-signature header value: the current secret's signature, then the previous
 * secret's when prev is not NULL and set. */
void webhook_signature(const struct webhook_secret *cur, const struct webhook_secret *prev,
                       const char *id, int64_t timestamp, const char *body, size_t len,
                       char out[WEBHOOK_SIG_SIZE]);
/* The X-Signature header value: "sha256=<hex HMAC-SHA256(secret, body)>". */
void webhook_signature_hex(const struct webhook_secret *s, const char *body, size_t len,
                           char out[WEBHOOK_XSIG_SIZE]);

#endif
