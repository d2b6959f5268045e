/* The campaign engine's SQLite database (ota.state_db): the schema and its version, the
 * prepared statements, loading the campaigns (with their nodes) into memory, the writes
 * each call makes in its one transaction (nodes, campaign rows, the class state), and the
 * reads that go to the database (campaign_foreach, campaign_class_state).
 *
 * Not here: what is written when (campaign.c decides, and calls these writes inside its
 * call; this file opens the call's transaction at the first write and ends it in
 * campaign_db_finish), the status document (campaign_json.c). */
#define _GNU_SOURCE
#include "campaign_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sqlite_errno.h"

#define SCHEMA_VERSION 1

/* ---- writes ----------------------------------------------------------------------------- */

void campaign_db_fail(struct campaign_engine *e, int r)
{
    if (r < 0 && e->err == 0)
        e->err = r;
}

/* Opens the call's transaction at its first write: a call that changes nothing (a chunk
 * request) never touches SQLite. False (e->err set) when it cannot. */
static bool txn(struct campaign_engine *e)
{
    if (e->err == 0 && !e->in_txn) {
        int r = sqlite_exec(e->db, "BEGIN IMMEDIATE");
        if (r < 0)
            campaign_db_fail(e, r);
        else
            e->in_txn = true;
    }
    return e->err == 0;
}

void campaign_db_save_node(struct campaign_engine *e, const struct campaign *c, size_t i)
{
    const struct cnode *n = &c->nodes[i];
    sqlite3_stmt *st = e->upd_n;
    if (!txn(e))
        return;
    sqlite3_reset(st);
    sqlite3_bind_text(st, 1, campaign_node_state_str(n->st), -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, n->attempts);
    sqlite3_bind_int64(st, 3, n->offset);
    sqlite3_bind_text(st, 4, n->reason ? n->reason : "", -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, n->started);
    sqlite3_bind_int64(st, 6, n->deadline);
    sqlite3_bind_int64(st, 7, n->retry_at);
    sqlite3_bind_int(st, 8, n->answered);
    sqlite3_bind_text(st, 9, c->spec.id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 10, (int64_t)i);
    campaign_db_fail(e, sqlite_step_changed(e->db, st));
    sqlite3_clear_bindings(st);
    sqlite3_reset(st);
}

void campaign_db_save_campaign(struct campaign_engine *e, const struct campaign *c)
{
    sqlite3_stmt *st = e->upd_c;
    if (!txn(e))
        return;
    sqlite3_reset(st);
    sqlite3_bind_text(st, 1, campaign_state_str(c->st), -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, c->reason, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, c->wave);
    sqlite3_bind_int(st, 4, c->threshold_halt);
    sqlite3_bind_int64(st, 5, c->updated);
    sqlite3_bind_int64(st, 6, c->finished);
    sqlite3_bind_text(st, 7, c->spec.id, -1, SQLITE_STATIC);
    campaign_db_fail(e, sqlite_step_changed(e->db, st));
    sqlite3_clear_bindings(st);
    sqlite3_reset(st);
}

void campaign_db_save_class(struct campaign_engine *e, const char *cls, uint32_t floor,
                            const struct image_version *current)
{
    if (!txn(e))
        return;
    sqlite3_stmt *st = e->put_cls;
    sqlite3_reset(st);
    sqlite3_bind_text(st, 1, cls, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, floor);
    sqlite3_bind_int64(st, 3, current->major);
    sqlite3_bind_int64(st, 4, current->minor);
    sqlite3_bind_int64(st, 5, current->revision);
    sqlite3_bind_int64(st, 6, current->build);
    sqlite3_bind_int64(st, 7, e->now);
    campaign_db_fail(e, sqlite_errno(sqlite3_step(st)));
    sqlite3_clear_bindings(st);
    sqlite3_reset(st);
}

int campaign_db_finish(struct campaign_engine *e, int r)
{
    if (r == 0 && e->in_txn)
        r = sqlite_exec(e->db, "COMMIT");
    if (r < 0 && e->in_txn)
        (void)sqlite_exec(e->db, "ROLLBACK");
    e->in_txn = false;
    return r;
}

/* ---- open / load ------------------------------------------------------------------------ */

#define CAMPAIGN_COLS                                                                              \
    "id, digest, class, v_major, v_minor, v_revision, v_build, security_counter, waves,"           \
    " max_parallel, node_deadline_s, step_timeout_s, retries, retry_backoff_s,"                    \
    " success_threshold_pct, abort_failures, abort_failure_pct, abort_min_executed, recovery,"     \
    " raise_floor, state, reason, wave, threshold_halt, created, updated, finished"

