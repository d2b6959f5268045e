/* IAK: generated once (TRNG or manufacture seed), persistent, signs verifiably, never
 * regenerated, survives a power cut during provisioning, refuses without a seed. */
#include <string.h>
#include <sys/random.h>

#include "check.h"
#include "flash_sim.h"
#include "fleetgw/crypto.h"
#include "fleetgw/iak.h"

static struct flash_sim sim;

static int trng(void *ctx, uint8_t *buf, size_t len)
{
    (void)ctx;
    return getrandom(buf, len, 0) == (ssize_t)len ? 0 : -1;
}

static int sign_verifies(struct boot_flash *f, const uint8_t pub[65])
{
    uint8_t digest[32], sig[64];
    if (crypto_sha256((const uint8_t *)"challenge", 9, digest) != 0 ||
        iak_sign(f, digest, sig) != 0)
        return 0;
    if (crypto_p256_verify(pub, digest, sig) != 0)
        return 0;
    digest[0] ^= 1;
    return crypto_p256_verify(pub, digest, sig) != 0;
}

/* The protected storage holds no copy of the key outside its record's private field: the
 * public interface returns only the public key. */
static void test_trng(void)
{
    uint8_t pub[65], pub2[65], digest[32] = {1}, sig[64];
    flash_sim_init(&sim);
    struct boot_flash f = flash_sim_dev(&sim);
    CHECK_EQ_INT(iak_public_key(&f, pub), IAK_NO_KEY);
    CHECK(iak_sign(&f, digest, sig) != 0);
    CHECK_EQ_INT(iak_provision(&f, trng, NULL), IAK_OK);
    CHECK_EQ_INT(iak_public_key(&f, pub), IAK_OK);
    CHECK(pub[0] == 0x04);
    CHECK(sign_verifies(&f, pub));
    /* Provisioning again keeps the key. */
    CHECK_EQ_INT(iak_provision(&f, trng, NULL), IAK_OK);
    CHECK_EQ_INT(iak_public_key(&f, pub2), IAK_OK);
    CHECK(memcmp(pub, pub2, 65) == 0);
    /* Another device: another key. */
    flash_sim_init(&sim);
    CHECK_EQ_INT(iak_provision(&f, trng, NULL), IAK_OK);
    CHECK_EQ_INT(iak_public_key(&f, pub2), IAK_OK);
    CHECK(memcmp(pub, pub2, 65) != 0);
}

static void test_seed(void)
{
    uint8_t seed[IAK_SEED_LEN], pub[65], pub2[65];
    memset(seed, 0x42, sizeof(seed));
    flash_sim_init(&sim);
    struct boot_flash f = flash_sim_dev(&sim);
    CHECK_EQ_INT(iak_provision(&f, NULL, NULL), IAK_NO_SEED);
    CHECK_EQ_INT(iak_write_seed(&f, seed), IAK_OK);
    CHECK_EQ_INT(iak_write_seed(&f, seed), IAK_FLASH_ERROR); /* written once */
    CHECK_EQ_INT(iak_provision(&f, NULL, NULL), IAK_OK);
    CHECK_EQ_INT(iak_public_key(&f, pub), IAK_OK);
    CHECK(sign_verifies(&f, pub));
    struct flash_sim provisioned;
    memcpy(&provisioned, &sim, sizeof(sim));

    /* A power cut at each write of the provisioning (clean and torn) ends, after the next
     * boot, with the same key: the seed is deterministic input. */
    long cuts = 0;
    for (int torn = 0; torn <= 1; torn++) {
        for (long k = 0; k <= 1; k++) {
            flash_sim_init(&sim);
            CHECK_EQ_INT(iak_write_seed(&f, seed), IAK_OK);
            flash_sim_power_on(&sim, k, torn);
            enum iak_status cut = iak_provision(&f, NULL, NULL);
            CHECK(k == 1 ? cut == IAK_OK : cut != IAK_OK); /* provisioning is one write */
            flash_sim_power_on(&sim, -1, 0);
            CHECK_EQ_INT(iak_provision(&f, NULL, NULL), IAK_OK);
            CHECK_EQ_INT(iak_public_key(&f, pub2), IAK_OK);
            CHECK(memcmp(pub, pub2, 65) == 0);
            CHECK(sign_verifies(&f, pub2));
            CHECK_EQ_INT(sim.violations, 0);
            cuts++;
        }
    }
    CHECK_EQ_INT(cuts, 4);

    /* Another seed, another key. */
    seed[0] ^= 1;
    flash_sim_init(&sim);
    CHECK_EQ_INT(iak_write_seed(&f, seed), IAK_OK);
    CHECK_EQ_INT(iak_provision(&f, NULL, NULL), IAK_OK);
    CHECK_EQ_INT(iak_public_key(&f, pub2), IAK_OK);
    CHECK(memcmp(pub, pub2, 65) != 0);

    /* A corrupted key record is not used for signing; a fresh provisioning writes the next
     * slot (same key from the same seed). */
    memcpy(&sim, &provisioned, sizeof(sim));
    sim.mem[BOOT_PSA_OFF + 0x100 + 10] ^= 0x01;
    CHECK_EQ_INT(iak_public_key(&f, pub2), IAK_NO_KEY);
    CHECK_EQ_INT(iak_provision(&f, NULL, NULL), IAK_OK);
    CHECK_EQ_INT(iak_public_key(&f, pub2), IAK_OK);
    CHECK(memcmp(pub, pub2, 65) == 0);
}

int main(void)
{
    test_trng();
    test_seed();
    return check_finish();
}
