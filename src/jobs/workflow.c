/* workflow — see workflow.h. */
#include "jobs/workflow.h"

#include <bearssl.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "comfy/comfy_graph.h"
#include "jobs/schema.h"
#include "jobs/template.h"

static bool id_ok(const char *id)
{
    size_t n = strlen(id);
    if (n == 0 || n > 64)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = id[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-' || c == '.'))
            return false;
    }
    return strcmp(id, ".") && strcmp(id, "..");
}

static void hash_of(struct workflow *w)
{
    json_t *all = json_pack("{s:O, s:O, s:O}", "template", w->tmpl, "schema", w->schema,
                            "overlays", w->overlays ? w->overlays : json_null());
    char *canon = json_dumps(all, JSON_COMPACT | JSON_SORT_KEYS);
    unsigned char d[32];
    br_sha256_context c;
    br_sha256_init(&c);
    if (canon)
        br_sha256_update(&c, canon, strlen(canon));
    br_sha256_out(&c, d);
    for (int i = 0; i < 32; i++)
        snprintf(w->hash + 2 * i, 3, "%02x", d[i]);
    free(canon);
    json_decref(all);
}

/* Every placeholder of template and overlays must be a declared input. */
static int placeholders_declared(struct workflow *w, char *err, size_t len)
{
    struct template_limits lim;
    template_limits_default(&lim);
    w->placeholders = template_placeholders(w->tmpl, &lim);
    if (!w->placeholders) {
        snprintf(err, len, "template is too large");
        return -1;
    }
    size_t i;
    json_t *ov;
    json_array_foreach(w->overlays, i, ov)
    {
        json_t *more = template_placeholders(json_object_get(ov, "template"), &lim);
        size_t k;
        json_t *name;
        json_array_foreach(more, k, name)
        {
            bool seen = false;
            size_t j;
            json_t *have;
            json_array_foreach(w->placeholders, j, have) seen |= json_equal(have, name);
            if (!seen)
                json_array_append(w->placeholders, name);
        }
        json_decref(more);
    }
    json_t *props = json_object_get(w->schema, "properties");
    json_t *name;
    json_array_foreach(w->placeholders, i, name)
    {
        if (!json_object_get(props, json_string_value(name))) {
            snprintf(err, len, "placeholder {{%s}} is not declared in the input schema",
                     json_string_value(name));
            return -1;
        }
    }
    return 0;
}

static int parse_overlays(const json_t *doc, struct workflow *w, char *err, size_t len)
{
    json_t *ov = json_object_get(doc, "overlays");
    if (!ov)
        return 0;
    if (!json_is_array(ov) || json_array_size(ov) > 16) {
        snprintf(err, len, "overlays must be an array of at most 16 entries");
        return -1;
    }
    size_t i;
    json_t *it;
    json_array_foreach(ov, i, it)
    {
        const char *when = json_string_value(json_object_get(it, "when"));
        json_t *t = json_object_get(it, "template");
        json_t *prop = json_object_get(json_object_get(w->schema, "properties"), when ? when : "");
        if (!when || !json_is_object(t) ||
            strcmp(json_string_value(json_object_get(prop, "type")) ?: "", "boolean") != 0) {
            snprintf(err, len, "overlay %zu needs \"when\" naming a boolean input and a "
                               "\"template\" object", i);
            return -1;
        }
    }
    w->overlays = json_deep_copy(ov);
    return 0;
}

