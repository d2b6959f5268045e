/* fleetgw-serial-link: pipes a node's serial byte stream to the edge broker's TLS listener,
 * byte for byte (the TLS session is end to end between node and broker; nothing here holds
 * a key). docs/firmware.md "Serial link".
 *
 *   fleetgw-serial-link (--serial /dev/ttyX [--baud N] | --connect HOST:PORT)
 *                       --broker HOST:PORT
 *
 * Text mode: UART lines are logged to stderr. The marker line LINK:BEGIN\r\n opens a TCP
 * connection to the broker; from then on both directions are copied. The broker closing
 * the connection returns to text mode; a new marker (node restarted or reconnecting) closes
 * the current broker connection and opens a new one. Bounded buffers, poll() loop,
 * SIGTERM/SIGINT end it cleanly; the source closing ends it too (exit 0). --connect retries
 * for up to 30 s while the endpoint refuses (QEMU -chardev socket,server=on,wait=on waits
 * for this connection before it starts the machine, so no boot output is lost). */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <termios.h>
#include <unistd.h>

#include "fleetgw_version.h"
#include "serial_frame.h"

#define BUF_CAP 16384u

struct buf {
    uint8_t d[BUF_CAP];
    size_t len;
};

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig)
{
    (void)sig;
    stop_flag = 1;
}

static void log_line(void *ctx, const char *line, size_t len)
{
    (void)ctx;
    fprintf(stderr, "serial-link: node: %.*s\n", (int)len, line);
}

static int split_hostport(const char *s, char *host, size_t host_cap, const char **port)
{
    const char *colon = strrchr(s, ':');
    size_t n;
    if (colon == NULL || colon[1] == '\0')
        return -EINVAL;
    n = (size_t)(colon - s);
    if (n == 0 || n >= host_cap)
        return -EINVAL;
    memcpy(host, s, n);
    host[n] = '\0';
    *port = colon + 1;
    return 0;
}

/* Non-blocking TCP connect; *in_progress set when it completes later (POLLOUT). */
static int tcp_connect(const char *hostport, bool *in_progress)
{
    char host[256];
    const char *port;
    struct addrinfo hints, *res = NULL;
    int fd = -1, rc;

    *in_progress = false;
    rc = split_hostport(hostport, host, sizeof(host), &port);
    if (rc != 0)
        goto out;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
    if (getaddrinfo(host, port, &hints, &res) != 0 || res == NULL) {
        rc = -EINVAL;
        goto out;
    }
    fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        rc = -errno;
        goto out;
    }
    if (connect(fd, res->ai_addr, res->ai_addrlen) != 0) {
        if (errno != EINPROGRESS) {
            rc = -errno;
            close(fd);
            fd = -1;
            goto out;
        }
        *in_progress = true;
    }
    rc = fd;
out:
    if (res != NULL)
        freeaddrinfo(res);
    return rc;
}

static speed_t baud_const(long baud)
{
    switch (baud) {
    case 9600:
        return B9600;
    case 19200:
        return B19200;
    case 38400:
        return B38400;
    case 57600:
        return B57600;
    case 115200:
        return B115200;
    case 230400:
        return B230400;
    case 460800:
        return B460800;
    case 921600:
        return B921600;
    default:
        return 0;
    }
}

static int serial_open(const char *path, long baud)
{
    struct termios t;
    speed_t sp = baud_const(baud);
    int fd;
    if (sp == 0)
        return -EINVAL;
    fd = open(path, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    if (tcgetattr(fd, &t) != 0)
        goto fail;
    cfmakeraw(&t);
    t.c_cflag |= CLOCAL | CREAD;
    t.c_cflag &= ~(tcflag_t)CRTSCTS;
    t.c_cc[VMIN] = 0;
    t.c_cc[VTIME] = 0;
    if (cfsetispeed(&t, sp) != 0 || cfsetospeed(&t, sp) != 0 || tcsetattr(fd, TCSANOW, &t) != 0)
        goto fail;
    (void)tcflush(fd, TCIOFLUSH);
    return fd;
fail : {
    int e = -errno;
    close(fd);
    return e;
}
}

/* Writes what it can from b to fd; -errno on a broken stream. */
static int drain(int fd, struct buf *b)
{
    while (b->len > 0) {
        ssize_t w = write(fd, b->d, b->len);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return 0;
            return -errno;
        }
        memmove(b->d, b->d + w, b->len - (size_t)w);
        b->len -= (size_t)w;
    }
    return 0;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: fleetgw-serial-link (--serial DEV [--baud N] | --connect HOST:PORT) "
               "--broker HOST:PORT\n"
               "       fleetgw-serial-link --help | --version\n");
}

