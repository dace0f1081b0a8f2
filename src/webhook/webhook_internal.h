/* webhook_internal — the delivery engine's state, shared by webhook.c, webhook_attempt.c and
 * webhook_outbox.c. Nothing outside src/webhook includes it. */
#ifndef COMFYGATE_WEBHOOK_INTERNAL_H
#define COMFYGATE_WEBHOOK_INTERNAL_H

#include "webhook/webhook.h"
#include "webhook/webhook_index.h"
#include "webhook/webhook_retry.h"

enum wh_status { WH_PENDING, WH_DELIVERED, WH_FAILED };
const char *wh_status_name(enum wh_status s);

#define WH_EVENT_SIZE 48
#define WH_ERROR_SIZE 256
#define WH_URL_MAX 2048

/* What an attempt came to, for the delivery's row and its webhook_attempts row. */
struct wh_outcome {
    enum webhook_verdict verdict;
    long status; /* HTTP status, 0 if none */
    bool has_retry_after;
    uint64_t retry_after_ms;
    char error[WH_ERROR_SIZE];
};

struct wh_delivery;

/* One HTTP request of a delivery: allocated when it starts and freed when it ends, so the
 * deliveries kept in memory for GET /jobs/:id do not carry it. */
struct wh_attempt {
    struct ring_curl_xfer x; /* first: the done callback gets it */
    struct wh_delivery *d;
    void (*done)(struct wh_delivery *d, const struct wh_outcome *o);
    struct curl_slist *hdrs;
    char errbuf[CURL_ERROR_SIZE];
    uint64_t start_ns;
    size_t resp_bytes;
    bool resp_capped;    /* over max_response: the read was ended on purpose */
    char resp_head[128]; /* the start of the body, shown in last_error for a refusal */
    size_t resp_head_len;
    void *guard_ctx; /* the URL guard's per-attempt storage (webhook_guard.ctx_size) */
};

struct wh_host;
struct wh_job;

struct wh_delivery {
    struct store_req req;    /* first: the one store write in progress */
    struct wh_attempt *att;  /* while a request is under way */
    struct wh_heap_node due; /* in the due heap while ready to go */
    struct webhooks *w;
    struct wh_job *job;
    struct wh_host *host;              /* while in flight, parked or released */
    struct wh_delivery *jprev, *jnext; /* the job's deliveries, oldest first */
    struct wh_delivery *qnext;         /* the job's pending queue */
    struct wh_delivery *pnext;         /* a host's parked list */
    struct wh_delivery *fprev, *fnext; /* finished deliveries, oldest first */
    char id[WEBHOOK_ID_SIZE];
    char event[WH_EVENT_SIZE];
    char *url;
    char *origin;  /* scheme://host:port, the per-host limit's key */
    char *payload; /* the exact body; freed once finished */
    size_t payload_len;
    enum wh_status status;
    unsigned attempts;
    int64_t created_ms, updated_ms, next_ms, delivered_ms; /* Unix ms; 0: none */
    long last_status;
    char last_error[WH_ERROR_SIZE];
    /* the attempt being written (webhook_attempts row); n is `attempts` */
    int64_t att_ms;
    uint32_t att_duration_ms;
    bool write_attempt;
    bool inserting; /* the write in progress is the first insert */
    bool once;      /* a caller-chosen id: the insert is skipped if that row exists */
    bool duplicate; /* ... and it did: this copy is dropped unsent */
    bool committed; /* the row exists */
    bool taken_over; /* another instance took the row over (we looked dead): drop it */
    bool saving;    /* a store write is in progress */
    bool inflight;
    bool released; /* unparked, back in the heap for its host's free slot */
    webhook_ack_cb ack;
    void *ack_ctx;
};

struct wh_job {
    struct wh_map_node node;
    struct wh_delivery *first, *last;  /* every delivery in memory */
    struct wh_delivery *qhead, *qtail; /* pending, oldest first: only qhead is ever sent */
    char id[];
};

struct wh_host {
    struct wh_map_node node;
    unsigned inflight;
    unsigned released;                 /* unparked deliveries waiting in the heap */
    struct wh_delivery *phead, *ptail; /* parked: due, but the host is at its limit */
    char origin[];
};

struct webhooks {
    struct ring *ring;
    struct ring_curl *rc;
    struct ring_curl own_rc;
    bool owns_rc;
    struct store *store;
    struct webhook_config cfg;
    struct webhook_secret secret, secret_prev;
    struct wh_map jobs, hosts;
    struct wh_heap heap;
    struct ring_timer timer;
    struct wh_delivery *fhead, *ftail; /* finished, oldest first */
    size_t nfinished, npending, ninflight, nsaving;
    uint64_t delivered, failed, retried, refused;
    uint64_t rng; /* back-off jitter (splitmix64, seeded from getrandom) */
    bool stopping;
    bool adopting;         /* a take-over read is in flight */
    size_t adopt_reserved; /* pending slots it may fill */
    uint64_t adopted;
};

/* webhook_attempt.c: starts d's request (0), or fills o and returns -1 when it cannot go
 * (the guard refused it, or no memory). done runs on the reactor when it has finished. */
int wh_attempt_start(struct webhooks *w, struct wh_delivery *d, struct wh_outcome *o,
                     void (*done)(struct wh_delivery *d, const struct wh_outcome *o));
void wh_attempt_cancel(struct webhooks *w, struct wh_delivery *d);
/* scheme://host:port of url (lowercase host, default port filled in), or NULL. */
char *wh_origin(const char *url, char *err, size_t errlen);

/* webhook_outbox.c: the store-thread side. Each submits d->req; done runs on the reactor. */
int wh_outbox_insert(struct webhooks *w, struct wh_delivery *d, store_done_fn done);
int wh_outbox_update(struct webhooks *w, struct wh_delivery *d, store_done_fn done);
/* Blocking (start-up): every pending row (up to max_pending, oldest first) and the newest
 * max_recent finished ones, as JSON objects oldest first; NULL on a database error. */
json_t *wh_outbox_load(struct store *st, size_t max_pending, size_t max_recent,
                       const char *instance, int64_t now_ms);
/* "this instance is alive at ?2" (table instances, SHARED_STORE): written at start-up before
 * the pending rows are read, and with every take-over look (webhook_adopt, once a lease). */
#define WH_HEARTBEAT                                                                               \
    "INSERT INTO instances (id, seen_at) VALUES (?1, ?2)"                                          \
    " ON CONFLICT(id) DO UPDATE SET seen_at = max(seen_at, excluded.seen_at)"
/* Takes over up to max pending deliveries of instances last seen before dead_before; rows gets
 * them (in any order: "seq" is their creation order). */
struct wh_adopt {
    struct store_req req;
    struct webhooks *w;
    json_t *rows;
    const char *instance;
    int64_t now_ms;
    int64_t dead_before;
    size_t max;
};
int wh_outbox_adopt(struct webhooks *w, struct wh_adopt *a, store_done_fn done);

#endif
