/* What the pieces of the campaign engine share, private to them (the API is campaign.h):
 * the engine's memory (struct campaign_engine, struct campaign, struct cnode) and the
 * functions one piece calls in another. Calls go one way, from the top of this list down:
 *   campaign_events.c  the nodes' messages (ack, chunk request, ota-status, attestation)
 *   campaign.c         the state machine: the call protocol (one transaction per call, the
 *                      actions handed out after the commit), transitions, waves, thresholds,
 *                      abort criteria, timers, create/halt/resume/abort, open/close
 *   campaign_json.c    the status document
 *   campaign_db.c      SQLite: schema, statements, loading, the writes, the class state
 *   campaign_model.c   the campaigns in memory: names, node index, waves, the spec's and
 *                      targets' checks, the read-only queries */
#ifndef FLEETGWD_CAMPAIGN_INTERNAL_H
#define FLEETGWD_CAMPAIGN_INTERNAL_H

#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "campaign.h"

struct cnode {
    char id[CAMPAIGN_NODE_MAX + 1];
    enum campaign_node_state st;
    uint32_t wave; /* the first wave that covers it */
    uint32_t attempts, offset;
    bool answered; /* the node said anything since its first offer */
    int64_t started, deadline, retry_at;
    int64_t activity; /* memory only: the last sign of life, or the last step started */
    char *reason;     /* NULL = none */
};

struct campaign {
    struct campaign *next;
    struct campaign_spec spec;
    enum campaign_state st;
    char reason[CAMPAIGN_REASON_MAX + 1];
    uint32_t wave;       /* current wave, 0-based */
    bool threshold_halt; /* halted because the current wave missed its threshold */
    int64_t created, updated, finished;
    struct cnode *nodes;
    uint32_t *by_id; /* node indices sorted by id */
    size_t n;
    size_t wave_end[CAMPAIGN_WAVES_MAX];
    /* Offers go in target order, so every node in progress lies in [first_open,
     * next_pending): timers scan that window, not the whole target list. */
    size_t first_open;   /* every node before it is final */
    size_t next_pending; /* no node before it is pending */
    size_t cnt[CN__COUNT];
    bool resume; /* loaded by campaign_open: the first tick re-emits */
    bool save;   /* campaign row changed in this call */
    bool dirty;  /* status changed since the last STATUS */
    bool gone;   /* final: dropped from memory after this call's actions */
    int64_t status_at;
};

struct qact {
    enum campaign_action_kind kind;
    struct campaign *c;
    size_t pos; /* node index, or SIZE_MAX */
    enum campaign_state state;
    char *json;
    int priority;
    const char *token;
    char *text;
};

struct campaign_engine {
    sqlite3 *db;
    struct campaign_ops ops;
    struct campaign *list; /* not final, oldest first */
    sqlite3_stmt *ins_c, *upd_c, *ins_n, *upd_n, *sel_active, *sel_id, *sel_nodes, *exists_c,
        *get_cls, *put_cls, *list_c;
    struct qact *q;
    size_t nq, capq;
    int err;     /* first failed write of the current call */
    bool in_txn; /* the current call opened its transaction (at its first write) */
    bool oom;    /* an action could not be queued */
    int64_t now; /* the current call's time */
};

static inline bool in_progress(enum campaign_node_state s)
{
    return s > CN_PENDING && s < CN_FINAL_FIRST;
}

static inline bool node_final_state(enum campaign_node_state s)
{
    return s >= CN_FINAL_FIRST && s < CN__COUNT;
}

static inline bool campaign_live(enum campaign_state s)
{
    return s == CAMPAIGN_RUNNING || s == CAMPAIGN_HALTED;
}

/* ---- campaign_model.c ---------------------------------------------------------------------- */

/* The state named text (a stored name), or -1. */
int campaign_state_parse(const char *text);
int campaign_node_state_parse(const char *text);
/* The campaign id in memory (running or halted, not ending in this call), or NULL. */
struct campaign *campaign_find_live(struct campaign_engine *e, const char *id);
/* The index of node in c, or -1. */
long campaign_find_node(const struct campaign *c, const char *node);
/* Builds c->by_id over c->nodes: 0 or -ENOMEM. */
int campaign_index_nodes(struct campaign *c);
void campaign_free(struct campaign *c);
/* Cumulative wave ends for n targets; -EINVAL with err naming the wave when they decrease
 * or the last one does not cover every target. */
