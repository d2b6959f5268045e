/* Unit tests of the operational checks (fleetgw/check.h) against real files, real loopback
 * sockets and real certificates made at test time. The TPM-positive path needs swtpm and is
 * covered by tests/integration/test_ops_check.py; here the TPM is unreachable on purpose. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdbool.h>
#include <grp.h>
#include <pwd.h>
#include <fleetgw/tpm_identity.h>
#include <json-c/json.h>
#include <netinet/in.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/un.h>
#include <unistd.h>

#include "check.h"
#include "fleetgw/check.h"

static char tmpdir[256];

static void path_in_tmp(char *buf, size_t len, const char *name)
{
    snprintf(buf, len, "%s/%s", tmpdir, name);
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (f == NULL)
        return;
    fputs(text, f);
    fclose(f);
}

/* Appends a self-signed P-256 certificate valid from now+nb_days to now+na_days. */
static void append_cert(const char *path, const char *cn, long nb_days, long na_days)
{
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    CHECK(key != NULL && x != NULL);
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), nb_days * 86400L);
    X509_gmtime_adj(X509_getm_notAfter(x), na_days * 86400L);
    X509_set_pubkey(x, key);
    X509_NAME *name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(x, name);
    CHECK(X509_sign(x, key, EVP_sha256()) > 0);
    FILE *f = fopen(path, "a");
    CHECK(f != NULL);
    if (f != NULL) {
        PEM_write_X509(f, x);
        fclose(f);
    }
    X509_free(x);
    EVP_PKEY_free(key);
}

static int contains(const char *hay, const char *needle)
{
    return strstr(hay, needle) != NULL;
}

static void test_certificates(void)
{
    char p[300];
    struct check_result r;

    path_in_tmp(p, sizeof(p), "good.pem");
    append_cert(p, "good", -1, 100);
    check_certificate_file("certificate", p, 0, 30, &r);
    CHECK_EQ_INT(r.status, CHECK_OK);
    CHECK(r.action[0] == '\0');

    path_in_tmp(p, sizeof(p), "soon.pem");
    append_cert(p, "soon", -1, 10);
    check_certificate_file("certificate", p, 0, 30, &r);
    CHECK_EQ_INT(r.status, CHECK_WARN);
    CHECK(contains(r.message, "expires in"));
    CHECK(contains(r.action, "renew"));
    /* The same certificate with a 5-day threshold is fine. */
    check_certificate_file("certificate", p, 0, 5, &r);
    CHECK_EQ_INT(r.status, CHECK_OK);

    path_in_tmp(p, sizeof(p), "expired.pem");
    append_cert(p, "expired", -10, -1);
    check_certificate_file("certificate", p, 0, 30, &r);
    CHECK_EQ_INT(r.status, CHECK_FAIL);
    CHECK(contains(r.message, "expired on"));

    path_in_tmp(p, sizeof(p), "future.pem");
    append_cert(p, "future", 2, 100);
    check_certificate_file("certificate", p, 0, 30, &r);
    CHECK_EQ_INT(r.status, CHECK_FAIL);
    CHECK(contains(r.message, "not valid before"));

    /* A CA bundle: the worst certificate decides. */
    path_in_tmp(p, sizeof(p), "bundle.pem");
    append_cert(p, "first", -1, 100);
    append_cert(p, "second", -10, -1);
    check_certificate_file("cloud CA", p, 0, 30, &r);
    CHECK_EQ_INT(r.status, CHECK_FAIL);
    CHECK(contains(r.message, "second"));

    path_in_tmp(p, sizeof(p), "garbage.pem");
    write_text(p, "not a certificate\n");
    check_certificate_file("certificate", p, 0, 30, &r);
    CHECK_EQ_INT(r.status, CHECK_FAIL);
    CHECK(contains(r.message, "no PEM certificate"));

    path_in_tmp(p, sizeof(p), "absent.pem");
    check_certificate_file("certificate", p, 0, 30, &r);
    CHECK_EQ_INT(r.status, CHECK_FAIL);
    CHECK(contains(r.action, "install a valid certificate"));

    /* A fixed `now` is honoured: 200 days ahead the good certificate has expired. */
    path_in_tmp(p, sizeof(p), "good.pem");
    check_certificate_file("certificate", p, time(NULL) + 200L * 86400L, 30, &r);
    CHECK_EQ_INT(r.status, CHECK_FAIL);
}

