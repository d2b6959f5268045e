/* OTA campaigns: the state machine of campaign.h. Everything that decides is here: what
 * happens to a node (offer, step failures with retries and back-off, final states) and to a
 * campaign (waves and their success threshold, abort criteria, halt, resume, abort, the end
 * and the class state it sets), the timers (deadlines, step timeouts, retries, the
 * coalesced STATUS), and the protocol of every call: its writes in one transaction,
 * committed before its actions are handed out (failed: rolled back, actions dropped).
 *
 * Memory: the campaigns that are not final (running, halted) with every node, so that a
 * chunk request costs a binary search and no SQLite write.
 *
 * Not here (campaign_internal.h): the nodes' messages (campaign_events.c), SQLite
 * (campaign_db.c), the status document (campaign_json.c), the campaigns' memory, names,
 * the spec's checks and the read-only queries (campaign_model.c). */
#define _GNU_SOURCE
#include "campaign_internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#define STATUS_INTERVAL_S 1
#define BACKOFF_MAX_S     ((int64_t)1 << 40)

/* ---- actions ---------------------------------------------------------------------------- */

struct qact *campaign_queue(struct campaign_engine *e, enum campaign_action_kind kind,
                            struct campaign *c, size_t pos)
{
    if (e->nq == e->capq) {
        size_t cap = e->capq ? e->capq * 2 : 16;
        struct qact *q = reallocarray(e->q, cap, sizeof(*q));
        if (q == NULL) {
            e->oom = true;
            return NULL;
        }
        e->q = q;
        e->capq = cap;
    }
    struct qact *a = &e->q[e->nq++];
    memset(a, 0, sizeof(*a));
    a->kind = kind;
    a->c = c;
    a->pos = pos;
    return a;
}

__attribute__((format(printf, 6, 7))) static void note(struct campaign_engine *e,
                                                       struct campaign *c, size_t pos, int priority,
                                                       const char *token, const char *fmt, ...)
{
    struct qact *a = campaign_queue(e, CAMPAIGN_ACT_NOTE, c, pos);
    va_list ap;
    if (a == NULL)
        return;
    a->priority = priority;
    a->token = token;
    va_start(ap, fmt);
    if (vasprintf(&a->text, fmt, ap) < 0)
        a->text = NULL;
    va_end(ap);
    if (a->text == NULL) {
        e->nq--;
        e->oom = true;
    }
}

static void queue_clear(struct campaign_engine *e, size_t from)
{
    for (size_t i = from; i < e->nq; i++) {
        free(e->q[i].json);
        free(e->q[i].text);
    }
    e->nq = from;
}

/* ---- a call ----------------------------------------------------------------------------- */

void campaign_save_node(struct campaign_engine *e, struct campaign *c, size_t i)
{
    c->updated = e->now;
    c->save = true;
    c->dirty = true;
    campaign_db_save_node(e, c, i);
}

void campaign_call_begin(struct campaign_engine *e, int64_t now)
{
    e->err = 0;
    e->oom = false;
    e->in_txn = false;
    e->now = now;
}

/* Writes the campaign rows touched, commits (or rolls back on any failed write), and on
 * failure drops the actions queued since `mark`: what was not committed is not acted on. */
static int call_commit(struct campaign_engine *e, size_t mark)
{
    for (struct campaign *c = e->list; c != NULL; c = c->next)
        if (c->save) {
            c->save = false;
            campaign_db_save_campaign(e, c);
        }
    int r = e->err;
    if (r == 0 && e->oom)
        r = -ENOMEM;
    r = campaign_db_finish(e, r);
    if (r < 0)
        queue_clear(e, mark);
    return r;
}

/* ---- state changes ---------------------------------------------------------------------- */

static size_t in_progress_count(const struct campaign *c)
{
    size_t k = 0;
    for (int s = CN_OFFERED; s < CN_FINAL_FIRST; s++)
        k += c->cnt[s];
    return k;
}

