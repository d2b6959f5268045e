/* ota_ctl.c: the OTA control requests (ota.h): staging an image the operator's fleetgwctl
 * passes as an open descriptor, listing and removing stored images, and creating, listing,
 * watching, halting, resuming and aborting campaigns. */
#define _GNU_SOURCE
#include "ota.h"
#include "jsonutil.h"
#include "clock.h"
#include "config.h"
#include "log.h"
#include "registry.h"

#include <errno.h>
#include <fleetgw/hex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SPEC_NODES_MAX 64

void ota_check_opts_of(const struct ota_ctx *o, const char *declared_class, bool recovery,
                       struct ota_check_opts *ret)
{
    memset(ret, 0, sizeof(*ret));
    ret->classes = &o->classes;
    ret->signers = o->signers;
    ret->n_signers = o->n_signers;
    ret->declared_class = declared_class;
    ret->recovery = recovery;
    ret->class_state = campaign_class_state;
    ret->ctx = o->engine;
    ret->expect_digest = NULL;
    ret->expect_size = -1;
}

int ota_read_fd(int fd, uint8_t **ret, size_t *ret_len, char *why, size_t whylen)
{
    struct stat st;
    *ret = NULL;
    *ret_len = 0;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        snprintf(why, whylen, "cannot stat the image: %s", strerror(e));
        return -e;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(why, whylen, "the image is not a regular file");
        return -EINVAL;
    }
    if (st.st_size <= 0 || (uint64_t)st.st_size > IMAGE_MAX_LEN) {
        snprintf(why, whylen, "the image is %lld bytes: an image is 1..%u bytes",
                 (long long)st.st_size, (unsigned)IMAGE_MAX_LEN);
        return -EFBIG;
    }
    size_t len = (size_t)st.st_size, got = 0;
    uint8_t *buf = malloc(len);
    if (buf == NULL) {
        snprintf(why, whylen, "out of memory");
        return -ENOMEM;
    }
    while (got < len) {
        ssize_t n = pread(fd, buf + got, len - got, (off_t)got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            int e = n < 0 ? errno : EIO;
            snprintf(why, whylen, "cannot read the image: %s",
                     n < 0 ? strerror(e) : "it shrank while being read");
            free(buf);
            return -e;
        }
        got += (size_t)n;
    }
    *ret = buf;
    *ret_len = len;
    return 0;
}

static void add_str(json_object *o, const char *k, const char *v)
{
    json_object_object_add(o, k, json_object_new_string(v));
}

static void add_int(json_object *o, const char *k, int64_t v)
{
    json_object_object_add(o, k, json_object_new_int64(v));
}

static void version_text(const struct image_version *v, char *out, size_t cap)
{
    snprintf(out, cap, "%u.%u.%u+%u", (unsigned)v->major, (unsigned)v->minor, (unsigned)v->revision,
             (unsigned)v->build);
}

static json_object *image_json(const struct ota_image_meta *m)
{
    char ver[48], signer[OTA_DIGEST_HEX + 1];
    json_object *o = json_object_new_object();
    version_text(&m->version, ver, sizeof(ver));
    hex_encode(m->signer_id, OTA_DIGEST_LEN, signer);
    add_str(o, "digest", m->digest_hex);
    add_int(o, "size", m->size);
    add_str(o, "version", ver);
    add_str(o, "class", m->class_name);
    if (m->has_counter)
        add_int(o, "security_counter", m->security_counter);
    add_str(o, "signer_id", signer);
    add_int(o, "staged", m->staged);
    add_str(o, "source", m->source);
    json_object_object_add(o, "released", json_object_new_boolean(m->released));
    return o;
}

static json_object *no_ota(json_object *ok)
{
    json_object_put(ok);
    return ctl_api_fail("OTA is not available: the store or the campaign database did not open "
                        "(see the daemon's log)");
}

