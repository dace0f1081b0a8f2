/* ring_curl — see ring_curl.h. */
#include "ring/ring_curl.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>

/* One watched socket. A mask change or removal cancels the poll and, for a change, arms a new
 * one with a fresh struct; a struct is freed when its poll's final completion arrives. */
struct rc_sock {
    struct ring_op op;
    struct rc_sock *next, *prev; /* every live one, so fini can free what is still pending */
    struct ring_curl *rc;
    curl_socket_t fd;
    int what;     /* CURL_POLL_* */
    bool removed; /* curl is done with it: free on the final CQE, report nothing */
};

static void drain_done(struct ring_curl *rc)
{
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(rc->multi, &left))) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        CURL *easy = msg->easy_handle;
        CURLcode code = msg->data.result;
        struct ring_curl_xfer *x = NULL;
        curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&x);
        long status = 0;
        curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
        curl_multi_remove_handle(rc->multi, easy);
        rc->active--;
        if (x) {
            x->active = false;
            x->done(x, code, status);
        }
    }
}

static void act(struct ring_curl *rc, curl_socket_t fd, int ev)
{
    curl_multi_socket_action(rc->multi, fd, ev, &rc->running);
    drain_done(rc);
}

static void poll_arm(struct rc_sock *s);

static void sock_free(struct rc_sock *s)
{
    if (s->prev)
        s->prev->next = s->next;
    else
        s->rc->socks = s->next;
    if (s->next)
        s->next->prev = s->prev;
    free(s);
}

static void poll_cb(struct ring_op *op, int res, uint32_t flags)
{
    struct rc_sock *s = (struct rc_sock *)op;
    bool more = (flags & IORING_CQE_F_MORE) != 0;
    if (s->removed) {
        if (!more)
            sock_free(s);
        return;
    }
    if (res >= 0) {
        int ev = 0;
        if (res & POLLIN)
            ev |= CURL_CSELECT_IN;
        if (res & POLLOUT)
            ev |= CURL_CSELECT_OUT;
        if (res & (POLLERR | POLLHUP))
            ev |= CURL_CSELECT_ERR;
        act(s->rc, s->fd, ev);
    } else if (res != -ECANCELED) {
        act(s->rc, s->fd, CURL_CSELECT_ERR);
    }
    /* curl may have removed the socket inside act(); if not and the kernel ended the
     * multishot poll, watch it again. */
    if (!more) {
        if (s->removed)
            sock_free(s);
        else
            poll_arm(s);
    }
}

static void poll_arm(struct rc_sock *s)
{
    unsigned mask = 0;
    if (s->what & CURL_POLL_IN)
        mask |= POLLIN;
    if (s->what & CURL_POLL_OUT)
        mask |= POLLOUT;
    struct io_uring_sqe *sqe = ring_sqe(s->rc->ring);
    io_uring_prep_poll_multishot(sqe, s->fd, mask);
    ring_sqe_set_op(sqe, &s->op);
}

static void poll_cancel(struct rc_sock *s)
{
    s->removed = true;
    struct io_uring_sqe *sqe = ring_sqe(s->rc->ring);
    io_uring_prep_poll_remove(sqe, (__u64)(uintptr_t)&s->op);
    ring_sqe_set_op(sqe, NULL);
}

static int socket_cb(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    struct ring_curl *rc = userp;
    struct rc_sock *s = socketp;
    if (s) {
        if (what == s->what)
            return 0;
        poll_cancel(s);
        curl_multi_assign(rc->multi, fd, NULL);
    }
    if (what == CURL_POLL_REMOVE)
        return 0;
    s = calloc(1, sizeof(*s));
    if (!s)
        return -1;
    s->op.cb = poll_cb;
    s->rc = rc;
    s->fd = fd;
    s->what = what;
    s->next = rc->socks;
    if (rc->socks)
        rc->socks->prev = s;
    rc->socks = s;
    curl_multi_assign(rc->multi, fd, s);
    poll_arm(s);
    return 0;
}

static void timer_fire(struct ring_timer *t)
{
    struct ring_curl *rc = (struct ring_curl *)((char *)t - offsetof(struct ring_curl, timer));
    act(rc, CURL_SOCKET_TIMEOUT, 0);
}

static int timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
    struct ring_curl *rc = userp;
    if (timeout_ms < 0) {
        ring_timer_cancel(rc->ring, &rc->timer);
        return 0;
    }
    /* 0 means "as soon as possible": the timer fires in this same loop iteration's timer pass,
     * outside curl's own call stack (curl must not be re-entered from its callbacks). */
    return ring_timer_arm(rc->ring, &rc->timer, (uint64_t)timeout_ms) < 0 ? -1 : 0;
}

int ring_curl_init(struct ring_curl *rc, struct ring *r)
{
    memset(rc, 0, sizeof(*rc));
    rc->ring = r;
    rc->timer.cb = timer_fire;
    rc->multi = curl_multi_init();
    if (!rc->multi)
        return -ENOMEM;
    curl_multi_setopt(rc->multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
    curl_multi_setopt(rc->multi, CURLMOPT_SOCKETDATA, rc);
    curl_multi_setopt(rc->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
    curl_multi_setopt(rc->multi, CURLMOPT_TIMERDATA, rc);
    curl_multi_setopt(rc->multi, CURLMOPT_MAX_HOST_CONNECTIONS, 64L);
    return 0;
}

void ring_curl_fini(struct ring_curl *rc)
{
    ring_timer_cancel(rc->ring, &rc->timer);
    if (rc->multi)
        curl_multi_cleanup(rc->multi);
    rc->multi = NULL;
    /* the reactor is stopping: polls still pending will never complete */
    while (rc->socks)
        sock_free(rc->socks);
}

int ring_curl_start(struct ring_curl *rc, struct ring_curl_xfer *x, ring_curl_done_cb done)
{
    x->done = done;
    curl_easy_setopt(x->easy, CURLOPT_PRIVATE, (char *)x);
    curl_easy_setopt(x->easy, CURLOPT_NOSIGNAL, 1L);
    if (curl_multi_add_handle(rc->multi, x->easy) != CURLM_OK)
        return -EINVAL;
    x->active = true;
    rc->active++;
    return 0;
}

void ring_curl_cancel(struct ring_curl *rc, struct ring_curl_xfer *x)
{
    if (!x->active)
        return;
    curl_multi_remove_handle(rc->multi, x->easy);
    x->active = false;
    rc->active--;
}

void ring_curl_unpause(struct ring_curl *rc, struct ring_curl_xfer *x)
{
    if (x->active)
        curl_easy_pause(x->easy, CURLPAUSE_CONT);
}