/* A listening loopback TCP socket; returns its fd and port. */
static int tcp_listener(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sa);
    CHECK(fd >= 0);
    CHECK(bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
    CHECK(listen(fd, 4) == 0);
    CHECK(getsockname(fd, (struct sockaddr *)&sa, &len) == 0);
    *port = ntohs(sa.sin_port);
    return fd;
}

/* A loopback port nobody listens on (bound then closed). */
static int closed_port(void)
{
    int port = 0;
    int fd = tcp_listener(&port);
    close(fd);
    return port;
}

static int unix_listener(const char *path)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
    unlink(path);
    CHECK(fd >= 0);
    CHECK(bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
    CHECK(listen(fd, 4) == 0);
    return fd;
}

/* check_broker_snapshot: missing, unreadable by its group, not a file, the broker's user
 * outside the group, and OK (the current user stands in for the broker's). */
static void test_broker_snapshot(void)
{
    struct check_result r;
    char p[300];
    path_in_tmp(p, sizeof(p), "snap.db");
    unlink(p);
    check_broker_snapshot(p, "mosquitto", time(NULL), &r);
    CHECK_EQ_INT(r.status, CHECK_WARN);
    CHECK(contains(r.message, "refuses every node"));
    write_text(p, "snapshot\n");
    CHECK(chmod(p, 0600) == 0);
    check_broker_snapshot(p, "mosquitto", time(NULL), &r);
    CHECK_EQ_INT(r.status, CHECK_FAIL);
    CHECK(contains(r.message, "mode 0600"));
    CHECK(chmod(p, 0640) == 0);
    struct passwd *me = getpwuid(geteuid());
    CHECK(me != NULL);
    CHECK(chown(p, (uid_t)-1, me->pw_gid) == 0);
    check_broker_snapshot(p, me->pw_name, time(NULL) + 7, &r);
    CHECK_EQ_INT(r.status, CHECK_OK);
    CHECK(contains(r.message, "written 7 s ago"));
    /* a user that is in no way in the file's group: a group no user has as primary or
     * member is hard to find portably, so use a user known to exist and a group it is not
     * in: nobody, and the current user's primary group when that is not nobody's */
    struct passwd *nobody = getpwnam("nobody");
    if (nobody != NULL && nobody->pw_gid != me->pw_gid) {
        struct group *g = getgrgid(me->pw_gid);
        bool in = false;
        for (char **m = g != NULL ? g->gr_mem : NULL; m != NULL && *m != NULL; m++)
            in = in || strcmp(*m, "nobody") == 0;
        if (!in) {
            check_broker_snapshot(p, "nobody", time(NULL), &r);
            CHECK_EQ_INT(r.status, CHECK_WARN);
            CHECK(contains(r.action, "usermod -a -G"));
        }
    }
    /* no such user (the broker runs elsewhere): the file alone decides */
    check_broker_snapshot(p, "no-such-user-fleetgw", time(NULL), &r);
    CHECK_EQ_INT(r.status, CHECK_OK);
    unlink(p);
    CHECK(mkdir(p, 0750) == 0);
    check_broker_snapshot(p, "mosquitto", time(NULL), &r);
    CHECK_EQ_INT(r.status, CHECK_FAIL);
    CHECK(contains(r.message, "not a regular file"));
    rmdir(p);
}

