/* The campaign engine (campaign.c) driven without I/O: a fake clock, fake nodes answering
 * through the campaign_on_* events and an action recorder; SQLite in a temporary directory
 * (restart tests reopen the same file). */
#include "campaign.h"
#include "check.h"

#include <errno.h>
#include <json-c/json.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define NMAX 64

struct rec {
    unsigned offers[NMAX], cancels[NMAX], challenges[NMAX], confirms[NMAX];
    int order[1024];
    size_t n_order; /* offers in order */
    unsigned status, finished, notes;
    enum campaign_state finished_state;
    char last_json[16384];
    int offer_rc;
    /* in progress as the fake fleet sees it: offered and not yet final */
    bool active[NMAX];
    unsigned n_active, max_active;
};

static char dir[] = "/tmp/test_campaign.XXXXXX";
static unsigned db_seq;
static uint8_t DIGEST[OTA_DIGEST_LEN], OTHER[OTA_DIGEST_LEN];

static int node_idx(const char *n)
{
    return atoi(n + 1);
}

static int rec_act(void *ctx, const struct campaign_action *a)
{
    struct rec *r = ctx;
    int i = a->node ? node_idx(a->node) : -1;
    switch (a->kind) {
    case CAMPAIGN_ACT_OFFER:
        r->offers[i]++;
        if (r->n_order < 1024)
            r->order[r->n_order++] = i;
        if (r->offer_rc < 0)
            return r->offer_rc;
        if (!r->active[i]) {
            r->active[i] = true;
            r->n_active++;
            if (r->n_active > r->max_active)
                r->max_active = r->n_active;
        }
        return 0;
    case CAMPAIGN_ACT_CANCEL:
        r->cancels[i]++;
        return 0;
    case CAMPAIGN_ACT_CHALLENGE:
        r->challenges[i]++;
        return 0;
    case CAMPAIGN_ACT_CONFIRM:
        r->confirms[i]++;
        return 0;
    case CAMPAIGN_ACT_STATUS:
        r->status++;
        snprintf(r->last_json, sizeof(r->last_json), "%s", a->json);
        return 0;
    case CAMPAIGN_ACT_FINISHED:
        r->finished++;
        r->finished_state = a->state;
        return 0;
    case CAMPAIGN_ACT_NOTE:
        if (a->token == NULL || a->text == NULL)
            return -EINVAL;
        r->notes++;
        return 0;
    }
    return -EINVAL;
}

static void done(struct rec *r, int i)
{
    if (r->active[i]) {
        r->active[i] = false;
        r->n_active--;
    }
}

static struct campaign_engine *open_db(struct rec *r, const char *path)
{
    struct campaign_ops ops = {rec_act, r};
    struct campaign_engine *e = NULL;
    char err[256];
    int rc = campaign_open(path, &ops, &e, err, sizeof(err));
    if (rc != 0)
        fprintf(stderr, "campaign_open: %s\n", err);
    CHECK_EQ_INT(rc, 0);
    return e;
}

static struct campaign_engine *fresh(struct rec *r, char *path, size_t cap)
{
    memset(r, 0, sizeof(*r));
    snprintf(path, cap, "%s/c%u.db", dir, db_seq++);
    return open_db(r, path);
}

static struct campaign_spec spec_of(const char *id)
{
    struct campaign_spec s;
    memset(&s, 0, sizeof(s));
    snprintf(s.id, sizeof(s.id), "%s", id);
    memcpy(s.digest, DIGEST, sizeof(DIGEST));
    snprintf(s.device_class, sizeof(s.device_class), "sensor-m3");
    s.version = (struct image_version){2, 1, 0, 7};
    s.security_counter = 5;
    s.waves[0] = (struct campaign_wave){true, 100};
    s.n_waves = 1;
    s.max_parallel = 100;
    s.node_deadline_s = 600;
    s.step_timeout_s = 30;
    s.retries = 0;
    s.retry_backoff_s = 10;
    s.success_threshold_pct = 100;
    return s;
}

static struct campaign_target targets[NMAX];

static void make_targets(size_t n)
{
    for (size_t i = 0; i < n; i++) {
        snprintf(targets[i].node, sizeof(targets[i].node), "n%02zu", i);
        targets[i].skip_reason = NULL;
    }
}

static int create(struct campaign_engine *e, const struct campaign_spec *s, size_t n, int64_t now)
{
    char err[256];
    int rc = campaign_create(e, s, targets, n, now, err, sizeof(err));
    if (rc != 0)
        fprintf(stderr, "  campaign_create: %d %s\n", rc, err);
    return rc;
}

/* ---- status helpers ---- */

static json_object *status(struct campaign_engine *e, const char *id)
{
    char *s = campaign_status_json(e, id, true);
    json_object *o = s ? json_tokener_parse(s) : NULL;
    free(s);
    return o;
}

static const char *str_at(json_object *o, const char *k)
{
    json_object *v;
    return json_object_object_get_ex(o, k, &v) ? json_object_get_string(v) : "";
}

static char campaign_st[32], node_st[32], node_reason[256];

static const char *cstate(struct campaign_engine *e, const char *id)
{
    json_object *o = status(e, id);
    snprintf(campaign_st, sizeof(campaign_st), "%s", o ? str_at(o, "state") : "(none)");
    json_object_put(o);
    return campaign_st;
}

static const char *creason(struct campaign_engine *e, const char *id)
{
    static char buf[256];
    json_object *o = status(e, id);
    snprintf(buf, sizeof(buf), "%s", o ? str_at(o, "reason") : "(none)");
    json_object_put(o);
    return buf;
}

static const char *nstate(struct campaign_engine *e, const char *id, int i)
{
    json_object *o = status(e, id), *nodes, *n;
    snprintf(node_st, sizeof(node_st), "(none)");
    node_reason[0] = '\0';
    if (o && json_object_object_get_ex(o, "nodes", &nodes) &&
        (n = json_object_array_get_idx(nodes, (size_t)i))) {
        snprintf(node_st, sizeof(node_st), "%s", str_at(n, "state"));
        snprintf(node_reason, sizeof(node_reason), "%s", str_at(n, "reason"));
    }
    json_object_put(o);
    return node_st;
}

static long count_of(struct campaign_engine *e, const char *id, const char *state)
{
    json_object *o = status(e, id), *c, *v;
    long n = -1;
    if (o && json_object_object_get_ex(o, "counts", &c) && json_object_object_get_ex(c, state, &v))
        n = json_object_get_int64(v);
    json_object_put(o);
    return n;
}

