/* fleetgwctl: operator client for fleetgwd's control socket (line-delimited JSON).
 *
 *   fleetgwctl [--socket PATH] [--json] status
 *   fleetgwctl [...] nodes | node list
 *   fleetgwctl [...] node add (--pub FILE.pem | --pub-hex HEX | --cert FILE [--ca FILE])
 *                             [--class CLASS]
 *   fleetgwctl [...] node add --hmac-key FILE [--tcti CONF] [--class CLASS]
 *                             (symmetric IAK: sealed here by the gateway's TPM, only the
 *                             blob and the IAK id go to the daemon)
 *   fleetgwctl [...] node show ID
 *   fleetgwctl [...] node remove ID
 *   fleetgwctl [...] node tag ID TAG[,TAG...]   ("" clears)
 *   fleetgwctl [...] spool
 *   fleetgwctl [--json] check [--config FILE]   readiness checks, no daemon needed (ops/)
 *   fleetgwctl [...] ota ... | campaign ...      OTA images and campaigns (fleetgwctl_ota.c)
 *
 * Exit codes: 0 done, 1 the daemon refused (its reason is printed), 2 usage, 3 cannot reach
 * the daemon or bad answer, 4 cannot read the public key. `check` has its own (fleetgw/check.h):
 * 0 all passed, 1 a check failed, 2 could not run, 3 warnings only. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <fleetgw/check.h>
#include <fleetgw/crypto.h>
#include <fleetgw/hex.h>
#include <fleetgw/ident.h>
#include <fleetgw/tpm_identity.h>
#include <json-c/json.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "config.h"

#include <fleetgw/secret_file.h>
#include "fleetgw_version.h"
#include "fleetgwctl.h"
#include "identity_cli.h"

#define DEFAULT_SOCKET "/run/fleetgw/control.sock"
#define ANSWER_MAX     (1024 * 1024)

static void usage(FILE *f)
{
    fprintf(
        f,
        "Usage: fleetgwctl [--socket PATH] [--json] COMMAND\n"
        "  status                         gateway state, spool, down-queue, counters\n"
        "  nodes | node list              enrolled nodes\n"
        "  node add (--pub FILE|--pub-hex HEX|--cert FILE [--ca FILE]) [--class CLASS]\n"
        "                                 enroll a node by its IAK public key (P-256), or by the\n"
        "                                 key in its certificate (checked against --ca FILE)\n"
        "  node add --hmac-key FILE [--tcti CONF] [--class CLASS]\n"
        "                                 enroll a node with a symmetric IAK (32..64 raw bytes):\n"
        "                                 sealed by the TPM (default " TPM_DEFAULT_TCTI "), the\n"
        "                                 daemon keeps only the sealed blob\n"
        "  node show ID                   one node, with its IAK public key\n"
        "  node remove ID                 remove a node from the registry\n"
        "  node tag ID TAGS               set a node's tags (a,b; \"\" clears): campaign "
        "selectors\n"
        "  spool                          spool and down-queue usage, ages, drop counters\n"
        "  attest ID                      challenge an enrolled node now (fresh nonce)\n"
        "  ota stage FILE [--class C] [--recovery] | ota images | ota rm DIGEST\n"
        "                                 the OTA image store (checked before it is stored)\n"
        "  [ota] campaign create --image DIGEST [options] | list | status ID [--watch]\n"
        "        [--nodes] | halt ID | resume ID | abort ID\n"
        "                                 OTA campaigns (fleetgwctl campaign --help)\n"
        "  check [--config FILE]          is the gateway ready to run fleetgwd? (configuration,\n"
        "                                 TPM and identity, certificates, brokers, disk)\n"
        "  identity init|show|ak|csr|quote|sign|seal|unseal [--tcti CONF] ...\n"
        "                                 the gateway's TPM-held identity (fleetgwctl identity "
        "--help)\n"
        "  --help | --version             this text | the package version\n"
        "Socket: --socket, else $FLEETGW_CONTROL_SOCKET, else " DEFAULT_SOCKET "\n");
}

static int run_check(int argc, char **argv, int i, bool as_json)
{
    struct check_options opt;
    struct check_list rep;
    memset(&opt, 0, sizeof(opt));
    for (; i < argc; i++) {
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
            opt.config_path = argv[++i];
        } else if (strcmp(argv[i], "--json") == 0) {
            as_json = true;
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "fleetgwctl check: %s '%s'\n",
                    strcmp(argv[i], "--config") == 0 ? "missing value for" : "unknown option",
                    argv[i]);
            usage(stderr);
            return CHECK_EXIT_ERROR;
        }
    }
    if (check_collect(&opt, &rep) < 0 || check_print(&rep, as_json ? 1 : 0, stdout) < 0)
        return CHECK_EXIT_ERROR;
    return check_exit_code(&rep);
}

/* The uncompressed P-256 point of pk as 130 hex digits. */
static int hex_from_pkey(EVP_PKEY *pk, const char *path, char hex[131])
{
    unsigned char pt[65];
    size_t n = 0;
    char group[32] = "";

    if (EVP_PKEY_get_utf8_string_param(pk, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
                                       NULL) != 1 ||
        strcmp(group, "prime256v1") != 0) {
        fprintf(stderr, "fleetgwctl: %s: not a P-256 key\n", path);
        return -EINVAL;
    }
    if (EVP_PKEY_get_octet_string_param(pk, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, pt, sizeof(pt),
                                        &n) != 1 ||
        n != 65 || pt[0] != 0x04) {
        fprintf(stderr, "fleetgwctl: %s: cannot get the uncompressed point\n", path);
        return -EINVAL;
    }
    for (size_t i = 0; i < 65; i++)
        snprintf(hex + 2 * i, 3, "%02x", pt[i]);
    return 0;
}

