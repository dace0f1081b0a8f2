/* ratelimit — see ratelimit.h. */
#include "guard/ratelimit.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

/* One bucket. A free node's `next` links the stripe's free list. Links are node index + 1 so
 * that a zeroed table is all empty chains. */
struct rl_bucket {
    uint64_t units;  /* tokens × window_ms */
    int64_t last_ms; /* when units was last brought up to date */
    uint32_t next;
    uint32_t tag; /* high half of the key's hash: most mismatches end here */
    uint8_t keylen;
    char key[RATELIMIT_KEY_MAX - 1]; /* not NUL-terminated */
};

/* Aligned to a cache line so that two stripes' locks never share one. */
struct rl_stripe {
    _Alignas(64) pthread_mutex_t lock;
    uint32_t *heads; /* nheads chains */
    struct rl_bucket *nodes;
    uint32_t nheads; /* a power of two */
    uint32_t free_head;
    uint32_t used;
    /* A full stripe whose sweep freed nothing cannot have an idle bucket before this time
     * (takes only push a bucket's full time later, and nothing is inserted meanwhile), so
     * a flood of new keys costs one sweep per window, not one per request. */
    int64_t sweep_after_ms;
    uint64_t untracked, evicted;
};

struct ratelimit {
    struct rl_stripe stripes[RATELIMIT_STRIPES];
    struct ratelimit_config cfg;
    uint64_t cap_units; /* max × window_ms: a full bucket */
    uint64_t sipkey[2];
    uint32_t per_stripe;
    uint32_t *heads;
    struct rl_bucket *nodes;
};

/* --- SipHash-2-4 (Aumasson and Bernstein, 2012), written from the paper -------------------- */

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))

static void sip_round(uint64_t v[4])
{
    v[0] += v[1];
    v[1] = ROTL(v[1], 13) ^ v[0];
    v[0] = ROTL(v[0], 32);
    v[2] += v[3];
    v[3] = ROTL(v[3], 16) ^ v[2];
    v[0] += v[3];
    v[3] = ROTL(v[3], 21) ^ v[0];
    v[2] += v[1];
    v[1] = ROTL(v[1], 17) ^ v[2];
    v[2] = ROTL(v[2], 32);
}

static uint64_t sip_block(const unsigned char *p, size_t n)
{
    uint64_t m = 0;
    for (size_t i = 0; i < n; i++)
        m |= (uint64_t)p[i] << (8 * i);
    return m;
}

static void sip_absorb(uint64_t v[4], uint64_t m)
{
    v[3] ^= m;
    sip_round(v);
    sip_round(v);
    v[0] ^= m;
}

static uint64_t siphash24(const uint64_t k[2], const void *data, size_t len)
{
    const unsigned char *p = data;
    uint64_t v[4] = {k[0] ^ 0x736f6d6570736575ull, k[1] ^ 0x646f72616e646f6dull,
                     k[0] ^ 0x6c7967656e657261ull, k[1] ^ 0x7465646279746573ull};
    size_t whole = len & ~(size_t)7;
    for (size_t i = 0; i < whole; i += 8)
        sip_absorb(v, sip_block(p + i, 8));
    sip_absorb(v, sip_block(p + whole, len - whole) | (uint64_t)(len & 0xff) << 56);
    v[2] ^= 0xff;
    for (int i = 0; i < 4; i++)
        sip_round(v);
    return v[0] ^ v[1] ^ v[2] ^ v[3];
}

/* --- set-up ---------------------------------------------------------------------------------- */

static uint32_t pow2_at_least(uint32_t n)
{
    uint32_t p = 1;
    while (p < n)
        p <<= 1;
    return p;
}

static int check_config(const struct ratelimit_config *c)
{
    if (c->max == 0)
        return 0;
    if (c->max > RATELIMIT_MAX_TOKENS || c->window_ms == 0 ||
        c->window_ms > RATELIMIT_MAX_WINDOW_MS || c->capacity == 0 ||
        c->capacity > RATELIMIT_MAX_CAPACITY)
        return -EINVAL;
    return 0;
}

static int alloc_table(struct ratelimit *rl)
{
    uint32_t per = (rl->cfg.capacity + RATELIMIT_STRIPES - 1) / RATELIMIT_STRIPES;
    uint32_t nheads = pow2_at_least(per);
    rl->per_stripe = per;
    rl->nodes = calloc((size_t)per * RATELIMIT_STRIPES, sizeof(*rl->nodes));
    rl->heads = calloc((size_t)nheads * RATELIMIT_STRIPES, sizeof(*rl->heads));
    if (!rl->nodes || !rl->heads)
        return -ENOMEM;
    for (size_t i = 0; i < RATELIMIT_STRIPES; i++) {
        struct rl_stripe *s = &rl->stripes[i];
        s->nodes = rl->nodes + i * per;
        s->heads = rl->heads + i * nheads;
        s->nheads = nheads;
        for (uint32_t j = 0; j < per; j++)
            s->nodes[j].next = j + 2 <= per ? j + 2 : 0;
        s->free_head = 1;
        s->sweep_after_ms = INT64_MIN;
    }
    return 0;
}

