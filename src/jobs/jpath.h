/* jpath — JSON pointers (RFC 6901) built while walking a document, to label errors. A pointer
 * that does not fit is cut at a character boundary: it only names a place, and it goes into
 * JSON error bodies, which must stay valid UTF-8. */
#ifndef COMFYGATE_JPATH_H
#define COMFYGATE_JPATH_H

#include <stddef.h>

#define JPATH_MAX 256

struct jpath {
    char buf[JPATH_MAX];
    size_t len;
};

/* Appends "/" and the escaped key (~0, ~1); returns the length to restore with jpath_pop. */
size_t jpath_push(struct jpath *p, const char *key, size_t klen);
size_t jpath_push_index(struct jpath *p, size_t i);
void jpath_pop(struct jpath *p, size_t old);
/* Drops a trailing partial UTF-8 sequence left by truncation. */
void jpath_utf8_trim(char *s);

#endif
