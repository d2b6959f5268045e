/* Strict DER for ECDSA-Sig-Value and the P-256 SubjectPublicKeyInfo (see der.h). */
#include "fleetgw/der.h"

#include <string.h>

#define P256_SCALAR_LEN 32u

/* SEQUENCE { SEQUENCE { OID id-ecPublicKey, OID prime256v1 }, BIT STRING (0 unused bits) }.
 * DER is canonical, so a P-256 key has exactly this prefix and nothing else is one. */
static const uint8_t spki_prefix[] = {
    0x30, 0x59,                                                 /* SEQUENCE, 89 */
    0x30, 0x13,                                                 /* SEQUENCE, 19 */
    0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01,       /* 1.2.840.10045.2.1 */
    0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, /* 1.2.840.10045.3.1.7 */
    0x03, 0x42, 0x00,                                           /* BIT STRING, 66, 0 unused */
};
#define SPKI_ALG_END 23u /* spki_prefix[2..22] is the AlgorithmIdentifier */

/* Reads one INTEGER at der[*off], which must end at or before end, into out[32]
 * (right-aligned). */
static enum der_status parse_int(const uint8_t *der, size_t *off, size_t end,
                                 uint8_t out[P256_SCALAR_LEN])
{
    size_t o = *off;
    if (o > end || end - o < 2)
        return DER_ERR_TRUNCATED;
    if (der[o] != 0x02)
        return DER_ERR_TAG;
    size_t ilen = der[o + 1];
    if ((ilen & 0x80u) != 0)
        return DER_ERR_LENGTH; /* long form never needed for <= 33 bytes */
    if (ilen == 0)
        return DER_ERR_INTEGER;
    if (ilen > end - o - 2)
        return DER_ERR_TRUNCATED;
    const uint8_t *v = der + o + 2;
    size_t n = ilen;
    if ((v[0] & 0x80u) != 0)
        return DER_ERR_INTEGER; /* negative */
    if (n > 1 && v[0] == 0x00) {
        if ((v[1] & 0x80u) == 0)
            return DER_ERR_INTEGER; /* non-minimal leading zero */
        v++;
        n--;
    }
    if (n > P256_SCALAR_LEN)
        return DER_ERR_INTEGER;
    memcpy(out + (P256_SCALAR_LEN - n), v, n);
    *off = o + 2 + ilen;
    return DER_OK;
}

enum der_status der_ecdsa_sig_to_raw(const uint8_t *der, size_t der_len,
                                     uint8_t raw[CRYPTO_P256_SIG_LEN])
{
    enum der_status st;
    if (raw == NULL)
        return DER_ERR_ARG;
    memset(raw, 0, CRYPTO_P256_SIG_LEN);
    if (der == NULL)
        return DER_ERR_ARG;
    if (der_len < 2) {
        st = DER_ERR_TRUNCATED;
        goto out;
    }
    if (der[0] != 0x30) {
        st = DER_ERR_TAG;
        goto out;
    }
    size_t len = der[1];
    if ((len & 0x80u) != 0) {
        st = DER_ERR_LENGTH; /* content is at most 70 bytes: short form only */
        goto out;
    }
    if (len > der_len - 2) {
        st = DER_ERR_TRUNCATED;
        goto out;
    }
    if (len < der_len - 2) {
        st = DER_ERR_TRAILING;
        goto out;
    }
    size_t off = 2;
    st = parse_int(der, &off, der_len, raw);
    if (st != DER_OK)
        goto out;
    st = parse_int(der, &off, der_len, raw + P256_SCALAR_LEN);
    if (st != DER_OK)
        goto out;
    if (off != der_len)
        st = DER_ERR_LENGTH; /* SEQUENCE holds more than two INTEGERs */
out:
    if (st != DER_OK)
        memset(raw, 0, CRYPTO_P256_SIG_LEN);
    return st;
}

/* Minimal INTEGER encoding of a 32-byte big-endian scalar: returns its encoded length. */
static size_t int_len(const uint8_t *v, size_t *skip, int *pad)
{
    size_t s = 0;
    while (s < P256_SCALAR_LEN - 1 && v[s] == 0)
        s++;
    *skip = s;
    *pad = (v[s] & 0x80u) != 0;
    return 2 + (P256_SCALAR_LEN - s) + (size_t)*pad;
}

