/* ts_tls — see ts_tls.h. */
#include "ts_tls.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ts.h"
#include "ts_proc.h"

static char last_error[512];

const char *ts_tls_error(void)
{
    return last_error;
}

/* --- external tools ----------------------------------------------------------------------- */

static pid_t tool_spawn(const char *const *argv, const char *cwd, int in_fd, int out_fd)
{
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent || (cwd && chdir(cwd) < 0))
        _exit(127);
    dup2(in_fd, 0);
    dup2(out_fd, 1);
    dup2(out_fd, 2);
    close_range(3, ~0u, 0);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    execvp(argv[0], (char *const *)argv);
    _exit(127);
}

/* Reads the child's output until EOF or the deadline. */
static void tool_collect(int fd, char *out, size_t cap, long long deadline)
{
    size_t len = 0;
    for (;;) {
        long long left = deadline - ts_now_ms();
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (left <= 0 || poll(&p, 1, (int)left) <= 0)
            break;
        char tmp[4096];
        ssize_t n = read(fd, tmp, sizeof(tmp));
        if (n <= 0)
            break;
        size_t k = (size_t)n < cap - 1 - len ? (size_t)n : cap - 1 - len;
        memcpy(out + len, tmp, k);
        len += k;
    }
    out[len] = '\0';
}

