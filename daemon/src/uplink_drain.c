/* uplink_drain.c: the drain's steps (issue 17): one spooled message per publish, or with
 * uplink.batch on several packed into one publish on <prefix>/batch (fleetgw/batch.h),
 * both under the uplink's ceilings (shape.h); the backlog and rate for the status. drain()
 * in uplink.c loops over them while the in-flight window has room.
 *
 * A batch's boundaries are durable before its bytes can leave: drain_batch() records it in
 * the spool's open transaction (spool_batch_record) and sets batch_uncommitted; libmosquitto
 * only queues the PUBLISH (the client is marked threaded), and daemon_flush() commits
 * (fsync) right after the drain, before uplink_write() hands anything to the socket; a
 * failed commit shuts the uplink socket down unwritten. A recorded batch not acknowledged
 * when the connection or the daemon went down is the first thing sent where the drain
 * resumes, with the same rows (the rows not held in [first, last]), so a message is never
 * in two different acknowledged batches. */
#define _GNU_SOURCE
#include "daemon.h"

#include <errno.h>
#include <fleetgw/batch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void drain_wait(struct daemon *d, uint64_t wait_us, const char *reason)
{
    (void)sd_event_source_set_time_relative(d->drain_timer, wait_us ? wait_us : 1000);
    (void)sd_event_source_set_enabled(d->drain_timer, SD_EVENT_ONESHOT);
    snprintf(d->shape_reason, sizeof(d->shape_reason), "%s", reason);
    bool count = strcmp(reason, "publish_ceiling") == 0;
    if (d->ceiling_episode || (!count && strcmp(reason, "byte_ceiling") != 0))
        return;
    /* Once per episode: the first time a ceiling holds the drain back after it caught up. */
    d->ceiling_episode = true;
    log_event(LOG_NOTICE, NULL, "uplink_ceiling",
              "the uplink's %s (%s) holds the drain back: %llu message(s) spooled, sent as the "
              "ceiling allows",
              count ? "publish ceiling" : "byte ceiling",
              count ? "uplink.max_publish_per_s" : "uplink.max_bytes_per_s",
              (unsigned long long)spool_messages(d->spool));
}

/* Nothing (more) to send: the backlog is gone. */
static void caught_up(struct daemon *d)
{
    d->shape_reason[0] = '\0';
    if (!d->ceiling_episode)
        return;
    d->ceiling_episode = false;
    log_event(LOG_INFO, NULL, "uplink_caught_up",
              "the drain caught up with the spool after the ceiling held it back");
}

/* 0 when a publish of `bytes` may leave now under the ceilings; else the drain waits. */
static bool shape_allows(struct daemon *d, uint64_t t, uint64_t bytes)
{
    uint64_t w = shape_wait_us(&d->shape, t, bytes);
    if (w == 0)
        return true;
    bool count =
        d->shape.max_per_s > 0 && shape_in_window(&d->shape, t) >= (unsigned)d->shape.max_per_s;
    drain_wait(d, w, count ? "publish_ceiling" : "byte_ceiling");
    return false;
}

/* spool.drain_rate (messages/s; with batching a batch counts as one publish). */
static bool drain_rate_allows(struct daemon *d, uint64_t t)
{
    int rate = d->cfg.spool.drain_rate;
    if (bucket_take(&d->drain_bucket, t, rate, rate > 10 ? rate / 10 : 1))
        return true;
    drain_wait(d, bucket_wait_us(&d->drain_bucket, rate), "drain_rate");
    return false;
}

static void add_inflight(struct daemon *d, int mid, int64_t first, int64_t last, uint32_t n)
{
    struct inflight *f = &d->inflight[d->n_inflight++];
    f->mid = mid;
    f->id = first;
    f->last = last;
    f->n = n;
    d->last_sent_id = last ? last : first;
    d->shape_reason[0] = '\0'; /* not waiting (the episode's log state stays) */
}

static void count(struct daemon *d, const char *name, uint64_t n)
{
    int r = spool_count(d->spool, name, n);
    if (r < 0)
        log_err("cannot count %s: %s", name, strerror(-r));
}

/* The spooled message msg alone, on its own topic. */
static int publish_one(struct daemon *d, const struct spool_msg *msg)
{
    uint64_t t = now_us();
    if (!shape_allows(d, t, msg->len) || !drain_rate_allows(d, t))
        return 0;
    int mid = 0;
    int rc =
        mosquitto_publish(d->up, &mid, msg->topic, (int)msg->len, msg->payload, 1, msg->retain);
    if (rc != MOSQ_ERR_SUCCESS) {
        log_warn("cannot publish upstream: %s", mosquitto_strerror(rc));
        return 0;
    }
    shape_record(&d->shape, t, msg->len);
    if (msg->id <= d->highest_sent_id)
        count(d, "resent", 1);
    else
        d->highest_sent_id = msg->id;
    add_inflight(d, mid, msg->id, 0, 1);
    return 1;
}

/* The spool's next row to send after last_sent_id: true with *msg filled (the caller clears
 * it); false when there is none (the drain has caught up) or the spool cannot be read. */