int campaign_wave_ends(const struct campaign_spec *s, size_t n, size_t ends[CAMPAIGN_WAVES_MAX],
                       char *err, size_t errlen);
/* Every node's wave from c->wave_end. */
void campaign_assign_waves(struct campaign *c);
/* A node's state, with the counts per state kept. */
void campaign_set_state(struct campaign *c, size_t i, enum campaign_node_state st);
void campaign_clear_reason(struct cnode *n);
/* Truncated to CAMPAIGN_REASON_MAX; none when out of memory. */
void campaign_set_reason(struct cnode *n, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* A new campaign in memory from the operator's spec and targets (not stored, not in e's
 * list): every check of campaign_create but the id's uniqueness, err saying which field. */
int campaign_build(const struct campaign_engine *e, const struct campaign_spec *spec,
                   const struct campaign_target *targets, size_t n_targets, struct campaign **ret,
                   char *err, size_t errlen) __attribute__((warn_unused_result));

/* ---- campaign_db.c -------------------------------------------------------------------------- */

/* Opens (creating) the database at path and prepares the statements into e. */
int campaign_db_open(struct campaign_engine *e, const char *path, char *err, size_t errlen)
    __attribute__((warn_unused_result));
void campaign_db_close(struct campaign_engine *e);
/* Appends every campaign that is not final to e->list, oldest first. */
int campaign_db_load_live(struct campaign_engine *e, const char *path, char *err, size_t errlen)
    __attribute__((warn_unused_result));
/* Any stored campaign (final ones included), for its status: NULL when unknown. */
struct campaign *campaign_db_load_id(struct campaign_engine *e, const char *id);
/* Whether id was ever created: 0, -ENOENT, or a SQLite error. */
int campaign_db_exists(struct campaign_engine *e, const char *id);
/* Records the first failed write of the call in e->err. */
void campaign_db_fail(struct campaign_engine *e, int r);
/* The writes of a call (its transaction is opened at the first one; e->err on failure). */
void campaign_db_save_node(struct campaign_engine *e, const struct campaign *c, size_t i);
void campaign_db_save_campaign(struct campaign_engine *e, const struct campaign *c);
void campaign_db_save_class(struct campaign_engine *e, const char *cls, uint32_t floor,
                            const struct image_version *current);
/* Stores a new campaign with its nodes, in the call's transaction: -EEXIST (id used), other
 * negative errno, err saying why. */
int campaign_db_insert(struct campaign_engine *e, const struct campaign *c, char *err,
                       size_t errlen) __attribute__((warn_unused_result));
/* Ends the call's transaction: commits it when r is 0, else rolls it back; returns r, or
 * the commit's error. */
int campaign_db_finish(struct campaign_engine *e, int r) __attribute__((warn_unused_result));

/* ---- campaign_json.c ------------------------------------------------------------------------ */

/* The status document of c (campaign_status_json), NULL when out of memory. */
char *campaign_json_status(const struct campaign *c, bool nodes);

/* ---- campaign.c, for campaign_events.c --------------------------------------------------- */

void campaign_call_begin(struct campaign_engine *e, int64_t now);
/* Ends a call: commit, then the actions. */
int campaign_call_end(struct campaign_engine *e);
struct qact *campaign_queue(struct campaign_engine *e, enum campaign_action_kind kind,
                            struct campaign *c, size_t pos);
/* Node i changed: its row now, the campaign's row at the commit. */
void campaign_save_node(struct campaign_engine *e, struct campaign *c, size_t i);
void campaign_node_final(struct campaign_engine *e, struct campaign *c, size_t i,
                         enum campaign_node_state st, const char *why);
void campaign_node_finalf(struct campaign_engine *e, struct campaign *c, size_t i,
                          enum campaign_node_state st, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
void campaign_step_failed(struct campaign_engine *e, struct campaign *c, size_t i,
                          enum campaign_node_state st, const char *why);
/* Wave advance and new offers (running campaigns only). */
void campaign_progress(struct campaign_engine *e, struct campaign *c);

#endif
