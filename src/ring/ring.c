/* ring — see ring.h.
 *
 * Ring set-up flags, and why:
 *  - SINGLE_ISSUER + DEFER_TASKRUN: exactly one thread submits to and reaps from each ring, so the
 *    kernel may defer completion work until we wait, which batches it and avoids IPIs.
 *  - CQSIZE = 8 x SQ: multishot accept/recv post many CQEs per SQE; a large CQ keeps it from
 *    overflowing between iterations.
 *  - SUBMIT_ALL: one bad SQE must not strand the rest of the batch.
 * The loop waits with io_uring_submit_and_wait_timeout (EXT_ARG), so timers cost no SQEs. */
#include "ring/ring.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define CQE_BATCH 256

uint64_t ring_clock_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void efd_arm(struct ring *r);

static void efd_cb(struct ring_op *op, int res, uint32_t flags)
{
    struct ring *r = (struct ring *)((char *)op - offsetof(struct ring, efd_op));
    pthread_mutex_lock(&r->mbox_lock);
    struct ring_msg *m = r->mbox_head;
    r->mbox_head = r->mbox_tail = NULL;
    pthread_mutex_unlock(&r->mbox_lock);
    while (m) {
        struct ring_msg *next = m->next;
        m->cb(r, m);
        m = next;
    }
    if (res >= 0 || res == -EINTR || res == -EAGAIN)
        efd_arm(r);
}

static void efd_arm(struct ring *r)
{
    struct io_uring_sqe *sqe = ring_sqe(r);
    io_uring_prep_read(sqe, r->efd, &r->efd_val, sizeof(r->efd_val), 0);
    ring_sqe_set_op(sqe, &r->efd_op);
}

static int bufs_init(struct ring *r, const struct ring_config *cfg)
{
    r->buf_count = cfg->buf_count;
    r->buf_size = cfg->buf_size;
    r->buf_mask = (unsigned)io_uring_buf_ring_mask(cfg->buf_count);
    r->br_size = cfg->buf_count * sizeof(struct io_uring_buf);
    /* The kernel wants the ring page-aligned; liburing 2.3 has no io_uring_setup_buf_ring, so
     * map it and register it by hand. */
    void *mem = mmap(NULL, r->br_size, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1,
                     0);
    if (mem == MAP_FAILED)
        return -errno;
    r->br = mem;
    r->bufs = malloc((size_t)cfg->buf_count * cfg->buf_size);
    if (!r->bufs)
        return -ENOMEM;
    struct io_uring_buf_reg reg;
    memset(&reg, 0, sizeof(reg));
    reg.ring_addr = (unsigned long)r->br;
    reg.ring_entries = cfg->buf_count;
    reg.bgid = RING_BGID;
    int rc = io_uring_register_buf_ring(&r->uring, &reg, 0);
    if (rc < 0)
        return rc;
    io_uring_buf_ring_init(r->br);
    for (unsigned i = 0; i < cfg->buf_count; i++)
        io_uring_buf_ring_add(r->br, ring_buf(r, i), cfg->buf_size, (unsigned short)i, (int)r->buf_mask,
                              (int)i);
    io_uring_buf_ring_advance(r->br, (int)cfg->buf_count);
    return 0;
}

int ring_init(struct ring *r, const struct ring_config *cfg, int id)
{
    memset(r, 0, sizeof(*r));
    r->id = id;
    r->max_timers = cfg->max_timers;
    struct io_uring_params p;
    memset(&p, 0, sizeof(p));
    p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_CQSIZE |
              IORING_SETUP_SUBMIT_ALL;
    p.cq_entries = cfg->sq_entries * 8;
    int rc = io_uring_queue_init_params(cfg->sq_entries, &r->uring, &p);
    if (rc < 0)
        return rc;
    rc = bufs_init(r, cfg);
    if (rc < 0)
        return rc;
    pthread_mutex_init(&r->mbox_lock, NULL);
    r->efd = eventfd(0, EFD_CLOEXEC);
    if (r->efd < 0)
        return -errno;
    r->efd_op.cb = efd_cb;
    efd_arm(r);
    r->now_ns = ring_clock_ns();
    return 0;
}

