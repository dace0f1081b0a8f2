/* log — see log.h. */
#include "core/log.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *const level_names[] = {"debug", "info", "warn", "error", "off"};

void log_init(struct logger *l, int fd, enum log_level level, int reactor)
{
    l->fd = fd;
    l->level = level;
    l->reactor = reactor;
    l->autoflush = 0;
    l->len = 0;
}

int log_level_parse(const char *s)
{
    for (int i = 0; i <= LOG_OFF; i++) {
        if (strcasecmp(s, level_names[i]) == 0)
            return i;
    }
    return -1;
}

const char *log_level_name(enum log_level level)
{
    return level_names[level];
}

void log_flush(struct logger *l)
{
    size_t off = 0;
    while (off < l->len) {
        ssize_t n = write(l->fd, l->buf + off, l->len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break; /* a broken log sink must not take the server down */
        off += (size_t)n;
    }
    l->len = 0;
}

size_t json_escape(char *dst, size_t cap, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    if (cap == 0)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        char esc[7];
        size_t el = 0;
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            el = 2;
        } else if (c < 0x20 || c == 0x7f) {
            memcpy(esc, "\\u00", 4);
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            el = 6;
        } else {
            esc[0] = (char)c;
            el = 1;
        }
        if (o + el >= cap)
            break;
        memcpy(dst + o, esc, el);
        o += el;
    }
    dst[o] = '\0';
    return o;
}

void log_vemit(struct logger *l, enum log_level level, const char *msg, const char *fields,
               va_list ap)
{
    char line[4096];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    int n = snprintf(line, sizeof(line),
                     "{\"ts\":\"%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ\",\"level\":\"%s\","
                     "\"reactor\":%d,\"msg\":\"%s\"",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                     tm.tm_sec, ts.tv_nsec / 1000000, level_names[level], l->reactor, msg);
    if (n < 0)
        return;
    size_t len = (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1;
    if (fields && fields[0] && len + 2 < sizeof(line)) {
        line[len++] = ',';
        int m = vsnprintf(line + len, sizeof(line) - len, fields, ap);
        if (m > 0)
            len += (size_t)m < sizeof(line) - len ? (size_t)m : sizeof(line) - len - 1;
    }
    if (len + 2 > sizeof(line))
        len = sizeof(line) - 2;
    line[len++] = '}';
    line[len++] = '\n';
    if (l->len + len > sizeof(l->buf))
        log_flush(l);
    memcpy(l->buf + l->len, line, len);
    l->len += len;
    if (l->autoflush)
        log_flush(l);
}

void log_emit(struct logger *l, enum log_level level, const char *msg, const char *fields, ...)
{
    va_list ap;
    va_start(ap, fields);
    log_vemit(l, level, msg, fields, ap);
    va_end(ap);
}
