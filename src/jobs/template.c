/* template — see template.h. Stateless: each call walks the template once and builds a new graph
 * that the caller owns; nothing is shared with the template or the inputs, so the caller may
 * mutate or free either afterwards. Input names are looked up as flat keys of `inputs` (a dot in
 * a name is part of the name, not a path). Recursion follows the template and the substituted
 * values and is cut at max_depth, so no input can exhaust the stack. */
#include "jobs/template.h"
#include "jobs/jpath.h"

#include <assert.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* jansson's iteration API takes a non-const json_t even to read; these functions only read. */
#define TPL_MUT(v) ((json_t *)(v))

#define TPL_NAME_MAX 64 /* [A-Za-z_] then up to 63 of [A-Za-z0-9_.-] */

/* A placeholder found in a string: bytes [start, end) of the string, name inside. */
struct tpl_ph {
    size_t start;
    size_t end;
    const char *name;
    size_t name_len;
};

/* A growable string with a hard maximum (max_string). */
struct tpl_buf {
    char *p;
    size_t len;
    size_t cap;
    size_t max;
};

struct tpl_ctx {
    struct template_limits lim;
    const json_t *inputs;
    json_t *names; /* template_placeholders: names in first-use order */
    json_t *seen;  /* template_placeholders: the same names as a set */
    size_t count;  /* placeholder occurrences so far */
    size_t out;    /* string bytes emitted so far */
    struct jpath path;
    struct template_result *res;
};

const char *template_err_name(enum template_err e)
{
    switch (e) {
    case TEMPLATE_OK:
        return "ok";
    case TEMPLATE_MISSING_INPUT:
        return "missing_input";
    case TEMPLATE_BAD_TYPE:
        return "bad_type";
    case TEMPLATE_TOO_LARGE:
        return "too_large";
    case TEMPLATE_NOT_OBJECT:
        return "not_object";
    case TEMPLATE_NO_MEMORY:
        return "no_memory";
    }
    return "unknown";
}

void template_limits_default(struct template_limits *lim)
{
    lim->max_depth = 64;
    lim->max_string = 1024 * 1024;
    lim->max_placeholders = 10000;
    lim->max_output = 16 * 1024 * 1024;
}

static void limits_resolve(struct template_limits *out, const struct template_limits *lim)
{
    template_limits_default(out);
    if (!lim)
        return;
    if (lim->max_depth)
        out->max_depth = lim->max_depth;
    if (lim->max_string)
        out->max_string = lim->max_string;
    if (lim->max_placeholders)
        out->max_placeholders = lim->max_placeholders;
    if (lim->max_output)
        out->max_output = lim->max_output;
}

/* --- JSON pointer of the current position ------------------------------------------------ */


static void *tpl_fail(struct tpl_ctx *c, enum template_err err, const char *name, size_t name_len)
{
    struct template_result *r = c->res;
    if (r->err != TEMPLATE_OK)
        return NULL; /* keep the first, innermost cause */
    r->err = err;
    snprintf(r->name, sizeof r->name, "%.*s", (int)name_len, name ? name : "");
    snprintf(r->path, sizeof r->path, "%s", c->path.buf);
    return NULL;
}

/* --- finding placeholders ---------------------------------------------------------------- */

static bool ph_space(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r';
}

static bool ph_first(char ch)
{
    return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || ch == '_';
}

static bool ph_rest(char ch)
{
    return ph_first(ch) || (ch >= '0' && ch <= '9') || ch == '.' || ch == '-';
}

/* Whether a valid placeholder starts at s[at] ("{{", optional space, name, space, "}}"). */
static bool ph_parse(const char *s, size_t len, size_t at, struct tpl_ph *ph)
{
    size_t i = at + 2;
    while (i < len && ph_space(s[i]))
        i++;
    size_t name = i;
    if (i >= len || !ph_first(s[i]))
        return false;
    i++;
    while (i < len && ph_rest(s[i]) && i - name < TPL_NAME_MAX)
        i++;
    size_t name_end = i;
    while (i < len && ph_space(s[i]))
        i++;
    if (i + 1 >= len || s[i] != '}' || s[i + 1] != '}')
        return false;
    ph->start = at;
    ph->end = i + 2;
    ph->name = s + name;
    ph->name_len = name_end - name;
    return true;
}

