/* shape.h: the uplink's publish ceilings (issue 17, uplink.max_publish_per_s and
 * uplink.max_bytes_per_s) as exact sliding windows, and the measured drain rate.
 *
 * The ceiling: no window of one second, wherever it starts, may hold more than max_per_s
 * publishes or more than max_bytes payload bytes. The shaper keeps the time and size of
 * every publish of the last second (a ring); a publish may leave when, counting it, the
 * last second holds at most the limits: for the count, when the max_per_s-th most recent
 * publish was at least 1 s ago (1 s + SHAPE_MARGIN_US: see there). Not a token bucket, which lets
 * rate + burst through in one window. A single publish larger than max_bytes leaves when the last
 * second is empty.
 *
 * The meter: messages delivered (acknowledged) per second over the last SHAPE_METER_S
 * seconds, for `fleetgwctl status` and the time to drain the backlog. No I/O, no clock:
 * the caller passes CLOCK_MONOTONIC microseconds. */
#ifndef FLEETGWD_SHAPE_H
#define FLEETGWD_SHAPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SHAPE_WINDOW_US 1000000ULL
/* A publish is held in the window this much longer than 1 s: the bytes leave a little after
 * the drain decided (the batch's commit, the write), and the network and the broker's
 * clock add jitter, so that two bursts exactly 1 s apart at fleetgwd can be less than 1 s
 * apart at the broker (measured: 0.7 ms on loopback with an fsync in between). The cost:
 * a ceiling of N is N publishes per 1.05 s at most. */
#define SHAPE_MARGIN_US 50000ULL
#define SHAPE_HOLD_US   (SHAPE_WINDOW_US + SHAPE_MARGIN_US)
/* Publishes remembered, at most: with only a byte ceiling, a second holding more
 * publishes than this waits for the oldest to leave the window (a count ceiling of
 * SHAPE_RING_MAX publishes/s; documented in docs/daemon.md). */
#define SHAPE_RING_MAX 65536
#define SHAPE_METER_S  10

struct shape_pub {
    uint64_t t;     /* us */
    uint64_t bytes; /* payload bytes */
};

struct shape {
    int max_per_s;     /* 0: no count ceiling */
    int64_t max_bytes; /* 0: no byte ceiling */
    struct shape_pub *ring;
    unsigned cap, head, n; /* the publishes of the last second, oldest at head */
    uint64_t sum;          /* their bytes */
    uint64_t publishes;    /* since start */
};

/* 0, or -ENOMEM. With both limits 0 the shaper allows everything and keeps nothing. */
int shape_init(struct shape *s, int max_per_s, int64_t max_bytes)
    __attribute__((warn_unused_result));
void shape_free(struct shape *s);
bool shape_active(const struct shape *s);
/* 0 when a publish of `bytes` may leave at `now`, else the microseconds until it may. */
uint64_t shape_wait_us(struct shape *s, uint64_t now, uint64_t bytes);
/* A publish left at `now` (also one the shaper was not asked about: it counts). */
void shape_record(struct shape *s, uint64_t now, uint64_t bytes);
/* Publishes within the last second at `now`. */
unsigned shape_in_window(struct shape *s, uint64_t now);

/* Messages delivered per second, over the last SHAPE_METER_S whole seconds. */
struct shape_meter {
    uint64_t sec[SHAPE_METER_S]; /* which second (now / 1 s) each slot counts */
    uint64_t n[SHAPE_METER_S];
    uint64_t start_s; /* the first second counted (the meter is younger than its span) */
    bool started;
};

void shape_meter_add(struct shape_meter *m, uint64_t now, uint64_t n);
/* Messages per second over the last SHAPE_METER_S seconds (or since the first add). */
double shape_meter_rate(const struct shape_meter *m, uint64_t now);

/* What fleetgwctl status, the STATUS= line and the retained status upstream show of the
 * uplink's shaping (filled by fleetgwd, uplink_drain.c). */
struct shape_status {
    const char *profile;       /* uplink.profile */
    uint64_t backlog_messages; /* spooled, not held: what the drain has to send */
    int64_t backlog_bytes;
    int max_publish_per_s; /* the ceilings (0: none) */
    int64_t max_bytes_per_s;
    unsigned publishes_last_s; /* publishes within the last second */
    double drain_rate;         /* messages acknowledged per second, last 10 s */
    double drain_eta_s;        /* backlog / drain_rate; 0 without backlog, -1 at rate 0 */
    bool batch;                /* uplink.batch */
    uint64_t batches_sent, batch_messages, batches_resent;
    double batch_fill;   /* messages per batch, on average */
    const char *waiting; /* why the drain waits now ("" when it does not): publish_ceiling,
                          * byte_ceiling, drain_rate, batch_delay */
};

/* "backlog N msg / B B, ceiling C/s, drain R msg/s, eta E s[, batch fill F]" */
void shape_status_line(const struct shape_status *st, char *buf, size_t cap);

#endif
