/* Unit tests of the TLS layer: node_tls (client) against an in-process Mbed TLS server over
 * a tiny in-memory pipe (a few bytes at a time, so WANT_READ/WANT_WRITE and partial records
 * happen constantly). Every key and certificate is generated here at test time.
 * Proves: handshake with client certificate, data both ways through the transport view
 * (including the "same leading bytes after AGAIN" contract), server certificate from another
 * CA refused, host-name mismatch refused, key/certificate mismatch refused at setup, bad CA
 * refused, and a second session after node_tls_reset (reconnect). */
#include <stdio.h>
#include <string.h>

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/ecp.h>
#include <mbedtls/entropy.h>
#include <mbedtls/pk.h>
#include <mbedtls/ssl.h>
#include <mbedtls/x509_crt.h>

#include "check.h"
#include "fleetgw/node_tls.h"

static mbedtls_entropy_context g_entropy;
static mbedtls_ctr_drbg_context g_drbg;

/* ---- key and certificate generation -------------------------------------------------- */

struct cred {
    mbedtls_pk_context key;
    unsigned char key_pem[1024];
    unsigned char crt_pem[2048];
};

static int gen_key(struct cred *c)
{
    mbedtls_pk_init(&c->key);
    if (mbedtls_pk_setup(&c->key, mbedtls_pk_info_from_type(MBEDTLS_PK_ECKEY)) != 0 ||
        mbedtls_ecp_gen_key(MBEDTLS_ECP_DP_SECP256R1, mbedtls_pk_ec(c->key),
                            mbedtls_ctr_drbg_random, &g_drbg) != 0 ||
        mbedtls_pk_write_key_pem(&c->key, c->key_pem, sizeof(c->key_pem)) != 0)
        return -1;
    return 0;
}

/* Issues subject's certificate, signed by issuer (itself for a CA). */
static int issue(struct cred *subject, const char *subject_name, struct cred *issuer,
                 const char *issuer_name, bool ca)
{
    mbedtls_x509write_cert w;
    mbedtls_mpi serial;
    int r;
    mbedtls_x509write_crt_init(&w);
    mbedtls_mpi_init(&serial);
    r = mbedtls_mpi_fill_random(&serial, 8, mbedtls_ctr_drbg_random, &g_drbg);
    mbedtls_x509write_crt_set_version(&w, MBEDTLS_X509_CRT_VERSION_3);
    mbedtls_x509write_crt_set_md_alg(&w, MBEDTLS_MD_SHA256);
    mbedtls_x509write_crt_set_subject_key(&w, &subject->key);
    mbedtls_x509write_crt_set_issuer_key(&w, &issuer->key);
    if (r == 0)
        r = mbedtls_x509write_crt_set_serial(&w, &serial);
    if (r == 0)
        r = mbedtls_x509write_crt_set_subject_name(&w, subject_name);
    if (r == 0)
        r = mbedtls_x509write_crt_set_issuer_name(&w, issuer_name);
    if (r == 0)
        r = mbedtls_x509write_crt_set_validity(&w, "20200101000000", "20991231235959");
    if (r == 0)
        r = mbedtls_x509write_crt_set_basic_constraints(&w, ca ? 1 : 0, -1);
    if (r == 0)
        r = mbedtls_x509write_crt_pem(&w, subject->crt_pem, sizeof(subject->crt_pem),
                                      mbedtls_ctr_drbg_random, &g_drbg);
    mbedtls_mpi_free(&serial);
    mbedtls_x509write_crt_free(&w);
    return r;
}

static size_t pem_len(const unsigned char *pem)
{
    return strlen((const char *)pem) + 1u; /* Mbed TLS counts the NUL of PEM input */
}

/* ---- a small in-memory pipe ---------------------------------------------------------- */

struct pipe {
    uint8_t buf[4096];
    size_t len;
};

struct end {
    struct pipe *in, *out;
    size_t max_chunk; /* bytes moved per call at most */
    size_t out_cap;   /* the pipe accepts at most this many buffered bytes */
    struct transport tr;
};

static long end_read(void *ctx, uint8_t *buf, size_t len)
{
    struct end *e = ctx;
    size_t n = e->in->len;
    if (n == 0)
        return TRANSPORT_AGAIN;
    if (n > len)
        n = len;
    if (n > e->max_chunk)
        n = e->max_chunk;
    memcpy(buf, e->in->buf, n);
    memmove(e->in->buf, e->in->buf + n, e->in->len - n);
    e->in->len -= n;
    return (long)n;
}

