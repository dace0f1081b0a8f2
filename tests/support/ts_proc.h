/* ts_proc — the gateway under test as a child process, and scratch files.
 *
 * ts_server_start runs $COMFYGATE_BIN with the test's environment, minus every setting the
 * gateway reads (so a stray PORT or STATIC_DIR in the caller's environment cannot leak in),
 * plus PORT=0, a PORT_FILE in a fresh scratch directory and the case's own overrides. The
 * child runs in that directory (so no .env is picked up), writes stdout and stderr to files
 * there, and dies with the test (PR_SET_PDEATHSIG). Start waits until the port file exists and
 * GET /ready answers 200. Stopping checks what the brief of every test requires: the exit code
 * and a stderr free of sanitizer reports. */
#ifndef COMFYGATE_TS_PROC_H
#define COMFYGATE_TS_PROC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct ts_server {
    pid_t pid;
    int port;
    bool tls;                    /* started with TLS_CERT_FILE: readiness is checked over TLS */
    bool reaped;
    int wstatus;                 /* waitpid status once reaped */
    char dir[256];               /* scratch directory, removed by ts_server_cleanup */
    char out_path[320];          /* child's stdout (JSON log lines) */
    char err_path[320];          /* child's stderr */
    struct ts_server *next_live; /* harness list of started, not yet cleaned-up servers */
};

/* env: NULL-terminated "NAME=value" overrides (may be NULL). With a TLS_CERT_FILE among them
 * the readiness check speaks TLS. Returns 0, or -1 after recording a failure. */
int ts_server_start(struct ts_server *s, const char *const *env);
/* SIGTERM, wait up to timeout_ms for the exit, then ts_server_check_exit(s, 0); removes the
 * scratch directory. Returns 0 when the server stopped cleanly. */
int ts_server_stop(struct ts_server *s, int timeout_ms);
/* Waits for the child to exit; returns 0 once reaped, -1 on timeout. */
int ts_server_wait(struct ts_server *s, int timeout_ms);
/* Records failures unless the reaped child exited with `code` and its stderr is clean. */
int ts_server_check_exit(struct ts_server *s, int code);
/* Records a failure if the child's stderr holds a sanitizer report; prints it. */
int ts_server_check_stderr(struct ts_server *s);
/* Kills (SIGKILL) if still running, reaps, removes the scratch directory. */
void ts_server_cleanup(struct ts_server *s);
/* Harness: cleans up servers a case left running (after a TS_REQUIRE), checking stderr. */
void ts_server_reap_leftovers(void);

bool ts_server_alive(struct ts_server *s);
/* Open file descriptors of the child (/proc/PID/fd), or -1. */
int ts_server_fd_count(const struct ts_server *s);
/* True if the child's stdout contains `needle`. */
bool ts_server_log_has(const struct ts_server *s, const char *needle);
/* Waits until the log contains needle; 0, or -1 on timeout. */
int ts_server_wait_log(const struct ts_server *s, const char *needle, int timeout_ms);
/* The fd count once it has stopped changing (the same for 500 ms): a baseline taken right
 * after a request would still count the socket the server has not closed yet. */
int ts_server_fd_settled(const struct ts_server *s);
/* Polls until the server's fd count equals want; returns the last count seen. */
int ts_server_wait_fds(const struct ts_server *s, int want, int timeout_ms);

/* Runs $COMFYGATE_BIN to completion with args (argv[1..], NULL-terminated) and env overrides;
 * stderr (up to cap-1 bytes) lands in err. Returns the exit code, 128+signal, or -1. */
int ts_run_bin(const char *const *args, const char *const *env, char *err, size_t cap,
               int timeout_ms);

/* A fresh directory under $TMPDIR (or /tmp); 0 or -1. */
int ts_mkdtemp(char *dst, size_t cap);
void ts_rmtree(const char *path);
/* Raises RLIMIT_NOFILE to at least want (up to the hard limit); returns the new soft limit. */
long ts_raise_nofile(long want);

/* Deterministic file contents: byte i of every pattern file is ts_pattern_byte(i), so a
 * download can be checked at any offset without keeping a copy. */
static inline uint8_t ts_pattern_byte(uint64_t i)
{
    uint64_t x = (i >> 3) + 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    x ^= x >> 31;
    return (uint8_t)(x >> ((i & 7) * 8));
}
int ts_write_pattern_file(const char *path, uint64_t size);
/* Index of the first byte of p (file offset off) that differs from the pattern, or -1. */
long long ts_pattern_mismatch(const void *p, size_t n, uint64_t off);
int ts_write_file(const char *path, const void *p, size_t n);

#endif
