/* ctl_api.c: the control request table and its handlers (ctl_api.h). */
#define _GNU_SOURCE
#include "ctl_api.h"
#include "clock.h"
#include "config.h"
#include "downq.h"
#include "gate.h"
#include "log.h"
#include "ota.h"
#include "registry.h"
#include "spool.h"

#include <errno.h>
#include <fleetgw/hex.h>
#include <fleetgw/ident.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static void json_add_str(json_object *o, const char *k, const char *v)
{
    json_object_object_add(o, k, json_object_new_string(v));
}

static void json_add_int(json_object *o, const char *k, int64_t v)
{
    json_object_object_add(o, k, json_object_new_int64(v));
}

static json_object *node_json(const struct registry_node *n, bool with_key)
{
    json_object *o = json_object_new_object();
    json_add_str(o, "id", n->id);
    json_add_str(o, "device_class", n->device_class);
    json_add_str(o, "fw_version", n->fw_version);
    json_add_str(o, "tags", n->tags);
    json_add_str(o, "verdict", n->verdict);
    json_add_str(o, "reason", n->reason);
    json_add_str(o, "profile", n->profile);
    json_add_int(o, "verdict_time", n->verdict_time);
    json_add_int(o, "last_seen", n->last_seen);
    json_add_int(o, "added", n->added);
    json_add_str(o, "iak", n->symmetric ? "hmac-sha256" : "p256");
    if (with_key) {
        char hex[2 * REGISTRY_PUB_LEN + 1];
        if (n->symmetric) /* the IAK id: the key itself stays sealed */
            hex_encode(n->iak_id, sizeof(n->iak_id), hex);
        else
            hex_encode(n->iak_pub, REGISTRY_PUB_LEN, hex);
        json_add_str(o, n->symmetric ? "iak_id" : "iak_pub", hex);
    }
    return o;
}

/* "outdated": the node runs an older version than the one its class's last completed OTA
 * campaign installed (that image no longer counts as current); absent when the class has no
 * completed campaign or OTA is not available. */
static void add_outdated(json_object *o, const struct registry_node *n, const struct ctl_api *api)
{
    struct ota_class_state st;
    unsigned a = 0, b = 0, c = 0, d = 0;
    if (api->ota == NULL || campaign_class_state(api->ota->engine, n->device_class, &st) < 0 ||
        !st.has_current)
        return;
    bool known = sscanf(n->fw_version, "%u.%u.%u+%u", &a, &b, &c, &d) == 4;
    uint64_t node = ((uint64_t)a << 56) | ((uint64_t)b << 48) | ((uint64_t)c << 32) | d;
    uint64_t cur = ((uint64_t)st.current.major << 56) | ((uint64_t)st.current.minor << 48) |
                   ((uint64_t)st.current.revision << 32) | st.current.build;
    char curtext[48];
    snprintf(curtext, sizeof(curtext), "%u.%u.%u+%u", (unsigned)st.current.major,
             (unsigned)st.current.minor, (unsigned)st.current.revision, (unsigned)st.current.build);
    json_object_object_add(o, "outdated", json_object_new_boolean(known && node < cur));
    json_add_str(o, "class_current", curtext);
}

struct node_list {
    json_object *arr;
    const struct ctl_api *api;
};

static int node_list_cb(const struct registry_node *n, void *u)
{
    struct node_list *l = u;
    json_object *o = node_json(n, false);
    add_outdated(o, n, l->api);
    json_object_array_add(l->arr, o);
    return 0;
}

static void counter_json_cb(const char *name, uint64_t n, void *u)
{
    json_add_int(u, name, (int64_t)n);
}

json_object *ctl_api_fail(const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    json_object *o = json_object_new_object();
    json_object_object_add(o, "ok", json_object_new_boolean(0));
    json_add_str(o, "error", msg);
    return o;
}