static long end_write(void *ctx, const uint8_t *buf, size_t len)
{
    struct end *e = ctx;
    size_t room = e->out_cap - e->out->len;
    size_t n = len;
    if (room == 0)
        return TRANSPORT_AGAIN;
    if (n > room)
        n = room;
    if (n > e->max_chunk)
        n = e->max_chunk;
    memcpy(e->out->buf + e->out->len, buf, n);
    e->out->len += n;
    return (long)n;
}

static int srv_send(void *ctx, const unsigned char *buf, size_t len)
{
    long n = end_write(ctx, buf, len);
    return n == TRANSPORT_AGAIN ? MBEDTLS_ERR_SSL_WANT_WRITE : (int)n;
}

static int srv_recv(void *ctx, unsigned char *buf, size_t len)
{
    long n = end_read(ctx, buf, len);
    return n == TRANSPORT_AGAIN ? MBEDTLS_ERR_SSL_WANT_READ : (int)n;
}

static int test_entropy(void *ctx, uint8_t *buf, size_t len)
{
    (void)ctx;
    return mbedtls_ctr_drbg_random(&g_drbg, buf, len);
}

/* ---- the server side ----------------------------------------------------------------- */

struct server {
    mbedtls_ssl_context ssl;
    mbedtls_ssl_config conf;
    mbedtls_x509_crt ca, crt;
    mbedtls_pk_context key;
};

static int server_init(struct server *s, const struct cred *ca, const struct cred *me,
                       struct end *e)
{
    mbedtls_ssl_init(&s->ssl);
    mbedtls_ssl_config_init(&s->conf);
    mbedtls_x509_crt_init(&s->ca);
    mbedtls_x509_crt_init(&s->crt);
    mbedtls_pk_init(&s->key);
    if (mbedtls_x509_crt_parse(&s->ca, ca->crt_pem, pem_len(ca->crt_pem)) != 0 ||
        mbedtls_x509_crt_parse(&s->crt, me->crt_pem, pem_len(me->crt_pem)) != 0 ||
        mbedtls_pk_parse_key(&s->key, me->key_pem, pem_len(me->key_pem), NULL, 0) != 0 ||
        mbedtls_ssl_config_defaults(&s->conf, MBEDTLS_SSL_IS_SERVER, MBEDTLS_SSL_TRANSPORT_STREAM,
                                    MBEDTLS_SSL_PRESET_DEFAULT) != 0)
        return -1;
    mbedtls_ssl_conf_rng(&s->conf, mbedtls_ctr_drbg_random, &g_drbg);
    mbedtls_ssl_conf_authmode(&s->conf, MBEDTLS_SSL_VERIFY_REQUIRED);
    mbedtls_ssl_conf_ca_chain(&s->conf, &s->ca, NULL);
    if (mbedtls_ssl_conf_own_cert(&s->conf, &s->crt, &s->key) != 0 ||
        mbedtls_ssl_setup(&s->ssl, &s->conf) != 0)
        return -1;
    mbedtls_ssl_set_bio(&s->ssl, e, srv_send, srv_recv, NULL);
    return 0;
}

static void server_free(struct server *s)
{
    mbedtls_ssl_free(&s->ssl);
    mbedtls_ssl_config_free(&s->conf);
    mbedtls_x509_crt_free(&s->ca);
    mbedtls_x509_crt_free(&s->crt);
    mbedtls_pk_free(&s->key);
}

/* Steps both handshakes until the client is done or failed. Returns the client's result. */
static agent_hs_t run_handshake(struct node_tls *c, struct server *s)
{
    for (int i = 0; i < 100000; i++) {
        agent_hs_t hs = node_tls_handshake(c);
        int sr = mbedtls_ssl_handshake(&s->ssl);
        if (hs == AGENT_HS_FAILED)
            return hs;
        if (hs == AGENT_HS_DONE && sr == 0)
            return hs;
        if (sr != 0 && sr != MBEDTLS_ERR_SSL_WANT_READ && sr != MBEDTLS_ERR_SSL_WANT_WRITE &&
            hs != AGENT_HS_DONE) {
            /* the server gave up (it sent an alert); let the client see it */
            for (int k = 0; k < 100; k++)
                if ((hs = node_tls_handshake(c)) != AGENT_HS_AGAIN)
                    return hs;
            return AGENT_HS_FAILED;
        }
    }
    return AGENT_HS_AGAIN;
}

struct world {
    struct cred ca, server, client, other_ca, other_server;
    struct node_tls_trust trust;
};

