/* fleetgw-bench-min-relay: the ceiling reference of bench_relay, not a product.
 *
 * The least work a relay that adds a hop between the edge broker and the cloud broker can
 * do while keeping fleetgwd's durability rule (a message is fsync'ed before the edge's
 * PUBACK and deleted only after the cloud's PUBACK):
 *   - the edge socket (plain MQTT 3.1.1 over a unix socket) is read in bulk, up to 1 MiB a
 *     read, and every complete PUBLISH in it is one batch;
 *   - the batch is inserted into a SQLite WAL database with synchronous=FULL and committed
 *     (fdatasync), together with the deletes of every message the cloud acknowledged since;
 *   - then all the batch's PUBACKs leave in one write to the edge, and all its PUBLISH
 *     packets in one SSL_write to the cloud (several MQTT packets per TLS record);
 *   - the cloud's PUBACKs are read in bulk (read-ahead), so many records cost one read.
 * No libmosquitto, no event-loop library, no per-node limits, no attestation gate, no
 * reconnect, no counters: it stops at the first error, naming it. Comparing its throughput
 * with mosquitto's bridge in the same run shows how far any two-hop design can go on the
 * machine the bench runs on; fleetgwd is measured against both.
 *
 * Topics: a message on <in-prefix>REST is published as <out-prefix>REST, QoS 1.
 * Exit: 0 never (it runs until killed), 1 runtime error, 2 usage. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sqlite3.h>

#include "fleetgw_version.h"

#define RX_CAP       (1u << 20)
#define TX_CAP       (4u << 20)
#define MAX_INFLIGHT 1000u /* cloud PUBLISH packets awaiting PUBACK; the edge waits above it */

struct relay {
    int edge;
    int cloud;
    SSL *ssl;
    sqlite3 *db;
    sqlite3_stmt *ins;
    sqlite3_stmt *del;
    const char *in_prefix;
    const char *out_prefix;
    uint8_t *erx;
    size_t erx_len;
    uint8_t *crx;
    size_t crx_len;
    uint8_t *acks;
    size_t acks_len;
    uint8_t *pubs;
    size_t pubs_len;
    int64_t id_of_pid[65536]; /* spool row of each in-flight cloud packet id, 0 = free */
    int64_t *acked;           /* rows the cloud acknowledged, deleted at the next commit */
    size_t acked_len;
    size_t inflight;
    uint16_t next_pid;
    int64_t next_id;
};

static void fail(const char *what, const char *why)
{
    fprintf(stderr, "fleetgw-bench-min-relay: %s: %s\n", what, why);
    ERR_print_errors_fp(stderr);
    exit(1);
}

static void fail_errno(const char *what)
{
    fail(what, strerror(errno));
}

static void wait_fd(int fd, short events)
{
    struct pollfd p = {.fd = fd, .events = events};
    if (poll(&p, 1, -1) < 0 && errno != EINTR)
        fail_errno("poll");
}

static void write_all(int fd, const uint8_t *b, size_t n, const char *what)
{
    while (n > 0) {
        ssize_t w = write(fd, b, n);
        if (w < 0) {
            if (errno == EAGAIN || errno == EINTR) {
                wait_fd(fd, POLLOUT);
                continue;
            }
            fail_errno(what);
        }
        b += w;
        n -= (size_t)w;
    }
}

static void ssl_write_all(struct relay *r, const uint8_t *b, size_t n)
{
    while (n > 0) {
        int chunk = n > (1u << 30) ? 1 << 30 : (int)n;
        int w = SSL_write(r->ssl, b, chunk);
        if (w <= 0) {
            int e = SSL_get_error(r->ssl, w);
            if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) {
                wait_fd(r->cloud, e == SSL_ERROR_WANT_WRITE ? POLLOUT : POLLIN);
                continue;
            }
            fail("cloud", "TLS write failed");
        }
        b += w;
        n -= (size_t)w;
    }
}

