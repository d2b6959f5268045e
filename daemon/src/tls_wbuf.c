#define _GNU_SOURCE
#include "tls_wbuf.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct wbuf {
    int fd;
    size_t cap;
    size_t head, len; /* bytes [head, len) are waiting */
    size_t alloc;
    char *buf;
    int last_errno; /* of the last failed write, for tls_wbuf_flush */
};

static BIO_METHOD *wbuf_method;

static int flush_some(struct wbuf *w)
{
    while (w->head < w->len) {
        ssize_t n = send(w->fd, w->buf + w->head, w->len - w->head, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            w->last_errno = errno;
            return errno == EAGAIN || errno == EWOULDBLOCK ? -EAGAIN : -errno;
        }
        w->head += (size_t)n;
    }
    w->head = w->len = 0;
    return 0;
}

static int wbuf_write(BIO *b, const char *data, int dlen)
{
    struct wbuf *w = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    if (w == NULL || dlen < 0)
        return -1;
    size_t n = (size_t)dlen;
    if (w->len - w->head + n > w->cap) {
        /* Over the cap: write out what is buffered first. If the socket is full, SSL_write()
         * says WANT_WRITE and is called again after EPOLLOUT; once the buffer is empty, a
         * record larger than the cap is taken whole. */
        int r = flush_some(w);
        if (r < 0 && r != -EAGAIN)
            return -1;
        if (w->len - w->head > 0 && w->len - w->head + n > w->cap) {
            BIO_set_retry_write(b);
            return -1;
        }
    }
    if (w->head > 0 && w->len + n > w->alloc) {
        memmove(w->buf, w->buf + w->head, w->len - w->head);
        w->len -= w->head;
        w->head = 0;
    }
    if (w->len + n > w->alloc) {
        size_t na = w->alloc ? w->alloc : 16384;
        while (na < w->len + n)
            na *= 2;
        char *nb = realloc(w->buf, na);
        if (nb == NULL)
            return -1;
        w->buf = nb;
        w->alloc = na;
    }
    memcpy(w->buf + w->len, data, n);
    w->len += n;
    return dlen;
}

static long wbuf_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    (void)num;
    (void)ptr;
    struct wbuf *w = BIO_get_data(b);
    switch (cmd) {
    case BIO_CTRL_FLUSH:
        /* SSL flushes after handshake flights and alerts; say done once all is written. */
        BIO_clear_retry_flags(b);
        if (w != NULL && flush_some(w) == -EAGAIN) {
            BIO_set_retry_write(b);
            return 0;
        }
        return 1;
    case BIO_CTRL_WPENDING:
        return w != NULL ? (long)(w->len - w->head) : 0;
    case BIO_CTRL_PENDING:
        return 0;
    case BIO_CTRL_DUP:
        return 1;
    default:
        return 0;
    }
}

static int wbuf_create(BIO *b)
{
    BIO_set_init(b, 1);
    return 1;
}

static int wbuf_destroy(BIO *b)
{
    struct wbuf *w = BIO_get_data(b);
    if (w != NULL) {
        free(w->buf);
        free(w);
    }
    BIO_set_data(b, NULL);
    return 1;
}

BIO *tls_wbuf_new(int fd, size_t cap)
{
    if (wbuf_method == NULL) {
        BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "fleetgw-wbuf");
        if (m == NULL || !BIO_meth_set_write(m, wbuf_write) || !BIO_meth_set_ctrl(m, wbuf_ctrl) ||
            !BIO_meth_set_create(m, wbuf_create) || !BIO_meth_set_destroy(m, wbuf_destroy)) {
            BIO_meth_free(m);
            return NULL;
        }
        wbuf_method = m;
    }
    struct wbuf *w = calloc(1, sizeof(*w));
    if (w == NULL)
        return NULL;
    w->fd = fd;
    w->cap = cap;
    BIO *b = BIO_new(wbuf_method);
    if (b == NULL) {
        free(w);
        return NULL;
    }
    BIO_set_data(b, w);
    return b;
}

int tls_wbuf_flush(BIO *b)
{
    struct wbuf *w = BIO_get_data(b);
    if (w == NULL)
        return -EINVAL;
    return flush_some(w);
}

size_t tls_wbuf_pending(BIO *b)
{
    struct wbuf *w = BIO_get_data(b);
    return w != NULL ? w->len - w->head : 0;
}
