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


/* --- the queue: a treap ordered by (priority desc, seq asc, id), with subtree sizes --------- *
 *
 * A job's place in the queue (queue_position) is asked at every submit, every GET of a queued
 * job and every status event; with the queue as a binary heap that was a walk of the whole
 * queue, one cache miss per job. A treap (a search tree kept balanced by random weights) with
 * the size of each subtree gives the head, insert, remove and the rank in O(log n) expected
 * steps. The nodes live in the jobs (no allocation); recursion depth is the tree's depth,
 * about 2-3 x log2(n) (~60 for a million queued jobs). */

/* A strict total order, or removal walks off the tree: with SHARED_STORE two instances number
 * their jobs alike (seq is per instance) and both can sit in one queue, so the id decides. */
static bool before(const struct job *a, const struct job *b)
{
    if (a->priority != b->priority)
        return a->priority > b->priority;
    return a->seq != b->seq ? a->seq < b->seq : strcmp(a->id, b->id) < 0;
}

static uint32_t qsize(const struct job *n)
{
    return n ? n->q_size : 0;
}

static void qfix(struct job *n)
{
    n->q_size = 1 + qsize(n->q_left) + qsize(n->q_right);
}

/* Every node of a is before every node of b. */
static struct job *qmerge(struct job *a, struct job *b)
{
    if (!a)
        return b;
    if (!b)
        return a;
    if (a->q_weight > b->q_weight) {
        a->q_right = qmerge(a->q_right, b);
        qfix(a);
        return a;
    }
    b->q_left = qmerge(a, b->q_left);
    qfix(b);
    return b;
}

/* The nodes before k go to *l, the others to *r. */
static void qsplit(struct job *n, const struct job *k, struct job **l, struct job **r)
{
    if (!n) {
        *l = *r = NULL;
        return;
    }
    if (before(n, k)) {
        qsplit(n->q_right, k, &n->q_right, r);
        *l = n;
    } else {
        qsplit(n->q_left, k, l, &n->q_left);
        *r = n;
    }
    qfix(n);
}

/* Removes j, which is in the subtree n. */
static struct job *qerase(struct job *n, const struct job *j)
{
    if (n == j)
        return qmerge(n->q_left, n->q_right);
    if (before(j, n))
        n->q_left = qerase(n->q_left, j);
    else
        n->q_right = qerase(n->q_right, j);
    qfix(n);
    return n;
}

/* --- queued jobs per owner (MAX_QUEUE_PER_TENANT) ------------------------------------------ */

struct owner_count {
    struct owner_count *next;
    size_t n;
    char owner[128];
};

static size_t hash_id(const char *s);

static struct owner_count **owner_slot(const struct jobtable *t, const char *owner)
{
    struct owner_count **pp = &t->owners[hash_id(owner) & (t->nowner_buckets - 1)];
    while (*pp && strcmp((*pp)->owner, owner) != 0)
        pp = &(*pp)->next;
    return pp;
}

static int owners_grow(struct jobtable *t)
{
    size_t nb = t->nowner_buckets * 2;
    struct owner_count **b = calloc(nb, sizeof(*b));
    if (!b)
        return -ENOMEM;
    for (size_t i = 0; i < t->nowner_buckets; i++) {
        for (struct owner_count *o = t->owners[i], *n; o; o = n) {
            n = o->next;
            size_t k = hash_id(o->owner) & (nb - 1);
            o->next = b[k];
            b[k] = o;
        }
    }
    free(t->owners);
    t->owners = b;
    t->nowner_buckets = nb;
    return 0;
}

static int owner_add(struct jobtable *t, const char *owner)
{
    struct owner_count **pp = owner_slot(t, owner);
    if (*pp) {
        (*pp)->n++;
        return 0;
    }
    if (t->nowners >= t->nowner_buckets && owners_grow(t) == 0)
        pp = owner_slot(t, owner);
    struct owner_count *o = calloc(1, sizeof(*o));
    if (!o)
        return -ENOMEM;
    snprintf(o->owner, sizeof(o->owner), "%s", owner);
    o->n = 1;
    *pp = o;
    t->nowners++;
    return 0;
}

static void owner_del(struct jobtable *t, const char *owner)
{
    struct owner_count **pp = owner_slot(t, owner);
    struct owner_count *o = *pp;
    if (!o || --o->n > 0)
        return;
    *pp = o->next;
    free(o);
    t->nowners--;
}

int jobtable_push(struct jobtable *t, struct job *j)
{
    if (j->queued)
        return 0;
    if (owner_add(t, j->owner) < 0)
        return -ENOMEM;
    t->rng ^= t->rng << 13; /* xorshift32: weights only need to look random to the tree */
    t->rng ^= t->rng >> 17;
    t->rng ^= t->rng << 5;
    j->q_weight = t->rng;
    j->q_left = j->q_right = NULL;
    j->q_size = 1;
    struct job *l, *r;
    qsplit(t->qroot, j, &l, &r);
    t->qroot = qmerge(qmerge(l, j), r);
    j->queued = true;
    t->nqueued++;
    return 0;
}

void jobtable_unqueue(struct jobtable *t, struct job *j)
{
    if (!j->queued)
        return;
    t->qroot = qerase(t->qroot, j);
    j->q_left = j->q_right = NULL;
    j->queued = false;
    t->nqueued--;
    owner_del(t, j->owner);
}

struct job *jobtable_head(const struct jobtable *t)
{
    struct job *n = t->qroot;
    while (n && n->q_left)
        n = n->q_left;
    return n;
}

long jobtable_position(const struct jobtable *t, const struct job *j)
{
    if (!j->queued)
        return -1;
    long pos = 0;
    for (const struct job *n = t->qroot; n;) {
        if (n == j)
            return pos + (long)qsize(n->q_left);
        if (before(j, n)) {
            n = n->q_left;
        } else {
            pos += (long)qsize(n->q_left) + 1;
            n = n->q_right;
        }
    }
    return -1; /* not reached: a queued job is in the tree */
}

struct job *jobtable_at(const struct jobtable *t, size_t k)
{
    struct job *n = t->qroot;
    while (n) {
        size_t l = qsize(n->q_left);
        if (k == l)
            return n;
        if (k < l) {
            n = n->q_left;
        } else {
            k -= l + 1;
            n = n->q_right;
        }
    }
    return NULL;
}

size_t jobtable_queued_for(const struct jobtable *t, const char *owner)
{
    const struct owner_count *o = *owner_slot(t, owner);
    return o ? o->n : 0;
}

int jobtable_init(struct jobtable *t)
{
    memset(t, 0, sizeof(*t));
    t->nbuckets = 1024;
    t->buckets = calloc(t->nbuckets, sizeof(*t->buckets));
    t->nowner_buckets = 64;
    t->owners = calloc(t->nowner_buckets, sizeof(*t->owners));
    t->rng = 0x9e3779b9u;
    return t->buckets && t->owners ? 0 : -ENOMEM;
}

void jobtable_fini(struct jobtable *t)
{
    for (size_t i = 0; t->owners && i < t->nowner_buckets; i++) {
        for (struct owner_count *o = t->owners[i], *n; o; o = n) {
            n = o->next;
            free(o);
        }
    }
    free(t->owners);
    free(t->order);
    free(t->buckets);
    memset(t, 0, sizeof(*t));
}
