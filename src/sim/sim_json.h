/*
 * sim_json — JSON text exactly as CPython writes it.
 *
 * ComfyUI answers with `json.dumps(obj)` (aiohttp's json_response and the WebSocket sender),
 * so a client that compares bytes — or a gateway that measures Content-Length — sees
 * ", " / ": " separators, `ensure_ascii` escapes in lowercase hex and floats printed with
 * the shortest round-trip repr (0.1, not jansson's 0.10000000000000001). Error messages also
 * embed Python `str()`/`repr()` of values ("['a', 'b']", "{'1': {...}}"), produced here too.
 *
 * jansson cannot hold integers above INT64_MAX (KSampler's seed max is 2^64-1), so such
 * numbers are carried as "raw numbers": a jansson string with a private NUL prefix that only
 * this module prints (as the bare digits) and reads back (sim_json_number).
 */
#ifndef SIM_JSON_H
#define SIM_JSON_H

#include <jansson.h>
#include <stdbool.h>

#include "sim/sim_buf.h"

/* Nesting deeper than this is refused (the dumpers recurse). */
#define SIM_JSON_MAX_DEPTH 256

/* json.loads for request bodies: like json_loadb, but integers beyond int64 (which Python
 * accepts) become raw numbers instead of failing the whole document. New ref or NULL. */
json_t *sim_json_loads(const char *text, size_t len, size_t max_len, json_error_t *err);
/* Appends json.dumps(v) to out; returns 0 or a sim_buf error / -EINVAL for bad input. */
int sim_json_dump(const json_t *v, struct sim_buf *out);
/* json.dumps(v) as a malloc'd NUL-terminated string of at most max bytes, or NULL. */
char *sim_json_dumps(const json_t *v, size_t max);
/* Python repr(v) of the value json.loads would give (dict/list/str/int/float/True/None). */
int sim_json_repr(const json_t *v, struct sim_buf *out);
/* Python str(v): like repr, except a top-level string is written bare. */
int sim_json_str(const json_t *v, struct sim_buf *out);
/* Python repr(str) of a UTF-8 string. */
void sim_json_repr_string(const char *s, size_t len, struct sim_buf *out);
/* Python repr(float) (shortest round-trip); out needs 32 bytes. */
void sim_json_float_repr(double d, char *out);
/* A number jansson cannot represent, given as its decimal digits. */
json_t *sim_json_rawnum(const char *digits);
bool sim_json_is_rawnum(const json_t *v);
/* Numeric value of an integer, real or raw number; false if v is none of those. */
bool sim_json_number(const json_t *v, double *out);
/* Python int(str) (base 10: spaces, sign, "_" between digits); false if Python would raise. */
bool sim_json_py_int(const char *s, long long *out);
/* Python float(str) ("1e5", " 2.5 ", "inf", "1_0.5"); false if Python would raise. */
bool sim_json_py_float(const char *s, double *out);

#endif
