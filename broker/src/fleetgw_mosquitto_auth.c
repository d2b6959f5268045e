/* fleetgw-mosquitto-auth.so: the edge broker enforces fleetgwd's node registry (mosquitto 2.0
 * plugin API version 5; MOSQ_EVT_BASIC_AUTH and MOSQ_EVT_ACL_CHECK). One instance per
 * listener (per_listener_settings true): plugin_opt_listener node|gateway. The decisions are
 * fleetgw/auth_policy.h; this file only gathers their inputs:
 *   - node listener: the registry (SQLite, the schema fleetgwd writes), opened read-only
 *     ("file:...?mode=ro", SQLITE_OPEN_READONLY) and queried by primary key at every CONNECT
 *     and every ACL check, so enrol/remove/verdict changes hold at the next packet without a
 *     broker restart (docs/operator-guide.md "Edge broker plugin" has the measured cost). A
 *     registry that cannot be opened or read refuses every node, with a log line. The file
 *     is either the registry itself or the snapshot fleetgwd keeps for the broker
 *     (registry.broker_snapshot: same table, replaced by rename, opened immutable=1); a new
 *     inode under the name is opened again at the next look-up.
 *   - gateway listener: the gateway user and its password file (read once at start). */
#include <errno.h>
#include <fcntl.h>
#include <mosquitto.h>
#include <mosquitto_broker.h>
#include <mosquitto_plugin.h>
#include <openssl/asn1.h>
#include <openssl/objects.h>
#include <openssl/x509.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fleetgw/auth_policy.h"

#define PFX "fleetgw-auth: "

struct plugin {
    mosquitto_plugin_id_t *id;
    struct auth_options opt;
    char password[AUTH_PASSWORD_MAX + 1];
    sqlite3 *db;
    sqlite3_stmt *get;
    int last_open_errno; /* 0 when the last look-up could read the registry */
    dev_t dev;           /* the file opened (stat before the open): a snapshot that fleetgwd */
    ino_t ino;           /* replaced by rename is a new inode, and is opened again */
};

static void registry_close(struct plugin *p)
{
    sqlite3_finalize(p->get);
    p->get = NULL;
    sqlite3_close_v2(p->db);
    p->db = NULL;
}

/* Opens the registry read-only; 0, or -1 after logging why (once per failure streak). */
static int registry_open(struct plugin *p)
{
    char uri[AUTH_OPT_PATH_MAX + 32];
    int rc;
    if (p->get != NULL)
        return 0;
    /* The path is an absolute file name; '?' and '#' would end the URI's path part. */
    if (strpbrk(p->opt.registry, "?#%") != NULL) {
        rc = SQLITE_CANTOPEN;
        goto fail;
    }
    /* The file's identity (node_state re-opens when another file is under the name) and
     * its kind: fleetgwd's own registry is a WAL database (header bytes 18/19 = 2); its
     * snapshot for the broker uses a rollback journal (1) and is never changed in place,
     * only replaced by rename, so SQLite may skip the file locks and change checks of every
     * query (immutable=1), which a live WAL database must not. */
    struct stat st;
    unsigned char hdr[20];
    int fd = open(p->opt.registry, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &st) != 0) {
        if (fd >= 0)
            close(fd);
        rc = SQLITE_CANTOPEN;
        goto fail;
    }
    p->dev = st.st_dev;
    p->ino = st.st_ino;
    bool snapshot =
        pread(fd, hdr, sizeof(hdr), 0) == (ssize_t)sizeof(hdr) && hdr[18] == 1 && hdr[19] == 1;
    close(fd);
    snprintf(uri, sizeof(uri), "file:%s?mode=ro%s", p->opt.registry,
             snapshot ? "&immutable=1" : "");
    rc = sqlite3_open_v2(uri, &p->db, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI | SQLITE_OPEN_NOMUTEX,
                         NULL);
    if (rc == SQLITE_OK) {
        sqlite3_busy_timeout(p->db, 200);
        rc = sqlite3_prepare_v2(p->db, "SELECT verdict FROM nodes WHERE id = ?", -1, &p->get, NULL);
    }
    if (rc == SQLITE_OK) {
        if (p->last_open_errno != 0)
            mosquitto_log_printf(MOSQ_LOG_NOTICE, PFX "registry %s readable again",
                                 p->opt.registry);
        p->last_open_errno = 0;
        return 0;
    }
