/* The control handlers through the one table (ctl_api.c), on a real registry, spool and
 * down-queue in a temporary directory and a real gate whose actions are recorded: each
 * request parsed by ctl_parse_request and answered by ctl_api_dispatch, as the socket does. */
#define _GNU_SOURCE
#include "check.h"
#include "config.h"
#include "control.h"
#include "ctl_api.h"
#include "downq.h"
#include "gate.h"
#include "registry.h"
#include "spool.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The P-256 generator as an uncompressed point: a valid public key. */
static const char point_hex[] = "04"
                                "6b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296"
                                "4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5";

struct ctx {
    struct registry *reg;
    unsigned challenges;
};

static int t_load(void *u, const char *node, struct gate_record *ret)
{
    struct ctx *c = u;
    struct registry_node n;
    int r = registry_get(c->reg, node, &n);
    if (r < 0)
        return r;
    memcpy(ret->pub, n.iak_pub, sizeof(ret->pub));
    ret->verdict = GATE_NONE;
    return 0;
}

static void t_verify(void *u, const char *node, const uint8_t *m, size_t l,
                     const uint8_t p[GATE_PUB_LEN], const uint8_t n[GATE_NONCE_LEN],
                     struct gate_judgement *j)
{
    (void)u, (void)node, (void)m, (void)l, (void)p, (void)n;
    memset(j, 0, sizeof(*j));
    j->code = GATE_R_BAD_EVIDENCE;
}

static bool t_peek(void *u, const uint8_t *m, size_t l, uint8_t n[GATE_NONCE_LEN])
{
    (void)u, (void)m, (void)l, (void)n;
    return false;
}

static int t_random(void *u, uint8_t *b, size_t l)
{
    (void)u;
    memset(b, 7, l);
    return 0;
}

static int t_act(void *u, const struct gate_action *a)
{
    struct ctx *c = u;
    if (a->kind == GATE_ACT_CHALLENGE)
        c->challenges++;
    return 0;
}

static void t_status(void *u, struct ctl_status *ret)
{
    (void)u;
    ret->edge = "connected";
    ret->cloud = "connecting";
    ret->inflight = 3;
    ret->down_inflight = 1;
}

/* One request line through the parser and the table: the response object. */
static json_object *ask(struct ctl_api *api, const char *line)
{
    struct ctl_request req;
    char err[160];
    if (ctl_parse_request(line, strlen(line), &req, err, sizeof(err)) < 0) {
        fprintf(stderr, "  refused: %s\n", err);
        return NULL;
    }
    return ctl_api_dispatch(&req, api);
}

static bool ok_of(json_object *o)
{
    json_object *v = NULL;
    return o != NULL && json_object_object_get_ex(o, "ok", &v) && json_object_get_boolean(v);
}

static const char *str_of(json_object *o, const char *key)
{
    json_object *v = NULL;
    return o != NULL && json_object_object_get_ex(o, key, &v) ? json_object_get_string(v) : "";
}

