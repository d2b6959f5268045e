/* Link mode: agents/core over UART0 (see agent_link.h, docs/firmware.md "Serial link").
 *
 * Every connection attempt starts with the marker line LINK:BEGIN\r\n on the UART; from then
 * on the UART carries only the raw TLS byte stream (no text is printed in link mode), which
 * fleetgw-serial-link pipes to the broker. A new marker starts a new broker connection. */
#include "agent_link.h"

#include <string.h>

#include "fleetgw/agent.h"
#include "fleetgw/boot.h"
#include "fleetgw/crypto.h"
#include "fleetgw/node_tls.h"
#include "fleetgw/ota.h"

/* The bootloader's built-in signing key (generated boot_pubkey.c): the OTA client trusts the
 * same key, so it refuses before download what the bootloader would refuse at reset. */
extern const uint8_t fleetgw_boot_pubkey[];
extern const unsigned fleetgw_boot_pubkey_len;

/* UART0 as a struct transport, non-blocking both ways: reads take what is waiting, writes
 * fill the TX register while it has room (a partial count, or TRANSPORT_AGAIN when full). */
static long uart_tr_read(void *ctx, uint8_t *buf, size_t len)
{
    size_t n = 0;
    (void)ctx;
    while (n < len) {
        int c = uart_getc_nonblock();
        if (c < 0)
            break;
        buf[n++] = (uint8_t)c;
    }
    return n > 0 ? (long)n : TRANSPORT_AGAIN;
}

static long uart_tr_write(void *ctx, const uint8_t *buf, size_t len)
{
    size_t n = 0;
    (void)ctx;
    while (n < len && uart_try_putc(buf[n]) == 0)
        n++;
    return n > 0 ? (long)n : TRANSPORT_AGAIN;
}

/* Entropy. mps2-an385 (QEMU) has no TRNG: each request is SHA-256 over a domain label, the
 * per-device manufacture seed (secret, never printed), the host wall clock and run time
 * (semihosting) and a counter. node_tls feeds this into an HMAC_DRBG per session. A board
 * with a TRNG uses it here instead (docs/firmware.md). */
struct entropy_ctx {
    const uint8_t *seed;
    uint32_t counter;
};

static int link_entropy(void *ctx, uint8_t *buf, size_t len)
{
    struct entropy_ctx *e = ctx;
    uint8_t in[16 + 32 + 12], block[32];
    int rc = 0;
    while (len > 0 && rc == 0) {
        uint32_t t = semihost_time(), cs = (uint32_t)semihost_clock_cs(), k = e->counter++;
        memcpy(in, "fleetgw-entropy1", 16);
        memcpy(in + 16, e->seed, 32);
        memcpy(in + 48, &t, 4);
        memcpy(in + 52, &cs, 4);
        memcpy(in + 56, &k, 4);
        rc = crypto_sha256(in, sizeof(in), block);
        size_t n = len < sizeof(block) ? len : sizeof(block);
        memcpy(buf, block, n);
        buf += n;
        len -= n;
    }
    crypto_wipe(in, sizeof(in));
    crypto_wipe(block, sizeof(block));
    return rc;
}

struct link_state {
    struct transport uart;
    int link_pending;
    link_attest_fn attest;
    void *user;
};

static agent_status_t link_open(void *ctx)
{
    struct link_state *s = ctx;
    /* Drop what is left of an earlier session, then announce a new one. */
    while (uart_getc_nonblock() >= 0)
        ;
    for (size_t i = 0; i < LINK_MARKER_LEN; i++)
        uart_putc(LINK_MARKER[i]);
    s->link_pending = 1;
    return AGENT_OK;
}

static void link_close(void *ctx)
{
    struct link_state *s = ctx;
    s->link_pending = 0;
}

static agent_status_t on_challenge(void *user, const uint8_t *nonce, size_t nonce_len,
                                   uint32_t ttl_s, uint8_t *out, size_t out_cap, size_t *ret_len)
{
    struct link_state *s = user;
    (void)ttl_s;
    return s->attest(s->user, nonce, nonce_len, out, out_cap, ret_len) == 0 ? AGENT_OK
                                                                            : AGENT_ERR_NOSPACE;
}

static uint32_t now_ms(void)
{
    return (uint32_t)semihost_clock_cs() * 10u;
}

/* ---- OTA: agents/core's client on the secondary slot ----------------------------------- */

#define OTA_REC_A "fleetgw-ota-a.rec"
#define OTA_REC_B "fleetgw-ota-b.rec"

struct ota_rec_file {
    uint32_t seq;
    uint8_t check[8]; /* first bytes of SHA-256(seq || progress): a torn write is refused */
    struct ota_progress p;
};

static struct ota ota;
static struct image_key ota_key;
static uint32_t ota_seq;
static int reset_pending;
static uint32_t reset_at, status_sent_for;

static int o_erase(void *ctx, uint32_t off, uint32_t len)
{
    (void)ctx;
    if (off > BOOT_SLOT_SIZE || len > BOOT_SLOT_SIZE - off)
        return -1;
    return board_flash()->erase(board_flash()->ctx, BOOT_SECONDARY_OFF + off, len);
}

