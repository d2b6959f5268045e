/* ctl_api: the control requests as ONE table {name, arguments, role, handler} (after
 * OpenSSH's monitor dispatch table). control.c parses a request line against it (which
 * arguments a name takes), ctl_api_dispatch() calls the entry's handler. The handlers use
 * only what the daemon hands them in struct ctl_api (registry, spool, down-queue, gate,
 * configuration and a status callback), so the table lives in the core library and the
 * unit tests and the fuzzer parse with the real one. */
#ifndef FLEETGWD_CTL_API_H
#define FLEETGWD_CTL_API_H

#include "shape.h"

#include <json-c/json.h>
#include <stddef.h>
#include <stdint.h>

enum ctl_cmd {
    CTL_STATUS,
    CTL_NODES,
    CTL_SPOOL,
    CTL_NODE_ADD,
    CTL_NODE_SHOW,
    CTL_NODE_REMOVE,
    CTL_ATTEST,
    CTL_NODE_ADD_SYMMETRIC,
    CTL_NODE_TAG,
    CTL_OTA_STAGE,
    CTL_OTA_IMAGES,
    CTL_OTA_RM,
    CTL_CAMPAIGN_CREATE,
    CTL_CAMPAIGN_LIST,
    CTL_CAMPAIGN_STATUS,
    CTL_CAMPAIGN_HALT,
    CTL_CAMPAIGN_RESUME,
    CTL_CAMPAIGN_ABORT,
};

#define CTL_SPEC_MAX 2048

struct ctl_request {
    enum ctl_cmd cmd;
    char id[49];
    uint8_t iak_pub[65];
    char device_class[65];
    /* node_add_symmetric: the IAK id (SHA-256(SHA-256(key))) and the key sealed by the TPM */
    uint8_t iak_id[32];
    uint8_t iak_sealed[1024];
    size_t iak_sealed_len;
    char digest[65];   /* CTL_ARG_DIGEST: 8..64 hex digits (a stored image, or a prefix) */
    char campaign[33]; /* CTL_ARG_CAMPAIGN: a campaign id */
    /* CTL_ARG_SPEC: the request's "spec" object as JSON text ("{}" when absent) */
    char spec[CTL_SPEC_MAX];
    int fd; /* CTL_ARG_FD: a descriptor passed with the request (SCM_RIGHTS), or -1; the
               control server closes it after the handler */
};

struct config;
struct downq;
struct ota_ctx;
struct gate;
struct registry;
struct spool;

/* Arguments a request takes besides "cmd" (bit set). */
enum ctl_arg {
    CTL_ARG_ID = 1u << 0,         /* "id": a node id */
    CTL_ARG_IAK_PUB = 1u << 1,    /* "iak_pub": 130 hex digits, an uncompressed P-256 point */
    CTL_ARG_CLASS = 1u << 2,      /* "device_class": 1..64 printable ASCII */
    CTL_ARG_IAK_ID = 1u << 3,     /* "iak_id": 64 hex digits, a symmetric IAK's id */
    CTL_ARG_IAK_SEALED = 1u << 4, /* "iak_sealed": 2..2048 hex digits, a tpm_seal blob */
    CTL_ARG_DIGEST = 1u << 5,     /* "digest": 8..64 hex digits */
    CTL_ARG_CAMPAIGN = 1u << 6,   /* "campaign": a campaign id ([A-Za-z0-9._-]{1,32}) */
    CTL_ARG_SPEC = 1u << 7,       /* "spec": an object (optional; its keys are the handler's) */
    CTL_ARG_FD = 1u << 8,         /* a file descriptor passed with the request line */
};

/* The role a request needs (the table's column), and the role a peer holds (control.c, from
 * its SO_PEERCRED credentials): read-only looks (state, counters, registry, images,
 * campaigns); admin also acts (enrol, remove, tag, challenge, stage, campaigns). A role
 * includes the ones below it. */
enum ctl_role { CTL_ROLE_READ, CTL_ROLE_ADMIN };

/* "read-only" / "admin" (the name in replies, the log and the docs). */
const char *ctl_role_name(enum ctl_role role);

/* The daemon's state the handlers read (filled by the daemon's status callback). */
struct ctl_status {
    const char *edge;           /* "connected" / "disconnected" */
    const char *cloud;          /* "connected" / "connecting" / "disconnected" */
    const char *cloud_endpoint; /* "host:port" in use or being tried (uplink.hosts); NULL: none */
    unsigned inflight, down_inflight;
    uint64_t ota_bytes_sent, ota_bytes_resent, ota_chunks; /* OTA chunks served since start */
    struct shape_status shape; /* the uplink's backlog, ceilings, drain rate (shape.h) */
};

struct ctl_api {
    struct registry *registry;
    struct spool *spool;
    struct downq *downq;
    struct gate *gate;
    const struct config *cfg;
    struct ota_ctx *ota; /* NULL: the OTA requests answer that OTA is not set up */
    void (*status)(void *u, struct ctl_status *ret);
    void *u;
};

/* A handler: fills ok (the {"ok":true} response) and returns it, or frees it and returns
 * an error response (ctl_api_fail). */
typedef json_object *(*ctl_api_fn)(const struct ctl_request *req, const struct ctl_api *api,
                                   json_object *ok);

struct ctl_command {
    const char *name;
    enum ctl_cmd cmd;
    unsigned args; /* enum ctl_arg bits */
    enum ctl_role role;
    ctl_api_fn handler;
};

/* The error response {"ok":false,"error":<sentence>}. */
json_object *ctl_api_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The entry named name[0..len) (no NUL needed), or NULL. */
const struct ctl_command *ctl_command_find(const char *name, size_t len);
/* The entry of cmd, or NULL. */
const struct ctl_command *ctl_command_of(enum ctl_cmd cmd);
/* The table, for documentation tests: *ret_n entries. */
const struct ctl_command *ctl_commands(size_t *ret_n);

/* A ctl_handler_fn for ctl_server_start(): u is a struct ctl_api. */
json_object *ctl_api_dispatch(const struct ctl_request *req, void *u);

#endif
