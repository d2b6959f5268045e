/* fleetgw operational checks: what `fleetgwctl check` runs before (or without) the daemon.
 * Each check gives OK, WARN or FAIL with a sentence and, unless OK, what the operator should
 * do. The checks read the daemon's configuration file (JSON, see fleetgwd.conf(5)) and never
 * change anything: the TPM is only read, brokers only connected to and closed.
 *
 *   config       the file is valid for fleetgwd: the daemon's own config_load() (one schema:
 *                daemon/src/config.c), certificate and key files readable included
 *   tpm          the TPM answers through uplink.tcti (tpm/'s tpm_open, tpm_manufacturer)
 *   identity     uplink.key (persistent handle or TSS2 key file) holds a fleetgw identity key
 *                (tpm_key_public) that is the key of uplink.cert_file
 *   certificate  uplink.cert_file and every certificate of uplink.ca_file are valid now and
 *                do not expire within warn_days (WARN)
 *   cloud broker every endpoint of uplink.hosts (or uplink.host:port) accepts a TCP
 *                connection (WARN when only some do)
 *   edge broker  edge.socket (or edge.host:edge.port) accepts a connection
 *   disk         the spool's file system has room for spool.max_bytes minus what it uses
 *   broker snapshot (only with registry.broker_snapshot) the edge broker plugin's copy of
 *                the registry exists, is readable by its group, and the broker's user
 *                (CHECK_BROKER_USER) is in that group
 */
#ifndef FLEETGW_OPS_CHECK_H
#define FLEETGW_OPS_CHECK_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#define CHECK_DEFAULT_CONFIG     "/etc/fleetgw/fleetgwd.conf"
#define CHECK_DEFAULT_WARN_DAYS  30
#define CHECK_DEFAULT_TIMEOUT_MS 3000
#define CHECK_MAX_RESULTS        16
#define CHECK_MAX_CONFIG_BYTES   (1024 * 1024)
#define CHECK_BROKER_USER        "mosquitto" /* Debian's mosquitto runs as this user */

enum check_status { CHECK_OK = 0, CHECK_WARN = 1, CHECK_FAIL = 2 };

/* Exit codes of check_run() / `fleetgwctl check` (fleetgwctl(8)). */
enum check_exit {
    CHECK_EXIT_OK = 0,    /* every check passed */
    CHECK_EXIT_FAIL = 1,  /* at least one check failed */
    CHECK_EXIT_ERROR = 2, /* the checks could not run (bad arguments, out of memory) */
    CHECK_EXIT_WARN = 3,  /* no failure, at least one warning */
};

struct check_result {
    char name[24];
    enum check_status status;
    char message[512];
    char action[512]; /* what to do; empty when OK */
};

struct check_list {
    size_t count;
    struct check_result results[CHECK_MAX_RESULTS];
};

struct check_options {
    const char *config_path; /* NULL: CHECK_DEFAULT_CONFIG */
    int warn_days;           /* 0: CHECK_DEFAULT_WARN_DAYS */
    int timeout_ms;          /* connect timeout per address; 0: default */
    time_t now;              /* 0: time(NULL) (tests set it) */
};

/* Runs every check and fills rep. Returns 0, or -EINVAL for bad arguments. */
int check_collect(const struct check_options *opt, struct check_list *rep)
    __attribute__((warn_unused_result));

/* Prints rep as text (one line per check, then the action) or as one JSON object
 * {"ok":bool,"checks":[{"name","status","message","action"}]}. Returns 0 or -EIO. */
int check_print(const struct check_list *rep, int json, FILE *out)
    __attribute__((warn_unused_result));

/* CHECK_EXIT_OK, _FAIL or _WARN for a collected report. */
int check_exit_code(const struct check_list *rep);

/* check_collect() with defaults + check_print(); returns an enum check_exit value. */
int check_run(const char *config_path, int json, FILE *out);

/* The individual checks, each filling one result (exposed for tests and other callers). */
void check_certificate_file(const char *label, const char *path, time_t now, int warn_days,
                            struct check_result *res);
void check_tcp(const char *label, const char *host, int port, int timeout_ms,
               struct check_result *res);
/* One cloud broker endpoint (an entry of uplink.hosts). */
struct check_endpoint {
    const char *host;
    int port;
};
/* check_tcp() for each of n endpoints, as one result: OK when all accept a connection, WARN
 * when some do (fleetgwd fails over to them), FAIL when none does; the message names the
 * endpoints that did not answer. */
void check_tcp_endpoints(const char *label, const struct check_endpoint *eps, size_t n,
                         int timeout_ms, struct check_result *res);
void check_unix(const char *label, const char *path, struct check_result *res);
/* The broker snapshot at path (registry.broker_snapshot): WARN when it does not exist yet or
 * broker_user exists and is not in the file's group; FAIL when it is not a regular file or
 * its group cannot read it; OK with its age (now - mtime). */
void check_broker_snapshot(const char *path, const char *broker_user, time_t now,
                           struct check_result *res);
void check_disk(const char *spool_path, int64_t max_bytes, struct check_result *res);
/* TPM reachable through tcti; when key is not NULL also the identity (a fleetgw identity key
 * at the persistent handle or in the TSS2 key file, matching the certificate in cert_path when
 * that is not NULL) into ident. */
struct tpm_key_ref;
void check_tpm(const char *tcti, const struct tpm_key_ref *key, const char *cert_path,
               struct check_result *tpm, struct check_result *ident);

#endif
