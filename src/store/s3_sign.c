/* s3_sign — see s3_sign.h. The canonical request is hashed as it is produced, never built in
 * one buffer, so the only limits are the caller's. */
#include "store/s3_sign.h"

#include <bearssl.h>
#include <ctype.h>
#include <stdio.h>
#include <string.h>

static const char hexd[] = "0123456789abcdef";

static void to_hex(const unsigned char *d, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hexd[d[i] >> 4];
        out[2 * i + 1] = hexd[d[i] & 15];
    }
    out[2 * n] = '\0';
}

static void hmac(const void *key, size_t klen, const char *msg, unsigned char out[32])
{
    br_hmac_key_context kc;
    br_hmac_context hc;
    br_hmac_key_init(&kc, &br_sha256_vtable, key, klen);
    br_hmac_init(&hc, &kc, 0);
    br_hmac_update(&hc, msg, strlen(msg));
    br_hmac_out(&hc, out);
}

static void sha_str(br_sha256_context *c, const char *s)
{
    br_sha256_update(c, s, strlen(s));
}

int s3_signature(const struct s3_sign_in *in, char sig[65])
{
    if (strlen(in->amz_date) != 16)
        return -1;
    br_sha256_context c;
    br_sha256_init(&c);
    sha_str(&c, in->method);
    sha_str(&c, "\n");
    sha_str(&c, in->path);
    sha_str(&c, "\n");
    sha_str(&c, in->query);
    sha_str(&c, "\n");
    for (size_t i = 0; i < in->nheaders; i++) {
        sha_str(&c, in->headers[i].name);
        sha_str(&c, ":");
        sha_str(&c, in->headers[i].value);
        sha_str(&c, "\n");
    }
    sha_str(&c, "\n");
    for (size_t i = 0; i < in->nheaders; i++) {
        if (i)
            sha_str(&c, ";");
        sha_str(&c, in->headers[i].name);
    }
    sha_str(&c, "\n");
    sha_str(&c, in->payload_hash);
    unsigned char d[32];
    char creq_hex[65];
    br_sha256_out(&c, d);
    to_hex(d, 32, creq_hex);

    char date[9], scope[160], sts[320], kbuf[300];
    memcpy(date, in->amz_date, 8);
    date[8] = '\0';
    int n = snprintf(scope, sizeof(scope), "%s/%s/s3/aws4_request", date, in->region);
    if (n < 0 || (size_t)n >= sizeof(scope))
        return -1;
    n = snprintf(sts, sizeof(sts), "AWS4-HMAC-SHA256\n%s\n%s\n%s", in->amz_date, scope, creq_hex);
    if (n < 0 || (size_t)n >= sizeof(sts))
        return -1;
    n = snprintf(kbuf, sizeof(kbuf), "AWS4%s", in->secret);
    if (n < 0 || (size_t)n >= sizeof(kbuf))
        return -1;
    unsigned char k[32];
    hmac(kbuf, (size_t)n, date, k);
    hmac(k, 32, in->region, k);
    hmac(k, 32, "s3", k);
    hmac(k, 32, "aws4_request", k);
    hmac(k, 32, sts, d);
    to_hex(d, 32, sig);
    memset(kbuf, 0, sizeof(kbuf));
    memset(k, 0, sizeof(k));
    return 0;
}

int s3_uri_encode(char *out, size_t cap, const char *in, bool keep_slash)
{
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)in; *p; p++) {
        bool plain = (*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
                     (*p >= '0' && *p <= '9') || *p == '-' || *p == '.' || *p == '_' ||
                     *p == '~' || (keep_slash && *p == '/');
        size_t need = plain ? 1 : 3;
        if (o + need >= cap)
            return -1;
        if (plain) {
            out[o++] = (char)*p;
        } else {
            out[o++] = '%';
            out[o++] = "0123456789ABCDEF"[*p >> 4];
            out[o++] = "0123456789ABCDEF"[*p & 15];
        }
    }
    if (o >= cap)
        return -1;
    out[o] = '\0';
    return (int)o;
}

void s3_amz_date(time_t t, char out[17])
{
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 17, "%Y%m%dT%H%M%SZ", &tm);
}

