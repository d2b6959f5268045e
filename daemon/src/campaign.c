/* OTA campaigns: the persistent state machine of campaign.h. Everything that decides is
 * here; the caller passes time and events in and carries out the actions.
 *
 * Memory: the campaigns that are not final (running, halted) with every node, so that a
 * chunk request costs a binary search and no SQLite write. SQLite: every state change,
 * committed (one transaction per call) before the actions of that call are handed out. */
#define _GNU_SOURCE
#include "campaign.h"

#include <errno.h>
#include <json-c/json.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include "sqlite_errno.h"

#define SCHEMA_VERSION    1
#define STATUS_INTERVAL_S 1
#define BACKOFF_MAX_S     ((int64_t)1 << 40)

static const char *const campaign_state_names[CAMPAIGN_STATE__COUNT] = {
    "running", "halted", "completed", "aborted", "failed"};

static const char *const node_state_names[CN__COUNT] = {
    "pending",   "offered", "downloading", "staged",    "testing",  "confirming", "retry_wait",
    "succeeded", "failed",  "reverted",    "timed_out", "rejected", "skipped"};

static const char *const ota_reason_names[MSG_REASON_MAX + 1] = {
    "none",        "no_space", "bad_digest", "bad_signature", "downgrade",
    "flash_error", "timeout",  "busy",       "aborted",       "boot_failed"};

const char *campaign_state_str(enum campaign_state s)
{
    return (unsigned)s < CAMPAIGN_STATE__COUNT ? campaign_state_names[s] : "unknown";
}

const char *campaign_node_state_str(enum campaign_node_state s)
{
    return (unsigned)s < CN__COUNT ? node_state_names[s] : "unknown";
}

const char *campaign_ota_reason_str(enum msg_ota_reason r)
{
    return (unsigned)r <= MSG_REASON_MAX ? ota_reason_names[r] : "unknown";
}

struct cnode {
    char id[CAMPAIGN_NODE_MAX + 1];
    enum campaign_node_state st;
    uint32_t wave; /* the first wave that covers it */
    uint32_t attempts, offset;
    bool answered; /* the node said anything since its first offer */
    int64_t started, deadline, retry_at;
    int64_t activity; /* memory only: the last sign of life, or the last step started */
    char *reason;     /* NULL = none */
};

struct campaign {
    struct campaign *next;
    struct campaign_spec spec;
    enum campaign_state st;
    char reason[CAMPAIGN_REASON_MAX + 1];
    uint32_t wave;       /* current wave, 0-based */
    bool threshold_halt; /* halted because the current wave missed its threshold */
    int64_t created, updated, finished;
    struct cnode *nodes;
    uint32_t *by_id; /* node indices sorted by id */
    size_t n;
    size_t wave_end[CAMPAIGN_WAVES_MAX];
    /* Offers go in target order, so every node in progress lies in [first_open,
     * next_pending): timers scan that window, not the whole target list. */
    size_t first_open;   /* every node before it is final */
    size_t next_pending; /* no node before it is pending */
    size_t cnt[CN__COUNT];
    bool resume; /* loaded by campaign_open: the first tick re-emits */
    bool save;   /* campaign row changed in this call */
    bool dirty;  /* status changed since the last STATUS */
    bool gone;   /* final: dropped from memory after this call's actions */
    int64_t status_at;
};

struct qact {
    enum campaign_action_kind kind;
    struct campaign *c;
    size_t pos; /* node index, or SIZE_MAX */
    enum campaign_state state;
    char *json;
    int priority;
    const char *token;
    char *text;
};

struct campaign_engine {
    sqlite3 *db;
    struct campaign_ops ops;
    struct campaign *list; /* not final, oldest first */
    sqlite3_stmt *ins_c, *upd_c, *ins_n, *upd_n, *sel_active, *sel_id, *sel_nodes, *exists_c,
        *get_cls, *put_cls, *list_c;
    struct qact *q;
    size_t nq, capq;
    int err;     /* first failed write of the current call */
    bool in_txn; /* the current call opened its transaction (at its first write) */
    bool oom;    /* an action could not be queued */
    int64_t now; /* the current call's time */
};

static bool in_progress(enum campaign_node_state s)
{
    return s > CN_PENDING && s < CN_FINAL_FIRST;
}

static bool node_final_state(enum campaign_node_state s)
{
    return s >= CN_FINAL_FIRST && s < CN__COUNT;
}

static bool campaign_live(enum campaign_state s)
{
    return s == CAMPAIGN_RUNNING || s == CAMPAIGN_HALTED;
}

static int parse_enum(const char *text, const char *const *names, int n)
{
    for (int i = 0; i < n; i++)
        if (text != NULL && strcmp(text, names[i]) == 0)
            return i;
    return -1;
}

static void hex_encode(const uint8_t *in, size_t len, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * len] = '\0';
}

static void version_str(const struct image_version *v, char *out, size_t cap)
{
    snprintf(out, cap, "%u.%u.%u+%u", v->major, v->minor, v->revision, v->build);
}

/* ---- actions ---------------------------------------------------------------------------- */

static struct qact *queue(struct campaign_engine *e, enum campaign_action_kind kind,
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
    struct qact *a = queue(e, CAMPAIGN_ACT_NOTE, c, pos);
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

/* ---- persistence ------------------------------------------------------------------------ */

static void fail_write(struct campaign_engine *e, int r)
{
    if (r < 0 && e->err == 0)
        e->err = r;
}

/* Opens the call's transaction at its first write: a call that changes nothing (a chunk
 * request) never touches SQLite. False (e->err set) when it cannot. */
static bool txn(struct campaign_engine *e)
{
    if (e->err == 0 && !e->in_txn) {
        int r = sqlite_exec(e->db, "BEGIN IMMEDIATE");
        if (r < 0)
            fail_write(e, r);
        else
            e->in_txn = true;
    }
    return e->err == 0;
}

static void save_node(struct campaign_engine *e, struct campaign *c, size_t i)
{
    const struct cnode *n = &c->nodes[i];
    sqlite3_stmt *st = e->upd_n;
    c->updated = e->now;
    c->save = true;
    c->dirty = true;
    if (!txn(e))
        return;
    sqlite3_reset(st);
    sqlite3_bind_text(st, 1, node_state_names[n->st], -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, n->attempts);
    sqlite3_bind_int64(st, 3, n->offset);
    sqlite3_bind_text(st, 4, n->reason ? n->reason : "", -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, n->started);
    sqlite3_bind_int64(st, 6, n->deadline);
    sqlite3_bind_int64(st, 7, n->retry_at);
    sqlite3_bind_int(st, 8, n->answered);
    sqlite3_bind_text(st, 9, c->spec.id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 10, (int64_t)i);
    fail_write(e, sqlite_step_changed(e->db, st));
    sqlite3_clear_bindings(st);
    sqlite3_reset(st);
}

static void save_campaign(struct campaign_engine *e, struct campaign *c)
{
    sqlite3_stmt *st = e->upd_c;
    c->save = false;
    if (!txn(e))
        return;
    sqlite3_reset(st);
    sqlite3_bind_text(st, 1, campaign_state_names[c->st], -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, c->reason, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, c->wave);
    sqlite3_bind_int(st, 4, c->threshold_halt);
    sqlite3_bind_int64(st, 5, c->updated);
    sqlite3_bind_int64(st, 6, c->finished);
    sqlite3_bind_text(st, 7, c->spec.id, -1, SQLITE_STATIC);
    fail_write(e, sqlite_step_changed(e->db, st));
    sqlite3_clear_bindings(st);
    sqlite3_reset(st);
}

static void call_begin(struct campaign_engine *e, int64_t now)
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
        if (c->save)
            save_campaign(e, c);
    int r = e->err;
    if (r == 0 && e->oom)
        r = -ENOMEM;
    if (r == 0 && e->in_txn)
        r = sqlite_exec(e->db, "COMMIT");
    if (r < 0) {
        if (e->in_txn)
            (void)sqlite_exec(e->db, "ROLLBACK");
        queue_clear(e, mark);
    }
    e->in_txn = false;
    return r;
}

