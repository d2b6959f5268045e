/* fleetgw operational checks (see fleetgw/check.h): configuration, certificates, brokers,
 * disk. The TPM checks are in check_tpm.c. */
#define _GNU_SOURCE
#include "fleetgw/check.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <fleetgw/tpm_identity.h>
#include <json-c/json.h>
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <poll.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/un.h>
#include <unistd.h>

#include "check_internal.h"
#include "config.h"

void check_set(struct check_result *res, const char *name, enum check_status st, const char *action,
               const char *fmt, ...)
{
    va_list ap;

    memset(res, 0, sizeof(*res));
    snprintf(res->name, sizeof(res->name), "%s", name);
    res->status = st;
    va_start(ap, fmt);
    vsnprintf(res->message, sizeof(res->message), fmt, ap);
    va_end(ap);
    if (action != NULL)
        snprintf(res->action, sizeof(res->action), "%s", action);
}

/* ---- configuration ---------------------------------------------------------------------- */

/* The configuration is the daemon's own: config_load() of daemon/src/config.c, the one table
 * of keys, types and defaults (fleetgwd.conf(5)); nothing here declares a key or a default. */

/* uplink.key as a tpm/ key reference: "handle:0x81xxxxxx" (validated by config_load) or the
 * path of a TSS2 PRIVATE KEY file. */
static void key_ref(const char *key, struct tpm_key_ref *ref)
{
    memset(ref, 0, sizeof(*ref));
    if (strncmp(key, "handle:", 7) == 0)
        ref->handle = (uint32_t)strtoul(key + 7, NULL, 16);
    else
        ref->key_file = key;
}

/* ---- certificates ----------------------------------------------------------------------- */

static void format_time(const ASN1_TIME *t, char *buf, size_t len)
{
    struct tm tm;
    if (ASN1_TIME_to_tm(t, &tm) != 1 || strftime(buf, len, "%Y-%m-%d %H:%M UTC", &tm) == 0)
        snprintf(buf, len, "(unreadable date)");
}

void check_certificate_file(const char *label, const char *path, time_t now, int warn_days,
                            struct check_result *res)
{
    FILE *f = NULL;
    X509 *cert = NULL;
    ASN1_TIME *now_asn1 = NULL;
    char action[512];
    int count = 0;
    /* The worst certificate of the file decides. */
    enum check_status worst = CHECK_OK;
    char worst_msg[400] = "";
    int min_days = -1;

    if (now == 0)
        now = time(NULL);
    if (warn_days <= 0)
        warn_days = CHECK_DEFAULT_WARN_DAYS;
    snprintf(action, sizeof(action),
             "install a valid certificate at %s (or fix the path in the configuration)", path);
    f = fopen(path, "re");
    if (f == NULL) {
        check_set(res, label, CHECK_FAIL, action, "cannot open %s: %s", path, strerror(errno));
        goto out;
    }
    now_asn1 = ASN1_TIME_set(NULL, now);
    if (now_asn1 == NULL) {
        check_set(res, label, CHECK_FAIL, "", "out of memory");
        goto out;
    }
    while ((cert = PEM_read_X509(f, NULL, NULL, NULL)) != NULL) {
        const ASN1_TIME *nb = X509_get0_notBefore(cert);
        const ASN1_TIME *na = X509_get0_notAfter(cert);
        char when[48];
        char subject[160] = "";
        int days = 0, secs = 0;
        count++;
        X509_NAME_oneline(X509_get_subject_name(cert), subject, (int)sizeof(subject));
        if (X509_cmp_time(nb, &now) > 0) {
            format_time(nb, when, sizeof(when));
            worst = CHECK_FAIL;
            snprintf(worst_msg, sizeof(worst_msg), "%s (%s) is not valid before %s", path, subject,
                     when);
        } else if (X509_cmp_time(na, &now) <= 0) {
            format_time(na, when, sizeof(when));
            worst = CHECK_FAIL;
            snprintf(worst_msg, sizeof(worst_msg), "%s (%s) expired on %s", path, subject, when);
        } else if (ASN1_TIME_diff(&days, &secs, now_asn1, na) == 1) {
            if (min_days < 0 || days < min_days)
                min_days = days;
            if (days < warn_days && worst == CHECK_OK) {
                format_time(na, when, sizeof(when));
                worst = CHECK_WARN;
                snprintf(worst_msg, sizeof(worst_msg), "%s (%s) expires in %d day%s (%s)", path,
                         subject, days, days == 1 ? "" : "s", when);
            }
        }
        X509_free(cert);
        cert = NULL;
    }
    ERR_clear_error();
    if (count == 0) {
        check_set(res, label, CHECK_FAIL, action, "%s holds no PEM certificate", path);
        goto out;
    }
    if (worst == CHECK_FAIL) {
        check_set(res, label, CHECK_FAIL, action, "%s", worst_msg);
    } else if (worst == CHECK_WARN) {
        snprintf(action, sizeof(action),
                 "renew it before it expires (fleetgwd cannot connect with an expired "
                 "certificate); warnings start %d days ahead",
                 warn_days);
        check_set(res, label, CHECK_WARN, action, "%s", worst_msg);
    } else {
        check_set(res, label, CHECK_OK, NULL,
                  "%s: %d certificate%s valid, the first expires in "
                  "%d days",
                  path, count, count == 1 ? "" : "s", min_days);
    }
out:
    ASN1_TIME_free(now_asn1);
    if (f != NULL)
        fclose(f);
}