static const char *nm(int i)
{
    static char b[4][8];
    static int k;
    k = (k + 1) % 4;
    snprintf(b[k], sizeof(b[k]), "n%02d", i);
    return b[k];
}

/* A node that does everything right, in one go. */
static void succeed(struct campaign_engine *e, struct rec *r, const char *id, int i, int64_t now)
{
    if (strcmp(nstate(e, id, i), "offered") == 0)
        CHECK_EQ_INT(campaign_on_ack(e, nm(i), id, true, MSG_REASON_NONE, now), 0);
    CHECK_EQ_INT(campaign_on_request(e, nm(i), id, 0, now), 0);
    CHECK_EQ_INT(campaign_on_status(e, nm(i), id, MSG_OTA_STAGED, 4096, MSG_REASON_NONE, now), 0);
    CHECK_EQ_INT(campaign_on_status(e, nm(i), id, MSG_OTA_TESTING, 4096, MSG_REASON_NONE, now), 0);
    CHECK_EQ_INT(campaign_on_attested(e, nm(i), true, DIGEST, "attested", now), 0);
    done(r, i); /* final within the next call, which may offer to the next node */
    CHECK_EQ_INT(campaign_on_status(e, nm(i), id, MSG_OTA_CONFIRMED, 4096, MSG_REASON_NONE, now),
                 0);
}

/* ---- tests ---- */

static void test_waves_complete(void)
{
    struct rec r;
    char path[256];
    struct campaign_engine *e = fresh(&r, path, sizeof(path));
    struct campaign_spec s = spec_of("fleet-50");
    int phase[NMAX] = {0};
    int64_t now = 1000;

    s.waves[0] = (struct campaign_wave){false, 1};
    s.waves[1] = (struct campaign_wave){true, 10};
    s.waves[2] = (struct campaign_wave){true, 100};
    s.n_waves = 3;
    s.max_parallel = 4;
    make_targets(50);
    CHECK_EQ_INT(create(e, &s, 50, now), 0);
    CHECK_EQ_INT(r.n_order, 1); /* the canary only */
    CHECK_EQ_INT(r.order[0], 0);
    /* round robin: every active node advances one step per round */
    for (int round = 0; round < 400 && strcmp(cstate(e, "fleet-50"), "running") == 0; round++) {
        now++;
        for (int i = 0; i < 50; i++) {
            if (!r.active[i])
                continue;
            switch (phase[i]++) {
            case 0:
                CHECK_EQ_INT(campaign_on_ack(e, nm(i), "fleet-50", true, 0, now), 0);
                break;
            case 1:
                CHECK_EQ_INT(campaign_on_request(e, nm(i), "fleet-50", 2048, now), 0);
                break;
            case 2:
                CHECK_EQ_INT(
                    campaign_on_status(e, nm(i), "fleet-50", MSG_OTA_TESTING, 4096, 0, now), 0);
                CHECK_EQ_INT(r.challenges[i], 1);
                break;
            case 3:
                CHECK_EQ_INT(campaign_on_attested(e, nm(i), true, DIGEST, "ok", now), 0);
                CHECK_EQ_INT(r.confirms[i], 1);
                break;
            default:
                done(&r, i);
                CHECK_EQ_INT(
                    campaign_on_status(e, nm(i), "fleet-50", MSG_OTA_CONFIRMED, 4096, 0, now), 0);
                break;
            }
        }
        (void)campaign_tick(e, now);
    }
    CHECK(strcmp(cstate(e, "fleet-50"), "completed") == 0);
    CHECK_EQ_INT(count_of(e, "fleet-50", "succeeded"), 50);
    CHECK_EQ_INT(r.n_order, 50);
    for (int i = 0; i < 50; i++)
        CHECK_EQ_INT(r.offers[i], 1);
    /* wave order: node 0, then nodes 1..4 (10 % of 50 = 5 cumulative), then the rest */
    CHECK_EQ_INT(r.order[0], 0);
    for (size_t k = 1; k < 5; k++)
        CHECK(r.order[k] >= 1 && r.order[k] <= 4);
    for (size_t k = 5; k < 50; k++)
        CHECK(r.order[k] >= 5);
    CHECK_EQ_INT(r.max_active, 4);
    CHECK_EQ_INT(r.finished, 1);
    CHECK_EQ_INT(r.finished_state, CAMPAIGN_COMPLETED);
    /* the final STATUS is the completed document, wave sizes 1, 4, 45 */
    json_object *o = json_tokener_parse(r.last_json), *w, *wa;
    CHECK(o != NULL && strcmp(str_at(o, "state"), "completed") == 0);
    CHECK(json_object_object_get_ex(o, "waves", &wa) && json_object_array_length(wa) == 3);
    if (wa && json_object_array_length(wa) == 3) {
        int sizes[3] = {1, 4, 45};
        for (size_t k = 0; k < 3; k++) {
            CHECK(json_object_object_get_ex(json_object_array_get_idx(wa, k), "size", &w));
            CHECK_EQ_INT(json_object_get_int(w), sizes[k]);
        }
    }
    json_object_put(o);
    CHECK_EQ_INT(campaign_tick(e, now + 100), 0);
    CHECK(!campaign_uses_image(e, DIGEST));
    campaign_close(e);
}

