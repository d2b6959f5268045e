#include "img_maker.h"

#include <string.h>

#include <openssl/ec.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

EVP_PKEY *img_key_new(void)
{
    return EVP_EC_gen("P-256");
}

int img_key_spki(EVP_PKEY *key, uint8_t spki[91])
{
    unsigned char *p = NULL;
    int n = i2d_PUBKEY(key, &p);
    int rc = n == 91 ? 0 : -1;
    if (rc == 0)
        memcpy(spki, p, 91);
    OPENSSL_free(p);
    return rc;
}

static void put16(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
    put16(p, v);
    put16(p + 2, v >> 16);
}

size_t img_make(EVP_PKEY *key, const uint8_t *body, size_t body_len, uint8_t major, uint8_t minor,
                uint16_t rev, uint32_t sec_cnt, int sign, uint8_t *out, size_t cap)
{
    const size_t hdr = 0x200;
    uint8_t digest[32], spki[91], keyhash[32], sig[80];
    size_t sig_len = sizeof(sig);
    if (cap < hdr + body_len + 12 + 4 + 36 + 36 + 4 + sizeof(sig))
        return 0;
    memset(out, 0, hdr);
    put32(out, 0x96f3b83du);
    put16(out + 8, (uint32_t)hdr);
    put16(out + 10, 12);
    put32(out + 12, (uint32_t)body_len);
    out[20] = major;
    out[21] = minor;
    put16(out + 22, rev);
    memcpy(out + hdr, body, body_len);
    uint8_t *p = out + hdr + body_len;
    put16(p, 0x6908);
    put16(p + 2, 12);
    put16(p + 4, 0x50);
    put16(p + 6, 4);
    put32(p + 8, sec_cnt);
    p += 12;
    SHA256(out, (size_t)(p - out), digest);
    uint8_t *info = p;
    p += 4;
    put16(p, 0x10);
    put16(p + 2, 32);
    memcpy(p + 4, digest, 32);
    p += 36;
    if (sign) {
        if (img_key_spki(key, spki) != 0)
            return 0;
        SHA256(spki, sizeof(spki), keyhash);
        put16(p, 0x01);
        put16(p + 2, 32);
        memcpy(p + 4, keyhash, 32);
        p += 36;
        EVP_PKEY_CTX *c = EVP_PKEY_CTX_new(key, NULL);
        int ok = c != NULL && EVP_PKEY_sign_init(c) == 1 &&
                 EVP_PKEY_sign(c, sig, &sig_len, digest, sizeof(digest)) == 1;
        EVP_PKEY_CTX_free(c);
        if (!ok)
            return 0;
        put16(p, 0x22);
        put16(p + 2, (uint32_t)sig_len);
        memcpy(p + 4, sig, sig_len);
        p += 4 + sig_len;
    }
    put16(info, 0x6907);
    put16(info + 2, (uint32_t)(p - info));
    return (size_t)(p - out);
}
