/*
 * sim_form — multipart/form-data parsing (see sim_form.h).
 */
#include "sim/sim_form.h"

#include <string.h>
#include <strings.h>

#define BOUNDARY_MAX 200

static const char *find(const char *hay, size_t hlen, const char *needle, size_t nlen)
{
    if (nlen == 0 || hlen < nlen)
        return NULL;
    for (size_t i = 0; i + nlen <= hlen; i++) {
        if (hay[i] == needle[0] && memcmp(hay + i, needle, nlen) == 0)
            return hay + i;
    }
    return NULL;
}

/* boundary=... (quoted or not) from the Content-Type value. */
static bool get_boundary(const char *ct, size_t n, char *out)
{
    static const char mp[] = "multipart/form-data";
    if (n < sizeof(mp) - 1 || strncasecmp(ct, mp, sizeof(mp) - 1) != 0)
        return false;
    const char *b = find(ct, n, "boundary=", 9);
    if (b == NULL)
        return false;
    b += 9;
    size_t len = (size_t)(ct + n - b);
    if (len > 0 && *b == '"') {
        b++;
        const char *q = memchr(b, '"', (size_t)(ct + n - b));
        len = q != NULL ? (size_t)(q - b) : 0;
    } else {
        for (size_t i = 0; i < len; i++) {
            if (b[i] == ';' || b[i] == ' ') {
                len = i;
                break;
            }
        }
    }
    if (len == 0 || len > BOUNDARY_MAX)
        return false;
    out[0] = '-';
    out[1] = '-';
    memcpy(out + 2, b, len);
    out[len + 2] = 0;
    return true;
}

/* name="..." or filename="..." inside a Content-Disposition line. */
static bool disposition_param(const char *line, size_t n, const char *key, char *out)
{
    size_t klen = strlen(key);
    for (const char *p = line; (p = find(p, (size_t)(line + n - p), key, klen)) != NULL; p++) {
        if (p > line && p[-1] != ' ' && p[-1] != ';')
            continue; /* "filename=" must not match inside "xfilename=" */
        p += klen;
        if (p >= line + n || *p != '"')
            return false;
        const char *q = memchr(p + 1, '"', (size_t)(line + n - p - 1));
        if (q == NULL || (size_t)(q - p - 1) >= SIM_FORM_NAME_MAX)
            return false;
        memcpy(out, p + 1, (size_t)(q - p - 1));
        out[q - p - 1] = 0;
        return true;
    }
    return false;
}

static int parse_headers(const char *h, size_t n, struct sim_form_field *f)
{
    for (const char *line = h; line < h + n;) {
        const char *eol = find(line, (size_t)(h + n - line), "\r\n", 2);
        size_t len = eol != NULL ? (size_t)(eol - line) : (size_t)(h + n - line);
        if (len > 20 && strncasecmp(line, "Content-Disposition:", 20) == 0) {
            if (!disposition_param(line, len, "name=", f->name))
                return SIM_FORM_EMALFORMED;
            f->has_filename = disposition_param(line, len, "filename=", f->filename);
        }
        line += len + 2;
    }
    return f->name[0] != 0 ? SIM_FORM_OK : SIM_FORM_EMALFORMED;
}

int sim_form_parse(const char *content_type, size_t ctype_len, const char *body, size_t len,
                   struct sim_form_field *fields, size_t max, size_t *n)
{
    char delim[BOUNDARY_MAX + 8];
    *n = 0;
    if (!get_boundary(content_type, ctype_len, delim))
        return SIM_FORM_EBOUNDARY;
    size_t dlen = strlen(delim);
    const char *p = find(body, len, delim, dlen), *end = body + len;
    while (p != NULL) {
        p += dlen;
        if (end - p >= 2 && p[0] == '-' && p[1] == '-')
            return SIM_FORM_OK; /* closing delimiter */
        if (end - p < 2 || p[0] != '\r' || p[1] != '\n')
            return SIM_FORM_EMALFORMED;
        p += 2;
        const char *hend = find(p, (size_t)(end - p), "\r\n\r\n", 4);
        if (hend == NULL)
            return SIM_FORM_EMALFORMED;
        if (*n == max)
            return SIM_FORM_ETOOMANY;
        struct sim_form_field *f = &fields[*n];
        memset(f, 0, sizeof(*f));
        int rc = parse_headers(p, (size_t)(hend - p), f);
        if (rc != SIM_FORM_OK)
            return rc;
        const char *data = hend + 4;
        /* the part ends at CRLF + delimiter */
        const char *next = find(data, (size_t)(end - data), delim, dlen);
        if (next == NULL || next - data < 2 || next[-2] != '\r' || next[-1] != '\n')
            return SIM_FORM_EMALFORMED;
        f->data = data;
        f->len = (size_t)(next - 2 - data);
        (*n)++;
        p = next;
    }
    return SIM_FORM_EMALFORMED;
}

const struct sim_form_field *sim_form_get(const struct sim_form_field *fields, size_t n,
                                          const char *name)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(fields[i].name, name) == 0)
            return &fields[i];
    }
    return NULL;
}
