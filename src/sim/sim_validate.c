/*
 * sim_validate — port of ComfyUI 0.8.0 execution.validate_prompt/validate_inputs
 * (see sim_validate.h). Python exceptions that the real code raises and catches are modelled
 * as a "raised" state that the direct caller turns into the matching error entry, with the
 * traceback frames ComfyUI reports.
 */
#include "sim/sim_validate.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim/sim_json.h"

#define MSG_MAX 2048

/* Source lines of /opt/ComfyUI/execution.py at 0.8.0 (1043 and 818 appear in transcript 03d). */
static const char frame_prompt[] =
    "  File \"/opt/ComfyUI/execution.py\", line 1043, in validate_prompt\n"
    "    m = await validate_inputs(prompt_id, prompt, o, validated)\n"
    "        ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^\n";
static const char frame_inner[] =
    "  File \"/opt/ComfyUI/execution.py\", line 838, in validate_inputs\n"
    "    r = await validate_inputs(prompt_id, prompt, o_id, validated)\n"
    "        ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^\n";
static const char frame_link_node[] =
    "  File \"/opt/ComfyUI/execution.py\", line 818, in validate_inputs\n"
    "    o_class_type = prompt[o_id]['class_type']\n"
    "                   ~~~~~~^^^^^^\n";
static const char frame_link_slot[] =
    "  File \"/opt/ComfyUI/execution.py\", line 820, in validate_inputs\n"
    "    received_type = r[val[1]]\n"
    "                    ~^^^^^^^^\n";
static const char frame_inputs[] =
    "  File \"/opt/ComfyUI/execution.py\", line 773, in validate_inputs\n"
    "    inputs = prompt[unique_id]['inputs']\n"
    "             ~~~~~~~~~~~~~~~~~^^^^^^^^^^\n";
static const char frame_custom[] =
    "  File \"/opt/ComfyUI/execution.py\", line 954, in validate_inputs\n"
    "    ret = await _async_map_node_over_list(prompt_id, unique_id, obj_class, input_filtered, "
    "validate_function_name, v3_data=v3_data)\n"
    "          ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^"
    "^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^\n";
static const char frame_recursion[] =
    "  File \"/opt/ComfyUI/execution.py\", line 838, in validate_inputs\n"
    "    r = await validate_inputs(prompt_id, prompt, o_id, validated)\n"
    "        ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^\n";

struct vctx {
    const struct sim_nodes *nodes;
    const struct sim_fs *fs;
    json_t *prompt;
    json_t *validated; /* id -> [valid, reasons], in Python dict insertion order */
    int depth;
    bool raised; /* a Python exception is propagating to the caller */
    char exc_type[32];
    char exc_msg[MSG_MAX];
    const char *exc_frame;
};

const char *sim_validate_err_name(int err)
{
    switch (err) {
    case SIM_VALIDATE_OK:
        return "ok";
    case SIM_VALIDATE_ENOMEM:
        return "out of memory";
    case SIM_VALIDATE_EPYTHON:
        return "server error";
    case SIM_VALIDATE_ETOOBIG:
        return "prompt too large";
    default:
        return "unknown";
    }
}

static const char *py_type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "dict";
    case JSON_ARRAY:
        return "list";
    case JSON_STRING:
        return sim_json_is_rawnum(v) ? "int" : "str";
    case JSON_INTEGER:
        return "int";
    case JSON_REAL:
        return "float";
    case JSON_TRUE:
    case JSON_FALSE:
        return "bool";
    default:
        return "NoneType";
    }
}

/* Python str(v) / repr(v) into a fixed buffer (truncated if huge: only used in messages). */
static const char *py_text(const json_t *v, bool repr, char *buf, size_t cap)
{
    struct sim_buf b;
    sim_buf_init(&b, cap - 1);
    if (repr)
        sim_json_repr(v, &b);
    else
        sim_json_str(v, &b);
    size_t n = b.len < cap - 1 ? b.len : cap - 1;
    if (n > 0)
        memcpy(buf, b.data, n);
    buf[n] = 0;
    sim_buf_free(&b);
    return buf;
}

