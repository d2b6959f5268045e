/* The campaigns in memory (campaign_internal.h): the names of the states and reasons, a
 * campaign's nodes and their index by id, the waves' boundaries, a node's state and reason,
 * the checks of a new campaign's spec and targets, and the read-only queries the rest of the
 * daemon asks while campaigns run (which campaign a node is in, which image it may run).
 *
 * Not here: SQLite (campaign_db.c), the transitions and timers (campaign.c), the status
 * document (campaign_json.c). Nothing here does I/O or hands out actions. */
#define _GNU_SOURCE
#include "campaign_internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

static int parse_enum(const char *text, const char *const *names, int n)
{
    for (int i = 0; i < n; i++)
        if (text != NULL && strcmp(text, names[i]) == 0)
            return i;
    return -1;
}

int campaign_state_parse(const char *text)
{
    return parse_enum(text, campaign_state_names, CAMPAIGN_STATE__COUNT);
}

int campaign_node_state_parse(const char *text)
{
    return parse_enum(text, node_state_names, CN__COUNT);
}

/* ---- campaign lookup -------------------------------------------------------------------- */

struct campaign *campaign_find_live(struct campaign_engine *e, const char *id)
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

long campaign_find_node(const struct campaign *c, const char *node)
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

int campaign_index_nodes(struct campaign *c)
{
    c->by_id = calloc(c->n ? c->n : 1, sizeof(*c->by_id));
    if (c->by_id == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < c->n; i++)
        c->by_id[i] = (uint32_t)i;
    qsort_r(c->by_id, c->n, sizeof(*c->by_id), by_id_cmp, c->nodes);
    return 0;
}

void campaign_free(struct campaign *c)
{
    if (c == NULL)
        return;
    for (size_t i = 0; i < c->n; i++)
        free(c->nodes[i].reason);
    free(c->nodes);
    free(c->by_id);
    free(c);
}

int campaign_wave_ends(const struct campaign_spec *s, size_t n, size_t ends[CAMPAIGN_WAVES_MAX],
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

void campaign_assign_waves(struct campaign *c)
{
    uint32_t w = 0;
    for (size_t i = 0; i < c->n; i++) {
        while (w + 1 < c->spec.n_waves && i >= c->wave_end[w])
            w++;
        c->nodes[i].wave = w;
    }
}

/* ---- a node's state --------------------------------------------------------------------- */

void campaign_set_state(struct campaign *c, size_t i, enum campaign_node_state st)
{
    struct cnode *n = &c->nodes[i];
    c->cnt[n->st]--;
    n->st = st;
    c->cnt[st]++;
}

void campaign_clear_reason(struct cnode *n)
{
    free(n->reason);
    n->reason = NULL;
}

void campaign_set_reason(struct cnode *n, const char *fmt, ...)
{
    va_list ap;
    char *s = NULL;
    campaign_clear_reason(n);
    va_start(ap, fmt);
    if (vasprintf(&s, fmt, ap) < 0)
        s = NULL;
    va_end(ap);
    if (s != NULL && strlen(s) > CAMPAIGN_REASON_MAX)
        s[CAMPAIGN_REASON_MAX] = '\0';
    n->reason = s;
}

/* ---- a new campaign --------------------------------------------------------------------- */

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

int campaign_build(const struct campaign_engine *e, const struct campaign_spec *spec,
                   const struct campaign_target *targets, size_t n_targets, struct campaign **ret,
                   char *err, size_t errlen)
{
    struct campaign *c = NULL;
    int r;

    *ret = NULL;
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
    r = campaign_wave_ends(spec, n_targets, c->wave_end, err, errlen);
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
            campaign_set_reason(&c->nodes[i], "%s", t->skip_reason);
        c->cnt[c->nodes[i].st]++;
    }
    campaign_assign_waves(c);
    r = campaign_index_nodes(c);
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
            if (campaign_find_node(o, c->nodes[i].id) >= 0) {
                snprintf(err, errlen, "targets[%zu]: node %s is in campaign %s, which is %s", i,
                         c->nodes[i].id, o->spec.id, campaign_state_names[o->st]);
                r = -EBUSY;
                goto out;
            }
    *ret = c;
    return 0;
out:
    campaign_free(c);
    return r;
}

/* ---- queries ---------------------------------------------------------------------------- */

bool campaign_node_active(const struct campaign_engine *e, const char *node,
                          char id[CAMPAIGN_ID_MAX + 1], uint8_t digest[OTA_DIGEST_LEN],
                          enum campaign_node_state *state)
{
    for (const struct campaign *c = e->list; c != NULL; c = c->next) {
        if (c->gone)
            continue;
        long i = campaign_find_node(c, node);
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
        long i = campaign_find_node(c, node);
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

bool campaign_uses_image(struct campaign_engine *e, const uint8_t digest[OTA_DIGEST_LEN])
{
    for (const struct campaign *c = e->list; c != NULL; c = c->next)
        if (!c->gone && memcmp(c->spec.digest, digest, OTA_DIGEST_LEN) == 0)
            return true;
    return false;
}
