#define _GNU_SOURCE
#include "config.h"
#include "config_internal.h"
#include "jsonutil.h"
#include "readfile.h"

#include <errno.h>
#include <fcntl.h>
#include <fleetgw/msg.h>
#include <fleetgw/token.h>
#include <json-c/json.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

enum key_type {
    KT_STR,      /* free string, 1..size-1 bytes (or empty when allowed) */
    KT_PATH,     /* absolute path */
    KT_CERT,     /* absolute path to a file that must be readable */
    KT_KEY,      /* "handle:0x8100xxxx" or a readable file */
    KT_INT,      /* integer in [min, max] */
    KT_INT64,    /* 64-bit integer in [min, max] */
    KT_LEVEL,    /* log level name */
    KT_PREFIX,   /* MQTT topic prefix: no wildcards, no leading/trailing '/' */
    KT_CLIENT,   /* MQTT client id: 1..23+ printable, no '/' '+' '#' */
    KT_BOOL,     /* true / false */
    KT_PROFILES, /* non-empty array of PSA token profile identifiers -> bit mask (unsigned) */
    KT_HOSTS,    /* non-empty array of {"host": ..., "port": ...} -> uplink.hosts, n_hosts */
};

struct key_spec {
    const char *section;
    const char *key;
    enum key_type type;
    size_t offset;
    size_t size; /* buffer size for strings */
    long long min, max;
    bool required;
    bool reloadable; /* SIGHUP applies a change at once (config_reload_apply) */
};

/* R: reloadable on SIGHUP; F: fixed until the next restart. */
#define R true
#define F false
#define STR(sec, k, t, req, rel)                                                                   \
    {                                                                                              \
#sec, #k, t, offsetof(struct config, sec.k), sizeof(((struct config *)0)->sec.k), 0, 0,    \
            req, rel                                                                               \
    }
#define INT(sec, k, lo, hi, rel)                                                                   \
    {                                                                                              \
#sec, #k, KT_INT, offsetof(struct config, sec.k), sizeof(int), lo, hi, false, rel          \
    }
#define INT_REQ(sec, k, lo, hi, rel)                                                               \
    {                                                                                              \
#sec, #k, KT_INT, offsetof(struct config, sec.k), sizeof(int), lo, hi, true, rel           \
    }
#define INT64(sec, k, lo, hi, rel)                                                                 \
    {                                                                                              \
#sec, #k, KT_INT64, offsetof(struct config, sec.k), sizeof(int64_t), lo, hi, false, rel    \
    }