static json_object *status_json(const struct ctl_api *api, json_object *o)
{
    struct ctl_status st = {0};
    api->status(api->u, &st);
    json_add_str(o, "edge", st.edge);
    json_add_str(o, "cloud", st.cloud);
    if (st.cloud_endpoint != NULL)
        json_add_str(o, "cloud_endpoint", st.cloud_endpoint);
    json_add_int(o, "spooled_messages", (int64_t)spool_messages(api->spool));
    json_add_int(o, "spooled_bytes", spool_bytes(api->spool));
    json_add_int(o, "spool_max_bytes", api->cfg->spool.max_bytes);
    json_add_int(o, "held_messages", (int64_t)spool_held_messages(api->spool));
    json_add_int(o, "held_bytes", spool_held_bytes(api->spool));
    json_add_int(o, "held_max_bytes", api->cfg->attestation.hold_max_bytes);
    size_t out = 0, queued = 0;
    if (api->gate != NULL)
        gate_challenges(api->gate, &out, &queued);
    json_add_int(o, "challenges_outstanding", (int64_t)out);
    json_add_int(o, "challenges_queued", (int64_t)queued);
    json_add_int(o, "challenges_max", api->cfg->attestation.challenges_max);
    json_add_int(o, "inflight", st.inflight);
    json_add_int(o, "down_queued", (int64_t)downq_count(api->downq));
    json_add_int(o, "down_bytes", downq_bytes(api->downq));
    json_add_int(o, "down_max_bytes", api->cfg->spool.down_max_bytes);
    json_add_int(o, "down_inflight", st.down_inflight);
    json_object *ota = json_object_new_object();
    json_add_int(ota, "chunks", (int64_t)st.ota_chunks);
    json_add_int(ota, "bytes_sent", (int64_t)st.ota_bytes_sent);
    json_add_int(ota, "bytes_resent", (int64_t)st.ota_bytes_resent);
    json_object_object_add(o, "ota", ota);
    /* The uplink's shaping (issue 17): the backlog, the ceilings and the drain rate. */
    const struct shape_status *sh = &st.shape;
    json_object *up = json_object_new_object();
    json_add_str(up, "profile", sh->profile != NULL ? sh->profile : api->cfg->uplink.profile);
    json_add_int(up, "backlog_messages", (int64_t)sh->backlog_messages);
    json_add_int(up, "backlog_bytes", sh->backlog_bytes);
    json_add_int(up, "max_publish_per_s", sh->max_publish_per_s);
    json_add_int(up, "max_bytes_per_s", sh->max_bytes_per_s);
    json_add_int(up, "publishes_last_s", sh->publishes_last_s);
    json_object_object_add(up, "drain_rate", json_object_new_double(sh->drain_rate));
    json_object_object_add(up, "drain_eta_s", json_object_new_double(sh->drain_eta_s));
    json_object_object_add(up, "batch", json_object_new_boolean(sh->batch));
    json_add_int(up, "batches_sent", (int64_t)sh->batches_sent);
    json_add_int(up, "batch_messages", (int64_t)sh->batch_messages);
    json_add_int(up, "batches_resent", (int64_t)sh->batches_resent);
    json_object_object_add(up, "batch_fill", json_object_new_double(sh->batch_fill));
    json_add_str(up, "waiting", sh->waiting != NULL ? sh->waiting : "");
    json_object_object_add(o, "uplink", up);
    json_object *counters = json_object_new_object();
    if (spool_counters_foreach(api->spool, counter_json_cb, counters) < 0)
        log_err("cannot read the counters");
    json_object_object_add(o, "counters", counters);
    return o;
}

static json_object *registry_fail(json_object *o, int r)
{
    json_object_put(o);
    return ctl_api_fail("registry error: %s", strerror(-r));
}

static json_object *h_status(const struct ctl_request *req, const struct ctl_api *api,
                             json_object *o)
{
    (void)req;
    return status_json(api, o);
}

static json_object *h_spool(const struct ctl_request *req, const struct ctl_api *api,
                            json_object *o)
{
    (void)req;
    status_json(api, o);
    struct spool_msg m;
    if (spool_next(api->spool, 0, &m) == 0) {
        json_add_int(o, "oldest_age_s", wall_s() - m.ts);
        spool_msg_clear(&m);
    } else {
        json_add_int(o, "oldest_age_s", 0);
    }
    struct downq_msg dm;
    if (downq_next(api->downq, 0, &dm) == 0) {
        json_add_int(o, "down_oldest_age_s", wall_s() - dm.ts);
        downq_msg_clear(&dm);
    } else {
        json_add_int(o, "down_oldest_age_s", 0);
    }
    return o;
}

static json_object *h_nodes(const struct ctl_request *req, const struct ctl_api *api,
                            json_object *o)
{
    (void)req;
    struct node_list l = {.arr = json_object_new_array(), .api = api};
    json_object_object_add(o, "nodes", l.arr);
    int r = registry_foreach(api->registry, node_list_cb, &l);
    return r < 0 ? registry_fail(o, r) : o;
}

