/* engine_internal — the engine's state, shared by engine.c and engine_recover.c only. */
#ifndef COMFYGATE_ENGINE_INTERNAL_H
#define COMFYGATE_ENGINE_INTERNAL_H

#include "jobs/engine.h"
#include "jobs/jobtable.h"
#include "jobs/keymap.h"

struct engine {
    struct ring *ring;
    struct comfy_fleet *fleet;
    struct store *store;
    struct engine_config cfg;
    struct workflow_set wf;
    struct jobtable jt; /* jobs by id, in order, and the queue */
    uint64_t seq;
    size_t running;
    bool stopping;
    struct keymap idem;  /* owner \x1f key → job */
    struct keymap cache; /* cache key → succeeded job */
    unsigned long ticks;
    struct ring_timer dispatch_timer;
};

/* Saves j's current state (coalesced while a save is in flight). */
void engine_persist(struct engine *e, struct job *j);
/* Start-up: reads back recent jobs, idempotency keys and cache entries; queues again every job
 * that was queued or running (engine_recover.c). */
int engine_recover(struct engine *e);
/* Start-up: re-attaches a job that was running to its prompt on its backend (engine.c). False
 * when it cannot (no such backend configured now): queue it again instead. */
bool engine_reattach(struct engine *e, struct job *j);

#endif