/* A symmetric IAK (the raw CRYPTO_HMAC_KEY_MIN..MAX key bytes in path) sealed by the TPM at
 * tcti: its IAK id and the tpm_seal blob in hex. The key is wiped before returning and never
 * leaves this process unsealed. 0, or -1 with the reason on stderr. */
static int seal_hmac_key(const char *path, const char *tcti, char id_hex[65],
                         char sealed_hex[2 * TPM_SEAL_BLOB_MAX + 1])
{
    uint8_t key[CRYPTO_HMAC_KEY_MAX], kid[IDENT_SYM_KEY_ID_LEN], blob[TPM_SEAL_BLOB_MAX];
    size_t blob_len = 0, n = 0;
    struct tpm *t = NULL;
    char err[512];
    int r = -1;

    /* A secret: refused when its group or others may read it (the message names the file and
     * its mode), or when it is not a regular file. */
    int sr = secret_file_read(path, "HMAC key", key, sizeof(key), &n, err, sizeof(err));
    if (sr < 0 && sr != -EFBIG) {
        fprintf(stderr, "fleetgwctl: %s\n", err);
        goto out;
    }
    if (sr == -EFBIG || n < CRYPTO_HMAC_KEY_MIN) {
        fprintf(stderr,
                "fleetgwctl: %s: an HMAC-SHA256 IAK is %u..%u raw bytes (the file has %s)\n", path,
                CRYPTO_HMAC_KEY_MIN, CRYPTO_HMAC_KEY_MAX, sr == -EFBIG ? "more" : "fewer");
        goto out;
    }
    if (ident_sym_key_id(key, n, kid) != 0) {
        fprintf(stderr, "fleetgwctl: cannot hash the HMAC key\n");
        goto out;
    }
    if (tpm_open(tcti, &t, err, sizeof(err)) < 0 ||
        tpm_seal(t, key, n, NULL, blob, sizeof(blob), &blob_len, err, sizeof(err)) < 0) {
        fprintf(stderr, "fleetgwctl: cannot seal the HMAC key with the TPM: %s\n", err);
        goto out;
    }
    hex_encode(kid, sizeof(kid), id_hex);
    hex_encode(blob, blob_len, sealed_hex);
    r = 0;
out:
    crypto_wipe(key, sizeof(key));
    tpm_close(t);
    return r;
}

