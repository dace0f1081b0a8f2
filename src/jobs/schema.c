/* schema — see schema.h. Stateless: patterns are compiled per use and freed at once (nothing is
 * cached between calls, so there is no shared state to guard). Validation recurses only where
 * the schema does (properties, items), and both that recursion and every comparison of values
 * are cut at max_depth, so a hostile value cannot exhaust the stack.
 *
 * Error paths name the failing field: a missing required property and an unexpected one are
 * reported at the property's own path ("/prompt"), not at the object holding it, so a client
 * can map every error to one field of its form. */
#include "jobs/schema.h"
#include "jobs/jpath.h"

#include <locale.h>
#include <math.h>
#include <regex.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* jansson's iteration API takes a non-const json_t even to read; these functions only read. */
#define SCHEMA_MUT(v) ((json_t *)(v))

#define SCHEMA_DEFAULT_DEPTH 32
/* A pattern is written by a workflow author, but glibc's regcomp expands counted repetitions
 * ("(a{100}){100}") into copies of the tree and supports back-references, which match in
 * exponential time; so a pattern is bounded in length and in expanded size, and "\1" is
 * refused. */
#define SCHEMA_PATTERN_MAX 512
#define SCHEMA_PATTERN_BUDGET 4096

struct pat_env;

struct sch_ctx {
    struct schema_report *rep;
    size_t max_depth;
    bool ok;
    struct jpath path;
    struct pat_env *env; /* the UTF-8 locale, loaded on first need */
};



/* --- reporting ---------------------------------------------------------------------------- */

