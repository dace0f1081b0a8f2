/*
 * sim_json — CPython-compatible json.dumps / repr / str over jansson values (see sim_json.h).
 */
#include "sim/sim_json.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RAWNUM_TAG "\0rawnum:"
#define RAWNUM_TAG_LEN 8

json_t *sim_json_rawnum(const char *digits)
{
    char tmp[64];
    size_t n = strlen(digits);
    if (n == 0 || n > sizeof(tmp) - RAWNUM_TAG_LEN)
        return NULL;
    memcpy(tmp, RAWNUM_TAG, RAWNUM_TAG_LEN);
    memcpy(tmp + RAWNUM_TAG_LEN, digits, n);
    return json_stringn(tmp, RAWNUM_TAG_LEN + n);
}

bool sim_json_is_rawnum(const json_t *v)
{
    return json_is_string(v) && json_string_length(v) > RAWNUM_TAG_LEN &&
           memcmp(json_string_value(v), RAWNUM_TAG, RAWNUM_TAG_LEN) == 0;
}

bool sim_json_number(const json_t *v, double *out)
{
    if (json_is_integer(v)) {
        *out = (double)json_integer_value(v);
        return true;
    }
    if (json_is_real(v)) {
        *out = json_real_value(v);
        return true;
    }
    if (sim_json_is_rawnum(v)) {
        *out = strtod(json_string_value(v) + RAWNUM_TAG_LEN, NULL);
        return true;
    }
    return false;
}

/* Shortest "%.*e" that reads back as d; fills digits (no dot) and the decimal exponent. */
static void shortest_digits(double d, char *digits, int *decpt)
{
    char tmp[40];
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(tmp, sizeof(tmp), "%.*e", prec - 1, d);
        if (strtod(tmp, NULL) == d)
            break;
    }
    char *e = strchr(tmp, 'e');
    *decpt = atoi(e + 1) + 1;
    size_t n = 0;
    for (const char *p = tmp; p < e; p++) {
        if (*p >= '0' && *p <= '9')
            digits[n++] = *p;
    }
    while (n > 1 && digits[n - 1] == '0')
        n--;
    digits[n] = 0;
}

void sim_json_float_repr(double d, char *out)
{
    if (isnan(d)) {
        strcpy(out, "nan");
        return;
    }
    if (isinf(d)) {
        strcpy(out, d < 0 ? "-inf" : "inf");
        return;
    }
    if (d == 0) {
        strcpy(out, signbit(d) ? "-0.0" : "0.0");
        return;
    }
    char digits[24];
    int decpt;
    char *o = out;
    if (d < 0) {
        *o++ = '-';
        d = -d;
    }
    shortest_digits(d, digits, &decpt);
    int nd = (int)strlen(digits);
    /* CPython's repr switches to exponent form outside 1e-4 <= |d| < 1e16. */
    if (decpt <= -4 || decpt > 16) {
        int e = decpt - 1;
        *o++ = digits[0];
        if (nd > 1) {
            *o++ = '.';
            memcpy(o, digits + 1, (size_t)nd - 1);
            o += nd - 1;
        }
        sprintf(o, "e%c%02d", e < 0 ? '-' : '+', e < 0 ? -e : e);
        return;
    }
    if (decpt <= 0) {
        o += sprintf(o, "0.");
        for (int i = 0; i < -decpt; i++)
            *o++ = '0';
        strcpy(o, digits);
    } else if (decpt >= nd) {
        memcpy(o, digits, (size_t)nd);
        o += nd;
        for (int i = nd; i < decpt; i++)
            *o++ = '0';
        strcpy(o, ".0");
    } else {
        memcpy(o, digits, (size_t)decpt);
        o += decpt;
        *o++ = '.';
        strcpy(o, digits + decpt);
    }
}

/* Decodes one UTF-8 sequence; invalid bytes come back as themselves (jansson validated). */
static uint32_t utf8_next(const unsigned char **pp, const unsigned char *end)
{
    const unsigned char *p = *pp;
    uint32_t c = *p++;
    int extra = c >= 0xF0 ? 3 : c >= 0xE0 ? 2 : c >= 0xC0 ? 1 : 0;
    if (extra > 0)
        c &= 0x3F >> extra;
    while (extra-- > 0 && p < end && (*p & 0xC0) == 0x80)
        c = (c << 6) | (*p++ & 0x3F);
    *pp = p;
    return c;
}

