/* The attestation gate (gate.c) driven without any I/O: a fake registry, a fake verifier
 * (evidence = "EV" || nonce[32] || kind) and an action recorder. */
#include "check.h"
#include "gate.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define EV_LEN    35
#define STORM_MAX 2048
enum ev_kind {
    EV_GOOD = 1,
    EV_BAD_SIG = 2,
    EV_UNKNOWN_MEAS = 3,
    EV_GOOD_IOT = 4, /* trusted, token of PSA_IOT_PROFILE_1 */
    EV_PROFILE = 5,  /* verified, profile PSA 2.0.0 not allowed */
};

struct fake {
    /* registry */
    const char *enrolled[8];
    enum gate_verdict reg_verdict[8];
    int64_t reg_time[8];
    /* recorder */
    unsigned challenges, persists, publishes, notes;
    unsigned trusted, quarantined, timeouts, unsolicited;
    uint8_t last_nonce[GATE_NONCE_LEN];
    char last_node[64];
    enum gate_verdict last_persist_verdict;
    enum gate_reason last_persist_code;
    char last_persist_profile[80]; /* "(null)" when the action kept the registry's */
    char last_publish_profile[80];
    int challenge_rc; /* what the "broker" says to a challenge */
    /* held messages: released / dropped (per reason) by the actions */
    unsigned released, releases, dropped_quarantined, dropped_expired, dropped_removed;
    int release_rc;
    uint8_t rnd;
    /* storm: every id starting with 's' is enrolled; the challenges in the order sent */
    bool enroll_storm;
    unsigned n_sent;
    char sent_node[STORM_MAX][16];
    uint8_t sent_nonce[STORM_MAX][GATE_NONCE_LEN];
};

static int fake_index(struct fake *f, const char *node)
{
    for (int i = 0; i < 8; i++)
        if (f->enrolled[i] != NULL && strcmp(f->enrolled[i], node) == 0)
            return i;
    return -1;
}

static int f_load(void *ctx, const char *node, struct gate_record *ret)
{
    struct fake *f = ctx;
    int i = fake_index(f, node);
    if (i < 0 && f->enroll_storm && node[0] == 's') {
        memset(ret->pub, 0x55, sizeof(ret->pub));
        ret->verdict = GATE_NONE;
        return 0;
    }
    if (i < 0)
        return -ENOENT;
    memset(ret->pub, i + 1, sizeof(ret->pub));
    ret->verdict = f->reg_verdict[i] ? f->reg_verdict[i] : GATE_NONE;
    ret->verdict_time = f->reg_time[i];
    return 0;
}

static void f_verify(void *ctx, const char *node, const uint8_t *msg, size_t len,
                     const uint8_t pub[GATE_PUB_LEN], const uint8_t nonce[GATE_NONCE_LEN],
                     struct gate_judgement *j)
{
    (void)ctx;
    (void)node;
    (void)pub;
    memset(j, 0, sizeof(*j));
    if (len != EV_LEN || msg[0] != 'E' || msg[1] != 'V') {
        j->code = GATE_R_BAD_EVIDENCE;
        strcpy(j->reason, "not evidence");
    } else if (msg[34] == EV_BAD_SIG) {
        j->code = GATE_R_BAD_SIGNATURE;
        strcpy(j->reason, "token refused: bad signature");
    } else if (memcmp(msg + 2, nonce, GATE_NONCE_LEN) != 0) {
        j->code = GATE_R_NONCE_MISMATCH;
        strcpy(j->reason, "token refused: nonce mismatch");
    } else if (msg[34] == EV_UNKNOWN_MEAS) {
        j->code = GATE_R_UNKNOWN_MEASUREMENT;
        strcpy(j->reason, "unknown measurement");
        strcpy(j->profile, "tag:psacertified.org,2023:psa#tfm");
    } else if (msg[34] == EV_PROFILE) {
        j->code = GATE_R_PROFILE;
        strcpy(j->reason, "token profile 'http://arm.com/psa/2.0.0' is not in "
                          "attestation.profiles");
        strcpy(j->profile, "http://arm.com/psa/2.0.0");
    } else {
        j->trusted = true;
        j->code = GATE_R_ATTESTED;
        strcpy(j->reason, "match");
        strcpy(j->fw_version, "1.2.0");
        strcpy(j->profile,
               msg[34] == EV_GOOD_IOT ? "PSA_IOT_PROFILE_1" : "tag:psacertified.org,2023:psa#tfm");
    }
}

static bool f_peek(void *ctx, const uint8_t *msg, size_t len, uint8_t nonce[GATE_NONCE_LEN])
{
    (void)ctx;
    if (len != EV_LEN || msg[0] != 'E' || msg[1] != 'V')
        return false;
    memcpy(nonce, msg + 2, GATE_NONCE_LEN);
    return true;
}

static int f_random(void *ctx, uint8_t *buf, size_t len)
{
    struct fake *f = ctx;
    f->rnd++;
    memset(buf, f->rnd, len);
    buf[0] = 0xA5;
    return 0;
}

static int f_act(void *ctx, const struct gate_action *a)
{
    struct fake *f = ctx;
    switch (a->kind) {
    case GATE_ACT_CHALLENGE:
        if (f->challenge_rc < 0)
            return f->challenge_rc;
        f->challenges++;
        if (f->n_sent < STORM_MAX) {
            snprintf(f->sent_node[f->n_sent], sizeof(f->sent_node[0]), "%s", a->node);
            memcpy(f->sent_nonce[f->n_sent], a->nonce, GATE_NONCE_LEN);
            f->n_sent++;
        }
        memcpy(f->last_nonce, a->nonce, GATE_NONCE_LEN);
        snprintf(f->last_node, sizeof(f->last_node), "%s", a->node);
        return 0;
    case GATE_ACT_PERSIST:
        f->persists++;
        f->last_persist_verdict = a->verdict;
        f->last_persist_code = a->code;
        snprintf(f->last_persist_profile, sizeof(f->last_persist_profile), "%s",
                 a->profile ? a->profile : "(null)");
        return 0;
    case GATE_ACT_PUBLISH:
        f->publishes++;
        snprintf(f->last_publish_profile, sizeof(f->last_publish_profile), "%s",
                 a->profile ? a->profile : "(null)");
        return 0;
    case GATE_ACT_COUNT:
        if (strcmp(a->counter, "attest_trusted") == 0)
            f->trusted++;
        else if (strcmp(a->counter, "attest_quarantined") == 0)
            f->quarantined++;
        else if (strcmp(a->counter, "attest_timeout") == 0)
            f->timeouts++;
        else if (strcmp(a->counter, "evidence_unsolicited") == 0)
            f->unsolicited++;
        return 0;
    case GATE_ACT_NOTE:
        if (strcmp(a->token, "evidence_unsolicited") == 0)
            f->notes++;
        return 0;
    case GATE_ACT_RELEASE:
        if (f->release_rc < 0)
            return f->release_rc;
        f->releases++;
        f->released += a->held;
        return 0;
    case GATE_ACT_DROP_HELD:
        if (strcmp(a->counter, "quarantined") == 0)
            f->dropped_quarantined += a->held;
        else if (strcmp(a->counter, "hold_expired") == 0)
            f->dropped_expired += a->held;
        else if (strcmp(a->counter, "not_enrolled") == 0)
            f->dropped_removed += a->held;
        else
            return -EINVAL;
        return 0;
    }
    return -EINVAL;
}

