/* posix port: a non-blocking TCP client socket as a struct transport. */
#ifndef FLEETGW_POSIX_TCP_H
#define FLEETGW_POSIX_TCP_H

#include <stdbool.h>
#include <sys/socket.h>

#include "fleetgw/transport.h"

struct posix_tcp {
    int fd;             /* -1 when closed */
    bool connecting;    /* connect() in progress: wait for POLLOUT, then posix_tcp_finish() */
    bool write_blocked; /* the last write hit EAGAIN: poll for POLLOUT */
    struct sockaddr_storage addr;
    socklen_t addr_len;
    struct transport tr;
};

/* Resolves "HOST:PORT" or "[V6]:PORT" (numeric or name) once. Negative errno on failure. */
int posix_tcp_resolve(const char *hostport, struct sockaddr_storage *ret_addr, socklen_t *ret_len,
                      char *ret_host, size_t host_cap) __attribute__((warn_unused_result));

void posix_tcp_init(struct posix_tcp *t, const struct sockaddr_storage *addr, socklen_t len);
/* Starts a non-blocking connect. 0 or negative errno. */
int posix_tcp_open(struct posix_tcp *t) __attribute__((warn_unused_result));
/* After POLLOUT while connecting: 0 connected, negative errno failed. */
int posix_tcp_finish(struct posix_tcp *t) __attribute__((warn_unused_result));
void posix_tcp_close(struct posix_tcp *t);

/* getrandom(2) as the node_tls entropy callback; 0 on success. */
int posix_entropy(void *ctx, uint8_t *buf, size_t len);

#endif
