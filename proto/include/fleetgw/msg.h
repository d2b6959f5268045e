/* Node <-> gateway messages (CBOR) and MQTT topic names. The byte layout of every message is
 * specified in docs/protocol.md; test_msg checks the examples printed there.
 *
 * Every message is one CBOR array whose first element is the message type:
 *   [type, field, field, ...]
 * with a fixed number of fields per type. Decoding is strict: exact field count, exact CBOR
 * types, shortest-form heads (cbor.h), every value range-checked, no trailing bytes. Byte
 * string fields of a decoded message point into the input buffer (zero copy): the input must
 * outlive the struct. Encoding validates the same rules, so anything encoded decodes, and a
 * decoded message re-encodes to the same bytes. */
#ifndef FLEETGW_MSG_H
#define FLEETGW_MSG_H

#include <stddef.h>
#include <stdint.h>

#if defined(__GNUC__)
#define MSG_MUST_CHECK __attribute__((warn_unused_result))
#else
#define MSG_MUST_CHECK
#endif

/* Hard maxima. A chunk of 2 KiB keeps a whole OTA chunk message (about 2.1 KB) inside the
 * 4 KiB MQTT packet buffer of the MCU agent; the image size limit is the largest slot of the
 * supported boards (16 MiB); telemetry and command arguments are small by design. */
#define MSG_NODE_ID_MAX     48u /* [A-Za-z0-9_-]{1,48} */
#define MSG_CAMPAIGN_ID_MAX 32u /* [A-Za-z0-9._-]{1,32} */
#define MSG_CMD_NAME_MAX    32u /* [a-z0-9_.-]{1,32} */
#define MSG_NONCE_MIN       32u /* nonce: 32, 48 or 64 bytes (PSA token nonce sizes) */
#define MSG_NONCE_MAX       64u
#define MSG_TTL_MAX         3600u /* challenge lifetime in seconds, 1..3600 */
#define MSG_TOKEN_MAX       2048u /* = TOKEN_MAX_LEN */
#define MSG_IMAGE_MAX       0x1000000u
#define MSG_CHUNK_MIN       64u
#define MSG_CHUNK_MAX       2048u
#define MSG_TELEMETRY_MAX   1024u
#define MSG_CMD_ARGS_MAX    512u
#define MSG_DIGEST_LEN      32u /* SHA-256 */
#define MSG_MAX_FIELDS      5u  /* fields after the type */
#define MSG_SUBTOPIC_MAX    64u /* the part after up/ or down/ */
#define MSG_TOPIC_MAX       (6u + MSG_NODE_ID_MAX + 1u + 5u + MSG_SUBTOPIC_MAX + 1u)

enum msg_err {
    MSG_OK = 0,
    MSG_ERR_ARG,     /* NULL pointer / impossible argument */
    MSG_ERR_NOSPACE, /* output buffer too small */
    MSG_ERR_CBOR,    /* not well-formed (under cbor.h rules), truncated or trailing bytes */
    MSG_ERR_SCHEMA,  /* not an array, wrong field count, or a field of the wrong CBOR type */
    MSG_ERR_TYPE,    /* unknown message type */
    MSG_ERR_RANGE,   /* a value or length outside its allowed range */
    MSG_ERR_ID,      /* node id, campaign id or command name: bad length or character */
    MSG_ERR_TOPIC,   /* topic not of the form fleet/<node-id>/<known suffix> */
    MSG_ERR__COUNT
};

const char *msg_err_str(enum msg_err err);

enum msg_type {
    MSG_ATTEST_CHALLENGE = 1, /* gateway -> node */
    MSG_ATTEST_EVIDENCE = 2,  /* node -> gateway */
    MSG_OTA_OFFER = 3,        /* gateway -> node */
    MSG_OTA_ACK = 4,          /* node -> gateway: accepts or refuses an offer */
    MSG_OTA_CHUNK_REQ = 5,    /* node -> gateway */
    MSG_OTA_CHUNK = 6,        /* gateway -> node */
    MSG_OTA_STATUS = 7,       /* node -> gateway */
    MSG_OTA_CONFIRM = 8,      /* gateway -> node: make the tested image permanent */
    MSG_TELEMETRY = 9,        /* node -> gateway */
    MSG_COMMAND = 10,         /* gateway -> node */
    MSG_NODE_STATUS = 11,     /* node -> gateway */
    MSG_TYPE_MAX = 11
};

const char *msg_type_str(enum msg_type type);

