/* Control socket: a unix stream socket used by fleetgwctl; line-delimited JSON requests and
 * responses.
 *
 * Who may connect, and with which role (ctl_api.h: read-only or admin), is decided per peer
 * from its SO_PEERCRED credentials and SO_PEERGROUPS groups, at accept:
 *   - uid 0 and the daemon's own uid: admin;
 *   - a member of control.admin_group: admin;
 *   - a member of control.read_group: read-only;
 *   - a member of control.group (the socket file's group; the daemon's own group when
 *     control.group is empty and no role group is set): read-only;
 *   - anyone else: refused ("permission denied") and logged.
 * The socket file: 0660 in control.group when it is set (owner-only 0600 when that group
 * cannot be applied); 0666 when only role groups are set (the credentials decide, so that
 * members of two groups can connect); 0660 in the daemon's own group when nothing is set.
 * Every request the table marks admin is refused to a read-only peer with an error naming
 * the missing role ("missing_role":"admin") and logged.
 *
 * Requests (one JSON object per line, at most CTL_LINE_MAX bytes):
 *   {"cmd":"status"} {"cmd":"nodes"} {"cmd":"spool"}
 *   {"cmd":"node_add","iak_pub":"04<128 hex>","device_class":"<text>"}
 *   {"cmd":"node_add_symmetric","iak_id":"<64 hex>","iak_sealed":"<hex>","device_class":"<text>"}
 *   {"cmd":"node_show","id":"<node id>"} {"cmd":"node_remove","id":"<node id>"}
 *   {"cmd":"attest","id":"<node id>"}   (challenge the node now, fresh nonce)
 * Responses: {"ok":true,...} or {"ok":false,"error":"<sentence>"}.
 * The requests, their arguments, roles and handlers are one table: ctl_api.h. This file owns
 * the socket (permissions, peers and their roles, line framing) and the parsing of a line
 * against it. */
#ifndef FLEETGWD_CONTROL_H
#define FLEETGWD_CONTROL_H

#include "ctl_api.h"

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <systemd/sd-event.h>

#define CTL_LINE_MAX    4096
#define CTL_CLIENTS_MAX 16
/* Answers a client may leave unread before it is disconnected: the socket is written without
 * blocking, so a client that never reads costs at most this much memory and no time. */
#define CTL_OUT_MAX (1024 * 1024)

/* Parses one request line (line,len; no NUL needed). Returns 0, or -EINVAL with a reason
 * in err. *req is cleared first. */
int ctl_parse_request(const char *line, size_t len, struct ctl_request *req, char *err,
                      size_t errlen) __attribute__((warn_unused_result));

/* Builds the response for a request; the returned object is owned by the caller. */
typedef json_object *(*ctl_handler_fn)(const struct ctl_request *req, void *u);

struct ctl_server;

/* The groups of the configuration's control section (each "" when unset). */
struct ctl_groups {
    const char *group;       /* control.group: the socket file's group */
    const char *admin_group; /* control.admin_group: its members hold the admin role */
    const char *read_group;  /* control.read_group: its members hold the read-only role */
};

/* Opens the socket. A configured group that does not exist refuses the start (err names the
 * key). */
int ctl_server_start(sd_event *ev, const char *path, const struct ctl_groups *groups,
                     ctl_handler_fn fn, void *u, struct ctl_server **ret, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* The role of a peer (uid, primary gid, supplementary groups[0..ngroups)) on this server:
 * 0 and *ret_role, or -EACCES when it holds none. */
int ctl_server_peer_role(const struct ctl_server *s, uid_t uid, gid_t gid, const gid_t *groups,
                         size_t ngroups, enum ctl_role *ret_role)
    __attribute__((warn_unused_result));
/* Why the configured control.group was not applied (the daemon may not chown to it), for the
 * caller to log; NULL when it was applied or none was configured. */
const char *ctl_server_warning(const struct ctl_server *s);
void ctl_server_free(struct ctl_server *s);

#endif
