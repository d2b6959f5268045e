/* Framing of the node's UART as seen by fleetgw-serial-link (docs/firmware.md "Serial
 * link"). The UART starts in text mode (boot and log lines). The node switches it to link
 * mode with the marker line LINK:BEGIN\r\n: every byte after the marker belongs to one TLS
 * session with the broker, until the broker side ends or the node sends the marker again
 * (a new session: the node restarted or reconnected).
 *
 * serial_frame_feed() scans a chunk of UART bytes for the marker. In text mode it also
 * splits the bytes before the marker into printable lines for the log. */
#ifndef FLEETGW_SERIAL_FRAME_H
#define FLEETGW_SERIAL_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SERIAL_MARKER     "LINK:BEGIN\r\n"
#define SERIAL_MARKER_LEN 12u
#define SERIAL_LINE_MAX   160u /* longer text lines are split */

/* Called with each complete text line (no line end, non-printable bytes replaced by '.'). */
typedef void (*serial_line_fn)(void *ctx, const char *line, size_t len);

struct serial_frame {
    size_t matched; /* marker bytes matched so far */
    char line[SERIAL_LINE_MAX + 1];
    size_t line_len;
};

void serial_frame_init(struct serial_frame *f);

/* Scans buf[0..len). Returns how many bytes were consumed: all of them when no marker ends
 * in this chunk (*found = false), else up to and including the marker's last byte
 * (*found = true); the caller passes the rest again (it belongs to the new session). The
 * matcher state carries over between calls, so a marker split across chunks is found.
 * on_line (may be NULL: link mode, no text) receives the text lines completed in the
 * consumed bytes, and text left before a marker; the marker itself is not a line. */
size_t serial_frame_feed(struct serial_frame *f, const uint8_t *buf, size_t len, bool *found,
                         serial_line_fn on_line, void *ctx);

#endif