static json_t *mk_error(const char *type, const char *message, const char *details, json_t *extra)
{
    return json_pack("{s:s, s:s, s:s, s:o}", "type", type, "message", message, "details", details,
                     "extra_info", extra != NULL ? extra : json_object());
}

static int raise_exc(struct vctx *v, const char *type, const char *msg, const char *frame)
{
    v->raised = true;
    snprintf(v->exc_type, sizeof(v->exc_type), "%s", type);
    snprintf(v->exc_msg, sizeof(v->exc_msg), "%s", msg);
    v->exc_frame = frame;
    return SIM_VALIDATE_OK;
}

/* The traceback of the exception in flight, as caught by the frame `catcher`. */
static json_t *take_traceback(struct vctx *v, const char *catcher)
{
    v->raised = false;
    return json_pack("[ss]", catcher, v->exc_frame);
}

/* (input_type, extra_info) as get_input_info returns it; new ref. */
static json_t *input_config(const json_t *spec)
{
    json_t *extra = json_array_get(spec, 1);
    if (extra == NULL)
        return json_pack("[O{}]", json_array_get(spec, 0));
    return json_pack("[OO]", json_array_get(spec, 0), extra);
}

/* Python ==, as used by `val not in combo_options` (1 == 1.0 == True). */
static bool py_equal(const json_t *a, const json_t *b)
{
    double x, y;
    bool an = sim_json_number(a, &x) || json_is_boolean(a);
    bool bn = sim_json_number(b, &y) || json_is_boolean(b);
    if (json_is_boolean(a))
        x = json_is_true(a);
    if (json_is_boolean(b))
        y = json_is_true(b);
    if (an && bn)
        return x == y;
    return json_equal((json_t *)a, (json_t *)b);
}

static bool types_match(const json_t *received, const json_t *wanted)
{
    const char *r = json_string_value(received), *w = json_string_value(wanted);
    if (json_equal((json_t *)received, (json_t *)wanted))
        return true;
    if ((r != NULL && strcmp(r, "*") == 0) || (w != NULL && strcmp(w, "*") == 0))
        return true;
    if (r == NULL || w == NULL)
        return false;
    /* "A,B" types match when the comma-separated sets intersect. */
    for (const char *p = r; *p;) {
        while (*p == ' ' || *p == ',')
            p++;
        size_t len = strcspn(p, ",");
        while (len > 0 && p[len - 1] == ' ')
            len--;
        for (const char *q = w; *q && len > 0;) {
            while (*q == ' ' || *q == ',')
                q++;
            size_t ql = strcspn(q, ",");
            while (ql > 0 && q[ql - 1] == ' ')
                ql--;
            if (ql == len && strncmp(p, q, len) == 0)
                return true;
            q += strcspn(q, ",");
        }
        p += strcspn(p, ",");
    }
    return false;
}

static bool truthy(const json_t *v)
{
    double d;
    if (json_is_boolean(v))
        return json_is_true(v);
    if (sim_json_number(v, &d))
        return d != 0;
    if (json_is_string(v))
        return json_string_length(v) > 0;
    if (json_is_array(v))
        return json_array_size(v) > 0;
    if (json_is_object(v))
        return json_object_size(v) > 0;
    return false;
}

static json_t *to_int(const json_t *val, char *ex, size_t cap)
{
    char tmp[MSG_MAX];
    long long i;
    if (json_is_integer(val) || sim_json_is_rawnum(val))
        return json_incref((json_t *)val);
    if (json_is_boolean(val))
        return json_integer(json_is_true(val));
    if (json_is_real(val)) {
        double d = trunc(json_real_value(val));
        if (fabs(d) < 9.2e18)
            return json_integer((json_int_t)d);
        snprintf(tmp, sizeof(tmp), "%.0f", d); /* Python ints have no size limit */
        return sim_json_rawnum(tmp);
    }
    if (json_is_string(val) && sim_json_py_int(json_string_value(val), &i))
        return json_integer(i);
    if (json_is_string(val))
        snprintf(ex, cap, "invalid literal for int() with base 10: %s",
                 py_text(val, true, tmp, sizeof(tmp)));
    else
        snprintf(ex, cap,
                 "int() argument must be a string, a bytes-like object or a real number, not '%s'",
                 py_type_name(val));
    return NULL;
}

