/* keymap — see keymap.h. */
#include "jobs/keymap.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static size_t hash_str(const char *s)
{
    size_t h = 1469598103934665603ull;
    while (*s)
        h = (h ^ (unsigned char)*s++) * 1099511628211ull;
    return h;
}

int keymap_init(struct keymap *m, size_t max)
{
    memset(m, 0, sizeof(*m));
    m->max = max;
    m->nbuckets = 1024;
    m->buckets = calloc(m->nbuckets, sizeof(*m->buckets));
    return m->buckets ? 0 : -ENOMEM;
}

void keymap_free(struct keymap *m)
{
    for (size_t i = 0; i < m->nbuckets; i++) {
        for (struct keymap_entry *e = m->buckets[i], *n; e; e = n) {
            n = e->next;
            free(e->key);
            free(e);
        }
    }
    free(m->buckets);
    memset(m, 0, sizeof(*m));
}

static void unlink_entry(struct keymap *m, struct keymap_entry **pp)
{
    struct keymap_entry *e = *pp;
    *pp = e->next;
    free(e->key);
    free(e);
    m->n--;
}

static int grow(struct keymap *m)
{
    size_t nb = m->nbuckets * 2;
    struct keymap_entry **b = calloc(nb, sizeof(*b));
    if (!b)
        return -ENOMEM;
    for (size_t i = 0; i < m->nbuckets; i++) {
        for (struct keymap_entry *e = m->buckets[i], *n; e; e = n) {
            n = e->next;
            size_t k = hash_str(e->key) & (nb - 1);
            e->next = b[k];
            b[k] = e;
        }
    }
    free(m->buckets);
    m->buckets = b;
    m->nbuckets = nb;
    return 0;
}

/* Full: drop the entry that expires first (a linear scan, only when at the bound). */
static void evict_one(struct keymap *m)
{
    struct keymap_entry **victim = NULL;
    for (size_t i = 0; i < m->nbuckets; i++) {
        for (struct keymap_entry **pp = &m->buckets[i]; *pp; pp = &(*pp)->next) {
            if (!victim || (*pp)->expires_ms < (*victim)->expires_ms)
                victim = pp;
        }
    }
    if (victim)
        unlink_entry(m, victim);
}

int keymap_put(struct keymap *m, const char *key, const char *job_id, const char *hash,
               int64_t expires_ms)
{
    keymap_del(m, key);
    if (m->n >= m->max)
        evict_one(m);
    if (m->n >= m->nbuckets && grow(m) < 0)
        return -ENOMEM;
    struct keymap_entry *e = calloc(1, sizeof(*e));
    if (!e || !(e->key = strdup(key))) {
        free(e);
        return -ENOMEM;
    }
    snprintf(e->job_id, sizeof(e->job_id), "%s", job_id);
    snprintf(e->hash, sizeof(e->hash), "%s", hash ? hash : "");
    e->expires_ms = expires_ms;
    size_t k = hash_str(key) & (m->nbuckets - 1);
    e->next = m->buckets[k];
    m->buckets[k] = e;
    m->n++;
    return 0;
}

struct keymap_entry *keymap_get(struct keymap *m, const char *key, int64_t now_ms)
{
    for (struct keymap_entry **pp = &m->buckets[hash_str(key) & (m->nbuckets - 1)]; *pp;
         pp = &(*pp)->next) {
        if (strcmp((*pp)->key, key) != 0)
            continue;
        if ((*pp)->expires_ms <= now_ms) {
            unlink_entry(m, pp);
            return NULL;
        }
        return *pp;
    }
    return NULL;
}

void keymap_del(struct keymap *m, const char *key)
{
    for (struct keymap_entry **pp = &m->buckets[hash_str(key) & (m->nbuckets - 1)]; *pp;
         pp = &(*pp)->next) {
        if (!strcmp((*pp)->key, key)) {
            unlink_entry(m, pp);
            return;
        }
    }
}

size_t keymap_sweep(struct keymap *m, int64_t now_ms)
{
    size_t n = 0;
    for (size_t i = 0; i < m->nbuckets; i++) {
        for (struct keymap_entry **pp = &m->buckets[i]; *pp;) {
            if ((*pp)->expires_ms <= now_ms) {
                unlink_entry(m, pp);
                n++;
            } else {
                pp = &(*pp)->next;
            }
        }
    }
    return n;
}