static int pub_from_pem(const char *path, char hex[131])
{
    FILE *f = fopen(path, "re");
    EVP_PKEY *pk = NULL;
    int r = -EINVAL;

    if (f == NULL) {
        fprintf(stderr, "fleetgwctl: cannot open %s: %s\n", path, strerror(errno));
        return -errno;
    }
    pk = PEM_read_PUBKEY(f, NULL, NULL, NULL);
    fclose(f);
    if (pk == NULL)
        fprintf(stderr, "fleetgwctl: %s is not a PEM public key\n", path);
    else
        r = hex_from_pkey(pk, path, hex);
    EVP_PKEY_free(pk);
    return r;
}

/* The IAK public key from a node's PEM certificate; with ca_path, the certificate must
 * verify against that CA (chain, signature, validity dates) or nothing is enrolled. */
static int pub_from_cert(const char *path, const char *ca_path, char hex[131])
{
    FILE *f = fopen(path, "re");
    X509 *crt = NULL;
    X509_STORE *store = NULL;
    X509_STORE_CTX *vctx = NULL;
    int r = -EINVAL;

    if (f == NULL) {
        fprintf(stderr, "fleetgwctl: cannot open %s: %s\n", path, strerror(errno));
        return -errno;
    }
    crt = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    if (crt == NULL) {
        fprintf(stderr, "fleetgwctl: %s is not a PEM certificate\n", path);
        goto out;
    }
    if (ca_path != NULL) {
        store = X509_STORE_new();
        vctx = X509_STORE_CTX_new();
        if (store == NULL || vctx == NULL || X509_STORE_load_file(store, ca_path) != 1) {
            fprintf(stderr, "fleetgwctl: cannot load the CA certificate(s) from %s\n", ca_path);
            goto out;
        }
        if (X509_STORE_CTX_init(vctx, store, crt, NULL) != 1 || X509_verify_cert(vctx) != 1) {
            fprintf(stderr, "fleetgwctl: %s does not verify against %s: %s\n", path, ca_path,
                    X509_verify_cert_error_string(X509_STORE_CTX_get_error(vctx)));
            goto out;
        }
    }
    EVP_PKEY *pk = X509_get0_pubkey(crt);
    if (pk == NULL) {
        fprintf(stderr, "fleetgwctl: %s: no public key\n", path);
        goto out;
    }
    r = hex_from_pkey(pk, path, hex);
out:
    X509_STORE_CTX_free(vctx);
    X509_STORE_free(store);
    X509_free(crt);
    return r;
}

/* Sends one request (with the descriptor pass_fd when >= 0, SCM_RIGHTS), returns the parsed
 * answer (NULL on failure, after saying why). */
json_object *fleetgwctl_call(const char *sock, json_object *req, int pass_fd)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    json_object *ans = NULL;
    char *buf = NULL;
    int fd = -1;

    if (strlen(sock) >= sizeof(sa.sun_path)) {
        fprintf(stderr, "fleetgwctl: socket path too long\n");
        goto out;
    }
    memcpy(sa.sun_path, sock, strlen(sock) + 1);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        fprintf(stderr, "fleetgwctl: cannot reach fleetgwd at %s: %s\n", sock, strerror(errno));
        goto out;
    }
    const char *s = json_object_to_json_string_ext(req, JSON_C_TO_STRING_PLAIN);
    size_t len = strlen(s);
    /* A refused peer gets its answer before the daemon closes: if sending fails, the
     * refusal may still be waiting to be read. */
    int send_errno = 0;
    if (pass_fd >= 0) {
        union {
            char buf[CMSG_SPACE(sizeof(int))];
            struct cmsghdr align;
        } cbuf;
        struct iovec iov = {.iov_base = (void *)s, .iov_len = len};
        struct msghdr mh = {.msg_iov = &iov,
                            .msg_iovlen = 1,
                            .msg_control = cbuf.buf,
                            .msg_controllen = sizeof(cbuf.buf)};
        struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
        cm->cmsg_level = SOL_SOCKET;
        cm->cmsg_type = SCM_RIGHTS;
        cm->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(cm), &pass_fd, sizeof(int));
        if (sendmsg(fd, &mh, MSG_NOSIGNAL) != (ssize_t)len || send(fd, "\n", 1, MSG_NOSIGNAL) != 1)
            send_errno = errno;
    } else if (send(fd, s, len, MSG_NOSIGNAL) != (ssize_t)len ||
               send(fd, "\n", 1, MSG_NOSIGNAL) != 1) {
        send_errno = errno;
    }
    buf = malloc(ANSWER_MAX + 1);
    if (buf == NULL)
        goto out;
    size_t got = 0;
    while (got < ANSWER_MAX) {
        ssize_t n = read(fd, buf + got, ANSWER_MAX - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
        if (memchr(buf + got - (size_t)n, '\n', (size_t)n) != NULL)
            break;
    }
    buf[got] = '\0';
    ans = got > 0 ? json_tokener_parse(buf) : NULL;
    if (ans == NULL && send_errno != 0) {
        fprintf(stderr, "fleetgwctl: cannot send to fleetgwd: %s\n", strerror(send_errno));
    } else if (ans == NULL || !json_object_is_type(ans, json_type_object)) {
        fprintf(stderr, "fleetgwctl: no valid answer from fleetgwd\n");
        json_object_put(ans);
        ans = NULL;
    }
out:
    free(buf);
    if (fd >= 0)
        close(fd);
    return ans;
}