static json_t *to_float(const json_t *val, char *ex, size_t cap)
{
    char tmp[MSG_MAX];
    double d;
    if (json_is_real(val))
        return json_incref((json_t *)val);
    if (json_is_boolean(val))
        return json_real(json_is_true(val) ? 1.0 : 0.0);
    if (sim_json_number(val, &d))
        return json_real(d);
    if (json_is_string(val) && sim_json_py_float(json_string_value(val), &d))
        return isfinite(d) ? json_real(d) : json_incref((json_t *)val);
    if (json_is_string(val))
        snprintf(ex, cap, "could not convert string to float: %s",
                 py_text(val, true, tmp, sizeof(tmp)));
    else
        snprintf(ex, cap, "float() argument must be a string or a real number, not '%s'",
                 py_type_name(val));
    return NULL;
}

/* The widget conversion of validate_inputs; NULL with ex set when Python would raise. */
static json_t *convert_widget(const json_t *itype, const json_t *val, char *ex, size_t cap)
{
    char tmp[MSG_MAX];
    const char *t = json_string_value(itype);
    ex[0] = 0;
    if (t == NULL)
        return json_incref((json_t *)val);
    if (strcmp(t, "INT") == 0)
        return to_int(val, ex, cap);
    if (strcmp(t, "FLOAT") == 0)
        return to_float(val, ex, cap);
    if (strcmp(t, "STRING") == 0)
        return json_is_string(val) ? json_incref((json_t *)val)
                                   : json_string(py_text(val, false, tmp, sizeof(tmp)));
    if (strcmp(t, "BOOLEAN") == 0)
        return json_boolean(truthy(val));
    return json_incref((json_t *)val);
}

static int append_error(json_t *errors, json_t *err)
{
    return (err != NULL && json_array_append_new(errors, err) == 0) ? SIM_VALIDATE_OK
                                                                    : SIM_VALIDATE_ENOMEM;
}

/* min/max checks; returns 1 when an error was appended. */
static int check_range(const char *x, const json_t *spec, const json_t *val, json_t *errors)
{
    static const char *const keys[2] = {"min", "max"};
    char vs[64], ls[64], msg[256];
    json_t *extra = json_array_get(spec, 1);
    double v, lim;
    if (!sim_json_number(val, &v))
        return 0;
    for (int k = 0; k < 2; k++) {
        json_t *limit = json_object_get(extra, keys[k]);
        if (limit == NULL || !sim_json_number(limit, &lim) || (k == 0 ? !(v < lim) : !(v > lim)))
            continue;
        snprintf(msg, sizeof(msg), "Value %s %s of %s", py_text(val, false, vs, sizeof(vs)),
                 k == 0 ? "smaller than min" : "bigger than max",
                 py_text(limit, false, ls, sizeof(ls)));
        json_t *info = json_pack("{s:s, s:o, s:O}", "input_name", x, "input_config",
                                 input_config(spec), "received_value", val);
        append_error(errors, mk_error(k == 0 ? "value_smaller_than_min" : "value_bigger_than_max",
                                      msg, x, info));
        return 1;
    }
    return 0;
}