fail:
    if (p->last_open_errno != rc)
        mosquitto_log_printf(MOSQ_LOG_ERR,
                             PFX "registry %s cannot be read (%s): every node is refused until "
                                 "it can (fail closed)",
                             p->opt.registry,
                             p->db != NULL ? sqlite3_errmsg(p->db) : sqlite3_errstr(rc));
    p->last_open_errno = rc;
    registry_close(p);
    return -1;
}

static enum auth_node_state node_state(struct plugin *p, const char *id)
{
    enum auth_node_state s;
    int rc;
    if (id == NULL)
        return AUTH_NODE_ABSENT;
    if (p->get != NULL) {
        /* fleetgwd's snapshot (registry.broker_snapshot) is replaced, never written in place:
         * a new file under the name is the current registry */
        struct stat st;
        if (stat(p->opt.registry, &st) != 0 || st.st_ino != p->ino || st.st_dev != p->dev)
            registry_close(p);
    }
    if (registry_open(p) < 0)
        return AUTH_NODE_UNREADABLE;
    sqlite3_bind_text(p->get, 1, id, -1, SQLITE_STATIC);
    rc = sqlite3_step(p->get);
    if (rc == SQLITE_ROW)
        s = auth_verdict_state((const char *)sqlite3_column_text(p->get, 0));
    else if (rc == SQLITE_DONE)
        s = AUTH_NODE_ABSENT;
    else {
        mosquitto_log_printf(MOSQ_LOG_ERR,
                             PFX "registry %s: look-up of node %s failed (%s): refused "
                                 "(fail closed)",
                             p->opt.registry, id, sqlite3_errmsg(p->db));
        s = AUTH_NODE_UNREADABLE;
    }
    if (p->get != NULL) {
        sqlite3_reset(p->get);
        sqlite3_clear_bindings(p->get);
    }
    if (s == AUTH_NODE_UNREADABLE) {
        p->last_open_errno = -1;
        registry_close(p); /* reopen at the next look-up (the file may have been replaced) */
    }
    return s;
}

static const char *str_or(const char *s, const char *dflt)
{
    return s != NULL ? s : dflt;
}

/* The common name of the client's certificate (exactly one CN, no NUL inside, at most
 * cap-1 bytes) in cn; 0, or -1 with the reason. The node id check itself is the policy's. */
static int cert_cn(struct mosquitto *client, char *cn, size_t cap, const char **why)
{
    X509 *cert = mosquitto_client_certificate(client);
    X509_NAME *name;
    unsigned char *utf8 = NULL;
    int idx, len, rc = -1;
    if (cert == NULL) {
        *why = "no client certificate";
        return -1;
    }
    name = X509_get_subject_name(cert);
    idx = name != NULL ? X509_NAME_get_index_by_NID(name, NID_commonName, -1) : -1;
    if (idx < 0) {
        *why = "certificate has no common name";
    } else if (X509_NAME_get_index_by_NID(name, NID_commonName, idx) >= 0) {
        *why = "certificate has more than one common name";
    } else if ((len = ASN1_STRING_to_UTF8(
                    &utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, idx)))) < 0) {
        *why = "certificate common name cannot be decoded";
    } else if ((size_t)len >= cap || memchr(utf8, '\0', (size_t)len) != NULL) {
        *why = "certificate common name too long or with a NUL byte";
    } else {
        memcpy(cn, utf8, (size_t)len);
        cn[len] = '\0';
        rc = 0;
    }
    OPENSSL_free(utf8);
    X509_free(cert);
    return rc;
}

/* CONNECT. Node listener: mosquitto 2.0.11 calls no basic-auth plugin for a listener with
 * use_identity_as_username (measured: such a client connects whatever the plugin says), so
 * the node listener runs without it and this callback makes the user name itself: the
 * certificate's CN, whatever user name the client sent. */
