/* ts_proc — see ts_proc.h. */
#include "ts_proc.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ts.h"
#include "ts_net.h"
#include "ts_tls.h"

extern char **environ;

static struct ts_server *live_servers;

/* Only these pass from the test's environment to the child: enough to run it (and its
 * sanitizers), never a gateway setting. */
static bool env_passes(const char *kv)
{
    static const char *const keep[] = {
        "PATH=", "HOME=",  "TMPDIR=", "LANG=",   "LC_ALL=", "LD_LIBRARY_PATH=",
        "ASAN_", "UBSAN_", "LSAN_",   "MALLOC_", "TSAN_",   NULL};
    for (const char *const *k = keep; *k; k++) {
        if (strncmp(kv, *k, strlen(*k)) == 0)
            return true;
    }
    return false;
}

/* Sets kv ("NAME=value") in envp, replacing an entry with the same name: the gateway reads
 * with getenv, which returns the first match. */
static void env_set(char **envp, size_t *n, const char *kv)
{
    const char *eq = strchr(kv, '=');
    size_t kl = eq ? (size_t)(eq - kv) + 1 : strlen(kv);
    for (size_t i = 0; i < *n; i++) {
        if (strncmp(envp[i], kv, kl) == 0) {
            free(envp[i]);
            envp[i] = strdup(kv);
            return;
        }
    }
    envp[(*n)++] = strdup(kv);
    envp[*n] = NULL;
}

static char **child_env(const char *const *over, const char *port_file)
{
    size_t cap = 64, n = 0;
    for (char **e = environ; *e; e++)
        cap++;
    for (const char *const *o = over; o && *o; o++)
        cap++;
    char **envp = calloc(cap, sizeof(*envp));
    if (!envp)
        abort();
    for (char **e = environ; *e; e++) {
        if (env_passes(*e))
            env_set(envp, &n, *e);
    }
    char pf[400];
    env_set(envp, &n, "HOST=127.0.0.1");
    env_set(envp, &n, "PORT=0");
    env_set(envp, &n, "THREADS=2");
    if (port_file) {
        snprintf(pf, sizeof(pf), "PORT_FILE=%s", port_file);
        env_set(envp, &n, pf);
    }
    for (const char *const *o = over; o && *o; o++)
        env_set(envp, &n, *o);
    return envp;
}

static void env_free(char **envp)
{
    for (char **e = envp; *e; e++)
        free(*e);
    free(envp);
}

/* fork + exec with cwd, stdout and stderr redirected. Only async-signal-safe calls after fork:
 * the caller may have threads. */
static pid_t spawn(char *const argv[], char *const envp[], const char *cwd, const char *out,
                   const char *err)
{
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive the test */
    if (getppid() != parent)
        _exit(127);
    int in = open("/dev/null", O_RDONLY);
    int o = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int e = open(err, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (in < 0 || o < 0 || e < 0 || chdir(cwd) < 0)
        _exit(127);
    dup2(in, 0);
    dup2(o, 1);
    dup2(e, 2);
    close_range(3, ~0u, 0); /* test sockets must not stay open in the server */
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    execve(argv[0], argv, envp);
    _exit(127);
}

static const char *bin_path(void)
{
    const char *b = getenv("COMFYGATE_BIN");
    return b ? b : "comfygate";
}

static void dump_file(const char *what, const char *path, size_t max)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    char line[1024];
    size_t total = 0;
    ts_note("---- %s (%s) ----", what, path);
    while (fgets(line, sizeof(line), f) && total < max) {
        total += strlen(line);
        line[strcspn(line, "\n")] = '\0';
        ts_note("%s", line);
    }
    fclose(f);
}

static int read_port(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    int port = -1;
    if (fscanf(f, "%d", &port) != 1)
        port = -1;
    fclose(f);
    return port;
}

static int wait_ready(struct ts_server *s, const char *port_file)
{
    long long deadline = ts_now_ms() + 30000;
    while (ts_now_ms() < deadline) {
        if (!ts_server_alive(s)) {
            ts_fail(__FILE__, __LINE__, "server exited during start-up (status 0x%x)", s->wstatus);
            dump_file("server stderr", s->err_path, 8192);
            return -1;
        }
        if (s->port <= 0)
            s->port = read_port(port_file);
        int st = -1;
        if (s->port > 0)
            st = s->tls ? ts_https_status(s->port, "/ready", 2000)
                        : ts_http_status(s->port, "/ready", 2000);
        if (st == 200)
            return 0;
        ts_sleep_ms(10);
    }
    ts_fail(__FILE__, __LINE__, "server not ready within 30 s");
    return -1;
}