void ring_fini(struct ring *r)
{
    io_uring_queue_exit(&r->uring);
    if (r->br)
        munmap(r->br, r->br_size);
    free(r->bufs);
    free(r->heap);
    if (r->efd >= 0)
        close(r->efd);
    pthread_mutex_destroy(&r->mbox_lock);
}

struct io_uring_sqe *ring_sqe(struct ring *r)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&r->uring);
    while (!sqe) {
        io_uring_submit(&r->uring);
        sqe = io_uring_get_sqe(&r->uring);
    }
    return sqe;
}

void ring_buf_recycle(struct ring *r, unsigned bid)
{
    io_uring_buf_ring_add(r->br, ring_buf(r, bid), r->buf_size, (unsigned short)bid,
                          (int)r->buf_mask, r->buf_pending);
    r->buf_pending++;
}

static void bufs_publish(struct ring *r)
{
    if (r->buf_pending) {
        io_uring_buf_ring_advance(r->br, r->buf_pending);
        r->buf_pending = 0;
    }
}

/* --- timers ---------------------------------------------------------------------------- */

static void heap_swap(struct ring *r, size_t a, size_t b)
{
    struct ring_timer *t = r->heap[a];
    r->heap[a] = r->heap[b];
    r->heap[b] = t;
    r->heap[a]->heap_idx = a + 1;
    r->heap[b]->heap_idx = b + 1;
}

static void heap_up(struct ring *r, size_t i)
{
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (r->heap[parent]->deadline_ns <= r->heap[i]->deadline_ns)
            break;
        heap_swap(r, i, parent);
        i = parent;
    }
}

static void heap_down(struct ring *r, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, m = i;
        if (l < r->heap_len && r->heap[l]->deadline_ns < r->heap[m]->deadline_ns)
            m = l;
        if (l + 1 < r->heap_len && r->heap[l + 1]->deadline_ns < r->heap[m]->deadline_ns)
            m = l + 1;
        if (m == i)
            return;
        heap_swap(r, i, m);
        i = m;
    }
}

void ring_timer_cancel(struct ring *r, struct ring_timer *t)
{
    if (!t->heap_idx)
        return;
    size_t i = t->heap_idx - 1;
    r->heap_len--;
    if (i != r->heap_len) {
        r->heap[i] = r->heap[r->heap_len];
        r->heap[i]->heap_idx = i + 1;
        heap_down(r, i);
        heap_up(r, i);
    }
    t->heap_idx = 0;
}

int ring_timer_arm(struct ring *r, struct ring_timer *t, uint64_t after_ms)
{
    ring_timer_cancel(r, t);
    if (r->heap_len == r->heap_cap) {
        if (r->heap_cap >= r->max_timers)
            return -ENOSPC;
        size_t ncap = r->heap_cap ? r->heap_cap * 2 : 1024;
        if (ncap > r->max_timers)
            ncap = r->max_timers;
        struct ring_timer **h = realloc(r->heap, ncap * sizeof(*h));
        if (!h)
            return -ENOMEM;
        r->heap = h;
        r->heap_cap = ncap;
    }
    t->deadline_ns = r->now_ns + after_ms * 1000000ull;
    r->heap[r->heap_len] = t;
    t->heap_idx = ++r->heap_len;
    heap_up(r, r->heap_len - 1);
    return 0;
}

static void timers_run(struct ring *r)
{
    while (r->heap_len && r->heap[0]->deadline_ns <= r->now_ns) {
        struct ring_timer *t = r->heap[0];
        ring_timer_cancel(r, t);
        t->cb(t);
    }
}

/* --- hooks, mailbox, loop ------------------------------------------------------------------ */

void ring_hook_add(struct ring *r, struct ring_hook *h)
{
    h->next = r->hooks;
    r->hooks = h;
}

