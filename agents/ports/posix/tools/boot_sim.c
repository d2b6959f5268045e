/* fleetgw-boot-sim: the bootloader on the host, on a node's file-backed flash
 * (agents/ports/posix/flash_file.c). Simulated nodes and tests use it to put images into
 * slots, request an install, confirm, and run one boot exactly as the device would:
 *
 *   fleetgw-boot-sim --flash FILE --key PUB.pem [--load-primary IMG] [--load-secondary IMG]
 *                    [--request-install] [--confirm] [--boot]
 *
 * Steps run in that order. --boot provisions the IAK (getrandom) and runs boot_go(); it prints
 * the bootloader's lines, then on success "measurement <hex>", "signer-id <hex>",
 * "iak-public <hex>". Exit: 0 ok (booted), 1 no verified image, 2 usage or I/O error. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include <openssl/pem.h>
#include <openssl/x509.h>

#include "flash_file.h"
#include "fleetgw/boot.h"
#include "fleetgw/iak.h"
#include "fleetgw_version.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: fleetgw-boot-sim --flash FILE --key PUB.pem [--load-primary IMG]\n"
               "           [--load-secondary IMG] [--request-install] [--confirm] [--boot]\n"
               "       fleetgw-boot-sim --help | --version\n");
}

static int trng(void *ctx, uint8_t *buf, size_t len)
{
    (void)ctx;
    return getrandom(buf, len, 0) == (ssize_t)len ? 0 : -1;
}

static void log_line(void *ctx, const char *line)
{
    (void)ctx;
    printf("%s\n", line);
}

static void hex(const char *label, const uint8_t *p, size_t n)
{
    printf("%s ", label);
    for (size_t i = 0; i < n; i++)
        printf("%02x", p[i]);
    printf("\n");
}

static int read_key(const char *path, uint8_t spki[BOOT_P256_SPKI_LEN])
{
    FILE *f = fopen(path, "re");
    int rc = -1;
    if (f == NULL)
        return -1;
    EVP_PKEY *k = PEM_read_PUBKEY(f, NULL, NULL, NULL);
    fclose(f);
    unsigned char *der = NULL;
    int n = k != NULL ? i2d_PUBKEY(k, &der) : -1;
    if (n == (int)BOOT_P256_SPKI_LEN) {
        memcpy(spki, der, BOOT_P256_SPKI_LEN);
        rc = 0;
    }
    OPENSSL_free(der);
    EVP_PKEY_free(k);
    return rc;
}

/* Erases the slot's sectors that the image needs, then programs it (what an OTA client does). */
static int load_slot(struct flash_file *ff, uint32_t slot, const char *path)
{
    static uint8_t img[BOOT_SLOT_SIZE];
    FILE *f = fopen(path, "rbe");
    if (f == NULL)
        return -1;
    size_t n = fread(img, 1, sizeof(img), f);
    int more = fgetc(f) != EOF;
    fclose(f);
    if (n == 0 || more)
        return -1;
    uint32_t span = ((uint32_t)n + BOOT_SECTOR_SIZE - 1) / BOOT_SECTOR_SIZE * BOOT_SECTOR_SIZE;
    if (ff->dev.erase(ff->dev.ctx, slot, span) != 0 ||
        ff->dev.write(ff->dev.ctx, slot, img, (uint32_t)n) != 0)
        return -1;
    return 0;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {{"flash", required_argument, NULL, 'f'},
                                         {"key", required_argument, NULL, 'k'},
                                         {"load-primary", required_argument, NULL, 'p'},
                                         {"load-secondary", required_argument, NULL, 's'},
                                         {"request-install", no_argument, NULL, 'u'},
                                         {"confirm", no_argument, NULL, 'c'},
                                         {"boot", no_argument, NULL, 'b'},
                                         {"help", no_argument, NULL, 'h'},
                                         {"version", no_argument, NULL, 'V'},
                                         {NULL, 0, NULL, 0}};
    const char *flash = NULL, *key = NULL, *primary = NULL, *secondary = NULL;
    int request = 0, confirm = 0, boot = 0, c, rc = 2;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'f':
            flash = optarg;
            break;
        case 'k':
            key = optarg;
            break;
        case 'p':
            primary = optarg;
            break;
        case 's':
            secondary = optarg;
            break;
        case 'u':
            request = 1;
            break;
        case 'c':
            confirm = 1;
            break;
        case 'b':
            boot = 1;
            break;
        case 'h':
            usage(stdout);
            return 0;
        case 'V':
            return fleetgw_print_version("fleetgw-boot-sim");
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind != argc) {
        fprintf(stderr, "fleetgw-boot-sim: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return 2;
    }
    if (flash == NULL || key == NULL) {
        fprintf(stderr, "fleetgw-boot-sim: --flash and --key are required\n");
        usage(stderr);
        return 2;
    }
    uint8_t spki[BOOT_P256_SPKI_LEN];
    if (read_key(key, spki) != 0) {
        fprintf(stderr, "fleetgw-boot-sim: %s: not a P-256 public key (PEM)\n", key);
        return 2;
    }
    struct flash_file ff;
    int r = flash_file_open(&ff, flash);
    if (r != 0) {
        fprintf(stderr, "fleetgw-boot-sim: %s: %s\n", flash,
                r == -22 ? "not a flash file of this layout (size)" : strerror(-r));
        return 2;
    }
    if (primary != NULL && load_slot(&ff, BOOT_PRIMARY_OFF, primary) != 0) {
        fprintf(stderr, "fleetgw-boot-sim: cannot load %s into the primary slot\n", primary);
        goto out;
    }
    if (secondary != NULL && load_slot(&ff, BOOT_SECONDARY_OFF, secondary) != 0) {
        fprintf(stderr, "fleetgw-boot-sim: cannot load %s into the secondary slot\n", secondary);
        goto out;
    }
    if (request && boot_request_install(&ff.dev) != 0) {
        fprintf(stderr, "fleetgw-boot-sim: install request refused (confirm the running "
                        "image first)\n");
        goto out;
    }
    if (confirm && boot_confirm(&ff.dev) != 0) {
        fprintf(stderr, "fleetgw-boot-sim: confirm failed\n");
        goto out;
    }
    rc = 0;
    if (boot) {
        struct boot_ctx ctx = {&ff.dev, spki, sizeof(spki), log_line, NULL};
        struct boot_image_info info;
        struct boot_record rec;
        uint8_t pub[65];
        if (iak_provision(&ff.dev, trng, NULL) != IAK_OK ||
            iak_public_key(&ff.dev, pub) != IAK_OK) {
            fprintf(stderr, "fleetgw-boot-sim: IAK provisioning failed\n");
            rc = 2;
            goto out;
        }
        enum boot_result br = boot_go(&ctx, &info, &rec);
        if (br == BOOT_GO) {
            hex("measurement", rec.measurement, sizeof(rec.measurement));
            hex("signer-id", rec.signer_id, sizeof(rec.signer_id));
            hex("iak-public", pub, sizeof(pub));
        } else {
            printf("boot: halted: no verified image to start\n");
            rc = br == BOOT_FLASH_FAILURE ? 2 : 1;
        }
    }
out:
    flash_file_close(&ff);
    return rc;
}