static void add_error(struct sch_ctx *c, const char *keyword, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void add_error(struct sch_ctx *c, const char *keyword, const char *fmt, ...)
{
    c->ok = false;
    struct schema_report *rep = c->rep;
    if (!rep)
        return;
    if (rep->count >= rep->cap || !rep->errors) {
        rep->dropped++;
        return;
    }
    struct schema_error *e = &rep->errors[rep->count++];
    snprintf(e->path, sizeof e->path, "%s", c->path.buf);
    snprintf(e->keyword, sizeof e->keyword, "%s", keyword);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
    jpath_utf8_trim(e->message);
}

/* A keyword whose value has the wrong type: schema_check refuses such schemas, and validation
 * of an unchecked one fails closed instead of skipping the keyword. */
static void bad_keyword(struct sch_ctx *c, const char *keyword)
{
    add_error(c, keyword, "the schema's \"%s\" is invalid", keyword);
}

json_t *schema_report_json(const struct schema_report *rep)
{
    json_t *arr = json_array();
    for (size_t i = 0; arr && rep && i < rep->count && i < rep->cap; i++) {
        const struct schema_error *e = &rep->errors[i];
        json_t *o = json_pack("{s:s, s:s, s:s}", "path", e->path, "keyword", e->keyword, "message",
                              e->message);
        if (json_array_append_new(arr, o) != 0) {
            json_decref(arr);
            return NULL;
        }
    }
    return arr;
}

/* --- values ------------------------------------------------------------------------------- */

/* Without libm's trunc(): every double of magnitude 2^52 or more is a whole number, and any
 * smaller one converts to int64_t exactly when it has no fraction. */
static bool is_integral(const json_t *v)
{
    if (json_is_integer(v))
        return true;
    double d = json_real_value(v);
    if (!json_is_real(v) || !isfinite(d))
        return false;
    if (d >= 4503599627370496.0 || d <= -4503599627370496.0)
        return true;
    return d == (double)(int64_t)d;
}

/* Numeric order; exact for two integers, through double otherwise. */
static int num_cmp(const json_t *a, const json_t *b)
{
    if (json_is_integer(a) && json_is_integer(b)) {
        json_int_t x = json_integer_value(a);
        json_int_t y = json_integer_value(b);
        return (x > y) - (x < y);
    }
    double x = json_number_value(a);
    double y = json_number_value(b);
    return (x > y) - (x < y);
}

/* JSON Schema equality (1 equals 1.0), bounded in depth. */
static bool json_same(const json_t *a, const json_t *b, size_t depth_left)
{
    if (json_is_number(a) && json_is_number(b))
        return num_cmp(a, b) == 0;
    if (json_typeof(a) != json_typeof(b) || depth_left == 0)
        return false;
    if (json_is_array(a)) {
        if (json_array_size(a) != json_array_size(b))
            return false;
        for (size_t i = 0; i < json_array_size(a); i++) {
            if (!json_same(json_array_get(a, i), json_array_get(b, i), depth_left - 1))
                return false;
        }
        return true;
    }
    if (json_is_object(a)) {
        if (json_object_size(a) != json_object_size(b))
            return false;
        const char *key;
        size_t klen;
        json_t *av;
        json_object_keylen_foreach(SCHEMA_MUT(a), key, klen, av)
        {
            const json_t *bv = json_object_getn(b, key, klen);
            if (!bv || !json_same(av, bv, depth_left - 1))
                return false;
        }
        return true;
    }
    return json_equal(SCHEMA_MUT(a), SCHEMA_MUT(b)) == 1;
}

static void fmt_number(const json_t *v, char *out, size_t outlen)
{
    if (json_is_integer(v)) {
        snprintf(out, outlen, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        return;
    }
    double d = json_number_value(v);
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(out, outlen, "%.*g", prec, d);
        if (strtod(out, NULL) == d)
            break;
    }
}

/* How many bytes of s, at most max, make whole UTF-8 characters: for cutting text that is
 * followed by more text, where utf8_trim cannot help. */
static int utf8_cut(const char *s, size_t max)
{
    size_t n = strnlen(s, max);
    if (n == max && s[n] != '\0') {
        while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
            n--;
    }
    return (int)n;
}

static size_t utf8_count(const char *s, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        n += ((unsigned char)s[i] & 0xC0) != 0x80;
    return n;
}

/* --- patterns ----------------------------------------------------------------------------- */

struct pat_frame {
    size_t total; /* expanded size of the sequence so far */
    size_t last;  /* expanded size of its last atom, which a quantifier repeats */
};

/* Index of the ']' closing the bracket expression opened at p[i] (len if unterminated). */
static size_t bracket_end(const char *p, size_t len, size_t i)
{
    size_t j = i + 1;
    if (j < len && p[j] == '^')
        j++;
    if (j < len && p[j] == ']')
        j++; /* a leading ']' is a member */
    while (j < len && p[j] != ']') {
        char kind = j + 1 < len ? p[j + 1] : 0;
        if (p[j] == '[' && (kind == ':' || kind == '=' || kind == '.')) {
            j += 2;
            while (j + 1 < len && !(p[j] == kind && p[j + 1] == ']'))
                j++;
            j += 2; /* past "x]" of "[:class:]" */
        } else {
            j++;
        }
    }
    return j < len ? j : len;
}

/* Parses "{m}", "{m,}" or "{m,n}" at p[i]: how many copies glibc makes, and the index of '}'. */
static bool interval(const char *p, size_t len, size_t i, size_t *copies, size_t *end)
{
    size_t num[2] = {0, 0};
    size_t which = 0;
    bool digits[2] = {false, false};
    for (i++; i < len && p[i] != '}'; i++) {
        if (p[i] == ',' && which == 0) {
            which = 1;
        } else if (p[i] >= '0' && p[i] <= '9' && num[which] <= SCHEMA_PATTERN_BUDGET) {
            num[which] = num[which] * 10 + (size_t)(p[i] - '0');
            digits[which] = true;
        } else if (!(p[i] >= '0' && p[i] <= '9')) {
            return false;
        }
    }
    if (i >= len || !(digits[0] || digits[1]))
        return false; /* "{,n}" is "{0,n}" to glibc */
    *copies = which == 1 && digits[1] ? num[1] : num[0] + which;
    if (*copies == 0)
        *copies = 1;
    *end = i;
    return true;
}

/* Repeats the last atom of f `copies` times (saturating past the budget). */
static bool pat_repeat(struct pat_frame *f, size_t copies, size_t extra)
{
    size_t atom = f->last ? f->last : 1;
    if (copies > SCHEMA_PATTERN_BUDGET / atom)
        return false;
    f->total = f->total - f->last + atom * copies + extra;
    f->last = atom * copies + extra;
    return f->total <= SCHEMA_PATTERN_BUDGET;
}

/* Whether glibc will expand the pattern to a bounded tree with no back-reference. */
static bool pattern_bounded(const char *p, size_t len)
{
    struct pat_frame stack[SCHEMA_PATTERN_MAX];
    struct pat_frame cur = {0, 0};
    size_t top = 0;
    for (size_t i = 0; i < len; i++) {
        size_t atom = 1;
        size_t copies = 0;
        if (p[i] == '\\' && i + 1 < len && p[i + 1] >= '1' && p[i + 1] <= '9')
            return false;
        if (p[i] == '\\') {
            i++;
        } else if (p[i] == '[') {
            i = bracket_end(p, len, i);
        } else if (p[i] == '(' && top < SCHEMA_PATTERN_MAX) {
            stack[top++] = cur;
            cur = (struct pat_frame){0, 0};
            continue;
        } else if (p[i] == ')' && top > 0) {
            atom = cur.total + 1;
            cur = stack[--top];
        } else if (p[i] == '{' && interval(p, len, i, &copies, &i)) {
            if (!pat_repeat(&cur, copies, 1))
                return false;
            continue;
        } else if (p[i] == '*' || p[i] == '?' || p[i] == '+') {
            /* glibc turns "a+" into "aa*": one more copy of the atom. */
            if (!pat_repeat(&cur, p[i] == '+' ? 2 : 1, 1))
                return false;
            continue;
        } else if (p[i] == '|') {
            cur.last = 0;
        } else if ((unsigned char)p[i] >= 0xC0) {
            /* one character, which glibc keeps as a node per byte */
            while (i + 1 < len && ((unsigned char)p[i + 1] & 0xC0) == 0x80) {
                i++;
                atom++;
            }
        }
        cur.total += atom;
        cur.last = atom;
        if (cur.total > SCHEMA_PATTERN_BUDGET)
            return false;
    }
    return true;
}

/* Compiles a "pattern" value; on failure says why in why[]. */
static int pattern_compile(const json_t *pat, regex_t *re, char *why, size_t whylen)
{
    const char *s = json_string_value(pat);
    size_t len = json_string_length(pat);
    if (!s || len > SCHEMA_PATTERN_MAX || memchr(s, '\0', len)) {
        snprintf(why, whylen, "must be a string of at most %d bytes with no NUL",
                 SCHEMA_PATTERN_MAX);
        return -1;
    }
    if (!pattern_bounded(s, len)) {
        snprintf(why, whylen, "is too complex (a back-reference or too much repetition)");
        return -1;
    }
    int rc = regcomp(re, s, REG_EXTENDED | REG_NOSUB);
    if (rc != 0) {
        char msg[128];
        regerror(rc, re, msg, sizeof msg);
        snprintf(why, whylen, "does not compile: %s", msg);
        return -1;
    }
    return 0;
}

/* glibc's regex follows LC_CTYPE: in the C locale "." and "[^a]" match one byte and "猫+"
 * repeats the last byte of 猫, so "^.{1,8}$" would count bytes where maxLength counts
 * characters. A pattern or string with any non-ASCII byte is therefore compiled and matched
 * under C.UTF-8, for this thread only, putting the caller's locale back after; pure ASCII
 * matches the same either way and skips the switch. Loading the locale costs about a
 * millisecond, so each call of the API loads it at most once, on first need, and frees it on
 * return (nothing outlives the call). Without C.UTF-8, matching falls back to bytes. */
struct pat_env {
    locale_t utf8;
    bool tried;
};

static bool is_ascii(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if ((unsigned char)s[i] >= 0x80)
            return false;
    }
    return true;
}

