/* uuid — random (version 4) UUIDs, the ids of jobs and ComfyUI prompts, and the check that a
 * string is one (lowercase, as we write them), so that no other text can name a job. */
#ifndef COMFYGATE_UUID_H
#define COMFYGATE_UUID_H

#include <stdbool.h>

/* A fresh random UUID v4 into out (37 bytes with the NUL). */
void uuid4(char out[37]);
/* 36 characters: lowercase hex in 8-4-4-4-12 groups. */
bool uuid_valid(const char *s);

#endif
