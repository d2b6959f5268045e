/* Registry: node id derivation, add/get/list/verdict/touch/remove, duplicates. */
#include "check.h"
#include "registry.h"

#include <fleetgw/ident.h>

#include <errno.h>
#include <openssl/evp.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int count_cb(const struct registry_node *n, void *u)
{
    (void)n;
    (*(int *)u)++;
    return 0;
}

int main(void)
{
    uint8_t pub[65], pub2[65], md[32];
    char id[33], expect[33];
    unsigned int mdlen;
    for (int i = 0; i < 65; i++) {
        pub[i] = (uint8_t)(i * 7 + 1);
        pub2[i] = (uint8_t)(i * 11 + 3);
    }
    pub[0] = 0x04;
    pub2[0] = 0x04;

    /* id = hex(SHA-256(point)[0..16)) */
    CHECK_EQ_INT(registry_node_id(pub, id), 0);
    CHECK(EVP_Digest(pub, 65, md, &mdlen, EVP_sha256(), NULL) == 1);
    for (int i = 0; i < 16; i++)
        snprintf(expect + 2 * i, 3, "%02x", md[i]);
    CHECK(strcmp(id, expect) == 0);
    CHECK_EQ_INT(strlen(id), 32);
    uint8_t bad[65];
    memcpy(bad, pub, 65);
    bad[0] = 0x02;
    CHECK_EQ_INT(registry_node_id(bad, id), -EINVAL);

    char dir[] = "/tmp/fleetgw-regtest-XXXXXX", path[256];
    if (mkdtemp(dir) == NULL)
        check_skip("cannot create a temporary directory");
    snprintf(path, sizeof(path), "%s/registry.db", dir);
    struct registry *r = NULL;
    struct registry_node n;
    CHECK_EQ_INT(registry_open(path, &r), 0);
    CHECK_EQ_INT(registry_add(r, pub, "sensor-v1", 100, &n), 0);
    CHECK(strcmp(n.id, expect) == 0);
    CHECK(strcmp(n.verdict, "unknown") == 0);
    CHECK_EQ_INT(n.added, 100);
    CHECK(memcmp(n.iak_pub, pub, 65) == 0);
    CHECK_EQ_INT(registry_add(r, pub, "sensor-v1", 101, NULL), -EEXIST);
    CHECK_EQ_INT(registry_add(r, pub2, "", 101, NULL), -EINVAL);
    CHECK_EQ_INT(registry_add(r, pub2, "bad\nclass", 101, NULL), -EINVAL);
    CHECK_EQ_INT(registry_add(r, pub2, "sensor-v2", 102, NULL), 0);

    int count = 0;
    CHECK_EQ_INT(registry_foreach(r, count_cb, &count), 0);
    CHECK_EQ_INT(count, 2);

    /* tags: a valid list replaces the old one, "" clears, anything else changes nothing */
    CHECK(strcmp(n.tags, "") == 0);
    CHECK_EQ_INT(registry_set_tags(r, expect, "site-b,batch.7"), 0);
    CHECK_EQ_INT(registry_get(r, expect, &n), 0);
    CHECK(strcmp(n.tags, "site-b,batch.7") == 0);
    CHECK(registry_has_tag(&n, "site-b") && registry_has_tag(&n, "batch.7"));
    CHECK(!registry_has_tag(&n, "site") && !registry_has_tag(&n, "batch"));
    static const char *const bad_tags[] = {
        ",a", "a,", "a,,b", "a b", "a/b", "123456789012345678901234567890123", "1,2,3,4,5,6,7,8,9"};
    for (size_t i = 0; i < sizeof(bad_tags) / sizeof(bad_tags[0]); i++) {
        CHECK(!registry_tags_valid(bad_tags[i]));
        CHECK_EQ_INT(registry_set_tags(r, expect, bad_tags[i]), -EINVAL);
    }
    CHECK(registry_tags_valid("") && registry_tags_valid("1,2,3,4,5,6,7,8"));
    CHECK_EQ_INT(registry_get(r, expect, &n), 0);
    CHECK(strcmp(n.tags, "site-b,batch.7") == 0);
    CHECK_EQ_INT(registry_set_tags(r, "0000", "x"), -ENOENT);
    CHECK_EQ_INT(registry_set_tags(r, expect, ""), 0);
    CHECK_EQ_INT(registry_get(r, expect, &n), 0);
    CHECK(strcmp(n.tags, "") == 0 && !registry_has_tag(&n, ""));

    CHECK_EQ_INT(
        registry_set_verdict(r, expect, "quarantined", "nonce mismatch", "1.2.3", 200, true), 0);
    CHECK_EQ_INT(registry_get(r, expect, &n), 0);
    CHECK_EQ_INT(n.last_seen, 200); /* a verdict on evidence: the node was seen */
    CHECK_EQ_INT(registry_touch(r, expect, 250), 0);
    CHECK_EQ_INT(registry_get(r, expect, &n), 0);
    CHECK(strcmp(n.verdict, "quarantined") == 0);
    CHECK(strcmp(n.reason, "nonce mismatch") == 0);
    CHECK(strcmp(n.fw_version, "1.2.3") == 0);
    CHECK_EQ_INT(n.verdict_time, 200);
    CHECK_EQ_INT(n.last_seen, 250);
    /* A verdict given in the node's absence (unanswered challenge) keeps last_seen and the
     * firmware version. */
    CHECK_EQ_INT(registry_set_verdict(r, expect, "quarantined", "no answer", NULL, 300, false), 0);
    CHECK_EQ_INT(registry_get(r, expect, &n), 0);
    CHECK(strcmp(n.reason, "no answer") == 0);
    CHECK_EQ_INT(n.verdict_time, 300);
    CHECK_EQ_INT(n.last_seen, 250);
    CHECK(strcmp(n.fw_version, "1.2.3") == 0);
    CHECK(n.profile[0] == '\0'); /* no verdict has named a profile yet */
    /* The profile of the verdict's token is recorded; NULL or "" keeps it, like fw_version. */
    CHECK_EQ_INT(registry_record_verdict(r, expect, "trusted", "ok", "1.2.4", "PSA_IOT_PROFILE_1",
                                         310, true),
                 0);
    CHECK_EQ_INT(registry_get(r, expect, &n), 0);
    CHECK(strcmp(n.profile, "PSA_IOT_PROFILE_1") == 0 && strcmp(n.fw_version, "1.2.4") == 0);
    CHECK(strcmp(n.verdict, "trusted") == 0 && n.verdict_time == 310 && n.last_seen == 310);
    CHECK_EQ_INT(
        registry_record_verdict(r, expect, "quarantined", "timeout", NULL, NULL, 320, false), 0);
    CHECK_EQ_INT(registry_get(r, expect, &n), 0);
    CHECK(strcmp(n.profile, "PSA_IOT_PROFILE_1") == 0 && n.last_seen == 310);
    CHECK_EQ_INT(registry_record_verdict(r, expect, "quarantined", "profile", "", "x", 330, true),
                 0);
    CHECK_EQ_INT(registry_get(r, expect, &n), 0);
    CHECK(strcmp(n.profile, "x") == 0 && strcmp(n.fw_version, "1.2.4") == 0);
    CHECK_EQ_INT(registry_set_verdict(r, expect, "quarantined", "again", NULL, 340, true), 0);
    CHECK_EQ_INT(registry_get(r, expect, &n), 0);
    CHECK(strcmp(n.profile, "x") == 0);
    CHECK_EQ_INT(registry_record_verdict(r, "nosuchnode", "trusted", "ok", NULL, "p", 1, true),
                 -ENOENT);
    CHECK_EQ_INT(registry_set_verdict(r, "nosuchnode", "trusted", "ok", NULL, 1, true), -ENOENT);
    CHECK_EQ_INT(registry_touch(r, "nosuchnode", 1), -ENOENT);
    CHECK_EQ_INT(registry_get(r, "nosuchnode", &n), -ENOENT);

    /* A node with a symmetric IAK: its IAK id and sealed blob, no public key, no key. */
    {
        uint8_t kid[REGISTRY_IAK_ID_LEN], blob[300];
        char sid[REGISTRY_ID_LEN + 1];
        for (size_t i = 0; i < sizeof(kid); i++)
            kid[i] = (uint8_t)(0xc0 + i);
        memset(blob, 0x5b, sizeof(blob));
        ident_sym_node_id(kid, sid);
        CHECK_EQ_INT(registry_add_symmetric(r, kid, blob, sizeof(blob), "tfm-sym", 400, &n), 0);
        CHECK(strcmp(n.id, sid) == 0 && n.symmetric);
        CHECK(memcmp(n.iak_id, kid, sizeof(kid)) == 0);
        CHECK(n.iak_sealed_len == sizeof(blob) && memcmp(n.iak_sealed, blob, sizeof(blob)) == 0);
        CHECK(n.iak_pub[0] == 0 && strcmp(n.device_class, "tfm-sym") == 0);
        CHECK_EQ_INT(registry_add_symmetric(r, kid, blob, sizeof(blob), "tfm-sym", 401, NULL),
                     -EEXIST);
        CHECK_EQ_INT(registry_add_symmetric(r, kid, blob, 0, "tfm-sym", 401, NULL), -EINVAL);
        CHECK_EQ_INT(
            registry_add_symmetric(r, kid, blob, REGISTRY_SEALED_MAX + 1, "tfm-sym", 401, NULL),
            -EINVAL);
        CHECK_EQ_INT(registry_record_verdict(r, sid, "trusted", "ok", "1.0.0", "PSA_IOT_PROFILE_1",
                                             402, true),
                     0);
        CHECK_EQ_INT(registry_get(r, sid, &n), 0);
        CHECK(n.symmetric && n.iak_sealed_len == sizeof(blob) && strcmp(n.verdict, "trusted") == 0);
        CHECK_EQ_INT(registry_get(r, expect, &n), 0);
        CHECK(!n.symmetric && n.iak_sealed_len == 0 && n.iak_pub[0] == 0x04);
        CHECK_EQ_INT(registry_remove(r, sid), 0);
    }

    /* Persistence across reopen, then removal. */
    registry_close(r);
    r = NULL;
    CHECK_EQ_INT(registry_open(path, &r), 0);
    CHECK_EQ_INT(registry_get(r, expect, &n), 0);
    CHECK(strcmp(n.device_class, "sensor-v1") == 0);
    CHECK_EQ_INT(registry_remove(r, expect), 0);
    CHECK_EQ_INT(registry_remove(r, expect), -ENOENT);
    count = 0;
    CHECK_EQ_INT(registry_foreach(r, count_cb, &count), 0);
    CHECK_EQ_INT(count, 1);
    registry_close(r);

    /* A registry written before the profile column: opened, it gains the column (default "")
     * and keeps its rows. */
    {
        char old[256];
        sqlite3 *db = NULL;
        snprintf(old, sizeof(old), "%s/old.db", dir);
        CHECK_EQ_INT(sqlite3_open(old, &db), SQLITE_OK);
        CHECK_EQ_INT(
            sqlite3_exec(db,
                         "CREATE TABLE nodes (id TEXT PRIMARY KEY, iak_pub BLOB NOT NULL,"
                         " device_class TEXT NOT NULL, fw_version TEXT NOT NULL DEFAULT '',"
                         " verdict TEXT NOT NULL DEFAULT 'unknown',"
                         " reason TEXT NOT NULL DEFAULT '',"
                         " verdict_time INTEGER NOT NULL DEFAULT 0,"
                         " last_seen INTEGER NOT NULL DEFAULT 0,"
                         " added INTEGER NOT NULL);"
                         "INSERT INTO nodes(id, iak_pub, device_class, verdict, added)"
                         " VALUES('0123456789abcdef0123456789abcdef', zeroblob(65),"
                         " 'legacy', 'trusted', 7);",
                         NULL, NULL, NULL),
            SQLITE_OK);
        sqlite3_close(db);
        r = NULL;
        CHECK_EQ_INT(registry_open(old, &r), 0);
        CHECK_EQ_INT(registry_get(r, "0123456789abcdef0123456789abcdef", &n), 0);
        CHECK(strcmp(n.device_class, "legacy") == 0 && strcmp(n.verdict, "trusted") == 0);
        CHECK(n.profile[0] == '\0' && n.added == 7);
        CHECK_EQ_INT(registry_record_verdict(r, n.id, "trusted", "ok", NULL,
                                             "http://arm.com/psa/2.0.0", 8, true),
                     0);
        registry_close(r);
        r = NULL;
        CHECK_EQ_INT(registry_open(old, &r), 0); /* a second open migrates nothing */
        CHECK_EQ_INT(registry_get(r, "0123456789abcdef0123456789abcdef", &n), 0);
        CHECK(strcmp(n.profile, "http://arm.com/psa/2.0.0") == 0);
        registry_close(r);
        char f[300];
        unlink(old);
        snprintf(f, sizeof(f), "%s-wal", old);
        unlink(f);
        snprintf(f, sizeof(f), "%s-shm", old);
        unlink(f);
    }

    char f[300];
    unlink(path);
    snprintf(f, sizeof(f), "%s-wal", path);
    unlink(f);
    snprintf(f, sizeof(f), "%s-shm", path);
    unlink(f);
    rmdir(dir);
    return check_finish();
}
