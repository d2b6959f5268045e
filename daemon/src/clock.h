/* The two clocks fleetgwd uses: CLOCK_MONOTONIC in microseconds (timers, buckets, nonce
 * expiry) and wall-clock epoch seconds (spool rows, verdict times). */
#ifndef FLEETGWD_CLOCK_H
#define FLEETGWD_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000ULL + (uint64_t)ts.tv_nsec / 1000ULL;
}

static inline int64_t wall_s(void)
{
    return (int64_t)time(NULL);
}

#endif