static void dump_string(const char *s, size_t len, struct sim_buf *out)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + len;
    sim_buf_putc(out, '"');
    while (p < end) {
        uint32_t c = utf8_next(&p, end);
        switch (c) {
        case '"':
            sim_buf_puts(out, "\\\"");
            continue;
        case '\\':
            sim_buf_puts(out, "\\\\");
            continue;
        case '\n':
            sim_buf_puts(out, "\\n");
            continue;
        case '\r':
            sim_buf_puts(out, "\\r");
            continue;
        case '\t':
            sim_buf_puts(out, "\\t");
            continue;
        case '\b':
            sim_buf_puts(out, "\\b");
            continue;
        case '\f':
            sim_buf_puts(out, "\\f");
            continue;
        }
        if (c >= 0x20 && c <= 0x7e) {
            sim_buf_putc(out, (char)c);
        } else if (c > 0xFFFF) {
            c -= 0x10000;
            sim_buf_printf(out, "\\u%04x\\u%04x", 0xD800 + (c >> 10), 0xDC00 + (c & 0x3FF));
        } else {
            sim_buf_printf(out, "\\u%04x", c);
        }
    }
    sim_buf_putc(out, '"');
}

static int dump_value(const json_t *v, struct sim_buf *out, int depth);

static int dump_object(const json_t *v, struct sim_buf *out, int depth)
{
    const char *key;
    json_t *val;
    bool first = true;
    sim_buf_putc(out, '{');
    json_object_foreach((json_t *)v, key, val)
    {
        if (!first)
            sim_buf_puts(out, ", ");
        first = false;
        dump_string(key, strlen(key), out);
        sim_buf_puts(out, ": ");
        int rc = dump_value(val, out, depth + 1);
        if (rc != 0)
            return rc;
    }
    sim_buf_putc(out, '}');
    return out->err;
}

static int dump_array(const json_t *v, struct sim_buf *out, int depth)
{
    sim_buf_putc(out, '[');
    for (size_t i = 0; i < json_array_size(v); i++) {
        if (i > 0)
            sim_buf_puts(out, ", ");
        int rc = dump_value(json_array_get(v, i), out, depth + 1);
        if (rc != 0)
            return rc;
    }
    sim_buf_putc(out, ']');
    return out->err;
}

static void dump_real(double d, struct sim_buf *out)
{
    char tmp[32];
    /* json.dumps spells the non-finite values the JavaScript way. */
    if (isnan(d))
        sim_buf_puts(out, "NaN");
    else if (isinf(d))
        sim_buf_puts(out, d < 0 ? "-Infinity" : "Infinity");
    else {
        sim_json_float_repr(d, tmp);
        sim_buf_puts(out, tmp);
    }
}

static int dump_value(const json_t *v, struct sim_buf *out, int depth)
{
    if (v == NULL || depth > SIM_JSON_MAX_DEPTH)
        return -EINVAL;
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return dump_object(v, out, depth);
    case JSON_ARRAY:
        return dump_array(v, out, depth);
    case JSON_STRING:
        if (sim_json_is_rawnum(v))
            sim_buf_puts(out, json_string_value(v) + RAWNUM_TAG_LEN);
        else
            dump_string(json_string_value(v), json_string_length(v), out);
        break;
    case JSON_INTEGER:
        sim_buf_printf(out, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        break;
    case JSON_REAL:
        dump_real(json_real_value(v), out);
        break;
    case JSON_TRUE:
        sim_buf_puts(out, "true");
        break;
    case JSON_FALSE:
        sim_buf_puts(out, "false");
        break;
    case JSON_NULL:
        sim_buf_puts(out, "null");
        break;
    }
    return out->err;
}

int sim_json_dump(const json_t *v, struct sim_buf *out)
{
    return dump_value(v, out, 0);
}

char *sim_json_dumps(const json_t *v, size_t max)
{
    struct sim_buf b;
    sim_buf_init(&b, max);
    if (sim_json_dump(v, &b) != 0) {
        sim_buf_free(&b);
        return NULL;
    }
    return sim_buf_take(&b, NULL);
}

/*
 * Approximation of CPython's str.isprintable() for non-ASCII code points: the separators,
 * format characters, surrogates and private-use ranges that repr() escapes.
 */
static bool py_printable(uint32_t c)
{
    if (c <= 0xA0 || c == 0xAD || c == 0x1680 || c == 0x3000 || c == 0xFEFF)
        return false;
    if ((c >= 0x2000 && c <= 0x200F) || (c >= 0x2028 && c <= 0x202F))
        return false;
    if ((c >= 0x205F && c <= 0x206F) || (c >= 0xD800 && c <= 0xF8FF))
        return false;
    if ((c >= 0xFFF9 && c <= 0xFFFB) || (c >= 0xE0000 && c <= 0xE007F) || c >= 0xF0000)
        return false;
    return true;
}