static int o_write(void *ctx, uint32_t off, const uint8_t *buf, uint32_t len)
{
    (void)ctx;
    if (off > BOOT_SLOT_SIZE || len > BOOT_SLOT_SIZE - off)
        return -1;
    return board_flash()->write(board_flash()->ctx, BOOT_SECONDARY_OFF + off, buf, len);
}

static const uint8_t *o_map(void *ctx, uint32_t len)
{
    (void)ctx;
    return len <= BOOT_SLOT_SIZE ? board_flash()->map(board_flash()->ctx, BOOT_SECONDARY_OFF, len)
                                 : NULL;
}

static int rec_check(const struct ota_rec_file *r, uint8_t out[8])
{
    uint8_t h[32];
    crypto_sha256_ctx c;
    if (crypto_sha256_init(&c) != 0 ||
        crypto_sha256_update(&c, (const uint8_t *)&r->seq, sizeof(r->seq)) != 0 ||
        crypto_sha256_update(&c, (const uint8_t *)&r->p, sizeof(r->p)) != 0 ||
        crypto_sha256_final(&c, h) != 0)
        return -1;
    memcpy(out, h, 8);
    return 0;
}

/* 0: a valid record in *r; -1: none. */
static int rec_read(const char *name, struct ota_rec_file *r)
{
    uint8_t want[8];
    int fd = semihost_open(name, 1 /* "rb" */), ok = -1;
    if (fd < 0)
        return -1;
    if (semihost_flen(fd) == (int)sizeof(*r) && semihost_read(fd, r, sizeof(*r)) == 0 &&
        rec_check(r, want) == 0 && memcmp(want, r->check, sizeof(want)) == 0)
        ok = 0;
    (void)semihost_close(fd);
    return ok;
}

static int o_load(void *ctx, struct ota_progress *p)
{
    static struct ota_rec_file a, b;
    int ha = rec_read(OTA_REC_A, &a) == 0, hb = rec_read(OTA_REC_B, &b) == 0;
    (void)ctx;
    if (!ha && !hb)
        return 1;
    const struct ota_rec_file *r = (ha && (!hb || a.seq > b.seq)) ? &a : &b;
    ota_seq = r->seq;
    *p = r->p;
    return 0;
}

/* The next record goes into the file NOT holding the newest one: a cut while writing leaves
 * the newest intact. */
static int o_store(void *ctx, const struct ota_progress *p)
{
    static struct ota_rec_file r;
    int fd, rc = -1;
    (void)ctx;
    r.seq = ota_seq + 1u;
    r.p = *p;
    if (rec_check(&r, r.check) != 0)
        return -1;
    fd = semihost_open((r.seq & 1u) ? OTA_REC_B : OTA_REC_A, 5 /* "wb" */);
    if (fd < 0)
        return -1;
    if (semihost_write(fd, &r, sizeof(r)) == 0)
        rc = 0;
    if (semihost_close(fd) != 0)
        rc = -1;
    if (rc == 0)
        ota_seq = r.seq;
    return rc;
}

static int o_install(void *ctx)
{
    (void)ctx;
    return boot_request_install(board_flash()) == 0 ? 0 : -1;
}

static int o_confirm(void *ctx)
{
    (void)ctx;
    return boot_confirm(board_flash()) == 0 ? 0 : -1;
}

static int ota_setup(const struct boot_record *rec)
{
    struct ota_port port;
    struct ota_config cfg;
    if (fleetgw_boot_pubkey_len != BOOT_P256_SPKI_LEN)
        return -1;
    memcpy(ota_key.pub, fleetgw_boot_pubkey + BOOT_P256_SPKI_LEN - CRYPTO_P256_PUB_LEN,
           CRYPTO_P256_PUB_LEN);
    memset(&port, 0, sizeof(port));
    port.slot_size = BOOT_SLOT_SIZE;
    port.erase_size = BOOT_SECTOR_SIZE;
    port.erase = o_erase;
    port.write = o_write;
    port.map = o_map;
    port.progress_load = o_load;
    port.progress_store = o_store;
    port.request_install = o_install;
    port.confirm = o_confirm;
    memset(&cfg, 0, sizeof(cfg));
    cfg.keys = &ota_key;
    cfg.n_keys = 1;
    cfg.check_min_counter = 1;
    cfg.min_counter = rec->sec_cnt;
    cfg.running.major = rec->version.major;
    cfg.running.minor = rec->version.minor;
    cfg.running.revision = rec->version.revision;
    cfg.running.build = rec->version.build;
    cfg.running_digest = rec->measurement;
    cfg.running_test_mode = rec->confirmed ? 0 : 1;
    return ota_init(&ota, &port, &cfg) == OTA_OK ? 0 : -1;
}

static agent_status_t on_ota(void *user, const char *suffix, size_t slen, const uint8_t *payload,
                             size_t plen, uint8_t *out, size_t cap, size_t *ret_len,
                             const char **ret_topic)
{
    agent_status_t st =
        ota_agent_on_ota(&ota, suffix, slen, payload, plen, out, cap, ret_len, ret_topic);
    (void)user;
    if (ota_state(&ota) == MSG_OTA_STAGED && !reset_pending) {
        reset_pending = 1; /* let the status leave, then reset into the bootloader */
        reset_at = now_ms() + 2000u;
    }
    return st;
}