/* ---- brokers ---------------------------------------------------------------------------- */

/* Non-blocking connect with a timeout; 0 or -errno. */
static int connect_timeout(int fd, const struct sockaddr *sa, socklen_t len, int timeout_ms)
{
    if (connect(fd, sa, len) == 0)
        return 0;
    if (errno != EINPROGRESS)
        return -errno;
    struct pollfd p = {.fd = fd, .events = POLLOUT};
    int r;
    do {
        r = poll(&p, 1, timeout_ms);
    } while (r < 0 && errno == EINTR);
    if (r < 0)
        return -errno;
    if (r == 0)
        return -ETIMEDOUT;
    int soerr = 0;
    socklen_t sl = sizeof(soerr);
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0)
        return -errno;
    return soerr == 0 ? 0 : -soerr;
}

void check_tcp(const char *label, const char *host, int port, int timeout_ms,
               struct check_result *res)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *ai = NULL;
    char service[8];
    char action[512];
    int last = -EHOSTUNREACH;

    if (timeout_ms <= 0)
        timeout_ms = CHECK_DEFAULT_TIMEOUT_MS;
    snprintf(action, sizeof(action),
             "check that the broker runs and listens on %s port %d, the network and firewall "
             "between here and it, and any IPAddressAllow= drop-in of fleetgwd.service",
             host, port);
    if (host[0] == '\0' || port <= 0 || port > 65535) {
        check_set(res, label, CHECK_FAIL, "set its host and port in the configuration",
                  "no host/port configured");
        return;
    }
    snprintf(service, sizeof(service), "%d", port);
    int gr = getaddrinfo(host, service, &hints, &ai);
    if (gr != 0) {
        check_set(res, label, CHECK_FAIL, "check the host name and the resolver (/etc/resolv.conf)",
                  "cannot resolve %s: %s", host, gai_strerror(gr));
        return;
    }
    for (struct addrinfo *a = ai; a != NULL; a = a->ai_next) {
        int fd =
            socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, a->ai_protocol);
        if (fd < 0) {
            last = -errno;
            continue;
        }
        last = connect_timeout(fd, a->ai_addr, a->ai_addrlen, timeout_ms);
        close(fd);
        if (last == 0)
            break;
    }
    freeaddrinfo(ai);
    if (last == 0)
        check_set(res, label, CHECK_OK, NULL, "%s port %d accepts connections", host, port);
    else
        check_set(res, label, CHECK_FAIL, action, "cannot connect to %s port %d: %s", host, port,
                  strerror(-last));
}

