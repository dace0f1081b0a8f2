/* webhook_index — the delivery engine's two bounded containers: a string-keyed map (jobs by
 * id, hosts by origin) and a min-heap of deliveries by due time. Intrusive: the nodes live in
 * the structs they index, so neither allocates after it is set up. */
#ifndef COMFYGATE_WEBHOOK_INDEX_H
#define COMFYGATE_WEBHOOK_INDEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct wh_map_node {
    struct wh_map_node *next;
    const char *key; /* owned by the struct holding the node */
};

/* Chained, with a fixed number of buckets chosen from the expected maximum (the containers it
 * serves are bounded, so it never grows). */
struct wh_map {
    struct wh_map_node **buckets;
    size_t mask;
    size_t n;
};

int wh_map_init(struct wh_map *m, size_t expected);
void wh_map_fini(struct wh_map *m);
struct wh_map_node *wh_map_get(const struct wh_map *m, const char *key);
/* The key must not be present. */
void wh_map_put(struct wh_map *m, struct wh_map_node *n);
void wh_map_del(struct wh_map *m, struct wh_map_node *n);

struct wh_heap_node {
    uint64_t due_ns;
    size_t idx; /* 0: not in the heap; otherwise position + 1 */
};

struct wh_heap {
    struct wh_heap_node **a;
    size_t len;
    size_t cap;
};

/* cap: the most nodes it will ever hold. */
int wh_heap_init(struct wh_heap *h, size_t cap);
void wh_heap_fini(struct wh_heap *h);
/* -ENOSPC when full. */
int wh_heap_push(struct wh_heap *h, struct wh_heap_node *n);
void wh_heap_remove(struct wh_heap *h, struct wh_heap_node *n);
static inline struct wh_heap_node *wh_heap_top(const struct wh_heap *h)
{
    return h->len ? h->a[0] : NULL;
}

#endif
