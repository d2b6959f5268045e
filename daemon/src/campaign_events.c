/* The nodes' messages in their campaign: ota-ack, ota-chunk-request and ota-status from the
 * edge, and the attestation gate's verdict on a node's token (campaign.h, "Node events").
 * Each finds the node in progress, refreshes its liveness and applies the message as a
 * transition of campaign.c, in one call (one transaction, then the actions).
 *
 * Not here: what a transition does (campaign.c), the chunks themselves (ota_xfer.c reads
 * them from the store; a chunk request only moves the node's offset here). */
#define _GNU_SOURCE
#include "campaign_internal.h"

#include <errno.h>
#include <fleetgw/hex.h>
#include <stdio.h>
#include <string.h>

/* The node's campaign entry (in progress), liveness refreshed. */
static int node_event(struct campaign_engine *e, const char *node, const char *campaign,
                      int64_t now, struct campaign **rc, size_t *ri)
{
    struct campaign *c = NULL;
    long i = -1;
    if (campaign != NULL) {
        c = campaign_find_live(e, campaign);
        if (c != NULL)
            i = campaign_find_node(c, node);
    } else {
        for (c = e->list; c != NULL; c = c->next) {
            if (c->gone)
                continue;
            i = campaign_find_node(c, node);
            if (i >= 0 && in_progress(c->nodes[i].st))
                break;
        }
    }
    if (c == NULL || i < 0 || !in_progress(c->nodes[i].st))
        return -ENOENT;
    campaign_call_begin(e, now);
    struct cnode *n = &c->nodes[i];
    n->activity = now;
    if (!n->answered) {
        n->answered = true;
        campaign_save_node(e, c, (size_t)i);
    }
    *rc = c;
    *ri = (size_t)i;
    return 0;
}

/* Node i's step succeeded: it moves on to st, the reason of a failed step before cleared. */
static void step_done(struct campaign_engine *e, struct campaign *c, size_t i,
                      enum campaign_node_state st)
{
    campaign_set_state(c, i, st);
    campaign_clear_reason(&c->nodes[i]);
    campaign_save_node(e, c, i);
}

/* Ends an event that may have made a node final or freed a slot: the wave advances and new
 * nodes are offered, then the call ends. Its result: the write's error, else r. */
static int event_end(struct campaign_engine *e, struct campaign *c, int r)
{
    campaign_progress(e, c);
    int w = campaign_call_end(e);
    return w < 0 ? w : r;
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
        step_done(e, c, i, CN_DOWNLOADING);
    } else if (reason == MSG_REASON_BUSY) {
        campaign_step_failed(e, c, i, CN_REJECTED, "busy");
    } else {
        campaign_node_final(e, c, i, CN_REJECTED, campaign_ota_reason_str(reason));
    }
    return event_end(e, c, r);
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
        step_done(e, c, i, CN_DOWNLOADING);
    } else {
        r = -EPROTO;
    }
    int w = campaign_call_end(e);
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
        if (state == MSG_OTA_DOWNLOADING && n->st != CN_DOWNLOADING && before_staged)
            step_done(e, c, i, CN_DOWNLOADING);
        break;
    case MSG_OTA_STAGED:
        if (before_staged) {
            n->offset = offset;
            step_done(e, c, i, CN_STAGED);
        } else if (n->st != CN_STAGED) {
            r = -EPROTO;
        }
        break;
    case MSG_OTA_TESTING:
        if (before_staged || n->st == CN_STAGED) {
            step_done(e, c, i, CN_TESTING);
            campaign_queue(e, CAMPAIGN_ACT_CHALLENGE, c, i);
        }
        break;
    case MSG_OTA_CONFIRMED:
        /* success only after the measured token (CONFIRMING): a node's word alone is not */
        if (n->st == CN_CONFIRMING)
            campaign_node_final(e, c, i, CN_SUCCEEDED, NULL);
        else
            r = -EPROTO;
        break;
    case MSG_OTA_FAILED:
        if (n->st != CN_RETRY_WAIT) {
            char why[64];
            snprintf(why, sizeof(why), "node failed: %s", campaign_ota_reason_str(reason));
            campaign_step_failed(e, c, i, CN_FAILED, why);
        }
        break;
    case MSG_OTA_REVERTED:
        campaign_node_finalf(e, c, i, CN_REVERTED, "node reverted: %s",
                             campaign_ota_reason_str(reason));
        break;
    default:
        r = -EINVAL;
        break;
    }
    return event_end(e, c, r);
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
        campaign_node_finalf(e, c, i, CN_FAILED, "attestation: %s",
                             reason && reason[0] ? reason : "not trusted");
    } else if (measured == NULL || memcmp(measured, c->spec.digest, OTA_DIGEST_LEN) != 0) {
        char hex[9] = "unknown";
        if (measured != NULL)
            hex_encode(measured, 4, hex);
        campaign_node_finalf(e, c, i, CN_REVERTED, "measured %s not the campaign image", hex);
    } else {
        campaign_set_state(c, i, CN_CONFIRMING);
        c->nodes[i].activity = now;
        campaign_save_node(e, c, i);
        campaign_queue(e, CAMPAIGN_ACT_CONFIRM, c, i);
    }
    return event_end(e, c, r);
}
