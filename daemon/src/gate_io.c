/* gate_io.c: carries out the attestation gate's actions (gate.h) for fleetgwd. gate.c
 * decides; this file reads the registry for it, verifies evidence with attest.c, draws
 * nonces from getrandom, publishes challenges on the edge client, writes verdicts to the
 * registry, queues the retained node state upstream through the spool, counts and logs,
 * and keeps the one expiry timer (attest_timer) armed at the earliest outstanding expiry. */
#define _GNU_SOURCE
#include "daemon.h"
#include "ota.h"

#include <errno.h>
#include <fleetgw/crypto.h>
#include <fleetgw/ident.h>
#include <fleetgw/msg.h>
#include <fleetgw/tpm_identity.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>

_Static_assert(REGISTRY_SEALED_MAX == TPM_SEAL_BLOB_MAX, "a registry blob is a tpm_seal blob");

/* gate_record.pub of a node with a symmetric IAK: GATE_PUB_SYMMETRIC, then its IAK id (the
 * gate passes pub through untouched; gate_verify tells the two kinds apart by it). */
#define GATE_PUB_SYMMETRIC 0x00

static void attest_publish_state(struct daemon *d, const char *node, const char *verdict,
                                 const char *reason, const char *fw, const char *profile,
                                 int64_t when)
{
    char topic[SPOOL_TOPIC_MAX];
    json_object *o = json_object_new_object();
    json_object_object_add(o, "verdict", json_object_new_string(verdict));
    json_object_object_add(o, "reason", json_object_new_string(reason));
    json_object_object_add(o, "fw_version", json_object_new_string(fw));
    json_object_object_add(o, "profile", json_object_new_string(profile ? profile : ""));
    json_object_object_add(o, "time", json_object_new_int64(when));
    const char *js = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
    const char *prefix = d->cfg.uplink.topic_prefix;
    int r = -EINVAL;
    if (msg_cloud_topic_build(MSG_CLOUD_NODE_STATE, prefix, strlen(prefix), node, strlen(node),
                              NULL, 0, topic, sizeof(topic), NULL) == MSG_OK)
        r = spool_append(d->spool, node, topic, js, strlen(js), when, true, NULL);
    if (r < 0)
        log_event(LOG_ERR, node, "spool_error", "cannot queue the node state upstream: %s",
                  strerror(-r));
    json_object_put(o);
}

/* Silent nodes are found by one timer (d->attest_timer) armed at the earliest outstanding
 * expiry; gate_on_timer() sweeps the node table at most once per GATE_SWEEP_MIN_US and only
 * while a challenge is outstanding. */
void attest_timer_arm(struct daemon *d, uint64_t at)
{
    int on = SD_EVENT_OFF;
    uint64_t cur = 0;
    if (d->attest_timer == NULL)
        return;
    if (sd_event_source_get_enabled(d->attest_timer, &on) >= 0 && on != SD_EVENT_OFF &&
        sd_event_source_get_time(d->attest_timer, &cur) >= 0 && cur <= at)
        return;
    int r = sd_event_source_set_time(d->attest_timer, at);
    if (r >= 0)
        r = sd_event_source_set_enabled(d->attest_timer, SD_EVENT_ONESHOT);
    if (r < 0)
        log_err("cannot arm the attestation timer: %s", strerror(-r));
}

/* The earliest outstanding challenge's expiry came: the gate expires what is due. Verdicts
 * it wrote to the registry have state messages and counters in the spool: daemon_flush()
 * commits them right after this event, not at the next group commit. */
int attest_timer_cb(sd_event_source *s, uint64_t usec, void *u)
{
    (void)s;
    (void)usec;
    struct daemon *d = u;
    d->gate_wrote = false;
    uint64_t next = gate_on_timer(d->gate, now_us(), wall_s());
    if (next != 0)
        attest_timer_arm(d, next);
    if (d->gate_wrote)
        d->commit_wanted = true;
    return 0;
}

static int gate_load(void *u, const char *node, struct gate_record *ret)
{
    struct daemon *d = u;
    struct registry_node rn;
    int r = registry_get(d->registry, node, &rn);
    if (r < 0) {
        if (r != -ENOENT)
            log_event(LOG_ERR, node, "registry_error", "cannot read the registry: %s",
                      strerror(-r));
        return r;
    }
    if (rn.symmetric) {
        memset(ret->pub, 0, sizeof(ret->pub));
        ret->pub[0] = GATE_PUB_SYMMETRIC;
        memcpy(ret->pub + 1, rn.iak_id, sizeof(rn.iak_id));
    } else {
        memcpy(ret->pub, rn.iak_pub, sizeof(ret->pub));
    }
    ret->verdict = strcmp(rn.verdict, "trusted") == 0       ? GATE_TRUSTED
                   : strcmp(rn.verdict, "quarantined") == 0 ? GATE_QUARANTINED
                                                            : GATE_NONE;
    ret->verdict_time = rn.verdict_time;
    snprintf(ret->fw_version, sizeof(ret->fw_version), "%s", rn.fw_version);
    snprintf(ret->profile, sizeof(ret->profile), "%s", rn.profile);
    return 0;
}

