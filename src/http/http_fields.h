/* http_fields — reading a parsed request's fields: headers by name (and how often one was
 * sent), query parameters, and the percent-decoding the parser also uses for the path. Pure
 * functions of the request; no state. */
#ifndef COMFYGATE_HTTP_FIELDS_H
#define COMFYGATE_HTTP_FIELDS_H

#include <stdbool.h>
#include <stddef.h>

struct http_request;

/* Case-insensitive header lookup; the first match, or NULL. */
const char *http_header_get(const struct http_request *r, const char *name, size_t *len);
/* How many times the header `name` (any case) was sent. */
unsigned http_header_count(const struct http_request *r, const char *name);
/* Value of `key` in the query string, percent-decoded into dst; returns its length, -1 if the
 * key is absent, or -2 (dst "") if it is there but does not decode or does not fit in cap. */
int http_query_get(const struct http_request *r, const char *key, char *dst, size_t cap);
/* Percent-decodes src into dst (cap bytes incl. NUL); '+' stays '+' unless plus_space.
 * Returns the length, or -1 on a bad escape, an embedded NUL or overflow. */
int http_pct_decode(const char *src, size_t n, char *dst, size_t cap, bool plus_space);

#endif