static const struct gate_config cfg_default = {.required = true,
                                               .judging = true,
                                               .nonce_ttl_s = 5,
                                               .interval_s = 3600,
                                               .per_node_rate = 50,
                                               .per_node_burst = 200,
                                               .evidence_max = 4096};

static struct gate *mk(struct fake *f, const struct gate_config *cfg)
{
    static const struct gate_ops ops0 = {f_load, f_verify, f_peek, f_random, f_act, NULL};
    struct gate_ops ops = ops0;
    struct gate *g = NULL;
    ops.ctx = f;
    if (gate_new(cfg, &ops, 64, &g) != 0)
        abort();
    return g;
}

static void ev(uint8_t out[EV_LEN], const uint8_t nonce[GATE_NONCE_LEN], enum ev_kind k)
{
    out[0] = 'E';
    out[1] = 'V';
    memcpy(out + 2, nonce, GATE_NONCE_LEN);
    out[34] = (uint8_t)k;
}

#define S 1000000ULL /* one second in us */

/* challenge -> good evidence -> trusted; a duplicate of that evidence leaves it trusted */
static void test_trusted_and_duplicate(void)
{
    struct fake f = {.enrolled = {"n1"}};
    struct gate *g = mk(&f, &cfg_default);
    uint8_t good[EV_LEN];

    struct gate_outcome o = gate_on_up(g, "n1", 10 * S, 1000);
    CHECK_EQ_INT(o.decision, GATE_DROP);
    CHECK(strcmp(o.drop_reason, "not_attested") == 0);
    CHECK_EQ_INT(f.challenges, 1);
    CHECK(gate_node_challenged(g, "n1"));
    ev(good, f.last_nonce, EV_GOOD);
    o = gate_on_evidence(g, "n1", good, sizeof(good), 11 * S, 1001);
    CHECK_EQ_INT(o.decision, GATE_CONSUMED);
    CHECK_EQ_INT(gate_node_verdict(g, "n1"), GATE_TRUSTED);
    CHECK_EQ_INT(f.persists, 1);
    CHECK_EQ_INT(f.publishes, 1);
    CHECK_EQ_INT(f.last_persist_code, GATE_R_ATTESTED);
    CHECK_EQ_INT(f.trusted, 1);
    CHECK(!gate_node_challenged(g, "n1"));
    CHECK_EQ_INT(gate_on_up(g, "n1", 12 * S, 1002).decision, GATE_RELAY);

    /* the copy (QoS 1 resend after a reconnect): not judged, nothing written */
    o = gate_on_evidence(g, "n1", good, sizeof(good), 13 * S, 1003);
    CHECK_EQ_INT(o.decision, GATE_CONSUMED);
    CHECK_EQ_INT(gate_node_verdict(g, "n1"), GATE_TRUSTED);
    CHECK_EQ_INT(f.persists, 1);
    CHECK_EQ_INT(f.publishes, 1);
    CHECK_EQ_INT(f.trusted, 1);
    CHECK_EQ_INT(f.quarantined, 0);
    CHECK_EQ_INT(f.unsolicited, 1);
    CHECK_EQ_INT(f.challenges, 1); /* trusted and not due: no new challenge */
    CHECK_EQ_INT(gate_on_up(g, "n1", 14 * S, 1004).decision, GATE_RELAY);

    /* a copy arriving while a newer challenge is outstanding is not judged either */
    CHECK_EQ_INT(gate_request_challenge(g, "n1", 20 * S, 1010), 0);
    CHECK_EQ_INT(f.challenges, 2);
    o = gate_on_evidence(g, "n1", good, sizeof(good), 21 * S, 1011);
    CHECK_EQ_INT(gate_node_verdict(g, "n1"), GATE_TRUSTED);
    CHECK(gate_node_challenged(g, "n1"));
    CHECK_EQ_INT(f.unsolicited, 2);
    CHECK_EQ_INT(f.quarantined, 0);
    ev(good, f.last_nonce, EV_GOOD);
    (void)gate_on_evidence(g, "n1", good, sizeof(good), 22 * S, 1012);
    CHECK_EQ_INT(f.trusted, 2);
    CHECK_EQ_INT(f.persists, 1); /* trusted again, same reason and firmware: no write */
    gate_free(g);
}

/* unsolicited evidence is counted and changes nothing */
static void test_unsolicited(void)
{
    struct fake f = {.enrolled = {"n1", "n2"}, .reg_verdict = {GATE_TRUSTED}, .reg_time = {990}};
    struct gate *g = mk(&f, &cfg_default);
    uint8_t e[EV_LEN], nonce[GATE_NONCE_LEN];
    memset(nonce, 0x33, sizeof(nonce));

    CHECK_EQ_INT(gate_on_up(g, "n1", 10 * S, 1000).decision, GATE_RELAY);
    ev(e, nonce, EV_BAD_SIG);
    for (int i = 0; i < 5; i++)
        CHECK_EQ_INT(
            gate_on_evidence(g, "n1", e, sizeof(e), (11 + (uint64_t)i) * S, 1001 + i).decision,
            GATE_CONSUMED);
    CHECK_EQ_INT(gate_node_verdict(g, "n1"), GATE_TRUSTED);
    CHECK_EQ_INT(f.unsolicited, 5);
    CHECK_EQ_INT(f.notes, 1); /* once per node per interval */
    CHECK_EQ_INT(f.persists + f.publishes + f.challenges + f.trusted + f.quarantined, 0);
    (void)gate_on_evidence(g, "n1", e, sizeof(e), 100 * S, 1001 + GATE_NOTE_INTERVAL_S);
    CHECK_EQ_INT(f.notes, 2);
    /* garbage is not judged either when nothing is outstanding */
    (void)gate_on_evidence(g, "n1", (const uint8_t *)"junk", 4, 101 * S, 1100);
    CHECK_EQ_INT(gate_node_verdict(g, "n1"), GATE_TRUSTED);
    CHECK_EQ_INT(f.unsolicited, 7);
    CHECK_EQ_INT(f.persists, 0);

    /* a node without a verdict: not judged either, but taken as a sign of life */
    (void)gate_on_evidence(g, "n2", e, sizeof(e), 102 * S, 1101);
    CHECK_EQ_INT(gate_node_verdict(g, "n2"), GATE_NONE);
    CHECK_EQ_INT(f.persists, 0);
    CHECK_EQ_INT(f.challenges, 1);
    CHECK(strcmp(f.last_node, "n2") == 0);

    /* not enrolled: refused and counted by the caller */
    struct gate_outcome o = gate_on_evidence(g, "n9", e, sizeof(e), 103 * S, 1102);
    CHECK_EQ_INT(o.decision, GATE_DROP);
    CHECK(strcmp(o.drop_reason, "attest_unknown_node") == 0);
    gate_free(g);
}

