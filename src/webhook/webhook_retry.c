/* webhook_retry — see webhook_retry.h. */
#include "webhook/webhook_retry.h"

#include <ctype.h>
#include <curl/curl.h>
#include <stdio.h>
#include <time.h>

enum webhook_verdict webhook_status_verdict(long status)
{
    if (status >= 200 && status <= 299)
        return WEBHOOK_V_DELIVERED;
    if (status == 408 || status == 429 || status >= 500 || status < 200)
        return WEBHOOK_V_RETRY; /* < 200: no final status came back; treat like a drop */
    return WEBHOOK_V_REJECTED;
}

uint64_t webhook_backoff_ms(uint32_t base_ms, uint32_t max_ms, unsigned failures, uint64_t rnd)
{
    uint64_t ceiling = base_ms ? base_ms : 1;
    for (unsigned i = 1; i < failures && ceiling < max_ms; i++)
        ceiling *= 2;
    if (ceiling > max_ms)
        ceiling = max_ms;
    return rnd % (ceiling + 1);
}

static uint64_t cap_ms(uint64_t seconds, uint32_t max_ms)
{
    if (seconds > max_ms / 1000)
        return max_ms;
    return seconds * 1000;
}

int webhook_retry_after_ms(const char *value, int64_t now_s, uint32_t max_ms, uint64_t *delay)
{
    while (*value == ' ' || *value == '\t')
        value++;
    if (isdigit((unsigned char)*value)) {
        uint64_t s = 0;
        for (; isdigit((unsigned char)*value); value++)
            s = s > UINT32_MAX ? s : s * 10 + (uint64_t)(*value - '0');
        while (*value == ' ' || *value == '\t')
            value++;
        if (*value)
            return -1;
        *delay = cap_ms(s, max_ms);
        return 0;
    }
    /* Every HTTP-date form starts with a day name; curl_getdate reads all three forms (and is
     * lenient past that first letter, which is fine for a hint). */
    if (!isalpha((unsigned char)*value))
        return -1;
    time_t t = curl_getdate(value, NULL);
    if (t == (time_t)-1)
        return -1;
    *delay = t <= now_s ? 0 : cap_ms((uint64_t)(t - now_s), max_ms);
    return 0;
}

size_t webhook_rfc3339(int64_t unix_ms, char out[32])
{
    time_t s = (time_t)(unix_ms / 1000);
    struct tm tm;
    gmtime_r(&s, &tm);
    size_t n = strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
    n += (size_t)snprintf(out + n, 32 - n, ".%03dZ", (int)(unix_ms % 1000));
    return n;
}
