/* log.c — see log.h. */
#include "common/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

static int level = -1; /* -1: not yet read from the environment */
static int out_fd = 2;

static const char *const names[] = {"debug", "info", "warn", "error", "off"};

int loom_log_parse_level(const char *s)
{
    for (int i = 0; s && i <= LOOM_LOG_OFF; i++)
        if (strcasecmp(s, names[i]) == 0)
            return i;
    return -1;
}

loom_log_level_t loom_log_get_level(void)
{
    if (level < 0) {
        int l = loom_log_parse_level(getenv("LOOM_LOG_LEVEL"));
        level = l < 0 ? LOOM_LOG_INFO : l;
    }
    return (loom_log_level_t)level;
}

void loom_log_set_level(loom_log_level_t l) { level = (int)l; }
void loom_log_set_fd(int fd) { out_fd = fd; }

void loom_log(loom_log_level_t l, const char *comp, const char *fmt, ...)
{
    if ((int)l < (int)loom_log_get_level() || l >= LOOM_LOG_OFF)
        return;
    char line[2048];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    int n = snprintf(line, sizeof line, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ level=%s comp=%s ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                     tm.tm_sec, ts.tv_nsec / 1000000, names[l], comp ? comp : "-");
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
    va_end(ap);
    size_t len = (size_t)n + (k < 0 ? 0 : (size_t)k);
    if (len > sizeof line - 2)
        len = sizeof line - 2; /* truncated record */
    line[len++] = '\n';
    ssize_t w = write(out_fd, line, len);
    (void)w; /* nothing useful to do if stderr is gone */
}
