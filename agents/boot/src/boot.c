/* Bootloader core: state log, swap with power-cut recovery, test installs, revert,
 * anti-rollback, measured boot.
 *
 * Write ordering (each step is one flash operation; a power cut between any two leaves a
 * state from which the next boot finishes the job and starts a verified image):
 *   - The state is an append-only log of CRC-protected records; a torn record fails its CRC
 *     and the previous record stays the state. A full sector is compacted by erasing the
 *     other sector and writing the current state there (the full one still holds it until
 *     the new record is complete).
 *   - A swap moves one sector at a time through the scratch sector in three stages:
 *     0: erase scratch, copy primary[i] -> scratch; 1: erase primary[i], copy secondary[i]
 *     -> primary[i]; 2: erase secondary[i], copy scratch -> secondary[i]. After each stage
 *     the state records the next stage. Redoing a stage is harmless: its sources are intact
 *     until the record of that stage is written (MCUboot's swap-using-scratch idea).
 */
#include "fleetgw/boot.h"
#include "fleetgw/bytes.h"

#include <string.h>

#define STATE_MAGIC     0x53424746u /* "FGBS" */
#define RECS_PER_SECTOR (BOOT_SECTOR_SIZE / BOOT_RECORD_SIZE)
#define COPY_CHUNK      256u
#define SLOT_SECTORS    (BOOT_SLOT_SIZE / BOOT_SECTOR_SIZE)

static uint32_t crc32(const uint8_t *p, size_t n)
{
    uint32_t c = 0xFFFFFFFFu;
    while (n-- > 0) {
        c ^= *p++;
        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1u)));
    }
    return ~c;
}

static void rec_encode(const struct boot_state *st, uint8_t r[BOOT_RECORD_SIZE])
{
    memset(r, 0, BOOT_RECORD_SIZE);
    bytes_put_le32(r, STATE_MAGIC);
    bytes_put_le32(r + 4, st->seq);
    r[8] = st->swap_type;
    r[9] = st->swap_stage;
    bytes_put_le16(r + 10, (uint16_t)st->swap_sector);
    bytes_put_le16(r + 12, (uint16_t)st->swap_nsectors);
    r[14] = st->pending;
    r[15] = st->image_ok;
    bytes_put_le32(r + 16, st->min_sec_cnt);
    bytes_put_le32(r + 28, crc32(r, 28));
}

static int rec_decode(const uint8_t r[BOOT_RECORD_SIZE], struct boot_state *st)
{
    if (bytes_le32(r) != STATE_MAGIC || bytes_le32(r + 28) != crc32(r, 28))
        return -1;
    memset(st, 0, sizeof(*st));
    st->seq = bytes_le32(r + 4);
    st->swap_type = r[8];
    st->swap_stage = r[9];
    st->swap_sector = (uint16_t)(r[10] | (r[11] << 8));
    st->swap_nsectors = (uint16_t)(r[12] | (r[13] << 8));
    st->pending = r[14];
    st->image_ok = r[15];
    st->min_sec_cnt = bytes_le32(r + 16);
    /* A record with impossible values is treated as garbage, like a bad CRC. */
    if (st->swap_type > BOOT_SWAP_REVERT || st->swap_stage > 2 ||
        st->swap_nsectors > SLOT_SECTORS || st->swap_sector > st->swap_nsectors ||
        st->pending > 1 || st->image_ok > 1)
        return -1;
    return 0;
}

static int all_erased(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != 0xFF)
            return 0;
    return 1;
}

/* Finds the current state and where the next record goes: *next_off is the offset of the
 * next free slot, or 0 when the active sector is full. */
static int state_scan(const struct boot_flash *flash, struct boot_state *st, int *found,
                      uint32_t *active_off, uint32_t *next_off)
{
    uint8_t r[BOOT_RECORD_SIZE];
    struct boot_state cand;
    uint32_t best_off = 0;
    *found = 0;
    *active_off = BOOT_STATE_OFF;
    *next_off = 0;
    for (uint32_t s = 0; s < 2; s++) {
        for (uint32_t i = 0; i < RECS_PER_SECTOR; i++) {
            uint32_t off = BOOT_STATE_OFF + s * BOOT_SECTOR_SIZE + i * BOOT_RECORD_SIZE;
            if (flash->read(flash->ctx, off, r, BOOT_RECORD_SIZE) != 0)
                return -1;
            if (rec_decode(r, &cand) != 0)
                continue;
            if (!*found || cand.seq > st->seq) {
                *st = cand;
                *found = 1;
                best_off = off;
                *active_off = BOOT_STATE_OFF + s * BOOT_SECTOR_SIZE;
            }
        }
    }
    uint32_t start = *found ? best_off + BOOT_RECORD_SIZE : *active_off;
    for (uint32_t off = start; off < *active_off + BOOT_SECTOR_SIZE; off += BOOT_RECORD_SIZE) {
        if (flash->read(flash->ctx, off, r, BOOT_RECORD_SIZE) != 0)
            return -1;
        if (all_erased(r, BOOT_RECORD_SIZE)) {
            *next_off = off;
            break;
        }
    }
    return 0;
}