void check_tcp_endpoints(const char *label, const struct check_endpoint *eps, size_t n,
                         int timeout_ms, struct check_result *res)
{
    if (n <= 1) {
        check_tcp(label, n == 1 ? eps[0].host : "", n == 1 ? eps[0].port : 0, timeout_ms, res);
        return;
    }
    /* Every endpoint of the list is probed: fleetgwd fails over to the next one, so one that
     * does not answer is a warning while another does, and a failure only when none does. */
    size_t up = 0;
    struct check_result one, first_bad = {0};
    bool have_bad = false;
    char down[256] = "";
    size_t dlen = 0;
    for (size_t i = 0; i < n; i++) {
        check_tcp(label, eps[i].host, eps[i].port, timeout_ms, &one);
        if (one.status == CHECK_OK) {
            up++;
            continue;
        }
        if (!have_bad) {
            first_bad = one;
            have_bad = true;
        }
        int w = snprintf(down + dlen, sizeof(down) - dlen, "%s%s:%d", dlen ? ", " : "", eps[i].host,
                         eps[i].port);
        if (w > 0 && (size_t)w < sizeof(down) - dlen)
            dlen += (size_t)w;
    }
    if (up == n)
        check_set(res, label, CHECK_OK, NULL,
                  "all %zu endpoints of uplink.hosts accept connections", n);
    else
        check_set(res, label, up > 0 ? CHECK_WARN : CHECK_FAIL, first_bad.action,
                  "%zu of %zu endpoints of uplink.hosts accept connections; not %s (first: %s)", up,
                  n, down, first_bad.message);
}

void check_unix(const char *label, const char *path, struct check_result *res)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    char action[512];

    snprintf(action, sizeof(action),
             "check that mosquitto runs with the fleetgw edge listener "
             "(/usr/share/doc/fleetgw/examples/mosquitto/) and that the socket %s belongs to "
             "group fleetgw with mode 0660 (mosquitto drop-in)",
             path);
    if (strlen(path) >= sizeof(sa.sun_path)) {
        check_set(res, label, CHECK_FAIL, "use a shorter socket path", "socket path too long");
        return;
    }
    memcpy(sa.sun_path, path, strlen(path) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        check_set(res, label, CHECK_FAIL, "", "socket(): %s", strerror(errno));
        return;
    }
    int r = connect(fd, (const struct sockaddr *)&sa, sizeof(sa)) == 0 ? 0 : -errno;
    close(fd);
    if (r == 0)
        check_set(res, label, CHECK_OK, NULL, "%s accepts connections", path);
    else
        check_set(res, label, CHECK_FAIL, action, "cannot connect to %s: %s", path, strerror(-r));
}

/* ---- disk ------------------------------------------------------------------------------- */

static void human(int64_t bytes, char *buf, size_t len)
{
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = (double)bytes;
    size_t u = 0;
    while (v >= 1024.0 && u + 1 < sizeof(units) / sizeof(units[0])) {
        v /= 1024.0;
        u++;
    }
    snprintf(buf, len, u == 0 ? "%.0f %s" : "%.1f %s", v, units[u]);
}