struct link {
    const char *broker_addr;
    int src;
    int broker;
    bool connecting;
    bool linked; /* link mode: bytes from the node go to the broker */
    struct serial_frame frame;
    struct buf up;   /* node -> broker */
    struct buf down; /* broker -> node */
    unsigned long sessions;
};

static void broker_close(struct link *l, const char *why)
{
    if (l->broker >= 0) {
        close(l->broker);
        fprintf(stderr, "serial-link: broker session %lu closed (%s)\n", l->sessions, why);
    }
    l->broker = -1;
    l->connecting = false;
    l->linked = false;
    l->up.len = 0;
    l->down.len = 0;
}

static int broker_open(struct link *l)
{
    int fd = tcp_connect(l->broker_addr, &l->connecting);
    if (fd < 0) {
        fprintf(stderr, "serial-link: cannot connect to the broker %s: %s\n", l->broker_addr,
                strerror(-fd));
        return fd;
    }
    l->broker = fd;
    l->linked = true;
    l->sessions++;
    fprintf(stderr, "serial-link: LINK:BEGIN from the node: broker session %lu to %s\n",
            l->sessions, l->broker_addr);
    return 0;
}

/* Bytes from the node: text (logged, scanned for the marker) or session bytes. */
static void from_node(struct link *l, const uint8_t *p, size_t n)
{
    while (n > 0) {
        bool found;
        size_t used;
        if (!l->linked) {
            used = serial_frame_feed(&l->frame, p, n, &found, log_line, NULL);
            if (found)
                (void)broker_open(l); /* failure: stay in text mode, wait for a new marker */
        } else {
            used = serial_frame_feed(&l->frame, p, n, &found, NULL, NULL);
            size_t keep = used;
            if (keep > BUF_CAP - l->up.len)
                keep = BUF_CAP - l->up.len; /* cannot happen: reads are sized to the room */
            memcpy(l->up.d + l->up.len, p, keep);
            l->up.len += keep;
            if (found) {
                /* The old session gets what came before the marker (best effort). */
                if (!l->connecting)
                    (void)drain(l->broker, &l->up);
                broker_close(l, "the node began a new session");
                (void)broker_open(l);
            }
        }
        p += used;
        n -= used;
    }
}