int boot_state_load(const struct boot_flash *flash, struct boot_state *st)
{
    int found;
    uint32_t active, next;
    memset(st, 0, sizeof(*st));
    if (state_scan(flash, st, &found, &active, &next) != 0)
        return -1;
    if (!found) {
        memset(st, 0, sizeof(*st));
        st->image_ok = 1; /* a virgin device runs its factory image as confirmed */
    }
    return 0;
}

int boot_state_store(const struct boot_flash *flash, struct boot_state *st)
{
    struct boot_state cur;
    uint8_t r[BOOT_RECORD_SIZE];
    int found;
    uint32_t active, next;
    if (state_scan(flash, &cur, &found, &active, &next) != 0)
        return -1;
    st->seq = found ? cur.seq + 1 : 1;
    if (next == 0) {
        /* Active sector full (or a virgin sector holding garbage): move to the other one. */
        next = found
                   ? (active == BOOT_STATE_OFF ? BOOT_STATE_OFF + BOOT_SECTOR_SIZE : BOOT_STATE_OFF)
                   : BOOT_STATE_OFF;
        if (flash->erase(flash->ctx, next, BOOT_SECTOR_SIZE) != 0)
            return -1;
    }
    rec_encode(st, r);
    return flash->write(flash->ctx, next, r, BOOT_RECORD_SIZE);
}

int boot_request_install(const struct boot_flash *flash)
{
    struct boot_state st;
    if (boot_state_load(flash, &st) != 0)
        return -1;
    if (st.swap_type != BOOT_SWAP_NONE || !st.image_ok)
        return -1; /* confirm the running image first */
    st.pending = 1;
    return boot_state_store(flash, &st);
}

int boot_confirm(const struct boot_flash *flash)
{
    struct boot_state st;
    if (boot_state_load(flash, &st) != 0)
        return -1;
    if (st.swap_type != BOOT_SWAP_NONE)
        return -1;
    if (st.image_ok)
        return 0;
    st.image_ok = 1;
    return boot_state_store(flash, &st);
}

static uint32_t record_sum(const struct boot_record *rec)
{
    const uint8_t *p = (const uint8_t *)rec;
    uint32_t s = 0x5a5a5a5au;
    for (size_t i = 0; i < offsetof(struct boot_record, check); i++)
        s = (s << 5 | s >> 27) ^ p[i];
    return s;
}

void boot_record_fill(struct boot_record *rec, const struct boot_image_info *info, int confirmed)
{
    memset(rec, 0, sizeof(*rec));
    rec->magic = BOOT_RECORD_MAGIC;
    rec->sec_cnt = info->sec_cnt;
    rec->version = info->version;
    memcpy(rec->measurement, info->hash, 32);
    memcpy(rec->signer_id, info->signer_id, 32);
    rec->confirmed = confirmed ? 1u : 0u;
    rec->check = record_sum(rec);
}

int boot_record_valid(const struct boot_record *rec)
{
    return rec->magic == BOOT_RECORD_MAGIC && rec->check == record_sum(rec);
}

/* ---- logging without printf (the firmware has none) ---- */

struct line {
    char buf[128];
    size_t len;
};

static void line_str(struct line *l, const char *s)
{
    while (*s != '\0' && l->len < sizeof(l->buf) - 1)
        l->buf[l->len++] = *s++;
    l->buf[l->len] = '\0';
}

static void line_u32(struct line *l, uint32_t v)
{
    char tmp[11];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10u);
        v /= 10u;
    } while (v != 0);
    while (n > 0 && l->len < sizeof(l->buf) - 1)
        l->buf[l->len++] = tmp[--n];
    l->buf[l->len] = '\0';
}

