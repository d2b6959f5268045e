/* Fuzz target: the OTA client state machine (ota.h) fed arbitrary OTA messages over an
 * in-memory slot and progress record. Input: a sequence of records
 *   [op: 1 byte][len: 2 bytes big endian][payload: len bytes]
 * op % 5: 0 offer, 1 chunk, 2 confirm, 3 unknown suffix, 4 restart (ota_init again over the
 * same slot and progress; payload byte 0 bit 0 chooses the running digest = progress digest,
 * bit 1 a running image in test mode).
 * Every reply must decode and be an ack, a chunk request or a status; while the running image
 * is in test mode (and not confirmed) the slot holds the revert image: nothing may erase or
 * write it. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fleetgw/msg.h"
#include "fleetgw/ota.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FZ_SLOT  8192u
#define FZ_ERASE 1024u

struct fz {
    uint8_t slot[FZ_SLOT];
    struct ota_progress prog;
    int has_prog;
    const struct ota *o; /* to check the test-mode rule at every flash operation */
};

static void check_not_test_mode(const struct fz *f)
{
    if (f->o != NULL && f->o->cfg.running_test_mode)
        abort(); /* a download over the revert image */
}

static int f_erase(void *ctx, uint32_t off, uint32_t len)
{
    struct fz *f = ctx;
    if (off % FZ_ERASE != 0 || off > FZ_SLOT || len > FZ_SLOT - off)
        abort();
    check_not_test_mode(f);
    memset(f->slot + off, 0xff, len);
    return 0;
}

static int f_write(void *ctx, uint32_t off, const uint8_t *buf, uint32_t len)
{
    struct fz *f = ctx;
    if (off > FZ_SLOT || len > FZ_SLOT - off)
        abort(); /* the client must never write outside the slot */
    check_not_test_mode(f);
    memcpy(f->slot + off, buf, len);
    return 0;
}

static const uint8_t *f_map(void *ctx, uint32_t len)
{
    struct fz *f = ctx;
    if (len > FZ_SLOT)
        abort();
    return f->slot;
}

static int f_load(void *ctx, struct ota_progress *p)
{
    struct fz *f = ctx;
    if (!f->has_prog)
        return 1;
    *p = f->prog;
    return 0;
}

static int f_store(void *ctx, const struct ota_progress *p)
{
    struct fz *f = ctx;
    f->prog = *p;
    f->has_prog = 1;
    return 0;
}

static int f_ok(void *ctx)
{
    (void)ctx;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct fz f;
    static struct ota o;
    static const char *const suffixes[] = {"offer", "chunk", "confirm", "status"};
    struct image_key key;
    struct ota_port p;
    struct ota_config c;
    uint8_t out[OTA_REPLY_MAX];
    uint8_t running[MSG_DIGEST_LEN];

    memset(&f, 0, sizeof(f));
    memset(&key, 0, sizeof(key));
    key.pub[0] = 0x04;
    memset(&p, 0, sizeof(p));
    p.ctx = &f;
    p.slot_size = FZ_SLOT;
    p.erase_size = FZ_ERASE;
    p.erase = f_erase;
    p.write = f_write;
    p.map = f_map;
    p.progress_load = f_load;
    p.progress_store = f_store;
    p.request_install = f_ok;
    p.confirm = f_ok;
    memset(&c, 0, sizeof(c));
    c.keys = &key;
    c.n_keys = 1;
    c.running = (struct msg_version){1, 0, 0, 0};
    if (ota_init(&o, &p, &c) != OTA_OK)
        abort();
    f.o = &o;
    while (size >= 3) {
        unsigned op = data[0] % 5u;
        size_t len = ((size_t)data[1] << 8) | data[2];
        data += 3;
        size -= 3;
        if (len > size)
            len = size;
        if (op == 4) {
            memcpy(running, f.prog.digest, sizeof(running));
            c.running_digest = (len > 0 && (data[0] & 1)) ? running : NULL;
            c.running_test_mode = (len > 0 && (data[0] & 2)) ? 1 : 0;
            if (ota_init(&o, &p, &c) != OTA_OK)
                abort();
        } else {
            size_t n = 0;
            const char *t = NULL;
            struct msg m;
            const char *s = suffixes[op];
            enum ota_err e = ota_handle(&o, s, strlen(s), data, len, out, sizeof(out), &n, &t);
            if (e == OTA_OK && n > 0) {
                if (t == NULL || msg_decode(out, n, &m) != MSG_OK)
                    abort();
                if (!((strcmp(t, "ota/ack") == 0 && m.type == MSG_OTA_ACK) ||
                      (strcmp(t, "ota/request") == 0 && m.type == MSG_OTA_CHUNK_REQ) ||
                      (strcmp(t, "ota/status") == 0 && m.type == MSG_OTA_STATUS)))
                    abort();
            }
            if (e != OTA_OK && n != 0)
                abort();
        }
        data += len;
        size -= len;
    }
    return 0;
}