static void setup_world(struct world *w)
{
    CHECK(gen_key(&w->ca) == 0);
    CHECK(issue(&w->ca, "CN=test-ca", &w->ca, "CN=test-ca", true) == 0);
    CHECK(gen_key(&w->server) == 0);
    CHECK(issue(&w->server, "CN=localhost", &w->ca, "CN=test-ca", false) == 0);
    CHECK(gen_key(&w->client) == 0);
    CHECK(issue(&w->client, "CN=n1", &w->ca, "CN=test-ca", false) == 0);
    CHECK(gen_key(&w->other_ca) == 0);
    CHECK(issue(&w->other_ca, "CN=other-ca", &w->other_ca, "CN=other-ca", true) == 0);
    CHECK(gen_key(&w->other_server) == 0);
    CHECK(issue(&w->other_server, "CN=localhost", &w->other_ca, "CN=other-ca", false) == 0);
    CHECK(node_tls_trust_init(&w->trust, w->ca.crt_pem, pem_len(w->ca.crt_pem)) == NODE_TLS_OK);
}

static node_tls_status_t client_init(struct node_tls *c, struct world *w, const char *name,
                                     const struct cred *me, struct end *e)
{
    struct node_tls_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.trust = &w->trust;
    cfg.cert = me->crt_pem;
    cfg.cert_len = pem_len(me->crt_pem);
    cfg.key = w->client.key_pem;
    cfg.key_len = pem_len(w->client.key_pem);
    cfg.server_name = name;
    cfg.entropy = test_entropy;
    cfg.personalization = "n1";
    return node_tls_init(c, &cfg, &e->tr);
}

static void make_ends(struct pipe *c2s, struct pipe *s2c, struct end *ce, struct end *se,
                      size_t chunk, size_t cap)
{
    memset(c2s, 0, sizeof(*c2s));
    memset(s2c, 0, sizeof(*s2c));
    *ce = (struct end){.in = s2c, .out = c2s, .max_chunk = chunk, .out_cap = cap};
    *se = (struct end){.in = c2s, .out = s2c, .max_chunk = chunk, .out_cap = cap};
    ce->tr = (struct transport){.ctx = ce, .read = end_read, .write = end_write};
    se->tr = (struct transport){.ctx = se, .read = end_read, .write = end_write};
}

static void test_handshake_and_data(struct world *w)
{
    struct pipe c2s, s2c;
    struct end ce, se;
    struct server s;
    struct node_tls c;
    uint8_t msg[3000], got[3000] = {0};
    size_t sent = 0, recvd = 0;

    make_ends(&c2s, &s2c, &ce, &se, 7, 300); /* 7 bytes per call, 300 bytes in flight */
    CHECK(server_init(&s, &w->ca, &w->server, &se) == 0);
    CHECK(client_init(&c, w, "localhost", &w->client, &ce) == NODE_TLS_OK);
    struct transport *up = node_tls_transport(&c);
    CHECK(up->write(up->ctx, msg, 1) == TRANSPORT_ERROR); /* no data before the handshake */
    CHECK(run_handshake(&c, &s) == AGENT_HS_DONE);
    CHECK(c.established);
    /* the server saw our client certificate */
    const mbedtls_x509_crt *peer = mbedtls_ssl_get_peer_cert(&s.ssl);
    CHECK(peer != NULL && peer->subject.val.len == 2 && memcmp(peer->subject.val.p, "n1", 2) == 0);

    for (size_t i = 0; i < sizeof(msg); i++)
        msg[i] = (uint8_t)(i * 7u + 3u);
    /* client -> server, like the MQTT queue: on AGAIN retry from the same offset, while
     * the queue keeps growing behind it (the retry passes MORE bytes than the first try;
     * the layer must still only claim what it really encrypted) */
    int again = 0;
    size_t queued = 1000;
    for (int guard = 0; recvd < sizeof(msg) && guard < 1000000; guard++) {
        if (sent < queued) {
            long n = up->write(up->ctx, msg + sent, queued - sent);
            if (n > 0) {
                sent += (size_t)n;
            } else if (n == TRANSPORT_AGAIN) {
                again++;
                queued = queued + 500 < sizeof(msg) ? queued + 500 : sizeof(msg);
            } else {
                break;
            }
        } else {
            queued = sizeof(msg);
        }
        int r = mbedtls_ssl_read(&s.ssl, got + recvd, sizeof(got) - recvd);
        if (r > 0)
            recvd += (size_t)r;
        else if (r != MBEDTLS_ERR_SSL_WANT_READ)
            break;
    }
    CHECK_EQ_INT(recvd, sizeof(msg));
    CHECK(memcmp(got, msg, sizeof(msg)) == 0);
    CHECK(again > 0); /* the small pipe really pushed back */

    /* server -> client */
    static const uint8_t reply[] = "CONNACK-ish reply";
    size_t off = 0;
    uint8_t buf[64];
    size_t have = 0;
    while (have < sizeof(reply)) {
        if (off < sizeof(reply)) {
            int r = mbedtls_ssl_write(&s.ssl, reply + off, sizeof(reply) - off);
            if (r > 0)
                off += (size_t)r;
        }
        long n = up->read(up->ctx, buf + have, sizeof(buf) - have);
        if (n > 0)
            have += (size_t)n;
        else if (n != TRANSPORT_AGAIN)
            break;
    }
    CHECK(have == sizeof(reply) && memcmp(buf, reply, sizeof(reply)) == 0);
    CHECK(up->read(up->ctx, buf, sizeof(buf)) == TRANSPORT_AGAIN);

    /* the peer closes: EOF */
    CHECK(mbedtls_ssl_close_notify(&s.ssl) == 0);
    long n;
    do {
        n = up->read(up->ctx, buf, sizeof(buf));
    } while (n == TRANSPORT_AGAIN && s2c.len > 0);
    CHECK(n == TRANSPORT_EOF);

    /* reconnect: reset, fresh pipe, fresh server session */
    server_free(&s);
    node_tls_reset(&c);
    CHECK(!c.established);
    make_ends(&c2s, &s2c, &ce, &se, 64, 4096);
    CHECK(server_init(&s, &w->ca, &w->server, &se) == 0);
    CHECK(run_handshake(&c, &s) == AGENT_HS_DONE);
    server_free(&s);
    node_tls_free(&c);
}