void check_disk(const char *spool_path, int64_t max_bytes, struct check_result *res)
{
    char dir[1024];
    struct statvfs vfs;
    struct stat st;
    int64_t used = 0;
    char h_free[32], h_need[32], h_max[32];

    snprintf(dir, sizeof(dir), "%s", spool_path);
    char *slash = strrchr(dir, '/');
    if (slash == NULL || spool_path[0] != '/') {
        check_set(res, "disk", CHECK_FAIL, "spool.path must be an absolute path",
                  "spool.path '%s' is not absolute", spool_path);
        return;
    }
    if (slash == dir)
        slash[1] = '\0';
    else
        *slash = '\0';
    if (statvfs(dir, &vfs) != 0) {
        check_set(res, "disk", CHECK_FAIL,
                  "create the state directory (systemd-tmpfiles --create fleetgw.conf, or "
                  "reinstall the package)",
                  "cannot inspect %s: %s", dir, strerror(errno));
        return;
    }
    /* The spool database and its SQLite journal files. */
    static const char *const suffix[] = {"", "-wal", "-shm", "-journal"};
    for (size_t i = 0; i < sizeof(suffix) / sizeof(suffix[0]); i++) {
        char p[1100];
        snprintf(p, sizeof(p), "%s%s", spool_path, suffix[i]);
        if (stat(p, &st) == 0 && S_ISREG(st.st_mode))
            used += (int64_t)st.st_blocks * 512;
    }
    uint64_t avail_u = (uint64_t)vfs.f_bavail * (uint64_t)vfs.f_frsize;
    int64_t avail = avail_u > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)avail_u;
    int64_t need = max_bytes > used ? max_bytes - used : 0;
    human(avail, h_free, sizeof(h_free));
    human(need, h_need, sizeof(h_need));
    human(max_bytes, h_max, sizeof(h_max));
    if (avail < need)
        check_set(res, "disk", CHECK_FAIL,
                  "free space on that file system or lower spool.max_bytes (or "
                  "spool.down_max_bytes): when the disk is full fleetgwd refuses new messages",
                  "%s has %s free, the spool may still grow by %s (spool.max_bytes + "
                  "spool.down_max_bytes: %s)",
                  dir, h_free, h_need, h_max);
    else
        check_set(res, "disk", CHECK_OK, NULL, "%s has %s free, the spool needs at most %s more",
                  dir, h_free, h_need);
}

/* ---- the whole run ---------------------------------------------------------------------- */

static struct check_result *next_result(struct check_list *rep)
{
    if (rep->count >= CHECK_MAX_RESULTS)
        return NULL;
    return &rep->results[rep->count++];
}

int check_collect(const struct check_options *opt, struct check_list *rep)
{
    struct check_options o = {0};
    struct config *c = NULL, *full = NULL;
    struct config_error err;
    struct check_result *r;

    if (rep == NULL)
        return -EINVAL;
    memset(rep, 0, sizeof(*rep));
    if (opt != NULL)
        o = *opt;
    if (o.config_path == NULL)
        o.config_path = CHECK_DEFAULT_CONFIG;
    if (o.now == 0)
        o.now = time(NULL);

    c = calloc(2, sizeof(*c));
    if (c == NULL)
        return -ENOMEM;
    full = c + 1;
    r = next_result(rep);
    /* Every value first (the other checks need them), then the files too, as fleetgwd does:
     * an unreadable certificate fails "config" here and its own check below. */
    if (config_load_opts(o.config_path, false, c, &err) < 0) {
        check_set(r, "config", CHECK_FAIL,
                  "fix the file (fleetgwd.conf(5) documents every key); the other checks need it",
                  "%s (fleetgwd would exit %d)", err.message, (int)err.exit_code);
        goto out;
    }
    if (config_load(o.config_path, full, &err) < 0)
        check_set(r, "config", CHECK_FAIL, "fix the file (fleetgwd.conf(5) documents every key)",
                  "%s (fleetgwd would exit %d)", err.message, (int)err.exit_code);
    else if (!full->attestation.required)
        check_set(r, "config", CHECK_WARN,
                  "remove \"required\": false (attestation is required by default) and give "
                  "attestation.reference_file or attestation.image_dir",
                  "%s is valid, but attestation.required is false: every node on a valid topic "
                  "is relayed without attestation",
                  o.config_path);
    else
        check_set(r, "config", CHECK_OK, NULL, "%s is valid", o.config_path);

    /* TPM and identity. */
    struct tpm_key_ref ref;
    key_ref(c->uplink.key, &ref);
    struct check_result *tpm = next_result(rep);
    struct check_result *ident = next_result(rep);
    if (c->uplink.tcti[0] == '\0') {
        check_set(tpm, "tpm", CHECK_WARN,
                  "keep the gateway key in the TPM: set uplink.tcti and uplink.key = "
                  "\"handle:0x81000001\"",
                  "uplink.tcti is empty: the TPM is not used");
        check_set(ident, "identity", CHECK_WARN,
                  "create the key in the TPM (`fleetgwctl identity init`) and set uplink.key to "
                  "its persistent handle",
                  "uplink.key '%s' is a software key file, not a TPM-held key", c->uplink.key);
    } else {
        check_tpm(c->uplink.tcti, &ref, c->uplink.cert_file, tpm, ident);
    }

    /* Certificates (both are required keys of the configuration). */
    r = next_result(rep);
    check_certificate_file("certificate", c->uplink.cert_file, o.now, o.warn_days, r);
    r = next_result(rep);
    check_certificate_file("cloud CA", c->uplink.ca_file, o.now, o.warn_days, r);

    /* Brokers. */
    r = next_result(rep);
    struct check_endpoint eps[CONFIG_HOSTS_MAX];
    size_t n_eps = 0;
    for (int i = 0; i < c->uplink.n_hosts && n_eps < CONFIG_HOSTS_MAX; i++, n_eps++) {
        eps[n_eps].host = c->uplink.hosts[i].host;
        eps[n_eps].port = c->uplink.hosts[i].port;
    }
    if (n_eps == 0) { /* a configuration of one host/port */
        eps[0].host = c->uplink.host;
        eps[0].port = c->uplink.port;
        n_eps = 1;
    }
    check_tcp_endpoints("cloud broker", eps, n_eps, o.timeout_ms, r);
    r = next_result(rep);
    if (c->edge.socket[0] != '\0')
        check_unix("edge broker", c->edge.socket, r);
    else
        check_tcp("edge broker", c->edge.host, c->edge.port, o.timeout_ms, r);

    /* Disk: the spool database holds both queues, each with its own budget. */
    r = next_result(rep);
    check_disk(c->spool.path, c->spool.max_bytes + c->spool.down_max_bytes, r);

    /* The edge broker plugin's copy of the registry, when fleetgwd keeps one. */
    if (c->registry.broker_snapshot[0] != '\0' && (r = next_result(rep)) != NULL)
        check_broker_snapshot(c->registry.broker_snapshot, CHECK_BROKER_USER, o.now, r);
out:
    free(c);
    return 0;
}

