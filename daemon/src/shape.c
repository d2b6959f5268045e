/* The uplink's publish ceilings as exact sliding windows, and the drain-rate meter
 * (contract in shape.h). */
#include "shape.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int shape_init(struct shape *s, int max_per_s, int64_t max_bytes)
{
    memset(s, 0, sizeof(*s));
    s->max_per_s = max_per_s > 0 ? max_per_s : 0;
    s->max_bytes = max_bytes > 0 ? max_bytes : 0;
    if (!shape_active(s))
        return 0;
    /* With a count ceiling the last second holds at most max_per_s publishes (plus those
     * recorded without asking, which then wait for room like the others). */
    s->cap =
        s->max_per_s > 0 && s->max_per_s < SHAPE_RING_MAX ? (unsigned)s->max_per_s : SHAPE_RING_MAX;
    s->ring = calloc(s->cap, sizeof(*s->ring));
    return s->ring == NULL ? -ENOMEM : 0;
}

void shape_free(struct shape *s)
{
    free(s->ring);
    memset(s, 0, sizeof(*s));
}

bool shape_active(const struct shape *s)
{
    return s->max_per_s > 0 || s->max_bytes > 0;
}

/* Forgets the publishes that no window containing `now` holds any more. */
static void expire(struct shape *s, uint64_t now)
{
    while (s->n > 0 && now - s->ring[s->head].t >= SHAPE_HOLD_US) {
        s->sum -= s->ring[s->head].bytes;
        s->head = (s->head + 1) % s->cap;
        s->n--;
    }
}

unsigned shape_in_window(struct shape *s, uint64_t now)
{
    if (!shape_active(s))
        return 0;
    expire(s, now);
    return s->n;
}

uint64_t shape_wait_us(struct shape *s, uint64_t now, uint64_t bytes)
{
    if (!shape_active(s))
        return 0;
    expire(s, now);
    /* How many of the oldest must leave the window first: for the count, all but
     * max_per_s - 1 (and the ring's own bound); for the bytes, as many as it takes. */
    unsigned need = 0;
    unsigned lim = s->max_per_s > 0 ? (unsigned)s->max_per_s : s->cap;
    if (lim > s->cap)
        lim = s->cap;
    if (s->n >= lim)
        need = s->n - lim + 1;
    if (s->max_bytes > 0 && s->n > 0 && s->sum + bytes > (uint64_t)s->max_bytes) {
        uint64_t sum = s->sum;
        unsigned k = 0;
        while (k < s->n && sum + bytes > (uint64_t)s->max_bytes)
            sum -= s->ring[(s->head + k++) % s->cap].bytes;
        if (k > need)
            need = k;
    }
    if (need == 0)
        return 0;
    uint64_t t = s->ring[(s->head + need - 1) % s->cap].t + SHAPE_HOLD_US;
    return t > now ? t - now : 1;
}

void shape_record(struct shape *s, uint64_t now, uint64_t bytes)
{
    s->publishes++;
    if (!shape_active(s))
        return;
    expire(s, now);
    if (s->n == s->cap) { /* recorded without asking, the window full: the oldest goes */
        s->sum -= s->ring[s->head].bytes;
        s->head = (s->head + 1) % s->cap;
        s->n--;
    }
    s->ring[(s->head + s->n) % s->cap] = (struct shape_pub){.t = now, .bytes = bytes};
    s->n++;
    s->sum += bytes;
}

void shape_meter_add(struct shape_meter *m, uint64_t now, uint64_t n)
{
    uint64_t sec = now / SHAPE_WINDOW_US;
    if (!m->started) {
        m->started = true;
        m->start_s = sec;
    }
    unsigned i = (unsigned)(sec % SHAPE_METER_S);
    if (m->sec[i] != sec) {
        m->sec[i] = sec;
        m->n[i] = 0;
    }
    m->n[i] += n;
}

double shape_meter_rate(const struct shape_meter *m, uint64_t now)
{
    if (!m->started)
        return 0;
    uint64_t sec = now / SHAPE_WINDOW_US, total = 0;
    for (unsigned i = 0; i < SHAPE_METER_S; i++)
        if (m->sec[i] + SHAPE_METER_S > sec && m->sec[i] <= sec)
            total += m->n[i];
    /* The span: the last SHAPE_METER_S seconds, or since the first add (at least 1 s). */
    uint64_t span = sec - m->start_s + 1;
    if (span > SHAPE_METER_S)
        span = SHAPE_METER_S;
    return (double)total / (double)span;
}

void shape_status_line(const struct shape_status *st, char *buf, size_t cap)
{
    char eta[32], fill[32] = "";
    if (st->drain_eta_s < 0)
        snprintf(eta, sizeof(eta), "unknown");
    else
        snprintf(eta, sizeof(eta), "%.0f s", st->drain_eta_s);
    if (st->batch)
        snprintf(fill, sizeof(fill), ", batch fill %.1f", st->batch_fill);
    snprintf(buf, cap, "backlog %llu msg / %lld B, ceiling %d/s, drain %.1f msg/s, eta %s%s",
             (unsigned long long)st->backlog_messages, (long long)st->backlog_bytes,
             st->max_publish_per_s, st->drain_rate, eta, fill);
}
