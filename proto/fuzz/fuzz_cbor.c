/* Fuzz target: the CBOR decoder. Properties: no crash/overread; cbor_check() and a flat walk
 * with cbor_next() agree; an accepted item re-encodes to exactly the input bytes (the decoder
 * accepts only the shortest form, the encoder writes only it). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fleetgw/cbor.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t out[1 << 16];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct cbor_dec d;
    struct cbor_enc e;
    enum cbor_err ok = cbor_check(data, size);
    size_t len = 0;
    int reencode = size <= sizeof(out);

    /* flat walk of every head */
    cbor_enc_init(&e, out, sizeof(out));
    cbor_dec_init(&d, data, size);
    while (cbor_dec_remaining(&d) > 0) {
        struct cbor_item it, peeked;
        size_t before = d.off;
        if (cbor_peek(&d, &peeked) != CBOR_OK) {
            if (cbor_next(&d, &it) == CBOR_OK || d.off != before)
                abort(); /* peek and next must agree, and a failure must not move */
            break;
        }
        if (cbor_next(&d, &it) != CBOR_OK || d.off <= before || it.major != peeked.major ||
            it.val != peeked.val)
            abort();
        switch (it.major) {
        case CBOR_MAJOR_UINT:
            cbor_put_uint(&e, it.val);
            break;
        case CBOR_MAJOR_NINT:
            if (it.val > (uint64_t)INT64_MAX)
                reencode = 0;
            else
                cbor_put_int(&e, -1 - (int64_t)it.val);
            break;
        case CBOR_MAJOR_BYTES:
            cbor_put_bytes(&e, it.ptr, (size_t)it.val);
            break;
        case CBOR_MAJOR_TEXT:
            cbor_put_text(&e, (const char *)it.ptr, (size_t)it.val);
            break;
        case CBOR_MAJOR_ARRAY:
            cbor_put_array(&e, (size_t)it.val);
            break;
        case CBOR_MAJOR_MAP:
            cbor_put_map(&e, (size_t)it.val);
            break;
        case CBOR_MAJOR_TAG:
            cbor_put_tag(&e, it.val);
            break;
        case CBOR_MAJOR_SIMPLE:
            if (it.val == CBOR_SIMPLE_NULL)
                cbor_put_null(&e);
            else
                cbor_put_bool(&e, it.val == CBOR_SIMPLE_TRUE);
            break;
        }
    }
    if (ok == CBOR_OK) {
        /* a complete item: the flat walk consumed everything */
        if (d.off != size)
            abort();
        if (reencode) {
            if (cbor_enc_finish(&e, &len) != CBOR_OK || len != size || memcmp(out, data, size) != 0)
                abort();
        }
    }
    /* skip from the start: consumes a prefix or fails without moving */
    cbor_dec_init(&d, data, size);
    if (cbor_skip(&d) == CBOR_OK) {
        if (d.off == 0 || d.off > size)
            abort();
        if ((ok == CBOR_OK) != (d.off == size))
            abort();
    } else if (d.off != 0 || ok == CBOR_OK) {
        abort();
    }
    /* typed getters on the first item never overread and never move on failure */
    {
        uint64_t u;
        int64_t i;
        const uint8_t *p;
        const char *t;
        size_t n;
        int b;
        cbor_dec_init(&d, data, size);
        if (cbor_get_uint(&d, &u) != CBOR_OK && d.off != 0)
            abort();
        cbor_dec_init(&d, data, size);
        if (cbor_get_int(&d, &i) != CBOR_OK && d.off != 0)
            abort();
        cbor_dec_init(&d, data, size);
        if (cbor_get_bytes(&d, &p, &n, 64) == CBOR_OK) {
            if (n > 64 || n > size || p < data || (size_t)(p - data) > size - n)
                abort();
        } else if (d.off != 0) {
            abort();
        }
        cbor_dec_init(&d, data, size);
        if (cbor_get_text(&d, &t, &n, SIZE_MAX) == CBOR_OK) {
            if (cbor_utf8_valid((const uint8_t *)t, n) != 0)
                abort();
        } else if (d.off != 0) {
            abort();
        }
        cbor_dec_init(&d, data, size);
        if (cbor_get_array(&d, &n, 8) == CBOR_OK && n > 8)
            abort();
        if (cbor_get_map(&d, &n, 8) == CBOR_OK && n > 8)
            abort();
        if (cbor_get_tag(&d, &u) != CBOR_OK && cbor_get_bool(&d, &b) != CBOR_OK &&
            cbor_get_null(&d) != CBOR_OK && d.off > size)
            abort();
    }
    return 0;
}