int ts_server_start(struct ts_server *s, const char *const *env)
{
    memset(s, 0, sizeof(*s));
    s->pid = -1;
    for (const char *const *e = env; e && *e; e++)
        s->tls = s->tls || (strncmp(*e, "TLS_CERT_FILE=", 14) == 0 && (*e)[14]);
    if (ts_mkdtemp(s->dir, sizeof(s->dir)) < 0) {
        ts_fail(__FILE__, __LINE__, "mkdtemp: %s", strerror(errno));
        return -1;
    }
    char port_file[400], workflows[400];
    snprintf(port_file, sizeof(port_file), "%s/port", s->dir);
    /* The gateway's relative defaults (./data, ./workflows) resolve in the scratch directory;
     * an empty workflows directory keeps the job engine out of the HTTP tests. */
    snprintf(workflows, sizeof(workflows), "%s/workflows", s->dir);
    mkdir(workflows, 0755);
    snprintf(s->out_path, sizeof(s->out_path), "%s/stdout", s->dir);
    snprintf(s->err_path, sizeof(s->err_path), "%s/stderr", s->dir);
    char **envp = child_env(env, port_file);
    char *argv[] = {(char *)bin_path(), (char *)"serve", NULL};
    s->pid = spawn(argv, envp, s->dir, s->out_path, s->err_path);
    env_free(envp);
    if (s->pid < 0) {
        ts_fail(__FILE__, __LINE__, "fork: %s", strerror(errno));
        ts_rmtree(s->dir);
        return -1;
    }
    s->next_live = live_servers;
    live_servers = s;
    if (wait_ready(s, port_file) < 0) {
        ts_server_cleanup(s);
        return -1;
    }
    return 0;
}

bool ts_server_alive(struct ts_server *s)
{
    if (s->reaped || s->pid <= 0)
        return false;
    pid_t r = waitpid(s->pid, &s->wstatus, WNOHANG);
    if (r == s->pid) {
        s->reaped = true;
        return false;
    }
    return true;
}

int ts_server_wait(struct ts_server *s, int timeout_ms)
{
    long long deadline = ts_now_ms() + timeout_ms;
    while (ts_server_alive(s)) {
        if (ts_now_ms() >= deadline)
            return -1;
        ts_sleep_ms(5);
    }
    return 0;
}

int ts_server_check_stderr(struct ts_server *s)
{
    static const char *const bad[] = {"Sanitizer", "runtime error:", "SUMMARY:", NULL};
    FILE *f = fopen(s->err_path, "r");
    if (!f)
        return 0;
    char line[4096];
    int found = 0;
    while (!found && fgets(line, sizeof(line), f)) {
        for (const char *const *b = bad; *b; b++) {
            if (strstr(line, *b))
                found = 1;
        }
    }
    fclose(f);
    if (found) {
        ts_fail(__FILE__, __LINE__, "sanitizer report in the server's stderr");
        dump_file("server stderr", s->err_path, 65536);
        return -1;
    }
    return 0;
}

int ts_server_check_exit(struct ts_server *s, int code)
{
    int rc = ts_server_check_stderr(s);
    if (!s->reaped) {
        ts_fail(__FILE__, __LINE__, "server still running");
        return -1;
    }
    if (WIFSIGNALED(s->wstatus)) {
        ts_fail(__FILE__, __LINE__, "server killed by signal %d", WTERMSIG(s->wstatus));
        dump_file("server stderr", s->err_path, 16384);
        return -1;
    }
    if (WEXITSTATUS(s->wstatus) != code) {
        ts_fail(__FILE__, __LINE__, "server exit code %d, want %d", WEXITSTATUS(s->wstatus), code);
        dump_file("server stderr", s->err_path, 16384);
        return -1;
    }
    return rc;
}

int ts_server_stop(struct ts_server *s, int timeout_ms)
{
    int rc = 0;
    if (ts_server_alive(s)) {
        kill(s->pid, SIGTERM);
        if (ts_server_wait(s, timeout_ms) < 0) {
            ts_fail(__FILE__, __LINE__, "server did not exit within %d ms of SIGTERM", timeout_ms);
            rc = -1;
        }
    }
    if (rc == 0)
        rc = ts_server_check_exit(s, 0);
    ts_server_cleanup(s);
    return rc;
}

void ts_server_cleanup(struct ts_server *s)
{
    if (ts_server_alive(s)) {
        kill(s->pid, SIGKILL);
        waitpid(s->pid, &s->wstatus, 0);
        s->reaped = true;
    }
    for (struct ts_server **p = &live_servers; *p; p = &(*p)->next_live) {
        if (*p == s) {
            *p = s->next_live;
            break;
        }
    }
    /* Keep the logs of a failed case (or of every case, with TS_KEEP=1) for a post-mortem. */
    if (s->dir[0] && ts_case_failures() == 0 && !getenv("TS_KEEP"))
        ts_rmtree(s->dir);
    else if (s->dir[0])
        ts_note("server files kept in %s", s->dir);
    s->dir[0] = '\0';
}

void ts_server_reap_leftovers(void)
{
    while (live_servers) {
        struct ts_server *s = live_servers;
        ts_server_check_stderr(s);
        ts_server_cleanup(s);
    }
}