static int on_basic_auth(int event, void *event_data, void *userdata)
{
    struct mosquitto_evt_basic_auth *ed = event_data;
    struct plugin *p = userdata;
    struct auth_decision d;
    const char *user = ed->username;
    const char *cid = mosquitto_client_id(ed->client);
    char cn[AUTH_USER_MAX + 1];
    (void)event;
    if (p->opt.listener == AUTH_LISTENER_GATEWAY) {
        bool pw_ok = ed->password != NULL && auth_password_equal(ed->password, p->password);
        d = auth_connect(AUTH_LISTENER_GATEWAY, user, cid, AUTH_NODE_ABSENT, p->opt.gateway_user,
                         pw_ok);
    } else {
        const char *why = NULL;
        if (cert_cn(ed->client, cn, sizeof(cn), &why) != 0) {
            d = (struct auth_decision){false, why};
        } else {
            user = cn;
            d = auth_connect(AUTH_LISTENER_NODE, cn, cid, node_state(p, cn), NULL, false);
            if (d.allow && mosquitto_set_username(ed->client, cn) != MOSQ_ERR_SUCCESS)
                d = (struct auth_decision){false, "cannot set the user name to the certificate CN"};
        }
    }
    if (!d.allow) {
        mosquitto_log_printf(MOSQ_LOG_NOTICE,
                             PFX "CONNECT refused: listener %s user '%s' client '%s': %s",
                             p->opt.listener == AUTH_LISTENER_GATEWAY ? "gateway" : "node",
                             str_or(user, "(none)"), str_or(cid, "(none)"), d.reason);
        return MOSQ_ERR_AUTH;
    }
    return MOSQ_ERR_SUCCESS;
}

static int on_acl_check(int event, void *event_data, void *userdata)
{
    struct mosquitto_evt_acl_check *ed = event_data;
    struct plugin *p = userdata;
    struct auth_decision d;
    enum auth_access a;
    enum auth_node_state s = AUTH_NODE_ABSENT;
    const char *user = mosquitto_client_username(ed->client);
    (void)event;
    switch (ed->access) {
    case MOSQ_ACL_WRITE:
        a = AUTH_PUBLISH;
        break;
    case MOSQ_ACL_READ:
        a = AUTH_READ;
        break;
    case MOSQ_ACL_SUBSCRIBE:
        a = AUTH_SUBSCRIBE;
        break;
    case MOSQ_ACL_UNSUBSCRIBE:
        a = AUTH_UNSUBSCRIBE;
        break;
    default:
        return MOSQ_ERR_ACL_DENIED;
    }
    if (p->opt.listener == AUTH_LISTENER_NODE)
        s = node_state(p, user);
    d = auth_acl(p->opt.listener, user, p->opt.gateway_user, s, a, ed->topic);
    if (!d.allow) {
        mosquitto_log_printf(MOSQ_LOG_NOTICE, PFX "denied: listener %s user '%s' %s '%s': %s",
                             p->opt.listener == AUTH_LISTENER_GATEWAY ? "gateway" : "node",
                             str_or(user, "(none)"),
                             a == AUTH_PUBLISH     ? "publish"
                             : a == AUTH_READ      ? "receive"
                             : a == AUTH_SUBSCRIBE ? "subscribe"
                                                   : "unsubscribe",
                             str_or(ed->topic, ""), d.reason);
        return MOSQ_ERR_ACL_DENIED;
    }
    return MOSQ_ERR_SUCCESS;
}