/* A flood of 10,000 evidence messages from one node: at most one verdict write per verdict
 * change. With a rate limit high enough that every message reaches the gate's logic, and
 * with the default limit (most are dropped as rate_limited before any decoding). */
static void test_flood(double rate)
{
    struct gate_config cfg = cfg_default;
    struct fake f = {.enrolled = {"n3"}};
    cfg.per_node_rate = rate;
    cfg.per_node_burst = rate > 1000 ? rate : cfg.per_node_burst;
    struct gate *g = mk(&f, &cfg);
    uint8_t good[EV_LEN], bad[EV_LEN], other[EV_LEN], n0[GATE_NONCE_LEN];
    unsigned changes = 0, rate_limited = 0;
    enum gate_verdict before = GATE_NONE;

    (void)gate_on_status(g, "n3", 10 * S, 1000);
    CHECK_EQ_INT(f.challenges, 1);
    memcpy(n0, f.last_nonce, sizeof(n0));
    ev(good, n0, EV_GOOD);
    ev(bad, n0, EV_BAD_SIG);
    memset(other, 0x77, sizeof(other));
    ev(other, other + 2, EV_GOOD);
    for (unsigned i = 0; i < 10000; i++) {
        const uint8_t *m = (i % 3 == 0) ? good : (i % 3 == 1) ? bad : other;
        uint64_t t = 11 * S + (uint64_t)i * 100; /* 10,000 messages/s */
        if (i == 5000) {                         /* an operator's re-challenge mid-flood */
            CHECK_EQ_INT(gate_request_challenge(g, "n3", t, 1001), 0);
            ev(bad, f.last_nonce, EV_BAD_SIG);
        }
        struct gate_outcome o = gate_on_evidence(g, "n3", m, EV_LEN, t, 1001 + i / 10000);
        if (o.decision == GATE_DROP && strcmp(o.drop_reason, "rate_limited") == 0)
            rate_limited++;
        enum gate_verdict v = gate_node_verdict(g, "n3");
        if (v != before)
            changes++;
        before = v;
    }
    CHECK(f.persists <= changes);
    CHECK(f.publishes <= changes);
    CHECK_EQ_INT(f.trusted + f.quarantined, 2); /* one judgement per challenge */
    if (rate > 1000) {
        CHECK_EQ_INT(rate_limited, 0);
        CHECK_EQ_INT(changes, 2); /* trusted (first good), quarantined (bad answer) */
        CHECK_EQ_INT(f.persists, 2);
        CHECK_EQ_INT(gate_node_verdict(g, "n3"), GATE_QUARANTINED);
        CHECK_EQ_INT(f.unsolicited, 9998);
    } else {
        CHECK(rate_limited > 9000);
        CHECK(f.unsolicited + rate_limited + 2 == 10000);
    }
    gate_free(g);
}

/* the same bad answer to the next challenge: judged and counted, but not written again */
static void test_unchanged_not_written(void)
{
    struct fake f = {.enrolled = {"n6"}};
    struct gate *g = mk(&f, &cfg_default);
    uint8_t bad[EV_LEN];

    (void)gate_on_status(g, "n6", 10 * S, 1000);
    ev(bad, f.last_nonce, EV_UNKNOWN_MEAS);
    (void)gate_on_evidence(g, "n6", bad, sizeof(bad), 11 * S, 1001);
    CHECK_EQ_INT(gate_node_verdict(g, "n6"), GATE_QUARANTINED);
    CHECK_EQ_INT(f.persists, 1);
    (void)gate_on_status(g, "n6", 12 * S, 1002); /* challenges are spaced by nonce_ttl_s */
    CHECK_EQ_INT(f.challenges, 1);
    (void)gate_on_status(g, "n6", 17 * S, 1007);
    CHECK_EQ_INT(f.challenges, 2);
    ev(bad, f.last_nonce, EV_UNKNOWN_MEAS);
    (void)gate_on_evidence(g, "n6", bad, sizeof(bad), 18 * S, 1008);
    CHECK_EQ_INT(f.quarantined, 2);
    CHECK_EQ_INT(f.persists, 1);
    CHECK_EQ_INT(f.publishes, 1);
    gate_free(g);
}