int workflow_parse(const json_t *doc, const char *id, struct workflow *w, char *err, size_t len)
{
    memset(w, 0, sizeof(*w));
    if (!json_is_object(doc)) {
        snprintf(err, len, "workflow must be a JSON object");
        return -1;
    }
    const char *did = json_string_value(json_object_get(doc, "id"));
    const char *use = id ? id : did;
    if (!use || !id_ok(use)) {
        snprintf(err, len, "workflow id must be 1-64 characters of [A-Za-z0-9_.-]");
        return -1;
    }
    snprintf(w->id, sizeof(w->id), "%s", use);
    /* whole or refused: a text cut short could end inside a UTF-8 character */
    static const struct {
        const char *key;
        size_t max;
    } texts[] = {
        {"name", sizeof(w->name) - 1},
        {"description", sizeof(w->description) - 1},
    };
    for (size_t i = 0; i < 2; i++) {
        json_t *v = json_object_get(doc, texts[i].key);
        if (v && (!json_is_string(v) || json_string_length(v) > texts[i].max)) {
            snprintf(err, len, "%s must be a string of at most %zu bytes", texts[i].key,
                     texts[i].max);
            return -1;
        }
    }
    const char *s = json_string_value(json_object_get(doc, "name"));
    snprintf(w->name, sizeof(w->name), "%s", s ? s : use);
    s = json_string_value(json_object_get(doc, "description"));
    snprintf(w->description, sizeof(w->description), "%s", s ? s : "");
    json_t *t = json_object_get(doc, "template");
    json_t *sc = json_object_get(doc, "schema");
    if (!sc)
        sc = json_object_get(doc, "inputSchema");
    char gerr[256];
    if (comfy_graph_check(t, 2000, gerr, sizeof(gerr)) < 0) {
        snprintf(err, len, "template: %s", gerr);
        return -1;
    }
    if (!sc)
        sc = json_pack("{s:s, s:{}}", "type", "object", "properties");
    else
        json_incref(sc);
    w->schema = sc;
    if (schema_check(sc, gerr, sizeof(gerr)) < 0) {
        snprintf(err, len, "schema: %s", gerr);
        return -1;
    }
    w->tmpl = json_deep_copy(t);
    if (parse_overlays(doc, w, err, len) < 0 || placeholders_declared(w, err, len) < 0)
        return -1;
    hash_of(w);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    w->created_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    return 0;
}

void workflow_free(struct workflow *w)
{
    json_decref(w->tmpl);
    json_decref(w->schema);
    json_decref(w->overlays);
    json_decref(w->placeholders);
    w->tmpl = w->schema = w->overlays = w->placeholders = NULL;
}

/* --- the set ---------------------------------------------------------------------------------- */

void workflow_set_init(struct workflow_set *s, size_t max)
{
    memset(s, 0, sizeof(*s));
    s->max = max;
}

void workflow_set_free(struct workflow_set *s)
{
    for (size_t i = 0; i < s->n; i++) {
        workflow_free(s->items[i]);
        free(s->items[i]);
    }
    free(s->items);
    memset(s, 0, sizeof(*s));
}

int workflow_set_add(struct workflow_set *s, struct workflow *w, bool keep_version)
{
    if (s->n == s->max)
        return -ENOSPC;
    if (s->n == s->cap) {
        size_t ncap = s->cap ? s->cap * 2 : 16;
        struct workflow **ni = realloc(s->items, ncap * sizeof(*ni));
        if (!ni)
            return -ENOMEM;
        s->items = ni;
        s->cap = ncap;
    }
    int latest = 0;
    for (size_t i = 0; i < s->n; i++) {
        if (!strcmp(s->items[i]->id, w->id) && s->items[i]->version > latest)
            latest = s->items[i]->version;
    }
    struct workflow *copy = malloc(sizeof(*copy));
    if (!copy)
        return -ENOMEM;
    *copy = *w;
    if (!keep_version)
        copy->version = latest + 1;
    copy->deleted = false;
    memset(w, 0, sizeof(*w)); /* ownership moved */
    s->items[s->n++] = copy;
    return copy->version;
}

struct workflow *workflow_set_find(const struct workflow_set *s, const char *id, int version)
{
    for (size_t i = 0; i < s->n; i++) {
        if (s->items[i]->version == version && !strcmp(s->items[i]->id, id))
            return s->items[i];
    }
    return NULL;
}