int main(void)
{
    char dir[] = "/tmp/test_ctl_api.XXXXXX", path[256], line[512], id[REGISTRY_ID_LEN + 1];
    struct ctx c = {0};
    struct config cfg;
    struct spool *sp = NULL;
    struct downq *dq = NULL;
    struct gate *g = NULL;
    json_object *o;

    if (mkdtemp(dir) == NULL)
        return 1;
    config_defaults(&cfg);
    snprintf(path, sizeof(path), "%s/spool.db", dir);
    CHECK_EQ_INT(spool_open(path, 1 << 20, &sp), 0);
    CHECK_EQ_INT(downq_open(sp, &dq), 0);
    snprintf(path, sizeof(path), "%s/registry.db", dir);
    CHECK_EQ_INT(registry_open(path, &c.reg), 0);
    struct gate_ops ops = {t_load, t_verify, t_peek, t_random, t_act, &c};
    struct gate_config gc = {.required = true,
                             .judging = true,
                             .nonce_ttl_s = 5,
                             .interval_s = 60,
                             .per_node_rate = 10,
                             .per_node_burst = 10,
                             .evidence_max = 64};
    CHECK_EQ_INT(gate_new(&gc, &ops, 16, &g), 0);
    struct ctl_api api = {.registry = c.reg,
                          .spool = sp,
                          .downq = dq,
                          .gate = g,
                          .cfg = &cfg,
                          .status = t_status,
                          .u = &c};

    o = ask(&api, "{\"cmd\":\"status\"}");
    CHECK(ok_of(o) && strcmp(str_of(o, "edge"), "connected") == 0 &&
          strcmp(str_of(o, "cloud"), "connecting") == 0);
    json_object_put(o);
    o = ask(&api, "{\"cmd\":\"spool\"}");
    CHECK(ok_of(o) && strcmp(str_of(o, "oldest_age_s"), "0") == 0);
    json_object_put(o);

    o = ask(&api, "{\"cmd\":\"attest\",\"id\":\"0123456789abcdef0123456789abcdef\"}");
    CHECK(!ok_of(o) && strstr(str_of(o, "error"), "not enrolled") != NULL);
    json_object_put(o);
    CHECK_EQ_INT(c.challenges, 0);

    snprintf(line, sizeof(line), "{\"cmd\":\"node_add\",\"iak_pub\":\"%s\",\"device_class\":\"s\"}",
             point_hex);
    o = ask(&api, line);
    CHECK(ok_of(o));
    json_object *node = NULL;
    CHECK(json_object_object_get_ex(o, "node", &node));
    snprintf(id, sizeof(id), "%s", str_of(node, "id"));
    CHECK_EQ_INT(strlen(id), REGISTRY_ID_LEN);
    json_object_put(o);
    o = ask(&api, line);
    CHECK(!ok_of(o) && strstr(str_of(o, "error"), "already enrolled") != NULL);
    json_object_put(o);

    snprintf(line, sizeof(line), "{\"cmd\":\"attest\",\"id\":\"%s\"}", id);
    o = ask(&api, line);
    CHECK(ok_of(o) && strcmp(str_of(o, "challenged"), id) == 0);
    json_object_put(o);
    CHECK_EQ_INT(c.challenges, 1);
    CHECK(gate_node_challenged(g, id));

    snprintf(line, sizeof(line), "{\"cmd\":\"node_show\",\"id\":\"%s\"}", id);
    o = ask(&api, line);
    CHECK(ok_of(o) && json_object_object_get_ex(o, "node", &node) &&
          strcmp(str_of(node, "iak_pub"), point_hex) == 0);
    CHECK(strcmp(str_of(node, "iak"), "p256") == 0 &&
          json_object_object_get_ex(node, "profile", NULL) && str_of(node, "profile")[0] == '\0');
    json_object_put(o);
    o = ask(&api, "{\"cmd\":\"nodes\"}");
    json_object *arr = NULL;
    CHECK(ok_of(o) && json_object_object_get_ex(o, "nodes", &arr) &&
          json_object_array_length(arr) == 1);
    json_object_put(o);

    /* a node with a symmetric IAK: only its id and the sealed blob come to the daemon */
    {
        static const char kid[] =
            "2f287b4d3d4910f6cada9e1bd1b4648099e8c52c81aa4a6aebfa6fc86f19834e";
        snprintf(line, sizeof(line),
                 "{\"cmd\":\"node_add_symmetric\",\"iak_id\":\"%s\",\"iak_sealed\":"
                 "\"46475753000100aa\",\"device_class\":\"sym\"}",
                 kid);
        o = ask(&api, line);
        CHECK(ok_of(o) && json_object_object_get_ex(o, "node", &node));
        CHECK(strcmp(str_of(node, "id"), "2f287b4d3d4910f6cada9e1bd1b46480") == 0);
        CHECK(strcmp(str_of(node, "iak"), "hmac-sha256") == 0);
        CHECK(strcmp(str_of(node, "iak_id"), kid) == 0);
        CHECK(!json_object_object_get_ex(node, "iak_pub", NULL));
        json_object_put(o);
        o = ask(&api, line);
        CHECK(!ok_of(o) &&
              strstr(str_of(o, "error"),
                     "node 2f287b4d3d4910f6cada9e1bd1b46480 is already enrolled") != NULL);
        json_object_put(o);
        struct registry_node rn;
        CHECK_EQ_INT(registry_get(c.reg, "2f287b4d3d4910f6cada9e1bd1b46480", &rn), 0);
        CHECK(rn.symmetric && rn.iak_sealed_len == 8 && rn.iak_sealed[7] == 0xaa);
        o = ask(&api, "{\"cmd\":\"node_remove\",\"id\":\"2f287b4d3d4910f6cada9e1bd1b46480\"}");
        CHECK(ok_of(o));
        json_object_put(o);
    }

    snprintf(line, sizeof(line), "{\"cmd\":\"node_remove\",\"id\":\"%s\"}", id);
    o = ask(&api, line);
    CHECK(ok_of(o));
    json_object_put(o);
    CHECK(!gate_node_challenged(g, id)); /* a removed node's challenge is dropped */
    o = ask(&api, line);
    CHECK(!ok_of(o) && strstr(str_of(o, "error"), "not enrolled") != NULL);
    json_object_put(o);

    gate_free(g);
    registry_close(c.reg);
    downq_close(dq);
    spool_close(sp);
    static const char *const files[] = {"spool.db",    "spool.db-wal",    "spool.db-shm",
                                        "registry.db", "registry.db-wal", "registry.db-shm"};
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
        (void)unlink(path);
    }
    CHECK_EQ_INT(rmdir(dir), 0);
    return check_finish();
}
