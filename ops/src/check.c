/* fleetgw operational checks (see fleetgw/check.h): configuration, certificates, brokers,
 * disk. The TPM checks are in check_tpm.c. */
#define _GNU_SOURCE
#include "fleetgw/check.h"

#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <poll.h>
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

struct check_config {
    char uplink_host[256];
    int uplink_port;
    char ca_file[1024];
    char cert_file[1024];
    char key[1024];
    char tcti[256];
    char edge_socket[108];
    char edge_host[256];
    int edge_port;
    char spool_path[1024];
    int64_t spool_max_bytes;
    int64_t down_max_bytes;
};

static const char *const known_sections[] = {"edge",     "uplink",  "spool", "limits",
                                             "registry", "control", "log",   "attestation"};

static json_object *section_key(json_object *root, const char *section, const char *key)
{
    json_object *sec = NULL, *v = NULL;
    if (!json_object_object_get_ex(root, section, &sec) ||
        json_object_get_type(sec) != json_type_object)
        return NULL;
    if (!json_object_object_get_ex(sec, key, &v))
        return NULL;
    return v;
}

/* Copies section.key (a string) into buf; false when absent or not a string or too long. */
static bool get_str(json_object *root, const char *section, const char *key, char *buf, size_t len)
{
    json_object *v = section_key(root, section, key);
    if (v == NULL || json_object_get_type(v) != json_type_string)
        return false;
    const char *s = json_object_get_string(v);
    if (strlen(s) >= len)
        return false;
    snprintf(buf, len, "%s", s);
    return true;
}

static bool get_int(json_object *root, const char *section, const char *key, int64_t *out)
{
    json_object *v = section_key(root, section, key);
    if (v == NULL || json_object_get_type(v) != json_type_int)
        return false;
    *out = json_object_get_int64(v);
    return true;
}

/* Reads the file (regular, at most CHECK_MAX_CONFIG_BYTES) and parses strict JSON. */
static json_object *load_json(const char *path, char *why, size_t why_len)
{
    json_object *root = NULL;
    json_tokener *tok = NULL;
    char *text = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    struct stat st;

    if (fd < 0) {
        snprintf(why, why_len, "cannot open %s: %s", path, strerror(errno));
        goto out;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(why, why_len, "%s is not a regular file", path);
        goto out;
    }
    if (st.st_size > CHECK_MAX_CONFIG_BYTES) {
        snprintf(why, why_len, "%s is larger than %d bytes", path, CHECK_MAX_CONFIG_BYTES);
        goto out;
    }
    size_t len = (size_t)st.st_size;
    text = malloc(len + 1);
    if (text == NULL) {
        snprintf(why, why_len, "out of memory");
        goto out;
    }
    size_t got = 0;
    while (got < len) {
        ssize_t n = read(fd, text + got, len - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            snprintf(why, why_len, "cannot read %s: %s", path, n < 0 ? strerror(errno) : "short");
            goto out;
        }
        got += (size_t)n;
    }
    text[len] = '\0';
    tok = json_tokener_new_ex(16);
    if (tok == NULL) {
        snprintf(why, why_len, "out of memory");
        goto out;
    }
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
    root = json_tokener_parse_ex(tok, text, (int)len);
    enum json_tokener_error jerr = json_tokener_get_error(tok);
    size_t end = json_tokener_get_parse_end(tok);
    const char *reason = NULL;
    if (root == NULL || jerr != json_tokener_success) {
        reason = json_tokener_error_desc(
            jerr == json_tokener_continue ? json_tokener_error_parse_eof : jerr);
    } else {
        /* Only white space may follow the object. */
        for (size_t i = end; i < len && reason == NULL; i++)
            if (text[i] != ' ' && text[i] != '\n' && text[i] != '\t' && text[i] != '\r')
                reason = "text after the object";
    }
    if (reason != NULL) {
        unsigned line = 1;
        for (size_t i = 0; i < end && i < len; i++)
            line += text[i] == '\n';
        json_object_put(root);
        root = NULL;
        snprintf(why, why_len, "%s:%u: not valid JSON: %s", path, line, reason);
        goto out;
    }
    if (json_object_get_type(root) != json_type_object) {
        json_object_put(root);
        root = NULL;
        snprintf(why, why_len, "%s: the configuration must be one JSON object", path);
    }
out:
    if (tok != NULL)
        json_tokener_free(tok);
    free(text);
    if (fd >= 0)
        close(fd);
    return root;
}

