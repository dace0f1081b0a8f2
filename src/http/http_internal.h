/* http_internal — the structures shared by the http_server implementation files
 * (http_server.c: connections and input; http_out.c: output queue, send and splice;
 * http_response.c: responses; http_file.c: file responses; http_tls.c: TLS between the socket
 * and all of that). Not for use outside src/http. */
#ifndef COMFYGATE_HTTP_INTERNAL_H
#define COMFYGATE_HTTP_INTERNAL_H

#include <fcntl.h>
#include <stddef.h>
#include <linux/openat2.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "core/buf.h"
#include "http/http_server.h"

struct tls_conn;

#define HTTP_OUT_CHUNK 16384
#define HTTP_IOV_MAX 16
#define HTTP_CHUNK_POOL_MAX 256
#define HTTP_PIPE_POOL 64
#define HTTP_PIPE_IDLE_MS 1000

enum chunk_kind { CH_MEM, CH_EXT, CH_FILE };

struct out_chunk {
    struct out_chunk *next;
    enum chunk_kind kind;
    size_t len;  /* bytes in this chunk */
    size_t sent; /* bytes already sent */
    size_t cap;  /* CH_MEM: capacity of data[] */
    char *ext;   /* CH_EXT */
    void (*free_fn)(void *);
    int fd;     /* CH_FILE: owned, closed when done */
    off_t off;  /* CH_FILE: file offset of byte 0 */
    size_t read; /* CH_FILE: bytes moved into the pipe so far */
    bool zc;    /* CH_EXT: send with send_zc */
    char data[];
};

enum timer_kind { T_NONE, T_HEAD, T_BODY, T_IDLE, T_SEND, T_LINGER };

struct http_exchange {
    struct http_conn *conn;
    bool active;    /* dispatched, full response not queued yet */
    bool responded; /* status line queued */
    bool streaming;
    bool unframed; /* a stream to an HTTP/1.0 client: no chunks, the close ends the body */
    bool aborted;  /* http_stream_abort: no terminating chunk, the connection closes */
    bool head;
    bool close_after;
    uint64_t start_ns;
    char request_id[72];
    struct http_match match;
    struct buf headers; /* extra response header lines */
    void (*abort_cb)(struct http_exchange *, void *);
    void *abort_arg;
    void (*drain_cb)(struct http_exchange *, void *); /* streaming back-pressure */
    void *drain_arg;
    int status;
    size_t body_bytes;
    /* asynchronous file open */
    struct ring_op open_op;
    struct open_how how;
    char *file_path;
    struct http_file_opts fopts;
    char fopt_ctype[96];
    char fopt_disp[256];
    char fopt_cc[96];
    _Alignas(max_align_t) unsigned char app_slot[HTTP_APP_SLOT_SIZE];
};

struct http_conn {
    struct http_server *srv;
    struct http_conn *next, *prev; /* all connections of the server */
    struct http_conn *flush_next;  /* pending-flush list */
    int fd;
    unsigned inflight; /* ring ops + an active exchange; freed only at zero */
    bool dead;
    bool free_queued;
    bool in_flush;
    bool recv_armed;
    bool recv_paused;
    bool sending;
    bool closing; /* close once the output queue is empty */
    bool lingering;
    bool peer_eof;
    bool in_parse;
    bool raw;
    bool served;      /* a request has been dispatched */
    bool close_quick; /* once the queue is out, close without lingering */
    struct ring_op recv_op, send_op, splice_op, splice_out_op;
    struct ring_timer timer;
    enum timer_kind tkind;
    struct http_parser parser;
    struct buf pending; /* received but not parsed yet (pipelining, async handler) */
    struct out_chunk *out_head, *out_tail;
    size_t out_bytes;   /* unsent in-memory bytes */
    unsigned out_files; /* CH_FILE chunks queued, each holding an open file */
    struct iovec iov[HTTP_IOV_MAX];
    struct msghdr msg;
    unsigned zc_pending; /* send_zc notifications outstanding */
    int pipe[2];
    size_t pipe_fill;
    size_t pipe_cap;  /* what the pipe really holds */
    unsigned splices; /* splice halves in flight */
    bool splice_err;
    struct http_exchange ex;
    const struct http_upgrade_ops *up_ops;
    void *up_ctx;
    char peer[64];
    char peer_ip[48];
    /* TLS (http_tls.c). NULL on a plain connection, and then nothing below is used. */
    struct tls_conn *tls;
    struct buf tls_in;          /* ciphertext the engine could not take yet (mid-handshake) */
    struct out_chunk *tls_fbuf; /* file bytes read for encryption: len read, sent encrypted */
    struct ring_op tls_read_op;
    bool tls_reading; /* a file read is in flight */
    bool tls_ready;   /* the handshake is done: application data flows */
    bool tls_bye;     /* close_notify queued */
};