static struct agent agent;
static const struct boot_record *running;
static struct node_tls tls;
static struct node_tls_trust trust;
static struct link_state link;
static struct entropy_ctx entropy;
static uint8_t rx_buf[2048], tx_buf[2048], store[8 * 1024], evidence[1024];

_Noreturn void agent_link_run(const struct prov *p, const uint8_t seed[32],
                              const struct boot_record *rec, link_attest_fn attest, void *user)
{
    const struct boot_image_version *fw = &rec->version;
    struct node_tls_config tc;
    struct agent_config c;
    struct agent_port port;
    struct agent_app app;

    link.uart.ctx = &link;
    link.uart.read = uart_tr_read;
    link.uart.write = uart_tr_write;
    link.attest = attest;
    link.user = user;
    entropy.seed = seed;
    if (node_tls_trust_init(&trust, p->ca, p->ca_len) != NODE_TLS_OK) {
        uart_puts("agent: link: the provisioned CA certificate does not parse\n");
        board_halt();
    }
    memset(&tc, 0, sizeof(tc));
    tc.trust = &trust;
    tc.cert = p->cert;
    tc.cert_len = p->cert_len;
    tc.key = p->key;
    tc.key_len = p->key_len;
    tc.server_name = p->host;
    tc.entropy = link_entropy;
    tc.entropy_ctx = &entropy;
    tc.personalization = p->id;
    if (node_tls_init(&tls, &tc, &link.uart) != NODE_TLS_OK) {
        uart_puts("agent: link: TLS setup failed (device certificate or key)\n");
        board_halt();
    }
    memset(&c, 0, sizeof(c));
    c.node_id = p->id;
    c.telemetry_interval_ms = 10000;
    /* Attestation first: a node-status asks the gateway for a challenge; telemetry waits
     * for the evidence (at most 30 s: a gateway without attestation never asks). */
    c.attest_first = true;
    c.attest_wait_ms = 30000;
    c.fw_version.major = fw->major;
    c.fw_version.minor = fw->minor;
    c.fw_version.revision = fw->revision;
    c.fw_version.build = fw->build;
    c.keep_alive_s = 60;
    /* The broker keeps the node's commands while it is away (a reset, a lost link). */
    c.persistent_session = true;
    c.connect_timeout_ms = 60000;
    c.retry_ms = 10000;
    c.backoff_min_ms = 500;
    c.backoff_max_ms = 10000;
    c.jitter_seed = seed[0] | (uint32_t)seed[1] << 8;
    c.rx_buf = rx_buf;
    c.rx_cap = sizeof(rx_buf);
    c.tx_buf = tx_buf;
    c.tx_cap = sizeof(tx_buf);
    c.store = store;
    c.store_cap = sizeof(store);
    c.evidence_buf = evidence;
    c.evidence_cap = sizeof(evidence);
    memset(&port, 0, sizeof(port));
    port.ctx = &link;
    port.link_open = link_open;
    port.link_close = link_close;
    port.lower = &link.uart;
    memset(&app, 0, sizeof(app));
    app.user = &link;
    app.on_challenge = on_challenge;
    running = rec;
    if (ota_setup(rec) == 0)
        app.on_ota = on_ota;
    else
        uart_puts("agent: link: OTA client unavailable (progress record or key)\n");
    if (agent_init(&agent, &c, &port, &app, node_tls_layer(&tls)) != AGENT_OK) {
        uart_puts("agent: link: bad agent configuration\n");
        board_halt();
    }
    uart_puts("agent: link mode, node ");
    uart_puts(p->id);
    uart_puts(", broker ");
    uart_puts(p->host);
    uart_puts("\n");
    if (agent_start(&agent, now_ms()) != AGENT_OK) {
        uart_puts("agent: link: agent did not start\n");
        board_halt();
    }
    for (;;) {
        uint32_t now = now_ms();
        if (link.link_pending) {
            link.link_pending = 0;
            agent_link_up(&agent, now);
        }
        agent_io(&agent, now);
        agent_tick(&agent, now);
        if (app.on_ota != NULL && agent_phase(&agent) == AGENT_RUNNING &&
            agent_stats(&agent)->connects != status_sent_for) {
            /* after every new connection: where the update stands (testing after an
             * install, reverted after a revert, downloading with the offset to resume) */
            uint8_t st[OTA_REPLY_MAX];
            size_t len = 0;
            if (ota_state(&ota) == MSG_OTA_IDLE ||
                (ota_status_encode(&ota, st, sizeof(st), &len) == OTA_OK &&
                 agent_publish(&agent, "ota/status", st, len) == AGENT_OK))
                status_sent_for = agent_stats(&agent)->connects;
        }
        if (reset_pending && (int32_t)(now - reset_at) >= 0)
            board_reset(); /* the bootloader installs the staged image in test mode */
    }
}