static void col_text(sqlite3_stmt *st, int col, char *dst, size_t cap)
{
    const unsigned char *t = sqlite3_column_text(st, col);
    snprintf(dst, cap, "%s", t ? (const char *)t : "");
}

static uint32_t col_u32(sqlite3_stmt *st, int col)
{
    int64_t v = sqlite3_column_int64(st, col);
    return v < 0 ? 0 : v > UINT32_MAX ? UINT32_MAX : (uint32_t)v;
}

static void waves_format(const struct campaign_spec *s, char *out, size_t cap)
{
    size_t off = 0;
    out[0] = '\0';
    for (size_t w = 0; w < s->n_waves && off < cap; w++) {
        int k = snprintf(out + off, cap - off, "%s%u%s", w ? "," : "", s->waves[w].value,
                         s->waves[w].percent ? "%" : "");
        if (k < 0)
            break;
        off += (size_t)k;
    }
}

static int waves_parse(const char *text, struct campaign_spec *s)
{
    const char *p = text;
    s->n_waves = 0;
    while (*p != '\0') {
        char *end;
        unsigned long v;
        if (s->n_waves == CAMPAIGN_WAVES_MAX || *p < '0' || *p > '9')
            return -EIO;
        errno = 0;
        v = strtoul(p, &end, 10);
        if (errno != 0 || v > UINT32_MAX)
            return -EIO;
        s->waves[s->n_waves].value = (uint32_t)v;
        s->waves[s->n_waves].percent = *end == '%';
        s->n_waves++;
        p = end + (*end == '%');
        if (*p == ',')
            p++;
        else if (*p != '\0')
            return -EIO;
    }
    return s->n_waves ? 0 : -EIO;
}