struct http_server {
    struct ring *ring;
    struct logger *log;
    const struct http_server_config *cfg;
    const struct http_router *router;
    void *app;
    int lfd;
    struct ring_op accept_op;
    bool accepting;
    bool shutting_down;
    struct ring_timer shutdown_timer;
    struct http_conn *conns;
    size_t nconns;
    struct http_conn *flush_list;
    struct http_conn *free_list; /* dead, freed at the start of the next iteration */
    struct ring_hook hook;
    struct {
        int fd[2];
        size_t cap;
        uint64_t idle_since_ns;
    } pipes[HTTP_PIPE_POOL]; /* idle splice pipes, oldest first */
    size_t npipes;
    struct ring_timer pipe_timer; /* closes pipes idle for HTTP_PIPE_IDLE_MS */
    struct out_chunk *chunk_pool;
    size_t chunk_pool_len;
    uint64_t req_counter;
    char id_prefix[20];
    char date[40];
    uint64_t date_sec;
    char common[128]; /* "Server: ..\r\nDate: ..\r\n" for date_sec */
    size_t common_len;
    uint64_t common_sec;
};

/* Queued file responses per connection before it parses no further requests: each holds a
 * descriptor, and file bodies are not in out_bytes, so a client pipelining downloads without
 * reading could otherwise make us open a file per request until the process runs out. */
#define HTTP_FILES_QUEUED_MAX 4

/* Too much queued for a client that is not reading: parse no further requests for now. Under TLS
 * the same holds for plaintext not yet given to the engine; the engine itself holds at most one
 * record more. */
static inline bool out_backlogged(const struct http_conn *c)
{
    return c->out_bytes > c->srv->cfg->max_out_bytes || c->out_files >= HTTP_FILES_QUEUED_MAX;
}

/* http_server.c */
void conn_close(struct http_conn *c);
void conn_linger(struct http_conn *c);
void conn_op_done(struct http_conn *c);
void conn_timer_set(struct http_conn *c, enum timer_kind k);
void conn_exchange_done(struct http_conn *c);
/* Plaintext from the client (from the socket, or decrypted by http_tls.c). */
void conn_input(struct http_conn *c, const char *data, size_t len);
/* Pauses or resumes reading by how much input is held. */
void conn_input_flow(struct http_conn *c);
/* Parses held input once nothing holds it back any more (the exchange is done, or the client
 * read enough of its responses), and resumes reading when there is room again. */
void conn_input_resume(struct http_conn *c);
const char *http_date(struct http_server *s);

/* http_out.c */
int out_append(struct http_conn *c, const void *p, size_t n);
int out_append_ext(struct http_conn *c, void *p, size_t n, void (*free_fn)(void *));
int out_append_file(struct http_conn *c, int fd, off_t off, size_t len);
void out_flush_later(struct http_conn *c);
void out_flush(struct http_conn *c);
void out_free_all(struct http_conn *c);
void out_pool_free(struct http_server *s);
void pipe_put(struct http_conn *c);
void pipe_reap_cb(struct ring_timer *t);
/* Nothing queued and nothing being sent (under TLS a record may be on its way after its
 * plaintext left the queue). */
static inline bool out_empty(const struct http_conn *c)
{
    return c->out_head == NULL && !c->sending;
}
/* The first chunk with bytes left to send, dropping finished ones; NULL if none. */
struct out_chunk *out_first(struct http_conn *c);
/* n bytes of the queue's head are sent (or, under TLS, given to the engine). */
void out_advance(struct http_conn *c, size_t n);
/* Wakes a streaming producer waiting for room. */
void out_drain_notify(struct http_conn *c);
/* True if the connection closes once its queue is out (sets closing while shutting down). */
bool out_closing(struct http_conn *c);
/* The queue is out: close, linger, or arm the idle/header timer. */
void out_drained(struct http_conn *c);
/* A pooled HTTP_OUT_CHUNK memory chunk, and its return. */
struct out_chunk *out_chunk_get(struct http_server *s);
void out_chunk_put(struct http_server *s, struct out_chunk *ch);

/* http_response.c */
void exchange_reset(struct http_exchange *ex);
void exchange_log(struct http_exchange *ex);
int response_head(struct http_exchange *ex, int status, const char *ctype, int64_t clen);

/* http_file.c */
void file_open_cb(struct ring_op *op, int res, uint32_t flags);

/* http_tls.c */
/* Gives a new connection its TLS engine; -errno. */
int conn_tls_attach(struct http_conn *c);
void conn_tls_release(struct http_conn *c);
/* Received ciphertext. */
void conn_tls_input(struct http_conn *c, const char *data, size_t len);
/* Moves queued plaintext through the engine and its records to the socket (out_flush). */
void conn_tls_flush(struct http_conn *c);
/* Closes gracefully: close_notify once the queue is out, then the socket, without lingering. */
void conn_tls_bye(struct http_conn *c);

#endif