const char *jstr(json_object *o, const char *k)
{
    json_object *v;
    return json_object_object_get_ex(o, k, &v) ? json_object_get_string(v) : "";
}

int64_t jint(json_object *o, const char *k)
{
    json_object *v;
    return json_object_object_get_ex(o, k, &v) ? json_object_get_int64(v) : 0;
}

static double jdouble(json_object *o, const char *k)
{
    json_object *v;
    return json_object_object_get_ex(o, k, &v) ? json_object_get_double(v) : 0;
}

static void ago(int64_t t, char *buf, size_t cap)
{
    if (t == 0) {
        snprintf(buf, cap, "never");
        return;
    }
    int64_t d = (int64_t)time(NULL) - t;
    if (d < 0)
        d = 0;
    if (d < 120)
        snprintf(buf, cap, "%llds ago", (long long)d);
    else if (d < 7200)
        snprintf(buf, cap, "%lldm ago", (long long)(d / 60));
    else
        snprintf(buf, cap, "%lldh ago", (long long)(d / 3600));
}

static void print_node_table(json_object *arr)
{
    size_t n = json_object_array_length(arr);
    printf("%-32s  %-16s  %-10s  %-11s  %-10s  %s\n", "ID", "CLASS", "FIRMWARE", "VERDICT",
           "LAST SEEN", "REASON");
    size_t old = 0;
    for (size_t i = 0; i < n; i++) {
        json_object *o = json_object_array_get_idx(arr, i), *od;
        char seen[32], fw[80];
        bool outdated =
            json_object_object_get_ex(o, "outdated", &od) && json_object_get_boolean(od);
        old += outdated;
        ago(jint(o, "last_seen"), seen, sizeof(seen));
        snprintf(fw, sizeof(fw), "%s%s", jstr(o, "fw_version")[0] ? jstr(o, "fw_version") : "-",
                 outdated ? "*" : "");
        printf("%-32s  %-16s  %-10s  %-11s  %-10s  %s\n", jstr(o, "id"), jstr(o, "device_class"),
               fw, jstr(o, "verdict"), seen, jstr(o, "reason")[0] ? jstr(o, "reason") : "-");
    }
    printf("%zu node(s)\n", n);
    if (old > 0)
        printf("* %zu node(s) run an image older than their class's current one (the last "
               "completed OTA campaign's)\n",
               old);
}

static void print_node(json_object *o)
{
    char seen[32], vt[32];
    ago(jint(o, "last_seen"), seen, sizeof(seen));
    ago(jint(o, "verdict_time"), vt, sizeof(vt));
    printf("id            %s\n", jstr(o, "id"));
    printf("device class  %s\n", jstr(o, "device_class"));
    json_object *od;
    bool outdated = json_object_object_get_ex(o, "outdated", &od) && json_object_get_boolean(od);
    printf("firmware      %s%s%s%s\n", jstr(o, "fw_version")[0] ? jstr(o, "fw_version") : "-",
           outdated ? " (older than its class's current image " : "",
           outdated ? jstr(o, "class_current") : "", outdated ? ")" : "");
    printf("verdict       %s (%s)\n", jstr(o, "verdict"), vt);
    printf("reason        %s\n", jstr(o, "reason")[0] ? jstr(o, "reason") : "-");
    printf("tags          %s\n", jstr(o, "tags")[0] ? jstr(o, "tags") : "-");
    printf("token profile %s\n", jstr(o, "profile")[0] ? jstr(o, "profile") : "-");
    printf("last seen     %s\n", seen);
    if (strcmp(jstr(o, "iak"), "hmac-sha256") == 0)
        printf("iak           symmetric (HMAC-SHA256, COSE_Mac0), sealed by the gateway's TPM; "
               "id %s\n",
               jstr(o, "iak_id"));
    else
        printf("iak public    %s\n", jstr(o, "iak_pub"));
}

