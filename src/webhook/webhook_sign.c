/* webhook_sign — see webhook_sign.h. */
#include "webhook/webhook_sign.h"

#include <bearssl.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#include "core/b64.h"

#define PREFIX "whsec_"

int webhook_secret_parse(struct webhook_secret *s, const char *text, const char *name, char *err,
                         size_t errlen)
{
    memset(s, 0, sizeof(*s));
    if (strncmp(text, PREFIX, strlen(PREFIX)) != 0) {
        snprintf(err, errlen,
                 "%s must be whsec_ followed by base64 (e.g. whsec_$(openssl rand "
                 "-base64 32))",
                 name);
        return -1;
    }
    const char *b = text + strlen(PREFIX);
    size_t blen = strlen(b);
    unsigned char tmp[768]; /* room for any text up to 1024 characters */
    long n = blen <= 1024 ? b64_decode(b, blen, tmp, sizeof(tmp), B64_PADDING_OPTIONAL) : WEBHOOK_SECRET_MAX + 1;
    if (n < 0) {
        snprintf(err, errlen, "%s is not valid base64 after whsec_", name);
        return -1;
    }
    if (n < WEBHOOK_SECRET_MIN || n > WEBHOOK_SECRET_MAX) {
        snprintf(err, errlen, "%s must decode to %d to %d bytes, not %s%ld", name,
                 WEBHOOK_SECRET_MIN, WEBHOOK_SECRET_MAX, blen > 1024 ? "over " : "",
                 blen > 1024 ? 768L : n);
        return -1;
    }
    memcpy(s->key, tmp, (size_t)n);
    s->len = (size_t)n;
    return 0;
}

void webhook_msg_id_for(const char *job_id, const char *key, char out[WEBHOOK_ID_SIZE])
{
    static const char hex[] = "0123456789abcdef";
    br_sha256_context c;
    unsigned char d[32];
    br_sha256_init(&c);
    br_sha256_update(&c, job_id, strlen(job_id));
    br_sha256_update(&c, "/", 1);
    br_sha256_update(&c, key, strlen(key));
    br_sha256_out(&c, d);
    memcpy(out, "msg_", 4);
    for (size_t o = 4, i = 0; o < WEBHOOK_ID_SIZE - 1; o++, i++)
        out[o] = hex[(d[i / 2] >> (i % 2 ? 0 : 4)) & 15];
    out[WEBHOOK_ID_SIZE - 1] = '\0';
}

int webhook_msg_id(char out[WEBHOOK_ID_SIZE])
{
    static const char alnum[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    unsigned char rnd[64];
    size_t used = sizeof(rnd);
    memcpy(out, "msg_", 4);
    for (size_t o = 4; o < WEBHOOK_ID_SIZE - 1;) {
        if (used == sizeof(rnd)) {
            if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
                return -EIO;
            used = 0;
        }
        unsigned char b = rnd[used++];
        if (b < 248) /* 4 * 62: rejecting the rest keeps every character equally likely */
            out[o++] = alnum[b % 62];
    }
    out[WEBHOOK_ID_SIZE - 1] = '\0';
    return 0;
}

static void hmac(const struct webhook_secret *s, const char *prefix, size_t plen, const char *body,
                 size_t len, unsigned char mac[32])
{
    br_hmac_key_context kc;
    br_hmac_context hc;
    br_hmac_key_init(&kc, &br_sha256_vtable, s->key, s->len);
    br_hmac_init(&hc, &kc, 0);
    br_hmac_update(&hc, prefix, plen);
    br_hmac_update(&hc, body, len);
    br_hmac_out(&hc, mac);
}

size_t webhook_sign_v1(const struct webhook_secret *s, const char *id, int64_t timestamp,
                       const char *body, size_t len, char out[WEBHOOK_SIG_SIZE])
{
    char prefix[WEBHOOK_ID_SIZE + 32];
    int plen = snprintf(prefix, sizeof(prefix), "%s.%lld.", id, (long long)timestamp);
    unsigned char mac[32];
    hmac(s, prefix, (size_t)plen, body, len, mac);
    memcpy(out, "v1,", 3);
    size_t n = 3 + b64_encode(mac, sizeof(mac), out + 3);
    out[n] = '\0';
    return n;
}

void webhook_signature(const struct webhook_secret *cur, const struct webhook_secret *prev,
                       const char *id, int64_t timestamp, const char *body, size_t len,
                       char out[WEBHOOK_SIG_SIZE])
{
    size_t n = webhook_sign_v1(cur, id, timestamp, body, len, out);
    if (!prev || !prev->len)
        return;
    char second[WEBHOOK_SIG_SIZE];
    size_t m = webhook_sign_v1(prev, id, timestamp, body, len, second);
    out[n] = ' ';
    memcpy(out + n + 1, second, m + 1);
}

void webhook_signature_hex(const struct webhook_secret *s, const char *body, size_t len,
                           char out[WEBHOOK_XSIG_SIZE])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char mac[32];
    hmac(s, "", 0, body, len, mac);
    memcpy(out, "sha256=", 7);
    for (size_t i = 0; i < sizeof(mac); i++) {
        out[7 + 2 * i] = hex[mac[i] >> 4];
        out[8 + 2 * i] = hex[mac[i] & 15];
    }
    out[7 + 64] = '\0';
}
