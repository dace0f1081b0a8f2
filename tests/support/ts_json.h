/* ts_json — checks of the gateway's JSON bodies (jansson). */
#ifndef COMFYGATE_TS_JSON_H
#define COMFYGATE_TS_JSON_H

#include <stddef.h>

/* Checks body is exactly {"error":{"code":code,"message":<non-empty string>,
 * "requestId":request_id}} (request_id NULL: any non-empty string). Records failures with the
 * caller's file and line; returns 0 when the shape is right. */
int ts_check_error_json_at(const char *file, int line, const char *body, size_t len,
                           const char *code, const char *request_id);
#define ts_check_error_json(body, len, code, rid)                                                  \
    ts_check_error_json_at(__FILE__, __LINE__, (body), (len), (code), (rid))

#endif
