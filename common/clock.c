/* clock.c — see clock.h. */
#include "common/clock.h"

#include <errno.h>
#include <time.h>

uint64_t loom_clock_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t loom_clock_us(void) { return loom_clock_ns() / 1000u; }
uint64_t loom_clock_ms(void) { return loom_clock_ns() / 1000000u; }

int64_t loom_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void loom_sleep_ms(uint64_t ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
        ;
}
