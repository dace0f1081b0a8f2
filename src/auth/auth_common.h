/* auth_common — the vocabulary API keys and JWTs share: roles, the tenant name syntax, and a
 * comparison that takes the same time wherever the inputs differ (for secrets and their
 * hashes). Pure functions, no state. */
#ifndef COMFYGATE_AUTH_COMMON_H
#define COMFYGATE_AUTH_COMMON_H

#include <stdbool.h>
#include <stddef.h>

#define AUTH_TENANT_MAX 128 /* bytes of a tenant name, without the terminator */

enum auth_role {
    AUTH_USER = 0, /* submits and reads its own tenant's jobs */
    AUTH_ADMIN,    /* also manages workflows and reads the audit log */
};

/* "admin" or "user" ("unknown" for a value outside the enum). */
const char *auth_role_name(enum auth_role r);
/* Exactly "admin" or "user" (case-sensitive, n bytes, no terminator needed); 0 or -1. */
int auth_role_parse(const char *s, size_t n, enum auth_role *out);
/* 1 to AUTH_TENANT_MAX bytes of [A-Za-z0-9._:@-]: safe in logs, paths and JSON unescaped. */
bool auth_tenant_valid(const char *s, size_t n);
/* a[0..n) == b[0..n), reading every byte whatever the contents (no early exit). */
/* Writes a message to err (cap bytes; none if cap is 0) and returns -1. */
int auth_errf(char *err, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
bool auth_ct_equal(const void *a, const void *b, size_t n);

#endif