/* Unknown keys in a control request's spec are refused. */
static int spec_keys_known(json_object *o, const char *const *known, char *err, size_t errlen)
{
    return json_keys_known(o, "the request", known, err, errlen);
}

static int spec_str(json_object *o, const char *key, const char **ret, size_t max, char *err,
                    size_t errlen)
{
    json_object *v;
    if (!json_object_object_get_ex(o, key, &v))
        return 0;
    if (!json_object_is_type(v, json_type_string) || (size_t)json_object_get_string_len(v) > max ||
        json_object_get_string_len(v) == 0) {
        snprintf(err, errlen, "'%s' must be a string of 1..%zu characters", key, max);
        return -EINVAL;
    }
    *ret = json_object_get_string(v);
    return 0;
}

static int spec_bool(json_object *o, const char *key, bool *ret, char *err, size_t errlen)
{
    json_object *v;
    if (!json_object_object_get_ex(o, key, &v))
        return 0;
    if (!json_object_is_type(v, json_type_boolean)) {
        snprintf(err, errlen, "'%s' must be true or false", key);
        return -EINVAL;
    }
    *ret = json_object_get_boolean(v);
    return 0;
}

static int spec_uint(json_object *o, const char *key, uint32_t *ret, uint32_t min, uint32_t max,
                     char *err, size_t errlen)
{
    json_object *v;
    if (!json_object_object_get_ex(o, key, &v))
        return 0;
    int64_t x = json_object_get_int64(v);
    if (!json_object_is_type(v, json_type_int) || x < min || x > max) {
        snprintf(err, errlen, "'%s' must be an integer in %u..%u", key, (unsigned)min,
                 (unsigned)max);
        return -EINVAL;
    }
    *ret = (uint32_t)x;
    return 0;
}

static json_object *parse_spec_object(const char *text, char *err, size_t errlen)
{
    json_object *o = json_tokener_parse(text);
    if (o == NULL || !json_object_is_type(o, json_type_object)) {
        if (o != NULL)
            json_object_put(o);
        snprintf(err, errlen, "'spec' is not an object");
        return NULL;
    }
    return o;
}

json_object *ota_ctl_stage(const struct ctl_request *req, const struct ctl_api *api,
                           json_object *ok)
{
    static const char *const known[] = {"class", "recovery", NULL};
    struct ota_ctx *o = api->ota;
    char why[256] = "";
    const char *cls = NULL;
    bool recovery = false;
    uint8_t *img = NULL;
    size_t len = 0;

    if (o == NULL)
        return no_ota(ok);
    json_object *spec = parse_spec_object(req->spec, why, sizeof(why));
    if (spec == NULL || spec_keys_known(spec, known, why, sizeof(why)) < 0 ||
        spec_str(spec, "class", &cls, OTA_CLASS_NAME_MAX, why, sizeof(why)) < 0 ||
        spec_bool(spec, "recovery", &recovery, why, sizeof(why)) < 0 ||
        ota_read_fd(req->fd, &img, &len, why, sizeof(why)) < 0) {
        if (spec != NULL)
            json_object_put(spec);
        json_object_put(ok);
        return ctl_api_fail("image not staged: %s", why);
    }
    struct ota_check_opts co;
    struct ota_image_meta m;
    ota_check_opts_of(o, cls, recovery, &co);
    enum ota_refusal r =
        ota_store_put(o->store, img, len, &co, "fleetgwctl", wall_s(), &m, why, sizeof(why));
    free(img);
    json_object_put(spec);
    if (r != OTA_OK) {
        log_event(LOG_WARNING, NULL, ota_refusal_str(r), "image refused at staging: %s", why);
        json_object *f = ctl_api_fail("image refused (%s): %s", ota_refusal_str(r), why);
        json_object_object_add(f, "reason", json_object_new_string(ota_refusal_str(r)));
        json_object_put(ok);
        return f;
    }
    char ver[48];
    version_text(&m.version, ver, sizeof(ver));
    log_event(LOG_NOTICE, NULL, "staged", "image %s staged: class %s, version %s, %u bytes",
              m.digest_hex, m.class_name, ver, (unsigned)m.size);
    json_object_object_add(ok, "image", image_json(&m));
    return ok;
}

