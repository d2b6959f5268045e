/* The link-mode provisioning record parser (agents/ports/mps2-an385/prov.c): a valid record
 * parses with its fields; every single-byte change of it is refused (CRC, lengths, names);
 * lengths that overflow the record, a wrong magic, empty credentials and bad names too. */
#include <string.h>

#include "check.h"
#include "prov.h"

static uint8_t rec[PROV_MAX];

static uint32_t crc32_ref(const uint8_t *p, size_t n)
{
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++)
            c = (c & 1u) ? (c >> 1) ^ 0xEDB88320u : c >> 1;
    }
    return ~c;
}

static void put16(uint8_t *p, size_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

/* Builds a record; returns its total length (with the CRC). */
static size_t build(const char *id, const char *host, size_t ca, size_t cert, size_t key)
{
    size_t n = PROV_HDR, lens[5] = {strlen(id), strlen(host), ca, cert, key};
    uint32_t crc;
    memset(rec, 0xFF, sizeof(rec));
    memcpy(rec, "FGPV", 4);
    for (int i = 0; i < 5; i++)
        put16(rec + 4 + 2 * i, lens[i]);
    put16(rec + 14, 0);
    memcpy(rec + n, id, lens[0]);
    n += lens[0];
    memcpy(rec + n, host, lens[1]);
    n += lens[1];
    for (size_t i = 0; i < ca + cert + key; i++)
        rec[n + i] = (uint8_t)(i * 7u + 1u);
    n += ca + cert + key;
    crc = crc32_ref(rec, n);
    rec[n] = (uint8_t)crc;
    rec[n + 1] = (uint8_t)(crc >> 8);
    rec[n + 2] = (uint8_t)(crc >> 16);
    rec[n + 3] = (uint8_t)(crc >> 24);
    return n + 4;
}

static void test_valid(void)
{
    struct prov p;
    build("node-qemu-1", "localhost", 300, 400, 138);
    CHECK(prov_parse(rec, &p) == 0);
    CHECK(strcmp(p.id, "node-qemu-1") == 0);
    CHECK(strcmp(p.host, "localhost") == 0);
    CHECK(p.ca == rec + PROV_HDR + 11 + 9 && p.ca_len == 300);
    CHECK(p.cert == p.ca + 300 && p.cert_len == 400);
    CHECK(p.key == p.cert + 400 && p.key_len == 138);
}

static void test_every_byte_flip(void)
{
    struct prov p;
    size_t len = build("n1", "broker.example", 40, 50, 30);
    for (size_t i = 0; i < len; i++) {
        rec[i] ^= 0x01;
        CHECK(prov_parse(rec, &p) != 0);
        CHECK(p.id[0] == '\0' && p.ca == NULL);
        rec[i] ^= 0x01;
    }
    CHECK(prov_parse(rec, &p) == 0);
}

static void test_bounds_and_names(void)
{
    struct prov p;
    /* the largest record that fits, then one byte more */
    CHECK(build("n", "h", PROV_MAX - PROV_HDR - 4 - 2 - 2, 1, 1) == PROV_MAX);
    CHECK(prov_parse(rec, &p) == 0);
    build("n", "h", 10, 10, 10);
    put16(rec + 8, 0xFFFF); /* ca_len beyond the record (CRC not even reached) */
    CHECK(prov_parse(rec, &p) != 0);
    build("n", "h", 10, 10, 10);
    put16(rec + 10, PROV_MAX); /* cert_len */
    CHECK(prov_parse(rec, &p) != 0);
    CHECK(build("n", "h", 0, 10, 10) > 0 && prov_parse(rec, &p) != 0);     /* no CA */
    CHECK(build("n", "h", 10, 10, 0) > 0 && prov_parse(rec, &p) != 0);     /* no key */
    CHECK(build("", "h", 10, 10, 10) > 0 && prov_parse(rec, &p) != 0);     /* empty id */
    CHECK(build("a/b", "h", 10, 10, 10) > 0 && prov_parse(rec, &p) != 0);  /* bad id */
    CHECK(build("a.b", "h", 10, 10, 10) > 0 && prov_parse(rec, &p) != 0);  /* '.' in id */
    CHECK(build("ab", "h/x", 10, 10, 10) > 0 && prov_parse(rec, &p) != 0); /* bad host */
    CHECK(build("ab", "a.b-c", 10, 10, 10) > 0 && prov_parse(rec, &p) == 0);
    char id[PROV_ID_MAX + 2];
    memset(id, 'x', sizeof(id) - 1);
    id[sizeof(id) - 1] = '\0';
    CHECK(build(id, "h", 10, 10, 10) > 0 && prov_parse(rec, &p) != 0); /* 49 chars */
    id[PROV_ID_MAX] = '\0';
    CHECK(build(id, "h", 10, 10, 10) > 0 && prov_parse(rec, &p) == 0); /* 48 chars */
    memset(rec, 0xFF, sizeof(rec));                                    /* erased flash */
    CHECK(prov_parse(rec, &p) != 0);
}

int main(void)
{
    test_valid();
    test_every_byte_flip();
    test_bounds_and_names();
    return check_finish();
}
