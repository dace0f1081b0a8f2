/* keymap — string key → job id, with expiry and a bound; used for idempotency keys (24 h) and
 * the result cache (CACHE_TTL_SECONDS). Lives on the dispatcher; the store keeps a copy so a
 * restart loses neither. When full, the entry closest to expiry is dropped. */
#ifndef COMFYGATE_KEYMAP_H
#define COMFYGATE_KEYMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct keymap_entry {
    struct keymap_entry *next;
    char *key;
    char job_id[37];
    char hash[65]; /* idempotency: SHA-256 of the request body */
    int64_t expires_ms;
};

struct keymap {
    struct keymap_entry **buckets;
    size_t nbuckets, n, max;
};

int keymap_init(struct keymap *m, size_t max);
void keymap_free(struct keymap *m);
/* Inserts or replaces. */
int keymap_put(struct keymap *m, const char *key, const char *job_id, const char *hash,
               int64_t expires_ms);
/* The live entry for key (an expired one is removed and NULL returned). */
struct keymap_entry *keymap_get(struct keymap *m, const char *key, int64_t now_ms);
void keymap_del(struct keymap *m, const char *key);
/* Removes expired entries; returns how many. */
size_t keymap_sweep(struct keymap *m, int64_t now_ms);

#endif