/* nonce expiry quarantines a trusted node; its late answer is not judged; it recovers */
static void test_expiry(void)
{
    struct fake f = {.enrolled = {"n4"}, .reg_verdict = {GATE_TRUSTED}, .reg_time = {1000}};
    struct gate_config cfg = cfg_default;
    cfg.interval_s = 60;
    struct gate *g = mk(&f, &cfg);
    uint8_t late[EV_LEN];

    CHECK_EQ_INT(gate_on_up(g, "n4", 10 * S, 1010).decision, GATE_RELAY);
    CHECK_EQ_INT(f.challenges, 0);
    CHECK_EQ_INT(gate_on_timer(g, 10 * S, 1010), 0); /* nothing outstanding */
    /* interval over: challenged, still relayed while the nonce is valid (grace) */
    CHECK_EQ_INT(gate_on_up(g, "n4", 100 * S, 1060).decision, GATE_RELAY);
    CHECK_EQ_INT(f.challenges, 1);
    ev(late, f.last_nonce, EV_GOOD);
    CHECK_EQ_INT(gate_on_timer(g, 101 * S, 1061), 105 * S);
    CHECK_EQ_INT(gate_node_verdict(g, "n4"), GATE_TRUSTED);
    CHECK_EQ_INT(gate_on_timer(g, 105 * S, 1065), 0);
    CHECK_EQ_INT(gate_node_verdict(g, "n4"), GATE_QUARANTINED);
    CHECK_EQ_INT(f.timeouts, 1);
    CHECK_EQ_INT(f.quarantined, 1);
    CHECK_EQ_INT(f.persists, 1);
    CHECK_EQ_INT(f.last_persist_code, GATE_R_TIMEOUT);
    CHECK_EQ_INT(f.publishes, 1);
    struct gate_outcome o = gate_on_up(g, "n4", 106 * S, 1066);
    CHECK(o.decision == GATE_DROP && strcmp(o.drop_reason, "quarantined") == 0);
    CHECK_EQ_INT(f.challenges, 2); /* its message drew a fresh challenge */
    /* the late answer to the expired nonce: not judged */
    (void)gate_on_evidence(g, "n4", late, sizeof(late), 107 * S, 1067);
    CHECK_EQ_INT(gate_node_verdict(g, "n4"), GATE_QUARANTINED);
    CHECK_EQ_INT(f.unsolicited, 1);
    CHECK_EQ_INT(f.persists, 1);
    ev(late, f.last_nonce, EV_GOOD);
    (void)gate_on_evidence(g, "n4", late, sizeof(late), 108 * S, 1068);
    CHECK_EQ_INT(gate_node_verdict(g, "n4"), GATE_TRUSTED);
    CHECK_EQ_INT(f.persists, 2);

    /* expiry noticed on the node's own message before the sweep */
    CHECK_EQ_INT(gate_request_challenge(g, "n4", 200 * S, 1160), 0);
    o = gate_on_up(g, "n4", 206 * S, 1166);
    CHECK_EQ_INT(gate_node_verdict(g, "n4"), GATE_QUARANTINED);
    CHECK_EQ_INT(o.decision, GATE_DROP);
    CHECK_EQ_INT(f.timeouts, 2);
    gate_free(g);
}

/* a policy reload keeps the verdicts that still hold: no write, no challenge */
static void test_reload(void)
{
    struct fake f = {.enrolled = {"n1", "n5"},
                     .reg_verdict = {GATE_TRUSTED, GATE_QUARANTINED},
                     .reg_time = {1000, 1000}};
    struct gate *g = mk(&f, &cfg_default);
    CHECK_EQ_INT(gate_on_up(g, "n1", 10 * S, 1001).decision, GATE_RELAY);
    CHECK_EQ_INT(gate_on_up(g, "n5", 10 * S, 1001).decision, GATE_DROP);
    CHECK_EQ_INT(f.challenges, 1); /* n5 */
    struct gate_config cfg = cfg_default;
    cfg.nonce_ttl_s = 30;
    cfg.per_node_rate = 5;
    gate_reload(g, &cfg);
    CHECK_EQ_INT(gate_on_up(g, "n1", 11 * S, 1002).decision, GATE_RELAY);
    CHECK_EQ_INT(gate_node_verdict(g, "n1"), GATE_TRUSTED);
    CHECK_EQ_INT(gate_on_up(g, "n5", 11 * S, 1002).decision, GATE_DROP);
    CHECK_EQ_INT(gate_node_verdict(g, "n5"), GATE_QUARANTINED);
    CHECK(gate_node_challenged(g, "n5")); /* its challenge is still outstanding */
    CHECK_EQ_INT(f.challenges, 1);
    CHECK_EQ_INT(f.persists + f.publishes, 0);
    /* the reloaded rate applies: 200 burst tokens, then 5/s */
    unsigned relayed = 0;
    for (int i = 0; i < 400; i++)
        relayed += gate_on_up(g, "n1", 12 * S, 1003).decision == GATE_RELAY;
    CHECK(relayed < 400);
    /* with the reference values gone, evidence is refused unjudged, verdicts stay */
    cfg.judging = false;
    gate_reload(g, &cfg);
    uint8_t e[EV_LEN];
    ev(e, f.last_nonce, EV_GOOD);
    struct gate_outcome o = gate_on_evidence(g, "n5", e, sizeof(e), 100 * S, 1100);
    CHECK(o.decision == GATE_DROP && strcmp(o.drop_reason, "attestation_disabled") == 0);
    CHECK_EQ_INT(gate_node_verdict(g, "n5"), GATE_QUARANTINED);
    gate_free(g);
}

static unsigned relay_n(struct gate *g, const char *node, unsigned n, uint64_t now_us)
{
    unsigned relayed = 0;
    for (unsigned i = 0; i < n; i++)
        relayed += gate_on_up(g, node, now_us, 2000).decision == GATE_RELAY;
    return relayed;
}

/* gate_credit_absence(): after fleetgwd was away 100 s from the edge, a node's backlog
 * within its rate (10/s x 100 s) passes on top of its burst; what it sent beyond that is
 * rate_limited as it would have been live; the credit is taken once per absence, by nodes
 * first seen after it too, and ends with its window (back to the burst). */
static void test_credit_absence(void)
{
    struct fake f = {.enrolled = {"n1", "n2", "n3"},
                     .reg_verdict = {GATE_TRUSTED, GATE_TRUSTED, GATE_TRUSTED},
                     .reg_time = {1000, 1000, 1000}};
    struct gate_config cfg = cfg_default;
    cfg.per_node_rate = 10;
    cfg.per_node_burst = 20;
    struct gate *g = mk(&f, &cfg);
    CHECK_EQ_INT(relay_n(g, "n1", 30, 10 * S), 20); /* burst, nothing refilled */
    gate_credit_absence(g, 100, 10 * S);
    /* n1: 1000 credited + its refill stops at the burst: 10 s later it has 20 + 1000 */
    CHECK_EQ_INT(relay_n(g, "n1", 1100, 20 * S), 1020);
    CHECK_EQ_INT(relay_n(g, "n1", 5, 20 * S), 0); /* once per absence */
    /* n2, first seen now, gets it too (the gate's table is empty after a restart) */
    CHECK_EQ_INT(relay_n(g, "n2", 2000, 20 * S), 1020);
    /* n3 comes after the window (60 s + 100 s): only its burst */
    CHECK_EQ_INT(relay_n(g, "n3", 2000, 171 * S), 20);
    /* a node that keeps part of its credit loses it at the window's end */
    gate_credit_absence(g, 10, 200 * S); /* 100 tokens until 270 s */
    CHECK_EQ_INT(relay_n(g, "n1", 50, 201 * S), 50);
    CHECK_EQ_INT(relay_n(g, "n1", 1000, 300 * S), 20);
    /* nothing for no absence; the cap */
    gate_credit_absence(g, 0, 400 * S);
    gate_credit_absence(g, -5, 400 * S);
    CHECK_EQ_INT(relay_n(g, "n2", 100, 400 * S), 20);
    gate_credit_absence(g, 1e12, 500 * S);
    CHECK_EQ_INT(relay_n(g, "n2", 100, 500 * S), 100);
    gate_free(g);
}