static const struct key_spec config_keys[] = {
    /* The broker connections are set up once: a change needs a restart. */
    STR(edge, socket, KT_PATH, false, F),
    STR(edge, host, KT_STR, false, F),
    INT(edge, port, 1, 65535, F),
    STR(edge, client_id, KT_CLIENT, false, F),
    STR(edge, username, KT_STR, false, F),
    STR(edge, password_file, KT_CERT, false, F),
    INT(edge, keepalive, 5, 3600, F),

    /* uplink.host + uplink.port, or uplink.hosts (validate_whole requires one of them) */
    STR(uplink, host, KT_STR, false, F),
    INT(uplink, port, 1, 65535, F),
    {"uplink", "hosts", KT_HOSTS, offsetof(struct config, uplink.hosts),
     sizeof(((struct config *)0)->uplink.hosts), 1, CONFIG_HOSTS_MAX, false, F},
    STR(uplink, server_name, KT_STR, false, F),
    STR(uplink, ca_file, KT_CERT, true, F),
    STR(uplink, cert_file, KT_CERT, true, F),
    STR(uplink, key, KT_KEY, true, F),
    STR(uplink, tcti, KT_STR, false, F),
    STR(uplink, client_id, KT_CLIENT, true, F),
    STR(uplink, topic_prefix, KT_PREFIX, false, F),
    STR(uplink, service, KT_STR, false, F),
    STR(uplink, profile, KT_STR, false, F),
    INT(uplink, max_publish_per_s, 0, 1000000, F),
    INT64(uplink, max_bytes_per_s, 0, (long long)1 << 40, F),
    STR(uplink, batch, KT_STR, false, F),
    INT(uplink, batch_max_bytes, CONFIG_BATCH_MAX_BYTES_MIN, CONFIG_BATCH_MAX_BYTES_MAX, F),
    INT(uplink, batch_max_delay_ms, 0, 60000, F),
    INT(uplink, keepalive, 5, 3600, F),
    INT(uplink, backoff_min_ms, 10, 600000, F),
    INT(uplink, backoff_max_ms, 10, 3600000, F),
    INT(uplink, connect_timeout_s, 1, 600, F),

    STR(spool, path, KT_PATH, false, F),
    INT64(spool, max_bytes, 4096, (long long)1 << 40, R),
    INT(spool, ttl_seconds, 1, 365 * 24 * 3600, R),
    INT(spool, drain_rate, 1, 1000000, R),
    INT(spool, max_inflight, 1, 65535, F),
    INT(spool, commit_gap_ms, 0, 1000, R),
    INT(spool, down_max_per_node, 1, 1000000, R),
    INT(spool, down_ttl_s, 1, 365 * 24 * 3600, R),
    INT64(spool, down_max_bytes, 4096, (long long)1 << 40, R),

    INT(limits, max_message_bytes, 1, 16 * 1024 * 1024, R),
    INT(limits, per_node_rate, 1, 1000000, R),
    INT(limits, per_node_burst, 1, 1000000, R),

    STR(registry, path, KT_PATH, false, F),
    STR(registry, broker_snapshot, KT_PATH, false, F),

    STR(control, socket, KT_PATH, false, F),
    STR(control, group, KT_STR, false, F),
    STR(control, admin_group, KT_STR, false, F),
    STR(control, read_group, KT_STR, false, F),

    {"attestation", "required", KT_BOOL, offsetof(struct config, attestation.required),
     sizeof(bool), 0, 0, false, R},
    STR(attestation, reference_file, KT_CERT, false, R),
    STR(attestation, image_dir, KT_PATH, false, R),
    STR(attestation, signer_keys, KT_CERT, false, R),
    INT(attestation, nonce_ttl_s, 5, 3600, R),
    INT(attestation, interval_s, 5, 30 * 24 * 3600, R),
    INT(attestation, hold_per_node, 0, 100000, R),
    INT(attestation, challenges_max, 1, 65536, R),
    INT64(attestation, hold_max_bytes, 0, (long long)1 << 40, R),
    {"attestation", "profiles", KT_PROFILES, offsetof(struct config, attestation.profiles),
     sizeof(unsigned), 0, 0, false, R},

    /* The store, the classes and the campaign database are opened once at start. */
    STR(ota, store_dir, KT_PATH, false, F),
    INT64(ota, store_quota_bytes, 4096, (long long)1 << 40, F),
    STR(ota, classes_file, KT_CERT, false, F),
    STR(ota, state_db, KT_PATH, false, F),
    INT(ota, chunk_size, MSG_CHUNK_MIN, MSG_CHUNK_MAX, F),

    STR(log, level, KT_LEVEL, false, R),
};
#undef R
#undef F

_Static_assert(CONFIG_PROFILES_ALL == (1u << TOKEN_PROFILE__COUNT) - 1u,
               "CONFIG_PROFILES_ALL names every token profile");

static const char *const config_sections[] = {
    "edge", "uplink", "spool", "limits", "registry", "control", "attestation", "ota", "log"};