/* Returns the locale to restore with pat_env_leave, or 0 if nothing was switched. */
static locale_t pat_env_enter(struct pat_env *env, bool need_utf8)
{
    if (!need_utf8)
        return (locale_t)0;
    if (!env->tried) {
        env->tried = true;
        env->utf8 = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0);
    }
    return env->utf8 ? uselocale(env->utf8) : (locale_t)0;
}

static void pat_env_leave(locale_t prev)
{
    if (prev)
        uselocale(prev);
}

static void pat_env_free(struct pat_env *env)
{
    if (env->utf8)
        freelocale(env->utf8);
}

/* Unanchored, as in JSON Schema; REG_STARTEND lets a string hold NUL bytes. */
static bool pattern_match(const regex_t *re, const char *s, size_t len)
{
#ifdef REG_STARTEND
    regmatch_t m[1] = {{.rm_so = 0, .rm_eo = (regoff_t)len}};
    return regexec(re, s, 1, m, REG_STARTEND) == 0;
#else
    return regexec(re, s, 0, NULL, 0) == 0;
#endif
}

/* --- validation --------------------------------------------------------------------------- */

static void validate_node(struct sch_ctx *c, const json_t *schema, const json_t *v, size_t depth);

static bool will_record(const struct sch_ctx *c)
{
    return c->rep && c->rep->errors && c->rep->count < c->rep->cap;
}