static bool next_row(struct daemon *d, struct spool_msg *msg)
{
    int r = spool_next(d->spool, d->last_sent_id, msg);
    if (r == -ENOENT) {
        caught_up(d);
        return false;
    }
    if (r < 0) {
        log_err("cannot read the spool: %s", strerror(-r));
        return false;
    }
    return true;
}

int drain_one(struct daemon *d)
{
    struct spool_msg msg;
    if (!next_row(d, &msg))
        return 0;
    int r = publish_one(d, &msg);
    spool_msg_clear(&msg);
    return r;
}

/* The row's topic without "<prefix>/" (a row spooled under another prefix: NULL, it goes
 * alone). */
static const char *topic_tail(const struct daemon *d, const char *topic, size_t *ret_len)
{
    const char *p = d->cfg.uplink.topic_prefix;
    size_t pl = strlen(p);
    if (strncmp(topic, p, pl) != 0 || topic[pl] != '/' || topic[pl + 1] == '\0')
        return NULL;
    *ret_len = strlen(topic + pl + 1);
    return *ret_len <= BATCH_TAIL_MAX ? topic + pl + 1 : NULL;
}

enum build_end { END_PARTIAL, END_FULL, END_RETRY_BIGGER, END_ERROR };

/* Packs the rows after d->last_sent_id into d->batch_buf: up to `upto` (a recorded batch's
 * last id when resending, else the row before the next recorded batch), stopping before a
 * row that goes alone (retained, under another prefix) or that does not fit. */
static enum build_end build(struct daemon *d, bool resend, int64_t upto, struct drain_build *b)
{
    const char *gw = d->cfg.uplink.client_id;
    int64_t after = d->last_sent_id;
    if (b->n > 0) {
        after = b->last; /* the partial batch of the last drain, continued */
    } else {
        memset(b, 0, sizeof(*b));
        if (batch_enc_init(&b->enc, d->batch_buf, d->batch_cap, gw, strlen(gw)) != BATCH_OK)
            return END_ERROR;
    }
    for (;;) {
        struct spool_msg msg;
        int r = spool_next(d->spool, after, &msg);
        if (r == -ENOENT)
            return END_PARTIAL;
        if (r < 0) {
            log_err("cannot read the spool: %s", strerror(-r));
            return b->n > 0 ? END_PARTIAL : END_ERROR;
        }
        if (msg.id > upto) {
            spool_msg_clear(&msg);
            return END_FULL;
        }
        size_t tl = 0;
        const char *tail = topic_tail(d, msg.topic, &tl);
        enum batch_err e = BATCH_ERR_FIELD;
        if (tail != NULL && (!msg.retain || resend)) {
            struct batch_entry en = {
                .node = msg.node,
                .node_len = strlen(msg.node),
                .tail = tail,
                .tail_len = tl,
                .seq = (uint64_t)msg.id,
                .ts = msg.ts > 0 ? (uint64_t)msg.ts : 0,
                .payload = msg.payload,
                .payload_len = msg.len,
            };
            e = batch_enc_add(&b->enc, &en);
        }
        int64_t id = msg.id;
        spool_msg_clear(&msg);
        if (e == BATCH_ERR_NOSPACE && resend)
            return END_RETRY_BIGGER; /* the same rows, whatever batch_max_bytes is now */
        if (e != BATCH_OK)
            return END_FULL; /* this row goes alone (or in the next batch) */
        if (b->n == 0)
            b->first = id;
        b->last = id;
        b->n++;
        after = id;
        if (b->n == BATCH_ENTRIES_MAX || (resend && id >= upto))
            return END_FULL;
    }
}

static int grow(struct daemon *d, size_t cap)
{
    uint8_t *n = realloc(d->batch_buf, cap);
    if (n == NULL)
        return -ENOMEM;
    d->batch_buf = n;
    d->batch_cap = cap;
    return 0;
}

void batch_pending_drop(struct daemon *d)
{
    memset(&d->batch_pending, 0, sizeof(d->batch_pending));
}

