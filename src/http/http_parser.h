/* http_parser — an I/O-less HTTP/1.1 request parser: llhttp plus our limits and rules.
 *
 * Bytes go in with http_parser_feed(); it stops after each complete request (so pipelined
 * requests are answered one at a time, in order) and reports what the caller must do next.
 * It owns the storage of the current request (target, headers, body), which stays valid until
 * http_parser_next(). Every limit is enforced while bytes arrive, before anything is buffered
 * past it, and each failure carries the HTTP status to answer with. This is the surface the
 * fuzzer drives. */
#ifndef COMFYGATE_HTTP_PARSER_H
#define COMFYGATE_HTTP_PARSER_H

#include <llhttp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

struct http_limits {
    size_t max_url;          /* request-target bytes (414) */
    size_t max_header_bytes; /* all header names + values (431) */
    size_t max_headers;      /* header count (431) */
    size_t max_body;         /* decoded body bytes (413) */
};

struct http_header {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
};

struct http_request {
    int method; /* llhttp_method_t */
    const char *method_name;
    int http_major, http_minor;
    const char *target; /* raw request-target */
    size_t target_len;
    const char *path; /* percent-decoded path, NUL-terminated */
    size_t path_len;
    const char *query; /* raw query string after '?', "" if none */
    size_t query_len;
    const struct http_header *headers;
    unsigned nheaders;
    const char *body; /* NUL-terminated */
    size_t body_len;
    bool keep_alive;
    bool expect_continue;
    bool upgrade;
};

enum http_parse_status {
    HTTP_PARSE_MORE,     /* all input consumed, request not complete yet */
    HTTP_PARSE_CONTINUE, /* headers done and the client expects "100 Continue" now */
    HTTP_PARSE_DONE,     /* one request complete; the rest of the input is not consumed */
    HTTP_PARSE_UPGRADE,  /* request complete and asks for a protocol upgrade */
    HTTP_PARSE_ERROR,    /* answer err_status and close the connection */
};

struct hdr_span;

struct http_parser {
    llhttp_t ll;
    const struct http_limits *lim;
    struct buf head; /* target + header names and values, each NUL-terminated */
    struct buf body;
    struct buf path; /* decoded path */
    struct hdr_span *spans;
    struct http_header *headers;
    unsigned nheaders;
    size_t header_bytes;
    size_t target_off, target_len;
    bool in_value;
    bool began;    /* the current message has started (first byte seen) */
    bool headers_done;
    bool paused;
    bool upgrade_paused;
    const char *fold_scan; /* obs-fold check: raw input looked at up to here (this feed) */
    bool fold_lf;          /* obs-fold check: the last raw header byte looked at was a LF */
    const char *feed_end;  /* end of the input of the current feed */
    unsigned crlf_left;    /* bytes of the CR LF after chunk data still to be checked */
    struct http_request req;
    int err_status;       /* 4xx/5xx to answer with on HTTP_PARSE_ERROR */
    const char *err_code; /* API error code, e.g. "HEADERS_TOO_LARGE" */
    const char *err_msg;
};

int http_parser_init(struct http_parser *p, const struct http_limits *lim);
void http_parser_free(struct http_parser *p);
enum http_parse_status http_parser_feed(struct http_parser *p, const char *data, size_t len,
                                        size_t *consumed);
/* Releases the finished request and gets ready for the next one on the connection. */
void http_parser_next(struct http_parser *p);
/* True once the first byte of a request has been seen (slowloris timer starts then). */
static inline bool http_parser_in_request(const struct http_parser *p)
{
    return p->began;
}

#include "http/http_fields.h" /* the request's headers and query, decoded */

#endif
