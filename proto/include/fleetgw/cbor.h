/* CBOR (RFC 8949) encoder and pull decoder over caller buffers: no allocation, no I/O.
 *
 * Supported: unsigned and negative integers (64-bit), byte and text strings, arrays and maps
 * of definite length, tags, and the simple values false, true and null.
 *
 * Encoder: always the preferred (shortest) form of every head, so encoding the same items in
 * the same order gives the same bytes (RFC 8949 section 4.2.1 "core deterministic" when the
 * caller writes map keys in bytewise-lexicographic order of their encodings, which for the
 * integer keys used in fleetgw is numeric order, non-negative keys first).
 *
 * Decoder policy (strict, documented in docs/protocol.md):
 *   - indefinite lengths (additional information 31) are rejected;
 *   - reserved additional information 28..30 is rejected (not well-formed);
 *   - a head whose argument is not in its shortest form is rejected (CBOR_ERR_NONSHORTEST):
 *     every byte of a signed token or a message then has exactly one meaning and a re-encode
 *     gives the same bytes;
 *   - floating point and every simple value other than false/true/null are rejected;
 *   - text strings must be valid UTF-8 (RFC 3629: no overlongs, surrogates or > U+10FFFF);
 *   - lengths and counts are checked against the bytes that remain before use (every item
 *     takes at least one byte), so no count can exceed the input size;
 *   - nesting deeper than CBOR_MAX_DEPTH is rejected when skipping or checking an item;
 *   - map key order is NOT checked by the generic decoder (real PSA tokens are not sorted);
 *     schema decoders reject duplicate keys themselves.
 */
#ifndef FLEETGW_CBOR_H
#define FLEETGW_CBOR_H

#include <stddef.h>
#include <stdint.h>

#if defined(__GNUC__)
#define CBOR_MUST_CHECK __attribute__((warn_unused_result))
#else
#define CBOR_MUST_CHECK
#endif

/* Maximum nesting of arrays/maps/tags accepted by cbor_skip() and cbor_check(). The schemas in
 * fleetgw nest at most 4 deep (COSE tag > array > claims map > component array > component
 * map), so 16 leaves room for unknown extension claims without unbounded recursion. */
#define CBOR_MAX_DEPTH 16u

enum cbor_major {
    CBOR_MAJOR_UINT = 0,
    CBOR_MAJOR_NINT = 1,
    CBOR_MAJOR_BYTES = 2,
    CBOR_MAJOR_TEXT = 3,
    CBOR_MAJOR_ARRAY = 4,
    CBOR_MAJOR_MAP = 5,
    CBOR_MAJOR_TAG = 6,
    CBOR_MAJOR_SIMPLE = 7,
};

#define CBOR_SIMPLE_FALSE 20u
#define CBOR_SIMPLE_TRUE  21u
#define CBOR_SIMPLE_NULL  22u

enum cbor_err {
    CBOR_OK = 0,
    CBOR_ERR_ARG,         /* NULL pointer or impossible argument */
    CBOR_ERR_NOSPACE,     /* encoder: output buffer too small */
    CBOR_ERR_TRUNCATED,   /* decoder: input ends inside an item */
    CBOR_ERR_INDEFINITE,  /* indefinite length (not supported by design) */
    CBOR_ERR_RESERVED,    /* additional information 28..30: not well-formed */
    CBOR_ERR_NONSHORTEST, /* argument not in its preferred (shortest) encoding */
    CBOR_ERR_UNSUPPORTED, /* float, undefined or other simple value */
    CBOR_ERR_TYPE,        /* item is not of the type the caller asked for */
    CBOR_ERR_RANGE,       /* value does not fit the caller's type or limit */
    CBOR_ERR_DEPTH,       /* nesting deeper than the limit */
    CBOR_ERR_UTF8,        /* text string is not valid UTF-8 */
    CBOR_ERR_TRAILING,    /* bytes left after the item when an exact parse was asked */
};

const char *cbor_err_str(enum cbor_err err);

/* ---- Encoder -------------------------------------------------------------------------- */

/* The first error sticks: later calls do nothing, cbor_enc_finish() reports it. With
 * buf == NULL and cap == 0 the encoder only measures (len counts what would be written). */
struct cbor_enc {
    uint8_t *buf;
    size_t cap;
    size_t len;
    enum cbor_err err;
};