void config_defaults(struct config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    snprintf(cfg->edge.client_id, sizeof(cfg->edge.client_id), "fleetgwd");
    cfg->edge.keepalive = 30;
    snprintf(cfg->uplink.topic_prefix, sizeof(cfg->uplink.topic_prefix), "fleetgw");
    snprintf(cfg->uplink.service, sizeof(cfg->uplink.service), "generic");
    cfg->uplink.max_publish_per_s = -1; /* the profile's (config_uplink.c) */
    cfg->uplink.batch_max_bytes = -1;
    cfg->uplink.batch_max_delay_ms = 250;
    cfg->uplink.keepalive = 60;
    cfg->uplink.backoff_min_ms = 500;
    cfg->uplink.backoff_max_ms = 60000;
    cfg->uplink.connect_timeout_s = 15;
    snprintf(cfg->spool.path, sizeof(cfg->spool.path), "/var/lib/fleetgw/spool.db");
    cfg->spool.max_bytes = 256LL * 1024 * 1024;
    cfg->spool.ttl_seconds = 7 * 24 * 3600;
    cfg->spool.drain_rate = 500;
    cfg->spool.max_inflight = 32;
    cfg->spool.commit_gap_ms = 4;
    cfg->spool.down_max_per_node = 1000;
    cfg->spool.down_ttl_s = 24 * 3600;
    cfg->spool.down_max_bytes = 16LL * 1024 * 1024;
    cfg->limits.max_message_bytes = 64 * 1024;
    cfg->limits.per_node_rate = 50;
    cfg->limits.per_node_burst = 200;
    snprintf(cfg->registry.path, sizeof(cfg->registry.path), "/var/lib/fleetgw/registry.db");
    snprintf(cfg->control.socket, sizeof(cfg->control.socket), "/run/fleetgw/control.sock");
    cfg->control.group[0] = '\0'; /* the daemon's own group */
    snprintf(cfg->log.level, sizeof(cfg->log.level), "info");
    cfg->attestation.required = true; /* fail closed: turning it off is explicit */
    cfg->attestation.nonce_ttl_s = 60;
    cfg->attestation.interval_s = 24 * 3600;
    cfg->attestation.hold_per_node = 64;
    cfg->attestation.challenges_max = 1024;
    cfg->attestation.hold_max_bytes = 16LL * 1024 * 1024;
    cfg->attestation.profiles = CONFIG_PROFILES_ALL;
    snprintf(cfg->ota.store_dir, sizeof(cfg->ota.store_dir), "/var/lib/fleetgw/ota");
    cfg->ota.store_quota_bytes = 256LL * 1024 * 1024;
    cfg->ota.classes_file[0] = '\0'; /* no classes: staging is refused (unknown_class) */
    snprintf(cfg->ota.state_db, sizeof(cfg->ota.state_db), "/var/lib/fleetgw/ota.db");
    cfg->ota.chunk_size = 1024;
}

/* Line (1-based) of byte offset off in text. */
static unsigned line_of_offset(const char *text, size_t len, size_t off)
{
    unsigned line = 1;
    if (off > len)
        off = len;
    for (size_t i = 0; i < off; i++)
        if (text[i] == '\n')
            line++;
    return line;
}

/* Offset of the quoted token "word" in text at or after start, or (size_t)-1. */
static size_t find_quoted(const char *text, size_t len, size_t start, const char *word)
{
    /* word is never NULL: key_line() returns before a NULL key reaches here (cppcheck cannot
     * follow fail()'s guard) */
    /* cppcheck-suppress ctunullpointer */
    size_t wl = strlen(word);
    for (size_t i = start; i < len && len - i >= wl + 2; i++) {
        if (text[i] == '"' && memcmp(text + i + 1, word, wl) == 0 && text[i + 1 + wl] == '"')
            return i;
    }
    return (size_t)-1;
}

/* Best-effort line of a key: the first "key" after the first "section". 0 if not found. */
static unsigned key_line(const char *text, size_t len, const char *section, const char *key)
{
    size_t at = 0;
    if (section != NULL) {
        at = find_quoted(text, len, 0, section);
        if (at == (size_t)-1)
            return 0;
        if (key == NULL)
            return line_of_offset(text, len, at);
        at++;
    }
    at = find_quoted(text, len, at, key);
    if (at == (size_t)-1)
        return 0;
    return line_of_offset(text, len, at);
}