static json_object *h_node_add(const struct ctl_request *req, const struct ctl_api *api,
                               json_object *o)
{
    struct registry_node n;
    int r = registry_add(api->registry, req->iak_pub, req->device_class, wall_s(), &n);
    if (r == -EEXIST) {
        char id[REGISTRY_ID_LEN + 1];
        if (registry_node_id(req->iak_pub, id) < 0)
            id[0] = '\0';
        json_object_put(o);
        return ctl_api_fail("node %s is already enrolled", id);
    }
    if (r < 0)
        return registry_fail(o, r);
    log_event(LOG_NOTICE, n.id, "enrolled", "node enrolled (device class %s)", n.device_class);
    gate_forget(api->gate, n.id, false, now_us(), wall_s());
    json_object_object_add(o, "node", node_json(&n, true));
    return o;
}

/* A node with a symmetric IAK: fleetgwctl sealed the key with the TPM; only the blob and the
 * IAK id come here. */
static json_object *h_node_add_symmetric(const struct ctl_request *req, const struct ctl_api *api,
                                         json_object *o)
{
    struct registry_node n;
    int r = registry_add_symmetric(api->registry, req->iak_id, req->iak_sealed, req->iak_sealed_len,
                                   req->device_class, wall_s(), &n);
    if (r == -EEXIST || r == -EINVAL) {
        char id[REGISTRY_ID_LEN + 1];
        ident_sym_node_id(req->iak_id, id);
        json_object_put(o);
        return r == -EEXIST ? ctl_api_fail("node %s is already enrolled", id)
                            : ctl_api_fail("the sealed key of node %s is empty or larger than %d "
                                           "bytes",
                                           id, REGISTRY_SEALED_MAX);
    }
    if (r < 0)
        return registry_fail(o, r);
    log_event(LOG_NOTICE, n.id, "enrolled",
              "node enrolled with a symmetric IAK sealed by the TPM (device class %s)",
              n.device_class);
    gate_forget(api->gate, n.id, false, now_us(), wall_s());
    json_object_object_add(o, "node", node_json(&n, true));
    return o;
}

static json_object *h_node_show(const struct ctl_request *req, const struct ctl_api *api,
                                json_object *o)
{
    struct registry_node n;
    int r = registry_get(api->registry, req->id, &n);
    if (r == -ENOENT) {
        json_object_put(o);
        return ctl_api_fail("node %s is not enrolled", req->id);
    }
    if (r < 0)
        return registry_fail(o, r);
    json_object *nj = node_json(&n, true);
    add_outdated(nj, &n, api);
    json_object_object_add(o, "node", nj);
    return o;
}

/* An operator's request: a fresh nonce now, replacing any outstanding one. */
static json_object *h_attest(const struct ctl_request *req, const struct ctl_api *api,
                             json_object *o)
{
    struct registry_node n;
    int r = registry_get(api->registry, req->id, &n);
    if (r == 0)
        r = gate_request_challenge(api->gate, req->id, now_us(), wall_s());
    if (r == -ENOENT) {
        json_object_put(o);
        return ctl_api_fail("node %s is not enrolled", req->id);
    }
    if (r == -ENOSPC || r == -ENOTCONN) {
        json_object_put(o);
        return ctl_api_fail(r == -ENOSPC ? "too many nodes in the table to challenge %s"
                                         : "cannot send a challenge to %s: the edge broker "
                                           "client refused it (see the log)",
                            req->id);
    }
    if (r < 0)
        return registry_fail(o, r);
    log_event(LOG_NOTICE, req->id, "attest_requested", "re-attestation requested");
    json_add_str(o, "challenged", req->id);
    return o;
}

static json_object *h_node_remove(const struct ctl_request *req, const struct ctl_api *api,
                                  json_object *o)
{
    int r = registry_remove(api->registry, req->id);
    if (r == -ENOENT) {
        json_object_put(o);
        return ctl_api_fail("node %s is not enrolled", req->id);
    }
    if (r < 0)
        return registry_fail(o, r);
    log_event(LOG_NOTICE, req->id, "removed", "node removed from the registry");
    gate_forget(api->gate, req->id, true, now_us(), wall_s());
    return o;
}

/* {"cmd":"node_tag","id":"…","spec":{"tags":"a,b"}}: replaces the node's tags ("" clears). */
static json_object *h_node_tag(const struct ctl_request *req, const struct ctl_api *api,
                               json_object *o)
{
    json_object *spec = json_tokener_parse(req->spec), *v = NULL;
    const char *tags = NULL;
    if (spec != NULL && json_object_object_length(spec) == 1 &&
        json_object_object_get_ex(spec, "tags", &v) && json_object_is_type(v, json_type_string))
        tags = json_object_get_string(v);
    if (tags == NULL || !registry_tags_valid(tags)) {
        json_object_put(spec);
        json_object_put(o);
        return ctl_api_fail("'spec' must be {\"tags\": \"a,b\"}: up to %d tags of 1..%d "
                            "characters of [A-Za-z0-9._-], comma-separated (\"\" clears)",
                            REGISTRY_TAGS_COUNT_MAX, REGISTRY_TAG_MAX);
    }
    int r = registry_set_tags(api->registry, req->id, tags);
    if (r == -ENOENT) {
        json_object_put(spec);
        json_object_put(o);
        return ctl_api_fail("node %s is not enrolled", req->id);
    }
    if (r < 0) {
        json_object_put(spec);
        return registry_fail(o, r);
    }
    log_event(LOG_NOTICE, req->id, "tagged", "node tags set to '%s'", tags);
    json_add_str(o, "tags", tags);
    json_object_put(spec);
    return o;
}