/* a challenge the broker client accepted is outstanding (even queued while the edge is
 * down); one it refused is not, and expires nothing */
static void test_challenge_accepted(void)
{
    struct fake f = {.enrolled = {"n7"}};
    struct gate *g = mk(&f, &cfg_default);
    f.challenge_rc = -ENOTCONN;
    (void)gate_on_status(g, "n7", 10 * S, 1000);
    CHECK(!gate_node_challenged(g, "n7"));
    CHECK_EQ_INT(gate_request_challenge(g, "n7", 10 * S, 1000), -ENOTCONN);
    CHECK_EQ_INT(gate_on_timer(g, 20 * S, 1010), 0);
    CHECK_EQ_INT(f.timeouts, 0);
    f.challenge_rc = 0; /* queued by the client while the edge is down counts as sent */
    (void)gate_on_status(g, "n7", 11 * S, 1001);
    CHECK(gate_node_challenged(g, "n7"));
    uint8_t e[EV_LEN];
    ev(e, f.last_nonce, EV_GOOD);
    (void)gate_on_evidence(g, "n7", e, sizeof(e), 12 * S, 1002);
    CHECK_EQ_INT(gate_node_verdict(g, "n7"), GATE_TRUSTED);
    CHECK_EQ_INT(gate_request_challenge(g, "n8", 12 * S, 1002), -ENOENT);
    gate_free(g);
}

/* after a restart (a new gate, nothing outstanding), the broker redelivers the answer to
 * the old challenge: not judged; the node is challenged afresh and trusted */
static void test_restart_redelivery(void)
{
    struct fake f = {.enrolled = {"n1"}};
    struct gate *g = mk(&f, &cfg_default);
    uint8_t old[EV_LEN];
    (void)gate_on_status(g, "n1", 10 * S, 1000);
    ev(old, f.last_nonce, EV_GOOD);
    gate_free(g); /* SIGKILL */
    g = mk(&f, &cfg_default);
    (void)gate_on_evidence(g, "n1", old, sizeof(old), 1 * S, 1010);
    CHECK_EQ_INT(gate_node_verdict(g, "n1"), GATE_NONE);
    CHECK_EQ_INT(f.persists, 0);
    CHECK_EQ_INT(f.challenges, 2);
    CHECK(gate_node_challenged(g, "n1"));
    /* the node answers the fresh challenge */
    ev(old, f.last_nonce, EV_GOOD);
    (void)gate_on_evidence(g, "n1", old, sizeof(old), 2 * S, 1011);
    CHECK_EQ_INT(gate_node_verdict(g, "n1"), GATE_TRUSTED);
    CHECK_EQ_INT(f.persists, 1);
    gate_free(g);
}

/* the token's profile is persisted and published with the verdict; a change of profile alone
 * is written; a verdict without a token (timeout) keeps the recorded one */
static void test_profile(void)
{
    struct fake f = {.enrolled = {"n9"}};
    struct gate_config cfg = cfg_default;
    cfg.interval_s = 60;
    struct gate *g = mk(&f, &cfg);
    uint8_t e[EV_LEN];

    (void)gate_on_status(g, "n9", 10 * S, 1000);
    ev(e, f.last_nonce, EV_GOOD);
    (void)gate_on_evidence(g, "n9", e, sizeof(e), 11 * S, 1001);
    CHECK_EQ_INT(f.persists, 1);
    CHECK(strcmp(f.last_persist_profile, "tag:psacertified.org,2023:psa#tfm") == 0);
    CHECK(strcmp(f.last_publish_profile, "tag:psacertified.org,2023:psa#tfm") == 0);
    /* re-attested, same verdict and firmware, another profile: written */
    CHECK_EQ_INT(gate_request_challenge(g, "n9", 20 * S, 1010), 0);
    ev(e, f.last_nonce, EV_GOOD_IOT);
    (void)gate_on_evidence(g, "n9", e, sizeof(e), 21 * S, 1011);
    CHECK_EQ_INT(gate_node_verdict(g, "n9"), GATE_TRUSTED);
    CHECK_EQ_INT(f.persists, 2);
    CHECK(strcmp(f.last_persist_profile, "PSA_IOT_PROFILE_1") == 0);
    /* the same again: no write */
    CHECK_EQ_INT(gate_request_challenge(g, "n9", 30 * S, 1020), 0);
    ev(e, f.last_nonce, EV_GOOD_IOT);
    (void)gate_on_evidence(g, "n9", e, sizeof(e), 31 * S, 1021);
    CHECK_EQ_INT(f.persists, 2);
    /* unanswered: quarantined, the registry's profile kept, the state still names it */
    CHECK_EQ_INT(gate_request_challenge(g, "n9", 40 * S, 1030), 0);
    (void)gate_on_timer(g, 46 * S, 1036);
    CHECK_EQ_INT(gate_node_verdict(g, "n9"), GATE_QUARANTINED);
    CHECK_EQ_INT(f.persists, 3);
    CHECK_EQ_INT(f.last_persist_code, GATE_R_TIMEOUT);
    CHECK(strcmp(f.last_persist_profile, "(null)") == 0);
    CHECK(strcmp(f.last_publish_profile, "PSA_IOT_PROFILE_1") == 0);
    /* a profile the policy refuses: quarantined with its own reason */
    CHECK_EQ_INT(gate_request_challenge(g, "n9", 50 * S, 1040), 0);
    ev(e, f.last_nonce, EV_PROFILE);
    (void)gate_on_evidence(g, "n9", e, sizeof(e), 51 * S, 1041);
    CHECK_EQ_INT(gate_node_verdict(g, "n9"), GATE_QUARANTINED);
    CHECK_EQ_INT(f.last_persist_code, GATE_R_PROFILE);
    CHECK(strcmp(f.last_persist_profile, "http://arm.com/psa/2.0.0") == 0);
    gate_free(g);
}