/* Reads exactly n bytes (set-up only, blocking until they come). */
static void read_exact(struct relay *r, bool tls, uint8_t *b, size_t n, const char *what)
{
    while (n > 0) {
        ssize_t got;
        if (tls) {
            int k = SSL_read(r->ssl, b, (int)n);
            if (k <= 0) {
                int e = SSL_get_error(r->ssl, k);
                if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
                    wait_fd(r->cloud, e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT);
                    continue;
                }
                fail(what, "TLS read failed or the broker closed the connection");
            }
            got = k;
        } else {
            got = read(r->edge, b, n);
            if (got < 0 && (errno == EAGAIN || errno == EINTR)) {
                wait_fd(r->edge, POLLIN);
                continue;
            }
            if (got <= 0)
                fail(what, got == 0 ? "the broker closed the connection" : strerror(errno));
        }
        b += got;
        n -= (size_t)got;
    }
}

static size_t put_varlen(uint8_t *p, size_t n)
{
    size_t i = 0;
    do {
        uint8_t byte = (uint8_t)(n % 128);
        n /= 128;
        if (n > 0)
            byte |= 128;
        p[i++] = byte;
    } while (n > 0);
    return i;
}

static size_t put_str(uint8_t *p, const void *s, size_t n)
{
    p[0] = (uint8_t)(n >> 8);
    p[1] = (uint8_t)(n & 0xff);
    memcpy(p + 2, s, n);
    return n + 2;
}

/* One complete packet at b[0..n)? Returns its total length (header, length, body) and
 * sets *body; 0 when more bytes are needed. A malformed length stops the relay. */
static size_t packet(const uint8_t *b, size_t n, size_t *body)
{
    size_t len = 0, mult = 1, i = 1;
    for (;;) {
        if (i >= n)
            return 0;
        len += (size_t)(b[i] & 127) * mult;
        mult *= 128;
        if ((b[i++] & 128) == 0)
            break;
        if (i > 4)
            fail("broker", "malformed remaining length");
    }
    if (n - i < len)
        return 0;
    *body = i;
    return i + len;
}

static void mqtt_connect(struct relay *r, bool tls, const char *client_id, const char *user,
                         const char *password, const char *what)
{
    uint8_t body[1024], pkt[1040];
    size_t cl = strlen(client_id), ul = user ? strlen(user) : 0,
           pl = password ? strlen(password) : 0;
    if (cl + ul + pl + 16 > sizeof body)
        fail(what, "client id, user or password too long");
    size_t n = put_str(body, "MQTT", 4);
    body[n++] = 4;                                                           /* 3.1.1 */
    body[n++] = (uint8_t)((user ? 0x80 : 0) | (password ? 0x40 : 0) | 0x02); /* clean */
    body[n++] = 0;
    body[n++] = 0; /* no keep-alive: the bench runs for minutes, the brokers are local */
    n += put_str(body + n, client_id, cl);
    if (user)
        n += put_str(body + n, user, ul);
    if (password)
        n += put_str(body + n, password, pl);
    pkt[0] = 0x10;
    size_t h = 1 + put_varlen(pkt + 1, n);
    memcpy(pkt + h, body, n);
    if (tls)
        ssl_write_all(r, pkt, h + n);
    else
        write_all(r->edge, pkt, h + n, what);
    uint8_t ack[4];
    read_exact(r, tls, ack, sizeof ack, what);
    if (ack[0] != 0x20 || ack[1] != 2 || ack[3] != 0)
        fail(what, "CONNECT refused");
}

static void edge_subscribe(struct relay *r)
{
    uint8_t pkt[600];
    char filter[520];
    int fl = snprintf(filter, sizeof filter, "%s#", r->in_prefix);
    if (fl < 0 || (size_t)fl >= sizeof filter)
        fail("edge", "--in-prefix too long");
    size_t body = 2 + 2 + (size_t)fl + 1, n = 0;
    pkt[n++] = 0x82;
    n += put_varlen(pkt + n, body);
    pkt[n++] = 0;
    pkt[n++] = 1; /* packet id */
    n += put_str(pkt + n, filter, (size_t)fl);
    pkt[n++] = 1; /* QoS 1 */
    write_all(r->edge, pkt, n, "edge SUBSCRIBE");
    uint8_t ack[5];
    read_exact(r, false, ack, sizeof ack, "edge SUBACK");
    if (ack[0] != 0x90 || ack[4] != 1)
        fail("edge", "SUBSCRIBE not granted at QoS 1");
}

static void db_exec(struct relay *r, const char *sql)
{
    char *err = NULL;
    if (sqlite3_exec(r->db, sql, NULL, NULL, &err) != SQLITE_OK)
        fail(sql, err ? err : sqlite3_errmsg(r->db));
}

