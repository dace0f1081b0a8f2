/* jpath — see jpath.h. */
#include "jobs/jpath.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

void jpath_utf8_trim(char *s)
{
    size_t n = strlen(s);
    size_t back = 0;
    while (back < n && back < 4 && ((unsigned char)s[n - 1 - back] & 0xC0) == 0x80)
        back++;
    if (back == n)
        return;
    unsigned char lead = (unsigned char)s[n - 1 - back];
    size_t need = lead < 0x80 ? 1 : lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
    if (back + 1 < need)
        s[n - 1 - back] = '\0';
}

size_t jpath_push(struct jpath *p, const char *key, size_t klen)
{
    size_t old = p->len;
    size_t n = p->len;
    char *b = p->buf;
    if (n + 1 < JPATH_MAX)
        b[n++] = '/';
    for (size_t i = 0; i < klen && n + 1 < JPATH_MAX; i++) {
        bool esc = key[i] == '~' || key[i] == '/';
        if (esc && n + 2 >= JPATH_MAX)
            break;
        if (esc) {
            b[n++] = '~';
            b[n++] = key[i] == '~' ? '0' : '1';
        } else {
            b[n++] = key[i];
        }
    }
    b[n] = '\0';
    jpath_utf8_trim(b);
    p->len = strlen(b);
    return old;
}

size_t jpath_push_index(struct jpath *p, size_t i)
{
    char num[24];
    int n = snprintf(num, sizeof num, "%zu", i);
    return jpath_push(p, num, (size_t)n);
}

void jpath_pop(struct jpath *p, size_t old)
{
    p->len = old;
    p->buf[old] = '\0';
}
