/* The cloud broker endpoints of uplink.hosts and the order fleetgwd tries them in: it stays on
 * one endpoint while that one works and moves to the next (wrapping around) after each failed
 * attempt or lost connection. The delay before each attempt is the uplink's jittered back-off
 * (uplink.c); this module only says where. No I/O, no allocation. */
#ifndef FLEETGWD_ENDPOINT_H
#define FLEETGWD_ENDPOINT_H

#include "config.h"

#include <stddef.h>

/* "host:port", "[v6-literal]:port": what logs, STATUS= and the status message show. */
#define ENDPOINT_NAME_MAX (CONFIG_STR_MAX + 8)

struct endpoint_ring {
    int n;              /* endpoints (1..CONFIG_HOSTS_MAX) */
    int cur;            /* the one in use or being tried */
    unsigned failovers; /* moves to another endpoint since start */
};

/* Starts at the first endpoint of n (n < 1 counts as 1). */
void endpoint_ring_init(struct endpoint_ring *r, int n);

/* The current endpoint failed (attempt refused, timed out, or an established connection was
 * lost): the next one is current from now on; returns its index. With one endpoint it stays. */
int endpoint_ring_failed(struct endpoint_ring *r);

/* ep as "host:port" (an IPv6 literal in brackets) in buf (truncated to cap). */
void endpoint_format(const struct config_endpoint *ep, char *buf, size_t cap);

#endif