/* Evidence of a node with a symmetric IAK: its sealed key is read from the registry, unsealed
 * by the TPM (uplink.tcti) for this one verification and wiped right after. */
static void verify_symmetric(struct daemon *d, const struct attest_ref_value *extra, size_t n_extra,
                             const uint8_t *msg, size_t len, const uint8_t pub[GATE_PUB_LEN],
                             const uint8_t nonce[GATE_NONCE_LEN], struct attest_result *res)
{
    char id[REGISTRY_ID_LEN + 1], err[256];
    uint8_t key[TPM_SEAL_MAX];
    size_t key_len = 0;
    struct tpm *t = NULL;
    struct registry_node *rn = calloc(1, sizeof(*rn));
    int r = -ENOMEM;

    memset(res, 0, sizeof(*res));
    res->code = GATE_R_INTERNAL;
    ident_sym_node_id(pub + 1, id);
    snprintf(err, sizeof(err), "out of memory");
    if (rn == NULL)
        goto out;
    r = registry_get(d->registry, id, rn);
    if (r == 0 && (!rn->symmetric || memcmp(rn->iak_id, pub + 1, sizeof(rn->iak_id)) != 0))
        r = -ESTALE; /* re-enrolled since the gate read the row */
    if (r < 0) {
        snprintf(err, sizeof(err), "cannot read the node's sealed key from the registry: %s",
                 strerror(-r));
        goto out;
    }
    if (d->cfg.uplink.tcti[0] == '\0') {
        r = -ENODEV;
        snprintf(err, sizeof(err),
                 "the node has a symmetric IAK and uplink.tcti is empty: no TPM to unseal it");
        goto out;
    }
    r = tpm_open(d->cfg.uplink.tcti, &t, err, sizeof(err));
    if (r == 0)
        r = tpm_unseal(t, rn->iak_sealed, rn->iak_sealed_len, key, sizeof(key), &key_len, err,
                       sizeof(err));
    tpm_close(t);
    if (r < 0)
        goto out;
    attest_evaluate_mac0(d->policy, extra, n_extra, msg, len, key, key_len, nonce, GATE_NONCE_LEN,
                         res);
out:
    crypto_wipe(key, sizeof(key));
    if (rn != NULL) {
        crypto_wipe(rn, sizeof(*rn));
        free(rn);
    }
    if (r < 0) {
        res->trusted = false;
        res->code = GATE_R_INTERNAL;
        snprintf(res->reason, sizeof(res->reason), "cannot unseal the node's IAK: %.120s", err);
    }
}

/* A node in an OTA test (it runs a campaign's image in test mode) is judged with that image
 * as one more reference value, for each signer its class allows: the image is not in the
 * policy until its campaign completes. The OTA module then hears the judgement and the
 * measurement (it confirms the update only if the token measured the campaign's image). */
static void gate_verify(void *u, const char *node, const uint8_t *msg, size_t len,
                        const uint8_t pub[GATE_PUB_LEN], const uint8_t nonce[GATE_NONCE_LEN],
                        struct gate_judgement *ret)
{
    struct daemon *d = u;
    struct attest_result res;
    struct attest_ref_value extra[OTA_CLASS_SIGNERS];
    uint8_t digest[OTA_DIGEST_LEN], signers[OTA_CLASS_SIGNERS][OTA_DIGEST_LEN];
    size_t n_signers = 0;
    char version[65];
    bool in_test = ota_xfer_node_image(d, node, digest, signers, &n_signers, version);
    for (size_t i = 0; in_test && i < n_signers; i++) {
        memcpy(extra[i].measurement, digest, sizeof(digest));
        memcpy(extra[i].signer_id, signers[i], sizeof(signers[i]));
        snprintf(extra[i].version, sizeof(extra[i].version), "%s", version);
    }
    if (pub[0] == GATE_PUB_SYMMETRIC)
        verify_symmetric(d, in_test ? extra : NULL, in_test ? n_signers : 0, msg, len, pub, nonce,
                         &res);
    else
        attest_evaluate_extra(d->policy, in_test ? extra : NULL, in_test ? n_signers : 0, msg, len,
                              pub, nonce, GATE_NONCE_LEN, &res);
    ret->trusted = res.trusted;
    ret->code = res.code;
    memcpy(ret->reason, res.reason, sizeof(ret->reason));
    memcpy(ret->fw_version, res.fw_version, sizeof(ret->fw_version));
    ret->has_measurement = res.has_measurement;
    memcpy(ret->measurement, res.measurement, sizeof(ret->measurement));
    memcpy(ret->profile, res.profile, sizeof(ret->profile));
    if (in_test)
        ota_xfer_attested(d, node, res.trusted, res.has_measurement ? res.measurement : NULL,
                          res.reason);
}