static bool type_matches(const char *t, const json_t *v)
{
    if (strcmp(t, "string") == 0)
        return json_is_string(v);
    if (strcmp(t, "integer") == 0)
        return is_integral(v);
    if (strcmp(t, "number") == 0)
        return json_is_number(v);
    if (strcmp(t, "boolean") == 0)
        return json_is_boolean(v);
    if (strcmp(t, "object") == 0)
        return json_is_object(v);
    if (strcmp(t, "array") == 0)
        return json_is_array(v);
    return false; /* an unknown name matches nothing: fail closed */
}

static void check_type(struct sch_ctx *c, const json_t *schema, const json_t *v)
{
    const json_t *t = json_object_get(schema, "type");
    if (!t)
        return;
    if (json_is_string(t)) {
        if (!type_matches(json_string_value(t), v))
            add_error(c, "type", "must be of type %.*s", utf8_cut(json_string_value(t), 32),
                      json_string_value(t));
        return;
    }
    if (!json_is_array(t) || json_array_size(t) == 0) {
        bad_keyword(c, "type");
        return;
    }
    char list[160] = "";
    size_t n = 0;
    for (size_t i = 0; i < json_array_size(t); i++) {
        const char *name = json_string_value(json_array_get(t, i));
        if (!name) {
            bad_keyword(c, "type");
            return;
        }
        if (type_matches(name, v))
            return;
        int w =
            snprintf(list + n, sizeof list - n, "%s%.*s", i ? ", " : "", utf8_cut(name, 32), name);
        n = w > 0 && (size_t)w < sizeof list - n ? n + (size_t)w : n;
    }
    add_error(c, "type", "must be one of the types %s", list);
}

