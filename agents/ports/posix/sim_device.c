/* fleet-sim: the device under a simulated node (see sim_device.h). */
#define _GNU_SOURCE
#include "sim_device.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- flash with a power cut after N operations ---------------------------------------- */

static int cut_count(struct sim_cut_flash *c)
{
    if (c->ops_left < 0)
        return 0;
    if (c->ops_left == 0)
        return -1; /* the power is off: nothing reaches the flash */
    c->ops_left--;
    return 0;
}

static int cut_read(void *ctx, uint32_t off, void *buf, uint32_t len)
{
    struct sim_cut_flash *c = ctx;
    if (c->ops_left == 0)
        return -1;
    return c->lower->read(c->lower->ctx, off, buf, len);
}

static int cut_write(void *ctx, uint32_t off, const void *buf, uint32_t len)
{
    struct sim_cut_flash *c = ctx;
    if (cut_count(c) != 0)
        return -1;
    return c->lower->write(c->lower->ctx, off, buf, len);
}

static int cut_erase(void *ctx, uint32_t off, uint32_t len)
{
    struct sim_cut_flash *c = ctx;
    if (cut_count(c) != 0)
        return -1;
    return c->lower->erase(c->lower->ctx, off, len);
}

static const uint8_t *cut_map(void *ctx, uint32_t off, uint32_t len)
{
    struct sim_cut_flash *c = ctx;
    if (c->ops_left == 0)
        return NULL;
    return c->lower->map(c->lower->ctx, off, len);
}

/* ---- the OTA client's port -------------------------------------------------------------- */

static int port_erase(void *ctx, uint32_t off, uint32_t len)
{
    struct sim_device *d = ctx;
    if (off > BOOT_SLOT_SIZE || len > BOOT_SLOT_SIZE - off)
        return -1;
    return d->flash.dev.erase(d->flash.dev.ctx, BOOT_SECONDARY_OFF + off, len);
}

static int port_write(void *ctx, uint32_t off, const uint8_t *buf, uint32_t len)
{
    struct sim_device *d = ctx;
    if (off > BOOT_SLOT_SIZE || len > BOOT_SLOT_SIZE - off)
        return -1;
    return d->flash.dev.write(d->flash.dev.ctx, BOOT_SECONDARY_OFF + off, buf, len);
}

static const uint8_t *port_map(void *ctx, uint32_t len)
{
    struct sim_device *d = ctx;
    if (len > BOOT_SLOT_SIZE)
        return NULL;
    return d->flash.dev.map(d->flash.dev.ctx, BOOT_SECONDARY_OFF, len);
}

static int rec_path(const struct sim_device *d, char *out, size_t cap, const char *suffix)
{
    int w = snprintf(out, cap, "%s/ota.rec%s", d->dir, suffix);
    return (w < 0 || (size_t)w >= cap) ? -1 : 0;
}

static int port_progress_load(void *ctx, struct ota_progress *p)
{
    struct sim_device *d = ctx;
    char path[600];
    int fd, ret = -1;
    ssize_t n;
    if (rec_path(d, path, sizeof(path), "") != 0)
        return -1;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? 1 : -1;
    n = read(fd, p, sizeof(*p));
    /* a record of another size is not ours: start idle (ota_init checks the contents) */
    ret = n == (ssize_t)sizeof(*p) ? 0 : 1;
    close(fd);
    return ret;
}

/* Write a new file and rename it over the old one: the record is either the old or the
 * new one, never torn. */
static int port_progress_store(void *ctx, const struct ota_progress *p)
{
    struct sim_device *d = ctx;
    char path[600], tmp[600];
    int fd;
    if (rec_path(d, path, sizeof(path), "") != 0 || rec_path(d, tmp, sizeof(tmp), ".tmp") != 0)
        return -1;
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    if (write(fd, p, sizeof(*p)) != (ssize_t)sizeof(*p)) {
        close(fd);
        unlink(tmp);
        return -1;
    }
    close(fd);
    return rename(tmp, path) == 0 ? 0 : -1;
}

static int port_request_install(void *ctx)
{
    struct sim_device *d = ctx;
    return boot_request_install(&d->flash.dev) == 0 ? 0 : -1;
}

static int port_confirm(void *ctx)
{
    struct sim_device *d = ctx;
    if (boot_confirm(&d->flash.dev) != 0)
        return -1;
    d->rec.confirmed = 1;
    return 0;
}

/* ---- boot --------------------------------------------------------------------------------- */

static void boot_log(void *ctx, const char *line)
{
    struct sim_device *d = ctx;
    if (d->sh->verbose)
        printf("fleet-sim: node %s: %s\n", d->name, line);
}