static bool gate_peek_nonce(void *u, const uint8_t *msg, size_t len, uint8_t nonce[GATE_NONCE_LEN])
{
    (void)u;
    uint8_t buf[64];
    size_t n = 0;
    bool ok = attest_evidence_nonce(msg, len, buf, sizeof(buf), &n) && n == GATE_NONCE_LEN;
    if (ok)
        memcpy(nonce, buf, GATE_NONCE_LEN);
    return ok;
}

static int gate_random(void *u, uint8_t *buf, size_t len)
{
    (void)u;
    return getrandom(buf, len, 0) == (ssize_t)len ? 0 : -EIO;
}

/* A challenge on fleet/<id>/attest/challenge. MOSQ_ERR_NO_CONN: libmosquitto keeps the
 * message queued and sends it after the reconnect, so it is outstanding like a sent one. */
static int gate_send_challenge(struct daemon *d, const struct gate_action *a)
{
    uint8_t buf[128];
    size_t len = 0;
    char topic[MSG_TOPIC_MAX + 1];
    if (attest_challenge_encode(a->nonce, a->ttl_s, buf, sizeof(buf), &len) < 0 ||
        msg_topic_build(MSG_TOPIC_ATTEST_CHALLENGE, a->node, strlen(a->node), NULL, 0, topic,
                        sizeof(topic), NULL) != MSG_OK) {
        log_event(LOG_ERR, a->node, "challenge_error", "cannot make a challenge");
        return -EINVAL;
    }
    int rc = mosquitto_publish(d->edge, NULL, topic, (int)len, buf, 1, false);
    if (rc != MOSQ_ERR_SUCCESS && rc != MOSQ_ERR_NO_CONN) {
        log_event(LOG_WARNING, a->node, "challenge_error", "cannot send a challenge: %s",
                  mosquitto_strerror(rc));
        return -EIO;
    }
    attest_timer_arm(d, a->expiry_us);
    log_event(LOG_INFO, a->node, "challenge", "attestation challenge %s (nonce valid %u s)",
              rc == MOSQ_ERR_SUCCESS ? "sent" : "queued until the edge broker is back", a->ttl_s);
    return 0;
}

/* A node's held messages (issue 15): released to the drain in their order when it is
 * trusted, or deleted and counted under the drop reason (counters "released", and the
 * reason's). Written in the spool's open transaction: durable with the next commit. */
static int gate_settle_held(struct daemon *d, const struct gate_action *a)
{
    uint64_t n = 0;
    char what[160];
    int r;
    if (a->kind == GATE_ACT_RELEASE) {
        r = spool_release(d->spool, a->node, &n);
        if (r < 0) {
            log_event(LOG_ERR, a->node, "spool_error",
                      "cannot release the node's held messages: %s (tried again at its next "
                      "message)",
                      strerror(-r));
            return r;
        }
        if (n > 0) {
            r = spool_count(d->spool, "released", n);
            if (r < 0)
                log_err("cannot count released: %s", strerror(-r));
            log_event(LOG_INFO, a->node, "released",
                      "%llu held message(s) released upstream: the node is %s",
                      (unsigned long long)n,
                      d->cfg.attestation.required ? "trusted" : "relayed without attestation");
        }
        return 0;
    }
    r = spool_drop_held(d->spool, a->node, &n);
    if (r < 0) {
        log_event(LOG_ERR, a->node, "spool_error",
                  "cannot delete the node's held messages: %s (settled again at the next start)",
                  strerror(-r));
        return r;
    }
    if (n > 0) {
        snprintf(what, sizeof(what), "%llu held message(s) of a node whose attestation ended %s",
                 (unsigned long long)n,
                 strcmp(a->counter, "quarantined") == 0    ? "quarantined"
                 : strcmp(a->counter, "hold_expired") == 0 ? "without a verdict in time"
                                                           : "with its removal");
        drop_count_n(&d->drops, d->spool, a->node, a->counter, n, what);
        r = spool_count(d->spool, "held_dropped", n); /* held = released + held_dropped */
        if (r < 0)
            log_err("cannot count held_dropped: %s", strerror(-r));
    }
    return 0;
}

