/* Node id and instance id from an IAK point: a known answer (SHA-256 computed independently,
 * by Python's hashlib), and refusal of a point that is not uncompressed. */
#include <string.h>

#include "check.h"
#include "fleetgw/ident.h"

int main(void)
{
    uint8_t pub[CRYPTO_P256_PUB_LEN], iid[IDENT_INSTANCE_ID_LEN], want_iid[IDENT_INSTANCE_ID_LEN];
    char id[IDENT_NODE_ID_LEN + 1];
    static const char want_hash[] =
        "0ed3a6ab957ff6f59a9630a473d31a7d04fcb46548b89016196980c7e96584f6";

    pub[0] = 0x04;
    for (size_t i = 1; i < sizeof(pub); i++)
        pub[i] = (uint8_t)i;
    CHECK_EQ_INT(ident_node_id(pub, id), 0);
    CHECK(strcmp(id, "0ed3a6ab957ff6f59a9630a473d31a7d") == 0);
    CHECK_EQ_INT(strlen(id), IDENT_NODE_ID_LEN);

    want_iid[0] = 0x01;
    for (size_t i = 0; i < 32; i++)
        want_iid[1 + i] =
            (uint8_t)(check_hexval(want_hash[2 * i]) << 4 | check_hexval(want_hash[2 * i + 1]));
    CHECK_EQ_INT(ident_instance_id(pub, iid), 0);
    CHECK(memcmp(iid, want_iid, sizeof(iid)) == 0);

    /* Not an uncompressed point: refused, outputs cleared. */
    pub[0] = 0x02;
    memset(id, 'x', sizeof(id));
    CHECK_EQ_INT(ident_node_id(pub, id), -1);
    CHECK(id[0] == '\0');
    memset(iid, 0xaa, sizeof(iid));
    CHECK_EQ_INT(ident_instance_id(pub, iid), -1);
    CHECK(iid[0] == 0 && iid[32] == 0);

    /* A symmetric IAK: IAK id = SHA-256(SHA-256(key)) (hashlib), node id its first 16 bytes in
     * hex, instance id 0x01 || IAK id; a key outside 32..64 bytes is refused. */
    {
        static const char want_kid[] =
            "2f287b4d3d4910f6cada9e1bd1b4648099e8c52c81aa4a6aebfa6fc86f19834e";
        uint8_t key[65], kid[IDENT_SYM_KEY_ID_LEN];
        for (size_t i = 0; i < sizeof(key); i++)
            key[i] = (uint8_t)i;
        CHECK_EQ_INT(ident_sym_key_id(key, 32, kid), 0);
        for (size_t i = 0; i < 32; i++)
            CHECK(kid[i] == (uint8_t)(check_hexval(want_kid[2 * i]) << 4 |
                                      check_hexval(want_kid[2 * i + 1])));
        ident_sym_node_id(kid, id);
        CHECK(strcmp(id, "2f287b4d3d4910f6cada9e1bd1b46480") == 0);
        ident_sym_instance_id(kid, iid);
        CHECK(iid[0] == 0x01 && memcmp(iid + 1, kid, 32) == 0);
        CHECK_EQ_INT(ident_sym_key_id(key, 31, kid), -1);
        CHECK(kid[0] == 0 && kid[31] == 0);
        CHECK_EQ_INT(ident_sym_key_id(key, 65, kid), -1);
        CHECK_EQ_INT(ident_sym_key_id(key, 64, kid), 0);
    }
    return check_finish();
}