/* A campaign row (st positioned on it, CAMPAIGN_COLS) and its nodes. */
static int load_campaign(struct campaign_engine *e, sqlite3_stmt *st, struct campaign **ret,
                         char *err, size_t errlen)
{
    struct campaign *c = calloc(1, sizeof(*c));
    struct campaign_spec *s;
    char text[160];
    int r, v;

    *ret = NULL;
    if (c == NULL)
        return -ENOMEM;
    s = &c->spec;
    col_text(st, 0, s->id, sizeof(s->id));
    if (sqlite3_column_bytes(st, 1) != OTA_DIGEST_LEN) {
        snprintf(err, errlen, "campaign %s: stored digest is not %d bytes", s->id, OTA_DIGEST_LEN);
        r = -EIO;
        goto out;
    }
    memcpy(s->digest, sqlite3_column_blob(st, 1), OTA_DIGEST_LEN);
    col_text(st, 2, s->device_class, sizeof(s->device_class));
    s->version.major = (uint8_t)col_u32(st, 3);
    s->version.minor = (uint8_t)col_u32(st, 4);
    s->version.revision = (uint16_t)col_u32(st, 5);
    s->version.build = col_u32(st, 6);
    s->security_counter = col_u32(st, 7);
    col_text(st, 8, text, sizeof(text));
    if (waves_parse(text, s) < 0) {
        snprintf(err, errlen, "campaign %s: stored waves \"%s\" unreadable", s->id, text);
        r = -EIO;
        goto out;
    }
    s->max_parallel = col_u32(st, 9);
    s->node_deadline_s = col_u32(st, 10);
    s->step_timeout_s = col_u32(st, 11);
    s->retries = col_u32(st, 12);
    s->retry_backoff_s = col_u32(st, 13);
    s->success_threshold_pct = col_u32(st, 14);
    s->abort_failures = col_u32(st, 15);
    s->abort_failure_pct = col_u32(st, 16);
    s->abort_min_executed = col_u32(st, 17);
    s->recovery = sqlite3_column_int(st, 18) != 0;
    s->raise_floor = sqlite3_column_int(st, 19) != 0;
    col_text(st, 20, text, sizeof(text));
    v = campaign_state_parse(text);
    if (v < 0) {
        snprintf(err, errlen, "campaign %s: stored state \"%s\" unknown", s->id, text);
        r = -EIO;
        goto out;
    }
    c->st = (enum campaign_state)v;
    col_text(st, 21, c->reason, sizeof(c->reason));
    c->wave = col_u32(st, 22);
    c->threshold_halt = sqlite3_column_int(st, 23) != 0;
    c->created = sqlite3_column_int64(st, 24);
    c->updated = sqlite3_column_int64(st, 25);
    c->finished = sqlite3_column_int64(st, 26);
    if (c->wave >= s->n_waves) {
        snprintf(err, errlen, "campaign %s: stored wave %u of %zu", s->id, c->wave, s->n_waves);
        r = -EIO;
        goto out;
    }

    sqlite3_stmt *ns = e->sel_nodes;
    size_t cap = 0;
    sqlite3_reset(ns);
    sqlite3_bind_text(ns, 1, s->id, -1, SQLITE_TRANSIENT);
    for (;;) {
        int rc = sqlite3_step(ns);
        if (rc == SQLITE_DONE)
            break;
        if (rc != SQLITE_ROW) {
            r = sqlite_errno(rc);
            r = r < 0 ? r : -EIO;
            snprintf(err, errlen, "campaign %s: reading its nodes: %s", s->id,
                     sqlite3_errmsg(e->db));
            goto out_nodes;
        }
        if (c->n == cap) {
            size_t ncap = cap ? cap * 2 : 64;
            struct cnode *nn =
                cap < CAMPAIGN_TARGETS_MAX ? reallocarray(c->nodes, ncap, sizeof(*nn)) : NULL;
            if (nn == NULL) {
                r = -ENOMEM;
                goto out_nodes;
            }
            c->nodes = nn;
            cap = ncap;
        }
        struct cnode *n = &c->nodes[c->n];
        memset(n, 0, sizeof(*n));
        if ((size_t)sqlite3_column_int64(ns, 0) != c->n) {
            snprintf(err, errlen, "campaign %s: stored node positions have a gap at %zu", s->id,
                     c->n);
            r = -EIO;
            goto out_nodes;
        }
        c->n++;
        col_text(ns, 1, n->id, sizeof(n->id));
        col_text(ns, 2, text, sizeof(text));
        v = campaign_node_state_parse(text);
        if (v < 0) {
            snprintf(err, errlen, "campaign %s: node %s: stored state \"%s\" unknown", s->id, n->id,
                     text);
            r = -EIO;
            goto out_nodes;
        }
        n->st = (enum campaign_node_state)v;
        n->attempts = col_u32(ns, 3);
        n->offset = col_u32(ns, 4);
        const unsigned char *why = sqlite3_column_text(ns, 5);
        if (why != NULL && why[0] != '\0')
            campaign_set_reason(n, "%s", (const char *)why);
        n->started = sqlite3_column_int64(ns, 6);
        n->deadline = sqlite3_column_int64(ns, 7);
        n->retry_at = sqlite3_column_int64(ns, 8);
        n->answered = sqlite3_column_int(ns, 9) != 0;
        c->cnt[n->st]++;
    }
    r = campaign_wave_ends(s, c->n, c->wave_end, err, errlen);
    if (r < 0)
        goto out_nodes;
    campaign_assign_waves(c);
    r = campaign_index_nodes(c);
    if (r < 0)
        goto out_nodes;
    while (c->first_open < c->n && node_final_state(c->nodes[c->first_open].st))
        c->first_open++;
    c->next_pending = c->first_open;
    while (c->next_pending < c->n && c->nodes[c->next_pending].st != CN_PENDING)
        c->next_pending++;
    c->resume = campaign_live(c->st);
    c->dirty = true;
    *ret = c;
    c = NULL;
out_nodes:
    sqlite3_clear_bindings(ns);
    sqlite3_reset(ns);
out:
    campaign_free(c);
    return r;
}