/* The first valid placeholder in s[from, len). An invalid "{{" is text: the scan moves on by
 * one byte, so "{{{seed}}}" renders as "{" + seed + "}". */
static bool ph_next(const char *s, size_t len, size_t from, struct tpl_ph *ph)
{
    for (size_t i = from; i + 1 < len; i++) {
        if (s[i] == '{' && s[i + 1] == '{' && ph_parse(s, len, i, ph))
            return true;
    }
    return false;
}

static bool count_occurrence(struct tpl_ctx *c, const struct tpl_ph *ph)
{
    if (c->count >= c->lim.max_placeholders) {
        tpl_fail(c, TEMPLATE_TOO_LARGE, ph->name, ph->name_len);
        return false;
    }
    c->count++;
    return true;
}

static bool count_output(struct tpl_ctx *c, size_t n, const char *name, size_t name_len)
{
    if (n > c->lim.max_string || n > c->lim.max_output - c->out) {
        tpl_fail(c, TEMPLATE_TOO_LARGE, name, name_len);
        return false;
    }
    c->out += n;
    return true;
}

/* --- template_placeholders ---------------------------------------------------------------- */

static bool collect_string(struct tpl_ctx *c, const json_t *str)
{
    const char *s = json_string_value(str);
    size_t len = json_string_length(str);
    struct tpl_ph ph;
    for (size_t at = 0; ph_next(s, len, at, &ph); at = ph.end) {
        if (!count_occurrence(c, &ph))
            return false;
        if (json_object_getn(c->seen, ph.name, ph.name_len))
            continue;
        /* Both calls take their reference even when they fail, so nothing leaks. */
        if (json_array_append_new(c->names, json_stringn_nocheck(ph.name, ph.name_len)) != 0 ||
            json_object_setn_new_nocheck(c->seen, ph.name, ph.name_len, json_true()) != 0)
            return false;
    }
    return true;
}

static bool collect_value(struct tpl_ctx *c, const json_t *v, size_t level)
{
    if (json_is_string(v))
        return collect_string(c, v);
    if (!json_is_object(v) && !json_is_array(v))
        return true;
    if (level > c->lim.max_depth)
        return false;
    if (json_is_array(v)) {
        for (size_t i = 0; i < json_array_size(v); i++) {
            if (!collect_value(c, json_array_get(v, i), level + 1))
                return false;
        }
        return true;
    }
    const char *key;
    json_t *child;
    json_object_foreach(TPL_MUT(v), key, child)
    {
        if (!collect_value(c, child, level + 1))
            return false;
    }
    return true;
}

json_t *template_placeholders(const json_t *tmpl, const struct template_limits *lim)
{
    struct template_result res = {.err = TEMPLATE_OK};
    struct tpl_ctx c = {.res = &res};
    limits_resolve(&c.lim, lim);
    if (!tmpl)
        return NULL;
    c.names = json_array();
    c.seen = json_object();
    bool ok = c.names && c.seen && collect_value(&c, tmpl, 1);
    json_decref(c.seen);
    if (!ok) {
        json_decref(c.names);
        return NULL;
    }
    return c.names;
}

/* --- rendering ---------------------------------------------------------------------------- */

static enum template_err buf_append(struct tpl_buf *b, const char *s, size_t n)
{
    if (n == 0)
        return TEMPLATE_OK; /* b->p may still be NULL, and memcpy must not see it */
    if (n > b->max - b->len)
        return TEMPLATE_TOO_LARGE;
    if (n > b->cap - b->len) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap - b->len < n)
            cap = cap > b->max / 2 ? b->max : cap * 2;
        char *p = realloc(b->p, cap);
        if (!p)
            return TEMPLATE_NO_MEMORY;
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    return TEMPLATE_OK;
}

/* The shortest spelling that reads back as the same double, with ".0" added when it would
 * otherwise look like an integer, as jansson spells reals. */
static void fmt_real(double d, char *out, size_t outlen)
{
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(out, outlen, "%.*g", prec, d);
        if (strtod(out, NULL) == d)
            break;
    }
    char *comma = strchr(out, ','); /* a locale with a decimal comma */
    if (comma)
        *comma = '.';
    if (!strpbrk(out, ".eEn"))
        strncat(out, ".0", outlen - strlen(out) - 1);
}