static const struct gate_config cfg_hold = {.required = true,
                                            .judging = true,
                                            .nonce_ttl_s = 5,
                                            .interval_s = 3600,
                                            .per_node_rate = 50,
                                            .per_node_burst = 200,
                                            .evidence_max = 4096,
                                            .hold_per_node = 3};

/* Issue 15: messages of an enrolled node without a verdict are held (bounded per node) under
 * its outstanding challenge and released, all at once, when good evidence trusts it. */
static void test_hold_release(void)
{
    struct fake f = {.enrolled = {"n1"}};
    struct gate *g = mk(&f, &cfg_hold);
    uint8_t good[EV_LEN];

    for (int i = 0; i < 3; i++)
        CHECK_EQ_INT(gate_on_up(g, "n1", 10 * S, 1000).decision, GATE_HOLD);
    CHECK_EQ_INT(f.challenges, 1);
    struct gate_outcome o = gate_on_up(g, "n1", 10 * S, 1000);
    CHECK_EQ_INT(o.decision, GATE_DROP); /* over hold_per_node */
    CHECK(strcmp(o.drop_reason, "hold_full") == 0);
    CHECK_EQ_INT(gate_node_held(g, "n1"), 3);
    gate_hold_failed(g, "n1"); /* the caller could not store the third one */
    CHECK_EQ_INT(gate_node_held(g, "n1"), 2);
    CHECK_EQ_INT(f.releases, 0);
    ev(good, f.last_nonce, EV_GOOD);
    CHECK_EQ_INT(gate_on_evidence(g, "n1", good, sizeof(good), 11 * S, 1001).decision,
                 GATE_CONSUMED);
    CHECK_EQ_INT(gate_node_verdict(g, "n1"), GATE_TRUSTED);
    CHECK_EQ_INT(f.releases, 1);
    CHECK_EQ_INT(f.released, 2);
    CHECK_EQ_INT(gate_node_held(g, "n1"), 0);
    CHECK_EQ_INT(gate_on_up(g, "n1", 12 * S, 1002).decision, GATE_RELAY);
    CHECK_EQ_INT(f.releases, 1);
    /* a node that is not enrolled is dropped as before, never held */
    o = gate_on_up(g, "stranger", 12 * S, 1002);
    CHECK_EQ_INT(o.decision, GATE_DROP);
    CHECK(strcmp(o.drop_reason, "not_enrolled") == 0);
    CHECK_EQ_INT(gate_node_held(g, "stranger"), 0);
    /* hold_per_node 0: dropped as not_attested, as before issue 15 */
    struct fake f0 = {.enrolled = {"n2"}};
    struct gate *g0 = mk(&f0, &cfg_default);
    o = gate_on_up(g0, "n2", 10 * S, 1000);
    CHECK_EQ_INT(o.decision, GATE_DROP);
    CHECK(strcmp(o.drop_reason, "not_attested") == 0);
    gate_free(g0);
    gate_free(g);
}

/* Held messages of a node that ends quarantined, or whose challenge expires, or that is
 * removed, are dropped and counted under their reason; none is ever released. Evidence
 * that is not judged (no challenge, a late copy) releases nothing. */
static void test_hold_drop(void)
{
    struct fake f = {.enrolled = {"n1", "n2", "n3", "n4"}};
    struct gate *g = mk(&f, &cfg_hold);
    uint8_t e[EV_LEN], good[EV_LEN];

    /* n1: bad measurement -> quarantined */
    CHECK_EQ_INT(gate_on_up(g, "n1", 10 * S, 1000).decision, GATE_HOLD);
    CHECK_EQ_INT(gate_on_up(g, "n1", 10 * S, 1000).decision, GATE_HOLD);
    ev(e, f.last_nonce, EV_UNKNOWN_MEAS);
    (void)gate_on_evidence(g, "n1", e, sizeof(e), 11 * S, 1001);
    CHECK_EQ_INT(gate_node_verdict(g, "n1"), GATE_QUARANTINED);
    CHECK_EQ_INT(f.dropped_quarantined, 2);
    CHECK_EQ_INT(gate_node_held(g, "n1"), 0);
    struct gate_outcome o = gate_on_up(g, "n1", 12 * S, 1002);
    CHECK_EQ_INT(o.decision, GATE_DROP);
    CHECK(strcmp(o.drop_reason, "quarantined") == 0);

    /* n2: evidence for someone else's nonce (and then a replay of it) trusts nothing */
    CHECK_EQ_INT(gate_on_up(g, "n2", 20 * S, 1010).decision, GATE_HOLD);
    uint8_t n2nonce[GATE_NONCE_LEN];
    memcpy(n2nonce, f.last_nonce, sizeof(n2nonce));
    ev(e, f.last_nonce, EV_BAD_SIG);
    (void)gate_on_evidence(g, "n2", e, sizeof(e), 21 * S, 1011);
    CHECK_EQ_INT(gate_node_verdict(g, "n2"), GATE_QUARANTINED);
    CHECK_EQ_INT(f.dropped_quarantined, 3);
    ev(good, n2nonce, EV_GOOD); /* a late "good" answer to the consumed nonce */
    (void)gate_on_evidence(g, "n2", good, sizeof(good), 22 * S, 1012);
    CHECK_EQ_INT(gate_node_verdict(g, "n2"), GATE_QUARANTINED);

    /* n3: no answer within nonce_ttl_s -> dropped by the timer, verdict still none */
    CHECK_EQ_INT(gate_on_up(g, "n3", 30 * S, 1020).decision, GATE_HOLD);
    CHECK_EQ_INT(gate_on_up(g, "n3", 31 * S, 1021).decision, GATE_HOLD);
    (void)gate_on_timer(g, 34 * S, 1024);
    CHECK_EQ_INT(f.dropped_expired, 0);
    (void)gate_on_timer(g, 35 * S, 1025);
    CHECK_EQ_INT(f.dropped_expired, 2);
    CHECK_EQ_INT(gate_node_held(g, "n3"), 0);
    CHECK_EQ_INT(gate_node_verdict(g, "n3"), GATE_NONE);
    /* its next message: a fresh challenge, held again under it */
    CHECK_EQ_INT(gate_on_up(g, "n3", 36 * S, 1026).decision, GATE_HOLD);
    CHECK(gate_node_challenged(g, "n3"));

    /* n4: removed from the registry while holding */
    CHECK_EQ_INT(gate_on_up(g, "n4", 40 * S, 1030).decision, GATE_HOLD);
    gate_forget(g, "n4", true, 0, 0);
    CHECK_EQ_INT(f.dropped_removed, 1);
    CHECK_EQ_INT(f.releases, 0);
    gate_free(g);
}