int campaign_db_open(struct campaign_engine *e, const char *path, char *err, size_t errlen)
{
    int r = sqlite_errno(sqlite3_open_v2(
        path, &e->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL));
    if (r < 0) {
        snprintf(err, errlen, "%s: cannot open: %s", path,
                 e->db ? sqlite3_errmsg(e->db) : strerror(-r));
        return r;
    }
    sqlite3_busy_timeout(e->db, 2000);
    r = sqlite_exec(e->db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;");
    if (r == 0) {
        sqlite3_stmt *uv = NULL;
        r = sqlite_prepare(e->db, "PRAGMA user_version", &uv);
        if (r == 0 && sqlite3_step(uv) == SQLITE_ROW &&
            sqlite3_column_int(uv, 0) > SCHEMA_VERSION) {
            snprintf(err, errlen,
                     "%s: campaign schema version %d is newer than this fleetgwd's (%d)", path,
                     sqlite3_column_int(uv, 0), SCHEMA_VERSION);
            r = -EPROTONOSUPPORT;
        }
        sqlite3_finalize(uv);
        if (r < 0)
            return r;
    }
    if (r == 0)
        r = sqlite_exec(
            e->db,
            "BEGIN IMMEDIATE;"
            "CREATE TABLE IF NOT EXISTS campaigns ("
            " seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE,"
            " digest BLOB NOT NULL, class TEXT NOT NULL, v_major INTEGER NOT NULL,"
            " v_minor INTEGER NOT NULL, v_revision INTEGER NOT NULL, v_build INTEGER NOT NULL,"
            " security_counter INTEGER NOT NULL, waves TEXT NOT NULL,"
            " max_parallel INTEGER NOT NULL, node_deadline_s INTEGER NOT NULL,"
            " step_timeout_s INTEGER NOT NULL, retries INTEGER NOT NULL,"
            " retry_backoff_s INTEGER NOT NULL, success_threshold_pct INTEGER NOT NULL,"
            " abort_failures INTEGER NOT NULL, abort_failure_pct INTEGER NOT NULL,"
            " abort_min_executed INTEGER NOT NULL, recovery INTEGER NOT NULL,"
            " raise_floor INTEGER NOT NULL, state TEXT NOT NULL, reason TEXT NOT NULL,"
            " wave INTEGER NOT NULL, threshold_halt INTEGER NOT NULL, created INTEGER NOT NULL,"
            " updated INTEGER NOT NULL, finished INTEGER NOT NULL);"
            "CREATE INDEX IF NOT EXISTS campaigns_state ON campaigns(state);"
            "CREATE TABLE IF NOT EXISTS campaign_nodes ("
            " campaign TEXT NOT NULL, pos INTEGER NOT NULL, node TEXT NOT NULL,"
            " state TEXT NOT NULL, attempts INTEGER NOT NULL, off INTEGER NOT NULL,"
            " reason TEXT NOT NULL, started INTEGER NOT NULL, deadline INTEGER NOT NULL,"
            " retry_at INTEGER NOT NULL, answered INTEGER NOT NULL,"
            " PRIMARY KEY (campaign, pos)) WITHOUT ROWID;"
            "CREATE INDEX IF NOT EXISTS campaign_nodes_node ON campaign_nodes(node);"
            "CREATE TABLE IF NOT EXISTS class_state ("
            " class TEXT PRIMARY KEY, floor INTEGER NOT NULL, v_major INTEGER NOT NULL,"
            " v_minor INTEGER NOT NULL, v_revision INTEGER NOT NULL, v_build INTEGER NOT NULL,"
            " updated INTEGER NOT NULL);"
            "PRAGMA user_version = 1;"
            "COMMIT;");
    const struct sqlite_stmt_spec stmts[] = {
        {&e->ins_c, "INSERT INTO campaigns(" CAMPAIGN_COLS ") VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?,"
                    " ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"},
        {&e->upd_c, "UPDATE campaigns SET state = ?, reason = ?, wave = ?, threshold_halt = ?,"
                    " updated = ?, finished = ? WHERE id = ?"},
        {&e->ins_n, "INSERT INTO campaign_nodes(campaign, pos, node, state, attempts, off,"
                    " reason, started, deadline, retry_at, answered)"
                    " VALUES(?, ?, ?, ?, 0, 0, ?, 0, 0, 0, 0)"},
        {&e->upd_n, "UPDATE campaign_nodes SET state = ?, attempts = ?, off = ?, reason = ?,"
                    " started = ?, deadline = ?, retry_at = ?, answered = ?"
                    " WHERE campaign = ? AND pos = ?"},
        {&e->sel_active, "SELECT " CAMPAIGN_COLS " FROM campaigns"
                         " WHERE state IN ('running', 'halted') ORDER BY seq"},
        {&e->sel_id, "SELECT " CAMPAIGN_COLS " FROM campaigns WHERE id = ?"},
        {&e->sel_nodes, "SELECT pos, node, state, attempts, off, reason, started, deadline,"
                        " retry_at, answered FROM campaign_nodes WHERE campaign = ? ORDER BY pos"},
        {&e->exists_c, "SELECT 1 FROM campaigns WHERE id = ?"},
        {&e->get_cls, "SELECT floor, v_major, v_minor, v_revision, v_build FROM class_state"
                      " WHERE class = ?"},
        {&e->put_cls, "INSERT OR REPLACE INTO class_state(class, floor, v_major, v_minor,"
                      " v_revision, v_build, updated) VALUES(?, ?, ?, ?, ?, ?, ?)"},
        {&e->list_c, "SELECT id, state FROM campaigns ORDER BY seq DESC"},
    };
    if (r == 0)
        r = sqlite_prepare_all(e->db, stmts, sizeof(stmts) / sizeof(stmts[0]));
    if (r < 0)
        snprintf(err, errlen, "%s: cannot set up the campaign tables: %s", path,
                 sqlite3_errmsg(e->db));
    return r;
}

int campaign_db_load_live(struct campaign_engine *e, const char *path, char *err, size_t errlen)
{
    struct campaign *tail = NULL;
    int r = 0, rc;

    sqlite3_reset(e->sel_active);
    while ((rc = sqlite3_step(e->sel_active)) == SQLITE_ROW) {
        struct campaign *c = NULL;
        r = load_campaign(e, e->sel_active, &c, err, errlen);
        if (r < 0)
            goto out;
        if (tail == NULL)
            e->list = c;
        else
            tail->next = c;
        tail = c;
    }
    if (rc != SQLITE_DONE) {
        r = sqlite_errno(rc);
        r = r < 0 ? r : -EIO;
        snprintf(err, errlen, "%s: reading campaigns: %s", path, sqlite3_errmsg(e->db));
        goto out;
    }
    r = 0;
out:
    sqlite3_reset(e->sel_active);
    return r;
}

void campaign_db_close(struct campaign_engine *e)
{
    sqlite3_stmt *sts[] = {e->ins_c,      e->upd_c,   e->ins_n,     e->upd_n,
                           e->sel_active, e->sel_id,  e->sel_nodes, e->exists_c,
                           e->get_cls,    e->put_cls, e->list_c};
    for (size_t i = 0; i < sizeof(sts) / sizeof(sts[0]); i++)
        sqlite3_finalize(sts[i]);
    sqlite3_close_v2(e->db);
}

/* ---- create ----------------------------------------------------------------------------- */

int campaign_db_insert(struct campaign_engine *e, const struct campaign *c, char *err,
                       size_t errlen)
{
    const struct campaign_spec *spec = &c->spec;
    char waves[160];
    int r;

    if (!txn(e)) {
        snprintf(err, errlen, "cannot begin a transaction: %s", sqlite3_errmsg(e->db));
        return e->err;
    }
    sqlite3_reset(e->exists_c);
    sqlite3_bind_text(e->exists_c, 1, spec->id, -1, SQLITE_STATIC);
    r = sqlite3_step(e->exists_c);
    sqlite3_clear_bindings(e->exists_c);
    sqlite3_reset(e->exists_c);
    if (r == SQLITE_ROW) {
        snprintf(err, errlen, "id: campaign %s exists already", spec->id);
        return -EEXIST;
    }
    r = sqlite_errno(r);
    if (r < 0)
        return r;
    waves_format(spec, waves, sizeof(waves));
    sqlite3_stmt *st = e->ins_c;
    int k = 1;
    sqlite3_reset(st);
    sqlite3_bind_text(st, k++, spec->id, -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, k++, spec->digest, OTA_DIGEST_LEN, SQLITE_STATIC);
    sqlite3_bind_text(st, k++, spec->device_class, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, k++, spec->version.major);
    sqlite3_bind_int64(st, k++, spec->version.minor);
    sqlite3_bind_int64(st, k++, spec->version.revision);
    sqlite3_bind_int64(st, k++, spec->version.build);
    sqlite3_bind_int64(st, k++, spec->security_counter);
    sqlite3_bind_text(st, k++, waves, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, k++, spec->max_parallel);
    sqlite3_bind_int64(st, k++, spec->node_deadline_s);
    sqlite3_bind_int64(st, k++, spec->step_timeout_s);
    sqlite3_bind_int64(st, k++, spec->retries);
    sqlite3_bind_int64(st, k++, spec->retry_backoff_s);
    sqlite3_bind_int64(st, k++, spec->success_threshold_pct);
    sqlite3_bind_int64(st, k++, spec->abort_failures);
    sqlite3_bind_int64(st, k++, spec->abort_failure_pct);
    sqlite3_bind_int64(st, k++, spec->abort_min_executed);
    sqlite3_bind_int(st, k++, spec->recovery);
    sqlite3_bind_int(st, k++, spec->raise_floor);
    sqlite3_bind_text(st, k++, campaign_state_str(CAMPAIGN_RUNNING), -1, SQLITE_STATIC);
    sqlite3_bind_text(st, k++, "", -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, k++, 0);
    sqlite3_bind_int(st, k++, 0);
    sqlite3_bind_int64(st, k++, c->created);
    sqlite3_bind_int64(st, k++, c->updated);
    sqlite3_bind_int64(st, k++, 0);
    r = sqlite_errno(sqlite3_step(st));
    sqlite3_clear_bindings(st);
    sqlite3_reset(st);
    for (size_t i = 0; i < c->n && r == 0; i++) {
        st = e->ins_n;
        sqlite3_reset(st);
        sqlite3_bind_text(st, 1, spec->id, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, (int64_t)i);
        sqlite3_bind_text(st, 3, c->nodes[i].id, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 4, campaign_node_state_str(c->nodes[i].st), -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 5, c->nodes[i].reason ? c->nodes[i].reason : "", -1, SQLITE_STATIC);
        r = sqlite_errno(sqlite3_step(st));
        sqlite3_clear_bindings(st);
        sqlite3_reset(st);
    }
    if (r < 0)
        snprintf(err, errlen, "cannot store campaign %s: %s", spec->id, sqlite3_errmsg(e->db));
    return r;
}

/* ---- reads ------------------------------------------------------------------------------ */

int campaign_db_exists(struct campaign_engine *e, const char *id)
{
    int rc;
    sqlite3_reset(e->exists_c);
    sqlite3_bind_text(e->exists_c, 1, id ? id : "", -1, SQLITE_TRANSIENT);
    rc = sqlite3_step(e->exists_c);
    sqlite3_clear_bindings(e->exists_c);
    sqlite3_reset(e->exists_c);
    return rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? -ENOENT : sqlite_errno(rc);
}

struct campaign *campaign_db_load_id(struct campaign_engine *e, const char *id)
{
    struct campaign *c = NULL;
    char err[256];
    sqlite3_reset(e->sel_id);
    sqlite3_bind_text(e->sel_id, 1, id, -1, SQLITE_TRANSIENT);
    if (sqlite3_step(e->sel_id) != SQLITE_ROW ||
        load_campaign(e, e->sel_id, &c, err, sizeof(err)) < 0)
        c = NULL;
    sqlite3_clear_bindings(e->sel_id);
    sqlite3_reset(e->sel_id);
    return c;
}

int campaign_foreach(struct campaign_engine *e,
                     int (*fn)(const char *id, enum campaign_state st, void *u), void *u)
{
    int rc, r = 0;
    sqlite3_reset(e->list_c);
    while ((rc = sqlite3_step(e->list_c)) == SQLITE_ROW) {
        char id[CAMPAIGN_ID_MAX + 1];
        col_text(e->list_c, 0, id, sizeof(id));
        int v = campaign_state_parse((const char *)sqlite3_column_text(e->list_c, 1));
        if (v < 0)
            continue;
        r = fn(id, (enum campaign_state)v, u);
        if (r != 0)
            break;
    }
    if (r == 0 && rc != SQLITE_DONE && rc != SQLITE_ROW) {
        r = sqlite_errno(rc);
        r = r < 0 ? r : -EIO;
    }
    sqlite3_reset(e->list_c);
    return r;
}

int campaign_class_state(void *engine, const char *cls, struct ota_class_state *ret)
{
    struct campaign_engine *e = engine;
    int rc, r = 0;
    memset(ret, 0, sizeof(*ret));
    sqlite3_reset(e->get_cls);
    sqlite3_bind_text(e->get_cls, 1, cls ? cls : "", -1, SQLITE_TRANSIENT);
    rc = sqlite3_step(e->get_cls);
    if (rc == SQLITE_ROW) {
        ret->floor = col_u32(e->get_cls, 0);
        ret->has_current = true;
        ret->current.major = (uint8_t)col_u32(e->get_cls, 1);
        ret->current.minor = (uint8_t)col_u32(e->get_cls, 2);
        ret->current.revision = (uint16_t)col_u32(e->get_cls, 3);
        ret->current.build = col_u32(e->get_cls, 4);
    } else if (rc != SQLITE_DONE) {
        r = sqlite_errno(rc);
        r = r < 0 ? r : -EIO;
    }
    sqlite3_clear_bindings(e->get_cls);
    sqlite3_reset(e->get_cls);
    return r;
}
