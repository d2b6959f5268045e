/* The order fleetgwd tries the brokers of uplink.hosts in (endpoint.h) and their names. */
#include "check.h"
#include "endpoint.h"

#include <string.h>

int main(void)
{
    struct endpoint_ring r;

    /* One endpoint: a failure keeps it (the back-off alone spaces the attempts). */
    endpoint_ring_init(&r, 1);
    CHECK_EQ_INT(r.cur, 0);
    CHECK_EQ_INT(endpoint_ring_failed(&r), 0);
    CHECK_EQ_INT(endpoint_ring_failed(&r), 0);
    CHECK_EQ_INT(r.failovers, 0);

    /* Three: each failure (refused, timed out or lost) moves to the next, wrapping around. */
    endpoint_ring_init(&r, 3);
    CHECK_EQ_INT(r.cur, 0);
    CHECK_EQ_INT(endpoint_ring_failed(&r), 1);
    CHECK_EQ_INT(endpoint_ring_failed(&r), 2);
    CHECK_EQ_INT(endpoint_ring_failed(&r), 0);
    CHECK_EQ_INT(endpoint_ring_failed(&r), 1);
    CHECK_EQ_INT(r.failovers, 4);
    CHECK_EQ_INT(r.cur, 1); /* it stays where it is while nothing fails */

    /* A count below one is one (a configuration always has one endpoint). */
    endpoint_ring_init(&r, 0);
    CHECK_EQ_INT(r.n, 1);
    CHECK_EQ_INT(endpoint_ring_failed(&r), 0);

    /* Names: host:port, IPv6 literals bracketed, truncated to the buffer. */
    struct config_endpoint ep = {.host = "broker-1.example", .port = 8883};
    char buf[ENDPOINT_NAME_MAX];
    endpoint_format(&ep, buf, sizeof(buf));
    CHECK(strcmp(buf, "broker-1.example:8883") == 0);
    struct config_endpoint v6 = {.host = "::1", .port = 5671};
    endpoint_format(&v6, buf, sizeof(buf));
    CHECK(strcmp(buf, "[::1]:5671") == 0);
    char small[6];
    endpoint_format(&ep, small, sizeof(small));
    CHECK(strcmp(small, "broke") == 0);
    return check_finish();
}
