/* Byte-stream transport seam of the node agent. A transport is a pair of non-blocking
 * read/write callbacks over an opaque context: a TCP socket (posix port), a UART (MCU port),
 * or the TLS layer (node_tls.h), which itself sits on a lower transport. The MQTT client
 * writes through one; the agent reads from one and feeds the bytes to the client. */
#ifndef FLEETGW_TRANSPORT_H
#define FLEETGW_TRANSPORT_H

#include <stddef.h>
#include <stdint.h>

/* Negative results of read/write; a non-negative result is a byte count. */
enum {
    TRANSPORT_AGAIN = -1, /* nothing can be moved now; retry when the port says it is ready */
    TRANSPORT_EOF = -2,   /* the peer closed the stream (read only) */
    TRANSPORT_ERROR = -3  /* the stream is broken */
};

struct transport {
    void *ctx;
    /* Reads up to len bytes into buf: >0 bytes read, or TRANSPORT_AGAIN/_EOF/_ERROR. */
    long (*read)(void *ctx, uint8_t *buf, size_t len);
    /* Writes up to len bytes: >0 bytes accepted, or TRANSPORT_AGAIN/_ERROR. When it returns
     * TRANSPORT_AGAIN the caller retries later with the same leading bytes (TLS needs this). */
    long (*write)(void *ctx, const uint8_t *buf, size_t len);
};

#endif