/* The structural check used when no validator is given: known sections, required keys
 * present with the right types. fleetgwd --check-config does the full validation. */
static bool structural_check(json_object *root, char *why, size_t why_len)
{
    static const struct {
        const char *section, *key;
        enum json_type type;
    } required[] = {
        {"uplink", "host", json_type_string},    {"uplink", "port", json_type_int},
        {"uplink", "ca_file", json_type_string}, {"uplink", "cert_file", json_type_string},
        {"uplink", "key", json_type_string},     {"uplink", "client_id", json_type_string},
    };
    json_object_object_foreach(root, name, val)
    {
        bool known = false;
        for (size_t i = 0; i < sizeof(known_sections) / sizeof(known_sections[0]); i++)
            known = known || strcmp(name, known_sections[i]) == 0;
        if (!known) {
            snprintf(why, why_len, "unknown section '%s'", name);
            return false;
        }
        if (json_object_get_type(val) != json_type_object) {
            snprintf(why, why_len, "section '%s' must be an object", name);
            return false;
        }
    }
    for (size_t i = 0; i < sizeof(required) / sizeof(required[0]); i++) {
        json_object *v = section_key(root, required[i].section, required[i].key);
        if (v == NULL) {
            snprintf(why, why_len, "required key '%s.%s' is missing", required[i].section,
                     required[i].key);
            return false;
        }
        if (json_object_get_type(v) != required[i].type) {
            snprintf(why, why_len, "key '%s.%s' must be %s", required[i].section, required[i].key,
                     required[i].type == json_type_int ? "an integer" : "a string");
            return false;
        }
    }
    return true;
}

static void extract(json_object *root, struct check_config *c)
{
    int64_t v;

    memset(c, 0, sizeof(*c));
    /* Defaults of fleetgwd (fleetgwd.conf(5)). */
    snprintf(c->spool_path, sizeof(c->spool_path), "/var/lib/fleetgw/spool.db");
    c->spool_max_bytes = 256LL * 1024 * 1024;
    c->down_max_bytes = 16LL * 1024 * 1024;
    get_str(root, "uplink", "host", c->uplink_host, sizeof(c->uplink_host));
    if (get_int(root, "uplink", "port", &v) && v > 0 && v <= 65535)
        c->uplink_port = (int)v;
    get_str(root, "uplink", "ca_file", c->ca_file, sizeof(c->ca_file));
    get_str(root, "uplink", "cert_file", c->cert_file, sizeof(c->cert_file));
    get_str(root, "uplink", "key", c->key, sizeof(c->key));
    get_str(root, "uplink", "tcti", c->tcti, sizeof(c->tcti));
    get_str(root, "edge", "socket", c->edge_socket, sizeof(c->edge_socket));
    get_str(root, "edge", "host", c->edge_host, sizeof(c->edge_host));
    if (get_int(root, "edge", "port", &v) && v > 0 && v <= 65535)
        c->edge_port = (int)v;
    get_str(root, "spool", "path", c->spool_path, sizeof(c->spool_path));
    if (get_int(root, "spool", "max_bytes", &v) && v > 0)
        c->spool_max_bytes = v;
    if (get_int(root, "spool", "down_max_bytes", &v) && v > 0)
        c->down_max_bytes = v;
}

