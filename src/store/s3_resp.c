/* s3_resp — see s3_resp.h. */
#include "store/s3_resp.h"

#include <stdio.h>
#include <string.h>

size_t s3_resp_write_cb(char *p, size_t size, size_t n, void *ud)
{
    struct s3_resp *r = ud;
    size_t total = size * n;
    size_t k = total < sizeof(r->text) - 1 - r->len ? total : sizeof(r->text) - 1 - r->len;
    memcpy(r->text + r->len, p, k);
    r->len += k;
    r->text[r->len] = '\0';
    return total;
}

void s3_resp_describe(const struct s3_resp *r, const char *what, long status, char *out, size_t cap)
{
    const char *code = strstr(r->text, "<Code>");
    const char *end = code ? strstr(code, "</Code>") : NULL;
    int clen = code && end ? (int)(end - code - 6) : 0;
    snprintf(out, cap, "S3 %s: HTTP %ld%s%.*s", what, status, clen > 0 ? " " : "",
             clen > 0 && clen < 100 ? clen : 0, code ? code + 6 : "");
}

bool s3_resp_transient_400(const struct s3_resp *r)
{
    return strstr(r->text, "<Code>RequestTimeout</Code>") != NULL;
}