const struct workflow *workflow_set_get(const struct workflow_set *s, const char *id, int version)
{
    const struct workflow *best = NULL;
    for (size_t i = 0; i < s->n; i++) {
        const struct workflow *w = s->items[i];
        if (strcmp(w->id, id) != 0)
            continue;
        if (version > 0 && w->version == version)
            return w;
        if (version == 0 && !w->deleted && (!best || w->version > best->version))
            best = w;
    }
    return best;
}

int workflow_set_delete(struct workflow_set *s, const char *id)
{
    int n = 0;
    for (size_t i = 0; i < s->n; i++) {
        if (!strcmp(s->items[i]->id, id) && !s->items[i]->deleted) {
            s->items[i]->deleted = true;
            n++;
        }
    }
    return n;
}

int workflow_set_load_dir(struct workflow_set *s, const char *dir, char *err, size_t len)
{
    DIR *d = opendir(dir);
    if (!d) {
        snprintf(err, len, "cannot open workflows directory %s", dir);
        return -1;
    }
    struct dirent *e;
    int rc = 0;
    while (rc == 0 && (e = readdir(d))) {
        size_t nl = strlen(e->d_name);
        if (nl < 6 || strcmp(e->d_name + nl - 5, ".json") != 0)
            continue;
        char path[2048];
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        json_error_t je;
        json_t *doc = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
        struct workflow w;
        char werr[256];
        if (!doc) {
            snprintf(err, len, "%s:%d: %s", path, je.line, je.text);
            rc = -1;
        } else if (workflow_parse(doc, NULL, &w, werr, sizeof(werr)) < 0) {
            snprintf(err, len, "%s: %s", path, werr);
            workflow_free(&w);
            rc = -1;
        } else {
            w.bundled = true;
            snprintf(w.created_by, sizeof(w.created_by), "bundled");
            if (workflow_set_add(s, &w, false) < 0) {
                workflow_free(&w);
                rc = -1;
            }
        }
        json_decref(doc);
    }
    closedir(d);
    return rc;
}

json_t *workflow_to_json(const struct workflow *w, bool full)
{
    json_t *o = json_pack("{s:s, s:i, s:s, s:s, s:s, s:I, s:b, s:s, s:O, s:O}", "id", w->id,
                          "version", w->version, "hash", w->hash, "name", w->name, "description",
                          w->description, "created_at", (json_int_t)w->created_ms, "bundled",
                          w->bundled, "created_by", w->created_by, "placeholders",
                          w->placeholders, "schema", w->schema);
    if (full) {
        json_object_set(o, "template", w->tmpl);
        if (w->overlays)
            json_object_set(o, "overlays", w->overlays);
    }
    return o;
}

/* --- rendering ------------------------------------------------------------------------------- */

static void add_error(json_t *errors, const char *path, const char *kw, const char *msg)
{
    json_array_append_new(errors, json_pack("{s:s, s:s, s:s}", "path", path, "keyword", kw,
                                            "message", msg));
}

/* The number ComfyUI would make of v: a JSON number, or a string it converts (Python's int()
 * and float() take surrounding spaces, '_' between digits and leading zeros). False if v is
 * neither (ComfyUI refuses it itself). Python also reads Unicode digits and spaces ("４０９６",
 * "\u00a04096"): a string with any byte outside ASCII counts as past every limit. */
static bool as_number(const json_t *v, double *out)
{
    if (json_is_number(v)) {
        *out = json_number_value(v);
        return true;
    }
    if (!json_is_string(v))
        return false;
    const char *s = json_string_value(v);
    char buf[64];
    size_t k = 0;
    bool lead = true; /* still in the leading zeros */
    for (size_t i = 0, n = json_string_length(v); i < n; i++) {
        char c = s[i];
        if ((unsigned char)c >= 0x80) {
            *out = INFINITY;
            return true;
        }
        if (c == '_' || c == ' ' || (c >= '\t' && c <= '\r') || (lead && c == '+'))
            continue;
        if (lead && c == '0' && i + 1 < n && s[i + 1] >= '0' && s[i + 1] <= '9')
            continue;
        lead = false;
        if (k + 1 >= sizeof(buf)) { /* 60-odd significant characters: past any limit */
            *out = INFINITY;
            return true;
        }
        buf[k++] = c;
    }
    buf[k] = '\0';
    char *end;
    double d = strtod(buf, &end);
    if (!k || *end || isnan(d))
        return false;
    *out = d;
    return true;
}