static void test_brokers(void)
{
    struct check_result r;
    int port = 0;
    int fd = tcp_listener(&port);

    check_tcp("cloud broker", "127.0.0.1", port, 2000, &r);
    CHECK_EQ_INT(r.status, CHECK_OK);
    close(fd);
    check_tcp("cloud broker", "127.0.0.1", closed_port(), 2000, &r);
    CHECK_EQ_INT(r.status, CHECK_FAIL);
    CHECK(contains(r.message, "Connection refused"));
    CHECK(contains(r.action, "IPAddressAllow="));
    check_tcp("cloud broker", "", 0, 2000, &r);
    CHECK_EQ_INT(r.status, CHECK_FAIL);

    /* uplink.hosts: every endpoint is probed; some down is a warning naming them, all down a
     * failure, all up OK. */
    int p1 = 0, p2 = 0, dead = closed_port();
    int f1 = tcp_listener(&p1), f2 = tcp_listener(&p2);
    struct check_endpoint eps[3] = {{"127.0.0.1", p1}, {"127.0.0.1", dead}, {"127.0.0.1", p2}};
    check_tcp_endpoints("cloud broker", eps, 3, 2000, &r);
    CHECK_EQ_INT(r.status, CHECK_WARN);
    char want[64];
    snprintf(want, sizeof(want), "2 of 3 endpoints");
    CHECK(contains(r.message, want));
    snprintf(want, sizeof(want), "not 127.0.0.1:%d ", dead);
    CHECK(contains(r.message, want));
    CHECK(contains(r.message, "Connection refused"));
    CHECK(contains(r.action, "IPAddressAllow="));
    eps[1].port = p2;
    check_tcp_endpoints("cloud broker", eps, 3, 2000, &r);
    CHECK_EQ_INT(r.status, CHECK_OK);
    CHECK(contains(r.message, "all 3 endpoints"));
    close(f1);
    close(f2);
    check_tcp_endpoints("cloud broker", eps, 3, 2000, &r);
    CHECK_EQ_INT(r.status, CHECK_FAIL);
    CHECK(contains(r.message, "0 of 3 endpoints"));
    check_tcp_endpoints("cloud broker", eps, 1, 2000, &r); /* one: check_tcp's own wording */
    CHECK_EQ_INT(r.status, CHECK_FAIL);
    CHECK(contains(r.message, "cannot connect to 127.0.0.1"));

    char sock[300];
    path_in_tmp(sock, sizeof(sock), "edge.sock");
    fd = unix_listener(sock);
    check_unix("edge broker", sock, &r);
    CHECK_EQ_INT(r.status, CHECK_OK);
    close(fd);
    unlink(sock);
    check_unix("edge broker", sock, &r);
    CHECK_EQ_INT(r.status, CHECK_FAIL);
    CHECK(contains(r.action, "group fleetgw"));
}

static void test_disk(void)
{
    struct check_result r;
    char spool[300];
    struct statvfs vfs;

    path_in_tmp(spool, sizeof(spool), "spool.db");
    check_disk(spool, 4096, &r);
    CHECK_EQ_INT(r.status, CHECK_OK);

    CHECK(statvfs(tmpdir, &vfs) == 0);
    int64_t avail = (int64_t)vfs.f_bavail * (int64_t)vfs.f_frsize;
    check_disk(spool, avail + (int64_t)1024 * 1024 * 1024, &r);
    CHECK_EQ_INT(r.status, CHECK_FAIL);
    CHECK(contains(r.action, "spool.max_bytes"));

    /* What the spool already uses counts as room it has. */
    write_text(spool, "x");
    FILE *f = fopen(spool, "a");
    CHECK(f != NULL);
    if (f != NULL) {
        static char block[65536];
        for (int i = 0; i < 16; i++)
            fwrite(block, 1, sizeof(block), f);
        fclose(f);
    }
    check_disk(spool, 512 * 1024, &r); /* smaller than the 1 MiB it holds */
    CHECK_EQ_INT(r.status, CHECK_OK);
    CHECK(contains(r.message, "needs at most 0 B more"));

    check_disk("relative/spool.db", 4096, &r);
    CHECK_EQ_INT(r.status, CHECK_FAIL);
    check_disk("/nonexistent-fleetgw-dir/spool.db", 4096, &r);
    CHECK_EQ_INT(r.status, CHECK_FAIL);
    CHECK(contains(r.action, "tmpfiles"));
}

static void test_tpm_unreachable(void)
{
    struct check_result tpm, ident;
    char tcti[64];

    struct tpm_key_ref key = {.handle = 0x81000001u};
    snprintf(tcti, sizeof(tcti), "swtpm:host=127.0.0.1,port=%d", closed_port());
    check_tpm(tcti, &key, NULL, &tpm, &ident);
    CHECK_EQ_INT(tpm.status, CHECK_FAIL);
    CHECK(contains(tpm.message, tcti));
    CHECK(contains(tpm.action, "tpmrm0"));
    CHECK_EQ_INT(ident.status, CHECK_FAIL);
    CHECK(contains(ident.message, "not checked"));

    check_tpm("no-such-tcti-module", &key, NULL, &tpm, &ident);
    CHECK_EQ_INT(tpm.status, CHECK_FAIL);
}

static const struct check_result *find(const struct check_list *rep, const char *name)
{
    for (size_t i = 0; i < rep->count; i++)
        if (strcmp(rep->results[i].name, name) == 0)
            return &rep->results[i];
    return NULL;
}

