/* Power cut at EVERY flash write/erase of an update (install in test mode, revert, confirm),
 * with clean and torn interrupted operations, like MCUboot's simulator: after each cut the
 * device must boot a verified image, old or new, and end up consistent. Also double cuts
 * (a second cut during the recovery boot). */
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>

#include "check.h"
#include "flash_sim.h"
#include "img_maker.h"
#include "fleetgw/boot.h"

static struct flash_sim sim, base;
static uint8_t spki[91];
static uint8_t hash_a[32], hash_b[32];

static enum boot_result do_boot(struct boot_image_info *info)
{
    struct boot_flash f = flash_sim_dev(&sim);
    struct boot_ctx ctx = {&f, spki, sizeof(spki), NULL, NULL};
    struct boot_record rec;
    enum boot_result r = boot_go(&ctx, info, &rec);
    if (r == BOOT_GO) {
        CHECK(boot_record_valid(&rec));
        CHECK(memcmp(rec.measurement, info->hash, 32) == 0);
    }
    return r;
}

/* The image in the given slot verifies and has this hash. */
static int slot_is(uint32_t off, const uint8_t hash[32])
{
    struct boot_flash f = flash_sim_dev(&sim);
    struct boot_image_info info;
    return boot_verify_image(&f, off, BOOT_SLOT_SIZE, spki, sizeof(spki), &info) == BOOT_IMG_OK &&
           memcmp(info.hash, hash, 32) == 0;
}

static int is_a(const struct boot_image_info *i)
{
    return memcmp(i->hash, hash_a, 32) == 0;
}

static int is_b(const struct boot_image_info *i)
{
    return memcmp(i->hash, hash_b, 32) == 0;
}

/* Runs one boot with the full power; returns the operations it used. */
static long full_boot(struct boot_image_info *info, enum boot_result *r)
{
    flash_sim_power_on(&sim, -1, 0);
    *r = do_boot(info);
    return sim.ops;
}

/* Scenario: from the flash contents in base, a boot is cut after k operations; then the device
 * boots with full power (optionally cut again after k2). Checks the result with expect(). */
typedef int (*expect_fn)(const struct boot_image_info *first, int second_is_a);

static long failures;

static void run_cuts(const char *name, long n_ops, int allow_a, int allow_b, int after_b_reverts)
{
    long bad = 0, runs = 0;
    for (int torn = 0; torn <= 1; torn++) {
        for (long k = 0; k <= n_ops; k++) {
            for (long k2 = -1; k2 <= (torn ? -1 : n_ops); k2 += (k2 < 0 ? 1 : 17)) {
                struct boot_image_info info;
                memcpy(&sim, &base, sizeof(sim));
                flash_sim_power_on(&sim, k, torn);
                enum boot_result r = do_boot(&info);
                runs++;
                if (k2 >= 0) {
                    /* A second cut, during the recovery boot. */
                    flash_sim_power_on(&sim, k2, 0);
                    r = do_boot(&info);
                }
                flash_sim_power_on(&sim, -1, 0);
                r = do_boot(&info);
                int ok = r == BOOT_GO && ((allow_a && is_a(&info)) || (allow_b && is_b(&info)));
                /* The other image is never lost: whichever runs, the other slot keeps the
                 * other image intact (the revert path and a later update depend on it). */
                if (ok && is_b(&info))
                    ok = slot_is(BOOT_SECONDARY_OFF, hash_a);
                if (ok && is_a(&info) && !slot_is(BOOT_SECONDARY_OFF, hash_b))
                    ok = 0;
                if (ok && after_b_reverts && is_b(&info)) {
                    /* B runs unconfirmed: the next reset must bring A back. */
                    flash_sim_power_on(&sim, -1, 0);
                    ok = do_boot(&info) == BOOT_GO && is_a(&info);
                }
                if (ok && sim.violations != 0)
                    ok = 0;
                if (!ok) {
                    if (bad < 5)
                        fprintf(stderr,
                                "  %s: cut after %ld ops (torn %d, second cut %ld) -> "
                                "result %d, image %s, violations %ld\n",
                                name, k, torn, k2, r,
                                is_a(&info)   ? "A"
                                : is_b(&info) ? "B"
                                              : "?",
                                sim.violations);
                    bad++;
                }
            }
        }
    }
    printf("%s: %ld operations, %ld power-cut runs, %ld bad\n", name, n_ops, runs, bad);
    CHECK_EQ_INT(bad, 0);
    failures += bad;
}

