/* fleetgw/batch.h: the uplink batch format, version 1 (docs/batch-format.md).
 *
 * With uplink.batch on, fleetgwd packs messages of several nodes into one publish on
 * <prefix>/batch, so that a site fits a cloud connection's publish-rate ceiling (AWS IoT
 * Core: 100 publishes/s per connection). A batch is acknowledged (QoS 1) as a whole and its
 * messages leave the spool only then. The cloud side splits it back into per-node messages
 * (tools/fleetgw-unbatch, or any CBOR decoder following docs/batch-format.md).
 *
 * Encoding (CBOR, RFC 8949, definite lengths, preferred serialization):
 *
 *   batch = [ version: 1, gateway: tstr, entries: [ + entry ] ]
 *   entry = [ node: tstr, tail: tstr, seq: uint, ts: uint, payload: bstr ]
 *
 *   gateway  the gateway's uplink client id (1..BATCH_GATEWAY_MAX bytes of UTF-8)
 *   node     the node id (docs/protocol.md: 1..48 of [A-Za-z0-9_-])
 *   tail     the message's cloud topic without "<prefix>/" (e.g. "nodes/n1/telemetry"),
 *            1..BATCH_TAIL_MAX bytes of UTF-8: what the relay would have published, as
 *            <prefix>/<tail>
 *   seq      the message's spool id: unique per gateway and increasing in the order the
 *            gateway received the messages, so per-node order is seq order, across batches
 *   ts       when the gateway received it (Unix seconds)
 *   payload  the node's payload, unchanged (0..BATCH_PAYLOAD_MAX bytes)
 *
 * Entries are in increasing seq order within a batch, and a batch's entries all have seqs
 * above every seq of the batches acknowledged before it. The batch id is its first seq. A
 * batch delivered twice (QoS 1 redelivery, or resent whole after a gateway restart) has the
 * same id and the same entries: consumers de-duplicate by (gateway, seq). */
#ifndef FLEETGW_BATCH_H
#define FLEETGW_BATCH_H

#include <stddef.h>
#include <stdint.h>

#define BATCH_VERSION     1
#define BATCH_GATEWAY_MAX 128
#define BATCH_TAIL_MAX    256
#define BATCH_PAYLOAD_MAX (1u << 20)
#define BATCH_ENTRIES_MAX 65535

enum batch_err {
    BATCH_OK = 0,
    BATCH_ERR_CBOR,    /* not well-formed CBOR (proto's strict rules: shortest heads, valid
                        * UTF-8, no trailing bytes), or not the types and array lengths above
                        * (where: the offset). The encoder reports a string that is not UTF-8
                        * as BATCH_ERR_FIELD. */
    BATCH_ERR_VERSION, /* a version this decoder does not know */
    BATCH_ERR_FIELD,   /* a field out of its range: empty or too long string, bad node id,
                        * no entries or more than BATCH_ENTRIES_MAX, payload too long */
    BATCH_ERR_ORDER,   /* seqs not strictly increasing */
    BATCH_ERR_NOSPACE, /* encoder: the entry does not fit the buffer (or the batch already
                        * holds BATCH_ENTRIES_MAX entries) */
};

const char *batch_err_str(enum batch_err err);

struct batch_entry {
    const char *node;
    size_t node_len;
    const char *tail;
    size_t tail_len;
    uint64_t seq;
    uint64_t ts;
    const uint8_t *payload;
    size_t payload_len;
};

/* ---- Encoder: entries go into the caller's buffer; the heads are written at the end ---- */

struct batch_enc {
    uint8_t *buf;
    size_t cap;
    size_t start; /* where the entries begin (room reserved for the heads) */
    size_t len;   /* end of the last entry */
    size_t count;
    uint64_t last_seq;
    const char *gateway;
    size_t gateway_len;
};

/* gateway must stay valid until batch_enc_finish(). Returns BATCH_ERR_FIELD for a bad
 * gateway id, BATCH_ERR_NOSPACE when cap cannot hold even the heads. The room reserved for
 * the heads is batch_size(gateway_len, BATCH_ENTRIES_MAX, 0) (the entries' array head at its
 * largest, 3 bytes), so a buffer of that plus the entries' bytes always suffices; the batch
 * itself is batch_size(gateway_len, count, entries_bytes) bytes. */
enum batch_err batch_enc_init(struct batch_enc *e, uint8_t *buf, size_t cap, const char *gateway,
                              size_t gateway_len);
/* Bytes an entry adds to a batch (for filling a batch up to a size limit). */
size_t batch_entry_size(const struct batch_entry *en);
/* Bytes of a whole batch of `count` entries whose entries take `entries_bytes`. */
size_t batch_size(size_t gateway_len, size_t count, size_t entries_bytes);
/* Appends one entry. BATCH_ERR_NOSPACE (nothing written) when it does not fit,
 * BATCH_ERR_FIELD / BATCH_ERR_ORDER for an entry the decoder would refuse. */
enum batch_err batch_enc_add(struct batch_enc *e, const struct batch_entry *en);
/* The finished batch: *out points into the buffer (the heads are written right before the
 * entries). At least one entry must have been added (BATCH_ERR_FIELD otherwise). */
enum batch_err batch_enc_finish(struct batch_enc *e, const uint8_t **out, size_t *out_len);

/* ---- Decoder: the input stays the caller's; entries point into it ---- */

struct batch_dec {
    const uint8_t *buf;
    size_t len;
    size_t off;
    size_t left; /* entries not yet read */
    uint64_t last_seq;
    int started;
};

/* Checks the version and reads the gateway id (*gateway points into buf) and the number of
 * entries. On error *where is the byte offset the problem was found at. */
enum batch_err batch_dec_init(struct batch_dec *d, const uint8_t *buf, size_t len,
                              const char **gateway, size_t *gateway_len, size_t *count,
                              size_t *where);
/* The next entry: BATCH_OK with *en filled, or an error (with *where). After the last entry
 * it checks that nothing trails the batch: call it count times, then batch_dec_end(). */
enum batch_err batch_dec_next(struct batch_dec *d, struct batch_entry *en, size_t *where);
/* BATCH_OK when every entry was read and no byte trails the batch. */
enum batch_err batch_dec_end(const struct batch_dec *d, size_t *where);

#endif