static void line_version(struct line *l, const struct boot_image_version *v)
{
    line_u32(l, v->major);
    line_str(l, ".");
    line_u32(l, v->minor);
    line_str(l, ".");
    line_u32(l, v->revision);
    line_str(l, "+");
    line_u32(l, v->build);
}

static void emit(const struct boot_ctx *ctx, const struct line *l)
{
    if (ctx->log != NULL)
        ctx->log(ctx->log_ctx, l->buf);
}

static void say(const struct boot_ctx *ctx, const char *a, const char *b)
{
    struct line l = {.len = 0};
    line_str(&l, a);
    line_str(&l, b);
    emit(ctx, &l);
}

/* ---- swap ---- */

static int copy_sector(const struct boot_flash *flash, uint32_t from, uint32_t to)
{
    uint8_t buf[COPY_CHUNK];
    if (flash->erase(flash->ctx, to, BOOT_SECTOR_SIZE) != 0)
        return -1;
    for (uint32_t o = 0; o < BOOT_SECTOR_SIZE; o += COPY_CHUNK) {
        if (flash->read(flash->ctx, from + o, buf, COPY_CHUNK) != 0 ||
            flash->write(flash->ctx, to + o, buf, COPY_CHUNK) != 0)
            return -1;
    }
    return 0;
}

static int swap_run(const struct boot_ctx *ctx, struct boot_state *st)
{
    const struct boot_flash *flash = ctx->flash;
    while (st->swap_type != BOOT_SWAP_NONE && st->swap_sector < st->swap_nsectors) {
        uint32_t p = BOOT_PRIMARY_OFF + (uint32_t)st->swap_sector * BOOT_SECTOR_SIZE;
        uint32_t s = BOOT_SECONDARY_OFF + (uint32_t)st->swap_sector * BOOT_SECTOR_SIZE;
        int rc;
        if (st->swap_stage == 0)
            rc = copy_sector(flash, p, BOOT_SCRATCH_OFF);
        else if (st->swap_stage == 1)
            rc = copy_sector(flash, s, p);
        else
            rc = copy_sector(flash, BOOT_SCRATCH_OFF, s);
        if (rc != 0)
            return -1;
        if (st->swap_stage < 2) {
            st->swap_stage++;
        } else {
            st->swap_stage = 0;
            st->swap_sector++;
        }
        int done = st->swap_sector == st->swap_nsectors;
        const char *what = st->swap_type == BOOT_SWAP_REVERT ? "revert" : "install";
        if (done) {
            /* Finished: the same record ends the swap. swap_nsectors stays for a revert. */
            st->image_ok = st->swap_type == BOOT_SWAP_REVERT ? 1 : 0;
            st->swap_type = BOOT_SWAP_NONE;
            st->swap_sector = 0;
            st->pending = 0;
        }
        if (boot_state_store(flash, st) != 0)
            return -1;
        if (done)
            say(ctx, "boot: swap complete: ", what);
    }
    return 0;
}

static uint16_t swap_extent(const struct boot_flash *flash)
{
    uint32_t a = boot_image_extent(flash, BOOT_PRIMARY_OFF, BOOT_SLOT_SIZE);
    uint32_t b = boot_image_extent(flash, BOOT_SECONDARY_OFF, BOOT_SLOT_SIZE);
    uint32_t n = a > b ? a : b;
    if (n == 0)
        n = BOOT_SLOT_SIZE;
    return (uint16_t)((n + BOOT_SECTOR_SIZE - 1) / BOOT_SECTOR_SIZE);
}

static int swap_start(const struct boot_ctx *ctx, struct boot_state *st, uint8_t type,
                      uint16_t nsectors)
{
    st->swap_type = type;
    st->swap_stage = 0;
    st->swap_sector = 0;
    st->swap_nsectors = nsectors;
    st->pending = 0;
    if (boot_state_store(ctx->flash, st) != 0)
        return -1;
    return swap_run(ctx, st);
}

static void say_rejected(const struct boot_ctx *ctx, const char *slot, enum boot_img_status r)
{
    struct line l = {.len = 0};
    line_str(&l, "boot: ");
    line_str(&l, slot);
    line_str(&l, " slot image rejected: ");
    line_str(&l, boot_img_status_str(r));
    emit(ctx, &l);
}