enum msg_ota_state {
    MSG_OTA_IDLE = 0,
    MSG_OTA_DOWNLOADING = 1,
    MSG_OTA_VERIFYING = 2,
    MSG_OTA_STAGED = 3,  /* verified, waiting to reboot into it */
    MSG_OTA_TESTING = 4, /* running the new image in test mode, not yet confirmed */
    MSG_OTA_CONFIRMED = 5,
    MSG_OTA_FAILED = 6,
    MSG_OTA_REVERTED = 7,
    MSG_OTA_STATE_MAX = 7
};

enum msg_ota_reason {
    MSG_REASON_NONE = 0,
    MSG_REASON_NO_SPACE = 1,
    MSG_REASON_BAD_DIGEST = 2,
    MSG_REASON_BAD_SIGNATURE = 3,
    MSG_REASON_DOWNGRADE = 4,
    MSG_REASON_FLASH_ERROR = 5,
    MSG_REASON_TIMEOUT = 6,
    MSG_REASON_BUSY = 7,
    MSG_REASON_ABORTED = 8,
    MSG_REASON_BOOT_FAILED = 9,
    MSG_REASON_MAX = 9
};

enum msg_node_state {
    MSG_NODE_BOOTING = 0,
    MSG_NODE_ONLINE = 1,
    MSG_NODE_UPDATING = 2,
    MSG_NODE_DEGRADED = 3,
    MSG_NODE_STATE_MAX = 3
};

/* MCUboot image version: major.minor.revision+build */
struct msg_version {
    uint8_t major;
    uint8_t minor;
    uint16_t revision;
    uint32_t build;
};

struct msg_attest_challenge {
    uint8_t nonce[MSG_NONCE_MAX];
    size_t nonce_len;
    uint32_t ttl_s;
};

struct msg_attest_evidence {
    const uint8_t *token; /* a PSA token (token.h), not verified by msg_decode() */
    size_t token_len;
};

struct msg_ota_offer {
    char campaign[MSG_CAMPAIGN_ID_MAX + 1];
    uint8_t digest[MSG_DIGEST_LEN];
    uint32_t size;
    struct msg_version version;
    uint32_t chunk_size;
};

struct msg_ota_ack {
    char campaign[MSG_CAMPAIGN_ID_MAX + 1];
    int accepted;
    enum msg_ota_reason reason; /* NONE when accepted, else why not */
};

struct msg_ota_chunk_req {
    char campaign[MSG_CAMPAIGN_ID_MAX + 1];
    uint32_t offset;
    uint32_t length;
};

struct msg_ota_chunk {
    char campaign[MSG_CAMPAIGN_ID_MAX + 1];
    uint32_t offset;
    const uint8_t *data;
    size_t data_len;
};

struct msg_ota_status {
    char campaign[MSG_CAMPAIGN_ID_MAX + 1];
    enum msg_ota_state state;
    uint32_t offset; /* bytes received and written so far */
    enum msg_ota_reason reason;
};

struct msg_ota_confirm {
    char campaign[MSG_CAMPAIGN_ID_MAX + 1];
    uint8_t digest[MSG_DIGEST_LEN]; /* the image the gateway saw measured */
};

struct msg_telemetry {
    uint32_t seq;
    uint64_t timestamp_ms; /* ms since the Unix epoch, < 2^53 */
    const uint8_t *payload;
    size_t payload_len;
};

struct msg_command {
    uint32_t id;
    char name[MSG_CMD_NAME_MAX + 1];
    const uint8_t *args;
    size_t args_len;
};

struct msg_node_status {
    enum msg_node_state state;
    uint32_t uptime_s;
    struct msg_version version;
};

struct msg {
    enum msg_type type;
    union {
        struct msg_attest_challenge challenge;
        struct msg_attest_evidence evidence;
        struct msg_ota_offer offer;
        struct msg_ota_ack ack;
        struct msg_ota_chunk_req chunk_req;
        struct msg_ota_chunk chunk;
        struct msg_ota_status status;
        struct msg_ota_confirm confirm;
        struct msg_telemetry telemetry;
        struct msg_command command;
        struct msg_node_status node_status;
    } u;
};

/* Checks every field of m against the schema (what msg_encode() refuses to write). */
enum msg_err msg_validate(const struct msg *m) MSG_MUST_CHECK;
enum msg_err msg_encode(const struct msg *m, uint8_t *out, size_t cap,
                        size_t *out_len) MSG_MUST_CHECK;
/* *m is cleared first and left cleared on error. */
enum msg_err msg_decode(const uint8_t *in, size_t len, struct msg *m) MSG_MUST_CHECK;

/* ---- Topics --------------------------------------------------------------------------- */