static const struct ctl_command commands[] = {
    {"status", CTL_STATUS, 0, CTL_ROLE_READ, h_status},
    {"nodes", CTL_NODES, 0, CTL_ROLE_READ, h_nodes},
    {"spool", CTL_SPOOL, 0, CTL_ROLE_READ, h_spool},
    {"node_add", CTL_NODE_ADD, CTL_ARG_IAK_PUB | CTL_ARG_CLASS, CTL_ROLE_ADMIN, h_node_add},
    {"node_add_symmetric", CTL_NODE_ADD_SYMMETRIC,
     CTL_ARG_IAK_ID | CTL_ARG_IAK_SEALED | CTL_ARG_CLASS, CTL_ROLE_ADMIN, h_node_add_symmetric},
    {"node_show", CTL_NODE_SHOW, CTL_ARG_ID, CTL_ROLE_READ, h_node_show},
    {"node_remove", CTL_NODE_REMOVE, CTL_ARG_ID, CTL_ROLE_ADMIN, h_node_remove},
    {"attest", CTL_ATTEST, CTL_ARG_ID, CTL_ROLE_ADMIN, h_attest},
    {"node_tag", CTL_NODE_TAG, CTL_ARG_ID | CTL_ARG_SPEC, CTL_ROLE_ADMIN, h_node_tag},
    /* OTA (ota_ctl.c) */
    {"ota_stage", CTL_OTA_STAGE, CTL_ARG_FD | CTL_ARG_SPEC, CTL_ROLE_ADMIN, ota_ctl_stage},
    {"ota_images", CTL_OTA_IMAGES, 0, CTL_ROLE_READ, ota_ctl_images},
    {"ota_rm", CTL_OTA_RM, CTL_ARG_DIGEST, CTL_ROLE_ADMIN, ota_ctl_rm},
    {"campaign_create", CTL_CAMPAIGN_CREATE, CTL_ARG_SPEC, CTL_ROLE_ADMIN, ota_ctl_create},
    {"campaign_list", CTL_CAMPAIGN_LIST, 0, CTL_ROLE_READ, ota_ctl_list},
    {"campaign_status", CTL_CAMPAIGN_STATUS, CTL_ARG_CAMPAIGN | CTL_ARG_SPEC, CTL_ROLE_READ,
     ota_ctl_status},
    {"campaign_halt", CTL_CAMPAIGN_HALT, CTL_ARG_CAMPAIGN, CTL_ROLE_ADMIN, ota_ctl_halt},
    {"campaign_resume", CTL_CAMPAIGN_RESUME, CTL_ARG_CAMPAIGN, CTL_ROLE_ADMIN, ota_ctl_resume},
    {"campaign_abort", CTL_CAMPAIGN_ABORT, CTL_ARG_CAMPAIGN, CTL_ROLE_ADMIN, ota_ctl_abort},
};

const char *ctl_role_name(enum ctl_role role)
{
    return role == CTL_ROLE_ADMIN ? "admin" : "read-only";
}

const struct ctl_command *ctl_command_find(const char *name, size_t len)
{
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        if (strlen(commands[i].name) == len && memcmp(commands[i].name, name, len) == 0)
            return &commands[i];
    return NULL;
}

const struct ctl_command *ctl_command_of(enum ctl_cmd cmd)
{
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        if (commands[i].cmd == cmd)
            return &commands[i];
    return NULL;
}

const struct ctl_command *ctl_commands(size_t *ret_n)
{
    *ret_n = sizeof(commands) / sizeof(commands[0]);
    return commands;
}

json_object *ctl_api_dispatch(const struct ctl_request *req, void *u)
{
    const struct ctl_api *api = u;
    const struct ctl_command *c = ctl_command_of(req->cmd);
    if (c == NULL)
        return ctl_api_fail("unknown command");
    json_object *o = json_object_new_object();
    json_object_object_add(o, "ok", json_object_new_boolean(1));
    return c->handler(req, api, o);
}