/* Appends the text of a scalar input, as interpolated inside a longer string. */
static enum template_err append_scalar(struct tpl_buf *b, const json_t *v)
{
    char num[40];
    switch (json_typeof(v)) {
    case JSON_STRING:
        return buf_append(b, json_string_value(v), json_string_length(v));
    case JSON_INTEGER:
        snprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        break;
    case JSON_REAL:
        fmt_real(json_real_value(v), num, sizeof num);
        break;
    case JSON_TRUE:
        snprintf(num, sizeof num, "true");
        break;
    case JSON_FALSE:
        snprintf(num, sizeof num, "false");
        break;
    default:
        return TEMPLATE_BAD_TYPE;
    }
    return buf_append(b, num, strlen(num));
}

static json_t *copy_string(struct tpl_ctx *c, const json_t *str, const struct tpl_ph *ph)
{
    size_t len = json_string_length(str);
    if (!count_output(c, len, ph ? ph->name : NULL, ph ? ph->name_len : 0))
        return NULL;
    /* The bytes come from an existing jansson string, so they are valid UTF-8 already. */
    json_t *out = json_stringn_nocheck(json_string_value(str), len);
    return out ? out : tpl_fail(c, TEMPLATE_NO_MEMORY, NULL, 0);
}

static json_t *copy_value(struct tpl_ctx *c, const json_t *v, size_t level,
                          const struct tpl_ph *ph);

/* Copies a container of an input under the template's limits: an input cannot nest deeper or
 * carry more text than the template itself could. */
static json_t *copy_container(struct tpl_ctx *c, const json_t *v, size_t level,
                              const struct tpl_ph *ph)
{
    if (level > c->lim.max_depth)
        return tpl_fail(c, TEMPLATE_TOO_LARGE, ph->name, ph->name_len);
    bool arr = json_is_array(v);
    json_t *out = arr ? json_array() : json_object();
    if (!out)
        return tpl_fail(c, TEMPLATE_NO_MEMORY, NULL, 0);
    int rc = 0;
    if (arr) {
        for (size_t i = 0; i < json_array_size(v) && rc == 0; i++) {
            json_t *child = copy_value(c, json_array_get(v, i), level + 1, ph);
            rc = child ? json_array_append_new(out, child) : -1;
        }
    } else {
        const char *key;
        size_t klen;
        json_t *val;
        json_object_keylen_foreach(TPL_MUT(v), key, klen, val)
        {
            json_t *child = copy_value(c, val, level + 1, ph);
            rc = child ? json_object_setn_new_nocheck(out, key, klen, child) : -1;
            if (rc != 0)
                break;
        }
    }
    if (rc != 0) {
        json_decref(out);
        return tpl_fail(c, TEMPLATE_NO_MEMORY, NULL, 0); /* no-op if a cause is recorded */
    }
    return out;
}

static json_t *copy_value(struct tpl_ctx *c, const json_t *v, size_t level, const struct tpl_ph *ph)
{
    if (json_is_string(v))
        return copy_string(c, v, ph);
    if (json_is_object(v) || json_is_array(v))
        return copy_container(c, v, level, ph);
    json_t *out = json_copy(TPL_MUT(v));
    return out ? out : tpl_fail(c, TEMPLATE_NO_MEMORY, NULL, 0);
}

static const json_t *lookup(struct tpl_ctx *c, const struct tpl_ph *ph)
{
    const json_t *v = json_object_getn(c->inputs, ph->name, ph->name_len);
    if (!v)
        tpl_fail(c, TEMPLATE_MISSING_INPUT, ph->name, ph->name_len);
    return v;
}

/* A string with placeholders inside other text: every piece is appended as text, and the
 * result is never scanned again, so "{{x}}" inside an input stays literal. */
