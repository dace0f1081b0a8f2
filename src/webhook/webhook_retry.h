/* webhook_retry — what an attempt's outcome means and when to try again (pure).
 *
 * 2xx: delivered. 408, 429 and 5xx, network errors and timeouts: try again later, after
 * exponential back-off with full jitter (a random delay between 0 and base * 2^(n-1), capped),
 * or after the receiver's Retry-After (seconds or an HTTP-date), capped the same way. 3xx
 * (redirects are not followed: the receiver should fix its URL) and every other 4xx: the
 * receiver refused the event, so it fails at once. */
#ifndef COMFYGATE_WEBHOOK_RETRY_H
#define COMFYGATE_WEBHOOK_RETRY_H

#include <stddef.h>
#include <stdint.h>

enum webhook_verdict {
    WEBHOOK_V_DELIVERED, /* 2xx */
    WEBHOOK_V_RETRY,     /* worth another attempt */
    WEBHOOK_V_REJECTED,  /* final: the receiver (or the URL guard) refused it */
};

enum webhook_verdict webhook_status_verdict(long status);

/* Delay before the next attempt after `failures` failed ones (>= 1): uniform in
 * [0, min(max_ms, base_ms * 2^(failures-1))], drawn from rnd. */
uint64_t webhook_backoff_ms(uint32_t base_ms, uint32_t max_ms, unsigned failures, uint64_t rnd);

/* Parses a Retry-After value: delta-seconds, or an HTTP-date (IMF-fixdate, RFC 850 or asctime)
 * taken relative to now_s (a past date: 0). Returns 0 with the delay in ms (capped at max_ms),
 * or -1 when the value is neither. */
int webhook_retry_after_ms(const char *value, int64_t now_s, uint32_t max_ms, uint64_t *delay);

/* RFC 3339 UTC with milliseconds: "2024-05-01T12:00:00.123Z". Returns the length. */
size_t webhook_rfc3339(int64_t unix_ms, char out[32]);

#endif