/* The configuration is read with the daemon's own config_load(): its messages and its exit
 * class, the same as `fleetgwd --check-config`. */
static void test_config_errors(void)
{
    struct check_list rep;
    char p[300], ca[300], text[2048];
    struct check_options opt = {.config_path = p};

    path_in_tmp(p, sizeof(p), "absent.conf");
    CHECK(check_collect(&opt, &rep) == 0);
    CHECK_EQ_INT(rep.count, 1);
    CHECK_EQ_INT(rep.results[0].status, CHECK_FAIL);
    CHECK(contains(rep.results[0].message, "cannot read the configuration file"));
    CHECK(contains(rep.results[0].message, "fleetgwd would exit 66"));
    CHECK_EQ_INT(check_exit_code(&rep), CHECK_EXIT_FAIL);

    path_in_tmp(p, sizeof(p), "bad.conf");
    write_text(p, "{\n  \"uplink\": {\n    \"host\": \n");
    CHECK(check_collect(&opt, &rep) == 0);
    CHECK_EQ_INT(rep.count, 1);
    CHECK(contains(rep.results[0].message, "fleetgwd would exit 65"));

    write_text(p, "{\"uplink\": {\"host\": \"127.0.0.1\", \"port\": 1}, \"bogus\": {}}");
    CHECK(check_collect(&opt, &rep) == 0);
    CHECK_EQ_INT(rep.results[0].status, CHECK_FAIL);
    CHECK(contains(rep.results[0].message, "bogus"));
    CHECK(contains(rep.results[0].message, "fleetgwd would exit 78"));

    write_text(p, "{\"uplink\": {\"host\": \"127.0.0.1\", \"port\": \"8883\"}}");
    CHECK(check_collect(&opt, &rep) == 0);
    CHECK(contains(rep.results[0].message, "uplink.port"));
    CHECK(contains(rep.results[0].message, "fleetgwd would exit 79"));

    write_text(p, "{\"uplink\": {\"host\": \"127.0.0.1\", \"port\": 0}}");
    CHECK(check_collect(&opt, &rep) == 0);
    CHECK(contains(rep.results[0].message, "uplink.port"));
    CHECK(contains(rep.results[0].message, "fleetgwd would exit 80"));

    write_text(p, "{\"uplink\": {\"host\": \"127.0.0.1\", \"port\": 1}}");
    CHECK(check_collect(&opt, &rep) == 0);
    CHECK(contains(rep.results[0].message, "fleetgwd would exit 81"));

    /* Every value valid but a certificate file that cannot be read: "config" fails as
     * fleetgwd would (exit 82), and the other checks still run on the values, the
     * certificate's own check saying what is wrong with it. */
    path_in_tmp(ca, sizeof(ca), "errors-ca.pem");
    append_cert(ca, "test CA", -1, 3000);
    snprintf(text, sizeof(text),
             "{\"uplink\": {\"host\": \"127.0.0.1\", \"port\": 1, \"ca_file\": \"%s\",\n"
             " \"cert_file\": \"%s.absent\", \"key\": \"%s\", \"client_id\": \"gw\"},\n"
             " \"attestation\": {\"required\": false}}\n",
             ca, ca, ca);
    write_text(p, text);
    CHECK(check_collect(&opt, &rep) == 0);
    CHECK_EQ_INT(rep.results[0].status, CHECK_FAIL);
    CHECK(contains(rep.results[0].message, "fleetgwd would exit 82"));
    CHECK_EQ_INT(rep.count, 8);
    const struct check_result *cert = find(&rep, "certificate");
    CHECK(cert != NULL && cert->status == CHECK_FAIL);
    const struct check_result *cloud_ca = find(&rep, "cloud CA");
    CHECK(cloud_ca != NULL && cloud_ca->status == CHECK_OK);

    CHECK(check_collect(&opt, NULL) == -EINVAL);
}

/* test_full_run's complete configuration with its key in a file and attestation on: up is
 * the uplink's broker members ("host"/"port" or "hosts"), extra more sections (or ""). */