int sim_device_open(struct sim_device *d, const struct sim_device_shared *sh, const char *dir,
                    const char *name, const struct sim_fault *fault)
{
    char path[600];
    int r, w;
    memset(d, 0, sizeof(*d));
    d->sh = sh;
    if (fault != NULL)
        d->fault = *fault;
    w = snprintf(d->dir, sizeof(d->dir), "%s", dir);
    if (w < 0 || (size_t)w >= sizeof(d->dir) ||
        snprintf(d->name, sizeof(d->name), "%s", name) < 0 ||
        snprintf(path, sizeof(path), "%s/flash.bin", dir) >= (int)sizeof(path)) {
        fprintf(stderr, "fleet-sim: state directory name too long: %s\n", dir);
        return -1;
    }
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        fprintf(stderr, "fleet-sim: cannot create %s: %s\n", dir, strerror(errno));
        return -1;
    }
    r = flash_file_open(&d->flash, path);
    if (r != 0) {
        fprintf(stderr, "fleet-sim: node %s: flash file %s: %s\n", name, path,
                r == -EINVAL ? "not a flash file of this layout (size)" : strerror(-r));
        return -1;
    }
    d->flash_open = true;
    /* Manufacture: an empty primary slot gets the factory image (an erased first word). */
    const uint8_t *p = d->flash.dev.map(d->flash.dev.ctx, BOOT_PRIMARY_OFF, 4);
    if (p != NULL && p[0] == 0xFF && p[1] == 0xFF && p[2] == 0xFF && p[3] == 0xFF &&
        sh->factory_image != NULL) {
        uint32_t span =
            (sh->factory_len + BOOT_SECTOR_SIZE - 1u) / BOOT_SECTOR_SIZE * BOOT_SECTOR_SIZE;
        if (sh->factory_len > BOOT_SLOT_SIZE ||
            d->flash.dev.erase(d->flash.dev.ctx, BOOT_PRIMARY_OFF, span) != 0 ||
            d->flash.dev.write(d->flash.dev.ctx, BOOT_PRIMARY_OFF, sh->factory_image,
                               sh->factory_len) != 0) {
            fprintf(stderr, "fleet-sim: node %s: cannot program the factory image\n", name);
            return -1;
        }
    }
    return 0;
}

static void image_from_record(struct sim_image *img, const struct boot_record *rec)
{
    memset(img, 0, sizeof(*img));
    memcpy(img->measurement, rec->measurement, sizeof(img->measurement));
    memcpy(img->signer_id, rec->signer_id, sizeof(img->signer_id));
    img->major = rec->version.major;
    img->minor = rec->version.minor;
    img->revision = rec->version.revision;
    img->build = rec->version.build;
    snprintf(img->version, sizeof(img->version), "%u.%u.%u+%lu", (unsigned)img->major,
             (unsigned)img->minor, (unsigned)img->revision, (unsigned long)img->build);
}

/* boot_go() once, with the swap-cut fault armed when an install is pending. */
static enum boot_result boot_once(struct sim_device *d)
{
    struct boot_ctx ctx;
    struct boot_state st;
    d->cut.lower = &d->flash.dev;
    d->cut.ops_left = -1;
    d->cut.dev = (struct boot_flash){&d->cut, cut_read, cut_write, cut_erase, cut_map};
    if (d->fault.swap_cut_ops > 0 && !d->swap_cut_fired &&
        boot_state_load(&d->flash.dev, &st) == 0 && st.pending) {
        d->cut.ops_left = (long)d->fault.swap_cut_ops;
        d->swap_cut_fired = true;
    }
    memset(&ctx, 0, sizeof(ctx));
    ctx.flash = &d->cut.dev;
    ctx.key_spki = d->sh->boot_key_spki;
    ctx.key_spki_len = sizeof(d->sh->boot_key_spki);
    ctx.log = boot_log;
    ctx.log_ctx = d;
    d->boots++;
    return boot_go(&ctx, &d->info, &d->rec);
}

int sim_device_boot(struct sim_device *d)
{
    enum boot_result br = BOOT_FLASH_FAILURE;
    struct ota_port port;
    struct ota_config cfg;
    enum ota_err oe;

    d->running = false;
    /* A flash failure is a power cut (swap-cut): the power comes back and the bootloader
     * runs again (bounded: the cut fires once). */
    for (int i = 0; i < 3 && br == BOOT_FLASH_FAILURE; i++) {
        br = boot_once(d);
        if (br == BOOT_FLASH_FAILURE) {
            d->swap_cuts++;
            boot_log(d, "power cut during the boot (swap); power restored");
        }
    }
    /* boot-fail: the new image crashes in test mode before it runs; the watchdog resets the
     * device, and the bootloader reverts the unconfirmed image. */
    if (br == BOOT_GO && !d->rec.confirmed && d->fault.boot_fail && !d->boot_fail_fired) {
        d->boot_fail_fired = true;
        d->crashes++;
        boot_log(d, "new image crashed before it ran (fault boot-fail): reset");
        br = boot_once(d);
    }
    if (br != BOOT_GO) {
        printf("fleet-sim: node %s: no bootable image, staying in the bootloader\n", d->name);
        return -1;
    }
    d->running = true;
    image_from_record(&d->image, &d->rec);

    memset(&port, 0, sizeof(port));
    port.ctx = d;
    port.slot_size = BOOT_SLOT_SIZE;
    port.erase_size = BOOT_SECTOR_SIZE;
    port.erase = port_erase;
    port.write = port_write;
    port.map = port_map;
    port.progress_load = port_progress_load;
    port.progress_store = port_progress_store;
    port.request_install = port_request_install;
    port.confirm = port_confirm;
    memset(&cfg, 0, sizeof(cfg));
    cfg.keys = &d->sh->ota_key;
    cfg.n_keys = 1;
    /* anti-rollback as the bootloader: never below the running image's counter */
    cfg.check_min_counter = 1;
    cfg.min_counter = d->rec.sec_cnt;
    cfg.running.major = d->rec.version.major;
    cfg.running.minor = d->rec.version.minor;
    cfg.running.revision = d->rec.version.revision;
    cfg.running.build = d->rec.version.build;
    cfg.running_digest = d->rec.measurement;
    cfg.running_test_mode = d->rec.confirmed ? 0 : 1;
    oe = ota_init(&d->ota, &port, &cfg);
    if (oe != OTA_OK) {
        printf("fleet-sim: node %s: OTA client start failed: %s\n", d->name, ota_err_str(oe));
        return -1;
    }
    return 0;
}

void sim_device_close(struct sim_device *d)
{
    if (d->flash_open)
        flash_file_close(&d->flash);
    d->flash_open = false;
}
