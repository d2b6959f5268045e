/* Control socket: a unix stream socket (mode 0660; group from control.group, or the daemon's
 * own group when that is empty; owner-only 0600 when a configured group cannot be applied),
 * each peer checked with SO_PEERCRED; line-delimited JSON requests and responses, used by
 * fleetgwctl.
 *
 * Requests (one JSON object per line, at most CTL_LINE_MAX bytes):
 *   {"cmd":"status"} {"cmd":"nodes"} {"cmd":"spool"}
 *   {"cmd":"node_add","iak_pub":"04<128 hex>","device_class":"<text>"}
 *   {"cmd":"node_add_symmetric","iak_id":"<64 hex>","iak_sealed":"<hex>","device_class":"<text>"}
 *   {"cmd":"node_show","id":"<node id>"} {"cmd":"node_remove","id":"<node id>"}
 *   {"cmd":"attest","id":"<node id>"}   (challenge the node now, fresh nonce)
 * Responses: {"ok":true,...} or {"ok":false,"error":"<sentence>"}.
 * The requests, their arguments and handlers are one table: ctl_api.h. This file owns
 * the socket (permissions, peers, line framing) and the parsing of a line against it. */
#ifndef FLEETGWD_CONTROL_H
#define FLEETGWD_CONTROL_H

#include "ctl_api.h"

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#define CTL_LINE_MAX    4096
#define CTL_CLIENTS_MAX 16

/* Parses one request line (line,len; no NUL needed). Returns 0, or -EINVAL with a reason
 * in err. *req is cleared first. */
int ctl_parse_request(const char *line, size_t len, struct ctl_request *req, char *err,
                      size_t errlen) __attribute__((warn_unused_result));

/* Builds the response for a request; the returned object is owned by the caller. */
typedef json_object *(*ctl_handler_fn)(const struct ctl_request *req, void *u);

struct ctl_server;

int ctl_server_start(sd_event *ev, const char *path, const char *group, ctl_handler_fn fn, void *u,
                     struct ctl_server **ret, char *err, size_t errlen)
    __attribute__((warn_unused_result));
/* Why the configured control.group was not applied (the daemon may not chown to it), for the
 * caller to log; NULL when it was applied or none was configured. */
const char *ctl_server_warning(const struct ctl_server *s);
void ctl_server_free(struct ctl_server *s);

#endif