/* Combo membership; returns 1 when an error was appended. */
static int check_combo(const char *x, const json_t *spec, const json_t *val, json_t *errors)
{
    const json_t *itype = json_array_get(spec, 0), *options = itype;
    if (json_is_string(itype) && strcmp(json_string_value(itype), "COMBO") == 0)
        options = json_object_get(json_array_get(spec, 1), "options");
    else if (!json_is_array(itype))
        return 0;
    size_t n = json_array_size(options);
    for (size_t i = 0; i < n; i++) {
        if (py_equal(json_array_get(options, i), val))
            return 0;
    }
    char list[MSG_MAX], vs[MSG_MAX], details[2 * MSG_MAX + 64];
    json_t *config;
    /* ComfyUI does not echo long (model file) lists back. */
    if (n > 20) {
        snprintf(list, sizeof(list), "(list of length %zu)", n);
        config = json_null();
    } else {
        if (options != NULL)
            py_text(options, true, list, sizeof(list));
        else
            snprintf(list, sizeof(list), "[]");
        config = input_config(spec);
    }
    snprintf(details, sizeof(details), "%s: '%s' not in %s", x, py_text(val, false, vs, sizeof(vs)),
             list);
    json_t *info = json_pack("{s:s, s:o, s:O}", "input_name", x, "input_config", config,
                             "received_value", val);
    append_error(errors, mk_error("value_not_in_list", "Value not in list", details, info));
    return 1;
}

/* A constant (widget) input: unwrap, convert, range and combo checks. */
static int check_widget(const struct sim_node_class *c, json_t *inputs, const char *x,
                        const json_t *spec, json_t *errors)
{
    char ex[MSG_MAX], vs[MSG_MAX], details[2 * MSG_MAX + 128];
    json_t *val = json_object_get(inputs, x);
    if (json_is_object(val) && json_object_get(val, "__value__") != NULL) {
        val = json_object_get(val, "__value__");
        json_object_set(inputs, x, val);
        val = json_object_get(inputs, x);
    }
    json_t *conv = convert_widget(json_array_get(spec, 0), val, ex, sizeof(ex));
    if (conv == NULL && ex[0] == 0)
        return SIM_VALIDATE_ENOMEM;
    if (conv == NULL) {
        const char *t = json_string_value(json_array_get(spec, 0));
        char msg[128];
        snprintf(msg, sizeof(msg), "Failed to convert an input value to a %s value", t);
        snprintf(details, sizeof(details), "%s, %s, %s", x, py_text(val, false, vs, sizeof(vs)),
                 ex);
        json_t *info =
            json_pack("{s:s, s:o, s:O, s:s}", "input_name", x, "input_config", input_config(spec),
                      "received_value", val, "exception_message", ex);
        return append_error(errors, mk_error("invalid_input_type", msg, details, info));
    }
    if (json_object_set_new(inputs, x, conv) != 0)
        return SIM_VALIDATE_ENOMEM;
    /* LoadImage's VALIDATE_INPUTS takes `image`, which exempts it from these checks. */
    if ((c->flags & SIM_NODE_F_FILE_INPUT) && strcmp(x, "image") == 0)
        return SIM_VALIDATE_OK;
    if (check_range(x, spec, conv, errors) == 0)
        check_combo(x, spec, conv, errors);
    return SIM_VALIDATE_OK;
}

static int validate_inputs(struct vctx *v, const char *id, bool *valid_out);

/* The linked node's RETURN_TYPES[slot], raising like Python for bad ids and slots. */
static const json_t *linked_type(struct vctx *v, const json_t *oid, const json_t *slot)
{
    char tmp[MSG_MAX - 64], msg[MSG_MAX];
    if (json_is_array(oid) || json_is_object(oid)) {
        snprintf(msg, sizeof(msg), "unhashable type: '%s'", py_type_name(oid));
        raise_exc(v, "TypeError", msg, frame_link_node);
        return NULL;
    }
    json_t *onode = json_is_string(oid) ? json_object_get(v->prompt, json_string_value(oid)) : NULL;
    if (onode == NULL) {
        raise_exc(v, "KeyError", py_text(oid, true, tmp, sizeof(tmp)), frame_link_node);
        return NULL;
    }
    const struct sim_node_class *oc =
        sim_nodes_find(v->nodes, json_string_value(json_object_get(onode, "class_type")));
    json_t *outs = sim_node_outputs(oc);
    if (!json_is_integer(slot) && !json_is_boolean(slot)) {
        snprintf(msg, sizeof(msg), "tuple indices must be integers or slices, not %s",
                 py_type_name(slot));
        raise_exc(v, "TypeError", msg, frame_link_slot);
        return NULL;
    }
    json_int_t i = json_is_boolean(slot) ? json_is_true(slot) : json_integer_value(slot);
    json_int_t n = (json_int_t)json_array_size(outs);
    if (i < 0)
        i += n; /* Python indexing from the end */
    if (i < 0 || i >= n) {
        raise_exc(v, "IndexError", "tuple index out of range", frame_link_slot);
        return NULL;
    }
    return json_array_get(outs, (size_t)i);
}

