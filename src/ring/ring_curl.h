/* ring_curl — libcurl's multi interface driven by a reactor's ring.
 *
 * One multi handle per reactor. curl tells us which sockets to watch (CURLMOPT_SOCKETFUNCTION):
 * each becomes a multishot IORING_OP_POLL_ADD; its timeout (CURLMOPT_TIMERFUNCTION) becomes a
 * ring timer. Completions call curl_multi_socket_action, and finished transfers are reported
 * through each transfer's done callback. No blocking curl call and no second event loop ever
 * runs on a reactor thread.
 *
 * Callbacks run on the reactor thread after curl has finished with the transfer; a done
 * callback may start new transfers or clean up the easy handle. */
#ifndef COMFYGATE_RING_CURL_H
#define COMFYGATE_RING_CURL_H

#include <curl/curl.h>
#include <stdbool.h>

#include "ring/ring.h"

struct ring_curl;
struct ring_curl_xfer;

/* rc is curl's result, status the HTTP status (0 if none). */
typedef void (*ring_curl_done_cb)(struct ring_curl_xfer *x, CURLcode rc, long status);

/* Embedded in its owner; lives until done_cb has run or ring_curl_cancel returned. */
struct ring_curl_xfer {
    CURL *easy;
    ring_curl_done_cb done;
    bool active;
};

struct rc_sock;

struct ring_curl {
    struct ring *ring;
    struct rc_sock *socks;
    CURLM *multi;
    struct ring_timer timer;
    int running;
    size_t active;
};

int ring_curl_init(struct ring_curl *rc, struct ring *r);
/* Every transfer must be finished or cancelled first. */
void ring_curl_fini(struct ring_curl *rc);
/* Starts x->easy (configured by the caller; CURLOPT_PRIVATE is taken). */
int ring_curl_start(struct ring_curl *rc, struct ring_curl_xfer *x, ring_curl_done_cb done);
/* Stops a transfer without calling done. */
void ring_curl_cancel(struct ring_curl *rc, struct ring_curl_xfer *x);
/* Resumes a transfer paused by a write callback returning CURL_WRITEFUNC_PAUSE. */
void ring_curl_unpause(struct ring_curl *rc, struct ring_curl_xfer *x);

#endif