int ratelimit_new(struct ratelimit **out, const struct ratelimit_config *cfg)
{
    *out = NULL;
    if (check_config(cfg) < 0)
        return -EINVAL;
    /* sizeof is a multiple of the 64-byte alignment, as aligned_alloc wants */
    struct ratelimit *rl = aligned_alloc(_Alignof(struct ratelimit), sizeof(*rl));
    if (!rl)
        return -ENOMEM;
    memset(rl, 0, sizeof(*rl));
    rl->cfg = *cfg;
    rl->cap_units = (uint64_t)cfg->max * cfg->window_ms;
    for (size_t i = 0; i < RATELIMIT_STRIPES; i++)
        pthread_mutex_init(&rl->stripes[i].lock, NULL);
    if (cfg->max && getrandom(rl->sipkey, sizeof(rl->sipkey), 0) != sizeof(rl->sipkey)) {
        ratelimit_free(rl);
        return -EIO;
    }
    if (cfg->max) {
        int rc = alloc_table(rl);
        if (rc < 0) {
            ratelimit_free(rl);
            return rc;
        }
    }
    *out = rl;
    return 0;
}

void ratelimit_free(struct ratelimit *rl)
{
    if (!rl)
        return;
    for (size_t i = 0; i < RATELIMIT_STRIPES; i++)
        pthread_mutex_destroy(&rl->stripes[i].lock);
    free(rl->nodes);
    free(rl->heads);
    free(rl);
}

/* --- buckets (stripe lock held) -------------------------------------------------------------- */

/* Brings b up to now; a clock behind b->last_ms refills nothing. Past a whole window the
 * bucket is full whatever it held, which also keeps elapsed × max far from overflowing. */
static void refill(const struct ratelimit *rl, struct rl_bucket *b, int64_t now_ms)
{
    if (now_ms <= b->last_ms)
        return;
    uint64_t elapsed = (uint64_t)now_ms - (uint64_t)b->last_ms;
    if (elapsed >= rl->cfg.window_ms)
        b->units = rl->cap_units;
    else
        b->units += elapsed * rl->cfg.max;
    if (b->units > rl->cap_units)
        b->units = rl->cap_units;
    b->last_ms = now_ms;
}

static uint64_t div_up(uint64_t a, uint64_t b)
{
    return a / b + (a % b != 0);
}

/* When b will be full again (its last_ms if it already is); saturates rather than overflow
 * when a caller's clock was absurdly far ahead. */
static int64_t full_at(const struct ratelimit *rl, const struct rl_bucket *b)
{
    int64_t wait = (int64_t)div_up(rl->cap_units - b->units, rl->cfg.max);
    return b->last_ms > INT64_MAX - wait ? INT64_MAX : b->last_ms + wait;
}

static struct rl_bucket *find(struct rl_stripe *s, uint32_t head, uint32_t tag, const char *key,
                              size_t len)
{
    for (uint32_t i = s->heads[head]; i; i = s->nodes[i - 1].next) {
        struct rl_bucket *b = &s->nodes[i - 1];
        if (b->tag == tag && b->keylen == len && memcmp(b->key, key, len) == 0)
            return b;
    }
    return NULL;
}

/* Frees every bucket that is full at now_ms. Runs only when the stripe is full. */
static void sweep(const struct ratelimit *rl, struct rl_stripe *s, int64_t now_ms)
{
    int64_t earliest = INT64_MAX;
    uint32_t freed = 0;
    for (uint32_t h = 0; h < s->nheads; h++) {
        uint32_t *link = &s->heads[h];
        while (*link) {
            uint32_t idx = *link;
            struct rl_bucket *b = &s->nodes[idx - 1];
            int64_t full = full_at(rl, b);
            if (full > now_ms) {
                earliest = full < earliest ? full : earliest;
                link = &b->next;
                continue;
            }
            *link = b->next;
            b->next = s->free_head;
            s->free_head = idx;
            freed++;
        }
    }
    s->used -= freed;
    s->evicted += freed;
    s->sweep_after_ms = freed ? INT64_MIN : earliest;
}

/* A new, full bucket for key, or NULL if the stripe is full of busy buckets. */
static struct rl_bucket *insert(const struct ratelimit *rl, struct rl_stripe *s, uint32_t head,
                                uint32_t tag, const char *key, size_t len, int64_t now_ms)
{
    if (!s->free_head && now_ms >= s->sweep_after_ms)
        sweep(rl, s, now_ms);
    if (!s->free_head)
        return NULL;
    uint32_t idx = s->free_head;
    struct rl_bucket *b = &s->nodes[idx - 1];
    s->free_head = b->next;
    b->units = rl->cap_units;
    b->last_ms = now_ms;
    b->tag = tag;
    b->keylen = (uint8_t)len;
    memcpy(b->key, key, len);
    b->next = s->heads[head];
    s->heads[head] = idx;
    s->used++;
    s->sweep_after_ms = INT64_MIN; /* the new bucket may be idle before the old bound */
    return b;
}

/* --- taking ---------------------------------------------------------------------------------- */

