/* Fuzz target: the uplink batch decoder (fleetgw/batch.h). Properties: no crash/overread; an
 * error's offset lies inside the input; every entry the decoder accepts the encoder accepts
 * too, and re-encoding an accepted batch gives exactly the input bytes (both sides use only
 * the shortest heads), of exactly batch_size() bytes, which decode to the same entries. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fleetgw/batch.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct batch_entry entries[BATCH_ENTRIES_MAX];

static int entry_eq(const struct batch_entry *a, const struct batch_entry *b)
{
    return a->node_len == b->node_len && memcmp(a->node, b->node, a->node_len) == 0 &&
           a->tail_len == b->tail_len && memcmp(a->tail, b->tail, a->tail_len) == 0 &&
           a->seq == b->seq && a->ts == b->ts && a->payload_len == b->payload_len &&
           (a->payload_len == 0 || memcmp(a->payload, b->payload, a->payload_len) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct batch_dec d;
    struct batch_enc e;
    const char *gw = NULL;
    size_t gl = 0, count = 0, where = 0, sum = 0;
    enum batch_err r = batch_dec_init(&d, data, size, &gw, &gl, &count, &where);

    if (r != BATCH_OK) {
        if (where > size || gw != NULL || count != 0)
            abort();
        return 0;
    }
    if (count == 0 || count > BATCH_ENTRIES_MAX || gl == 0 || gl > BATCH_GATEWAY_MAX)
        abort();
    for (size_t i = 0; i < count; i++) {
        r = batch_dec_next(&d, &entries[i], &where);
        if (r != BATCH_OK) {
            if (where > size || entries[i].node != NULL)
                abort();
            return 0;
        }
        if (i > 0 && entries[i].seq <= entries[i - 1].seq)
            abort();
        sum += batch_entry_size(&entries[i]);
    }
    if (batch_dec_end(&d, &where) != BATCH_OK || batch_size(gl, count, sum) != size)
        abort();

    /* re-encode: the heads are reserved at their largest, so a little more than size */
    size_t cap = size + 16;
    uint8_t *buf = malloc(cap);
    const uint8_t *out = NULL;
    size_t len = 0;
    if (buf == NULL)
        abort();
    if (batch_enc_init(&e, buf, cap, gw, gl) != BATCH_OK)
        abort();
    for (size_t i = 0; i < count; i++)
        if (batch_enc_add(&e, &entries[i]) != BATCH_OK)
            abort();
    if (batch_enc_finish(&e, &out, &len) != BATCH_OK || len != size || memcmp(out, data, size) != 0)
        abort();
    /* and the re-encoded bytes decode to the same entries */
    const char *gw2 = NULL;
    size_t gl2 = 0, count2 = 0;
    if (batch_dec_init(&d, out, len, &gw2, &gl2, &count2, &where) != BATCH_OK || gl2 != gl ||
        memcmp(gw2, gw, gl) != 0 || count2 != count)
        abort();
    for (size_t i = 0; i < count; i++) {
        struct batch_entry en;
        if (batch_dec_next(&d, &en, &where) != BATCH_OK || !entry_eq(&en, &entries[i]))
            abort();
    }
    if (batch_dec_end(&d, &where) != BATCH_OK)
        abort();
    free(buf);
    return 0;
}