static json_t *interpolate(struct tpl_ctx *c, const char *s, size_t len, struct tpl_ph ph)
{
    struct tpl_buf b = {.max = c->lim.max_string};
    enum template_err err = TEMPLATE_OK;
    size_t at = 0;
    const json_t *v = NULL;
    do {
        if (!count_occurrence(c, &ph) || !(v = lookup(c, &ph)))
            goto out;
        err = buf_append(&b, s + at, ph.start - at);
        if (err == TEMPLATE_OK)
            err = append_scalar(&b, v);
        at = ph.end;
    } while (err == TEMPLATE_OK && ph_next(s, len, at, &ph));
    if (err == TEMPLATE_OK)
        err = buf_append(&b, s + at, len - at);
    if (err != TEMPLATE_OK) {
        tpl_fail(c, err, ph.name, ph.name_len);
        goto out;
    }
    if (!count_output(c, b.len, ph.name, ph.name_len))
        goto out;
    /* Every piece is valid UTF-8 and each cut falls on an ASCII brace, so the whole is too. */
    json_t *str = json_stringn_nocheck(b.p ? b.p : "", b.len);
    free(b.p);
    return str ? str : tpl_fail(c, TEMPLATE_NO_MEMORY, NULL, 0);
out:
    free(b.p);
    return NULL;
}

static json_t *render_string(struct tpl_ctx *c, const json_t *str, size_t level)
{
    const char *s = json_string_value(str);
    size_t len = json_string_length(str);
    struct tpl_ph ph;
    if (!ph_next(s, len, 0, &ph))
        return copy_string(c, str, NULL);
    if (ph.start != 0 || ph.end != len)
        return interpolate(c, s, len, ph);
    /* Exactly one placeholder: the input replaces the string with its own JSON type. */
    if (!count_occurrence(c, &ph))
        return NULL;
    const json_t *v = lookup(c, &ph);
    return v ? copy_value(c, v, level, &ph) : NULL;
}

static json_t *render_value(struct tpl_ctx *c, const json_t *v, size_t level);

static json_t *render_array(struct tpl_ctx *c, const json_t *v, size_t level)
{
    json_t *out = json_array();
    if (!out)
        return tpl_fail(c, TEMPLATE_NO_MEMORY, NULL, 0);
    for (size_t i = 0; i < json_array_size(v); i++) {
        size_t old = jpath_push_index(&c->path, i);
        json_t *child = render_value(c, json_array_get(v, i), level + 1);
        jpath_pop(&c->path, old);
        if (!child || json_array_append_new(out, child) != 0) {
            json_decref(out);
            return tpl_fail(c, TEMPLATE_NO_MEMORY, NULL, 0); /* no-op if a cause is recorded */
        }
    }
    return out;
}

/* Keys are copied as they are: placeholders live in values only, so a template's structure is
 * fixed by its author. */
static json_t *render_object(struct tpl_ctx *c, const json_t *v, size_t level)
{
    json_t *out = json_object();
    if (!out)
        return tpl_fail(c, TEMPLATE_NO_MEMORY, NULL, 0);
    const char *key;
    size_t klen;
    json_t *val;
    json_object_keylen_foreach(TPL_MUT(v), key, klen, val)
    {
        size_t old = jpath_push(&c->path, key, klen);
        json_t *child = render_value(c, val, level + 1);
        jpath_pop(&c->path, old);
        if (!child || json_object_setn_new_nocheck(out, key, klen, child) != 0) {
            json_decref(out);
            return tpl_fail(c, TEMPLATE_NO_MEMORY, NULL, 0);
        }
    }
    return out;
}

/* level is the nesting a container at this position would have (the root object is 1). */
static json_t *render_value(struct tpl_ctx *c, const json_t *v, size_t level)
{
    if (json_is_string(v))
        return render_string(c, v, level);
    if (json_is_object(v) || json_is_array(v)) {
        if (level > c->lim.max_depth)
            return tpl_fail(c, TEMPLATE_TOO_LARGE, NULL, 0);
        return json_is_array(v) ? render_array(c, v, level) : render_object(c, v, level);
    }
    json_t *out = json_copy(TPL_MUT(v));
    return out ? out : tpl_fail(c, TEMPLATE_NO_MEMORY, NULL, 0);
}

json_t *template_render(const json_t *tmpl, const json_t *inputs, const struct template_limits *lim,
                        struct template_result *res)
{
    struct template_result local;
    struct tpl_ctx c = {.inputs = inputs, .res = res ? res : &local};
    memset(c.res, 0, sizeof *c.res);
    limits_resolve(&c.lim, lim);
    if (!json_is_object(tmpl)) {
        c.res->err = TEMPLATE_NOT_OBJECT;
        return NULL;
    }
    json_t *out = render_value(&c, tmpl, 1);
    assert((out != NULL) == (c.res->err == TEMPLATE_OK));
    return out;
}