static void restore_one(const char *node, uint64_t n, void *u)
{
    struct daemon *d = u;
    log_event(LOG_NOTICE, node, "held",
              "%llu message(s) held at the last stop: settled by the node's verdict",
              (unsigned long long)n);
    gate_restore_held(d->gate, node, n, now_us(), wall_s());
}

/* At start: the held rows a previous run left are the gate's again (gate_restore_held). */
void gate_io_restore_held(struct daemon *d)
{
    if (spool_held_messages(d->spool) == 0)
        return;
    d->gate_wrote = false;
    int r = spool_held_foreach(d->spool, restore_one, d);
    if (r < 0)
        log_event(LOG_ERR, NULL, "spool_error",
                  "cannot read the held messages: %s (they stay held until the next start)",
                  strerror(-r));
    if (d->gate_wrote)
        d->commit_wanted = true; /* daemon_flush commits it */
}

void gate_io_batch(struct daemon *d)
{
    if (registry_batch_open(d->registry))
        return;
    int r = registry_batch_begin(d->registry);
    if (r < 0) /* each write then commits on its own */
        log_event(LOG_WARNING, NULL, "registry_error",
                  "cannot start a registry batch: %s (writing node by node)", strerror(-r));
    else
        d->commit_wanted = true; /* daemon_flush commits it at the end of this event */
}

void gate_io_commit(struct daemon *d)
{
    int r = registry_batch_commit(d->registry);
    if (r < 0)
        log_event(LOG_ERR, NULL, "registry_error",
                  "cannot commit the registry batch: %s (the verdicts and last-seen times since "
                  "the last commit are lost: such nodes are challenged again after a restart)",
                  strerror(-r));
}

static int gate_act(void *u, const struct gate_action *a)
{
    struct daemon *d = u;
    int r = 0;
    switch (a->kind) {
    case GATE_ACT_CHALLENGE:
        return gate_send_challenge(d, a);
    case GATE_ACT_PERSIST:
        d->gate_wrote = true;
        gate_io_batch(d);
        r = registry_record_verdict(d->registry, a->node, gate_verdict_str(a->verdict), a->reason,
                                    a->fw_version, a->profile, a->time, a->seen);
        if (r < 0)
            log_event(LOG_ERR, a->node, "registry_error", "cannot persist the verdict: %s",
                      strerror(-r));
        return r;
    case GATE_ACT_PUBLISH:
        d->gate_wrote = true;
        attest_publish_state(d, a->node, gate_verdict_str(a->verdict), a->reason, a->fw_version,
                             a->profile, a->time);
        return 0;
    case GATE_ACT_COUNT:
        r = spool_count(d->spool, a->counter, 1);
        if (r < 0)
            log_event(LOG_ERR, a->node, a->counter, "cannot count %s: %s", a->counter,
                      strerror(-r));
        return r;
    case GATE_ACT_NOTE:
        log_event(a->priority, a->node, a->token, "%s", a->text);
        return 0;
    case GATE_ACT_RELEASE:
    case GATE_ACT_DROP_HELD:
        d->gate_wrote = true;
        return gate_settle_held(d, a);
    }
    return -EINVAL;
}

struct gate_config gate_config_of(const struct daemon *d)
{
    return (struct gate_config){.required = d->cfg.attestation.required,
                                .judging = d->policy != NULL,
                                .nonce_ttl_s = d->cfg.attestation.nonce_ttl_s,
                                .interval_s = d->cfg.attestation.interval_s,
                                .per_node_rate = d->cfg.limits.per_node_rate,
                                .per_node_burst = d->cfg.limits.per_node_burst,
                                .evidence_max = MSG_TOKEN_MAX + 16,
                                .hold_per_node = (unsigned)d->cfg.attestation.hold_per_node,
                                .challenges_max = (unsigned)d->cfg.attestation.challenges_max};
}

/* The node table, sized NODE_TABLE_MAX, with this file's callbacks. */
int gate_io_start(struct daemon *d)
{
    static const struct gate_ops gops = {gate_load,   gate_verify, gate_peek_nonce,
                                         gate_random, gate_act,    NULL};
    struct gate_ops ops = gops;
    ops.ctx = d;
    struct gate_config gc = gate_config_of(d);
    return gate_new(&gc, &ops, NODE_TABLE_MAX, &d->gate);
}