static int image_list_cb(const struct ota_image_meta *m, void *u)
{
    json_object_array_add(u, image_json(m));
    return 0;
}

json_object *ota_ctl_images(const struct ctl_request *req, const struct ctl_api *api,
                            json_object *ok)
{
    (void)req;
    if (api->ota == NULL)
        return no_ota(ok);
    json_object *arr = json_object_new_array();
    json_object_object_add(ok, "images", arr);
    int r = ota_store_foreach(api->ota->store, image_list_cb, arr);
    if (r < 0) {
        json_object_put(ok);
        return ctl_api_fail("cannot list the OTA store: %s", strerror(-r));
    }
    add_int(ok, "used_bytes", (int64_t)ota_store_used(api->ota->store));
    add_int(ok, "quota_bytes", api->cfg->ota.store_quota_bytes);
    return ok;
}

json_object *ota_ctl_rm(const struct ctl_request *req, const struct ctl_api *api, json_object *ok)
{
    struct ota_ctx *o = api->ota;
    uint8_t d[OTA_DIGEST_LEN];
    if (o == NULL)
        return no_ota(ok);
    int r = ota_store_lookup(o->store, req->digest, d);
    if (r == 0 && campaign_uses_image(o->engine, d)) {
        json_object_put(ok);
        return ctl_api_fail("image %s is used by a campaign that is not finished (abort it first)",
                            req->digest);
    }
    if (r == 0)
        r = ota_store_remove(o->store, d);
    if (r < 0) {
        json_object_put(ok);
        return ctl_api_fail(r == -ENOENT   ? "no stored image matches %s"
                            : r == -EINVAL ? "%s matches more than one image: give more digits"
                                           : "cannot remove %s",
                            req->digest);
    }
    char hex[OTA_DIGEST_HEX + 1];
    hex_encode(d, OTA_DIGEST_LEN, hex);
    log_event(LOG_NOTICE, NULL, "image_removed", "image %s removed from the store", hex);
    add_str(ok, "removed", hex);
    return ok;
}

static int parse_waves(json_object *w, struct campaign_spec *s, char *err, size_t errlen)
{
    size_t n = json_object_array_length(w);
    if (!json_object_is_type(w, json_type_array) || n == 0 || n > CAMPAIGN_WAVES_MAX) {
        snprintf(err, errlen, "'waves' must be a list of 1..%d sizes (counts or \"N%%\")",
                 CAMPAIGN_WAVES_MAX);
        return -EINVAL;
    }
    for (size_t i = 0; i < n; i++) {
        json_object *e = json_object_array_get_idx(w, i);
        struct campaign_wave *cw = &s->waves[i];
        if (json_object_is_type(e, json_type_int) && json_object_get_int64(e) >= 1 &&
            json_object_get_int64(e) <= CAMPAIGN_TARGETS_MAX) {
            cw->percent = false;
            cw->value = (uint32_t)json_object_get_int64(e);
            continue;
        }
        const char *t = json_object_is_type(e, json_type_string) ? json_object_get_string(e) : "";
        char *end = NULL;
        long p = strtol(t, &end, 10);
        if (end == t || strcmp(end, "%") != 0 || p < 1 || p > 100) {
            snprintf(err, errlen, "waves[%zu] must be a node count >= 1 or \"1%%\"..\"100%%\"", i);
            return -EINVAL;
        }
        cw->percent = true;
        cw->value = (uint32_t)p;
    }
    s->n_waves = n;
    return 0;
}