enum msg_topic {
    MSG_TOPIC_ATTEST_CHALLENGE = 0, /* fleet/<id>/attest/challenge */
    MSG_TOPIC_ATTEST_EVIDENCE,      /* fleet/<id>/attest/evidence */
    MSG_TOPIC_OTA_OFFER,            /* fleet/<id>/ota/offer */
    MSG_TOPIC_OTA_ACK,              /* fleet/<id>/ota/ack */
    MSG_TOPIC_OTA_REQUEST,          /* fleet/<id>/ota/request */
    MSG_TOPIC_OTA_CHUNK,            /* fleet/<id>/ota/chunk */
    MSG_TOPIC_OTA_STATUS,           /* fleet/<id>/ota/status */
    MSG_TOPIC_OTA_CONFIRM,          /* fleet/<id>/ota/confirm */
    MSG_TOPIC_STATUS,               /* fleet/<id>/status */
    MSG_TOPIC_UP,                   /* fleet/<id>/up/<sub>   (sub: telemetry, ...) */
    MSG_TOPIC_DOWN,                 /* fleet/<id>/down/<sub> (sub: command, ...) */
    MSG_TOPIC__COUNT
};

/* 0 when id is a valid node id ([A-Za-z0-9_-], 1..MSG_NODE_ID_MAX chars), -1 otherwise. */
int msg_node_id_valid(const char *id, size_t len);
/* 0 when a valid campaign id ([A-Za-z0-9._-], 1..MSG_CAMPAIGN_ID_MAX chars). */
int msg_campaign_id_valid(const char *id, size_t len);
/* 0 when sub is a valid up/down subtopic: 1..MSG_SUBTOPIC_MAX chars, '/'-separated non-empty
 * segments of [A-Za-z0-9_-] (so never an MQTT wildcard). */
int msg_subtopic_valid(const char *sub, size_t len);

/* Writes "fleet/<node_id>/<suffix>" NUL-terminated into out (cap bytes); *len (optional) is
 * the length without the NUL. sub is required for UP/DOWN and must be NULL/0 otherwise. */
enum msg_err msg_topic_build(enum msg_topic topic, const char *node_id, size_t node_id_len,
                             const char *sub, size_t sub_len, char *out, size_t cap,
                             size_t *len) MSG_MUST_CHECK;

struct msg_topic_parsed {
    enum msg_topic topic;
    char node_id[MSG_NODE_ID_MAX + 1];
    size_t node_id_len;
    const char *sub; /* into the input, UP/DOWN only; else NULL */
    size_t sub_len;
};

/* msg_topic_build() from the suffix text ("ota/ack", "up/telemetry", "status"...): a node's
 * own topics named as the protocol names them. MSG_ERR_TOPIC for a suffix no topic has. */
enum msg_err msg_topic_build_suffix(const char *node_id, size_t node_id_len, const char *suffix,
                                    size_t suffix_len, char *out, size_t cap,
                                    size_t *len) MSG_MUST_CHECK;

/* Parses a topic (ptr,len, no NUL needed). Cleared first; MSG_ERR_TOPIC or MSG_ERR_ID on error. */
enum msg_err msg_topic_parse(const char *topic, size_t len,
                             struct msg_topic_parsed *out) MSG_MUST_CHECK;

/* The message type carried on a topic (fixed topics; up/telemetry and down/command), or 0 for
 * opaque application subtopics. */
enum msg_type msg_topic_type(enum msg_topic topic, const char *sub, size_t sub_len);

/* MQTT filter for one node topic: of every node with node_id NULL ("fleet/+/<suffix>", what
 * the gateway subscribes to), else of that node ("fleet/<id>/<suffix>", what a node subscribes
 * to); for UP/DOWN the filter ends in "/#" ("fleet/+/up/#", "fleet/<id>/down/#"). */
enum msg_err msg_topic_filter(enum msg_topic topic, const char *node_id, size_t node_id_len,
                              char *out, size_t cap, size_t *len) MSG_MUST_CHECK;

/* ---- Cloud-side topics (the uplink; docs/protocol.md section 2.2) --------------------- */

#define MSG_CLOUD_PREFIX_MAX 255u /* uplink.topic_prefix */
#define MSG_GATEWAY_ID_MAX   255u /* uplink.client_id */
#define MSG_CLOUD_TOPIC_MAX                                                                        \
    (MSG_CLOUD_PREFIX_MAX + 9u + MSG_GATEWAY_ID_MAX + 1u + MSG_SUBTOPIC_MAX + 1u)