static int inner_exception(struct vctx *v, const char *x, const json_t *spec, json_t *val,
                           const char *oid)
{
    json_t *tb = take_traceback(v, frame_inner);
    json_t *info = json_pack("{s:s, s:o, s:s, s:s, s:o, s:O}", "input_name", x, "input_config",
                             input_config(spec), "exception_message", v->exc_msg, "exception_type",
                             v->exc_type, "traceback", tb, "linked_node", val);
    json_t *reasons =
        json_pack("[o]", mk_error("exception_during_inner_validation",
                                  "Exception when validating inner node", v->exc_msg, info));
    if (reasons == NULL)
        return SIM_VALIDATE_ENOMEM;
    return json_object_set_new(v->validated, oid, json_pack("[bo]", 0, reasons)) == 0
               ? SIM_VALIDATE_OK
               : SIM_VALIDATE_ENOMEM;
}

/* A linked input: shape, type agreement, then the linked node itself. */
static int check_link(struct vctx *v, const char *x, const json_t *spec, json_t *val,
                      json_t *errors, bool *valid)
{
    char rs[MSG_MAX], ws[MSG_MAX], details[2 * MSG_MAX + 128];
    if (json_array_size(val) != 2) {
        json_t *info = json_pack("{s:s, s:o, s:O}", "input_name", x, "input_config",
                                 input_config(spec), "received_value", val);
        return append_error(errors, mk_error("bad_linked_input",
                                             "Bad linked input, must be a length-2 list of "
                                             "[node_id, slot_index]",
                                             x, info));
    }
    json_t *oid = json_array_get(val, 0);
    const json_t *received = linked_type(v, oid, json_array_get(val, 1));
    if (received == NULL)
        return SIM_VALIDATE_OK; /* raised: the caller reports it */
    if (!types_match(received, json_array_get(spec, 0))) {
        snprintf(details, sizeof(details), "%s, received_type(%s) mismatch input_type(%s)", x,
                 py_text(received, false, rs, sizeof(rs)),
                 py_text(json_array_get(spec, 0), false, ws, sizeof(ws)));
        json_t *info = json_pack("{s:s, s:o, s:O, s:O}", "input_name", x, "input_config",
                                 input_config(spec), "received_type", received, "linked_node", val);
        return append_error(errors,
                            mk_error("return_type_mismatch",
                                     "Return type mismatch between linked nodes", details, info));
    }
    bool linked_valid = true;
    v->depth++;
    int rc = validate_inputs(v, json_string_value(oid), &linked_valid);
    v->depth--;
    if (rc != SIM_VALIDATE_OK)
        return rc;
    if (v->raised) {
        *valid = false;
        return inner_exception(v, x, spec, val, json_string_value(oid));
    }
    if (!linked_valid)
        *valid = false;
    return SIM_VALIDATE_OK;
}