static void canary_halts(int how)
{
    struct rec r;
    char path[256];
    struct campaign_engine *e = fresh(&r, path, sizeof(path));
    struct campaign_spec s = spec_of("canary");
    int64_t now = 1000;

    s.waves[0] = (struct campaign_wave){false, 1};
    s.waves[1] = (struct campaign_wave){true, 100};
    s.n_waves = 2;
    make_targets(10);
    CHECK_EQ_INT(create(e, &s, 10, now), 0);
    CHECK_EQ_INT(r.offers[0], 1);
    CHECK_EQ_INT(campaign_on_ack(e, "n00", "canary", true, 0, now), 0);
    CHECK_EQ_INT(campaign_on_status(e, "n00", "canary", MSG_OTA_STAGED, 100, 0, now), 0);
    CHECK_EQ_INT(campaign_on_status(e, "n00", "canary", MSG_OTA_TESTING, 100, 0, now + 1), 0);
    /* the node's word alone is not success: confirmed before the token is ignored */
    CHECK_EQ_INT(campaign_on_status(e, "n00", "canary", MSG_OTA_CONFIRMED, 100, 0, now + 1),
                 -EPROTO);
    CHECK(strcmp(nstate(e, "canary", 0), "testing") == 0);
    CHECK_EQ_INT(r.confirms[0], 0);
    if (how == 0) {
        CHECK_EQ_INT(campaign_on_attested(e, "n00", true, OTHER, "attested", now + 2), 0);
        CHECK(strcmp(nstate(e, "canary", 0), "reverted") == 0);
        CHECK(strcmp(node_reason, "measured eeeeeeee not the campaign image") == 0);
    } else if (how == 1) {
        CHECK_EQ_INT(campaign_on_status(e, "n00", "canary", MSG_OTA_REVERTED, 0,
                                        MSG_REASON_BOOT_FAILED, now + 2),
                     0);
        CHECK(strcmp(nstate(e, "canary", 0), "reverted") == 0);
        CHECK(strcmp(node_reason, "node reverted: boot_failed") == 0);
    } else {
        CHECK_EQ_INT(campaign_on_attested(e, "n00", false, NULL, "unknown measurement", now + 2),
                     0);
        CHECK(strcmp(nstate(e, "canary", 0), "failed") == 0);
        CHECK(strcmp(node_reason, "attestation: unknown measurement") == 0);
    }
    CHECK_EQ_INT(r.confirms[0], 0);
    CHECK(strcmp(cstate(e, "canary"), "halted") == 0);
    CHECK(strstr(creason(e, "canary"), "wave 1 of 2: 0 of 1 executed nodes succeeded") != NULL);
    CHECK_EQ_INT(r.finished, 1);
    CHECK_EQ_INT(r.finished_state, CAMPAIGN_HALTED);
    CHECK(strstr(r.last_json, "\"halted\"") != NULL);
    for (int64_t t = now; t < now + 2000; t += 7)
        (void)campaign_tick(e, t);
    for (int i = 1; i < 10; i++) {
        CHECK_EQ_INT(r.offers[i], 0);
        CHECK(strcmp(nstate(e, "canary", i), "pending") == 0);
    }
    CHECK_EQ_INT(r.n_order, 1);
    campaign_close(e);
}

static void test_canary(void)
{
    canary_halts(0);
    canary_halts(1);
    canary_halts(2);
}

static void test_silent_timed_out(void)
{
    struct rec r;
    char path[256];
    struct campaign_engine *e = fresh(&r, path, sizeof(path));
    struct campaign_spec s = spec_of("silent");
    int64_t now = 1000, t;

    s.node_deadline_s = 100;
    s.step_timeout_s = 10;
    s.retries = 50;
    s.retry_backoff_s = 1;
    s.success_threshold_pct = 50;
    make_targets(2);
    CHECK_EQ_INT(create(e, &s, 2, now), 0);
    succeed(e, &r, "silent", 1, now);
    CHECK_EQ_INT(campaign_on_ack(e, "n00", "silent", true, 0, now), 0);
    CHECK_EQ_INT(campaign_on_request(e, "n00", "silent", 0, now + 1), 0);
    /* silent from here: retried, but the deadline (1100) ends it */
    for (t = now; t < now + 100; t++) {
        (void)campaign_tick(e, t);
        CHECK(strcmp(cstate(e, "silent"), "running") == 0);
    }
    CHECK(r.offers[0] > 1);
    (void)campaign_tick(e, now + 100);
    CHECK(strcmp(nstate(e, "silent", 0), "timed_out") == 0);
    CHECK(strstr(node_reason, "node_deadline_s 100") != NULL);
    CHECK(r.cancels[0] >= 1);
    CHECK(strcmp(cstate(e, "silent"), "completed") == 0);
    CHECK_EQ_INT(campaign_tick(e, now + 101), 0);
    campaign_close(e);
}

static void test_offline_skipped(void)
{
    struct rec r;
    char path[256];
    struct campaign_engine *e = fresh(&r, path, sizeof(path));
    struct campaign_spec s = spec_of("offline");
    int64_t now = 1000;

    s.node_deadline_s = 60;
    s.step_timeout_s = 10;
    s.retries = 10;
    s.retry_backoff_s = 5;
    make_targets(2);
    targets[1].skip_reason = "already_on_image";
    CHECK_EQ_INT(create(e, &s, 2, now), 0);
    CHECK_EQ_INT(r.offers[1], 0);
    for (int64_t t = now; t <= now + 60; t++)
        (void)campaign_tick(e, t);
    CHECK(strcmp(nstate(e, "offline", 0), "skipped") == 0);
    CHECK(strcmp(node_reason, "offline") == 0);
    CHECK(strcmp(nstate(e, "offline", 1), "skipped") == 0);
    CHECK(strcmp(node_reason, "already_on_image") == 0);
    /* all offline: no evidence the image works, so the only wave halts */
    CHECK(strcmp(cstate(e, "offline"), "halted") == 0);
    CHECK(strstr(creason(e, "offline"), "(1 offline)") != NULL);
    campaign_close(e);

    /* every target already on the image: nothing to do, completed */
    e = fresh(&r, path, sizeof(path));
    targets[0].skip_reason = "already_on_image";
    CHECK_EQ_INT(create(e, &s, 2, now), 0);
    CHECK(strcmp(cstate(e, "offline"), "completed") == 0);
    CHECK_EQ_INT(r.n_order, 0);
    make_targets(2);
    campaign_close(e);
}