static void campaign_end(struct campaign_engine *e, struct campaign *c, enum campaign_state st,
                         const char *node_reason, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static void campaign_halt_now(struct campaign_engine *e, struct campaign *c, bool threshold,
                              const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Abort criteria over the whole campaign (running or halted). */
static void check_abort(struct campaign_engine *e, struct campaign *c)
{
    const struct campaign_spec *s = &c->spec;
    size_t failures =
        c->cnt[CN_FAILED] + c->cnt[CN_REVERTED] + c->cnt[CN_TIMED_OUT] + c->cnt[CN_REJECTED];
    size_t executed = failures + c->cnt[CN_SUCCEEDED];
    size_t min_exec = s->abort_min_executed ? s->abort_min_executed : 1;

    if (!campaign_live(c->st))
        return;
    if (s->abort_failures != 0 && failures >= s->abort_failures)
        campaign_end(e, c, CAMPAIGN_ABORTED, "aborted",
                     "abort criteria: %zu failed nodes, abort_failures is %u", failures,
                     s->abort_failures);
    else if (s->abort_failure_pct != 0 && executed >= min_exec &&
             failures * 100 >= (size_t)s->abort_failure_pct * executed)
        campaign_end(e, c, CAMPAIGN_ABORTED, "aborted",
                     "abort criteria: %zu of %zu executed nodes failed (%zu%%), abort_failure_pct "
                     "is %u%% once %u were executed",
                     failures, executed, failures * 100 / executed, s->abort_failure_pct,
                     s->abort_min_executed);
}

/* A node reaches a final state (why may be NULL). Nodes stopped by the gateway are
 * cancelled (no more chunks); the abort criteria are checked. */
void campaign_node_final(struct campaign_engine *e, struct campaign *c, size_t i,
                         enum campaign_node_state st, const char *why)
{
    struct cnode *n = &c->nodes[i];
    bool was = in_progress(n->st);

    campaign_set_state(c, i, st);
    if (why != NULL)
        campaign_set_reason(n, "%s", why);
    else
        campaign_clear_reason(n);
    campaign_save_node(e, c, i);
    if (was && st != CN_SUCCEEDED)
        campaign_queue(e, CAMPAIGN_ACT_CANCEL, c, i);
    note(e, c, i, st == CN_SUCCEEDED || st == CN_SKIPPED ? LOG_INFO : LOG_WARNING,
         campaign_node_state_str(st), "campaign %s: node %s %s%s%s", c->spec.id, n->id,
         campaign_node_state_str(st), n->reason ? ": " : "", n->reason ? n->reason : "");
    check_abort(e, c);
}

void campaign_node_finalf(struct campaign_engine *e, struct campaign *c, size_t i,
                          enum campaign_node_state st, const char *fmt, ...)
{
    char why[CAMPAIGN_REASON_MAX + 1];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    campaign_node_final(e, c, i, st, why);
}

static void offer(struct campaign_engine *e, struct campaign *c, size_t i)
{
    struct cnode *n = &c->nodes[i];
    n->attempts++;
    if (n->started == 0) {
        n->started = e->now;
        n->deadline = e->now + (int64_t)c->spec.node_deadline_s;
    }
    n->activity = e->now;
    n->retry_at = 0;
    campaign_set_state(c, i, CN_OFFERED);
    campaign_save_node(e, c, i);
    campaign_queue(e, CAMPAIGN_ACT_OFFER, c, i);
}

static int64_t backoff(const struct campaign_spec *s, uint32_t attempts)
{
    int64_t b = s->retry_backoff_s;
    for (uint32_t k = 1; k < attempts && b < BACKOFF_MAX_S; k++)
        b *= 2;
    return b;
}

/* A step failed (why): retried after the back-off while attempts remain, else final `st`
 * (a node that never answered anything ends skipped "offline" instead of timed_out). */
void campaign_step_failed(struct campaign_engine *e, struct campaign *c, size_t i,
                          enum campaign_node_state st, const char *why)
{
    struct cnode *n = &c->nodes[i];
    if (n->attempts <= c->spec.retries) {
        n->retry_at = e->now + backoff(&c->spec, n->attempts);
        campaign_set_state(c, i, CN_RETRY_WAIT);
        campaign_set_reason(n, "%s", why);
        campaign_save_node(e, c, i);
        note(e, c, i, LOG_NOTICE, "retry",
             "campaign %s: node %s: %s; attempt %u of %u again in %llds", c->spec.id, n->id, why,
             n->attempts + 1, c->spec.retries + 1, (long long)(n->retry_at - e->now));
    } else if (st == CN_TIMED_OUT && !n->answered) {
        campaign_node_final(e, c, i, CN_SKIPPED, "offline");
    } else if (st == CN_REJECTED) {
        campaign_node_final(e, c, i, st, why); /* the node's reason code, as it said it */
    } else {
        campaign_node_finalf(e, c, i, st, "%s (after %u attempts)", why, n->attempts);
    }
}

static void wave_counts(const struct campaign *c, uint32_t w, size_t *succeeded, size_t *executed,
                        size_t *offline)
{
    size_t from = w ? c->wave_end[w - 1] : 0;
    *succeeded = *executed = *offline = 0;
    for (size_t i = from; i < c->wave_end[w]; i++) {
        const struct cnode *n = &c->nodes[i];
        if (n->st == CN_SUCCEEDED)
            (*succeeded)++;
        if (node_final_state(n->st) && n->st != CN_SKIPPED)
            (*executed)++;
        if (n->st == CN_SKIPPED && n->reason != NULL && strcmp(n->reason, "offline") == 0)
            (*offline)++;
    }
}

static void advance_wave(struct campaign_engine *e, struct campaign *c)
{
    if (c->wave + 1 >= c->spec.n_waves) {
        campaign_end(e, c, CAMPAIGN_COMPLETED, NULL, "all %zu waves done", c->spec.n_waves);
        return;
    }
    c->wave++;
    c->threshold_halt = false;
    c->save = true;
    c->dirty = true;
    c->updated = e->now;
    note(e, c, SIZE_MAX, LOG_INFO, "wave", "campaign %s: wave %u of %zu started", c->spec.id,
         c->wave + 1, c->spec.n_waves);
}

void campaign_progress(struct campaign_engine *e, struct campaign *c)
{
    while (c->st == CAMPAIGN_RUNNING) {
        while (c->first_open < c->n && node_final_state(c->nodes[c->first_open].st))
            c->first_open++;
        size_t end = c->wave_end[c->wave];
        if (c->first_open < end)
            break;
        size_t succ, exec, offline;
        wave_counts(c, c->wave, &succ, &exec, &offline);
        bool pass =
            exec > 0 ? succ * 100 >= (size_t)c->spec.success_threshold_pct * exec : offline == 0;
        if (!pass) {
            campaign_halt_now(e, c, true,
                              "wave %u of %zu: %zu of %zu executed nodes succeeded (%zu offline), "
                              "below the success threshold of %u%%",
                              c->wave + 1, c->spec.n_waves, succ, exec, offline,
                              c->spec.success_threshold_pct);
            return;
        }
        advance_wave(e, c);
    }
    if (c->st != CAMPAIGN_RUNNING)
        return;
    size_t busy = in_progress_count(c), end = c->wave_end[c->wave];
    if (c->next_pending < c->first_open)
        c->next_pending = c->first_open;
    while (busy < c->spec.max_parallel && c->next_pending < end) {
        size_t i = c->next_pending++;
        if (c->nodes[i].st != CN_PENDING)
            continue;
        offer(e, c, i);
        busy++;
    }
}

static void announce_final(struct campaign_engine *e, struct campaign *c)
{
    struct qact *a = campaign_queue(e, CAMPAIGN_ACT_STATUS, c, SIZE_MAX);
    if (a != NULL) {
        a->json = campaign_json_status(c, false);
        if (a->json == NULL) {
            e->nq--;
            e->oom = true;
        }
    }
    c->dirty = false;
    c->status_at = e->now;
    a = campaign_queue(e, CAMPAIGN_ACT_FINISHED, c, SIZE_MAX);
    if (a != NULL)
        a->state = c->st;
}

static void campaign_halt_now(struct campaign_engine *e, struct campaign *c, bool threshold,
                              const char *fmt, ...)
{
    va_list ap;
    c->st = CAMPAIGN_HALTED;
    c->threshold_halt = threshold;
    va_start(ap, fmt);
    vsnprintf(c->reason, sizeof(c->reason), fmt, ap);
    va_end(ap);
    c->updated = c->finished = e->now;
    c->save = true;
    note(e, c, SIZE_MAX, LOG_WARNING, "halted", "campaign %s halted: %s", c->spec.id, c->reason);
    announce_final(e, c);
}

static void class_raise(struct campaign_engine *e, const struct campaign *c)
{
    struct ota_class_state cs;
    int r = campaign_class_state(e, c->spec.device_class, &cs);
    if (r < 0) {
        campaign_db_fail(e, r);
        return;
    }
    if (c->spec.raise_floor && c->spec.security_counter > cs.floor)
        cs.floor = c->spec.security_counter;
    campaign_db_save_class(e, c->spec.device_class, cs.floor, &c->spec.version);
}

/* Completed, aborted or failed: nodes in progress are cancelled and `failed` (node_reason),
 * pending ones `skipped`; completed campaigns update the class state. */
static void campaign_end(struct campaign_engine *e, struct campaign *c, enum campaign_state st,
                         const char *node_reason, const char *fmt, ...)
{
    va_list ap;
    c->st = st;
    c->threshold_halt = false;
    va_start(ap, fmt);
    vsnprintf(c->reason, sizeof(c->reason), fmt, ap);
    va_end(ap);
    for (size_t i = c->first_open; i < c->n; i++) {
        if (in_progress(c->nodes[i].st))
            campaign_node_final(e, c, i, CN_FAILED, node_reason ? node_reason : "campaign ended");
        else if (c->nodes[i].st == CN_PENDING)
            campaign_node_finalf(e, c, i, CN_SKIPPED, "campaign %s", campaign_state_str(st));
    }
    c->updated = c->finished = e->now;
    c->save = true;
    c->gone = true;
    if (st == CAMPAIGN_COMPLETED)
        class_raise(e, c);
    note(e, c, SIZE_MAX, st == CAMPAIGN_COMPLETED ? LOG_INFO : LOG_WARNING, campaign_state_str(st),
         "campaign %s %s: %s", c->spec.id, campaign_state_str(st), c->reason);
    announce_final(e, c);
}

/* ---- actions out ------------------------------------------------------------------------ */

static void offer_failed(struct campaign_engine *e, struct campaign *c, size_t i, int rc)
{
    if (!campaign_live(c->st) || c->gone || c->nodes[i].st != CN_OFFERED)
        return;
    if (rc == -EBADMSG) {
        campaign_end(e, c, CAMPAIGN_FAILED, "image_tampered",
                     "image_tampered: the stored image failed re-verification before an offer "
                     "to %s",
                     c->nodes[i].id);
        return;
    }
    char why[96];
    snprintf(why, sizeof(why), "offer not sent: %s", strerror(-rc));
    campaign_step_failed(e, c, i, CN_FAILED, why);
}

static void sweep(struct campaign_engine *e)
{
    struct campaign **pp = &e->list;
    while (*pp != NULL) {
        struct campaign *c = *pp;
        if (c->gone) {
            *pp = c->next;
            campaign_free(c);
        } else {
            pp = &c->next;
        }
    }
}

/* Hands the committed actions out in order. An OFFER the caller could not carry out is a
 * state change of its own (retry, or the campaign fails): committed, then its actions
 * follow in the same loop. */
static void dispatch(struct campaign_engine *e)
{
    for (size_t k = 0; k < e->nq; k++) {
        struct qact a = e->q[k]; /* the queue may grow (and move) below */
        const struct cnode *n = a.pos != SIZE_MAX ? &a.c->nodes[a.pos] : NULL;
        struct campaign_action act = {.kind = a.kind,
                                      .campaign = a.c->spec.id,
                                      .node = n ? n->id : NULL,
                                      .digest = a.c->spec.digest,
                                      .state = a.state,
                                      .json = a.json,
                                      .priority = a.priority,
                                      .token = a.token,
                                      .text = a.text};
        /* a node action whose node was stopped since (a failed offer ended the campaign) */
        if ((a.kind == CAMPAIGN_ACT_OFFER || a.kind == CAMPAIGN_ACT_CHALLENGE ||
             a.kind == CAMPAIGN_ACT_CONFIRM) &&
            (n == NULL || !in_progress(n->st)))
            continue;
        int rc = e->ops.act ? e->ops.act(e->ops.ctx, &act) : 0;
        if (a.kind == CAMPAIGN_ACT_OFFER && rc < 0) {
            size_t mark = e->nq;
            campaign_call_begin(e, e->now);
            offer_failed(e, a.c, a.pos, rc);
            (void)call_commit(e, mark);
        }
    }
    queue_clear(e, 0);
    sweep(e);
}

int campaign_call_end(struct campaign_engine *e)
{
    int r = call_commit(e, 0);
    dispatch(e);
    return r;
}

/* ---- open, close, create ---------------------------------------------------------------- */

int campaign_open(const char *path, const struct campaign_ops *ops, struct campaign_engine **ret,
                  char *err, size_t errlen)
{
    struct campaign_engine *e = calloc(1, sizeof(*e));
    int r;

    *ret = NULL;
    if (err != NULL && errlen)
        err[0] = '\0';
    if (e == NULL)
        return -ENOMEM;
    if (ops != NULL)
        e->ops = *ops;
    r = campaign_db_open(e, path, err, errlen);
    if (r == 0)
        r = campaign_db_load_live(e, path, err, errlen);
    if (r < 0) {
        campaign_close(e);
        return r;
    }
    *ret = e;
    return 0;
}

void campaign_close(struct campaign_engine *e)
{
    if (e == NULL)
        return;
    queue_clear(e, 0);
    free(e->q);
    while (e->list != NULL) {
        struct campaign *c = e->list;
        e->list = c->next;
        campaign_free(c);
    }
    campaign_db_close(e);
    free(e);
}

int campaign_create(struct campaign_engine *e, const struct campaign_spec *spec,
                    const struct campaign_target *targets, size_t n_targets, int64_t now, char *err,
                    size_t errlen)
{
    struct campaign *c = NULL;
    int r;

    if (err != NULL && errlen)
        err[0] = '\0';
    r = campaign_build(e, spec, targets, n_targets, &c, err, errlen);
    if (r < 0)
        return r;
    campaign_call_begin(e, now);
    c->created = c->updated = now;
    r = campaign_db_insert(e, c, err, errlen);
    if (r < 0) {
        r = campaign_db_finish(e, r); /* rolls back, keeps r */
        queue_clear(e, 0);
        goto out;
    }
    /* in the list from here: the campaign is committed with the offers of its first wave */
    c->next = NULL;
    struct campaign **pp = &e->list;
    while (*pp != NULL)
        pp = &(*pp)->next;
    *pp = c;
    c->dirty = true;
    note(e, c, SIZE_MAX, LOG_INFO, "created", "campaign %s created: %zu targets, %zu waves",
         spec->id, c->n, spec->n_waves);
    campaign_progress(e, c);
    r = call_commit(e, 0);
    if (r < 0) {
        *pp = NULL;
        snprintf(err, errlen, "cannot store campaign %s: %s", spec->id, strerror(-r));
        goto out;
    }
    dispatch(e);
    return 0;
out:
    campaign_free(c);
    return r;
}

/* ---- operator --------------------------------------------------------------------------- */

/* The operator's commands act on a campaign in memory (running or halted): 0 with it, -ENOENT
 * for an unknown id, -EINVAL for a final one (it exists, but nothing can be done to it). */
static int live_campaign(struct campaign_engine *e, const char *id, struct campaign **ret)
{
    *ret = campaign_find_live(e, id);
    if (*ret != NULL)
        return 0;
    int r = campaign_db_exists(e, id);
    return r < 0 ? r : -EINVAL;
}

int campaign_halt(struct campaign_engine *e, const char *id, int64_t now, const char *why)
{
    struct campaign *c = NULL;
    int r = live_campaign(e, id, &c);
    if (r < 0)
        return r;
    if (c->st == CAMPAIGN_HALTED)
        return -EALREADY;
    campaign_call_begin(e, now);
    campaign_halt_now(e, c, false, "operator: %s", why && why[0] ? why : "halted");
    return campaign_call_end(e);
}

int campaign_resume(struct campaign_engine *e, const char *id, int64_t now)
{
    struct campaign *c = NULL;
    int r = live_campaign(e, id, &c);
    if (r < 0)
        return r;
    if (c->st == CAMPAIGN_RUNNING)
        return -EALREADY;
    campaign_call_begin(e, now);
    c->st = CAMPAIGN_RUNNING;
    c->reason[0] = '\0';
    c->finished = 0;
    c->updated = now;
    c->save = true;
    c->dirty = true;
    note(e, c, SIZE_MAX, LOG_NOTICE, "resumed", "campaign %s resumed in wave %u of %zu%s",
         c->spec.id, c->wave + 1, c->spec.n_waves,
         c->threshold_halt ? " (the operator accepted the wave below its threshold)" : "");
    if (c->threshold_halt)
        advance_wave(e, c);
    campaign_progress(e, c);
    return campaign_call_end(e);
}

int campaign_abort(struct campaign_engine *e, const char *id, int64_t now, const char *why)
{
    struct campaign *c = campaign_find_live(e, id);
    int r;
    if (c == NULL) {
        r = campaign_db_exists(e, id);
        if (r < 0)
            return r;
        return -EALREADY;
    }
    campaign_call_begin(e, now);
    campaign_end(e, c, CAMPAIGN_ABORTED, "aborted", "operator: %s",
                 why && why[0] ? why : "aborted");
    return campaign_call_end(e);
}

/* ---- timers ----------------------------------------------------------------------------- */

static void wake_at(int64_t *wake, int64_t t)
{
    if (*wake == 0 || t < *wake)
        *wake = t;
}

static void restart_resume(struct campaign_engine *e, struct campaign *c)
{
    for (size_t i = c->first_open; i < c->next_pending; i++) {
        struct cnode *n = &c->nodes[i];
        if (!in_progress(n->st))
            continue;
        n->activity = e->now;
        if (n->st == CN_OFFERED || n->st == CN_DOWNLOADING)
            campaign_queue(e, CAMPAIGN_ACT_OFFER, c, i);
        else if (n->st == CN_TESTING)
            campaign_queue(e, CAMPAIGN_ACT_CHALLENGE, c, i);
        else if (n->st == CN_CONFIRMING)
            campaign_queue(e, CAMPAIGN_ACT_CONFIRM, c, i);
    }
    c->resume = false;
}

static void step_timeout(struct campaign_engine *e, struct campaign *c, size_t i)
{
    struct cnode *n = &c->nodes[i];
    char why[96];
    if (n->st == CN_TESTING || n->st == CN_CONFIRMING) {
        bool testing = n->st == CN_TESTING;
        if (n->attempts <= c->spec.retries) {
            n->attempts++;
            n->activity = e->now;
            campaign_save_node(e, c, i);
            campaign_queue(e, testing ? CAMPAIGN_ACT_CHALLENGE : CAMPAIGN_ACT_CONFIRM, c, i);
            note(e, c, i, LOG_NOTICE, "retry", "campaign %s: node %s: no %s within %us, again",
                 c->spec.id, n->id, testing ? "token" : "confirmation", c->spec.step_timeout_s);
        } else {
            campaign_node_finalf(
                e, c, i, CN_TIMED_OUT, "no %s within step_timeout_s %u (after %u attempts)",
                testing ? "token" : "confirmation", c->spec.step_timeout_s, n->attempts);
        }
        return;
    }
    snprintf(why, sizeof(why), "no answer within step_timeout_s %u while %s",
             c->spec.step_timeout_s, campaign_node_state_str(n->st));
    campaign_step_failed(e, c, i, CN_TIMED_OUT, why);
}

int64_t campaign_tick(struct campaign_engine *e, int64_t now)
{
    int64_t wake = 0;
    campaign_call_begin(e, now);
    for (struct campaign *c = e->list; c != NULL; c = c->next) {
        if (c->gone)
            continue;
        if (c->resume)
            restart_resume(e, c);
        for (size_t i = c->first_open; i < c->next_pending && !c->gone; i++) {
            struct cnode *n = &c->nodes[i];
            if (!in_progress(n->st))
                continue;
            if (now >= n->deadline) {
                if (n->answered)
                    campaign_node_finalf(e, c, i, CN_TIMED_OUT,
                                         "node_deadline_s %u passed while %s",
                                         c->spec.node_deadline_s, campaign_node_state_str(n->st));
                else
                    campaign_node_final(e, c, i, CN_SKIPPED, "offline");
            } else if (n->st == CN_RETRY_WAIT) {
                if (now >= n->retry_at)
                    offer(e, c, i);
            } else if (now - n->activity >= (int64_t)c->spec.step_timeout_s) {
                step_timeout(e, c, i);
            }
        }
        if (!c->gone)
            campaign_progress(e, c);
    }
    for (struct campaign *c = e->list; c != NULL; c = c->next) {
        if (c->gone)
            continue;
        for (size_t i = c->first_open; i < c->next_pending; i++) {
            const struct cnode *n = &c->nodes[i];
            if (!in_progress(n->st))
                continue;
            wake_at(&wake, n->deadline);
            wake_at(&wake, n->st == CN_RETRY_WAIT ? n->retry_at
                                                  : n->activity + (int64_t)c->spec.step_timeout_s);
        }
        if (c->dirty) {
            if (now >= c->status_at + STATUS_INTERVAL_S) {
                struct qact *a = campaign_queue(e, CAMPAIGN_ACT_STATUS, c, SIZE_MAX);
                if (a != NULL && (a->json = campaign_json_status(c, false)) == NULL) {
                    e->nq--;
                    e->oom = true;
                }
                if (a != NULL && a->json != NULL) {
                    c->dirty = false;
                    c->status_at = now;
                }
            } else {
                wake_at(&wake, c->status_at + STATUS_INTERVAL_S);
            }
        }
    }
    if (campaign_call_end(e) < 0)
        wake_at(&wake, now + 1);
    for (struct campaign *c = e->list; c != NULL; c = c->next)
        if (c->dirty)
            wake_at(&wake, c->status_at + STATUS_INTERVAL_S);
    return wake;
}
