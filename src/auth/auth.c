/* auth — see auth.h. Owns the key table and the JWT verifier built from the settings. */
#include "auth/auth.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

const char *auth_err_name(enum auth_err e)
{
    switch (e) {
    case AUTH_OK:
        return "ok";
    case AUTH_MISSING:
        return "missing";
    case AUTH_INVALID_KEY:
        return "invalid_key";
    case AUTH_INVALID_TOKEN:
        return "invalid_token";
    case AUTH_MALFORMED_HEADER:
        return "malformed_header";
    }
    return "unknown";
}

const char *auth_kind_name(enum auth_kind k)
{
    switch (k) {
    case AUTH_KIND_NONE:
        return "none";
    case AUTH_KIND_API_KEY:
        return "api_key";
    case AUTH_KIND_JWT:
        return "jwt";
    }
    return "unknown";
}

void auth_config_default(struct auth_config *c)
{
    memset(c, 0, sizeof *c);
    c->jwt_leeway_s = JWT_LEEWAY_DEFAULT;
    c->jwt_require_exp = true;
    c->jwt_max_len = JWT_LEN_DEFAULT;
}

static bool auth_set(const char *s)
{
    return s && s[0];
}

static int auth_init_jwt(struct auth *a, const struct auth_config *c, char *err, size_t cap)
{
    struct jwt_config jc;
    jwt_config_default(&jc);
    jc.secret = c->jwt_secret;
    jc.secret_len = strlen(c->jwt_secret);
    jc.leeway_s = c->jwt_leeway_s;
    jc.require_exp = c->jwt_require_exp;
    jc.max_len = c->jwt_max_len;
    jc.audience = c->jwt_audience;
    jc.issuer = c->jwt_issuer;
    if (jwt_verifier_init(&a->jwt, &jc, err, cap) < 0)
        return -1;
    a->jwt_enabled = true;
    for (size_t i = 0; i < a->keys.n; i++) {
        if (a->keys.v[i].two_dots) {
            snprintf(err, cap,
                     "API_KEYS entry %zu (key id %s): a key with exactly two '.' would be taken "
                     "for a JWT in Authorization: Bearer while JWT_SECRET is set",
                     i + 1, a->keys.v[i].id);
            return -1;
        }
    }
    return 0;
}

int auth_init(struct auth *a, const struct auth_config *c, char *err, size_t err_cap)
{
    memset(a, 0, sizeof *a);
    if (auth_keys_parse(&a->keys, c->api_keys, err, err_cap) < 0)
        return -1;
    int rc = 0;
    if (auth_set(c->jwt_secret)) {
        rc = auth_init_jwt(a, c, err, err_cap);
    } else if (auth_set(c->jwt_audience) || auth_set(c->jwt_issuer)) {
        snprintf(err, err_cap, "JWT_AUDIENCE or JWT_ISSUER is set but JWT_SECRET is not");
        rc = -1;
    }
    if (rc < 0)
        auth_free(a);
    return rc;
}

void auth_free(struct auth *a)
{
    auth_keys_free(&a->keys);
    jwt_verifier_clear(&a->jwt);
    a->jwt_enabled = false;
}

bool auth_enabled(const struct auth *a)
{
    return a->keys.n > 0 || a->jwt_enabled;
}

static void auth_trim(const char **s, size_t *n)
{
    while (*n > 0 && (**s == ' ' || **s == '\t')) {
        (*s)++;
        (*n)--;
    }
    while (*n > 0 && ((*s)[*n - 1] == ' ' || (*s)[*n - 1] == '\t'))
        (*n)--;
}

/* `Bearer` 1*SP credential (already trimmed): the credential, or -1. */
static int auth_bearer(const char *s, size_t n, const char **cred, size_t *cred_len)
{
    if (n < 7 || strncasecmp(s, "bearer", 6) != 0 || s[6] != ' ')
        return -1;
    size_t i = 6;
    while (i < n && s[i] == ' ')
        i++;
    if (i == n)
        return -1;
    for (size_t j = i; j < n; j++) {
        if (s[j] == ' ' || s[j] == '\t')
            return -1;
    }
    *cred = s + i;
    *cred_len = n - i;
    return 0;
}

static bool auth_two_dots(const char *s, size_t n)
{
    size_t dots = 0;
    for (size_t i = 0; i < n; i++)
        dots += s[i] == '.';
    return dots == 2;
}

static enum auth_err auth_by_key(const struct auth *a, const char *key, size_t len,
                                 struct auth_principal *out)
{
    const struct auth_key *k = auth_keys_lookup(&a->keys, key, len);
    if (!k)
        return AUTH_INVALID_KEY;
    memcpy(out->tenant, k->tenant, sizeof out->tenant);
    memcpy(out->id, k->id, sizeof k->id);
    out->role = k->role;
    out->kind = AUTH_KIND_API_KEY;
    return AUTH_OK;
}

static enum auth_err auth_by_jwt(const struct auth *a, const char *token, size_t len, int64_t now_s,
                                 struct auth_principal *out)
{
    struct jwt_claims c;
    enum jwt_err e = jwt_verify(&a->jwt, token, len, now_s, &c);
    if (e != JWT_OK) {
        out->jwt_err = e;
        return AUTH_INVALID_TOKEN;
    }
    memcpy(out->tenant, c.sub, sizeof out->tenant);
    snprintf(out->id, sizeof out->id, "jwt:%s", c.sub);
    out->role = c.role;
    out->kind = AUTH_KIND_JWT;
    out->expires_s = c.exp;
    return AUTH_OK;
}

enum auth_err auth_check(const struct auth *a, const char *x_api_key, size_t x_api_key_len,
                         const char *authorization, size_t authorization_len, int64_t now_s,
                         struct auth_principal *out)
{
    memset(out, 0, sizeof *out);
    const char *cred = NULL;
    size_t len = 0;
    bool bearer = false;
    if (authorization) {
        auth_trim(&authorization, &authorization_len);
        if (auth_bearer(authorization, authorization_len, &cred, &len) < 0)
            return AUTH_MALFORMED_HEADER;
        bearer = true;
    }
    if (x_api_key) {
        auth_trim(&x_api_key, &x_api_key_len);
        /* Both sides are the client's input, so no secret is at stake; constant time anyway,
         * so that no comparison of credentials needs an argument for why it may exit early. */
        if (cred && (x_api_key_len != len || !auth_ct_equal(x_api_key, cred, len)))
            return AUTH_MALFORMED_HEADER;
        cred = x_api_key;
        len = x_api_key_len;
        bearer = false;
    }
    if (!cred)
        return AUTH_MISSING;
    if (bearer && a->jwt_enabled && auth_two_dots(cred, len))
        return auth_by_jwt(a, cred, len, now_s, out);
    return auth_by_key(a, cred, len, out);
}