/* ---- campaign lookup -------------------------------------------------------------------- */

static struct campaign *find_live(struct campaign_engine *e, const char *id)
{
    if (id == NULL)
        return NULL;
    for (struct campaign *c = e->list; c != NULL; c = c->next)
        if (!c->gone && strcmp(c->spec.id, id) == 0)
            return c;
    return NULL;
}

static int by_id_cmp(const void *a, const void *b, void *u)
{
    const struct cnode *base = u;
    return strcmp(base[*(const uint32_t *)a].id, base[*(const uint32_t *)b].id);
}

static long find_node(const struct campaign *c, const char *node)
{
    size_t lo = 0, hi = c->n;
    if (node == NULL || c->by_id == NULL)
        return -1;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int d = strcmp(c->nodes[c->by_id[mid]].id, node);
        if (d == 0)
            return (long)c->by_id[mid];
        if (d < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

static int index_nodes(struct campaign *c)
{
    c->by_id = calloc(c->n ? c->n : 1, sizeof(*c->by_id));
    if (c->by_id == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < c->n; i++)
        c->by_id[i] = (uint32_t)i;
    qsort_r(c->by_id, c->n, sizeof(*c->by_id), by_id_cmp, c->nodes);
    return 0;
}

static void campaign_free(struct campaign *c)
{
    if (c == NULL)
        return;
    for (size_t i = 0; i < c->n; i++)
        free(c->nodes[i].reason);
    free(c->nodes);
    free(c->by_id);
    free(c);
}

/* Cumulative wave ends for n targets; -EINVAL with err naming the wave when they decrease
 * or the last one does not cover every target. */
static int wave_ends(const struct campaign_spec *s, size_t n, size_t ends[CAMPAIGN_WAVES_MAX],
                     char *err, size_t errlen)
{
    size_t prev = 0;
    for (size_t w = 0; w < s->n_waves; w++) {
        const struct campaign_wave *wv = &s->waves[w];
        size_t end;
        if (wv->percent) {
            if (wv->value < 1 || wv->value > 100) {
                snprintf(err, errlen, "waves[%zu]: %u%% is not a percentage 1..100", w, wv->value);
                return -EINVAL;
            }
            end = ((size_t)wv->value * n + 99) / 100;
            if (end < 1)
                end = 1;
        } else {
            if (wv->value < 1) {
                snprintf(err, errlen, "waves[%zu]: a wave of 0 nodes", w);
                return -EINVAL;
            }
            end = wv->value;
        }
        if (end > n)
            end = n;
        if (end < prev) {
            snprintf(err, errlen,
                     "waves[%zu]: covers %zu targets, fewer than the %zu of the wave before "
                     "(waves are cumulative)",
                     w, end, prev);
            return -EINVAL;
        }
        ends[w] = end;
        prev = end;
    }
    if (prev != n) {
        snprintf(err, errlen, "waves[%zu]: the last wave covers %zu of the %zu targets, not all",
                 s->n_waves - 1, prev, n);
        return -EINVAL;
    }
    return 0;
}

static void assign_waves(struct campaign *c)
{
    uint32_t w = 0;
    for (size_t i = 0; i < c->n; i++) {
        while (w + 1 < c->spec.n_waves && i >= c->wave_end[w])
            w++;
        c->nodes[i].wave = w;
    }
}

/* ---- state changes ---------------------------------------------------------------------- */

static void set_state(struct campaign *c, size_t i, enum campaign_node_state st)
{
    struct cnode *n = &c->nodes[i];
    c->cnt[n->st]--;
    n->st = st;
    c->cnt[st]++;
}

static void clear_reason(struct cnode *n)
{
    free(n->reason);
    n->reason = NULL;
}

__attribute__((format(printf, 2, 3))) static void set_reason(struct cnode *n, const char *fmt, ...)
{
    va_list ap;
    char *s = NULL;
    clear_reason(n);
    va_start(ap, fmt);
    if (vasprintf(&s, fmt, ap) < 0)
        s = NULL;
    va_end(ap);
    if (s != NULL && strlen(s) > CAMPAIGN_REASON_MAX)
        s[CAMPAIGN_REASON_MAX] = '\0';
    n->reason = s;
}

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
static void node_final(struct campaign_engine *e, struct campaign *c, size_t i,
                       enum campaign_node_state st, const char *why)
{
    struct cnode *n = &c->nodes[i];
    bool was = in_progress(n->st);

    set_state(c, i, st);
    if (why != NULL)
        set_reason(n, "%s", why);
    else
        clear_reason(n);
    save_node(e, c, i);
    if (was && st != CN_SUCCEEDED)
        queue(e, CAMPAIGN_ACT_CANCEL, c, i);
    note(e, c, i, st == CN_SUCCEEDED || st == CN_SKIPPED ? LOG_INFO : LOG_WARNING,
         node_state_names[st], "campaign %s: node %s %s%s%s", c->spec.id, n->id,
         node_state_names[st], n->reason ? ": " : "", n->reason ? n->reason : "");
    check_abort(e, c);
}

__attribute__((format(printf, 5, 6))) static void node_finalf(struct campaign_engine *e,
                                                              struct campaign *c, size_t i,
                                                              enum campaign_node_state st,
                                                              const char *fmt, ...)
{
    char why[CAMPAIGN_REASON_MAX + 1];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    node_final(e, c, i, st, why);
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
    set_state(c, i, CN_OFFERED);
    save_node(e, c, i);
    queue(e, CAMPAIGN_ACT_OFFER, c, i);
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
static void step_failed(struct campaign_engine *e, struct campaign *c, size_t i,
                        enum campaign_node_state st, const char *why)
{
    struct cnode *n = &c->nodes[i];
    if (n->attempts <= c->spec.retries) {
        n->retry_at = e->now + backoff(&c->spec, n->attempts);
        set_state(c, i, CN_RETRY_WAIT);
        set_reason(n, "%s", why);
        save_node(e, c, i);
        note(e, c, i, LOG_NOTICE, "retry",
             "campaign %s: node %s: %s; attempt %u of %u again in %llds", c->spec.id, n->id, why,
             n->attempts + 1, c->spec.retries + 1, (long long)(n->retry_at - e->now));
    } else if (st == CN_TIMED_OUT && !n->answered) {
        node_final(e, c, i, CN_SKIPPED, "offline");
    } else if (st == CN_REJECTED) {
        node_final(e, c, i, st, why); /* the node's reason code, as it said it */
    } else {
        node_finalf(e, c, i, st, "%s (after %u attempts)", why, n->attempts);
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

/* Wave advance and new offers (running campaigns only). */
static void progress(struct campaign_engine *e, struct campaign *c)
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

static char *status_text(struct campaign *c, bool nodes);

static void announce_final(struct campaign_engine *e, struct campaign *c)
{
    struct qact *a = queue(e, CAMPAIGN_ACT_STATUS, c, SIZE_MAX);
    if (a != NULL) {
        a->json = status_text(c, false);
        if (a->json == NULL) {
            e->nq--;
            e->oom = true;
        }
    }
    c->dirty = false;
    c->status_at = e->now;
    a = queue(e, CAMPAIGN_ACT_FINISHED, c, SIZE_MAX);
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
        fail_write(e, r);
        return;
    }
    if (c->spec.raise_floor && c->spec.security_counter > cs.floor)
        cs.floor = c->spec.security_counter;
    if (!txn(e))
        return;
    sqlite3_stmt *st = e->put_cls;
    sqlite3_reset(st);
    sqlite3_bind_text(st, 1, c->spec.device_class, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, cs.floor);
    sqlite3_bind_int64(st, 3, c->spec.version.major);
    sqlite3_bind_int64(st, 4, c->spec.version.minor);
    sqlite3_bind_int64(st, 5, c->spec.version.revision);
    sqlite3_bind_int64(st, 6, c->spec.version.build);
    sqlite3_bind_int64(st, 7, e->now);
    fail_write(e, sqlite_errno(sqlite3_step(st)));
    sqlite3_clear_bindings(st);
    sqlite3_reset(st);
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
            node_final(e, c, i, CN_FAILED, node_reason ? node_reason : "campaign ended");
        else if (c->nodes[i].st == CN_PENDING)
            node_finalf(e, c, i, CN_SKIPPED, "campaign %s", campaign_state_names[st]);
    }
    c->updated = c->finished = e->now;
    c->save = true;
    c->gone = true;
    if (st == CAMPAIGN_COMPLETED)
        class_raise(e, c);
    note(e, c, SIZE_MAX, st == CAMPAIGN_COMPLETED ? LOG_INFO : LOG_WARNING,
         campaign_state_names[st], "campaign %s %s: %s", c->spec.id, campaign_state_names[st],
         c->reason);
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
    step_failed(e, c, i, CN_FAILED, why);
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
            call_begin(e, e->now);
            offer_failed(e, a.c, a.pos, rc);
            (void)call_commit(e, mark);
        }
    }
    queue_clear(e, 0);
    sweep(e);
}

/* Ends a call: commit, then the actions. */
static int call_end(struct campaign_engine *e)
{
    int r = call_commit(e, 0);
    dispatch(e);
    return r;
}

/* ---- status document -------------------------------------------------------------------- */

static json_object *counts_obj(const size_t cnt[CN__COUNT])
{
    json_object *o = json_object_new_object();
    for (int s = 0; s < CN__COUNT && o != NULL; s++)
        json_object_object_add(o, node_state_names[s], json_object_new_int64((int64_t)cnt[s]));
    return o;
}

static char *status_text(struct campaign *c, bool nodes)
{
    json_object *o = json_object_new_object(), *img, *wave, *waves, *arr;
    char hex[OTA_DIGEST_HEX + 1], ver[48];
    char *out = NULL;
    if (o == NULL)
        return NULL;
    json_object_object_add(o, "id", json_object_new_string(c->spec.id));
    json_object_object_add(o, "state", json_object_new_string(campaign_state_names[c->st]));
    json_object_object_add(o, "reason", json_object_new_string(c->reason));
    img = json_object_new_object();
    hex_encode(c->spec.digest, OTA_DIGEST_LEN, hex);
    version_str(&c->spec.version, ver, sizeof(ver));
    json_object_object_add(img, "digest", json_object_new_string(hex));
    json_object_object_add(img, "version", json_object_new_string(ver));
    json_object_object_add(img, "class", json_object_new_string(c->spec.device_class));
    json_object_object_add(o, "image", img);
    wave = json_object_new_object();
    json_object_object_add(wave, "current", json_object_new_int64(c->wave + 1));
    json_object_object_add(wave, "count", json_object_new_int64((int64_t)c->spec.n_waves));
    json_object_object_add(o, "wave", wave);
    json_object_object_add(o, "counts", counts_obj(c->cnt));
    waves = json_object_new_array();
    for (size_t w = 0; w < c->spec.n_waves; w++) {
        size_t cnt[CN__COUNT] = {0}, from = w ? c->wave_end[w - 1] : 0;
        for (size_t i = from; i < c->wave_end[w]; i++)
            cnt[c->nodes[i].st]++;
        json_object *wo = json_object_new_object();
        json_object_object_add(wo, "size", json_object_new_int64((int64_t)(c->wave_end[w] - from)));
        json_object_object_add(wo, "counts", counts_obj(cnt));
        json_object_array_add(waves, wo);
    }
    json_object_object_add(o, "waves", waves);
    json_object_object_add(o, "created", json_object_new_int64(c->created));
    json_object_object_add(o, "updated", json_object_new_int64(c->updated));
    json_object_object_add(o, "finished", c->finished ? json_object_new_int64(c->finished) : NULL);
    if (nodes) {
        arr = json_object_new_array();
        for (size_t i = 0; i < c->n; i++) {
            const struct cnode *n = &c->nodes[i];
            json_object *no = json_object_new_object();
            json_object_object_add(no, "node", json_object_new_string(n->id));
            json_object_object_add(no, "state", json_object_new_string(node_state_names[n->st]));
            json_object_object_add(no, "wave", json_object_new_int64(n->wave + 1));
            json_object_object_add(no, "attempts", json_object_new_int64(n->attempts));
            json_object_object_add(no, "offset", json_object_new_int64(n->offset));
            json_object_object_add(no, "reason",
                                   json_object_new_string(n->reason ? n->reason : ""));
            json_object_array_add(arr, no);
        }
        json_object_object_add(o, "nodes", arr);
    }
    const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
    if (s != NULL)
        out = strdup(s);
    json_object_put(o);
    return out;
}

/* ---- open / load ------------------------------------------------------------------------ */

#define CAMPAIGN_COLS                                                                              \
    "id, digest, class, v_major, v_minor, v_revision, v_build, security_counter, waves,"           \
    " max_parallel, node_deadline_s, step_timeout_s, retries, retry_backoff_s,"                    \
    " success_threshold_pct, abort_failures, abort_failure_pct, abort_min_executed, recovery,"     \
    " raise_floor, state, reason, wave, threshold_halt, created, updated, finished"

static void col_text(sqlite3_stmt *st, int col, char *dst, size_t cap)
{
    const unsigned char *t = sqlite3_column_text(st, col);
    snprintf(dst, cap, "%s", t ? (const char *)t : "");
}

static uint32_t col_u32(sqlite3_stmt *st, int col)
{
    int64_t v = sqlite3_column_int64(st, col);
    return v < 0 ? 0 : v > UINT32_MAX ? UINT32_MAX : (uint32_t)v;
}

static void waves_format(const struct campaign_spec *s, char *out, size_t cap)
{
    size_t off = 0;
    out[0] = '\0';
    for (size_t w = 0; w < s->n_waves && off < cap; w++) {
        int k = snprintf(out + off, cap - off, "%s%u%s", w ? "," : "", s->waves[w].value,
                         s->waves[w].percent ? "%" : "");
        if (k < 0)
            break;
        off += (size_t)k;
    }
}

static int waves_parse(const char *text, struct campaign_spec *s)
{
    const char *p = text;
    s->n_waves = 0;
    while (*p != '\0') {
        char *end;
        unsigned long v;
        if (s->n_waves == CAMPAIGN_WAVES_MAX || *p < '0' || *p > '9')
            return -EIO;
        errno = 0;
        v = strtoul(p, &end, 10);
        if (errno != 0 || v > UINT32_MAX)
            return -EIO;
        s->waves[s->n_waves].value = (uint32_t)v;
        s->waves[s->n_waves].percent = *end == '%';
        s->n_waves++;
        p = end + (*end == '%');
        if (*p == ',')
            p++;
        else if (*p != '\0')
            return -EIO;
    }
    return s->n_waves ? 0 : -EIO;
}

/* A campaign row (st positioned on it, CAMPAIGN_COLS) and its nodes. */
static int load_campaign(struct campaign_engine *e, sqlite3_stmt *st, struct campaign **ret,
                         char *err, size_t errlen)
{
    struct campaign *c = calloc(1, sizeof(*c));
    struct campaign_spec *s;
    char text[160];
    int r, v;

    *ret = NULL;
    if (c == NULL)
        return -ENOMEM;
    s = &c->spec;
    col_text(st, 0, s->id, sizeof(s->id));
    if (sqlite3_column_bytes(st, 1) != OTA_DIGEST_LEN) {
        snprintf(err, errlen, "campaign %s: stored digest is not %d bytes", s->id, OTA_DIGEST_LEN);
        r = -EIO;
        goto out;
    }
    memcpy(s->digest, sqlite3_column_blob(st, 1), OTA_DIGEST_LEN);
    col_text(st, 2, s->device_class, sizeof(s->device_class));
    s->version.major = (uint8_t)col_u32(st, 3);
    s->version.minor = (uint8_t)col_u32(st, 4);
    s->version.revision = (uint16_t)col_u32(st, 5);
    s->version.build = col_u32(st, 6);
    s->security_counter = col_u32(st, 7);
    col_text(st, 8, text, sizeof(text));
    if (waves_parse(text, s) < 0) {
        snprintf(err, errlen, "campaign %s: stored waves \"%s\" unreadable", s->id, text);
        r = -EIO;
        goto out;
    }
    s->max_parallel = col_u32(st, 9);
    s->node_deadline_s = col_u32(st, 10);
    s->step_timeout_s = col_u32(st, 11);
    s->retries = col_u32(st, 12);
    s->retry_backoff_s = col_u32(st, 13);
    s->success_threshold_pct = col_u32(st, 14);
    s->abort_failures = col_u32(st, 15);
    s->abort_failure_pct = col_u32(st, 16);
    s->abort_min_executed = col_u32(st, 17);
    s->recovery = sqlite3_column_int(st, 18) != 0;
    s->raise_floor = sqlite3_column_int(st, 19) != 0;
    col_text(st, 20, text, sizeof(text));
    v = parse_enum(text, campaign_state_names, CAMPAIGN_STATE__COUNT);
    if (v < 0) {
        snprintf(err, errlen, "campaign %s: stored state \"%s\" unknown", s->id, text);
        r = -EIO;
        goto out;
    }
    c->st = (enum campaign_state)v;
    col_text(st, 21, c->reason, sizeof(c->reason));
    c->wave = col_u32(st, 22);
    c->threshold_halt = sqlite3_column_int(st, 23) != 0;
    c->created = sqlite3_column_int64(st, 24);
    c->updated = sqlite3_column_int64(st, 25);
    c->finished = sqlite3_column_int64(st, 26);
    if (c->wave >= s->n_waves) {
        snprintf(err, errlen, "campaign %s: stored wave %u of %zu", s->id, c->wave, s->n_waves);
        r = -EIO;
        goto out;
    }

    sqlite3_stmt *ns = e->sel_nodes;
    size_t cap = 0;
    sqlite3_reset(ns);
    sqlite3_bind_text(ns, 1, s->id, -1, SQLITE_TRANSIENT);
    for (;;) {
        int rc = sqlite3_step(ns);
        if (rc == SQLITE_DONE)
            break;
        if (rc != SQLITE_ROW) {
            r = sqlite_errno(rc);
            r = r < 0 ? r : -EIO;
            snprintf(err, errlen, "campaign %s: reading its nodes: %s", s->id,
                     sqlite3_errmsg(e->db));
            goto out_nodes;
        }
        if (c->n == cap) {
            size_t ncap = cap ? cap * 2 : 64;
            struct cnode *nn =
                cap < CAMPAIGN_TARGETS_MAX ? reallocarray(c->nodes, ncap, sizeof(*nn)) : NULL;
            if (nn == NULL) {
                r = -ENOMEM;
                goto out_nodes;
            }
            c->nodes = nn;
            cap = ncap;
        }
        struct cnode *n = &c->nodes[c->n];
        memset(n, 0, sizeof(*n));
        if ((size_t)sqlite3_column_int64(ns, 0) != c->n) {
            snprintf(err, errlen, "campaign %s: stored node positions have a gap at %zu", s->id,
                     c->n);
            r = -EIO;
            goto out_nodes;
        }
        c->n++;
        col_text(ns, 1, n->id, sizeof(n->id));
        col_text(ns, 2, text, sizeof(text));
        v = parse_enum(text, node_state_names, CN__COUNT);
        if (v < 0) {
            snprintf(err, errlen, "campaign %s: node %s: stored state \"%s\" unknown", s->id, n->id,
                     text);
            r = -EIO;
            goto out_nodes;
        }
        n->st = (enum campaign_node_state)v;
        n->attempts = col_u32(ns, 3);
        n->offset = col_u32(ns, 4);
        const unsigned char *why = sqlite3_column_text(ns, 5);
        if (why != NULL && why[0] != '\0')
            set_reason(n, "%s", (const char *)why);
        n->started = sqlite3_column_int64(ns, 6);
        n->deadline = sqlite3_column_int64(ns, 7);
        n->retry_at = sqlite3_column_int64(ns, 8);
        n->answered = sqlite3_column_int(ns, 9) != 0;
        c->cnt[n->st]++;
    }
    r = wave_ends(s, c->n, c->wave_end, err, errlen);
    if (r < 0)
        goto out_nodes;
    assign_waves(c);
    r = index_nodes(c);
    if (r < 0)
        goto out_nodes;
    while (c->first_open < c->n && node_final_state(c->nodes[c->first_open].st))
        c->first_open++;
    c->next_pending = c->first_open;
    while (c->next_pending < c->n && c->nodes[c->next_pending].st != CN_PENDING)
        c->next_pending++;
    c->resume = campaign_live(c->st);
    c->dirty = true;
    *ret = c;
    c = NULL;
out_nodes:
    sqlite3_clear_bindings(ns);
    sqlite3_reset(ns);
out:
    campaign_free(c);
    return r;
}

int campaign_open(const char *path, const struct campaign_ops *ops, struct campaign_engine **ret,
                  char *err, size_t errlen)
{
    struct campaign_engine *e = calloc(1, sizeof(*e));
    struct campaign *tail = NULL;
    int r, rc;

    *ret = NULL;
    if (err != NULL && errlen)
        err[0] = '\0';
    if (e == NULL)
        return -ENOMEM;
    if (ops != NULL)
        e->ops = *ops;
    r = sqlite_errno(sqlite3_open_v2(
        path, &e->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL));
    if (r < 0) {
        snprintf(err, errlen, "%s: cannot open: %s", path,
                 e->db ? sqlite3_errmsg(e->db) : strerror(-r));
        goto out;
    }
    sqlite3_busy_timeout(e->db, 2000);
    r = sqlite_exec(e->db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;");
    if (r == 0) {
        sqlite3_stmt *uv = NULL;
        r = sqlite_prepare(e->db, "PRAGMA user_version", &uv);
        if (r == 0 && sqlite3_step(uv) == SQLITE_ROW &&
            sqlite3_column_int(uv, 0) > SCHEMA_VERSION) {
            snprintf(err, errlen,
                     "%s: campaign schema version %d is newer than this fleetgwd's (%d)", path,
                     sqlite3_column_int(uv, 0), SCHEMA_VERSION);
            r = -EPROTONOSUPPORT;
        }
        sqlite3_finalize(uv);
        if (r < 0)
            goto out;
    }
    if (r == 0)
        r = sqlite_exec(
            e->db,
            "BEGIN IMMEDIATE;"
            "CREATE TABLE IF NOT EXISTS campaigns ("
            " seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE,"
            " digest BLOB NOT NULL, class TEXT NOT NULL, v_major INTEGER NOT NULL,"
            " v_minor INTEGER NOT NULL, v_revision INTEGER NOT NULL, v_build INTEGER NOT NULL,"
            " security_counter INTEGER NOT NULL, waves TEXT NOT NULL,"
            " max_parallel INTEGER NOT NULL, node_deadline_s INTEGER NOT NULL,"
            " step_timeout_s INTEGER NOT NULL, retries INTEGER NOT NULL,"
            " retry_backoff_s INTEGER NOT NULL, success_threshold_pct INTEGER NOT NULL,"
            " abort_failures INTEGER NOT NULL, abort_failure_pct INTEGER NOT NULL,"
            " abort_min_executed INTEGER NOT NULL, recovery INTEGER NOT NULL,"
            " raise_floor INTEGER NOT NULL, state TEXT NOT NULL, reason TEXT NOT NULL,"
            " wave INTEGER NOT NULL, threshold_halt INTEGER NOT NULL, created INTEGER NOT NULL,"
            " updated INTEGER NOT NULL, finished INTEGER NOT NULL);"
            "CREATE INDEX IF NOT EXISTS campaigns_state ON campaigns(state);"
            "CREATE TABLE IF NOT EXISTS campaign_nodes ("
            " campaign TEXT NOT NULL, pos INTEGER NOT NULL, node TEXT NOT NULL,"
            " state TEXT NOT NULL, attempts INTEGER NOT NULL, off INTEGER NOT NULL,"
            " reason TEXT NOT NULL, started INTEGER NOT NULL, deadline INTEGER NOT NULL,"
            " retry_at INTEGER NOT NULL, answered INTEGER NOT NULL,"
            " PRIMARY KEY (campaign, pos)) WITHOUT ROWID;"
            "CREATE INDEX IF NOT EXISTS campaign_nodes_node ON campaign_nodes(node);"
            "CREATE TABLE IF NOT EXISTS class_state ("
            " class TEXT PRIMARY KEY, floor INTEGER NOT NULL, v_major INTEGER NOT NULL,"
            " v_minor INTEGER NOT NULL, v_revision INTEGER NOT NULL, v_build INTEGER NOT NULL,"
            " updated INTEGER NOT NULL);"
            "PRAGMA user_version = 1;"
            "COMMIT;");
    const struct sqlite_stmt_spec stmts[] = {
        {&e->ins_c, "INSERT INTO campaigns(" CAMPAIGN_COLS ") VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?,"
                    " ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"},
        {&e->upd_c, "UPDATE campaigns SET state = ?, reason = ?, wave = ?, threshold_halt = ?,"
                    " updated = ?, finished = ? WHERE id = ?"},
        {&e->ins_n, "INSERT INTO campaign_nodes(campaign, pos, node, state, attempts, off,"
                    " reason, started, deadline, retry_at, answered)"
                    " VALUES(?, ?, ?, ?, 0, 0, ?, 0, 0, 0, 0)"},
        {&e->upd_n, "UPDATE campaign_nodes SET state = ?, attempts = ?, off = ?, reason = ?,"
                    " started = ?, deadline = ?, retry_at = ?, answered = ?"
                    " WHERE campaign = ? AND pos = ?"},
        {&e->sel_active, "SELECT " CAMPAIGN_COLS " FROM campaigns"
                         " WHERE state IN ('running', 'halted') ORDER BY seq"},
        {&e->sel_id, "SELECT " CAMPAIGN_COLS " FROM campaigns WHERE id = ?"},
        {&e->sel_nodes, "SELECT pos, node, state, attempts, off, reason, started, deadline,"
                        " retry_at, answered FROM campaign_nodes WHERE campaign = ? ORDER BY pos"},
        {&e->exists_c, "SELECT 1 FROM campaigns WHERE id = ?"},
        {&e->get_cls, "SELECT floor, v_major, v_minor, v_revision, v_build FROM class_state"
                      " WHERE class = ?"},
        {&e->put_cls, "INSERT OR REPLACE INTO class_state(class, floor, v_major, v_minor,"
                      " v_revision, v_build, updated) VALUES(?, ?, ?, ?, ?, ?, ?)"},
        {&e->list_c, "SELECT id, state FROM campaigns ORDER BY seq DESC"},
    };
    if (r == 0)
        r = sqlite_prepare_all(e->db, stmts, sizeof(stmts) / sizeof(stmts[0]));
    if (r < 0) {
        snprintf(err, errlen, "%s: cannot set up the campaign tables: %s", path,
                 sqlite3_errmsg(e->db));
        goto out;
    }
    sqlite3_reset(e->sel_active);
    while ((rc = sqlite3_step(e->sel_active)) == SQLITE_ROW) {
        struct campaign *c = NULL;
        r = load_campaign(e, e->sel_active, &c, err, errlen);
        if (r < 0)
            goto out;
        if (tail == NULL)
            e->list = c;
        else
            tail->next = c;
        tail = c;
    }
    if (rc != SQLITE_DONE) {
        r = sqlite_errno(rc);
        r = r < 0 ? r : -EIO;
        snprintf(err, errlen, "%s: reading campaigns: %s", path, sqlite3_errmsg(e->db));
        goto out;
    }
    sqlite3_reset(e->sel_active);
    *ret = e;
    e = NULL;
    r = 0;
out:
    if (e != NULL && e->sel_active != NULL)
        sqlite3_reset(e->sel_active);
    campaign_close(e);
    return r;
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
    sqlite3_stmt *sts[] = {e->ins_c,      e->upd_c,   e->ins_n,     e->upd_n,
                           e->sel_active, e->sel_id,  e->sel_nodes, e->exists_c,
                           e->get_cls,    e->put_cls, e->list_c};
    for (size_t i = 0; i < sizeof(sts) / sizeof(sts[0]); i++)
        sqlite3_finalize(sts[i]);
    sqlite3_close_v2(e->db);
    free(e);
}

/* ---- create ----------------------------------------------------------------------------- */

static int spec_check(const struct campaign_spec *s, char *err, size_t errlen)
{
#define BAD(...)                                                                                   \
    do {                                                                                           \
        snprintf(err, errlen, __VA_ARGS__);                                                        \
        return -EINVAL;                                                                            \
    } while (0)
    size_t cl = strnlen(s->device_class, sizeof(s->device_class));
    if (msg_campaign_id_valid(s->id, strnlen(s->id, sizeof(s->id))) != 0)
        BAD("id: \"%.*s\" is not 1..%u characters of [A-Za-z0-9._-]", CAMPAIGN_ID_MAX, s->id,
            CAMPAIGN_ID_MAX);
    if (cl == 0 || cl > OTA_CLASS_NAME_MAX)
        BAD("device_class: empty or longer than %d characters", OTA_CLASS_NAME_MAX);
    if (s->n_waves < 1 || s->n_waves > CAMPAIGN_WAVES_MAX)
        BAD("waves: %zu waves, allowed 1..%d", s->n_waves, CAMPAIGN_WAVES_MAX);
    if (s->max_parallel < 1)
        BAD("max_parallel: must be at least 1");
    if (s->step_timeout_s < 1)
        BAD("step_timeout_s: must be at least 1");
    if (s->node_deadline_s < s->step_timeout_s)
        BAD("node_deadline_s: %u is shorter than step_timeout_s %u", s->node_deadline_s,
            s->step_timeout_s);
    if (s->retry_backoff_s < 1)
        BAD("retry_backoff_s: must be at least 1");
    if (s->retries > 1000)
        BAD("retries: %u, at most 1000", s->retries);
    if (s->success_threshold_pct < 1 || s->success_threshold_pct > 100)
        BAD("success_threshold_pct: %u is not 1..100", s->success_threshold_pct);
    if (s->abort_failure_pct > 100)
        BAD("abort_failure_pct: %u is not 0..100", s->abort_failure_pct);
    return 0;
#undef BAD
}

int campaign_create(struct campaign_engine *e, const struct campaign_spec *spec,
                    const struct campaign_target *targets, size_t n_targets, int64_t now, char *err,
                    size_t errlen)
{
    struct campaign *c = NULL;
    char waves[160];
    int r;

    if (err != NULL && errlen)
        err[0] = '\0';
    r = spec_check(spec, err, errlen);
    if (r < 0)
        return r;
    if (n_targets == 0 || targets == NULL) {
        snprintf(err, errlen, "targets: no target node");
        return -EINVAL;
    }
    if (n_targets > CAMPAIGN_TARGETS_MAX) {
        snprintf(err, errlen, "targets: %zu nodes, at most %d", n_targets, CAMPAIGN_TARGETS_MAX);
        return -ENOSPC;
    }
    c = calloc(1, sizeof(*c));
    if (c == NULL)
        return -ENOMEM;
    c->spec = *spec;
    c->n = n_targets;
    c->nodes = calloc(n_targets, sizeof(*c->nodes));
    if (c->nodes == NULL) {
        r = -ENOMEM;
        goto out;
    }
    r = wave_ends(spec, n_targets, c->wave_end, err, errlen);
    if (r < 0)
        goto out;
    for (size_t i = 0; i < n_targets; i++) {
        const struct campaign_target *t = &targets[i];
        size_t nl = strnlen(t->node, sizeof(t->node));
        if (nl > CAMPAIGN_NODE_MAX || msg_node_id_valid(t->node, nl) != 0) {
            snprintf(err, errlen, "targets[%zu]: \"%.*s\" is not a node id", i, CAMPAIGN_NODE_MAX,
                     t->node);
            r = -EINVAL;
            goto out;
        }
        if (t->skip_reason != NULL &&
            (t->skip_reason[0] == '\0' || strlen(t->skip_reason) > CAMPAIGN_REASON_MAX)) {
            snprintf(err, errlen, "targets[%zu]: skip_reason empty or longer than %d", i,
                     CAMPAIGN_REASON_MAX);
            r = -EINVAL;
            goto out;
        }
        memcpy(c->nodes[i].id, t->node, nl);
        c->nodes[i].st = t->skip_reason ? CN_SKIPPED : CN_PENDING;
        if (t->skip_reason)
            set_reason(&c->nodes[i], "%s", t->skip_reason);
        c->cnt[c->nodes[i].st]++;
    }
    assign_waves(c);
    r = index_nodes(c);
    if (r < 0)
        goto out;
    for (size_t k = 1; k < c->n; k++)
        if (strcmp(c->nodes[c->by_id[k - 1]].id, c->nodes[c->by_id[k]].id) == 0) {
            snprintf(err, errlen, "targets[%u]: node %s is listed twice", c->by_id[k],
                     c->nodes[c->by_id[k]].id);
            r = -EINVAL;
            goto out;
        }
    for (struct campaign *o = e->list; o != NULL; o = o->next)
        for (size_t i = 0; i < c->n; i++)
            if (find_node(o, c->nodes[i].id) >= 0) {
                snprintf(err, errlen, "targets[%zu]: node %s is in campaign %s, which is %s", i,
                         c->nodes[i].id, o->spec.id, campaign_state_names[o->st]);
                r = -EBUSY;
                goto out;
            }

    call_begin(e, now);
    if (!txn(e)) {
        r = e->err;
        snprintf(err, errlen, "cannot begin a transaction: %s", sqlite3_errmsg(e->db));
        goto out;
    }
    sqlite3_reset(e->exists_c);
    sqlite3_bind_text(e->exists_c, 1, spec->id, -1, SQLITE_STATIC);
    r = sqlite3_step(e->exists_c);
    sqlite3_clear_bindings(e->exists_c);
    sqlite3_reset(e->exists_c);
    if (r == SQLITE_ROW) {
        snprintf(err, errlen, "id: campaign %s exists already", spec->id);
        r = -EEXIST;
        goto out_txn;
    }
    r = sqlite_errno(r);
    if (r < 0)
        goto out_txn;
    c->created = c->updated = now;
    waves_format(spec, waves, sizeof(waves));
    sqlite3_stmt *st = e->ins_c;
    int k = 1;
    sqlite3_reset(st);
    sqlite3_bind_text(st, k++, spec->id, -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, k++, spec->digest, OTA_DIGEST_LEN, SQLITE_STATIC);
    sqlite3_bind_text(st, k++, spec->device_class, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, k++, spec->version.major);
    sqlite3_bind_int64(st, k++, spec->version.minor);
    sqlite3_bind_int64(st, k++, spec->version.revision);
    sqlite3_bind_int64(st, k++, spec->version.build);
    sqlite3_bind_int64(st, k++, spec->security_counter);
    sqlite3_bind_text(st, k++, waves, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, k++, spec->max_parallel);
    sqlite3_bind_int64(st, k++, spec->node_deadline_s);
    sqlite3_bind_int64(st, k++, spec->step_timeout_s);
    sqlite3_bind_int64(st, k++, spec->retries);
    sqlite3_bind_int64(st, k++, spec->retry_backoff_s);
    sqlite3_bind_int64(st, k++, spec->success_threshold_pct);
    sqlite3_bind_int64(st, k++, spec->abort_failures);
    sqlite3_bind_int64(st, k++, spec->abort_failure_pct);
    sqlite3_bind_int64(st, k++, spec->abort_min_executed);
    sqlite3_bind_int(st, k++, spec->recovery);
    sqlite3_bind_int(st, k++, spec->raise_floor);
    sqlite3_bind_text(st, k++, campaign_state_names[CAMPAIGN_RUNNING], -1, SQLITE_STATIC);
    sqlite3_bind_text(st, k++, "", -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, k++, 0);
    sqlite3_bind_int(st, k++, 0);
    sqlite3_bind_int64(st, k++, now);
    sqlite3_bind_int64(st, k++, now);
    sqlite3_bind_int64(st, k++, 0);
    r = sqlite_errno(sqlite3_step(st));
    sqlite3_clear_bindings(st);
    sqlite3_reset(st);
    for (size_t i = 0; i < c->n && r == 0; i++) {
        st = e->ins_n;
        sqlite3_reset(st);
        sqlite3_bind_text(st, 1, spec->id, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, (int64_t)i);
        sqlite3_bind_text(st, 3, c->nodes[i].id, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 4, node_state_names[c->nodes[i].st], -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 5, c->nodes[i].reason ? c->nodes[i].reason : "", -1, SQLITE_STATIC);
        r = sqlite_errno(sqlite3_step(st));
        sqlite3_clear_bindings(st);
        sqlite3_reset(st);
    }
    if (r < 0) {
        snprintf(err, errlen, "cannot store campaign %s: %s", spec->id, sqlite3_errmsg(e->db));
        goto out_txn;
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
    progress(e, c);
    r = call_commit(e, 0);
    if (r < 0) {
        *pp = NULL;
        snprintf(err, errlen, "cannot store campaign %s: %s", spec->id, strerror(-r));
        goto out;
    }
    dispatch(e);
    return 0;
out_txn:
    (void)sqlite_exec(e->db, "ROLLBACK");
    e->in_txn = false;
    queue_clear(e, 0);
out:
    campaign_free(c);
    return r;
}

/* ---- operator --------------------------------------------------------------------------- */

static int lookup_any(struct campaign_engine *e, const char *id)
{
    int rc;
    sqlite3_reset(e->exists_c);
    sqlite3_bind_text(e->exists_c, 1, id ? id : "", -1, SQLITE_TRANSIENT);
    rc = sqlite3_step(e->exists_c);
    sqlite3_clear_bindings(e->exists_c);
    sqlite3_reset(e->exists_c);
    return rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? -ENOENT : sqlite_errno(rc);
}

/* The operator's commands act on a campaign in memory (running or halted): 0 with it, -ENOENT
 * for an unknown id, -EINVAL for a final one (it exists, but nothing can be done to it). */
static int live_campaign(struct campaign_engine *e, const char *id, struct campaign **ret)
{
    *ret = find_live(e, id);
    if (*ret != NULL)
        return 0;
    int r = lookup_any(e, id);
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
    call_begin(e, now);
    campaign_halt_now(e, c, false, "operator: %s", why && why[0] ? why : "halted");
    return call_end(e);
}

int campaign_resume(struct campaign_engine *e, const char *id, int64_t now)
{
    struct campaign *c = NULL;
    int r = live_campaign(e, id, &c);
    if (r < 0)
        return r;
    if (c->st == CAMPAIGN_RUNNING)
        return -EALREADY;
    call_begin(e, now);
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
    progress(e, c);
    return call_end(e);
}

int campaign_abort(struct campaign_engine *e, const char *id, int64_t now, const char *why)
{
    struct campaign *c = find_live(e, id);
    int r;
    if (c == NULL) {
        r = lookup_any(e, id);
        if (r < 0)
            return r;
        return -EALREADY;
    }
    call_begin(e, now);
    campaign_end(e, c, CAMPAIGN_ABORTED, "aborted", "operator: %s",
                 why && why[0] ? why : "aborted");
    return call_end(e);
}

/* ---- node events ------------------------------------------------------------------------ */

/* The node's campaign entry (in progress), liveness refreshed. */
static int node_event(struct campaign_engine *e, const char *node, const char *campaign,
                      int64_t now, struct campaign **rc, size_t *ri)
{
    struct campaign *c = NULL;
    long i = -1;
    if (campaign != NULL) {
        c = find_live(e, campaign);
        if (c != NULL)
            i = find_node(c, node);
    } else {
        for (c = e->list; c != NULL; c = c->next) {
            if (c->gone)
                continue;
            i = find_node(c, node);
            if (i >= 0 && in_progress(c->nodes[i].st))
                break;
        }
    }
    if (c == NULL || i < 0 || !in_progress(c->nodes[i].st))
        return -ENOENT;
    call_begin(e, now);
    struct cnode *n = &c->nodes[i];
    n->activity = now;
    if (!n->answered) {
        n->answered = true;
        save_node(e, c, (size_t)i);
    }
    *rc = c;
    *ri = (size_t)i;
    return 0;
}

int campaign_on_ack(struct campaign_engine *e, const char *node, const char *campaign,
                    bool accepted, enum msg_ota_reason reason, int64_t now)
{
    struct campaign *c;
    size_t i;
    int r = node_event(e, node, campaign, now, &c, &i);
    if (r < 0)
        return r;
    struct cnode *n = &c->nodes[i];
    if (n->st != CN_OFFERED) {
        r = -EPROTO;
    } else if (accepted) {
        set_state(c, i, CN_DOWNLOADING);
        clear_reason(n);
        save_node(e, c, i);
    } else if (reason == MSG_REASON_BUSY) {
        step_failed(e, c, i, CN_REJECTED, "busy");
    } else {
        node_final(e, c, i, CN_REJECTED, campaign_ota_reason_str(reason));
    }
    progress(e, c);
    int w = call_end(e);
    return w < 0 ? w : r;
}

int campaign_on_request(struct campaign_engine *e, const char *node, const char *campaign,
                        uint32_t offset, int64_t now)
{
    struct campaign *c;
    size_t i;
    int r = node_event(e, node, campaign, now, &c, &i);
    if (r < 0)
        return r;
    struct cnode *n = &c->nodes[i];
    if (n->st == CN_DOWNLOADING) {
        n->offset = offset; /* memory only: persisted with the next state change */
    } else if (n->st == CN_OFFERED || n->st == CN_RETRY_WAIT) {
        n->offset = offset;
        set_state(c, i, CN_DOWNLOADING);
        clear_reason(n);
        save_node(e, c, i);
    } else {
        r = -EPROTO;
    }
    int w = call_end(e);
    return w < 0 ? w : r;
}

int campaign_on_status(struct campaign_engine *e, const char *node, const char *campaign,
                       enum msg_ota_state state, uint32_t offset, enum msg_ota_reason reason,
                       int64_t now)
{
    struct campaign *c;
    size_t i;
    int r = node_event(e, node, campaign, now, &c, &i);
    if (r < 0)
        return r;
    struct cnode *n = &c->nodes[i];
    bool before_staged = n->st == CN_OFFERED || n->st == CN_DOWNLOADING || n->st == CN_RETRY_WAIT;
    switch (state) {
    case MSG_OTA_IDLE:
    case MSG_OTA_DOWNLOADING:
    case MSG_OTA_VERIFYING:
        if (before_staged && state != MSG_OTA_IDLE)
            n->offset = offset;
        if (state == MSG_OTA_DOWNLOADING && n->st != CN_DOWNLOADING && before_staged) {
            set_state(c, i, CN_DOWNLOADING);
            clear_reason(n);
            save_node(e, c, i);
        }
        break;
    case MSG_OTA_STAGED:
        if (before_staged) {
            n->offset = offset;
            set_state(c, i, CN_STAGED);
            clear_reason(n);
            save_node(e, c, i);
        } else if (n->st != CN_STAGED) {
            r = -EPROTO;
        }
        break;
    case MSG_OTA_TESTING:
        if (before_staged || n->st == CN_STAGED) {
            set_state(c, i, CN_TESTING);
            clear_reason(n);
            save_node(e, c, i);
            queue(e, CAMPAIGN_ACT_CHALLENGE, c, i);
        }
        break;
    case MSG_OTA_CONFIRMED:
        /* success only after the measured token (CONFIRMING): a node's word alone is not */
        if (n->st == CN_CONFIRMING)
            node_final(e, c, i, CN_SUCCEEDED, NULL);
        else
            r = -EPROTO;
        break;
    case MSG_OTA_FAILED:
        if (n->st != CN_RETRY_WAIT) {
            char why[64];
            snprintf(why, sizeof(why), "node failed: %s", campaign_ota_reason_str(reason));
            step_failed(e, c, i, CN_FAILED, why);
        }
        break;
    case MSG_OTA_REVERTED:
        node_finalf(e, c, i, CN_REVERTED, "node reverted: %s", campaign_ota_reason_str(reason));
        break;
    default:
        r = -EINVAL;
        break;
    }
    progress(e, c);
    int w = call_end(e);
    return w < 0 ? w : r;
}

int campaign_on_attested(struct campaign_engine *e, const char *node, bool trusted,
                         const uint8_t *measured, const char *reason, int64_t now)
{
    struct campaign *c;
    size_t i;
    int r = node_event(e, node, NULL, now, &c, &i);
    if (r < 0)
        return r;
    if (c->nodes[i].st != CN_TESTING) {
        r = -EPROTO; /* a token before the node runs the new image says nothing of it */
    } else if (!trusted) {
        node_finalf(e, c, i, CN_FAILED, "attestation: %s",
                    reason && reason[0] ? reason : "not trusted");
    } else if (measured == NULL || memcmp(measured, c->spec.digest, OTA_DIGEST_LEN) != 0) {
        char hex[9] = "unknown";
        if (measured != NULL)
            hex_encode(measured, 4, hex);
        node_finalf(e, c, i, CN_REVERTED, "measured %s not the campaign image", hex);
    } else {
        set_state(c, i, CN_CONFIRMING);
        c->nodes[i].activity = now;
        save_node(e, c, i);
        queue(e, CAMPAIGN_ACT_CONFIRM, c, i);
    }
    progress(e, c);
    int w = call_end(e);
    return w < 0 ? w : r;
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
            queue(e, CAMPAIGN_ACT_OFFER, c, i);
        else if (n->st == CN_TESTING)
            queue(e, CAMPAIGN_ACT_CHALLENGE, c, i);
        else if (n->st == CN_CONFIRMING)
            queue(e, CAMPAIGN_ACT_CONFIRM, c, i);
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
            save_node(e, c, i);
            queue(e, testing ? CAMPAIGN_ACT_CHALLENGE : CAMPAIGN_ACT_CONFIRM, c, i);
            note(e, c, i, LOG_NOTICE, "retry", "campaign %s: node %s: no %s within %us, again",
                 c->spec.id, n->id, testing ? "token" : "confirmation", c->spec.step_timeout_s);
        } else {
            node_finalf(e, c, i, CN_TIMED_OUT, "no %s within step_timeout_s %u (after %u attempts)",
                        testing ? "token" : "confirmation", c->spec.step_timeout_s, n->attempts);
        }
        return;
    }
    snprintf(why, sizeof(why), "no answer within step_timeout_s %u while %s",
             c->spec.step_timeout_s, node_state_names[n->st]);
    step_failed(e, c, i, CN_TIMED_OUT, why);
}

int64_t campaign_tick(struct campaign_engine *e, int64_t now)
{
    int64_t wake = 0;
    call_begin(e, now);
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
                    node_finalf(e, c, i, CN_TIMED_OUT, "node_deadline_s %u passed while %s",
                                c->spec.node_deadline_s, node_state_names[n->st]);
                else
                    node_final(e, c, i, CN_SKIPPED, "offline");
            } else if (n->st == CN_RETRY_WAIT) {
                if (now >= n->retry_at)
                    offer(e, c, i);
            } else if (now - n->activity >= (int64_t)c->spec.step_timeout_s) {
                step_timeout(e, c, i);
            }
        }
        if (!c->gone)
            progress(e, c);
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
                struct qact *a = queue(e, CAMPAIGN_ACT_STATUS, c, SIZE_MAX);
                if (a != NULL && (a->json = status_text(c, false)) == NULL) {
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
    if (call_end(e) < 0)
        wake_at(&wake, now + 1);
    for (struct campaign *c = e->list; c != NULL; c = c->next)
        if (c->dirty)
            wake_at(&wake, c->status_at + STATUS_INTERVAL_S);
    return wake;
}