/* One PUBLISH from the edge at p (body at p + b, total length t): spooled, its PUBACK and
 * its cloud PUBLISH queued. */
static void take_publish(struct relay *r, const uint8_t *p, size_t b, size_t t)
{
    const uint8_t *v = p + b;
    size_t rl = t - b;
    unsigned qos = (p[0] >> 1) & 3u;
    if (rl < 2)
        fail("edge", "PUBLISH too short");
    size_t tl = (size_t)v[0] << 8 | v[1], q = 2 + tl;
    if (q + (qos ? 2 : 0) > rl || qos > 1)
        fail("edge", "malformed PUBLISH");
    uint16_t edge_pid = 0;
    if (qos == 1) {
        edge_pid = (uint16_t)(v[q] << 8 | v[q + 1]);
        q += 2;
    }
    const char *topic = (const char *)v + 2;
    size_t inl = strlen(r->in_prefix), outl = strlen(r->out_prefix);
    if (tl < inl || memcmp(topic, r->in_prefix, inl) != 0)
        fail("edge", "message outside the subscription");
    const uint8_t *payload = v + q;
    size_t plen = rl - q;

    int64_t id = r->next_id++;
    sqlite3_bind_int64(r->ins, 1, id);
    sqlite3_bind_text(r->ins, 2, topic, (int)tl, SQLITE_STATIC);
    sqlite3_bind_blob(r->ins, 3, payload, (int)plen, SQLITE_STATIC);
    if (sqlite3_step(r->ins) != SQLITE_DONE)
        fail("spool insert", sqlite3_errmsg(r->db));
    sqlite3_reset(r->ins);

    if (qos == 1) {
        uint8_t *a = r->acks + r->acks_len;
        a[0] = 0x40;
        a[1] = 2;
        a[2] = (uint8_t)(edge_pid >> 8);
        a[3] = (uint8_t)(edge_pid & 0xff);
        r->acks_len += 4;
    }

    uint16_t pid = r->next_pid;
    r->next_pid = (uint16_t)(r->next_pid == 65535 ? 1 : r->next_pid + 1);
    if (r->id_of_pid[pid] != 0)
        fail("cloud", "packet id still in flight");
    r->id_of_pid[pid] = id;
    r->inflight++;
    size_t ntl = outl + (tl - inl), body = 2 + ntl + 2 + plen;
    if (r->pubs_len + body + 8 > TX_CAP)
        fail("cloud", "transmit buffer full");
    uint8_t *o = r->pubs + r->pubs_len;
    size_t n = 0;
    o[n++] = 0x32;
    n += put_varlen(o + n, body);
    o[n++] = (uint8_t)(ntl >> 8);
    o[n++] = (uint8_t)(ntl & 0xff);
    memcpy(o + n, r->out_prefix, outl);
    n += outl;
    memcpy(o + n, topic + inl, tl - inl);
    n += tl - inl;
    o[n++] = (uint8_t)(pid >> 8);
    o[n++] = (uint8_t)(pid & 0xff);
    memcpy(o + n, payload, plen);
    n += plen;
    r->pubs_len += n;
}

static void commit(struct relay *r)
{
    for (size_t i = 0; i < r->acked_len; i++) {
        sqlite3_bind_int64(r->del, 1, r->acked[i]);
        if (sqlite3_step(r->del) != SQLITE_DONE)
            fail("spool delete", sqlite3_errmsg(r->db));
        sqlite3_reset(r->del);
    }
    r->acked_len = 0;
    db_exec(r, "COMMIT");
}