/* LoadImage.VALIDATE_INPUTS(image): the annotated file must exist. */
static int check_file_input(struct vctx *v, const struct sim_node_class *c, json_t *inputs,
                            json_t *errors)
{
    char msg[MSG_MAX], rel[SIM_PATH_MAX];
    json_t *image = json_object_get(inputs, "image");
    enum sim_dir dir;
    if (image == NULL) {
        snprintf(msg, sizeof(msg),
                 "%s.VALIDATE_INPUTS() missing 1 required positional argument: 'image'", c->name);
        return raise_exc(v, "TypeError", msg, frame_custom);
    }
    if (!json_is_string(image)) {
        /* A link reads as None here; any non-string fails on name.endswith(). */
        snprintf(msg, sizeof(msg), "'%s' object has no attribute 'endswith'",
                 json_is_array(image) ? "NoneType" : py_type_name(image));
        return raise_exc(v, "AttributeError", msg, frame_custom);
    }
    const char *name = json_string_value(image);
    bool exists = sim_fs_annotated(name, &dir, rel, sizeof(rel)) && v->fs != NULL &&
                  v->fs->ops != NULL && v->fs->ops->exists(v->fs->ctx, dir, rel) == 0;
    if (exists)
        return SIM_VALIDATE_OK;
    snprintf(msg, sizeof(msg), "image - Invalid image file: %s", name);
    return append_error(errors,
                        mk_error("custom_validation_failed", "Custom validation failed for node",
                                 msg, json_pack("{s:s}", "input_name", "image")));
}

static int check_inputs(struct vctx *v, const struct sim_node_class *c, json_t *inputs,
                        json_t *errors, bool *valid)
{
    static const char *const cats[2] = {"required", "optional"};
    json_t *declared = json_object_get(c->info, "input");
    for (int k = 0; k < 2; k++) {
        const char *x;
        json_t *spec;
        json_object_foreach(json_object_get(declared, cats[k]), x, spec)
        {
            json_t *val = json_object_get(inputs, x);
            int rc = SIM_VALIDATE_OK;
            if (val == NULL && k == 0)
                rc = append_error(errors,
                                  mk_error("required_input_missing", "Required input is missing", x,
                                           json_pack("{s:s}", "input_name", x)));
            else if (json_is_array(val))
                rc = check_link(v, x, spec, val, errors, valid);
            else if (val != NULL)
                rc = check_widget(c, inputs, x, spec, errors);
            if (rc != SIM_VALIDATE_OK || v->raised)
                return rc;
        }
    }
    if (c->flags & SIM_NODE_F_FILE_INPUT)
        return check_file_input(v, c, inputs, errors);
    return SIM_VALIDATE_OK;
}

static int validate_inputs(struct vctx *v, const char *id, bool *valid_out)
{
    json_t *done = json_object_get(v->validated, id);
    if (done != NULL) {
        *valid_out = json_is_true(json_array_get(done, 0));
        return SIM_VALIDATE_OK;
    }
    if (v->depth >= SIM_VALIDATE_DEPTH_MAX)
        return raise_exc(v, "RecursionError", "maximum recursion depth exceeded", frame_recursion);
    json_t *node = json_object_get(v->prompt, id);
    json_t *inputs = json_object_get(node, "inputs");
    if (inputs == NULL)
        return raise_exc(v, "KeyError", "'inputs'", frame_inputs);
    json_t *owned = json_is_object(inputs) ? NULL : json_object();
    const struct sim_node_class *c =
        sim_nodes_find(v->nodes, json_string_value(json_object_get(node, "class_type")));
    json_t *errors = json_array();
    bool valid = true;
    int rc = errors != NULL ? check_inputs(v, c, owned != NULL ? owned : inputs, errors, &valid)
                            : SIM_VALIDATE_ENOMEM;
    json_decref(owned);
    if (rc != SIM_VALIDATE_OK || v->raised) {
        json_decref(errors);
        return rc;
    }
    *valid_out = valid && json_array_size(errors) == 0;
    json_t *ret = json_pack("[bo]", *valid_out, errors);
    if (ret == NULL || json_object_set_new(v->validated, id, ret) != 0)
        return SIM_VALIDATE_ENOMEM;
    return SIM_VALIDATE_OK;
}

static bool in_targets(const json_t *targets, const char *id)
{
    if (!json_is_array(targets))
        return true;
    for (size_t i = 0; i < json_array_size(targets); i++) {
        if (json_is_string(json_array_get(targets, i)) &&
            strcmp(json_string_value(json_array_get(targets, i)), id) == 0)
            return true;
    }
    return false;
}