/* ---- queries ---------------------------------------------------------------------------- */

bool campaign_node_active(const struct campaign_engine *e, const char *node,
                          char id[CAMPAIGN_ID_MAX + 1], uint8_t digest[OTA_DIGEST_LEN],
                          enum campaign_node_state *state)
{
    for (const struct campaign *c = e->list; c != NULL; c = c->next) {
        if (c->gone)
            continue;
        long i = find_node(c, node);
        if (i < 0 || !in_progress(c->nodes[i].st))
            continue;
        if (id != NULL)
            snprintf(id, CAMPAIGN_ID_MAX + 1, "%s", c->spec.id);
        if (digest != NULL)
            memcpy(digest, c->spec.digest, OTA_DIGEST_LEN);
        if (state != NULL)
            *state = c->nodes[i].st;
        return true;
    }
    return false;
}

bool campaign_node_image(const struct campaign_engine *e, const char *node,
                         uint8_t digest[OTA_DIGEST_LEN])
{
    for (const struct campaign *c = e->list; c != NULL; c = c->next) {
        if (c->gone)
            continue;
        long i = find_node(c, node);
        if (i < 0)
            continue;
        enum campaign_node_state st = c->nodes[i].st;
        if (st == CN_STAGED || st == CN_TESTING || st == CN_CONFIRMING || st == CN_SUCCEEDED) {
            memcpy(digest, c->spec.digest, OTA_DIGEST_LEN);
            return true;
        }
    }
    return false;
}

