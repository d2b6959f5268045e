/* The campaign status document (campaign.h, campaign_status_json): one campaign as JSON,
 * with its counts per node state overall and per wave and, when asked, every node. The
 * engine (campaign.c) publishes it upstream as STATUS; the control requests return it.
 *
 * Not here: when a STATUS is due (campaign.c), loading a final campaign from SQLite
 * (campaign_db.c), the list of campaigns (campaign_foreach in campaign_db.c). */
#define _GNU_SOURCE
#include "campaign_internal.h"

#include <fleetgw/hex.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void version_str(const struct image_version *v, char *out, size_t cap)
{
    snprintf(out, cap, "%u.%u.%u+%u", v->major, v->minor, v->revision, v->build);
}

static json_object *counts_obj(const size_t cnt[CN__COUNT])
{
    json_object *o = json_object_new_object();
    for (int s = 0; s < CN__COUNT && o != NULL; s++)
        json_object_object_add(o, campaign_node_state_str((enum campaign_node_state)s),
                               json_object_new_int64((int64_t)cnt[s]));
    return o;
}

char *campaign_json_status(const struct campaign *c, bool nodes)
{
    json_object *o = json_object_new_object(), *img, *wave, *waves, *arr;
    char hex[OTA_DIGEST_HEX + 1], ver[48];
    char *out = NULL;
    if (o == NULL)
        return NULL;
    json_object_object_add(o, "id", json_object_new_string(c->spec.id));
    json_object_object_add(o, "state", json_object_new_string(campaign_state_str(c->st)));
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
            json_object_object_add(no, "state",
                                   json_object_new_string(campaign_node_state_str(n->st)));
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

char *campaign_status_json(struct campaign_engine *e, const char *id, bool nodes)
{
    struct campaign *c = campaign_find_live(e, id), *tmp = NULL;
    char *out;
    if (c == NULL && id != NULL)
        c = tmp = campaign_db_load_id(e, id);
    if (c == NULL)
        return NULL;
    out = campaign_json_status(c, nodes);
    campaign_free(tmp);
    return out;
}