/* Takes from b and describes the outcome; b is up to date. */
static void take_from(const struct ratelimit *rl, struct rl_bucket *b, uint32_t cost,
                      struct ratelimit_result *out)
{
    uint64_t w = rl->cfg.window_ms, max = rl->cfg.max;
    uint64_t need = (uint64_t)cost * w;
    out->allowed = b->units >= need;
    if (out->allowed)
        b->units -= need;
    else
        out->retry_after_s = (uint32_t)div_up(div_up(need - b->units, max), 1000);
    if (!out->allowed && out->retry_after_s == 0)
        out->retry_after_s = 1;
    out->tracked = true;
    out->remaining = (uint32_t)(b->units / w);
    out->reset_s = (uint32_t)div_up(div_up(rl->cap_units - b->units, max), 1000);
}

int ratelimit_take(struct ratelimit *rl, const char *key, int64_t now_ms, uint32_t cost,
                   struct ratelimit_result *out)
{
    size_t len = strnlen(key, RATELIMIT_KEY_MAX);
    memset(out, 0, sizeof(*out));
    out->allowed = true;
    out->limit = rl->cfg.max;
    if (len == 0)
        return -EINVAL;
    if (len >= RATELIMIT_KEY_MAX)
        return -ENAMETOOLONG;
    if (rl->cfg.max == 0)
        return 0;
    if (cost > rl->cfg.max)
        cost = rl->cfg.max;

    uint64_t h = siphash24(rl->sipkey, key, len);
    struct rl_stripe *s = &rl->stripes[h % RATELIMIT_STRIPES];
    uint32_t head = (uint32_t)(h / RATELIMIT_STRIPES) & (s->nheads - 1);
    uint32_t tag = (uint32_t)(h >> 32);

    pthread_mutex_lock(&s->lock);
    struct rl_bucket *b = find(s, head, tag, key, len);
    if (!b)
        b = insert(rl, s, head, tag, key, len, now_ms);
    if (b) {
        refill(rl, b, now_ms);
        take_from(rl, b, cost, out);
    } else {
        s->untracked++;
    }
    pthread_mutex_unlock(&s->lock);
    return 0;
}

void ratelimit_stats(struct ratelimit *rl, struct ratelimit_stats *out)
{
    memset(out, 0, sizeof(*out));
    for (size_t i = 0; i < RATELIMIT_STRIPES; i++) {
        struct rl_stripe *s = &rl->stripes[i];
        pthread_mutex_lock(&s->lock);
        out->tracked += s->used;
        out->untracked += s->untracked;
        out->evicted += s->evicted;
        pthread_mutex_unlock(&s->lock);
    }
}

/* --- keys and headers ------------------------------------------------------------------------ */

static int put_key(int family, const void *addr, const char *suffix, char *buf, size_t cap)
{
    char text[INET6_ADDRSTRLEN];
    if (!inet_ntop(family, addr, text, sizeof(text)))
        return -EAFNOSUPPORT;
    int n = snprintf(buf, cap, "ip:%s%s", text, suffix);
    return n >= 0 && (size_t)n < cap ? n : -ENOSPC;
}

static int key_in6(const struct in6_addr *a, char *buf, size_t cap)
{
    if (IN6_IS_ADDR_V4MAPPED(a))
        return put_key(AF_INET, &a->s6_addr[12], "", buf, cap);
    struct in6_addr prefix = *a;
    memset(&prefix.s6_addr[8], 0, 8);
    return put_key(AF_INET6, &prefix, "/64", buf, cap);
}

int ratelimit_ip_key(const struct sockaddr *sa, char *buf, size_t cap)
{
    if (sa->sa_family == AF_INET)
        return put_key(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, "", buf, cap);
    if (sa->sa_family == AF_INET6)
        return key_in6(&((const struct sockaddr_in6 *)sa)->sin6_addr, buf, cap);
    return -EAFNOSUPPORT;
}

int ratelimit_ip_key_str(const char *addr, char *buf, size_t cap)
{
    struct in_addr a4;
    struct in6_addr a6;
    if (inet_pton(AF_INET, addr, &a4) == 1)
        return put_key(AF_INET, &a4, "", buf, cap);
    if (inet_pton(AF_INET6, addr, &a6) == 1)
        return key_in6(&a6, buf, cap);
    return -EINVAL;
}

static void add_header(struct ratelimit_headers *out, const char *name, uint32_t value)
{
    char *v = out->store[out->n];
    snprintf(v, sizeof(out->store[0]), "%u", value);
    out->h[out->n].name = name;
    out->h[out->n].value = v;
    out->n++;
}

unsigned ratelimit_format_headers(const struct ratelimit_result *r, struct ratelimit_headers *out)
{
    out->n = 0;
    if (!r->tracked)
        return 0;
    add_header(out, "RateLimit-Limit", r->limit);
    add_header(out, "RateLimit-Remaining", r->remaining);
    add_header(out, "RateLimit-Reset", r->reset_s);
    if (!r->allowed)
        add_header(out, "Retry-After", r->retry_after_s);
    return out->n;
}
