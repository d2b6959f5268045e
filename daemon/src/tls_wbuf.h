/* Write coalescing under TLS: a BIO that takes the TLS records an SSL object writes and
 * keeps them in memory until tls_wbuf_flush(), which hands them to the socket in one
 * write(). libmosquitto calls SSL_write() once per MQTT packet; with this BIO as the SSL's
 * write BIO (SSL_set0_wbio), a batch of packets leaves in one system call and in as few TCP
 * segments as fit, instead of one of each per packet. Nothing is held back across event
 * loop iterations: the owner flushes after every batch of writes.
 *
 * Non-blocking: a flush writes what the socket takes and keeps the rest (then the owner
 * waits for EPOLLOUT); above `cap` buffered bytes the BIO refuses more with a retryable
 * write error, so SSL_write() reports SSL_ERROR_WANT_WRITE as it would on a full socket. */
#ifndef FLEETGWD_TLS_WBUF_H
#define FLEETGWD_TLS_WBUF_H

#include <openssl/bio.h>
#include <stddef.h>

/* A new BIO writing to fd (not owned, not closed). NULL on allocation failure. */
BIO *tls_wbuf_new(int fd, size_t cap);
/* Writes buffered bytes to the socket. 0 when all left, -EAGAIN when some remain (wait for
 * EPOLLOUT), another negative errno when the socket failed (the bytes stay buffered). */
int tls_wbuf_flush(BIO *b) __attribute__((warn_unused_result));
/* Bytes buffered and not yet written. */
size_t tls_wbuf_pending(BIO *b);

#endif