static void test_retries_backoff(void)
{
    struct rec r;
    char path[256];
    struct campaign_engine *e = fresh(&r, path, sizeof(path));
    struct campaign_spec s = spec_of("retry");
    int64_t t0 = 1000;

    s.step_timeout_s = 5;
    s.retry_backoff_s = 10;
    s.retries = 2;
    s.node_deadline_s = 1000;
    make_targets(1);
    CHECK_EQ_INT(create(e, &s, 1, t0), 0);
    CHECK_EQ_INT(r.offers[0], 1);
    CHECK_EQ_INT(campaign_on_ack(e, "n00", "retry", true, 0, t0), 0);
    CHECK_EQ_INT(campaign_tick(e, t0 + 4), t0 + 5);
    CHECK_EQ_INT(campaign_tick(e, t0 + 5), t0 + 15); /* back-off 10 * 2^0 */
    CHECK(strcmp(nstate(e, "retry", 0), "retry_wait") == 0);
    (void)campaign_tick(e, t0 + 14);
    CHECK_EQ_INT(r.offers[0], 1);
    CHECK_EQ_INT(campaign_tick(e, t0 + 15), t0 + 20);
    CHECK_EQ_INT(r.offers[0], 2);
    CHECK_EQ_INT(campaign_tick(e, t0 + 20), t0 + 40); /* back-off 10 * 2^1 */
    (void)campaign_tick(e, t0 + 39);
    CHECK_EQ_INT(r.offers[0], 2);
    (void)campaign_tick(e, t0 + 40);
    CHECK_EQ_INT(r.offers[0], 3);
    (void)campaign_tick(e, t0 + 45); /* the third try times out: retries (2) spent */
    CHECK(strcmp(nstate(e, "retry", 0), "timed_out") == 0);
    CHECK(strstr(node_reason, "after 3 attempts") != NULL);
    for (int64_t t = t0 + 45; t < t0 + 2000; t += 13)
        (void)campaign_tick(e, t);
    CHECK_EQ_INT(r.offers[0], 3);
    CHECK(strcmp(cstate(e, "retry"), "halted") == 0);
    campaign_close(e);

    /* ota-status failed: retried, then failed with the node's reason; a send error of the
     * offer is a failed step too */
    e = fresh(&r, path, sizeof(path));
    s.retries = 1;
    CHECK_EQ_INT(create(e, &s, 1, t0), 0);
    CHECK_EQ_INT(campaign_on_ack(e, "n00", "retry", true, 0, t0), 0);
    CHECK_EQ_INT(
        campaign_on_status(e, "n00", "retry", MSG_OTA_FAILED, 0, MSG_REASON_FLASH_ERROR, t0 + 1),
        0);
    CHECK(strcmp(nstate(e, "retry", 0), "retry_wait") == 0);
    r.offer_rc = -EAGAIN;
    (void)campaign_tick(e, t0 + 11);
    CHECK_EQ_INT(r.offers[0], 2);
    CHECK(strcmp(nstate(e, "retry", 0), "failed") == 0);
    CHECK(strstr(node_reason, "offer not sent") != NULL);
    campaign_close(e);

    e = fresh(&r, path, sizeof(path));
    CHECK_EQ_INT(create(e, &s, 1, t0), 0);
    CHECK_EQ_INT(campaign_on_ack(e, "n00", "retry", true, 0, t0), 0);
    CHECK_EQ_INT(
        campaign_on_status(e, "n00", "retry", MSG_OTA_FAILED, 0, MSG_REASON_FLASH_ERROR, t0 + 1),
        0);
    (void)campaign_tick(e, t0 + 11);
    CHECK_EQ_INT(
        campaign_on_status(e, "n00", "retry", MSG_OTA_FAILED, 0, MSG_REASON_FLASH_ERROR, t0 + 12),
        0);
    CHECK(strcmp(nstate(e, "retry", 0), "failed") == 0);
    CHECK(strcmp(node_reason, "node failed: flash_error (after 2 attempts)") == 0);
    campaign_close(e);
}

static void test_abort(void)
{
    struct rec r;
    char path[256];
    struct campaign_engine *e = fresh(&r, path, sizeof(path));
    struct campaign_spec s = spec_of("abort");
    int64_t now = 1000;

    s.max_parallel = 3;
    make_targets(6);
    CHECK_EQ_INT(create(e, &s, 6, now), 0);
    CHECK_EQ_INT(campaign_on_ack(e, "n01", "abort", true, 0, now), 0);
    CHECK_EQ_INT(campaign_on_status(e, "n02", "abort", MSG_OTA_TESTING, 0, 0, now), 0);
    CHECK_EQ_INT(campaign_abort(e, "abort", now + 1, "bad image"), 0);
    /* within the call: every node in progress cancelled, the campaign final */
    for (int i = 0; i < 3; i++) {
        CHECK_EQ_INT(r.cancels[i], 1);
        CHECK(strcmp(nstate(e, "abort", i), "failed") == 0);
        CHECK(strcmp(node_reason, "aborted") == 0);
    }
    for (int i = 3; i < 6; i++) {
        CHECK_EQ_INT(r.cancels[i], 0);
        CHECK(strcmp(nstate(e, "abort", i), "skipped") == 0);
    }
    CHECK(strcmp(cstate(e, "abort"), "aborted") == 0);
    CHECK(strcmp(creason(e, "abort"), "operator: bad image") == 0);
    CHECK_EQ_INT(r.finished, 1);
    CHECK_EQ_INT(r.finished_state, CAMPAIGN_ABORTED);
    CHECK(strstr(r.last_json, "\"aborted\"") != NULL);
    CHECK(!campaign_node_active(e, "n01", NULL, NULL, NULL));
    CHECK_EQ_INT(campaign_abort(e, "abort", now + 2, "again"), -EALREADY);
    CHECK_EQ_INT(campaign_halt(e, "abort", now + 2, "x"), -EINVAL);
    CHECK_EQ_INT(campaign_resume(e, "abort", now + 2), -EINVAL);
    CHECK_EQ_INT(campaign_abort(e, "nope", now + 2, "x"), -ENOENT);
    /* nothing more: a late answer of an aborted node is ignored */
    CHECK_EQ_INT(campaign_on_ack(e, "n00", "abort", true, 0, now + 3), -ENOENT);
    CHECK_EQ_INT(campaign_tick(e, now + 3), 0);
    CHECK_EQ_INT(r.n_order, 3);
    campaign_close(e);
}