static void repr_char(uint32_t c, char quote, struct sim_buf *out)
{
    if (c == (uint32_t)quote || c == '\\') {
        sim_buf_putc(out, '\\');
        sim_buf_putc(out, (char)c);
    } else if (c == '\t') {
        sim_buf_puts(out, "\\t");
    } else if (c == '\n') {
        sim_buf_puts(out, "\\n");
    } else if (c == '\r') {
        sim_buf_puts(out, "\\r");
    } else if (c < 0x20 || c == 0x7f) {
        sim_buf_printf(out, "\\x%02x", c);
    } else if (c < 0x7f) {
        sim_buf_putc(out, (char)c);
    } else if (py_printable(c)) {
        char u[4];
        int n = c < 0x800 ? 2 : c < 0x10000 ? 3 : 4;
        u[0] = (char)(n == 2 ? 0xC0 | (c >> 6) : n == 3 ? 0xE0 | (c >> 12) : 0xF0 | (c >> 18));
        for (int i = 1; i < n; i++)
            u[i] = (char)(0x80 | ((c >> (6 * (n - 1 - i))) & 0x3F));
        sim_buf_put(out, u, (size_t)n);
    } else if (c <= 0xFF) {
        sim_buf_printf(out, "\\x%02x", c);
    } else if (c <= 0xFFFF) {
        sim_buf_printf(out, "\\u%04x", c);
    } else {
        sim_buf_printf(out, "\\U%08x", c);
    }
}

void sim_json_repr_string(const char *s, size_t len, struct sim_buf *out)
{
    /* repr() picks double quotes only when that avoids escaping a single quote. */
    char quote = '\'';
    if (memchr(s, '\'', len) != NULL && memchr(s, '"', len) == NULL)
        quote = '"';
    const unsigned char *p = (const unsigned char *)s, *end = p + len;
    sim_buf_putc(out, quote);
    while (p < end)
        repr_char(utf8_next(&p, end), quote, out);
    sim_buf_putc(out, quote);
}

static int repr_value(const json_t *v, struct sim_buf *out, int depth);

static int repr_container(const json_t *v, struct sim_buf *out, int depth)
{
    if (json_is_array(v)) {
        sim_buf_putc(out, '[');
        for (size_t i = 0; i < json_array_size(v); i++) {
            if (i > 0)
                sim_buf_puts(out, ", ");
            if (repr_value(json_array_get(v, i), out, depth + 1) != 0)
                return out->err != 0 ? out->err : -EINVAL;
        }
        sim_buf_putc(out, ']');
        return out->err;
    }
    const char *key;
    json_t *val;
    bool first = true;
    sim_buf_putc(out, '{');
    json_object_foreach((json_t *)v, key, val)
    {
        if (!first)
            sim_buf_puts(out, ", ");
        first = false;
        sim_json_repr_string(key, strlen(key), out);
        sim_buf_puts(out, ": ");
        if (repr_value(val, out, depth + 1) != 0)
            return out->err != 0 ? out->err : -EINVAL;
    }
    sim_buf_putc(out, '}');
    return out->err;
}

static int repr_value(const json_t *v, struct sim_buf *out, int depth)
{
    char tmp[32];
    if (v == NULL || depth > SIM_JSON_MAX_DEPTH)
        return -EINVAL;
    switch (json_typeof(v)) {
    case JSON_OBJECT:
    case JSON_ARRAY:
        return repr_container(v, out, depth);
    case JSON_STRING:
        if (sim_json_is_rawnum(v))
            sim_buf_puts(out, json_string_value(v) + RAWNUM_TAG_LEN);
        else
            sim_json_repr_string(json_string_value(v), json_string_length(v), out);
        break;
    case JSON_INTEGER:
        sim_buf_printf(out, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        break;
    case JSON_REAL:
        sim_json_float_repr(json_real_value(v), tmp);
        sim_buf_puts(out, tmp);
        break;
    case JSON_TRUE:
        sim_buf_puts(out, "True");
        break;
    case JSON_FALSE:
        sim_buf_puts(out, "False");
        break;
    case JSON_NULL:
        sim_buf_puts(out, "None");
        break;
    }
    return out->err;
}

int sim_json_repr(const json_t *v, struct sim_buf *out)
{
    return repr_value(v, out, 0);
}

int sim_json_str(const json_t *v, struct sim_buf *out)
{
    if (json_is_string(v) && !sim_json_is_rawnum(v)) {
        sim_buf_put(out, json_string_value(v), json_string_length(v));
        return out->err;
    }
    return repr_value(v, out, 0);
}

static bool py_space(char c)
{
    return c == ' ' || (c >= '\t' && c <= '\r');
}

/* Copies s without surrounding whitespace and without digit-separating underscores. */
static bool py_strip_number(const char *s, char *out, size_t cap)
{
    while (py_space(*s))
        s++;
    size_t n = strlen(s);
    while (n > 0 && py_space(s[n - 1]))
        n--;
    if (n == 0 || n >= cap)
        return false;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '_') {
            out[o++] = s[i];
            continue;
        }
        /* Python accepts "_" only between two digits. */
        if (i == 0 || i + 1 >= n || !(s[i - 1] >= '0' && s[i - 1] <= '9') ||
            !(s[i + 1] >= '0' && s[i + 1] <= '9'))
            return false;
    }
    out[o] = 0;
    return true;
}