int s3_target_endpoint(struct s3_target *t, const char *endpoint, char *err, size_t errlen)
{
    const char *p = endpoint;
    if (!strncmp(p, "https://", 8)) {
        t->https = true;
        p += 8;
    } else if (!strncmp(p, "http://", 7)) {
        t->https = false;
        p += 7;
    } else {
        snprintf(err, errlen, "S3_ENDPOINT must start with http:// or https://");
        return -1;
    }
    size_t hl = strcspn(p, "/?#");
    /* a host name, IPv4 or [IPv6], and a port: it goes into the signed Host header */
    size_t ok = strspn(p, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_:[]");
    if (hl == 0 || hl >= sizeof(t->host) || ok < hl) {
        snprintf(err, errlen, "S3_ENDPOINT needs a host[:port] (and no user:password@)");
        return -1;
    }
    /* as clients will send it in a presigned URL's Host: lower case, no default port */
    for (size_t i = 0; i < hl; i++)
        t->host[i] = (char)tolower((unsigned char)p[i]);
    t->host[hl] = '\0';
    const char *dflt = t->https ? ":443" : ":80";
    size_t dl = strlen(dflt);
    if (hl > dl && !strcmp(t->host + hl - dl, dflt))
        t->host[hl - dl] = '\0';
    p += hl;
    if (strpbrk(p, "?#")) {
        snprintf(err, errlen, "S3_ENDPOINT must not carry a query or fragment");
        return -1;
    }
    size_t pl = strlen(p);
    while (pl && p[pl - 1] == '/')
        pl--;
    if (pl >= sizeof(t->base_path)) {
        snprintf(err, errlen, "S3_ENDPOINT's path is too long");
        return -1;
    }
    memcpy(t->base_path, p, pl);
    t->base_path[pl] = '\0';
    /* signed and sent as is: plain characters only, no segment a client would rewrite */
    bool plain = strspn(t->base_path, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                      "0123456789-._~/") == pl;
    if (!plain || strstr(t->base_path, "/./") || strstr(t->base_path, "/../") ||
        (pl >= 2 && !strcmp(t->base_path + pl - 2, "/.")) ||
        (pl >= 3 && !strcmp(t->base_path + pl - 3, "/.."))) {
        snprintf(err, errlen, "S3_ENDPOINT's path must be plain (a-z, 0-9, -._~), without . or "
                              ".. segments");
        return -1;
    }
    return 0;
}

int s3_object_where(const struct s3_target *t, const char *key, char host[300], char *path,
                    size_t path_cap, char *url, size_t url_cap)
{
    char ekey[1200];
    if (s3_uri_encode(ekey, sizeof(ekey), key, true) < 0)
        return -1;
    int n, hn;
    if (t->path_style) {
        hn = snprintf(host, 300, "%s", t->host);
        n = snprintf(path, path_cap, "%s/%s/%s", t->base_path, t->bucket, ekey);
    } else {
        hn = snprintf(host, 300, "%.63s.%.235s", t->bucket, t->host);
        n = snprintf(path, path_cap, "%s/%s", t->base_path, ekey);
    }
    if (hn < 0 || hn >= 300)
        return -1;
    if (n < 0 || (size_t)n >= path_cap)
        return -1;
    n = snprintf(url, url_cap, "%s://%s%s", t->https ? "https" : "http", host, path);
    return n < 0 || (size_t)n >= url_cap ? -1 : 0;
}

int s3_authorize(const struct s3_target *t, const char *method, const char *key,
                 const char *payload_hash, time_t now, char amz_date[17], char *auth,
                 size_t auth_cap)
{
    char host[300], path[1400], url[1800], sig[65];
    if (s3_object_where(t, key, host, path, sizeof(path), url, sizeof(url)) < 0)
        return -1;
    s3_amz_date(now, amz_date);
    bool token = t->session_token[0] != '\0';
    const struct s3_header h[] = {{"host", host},
                                  {"x-amz-content-sha256", payload_hash},
                                  {"x-amz-date", amz_date},
                                  {"x-amz-security-token", t->session_token}};
    const struct s3_sign_in in = {.method = method, .path = path, .query = "", .headers = h,
                                  .nheaders = token ? 4 : 3, .payload_hash = payload_hash,
                                  .amz_date = amz_date, .region = t->region, .secret = t->secret};
    if (s3_signature(&in, sig) < 0)
        return -1;
    int n = snprintf(auth, auth_cap,
                     "AWS4-HMAC-SHA256 Credential=%s/%.8s/%s/s3/aws4_request,"
                     "SignedHeaders=host;x-amz-content-sha256;x-amz-date%s,Signature=%s",
                     t->access_key, amz_date, t->region, token ? ";x-amz-security-token" : "",
                     sig);
    return n < 0 || (size_t)n >= auth_cap ? -1 : 0;
}

int s3_presign_get(const struct s3_target *t, const char *key, time_t now, unsigned expires,
                   char *url, size_t cap)
{
    if (expires < 1 || expires > 604800)
        return -1;
    char host[300], path[1400], base[1800], amz_date[17], cred[400], ecred[600], query[14000];
    char etoken[3 * sizeof(t->session_token)], sig[65];
    if (s3_object_where(t, key, host, path, sizeof(path), base, sizeof(base)) < 0)
        return -1;
    s3_amz_date(now, amz_date);
    int n = snprintf(cred, sizeof(cred), "%s/%.8s/%s/s3/aws4_request", t->access_key, amz_date,
                     t->region);
    if (n < 0 || (size_t)n >= sizeof(cred) || s3_uri_encode(ecred, sizeof(ecred), cred, false) < 0)
        return -1;
    if (s3_uri_encode(etoken, sizeof(etoken), t->session_token, false) < 0)
        return -1;
    /* already in canonical (sorted) order: ...Expires, Security-Token, SignedHeaders */
    n = snprintf(query, sizeof(query),
                 "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=%s&X-Amz-Date=%s"
                 "&X-Amz-Expires=%u%s%s&X-Amz-SignedHeaders=host",
                 ecred, amz_date, expires, etoken[0] ? "&X-Amz-Security-Token=" : "", etoken);
    if (n < 0 || (size_t)n >= sizeof(query))
        return -1;
    const struct s3_header h[] = {{"host", host}};
    const struct s3_sign_in in = {.method = "GET", .path = path, .query = query, .headers = h,
                                  .nheaders = 1, .payload_hash = "UNSIGNED-PAYLOAD",
                                  .amz_date = amz_date, .region = t->region, .secret = t->secret};
    if (s3_signature(&in, sig) < 0)
        return -1;
    n = snprintf(url, cap, "%s?%s&X-Amz-Signature=%s", base, query, sig);
    return n < 0 || (size_t)n >= cap ? -1 : 0;
}