int main(int argc, char **argv)
{
    const char *serial = NULL, *connect_addr = NULL, *broker = NULL;
    long baud = 115200;
    struct link *l;
    int rc = 1;

    for (int i = 1; i < argc; i += 2) { /* --option value pairs */
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 0;
        }
        if (strcmp(a, "--version") == 0)
            return fleetgw_print_version("fleetgw-serial-link");
        if (v == NULL) {
            fprintf(stderr, "fleetgw-serial-link: unknown option or missing value: %s\n", a);
            usage(stderr);
            return 2;
        }
        if (strcmp(a, "--serial") == 0)
            serial = v;
        else if (strcmp(a, "--baud") == 0)
            baud = strtol(v, NULL, 10);
        else if (strcmp(a, "--connect") == 0)
            connect_addr = v;
        else if (strcmp(a, "--broker") == 0)
            broker = v;
        else {
            fprintf(stderr, "fleetgw-serial-link: unknown option '%s'\n", a);
            usage(stderr);
            return 2;
        }
    }
    if (broker == NULL || (serial == NULL) == (connect_addr == NULL)) {
        fprintf(stderr, "fleetgw-serial-link: --broker and one of --serial, --connect are "
                        "required\n");
        usage(stderr);
        return 2;
    }

    l = calloc(1, sizeof(*l));
    if (l == NULL)
        return 1;
    l->broker_addr = broker;
    l->broker = -1;
    serial_frame_init(&l->frame);

    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    if (serial != NULL) {
        l->src = serial_open(serial, baud);
        if (l->src < 0) {
            fprintf(stderr, "serial-link: cannot open %s at %ld baud: %s\n", serial, baud,
                    strerror(-l->src));
            goto out;
        }
    } else {
        /* The endpoint may not listen yet (QEMU starting): retry for up to 30 s. */
        for (int attempt = 0; attempt < 300 && !stop_flag; attempt++) {
            bool pending;
            l->src = tcp_connect(connect_addr, &pending);
            if (l->src >= 0 && pending) {
                struct pollfd p = {l->src, POLLOUT, 0};
                int err = 0;
                socklen_t el = sizeof(err);
                if (poll(&p, 1, 10000) != 1 ||
                    getsockopt(l->src, SOL_SOCKET, SO_ERROR, &err, &el) != 0 || err != 0) {
                    close(l->src);
                    l->src = -(err != 0 ? err : ETIMEDOUT);
                }
            }
            if (l->src >= 0 || (l->src != -ECONNREFUSED && l->src != -ETIMEDOUT))
                break;
            (void)poll(NULL, 0, 100);
        }
        if (l->src < 0) {
            fprintf(stderr, "serial-link: cannot connect to the serial endpoint %s: %s\n",
                    connect_addr, strerror(-l->src));
            goto out;
        }
    }
    fprintf(stderr, "serial-link: source %s, broker %s: waiting for LINK:BEGIN\n",
            serial != NULL ? serial : connect_addr, broker);

    while (!stop_flag) {
        struct pollfd p[2];
        nfds_t np = 1;
        p[0].fd = l->src;
        p[0].events = (short)((l->up.len < BUF_CAP ? POLLIN : 0) | (l->down.len > 0 ? POLLOUT : 0));
        p[0].revents = 0;
        if (l->broker >= 0) {
            p[1].fd = l->broker;
            p[1].events = (short)(l->connecting ? POLLOUT
                                                : ((l->down.len < BUF_CAP ? POLLIN : 0) |
                                                   (l->up.len > 0 ? POLLOUT : 0)));
            p[1].revents = 0;
            np = 2;
        }
        if (poll(p, np, -1) < 0) {
            if (errno == EINTR)
                continue;
            fprintf(stderr, "serial-link: poll: %s\n", strerror(errno));
            goto out;
        }
        /* Broker side first: its state decides where node bytes go. */
        if (np == 2 && l->broker >= 0) {
            if (l->connecting && (p[1].revents & (POLLOUT | POLLERR | POLLHUP))) {
                int err = 0;
                socklen_t el = sizeof(err);
                if (getsockopt(l->broker, SOL_SOCKET, SO_ERROR, &err, &el) != 0 || err != 0) {
                    fprintf(stderr, "serial-link: broker connect failed: %s\n",
                            strerror(err != 0 ? err : errno));
                    broker_close(l, "connect failed");
                } else {
                    l->connecting = false;
                }
            } else if (!l->connecting) {
                if (p[1].revents & (POLLIN | POLLHUP | POLLERR)) {
                    size_t room = BUF_CAP - l->down.len;
                    ssize_t r = room > 0 ? read(l->broker, l->down.d + l->down.len, room) : 0;
                    if (r > 0)
                        l->down.len += (size_t)r;
                    else if (room > 0 && (r == 0 || (errno != EAGAIN && errno != EINTR)))
                        broker_close(l, r == 0 ? "the broker closed it" : strerror(errno));
                }
                if (l->broker >= 0 && l->up.len > 0 && drain(l->broker, &l->up) < 0)
                    broker_close(l, "write to the broker failed");
            }
        }
        /* (No read while the node->broker buffer is full: read(fd, buf, 0) would look like
         * end of file; a hang-up is seen once there is room again.) */
        if ((p[0].revents & (POLLIN | POLLHUP | POLLERR)) && l->up.len < BUF_CAP) {
            uint8_t tmp[4096];
            size_t room = BUF_CAP - l->up.len;
            if (room > sizeof(tmp))
                room = sizeof(tmp);
            ssize_t r = read(l->src, tmp, room);
            if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
                fprintf(stderr, "serial-link: the serial source closed%s%s\n", r < 0 ? ": " : "",
                        r < 0 ? strerror(errno) : "");
                rc = 0;
                goto out;
            }
            if (r > 0)
                from_node(l, tmp, (size_t)r);
        }
        if (l->down.len > 0 && drain(l->src, &l->down) < 0) {
            fprintf(stderr, "serial-link: write to the serial source failed\n");
            goto out;
        }
        if (l->broker >= 0 && !l->connecting && l->up.len > 0 && drain(l->broker, &l->up) < 0)
            broker_close(l, "write to the broker failed");
    }
    fprintf(stderr, "serial-link: stopping (signal)\n");
    rc = 0;
out:
    if (l->broker >= 0)
        close(l->broker);
    if (l->src >= 0)
        close(l->src);
    free(l);
    return rc;
}