char *campaign_status_json(struct campaign_engine *e, const char *id, bool nodes)
{
    struct campaign *c = find_live(e, id), *tmp = NULL;
    char err[256];
    char *out;
    if (c == NULL && id != NULL) {
        sqlite3_reset(e->sel_id);
        sqlite3_bind_text(e->sel_id, 1, id, -1, SQLITE_TRANSIENT);
        if (sqlite3_step(e->sel_id) == SQLITE_ROW &&
            load_campaign(e, e->sel_id, &tmp, err, sizeof(err)) == 0)
            c = tmp;
        sqlite3_clear_bindings(e->sel_id);
        sqlite3_reset(e->sel_id);
    }
    if (c == NULL)
        return NULL;
    out = status_text(c, nodes);
    campaign_free(tmp);
    return out;
}

int campaign_foreach(struct campaign_engine *e,
                     int (*fn)(const char *id, enum campaign_state st, void *u), void *u)
{
    int rc, r = 0;
    sqlite3_reset(e->list_c);
    while ((rc = sqlite3_step(e->list_c)) == SQLITE_ROW) {
        char id[CAMPAIGN_ID_MAX + 1];
        col_text(e->list_c, 0, id, sizeof(id));
        int v = parse_enum((const char *)sqlite3_column_text(e->list_c, 1), campaign_state_names,
                           CAMPAIGN_STATE__COUNT);
        if (v < 0)
            continue;
        r = fn(id, (enum campaign_state)v, u);
        if (r != 0)
            break;
    }
    if (r == 0 && rc != SQLITE_DONE && rc != SQLITE_ROW) {
        r = sqlite_errno(rc);
        r = r < 0 ? r : -EIO;
    }
    sqlite3_reset(e->list_c);
    return r;
}