static void print_status(json_object *o, bool spool)
{
    printf("edge broker   %s\n", jstr(o, "edge"));
    if (json_object_object_get_ex(o, "cloud_endpoint", NULL))
        printf("cloud broker  %s (%s)\n", jstr(o, "cloud"), jstr(o, "cloud_endpoint"));
    else
        printf("cloud broker  %s\n", jstr(o, "cloud"));
    printf("spool         %lld message(s), %lld of %lld bytes, %lld in flight\n",
           (long long)jint(o, "spooled_messages"), (long long)jint(o, "spooled_bytes"),
           (long long)jint(o, "spool_max_bytes"), (long long)jint(o, "inflight"));
    printf("held          %lld message(s), %lld of %lld bytes (verdict pending)\n",
           (long long)jint(o, "held_messages"), (long long)jint(o, "held_bytes"),
           (long long)jint(o, "held_max_bytes"));
    printf("challenges    %lld outstanding of %lld at most, %lld node(s) waiting for one\n",
           (long long)jint(o, "challenges_outstanding"), (long long)jint(o, "challenges_max"),
           (long long)jint(o, "challenges_queued"));
    if (spool)
        printf("oldest        %llds\n", (long long)jint(o, "oldest_age_s"));
    printf("down queue    %lld command(s), %lld of %lld bytes, %lld in flight to the edge\n",
           (long long)jint(o, "down_queued"), (long long)jint(o, "down_bytes"),
           (long long)jint(o, "down_max_bytes"), (long long)jint(o, "down_inflight"));
    json_object *c;
    if (spool)
        printf("down oldest   %llds\n", (long long)jint(o, "down_oldest_age_s"));
    json_object *up;
    if (json_object_object_get_ex(o, "uplink", &up)) {
        double eta = jdouble(up, "drain_eta_s");
        char etas[48];
        if (eta < 0)
            snprintf(etas, sizeof(etas), "unknown (nothing acknowledged lately)");
        else
            snprintf(etas, sizeof(etas), "%.0f s", eta);
        printf("uplink        profile %s, ceiling %lld publish(es)/s, %lld byte(s)/s (0: none)\n",
               jstr(up, "profile"), (long long)jint(up, "max_publish_per_s"),
               (long long)jint(up, "max_bytes_per_s"));
        printf("backlog       %lld message(s), %lld bytes; drain %.1f msg/s (last 10 s), "
               "empty in %s%s%s\n",
               (long long)jint(up, "backlog_messages"), (long long)jint(up, "backlog_bytes"),
               jdouble(up, "drain_rate"), etas, jstr(up, "waiting")[0] ? "; waiting: " : "",
               jstr(up, "waiting"));
        if (json_object_object_get_ex(up, "batch", &c) && json_object_get_boolean(c))
            printf("batches       %lld sent, %.1f message(s) each on average, %lld resent\n",
                   (long long)jint(up, "batches_sent"), jdouble(up, "batch_fill"),
                   (long long)jint(up, "batches_resent"));
    }
    if (json_object_object_get_ex(o, "counters", &c)) {
        printf("%-24s  %s\n", "COUNTER", "VALUE");
        json_object_object_foreach(c, k, v)
        {
            printf("%-24s  %lld\n", k, (long long)json_object_get_int64(v));
        }
    }
}