void check_broker_snapshot(const char *path, const char *broker_user, time_t now,
                           struct check_result *res)
{
    struct stat st;
    const char *label = "broker snapshot";
    if (stat(path, &st) != 0) {
        if (errno == ENOENT)
            check_set(res, label, CHECK_WARN,
                      "start fleetgwd (it writes the snapshot at start); if it runs, its log "
                      "says why it cannot (REASON=broker_snapshot)",
                      "%s does not exist: an edge broker with the fleetgw plugin reading it "
                      "refuses every node",
                      path);
        else
            check_set(res, label, CHECK_FAIL, "check the directory's owner and mode",
                      "cannot inspect %s: %s", path, strerror(errno));
        return;
    }
    if (!S_ISREG(st.st_mode)) {
        check_set(res, label, CHECK_FAIL, "remove it; fleetgwd writes a regular file there",
                  "%s is not a regular file", path);
        return;
    }
    struct group *g = getgrgid(st.st_gid);
    const char *gname = g != NULL ? g->gr_name : "?";
    if ((st.st_mode & 0040) == 0) {
        check_set(res, label, CHECK_FAIL,
                  "let fleetgwd write it again (restart fleetgwd): it makes the file 0640",
                  "%s has mode %04o: its group (%s) cannot read it, nor can the broker", path,
                  (unsigned)(st.st_mode & 07777), gname);
        return;
    }
    struct passwd *pw = broker_user != NULL ? getpwnam(broker_user) : NULL;
    bool member = pw != NULL && pw->pw_gid == st.st_gid;
    for (char **m = g != NULL ? g->gr_mem : NULL; !member && m != NULL && *m != NULL; m++)
        member = strcmp(*m, broker_user) == 0;
    long long age = now > st.st_mtime ? (long long)(now - st.st_mtime) : 0;
    if (pw != NULL && !member) {
        char action[256];
        snprintf(action, sizeof(action),
                 "usermod -a -G %s %s, then restart the broker (systemctl restart mosquitto)",
                 gname, broker_user);
        check_set(res, label, CHECK_WARN, action,
                  "%s is readable by group %s, which user %s is not in: the broker cannot read "
                  "it and refuses every node",
                  path, gname, broker_user);
        return;
    }
    char who[96] = "";
    if (pw != NULL)
        snprintf(who, sizeof(who), ", which user %s is in", broker_user);
    check_set(res, label, CHECK_OK, NULL, "%s written %lld s ago, readable by group %s%s", path,
              age, gname, who);
}

