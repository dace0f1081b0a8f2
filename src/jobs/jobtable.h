/* jobtable — the engine's jobs in memory: by id (hash), in creation order (listing,
 * eviction) and the queued ones in priority order (higher priority first, FIFO within a
 * priority; a treap that also gives each job's position), with a count of queued jobs per
 * owner. Owned by the engine on the dispatcher reactor; no locking. */
#ifndef COMFYGATE_JOBTABLE_H
#define COMFYGATE_JOBTABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "jobs/job.h"

struct owner_count;

struct jobtable {
    struct job **buckets; /* by id */
    size_t nbuckets, njobs;
    struct job **order; /* every job, oldest first */
    size_t norder, order_cap;
    struct job *qroot; /* the queued ones: a treap (see jobtable.c) */
    size_t nqueued;
    uint32_t rng;
    struct owner_count **owners; /* queued jobs per owner */
    size_t nowner_buckets, nowners;
};

int jobtable_init(struct jobtable *t);
/* Frees the arrays, not the jobs. */
void jobtable_fini(struct jobtable *t);
int jobtable_put(struct jobtable *t, struct job *j);
struct job *jobtable_get(struct jobtable *t, const char *id);
/* Takes j out of the table (not freed): a submit the store refused. */
void jobtable_forget(struct jobtable *t, struct job *j);
/* Drops (and frees) the oldest finished, idle jobs once there are more than max_in_memory, down
 * to 15/16 of it (fewer when not enough of them are finished and idle). */
void jobtable_evict(struct jobtable *t, size_t max_in_memory);
/* Queue order: higher priority first, then older (smaller seq) first. All O(log n). */
int jobtable_push(struct jobtable *t, struct job *j);
void jobtable_unqueue(struct jobtable *t, struct job *j);
/* The first queued job, or NULL. */
struct job *jobtable_head(const struct jobtable *t);
/* Queued jobs ahead of j, or -1 if j is not queued. */
long jobtable_position(const struct jobtable *t, const struct job *j);
/* The queued job at position k (0: the head), or NULL. */
struct job *jobtable_at(const struct jobtable *t, size_t k);
/* Queued jobs of one owner (O(1)). */
size_t jobtable_queued_for(const struct jobtable *t, const char *owner);

#endif