int config_fail(struct config_error *err, enum config_exit code, const char *name, const char *text,
                size_t len, const char *section, const char *key, const char *fmt, ...)
{
    char reason[512];
    char where[32] = "";
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(reason, sizeof(reason), fmt, ap);
    va_end(ap);
    err->exit_code = code;
    err->line =
        (text != NULL && (section != NULL || key != NULL)) ? key_line(text, len, section, key) : 0;
    if (section != NULL && key != NULL)
        snprintf(err->key, sizeof(err->key), "%s.%s", section, key);
    else if (section != NULL || key != NULL)
        snprintf(err->key, sizeof(err->key), "%s", section != NULL ? section : key);
    else
        err->key[0] = '\0';
    if (err->line > 0)
        snprintf(where, sizeof(where), ":%u", err->line);
    if (err->key[0] != '\0')
        snprintf(err->message, sizeof(err->message), "%s%s: key '%s': %s", name, where, err->key,
                 reason);
    else
        snprintf(err->message, sizeof(err->message), "%s%s: %s", name, where, reason);
    return -EINVAL;
}

/* A syntax error at a known line (no key). */
static int fail_line(struct config_error *err, const char *name, unsigned line, const char *fmt,
                     ...) __attribute__((format(printf, 4, 5)));

static int fail_line(struct config_error *err, const char *name, unsigned line, const char *fmt,
                     ...)
{
    char reason[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(reason, sizeof(reason), fmt, ap);
    va_end(ap);
    err->exit_code = CONFIG_EXIT_SYNTAX;
    err->line = line;
    err->key[0] = '\0';
    snprintf(err->message, sizeof(err->message), "%s:%u: %s", name, line, reason);
    return -EINVAL;
}

/* MQTT client ids and the topic prefix follow proto's topic grammar (docs/protocol.md 2.2). */
static bool valid_client_id(const char *s)
{
    return msg_gateway_id_valid(s, strlen(s)) == 0;
}

static bool valid_prefix(const char *s)
{
    return msg_cloud_prefix_valid(s, strlen(s)) == 0;
}

static int check_readable(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return -errno;
    struct stat st;
    int r = 0;
    if (fstat(fd, &st) != 0)
        r = -errno;
    else if (!S_ISREG(st.st_mode))
        r = -EISDIR;
    else if (st.st_size == 0)
        r = -ENODATA;
    close(fd);
    return r;
}

static int set_value(const struct key_spec *ks, json_object *v, const char *name, const char *text,
                     size_t len, bool check_files, struct config *cfg, struct config_error *err)
{
    char *base = (char *)cfg + ks->offset;

    if (ks->type == KT_BOOL) {
        if (json_object_get_type(v) != json_type_boolean)
            return config_fail(err, CONFIG_EXIT_TYPE, name, text, len, ks->section, ks->key,
                               "expected true or false, found %s", json_type_word(v));
        *(bool *)(void *)base = json_object_get_boolean(v) != 0;
        return 0;
    }
    if (ks->type == KT_PROFILES) {
        if (json_object_get_type(v) != json_type_array)
            return config_fail(err, CONFIG_EXIT_TYPE, name, text, len, ks->section, ks->key,
                               "expected an array of profile names, found %s", json_type_word(v));
        size_t n = json_object_array_length(v);
        unsigned mask = 0;
        if (n == 0)
            return config_fail(err, CONFIG_EXIT_RANGE, name, text, len, ks->section, ks->key,
                               "the list is empty: no node could be attested (leave the key out to "
                               "accept all three profiles)");
        if (n > TOKEN_PROFILE__COUNT)
            return config_fail(err, CONFIG_EXIT_RANGE, name, text, len, ks->section, ks->key,
                               "%zu entries, there are only %d profiles", n,
                               (int)TOKEN_PROFILE__COUNT);
        for (size_t i = 0; i < n; i++) {
            json_object *e = json_object_array_get_idx(v, i);
            if (json_object_get_type(e) != json_type_string)
                return config_fail(err, CONFIG_EXIT_TYPE, name, text, len, ks->section, ks->key,
                                   "entry %zu: expected a string, found %s", i, json_type_word(e));
            const char *pn = json_object_get_string(e);
            enum token_profile tp = token_profile_from_str(pn);
            if (strlen(pn) != (size_t)json_object_get_string_len(e) || tp >= TOKEN_PROFILE__COUNT)
                return config_fail(err, CONFIG_EXIT_RANGE, name, text, len, ks->section, ks->key,
                                   "entry %zu: '%.80s' is not a PSA token profile (one of \"%s\", "
                                   "\"%s\", \"%s\")",
                                   i, pn, TOKEN_PROFILE_2023, TOKEN_PROFILE_2_0_0,
                                   TOKEN_PROFILE_IOT_1);
            if (mask & (1u << tp))
                return config_fail(err, CONFIG_EXIT_RANGE, name, text, len, ks->section, ks->key,
                                   "entry %zu: '%s' is listed twice", i, pn);
            mask |= 1u << tp;
        }
        *(unsigned *)(void *)base = mask;
        return 0;
    }
    if (ks->type == KT_HOSTS)
        return config_set_hosts(v, ks->section, ks->key, ks->max, name, text, len, cfg, err);
    if (ks->type == KT_INT || ks->type == KT_INT64) {
        if (json_object_get_type(v) != json_type_int)
            return config_fail(err, CONFIG_EXIT_TYPE, name, text, len, ks->section, ks->key,
                               "expected an integer, found %s", json_type_word(v));
        errno = 0;
        int64_t x = json_object_get_int64(v);
        if (errno != 0 || x < ks->min || x > ks->max)
            return config_fail(err, CONFIG_EXIT_RANGE, name, text, len, ks->section, ks->key,
                               "value %s is out of range [%lld, %lld]",
                               json_object_to_json_string(v), ks->min, ks->max);
        if (ks->type == KT_INT)
            *(int *)(void *)base = (int)x;
        else
            *(int64_t *)(void *)base = x;
        return 0;
    }

    if (json_object_get_type(v) != json_type_string)
        return config_fail(err, CONFIG_EXIT_TYPE, name, text, len, ks->section, ks->key,
                           "expected a string, found %s", json_type_word(v));
    const char *s = json_object_get_string(v);
    size_t n = (size_t)json_object_get_string_len(v);
    if (strlen(s) != n)
        return config_fail(err, CONFIG_EXIT_RANGE, name, text, len, ks->section, ks->key,
                           "the string contains a NUL character");
    if (n >= ks->size)
        return config_fail(err, CONFIG_EXIT_RANGE, name, text, len, ks->section, ks->key,
                           "the string is %zu bytes long, the maximum is %zu", n, ks->size - 1);

    switch (ks->type) {
    case KT_STR:
        break;
    case KT_PATH:
    case KT_CERT:
        if (s[0] != '/')
            return config_fail(err, CONFIG_EXIT_RANGE, name, text, len, ks->section, ks->key,
                               "'%s' is not an absolute path", s);
        if (ks->type == KT_CERT && check_files) {
            int r = check_readable(s);
            if (r < 0)
                return config_fail(err, CONFIG_EXIT_CERT, name, text, len, ks->section, ks->key,
                                   "cannot read '%s': %s", s,
                                   r == -ENODATA ? "the file is empty" : strerror(-r));
        }
        break;
    case KT_KEY:
        if (strncmp(s, "handle:", 7) == 0) {
            char *end = NULL;
            errno = 0;
            unsigned long h = strtoul(s + 7, &end, 16);
            if (errno != 0 || end == s + 7 || *end != '\0' || strncmp(s + 7, "0x", 2) != 0 ||
                h < 0x81000000UL || h > 0x81ffffffUL)
                return config_fail(err, CONFIG_EXIT_RANGE, name, text, len, ks->section, ks->key,
                                   "'%s' is not a persistent TPM handle (handle:0x81xxxxxx)", s);
            break;
        }
        if (s[0] != '/')
            return config_fail(err, CONFIG_EXIT_RANGE, name, text, len, ks->section, ks->key,
                               "'%s' is neither handle:0x81xxxxxx nor an absolute path", s);
        if (check_files) {
            int r = check_readable(s);
            if (r < 0)
                return config_fail(err, CONFIG_EXIT_CERT, name, text, len, ks->section, ks->key,
                                   "cannot read '%s': %s", s,
                                   r == -ENODATA ? "the file is empty" : strerror(-r));
        }
        break;
    case KT_LEVEL:
        if (strcmp(s, "debug") != 0 && strcmp(s, "info") != 0 && strcmp(s, "notice") != 0 &&
            strcmp(s, "warning") != 0 && strcmp(s, "err") != 0)
            return config_fail(err, CONFIG_EXIT_RANGE, name, text, len, ks->section, ks->key,
                               "'%s' is not one of debug, info, notice, warning, err", s);
        break;
    case KT_PREFIX:
        if (!valid_prefix(s))
            return config_fail(err, CONFIG_EXIT_RANGE, name, text, len, ks->section, ks->key,
                               "'%s' is not a valid topic prefix (non-empty, no '+' '#', no "
                               "leading/trailing or double '/', not starting with '$')",
                               s);
        break;
    case KT_CLIENT:
        if (!valid_client_id(s))
            return config_fail(err, CONFIG_EXIT_RANGE, name, text, len, ks->section, ks->key,
                               "'%s' is not a valid MQTT client id (printable ASCII, no spaces, "
                               "no '/' '+' '#')",
                               s);
        break;
    default:
        break;
    }
    memcpy(base, s, n + 1);
    return 0;
}

static int validate_whole(const char *name, const char *text, size_t len, const bool *seen,
                          struct config *cfg, struct config_error *err)
{
    size_t nkeys = sizeof(config_keys) / sizeof(config_keys[0]);
    for (size_t i = 0; i < nkeys; i++) {
        if (config_keys[i].required && !seen[i])
            return config_fail(err, CONFIG_EXIT_MISSING, name, NULL, 0, config_keys[i].section,
                               config_keys[i].key, "this key is required and missing");
    }
    if (cfg->edge.socket[0] == '\0' && cfg->edge.host[0] == '\0' && cfg->edge.port == 0)
        snprintf(cfg->edge.socket, sizeof(cfg->edge.socket), "%s", CONFIG_DEFAULT_EDGE_SOCKET);
    if (cfg->edge.socket[0] == '\0' && (cfg->edge.host[0] == '\0' || cfg->edge.port == 0))
        return config_fail(err, CONFIG_EXIT_MISSING, name, text, len, "edge", NULL,
                           "either edge.socket or both edge.host and edge.port are required");
    if (cfg->edge.socket[0] != '\0' && cfg->edge.host[0] != '\0')
        return config_fail(err, CONFIG_EXIT_RANGE, name, text, len, "edge", "host",
                           "edge.socket and edge.host exclude each other");
    if (cfg->edge.password_file[0] != '\0' && cfg->edge.username[0] == '\0')
        return config_fail(err, CONFIG_EXIT_MISSING, name, text, len, "edge", "password_file",
                           "edge.password_file needs edge.username");
    if (cfg->uplink.backoff_min_ms > cfg->uplink.backoff_max_ms)
        return config_fail(err, CONFIG_EXIT_RANGE, name, text, len, "uplink", "backoff_min_ms",
                           "backoff_min_ms (%d) is larger than backoff_max_ms (%d)",
                           cfg->uplink.backoff_min_ms, cfg->uplink.backoff_max_ms);
    if (cfg->limits.max_message_bytes > cfg->spool.max_bytes)
        return config_fail(err, CONFIG_EXIT_RANGE, name, text, len, "limits", "max_message_bytes",
                           "max_message_bytes is larger than spool.max_bytes");
    if (cfg->limits.max_message_bytes > cfg->spool.down_max_bytes)
        return config_fail(err, CONFIG_EXIT_RANGE, name, text, len, "limits", "max_message_bytes",
                           "max_message_bytes is larger than spool.down_max_bytes");
    if (strncmp(cfg->uplink.key, "handle:", 7) == 0 && cfg->uplink.tcti[0] == '\0')
        return config_fail(err, CONFIG_EXIT_MISSING, name, text, len, "uplink", "key",
                           "a TPM handle needs uplink.tcti");
    if (cfg->attestation.required && cfg->attestation.reference_file[0] == '\0' &&
        cfg->attestation.image_dir[0] == '\0')
        return config_fail(
            err, CONFIG_EXIT_MISSING, name, text, len, "attestation", "reference_file",
            "attestation.required is true (the default: only attested nodes are "
            "relayed) and needs attestation.reference_file or attestation.image_dir; "
            "\"required\": false relays unattested nodes (not for production)");
    if ((cfg->attestation.image_dir[0] != '\0') != (cfg->attestation.signer_keys[0] != '\0'))
        return config_fail(
            err, CONFIG_EXIT_MISSING, name, text, len, "attestation",
            cfg->attestation.image_dir[0] ? "signer_keys" : "image_dir",
            "attestation.image_dir and attestation.signer_keys go together (the images "
            "are reference values only when they verify with a signer key)");
    /* Each SQLite database is one daemon part's own file. */
    if (strcmp(cfg->ota.state_db, cfg->spool.path) == 0 ||
        strcmp(cfg->ota.state_db, cfg->registry.path) == 0)
        return config_fail(err, CONFIG_EXIT_RANGE, name, text, len, "ota", "state_db",
                           "ota.state_db is the same file as %s",
                           strcmp(cfg->ota.state_db, cfg->spool.path) == 0 ? "spool.path"
                                                                           : "registry.path");
    const char *snap = cfg->registry.broker_snapshot;
    const char *same = snap[0] == '\0'                         ? NULL
                       : strcmp(snap, cfg->registry.path) == 0 ? "registry.path"
                       : strcmp(snap, cfg->spool.path) == 0    ? "spool.path"
                       : strcmp(snap, cfg->ota.state_db) == 0  ? "ota.state_db"
                                                               : NULL;
    if (same != NULL)
        return config_fail(err, CONFIG_EXIT_RANGE, name, text, len, "registry", "broker_snapshot",
                           "registry.broker_snapshot is the same file as %s", same);
    return config_validate_uplink(name, text, len, cfg, err);
}

int config_parse(const char *name, const char *text, size_t len, bool check_files,
                 struct config *cfg, struct config_error *err)
{
    json_tokener *tok = NULL;
    json_object *root = NULL;
    size_t nkeys = sizeof(config_keys) / sizeof(config_keys[0]);
    bool seen[sizeof(config_keys) / sizeof(config_keys[0])] = {false};
    int r = 0;

    memset(err, 0, sizeof(*err));
    config_defaults(cfg);
    if (len > CONFIG_MAX_FILE) {
        r = config_fail(err, CONFIG_EXIT_RANGE, name, NULL, 0, NULL, NULL,
                        "the file is larger than %d bytes", CONFIG_MAX_FILE);
        goto out;
    }
    if (memchr(text, '\0', len) != NULL) {
        r = fail_line(
            err, name,
            line_of_offset(text, len, (size_t)((const char *)memchr(text, '\0', len) - text)),
            "NUL byte in the file");
        goto out;
    }
    tok = json_tokener_new_ex(16);
    if (tok == NULL) {
        r = -ENOMEM;
        snprintf(err->message, sizeof(err->message), "%s: out of memory", name);
        err->exit_code = CONFIG_EXIT_FILE;
        goto out;
    }
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
    root = json_tokener_parse_ex(tok, text, (int)len);
    enum json_tokener_error jerr = json_tokener_get_error(tok);
    size_t end = json_tokener_get_parse_end(tok);
    if (root == NULL || jerr != json_tokener_success) {
        if (jerr == json_tokener_continue)
            r = fail_line(err, name, line_of_offset(text, len, len),
                          "JSON syntax error: unexpected end of file");
        else
            r = fail_line(err, name, line_of_offset(text, len, end), "JSON syntax error: %s",
                          json_tokener_error_desc(jerr));
        goto out;
    }
    for (size_t i = end; i < len; i++) {
        if (text[i] != ' ' && text[i] != '\t' && text[i] != '\n' && text[i] != '\r') {
            r = fail_line(err, name, line_of_offset(text, len, i),
                          "JSON syntax error: data after the top-level object");
            goto out;
        }
    }
    if (!json_object_is_type(root, json_type_object)) {
        r = config_fail(err, CONFIG_EXIT_TYPE, name, NULL, 0, NULL, NULL,
                        "the top level must be a JSON object, found %s", json_type_word(root));
        goto out;
    }
    json_object_object_foreach(root, sec, sval)
    {
        bool known = false;
        for (size_t s = 0; s < sizeof(config_sections) / sizeof(config_sections[0]); s++)
            if (strcmp(sec, config_sections[s]) == 0)
                known = true;
        if (!known) {
            r = config_fail(
                err, CONFIG_EXIT_UNKNOWN_KEY, name, text, len, NULL, sec,
                "unknown section (known: edge, uplink, spool, limits, registry, control, "
                "attestation, ota, log)");
            goto out;
        }
        if (!json_object_is_type(sval, json_type_object)) {
            r = config_fail(err, CONFIG_EXIT_TYPE, name, text, len, sec, NULL,
                            "expected an object, found %s", json_type_word(sval));
            goto out;
        }
        json_object_object_foreach(sval, key, kval)
        {
            size_t k;
            for (k = 0; k < nkeys; k++)
                if (strcmp(config_keys[k].section, sec) == 0 &&
                    strcmp(config_keys[k].key, key) == 0)
                    break;
            if (k == nkeys) {
                r = config_fail(err, CONFIG_EXIT_UNKNOWN_KEY, name, text, len, sec, key,
                                "unknown key (see docs/configuration.md)");
                goto out;
            }
            r = set_value(&config_keys[k], kval, name, text, len, check_files, cfg, err);
            if (r < 0)
                goto out;
            seen[k] = true;
        }
    }
    r = validate_whole(name, text, len, seen, cfg, err);
out:
    if (root != NULL)
        json_object_put(root);
    if (tok != NULL)
        json_tokener_free(tok);
    return r;
}

int config_load_opts(const char *path, bool check_files, struct config *cfg,
                     struct config_error *err)
{
    const char *why = NULL;
    size_t len = 0;
    int r;

    memset(err, 0, sizeof(*err));
    config_defaults(cfg);
    char *buf = readfile_at(AT_FDCWD, path, CONFIG_MAX_FILE, &len, &why, &r);
    if (buf == NULL) {
        err->exit_code = CONFIG_EXIT_FILE;
        if (r == -EFBIG)
            snprintf(err->message, sizeof(err->message),
                     "%s: the configuration file is larger than %d bytes", path, CONFIG_MAX_FILE);
        else
            snprintf(err->message, sizeof(err->message),
                     "%s: cannot read the configuration file: %s", path, why);
        return r;
    }
    r = config_parse(path, buf, len, check_files, cfg, err);
    free(buf);
    return r;
}

int config_load(const char *path, struct config *cfg, struct config_error *err)
{
    return config_load_opts(path, true, cfg, err);
}

int config_log_priority(const struct config *cfg)
{
    if (strcmp(cfg->log.level, "debug") == 0)
        return LOG_DEBUG;
    if (strcmp(cfg->log.level, "notice") == 0)
        return LOG_NOTICE;
    if (strcmp(cfg->log.level, "warning") == 0)
        return LOG_WARNING;
    if (strcmp(cfg->log.level, "err") == 0)
        return LOG_ERR;
    return LOG_INFO;
}

size_t config_key_count(void)
{
    return sizeof(config_keys) / sizeof(config_keys[0]);
}

void config_key_name(size_t i, const char **section, const char **key)
{
    *section = config_keys[i].section;
    *key = config_keys[i].key;
}

bool config_key_reloadable(size_t i)
{
    return config_keys[i].reloadable;
}

size_t config_reload_apply(struct config *running, const struct config *next, char *fixed,
                           size_t fixed_len)
{
    size_t n_fixed = 0, used = 0;

    if (fixed_len > 0)
        fixed[0] = '\0';
    for (size_t i = 0; i < config_key_count(); i++) {
        const struct key_spec *k = &config_keys[i];
        unsigned char *dst = (unsigned char *)running + k->offset;
        const unsigned char *src = (const unsigned char *)next + k->offset;
        if (memcmp(dst, src, k->size) == 0)
            continue;
        if (k->reloadable) {
            memcpy(dst, src, k->size);
            continue;
        }
        n_fixed++;
        if (used < fixed_len) {
            int w = snprintf(fixed + used, fixed_len - used, "%s%s.%s", n_fixed > 1 ? ", " : "",
                             k->section, k->key);
            used += w > 0 ? (size_t)w : 0;
        }
    }
    return n_fixed;
}