static void check_enum(struct sch_ctx *c, const json_t *schema, const json_t *v)
{
    const json_t *e = json_object_get(schema, "enum");
    if (!e)
        return;
    if (!json_is_array(e)) {
        bad_keyword(c, "enum");
        return;
    }
    for (size_t i = 0; i < json_array_size(e); i++) {
        if (json_same(json_array_get(e, i), v, c->max_depth))
            return;
    }
    char shown[160] = "the allowed values";
    char *dump = will_record(c) ? json_dumps(e, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    if (dump) {
        /* Long lists are cut; the cut must not split a UTF-8 sequence. */
        bool cut = strlen(dump) >= sizeof shown - 4;
        snprintf(shown, sizeof shown - 4, "%s", dump);
        jpath_utf8_trim(shown);
        if (cut)
            strcat(shown, "...");
        free(dump);
    }
    add_error(c, "enum", "must be one of %s", shown);
}

static void check_number(struct sch_ctx *c, const json_t *schema, const json_t *v)
{
    static const struct {
        const char *keyword;
        int sign;       /* a value failing lies on this side of the bound */
        bool exclusive; /* the bound itself fails too */
        const char *text;
    } rules[] = {
        {"minimum", -1, false, "at least"},
        {"maximum", 1, false, "at most"},
        {"exclusiveMinimum", -1, true, "greater than"},
        {"exclusiveMaximum", 1, true, "less than"},
    };
    for (size_t i = 0; i < sizeof rules / sizeof rules[0]; i++) {
        const json_t *bound = json_object_get(schema, rules[i].keyword);
        if (!bound)
            continue;
        if (!json_is_number(bound)) {
            bad_keyword(c, rules[i].keyword);
            continue;
        }
        int cmp = num_cmp(v, bound);
        if (cmp * rules[i].sign > 0 || (rules[i].exclusive && cmp == 0)) {
            char num[40];
            fmt_number(bound, num, sizeof num);
            add_error(c, rules[i].keyword, "must be %s %s", rules[i].text, num);
        }
    }
}

/* A count keyword (minLength, maxItems, ...): 1 and *out if present and valid, else 0. */
static int get_count(struct sch_ctx *c, const json_t *schema, const char *keyword, size_t *out)
{
    const json_t *n = json_object_get(schema, keyword);
    if (!n)
        return 0;
    if (!json_is_integer(n) || json_integer_value(n) < 0) {
        bad_keyword(c, keyword);
        return 0;
    }
    *out = (size_t)json_integer_value(n);
    return 1;
}

/* minLength/maxLength or minItems/maxItems against a size. */
static void check_counts(struct sch_ctx *c, const json_t *schema, const char *kw_min,
                         const char *kw_max, size_t size, const char *unit)
{
    size_t bound;
    if (get_count(c, schema, kw_min, &bound) && size < bound)
        add_error(c, kw_min, "must have at least %zu %s", bound, unit);
    if (get_count(c, schema, kw_max, &bound) && size > bound)
        add_error(c, kw_max, "must have at most %zu %s", bound, unit);
}

static void check_string(struct sch_ctx *c, const json_t *schema, const json_t *v)
{
    const char *s = json_string_value(v);
    size_t len = json_string_length(v);
    check_counts(c, schema, "minLength", "maxLength", utf8_count(s, len), "characters");
    const json_t *pat = json_object_get(schema, "pattern");
    if (!pat)
        return;
    regex_t re;
    char why[160];
    const char *ps = json_string_value(pat);
    bool wide = !is_ascii(s, len) || (ps && !is_ascii(ps, json_string_length(pat)));
    locale_t prev = pat_env_enter(c->env, wide);
    int rc = pattern_compile(pat, &re, why, sizeof why);
    bool match = rc == 0 && pattern_match(&re, s, len);
    if (rc == 0)
        regfree(&re);
    pat_env_leave(prev);
    if (rc != 0) {
        bad_keyword(c, "pattern");
        return;
    }
    if (!match) {
        char shown[120];
        snprintf(shown, sizeof shown, "%s", json_string_value(pat));
        jpath_utf8_trim(shown);
        add_error(c, "pattern", "must match the pattern %s", shown);
    }
}

static void check_required(struct sch_ctx *c, const json_t *schema, const json_t *v)
{
    const json_t *req = json_object_get(schema, "required");
    if (!req)
        return;
    if (!json_is_array(req)) {
        bad_keyword(c, "required");
        return;
    }
    for (size_t i = 0; i < json_array_size(req); i++) {
        const json_t *name = json_array_get(req, i);
        if (!json_is_string(name)) {
            bad_keyword(c, "required");
            return;
        }
        const char *key = json_string_value(name);
        size_t klen = json_string_length(name);
        if (json_object_getn(v, key, klen))
            continue;
        size_t old = jpath_push(&c->path, key, klen);
        add_error(c, "required", "is required");
        jpath_pop(&c->path, old);
    }
}

static void check_object(struct sch_ctx *c, const json_t *schema, const json_t *v, size_t depth)
{
    const json_t *props = json_object_get(schema, "properties");
    if (props && !json_is_object(props)) {
        bad_keyword(c, "properties");
        props = NULL;
    }
    const char *key;
    size_t klen;
    json_t *sub;
    json_object_keylen_foreach(SCHEMA_MUT(props), key, klen, sub)
    {
        const json_t *child = json_object_getn(v, key, klen);
        if (!child)
            continue;
        size_t old = jpath_push(&c->path, key, klen);
        validate_node(c, sub, child, depth + 1);
        jpath_pop(&c->path, old);
    }
    check_required(c, schema, v);
    const json_t *extra = json_object_get(schema, "additionalProperties");
    if (!extra || json_is_true(extra))
        return;
    if (!json_is_false(extra)) {
        bad_keyword(c, "additionalProperties");
        return;
    }
    json_object_keylen_foreach(SCHEMA_MUT(v), key, klen, sub)
    {
        if (json_object_getn(props, key, klen))
            continue;
        size_t old = jpath_push(&c->path, key, klen);
        add_error(c, "additionalProperties", "is not an allowed property");
        jpath_pop(&c->path, old);
    }
}

static void check_array(struct sch_ctx *c, const json_t *schema, const json_t *v, size_t depth)
{
    check_counts(c, schema, "minItems", "maxItems", json_array_size(v), "items");
    const json_t *items = json_object_get(schema, "items");
    if (!items)
        return;
    for (size_t i = 0; i < json_array_size(v); i++) {
        size_t old = jpath_push_index(&c->path, i);
        validate_node(c, items, json_array_get(v, i), depth + 1);
        jpath_pop(&c->path, old);
    }
}

/* depth is the nesting of v (the root value is 1). */
static void validate_node(struct sch_ctx *c, const json_t *schema, const json_t *v, size_t depth)
{
    if (depth > c->max_depth) {
        add_error(c, "depth", "is nested deeper than %zu levels", c->max_depth);
        return;
    }
    if (!json_is_object(schema)) {
        add_error(c, "schema", "the schema here is not an object");
        return;
    }
    check_type(c, schema, v);
    check_enum(c, schema, v);
    if (json_is_number(v))
        check_number(c, schema, v);
    else if (json_is_string(v))
        check_string(c, schema, v);
    else if (json_is_object(v))
        check_object(c, schema, v, depth);
    else if (json_is_array(v))
        check_array(c, schema, v, depth);
}

bool schema_validate(const json_t *schema, const json_t *value, struct schema_report *rep,
                     size_t max_depth)
{
    struct pat_env env = {.tried = false};
    struct sch_ctx c = {
        .rep = rep,
        .max_depth = max_depth ? max_depth : SCHEMA_DEFAULT_DEPTH,
        .ok = true,
        .env = &env,
    };
    if (rep) {
        rep->count = 0;
        rep->dropped = 0;
    }
    if (!value) {
        add_error(&c, "type", "is missing");
        return false;
    }
    validate_node(&c, schema, value, 1);
    pat_env_free(&env);
    return c.ok;
}

/* --- schema_check ------------------------------------------------------------------------- */

enum kw_kind {
    KW_TYPE,
    KW_PROPERTIES,
    KW_REQUIRED,
    KW_BOOL,
    KW_ENUM,
    KW_NUMBER,
    KW_COUNT,
    KW_PATTERN,
    KW_ITEMS,
    KW_TEXT,
    KW_LIST,
    KW_ANY,
};

static const struct {
    const char *name;
    enum kw_kind kind;
} schema_keywords[] = {
    {"type", KW_TYPE},
    {"properties", KW_PROPERTIES},
    {"required", KW_REQUIRED},
    {"additionalProperties", KW_BOOL},
    {"enum", KW_ENUM},
    {"minimum", KW_NUMBER},
    {"maximum", KW_NUMBER},
    {"exclusiveMinimum", KW_NUMBER},
    {"exclusiveMaximum", KW_NUMBER},
    {"minLength", KW_COUNT},
    {"maxLength", KW_COUNT},
    {"pattern", KW_PATTERN},
    {"minItems", KW_COUNT},
    {"maxItems", KW_COUNT},
    {"items", KW_ITEMS},
    {"default", KW_ANY},
    {"description", KW_TEXT},
    {"title", KW_TEXT},
    {"format", KW_TEXT},
    {"examples", KW_LIST},
};

static const char *const schema_types[] = {"string",  "integer", "number",
                                           "boolean", "object",  "array"};

struct chk_ctx {
    char *err;
    size_t errlen;
    struct jpath path; /* of the schema node or keyword being checked */
    struct pat_env env;
};

static int chk_fail(struct chk_ctx *k, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Writes "<schema pointer>: <reason>"; text that comes from the schema goes last so a cut
 * only ever shortens it. */
static int chk_fail(struct chk_ctx *k, const char *fmt, ...)
{
    if (!k->err || k->errlen == 0)
        return -1;
    int n = snprintf(k->err, k->errlen, "%s: ", k->path.len ? k->path.buf : "(root)");
    if (n >= 0 && (size_t)n < k->errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(k->err + n, k->errlen - (size_t)n, fmt, ap);
        va_end(ap);
    }
    jpath_utf8_trim(k->err);
    return -1;
}

static bool type_known(const char *name)
{
    for (size_t i = 0; i < sizeof schema_types / sizeof schema_types[0]; i++) {
        if (strcmp(name, schema_types[i]) == 0)
            return true;
    }
    return false;
}

/* The strings of arr are distinct and, with `types`, each a supported type name. */
static int chk_names(struct chk_ctx *k, const json_t *arr, bool types)
{
    json_t *seen = json_object();
    int rc = seen ? 0 : chk_fail(k, "out of memory");
    for (size_t i = 0; rc == 0 && i < json_array_size(arr); i++) {
        const json_t *s = json_array_get(arr, i);
        const char *name = json_string_value(s);
        size_t len = json_string_length(s);
        if (!name)
            rc = chk_fail(k, "must list strings only");
        else if (types && !type_known(name))
            rc = chk_fail(k, "unsupported type: %s", name);
        else if (json_object_getn(seen, name, len))
            rc = chk_fail(k, "lists a name twice: %s", name);
        else if (json_object_setn_new_nocheck(seen, name, len, json_true()) != 0)
            rc = chk_fail(k, "out of memory");
    }
    json_decref(seen);
    return rc;
}

static int chk_node(struct chk_ctx *k, const json_t *schema, size_t depth);

static int chk_properties(struct chk_ctx *k, const json_t *props, size_t depth)
{
    if (!json_is_object(props))
        return chk_fail(k, "must be an object of schemas");
    const char *key;
    size_t klen;
    json_t *sub;
    json_object_keylen_foreach(SCHEMA_MUT(props), key, klen, sub)
    {
        size_t old = jpath_push(&k->path, key, klen);
        if (chk_node(k, sub, depth + 1) != 0)
            return -1;
        jpath_pop(&k->path, old);
    }
    return 0;
}

static int chk_pattern(struct chk_ctx *k, const json_t *val)
{
    regex_t re;
    char why[160];
    const char *ps = json_string_value(val);
    locale_t prev = pat_env_enter(&k->env, ps && !is_ascii(ps, json_string_length(val)));
    int rc = pattern_compile(val, &re, why, sizeof why);
    if (rc == 0)
        regfree(&re);
    pat_env_leave(prev);
    return rc == 0 ? 0 : chk_fail(k, "%s", why);
}

static int chk_keyword(struct chk_ctx *k, enum kw_kind kind, const json_t *val, size_t depth)
{
    switch (kind) {
    case KW_TYPE:
        if (json_is_string(val))
            return type_known(json_string_value(val))
                       ? 0
                       : chk_fail(k, "unsupported type: %s", json_string_value(val));
        if (json_array_size(val) == 0)
            return chk_fail(k, "must be a type name or a non-empty list of them");
        return chk_names(k, val, true);
    case KW_PROPERTIES:
        return chk_properties(k, val, depth);
    case KW_REQUIRED:
        return json_is_array(val) ? chk_names(k, val, false)
                                  : chk_fail(k, "must be a list of property names");
    case KW_BOOL:
        return json_is_boolean(val) ? 0 : chk_fail(k, "must be true or false");
    case KW_ENUM:
        return json_array_size(val) > 0 ? 0 : chk_fail(k, "must be a non-empty list");
    case KW_NUMBER:
        return json_is_number(val) ? 0 : chk_fail(k, "must be a number");
    case KW_COUNT:
        return json_is_integer(val) && json_integer_value(val) >= 0
                   ? 0
                   : chk_fail(k, "must be a non-negative integer");
    case KW_PATTERN:
        return chk_pattern(k, val);
    case KW_ITEMS:
        return chk_node(k, val, depth + 1);
    case KW_TEXT:
        return json_is_string(val) ? 0 : chk_fail(k, "must be a string");
    case KW_LIST:
        return json_is_array(val) ? 0 : chk_fail(k, "must be a list");
    case KW_ANY:
        return 0;
    }
    return chk_fail(k, "unsupported keyword");
}

/* Bounds that no value could satisfy are as surely a typo as a misspelt keyword. */
static int chk_ranges(struct chk_ctx *k, const json_t *schema)
{
    static const char *const pairs[][2] = {
        {"minimum", "maximum"},
        {"minLength", "maxLength"},
        {"minItems", "maxItems"},
    };
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
        const json_t *lo = json_object_get(schema, pairs[i][0]);
        const json_t *hi = json_object_get(schema, pairs[i][1]);
        if (lo && hi && num_cmp(lo, hi) > 0)
            return chk_fail(k, "%s is greater than %s", pairs[i][0], pairs[i][1]);
    }
    return 0;
}

static int chk_default(struct chk_ctx *k, const json_t *schema)
{
    const json_t *def = json_object_get(schema, "default");
    if (!def)
        return 0;
    struct schema_error e;
    struct schema_report rep = {.errors = &e, .cap = 1};
    if (schema_validate(schema, def, &rep, 0))
        return 0;
    jpath_push(&k->path, "default", strlen("default"));
    if (e.path[0])
        return chk_fail(k, "violates its own schema at %s: %s", e.path, e.message);
    return chk_fail(k, "violates its own schema: %s", e.message);
}

static int kw_find(const char *key, size_t klen)
{
    for (size_t i = 0; i < sizeof schema_keywords / sizeof schema_keywords[0]; i++) {
        const char *name = schema_keywords[i].name;
        if (strlen(name) == klen && memcmp(name, key, klen) == 0)
            return (int)schema_keywords[i].kind;
    }
    return -1;
}

/* depth is the nesting of this schema (the root is 1), bounded like validation's. On failure
 * the path is left pointing at the culprit, which chk_fail has already written out. */
static int chk_node(struct chk_ctx *k, const json_t *schema, size_t depth)
{
    if (depth > SCHEMA_DEFAULT_DEPTH)
        return chk_fail(k, "is nested deeper than %d levels", SCHEMA_DEFAULT_DEPTH);
    if (!json_is_object(schema))
        return chk_fail(k, "a schema must be an object");
    const char *key;
    size_t klen;
    json_t *val;
    json_object_keylen_foreach(SCHEMA_MUT(schema), key, klen, val)
    {
        size_t old = jpath_push(&k->path, key, klen);
        int kind = kw_find(key, klen);
        if (kind < 0)
            return chk_fail(k, "unsupported keyword");
        if (chk_keyword(k, (enum kw_kind)kind, val, depth) != 0)
            return -1;
        jpath_pop(&k->path, old);
    }
    if (chk_ranges(k, schema) != 0 || chk_default(k, schema) != 0)
        return -1;
    return 0;
}

int schema_check(const json_t *schema, char *err, size_t errlen)
{
    struct chk_ctx k = {.err = err, .errlen = errlen};
    if (err && errlen)
        err[0] = '\0';
    if (!schema)
        return chk_fail(&k, "no schema");
    int rc = chk_node(&k, schema, 1);
    pat_env_free(&k.env);
    return rc;
}

/* --- defaults ----------------------------------------------------------------------------- */

/* The copy of inputs is shallow: its values are shared (reference-counted) with inputs, which
 * the caller only reads; each default added is a deep copy, as the schema outlives the job. */
json_t *schema_apply_defaults(const json_t *schema, const json_t *inputs)
{
    if (!json_is_object(inputs))
        return NULL;
    json_t *out = json_copy(SCHEMA_MUT(inputs));
    if (!out)
        return NULL;
    const json_t *props = json_object_get(schema, "properties");
    const char *key;
    size_t klen;
    json_t *sub;
    json_object_keylen_foreach(SCHEMA_MUT(props), key, klen, sub)
    {
        const json_t *def = json_object_get(sub, "default");
        if (!def || json_object_getn(inputs, key, klen))
            continue;
        if (json_object_setn_new_nocheck(out, key, klen, json_deep_copy(def)) != 0) {
            json_decref(out);
            return NULL;
        }
    }
    return out;
}