static void test_refusals(struct world *w)
{
    struct pipe c2s, s2c;
    struct end ce, se;
    struct server s;
    struct node_tls c;
    char why[256];

    /* broker certificate from another CA */
    make_ends(&c2s, &s2c, &ce, &se, 512, 4096);
    CHECK(server_init(&s, &w->ca, &w->other_server, &se) == 0);
    CHECK(client_init(&c, w, "localhost", &w->client, &ce) == NODE_TLS_OK);
    CHECK(run_handshake(&c, &s) == AGENT_HS_FAILED);
    CHECK((c.verify_flags & MBEDTLS_X509_BADCERT_NOT_TRUSTED) != 0);
    CHECK(strstr(node_tls_error_str(&c, why, sizeof(why)), "trusted CA") != NULL);
    CHECK(!c.established);
    server_free(&s);
    node_tls_free(&c);

    /* right CA, wrong name */
    make_ends(&c2s, &s2c, &ce, &se, 512, 4096);
    CHECK(server_init(&s, &w->ca, &w->server, &se) == 0);
    CHECK(client_init(&c, w, "broker.example", &w->client, &ce) == NODE_TLS_OK);
    CHECK(run_handshake(&c, &s) == AGENT_HS_FAILED);
    CHECK((c.verify_flags & MBEDTLS_X509_BADCERT_CN_MISMATCH) != 0);
    CHECK(strstr(node_tls_error_str(&c, why, sizeof(why)), "CN") != NULL);
    server_free(&s);
    node_tls_free(&c);

    /* setup refusals: key does not match the certificate, no server name, bad CA */
    make_ends(&c2s, &s2c, &ce, &se, 512, 4096);
    CHECK(client_init(&c, w, "localhost", &w->server, &ce) == NODE_TLS_ERR_KEY);
    CHECK(client_init(&c, w, "", &w->client, &ce) == NODE_TLS_ERR_PARAM);
    CHECK(client_init(&c, w, NULL, &w->client, &ce) == NODE_TLS_ERR_PARAM);
    struct node_tls_trust bad;
    static const uint8_t junk[] = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
    CHECK(node_tls_trust_init(&bad, junk, sizeof(junk)) == NODE_TLS_ERR_CA);
    node_tls_free(&c); /* safe on a failed init */
}

int main(void)
{
    static struct world w;
    mbedtls_entropy_init(&g_entropy);
    mbedtls_ctr_drbg_init(&g_drbg);
    CHECK(mbedtls_ctr_drbg_seed(&g_drbg, mbedtls_entropy_func, &g_entropy,
                                (const unsigned char *)"test_node_tls", 13) == 0);
    setup_world(&w);
    test_handshake_and_data(&w);
    test_refusals(&w);
    node_tls_trust_free(&w.trust);
    mbedtls_pk_free(&w.ca.key);
    mbedtls_pk_free(&w.server.key);
    mbedtls_pk_free(&w.client.key);
    mbedtls_pk_free(&w.other_ca.key);
    mbedtls_pk_free(&w.other_server.key);
    mbedtls_ctr_drbg_free(&g_drbg);
    mbedtls_entropy_free(&g_entropy);
    return check_finish();
}