/* A release the caller could not carry out: later messages are held behind the earlier
 * ones (never relayed ahead of them) and the release is tried again at the next message. */
static void test_hold_release_retry(void)
{
    struct fake f = {.enrolled = {"n1"}, .release_rc = -EIO};
    struct gate *g = mk(&f, &cfg_hold);
    uint8_t good[EV_LEN];

    CHECK_EQ_INT(gate_on_up(g, "n1", 10 * S, 1000).decision, GATE_HOLD);
    ev(good, f.last_nonce, EV_GOOD);
    (void)gate_on_evidence(g, "n1", good, sizeof(good), 11 * S, 1001);
    CHECK_EQ_INT(gate_node_verdict(g, "n1"), GATE_TRUSTED);
    CHECK_EQ_INT(gate_node_held(g, "n1"), 1);
    CHECK_EQ_INT(gate_on_up(g, "n1", 12 * S, 1002).decision, GATE_HOLD);
    CHECK_EQ_INT(gate_node_held(g, "n1"), 2);
    f.release_rc = 0;
    CHECK_EQ_INT(gate_on_up(g, "n1", 13 * S, 1003).decision, GATE_RELAY);
    CHECK_EQ_INT(f.released, 2);
    CHECK_EQ_INT(gate_node_held(g, "n1"), 0);
    gate_free(g);
}

/* A restart with held rows: settled by the verdict the registry holds, or held again under a
 * fresh challenge when there is none (dropped when no challenge can be sent). */
static void test_hold_restore(void)
{
    struct fake f = {.enrolled = {"t", "q", "u", "v"},
                     .reg_verdict = {GATE_TRUSTED, GATE_QUARANTINED, GATE_NONE, GATE_NONE},
                     .reg_time = {1000, 1000, 0, 0}};
    struct gate *g = mk(&f, &cfg_hold);
    uint8_t good[EV_LEN];

    gate_restore_held(g, "t", 4, 10 * S, 1001);
    CHECK_EQ_INT(f.released, 4);
    gate_restore_held(g, "q", 2, 10 * S, 1001);
    CHECK_EQ_INT(f.dropped_quarantined, 2);
    gate_restore_held(g, "gone", 5, 10 * S, 1001);
    CHECK_EQ_INT(f.dropped_removed, 5);
    gate_restore_held(g, "u", 3, 10 * S, 1001);
    CHECK_EQ_INT(gate_node_held(g, "u"), 3);
    CHECK(gate_node_challenged(g, "u"));
    CHECK_EQ_INT(f.challenges, 1);
    ev(good, f.last_nonce, EV_GOOD);
    (void)gate_on_evidence(g, "u", good, sizeof(good), 11 * S, 1002);
    CHECK_EQ_INT(f.released, 7);
    f.challenge_rc = -ENOTCONN;
    gate_restore_held(g, "v", 2, 10 * S, 1001);
    CHECK_EQ_INT(f.dropped_expired, 2);
    CHECK_EQ_INT(gate_node_held(g, "v"), 0);
    gate_free(g);
}

/* Held messages are never left without a bound: an operator's challenge that cannot be sent
 * drops them; a reload that turns attestation.required off releases them. */
static void test_hold_bounds(void)
{
    struct fake f = {.enrolled = {"n1", "n2"}};
    struct gate *g = mk(&f, &cfg_hold);

    CHECK_EQ_INT(gate_on_up(g, "n1", 10 * S, 1000).decision, GATE_HOLD);
    f.challenge_rc = -ENOTCONN;
    CHECK_EQ_INT(gate_request_challenge(g, "n1", 11 * S, 1001), -ENOTCONN);
    CHECK_EQ_INT(f.dropped_expired, 1);
    CHECK_EQ_INT(gate_node_held(g, "n1"), 0);
    f.challenge_rc = 0;
    CHECK_EQ_INT(gate_on_up(g, "n2", 12 * S, 1002).decision, GATE_HOLD);
    CHECK_EQ_INT(gate_on_up(g, "n2", 12 * S, 1002).decision, GATE_HOLD);
    struct gate_config off = cfg_hold;
    off.required = false;
    gate_reload(g, &off);
    CHECK_EQ_INT(f.released, 2);
    CHECK_EQ_INT(gate_node_held(g, "n2"), 0);
    CHECK_EQ_INT(gate_on_up(g, "n2", 13 * S, 1003).decision, GATE_RELAY);
    gate_free(g);
}

static struct gate *mk_n(struct fake *f, const struct gate_config *cfg, size_t max_nodes)
{
    static const struct gate_ops ops0 = {f_load, f_verify, f_peek, f_random, f_act, NULL};
    struct gate_ops ops = ops0;
    struct gate *g = NULL;
    ops.ctx = f;
    if (gate_new(cfg, &ops, max_nodes, &g) != 0)
        abort();
    return g;
}

/* Storm control (issue 15): N nodes arrive at once with K slots. At most K challenges are
 * ever outstanding, the rest wait; every answer gives its slot to the next node in arrival
 * order; in the end every node was challenged exactly once, in arrival order, and is
 * trusted with its held message released. */