int ts_server_fd_count(const struct ts_server *s)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/fd", (int)s->pid);
    DIR *d = opendir(path);
    if (!d)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] != '.')
            n++;
    }
    closedir(d);
    return n;
}

int ts_server_fd_settled(const struct ts_server *s)
{
    long long deadline = ts_now_ms() + 10000, since = ts_now_ms();
    int n = ts_server_fd_count(s);
    while (ts_now_ms() < deadline && ts_now_ms() - since < 500) {
        ts_sleep_ms(50);
        int m = ts_server_fd_count(s);
        if (m != n) {
            n = m;
            since = ts_now_ms();
        }
    }
    return n;
}

int ts_server_wait_fds(const struct ts_server *s, int want, int timeout_ms)
{
    long long deadline = ts_now_ms() + timeout_ms;
    int n = ts_server_fd_count(s);
    while (n != want && ts_now_ms() < deadline) {
        ts_sleep_ms(20);
        n = ts_server_fd_count(s);
    }
    return n;
}

bool ts_server_log_has(const struct ts_server *s, const char *needle)
{
    FILE *f = fopen(s->out_path, "r");
    if (!f)
        return false;
    char line[8192];
    bool found = false;
    while (!found && fgets(line, sizeof(line), f))
        found = strstr(line, needle) != NULL;
    fclose(f);
    return found;
}

int ts_server_wait_log(const struct ts_server *s, const char *needle, int timeout_ms)
{
    long long deadline = ts_now_ms() + timeout_ms;
    while (!ts_server_log_has(s, needle)) {
        if (ts_now_ms() >= deadline)
            return -1;
        ts_sleep_ms(10);
    }
    return 0;
}

static void read_into(const char *path, char *dst, size_t cap)
{
    dst[0] = '\0';
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    size_t n = fread(dst, 1, cap - 1, f);
    dst[n] = '\0';
    fclose(f);
}

int ts_run_bin(const char *const *args, const char *const *env, char *err, size_t cap,
               int timeout_ms)
{
    char dir[256], out[320], errp[320];
    if (ts_mkdtemp(dir, sizeof(dir)) < 0)
        return -1;
    snprintf(out, sizeof(out), "%s/stdout", dir);
    snprintf(errp, sizeof(errp), "%s/stderr", dir);
    char *argv[32];
    size_t n = 0;
    argv[n++] = (char *)bin_path();
    for (const char *const *a = args; a && *a && n < 31; a++)
        argv[n++] = (char *)*a;
    argv[n] = NULL;
    char **envp = child_env(env, NULL);
    struct ts_server s;
    memset(&s, 0, sizeof(s));
    s.pid = spawn(argv, envp, dir, out, errp);
    env_free(envp);
    snprintf(s.err_path, sizeof(s.err_path), "%s", errp);
    int rc = -1;
    if (s.pid > 0 && ts_server_wait(&s, timeout_ms) == 0) {
        rc = WIFEXITED(s.wstatus) ? WEXITSTATUS(s.wstatus) : 128 + WTERMSIG(s.wstatus);
        ts_server_check_stderr(&s);
    } else if (s.pid > 0) {
        kill(s.pid, SIGKILL);
        waitpid(s.pid, NULL, 0);
    }
    if (err && cap)
        read_into(errp, err, cap);
    ts_rmtree(dir);
    return rc;
}

int ts_mkdtemp(char *dst, size_t cap)
{
    const char *t = getenv("TMPDIR");
    snprintf(dst, cap, "%s/comfygate-it-XXXXXX", t && t[0] ? t : "/tmp");
    return mkdtemp(dst) ? 0 : -1;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path); /* best effort */
    return 0;
}

void ts_rmtree(const char *path)
{
    nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

long ts_raise_nofile(long want)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return -1;
    if ((long)rl.rlim_cur < want) {
        rl.rlim_cur = (rlim_t)want;
        if (rl.rlim_max != RLIM_INFINITY && rl.rlim_cur > rl.rlim_max)
            rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        getrlimit(RLIMIT_NOFILE, &rl);
    }
    return (long)rl.rlim_cur;
}

int ts_write_pattern_file(const char *path, uint64_t size)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return -1;
    static uint8_t block[1 << 16];
    uint64_t off = 0;
    while (off < size) {
        size_t n = size - off < sizeof(block) ? (size_t)(size - off) : sizeof(block);
        for (size_t i = 0; i < n; i++)
            block[i] = ts_pattern_byte(off + i);
        if (write(fd, block, n) != (ssize_t)n) {
            close(fd);
            return -1;
        }
        off += n;
    }
    return close(fd);
}

long long ts_pattern_mismatch(const void *p, size_t n, uint64_t off)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++) {
        if (b[i] != ts_pattern_byte(off + i))
            return (long long)i;
    }
    return -1;
}

int ts_write_file(const char *path, const void *p, size_t n)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return -1;
    ssize_t w = write(fd, p, n);
    close(fd);
    return w == (ssize_t)n ? 0 : -1;
}
