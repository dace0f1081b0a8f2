/* http_file — the pure parts of file responses: content types, Range, ETag, safe paths.
 * (The response itself is http_respond_file in http_server.h.) */
#ifndef COMFYGATE_HTTP_FILE_H
#define COMFYGATE_HTTP_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Content-Type from the file name's extension; application/octet-stream if unknown. */
const char *http_file_mime(const char *name);

enum http_range_result {
    HTTP_RANGE_NONE = 0,          /* no usable Range: send the whole file (200) */
    HTTP_RANGE_OK = 1,            /* one satisfiable range: 206 */
    HTTP_RANGE_UNSATISFIABLE = 2, /* 416 */
};
/* Parses a Range header value for a file of `size` bytes. Only single byte ranges are served;
 * multiple ranges or other units fall back to the whole file, as RFC 9110 allows. */
enum http_range_result http_range_parse(const char *v, size_t n, uint64_t size, uint64_t *first,
                                        uint64_t *last);

/* Strong validator from size, mtime and inode: "\"<hex>-<hex>-<hex>\"". */
void http_etag(char *dst, size_t cap, uint64_t size, uint64_t mtime_ns, uint64_t ino);
/* True if an If-None-Match value matches etag (handles lists, W/ and *). */
bool http_etag_match(const char *inm, size_t n, const char *etag);

/* A relative path that may be opened under a root: not empty, not absolute, no "." or ".."
 * segment, no empty segment, no NUL or backslash. */
bool http_path_safe(const char *rel);

#endif