void cbor_enc_init(struct cbor_enc *e, uint8_t *buf, size_t cap);
void cbor_put_uint(struct cbor_enc *e, uint64_t v);
void cbor_put_int(struct cbor_enc *e, int64_t v);
void cbor_put_bytes(struct cbor_enc *e, const uint8_t *data, size_t len);
/* Writes only the head of a byte string of len bytes; the caller appends the bytes. */
void cbor_put_bytes_head(struct cbor_enc *e, size_t len);
void cbor_put_text(struct cbor_enc *e, const char *text, size_t len);
void cbor_put_array(struct cbor_enc *e, size_t count);
void cbor_put_map(struct cbor_enc *e, size_t pairs);
void cbor_put_tag(struct cbor_enc *e, uint64_t tag);
void cbor_put_bool(struct cbor_enc *e, int value);
void cbor_put_null(struct cbor_enc *e);
/* Appends raw, already encoded bytes (e.g. a nested encoding). */
void cbor_put_raw(struct cbor_enc *e, const uint8_t *data, size_t len);
/* Returns the sticky error; on success *len (if not NULL) is the encoded length. */
enum cbor_err cbor_enc_finish(const struct cbor_enc *e, size_t *len) CBOR_MUST_CHECK;

/* Length of the head that encodes argument v (1, 2, 3, 5 or 9 bytes). */
size_t cbor_head_len(uint64_t v);

/* ---- Decoder -------------------------------------------------------------------------- */

struct cbor_dec {
    const uint8_t *buf;
    size_t len;
    size_t off;
};

/* One decoded head. For strings, ptr/val give the string's bytes (inside the input); for
 * arrays and maps val is the count (pairs for maps); for tags the tag number; for simple
 * values the simple value; for integers val is the argument (negative ints: -1 - val). */
struct cbor_item {
    enum cbor_major major;
    uint64_t val;
    const uint8_t *ptr;
};

void cbor_dec_init(struct cbor_dec *d, const uint8_t *buf, size_t len);
/* Bytes not yet consumed. */
size_t cbor_dec_remaining(const struct cbor_dec *d);
/* CBOR_OK when every byte was consumed, CBOR_ERR_TRAILING otherwise. */
enum cbor_err cbor_dec_done(const struct cbor_dec *d) CBOR_MUST_CHECK;

/* Reads the next head (and a string's bytes) without descending further. On error the
 * cursor does not move and *it is cleared. */
enum cbor_err cbor_next(struct cbor_dec *d, struct cbor_item *it) CBOR_MUST_CHECK;
/* Same, without consuming. */
enum cbor_err cbor_peek(const struct cbor_dec *d, struct cbor_item *it) CBOR_MUST_CHECK;
/* Skips one complete data item (with everything nested in it), checking well-formedness,
 * UTF-8 and the depth limit. */
enum cbor_err cbor_skip(struct cbor_dec *d) CBOR_MUST_CHECK;
/* Checks that buf holds exactly one well-formed item (under this decoder's rules). */
enum cbor_err cbor_check(const uint8_t *buf, size_t len) CBOR_MUST_CHECK;

/* Typed readers: each consumes one item of the expected type or fails without moving. */
enum cbor_err cbor_get_uint(struct cbor_dec *d, uint64_t *v) CBOR_MUST_CHECK;
/* Any integer that fits int64_t. */
enum cbor_err cbor_get_int(struct cbor_dec *d, int64_t *v) CBOR_MUST_CHECK;
/* Byte string of at most max_len bytes (else CBOR_ERR_RANGE); *ptr points into the input. */
enum cbor_err cbor_get_bytes(struct cbor_dec *d, const uint8_t **ptr, size_t *len,
                             size_t max_len) CBOR_MUST_CHECK;
/* Text string of at most max_len bytes, valid UTF-8; *ptr points into the input (no NUL). */
enum cbor_err cbor_get_text(struct cbor_dec *d, const char **ptr, size_t *len,
                            size_t max_len) CBOR_MUST_CHECK;
/* Array / map head with at most max_count elements / pairs. */
enum cbor_err cbor_get_array(struct cbor_dec *d, size_t *count, size_t max_count) CBOR_MUST_CHECK;
enum cbor_err cbor_get_map(struct cbor_dec *d, size_t *pairs, size_t max_pairs) CBOR_MUST_CHECK;
enum cbor_err cbor_get_tag(struct cbor_dec *d, uint64_t *tag) CBOR_MUST_CHECK;
enum cbor_err cbor_get_bool(struct cbor_dec *d, int *value) CBOR_MUST_CHECK;
enum cbor_err cbor_get_null(struct cbor_dec *d) CBOR_MUST_CHECK;

/* Checks a (ptr,len) text for valid UTF-8: 0 when valid. */
int cbor_utf8_valid(const uint8_t *s, size_t len);

#endif