bool sim_json_py_int(const char *s, long long *out)
{
    char tmp[64];
    if (!py_strip_number(s, tmp, sizeof(tmp)))
        return false;
    const char *p = tmp;
    if (*p == '+' || *p == '-')
        p++;
    if (*p == 0)
        return false;
    for (const char *q = p; *q; q++) {
        if (*q < '0' || *q > '9')
            return false;
    }
    errno = 0;
    *out = strtoll(tmp, NULL, 10);
    return errno == 0;
}

bool sim_json_py_float(const char *s, double *out)
{
    char tmp[128];
    if (!py_strip_number(s, tmp, sizeof(tmp)))
        return false;
    /* strtod also takes hex floats and "nan(...)", which Python's float() refuses. */
    for (const char *q = tmp; *q; q++) {
        if (*q == 'x' || *q == 'X' || *q == '(')
            return false;
    }
    char *end;
    *out = strtod(tmp, &end);
    return end != tmp && *end == 0;
}

/* True for an integer token that does not fit json_int_t. */
static bool big_integer(const char *p, size_t n)
{
    size_t digits = n - (p[0] == '-' ? 1 : 0);
    if (digits < 19)
        return false;
    char tmp[64];
    if (n >= sizeof(tmp))
        return true;
    memcpy(tmp, p, n);
    tmp[n] = 0;
    errno = 0;
    (void)strtoll(tmp, NULL, 10);
    return errno == ERANGE;
}

/* Rewrites oversized integer tokens as "\u0000rawnum:<digits>" strings. */
static bool wrap_big_integers(const char *text, size_t len, struct sim_buf *out)
{
    bool in_string = false;
    for (size_t i = 0; i < len;) {
        char c = text[i];
        if (in_string) {
            size_t n = (c == '\\' && i + 1 < len) ? 2 : 1;
            in_string = c != '"';
            sim_buf_put(out, text + i, n);
            i += n;
            continue;
        }
        if (c == '-' || (c >= '0' && c <= '9')) {
            size_t n = 1;
            while (i + n < len && strchr("0123456789.eE+-", text[i + n]) != NULL)
                n++;
            bool integer = memchr(text + i, '.', n) == NULL && memchr(text + i, 'e', n) == NULL &&
                           memchr(text + i, 'E', n) == NULL;
            if (integer && big_integer(text + i, n)) {
                sim_buf_puts(out, "\"\\u0000rawnum:");
                sim_buf_put(out, text + i, n);
                sim_buf_putc(out, '"');
            } else {
                sim_buf_put(out, text + i, n);
            }
            i += n;
            continue;
        }
        in_string = c == '"';
        sim_buf_putc(out, c);
        i++;
    }
    return out->err == 0;
}

json_t *sim_json_loads(const char *text, size_t len, size_t max_len, json_error_t *err)
{
    struct sim_buf b;
    if (len > max_len) {
        if (err != NULL)
            snprintf(err->text, sizeof(err->text), "document too large");
        return NULL;
    }
    /* Fast path: nothing long enough to overflow means no rewriting. */
    json_t *v = json_loadb(text, len, JSON_ALLOW_NUL, err);
    if (v != NULL || err == NULL || strstr(err->text, "too big integer") == NULL)
        return v;
    sim_buf_init(&b, max_len + max_len / 2 + 64);
    if (wrap_big_integers(text, len, &b))
        v = json_loadb((const char *)b.data, b.len, JSON_ALLOW_NUL, err);
    sim_buf_free(&b);
    return v;
}
