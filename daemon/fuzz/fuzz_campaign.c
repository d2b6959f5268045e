/* fuzz_campaign: random event sequences against the campaign engine (campaign.c) on a
 * temporary SQLite file, restarts (close + open) included. Checks the invariants:
 *  - no OFFER to a node of a wave beyond the campaign's current one, nor before every node
 *    of the earlier waves is final;
 *  - a node is `succeeded` only after a trusted token measuring the campaign's digest was
 *    applied to it, a CONFIRM was sent, and then it reported ota-status confirmed;
 *  - after enough ticks past every deadline, every node is final and the campaign is final
 *    (or halted, with nothing in progress and only never-offered nodes pending), and the
 *    engine wants no more ticks.
 *
 * Input: 8 bytes of campaign parameters, then events of 3 bytes (opcode, node, argument). */
#include "campaign.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NODES 12
#define ID    "fz"

static uint8_t digest[OTA_DIGEST_LEN], other[OTA_DIGEST_LEN];

struct model {
    struct campaign_engine *e;
    size_t n;
    size_t wave_end[CAMPAIGN_WAVES_MAX];
    size_t n_waves;
    bool good_token[NODES]; /* a trusted token of the campaign image was applied */
    bool confirm_sent[NODES];
    int confirmed_event; /* node of the ota-status confirmed being processed, or -1 */
    bool was_succeeded[NODES];
};

static int node_of(const char *id)
{
    int i = atoi(id + 1);
    if (id[0] != 'n' || i < 0 || i >= NODES)
        abort();
    return i;
}

static json_object *status(struct campaign_engine *e)
{
    char *s = campaign_status_json(e, ID, true);
    json_object *o;
    if (s == NULL)
        abort(); /* the campaign exists from creation on */
    o = json_tokener_parse(s);
    free(s);
    if (o == NULL)
        abort();
    return o;
}

static const char *get_str(json_object *o, const char *k)
{
    json_object *v;
    if (!json_object_object_get_ex(o, k, &v))
        abort();
    return json_object_get_string(v);
}

static int get_int(json_object *o, const char *k)
{
    json_object *v;
    if (!json_object_object_get_ex(o, k, &v))
        abort();
    return json_object_get_int(v);
}

static bool final_node(const char *st)
{
    static const char *const finals[] = {"succeeded", "failed",   "reverted",
                                         "timed_out", "rejected", "skipped"};
    for (size_t i = 0; i < sizeof(finals) / sizeof(finals[0]); i++)
        if (strcmp(st, finals[i]) == 0)
            return true;
    return false;
}

static size_t wave_of(const struct model *m, size_t i)
{
    size_t w = 0;
    while (w + 1 < m->n_waves && i >= m->wave_end[w])
        w++;
    return w;
}

static int f_act(void *ctx, const struct campaign_action *a)
{
    struct model *m = ctx;
    if (a->campaign == NULL || strcmp(a->campaign, ID) != 0)
        abort();
    if (a->kind == CAMPAIGN_ACT_OFFER) {
        int i = node_of(a->node);
        json_object *o = status(m->e), *wave, *nodes;
        if (!json_object_object_get_ex(o, "wave", &wave) ||
            !json_object_object_get_ex(o, "nodes", &nodes))
            abort();
        size_t cur = (size_t)get_int(wave, "current") - 1, w = wave_of(m, (size_t)i);
        if (w > cur)
            abort(); /* offered to a node of a later wave */
        for (size_t k = 0; k < (w ? m->wave_end[w - 1] : 0); k++)
            if (!final_node(get_str(json_object_array_get_idx(nodes, k), "state")))
                abort(); /* an earlier wave is not done */
        if (strcmp(get_str(json_object_array_get_idx(nodes, (size_t)i), "state"), "offered") != 0 &&
            strcmp(get_str(json_object_array_get_idx(nodes, (size_t)i), "state"), "downloading") !=
                0)
            abort(); /* offer without the state that asks for it */
        json_object_put(o);
        return 0;
    }
    if (a->kind == CAMPAIGN_ACT_CONFIRM)
        m->confirm_sent[node_of(a->node)] = true;
    if (a->kind == CAMPAIGN_ACT_NOTE && (a->token == NULL || a->text == NULL))
        abort();
    if (a->kind == CAMPAIGN_ACT_STATUS && a->json == NULL)
        abort();
    return 0;
}

