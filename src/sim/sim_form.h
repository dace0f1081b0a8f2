/*
 * sim_form — multipart/form-data bodies (POST /upload/image, /upload/mask), I/O-less.
 *
 * Fields point into the body the caller keeps alive; nothing is copied. At most `max` fields
 * are returned; a body with more, a missing boundary or a part without its closing delimiter
 * is refused as malformed (the server answers 400 like aiohttp would fail the read).
 */
#ifndef SIM_FORM_H
#define SIM_FORM_H

#include <stdbool.h>
#include <stddef.h>

#define SIM_FORM_FIELDS_MAX 16
#define SIM_FORM_NAME_MAX 256

struct sim_form_field {
    char name[SIM_FORM_NAME_MAX];
    char filename[SIM_FORM_NAME_MAX]; /* "" unless the part carried filename= */
    bool has_filename;
    const char *data; /* the part's bytes, inside the body */
    size_t len;
};

enum sim_form_err {
    SIM_FORM_OK = 0,
    SIM_FORM_EBOUNDARY = -1, /* Content-Type is not multipart/form-data with a boundary */
    SIM_FORM_EMALFORMED = -2,
    SIM_FORM_ETOOMANY = -3,
};

int sim_form_parse(const char *content_type, size_t ctype_len, const char *body, size_t len,
                   struct sim_form_field *fields, size_t max, size_t *n);
/* The first field called name, or NULL. */
const struct sim_form_field *sim_form_get(const struct sim_form_field *fields, size_t n,
                                          const char *name);

#endif
