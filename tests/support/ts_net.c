/* ts_net — see ts_net.h. */
#include "ts_net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ts.h"
#include "ts_tls.h"

int ts_conn_open(struct ts_conn *c, int port)
{
    memset(c, 0, sizeof(*c));
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c->fd < 0)
        return -errno;
    struct sockaddr_in a;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(c->fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
        int e = -errno;
        close(c->fd);
        c->fd = -1;
        return e;
    }
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return 0;
}

void ts_conn_close(struct ts_conn *c)
{
    if (c->tls)
        ts_tls_free(c);
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    free(c->buf);
    c->buf = NULL;
    c->len = c->cap = 0;
}

void ts_conn_abort(struct ts_conn *c)
{
    struct linger l = {.l_onoff = 1, .l_linger = 0};
    if (c->fd >= 0)
        setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
    ts_conn_close(c);
}

int ts_conn_send(struct ts_conn *c, const void *p, size_t n)
{
    if (c->tls)
        return ts_tls_write(c, p, n);
    const char *s = p;
    while (n > 0) {
        ssize_t w = send(c->fd, s, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -errno;
        s += w;
        n -= (size_t)w;
    }
    return 0;
}

int ts_conn_send_str(struct ts_conn *c, const char *s)
{
    return ts_conn_send(c, s, strlen(s));
}

int ts_conn_send_slow(struct ts_conn *c, const void *p, size_t n, unsigned delay_ms)
{
    const char *s = p;
    for (size_t i = 0; i < n; i++) {
        int rc = ts_conn_send(c, s + i, 1);
        if (rc < 0)
            return rc;
        if (delay_ms)
            ts_sleep_ms(delay_ms);
    }
    return 0;
}

int ts_conn_fill(struct ts_conn *c, int timeout_ms)
{
    if (c->eof)
        return 0;
    if (c->cap - c->len < 65536) {
        size_t ncap = c->cap ? c->cap * 2 : 131072;
        while (ncap - c->len < 65536)
            ncap *= 2;
        char *nb = realloc(c->buf, ncap + 1);
        if (!nb)
            return -ENOMEM;
        c->buf = nb;
        c->cap = ncap;
    }
    if (c->tls) { /* OpenSSL may hold decrypted bytes already: no poll, a receive timeout */
        int n = ts_tls_read(c, c->buf + c->len, c->cap - c->len, timeout_ms);
        if (n < 0)
            return n;
        c->eof = n == 0;
        c->len += (size_t)n;
        c->buf[c->len] = '\0';
        return n;
    }
    struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
    int pr;
    do {
        pr = poll(&pfd, 1, timeout_ms < 0 ? 0 : timeout_ms);
    } while (pr < 0 && errno == EINTR);
    if (pr == 0)
        return -ETIMEDOUT;
    if (pr < 0)
        return -errno;
    ssize_t n = recv(c->fd, c->buf + c->len, c->cap - c->len, 0);
    if (n < 0 && errno == ECONNRESET)
        n = 0;
    if (n < 0)
        return -errno;
    if (n == 0)
        c->eof = true;
    c->len += (size_t)n;
    c->buf[c->len] = '\0';
    return (int)n;
}

void ts_conn_consume(struct ts_conn *c, size_t n)
{
    if (n >= c->len) {
        c->len = 0;
    } else {
        memmove(c->buf, c->buf + n, c->len - n);
        c->len -= n;
    }
}

/* Fills until at least `need` bytes are buffered; 0, -ECONNRESET at EOF, or -ETIMEDOUT. */
static int fill_to(struct ts_conn *c, size_t need, long long deadline)
{
    while (c->len < need) {
        int rc = ts_conn_fill(c, (int)(deadline - ts_now_ms()));
        if (rc == 0)
            return -ECONNRESET;
        if (rc < 0)
            return rc;
    }
    return 0;
}

static char *find_crlf2(struct ts_conn *c)
{
    return c->len ? memmem(c->buf, c->len, "\r\n\r\n", 4) : NULL;
}

static int parse_head(struct ts_resp *r, char *head)
{
    char *line = head, *eol = strstr(line, "\r\n");
    if (!eol)
        return -EPROTO;
    *eol = '\0';
    if (strncmp(line, "HTTP/1.", 7) != 0 || strlen(line) < 12 || line[8] != ' ')
        return -EPROTO;
    r->status = atoi(line + 9);
    for (line = eol + 2; *line; line = eol + 2) {
        eol = strstr(line, "\r\n");
        if (!eol)
            return -EPROTO;
        *eol = '\0';
        char *colon = strchr(line, ':');
        if (!colon || r->nhdrs == TS_MAX_HDRS)
            return -EPROTO;
        *colon = '\0';
        char *v = colon + 1;
        while (*v == ' ' || *v == '\t')
            v++;
        r->hdrs[r->nhdrs].name = line;
        r->hdrs[r->nhdrs].value = v;
        r->nhdrs++;
    }
    return 0;
}

int ts_read_head(struct ts_conn *c, struct ts_resp *r, int timeout_ms)
{
    memset(r, 0, sizeof(*r));
    long long deadline = ts_now_ms() + timeout_ms;
    char *end;
    while ((end = find_crlf2(c)) == NULL) {
        if (c->len > (1u << 20))
            return -EPROTO;
        int rc = ts_conn_fill(c, (int)(deadline - ts_now_ms()));
        if (rc == 0)
            return -ECONNRESET;
        if (rc < 0)
            return rc;
    }
    size_t hl = (size_t)(end - c->buf) + 4;
    r->head = malloc(hl + 1);
    if (!r->head)
        return -ENOMEM;
    memcpy(r->head, c->buf, hl);
    r->head[hl - 2] = '\0'; /* keep the last header's CR LF for the line splitter */
    ts_conn_consume(c, hl);
    return parse_head(r, r->head);
}

static int body_take(struct ts_conn *c, struct ts_resp *r, size_t n)
{
    char *nb = realloc(r->body, r->body_len + n + 1);
    if (!nb)
        return -ENOMEM;
    r->body = nb;
    memcpy(r->body + r->body_len, c->buf, n);
    r->body_len += n;
    r->body[r->body_len] = '\0';
    ts_conn_consume(c, n);
    return 0;
}

static int read_chunked(struct ts_conn *c, struct ts_resp *r, long long deadline)
{
    r->chunked = true;
    for (;;) {
        char *eol;
        while ((eol = c->len ? memmem(c->buf, c->len, "\r\n", 2) : NULL) == NULL) {
            int rc = fill_to(c, c->len + 1, deadline);
            if (rc < 0)
                return rc;
        }
        char *endp;
        unsigned long long n = strtoull(c->buf, &endp, 16);
        if (endp == c->buf)
            return -EPROTO;
        ts_conn_consume(c, (size_t)(eol - c->buf) + 2);
        if (n == 0)
            break;
        int rc = fill_to(c, (size_t)n + 2, deadline);
        if (rc < 0)
            return rc;
        if (memcmp(c->buf + n, "\r\n", 2) != 0)
            return -EPROTO;
        if ((rc = body_take(c, r, (size_t)n)) < 0)
            return rc;
        ts_conn_consume(c, 2);
    }
    for (;;) { /* trailers, up to the empty line */
        char *eol;
        while ((eol = c->len ? memmem(c->buf, c->len, "\r\n", 2) : NULL) == NULL) {
            int rc = fill_to(c, c->len + 1, deadline);
            if (rc < 0)
                return rc;
        }
        size_t ll = (size_t)(eol - c->buf);
        ts_conn_consume(c, ll + 2);
        if (ll == 0)
            return 0;
    }
}

int ts_read_body(struct ts_conn *c, struct ts_resp *r, bool head_request, int timeout_ms)
{
    long long deadline = ts_now_ms() + timeout_ms;
    r->body = calloc(1, 1);
    r->body_len = 0;
    if (!r->body)
        return -ENOMEM;
    if (head_request || r->status < 200 || r->status == 204 || r->status == 304)
        return 0;
    const char *te = ts_resp_header(r, "transfer-encoding");
    if (te && strcasecmp(te, "chunked") == 0)
        return read_chunked(c, r, deadline);
    const char *cl = ts_resp_header(r, "content-length");
    if (cl) {
        size_t n = (size_t)strtoull(cl, NULL, 10);
        int rc = fill_to(c, n, deadline);
        return rc < 0 ? rc : body_take(c, r, n);
    }
    for (;;) { /* delimited by the close */
        int rc = ts_conn_fill(c, (int)(deadline - ts_now_ms()));
        if (rc < 0)
            return rc;
        if (rc == 0)
            return body_take(c, r, c->len);
    }
}

int ts_read_response(struct ts_conn *c, struct ts_resp *r, bool head_request, int timeout_ms)
{
    long long deadline = ts_now_ms() + timeout_ms;
    int rc = ts_read_head(c, r, timeout_ms);
    if (rc == 0)
        rc = ts_read_body(c, r, head_request, (int)(deadline - ts_now_ms()));
    return rc;
}

void ts_resp_free(struct ts_resp *r)
{
    free(r->head);
    free(r->body);
    memset(r, 0, sizeof(*r));
}

const char *ts_resp_header(const struct ts_resp *r, const char *name)
{
    for (unsigned i = 0; i < r->nhdrs; i++) {
        if (strcasecmp(r->hdrs[i].name, name) == 0)
            return r->hdrs[i].value;
    }
    return NULL;
}

unsigned ts_resp_header_count(const struct ts_resp *r, const char *name)
{
    unsigned n = 0;
    for (unsigned i = 0; i < r->nhdrs; i++)
        n += strcasecmp(r->hdrs[i].name, name) == 0;
    return n;
}

int ts_conn_expect_eof(struct ts_conn *c, int timeout_ms)
{
    long long deadline = ts_now_ms() + timeout_ms;
    for (;;) {
        if (c->len > 0)
            return -EPROTO;
        if (c->eof)
            return 0;
        int rc = ts_conn_fill(c, (int)(deadline - ts_now_ms()));
        if (rc == 0)
            return 0;
        if (rc < 0)
            return rc;
    }
}

int ts_http_exchange(int port, const char *req, struct ts_resp *r, int timeout_ms)
{
    struct ts_conn c;
    memset(r, 0, sizeof(*r));
    int rc = ts_conn_open(&c, port);
    if (rc < 0)
        return rc;
    rc = ts_conn_send_str(&c, req);
    if (rc == 0)
        rc = ts_read_response(&c, r, strncmp(req, "HEAD ", 5) == 0, timeout_ms);
    ts_conn_close(&c);
    return rc;
}

int ts_http_status(int port, const char *path, int timeout_ms)
{
    char req[1024];
    snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", path);
    struct ts_resp r;
    int rc = ts_http_exchange(port, req, &r, timeout_ms);
    if (rc == 0)
        rc = r.status;
    ts_resp_free(&r);
    return rc;
}