int ota_spec_parse(const struct ota_ctx *o, const char *json, int64_t now,
                   struct campaign_spec *spec, char nodes[][CAMPAIGN_NODE_MAX + 1],
                   size_t nodes_cap, size_t *n_nodes, char *err, size_t errlen)
{
    static const char *const known[] = {"id",
                                        "image",
                                        "class",
                                        "nodes",
                                        "waves",
                                        "max_parallel",
                                        "node_deadline_s",
                                        "step_timeout_s",
                                        "retries",
                                        "retry_backoff_s",
                                        "success_threshold_pct",
                                        "abort_failures",
                                        "abort_failure_pct",
                                        "abort_min_executed",
                                        "recovery",
                                        "raise_floor",
                                        "tags",
                                        NULL};
    const char *id = NULL, *image = NULL, *cls = NULL;
    int r = -EINVAL;
    json_object *v;

    memset(spec, 0, sizeof(*spec));
    *n_nodes = 0;
    spec->waves[0] = (struct campaign_wave){.percent = true, .value = 100};
    spec->n_waves = 1;
    spec->max_parallel = 8;
    spec->node_deadline_s = 1800;
    spec->step_timeout_s = 120;
    spec->retries = 2;
    spec->retry_backoff_s = 10;
    spec->success_threshold_pct = 100;

    json_object *s = parse_spec_object(json, err, errlen);
    if (s == NULL)
        return -EINVAL;
    if (spec_keys_known(s, known, err, errlen) < 0 ||
        spec_str(s, "id", &id, CAMPAIGN_ID_MAX, err, errlen) < 0 ||
        spec_str(s, "image", &image, OTA_DIGEST_HEX, err, errlen) < 0 ||
        spec_str(s, "class", &cls, OTA_CLASS_NAME_MAX, err, errlen) < 0 ||
        spec_uint(s, "max_parallel", &spec->max_parallel, 1, CAMPAIGN_TARGETS_MAX, err, errlen) <
            0 ||
        spec_uint(s, "node_deadline_s", &spec->node_deadline_s, 1, 30 * 86400, err, errlen) < 0 ||
        spec_uint(s, "step_timeout_s", &spec->step_timeout_s, 1, 86400, err, errlen) < 0 ||
        spec_uint(s, "retries", &spec->retries, 0, 100, err, errlen) < 0 ||
        spec_uint(s, "retry_backoff_s", &spec->retry_backoff_s, 1, 86400, err, errlen) < 0 ||
        spec_uint(s, "success_threshold_pct", &spec->success_threshold_pct, 1, 100, err, errlen) <
            0 ||
        spec_uint(s, "abort_failures", &spec->abort_failures, 0, CAMPAIGN_TARGETS_MAX, err,
                  errlen) < 0 ||
        spec_uint(s, "abort_failure_pct", &spec->abort_failure_pct, 0, 100, err, errlen) < 0 ||
        spec_uint(s, "abort_min_executed", &spec->abort_min_executed, 0, CAMPAIGN_TARGETS_MAX, err,
                  errlen) < 0 ||
        spec_bool(s, "recovery", &spec->recovery, err, errlen) < 0 ||
        spec_bool(s, "raise_floor", &spec->raise_floor, err, errlen) < 0)
        goto out;
    if (json_object_object_get_ex(s, "waves", &v) && parse_waves(v, spec, err, errlen) < 0)
        goto out;
    if (image == NULL) {
        snprintf(err, errlen, "'image' (the stored image's digest) is required");
        goto out;
    }
    struct ota_image_meta m;
    if (ota_store_lookup(o->store, image, spec->digest) != 0 ||
        ota_store_get(o->store, spec->digest, &m) != 0) {
        snprintf(err, errlen, "'image': no stored image matches %s (fleetgwctl ota images)", image);
        goto out;
    }
    if (cls != NULL && strcmp(cls, m.class_name) != 0) {
        snprintf(err, errlen, "'class' %s is not the image's class %s", cls, m.class_name);
        goto out;
    }
    snprintf(spec->device_class, sizeof(spec->device_class), "%s", m.class_name);
    spec->version = m.version;
    spec->security_counter = m.has_counter ? m.security_counter : 0;
    if (id != NULL) {
        if (msg_campaign_id_valid(id, strlen(id)) != 0) {
            snprintf(err, errlen, "'id' is not a campaign id ([A-Za-z0-9._-]{1,32})");
            goto out;
        }
        snprintf(spec->id, sizeof(spec->id), "%s", id);
    } else {
        snprintf(spec->id, sizeof(spec->id), "c-%lld-%.8s", (long long)now, m.digest_hex);
    }
    if (json_object_object_get_ex(s, "nodes", &v)) {
        size_t n = json_object_array_length(v);
        if (!json_object_is_type(v, json_type_array) || n == 0 || n > nodes_cap) {
            snprintf(err, errlen, "'nodes' must be a list of 1..%zu node ids", nodes_cap);
            goto out;
        }
        for (size_t i = 0; i < n; i++) {
            json_object *e = json_object_array_get_idx(v, i);
            const char *t =
                json_object_is_type(e, json_type_string) ? json_object_get_string(e) : "";
            if (msg_node_id_valid(t, strlen(t)) != 0) {
                snprintf(err, errlen, "nodes[%zu] is not a node id", i);
                goto out;
            }
            snprintf(nodes[i], CAMPAIGN_NODE_MAX + 1, "%s", t);
        }
        *n_nodes = n;
    }
    if (json_object_object_get_ex(s, "tags", &v) && *n_nodes > 0) {
        snprintf(err, errlen, "'tags' and 'nodes' are two selectors: give one");
        r = -EINVAL;
        goto out;
    }
    r = 0;
out:
    json_object_put(s);
    return r;
}