int drain_batch(struct daemon *d)
{
    uint64_t t = now_us();
    /* The count ceiling first: no batch is built while no publish could leave. */
    if (!shape_allows(d, t, 0))
        return 0;
    if (d->batch_buf == NULL && grow(d, (size_t)d->cfg.uplink.batch_max_bytes) < 0) {
        log_err("no memory for a batch of uplink.batch_max_bytes: sending one by one");
        return drain_one(d);
    }
    /* Where the drain resumes: a recorded batch (sent before a restart or a lost
     * connection and not acknowledged) goes again, whole; else a new one, up to the next
     * recorded batch. A record whose rows are all gone (expired) is forgotten. */
    struct spool_msg head;
    if (!next_row(d, &head))
        return 0;
    int64_t head_id = head.id;
    spool_msg_clear(&head);
    int64_t bf = 0, bl = 0;
    uint32_t bn = 0;
    for (int i = 0; i < 64; i++) {
        if (spool_batch_next(d->spool, d->last_sent_id, &bf, &bl, &bn) < 0) {
            bf = bl = 0;
            break;
        }
        if (bl >= head_id)
            break;
        if (spool_batch_ack(d->spool, bf, bl) < 0) /* no rows left to delete */
            return 0;
    }
    bool resend = bf != 0 && bf <= head_id;
    int64_t upto = resend ? bl : (bf != 0 ? bf - 1 : INT64_MAX);

    /* A partial batch built by an earlier drain (waiting for batch_max_delay_ms) is
     * continued with the rows after it instead of being built again on every event. */
    struct drain_build *pb = &d->batch_pending;
    if (resend || pb->n == 0 || pb->first != head_id || pb->after != d->last_sent_id)
        batch_pending_drop(d);
    struct drain_build b;
    enum build_end end;
    for (;;) {
        b = *pb; /* continued, or empty: built from the start */
        end = build(d, resend, upto, &b);
        if (end != END_RETRY_BIGGER)
            break;
        batch_pending_drop(d);
        if (d->batch_cap >= 2 * (size_t)CONFIG_BATCH_MAX_BYTES_MAX ||
            grow(d, d->batch_cap * 2) < 0) {
            end = END_ERROR;
            break;
        }
    }
    batch_pending_drop(d);
    if (end == END_ERROR || b.n == 0) {
        if (resend) {
            log_event(LOG_ERR, NULL, "batch_error",
                      "cannot rebuild the recorded batch %lld..%lld to send it again",
                      (long long)bf, (long long)bl);
            return 0;
        }
        return drain_one(d); /* the head goes alone */
    }
    if (resend && b.n != bn)
        log_event(LOG_WARNING, NULL, "batch_changed",
                  "the recorded batch %lld..%lld had %u message(s), %u are left to send again",
                  (long long)bf, (long long)bl, bn, b.n);
    /* A partial batch waits for more until its oldest message waited batch_max_delay_ms. */
    if (end == END_PARTIAL && !resend) {
        uint64_t delay = (uint64_t)d->cfg.uplink.batch_max_delay_ms * 1000;
        if (d->batch_head_id != b.first) {
            d->batch_head_id = b.first;
            d->batch_head_us = t;
        }
        if (t - d->batch_head_us < delay) {
            b.after = d->last_sent_id;
            *pb = b; /* kept: the next drain adds the rows that came meanwhile */
            drain_wait(d, delay - (t - d->batch_head_us), "batch_delay");
            return 0;
        }
    }
    const uint8_t *out = NULL;
    size_t len = 0;
    if (batch_enc_finish(&b.enc, &out, &len) != BATCH_OK)
        return 0;
    if (!shape_allows(d, t, len) || !drain_rate_allows(d, t))
        return 0;
    if (!resend) {
        int r = spool_batch_record(d->spool, b.first, b.last, b.n);
        if (r < 0) {
            log_event(LOG_ERR, NULL, "spool_error", "cannot record a batch: %s", strerror(-r));
            return 0;
        }
        d->batch_uncommitted = true; /* committed by daemon_flush before any write */
    }
    char topic[CONFIG_STR_MAX + 8];
    snprintf(topic, sizeof(topic), "%s/batch", d->cfg.uplink.topic_prefix);
    int mid = 0;
    int rc = mosquitto_publish(d->up, &mid, topic, (int)len, out, 1, false);
    if (rc != MOSQ_ERR_SUCCESS) {
        /* Recorded: the next drain sends it again, the same. */
        log_warn("cannot publish a batch upstream: %s", mosquitto_strerror(rc));
        return 0;
    }
    shape_record(&d->shape, t, len);
    count(d, "batches_sent", 1);
    count(d, "batch_messages", b.n);
    if (resend) {
        count(d, "batches_resent", 1);
        count(d, "resent", b.n);
    }
    if (b.last > d->highest_sent_id)
        d->highest_sent_id = b.last;
    add_inflight(d, mid, b.first, b.last, b.n);
    d->batch_head_id = 0;
    return 1;
}

void shape_status_of(struct daemon *d, struct shape_status *ret)
{
    uint64_t t = now_us();
    memset(ret, 0, sizeof(*ret));
    ret->backlog_messages = spool_messages(d->spool) - spool_held_messages(d->spool);
    ret->backlog_bytes = spool_bytes(d->spool) - spool_held_bytes(d->spool);
    ret->max_publish_per_s = d->cfg.uplink.max_publish_per_s;
    ret->max_bytes_per_s = d->cfg.uplink.max_bytes_per_s;
    ret->publishes_last_s = shape_in_window(&d->shape, t);
    ret->drain_rate = shape_meter_rate(&d->meter, t);
    ret->drain_eta_s = ret->backlog_messages == 0 ? 0
                       : ret->drain_rate > 0      ? (double)ret->backlog_messages / ret->drain_rate
                                                  : -1;
    ret->batch = d->cfg.uplink.batch_on;
    ret->batches_sent = spool_counter(d->spool, "batches_sent");
    ret->batch_messages = spool_counter(d->spool, "batch_messages");
    ret->batches_resent = spool_counter(d->spool, "batches_resent");
    ret->batch_fill =
        ret->batches_sent ? (double)ret->batch_messages / (double)ret->batches_sent : 0;
    ret->waiting = d->shape_reason;
}
