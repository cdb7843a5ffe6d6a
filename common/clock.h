/* clock.h — monotonic time for latencies and deadlines, wall time for
 * records people read. */
#ifndef LOOM_COMMON_CLOCK_H
#define LOOM_COMMON_CLOCK_H

#include <stdint.h>

uint64_t loom_clock_ns(void); /* CLOCK_MONOTONIC, nanoseconds */
uint64_t loom_clock_us(void);
uint64_t loom_clock_ms(void);
int64_t loom_wall_ms(void);   /* CLOCK_REALTIME, ms since the epoch */
void loom_sleep_ms(uint64_t ms);

#endif
