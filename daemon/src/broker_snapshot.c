/* broker_snapshot.c: fleetgwd's side of the edge broker plugin's registry snapshot
 * (registry.broker_snapshot; registry_snapshot_write in registry_snapshot.c). Written once at
 * start, then whenever the registry's generation moved, at most every
 * BROKER_SNAPSHOT_PERIOD_MS: a removed or quarantined node is refused by the broker within
 * that time. A write of a large registry takes a while (18 ms for 5,000 nodes measured on
 * the 2-core build machine, most of it the fsyncs), so the next one waits at least
 * BROKER_SNAPSHOT_COST_FACTOR times as long as the last took: under a storm of verdicts the
 * snapshot costs at most about 5 % of a core (5,000 nodes: one write every ~0.4 s instead of
 * every 0.2 s). A snapshot that cannot be written is deleted, so that the broker refuses
 * every node (fail closed) rather than admit one removed since the last good copy; the next
 * period tries again. */
#include "clock.h"
#include "daemon.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BROKER_SNAPSHOT_PERIOD_MS   200
#define BROKER_SNAPSHOT_COST_FACTOR 20

struct broker_snap {
    struct daemon *d;
    sd_event_source *timer;
    uint64_t written_gen; /* the registry generation of the last good write */
    bool written;         /* a good write happened */
    bool failing;         /* the last attempt failed (logged once per streak) */
    uint64_t next_us;     /* CLOCK_MONOTONIC: no write before (the cost limit above) */
};

/* The registry moved since the last good write (or there was none). */
static bool snap_stale(const struct broker_snap *s)
{
    return !s->written || registry_generation(s->d->registry) != s->written_gen;
}

static void snap_write(struct broker_snap *s)
{
    struct daemon *d = s->d;
    const char *path = d->cfg.registry.broker_snapshot;
    uint64_t gen = registry_generation(d->registry);
    char err[512] = "";
    uint64_t t0 = now_us();
    int r = registry_snapshot_write(d->registry, path, err, sizeof(err));
    uint64_t took = now_us() - t0;
    s->next_us = t0 + took * BROKER_SNAPSHOT_COST_FACTOR;
    if (r == -EBUSY)
        return; /* a batch is open: its writes are not committed yet; next period */
    if (r < 0) {
        bool gone = unlink(path) == 0 || errno == ENOENT;
        if (!s->failing)
            log_event(LOG_ERR, NULL, "broker_snapshot",
                      "cannot write the edge broker's registry snapshot: %s; %s", err,
                      gone ? "the old one is deleted: the broker refuses every node until a "
                             "snapshot is written (fail closed)"
                           : "the old one could not be deleted either");
        s->failing = true;
        s->written = false;
        return;
    }
    if (s->failing || !s->written)
        log_info("edge broker registry snapshot %s written", path);
    s->failing = false;
    s->written = true;
    s->written_gen = gen;
}

static int snap_timer_cb(sd_event_source *es, uint64_t usec, void *u)
{
    struct broker_snap *s = u;
    if (snap_stale(s) && now_us() >= s->next_us)
        snap_write(s);
    (void)sd_event_source_set_time(es, usec + BROKER_SNAPSHOT_PERIOD_MS * 1000ULL);
    return 0;
}

int broker_snapshot_start(struct daemon *d)
{
    if (d->cfg.registry.broker_snapshot[0] == '\0')
        return 0;
    struct broker_snap *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return -ENOMEM;
    s->d = d;
    snap_write(s); /* before the broker's first look-up can see an old copy for long */
    uint64_t now = 0;
    int r = sd_event_now(d->ev, CLOCK_MONOTONIC, &now);
    if (r >= 0)
        r = sd_event_add_time(d->ev, &s->timer, CLOCK_MONOTONIC,
                              now + BROKER_SNAPSHOT_PERIOD_MS * 1000ULL, 10000, snap_timer_cb, s);
    if (r >= 0)
        r = sd_event_source_set_enabled(s->timer, SD_EVENT_ON);
    if (r < 0) {
        sd_event_source_disable_unref(s->timer);
        free(s);
        return r;
    }
    d->bsnap = s;
    return 0;
}

void broker_snapshot_stop(struct daemon *d)
{
    struct broker_snap *s = d->bsnap;
    if (s == NULL)
        return;
    /* the last changes (a removal just before SIGTERM) reach the broker too */
    if (snap_stale(s))
        snap_write(s);
    sd_event_source_disable_unref(s->timer);
    free(s);
    d->bsnap = NULL;
}