bool campaign_uses_image(struct campaign_engine *e, const uint8_t digest[OTA_DIGEST_LEN])
{
    for (const struct campaign *c = e->list; c != NULL; c = c->next)
        if (!c->gone && memcmp(c->spec.digest, digest, OTA_DIGEST_LEN) == 0)
            return true;
    return false;
}

int campaign_class_state(void *engine, const char *cls, struct ota_class_state *ret)
{
    struct campaign_engine *e = engine;
    int rc, r = 0;
    memset(ret, 0, sizeof(*ret));
    sqlite3_reset(e->get_cls);
    sqlite3_bind_text(e->get_cls, 1, cls ? cls : "", -1, SQLITE_TRANSIENT);
    rc = sqlite3_step(e->get_cls);
    if (rc == SQLITE_ROW) {
        ret->floor = col_u32(e->get_cls, 0);
        ret->has_current = true;
        ret->current.major = (uint8_t)col_u32(e->get_cls, 1);
        ret->current.minor = (uint8_t)col_u32(e->get_cls, 2);
        ret->current.revision = (uint16_t)col_u32(e->get_cls, 3);
        ret->current.build = col_u32(e->get_cls, 4);
    } else if (rc != SQLITE_DONE) {
        r = sqlite_errno(rc);
        r = r < 0 ? r : -EIO;
    }
    sqlite3_clear_bindings(e->get_cls);
    sqlite3_reset(e->get_cls);
    return r;
}