struct resolve {
    const struct campaign_spec *spec;
    const char *tags[REGISTRY_TAGS_COUNT_MAX]; /* every one required; none = all */
    size_t n_tags;
    char version[48];
    struct campaign_target *t;
    size_t n, cap;
    char err[256];
};

/* One enrolled node as a target, with its skip reason (or -EINVAL/-ENOSPC, err set). */
static int add_target(struct resolve *rs, const struct registry_node *n)
{
    if (strcmp(n->device_class, rs->spec->device_class) != 0) {
        snprintf(rs->err, sizeof(rs->err), "node %.48s is of class %.64s, not %.64s", n->id,
                 n->device_class, rs->spec->device_class);
        return -EINVAL;
    }
    for (size_t i = 0; i < rs->n; i++)
        if (strcmp(rs->t[i].node, n->id) == 0) {
            snprintf(rs->err, sizeof(rs->err), "node %s is listed twice", n->id);
            return -EINVAL;
        }
    if (rs->n == rs->cap) {
        snprintf(rs->err, sizeof(rs->err), "more than %zu target nodes", rs->cap);
        return -ENOSPC;
    }
    struct campaign_target *t = &rs->t[rs->n++];
    snprintf(t->node, sizeof(t->node), "%s", n->id);
    t->skip_reason = NULL;
    if (strcmp(n->verdict, "quarantined") == 0 && !rs->spec->recovery)
        t->skip_reason = "quarantined";
    else if (strcmp(n->fw_version, rs->version) == 0)
        t->skip_reason = "already_on_image";
    return 0;
}

/* Every enrolled node of the campaign's class (with every tag asked for), in the registry's
 * (node id) order. */
static int resolve_cb(const struct registry_node *n, void *u)
{
    struct resolve *rs = u;
    if (strcmp(n->device_class, rs->spec->device_class) != 0)
        return 0;
    for (size_t i = 0; i < rs->n_tags; i++)
        if (!registry_has_tag(n, rs->tags[i]))
            return 0;
    return add_target(rs, n);
}

