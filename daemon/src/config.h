/* fleetgwd configuration: a JSON file (default /etc/fleetgw/fleetgwd.conf), every key
 * documented in docs/configuration.md and validated before anything starts. An error is
 * ONE message naming the file, the key, the line when known, and the reason; its class
 * maps to a distinct exit code (enum config_exit). */
#ifndef FLEETGWD_CONFIG_H
#define FLEETGWD_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CONFIG_DEFAULT_PATH        "/etc/fleetgw/fleetgwd.conf"
#define CONFIG_DEFAULT_EDGE_SOCKET "/run/fleetgw-edge/mqtt.sock"
#define CONFIG_MAX_FILE            (1024 * 1024)
#define CONFIG_STR_MAX             256
#define CONFIG_PATH_MAX            1024
#define CONFIG_SOCK_MAX            108  /* sizeof(sockaddr_un.sun_path), NUL included */
#define CONFIG_PROFILES_ALL        0x7u /* RFC 9783, PSA 2.0.0, PSA_IOT_PROFILE_1 */
#define CONFIG_HOSTS_MAX           8    /* uplink.hosts entries, at most */
/* AWS IoT Core's limits (uplink.service "aws-iot"), from its service quotas. */
#define CONFIG_AWS_IOT_PAYLOAD_MAX   131072 /* bytes of an MQTT payload */
#define CONFIG_AWS_IOT_CLIENT_ID_MAX 128    /* bytes of a client id */
#define CONFIG_AWS_IOT_SLASHES_MAX   7      /* '/' in a topic (8 levels) */
#define CONFIG_AWS_IOT_TOPIC_MAX     256    /* bytes of a topic */
#define CONFIG_AWS_IOT_PUBLISH_PER_S 100    /* publish requests per second per connection */
#define CONFIG_AWS_IOT_INFLIGHT_MAX  100    /* unacknowledged outbound QoS 1 publishes */
/* Azure IoT Hub's MQTT limits (uplink.profile "azure-iot-hub-mqtt"), from its documentation. */
#define CONFIG_AZURE_MESSAGE_MAX   262144 /* bytes of a device-to-cloud message */
#define CONFIG_AZURE_DEVICE_ID_MAX 128    /* bytes of a device id (= the MQTT client id) */
/* uplink.batch_max_bytes: default and range. */
#define CONFIG_BATCH_MAX_BYTES_DEFAULT 65536
#define CONFIG_BATCH_MAX_BYTES_MIN     1024
#define CONFIG_BATCH_MAX_BYTES_MAX     (16 * 1024 * 1024)

/* uplink.profile: the cloud service whose limits fleetgwd keeps (config_uplink.c). */
enum config_profile {
    CONFIG_PROFILE_GENERIC = 0,
    CONFIG_PROFILE_AWS_IOT_CORE,
    CONFIG_PROFILE_AZURE_IOT_HUB,
};

/* Exit codes of fleetgwd, one per error class (documented in docs/configuration.md). */
enum config_exit {
    CONFIG_EXIT_OK = 0,
    CONFIG_EXIT_USAGE = 64,       /* bad command line */
    CONFIG_EXIT_SYNTAX = 65,      /* the file is not valid JSON */
    CONFIG_EXIT_FILE = 66,        /* the config file is missing or unreadable */
    CONFIG_EXIT_UNKNOWN_KEY = 78, /* a key the daemon does not know */
    CONFIG_EXIT_TYPE = 79,        /* a value of the wrong JSON type */
    CONFIG_EXIT_RANGE = 80,       /* a value out of range or malformed */
    CONFIG_EXIT_MISSING = 81,     /* a required key is absent */
    CONFIG_EXIT_CERT = 82,        /* a certificate / key / CA file cannot be read */
};

struct config_error {
    enum config_exit exit_code;
    unsigned line; /* 0 when unknown */
    char key[96];  /* dotted key ("uplink.port"), empty for file-level errors */
    char message[768];
};

/* One cloud broker endpoint (an entry of uplink.hosts). */
struct config_endpoint {
    char host[CONFIG_STR_MAX];
    int port;
};

struct config {
    struct {
        char socket[CONFIG_SOCK_MAX]; /* unix socket of the local broker, or "" */
        char host[CONFIG_STR_MAX];    /* TCP host when socket is "" */
        int port;
        char client_id[CONFIG_STR_MAX];
        char username[CONFIG_STR_MAX];       /* "" = anonymous */
        char password_file[CONFIG_PATH_MAX]; /* first line = password, with username */
        int keepalive;
    } edge;
    struct {
        /* uplink.host/port (one endpoint) or uplink.hosts (a list): either way the validated
         * configuration has the list in hosts[0..n_hosts-1] and its first entry in host/port. */
        char host[CONFIG_STR_MAX];
        int port;
        struct config_endpoint hosts[CONFIG_HOSTS_MAX];
        int n_hosts;
        char server_name[CONFIG_STR_MAX]; /* defaults to host */
        bool server_name_per_host;        /* server_name not set: each endpoint's own host */
        char ca_file[CONFIG_PATH_MAX];
        char cert_file[CONFIG_PATH_MAX];
        char key[CONFIG_PATH_MAX];
        char tcti[CONFIG_STR_MAX];
        char client_id[CONFIG_STR_MAX];
        char topic_prefix[CONFIG_STR_MAX];
        char service[32]; /* "generic", or "aws-iot": a synonym of profile aws-iot-core */
        /* uplink.profile: "generic", "aws-iot-core" or "azure-iot-hub-mqtt" ("" until
         * validated, then the one in effect, also when uplink.service chose it) */
        char profile[32];
        enum config_profile profile_id; /* derived from profile */
        /* Uplink shaping (issue 17). -1 = not given: the profile's default is filled in by
         * the validation, so the validated configuration never holds -1. */
        int max_publish_per_s;   /* publishes in any 1 s window, at most; 0 = no ceiling */
        int64_t max_bytes_per_s; /* payload bytes in any 1 s window, at most; 0 = none */
        char batch[8];           /* "off", "on", "" = the profile's default */
        bool batch_on;           /* derived from batch */
        int batch_max_bytes;     /* bytes of a finished batch, at most */
        int batch_max_delay_ms;  /* a partial batch leaves when its oldest waited this long */
        int message_max;         /* derived: the profile's message size limit (0 = none) */
        int inflight_max;        /* derived: the profile's unacknowledged publishes (0 = none) */
        int keepalive;
        int backoff_min_ms;
        int backoff_max_ms;
        int connect_timeout_s;
    } uplink;
    struct {
        char path[CONFIG_PATH_MAX];
        int64_t max_bytes;
        int64_t down_max_bytes; /* byte budget of the down-queue (topics + payloads) */
        int ttl_seconds;
        int drain_rate;    /* messages per second sent upstream, at most */
        int max_inflight;  /* unacknowledged messages upstream, at most */
        int commit_gap_ms; /* under load, one edge read + commit per this long, at most */