int main(int argc, char **argv)
{
    const char *sock = getenv("FLEETGW_CONTROL_SOCKET");
    bool as_json = false;
    int i = 1, ret = 2;
    json_object *req = json_object_new_object(), *ans = NULL;
    const char *cmd;

    if (sock == NULL || sock[0] == '\0')
        sock = DEFAULT_SOCKET;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (strcmp(argv[i], "--json") == 0) {
            as_json = true;
        } else if (strcmp(argv[i], "--socket") == 0 && i + 1 < argc) {
            sock = argv[++i];
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            ret = 0;
            goto out;
        } else if (strcmp(argv[i], "--version") == 0) {
            ret = fleetgw_print_version("fleetgwctl");
            goto out;
        } else {
            fprintf(stderr, "fleetgwctl: %s '%s'\n",
                    strcmp(argv[i], "--socket") == 0 ? "missing value for" : "unknown option",
                    argv[i]);
            usage(stderr);
            goto out;
        }
    }
    if (i >= argc) {
        fprintf(stderr, "fleetgwctl: no command\n");
        usage(stderr);
        goto out;
    }
    const char *a = argv[i++];
    const char *b = i < argc ? argv[i] : NULL;
    if (strcmp(a, "check") == 0) {
        ret = run_check(argc, argv, i, as_json);
        goto out;
    }
    if (strcmp(a, "ota") == 0 || strcmp(a, "campaign") == 0) {
        /* OTA images and campaigns (fleetgwctl_ota.c): argv from "ota" / "campaign" on. */
        ret = fleetgwctl_ota(sock, as_json, argc - (i - 1), argv + (i - 1));
        goto out;
    }
    if (strcmp(a, "identity") == 0) {
        /* The TPM identity commands (tpm/): argv[0] is "identity", argv[1] the command. */
        ret = identity_cli_main(argc - (i - 1), argv + (i - 1));
        goto out;
    }
    if (strcmp(a, "status") == 0 && b == NULL) {
        cmd = "status";
    } else if (strcmp(a, "spool") == 0 && b == NULL) {
        cmd = "spool";
    } else if ((strcmp(a, "nodes") == 0 && b == NULL) ||
               (strcmp(a, "node") == 0 && b != NULL && strcmp(b, "list") == 0 && i + 1 == argc)) {
        cmd = "nodes";
    } else if (strcmp(a, "node") == 0 && b != NULL &&
               (strcmp(b, "show") == 0 || strcmp(b, "remove") == 0) && i + 2 == argc) {
        cmd = strcmp(b, "show") == 0 ? "node_show" : "node_remove";
        json_object_object_add(req, "id", json_object_new_string(argv[i + 1]));
    } else if (strcmp(a, "node") == 0 && b != NULL && strcmp(b, "tag") == 0 && i + 3 == argc) {
        /* node tag ID a,b  ("" clears) */
        cmd = "node_tag";
        json_object_object_add(req, "id", json_object_new_string(argv[i + 1]));
        json_object *spec = json_object_new_object();
        json_object_object_add(spec, "tags", json_object_new_string(argv[i + 2]));
        json_object_object_add(req, "spec", spec);
    } else if (strcmp(a, "attest") == 0 && b != NULL && i + 1 == argc) {
        cmd = "attest";
        json_object_object_add(req, "id", json_object_new_string(b));
    } else if (strcmp(a, "node") == 0 && b != NULL && strcmp(b, "add") == 0) {
        char hex[131] = "";
        const char *cls = "generic", *cert = NULL, *ca = NULL, *hkey = NULL, *tcti = NULL;
        cmd = "node_add";
        for (i++; i < argc; i++) {
            if (strcmp(argv[i], "--pub") == 0 && i + 1 < argc) {
                if (pub_from_pem(argv[++i], hex) < 0) {
                    ret = 4;
                    goto out;
                }
            } else if (strcmp(argv[i], "--cert") == 0 && i + 1 < argc) {
                cert = argv[++i];
            } else if (strcmp(argv[i], "--ca") == 0 && i + 1 < argc) {
                ca = argv[++i];
            } else if (strcmp(argv[i], "--pub-hex") == 0 && i + 1 < argc) {
                snprintf(hex, sizeof(hex), "%s", argv[++i]);
            } else if (strcmp(argv[i], "--class") == 0 && i + 1 < argc) {
                cls = argv[++i];
            } else if (strcmp(argv[i], "--hmac-key") == 0 && i + 1 < argc) {
                hkey = argv[++i];
            } else if (strcmp(argv[i], "--tcti") == 0 && i + 1 < argc) {
                tcti = argv[++i];
            } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
                usage(stdout);
                ret = 0;
                goto out;
            } else {
                fprintf(stderr, "fleetgwctl node add: unknown option or missing value '%s'\n",
                        argv[i]);
                usage(stderr);
                goto out;
            }
        }
        if (ca != NULL && cert == NULL) {
            fprintf(stderr, "fleetgwctl: --ca goes with --cert\n");
            goto out;
        }
        if (hkey != NULL && (hex[0] != '\0' || cert != NULL)) {
            fprintf(stderr, "fleetgwctl: give one of --hmac-key, --pub, --pub-hex, --cert\n");
            goto out;
        }
        if (tcti != NULL && hkey == NULL) {
            fprintf(stderr, "fleetgwctl: --tcti goes with --hmac-key\n");
            goto out;
        }
        if (hkey != NULL) {
            static char sealed[2 * TPM_SEAL_BLOB_MAX + 1];
            char id[65];
            if (seal_hmac_key(hkey, tcti, id, sealed) < 0) {
                ret = 4;
                goto out;
            }
            cmd = "node_add_symmetric";
            json_object_object_add(req, "iak_id", json_object_new_string(id));
            json_object_object_add(req, "iak_sealed", json_object_new_string(sealed));
            json_object_object_add(req, "device_class", json_object_new_string(cls));
            goto send;
        }
        if (cert != NULL && (hex[0] != '\0' || pub_from_cert(cert, ca, hex) < 0)) {
            if (hex[0] != '\0')
                fprintf(stderr, "fleetgwctl: give one of --pub, --pub-hex, --cert\n");
            ret = hex[0] != '\0' ? 2 : 4;
            goto out;
        }
        if (hex[0] == '\0') {
            fprintf(stderr,
                    "fleetgwctl: node add needs --pub FILE, --pub-hex HEX or --cert FILE\n");
            goto out;
        }
        json_object_object_add(req, "iak_pub", json_object_new_string(hex));
        json_object_object_add(req, "device_class", json_object_new_string(cls));
    } else {
        fprintf(stderr, "fleetgwctl: unknown command or wrong arguments: %s%s%s\n", a,
                b != NULL ? " " : "", b != NULL ? b : "");
        usage(stderr);
        goto out;
    }