int main(void)
{
    static uint8_t body_a[9000], body_b[13000], img[20000];
    struct boot_image_info info;
    enum boot_result r;
    EVP_PKEY *key = img_key_new();
    CHECK(key != NULL && img_key_spki(key, spki) == 0);
    CHECK(RAND_bytes(body_a, sizeof(body_a)) == 1 && RAND_bytes(body_b, sizeof(body_b)) == 1);

    /* Factory state: A (counter 1) in primary, confirmed by the first boot. */
    flash_sim_init(&sim);
    size_t n = img_make(key, body_a, sizeof(body_a), 1, 0, 0, 1, 1, img, sizeof(img));
    CHECK(n > 0);
    memcpy(sim.mem + BOOT_PRIMARY_OFF, img, n);
    CHECK(full_boot(&info, &r) > 0); /* stores the security counter */
    CHECK(r == BOOT_GO && info.sec_cnt == 1);
    memcpy(hash_a, info.hash, 32);

    /* The application downloads B (counter 2) into the secondary slot and requests a test. */
    n = img_make(key, body_b, sizeof(body_b), 2, 0, 0, 2, 1, img, sizeof(img));
    CHECK(n > 0);
    memcpy(sim.mem + BOOT_SECONDARY_OFF, img, n);
    CHECK(slot_is(BOOT_SECONDARY_OFF, info.hash) == 0);
    struct boot_flash f = flash_sim_dev(&sim);
    CHECK(boot_request_install(&f) == 0);
    memcpy(&base, &sim, sizeof(sim));

    /* 1. Install: reference run, then a cut at every operation. */
    long n_install = full_boot(&info, &r);
    CHECK(r == BOOT_GO && info.version.major == 2);
    memcpy(hash_b, info.hash, 32);
    CHECK(slot_is(BOOT_SECONDARY_OFF, hash_a));
    struct boot_flash g = flash_sim_dev(&sim);
    struct boot_state st;
    CHECK(boot_state_load(&g, &st) == 0 && st.image_ok == 0 && st.min_sec_cnt == 1);
    struct flash_sim after_install;
    memcpy(&after_install, &sim, sizeof(sim));
    run_cuts("install", n_install, 1, 1, 1);

    /* 2. Revert of the unconfirmed B: every cut must end on A. */
    memcpy(&base, &after_install, sizeof(sim));
    memcpy(&sim, &base, sizeof(sim));
    long n_revert = full_boot(&info, &r);
    CHECK(r == BOOT_GO && is_a(&info));
    run_cuts("revert", n_revert, 1, 0, 0);

    /* 3. Confirm by the application, cut at each of its operations: A or B may run next
     * (B only as confirmed), never nothing. */
    memcpy(&sim, &after_install, sizeof(sim));
    flash_sim_power_on(&sim, -1, 0);
    f = flash_sim_dev(&sim);
    CHECK(boot_confirm(&f) == 0);
    long n_confirm = sim.ops;
    CHECK(n_confirm >= 1);
    for (long k = 0; k <= n_confirm; k++) {
        memcpy(&sim, &after_install, sizeof(sim));
        flash_sim_power_on(&sim, k, 1);
        f = flash_sim_dev(&sim);
        int rc = boot_confirm(&f);
        flash_sim_power_on(&sim, -1, 0);
        r = do_boot(&info);
        CHECK(r == BOOT_GO);
        CHECK(rc == 0 ? is_b(&info) : (is_a(&info) || is_b(&info)));
        if (is_b(&info)) {
            /* Confirmed B raises the anti-rollback minimum; A is now refused. */
            CHECK(info.sec_cnt == 2);
            g = flash_sim_dev(&sim);
            CHECK(boot_state_load(&g, &st) == 0 && st.min_sec_cnt == 2 && st.image_ok == 1);
        }
    }

    /* 4. Rollback: after B is confirmed, installing A (counter 1) again is refused. */
    memcpy(&sim, &after_install, sizeof(sim));
    flash_sim_power_on(&sim, -1, 0);
    f = flash_sim_dev(&sim);
    CHECK(boot_confirm(&f) == 0);
    CHECK(do_boot(&info) == BOOT_GO && is_b(&info));
    CHECK(boot_request_install(&f) == 0);
    CHECK(do_boot(&info) == BOOT_GO && is_b(&info));
    CHECK(slot_is(BOOT_PRIMARY_OFF, hash_b) && slot_is(BOOT_SECONDARY_OFF, hash_a));

    /* 5. A corrupt update is refused and the current image keeps running. */
    memcpy(&sim, &after_install, sizeof(sim));
    flash_sim_power_on(&sim, -1, 0);
    f = flash_sim_dev(&sim);
    CHECK(boot_confirm(&f) == 0);
    CHECK(do_boot(&info) == BOOT_GO && is_b(&info));
    sim.mem[BOOT_SECONDARY_OFF + 0x300] ^= 0x10;
    CHECK(boot_request_install(&f) == 0);
    CHECK(do_boot(&info) == BOOT_GO && is_b(&info));
    CHECK(boot_state_load(&f, &st) == 0 && st.pending == 0);

    /* 6. A state log that wraps many times (compaction) keeps its state. */
    for (int i = 0; i < 400; i++) {
        CHECK(boot_state_load(&f, &st) == 0);
        st.min_sec_cnt = 2;
        CHECK(boot_state_store(&f, &st) == 0);
    }
    CHECK(do_boot(&info) == BOOT_GO && is_b(&info));
    CHECK_EQ_INT(sim.violations, 0);

    EVP_PKEY_free(key);
    return check_finish();
}
