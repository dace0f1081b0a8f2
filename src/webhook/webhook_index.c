/* webhook_index — see webhook_index.h. */
#include "webhook/webhook_index.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static uint64_t fnv1a(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
    return h;
}

int wh_map_init(struct wh_map *m, size_t expected)
{
    size_t nb = 64;
    while (nb < expected && nb < (1u << 20)) /* past a million buckets chains just get longer */
        nb *= 2;
    m->buckets = calloc(nb, sizeof(*m->buckets));
    m->mask = nb - 1;
    m->n = 0;
    return m->buckets ? 0 : -ENOMEM;
}

void wh_map_fini(struct wh_map *m)
{
    free(m->buckets);
    m->buckets = NULL;
}

struct wh_map_node *wh_map_get(const struct wh_map *m, const char *key)
{
    struct wh_map_node *n = m->buckets[fnv1a(key) & m->mask];
    while (n && strcmp(n->key, key) != 0)
        n = n->next;
    return n;
}

void wh_map_put(struct wh_map *m, struct wh_map_node *n)
{
    struct wh_map_node **b = &m->buckets[fnv1a(n->key) & m->mask];
    n->next = *b;
    *b = n;
    m->n++;
}

void wh_map_del(struct wh_map *m, struct wh_map_node *n)
{
    struct wh_map_node **p = &m->buckets[fnv1a(n->key) & m->mask];
    while (*p && *p != n)
        p = &(*p)->next;
    if (*p) {
        *p = n->next;
        m->n--;
    }
    n->next = NULL;
}

int wh_heap_init(struct wh_heap *h, size_t cap)
{
    h->a = calloc(cap ? cap : 1, sizeof(*h->a));
    h->len = 0;
    h->cap = cap ? cap : 1;
    return h->a ? 0 : -ENOMEM;
}

void wh_heap_fini(struct wh_heap *h)
{
    free(h->a);
    h->a = NULL;
}

static void place(struct wh_heap *h, size_t i, struct wh_heap_node *n)
{
    h->a[i] = n;
    n->idx = i + 1;
}

static void sift_up(struct wh_heap *h, size_t i)
{
    struct wh_heap_node *n = h->a[i];
    while (i > 0 && h->a[(i - 1) / 2]->due_ns > n->due_ns) {
        place(h, i, h->a[(i - 1) / 2]);
        i = (i - 1) / 2;
    }
    place(h, i, n);
}

static void sift_down(struct wh_heap *h, size_t i)
{
    struct wh_heap_node *n = h->a[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= h->len)
            break;
        if (c + 1 < h->len && h->a[c + 1]->due_ns < h->a[c]->due_ns)
            c++;
        if (h->a[c]->due_ns >= n->due_ns)
            break;
        place(h, i, h->a[c]);
        i = c;
    }
    place(h, i, n);
}

int wh_heap_push(struct wh_heap *h, struct wh_heap_node *n)
{
    if (h->len == h->cap)
        return -ENOSPC;
    h->a[h->len] = n;
    sift_up(h, h->len++);
    return 0;
}

void wh_heap_remove(struct wh_heap *h, struct wh_heap_node *n)
{
    if (!n->idx)
        return;
    size_t i = n->idx - 1;
    n->idx = 0;
    struct wh_heap_node *last = h->a[--h->len];
    if (i == h->len)
        return;
    h->a[i] = last;
    sift_down(h, i);
    sift_up(h, last->idx - 1);
}