static json_t *invalid_prompt(const char *message, const char *id)
{
    char details[SIM_PATH_MAX];
    snprintf(details, sizeof(details), "Node ID '#%s'", id);
    return mk_error("invalid_prompt", message, details, NULL);
}

/* First pass of validate_prompt: every node's class must exist; collects the outputs. */
static int find_outputs(struct vctx *v, const json_t *targets, json_t *outputs, json_t **error)
{
    char ct[MSG_MAX], msg[MSG_MAX + 64];
    const char *id;
    json_t *node;
    json_object_foreach(v->prompt, id, node)
    {
        json_t *cls = json_object_get(node, "class_type");
        if (!json_is_object(node) && !json_is_string(node) && !json_is_array(node))
            return SIM_VALIDATE_EPYTHON; /* `'class_type' not in 5` raises TypeError */
        if (cls == NULL) {
            *error = invalid_prompt(
                "Cannot execute because a node is missing the class_type property.", id);
            return *error != NULL ? SIM_VALIDATE_OK : SIM_VALIDATE_ENOMEM;
        }
        if (json_is_array(cls) || json_is_object(cls))
            return SIM_VALIDATE_EPYTHON; /* unhashable dict key */
        const struct sim_node_class *c =
            json_is_string(cls) ? sim_nodes_find(v->nodes, json_string_value(cls)) : NULL;
        if (c == NULL) {
            snprintf(msg, sizeof(msg), "Cannot execute because node %s does not exist.",
                     py_text(cls, false, ct, sizeof(ct)));
            *error = invalid_prompt(msg, id);
            return *error != NULL ? SIM_VALIDATE_OK : SIM_VALIDATE_ENOMEM;
        }
        if (sim_node_is_output(c) && in_targets(targets, id) &&
            json_array_append_new(outputs, json_string(id)) != 0)
            return SIM_VALIDATE_ENOMEM;
    }
    return SIM_VALIDATE_OK;
}

/* Every validated node with its own errors is reported against the failed output o. */
static int add_node_errors(struct vctx *v, const char *o, json_t *node_errors)
{
    const char *id;
    json_t *res;
    json_object_foreach(v->validated, id, res)
    {
        json_t *reasons = json_array_get(res, 1);
        if (json_is_true(json_array_get(res, 0)) || json_array_size(reasons) == 0)
            continue;
        json_t *entry = json_object_get(node_errors, id);
        if (entry == NULL) {
            json_t *cls = json_object_get(json_object_get(v->prompt, id), "class_type");
            entry = json_pack("{s:O, s:[], s:O}", "errors", reasons, "dependent_outputs",
                              "class_type", cls);
            if (entry == NULL || json_object_set_new(node_errors, id, entry) != 0)
                return SIM_VALIDATE_ENOMEM;
        }
        if (json_array_append_new(json_object_get(entry, "dependent_outputs"), json_string(o)))
            return SIM_VALIDATE_ENOMEM;
    }
    return SIM_VALIDATE_OK;
}

/* validate_inputs for one output, turning an escaped exception into its error entry. */
static int validate_output(struct vctx *v, const char *o, bool *valid, json_t **reasons)
{
    int rc = validate_inputs(v, o, valid);
    if (rc != SIM_VALIDATE_OK)
        return rc;
    if (v->raised) {
        json_t *tb = take_traceback(v, frame_prompt);
        json_t *info = json_pack("{s:s, s:o}", "exception_type", v->exc_type, "traceback", tb);
        json_t *r = json_pack("[o]", mk_error("exception_during_validation",
                                              "Exception when validating node", v->exc_msg, info));
        if (r == NULL || json_object_set_new(v->validated, o, json_pack("[bo]", 0, r)) != 0)
            return SIM_VALIDATE_ENOMEM;
        *valid = false;
    }
    *reasons = json_array_get(json_object_get(v->validated, o), 1);
    return SIM_VALIDATE_OK;
}

