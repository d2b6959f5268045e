/* posix port: non-blocking TCP transport and getrandom entropy. */
#include "fleetgw/posix_tcp.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

static long tcp_read(void *ctx, uint8_t *buf, size_t len)
{
    struct posix_tcp *t = ctx;
    ssize_t n;
    if (t->fd < 0 || t->connecting)
        return TRANSPORT_AGAIN;
    do {
        n = recv(t->fd, buf, len, 0);
    } while (n < 0 && errno == EINTR);
    if (n > 0)
        return (long)n;
    if (n == 0)
        return TRANSPORT_EOF;
    if (errno == EAGAIN || errno == EWOULDBLOCK)
        return TRANSPORT_AGAIN;
    return TRANSPORT_ERROR;
}

static long tcp_write(void *ctx, const uint8_t *buf, size_t len)
{
    struct posix_tcp *t = ctx;
    ssize_t n;
    if (t->fd < 0)
        return TRANSPORT_ERROR;
    if (t->connecting) {
        t->write_blocked = true;
        return TRANSPORT_AGAIN;
    }
    do {
        n = send(t->fd, buf, len, MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
    if (n >= 0) {
        t->write_blocked = false;
        return (long)n;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
        t->write_blocked = true;
        return TRANSPORT_AGAIN;
    }
    return TRANSPORT_ERROR;
}

int posix_tcp_resolve(const char *hostport, struct sockaddr_storage *ret_addr, socklen_t *ret_len,
                      char *ret_host, size_t host_cap)
{
    char host[256];
    const char *port;
    const char *colon;
    struct addrinfo hints, *res = NULL;
    size_t hl;
    int r = 0;

    if (hostport[0] == '[') {
        const char *end = strchr(hostport, ']');
        if (end == NULL || end[1] != ':')
            return -EINVAL;
        hl = (size_t)(end - hostport - 1);
        if (hl == 0 || hl >= sizeof(host))
            return -EINVAL;
        memcpy(host, hostport + 1, hl);
        port = end + 2;
    } else {
        colon = strrchr(hostport, ':');
        if (colon == NULL)
            return -EINVAL;
        hl = (size_t)(colon - hostport);
        if (hl == 0 || hl >= sizeof(host))
            return -EINVAL;
        memcpy(host, hostport, hl);
        port = colon + 1;
    }
    host[hl] = '\0';
    if (port[0] == '\0')
        return -EINVAL;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    if (getaddrinfo(host, port, &hints, &res) != 0 || res == NULL) {
        r = -EHOSTUNREACH;
        goto out;
    }
    if (res->ai_addrlen > sizeof(*ret_addr)) {
        r = -EINVAL;
        goto out;
    }
    memcpy(ret_addr, res->ai_addr, res->ai_addrlen);
    *ret_len = res->ai_addrlen;
    if (ret_host != NULL && host_cap > 0)
        snprintf(ret_host, host_cap, "%s", host);
out:
    if (res != NULL)
        freeaddrinfo(res);
    return r;
}

void posix_tcp_init(struct posix_tcp *t, const struct sockaddr_storage *addr, socklen_t len)
{
    memset(t, 0, sizeof(*t));
    t->fd = -1;
    memcpy(&t->addr, addr, len);
    t->addr_len = len;
    t->tr.ctx = t;
    t->tr.read = tcp_read;
    t->tr.write = tcp_write;
}

int posix_tcp_open(struct posix_tcp *t)
{
    int one = 1;
    int fd;
    posix_tcp_close(t);
    fd = socket(t->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    /* small MQTT packets: do not wait for Nagle */
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(fd, (const struct sockaddr *)&t->addr, t->addr_len) != 0 && errno != EINPROGRESS) {
        int e = -errno;
        close(fd);
        return e;
    }
    t->fd = fd;
    t->connecting = true;
    t->write_blocked = false;
    return 0;
}

int posix_tcp_finish(struct posix_tcp *t)
{
    int err = 0;
    socklen_t len = sizeof(err);
    if (t->fd < 0)
        return -EBADF;
    if (getsockopt(t->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
        return -errno;
    if (err != 0)
        return -err;
    t->connecting = false;
    return 0;
}

void posix_tcp_close(struct posix_tcp *t)
{
    if (t->fd >= 0)
        close(t->fd);
    t->fd = -1;
    t->connecting = false;
    t->write_blocked = false;
}

int posix_entropy(void *ctx, uint8_t *buf, size_t len)
{
    (void)ctx;
    while (len > 0) {
        ssize_t n = getrandom(buf, len, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}
