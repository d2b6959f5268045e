/* fleet-sim: the device under one simulated node. Its flash is a file in the node's state
 * directory with the board's layout (primary, secondary, scratch, boot state, protected
 * storage: agents/ports/posix/flash_file.c); every "reset" runs the real bootloader core
 * (agents/boot boot_go(): signature and anti-rollback check, swap, test mode, revert,
 * measured-boot record); the agents/core OTA client writes the secondary slot through the
 * struct ota_port below and keeps its progress record in DIR/ota.rec (replaced atomically,
 * so a killed process never leaves a torn record).
 *
 * Fault switches (docs/agent.md, "OTA in fleet-sim") live in struct sim_fault; the device
 * applies the ones that act at boot (boot-fail, swap-cut, wrong-measurement), fleet-sim the
 * ones that act on the link (stall, power-cut, offline, slow, refuse). */
#ifndef FLEETGW_SIM_DEVICE_H
#define FLEETGW_SIM_DEVICE_H

#include <stdbool.h>
#include <stdint.h>

#include "flash_file.h"
#include "fleetgw/boot.h"
#include "fleetgw/ota.h"
#include "sim_attest.h"

/* Misbehaviours of a node group during an update. Percentages are of the offered image
 * size (the download offset after a chunk); 0 / false: off. Each fires once per process. */
struct sim_fault {
    bool boot_fail;         /* the new image crashes before it runs (bootloader reverts) */
    bool wrong_measurement; /* the new image reports a flipped measurement */
    unsigned stall_pct;     /* stop requesting chunks at this percentage (until a new offer) */
    unsigned power_cut_pct; /* lose power at this percentage: the node restarts from flash */
    unsigned offline_pct;   /* go offline at this percentage ... */
    unsigned offline_s;     /* ... for this many seconds */
    unsigned slow_ms;       /* hold every chunk request this long (slow link) */
    unsigned refuse_reason; /* refuse every offer with this reason (1 no-space, 4 downgrade) */
    unsigned swap_cut_ops;  /* cut the power after this many flash writes/erases of the
                               boot that installs (during the swap); power back at once */
};

/* Shared by all devices of the process (read only after setup). */
struct sim_device_shared {
    uint8_t boot_key_spki[BOOT_P256_SPKI_LEN]; /* the bootloader's built-in key */
    struct image_key ota_key;                  /* the same key for the OTA client */
    const uint8_t *factory_image;              /* programmed into an empty primary slot */
    uint32_t factory_len;
    bool verbose; /* print the bootloader's lines */
};

/* The flash seam with a power cut after a number of operations (swap-cut). */
struct sim_cut_flash {
    struct boot_flash dev;
    const struct boot_flash *lower;
    long ops_left; /* < 0: no cut */
};

struct sim_device {
    char dir[512];
    char name[64]; /* for messages */
    const struct sim_device_shared *sh;
    struct sim_fault fault;
    struct flash_file flash;
    bool flash_open;
    struct sim_cut_flash cut;
    struct boot_record rec; /* of the image running now */
    struct boot_image_info info;
    bool running;           /* a verified image runs (false: stuck in the bootloader) */
    struct sim_image image; /* what the token measures */
    struct ota ota;
    uint32_t boots, swap_cuts, crashes;
    bool boot_fail_fired, swap_cut_fired;
};

/* Opens DIR/flash.bin (created erased), programs the factory image into an empty primary
 * slot. 0 or -1 with a message on stderr. */
int sim_device_open(struct sim_device *d, const struct sim_device_shared *sh, const char *dir,
                    const char *name, const struct sim_fault *fault);
/* One reset: the bootloader (boot_go) then the OTA client's start (ota_init from the record).
 * Applies boot-fail (a crash in test mode: boot again, which reverts) and swap-cut. 0 when an
 * image runs, -1 when none does (the device stays in the bootloader). */
int sim_device_boot(struct sim_device *d);
void sim_device_close(struct sim_device *d);

#endif
