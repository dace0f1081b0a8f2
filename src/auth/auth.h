/* auth — who is calling: an API key (X-API-Key, or Authorization: Bearer) or an HS256 JWT
 * (Authorization: Bearer), resolved to a principal (tenant, role) or a reason for refusal.
 * Pure: no I/O, no clock (the time is a parameter), no state after auth_init.
 *
 * Header rules (values are trimmed of surrounding spaces and tabs first):
 *  - Authorization, when present, must be `Bearer <credential>` (scheme in any case, one or
 *    more spaces, no space inside the credential); anything else — another scheme, a missing
 *    credential — is AUTH_MALFORMED_HEADER, even next to a valid X-API-Key.
 *  - Both headers present: they must carry the same credential (byte for byte), which is then
 *    taken as an API key; two different credentials are AUTH_MALFORMED_HEADER, since choosing
 *    one would silently ignore what the client meant by the other.
 *  - A Bearer credential with exactly two '.' is verified as a JWT when a JWT secret is
 *    configured; any other credential is looked up as an API key. So that every configured key
 *    works in both headers, auth_init refuses keys with exactly two '.' when JWT is enabled.
 *  - An empty X-API-Key counts as present (and invalid), not as absent.
 * auth_enabled() is false when neither API keys nor a JWT secret are configured; callers then
 * skip auth_check (which would refuse everything). */
#ifndef COMFYGATE_AUTH_H
#define COMFYGATE_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth/auth_common.h"
#include "auth/auth_keys.h"
#include "auth/jwt.h"

#define AUTH_ID_MAX (4 + AUTH_TENANT_MAX) /* "jwt:" + sub */

enum auth_err {
    AUTH_OK = 0,
    AUTH_MISSING,          /* neither X-API-Key nor Authorization */
    AUTH_INVALID_KEY,      /* an API key that is not configured */
    AUTH_INVALID_TOKEN,    /* a JWT that failed verification: principal.jwt_err says why */
    AUTH_MALFORMED_HEADER, /* Authorization not `Bearer <x>`, or two different credentials */
};

enum auth_kind {
    AUTH_KIND_NONE = 0,
    AUTH_KIND_API_KEY,
    AUTH_KIND_JWT,
};

struct auth_principal {
    char tenant[AUTH_TENANT_MAX + 1];
    enum auth_role role;
    enum auth_kind kind;
    char id[AUTH_ID_MAX + 1]; /* for audit logs: the key id (12 hex digits) or "jwt:<sub>" */
    int64_t expires_s;        /* the JWT's exp; 0 for API keys and tokens without one */
    enum jwt_err jwt_err;     /* with AUTH_INVALID_TOKEN: the reason */
};

/* Settings, as read from the configuration. Strings may be NULL or "" (not set). */
struct auth_config {
    const char *api_keys;   /* API_KEYS */
    const char *jwt_secret; /* JWT_SECRET (raw bytes up to the terminator); "" disables JWT */
    int64_t jwt_leeway_s;   /* JWT_LEEWAY_S */
    bool jwt_require_exp;   /* JWT_REQUIRE_EXP */
    size_t jwt_max_len;     /* JWT_MAX_BYTES */
    const char *jwt_audience;
    const char *jwt_issuer;
};

/* Immutable after auth_init; shared read-only by all threads. */
struct auth {
    struct auth_keys keys;
    bool jwt_enabled;
    struct jwt_verifier jwt;
};

/* The JWT defaults of jwt.h, no keys, no secret. */
void auth_config_default(struct auth_config *c);
/* On error returns -1 with a message in err; a is then empty (auth_free is still safe). */
int auth_init(struct auth *a, const struct auth_config *c, char *err, size_t err_cap);
void auth_free(struct auth *a);
bool auth_enabled(const struct auth *a);
/* Either header may be NULL (absent). On AUTH_OK fills the principal; otherwise out is zeroed
 * except out->jwt_err. */
enum auth_err auth_check(const struct auth *a, const char *x_api_key, size_t x_api_key_len,
                         const char *authorization, size_t authorization_len, int64_t now_s,
                         struct auth_principal *out);
const char *auth_err_name(enum auth_err e);
const char *auth_kind_name(enum auth_kind k);

#endif