static void test_storm(void)
{
    enum { N = 1500, K = 16 };
    static struct fake f; /* large: sent_node, sent_nonce */
    struct gate_config cfg = cfg_default;
    char id[16];
    size_t out = 0, queued = 0;
    cfg.hold_per_node = 4;
    cfg.challenges_max = K;
    cfg.nonce_ttl_s = 60;
    memset(&f, 0, sizeof(f));
    f.enroll_storm = true;
    f.rnd = 0;
    struct gate *g = mk_n(&f, &cfg, N + 8);
    for (unsigned i = 0; i < N; i++) {
        snprintf(id, sizeof(id), "s%04u", i);
        CHECK_EQ_INT(gate_on_up(g, id, 1 * S + i, 1000).decision, GATE_HOLD);
        CHECK_EQ_INT(gate_node_challenged(g, id), i < K);
        CHECK_EQ_INT(gate_node_queued(g, id), i >= K);
    }
    gate_challenges(g, &out, &queued);
    CHECK_EQ_INT((int)out, K);
    CHECK_EQ_INT((int)queued, N - K);
    CHECK_EQ_INT(f.challenges, K);
    /* a waiting node's later message is held too (it is pending), and not challenged twice */
    CHECK_EQ_INT(gate_on_up(g, "s1499", 2 * S, 1001).decision, GATE_HOLD);
    CHECK_EQ_INT(f.challenges, K);
    /* answer in the order sent; every answer frees one slot for the next in line */
    unsigned answered = 0, max_out = 0;
    while (answered < f.n_sent && answered < N) {
        uint8_t e[EV_LEN];
        ev(e, f.sent_nonce[answered], EV_GOOD);
        (void)gate_on_evidence(g, f.sent_node[answered], e, sizeof(e), 3 * S + answered, 1002);
        answered++;
        gate_challenges(g, &out, &queued);
        if (out > max_out)
            max_out = (unsigned)out;
    }
    CHECK_EQ_INT((int)max_out, K);
    CHECK_EQ_INT((int)answered, N);
    CHECK_EQ_INT(f.challenges, N);
    unsigned in_order = 0;
    for (unsigned i = 0; i < N; i++) {
        snprintf(id, sizeof(id), "s%04u", i);
        in_order += strcmp(f.sent_node[i], id) == 0;
    }
    CHECK_EQ_INT((int)in_order, N);
    CHECK_EQ_INT(f.trusted, N);
    CHECK_EQ_INT(f.released, N + 1);
    CHECK_EQ_INT(f.releases, N);
    gate_challenges(g, &out, &queued);
    CHECK_EQ_INT((int)out, 0);
    CHECK_EQ_INT((int)queued, 0);
    CHECK_EQ_INT(gate_node_verdict(g, "s0777"), GATE_TRUSTED);
    CHECK_EQ_INT(gate_on_up(g, "s0777", 4 * S, 1003).decision, GATE_RELAY);
    gate_free(g);
}

/* Expiry and removal free slots; the timer fires at the earliest expiry; an operator's
 * request goes to the front of the queue. */
static void test_storm_slots(void)
{
    static struct fake f;
    struct gate_config cfg = cfg_default;
    size_t out = 0, queued = 0;
    cfg.hold_per_node = 4;
    cfg.challenges_max = 2;
    cfg.nonce_ttl_s = 5;
    memset(&f, 0, sizeof(f));
    f.enroll_storm = true;
    struct gate *g = mk_n(&f, &cfg, 16);
    CHECK_EQ_INT(gate_on_up(g, "sa", 10 * S, 1000).decision, GATE_HOLD);
    CHECK_EQ_INT(gate_on_up(g, "sb", 11 * S, 1001).decision, GATE_HOLD);
    CHECK_EQ_INT(gate_on_up(g, "sc", 12 * S, 1002).decision, GATE_HOLD);
    CHECK_EQ_INT(gate_on_up(g, "sd", 12 * S, 1002).decision, GATE_HOLD);
    CHECK(gate_node_challenged(g, "sa") && gate_node_challenged(g, "sb"));
    CHECK(gate_node_queued(g, "sc") && gate_node_queued(g, "sd"));
    /* the timer: nothing expired yet, next at sa's expiry */
    CHECK_EQ_INT(gate_on_timer(g, 13 * S, 1003), 15 * S);
    /* sa expires: its held message is dropped, its slot goes to sc (sent now: 5 s from now) */
    CHECK_EQ_INT(gate_on_timer(g, 15 * S, 1005), 16 * S);
    CHECK_EQ_INT(f.timeouts, 1);
    CHECK_EQ_INT(f.dropped_expired, 1);
    CHECK(!gate_node_challenged(g, "sa") && gate_node_challenged(g, "sc"));
    CHECK(gate_node_queued(g, "sd"));
    /* an operator's request for se jumps the queue: it is next, before sd */
    CHECK_EQ_INT(gate_request_challenge(g, "se", 15 * S, 1005), 0);
    CHECK(gate_node_queued(g, "se") && !gate_node_challenged(g, "se"));
    /* sb removed: its slot goes to se, not sd */
    gate_forget(g, "sb", true, 16 * S, 1006);
    CHECK_EQ_INT(f.dropped_removed, 1);
    CHECK(gate_node_challenged(g, "se") && gate_node_queued(g, "sd"));
    CHECK_EQ_INT(strcmp(f.sent_node[f.n_sent - 1], "se"), 0);
    /* sc answers: sd gets the slot; its nonce's lifetime starts now (17 s + 5 s) */
    uint8_t e[EV_LEN];
    ev(e, f.sent_nonce[2], EV_GOOD);
    CHECK_EQ_INT(strcmp(f.sent_node[2], "sc"), 0);
    (void)gate_on_evidence(g, "sc", e, sizeof(e), 17 * S, 1007);
    CHECK_EQ_INT(gate_node_verdict(g, "sc"), GATE_TRUSTED);
    CHECK(gate_node_challenged(g, "sd"));
    CHECK_EQ_INT(gate_on_timer(g, 21 * S, 1011), 22 * S); /* sd's expiry, 5 s after 17 s */
    CHECK_EQ_INT(f.timeouts, 2);                          /* se's (sent at 16 s) */
    gate_challenges(g, &out, &queued);
    CHECK_EQ_INT((int)out, 1);
    CHECK_EQ_INT((int)queued, 0);
    gate_free(g);
}

static void test_strings(void)
{
    for (int r = 0; r < GATE_REASON__COUNT; r++) {
        const char *s = gate_reason_str((enum gate_reason)r);
        CHECK(s != NULL && s[0] != '\0' && strchr(s, ' ') == NULL);
    }
    CHECK(strcmp(gate_reason_str(GATE_R_BAD_SIGNATURE), "bad_signature") == 0);
    CHECK(strcmp(gate_reason_str(GATE_R_NONCE_MISMATCH), "nonce_mismatch") == 0);
    CHECK(strcmp(gate_reason_str(GATE_R_PROFILE), "profile_not_allowed") == 0);
    CHECK(strcmp(gate_reason_str((enum gate_reason)999), "invalid") == 0);
    for (int v = 0; v < GATE_VERDICT__COUNT; v++)
        CHECK(gate_verdict_str((enum gate_verdict)v) != NULL);
    CHECK(strcmp(gate_verdict_str(GATE_NONE), "unknown") == 0);
}

int main(void)
{
    test_trusted_and_duplicate();
    test_unsolicited();
    test_flood(1e6);
    test_flood(50);
    test_unchanged_not_written();
    test_expiry();
    test_reload();
    test_challenge_accepted();
    test_credit_absence();
    test_restart_redelivery();
    test_profile();
    test_hold_release();
    test_hold_drop();
    test_hold_release_retry();
    test_hold_restore();
    test_hold_bounds();
    test_storm();
    test_storm_slots();
    test_strings();
    return check_finish();
}
