/* tls_wbuf: coalesced writes arrive whole and in order; a full socket makes flush say
 * -EAGAIN and writes beyond the cap retryable, with nothing lost or reordered once the
 * peer reads; a dead peer is an error, not a retry. */
#include "check.h"
#include "tls_wbuf.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static size_t drain(int fd, uint8_t *out, size_t cap)
{
    size_t got = 0;
    for (;;) {
        ssize_t n = recv(fd, out + got, cap - got, MSG_DONTWAIT);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    return got;
}

int main(void)
{
    int sv[2];
    enum { TOTAL = 4 * 1024 * 1024, CAP = 64 * 1024, CHUNK = 997 };
    uint8_t *src = malloc(TOTAL), *dst = malloc(TOTAL);

    signal(SIGPIPE, SIG_IGN);
    if (src == NULL || dst == NULL || socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
        check_skip("no memory or socketpair");
    for (size_t i = 0; i < TOTAL; i++)
        src[i] = (uint8_t)(i * 31u + (i >> 9));
    CHECK_EQ_INT(fcntl(sv[0], F_SETFL, O_NONBLOCK), 0);

    BIO *b = tls_wbuf_new(sv[0], CAP);
    CHECK(b != NULL);

    /* Small writes are buffered, nothing reaches the socket before the flush. */
    CHECK_EQ_INT(BIO_write(b, src, 10), 10);
    CHECK_EQ_INT(BIO_write(b, src + 10, 20), 20);
    CHECK_EQ_INT(tls_wbuf_pending(b), 30);
    CHECK_EQ_INT(BIO_ctrl_wpending(b), 30);
    CHECK_EQ_INT(drain(sv[1], dst, TOTAL), 0);
    CHECK_EQ_INT(tls_wbuf_flush(b), 0);
    CHECK_EQ_INT(tls_wbuf_pending(b), 0);
    CHECK_EQ_INT(drain(sv[1], dst, TOTAL), 30);
    CHECK(memcmp(dst, src, 30) == 0);

    /* Far more than the socket holds: writes go on until the cap with the socket full, then
     * are refused as retryable; the peer reads, the writer flushes and retries the same
     * bytes (as SSL does); in the end every byte arrived once, in order. */
    size_t off = 0, got = 0;
    unsigned retries = 0, eagain = 0;
    while (off < TOTAL) {
        int want = (int)(TOTAL - off < CHUNK ? TOTAL - off : CHUNK);
        int n = BIO_write(b, src + off, want);
        if (n == want) {
            off += (size_t)n;
            continue;
        }
        CHECK_EQ_INT(n, -1);
        CHECK(BIO_should_retry(b) && BIO_should_write(b));
        CHECK(tls_wbuf_pending(b) + (size_t)want > CAP);
        retries++;
        int r = tls_wbuf_flush(b);
        if (r == -EAGAIN)
            eagain++;
        else
            CHECK_EQ_INT(r, 0);
        got += drain(sv[1], dst + got, TOTAL - got);
    }
    for (int i = 0; i < 1000 && tls_wbuf_pending(b) > 0; i++) {
        int r = tls_wbuf_flush(b);
        CHECK(r == 0 || r == -EAGAIN);
        got += drain(sv[1], dst + got, TOTAL - got);
    }
    got += drain(sv[1], dst + got, TOTAL - got);
    CHECK_EQ_INT(tls_wbuf_pending(b), 0);
    CHECK_EQ_INT(got, TOTAL);
    CHECK(memcmp(dst, src, TOTAL) == 0);
    CHECK(retries > 0);
    CHECK(eagain > 0);

    /* BIO_flush says "retry" while bytes remain, 1 when all are written. */
    CHECK_EQ_INT(BIO_write(b, src, 100), 100);
    CHECK_EQ_INT(BIO_flush(b), 1);
    CHECK_EQ_INT(drain(sv[1], dst, TOTAL), 100);

    /* The peer is gone: a flush is an error (EPIPE), not -EAGAIN, and the bytes stay. */
    close(sv[1]);
    CHECK_EQ_INT(BIO_write(b, src, 50), 50);
    CHECK_EQ_INT(tls_wbuf_flush(b), -EPIPE);
    CHECK_EQ_INT(tls_wbuf_pending(b), 50);

    BIO_free(b);
    close(sv[0]);
    free(src);
    free(dst);
    return check_finish();
}