int ota_campaign_create(const struct ota_ctx *o, const char *spec_json, int64_t now,
                        char id[CAMPAIGN_ID_MAX + 1], size_t *n_targets, char *err, size_t errlen)
{
    struct campaign_spec spec;
    char only[SPEC_NODES_MAX][CAMPAIGN_NODE_MAX + 1];
    size_t n_only = 0;

    *n_targets = 0;
    if (ota_spec_parse(o, spec_json, now, &spec, only, SPEC_NODES_MAX, &n_only, err, errlen) < 0)
        return -EINVAL;
    struct resolve rs = {.spec = &spec};
    version_text(&spec.version, rs.version, sizeof(rs.version));
    json_object *sj = json_tokener_parse(spec_json), *tv = NULL;
    if (sj != NULL && json_object_object_get_ex(sj, "tags", &tv)) {
        size_t nt = json_object_is_type(tv, json_type_array) ? json_object_array_length(tv) : 0;
        bool bad = nt == 0 || nt > REGISTRY_TAGS_COUNT_MAX || n_only > 0;
        for (size_t i = 0; !bad && i < nt; i++) {
            json_object *e = json_object_array_get_idx(tv, i);
            const char *t =
                json_object_is_type(e, json_type_string) ? json_object_get_string(e) : "";
            bad = t[0] == '\0' || strchr(t, ',') != NULL || !registry_tags_valid(t);
            rs.tags[rs.n_tags++] = t;
        }
        if (bad) {
            json_object_put(sj);
            snprintf(err, errlen,
                     "'tags' must be a list of 1..%d tags ([A-Za-z0-9._-]{1,%d}), and not "
                     "given with 'nodes'",
                     REGISTRY_TAGS_COUNT_MAX, REGISTRY_TAG_MAX);
            return -EINVAL;
        }
    }
    rs.cap = n_only > 0 ? n_only : CAMPAIGN_TARGETS_MAX;
    rs.t = calloc(rs.cap, sizeof(*rs.t));
    if (rs.t == NULL) {
        json_object_put(sj);
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    int r = 0;
    if (n_only == 0)
        r = registry_foreach(o->registry, resolve_cb, &rs);
    /* an explicit list is taken in its own order (the first node is the first canary) */
    for (size_t i = 0; r == 0 && i < n_only; i++) {
        struct registry_node n;
        r = registry_get(o->registry, only[i], &n);
        if (r == -ENOENT)
            snprintf(rs.err, sizeof(rs.err), "node %.48s is not enrolled", only[i]);
        else if (r == 0)
            r = add_target(&rs, &n);
    }
    if (r == 0 && rs.n == 0) {
        snprintf(rs.err, sizeof(rs.err), "no enrolled node is of class %s%s", spec.device_class,
                 rs.n_tags > 0 ? " with those tags" : "");
        r = -ENOENT;
    }
    if (r == 0)
        r = campaign_create(o->engine, &spec, rs.t, rs.n, now, rs.err, sizeof(rs.err));
    free(rs.t);
    json_object_put(sj); /* rs.tags pointed into it */
    if (r < 0) {
        snprintf(err, errlen, "%s", rs.err[0] ? rs.err : strerror(-r));
        return r;
    }
    char hex[OTA_DIGEST_HEX + 1];
    hex_encode(spec.digest, OTA_DIGEST_LEN, hex);
    log_event(LOG_NOTICE, NULL, "campaign_created",
              "campaign %s created: image %s, class %s, %zu nodes, %zu waves", spec.id, hex,
              spec.device_class, rs.n, spec.n_waves);
    if (o->kick != NULL)
        o->kick(o->u);
    snprintf(id, CAMPAIGN_ID_MAX + 1, "%s", spec.id);
    *n_targets = rs.n;
    return 0;
}

json_object *ota_ctl_create(const struct ctl_request *req, const struct ctl_api *api,
                            json_object *ok)
{
    char id[CAMPAIGN_ID_MAX + 1], err[256] = "";
    size_t n = 0;

    if (api->ota == NULL)
        return no_ota(ok);
    if (ota_campaign_create(api->ota, req->spec, wall_s(), id, &n, err, sizeof(err)) < 0) {
        json_object_put(ok);
        return ctl_api_fail("campaign not created: %s", err);
    }
    add_str(ok, "campaign", id);
    add_int(ok, "targets", (int64_t)n);
    return ok;
}

static int list_cb(const char *id, enum campaign_state st, void *u)
{
    json_object *e = json_object_new_object();
    add_str(e, "id", id);
    add_str(e, "state", campaign_state_str(st));
    json_object_array_add(u, e);
    return 0;
}

json_object *ota_ctl_list(const struct ctl_request *req, const struct ctl_api *api, json_object *ok)
{
    (void)req;
    if (api->ota == NULL)
        return no_ota(ok);
    json_object *arr = json_object_new_array();
    json_object_object_add(ok, "campaigns", arr);
    int r = campaign_foreach(api->ota->engine, list_cb, arr);
    if (r < 0) {
        json_object_put(ok);
        return ctl_api_fail("cannot list the campaigns: %s", strerror(-r));
    }
    return ok;
}

json_object *ota_ctl_status(const struct ctl_request *req, const struct ctl_api *api,
                            json_object *ok)
{
    static const char *const known[] = {"nodes", NULL};
    char err[160] = "";
    bool nodes = false;
    if (api->ota == NULL)
        return no_ota(ok);
    json_object *spec = parse_spec_object(req->spec, err, sizeof(err));
    if (spec == NULL || spec_keys_known(spec, known, err, sizeof(err)) < 0 ||
        spec_bool(spec, "nodes", &nodes, err, sizeof(err)) < 0) {
        if (spec != NULL)
            json_object_put(spec);
        json_object_put(ok);
        return ctl_api_fail("%s", err);
    }
    json_object_put(spec);
    char *js = campaign_status_json(api->ota->engine, req->campaign, nodes);
    json_object *st = js != NULL ? json_tokener_parse(js) : NULL;
    free(js);
    if (st == NULL) {
        json_object_put(ok);
        return ctl_api_fail("no campaign %s", req->campaign);
    }
    json_object_object_add(ok, "campaign", st);
    return ok;
}

static json_object *operate(const struct ctl_request *req, const struct ctl_api *api,
                            json_object *ok, const char *what)
{
    struct ota_ctx *o = api->ota;
    int r;
    if (o == NULL)
        return no_ota(ok);
    if (strcmp(what, "halt") == 0)
        r = campaign_halt(o->engine, req->campaign, wall_s(), "operator");
    else if (strcmp(what, "resume") == 0)
        r = campaign_resume(o->engine, req->campaign, wall_s());
    else
        r = campaign_abort(o->engine, req->campaign, wall_s(), "operator");
    if (r < 0) {
        json_object_put(ok);
        return ctl_api_fail(r == -ENOENT ? "no campaign %s"
                                         : "campaign %s: cannot %s it in its present state",
                            req->campaign, what);
    }
    log_event(LOG_NOTICE, NULL, "operator", "campaign %s: %s by the operator", req->campaign, what);
    if (o->kick != NULL)
        o->kick(o->u);
    add_str(ok, "campaign", req->campaign);
    return ok;
}

json_object *ota_ctl_halt(const struct ctl_request *req, const struct ctl_api *api, json_object *ok)
{
    return operate(req, api, ok, "halt");
}

json_object *ota_ctl_resume(const struct ctl_request *req, const struct ctl_api *api,
                            json_object *ok)
{
    return operate(req, api, ok, "resume");
}

json_object *ota_ctl_abort(const struct ctl_request *req, const struct ctl_api *api,
                           json_object *ok)
{
    return operate(req, api, ok, "abort");
}
