/* auth_common — see auth_common.h. */
#include "auth/auth_common.h"

#include <stdarg.h>
#include <stdio.h>

#include <stdint.h>
#include <string.h>

const char *auth_role_name(enum auth_role r)
{
    switch (r) {
    case AUTH_USER:
        return "user";
    case AUTH_ADMIN:
        return "admin";
    }
    return "unknown";
}

int auth_role_parse(const char *s, size_t n, enum auth_role *out)
{
    if (n == 5 && memcmp(s, "admin", 5) == 0) {
        *out = AUTH_ADMIN;
        return 0;
    }
    if (n == 4 && memcmp(s, "user", 4) == 0) {
        *out = AUTH_USER;
        return 0;
    }
    return -1;
}

static bool auth_tenant_char(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return true;
    return c == '.' || c == '_' || c == ':' || c == '@' || c == '-';
}

bool auth_tenant_valid(const char *s, size_t n)
{
    if (n == 0 || n > AUTH_TENANT_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (!auth_tenant_char((unsigned char)s[i]))
            return false;
    }
    return true;
}

bool auth_ct_equal(const void *a, const void *b, size_t n)
{
    /* volatile: keeps the compiler from turning the accumulation into an early-exit compare */
    const volatile unsigned char *x = a;
    const volatile unsigned char *y = b;
    unsigned diff = 0;
    for (size_t i = 0; i < n; i++)
        diff |= (unsigned)(x[i] ^ y[i]);
    return diff == 0;
}

int auth_errf(char *err, size_t cap, const char *fmt, ...)
{
    if (cap > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, cap, fmt, ap);
        va_end(ap);
    }
    return -1;
}
