/* log — one JSON line per event.
 *
 * Each reactor owns a `struct logger` with its own buffer, so logging never takes a lock; the
 * buffer is written out with one write(2) per loop iteration (log_flush) or when it fills.  The
 * level is checked by the LOG macro before any argument is formatted. */
#ifndef COMFYGATE_LOG_H
#define COMFYGATE_LOG_H

#include <stdarg.h>
#include <stddef.h>

enum log_level {
    LOG_DEBUG = 0,
    LOG_INFO = 1,
    LOG_WARN = 2,
    LOG_ERROR = 3,
    LOG_OFF = 4,
};

struct logger {
    int fd;
    enum log_level level;
    int reactor; /* -1 for the main thread */
    int autoflush; /* write every line at once (main thread, tests) */
    size_t len;
    char buf[65536];
};

void log_init(struct logger *l, int fd, enum log_level level, int reactor);
/* Parses "debug|info|warn|error|off"; returns -1 if unknown. */
int log_level_parse(const char *s);
const char *log_level_name(enum log_level level);

/* Emits {"ts":..,"level":..,"reactor":..,"msg":msg[,fields]} where `fields` is a printf format
 * that produces already-valid JSON members ("\"port\":%d"). Strings from outside must go through
 * json_escape first. */
void log_emit(struct logger *l, enum log_level level, const char *msg, const char *fields, ...)
    __attribute__((format(printf, 4, 5)));
void log_vemit(struct logger *l, enum log_level level, const char *msg, const char *fields,
               va_list ap);
void log_flush(struct logger *l);

/* Appends `s` (length n) JSON-escaped, without quotes, into dst (capacity cap, NUL-terminated).
 * Returns the number of bytes written (truncates safely). */
size_t json_escape(char *dst, size_t cap, const char *s, size_t n);

#define LOG(l, lvl, ...)                                                                           \
    do {                                                                                           \
        if ((lvl) >= (l)->level)                                                                   \
            log_emit((l), (lvl), __VA_ARGS__);                                                     \
    } while (0)

#endif
