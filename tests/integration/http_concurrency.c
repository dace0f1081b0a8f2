/* http_concurrency — 1,000 keep-alive connections at once (libcurl multi), each doing several
 * requests: every response right (status, echoed X-Request-Id, body), every connection reused
 * (exactly 1,000 connects in all), the server holding all of them at once, and its descriptor
 * count back to where it started once the clients leave. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ts.h"
#include "ts_curl.h"
#include "ts_net.h"
#include "ts_proc.h"

#define NCONN 1000
#define ROUNDS 5
#define T_LIVE 60000

static const char *const paths[] = {"/health", "/ready", "/nope"};
static const long statuses[] = {200, 200, 404};

struct client {
    struct ts_xfer x;
    int id;
    int round;
    bool done;
};

static void client_prepare(struct client *cl, int port)
{
    char url[128], rid[64];
    const char *path = paths[(cl->id + cl->round) % 3];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port, path);
    snprintf(rid, sizeof(rid), "X-Request-Id: c%d-r%d", cl->id, cl->round);
    ts_xfer_reset(&cl->x);
    curl_easy_setopt(cl->x.easy, CURLOPT_URL, url);
    curl_slist_free_all(cl->x.req_headers);
    cl->x.req_headers = curl_slist_append(NULL, rid);
    curl_easy_setopt(cl->x.easy, CURLOPT_HTTPHEADER, cl->x.req_headers);
}

/* Checks a finished transfer; returns the connections it opened. */
static long client_check(struct client *cl, CURLcode res)
{
    long status = 0, connects = 0;
    curl_easy_getinfo(cl->x.easy, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo(cl->x.easy, CURLINFO_NUM_CONNECTS, &connects);
    int k = (cl->id + cl->round) % 3;
    char want[64], got[128] = "";
    snprintf(want, sizeof(want), "c%d-r%d", cl->id, cl->round);
    ts_xfer_header(&cl->x, "x-request-id", got, sizeof(got));
    if (res != CURLE_OK || status != statuses[k] || strcmp(got, want) != 0 || !cl->x.body ||
        !strstr(cl->x.body, k == 2 ? want : "true"))
        ts_fail(__FILE__, __LINE__, "client %d round %d: %s, status %ld, id \"%s\", body %s",
                cl->id, cl->round, curl_easy_strerror(res), status, got,
                cl->x.body ? cl->x.body : "(none)");
    return connects;
}

/* Runs one request on every client at once; returns the connections opened, or -1. */
static long run_round(CURLM *m, struct client *cls, int port)
{
    for (int i = 0; i < NCONN; i++) {
        client_prepare(&cls[i], port);
        curl_multi_add_handle(m, cls[i].x.easy);
    }
    long connects = 0;
    int running = NCONN, left = NCONN;
    long long deadline = ts_now_ms() + T_LIVE;
    while (left > 0 && ts_now_ms() < deadline) {
        curl_multi_perform(m, &running);
        CURLMsg *msg;
        int q;
        while ((msg = curl_multi_info_read(m, &q)) != NULL) {
            if (msg->msg != CURLMSG_DONE)
                continue;
            struct ts_xfer *x;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&x);
            struct client *cl = (struct client *)x; /* x is the first member */
            connects += client_check(cl, msg->data.result);
            curl_multi_remove_handle(m, msg->easy_handle);
            left--;
        }
        if (left > 0)
            curl_multi_poll(m, NULL, 0, 100, NULL);
    }
    if (left > 0) {
        ts_fail(__FILE__, __LINE__, "%d transfers unfinished", left);
        return -1;
    }
    return connects;
}

static void test_thousand_connections(void)
{
    /* 1,000 sockets here and 1,000 in the server (which inherits the limit), plus what each
     * process needs besides. */
    long lim = ts_raise_nofile(8192);
    if (lim < NCONN + 200) {
        char why[128];
        snprintf(why, sizeof(why), "RLIMIT_NOFILE cannot be raised past %ld", lim);
        ts_skip(why);
        return;
    }
    static const char *const env[] = {"ACCESS_LOG=false", NULL};
    struct ts_server s;
    TS_REQUIRE(ts_server_start(&s, env) == 0);
    int base = ts_server_fd_settled(&s);
    CURLM *m = curl_multi_init();
    curl_multi_setopt(m, CURLMOPT_MAXCONNECTS, (long)NCONN + 100);
    curl_multi_setopt(m, CURLMOPT_MAX_HOST_CONNECTIONS, 0L);
    curl_multi_setopt(m, CURLMOPT_PIPELINING, (long)CURLPIPE_NOTHING);
    struct client *cls = calloc(NCONN, sizeof(*cls));
    TS_REQUIRE(cls != NULL);
    for (int i = 0; i < NCONN; i++) {
        cls[i].id = i;
        TS_REQUIRE(ts_xfer_init(&cls[i].x, "http://127.0.0.1/", NULL) == 0);
    }
    long connects = 0;
    for (int r = 0; r < ROUNDS; r++) {
        for (int i = 0; i < NCONN; i++)
            cls[i].round = r;
        long n = run_round(m, cls, s.port);
        if (n < 0)
            break;
        connects += n;
        if (r == 0) {
            /* All 1,000 are open on the server at once (idle between rounds). */
            int fds = ts_server_fd_count(&s);
            TS_CHECKF(fds >= base + NCONN, "server holds %d fds, want >= %d", fds, base + NCONN);
        }
    }
    TS_CHECKF(connects == NCONN, "%ld connections opened for %d clients: keep-alive broken",
              connects, NCONN);
    for (int i = 0; i < NCONN; i++)
        ts_xfer_free(&cls[i].x);
    curl_multi_cleanup(m); /* closes every connection */
    free(cls);
    int n = ts_server_wait_fds(&s, base, T_LIVE);
    TS_CHECKF(n == base, "server has %d fds after the clients left, %d before", n, base);
    TS_CHECK(ts_http_status(s.port, "/health", T_LIVE) == 200);
    ts_server_stop(&s, T_LIVE);
}

int main(int argc, char **argv)
{
    static const struct ts_test tests[] = {
        {"1000 concurrent keep-alive connections x 5 requests", test_thousand_connections},
        {NULL, NULL},
    };
    curl_global_init(CURL_GLOBAL_DEFAULT);
    int rc = ts_main(argc, argv, tests);
    curl_global_cleanup();
    return rc;
}