int check_exit_code(const struct check_list *rep)
{
    int code = CHECK_EXIT_OK;
    for (size_t i = 0; i < rep->count; i++) {
        if (rep->results[i].status == CHECK_FAIL)
            return CHECK_EXIT_FAIL;
        if (rep->results[i].status == CHECK_WARN)
            code = CHECK_EXIT_WARN;
    }
    return code;
}

static const char *status_word(enum check_status s, int json)
{
    switch (s) {
    case CHECK_OK:
        return json ? "ok" : "OK";
    case CHECK_WARN:
        return json ? "warn" : "WARN";
    case CHECK_FAIL:
        break;
    }
    return json ? "fail" : "FAIL";
}

static int print_json(const struct check_list *rep, FILE *out)
{
    int ret = -ENOMEM;
    json_object *root = json_object_new_object();
    json_object *arr = json_object_new_array();

    if (root == NULL || arr == NULL)
        goto out;
    for (size_t i = 0; i < rep->count; i++) {
        const struct check_result *c = &rep->results[i];
        json_object *o = json_object_new_object();
        if (o == NULL || json_object_array_add(arr, o) != 0) {
            json_object_put(o);
            goto out;
        }
        if (json_object_object_add(o, "name", json_object_new_string(c->name)) != 0 ||
            json_object_object_add(o, "status",
                                   json_object_new_string(status_word(c->status, 1))) != 0 ||
            json_object_object_add(o, "message", json_object_new_string(c->message)) != 0 ||
            json_object_object_add(o, "action", json_object_new_string(c->action)) != 0)
            goto out;
    }
    if (json_object_object_add(root, "ok",
                               json_object_new_boolean(check_exit_code(rep) == CHECK_EXIT_OK)) != 0)
        goto out;
    if (json_object_object_add(root, "checks", arr) != 0)
        goto out;
    arr = NULL;
    ret = fprintf(out, "%s\n", json_object_to_json_string_ext(root, JSON_C_TO_STRING_PLAIN)) < 0
              ? -EIO
              : 0;
out:
    json_object_put(arr);
    json_object_put(root);
    return ret;
}

int check_print(const struct check_list *rep, int json, FILE *out)
{
    if (rep == NULL || out == NULL)
        return -EINVAL;
    if (json)
        return print_json(rep, out);
    for (size_t i = 0; i < rep->count; i++) {
        const struct check_result *c = &rep->results[i];
        if (fprintf(out, "%-4s  %-12s  %s\n", status_word(c->status, 0), c->name, c->message) < 0)
            return -EIO;
        if (c->status != CHECK_OK && c->action[0] != '\0' &&
            fprintf(out, "      %-12s  -> %s\n", "", c->action) < 0)
            return -EIO;
    }
    return fflush(out) == 0 ? 0 : -EIO;
}

int check_run(const char *config_path, int json, FILE *out)
{
    struct check_options opt = {.config_path = config_path};
    struct check_list *rep = calloc(1, sizeof(*rep));
    int code = CHECK_EXIT_ERROR;

    if (rep == NULL || out == NULL)
        goto out;
    if (check_collect(&opt, rep) != 0)
        goto out;
    if (check_print(rep, json, out) != 0)
        goto out;
    code = check_exit_code(rep);
out:
    free(rep);
    return code;
}