static size_t put_int(uint8_t *out, const uint8_t *v, size_t skip, int pad)
{
    size_t n = P256_SCALAR_LEN - skip + (size_t)pad;
    out[0] = 0x02;
    out[1] = (uint8_t)n;
    size_t o = 2;
    if (pad)
        out[o++] = 0x00;
    memcpy(out + o, v + skip, P256_SCALAR_LEN - skip);
    return 2 + n;
}

enum der_status der_ecdsa_sig_from_raw(const uint8_t raw[CRYPTO_P256_SIG_LEN], uint8_t *out,
                                       size_t cap, size_t *out_len)
{
    if (raw == NULL || out == NULL || out_len == NULL)
        return DER_ERR_ARG;
    *out_len = 0;
    size_t skip_r, skip_s;
    int pad_r, pad_s;
    size_t lr = int_len(raw, &skip_r, &pad_r);
    size_t ls = int_len(raw + P256_SCALAR_LEN, &skip_s, &pad_s);
    size_t total = 2 + lr + ls; /* at most 2 + 35 + 35 = 72 */
    if (total > cap)
        return DER_ERR_BUFFER;
    out[0] = 0x30;
    out[1] = (uint8_t)(lr + ls);
    size_t o = 2;
    o += put_int(out + o, raw, skip_r, pad_r);
    o += put_int(out + o, raw + P256_SCALAR_LEN, skip_s, pad_s);
    *out_len = o;
    return DER_OK;
}

enum der_status der_p256_spki_parse(const uint8_t *der, size_t der_len,
                                    uint8_t pub[CRYPTO_P256_PUB_LEN])
{
    if (pub == NULL)
        return DER_ERR_ARG;
    memset(pub, 0, CRYPTO_P256_PUB_LEN);
    if (der == NULL)
        return DER_ERR_ARG;
    if (der_len < 2)
        return DER_ERR_TRUNCATED;
    if (der[0] != spki_prefix[0])
        return DER_ERR_TAG;
    if (der[1] != spki_prefix[1])
        return DER_ERR_LENGTH;
    if (der_len < DER_P256_SPKI_LEN)
        return DER_ERR_TRUNCATED;
    if (der_len > DER_P256_SPKI_LEN)
        return DER_ERR_TRAILING;
    if (memcmp(der + 2, spki_prefix + 2, SPKI_ALG_END - 2) != 0)
        return DER_ERR_ALGORITHM;
    if (memcmp(der + SPKI_ALG_END, spki_prefix + SPKI_ALG_END,
               sizeof(spki_prefix) - SPKI_ALG_END) != 0 ||
        der[sizeof(spki_prefix)] != 0x04)
        return DER_ERR_POINT;
    memcpy(pub, der + sizeof(spki_prefix), CRYPTO_P256_PUB_LEN);
    return DER_OK;
}

enum der_status der_p256_spki_encode(const uint8_t pub[CRYPTO_P256_PUB_LEN],
                                     uint8_t out[DER_P256_SPKI_LEN])
{
    if (pub == NULL || out == NULL)
        return DER_ERR_ARG;
    if (pub[0] != 0x04)
        return DER_ERR_POINT;
    memcpy(out, spki_prefix, sizeof(spki_prefix));
    memcpy(out + sizeof(spki_prefix), pub, CRYPTO_P256_PUB_LEN);
    return DER_OK;
}

const char *der_status_str(enum der_status st)
{
    switch (st) {
    case DER_OK:
        return "ok";
    case DER_ERR_ARG:
        return "invalid argument";
    case DER_ERR_TRUNCATED:
        return "DER element truncated";
    case DER_ERR_TAG:
        return "unexpected DER tag";
    case DER_ERR_LENGTH:
        return "DER length not minimal or inconsistent";
    case DER_ERR_INTEGER:
        return "DER INTEGER negative, non-minimal or too wide";
    case DER_ERR_TRAILING:
        return "bytes after the DER element";
    case DER_ERR_ALGORITHM:
        return "public key is not an EC P-256 key";
    case DER_ERR_POINT:
        return "public key is not an uncompressed P-256 point";
    case DER_ERR_BUFFER:
        return "output buffer too small";
    }
    return "unknown DER status";
}