/* handle:0x81xxxxxx -> the handle, or 0. */
static uint32_t parse_handle(const char *key)
{
    if (strncmp(key, "handle:0x", 9) != 0)
        return 0;
    char *end = NULL;
    errno = 0;
    unsigned long h = strtoul(key + 9, &end, 16);
    if (errno != 0 || end == key + 9 || *end != '\0' || h < 0x81000000UL || h > 0x81ffffffUL)
        return 0;
    return (uint32_t)h;
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
    struct check_config c;
    json_object *root = NULL;
    char why[700] = "";
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

    r = next_result(rep);
    root = load_json(o.config_path, why, sizeof(why));
    if (root == NULL) {
        check_set(r, "config", CHECK_FAIL,
                  "fix the file (fleetgwd.conf(5) documents every key); the other checks need it",
                  "%s", why);
        return 0;
    }
    bool valid;
    if (o.validate != NULL)
        valid = o.validate(o.config_path, why, sizeof(why)) == 0;
    else
        valid = structural_check(root, why, sizeof(why));
    if (valid)
        check_set(r, "config", CHECK_OK, NULL, "%s is valid%s", o.config_path,
                  o.validate != NULL ? "" : " (structure; fleetgwd --check-config checks values)");
    else
        check_set(r, "config", CHECK_FAIL, "fix the file (fleetgwd.conf(5) documents every key)",
                  "%s: %s", o.config_path, why);
    extract(root, &c);
    json_object_put(root);

    /* TPM and identity. */
    uint32_t handle = parse_handle(c.key);
    struct check_result *tpm = next_result(rep);
    struct check_result *ident = next_result(rep);
    if (handle == 0) {
        check_set(tpm, "tpm", CHECK_WARN,
                  "keep the gateway key in the TPM: uplink.key = \"handle:0x81000001\"",
                  "uplink.key is not a TPM handle: the TPM is not used");
        check_set(ident, "identity", c.key[0] != '\0' ? CHECK_WARN : CHECK_FAIL,
                  "create the key in the TPM and set uplink.key to its persistent handle",
                  "uplink.key '%s' is a key file, not a TPM-held key", c.key);
    } else if (c.tcti[0] == '\0') {
        check_set(tpm, "tpm", CHECK_FAIL, "set uplink.tcti (device:/dev/tpmrm0 on hardware)",
                  "uplink.tcti is not set");
        check_set(ident, "identity", CHECK_FAIL, "set uplink.tcti first",
                  "cannot look for key 0x%08x without a TPM", (unsigned)handle);
    } else {
        check_tpm(c.tcti, handle, c.cert_file[0] != '\0' ? c.cert_file : NULL, tpm, ident);
    }

    /* Certificates. */
    r = next_result(rep);
    if (c.cert_file[0] != '\0')
        check_certificate_file("certificate", c.cert_file, o.now, o.warn_days, r);
    else
        check_set(r, "certificate", CHECK_FAIL, "set uplink.cert_file", "no gateway certificate");
    r = next_result(rep);
    if (c.ca_file[0] != '\0')
        check_certificate_file("cloud CA", c.ca_file, o.now, o.warn_days, r);
    else
        check_set(r, "cloud CA", CHECK_FAIL, "set uplink.ca_file", "no CA for the cloud broker");

    /* Brokers. */
    r = next_result(rep);
    check_tcp("cloud broker", c.uplink_host, c.uplink_port, o.timeout_ms, r);
    r = next_result(rep);
    if (c.edge_socket[0] != '\0')
        check_unix("edge broker", c.edge_socket, r);
    else if (c.edge_host[0] != '\0')
        check_tcp("edge broker", c.edge_host, c.edge_port, o.timeout_ms, r);
    else
        check_unix("edge broker", CHECK_DEFAULT_EDGE_SOCKET, r);

    /* Disk. */
    r = next_result(rep);
    /* The spool database holds both queues, each with its own budget. */
    check_disk(c.spool_path, c.spool_max_bytes + c.down_max_bytes, r);
    return 0;
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
