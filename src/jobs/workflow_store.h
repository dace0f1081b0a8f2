/* workflow_store — workflow versions in SQLite (table workflows) and the audit log of admin
 * actions (table audit_log).
 *
 * Start-up: workflow_store_load reads every stored version into the set (blocking; before the
 * reactor serves requests). Changes: workflow_store_save persists one new version or a
 * deletion together with its audit entry in one transaction, asynchronously; the API answers
 * only after `done` reports success, so an acknowledged change is durable. */
#ifndef COMFYGATE_WORKFLOW_STORE_H
#define COMFYGATE_WORKFLOW_STORE_H

#include <jansson.h>

#include "jobs/workflow.h"
#include "store/store.h"

enum workflow_change {
    WORKFLOW_CREATED,  /* POST /workflows: version 1 of a new id */
    WORKFLOW_UPDATED,  /* PUT /workflows/:id: a new version */
    WORKFLOW_DELETED,  /* DELETE /workflows/:id: every version marked deleted */
};

struct workflow_save {
    struct store_req req;
    enum workflow_change change;
    json_t *row;      /* owned snapshot: id, version, hash, name, description, template,
                         schema, overlays, created_by, created_at (absent for deletions) */
    char id[96];
    char actor[128];  /* who (tenant / key name) */
    char peer[64];    /* from where */
    void (*done)(struct workflow_save *s);
    void *ctx;
};

/* Snapshot of w for a save (deep copies; safe to hand to the store thread). */
json_t *workflow_store_snapshot(const struct workflow *w);
int workflow_store_save(struct store *st, struct ring *origin, struct workflow_save *s);
/* The same, blocking (the CLI; never on a reactor). Returns the SQLite result; done is not
 * called. */
int workflow_store_save_sync(struct store *st, struct workflow_save *s);
/* Blocking. Adds every stored, non-bundled version (keeping version numbers) and applies
 * stored deletions. Returns 0 or -1 with a message. */
int workflow_store_load(struct store *st, struct workflow_set *s, char *err, size_t len);

/* SHARED_STORE: picks up what other instances stored (new versions, deletions) into set,
 * asynchronously; done(r, number of changes) runs on origin. sig is the last state seen
 * (zeros at first): an unchanged store costs one small query. */
struct workflow_refresh {
    struct store_req req;
    struct workflow_set *set;
    int64_t sig[3];
    bool changed;
    json_t *rows;
    void (*done)(struct workflow_refresh *r, int changes);
    void *ctx;
};
int workflow_store_refresh(struct store *st, struct ring *origin, struct workflow_refresh *r);

#endif