/* Reads the gateway password file (at most AUTH_PASSWORD_MAX + 2 bytes are meaningful). */
static int read_password(struct plugin *p)
{
    char buf[AUTH_PASSWORD_MAX + 8], err[160];
    struct stat st;
    ssize_t n;
    int fd = open(p->opt.password_file, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        mosquitto_log_printf(MOSQ_LOG_ERR, PFX "plugin_opt_gateway_password_file %s: %s",
                             p->opt.password_file, strerror(errno));
        return -1;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        mosquitto_log_printf(MOSQ_LOG_ERR,
                             PFX "plugin_opt_gateway_password_file %s: not a regular file",
                             p->opt.password_file);
        close(fd);
        return -1;
    }
    if (st.st_mode & 0007) {
        mosquitto_log_printf(MOSQ_LOG_ERR,
                             PFX "plugin_opt_gateway_password_file %s: mode %04o lets every "
                                 "user read it; make it 0640 or stricter",
                             p->opt.password_file, (unsigned)(st.st_mode & 07777));
        close(fd);
        return -1;
    }
    n = read(fd, buf, sizeof(buf));
    close(fd);
    if (n < 0 || auth_password_parse(buf, (size_t)n, p->password, sizeof(p->password), err,
                                     sizeof(err)) != 0) {
        mosquitto_log_printf(MOSQ_LOG_ERR, PFX "plugin_opt_gateway_password_file %s: %s",
                             p->opt.password_file, n < 0 ? strerror(errno) : err);
        explicit_bzero(buf, sizeof(buf));
        return -1;
    }
    explicit_bzero(buf, sizeof(buf));
    return 0;
}

int mosquitto_plugin_version(int supported_version_count, const int *supported_versions)
{
    for (int i = 0; i < supported_version_count; i++)
        if (supported_versions[i] == 5)
            return 5;
    return -1;
}

int mosquitto_plugin_init(mosquitto_plugin_id_t *identifier, void **userdata,
                          struct mosquitto_opt *options, int option_count)
{
    char err[200];
    struct plugin *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return MOSQ_ERR_NOMEM;
    p->id = identifier;
    for (int i = 0; i < option_count; i++) {
        if (auth_option_set(&p->opt, options[i].key, options[i].value, err, sizeof(err)) != 0) {
            mosquitto_log_printf(MOSQ_LOG_ERR, PFX "%s", err);
            free(p);
            return MOSQ_ERR_INVAL;
        }
    }
    if (auth_options_check(&p->opt, err, sizeof(err)) != 0) {
        mosquitto_log_printf(MOSQ_LOG_ERR, PFX "%s", err);
        free(p);
        return MOSQ_ERR_INVAL;
    }
    if (p->opt.listener == AUTH_LISTENER_GATEWAY && read_password(p) != 0) {
        free(p);
        return MOSQ_ERR_INVAL;
    }
    if (p->opt.listener == AUTH_LISTENER_NODE)
        (void)registry_open(p); /* logs now when unreadable; nodes are refused until it is */
    if (mosquitto_callback_register(identifier, MOSQ_EVT_BASIC_AUTH, on_basic_auth, NULL, p) !=
            MOSQ_ERR_SUCCESS ||
        mosquitto_callback_register(identifier, MOSQ_EVT_ACL_CHECK, on_acl_check, NULL, p) !=
            MOSQ_ERR_SUCCESS) {
        mosquitto_log_printf(MOSQ_LOG_ERR, PFX "cannot register the callbacks");
        registry_close(p);
        free(p);
        return MOSQ_ERR_UNKNOWN;
    }
    mosquitto_log_printf(MOSQ_LOG_INFO, PFX "listener %s: %s%s",
                         p->opt.listener == AUTH_LISTENER_GATEWAY ? "gateway" : "node",
                         p->opt.listener == AUTH_LISTENER_GATEWAY ? "only user " : "registry ",
                         p->opt.listener == AUTH_LISTENER_GATEWAY ? p->opt.gateway_user
                                                                  : p->opt.registry);
    *userdata = p;
    return MOSQ_ERR_SUCCESS;
}

int mosquitto_plugin_cleanup(void *userdata, struct mosquitto_opt *options, int option_count)
{
    struct plugin *p = userdata;
    (void)options;
    (void)option_count;
    if (p == NULL)
        return MOSQ_ERR_SUCCESS;
    mosquitto_callback_unregister(p->id, MOSQ_EVT_BASIC_AUTH, on_basic_auth, NULL);
    mosquitto_callback_unregister(p->id, MOSQ_EVT_ACL_CHECK, on_acl_check, NULL);
    registry_close(p);
    explicit_bzero(p->password, sizeof(p->password));
    free(p);
    return MOSQ_ERR_SUCCESS;
}
