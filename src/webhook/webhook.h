/* webhook — signed webhook deliveries from a durable outbox, on one reactor.
 *
 * The job engine calls webhook_enqueue() for each event a job's callbackUrl should get. The
 * body is built and fixed at once ({"type","timestamp","data"}, compact JSON) under a new
 * random webhook-id, and the row is written to the webhook_deliveries table through the store
 * thread; only once it is committed is the event acknowledged (the optional ack callback) and
 * eligible for sending, so a kill -9 after the acknowledgement never loses it. Every attempt
 * sends the same body and webhook-id, signed afresh with the attempt's own webhook-timestamp
 * (receivers refuse timestamps more than 5 minutes old). Every outcome is written back
 * (status, attempts, next attempt, last error) with a webhook_attempts row.
 *
 * Ordering: the deliveries of one job go one at a time, in the order they were enqueued (a
 * receiver never sees job.succeeded before job.running); a failing one holds back the rest of
 * its job until it is delivered or has failed for good, and nothing else. Different jobs are
 * independent: at most max_inflight requests at once, and at most max_inflight_per_host to one
 * scheme://host:port, so a receiver that hangs can only ever hold its own share.
 *
 * At start the pending rows are read back and scheduled (their next_attempt_at honoured), and
 * the most recent finished ones are kept for GET /jobs/:id; memory holds at most max_pending
 * pending and max_recent finished deliveries.
 *
 * Threads: everything here runs on the reactor given to webhook_new (the dispatcher), except
 * webhook_new's start-up read, which blocks on the store as engine_new's does. */
#ifndef COMFYGATE_WEBHOOK_H
#define COMFYGATE_WEBHOOK_H

#include <curl/curl.h>
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ring/ring.h"
#include "ring/ring_curl.h"
#include "store/store.h"
#include "webhook/webhook_event.h"
#include "webhook/webhook_sign.h"

/* The URL guard (SSRF checks), called before every attempt. prepare may set options on easy
 * (CURLOPT_OPENSOCKETFUNCTION, ...; it may wrap the attempt's write callback `write` /
 * `write_data`, which it must then call) and returns 0, or -1 to refuse the URL with a reason
 * in why: the delivery then fails at once with that reason, without a request. ctx is
 * ctx_size bytes of zeroed storage the attempt keeps for the guard until it ends. refused, if
 * set, is asked after a transfer failed with curl error rc: it returns true (and a reason) when
 * the failure was the guard stopping the connection, which is not retried either. */
struct webhook_guard {
    size_t ctx_size;
    int (*prepare)(CURL *easy, const char *url, curl_write_callback write, void *write_data,
                   void *ctx, void *arg, char *why, size_t whylen);
    bool (*refused)(CURL *easy, CURLcode rc, void *ctx, void *arg, char *why, size_t whylen);
    void *arg;
};

struct webhook_config {
    const char *secret;             /* WEBHOOK_SECRET, "whsec_<base64>" (required) */
    const char *secret_previous;    /* WEBHOOK_SECRET_PREVIOUS during a rotation; NULL or "" */
    unsigned max_attempts;          /* WEBHOOK_MAX_ATTEMPTS: then the delivery has failed */
    uint32_t retry_base_ms;         /* WEBHOOK_RETRY_BASE_MS: first back-off ceiling, doubling */
    uint32_t retry_max_ms;          /* WEBHOOK_RETRY_MAX_MS: back-off and Retry-After cap */
    uint32_t timeout_ms;            /* WEBHOOK_TIMEOUT_MS: one attempt, connect to last byte */
    unsigned max_inflight;          /* WEBHOOK_MAX_INFLIGHT: requests at once */
    unsigned max_inflight_per_host; /* WEBHOOK_MAX_INFLIGHT_PER_HOST: to one scheme://host:port */
    size_t max_pending;             /* WEBHOOK_MAX_PENDING: undelivered events in memory */
    size_t max_recent;              /* finished deliveries remembered for GET /jobs/:id */
    size_t max_response;            /* response bytes read (then dropped); more ends the read */
    size_t max_payload;             /* largest body webhook_enqueue accepts */
    struct webhook_guard guard;     /* all NULL: no guard */
    /* the gateway's instance id: its deliveries are written with it, and only its own are
     * read back and sent at start (several gateways may share one store); NULL: all */
    const char *instance;
};

