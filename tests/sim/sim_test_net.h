/*
 * sim_test_net — loopback helpers of the comfysim integration tests: start the binary
 * ($COMFYSIM, set by meson) on an ephemeral port in a fresh temporary folder, stop it by its
 * PID, one-shot HTTP requests, and a minimal WebSocket client that reports how a connection
 * ended (close frame or bare EOF). Failures are cmocka assertions.
 */
#ifndef SIM_TEST_NET_H
#define SIM_TEST_NET_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct simt_child {
    pid_t pid; /* 0 once reaped */
    unsigned port;
    char dir[64];  /* the temporary folder */
    char root[96]; /* dir/data: --root */
};

/* Starts comfysim with --seed 1 and the given extra flags (NULL-terminated, may be NULL). */
struct simt_child *simt_spawn(const char *const *flags);
/* SIGTERM; asserts a clean exit 0, removes the folder and frees c. */
void simt_stop(struct simt_child *c);
/* Waits for the process to end by itself; returns its wait status. */
int simt_wait(struct simt_child *c);
/* Removes the folder and frees c (after simt_wait). */
void simt_child_free(struct simt_child *c);
/* The process' resident set in KiB (from /proc), or -1. */
long simt_rss_kib(pid_t pid);

/* A connected loopback socket with 10 s receive/send timeouts (asserted). */
int simt_dial(unsigned port);
/* The same without asserting: the socket, or -errno of connect(). */
int simt_try_dial(unsigned port);
void simt_send_all(int fd, const void *p, size_t n);

struct simt_reply {
    int status;
    char head[4096];
    uint8_t *body; /* NUL-terminated, malloc'd */
    size_t len;
};

/* One request on a fresh connection (Connection: close), the whole answer read back. */
struct simt_reply simt_request(unsigned port, const char *method, const char *path,
                               const char *headers, const char *body);
/* POST /prompt with a JSON body; returns the prompt_id (malloc'd), asserting a 200. */
char *simt_post_prompt(unsigned port, const json_t *body);
/* Polls /history/{id} until the entry exists (asserting it does within 60 s). New ref. */
json_t *simt_wait_history(unsigned port, const char *prompt_id);

/* --- a minimal WebSocket client ---------------------------------------------------------- */

struct simt_wsc {
    int fd;
    uint8_t buf[1 << 16];
    size_t len;
};

/* Upgrades GET path on a fresh connection, asserting the RFC 6455 example accept key. */
struct simt_wsc *simt_wsc_open(unsigned port, const char *path);
/* The next message: text as JSON, binary as {"binary": true, "len"}, a close frame as
 * {"close": true}; NULL at EOF (or a reset), i.e. the TCP connection ended. New ref. */
json_t *simt_wsc_next(struct simt_wsc *w);
void simt_wsc_close(struct simt_wsc *w);

#endif
