/* Node registry in SQLite: one row per enrolled node, keyed by the node id derived from its
 * Initial Attestation Key (IAK): hex of the first 16 bytes of SHA-256 of the 65-byte
 * uncompressed P-256 point. Holds the IAK public key, device class, firmware version, the
 * last attestation verdict with its reason, time and the PSA token profile it was given on,
 * and when the node was last seen. Columns added since the first schema are added to an older
 * registry file when it is opened (registry.c, migrations[]). */
#ifndef FLEETGWD_REGISTRY_H
#define FLEETGWD_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <fleetgw/ident.h>

#define REGISTRY_PUB_LEN    CRYPTO_P256_PUB_LEN
#define REGISTRY_ID_LEN     IDENT_NODE_ID_LEN /* hex characters (proto's ident_node_id) */
#define REGISTRY_TEXT_MAX   64
#define REGISTRY_IAK_ID_LEN IDENT_SYM_KEY_ID_LEN
#define REGISTRY_SEALED_MAX 1024 /* tpm_identity.h's TPM_SEAL_BLOB_MAX */

struct registry;

/* Tags: a comma-separated list of up to REGISTRY_TAGS_COUNT_MAX tags of 1..REGISTRY_TAG_MAX
 * characters of [A-Za-z0-9._-] (an operator's grouping, e.g. site or batch; campaign
 * selectors match them). */
#define REGISTRY_TAG_MAX        32
#define REGISTRY_TAGS_COUNT_MAX 8
#define REGISTRY_TAGS_MAX       (REGISTRY_TAGS_COUNT_MAX * (REGISTRY_TAG_MAX + 1))

struct registry_node {
    char id[REGISTRY_ID_LEN + 1];
    uint8_t iak_pub[REGISTRY_PUB_LEN];
    char device_class[REGISTRY_TEXT_MAX + 1];
    char fw_version[REGISTRY_TEXT_MAX + 1];
    char verdict[16]; /* "unknown", "trusted", "quarantined" */
    char reason[REGISTRY_TEXT_MAX * 2 + 1];
    int64_t verdict_time; /* epoch seconds, 0 = never */
    int64_t last_seen;    /* epoch seconds, 0 = never */
    int64_t added;
    char profile[REGISTRY_TEXT_MAX + 1]; /* PSA token profile of the last verdict, "" if none */
    /* A node enrolled with a symmetric IAK (COSE_Mac0): no public key (iak_pub all zero);
     * its IAK id SHA-256(SHA-256(key)) (stored in the iak_pub column, 32 bytes) and the key
     * sealed by the gateway's TPM (tpm_seal blob, column iak_sealed). The key itself is never
     * stored. */
    bool symmetric;
    uint8_t iak_id[REGISTRY_IAK_ID_LEN];
    uint8_t iak_sealed[REGISTRY_SEALED_MAX];
    size_t iak_sealed_len;
    char tags[REGISTRY_TAGS_MAX + 1]; /* "" = none */
};

/* Node id of a 65-byte uncompressed point (0x04 || X || Y). -EINVAL if not uncompressed. */
int registry_node_id(const uint8_t pub[REGISTRY_PUB_LEN], char id[REGISTRY_ID_LEN + 1])
    __attribute__((warn_unused_result));

int registry_open(const char *path, struct registry **ret) __attribute__((warn_unused_result));
/* Closes; a batch still open is rolled back (commit it first). */
void registry_close(struct registry *r);
/* Write batching (issue 15): a storm of verdicts and last-seen updates costs one fsync per
 * batch, not one per node. registry_batch_begin() opens a write transaction unless one is
 * open: 0, or negative (nothing opened: the next write commits on its own, as without a
 * batch). registry_batch_commit() makes the batch durable: 0 (also when none is open), or
 * negative after a failed commit, which rolls the batch back (its writes are lost). Every
 * write of this handle between the two is in the batch, whoever makes it. */
int registry_batch_begin(struct registry *r) __attribute__((warn_unused_result));
int registry_batch_commit(struct registry *r) __attribute__((warn_unused_result));
bool registry_batch_open(const struct registry *r);

/* -EEXIST when the node is already enrolled; -EINVAL for a bad key or class. */
int registry_add(struct registry *r, const uint8_t pub[REGISTRY_PUB_LEN], const char *device_class,
                 int64_t now, struct registry_node *ret) __attribute__((warn_unused_result));
/* Enrolls a node with a symmetric IAK: its IAK id (ident_sym_key_id) and the key sealed by the
 * TPM (1..REGISTRY_SEALED_MAX bytes; never the key). Node id = ident_sym_node_id(key_id).
 * -EEXIST when enrolled; -EINVAL for a bad blob size or class. */
int registry_add_symmetric(struct registry *r, const uint8_t key_id[REGISTRY_IAK_ID_LEN],
                           const uint8_t *sealed, size_t sealed_len, const char *device_class,
                           int64_t now, struct registry_node *ret)
    __attribute__((warn_unused_result));
/* -ENOENT when unknown. */
int registry_get(struct registry *r, const char *id, struct registry_node *ret)
    __attribute__((warn_unused_result));
int registry_remove(struct registry *r, const char *id) __attribute__((warn_unused_result));
/* Records a verdict at time now. seen: the verdict was given on something the node sent
 * (evidence), so last_seen becomes now too; false for a verdict given in the node's absence
 * (an unanswered challenge), which leaves last_seen as it was. */
int registry_set_verdict(struct registry *r, const char *id, const char *verdict,
                         const char *reason, const char *fw_version, int64_t now, bool seen)
    __attribute__((warn_unused_result));
/* The same, also recording the PSA token profile the verdict's token used (profile NULL or
 * "": the registry's is kept, as for fw_version). */
int registry_record_verdict(struct registry *r, const char *id, const char *verdict,
                            const char *reason, const char *fw_version, const char *profile,
                            int64_t now, bool seen) __attribute__((warn_unused_result));
/* Whether tags is a valid tag list ("" = none). */
bool registry_tags_valid(const char *tags);
/* Whether the node carries tag. */
bool registry_has_tag(const struct registry_node *n, const char *tag);
/* Replaces the node's tags: 0, -EINVAL (not a valid list), -ENOENT. */
int registry_set_tags(struct registry *r, const char *id, const char *tags)
    __attribute__((warn_unused_result));
int registry_touch(struct registry *r, const char *id, int64_t now)
    __attribute__((warn_unused_result));
/* A counter that changes with every write of membership or verdict (add, remove, verdict),
 * committed or not: registry_snapshot.c rewrites the broker's snapshot when it moved. */
uint64_t registry_generation(const struct registry *r);
/* Writes the broker's snapshot of the registry to path (docs/operator-guide.md "Edge broker
 * plugin"): a new SQLite file (rollback journal, not WAL, so that a reader without write
 * access can open it at any time) holding only table nodes(id, verdict) as committed now,
 * mode 0640, fsynced, then renamed over path and the directory fsynced. A reader sees the
 * old file or the new one, never a part. -EBUSY while a write batch is open (its writes are
 * not committed); other negative errno with the reason in err; nothing is left at
 * <path>.tmp after a failure. */
int registry_snapshot_write(struct registry *r, const char *path, char *err, size_t errlen)
    __attribute__((warn_unused_result));
/* Calls fn for every node in id order; stops early when fn returns non-zero. */
int registry_foreach(struct registry *r, int (*fn)(const struct registry_node *n, void *u), void *u)
    __attribute__((warn_unused_result));

#endif
