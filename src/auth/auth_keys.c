/* auth_keys — see auth_keys.h. The table is allocated once at start-up (at most
 * AUTH_KEYS_MAX entries) and read-only afterwards. The raw keys are never copied: each is
 * hashed straight from the setting's text, and the hash state (which buffers the key's last
 * bytes) is wiped after use. */
#include "auth/auth_keys.h"

#include <bearssl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


static void ak_hash(const char *key, size_t len, uint8_t out[AUTH_KEY_HASH_LEN])
{
    br_sha256_context ctx;
    br_sha256_init(&ctx);
    br_sha256_update(&ctx, key, len);
    br_sha256_out(&ctx, out);
    explicit_bzero(&ctx, sizeof ctx);
}

static void ak_id_of_hash(const uint8_t *hash, char id[AUTH_KEY_ID_LEN + 1])
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < AUTH_KEY_ID_LEN / 2; i++) {
        id[2 * i] = hex[hash[i] >> 4];
        id[2 * i + 1] = hex[hash[i] & 15];
    }
    id[AUTH_KEY_ID_LEN] = '\0';
}

void auth_key_id(const char *key, size_t len, char id[AUTH_KEY_ID_LEN + 1])
{
    uint8_t hash[AUTH_KEY_HASH_LEN];
    ak_hash(key, len, hash);
    ak_id_of_hash(hash, id);
}

static bool ak_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static void ak_trim(const char **s, size_t *n)
{
    while (*n > 0 && ak_space(**s)) {
        (*s)++;
        (*n)--;
    }
    while (*n > 0 && ak_space((*s)[*n - 1]))
        (*n)--;
}

/* Checks and hashes the key field, filling k->hash, k->id and k->two_dots. */
static int ak_parse_key(struct auth_key *k, const char *s, size_t n, size_t num, char *err,
                        size_t cap)
{
    if (n == 0)
        return auth_errf(err, cap, "API_KEYS entry %zu: the key is empty", num);
    if (n < AUTH_KEY_MIN || n > AUTH_KEY_MAX)
        return auth_errf(err, cap, "API_KEYS entry %zu: the key has %zu characters (%d to %d needed)",
                      num, n, AUTH_KEY_MIN, AUTH_KEY_MAX);
    size_t dots = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x21 || c > 0x7e)
            return auth_errf(err, cap,
                          "API_KEYS entry %zu: the key has a character other than visible ASCII "
                          "at position %zu",
                          num, i + 1);
        dots += c == '.';
    }
    ak_hash(s, n, k->hash);
    ak_id_of_hash(k->hash, k->id);
    k->two_dots = dots == 2;
    return 0;
}

/* One `key:role[:tenant]` entry (already trimmed); num is its 1-based position. */
static int ak_parse_entry(struct auth_key *k, const char *s, size_t n, size_t num, char *err,
                          size_t cap)
{
    if (n == 0)
        return auth_errf(err, cap, "API_KEYS entry %zu is empty", num);
    const char *c1 = memchr(s, ':', n);
    if (!c1)
        return auth_errf(err, cap, "API_KEYS entry %zu: expected key:role[:tenant]", num);
    if (ak_parse_key(k, s, (size_t)(c1 - s), num, err, cap) < 0)
        return -1;
    const char *role = c1 + 1;
    size_t rest = n - (size_t)(role - s);
    const char *c2 = memchr(role, ':', rest);
    size_t role_len = c2 ? (size_t)(c2 - role) : rest;
    if (auth_role_parse(role, role_len, &k->role) < 0)
        return auth_errf(err, cap, "API_KEYS entry %zu (key id %s): unknown role (admin or user)", num,
                      k->id);
    if (!c2) {
        snprintf(k->tenant, sizeof k->tenant, "key-%s", k->id);
        return 0;
    }
    const char *tenant = c2 + 1;
    size_t tenant_len = n - (size_t)(tenant - s);
    if (!auth_tenant_valid(tenant, tenant_len))
        return auth_errf(err, cap,
                      "API_KEYS entry %zu (key id %s): the tenant must be 1 to %d characters of "
                      "[A-Za-z0-9._:@-]",
                      num, k->id, AUTH_TENANT_MAX);
    memcpy(k->tenant, tenant, tenant_len);
    k->tenant[tenant_len] = '\0';
    return 0;
}

/* Entry i against the ones before it: the same key twice, or two keys whose ids collide (their
 * audit lines and default tenants would be indistinguishable). */
static int ak_check_unique(const struct auth_key *v, size_t i, char *err, size_t cap)
{
    for (size_t j = 0; j < i; j++) {
        if (auth_ct_equal(v[j].hash, v[i].hash, AUTH_KEY_HASH_LEN))
            return auth_errf(err, cap, "API_KEYS entries %zu and %zu have the same key (key id %s)",
                          j + 1, i + 1, v[i].id);
        if (strcmp(v[j].id, v[i].id) == 0)
            return auth_errf(err, cap,
                          "API_KEYS entries %zu and %zu: different keys with the same key id %s; "
                          "replace one of them",
                          j + 1, i + 1, v[i].id);
    }
    return 0;
}

int auth_keys_parse(struct auth_keys *ks, const char *text, char *err, size_t err_cap)
{
    ks->v = NULL;
    ks->n = 0;
    if (err_cap > 0)
        err[0] = '\0';
    const char *s = text ? text : "";
    size_t len = strlen(s);
    ak_trim(&s, &len);
    if (len == 0)
        return 0;
    size_t count = 1;
    for (size_t i = 0; i < len && count <= AUTH_KEYS_MAX; i++)
        count += s[i] == ',';
    if (count > AUTH_KEYS_MAX)
        return auth_errf(err, err_cap, "API_KEYS has more than %d entries", AUTH_KEYS_MAX);
    ks->v = calloc(count, sizeof *ks->v);
    if (!ks->v)
        return auth_errf(err, err_cap, "API_KEYS: out of memory");
    ks->n = count;
    const char *end = s + len;
    for (size_t i = 0; i < count; i++) {
        const char *comma = memchr(s, ',', (size_t)(end - s));
        const char *stop = comma ? comma : end;
        const char *e = s;
        size_t n = (size_t)(stop - s);
        ak_trim(&e, &n);
        if (ak_parse_entry(&ks->v[i], e, n, i + 1, err, err_cap) < 0 ||
            ak_check_unique(ks->v, i, err, err_cap) < 0) {
            auth_keys_free(ks);
            return -1;
        }
        s = comma ? comma + 1 : end;
    }
    return 0;
}

void auth_keys_free(struct auth_keys *ks)
{
    if (ks->v) {
        explicit_bzero(ks->v, ks->n * sizeof *ks->v);
        free(ks->v);
    }
    ks->v = NULL;
    ks->n = 0;
}

const struct auth_key *auth_keys_lookup(const struct auth_keys *ks, const char *key, size_t len)
{
    /* The length bounds are public; everything past them treats every stored key alike. */
    if (len < AUTH_KEY_MIN || len > AUTH_KEY_MAX)
        return NULL;
    uint8_t hash[AUTH_KEY_HASH_LEN];
    ak_hash(key, len, hash);
    size_t found = 0, idx = 0;
    for (size_t i = 0; i < ks->n; i++) {
        size_t eq = auth_ct_equal(hash, ks->v[i].hash, AUTH_KEY_HASH_LEN);
        size_t mask = (size_t)0 - eq; /* all ones on a match: select i without a branch */
        idx = (idx & ~mask) | (i & mask);
        found |= eq;
    }
    return found ? &ks->v[idx] : NULL;
}
