/* auth_keys — the API keys of the API_KEYS setting, kept only as SHA-256 hashes.
 *
 * Format: `key:role[:tenant],key2:role2[:tenant2],...`
 *  - key: 16 to 256 visible ASCII characters (0x21-0x7e) other than ':' and ','.
 *  - role: `admin` or `user`.
 *  - tenant: AUTH_TENANT_MAX bytes of [A-Za-z0-9._:@-] (everything after the second ':', so it
 *    may itself contain ':'); when absent, `key-` + the key id.
 *  - Spaces, tabs and line breaks around an entry are ignored (a key cannot contain them). An
 *    empty text means no keys; an empty entry (",," or a trailing ',') is an error.
 * The key id is the first 12 hex digits of the key's SHA-256: stable, fit for audit logs, and
 * not the key. Errors name the entry by position (and key id once known), never echo the key,
 * the role or the tenant field (a misordered entry would put the key there).
 *
 * Lookup hashes the presented key and compares it with every stored hash, without an early
 * exit, so its time does not depend on which key (if any) matched or how closely. */
#ifndef COMFYGATE_AUTH_KEYS_H
#define COMFYGATE_AUTH_KEYS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth/auth_common.h"

#define AUTH_KEY_MIN 16 /* characters of a key */
#define AUTH_KEY_MAX 256
#define AUTH_KEYS_MAX 1024 /* entries of API_KEYS */
#define AUTH_KEY_ID_LEN 12 /* hex digits of a key id */
#define AUTH_KEY_HASH_LEN 32

struct auth_key {
    uint8_t hash[AUTH_KEY_HASH_LEN]; /* SHA-256 of the key */
    enum auth_role role;
    char tenant[AUTH_TENANT_MAX + 1];
    char id[AUTH_KEY_ID_LEN + 1]; /* key id, for audit logs */
    bool two_dots; /* exactly two '.': would pass for a JWT in `Authorization: Bearer` */
};

/* Immutable after auth_keys_parse; shared read-only by all threads. */
struct auth_keys {
    struct auth_key *v; /* in API_KEYS order */
    size_t n;
};

/* Parses text (NULL or "" → no keys) into ks. On error returns -1 with a message in err and ks
 * empty. ks must be freed with auth_keys_free either way. */
int auth_keys_parse(struct auth_keys *ks, const char *text, char *err, size_t err_cap);
/* Wipes and frees the table; ks is then empty. */
void auth_keys_free(struct auth_keys *ks);
/* The stored key equal to key[0..len), or NULL. Constant time over the table. */
const struct auth_key *auth_keys_lookup(const struct auth_keys *ks, const char *key, size_t len);
/* The key id of key[0..len) (12 hex digits and a terminator), whether or not it is stored. */
void auth_key_id(const char *key, size_t len, char id[AUTH_KEY_ID_LEN + 1]);

#endif