void ring_post(struct ring *r, struct ring_msg *m)
{
    m->next = NULL;
    pthread_mutex_lock(&r->mbox_lock);
    if (r->mbox_tail)
        r->mbox_tail->next = m;
    else
        r->mbox_head = m;
    r->mbox_tail = m;
    pthread_mutex_unlock(&r->mbox_lock);
    uint64_t one = 1;
    ssize_t n = write(r->efd, &one, sizeof(one));
    (void)n; /* a full counter still wakes the reader */
}

void ring_stop(struct ring *r)
{
    r->stopping = true;
}

static int wait_once(struct ring *r)
{
    struct io_uring_cqe *cqe;
    struct __kernel_timespec ts, *tsp = NULL;
    if (r->heap_len) {
        uint64_t d = r->heap[0]->deadline_ns;
        uint64_t wait = d > r->now_ns ? d - r->now_ns : 0;
        ts.tv_sec = (long long)(wait / 1000000000ull);
        ts.tv_nsec = (long long)(wait % 1000000000ull);
        tsp = &ts;
    }
    int rc = io_uring_submit_and_wait_timeout(&r->uring, &cqe, 1, tsp, NULL);
    if (rc == -ETIME || rc == -EINTR)
        return 0;
    return rc < 0 ? rc : 0;
}

static void reap(struct ring *r)
{
    struct {
        struct ring_op *op;
        int res;
        uint32_t flags;
    } batch[CQE_BATCH];
    for (;;) {
        struct io_uring_cqe *cqe;
        unsigned head, n = 0;
        io_uring_for_each_cqe(&r->uring, head, cqe)
        {
            batch[n].op = io_uring_cqe_get_data(cqe);
            batch[n].res = cqe->res;
            batch[n].flags = cqe->flags;
            if (++n == CQE_BATCH)
                break;
        }
        if (n == 0)
            return;
        io_uring_cq_advance(&r->uring, n);
        for (unsigned i = 0; i < n; i++) {
            if (batch[i].op) /* NULL: fire-and-forget ops (cancel, close) */
                batch[i].op->cb(batch[i].op, batch[i].res, batch[i].flags);
        }
        bufs_publish(r);
        if (n < CQE_BATCH)
            return;
    }
}

int ring_run(struct ring *r, bool (*done)(struct ring *r))
{
    for (;;) {
        for (struct ring_hook *h = r->hooks; h; h = h->next)
            h->cb(r, h);
        /* Checked after the hooks, just before waiting: a hook may finish the last piece of
         * work (the HTTP server frees closed connections there), and then nothing might ever
         * wake the wait. Checked before the hooks, a drained server slept until its shutdown
         * timer, or forever once that had fired. */
        if (r->stopping && (!done || done(r)))
            break;
        bufs_publish(r);
        int rc = wait_once(r);
        if (rc < 0 && rc != -EBUSY)
            return rc;
        r->now_ns = ring_clock_ns();
        reap(r);
        timers_run(r);
    }
    r->stopped = true;
    return 0;
}

/* --- calls between reactors ------------------------------------------------------------------ */

static void call_reply_cb(struct ring *r, struct ring_msg *m)
{
    struct ring_call *c = (struct ring_call *)m;
    c->reply(c);
}

static void call_work_cb(struct ring *r, struct ring_msg *m)
{
    struct ring_call *c = (struct ring_call *)m;
    c->work(c);
}

void ring_call(struct ring *target, struct ring *origin, struct ring_call *c, ring_call_fn work,
               ring_call_fn reply)
{
    c->origin = origin;
    c->target = target;
    c->work = work;
    c->reply = reply;
    if (target == origin) {
        work(c);
        return;
    }
    c->msg.cb = call_work_cb;
    ring_post(target, &c->msg);
}

void ring_call_return(struct ring_call *c)
{
    if (c->target == c->origin) {
        c->reply(c);
        return;
    }
    c->msg.cb = call_reply_cb;
    ring_post(c->origin, &c->msg);
}