/* The defaults: 8 attempts, 1 s doubling to 1 h, 10 s timeout, 64 in flight (16 per host),
 * 10000 pending, 10000 recent, 64 KiB response, 256 KiB payload. */
void webhook_config_defaults(struct webhook_config *c);

struct webhooks;

/* rc: the reactor's ring_curl to use (NULL: the webhooks make and own one). st: the open
 * store. Reads pending and recent deliveries back (blocking, start-up only). Returns 0, or
 * -errno with a message in err (a bad secret: -EINVAL). On error *out is NULL. */
int webhook_new(struct webhooks **out, struct ring *r, struct ring_curl *rc, struct store *st,
                const struct webhook_config *cfg, char *err, size_t errlen);
/* SHARED_STORE, called once a lease: records that this instance is alive, and takes over the
 * pending deliveries of instances last seen alive before dead_before_ms (wall clock), to send
 * them from here, each under its own webhook-id. At most one is in flight; a no-op without an
 * instance id. */
void webhook_adopt(struct webhooks *w, int64_t dead_before_ms);
/* No new attempt starts (and webhook_enqueue refuses); those in flight finish and are
 * recorded. */
void webhook_stop(struct webhooks *w);
/* Nothing in flight and nothing being written: safe to free. */
bool webhook_idle(const struct webhooks *w);
/* Cancels what is still in flight (those events stay pending in the store, resent after the
 * next start) and frees everything. */
void webhook_free(struct webhooks *w);

/* Called on the reactor once the event's row is committed (rc 0; the event is then durable)
 * or could not be (rc < 0; the event is dropped). msg_id is the webhook-id. */
typedef void (*webhook_ack_cb)(void *ctx, const char *msg_id, int rc);

/* Queues event `type` ("job.succeeded", ...) about job_id for url, with data (borrowed: the
 * caller keeps its reference; serialised now). Returns 0 (the ack follows), or -EINVAL (bad
 * url or type), -EMSGSIZE (body over max_payload), -ENOSPC (max_pending reached), -EAGAIN (the
 * store's queue is full), -ESHUTDOWN (stopping), -ENOMEM. No ack follows an error return. */
int webhook_enqueue(struct webhooks *w, const char *job_id, const char *url, const char *type,
                    json_t *data);
int webhook_enqueue_ack(struct webhooks *w, const char *job_id, const char *url, const char *type,
                        json_t *data, webhook_ack_cb ack, void *ctx);

/* The same with a webhook-id derived from (job_id, key) instead of a random one, written only
 * if no row has that id yet: an event that must be sent exactly once, such as a job's end,
 * can be enqueued again after a crash (start-up recovery) without being delivered twice. */
int webhook_enqueue_once(struct webhooks *w, const char *job_id, const char *key, const char *url,
                         const char *type, json_t *data);

/* For GET /jobs/:id: [{id, event, url, status, attempts, last_status, last_error,
 * next_attempt_at, delivered_at}] oldest first (times RFC 3339, or null); an empty array for a
 * job with none in memory. New reference. */
json_t *webhook_job_deliveries(struct webhooks *w, const char *job_id);

/* Is url one webhook_enqueue would take (http or https, a host, no user:password, at most
 * 2048 bytes)? For a 400 at job submission. 0, or -1 with a message in err. */
int webhook_url_check(const char *url, char *err, size_t errlen);

struct webhook_stats {
    size_t pending;                               /* in memory, not yet delivered nor failed */
    size_t inflight;                              /* requests under way */
    size_t writing;                               /* store writes under way */
    uint64_t delivered, failed, retried, refused; /* since start */
};
void webhook_get_stats(const struct webhooks *w, struct webhook_stats *s);

#endif