static void on_edge(struct relay *r)
{
    ssize_t got = read(r->edge, r->erx + r->erx_len, RX_CAP - r->erx_len);
    if (got < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (got <= 0)
        fail("edge", got == 0 ? "the broker closed the connection" : strerror(errno));
    r->erx_len += (size_t)got;
    size_t off = 0, b, t;
    bool open = false;
    while ((t = packet(r->erx + off, r->erx_len - off, &b)) > 0) {
        const uint8_t *p = r->erx + off;
        if ((p[0] >> 4) == 3) {
            if (!open) {
                db_exec(r, "BEGIN");
                open = true;
            }
            take_publish(r, p, b, t);
        } else if ((p[0] >> 4) != 13) { /* PINGRESP is the only other packet expected */
            fail("edge", "unexpected packet");
        }
        off += t;
    }
    if (r->erx_len - off == RX_CAP)
        fail("edge", "packet larger than the receive buffer");
    memmove(r->erx, r->erx + off, r->erx_len - off);
    r->erx_len -= off;
    if (!open)
        return;
    commit(r); /* durable before any PUBACK leaves */
    write_all(r->edge, r->acks, r->acks_len, "edge PUBACK");
    r->acks_len = 0;
    ssl_write_all(r, r->pubs, r->pubs_len);
    r->pubs_len = 0;
}

static void on_cloud(struct relay *r)
{
    for (;;) {
        int k = SSL_read(r->ssl, r->crx + r->crx_len, (int)(RX_CAP - r->crx_len));
        if (k <= 0) {
            int e = SSL_get_error(r->ssl, k);
            if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
                return;
            fail("cloud", "TLS read failed or the broker closed the connection");
        }
        r->crx_len += (size_t)k;
        size_t off = 0, b, t;
        while ((t = packet(r->crx + off, r->crx_len - off, &b)) > 0) {
            const uint8_t *p = r->crx + off;
            if ((p[0] >> 4) != 4 || t - b != 2)
                fail("cloud", "unexpected packet");
            uint16_t pid = (uint16_t)(p[b] << 8 | p[b + 1]);
            if (r->id_of_pid[pid] == 0)
                fail("cloud", "PUBACK for a packet id not in flight");
            r->acked[r->acked_len++] = r->id_of_pid[pid];
            r->id_of_pid[pid] = 0;
            r->inflight--;
            off += t;
        }
        memmove(r->crx, r->crx + off, r->crx_len - off);
        r->crx_len -= off;
    }
}

static char *read_secret(const char *path)
{
    static char buf[256];
    FILE *f = fopen(path, "r");
    if (f == NULL)
        fail(path, strerror(errno));
    if (fgets(buf, sizeof buf, f) == NULL)
        fail(path, "empty");
    fclose(f);
    buf[strcspn(buf, "\r\n")] = '\0';
    return buf;
}

/* Prints the usage to f and exits: 0 on stdout (--help), else 2. */
static void usage(FILE *f)
{
    fprintf(f,
            "usage: fleetgw-bench-min-relay --edge-socket PATH --edge-user U --edge-password-file "
            "F\n"
            "         --client-id ID --cloud-port N --cafile F --cert F --key F --db PATH\n"
            "         --in-prefix P --out-prefix P\n"
            "       fleetgw-bench-min-relay --help | --version\n");
    exit(f == stdout ? 0 : 2);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {{"edge-socket", required_argument, NULL, 's'},
                                         {"edge-user", required_argument, NULL, 'u'},
                                         {"edge-password-file", required_argument, NULL, 'w'},
                                         {"client-id", required_argument, NULL, 'i'},
                                         {"cloud-port", required_argument, NULL, 'p'},
                                         {"cafile", required_argument, NULL, 'a'},
                                         {"cert", required_argument, NULL, 'c'},
                                         {"key", required_argument, NULL, 'k'},
                                         {"db", required_argument, NULL, 'd'},
                                         {"in-prefix", required_argument, NULL, 'I'},
                                         {"out-prefix", required_argument, NULL, 'O'},
                                         {"help", no_argument, NULL, 'h'},
                                         {"version", no_argument, NULL, 'V'},
                                         {NULL, 0, NULL, 0}};
    const char *sock = NULL, *user = NULL, *pwfile = NULL, *cid = NULL, *ca = NULL, *cert = NULL,
               *key = NULL, *dbpath = NULL;
    static struct relay r = {.next_pid = 1, .next_id = 1};
    long port = 0;
    int opt;
    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (opt) {
        case 's':
            sock = optarg;
            break;
        case 'u':
            user = optarg;
            break;
        case 'w':
            pwfile = optarg;
            break;
        case 'i':
            cid = optarg;
            break;
        case 'p':
            port = strtol(optarg, NULL, 10);
            break;
        case 'a':
            ca = optarg;
            break;
        case 'c':
            cert = optarg;
            break;
        case 'k':
            key = optarg;
            break;
        case 'd':
            dbpath = optarg;
            break;
        case 'I':
            r.in_prefix = optarg;
            break;
        case 'O':
            r.out_prefix = optarg;
            break;
        case 'h':
            usage(stdout);
            break;
        case 'V':
            return fleetgw_print_version("fleetgw-bench-min-relay");
        default:
            usage(stderr);
        }
    }
    if (!sock || !user || !pwfile || !cid || port <= 0 || port > 65535 || !ca || !cert || !key ||
        !dbpath || !r.in_prefix || !r.out_prefix || optind != argc) {
        fprintf(stderr, "fleetgw-bench-min-relay: every option is required (--cloud-port "
                        "1..65535), no other arguments\n");
        usage(stderr);
    }
    signal(SIGPIPE, SIG_IGN);
    r.erx = malloc(RX_CAP);
    r.crx = malloc(RX_CAP);
    r.acks = malloc(RX_CAP);
    r.pubs = malloc(TX_CAP);
    r.acked = malloc(sizeof(int64_t) * 65536);
    if (!r.erx || !r.crx || !r.acks || !r.pubs || !r.acked)
        fail("memory", "out of memory");

    if (sqlite3_open(dbpath, &r.db) != SQLITE_OK)
        fail(dbpath, sqlite3_errmsg(r.db));
    db_exec(&r, "PRAGMA journal_mode=WAL");
    db_exec(&r, "PRAGMA synchronous=FULL");
    db_exec(&r, "CREATE TABLE IF NOT EXISTS msg(id INTEGER PRIMARY KEY, topic TEXT NOT NULL, "
                "payload BLOB NOT NULL)");
    db_exec(&r, "DELETE FROM msg");
    if (sqlite3_prepare_v2(r.db, "INSERT INTO msg(id, topic, payload) VALUES(?, ?, ?)", -1, &r.ins,
                           NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(r.db, "DELETE FROM msg WHERE id = ?", -1, &r.del, NULL) != SQLITE_OK)
        fail("spool", sqlite3_errmsg(r.db));

    struct sockaddr_un su = {.sun_family = AF_UNIX};
    if (strlen(sock) >= sizeof su.sun_path)
        fail(sock, "path too long for a unix socket");
    memcpy(su.sun_path, sock, strlen(sock) + 1);
    r.edge = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (r.edge < 0 || connect(r.edge, (struct sockaddr *)&su, sizeof su) != 0)
        fail_errno("edge connect");
    mqtt_connect(&r, false, cid, user, read_secret(pwfile), "edge CONNECT");
    edge_subscribe(&r);

    struct sockaddr_in si = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    r.cloud = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (r.cloud < 0 || connect(r.cloud, (struct sockaddr *)&si, sizeof si) != 0)
        fail_errno("cloud connect");
    int one = 1;
    setsockopt(r.cloud, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (ctx == NULL || SSL_CTX_load_verify_locations(ctx, ca, NULL) != 1 ||
        SSL_CTX_use_certificate_chain_file(ctx, cert) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1)
        fail("cloud TLS", "cannot load the CA, certificate or key");
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    SSL_CTX_set_read_ahead(ctx, 1);
    r.ssl = SSL_new(ctx);
    if (r.ssl == NULL || SSL_set_fd(r.ssl, r.cloud) != 1 || SSL_set1_host(r.ssl, "127.0.0.1") != 1)
        fail("cloud TLS", "cannot set up the connection");
    if (SSL_connect(r.ssl) != 1)
        fail("cloud TLS", "handshake failed");
    mqtt_connect(&r, true, cid, NULL, NULL, "cloud CONNECT");

    if (fcntl(r.edge, F_SETFL, O_NONBLOCK) != 0 || fcntl(r.cloud, F_SETFL, O_NONBLOCK) != 0)
        fail_errno("fcntl");
    printf("ready\n");
    fflush(stdout);
    for (;;) {
        struct pollfd p[2] = {{.fd = r.cloud, .events = POLLIN},
                              {.fd = r.edge, .events = r.inflight < MAX_INFLIGHT ? POLLIN : 0}};
        int n = poll(p, 2, r.acked_len > 0 ? 5 : -1);
        if (n < 0 && errno != EINTR)
            fail_errno("poll");
        if (p[0].revents)
            on_cloud(&r);
        if (p[1].revents)
            on_edge(&r);
        if (n == 0 && r.acked_len > 0) { /* quiet: delete what the cloud acknowledged */
            db_exec(&r, "BEGIN");
            commit(&r);
        }
    }
}