static void test_halt_resume(void)
{
    struct rec r;
    char path[256];
    struct campaign_engine *e = fresh(&r, path, sizeof(path));
    struct campaign_spec s = spec_of("hr");
    int64_t now = 1000;

    s.max_parallel = 1;
    make_targets(3);
    CHECK_EQ_INT(create(e, &s, 3, now), 0);
    CHECK_EQ_INT(r.n_order, 1);
    CHECK_EQ_INT(campaign_halt(e, "hr", now, "maintenance window"), 0);
    CHECK_EQ_INT(campaign_halt(e, "hr", now, "again"), -EALREADY);
    CHECK(strcmp(cstate(e, "hr"), "halted") == 0);
    CHECK(strcmp(creason(e, "hr"), "operator: maintenance window") == 0);
    /* the node in progress finishes; nothing new is offered */
    succeed(e, &r, "hr", 0, now + 1);
    CHECK(strcmp(nstate(e, "hr", 0), "succeeded") == 0);
    for (int64_t t = now; t < now + 100; t++)
        (void)campaign_tick(e, t);
    CHECK_EQ_INT(r.n_order, 1);
    CHECK(campaign_uses_image(e, DIGEST));
    CHECK_EQ_INT(campaign_resume(e, "hr", now + 100), 0);
    CHECK_EQ_INT(campaign_resume(e, "hr", now + 100), -EALREADY);
    CHECK_EQ_INT(r.n_order, 2);
    CHECK_EQ_INT(r.order[1], 1);
    succeed(e, &r, "hr", 1, now + 101);
    succeed(e, &r, "hr", 2, now + 102);
    CHECK(strcmp(cstate(e, "hr"), "completed") == 0);
    campaign_close(e);

    /* a threshold halt resumed: the operator accepts the wave, the next one starts */
    e = fresh(&r, path, sizeof(path));
    s = spec_of("thr");
    s.waves[0] = (struct campaign_wave){false, 1};
    s.waves[1] = (struct campaign_wave){true, 100};
    s.n_waves = 2;
    CHECK_EQ_INT(create(e, &s, 3, now), 0);
    CHECK_EQ_INT(campaign_on_ack(e, "n00", "thr", false, MSG_REASON_DOWNGRADE, now), 0);
    CHECK(strcmp(cstate(e, "thr"), "halted") == 0);
    CHECK_EQ_INT(r.n_order, 1);
    CHECK_EQ_INT(campaign_resume(e, "thr", now + 5), 0);
    CHECK_EQ_INT(r.n_order, 3);
    CHECK_EQ_INT(campaign_halt(e, "nope", now, "x"), -ENOENT);
    CHECK_EQ_INT(campaign_resume(e, "nope", now), -ENOENT);
    campaign_close(e);
}

static void test_abort_criteria(void)
{
    struct rec r;
    char path[256];
    struct campaign_engine *e = fresh(&r, path, sizeof(path));
    struct campaign_spec s = spec_of("count");
    int64_t now = 1000;

    s.success_threshold_pct = 10;
    s.abort_failures = 2;
    make_targets(10);
    CHECK_EQ_INT(create(e, &s, 10, now), 0);
    CHECK_EQ_INT(campaign_on_ack(e, "n00", "count", false, MSG_REASON_NO_SPACE, now), 0);
    CHECK(strcmp(cstate(e, "count"), "running") == 0);
    CHECK_EQ_INT(
        campaign_on_status(e, "n01", "count", MSG_OTA_REVERTED, 0, MSG_REASON_BOOT_FAILED, now), 0);
    CHECK(strcmp(cstate(e, "count"), "aborted") == 0);
    CHECK(strstr(creason(e, "count"), "abort criteria: 2 failed nodes, abort_failures is 2") !=
          NULL);
    for (int i = 2; i < 10; i++)
        CHECK_EQ_INT(r.cancels[i], 1);
    campaign_close(e);

    e = fresh(&r, path, sizeof(path));
    s = spec_of("pct");
    s.success_threshold_pct = 10;
    s.abort_failure_pct = 50;
    s.abort_min_executed = 4;
    CHECK_EQ_INT(create(e, &s, 10, now), 0);
    CHECK_EQ_INT(campaign_on_ack(e, "n00", "pct", false, MSG_REASON_NO_SPACE, now), 0);
    CHECK(strcmp(cstate(e, "pct"), "running") == 0); /* 1 of 1, but fewer than 4 executed */
    succeed(e, &r, "pct", 1, now);
    succeed(e, &r, "pct", 2, now);
    CHECK(strcmp(cstate(e, "pct"), "running") == 0);
    CHECK_EQ_INT(campaign_on_ack(e, "n03", "pct", false, MSG_REASON_BAD_SIGNATURE, now), 0);
    CHECK(strcmp(cstate(e, "pct"), "aborted") == 0); /* 2 of 4 = 50 % */
    CHECK(strstr(creason(e, "pct"), "2 of 4 executed nodes failed (50%)") != NULL);
    campaign_close(e);
}