static void write_full_conf(const char *conf, const char *up, const char *ca, const char *cert,
                            const char *keyfile, const char *sock, const char *spool,
                            const char *extra, const char *ref)
{
    char text[4096];
    snprintf(text, sizeof(text),
             "{\"uplink\": {%s, \"ca_file\": \"%s\",\n"
             " \"cert_file\": \"%s\", \"key\": \"%s\", \"client_id\": \"gw-test\"},\n"
             " \"edge\": {\"socket\": \"%s\"},\n"
             " \"spool\": {\"path\": \"%s\", \"max_bytes\": 65536},%s\n"
             " \"attestation\": {\"reference_file\": \"%s\"}}\n",
             up, ca, cert, keyfile, sock, spool, extra, ref);
    write_text(conf, text);
}

/* A complete configuration against loopback listeners: every check but the TPM passes. */
static void test_full_run(void)
{
    char conf[300], cert[300], ca[300], sock[300], spool[300], keyfile[300];
    char text[4096];
    struct check_list rep;
    int port = 0;
    int tfd = tcp_listener(&port);

    path_in_tmp(conf, sizeof(conf), "full.conf");
    path_in_tmp(cert, sizeof(cert), "gw.pem");
    path_in_tmp(ca, sizeof(ca), "ca.pem");
    path_in_tmp(sock, sizeof(sock), "mqtt.sock");
    path_in_tmp(spool, sizeof(spool), "state-spool.db");
    path_in_tmp(keyfile, sizeof(keyfile), "gw.key");
    append_cert(cert, "gw-test", -1, 300);
    append_cert(ca, "test CA", -1, 3000);
    write_text(keyfile, "placeholder: the checks never read key files\n");
    int ufd = unix_listener(sock);

    /* Key in a file: TPM and identity WARN, the rest OK -> exit 3. Attestation on (the
     * default) with a reference file. */
    char ref[300];
    path_in_tmp(ref, sizeof(ref), "reference.json");
    write_text(ref, "{\"lifecycles\": [\"secured\"], \"reference_values\": []}\n");
    char up[128];
    snprintf(up, sizeof(up), "\"host\": \"127.0.0.1\", \"port\": %d", port);
    write_full_conf(conf, up, ca, cert, keyfile, sock, spool, "", ref);
    struct check_options opt = {.config_path = conf};
    CHECK(check_collect(&opt, &rep) == 0);
    CHECK_EQ_INT(rep.count, 8);
    static const char *const names[] = {"config",   "tpm",          "identity",    "certificate",
                                        "cloud CA", "cloud broker", "edge broker", "disk"};
    for (size_t i = 0; i < 8 && i < rep.count; i++)
        CHECK(strcmp(rep.results[i].name, names[i]) == 0);
    CHECK_EQ_INT(find(&rep, "config")->status, CHECK_OK);
    CHECK_EQ_INT(find(&rep, "tpm")->status, CHECK_WARN);
    CHECK_EQ_INT(find(&rep, "identity")->status, CHECK_WARN);
    CHECK_EQ_INT(find(&rep, "certificate")->status, CHECK_OK);
    CHECK_EQ_INT(find(&rep, "cloud CA")->status, CHECK_OK);
    CHECK_EQ_INT(find(&rep, "cloud broker")->status, CHECK_OK);
    CHECK_EQ_INT(find(&rep, "edge broker")->status, CHECK_OK);
    CHECK_EQ_INT(find(&rep, "disk")->status, CHECK_OK);
    CHECK_EQ_INT(check_exit_code(&rep), CHECK_EXIT_WARN);

    /* Text output: one line per check, the action under each non-OK line. */
    char *buf = NULL;
    size_t blen = 0;
    FILE *mem = open_memstream(&buf, &blen);
    CHECK(mem != NULL);
    CHECK(check_print(&rep, 0, mem) == 0);
    fclose(mem);
    CHECK(contains(buf, "OK    config"));
    CHECK(contains(buf, "WARN  tpm"));
    CHECK(contains(buf, "-> keep the gateway key in the TPM"));
    free(buf);

    /* TPM handle through an unreachable TCTI: FAIL, exit 1, and JSON says so. */
    char tcti[64];
    snprintf(tcti, sizeof(tcti), "swtpm:host=127.0.0.1,port=%d", closed_port());
    snprintf(text, sizeof(text),
             "{\"uplink\": {\"host\": \"127.0.0.1\", \"port\": %d, \"ca_file\": \"%s\",\n"
             " \"cert_file\": \"%s\", \"key\": \"handle:0x81000001\", \"tcti\": \"%s\",\n"
             " \"client_id\": \"gw-test\"},\n"
             " \"edge\": {\"socket\": \"%s\"}, \"spool\": {\"path\": \"%s\"},\n"
             " \"attestation\": {\"required\": false}}\n",
             port, ca, cert, tcti, sock, spool);
    write_text(conf, text);
    buf = NULL;
    mem = open_memstream(&buf, &blen);
    CHECK(mem != NULL);
    CHECK_EQ_INT(check_run(conf, 1, mem), CHECK_EXIT_FAIL);
    fclose(mem);
    json_object *root = json_tokener_parse(buf);
    CHECK(root != NULL);
    json_object *ok = NULL, *checks = NULL;
    CHECK(json_object_object_get_ex(root, "ok", &ok) && !json_object_get_boolean(ok));
    CHECK(json_object_object_get_ex(root, "checks", &checks));
    CHECK_EQ_INT(json_object_array_length(checks), 8);
    json_object *tpm = json_object_array_get_idx(checks, 1), *v = NULL;
    CHECK(json_object_object_get_ex(tpm, "status", &v) &&
          strcmp(json_object_get_string(v), "fail") == 0);
    CHECK(json_object_object_get_ex(tpm, "action", &v) && json_object_get_string_len(v) > 0);
    /* attestation turned off: valid, but "config" warns and says how to turn it on */
    json_object *cfgc = json_object_array_get_idx(checks, 0);
    CHECK(json_object_object_get_ex(cfgc, "status", &v) &&
          strcmp(json_object_get_string(v), "warn") == 0);
    CHECK(json_object_object_get_ex(cfgc, "message", &v) &&
          strstr(json_object_get_string(v), "attestation.required is false") != NULL);
    json_object *disk = json_object_array_get_idx(checks, 7);
    CHECK(json_object_object_get_ex(disk, "status", &v) &&
          strcmp(json_object_get_string(v), "ok") == 0);
    json_object_put(root);
    free(buf);

    /* uplink.hosts with a second endpoint that does not answer: "cloud broker" warns
     * (fleetgwd would fail over), naming it. */
    int dead = closed_port();
    char hosts[160];
    snprintf(hosts, sizeof(hosts),
             "\"hosts\": [{\"host\": \"127.0.0.1\", \"port\": %d},"
             " {\"host\": \"127.0.0.1\", \"port\": %d}]",
             port, dead);
    write_full_conf(conf, hosts, ca, cert, keyfile, sock, spool, "", ref);
    CHECK(check_collect(&opt, &rep) == 0);
    const struct check_result *cb = find(&rep, "cloud broker");
    CHECK(cb != NULL && cb->status == CHECK_WARN);
    char want[64];
    snprintf(want, sizeof(want), "not 127.0.0.1:%d ", dead);
    CHECK(cb != NULL && contains(cb->message, "1 of 2 endpoints") && contains(cb->message, want));

    /* registry.broker_snapshot: one more check, "broker snapshot", only when it is set. */
    char snapf[300];
    path_in_tmp(snapf, sizeof(snapf), "registry.snapshot");
    unlink(snapf);
    char reg[400];
    snprintf(reg, sizeof(reg), "\n \"registry\": {\"broker_snapshot\": \"%s\"},", snapf);
    write_full_conf(conf, up, ca, cert, keyfile, sock, spool, reg, ref);
    CHECK(check_collect(&opt, &rep) == 0);
    CHECK_EQ_INT(rep.count, 9);
    const struct check_result *bs = find(&rep, "broker snapshot");
    CHECK(bs != NULL && bs->status == CHECK_WARN && contains(bs->message, "does not exist") &&
          contains(bs->action, "start fleetgwd"));

    /* Brokers gone: both FAIL. */
    close(tfd);
    close(ufd);
    unlink(sock);
    CHECK(check_collect(&opt, &rep) == 0);
    CHECK_EQ_INT(find(&rep, "cloud broker")->status, CHECK_FAIL);
    CHECK_EQ_INT(find(&rep, "edge broker")->status, CHECK_FAIL);
}

int main(void)
{
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/fleetgw-ops-check-XXXXXX");
    if (mkdtemp(tmpdir) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    test_certificates();
    test_brokers();
    test_broker_snapshot();
    test_disk();
    test_tpm_unreachable();
    test_config_errors();
    test_full_run();
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", tmpdir);
    return check_finish();
}
