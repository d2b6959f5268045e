/* endpoint.c: see endpoint.h. */
#include "endpoint.h"

#include <stdio.h>
#include <string.h>

void endpoint_ring_init(struct endpoint_ring *r, int n)
{
    r->n = n < 1 ? 1 : n;
    r->cur = 0;
    r->failovers = 0;
}

int endpoint_ring_failed(struct endpoint_ring *r)
{
    if (r->n > 1) {
        r->cur = (r->cur + 1) % r->n;
        r->failovers++;
    }
    return r->cur;
}

void endpoint_format(const struct config_endpoint *ep, char *buf, size_t cap)
{
    if (cap == 0)
        return;
    bool v6 = strchr(ep->host, ':') != NULL;
    snprintf(buf, cap, "%s%s%s:%d", v6 ? "[" : "", ep->host, v6 ? "]" : "", ep->port);
}