static void test_restart(void)
{
    struct rec r;
    char path[256];
    struct campaign_engine *e = fresh(&r, path, sizeof(path));
    struct campaign_spec s = spec_of("rs");
    int64_t now = 1000;
    const char *want[7] = {"offered",    "downloading", "staged",   "testing",
                           "confirming", "retry_wait",  "succeeded"};

    s.retries = 3;
    s.retry_backoff_s = 50;
    s.step_timeout_s = 100;
    make_targets(7);
    CHECK_EQ_INT(create(e, &s, 7, now), 0);
    CHECK_EQ_INT(campaign_on_ack(e, "n01", "rs", true, 0, now), 0);
    CHECK_EQ_INT(campaign_on_request(e, "n01", "rs", 2048, now + 1), 0);
    {
        /* 1000 chunk requests: liveness and offset in memory, the database untouched */
        char wal[300];
        struct stat before, after;
        snprintf(wal, sizeof(wal), "%s-wal", path);
        CHECK_EQ_INT(stat(wal, &before), 0);
        for (uint32_t k = 0; k < 1000; k++)
            CHECK_EQ_INT(campaign_on_request(e, "n01", "rs", 2048 + k * 2, now + 1), 0);
        CHECK_EQ_INT(stat(wal, &after), 0);
        CHECK_EQ_INT(after.st_size, before.st_size);
        CHECK(after.st_mtim.tv_sec == before.st_mtim.tv_sec &&
              after.st_mtim.tv_nsec == before.st_mtim.tv_nsec);
    }
    CHECK_EQ_INT(campaign_on_request(e, "n01", "rs", 4096, now + 2), 0);
    CHECK_EQ_INT(campaign_on_ack(e, "n02", "rs", true, 0, now), 0);
    CHECK_EQ_INT(campaign_on_status(e, "n02", "rs", MSG_OTA_STAGED, 8192, 0, now), 0);
    CHECK_EQ_INT(campaign_on_status(e, "n03", "rs", MSG_OTA_TESTING, 8192, 0, now), 0);
    CHECK_EQ_INT(campaign_on_status(e, "n04", "rs", MSG_OTA_TESTING, 8192, 0, now), 0);
    CHECK_EQ_INT(campaign_on_attested(e, "n04", true, DIGEST, "ok", now), 0);
    CHECK_EQ_INT(campaign_on_ack(e, "n05", "rs", true, 0, now), 0);
    CHECK_EQ_INT(campaign_on_status(e, "n05", "rs", MSG_OTA_FAILED, 0, MSG_REASON_FLASH_ERROR, now),
                 0);
    succeed(e, &r, "rs", 6, now);
    /* chunk requests are not written: SQLite still has the offset of the last transition */
    {
        sqlite3 *db = NULL;
        sqlite3_stmt *st = NULL;
        CHECK_EQ_INT(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
        CHECK_EQ_INT(sqlite3_prepare_v2(db, "SELECT off FROM campaign_nodes WHERE node = 'n01'", -1,
                                        &st, NULL),
                     SQLITE_OK);
        CHECK_EQ_INT(sqlite3_step(st), SQLITE_ROW);
        CHECK_EQ_INT(sqlite3_column_int(st, 0), 0);
        sqlite3_finalize(st);
        sqlite3_close(db);
        json_object *o = status(e, "rs"), *nodes, *off;
        CHECK(o && json_object_object_get_ex(o, "nodes", &nodes) &&
              json_object_object_get_ex(json_object_array_get_idx(nodes, 1), "offset", &off) &&
              json_object_get_int(off) == 4096);
        json_object_put(o);
    }
    for (int i = 0; i < 7; i++)
        CHECK(strcmp(nstate(e, "rs", i), want[i]) == 0);
    campaign_close(e);

    memset(&r, 0, sizeof(r));
    e = open_db(&r, path);
    for (int i = 0; i < 7; i++)
        CHECK(strcmp(nstate(e, "rs", i), want[i]) == 0);
    CHECK(strcmp(nstate(e, "rs", 2), "staged") == 0 && strcmp(node_reason, "") == 0);
    CHECK(campaign_node_active(e, "n03", NULL, NULL, NULL));
    (void)campaign_tick(e, now + 10);
    CHECK_EQ_INT(r.offers[0], 1);
    CHECK_EQ_INT(r.offers[1], 1);
    CHECK_EQ_INT(r.offers[2], 0);
    CHECK_EQ_INT(r.challenges[3], 1);
    CHECK_EQ_INT(r.confirms[4], 1);
    CHECK_EQ_INT(r.offers[5], 0); /* not due before 1050 */
    CHECK_EQ_INT(r.offers[6] + r.challenges[6] + r.confirms[6], 0);
    CHECK_EQ_INT(r.status, 1);
    (void)campaign_tick(e, now + 11);
    CHECK_EQ_INT(r.offers[0] + r.offers[1] + r.challenges[3] + r.confirms[4], 4); /* once */
    (void)campaign_tick(e, now + 50);
    CHECK_EQ_INT(r.offers[5], 1);
    /* the state goes on where it was */
    CHECK_EQ_INT(campaign_on_status(e, "n04", "rs", MSG_OTA_CONFIRMED, 8192, 0, now + 51), 0);
    CHECK(strcmp(nstate(e, "rs", 4), "succeeded") == 0);
    CHECK_EQ_INT(campaign_on_attested(e, "n03", true, DIGEST, "ok", now + 51), 0);
    CHECK_EQ_INT(campaign_on_status(e, "n03", "rs", MSG_OTA_CONFIRMED, 8192, 0, now + 52), 0);
    CHECK_EQ_INT(count_of(e, "rs", "succeeded"), 3);
    campaign_close(e);
}

static void test_rejected_and_unknown(void)
{
    struct rec r;
    char path[256];
    struct campaign_engine *e = fresh(&r, path, sizeof(path));
    struct campaign_spec s = spec_of("rej");
    int64_t now = 1000;

    s.success_threshold_pct = 50;
    s.max_parallel = 2;
    s.retries = 1;
    make_targets(3);
    CHECK_EQ_INT(create(e, &s, 3, now), 0);
    unsigned notes = r.notes;
    CHECK_EQ_INT(campaign_on_ack(e, "n00", "other", true, 0, now), -ENOENT);
    CHECK_EQ_INT(campaign_on_ack(e, "zz", "rej", true, 0, now), -ENOENT);
    CHECK_EQ_INT(campaign_on_ack(e, "n02", "rej", true, 0, now), -ENOENT); /* pending */
    CHECK_EQ_INT(campaign_on_request(e, "zz", "rej", 0, now), -ENOENT);
    CHECK_EQ_INT(campaign_on_status(e, "zz", "rej", MSG_OTA_TESTING, 0, 0, now), -ENOENT);
    CHECK_EQ_INT(campaign_on_attested(e, "zz", true, DIGEST, "ok", now), -ENOENT);
    CHECK_EQ_INT(r.notes, notes);
    CHECK_EQ_INT(r.challenges[0] + r.cancels[0] + r.confirms[0], 0);
    /* a token before testing, or confirmed without one, is not success */
    CHECK_EQ_INT(campaign_on_attested(e, "n01", true, DIGEST, "ok", now), -EPROTO);
    CHECK_EQ_INT(campaign_on_status(e, "n01", "rej", MSG_OTA_CONFIRMED, 0, 0, now), -EPROTO);
    CHECK(strcmp(nstate(e, "rej", 1), "offered") == 0);
    /* busy is retried; no_space is rejected with its name */
    CHECK_EQ_INT(campaign_on_ack(e, "n00", "rej", false, MSG_REASON_BUSY, now), 0);
    CHECK(strcmp(nstate(e, "rej", 0), "retry_wait") == 0);
    CHECK_EQ_INT(campaign_on_ack(e, "n01", "rej", false, MSG_REASON_NO_SPACE, now), 0);
    CHECK(strcmp(nstate(e, "rej", 1), "rejected") == 0);
    CHECK(strcmp(node_reason, "no_space") == 0);
    CHECK_EQ_INT(r.offers[2], 1); /* its place went to the next */
    (void)campaign_tick(e, now + 10);
    CHECK_EQ_INT(r.offers[0], 2);
    CHECK_EQ_INT(campaign_on_ack(e, "n00", "rej", false, MSG_REASON_BUSY, now + 11), 0);
    CHECK(strcmp(nstate(e, "rej", 0), "rejected") == 0);
    CHECK(strcmp(node_reason, "busy") == 0);
    CHECK(strcmp(campaign_ota_reason_str(MSG_REASON_BOOT_FAILED), "boot_failed") == 0);
    CHECK(strcmp(campaign_ota_reason_str((enum msg_ota_reason)99), "unknown") == 0);
    campaign_close(e);
}

static void test_raise_floor(void)
{
    struct rec r;
    char path[256];
    struct campaign_engine *e = fresh(&r, path, sizeof(path));
    struct campaign_spec s = spec_of("floor1");
    struct ota_class_state cs;
    int64_t now = 1000;

    make_targets(1);
    CHECK_EQ_INT(campaign_class_state(e, "sensor-m3", &cs), 0);
    CHECK(cs.floor == 0 && !cs.has_current);
    s.raise_floor = true;
    s.security_counter = 7;
    CHECK_EQ_INT(create(e, &s, 1, now), 0);
    succeed(e, &r, "floor1", 0, now);
    CHECK_EQ_INT(campaign_class_state(e, "sensor-m3", &cs), 0);
    CHECK_EQ_INT(cs.floor, 7);
    CHECK(cs.has_current && cs.current.major == 2 && cs.current.minor == 1 &&
          cs.current.build == 7);
    /* a lower counter never lowers the floor; without raise_floor only the version moves */
    s = spec_of("floor2");
    s.raise_floor = true;
    s.security_counter = 3;
    s.version = (struct image_version){3, 0, 0, 0};
    CHECK_EQ_INT(create(e, &s, 1, now), 0);
    succeed(e, &r, "floor2", 0, now);
    CHECK_EQ_INT(campaign_class_state(e, "sensor-m3", &cs), 0);
    CHECK_EQ_INT(cs.floor, 7);
    CHECK_EQ_INT(cs.current.major, 3);
    CHECK_EQ_INT(campaign_class_state(e, "other", &cs), 0);
    CHECK(cs.floor == 0 && !cs.has_current);
    campaign_close(e);
    memset(&r, 0, sizeof(r));
    e = open_db(&r, path);
    CHECK_EQ_INT(campaign_class_state(e, "sensor-m3", &cs), 0);
    CHECK_EQ_INT(cs.floor, 7);
    campaign_close(e);
}

static int list_cb(const char *id, enum campaign_state st, void *u)
{
    char *out = u;
    size_t l = strlen(out);
    snprintf(out + l, 256 - l, "%s:%s;", id, campaign_state_str(st));
    return 0;
}

static void test_status_json(void)
{
    struct rec r;
    char path[256], list[256] = "";
    struct campaign_engine *e = fresh(&r, path, sizeof(path));
    struct campaign_spec s = spec_of("st");
    int64_t now = 1000;

    s.max_parallel = 2;
    s.success_threshold_pct = 50;
    s.waves[0] = (struct campaign_wave){false, 2};
    s.waves[1] = (struct campaign_wave){true, 100};
    s.n_waves = 2;
    make_targets(4);
    CHECK_EQ_INT(create(e, &s, 4, now), 0);
    CHECK_EQ_INT(r.status, 0);
    CHECK_EQ_INT(campaign_tick(e, now), now + 30);
    CHECK_EQ_INT(r.status, 1);
    /* coalesced: another change in the same second waits for the next one */
    CHECK_EQ_INT(campaign_on_ack(e, "n00", "st", true, 0, now), 0);
    CHECK_EQ_INT(campaign_tick(e, now), now + 1);
    CHECK_EQ_INT(r.status, 1);
    (void)campaign_tick(e, now + 1);
    CHECK_EQ_INT(r.status, 2);
    (void)campaign_tick(e, now + 2);
    CHECK_EQ_INT(r.status, 2); /* nothing changed */
    json_object *o = json_tokener_parse(r.last_json), *v, *img, *wave, *counts, *waves;
    CHECK(o != NULL);
    CHECK(strcmp(str_at(o, "id"), "st") == 0);
    CHECK(strcmp(str_at(o, "state"), "running") == 0);
    CHECK(json_object_object_get_ex(o, "image", &img));
    CHECK(strcmp(str_at(img, "digest"),
                 "abababababababababababababababababababababababababababababababab") == 0);
    CHECK(strcmp(str_at(img, "version"), "2.1.0+7") == 0);
    CHECK(strcmp(str_at(img, "class"), "sensor-m3") == 0);
    CHECK(json_object_object_get_ex(o, "wave", &wave));
    CHECK(json_object_object_get_ex(wave, "current", &v) && json_object_get_int(v) == 1);
    CHECK(json_object_object_get_ex(wave, "count", &v) && json_object_get_int(v) == 2);
    CHECK(json_object_object_get_ex(o, "counts", &counts));
    CHECK(json_object_object_get_ex(counts, "downloading", &v) && json_object_get_int(v) == 1);
    CHECK(json_object_object_get_ex(counts, "offered", &v) && json_object_get_int(v) == 1);
    CHECK(json_object_object_get_ex(counts, "pending", &v) && json_object_get_int(v) == 2);
    CHECK(json_object_object_get_ex(o, "waves", &waves) && json_object_array_length(waves) == 2);
    CHECK(json_object_object_get_ex(o, "created", &v) && json_object_get_int64(v) == now);
    CHECK(json_object_object_get_ex(o, "finished", &v) && v == NULL);
    CHECK(!json_object_object_get_ex(o, "nodes", &v));
    json_object_put(o);
    succeed(e, &r, "st", 0, now + 3);
    CHECK_EQ_INT(
        campaign_on_status(e, "n01", "st", MSG_OTA_REVERTED, 0, MSG_REASON_BOOT_FAILED, now + 3),
        0);
    succeed(e, &r, "st", 2, now + 4);
    unsigned before = r.status;
    succeed(e, &r, "st", 3, now + 4);
    CHECK(strcmp(cstate(e, "st"), "completed") == 0);
    CHECK_EQ_INT(r.status, before + 1); /* the final one, with the final state, no tick */
    o = json_tokener_parse(r.last_json);
    CHECK(o && strcmp(str_at(o, "state"), "completed") == 0);
    CHECK(o && json_object_object_get_ex(o, "finished", &v) && json_object_get_int64(v) == now + 4);
    CHECK(o && json_object_object_get_ex(o, "waves", &waves));
    json_object *w0 = json_object_array_get_idx(waves, 0), *wc;
    CHECK(json_object_object_get_ex(w0, "counts", &wc) &&
          json_object_object_get_ex(wc, "reverted", &v) && json_object_get_int(v) == 1);
    json_object_put(o);
    /* final campaigns are read back from SQLite */
    CHECK_EQ_INT(count_of(e, "st", "succeeded"), 3);
    CHECK(campaign_status_json(e, "none", false) == NULL);
    s = spec_of("st2");
    targets[0].skip_reason = "quarantined";
    CHECK_EQ_INT(create(e, &s, 1, now + 5), 0);
    make_targets(4);
    CHECK_EQ_INT(campaign_foreach(e, list_cb, list), 0);
    CHECK(strcmp(list, "st2:completed;st:completed;") == 0);
    campaign_close(e);
}

static void test_create_validation(void)
{
    struct rec r;
    char path[256], err[256];
    struct campaign_engine *e = fresh(&r, path, sizeof(path));
    struct campaign_spec s;
    int64_t now = 1000;

    make_targets(10);
#define BAD(field_code, rc_want, needle)                                                           \
    do {                                                                                           \
        s = spec_of("v");                                                                          \
        field_code;                                                                                \
        err[0] = '\0';                                                                             \
        CHECK_EQ_INT(campaign_create(e, &s, targets, 10, now, err, sizeof(err)), rc_want);         \
        if (strstr(err, needle) == NULL)                                                           \
            fprintf(stderr, "  err \"%s\" lacks \"%s\"\n", err, needle);                           \
        CHECK(strstr(err, needle) != NULL);                                                        \
    } while (0)
    BAD(s.id[0] = '\0', -EINVAL, "id:");
    BAD(strcpy(s.id, "a/b"), -EINVAL, "id:");
    BAD(s.device_class[0] = '\0', -EINVAL, "device_class:");
    BAD(s.n_waves = 0, -EINVAL, "waves:");
    BAD(s.max_parallel = 0, -EINVAL, "max_parallel:");
    BAD(s.step_timeout_s = 0, -EINVAL, "step_timeout_s:");
    BAD(s.node_deadline_s = 10, -EINVAL, "node_deadline_s:");
    BAD(s.retry_backoff_s = 0, -EINVAL, "retry_backoff_s:");
    BAD(s.success_threshold_pct = 0, -EINVAL, "success_threshold_pct:");
    BAD(s.abort_failure_pct = 101, -EINVAL, "abort_failure_pct:");
    BAD((s.waves[0] = (struct campaign_wave){true, 50}), -EINVAL, "waves[0]: the last wave");
    BAD((s.waves[0] = (struct campaign_wave){true, 0}), -EINVAL, "waves[0]:");
    BAD((s.waves[0] = (struct campaign_wave){false, 5},
         s.waves[1] = (struct campaign_wave){true, 10}, s.n_waves = 2),
        -EINVAL, "waves[1]: covers 1 targets, fewer than the 5");
    BAD(strcpy(targets[3].node, "bad id"), -EINVAL, "targets[3]:");
    make_targets(10);
    BAD(strcpy(targets[7].node, "n02"), -EINVAL, "node n02 is listed twice");
    make_targets(10);
    err[0] = '\0';
    s = spec_of("v");
    CHECK_EQ_INT(campaign_create(e, &s, targets, 0, now, err, sizeof(err)), -EINVAL);
    CHECK(strstr(err, "targets:") != NULL);
    CHECK_EQ_INT(r.n_order, 0);
    CHECK(campaign_status_json(e, "v", false) == NULL); /* nothing stored */
    CHECK_EQ_INT(campaign_create(e, &s, targets, 5, now, err, sizeof(err)), 0);
    CHECK_EQ_INT(campaign_create(e, &s, targets + 5, 5, now, err, sizeof(err)), -EEXIST);
    s = spec_of("w");
    CHECK_EQ_INT(campaign_create(e, &s, targets + 4, 3, now, err, sizeof(err)), -EBUSY);
    CHECK(strstr(err, "node n04 is in campaign v") != NULL);
    CHECK_EQ_INT(campaign_create(e, &s, targets + 5, 5, now, err, sizeof(err)), 0);
    char id[CAMPAIGN_ID_MAX + 1];
    uint8_t d[OTA_DIGEST_LEN];
    enum campaign_node_state ns;
    CHECK(campaign_node_active(e, "n06", id, d, &ns));
    CHECK(strcmp(id, "w") == 0 && ns == CN_OFFERED && memcmp(d, DIGEST, sizeof(d)) == 0);
    campaign_close(e);
#undef BAD
}

static void test_tampered(void)
{
    struct rec r;
    char path[256];
    struct campaign_engine *e = fresh(&r, path, sizeof(path));
    struct campaign_spec s = spec_of("tamper");

    r.offer_rc = -EBADMSG;
    make_targets(3);
    CHECK_EQ_INT(create(e, &s, 3, 1000), 0);
    CHECK(strcmp(cstate(e, "tamper"), "failed") == 0);
    CHECK(strncmp(creason(e, "tamper"), "image_tampered", 14) == 0);
    CHECK_EQ_INT(r.finished, 1);
    CHECK_EQ_INT(r.finished_state, CAMPAIGN_FAILED);
    CHECK(strcmp(nstate(e, "tamper", 0), "failed") == 0);
    CHECK(strcmp(node_reason, "image_tampered") == 0);
    /* the offers queued with the first one are not sent after their nodes were cancelled */
    CHECK_EQ_INT(r.offers[0], 1);
    CHECK_EQ_INT(r.offers[1] + r.offers[2], 0);
    CHECK_EQ_INT(r.cancels[0] + r.cancels[1] + r.cancels[2], 3);
    CHECK(!campaign_uses_image(e, DIGEST));
    campaign_close(e);
}

static void test_schema_newer(void)
{
    struct rec r;
    char path[256], err[256];
    struct campaign_engine *e = fresh(&r, path, sizeof(path));
    struct campaign_ops ops = {rec_act, &r};
    sqlite3 *db = NULL;
    campaign_close(e);
    CHECK_EQ_INT(sqlite3_open(path, &db), SQLITE_OK);
    CHECK_EQ_INT(sqlite3_exec(db, "PRAGMA user_version = 9", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    e = NULL;
    CHECK_EQ_INT(campaign_open(path, &ops, &e, err, sizeof(err)), -EPROTONOSUPPORT);
    CHECK(e == NULL && strstr(err, "schema version 9") != NULL);
}

int main(void)
{
    memset(DIGEST, 0xab, sizeof(DIGEST));
    memset(OTHER, 0xee, sizeof(OTHER));
    if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    test_waves_complete();
    test_canary();
    test_silent_timed_out();
    test_offline_skipped();
    test_retries_backoff();
    test_abort();
    test_halt_resume();
    test_abort_criteria();
    test_restart();
    test_rejected_and_unknown();
    test_raise_floor();
    test_status_json();
    test_create_validation();
    test_tampered();
    test_schema_newer();
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    return check_finish();
}