/* New succeeded nodes must have earned it. */
static void check_success(struct model *m)
{
    json_object *o = status(m->e), *nodes;
    if (!json_object_object_get_ex(o, "nodes", &nodes) || json_object_array_length(nodes) != m->n)
        abort();
    for (size_t i = 0; i < m->n; i++) {
        bool s = strcmp(get_str(json_object_array_get_idx(nodes, i), "state"), "succeeded") == 0;
        if (s && !m->was_succeeded[i] &&
            (!m->good_token[i] || !m->confirm_sent[i] || m->confirmed_event != (int)i))
            abort();
        if (!s && m->was_succeeded[i])
            abort(); /* final states are final */
        m->was_succeeded[i] = s;
    }
    json_object_put(o);
}

static char dir[64];

static void remove_db(const char *path)
{
    char p[128];
    const char *sfx[] = {"", "-wal", "-shm", "-journal"};
    for (size_t i = 0; i < 4; i++) {
        snprintf(p, sizeof(p), "%s%s", path, sfx[i]);
        (void)unlink(p);
    }
}

static void remove_dir(void)
{
    (void)rmdir(dir);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct model m;
    struct campaign_ops ops = {f_act, &m};
    struct campaign_spec s;
    struct campaign_target t[NODES];
    char path[128], err[256];
    int64_t now = 100000;
    size_t pos = 0;

    if (size < 8)
        return 0;
    if (dir[0] == '\0') {
        /* tmpfs when there is one: synchronous=FULL costs an fsync per state change */
        snprintf(dir, sizeof(dir), "%s/fuzz_campaign.XXXXXX",
                 access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
        if (mkdtemp(dir) == NULL)
            abort();
        atexit(remove_dir);
    }
    snprintf(path, sizeof(path), "%s/c.db", dir);
    remove_db(path);
    memset(&m, 0, sizeof(m));
    m.confirmed_event = -1;
    memset(digest, 0x5a, sizeof(digest));
    memset(other, 0xa5, sizeof(other));
    if (campaign_open(path, &ops, &m.e, err, sizeof(err)) != 0)
        abort();

#define NEXT() (pos < size ? data[pos++] : 0)
    memset(&s, 0, sizeof(s));
    snprintf(s.id, sizeof(s.id), ID);
    memcpy(s.digest, digest, sizeof(digest));
    snprintf(s.device_class, sizeof(s.device_class), "cls");
    uint8_t b0 = NEXT(), b1 = NEXT(), b2 = NEXT(), b3 = NEXT(), b4 = NEXT(), b5 = NEXT(),
            b6 = NEXT(), b7 = NEXT();
    m.n = 1u + b0 % NODES;
    switch (b1 % 4) {
    case 0:
        s.n_waves = 1;
        s.waves[0] = (struct campaign_wave){true, 100};
        break;
    case 1:
        s.n_waves = 3;
        s.waves[0] = (struct campaign_wave){false, 1};
        s.waves[1] = (struct campaign_wave){true, 30};
        s.waves[2] = (struct campaign_wave){true, 100};
        break;
    case 2:
        s.n_waves = 2;
        s.waves[0] = (struct campaign_wave){false, 1u + b1 / 4 % 4};
        s.waves[1] = (struct campaign_wave){false, NODES};
        break;
    default:
        s.n_waves = 2;
        s.waves[0] = (struct campaign_wave){true, 1u + b1 % 100};
        s.waves[1] = (struct campaign_wave){true, 100};
        break;
    }
    s.max_parallel = 1u + b2 % 4;
    s.retries = b3 % 4;
    s.step_timeout_s = 1u + b4 % 8;
    s.node_deadline_s = s.step_timeout_s + b5 % 40;
    s.retry_backoff_s = 1u + b3 / 4 % 4;
    s.success_threshold_pct = 1u + b6 % 100;
    s.abort_failures = b7 % 4 == 0 ? b7 / 4 % 5 : 0;
    s.abort_failure_pct = b7 % 4 == 1 ? b7 / 4 % 101 : 0;
    s.abort_min_executed = b7 % 4 == 1 ? b6 % 5 : 0;
    s.raise_floor = b7 & 1;
    for (size_t i = 0; i < m.n; i++) {
        snprintf(t[i].node, sizeof(t[i].node), "n%zu", i);
        t[i].skip_reason = (b0 >> 4) == i + 1 ? "quarantined" : NULL;
    }
    /* the fuzzer's own copy of the wave layout (campaign.h: cumulative, percent rounded up) */
    m.n_waves = s.n_waves;
    for (size_t w = 0; w < s.n_waves; w++) {
        size_t end = s.waves[w].percent ? (s.waves[w].value * m.n + 99) / 100 : s.waves[w].value;
        m.wave_end[w] = end < 1 ? 1 : end > m.n ? m.n : end;
    }
    if (campaign_create(m.e, &s, t, m.n, now, err, sizeof(err)) != 0)
        goto out; /* e.g. waves that decrease for this target count: refused, nothing stored */
    check_success(&m);

    for (unsigned steps = 0; pos < size && steps < 2000; steps++) {
        uint8_t op = NEXT(), nb = NEXT(), arg = NEXT();
        int i = nb % NODES;
        char node[8];
        int r;
        snprintf(node, sizeof(node), "n%d", i);
        switch (op % 14) {
        case 0:
        case 1:
            now += arg % 12;
            (void)campaign_tick(m.e, now);
            break;
        case 2:
            (void)campaign_on_ack(m.e, node, ID, true, MSG_REASON_NONE, now);
            break;
        case 3:
            (void)campaign_on_ack(m.e, node, ID, false, (enum msg_ota_reason)(arg % 11), now);
            break;
        case 4:
            (void)campaign_on_request(m.e, node, ID, (uint32_t)arg * 64u, now);
            break;
        case 5:
            m.confirmed_event = arg % 8 == MSG_OTA_CONFIRMED ? i : -1;
            (void)campaign_on_status(m.e, node, ID, (enum msg_ota_state)(arg % 9),
                                     (uint32_t)arg * 64u, (enum msg_ota_reason)(nb % 10), now);
            break;
        case 6:
            if (campaign_on_attested(m.e, node, true, digest, "ok", now) == 0)
                m.good_token[i] = true;
            break;
        case 7:
            (void)campaign_on_attested(m.e, node, true, arg & 1 ? other : NULL, "ok", now);
            break;
        case 8:
            (void)campaign_on_attested(m.e, node, false, digest, "refused", now);
            break;
        case 9:
            r = campaign_halt(m.e, arg & 1 ? ID : "nope", now, "fuzz");
            if (arg & 1 ? (r != 0 && r != -EALREADY && r != -EINVAL) : r != -ENOENT)
                abort();
            break;
        case 10:
            r = campaign_resume(m.e, arg & 1 ? ID : "nope", now);
            if (arg & 1 ? (r != 0 && r != -EALREADY && r != -EINVAL) : r != -ENOENT)
                abort();
            break;
        case 11:
            if (arg % 16 == 0)
                if ((r = campaign_abort(m.e, ID, now, "fuzz")) != 0 && r != -EALREADY)
                    abort();
            break;
        case 12:
            campaign_close(m.e);
            m.e = NULL;
            if (campaign_open(path, &ops, &m.e, err, sizeof(err)) != 0)
                abort();
            break;
        default:
            /* the right node with another campaign's id, or an unknown node */
            if (campaign_on_ack(m.e, node, "other", true, 0, now) != -ENOENT ||
                campaign_on_status(m.e, "x1", ID, MSG_OTA_CONFIRMED, 0, 0, now) != -ENOENT)
                abort();
            break;
        }
        check_success(&m);
        m.confirmed_event = -1;
    }

    /* long past every deadline: everything is final */
    int64_t wake = 0;
    for (int k = 0; k < 400; k++) {
        now += 60;
        wake = campaign_tick(m.e, now);
    }
    check_success(&m);
    if (wake != 0)
        abort();
    {
        json_object *o = status(m.e), *nodes;
        const char *cst = get_str(o, "state");
        bool halted = strcmp(cst, "halted") == 0;
        if (strcmp(cst, "running") == 0)
            abort();
        if (!json_object_object_get_ex(o, "nodes", &nodes))
            abort();
        for (size_t i = 0; i < m.n; i++) {
            const char *st = get_str(json_object_array_get_idx(nodes, i), "state");
            if (!final_node(st) && !(halted && strcmp(st, "pending") == 0))
                abort();
        }
        json_object_put(o);
    }
out:
    campaign_close(m.e);
    remove_db(path);
    return 0;
}