enum msg_cloud_topic {
    MSG_CLOUD_NODE_UP = 0,     /* <prefix>/nodes/<id>/<sub>     a node's up/<sub>, relayed */
    MSG_CLOUD_NODE_STATE,      /* <prefix>/nodes/<id>/state     its attestation state (retained) */
    MSG_CLOUD_CMD,             /* <prefix>/cmd/<id>/<sub>       a command for a node's down/<sub> */
    MSG_CLOUD_GATEWAY_STATUS,  /* <prefix>/gateway/<gw>/status  the gateway's status (retained) */
    MSG_CLOUD_CAMPAIGN_STATUS, /* <prefix>/ota/campaigns/<campaign>/status  an OTA campaign's
                                  status (retained; the id is a campaign id) */
    MSG_CLOUD_JOB,             /* <prefix>/ota/jobs/<job>       an OTA job document (cloud ->
                                  gateway; the id is a job id: the campaign id grammar) */
    MSG_CLOUD_JOB_GET,         /* <prefix>/ota/jobs/<job>/get   the gateway asks for a chunk */
    MSG_CLOUD_JOB_DATA,        /* <prefix>/ota/jobs/<job>/data  the cloud answers with one */
    MSG_CLOUD_JOB_STATUS,      /* <prefix>/ota/jobs/<job>/status  the job's status (retained) */
    MSG_CLOUD__COUNT
};

/* 0 when prefix is a valid uplink topic prefix: 1..MSG_CLOUD_PREFIX_MAX printable bytes, no
 * '+' '#', no leading, trailing or double '/', not starting with '$'. */
int msg_cloud_prefix_valid(const char *prefix, size_t len);
/* 0 when id is a valid gateway id (the uplink client id): 1..MSG_GATEWAY_ID_MAX bytes of
 * 0x21..0x7e other than '/' '+' '#'. */
int msg_gateway_id_valid(const char *id, size_t len);

/* 1 when sub (an up/<sub> subtopic) is reserved on the cloud side ("state": the gateway's own
 * <prefix>/nodes/<id>/state), so a node may not publish it; else 0. */
int msg_cloud_sub_reserved(const char *sub, size_t sub_len);

/* Writes the cloud topic NUL-terminated into out. id is the node id (a gateway id for
 * GATEWAY_STATUS); sub is required for NODE_UP and CMD (an up/down subtopic; for NODE_UP not
 * the reserved "state", which the gateway's own NODE_STATE uses) and NULL/0 otherwise. */
enum msg_err msg_cloud_topic_build(enum msg_cloud_topic topic, const char *prefix,
                                   size_t prefix_len, const char *id, size_t id_len,
                                   const char *sub, size_t sub_len, char *out, size_t cap,
                                   size_t *len) MSG_MUST_CHECK;

/* The cloud topic <prefix>/nodes/<id>/<sub> of a node's up/<sub> topic already parsed by
 * msg_topic_parse() (t->topic MSG_TOPIC_UP): its node id and sub were checked there, so only
 * the reserved sub is (MSG_ERR_TOPIC). prefix must have passed msg_cloud_prefix_valid() (the
 * caller checks it once, e.g. with the configuration). The relay's per-message path: the same
 * result as msg_cloud_topic_build(MSG_CLOUD_NODE_UP, ...) without checking everything twice. */
enum msg_err msg_cloud_up_from_edge(const struct msg_topic_parsed *t, const char *prefix,
                                    size_t prefix_len, char *out, size_t cap,
                                    size_t *len) MSG_MUST_CHECK;

struct msg_cloud_parsed {
    enum msg_cloud_topic topic;
    char id[MSG_GATEWAY_ID_MAX + 1]; /* node id, gateway id (GATEWAY_STATUS), campaign id */
    const char *sub;                 /* into the input: NODE_UP and CMD only; else NULL */
    size_t sub_len;
};

/* Parses a cloud topic under prefix. Cleared first; MSG_ERR_TOPIC or MSG_ERR_ID on error. */
enum msg_err msg_cloud_topic_parse(const char *topic, size_t len, const char *prefix,
                                   size_t prefix_len, struct msg_cloud_parsed *out) MSG_MUST_CHECK;

/* MQTT filter for one cloud topic of every node: "<prefix>/cmd/+/#", "<prefix>/nodes/+/state"
 * (NODE_UP: "<prefix>/nodes/+/#"; GATEWAY_STATUS: "<prefix>/gateway/+/status"; JOB:
 * "<prefix>/ota/jobs/+"; JOB_DATA: "<prefix>/ota/jobs/+/data"). */
enum msg_err msg_cloud_filter(enum msg_cloud_topic topic, const char *prefix, size_t prefix_len,
                              char *out, size_t cap, size_t *len) MSG_MUST_CHECK;

#endif
