/* ring — one io_uring reactor per thread.
 *
 * A reactor owns one io_uring, one provided-buffer ring for receives, a timer heap, a list of
 * "before wait" hooks and a mailbox other threads can post to. Nothing here knows about HTTP,
 * jobs or ComfyUI.
 *
 * In-flight operations are `struct ring_op`s embedded in their owner; the SQE's user_data points
 * at the op, and the completion calls op->cb. Completions are copied out of the CQ in a batch
 * before any callback runs, so a callback may submit freely (no recursion, no CQ overflow
 * surprises). */
#ifndef COMFYGATE_RING_H
#define COMFYGATE_RING_H

#include <liburing.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ring;
struct ring_op;

/* res is the CQE result, flags the CQE flags (IORING_CQE_F_MORE, IORING_CQE_F_BUFFER, ...). */
typedef void (*ring_cb)(struct ring_op *op, int res, uint32_t flags);

struct ring_op {
    ring_cb cb;
};

struct ring_timer;
typedef void (*ring_timer_cb)(struct ring_timer *t);

struct ring_timer {
    uint64_t deadline_ns;
    size_t heap_idx; /* 0 = not armed; otherwise index + 1 */
    ring_timer_cb cb;
};

/* A message handed to a reactor from any thread (ring_post). The callback runs on the target
 * reactor's thread; ownership of the message passes with it. */
struct ring_msg;
typedef void (*ring_msg_cb)(struct ring *r, struct ring_msg *m);
struct ring_msg {
    struct ring_msg *next;
    ring_msg_cb cb;
};

/* Runs once per loop iteration just before the reactor waits (flush queued writes, logs). */
struct ring_hook;
typedef void (*ring_hook_cb)(struct ring *r, struct ring_hook *h);
struct ring_hook {
    struct ring_hook *next;
    ring_hook_cb cb;
};

struct ring_config {
    unsigned sq_entries;  /* power of two */
    unsigned buf_count;   /* provided receive buffers (power of two, <= 32768) */
    unsigned buf_size;    /* bytes per receive buffer */
    size_t max_timers;    /* hard cap on armed timers */
};

struct ring {
    struct io_uring uring;
    int id;
    bool stopping;
    bool stopped;
    uint64_t now_ns; /* CLOCK_MONOTONIC, refreshed once per iteration */

    /* provided buffers for multishot receive */
    struct io_uring_buf_ring *br;
    size_t br_size;
    char *bufs;
    unsigned buf_count;
    unsigned buf_size;
    unsigned buf_mask;
    int buf_pending; /* recycled buffers not yet published with advance */

    /* timers: binary min-heap on deadline */
    struct ring_timer **heap;
    size_t heap_len;
    size_t heap_cap;
    size_t max_timers;

    /* before-wait hooks */
    struct ring_hook *hooks;

    /* mailbox */
    pthread_mutex_t mbox_lock;
    struct ring_msg *mbox_head;
    struct ring_msg *mbox_tail;
    int efd;
    uint64_t efd_val;
    struct ring_op efd_op;

    void *user; /* the owner's per-reactor context */
};

/* Buffer group id used for provided receive buffers. */
#define RING_BGID 0

int ring_init(struct ring *r, const struct ring_config *cfg, int id);
void ring_fini(struct ring *r);

/* Returns an SQE, submitting pending ones first if the SQ is full. Never NULL on a live ring. */
struct io_uring_sqe *ring_sqe(struct ring *r);
static inline void ring_sqe_set_op(struct io_uring_sqe *sqe, struct ring_op *op)
{
    io_uring_sqe_set_data(sqe, op);
}

/* Runs the loop until ring_stop() has been called and `done` (if given) returns true. */
int ring_run(struct ring *r, bool (*done)(struct ring *r));
void ring_stop(struct ring *r);

/* Provided buffers: the data of buffer `bid`; give it back after use. */
static inline char *ring_buf(struct ring *r, unsigned bid)
{
    return r->bufs + (size_t)bid * r->buf_size;
}
void ring_buf_recycle(struct ring *r, unsigned bid);

/* Timers. Arming an armed timer moves it. Returns -ENOSPC past max_timers. */
int ring_timer_arm(struct ring *r, struct ring_timer *t, uint64_t after_ms);
void ring_timer_cancel(struct ring *r, struct ring_timer *t);
static inline bool ring_timer_armed(const struct ring_timer *t)
{
    return t->heap_idx != 0;
}

void ring_hook_add(struct ring *r, struct ring_hook *h);

/* Thread-safe: queue m for reactor r and wake it. */
void ring_post(struct ring *r, struct ring_msg *m);

uint64_t ring_clock_ns(void);

/* A request to another reactor that comes back: `work` runs on the target reactor and must
 * end with ring_call_return (now or later, e.g. after I/O); `reply` then runs on the origin.
 * Targeting one's own reactor costs no message. */
struct ring_call;
typedef void (*ring_call_fn)(struct ring_call *c);
struct ring_call {
    struct ring_msg msg;
    struct ring *origin;
    struct ring *target;
    ring_call_fn work;
    ring_call_fn reply;
};
void ring_call(struct ring *target, struct ring *origin, struct ring_call *c, ring_call_fn work,
               ring_call_fn reply);
void ring_call_return(struct ring_call *c);

#endif