/* One image of attestation.image_dir: logged with its outcome. */
static void image_report(void *ctx, const char *file, bool accepted, const char *detail)
{
    const char *dir = ctx;
    if (accepted)
        log_info("attestation: reference value from the image %s/%s (version %s)", dir, file,
                 detail);
    else
        log_event(LOG_WARNING, NULL, "image_refused",
                  "attestation: the image %s/%s is not a reference value: %s", dir, file, detail);
}

/* The attestation policy of cfg (NULL, and 0, when it names no reference source): the
 * reference file and attestation.image_dir, plus the images completed OTA campaigns released
 * (<ota.store_dir>/released, when it exists), verified with the same signer keys. */
int policy_load(const struct config *cfg, struct attest_policy **ret, char *err, size_t errlen)
{
    char released[CONFIG_PATH_MAX + 16];
    struct stat st;
    struct attest_policy *p = NULL, *q = NULL;
    int r = 0;

    *ret = NULL;
    snprintf(released, sizeof(released), "%s/released", cfg->ota.store_dir);
    bool has_released = cfg->ota.store_dir[0] != '\0' && cfg->attestation.signer_keys[0] &&
                        stat(released, &st) == 0 && S_ISDIR(st.st_mode);
    if (cfg->attestation.reference_file[0] != '\0' || cfg->attestation.image_dir[0] != '\0')
        r = attest_policy_build(cfg->attestation.reference_file, cfg->attestation.image_dir,
                                cfg->attestation.signer_keys, image_report,
                                (void *)cfg->attestation.image_dir, &p, err, errlen);
    if (r == 0 && has_released) {
        r = attest_policy_build(NULL, released, cfg->attestation.signer_keys, image_report,
                                released, &q, err, errlen);
        if (r == 0 && p == NULL) {
            p = q;
            q = NULL;
        } else if (r == 0) {
            r = attest_policy_add(&p, q, err, errlen);
        }
    }
    attest_policy_free(q);
    if (r == 0 && p != NULL && attest_policy_set_profiles(p, cfg->attestation.profiles) < 0) {
        /* config_parse() refuses an empty or unknown profile list: not reached */
        snprintf(err, errlen, "attestation.profiles: no valid profile");
        r = -EINVAL;
    }
    if (r < 0) {
        attest_policy_free(p);
        return r;
    }
    *ret = p;
    return 0;
}

/* Logs where the running policy's reference values come from (at start). */
void policy_report(const struct daemon *d)
{
    const struct config *c = &d->cfg;
    if (d->policy != NULL)
        log_info("attestation: %zu reference value(s)%s%s%s%s%s", attest_policy_count(d->policy),
                 c->attestation.reference_file[0] ? " from " : "", c->attestation.reference_file,
                 !c->attestation.image_dir[0]       ? ""
                 : c->attestation.reference_file[0] ? " and the images in "
                                                    : " from the images in ",
                 c->attestation.image_dir,
                 c->attestation.required ? "" : " (not required for relaying)");
    if (!c->attestation.required)
        log_event(LOG_WARNING, NULL, "attestation_off",
                  "attestation.required is false: telemetry of every node on a valid topic is "
                  "relayed without attestation");
}

/* --check-config: the attestation sources too (the reference file and the signed images,
 * each one reported), as the daemon would load them. 0, or negative (logged). */
int policy_check(const struct config *cfg, const char *path)
{
    char perr[512];
    struct attest_policy *pol = NULL;
    int r = policy_load(cfg, &pol, perr, sizeof(perr));
    if (r < 0) {
        log_event(LOG_ERR, NULL, "config_invalid", "attestation: %s", perr);
        return r;
    }
    if (pol != NULL)
        printf("%s: %zu attestation reference value(s)\n", path, attest_policy_count(pol));
    attest_policy_free(pol);
    return 0;
}

/* SIGHUP: the policy of the new configuration n replaces the running one; on failure the
 * running one stays (negative, logged). The gate's parameters follow in on_sighup. */
int policy_reload(struct daemon *d, const struct config *n)
{
    struct attest_policy *np = NULL;
    char perr[512];
    int r = policy_load(n, &np, perr, sizeof(perr));
    if (r < 0) {
        log_event(LOG_ERR, NULL, "config_invalid",
                  "reload refused, keeping the running configuration: attestation: %s", perr);
        return r;
    }
    attest_policy_free(d->policy);
    d->policy = np;
    if (np != NULL)
        log_notice("attestation: %zu reference value(s) loaded", attest_policy_count(np));
    return 0;
}