int ts_run_tool(const char *const *argv, const char *cwd, const char *in, char *out, size_t cap,
                int timeout_ms)
{
    int inp[2], outp[2];
    if (pipe2(inp, O_CLOEXEC) < 0)
        return -1;
    if (pipe2(outp, O_CLOEXEC) < 0) {
        close(inp[0]);
        close(inp[1]);
        return -1;
    }
    pid_t pid = tool_spawn(argv, cwd, inp[0], outp[1]);
    close(inp[0]);
    close(outp[1]);
    if (in && pid > 0) {
        signal(SIGPIPE, SIG_IGN);
        ssize_t w = write(inp[1], in, strlen(in));
        (void)w; /* a tool that exits early need not read it all */
    }
    close(inp[1]);
    char scratch[1];
    long long deadline = ts_now_ms() + timeout_ms;
    if (pid > 0)
        tool_collect(outp[0], out ? out : scratch, out ? cap : 1, deadline);
    close(outp[0]);
    if (pid <= 0)
        return -1;
    int st = 0;
    while (waitpid(pid, &st, WNOHANG) == 0) {
        if (ts_now_ms() >= deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            return -1;
        }
        ts_sleep_ms(5);
    }
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* --- certificates ------------------------------------------------------------------------- */

static int openssl(const char *dir, const char *const *args)
{
    const char *argv[40] = {"openssl"};
    size_t n = 1;
    for (const char *const *a = args; *a && n < 39; a++)
        argv[n++] = *a;
    argv[n] = NULL;
    char out[4096];
    int rc = ts_run_tool(argv, dir, NULL, out, sizeof(out), 60000);
    if (rc != 0)
        ts_fail(__FILE__, __LINE__, "openssl %s: exit %d: %s", args[0], rc, out);
    return rc;
}

static int cat_files(const char *dst, const char *a, const char *b)
{
    char cmd[1200];
    snprintf(cmd, sizeof(cmd), "cat '%s' '%s' > '%s'", a, b, dst);
    return system(cmd) == 0 ? 0 : -1;
}

/* A leaf for localhost signed by the CA: key (PKCS#8), then the chain file. */
static int make_leaf(struct ts_certs *k, const char *name, const char *const *keyopts, char *chain)
{
    char key[64], csr[64], crt[64];
    snprintf(key, sizeof(key), "%s.key", name);
    snprintf(csr, sizeof(csr), "%s.csr", name);
    snprintf(crt, sizeof(crt), "%s.pem", name);
    const char *req[20] = {"req",  "-new", "-nodes", "-keyout",      key,
                           "-out", csr,    "-subj",  "/CN=localhost"};
    size_t n = 9;
    for (const char *const *o = keyopts; *o; o++)
        req[n++] = *o;
    req[n] = NULL;
    const char *sign[] = {"x509",     "-req",   "-in",
                          csr,        "-CA",    "ca.pem",
                          "-CAkey",   "ca.key", "-CAcreateserial",
                          "-days",    "2",      "-extfile",
                          "leaf.cnf", "-out",   crt,
                          NULL};
    if (openssl(k->dir, req) != 0 || openssl(k->dir, sign) != 0)
        return -1;
    char leaf[400];
    snprintf(leaf, sizeof(leaf), "%s/%s", k->dir, crt);
    return cat_files(chain, leaf, k->ca);
}

bool ts_tls_tool_available(void)
{
    char out[256];
    const char *ver[] = {"openssl", "version", NULL};
    return ts_run_tool(ver, NULL, NULL, out, sizeof(out), 10000) == 0;
}

int ts_certs_make(struct ts_certs *k)
{
    memset(k, 0, sizeof(*k));
    if (ts_mkdtemp(k->dir, sizeof(k->dir)) < 0)
        return -1;
    snprintf(k->ca, sizeof(k->ca), "%s/ca.pem", k->dir);
    snprintf(k->rsa_chain, sizeof(k->rsa_chain), "%s/rsa-chain.pem", k->dir);
    snprintf(k->rsa_key, sizeof(k->rsa_key), "%s/rsa.key", k->dir);
    snprintf(k->ec_chain, sizeof(k->ec_chain), "%s/ec-chain.pem", k->dir);
    snprintf(k->ec_key, sizeof(k->ec_key), "%s/ec.key", k->dir);
    snprintf(k->ec_key_sec1, sizeof(k->ec_key_sec1), "%s/ec-sec1.key", k->dir);
    snprintf(k->other_key, sizeof(k->other_key), "%s/other.key", k->dir);
    char cnf[400];
    snprintf(cnf, sizeof(cnf), "%s/leaf.cnf", k->dir);
    static const char leaf_cnf[] = "basicConstraints=CA:FALSE\n"
                                   "keyUsage=critical,digitalSignature,keyEncipherment\n"
                                   "extendedKeyUsage=serverAuth\n"
                                   "subjectAltName=DNS:localhost,IP:127.0.0.1\n";
    const char *ca[] = {"req",
                        "-x509",
                        "-newkey",
                        "rsa:2048",
                        "-nodes",
                        "-keyout",
                        "ca.key",
                        "-out",
                        "ca.pem",
                        "-days",
                        "2",
                        "-subj",
                        "/CN=comfygate test CA",
                        "-addext",
                        "basicConstraints=critical,CA:TRUE",
                        "-addext",
                        "keyUsage=critical,keyCertSign,cRLSign",
                        NULL};
    const char *rsa_opts[] = {"-newkey", "rsa:2048", NULL};
    const char *ec_opts[] = {"-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", NULL};
    const char *sec1[] = {"ec", "-in", "ec.key", "-out", "ec-sec1.key", NULL};
    const char *other[] = {"genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
                           "-out",    "other.key",  NULL};
    if (ts_write_file(cnf, leaf_cnf, sizeof(leaf_cnf) - 1) < 0 || openssl(k->dir, ca) != 0 ||
        make_leaf(k, "rsa", rsa_opts, k->rsa_chain) < 0 ||
        make_leaf(k, "ec", ec_opts, k->ec_chain) < 0 || openssl(k->dir, sec1) != 0 ||
        openssl(k->dir, other) != 0) {
        ts_fail(__FILE__, __LINE__, "could not make the test certificates in %s", k->dir);
        return -1;
    }
    return 0;
}

void ts_certs_remove(struct ts_certs *k)
{
    if (k->dir[0])
        ts_rmtree(k->dir);
    k->dir[0] = '\0';
}

/* --- TLS connections ------------------------------------------------------------------------ */

static void set_timeout(int fd, int opt, int ms)
{
    if (ms <= 0)
        ms = 1; /* 0 would mean "forever" */
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
    setsockopt(fd, SOL_SOCKET, opt, &tv, sizeof(tv));
}

static void note_ssl_error(const char *what)
{
    unsigned long e = ERR_get_error();
    char buf[256] = "";
    if (e)
        ERR_error_string_n(e, buf, sizeof(buf));
    snprintf(last_error, sizeof(last_error), "%s: %s", what, e ? buf : strerror(errno));
    ERR_clear_error();
}

static SSL_CTX *ctx_new(const struct ts_tls_opts *o)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx)
        return NULL;
    /* a server that closes without close_notify is an ordinary end of stream in these tests */
    SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
    if (o && o->tls13_only) {
        SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
    } else {
        SSL_CTX_set_max_proto_version(ctx, TLS1_2_VERSION);
    }
    bool ok = true;
    if (o && o->ciphers)
        ok = SSL_CTX_set_cipher_list(ctx, o->ciphers) == 1;
    if (ok && o && o->cafile) {
        ok = SSL_CTX_load_verify_locations(ctx, o->cafile, NULL) == 1;
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    }
    if (ok && o && o->alpn) {
        unsigned char wire[64];
        size_t l = strlen(o->alpn);
        wire[0] = (unsigned char)l;
        memcpy(wire + 1, o->alpn, l);
        ok = SSL_CTX_set_alpn_protos(ctx, wire, (unsigned)l + 1) == 0;
    }
    if (!ok) {
        note_ssl_error("client set-up");
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

int ts_tls_start(struct ts_conn *c, const struct ts_tls_opts *o, int timeout_ms)
{
    last_error[0] = '\0';
    SSL_CTX *ctx = ctx_new(o);
    if (!ctx)
        return -EPROTO;
    SSL *ssl = SSL_new(ctx);
    SSL_CTX_free(ctx); /* the SSL keeps its own reference */
    if (!ssl)
        return -ENOMEM;
    SSL_set_tlsext_host_name(ssl, "localhost");
    if (o && o->cafile)
        SSL_set1_host(ssl, "localhost");
    if (o && o->session)
        SSL_set_session(ssl, o->session);
    SSL_set_fd(ssl, c->fd);
    set_timeout(c->fd, SO_RCVTIMEO, timeout_ms);
    set_timeout(c->fd, SO_SNDTIMEO, timeout_ms);
    ERR_clear_error();
    errno = 0;
    int r = SSL_connect(ssl);
    if (r != 1) {
        int e = SSL_get_error(ssl, r);
        bool slow = (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_SYSCALL) && errno == EAGAIN;
        note_ssl_error(slow ? "handshake timed out" : "handshake failed");
        SSL_free(ssl);
        return slow ? -ETIMEDOUT : -EPROTO;
    }
    c->tls = ssl;
    set_timeout(c->fd, SO_SNDTIMEO, 60000); /* liveness only */
    return 0;
}

int ts_tls_open(struct ts_conn *c, int port, const struct ts_tls_opts *o, int timeout_ms)
{
    int rc = ts_conn_open(c, port);
    if (rc < 0)
        return rc;
    rc = ts_tls_start(c, o, timeout_ms);
    if (rc < 0)
        ts_conn_close(c);
    return rc;
}

const char *ts_tls_cipher(const struct ts_conn *c)
{
    return c->tls ? SSL_get_cipher_name((SSL *)c->tls) : "";
}

const char *ts_tls_alpn(const struct ts_conn *c, char *buf, size_t cap)
{
    const unsigned char *p = NULL;
    unsigned n = 0;
    if (c->tls)
        SSL_get0_alpn_selected((SSL *)c->tls, &p, &n);
    snprintf(buf, cap, "%.*s", (int)n, p ? (const char *)p : "");
    return buf;
}

const char *ts_tls_version(const struct ts_conn *c)
{
    return c->tls ? SSL_get_version((SSL *)c->tls) : "";
}

bool ts_tls_resumed(const struct ts_conn *c)
{
    return c->tls && SSL_session_reused((SSL *)c->tls);
}

void *ts_tls_session(const struct ts_conn *c)
{
    return c->tls ? SSL_get1_session((SSL *)c->tls) : NULL;
}

void ts_tls_session_free(void *session)
{
    SSL_SESSION_free(session);
}

void ts_tls_shutdown(struct ts_conn *c)
{
    if (c->tls)
        SSL_shutdown((SSL *)c->tls);
}

bool ts_tls_closed_cleanly(const struct ts_conn *c)
{
    return c->tls && (SSL_get_shutdown((SSL *)c->tls) & SSL_RECEIVED_SHUTDOWN);
}

int ts_tls_client_hello(unsigned char *buf, size_t cap)
{
    SSL_CTX *ctx = ctx_new(NULL);
    SSL *ssl = ctx ? SSL_new(ctx) : NULL;
    SSL_CTX_free(ctx);
    if (!ssl)
        return -1;
    BIO *in = BIO_new(BIO_s_mem()), *out = BIO_new(BIO_s_mem());
    SSL_set_bio(ssl, in, out); /* the SSL owns both now */
    SSL_set_tlsext_host_name(ssl, "localhost");
    SSL_set_connect_state(ssl);
    SSL_do_handshake(ssl); /* wants to read the ServerHello: stops after writing its hello */
    int n = BIO_read(out, buf, cap > 1u << 30 ? 1 << 30 : (int)cap);
    SSL_free(ssl);
    ERR_clear_error();
    return n > 0 ? n : -1;
}

int ts_tls_read(struct ts_conn *c, void *p, size_t n, int timeout_ms)
{
    SSL *ssl = c->tls;
    set_timeout(c->fd, SO_RCVTIMEO, timeout_ms);
    ERR_clear_error();
    errno = 0;
    int r = SSL_read(ssl, p, n > 1u << 30 ? 1 << 30 : (int)n);
    if (r > 0)
        return r;
    int e = SSL_get_error(ssl, r);
    if ((e == SSL_ERROR_WANT_READ || e == SSL_ERROR_SYSCALL) &&
        (errno == EAGAIN || errno == EWOULDBLOCK))
        return -ETIMEDOUT;
    ERR_clear_error();
    return 0; /* close_notify, FIN, reset or a fatal alert: the connection is over */
}

int ts_tls_write(struct ts_conn *c, const void *p, size_t n)
{
    SSL *ssl = c->tls;
    const char *s = p;
    while (n > 0) {
        ERR_clear_error();
        int w = SSL_write(ssl, s, n > 1u << 30 ? 1 << 30 : (int)n);
        if (w <= 0) {
            ERR_clear_error();
            return -EPIPE;
        }
        s += w;
        n -= (size_t)w;
    }
    return 0;
}

void ts_tls_free(struct ts_conn *c)
{
    SSL_free((SSL *)c->tls);
    c->tls = NULL;
}

int ts_https_status(int port, const char *path, int timeout_ms)
{
    struct ts_conn c;
    int rc = ts_tls_open(&c, port, NULL, timeout_ms);
    if (rc < 0)
        return rc;
    char req[1024];
    snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", path);
    struct ts_resp r;
    rc = ts_conn_send_str(&c, req);
    if (rc == 0)
        rc = ts_read_response(&c, &r, false, timeout_ms);
    if (rc == 0)
        rc = r.status;
    ts_resp_free(&r);
    ts_conn_close(&c);
    return rc;
}
