/* jobtable — see jobtable.h. */
#include "jobs/jobtable.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static size_t hash_id(const char *s)
{
    size_t h = 1469598103934665603ull;
    while (*s)
        h = (h ^ (unsigned char)*s++) * 1099511628211ull;
    return h;
}

int jobtable_put(struct jobtable *t, struct job *j)
{
    if (t->njobs >= t->nbuckets) {
        size_t nb = t->nbuckets * 2;
        struct job **b = calloc(nb, sizeof(*b));
        if (!b)
            return -ENOMEM;
        for (size_t i = 0; i < t->nbuckets; i++) {
            for (struct job *x = t->buckets[i], *n; x; x = n) {
                n = x->hnext;
                size_t k = hash_id(x->id) & (nb - 1);
                x->hnext = b[k];
                b[k] = x;
            }
        }
        free(t->buckets);
        t->buckets = b;
        t->nbuckets = nb;
    }
    if (t->norder == t->order_cap) {
        size_t nc = t->order_cap ? t->order_cap * 2 : 1024;
        struct job **o = realloc(t->order, nc * sizeof(*o));
        if (!o)
            return -ENOMEM;
        t->order = o;
        t->order_cap = nc;
    }
    size_t k = hash_id(j->id) & (t->nbuckets - 1);
    j->hnext = t->buckets[k];
    t->buckets[k] = j;
    t->njobs++;
    t->order[t->norder++] = j;
    return 0;
}

struct job *jobtable_get(struct jobtable *t, const char *id)
{
    for (struct job *j = t->buckets[hash_id(id) & (t->nbuckets - 1)]; j; j = j->hnext) {
        if (!strcmp(j->id, id))
            return j;
    }
    return NULL;
}

static void unhash(struct jobtable *t, struct job *j)
{
    struct job **pp = &t->buckets[hash_id(j->id) & (t->nbuckets - 1)];
    while (*pp && *pp != j)
        pp = &(*pp)->hnext;
    if (*pp)
        *pp = j->hnext;
    t->njobs--;
}

void jobtable_forget(struct jobtable *t, struct job *j)
{
    unhash(t, j);
    for (size_t i = t->norder; i-- > 0;) { /* a refused submit: it is near the end */
        if (t->order[i] == j) {
            memmove(&t->order[i], &t->order[i + 1], (t->norder - i - 1) * sizeof(*t->order));
            t->norder--;
            break;
        }
    }
}

/* Drops the oldest finished jobs from memory past max_jobs_in_memory (they stay in the store).
 * Runs at every dispatch, so it must cost nothing below the bound; past it, one walk drops down
 * to 15/16 of the bound, so that walking every job happens once per max/16 new jobs, not once
 * per job. */
void jobtable_evict(struct jobtable *t, size_t max_in_memory)
{
    if (t->norder <= max_in_memory)
        return;
    size_t w = 0, drop = t->norder - max_in_memory + max_in_memory / 16;
    for (size_t i = 0; i < t->norder; i++) {
        struct job *j = t->order[i];
        if (drop && job_finished(j) && !j->persisting && !j->run) {
            unhash(t, j);
            job_free(j);
            drop--;
            continue;
        }
        t->order[w++] = j;
    }
    t->norder = w;
}


static bool before(const struct job *a, const struct job *b)
{
    return a->priority != b->priority ? a->priority > b->priority : a->seq < b->seq;
}

static void heap_set(struct jobtable *t, size_t i, struct job *j)
{
    t->heap[i] = j;
    j->heap_idx = i + 1;
}

static void heap_up(struct jobtable *t, size_t i)
{
    struct job *j = t->heap[i];
    while (i > 0 && before(j, t->heap[(i - 1) / 2])) {
        heap_set(t, i, t->heap[(i - 1) / 2]);
        i = (i - 1) / 2;
    }
    heap_set(t, i, j);
}

static void heap_down(struct jobtable *t, size_t i)
{
    struct job *j = t->heap[i];
    for (;;) {
        size_t l = 2 * i + 1, m = i;
        const struct job *best = j;
        if (l < t->heap_len && before(t->heap[l], best)) {
            m = l;
            best = t->heap[l];
        }
        if (l + 1 < t->heap_len && before(t->heap[l + 1], best))
            m = l + 1;
        if (m == i)
            break;
        heap_set(t, i, t->heap[m]);
        i = m;
    }
    heap_set(t, i, j);
}

int jobtable_push(struct jobtable *t, struct job *j)
{
    if (t->heap_len == t->heap_cap) {
        size_t nc = t->heap_cap ? t->heap_cap * 2 : 1024;
        struct job **h = realloc(t->heap, nc * sizeof(*h));
        if (!h)
            return -ENOMEM;
        t->heap = h;
        t->heap_cap = nc;
    }
    t->heap[t->heap_len++] = j;
    heap_up(t, t->heap_len - 1);
    return 0;
}

void jobtable_unqueue(struct jobtable *t, struct job *j)
{
    if (!j->heap_idx)
        return;
    size_t i = j->heap_idx - 1;
    j->heap_idx = 0;
    t->heap_len--;
    if (i == t->heap_len)
        return;
    heap_set(t, i, t->heap[t->heap_len]);
    heap_down(t, i);
    heap_up(t, t->heap[i]->heap_idx - 1);
}

long jobtable_position(const struct jobtable *t, const struct job *j)
{
    if (!j->heap_idx)
        return -1;
    long pos = 0;
    for (size_t i = 0; i < t->heap_len; i++)
        pos += before(t->heap[i], j);
    return pos;
}

size_t jobtable_queued_for(const struct jobtable *t, const char *owner)
{
    size_t n = 0;
    for (size_t i = 0; i < t->heap_len; i++)
        n += !strcmp(t->heap[i]->owner, owner);
    return n;
}

int jobtable_init(struct jobtable *t)
{
    memset(t, 0, sizeof(*t));
    t->nbuckets = 1024;
    t->buckets = calloc(t->nbuckets, sizeof(*t->buckets));
    return t->buckets ? 0 : -ENOMEM;
}

void jobtable_fini(struct jobtable *t)
{
    free(t->order);
    free(t->buckets);
    free(t->heap);
    memset(t, 0, sizeof(*t));
}