static void say_rollback(const struct boot_ctx *ctx, const char *slot, uint32_t cnt, uint32_t min)
{
    struct line l = {.len = 0};
    line_str(&l, "boot: ");
    line_str(&l, slot);
    line_str(&l, " slot image rejected: security counter ");
    line_u32(&l, cnt);
    line_str(&l, " below minimum ");
    line_u32(&l, min);
    emit(ctx, &l);
}

/* Verifies a slot including the anti-rollback check; logs refusals. 0 when acceptable. */
static int check_slot(const struct boot_ctx *ctx, const struct boot_state *st, uint32_t off,
                      const char *name, struct boot_image_info *info)
{
    enum boot_img_status r =
        boot_verify_image(ctx->flash, off, BOOT_SLOT_SIZE, ctx->key_spki, ctx->key_spki_len, info);
    if (r != BOOT_IMG_OK) {
        say_rejected(ctx, name, r);
        return r == BOOT_IMG_FLASH_ERROR ? -2 : -1;
    }
    if (info->sec_cnt < st->min_sec_cnt) {
        say_rollback(ctx, name, info->sec_cnt, st->min_sec_cnt);
        memset(info, 0, sizeof(*info));
        return -1;
    }
    return 0;
}

enum boot_result boot_go(const struct boot_ctx *ctx, struct boot_image_info *info,
                         struct boot_record *rec)
{
    const struct boot_flash *flash = ctx->flash;
    struct boot_state st;
    int reverted = 0, rc;

    memset(info, 0, sizeof(*info));
    memset(rec, 0, sizeof(*rec));
    if (boot_state_load(flash, &st) != 0)
        return BOOT_FLASH_FAILURE;

    if (st.swap_type != BOOT_SWAP_NONE) {
        say(ctx, "boot: resuming interrupted ",
            st.swap_type == BOOT_SWAP_INSTALL ? "install" : "revert");
        reverted = st.swap_type == BOOT_SWAP_REVERT;
        if (swap_run(ctx, &st) != 0)
            return BOOT_FLASH_FAILURE;
    } else if (st.pending) {
        rc = check_slot(ctx, &st, BOOT_SECONDARY_OFF, "secondary", info);
        if (rc == -2)
            return BOOT_FLASH_FAILURE;
        if (rc != 0) {
            say(ctx, "boot: update refused, keeping the current image", "");
            st.pending = 0;
            if (boot_state_store(flash, &st) != 0)
                return BOOT_FLASH_FAILURE;
        } else {
            struct line l = {.len = 0};
            line_str(&l, "boot: installing image ");
            line_version(&l, &info->version);
            line_str(&l, " in test mode");
            emit(ctx, &l);
            if (swap_start(ctx, &st, BOOT_SWAP_INSTALL, swap_extent(flash)) != 0)
                return BOOT_FLASH_FAILURE;
        }
    } else if (!st.image_ok) {
        say(ctx, "boot: image was not confirmed, reverting to the previous image", "");
        reverted = 1;
        if (swap_start(ctx, &st, BOOT_SWAP_REVERT,
                       st.swap_nsectors ? st.swap_nsectors : swap_extent(flash)) != 0)
            return BOOT_FLASH_FAILURE;
    }

    for (;;) {
        rc = check_slot(ctx, &st, BOOT_PRIMARY_OFF, "primary", info);
        if (rc == -2)
            return BOOT_FLASH_FAILURE;
        if (rc == 0)
            break;
        if (st.image_ok || reverted) {
            say(ctx, "boot: no bootable image, staying in the bootloader", "");
            return BOOT_NO_IMAGE;
        }
        /* The image under test does not verify: go back to the previous one. */
        say(ctx, "boot: image under test is not bootable, reverting", "");
        reverted = 1;
        if (swap_start(ctx, &st, BOOT_SWAP_REVERT,
                       st.swap_nsectors ? st.swap_nsectors : swap_extent(flash)) != 0)
            return BOOT_FLASH_FAILURE;
    }

    if (st.image_ok && info->sec_cnt > st.min_sec_cnt) {
        st.min_sec_cnt = info->sec_cnt;
        if (boot_state_store(flash, &st) != 0)
            return BOOT_FLASH_FAILURE;
    }
    boot_record_fill(rec, info, st.image_ok);
    struct line l = {.len = 0};
    line_str(&l, "boot: starting image ");
    line_version(&l, &info->version);
    line_str(&l, " (security counter ");
    line_u32(&l, info->sec_cnt);
    line_str(&l, st.image_ok ? ", confirmed)" : ", test mode)");
    emit(ctx, &l);
    return BOOT_GO;
}
