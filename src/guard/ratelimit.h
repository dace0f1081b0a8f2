/* ratelimit — token-bucket rate limiter shared by every reactor thread.
 *
 * Each key (e.g. "k:<key id>" or "ip:<address>") has a bucket of `max` tokens that refills
 * continuously at max/window_ms tokens per millisecond; the burst is `max`. Token arithmetic
 * is exact: a bucket holds tokens × window_ms in integer units, so refill is elapsed_ms × max
 * units and nothing is lost to rounding.
 *
 * Shared state: one of the few documented places (STYLE.md §5). SO_REUSEPORT spreads one
 * client's connections over several reactors, so the limit can only hold if they all count in
 * one table. The table is split into RATELIMIT_STRIPES stripes, each its own small chained
 * hash table with its own mutex and its own fixed share of the capacity; a key lives in the
 * stripe its hash picks, so two threads contend only when their keys share a stripe. The hash
 * is SipHash-2-4 with a random key, so clients cannot aim their addresses at one chain.
 *
 * Memory is allocated once in ratelimit_new; ratelimit_take never allocates. When a stripe is
 * full, buckets that have refilled completely (idle: forgetting them changes nothing) are
 * evicted. If none is idle, the new key is allowed but not tracked, and counted in
 * ratelimit_stats().untracked: failing closed would let a flood of random addresses lock every
 * new real user out, and tracking it anyway would grow memory without bound. Keys already in
 * the table stay limited. A table that overflows is too small for the traffic: raise
 * RATE_LIMIT_TABLE_SIZE, and keep API keys and addresses in separate limiters so an address
 * flood cannot crowd the keys out. */
#ifndef COMFYGATE_GUARD_RATELIMIT_H
#define COMFYGATE_GUARD_RATELIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define RATELIMIT_STRIPES 64
/* Longest key, NUL included. Longer keys are refused (-ENAMETOOLONG): every key format is the
 * caller's own and bounded, so this is a programmer error, never a way around the limit. */
#define RATELIMIT_KEY_MAX 64
/* Room for any key ratelimit_ip_key() writes ("ip:" + an IPv6 /64 prefix), NUL included. */
#define RATELIMIT_IP_KEY_MAX 56
/* Bounds that keep tokens × window_ms × ... inside 64 bits. */
#define RATELIMIT_MAX_TOKENS 1000000u
#define RATELIMIT_MAX_WINDOW_MS 86400000u
#define RATELIMIT_MAX_CAPACITY (1u << 24)

struct ratelimit_config {
    uint32_t max;       /* RATE_LIMIT_MAX: tokens per window, also the burst; 0 = disabled */
    uint32_t window_ms; /* RATE_LIMIT_WINDOW_MS: time to refill an empty bucket */
    uint32_t capacity;  /* RATE_LIMIT_TABLE_SIZE: buckets tracked (rounded up to the stripes) */
};

struct ratelimit_result {
    bool allowed;
    bool tracked;           /* false: disabled, or the table was full (nothing was counted) */
    uint32_t limit;         /* max */
    uint32_t remaining;     /* whole tokens left after this take */
    uint32_t reset_s;       /* seconds until the bucket is full again (rounded up) */
    uint32_t retry_after_s; /* refused: seconds until `cost` tokens are there (>= 1); else 0 */
};

struct ratelimit_stats {
    uint64_t tracked;   /* buckets in the table now */
    uint64_t untracked; /* new keys allowed untracked because the table was full */
    uint64_t evicted;   /* idle buckets dropped to make room */
};

struct ratelimit;

/* Checks the configuration (-EINVAL) and allocates the whole table (-ENOMEM). A disabled
 * limiter (max 0) allocates no table. */
int ratelimit_new(struct ratelimit **out, const struct ratelimit_config *cfg);
void ratelimit_free(struct ratelimit *rl);

/* Refills key's bucket up to now_ms, then takes `cost` tokens if there are that many. A cost
 * above max is taken as max, so such a request needs a full bucket instead of never passing;
 * cost 0 only reports. now_ms is any millisecond clock shared by the callers (monotonic); a
 * now_ms behind the bucket's last update (another reactor's clock read a little later) refills
 * nothing and never moves the bucket back. Returns 0, or -EINVAL (empty key) or -ENAMETOOLONG;
 * *out is always filled (an error result is allowed and untracked, so a caller that ignores
 * the code fails open). Thread-safe; never allocates. */
int ratelimit_take(struct ratelimit *rl, const char *key, int64_t now_ms, uint32_t cost,
                   struct ratelimit_result *out);

/* Sums the stripes' counters (takes each stripe's lock in turn). */
void ratelimit_stats(struct ratelimit *rl, struct ratelimit_stats *out);

/* The key of a client address: "ip:" + an IPv4 address as it is, an IPv6 address as its /64
 * prefix ("ip:2001:db8:1:2::/64": one subscriber usually owns a whole /64), an IPv4-mapped
 * IPv6 address (::ffff:a.b.c.d, from a dual-stack socket) as the IPv4 address. Returns the
 * length written, -EAFNOSUPPORT for other families, -ENOSPC if cap is too small
 * (RATELIMIT_IP_KEY_MAX always fits). */
int ratelimit_ip_key(const struct sockaddr *sa, char *buf, size_t cap);
/* The same from a textual address (no port, no brackets); -EINVAL if it is not one. */
int ratelimit_ip_key_str(const char *addr, char *buf, size_t cap);

/* Response headers for a result, filled into caller memory (values point into `store`). */
struct ratelimit_header {
    const char *name;
    const char *value;
};
struct ratelimit_headers {
    unsigned n;
    struct ratelimit_header h[4];
    char store[4][12];
};
/* Tracked results: RateLimit-Limit, RateLimit-Remaining, RateLimit-Reset (IETF httpapi
 * RateLimit header fields draft, delta seconds), and Retry-After when refused. An untracked
 * result (disabled, table full, error) has no headers: there is no count to report. Returns
 * out->n. */
unsigned ratelimit_format_headers(const struct ratelimit_result *r, struct ratelimit_headers *out);

#endif
