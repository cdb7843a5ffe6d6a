/* log.h — leveled key=value logging to stderr.
 *
 * Each record is one line written with a single write(2) so lines from
 * concurrent threads and processes do not interleave:
 *   2026-11-21T02:20:00.123Z level=info comp=loomd msg="worker registered" id=w1
 * The message is a printf format; by convention it is a short phrase in
 * quotes followed by key=value fields, e.g.
 *   LOOM_INFO("loomd", "msg=\"worker registered\" id=%s slots=%d", id, n);
 * The level comes from LOOM_LOG_LEVEL (debug|info|warn|error|off) or
 * loom_log_set_level(); default info. */
#ifndef LOOM_COMMON_LOG_H
#define LOOM_COMMON_LOG_H

typedef enum {
    LOOM_LOG_DEBUG = 0,
    LOOM_LOG_INFO = 1,
    LOOM_LOG_WARN = 2,
    LOOM_LOG_ERROR = 3,
    LOOM_LOG_OFF = 4,
} loom_log_level_t;

void loom_log_set_level(loom_log_level_t level);
loom_log_level_t loom_log_get_level(void);
/* Parses "debug", "info", ...; returns -1 when unknown. */
int loom_log_parse_level(const char *s);
/* Redirects records to fd (default 2). */
void loom_log_set_fd(int fd);

void loom_log(loom_log_level_t level, const char *comp, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define LOOM_DEBUG(comp, ...) loom_log(LOOM_LOG_DEBUG, comp, __VA_ARGS__)
#define LOOM_INFO(comp, ...) loom_log(LOOM_LOG_INFO, comp, __VA_ARGS__)
#define LOOM_WARN(comp, ...) loom_log(LOOM_LOG_WARN, comp, __VA_ARGS__)
#define LOOM_ERROR(comp, ...) loom_log(LOOM_LOG_ERROR, comp, __VA_ARGS__)

#endif