send:
    json_object_object_add(req, "cmd", json_object_new_string(cmd));

    ans = fleetgwctl_call(sock, req, -1);
    if (ans == NULL) {
        ret = 3;
        goto out;
    }
    json_object *ok;
    bool good = json_object_object_get_ex(ans, "ok", &ok) && json_object_get_boolean(ok);
    if (as_json) {
        printf("%s\n", json_object_to_json_string_ext(ans, JSON_C_TO_STRING_PRETTY));
    } else if (!good) {
        fprintf(stderr, "fleetgwctl: %s\n", jstr(ans, "error"));
    } else if (strcmp(cmd, "nodes") == 0) {
        json_object *arr;
        if (json_object_object_get_ex(ans, "nodes", &arr))
            print_node_table(arr);
    } else if (strcmp(cmd, "node_add") == 0 || strcmp(cmd, "node_add_symmetric") == 0 ||
               strcmp(cmd, "node_show") == 0) {
        json_object *n;
        if (strcmp(cmd, "node_show") != 0)
            printf("enrolled:\n");
        if (json_object_object_get_ex(ans, "node", &n))
            print_node(n);
    } else if (strcmp(cmd, "node_tag") == 0) {
        printf("%s tagged '%s'\n", argv[argc - 2], jstr(ans, "tags"));
    } else if (strcmp(cmd, "node_remove") == 0) {
        printf("removed %s\n", argv[argc - 1]);
    } else if (strcmp(cmd, "attest") == 0) {
        printf("challenge sent to %s; `fleetgwctl node show %s` shows the verdict\n",
               argv[argc - 1], argv[argc - 1]);
    } else {
        print_status(ans, strcmp(cmd, "spool") == 0);
    }
    ret = good ? 0 : 1;
out:
    json_object_put(req);
    json_object_put(ans);
    return ret;
}