static int validate_outputs(struct vctx *v, const json_t *outputs, struct sim_validate_result *res,
                            struct sim_buf *details)
{
    for (size_t i = 0; i < json_array_size(outputs); i++) {
        const char *o = json_string_value(json_array_get(outputs, i));
        bool valid = false;
        json_t *reasons = NULL;
        int rc = validate_output(v, o, &valid, &reasons);
        if (rc != SIM_VALIDATE_OK)
            return rc;
        if (valid) {
            if (json_array_append_new(res->outputs, json_string(o)) != 0)
                return SIM_VALIDATE_ENOMEM;
            continue;
        }
        for (size_t k = 0; k < json_array_size(reasons); k++) {
            json_t *r = json_array_get(reasons, k);
            if (details->len > 0)
                sim_buf_putc(details, '\n');
            sim_buf_printf(details, "%s: %s", json_string_value(json_object_get(r, "message")),
                           json_string_value(json_object_get(r, "details")));
        }
        rc = add_node_errors(v, o, res->node_errors);
        if (rc != SIM_VALIDATE_OK)
            return rc;
    }
    return details->err == 0 ? SIM_VALIDATE_OK : SIM_VALIDATE_ENOMEM;
}

static int validate_graph(struct vctx *v, const json_t *targets, struct sim_validate_result *res)
{
    json_t *outputs = json_array();
    struct sim_buf details;
    sim_buf_init(&details, 1u << 20);
    int rc = outputs != NULL ? find_outputs(v, targets, outputs, &res->error) : SIM_VALIDATE_ENOMEM;
    if (rc == SIM_VALIDATE_OK && res->error == NULL && json_array_size(outputs) == 0)
        res->error = mk_error("prompt_no_outputs", "Prompt has no outputs", "", NULL);
    if (rc == SIM_VALIDATE_OK && res->error == NULL)
        rc = validate_outputs(v, outputs, res, &details);
    if (rc == SIM_VALIDATE_OK && res->error == NULL && json_array_size(res->outputs) == 0)
        res->error =
            mk_error("prompt_outputs_failed_validation", "Prompt outputs failed validation",
                     details.len > 0 ? (const char *)details.data : "", NULL);
    res->ok = rc == SIM_VALIDATE_OK && res->error == NULL;
    sim_buf_free(&details);
    json_decref(outputs);
    return rc;
}

int sim_validate_prompt(const struct sim_nodes *nodes, const struct sim_fs *fs, json_t *prompt,
                        const json_t *partial_targets, struct sim_validate_result *res)
{
    memset(res, 0, sizeof(*res));
    bool empty_seq = (json_is_string(prompt) && json_string_length(prompt) == 0) ||
                     (json_is_array(prompt) && json_array_size(prompt) == 0);
    if (!json_is_object(prompt) && !empty_seq)
        return SIM_VALIDATE_EPYTHON;
    if (json_is_object(prompt) && json_object_size(prompt) > SIM_PROMPT_NODES_MAX)
        return SIM_VALIDATE_ETOOBIG;
    struct vctx v = {.nodes = nodes, .fs = fs, .prompt = empty_seq ? NULL : prompt};
    v.validated = json_object();
    res->node_errors = json_object();
    res->outputs = json_array();
    int rc = SIM_VALIDATE_ENOMEM;
    if (v.validated != NULL && res->node_errors != NULL && res->outputs != NULL)
        rc = validate_graph(&v, partial_targets, res);
    json_decref(v.validated);
    if (rc != SIM_VALIDATE_OK)
        sim_validate_result_free(res);
    return rc;
}

void sim_validate_result_free(struct sim_validate_result *res)
{
    json_decref(res->error);
    json_decref(res->node_errors);
    json_decref(res->outputs);
    memset(res, 0, sizeof(*res));
}

json_t *sim_validate_error_body(const struct sim_validate_result *res)
{
    return json_pack("{s:O, s:O}", "error", res->error, "node_errors", res->node_errors);
}

json_t *sim_validate_no_prompt_body(void)
{
    return json_pack("{s:o, s:{}}", "error",
                     mk_error("no_prompt", "No prompt provided", "No prompt provided", NULL),
                     "node_errors");
}