int workflow_check_limits(const json_t *graph, const struct workflow_limits *lim, json_t *errors)
{
    static const char *const dims[] = {"width", "height"};
    int n = 0;
    const char *id;
    json_t *node;
    json_object_foreach((json_t *)graph, id, node)
    {
        json_t *in = json_object_get(node, "inputs");
        char path[256], msg[160];
        for (int k = 0; k < 2; k++) {
            double d;
            if (as_number(json_object_get(in, dims[k]), &d) && d > (double)lim->max_image_size) {
                snprintf(path, sizeof(path), "/%s/inputs/%s", id, dims[k]);
                snprintf(msg, sizeof(msg), "%s must be at most MAX_IMAGE_SIZE (%llu)", dims[k],
                         (unsigned long long)lim->max_image_size);
                add_error(errors, path, "MAX_IMAGE_SIZE", msg);
                n++;
            }
        }
        double b;
        if (as_number(json_object_get(in, "batch_size"), &b) && b > (double)lim->max_batch_size) {
            snprintf(path, sizeof(path), "/%s/inputs/batch_size", id);
            snprintf(msg, sizeof(msg), "batch_size must be at most MAX_BATCH_SIZE (%llu)",
                     (unsigned long long)lim->max_batch_size);
            add_error(errors, path, "MAX_BATCH_SIZE", msg);
            n++;
        }
    }
    return n;
}

static json_t *merge_overlays(const struct workflow *w, const json_t *inputs)
{
    json_t *t = json_deep_copy(w->tmpl);
    size_t i;
    json_t *ov;
    json_array_foreach(w->overlays, i, ov)
    {
        const char *when = json_string_value(json_object_get(ov, "when"));
        if (json_is_true(json_object_get(inputs, when)))
            json_object_update(t, json_object_get(ov, "template"));
    }
    return t;
}

json_t *workflow_render(const struct workflow *w, const json_t *inputs,
                        const struct workflow_limits *lim, json_t **final_inputs,
                        json_t **errors)
{
    *errors = json_array();
    *final_inputs = NULL;
    json_t *in = schema_apply_defaults(w->schema, inputs);
    if (!in) {
        add_error(*errors, "", "type", "inputs must be an object");
        return NULL;
    }
    json_t *seed_prop = json_object_get(json_object_get(w->schema, "properties"), "seed");
    if (seed_prop && !json_object_get(in, "seed")) {
        uint64_t r = 0;
        if (getrandom(&r, sizeof(r), 0) != sizeof(r))
            r = (uint64_t)time(NULL);
        json_object_set_new(in, "seed", json_integer((json_int_t)(r & ((1ull << 53) - 1))));
    }
    struct schema_error errs[64];
    struct schema_report rep = {.errors = errs, .cap = 64};
    if (!schema_validate(w->schema, in, &rep, 32)) {
        json_decref(*errors);
        *errors = schema_report_json(&rep);
        json_decref(in);
        return NULL;
    }
    json_t *t = merge_overlays(w, in);
    struct template_limits tl;
    template_limits_default(&tl);
    struct template_result tr;
    json_t *g = template_render(t, in, &tl, &tr);
    json_decref(t);
    if (!g) {
        char path[300], msg[200];
        snprintf(path, sizeof(path), "%s", tr.path);
        snprintf(msg, sizeof(msg), "%s: {{%s}}", template_err_name(tr.err), tr.name);
        add_error(*errors, path, "template", msg);
        json_decref(in);
        return NULL;
    }
    if (workflow_check_limits(g, lim, *errors) > 0) {
        json_decref(g);
        json_decref(in);
        return NULL;
    }
    json_decref(*errors);
    *errors = NULL;
    *final_inputs = in;
    return g;
}
