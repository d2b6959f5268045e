/* The bootloader's portable core: boot state log, slot swap with power-cut recovery, test
 * installs with revert, anti-rollback, measured boot. The same code runs on the Cortex-M3
 * (agents/ports/mps2-an385) and on the host (unit tests, posix simulation). */
#ifndef FLEETGW_BOOT_H
#define FLEETGW_BOOT_H

#include <stddef.h>
#include <stdint.h>

#include "fleetgw/boot_flash.h"
#include "fleetgw/boot_image.h"

/* Boot state, kept as an append-only log of CRC-protected 32-byte records in two sectors.
 * The valid record with the highest sequence number is the state. */
enum boot_swap_type { BOOT_SWAP_NONE = 0, BOOT_SWAP_INSTALL = 1, BOOT_SWAP_REVERT = 2 };

struct boot_state {
    uint32_t seq;
    uint8_t swap_type;  /* enum boot_swap_type: a swap in progress */
    uint8_t swap_stage; /* 0: copy primary->scratch, 1: secondary->primary, 2: scratch->secondary */
    uint16_t swap_sector;   /* sector being swapped */
    uint16_t swap_nsectors; /* sectors to swap */
    uint8_t pending;        /* the secondary slot holds an image to install in test mode */
    uint8_t image_ok;       /* the primary image is confirmed (0: under test, revert next reset) */
    uint32_t min_sec_cnt;   /* anti-rollback: lowest security counter allowed */
};

#define BOOT_RECORD_SIZE 32u

/* Reads the current state (a virgin device: confirmed, nothing pending, counter 0). */
int boot_state_load(const struct boot_flash *flash, struct boot_state *st) BOOT_MUST_CHECK;
/* Appends st as the new state (seq is set by this call). One flash write, or on a full
 * sector: one erase of the other sector and one write. */
int boot_state_store(const struct boot_flash *flash, struct boot_state *st) BOOT_MUST_CHECK;

/* Requests (application side) that the image in the secondary slot is installed in test mode
 * at the next reset. */
int boot_request_install(const struct boot_flash *flash) BOOT_MUST_CHECK;
/* Confirms (application side) the running image: it will not be reverted. */
int boot_confirm(const struct boot_flash *flash) BOOT_MUST_CHECK;

/* Measured boot record, left by the bootloader for the application (shared RAM on the
 * device). What the gateway derives from an image: measurement = image hash, signer id =
 * SHA-256 of the signing key. */
#define BOOT_RECORD_MAGIC 0x46474252u /* "FGBR" */
struct boot_record {
    uint32_t magic;
    uint32_t sec_cnt;
    struct boot_image_version version;
    uint8_t measurement[32];
    uint8_t signer_id[32];
    uint32_t confirmed; /* 1: confirmed image, 0: running in test mode */
    uint32_t check;     /* simple sum of the words above (detects a stale/garbled record) */
};

void boot_record_fill(struct boot_record *rec, const struct boot_image_info *info, int confirmed);
int boot_record_valid(const struct boot_record *rec);

struct boot_ctx {
    const struct boot_flash *flash;
    const uint8_t *key_spki; /* built-in public key, DER SubjectPublicKeyInfo */
    size_t key_spki_len;
    void (*log)(void *log_ctx, const char *line); /* one line, no newline */
    void *log_ctx;
};

enum boot_result {
    BOOT_GO = 0,        /* the primary image is verified: jump to it */
    BOOT_NO_IMAGE,      /* nothing bootable: stay in the bootloader */
    BOOT_FLASH_FAILURE, /* flash read/write failed (tests: the power was cut) */
};

/* Runs one boot: finishes an interrupted swap, installs a pending image, reverts an
 * unconfirmed one, verifies the primary slot. On BOOT_GO, info and rec describe the image
 * to start. Every refusal is logged as "boot: ..." */
enum boot_result boot_go(const struct boot_ctx *ctx, struct boot_image_info *info,
                         struct boot_record *rec) BOOT_MUST_CHECK;

#endif