        /* down-queue of cloud commands (daemon/src/downq.c) */
        int down_max_per_node; /* commands queued for one node, at most */
        int down_ttl_s;        /* queued commands older than this are dropped */
    } spool;
    struct {
        int max_message_bytes;
        int per_node_rate;  /* messages per second per node (token refill rate) */
        int per_node_burst; /* bucket size */
    } limits;
    struct {
        char path[CONFIG_PATH_MAX];
        char broker_snapshot[CONFIG_PATH_MAX]; /* the edge broker plugin's copy, "" = none */
    } registry;
    struct {
        char socket[CONFIG_SOCK_MAX];
        char group[CONFIG_STR_MAX];       /* the socket file's group ("" = see control.h) */
        char admin_group[CONFIG_STR_MAX]; /* members hold the admin role ("" = none) */
        char read_group[CONFIG_STR_MAX];  /* members hold the read-only role ("" = none) */
    } control;
    struct {
        bool required; /* relay only trusted nodes (default true: fail closed) */
        char reference_file[CONFIG_PATH_MAX]; /* reference values + lifecycle policy */
        char image_dir[CONFIG_PATH_MAX];      /* OTA store: signed images = reference values */
        char signer_keys[CONFIG_PATH_MAX];    /* PEM P-256 public keys the images must verify */
        int nonce_ttl_s;
        int interval_s;         /* re-attestation period of a trusted node */
        int hold_per_node;      /* messages held per node while its verdict is pending */
        int challenges_max;     /* challenges outstanding at once (storm control) */
        int64_t hold_max_bytes; /* bytes held in all (topic + payload) */
        /* the PSA token profiles accepted: bit (1u << enum token_profile) set for each
         * (default CONFIG_PROFILES_ALL) */
        unsigned profiles;
    } attestation;
    struct {
        char store_dir[CONFIG_PATH_MAX];    /* the OTA image store (ota_store.h) */
        int64_t store_quota_bytes;          /* bytes of stored images, at most */
        char classes_file[CONFIG_PATH_MAX]; /* device classes; "" = none: staging refused */
        char state_db[CONFIG_PATH_MAX];     /* campaign engine state (SQLite, campaign.h) */
        int chunk_size;                     /* bytes per OTA chunk (MSG_CHUNK_MIN..MAX) */
    } ota;
    struct {
        char level[16]; /* "debug", "info", "notice", "warning", "err" */
    } log;
};

/* Fills cfg with every default (required keys left empty). */
void config_defaults(struct config *cfg);

/* Parses and validates text (len bytes, need not be NUL-terminated) named `name` in
 * messages. check_files: also check that certificate/key files can be opened.
 * Returns 0, or -EINVAL with err filled (err->exit_code says the class). */
int config_parse(const char *name, const char *text, size_t len, bool check_files,
                 struct config *cfg, struct config_error *err) __attribute__((warn_unused_result));

/* Reads path (regular file, at most CONFIG_MAX_FILE bytes) and parses it, checking that the
 * certificate/key files can be opened. */
int config_load(const char *path, struct config *cfg, struct config_error *err)
    __attribute__((warn_unused_result));
/* The same, with the file checks optional (fleetgwctl check reports unreadable files in checks
 * of their own and still needs the rest of the configuration). */
int config_load_opts(const char *path, bool check_files, struct config *cfg,
                     struct config_error *err) __attribute__((warn_unused_result));

/* The name endpoint i's server certificate must match: uplink.server_name when it is set,
 * else that endpoint's host. */
const char *config_uplink_server_name(const struct config *cfg, int i);

/* Log priority (LOG_*) for cfg->log.level. */
int config_log_priority(const struct config *cfg);

/* The accepted keys, in table order: i < config_key_count(); for documentation checks. */
size_t config_key_count(void);
void config_key_name(size_t i, const char **section, const char **key);
/* Whether key i takes effect on SIGHUP (the table's reloadable column). */
bool config_key_reloadable(size_t i);

/* SIGHUP: copies every reloadable key of next (a validated configuration) into running and
 * leaves the others as they are; returns how many of those others differ in next, naming them
 * ("edge.host, uplink.port") in fixed (truncated to fixed_len) for the caller to report as
 * needing a restart. Only the table's keys are compared, so derived values never count. */
size_t config_reload_apply(struct config *running, const struct config *next, char *fixed,
                           size_t fixed_len);

#endif
