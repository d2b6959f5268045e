/* Marker scanner of the serial link (serial_frame.h). */
#include "serial_frame.h"

#include <string.h>

void serial_frame_init(struct serial_frame *f)
{
    memset(f, 0, sizeof(*f));
}

static void line_flush(struct serial_frame *f, serial_line_fn on_line, void *ctx)
{
    if (f->line_len > 0 && on_line != NULL) {
        f->line[f->line_len] = '\0';
        on_line(ctx, f->line, f->line_len);
    }
    f->line_len = 0;
}

static void line_add(struct serial_frame *f, uint8_t c, serial_line_fn on_line, void *ctx)
{
    if (on_line == NULL)
        return;
    if (c == '\n') {
        line_flush(f, on_line, ctx);
        return;
    }
    if (c == '\r')
        return;
    if (f->line_len == SERIAL_LINE_MAX)
        line_flush(f, on_line, ctx);
    f->line[f->line_len++] = (c >= 0x20 && c < 0x7F) ? (char)c : '.';
}

size_t serial_frame_feed(struct serial_frame *f, const uint8_t *buf, size_t len, bool *found,
                         serial_line_fn on_line, void *ctx)
{
    size_t i;
    *found = false;
    for (i = 0; i < len; i++) {
        uint8_t c = buf[i];
        if (c == (uint8_t)SERIAL_MARKER[f->matched]) {
            f->matched++;
            if (f->matched == SERIAL_MARKER_LEN) {
                f->matched = 0;
                line_flush(f, on_line, ctx); /* text before the marker (no line end) */
                *found = true;
                return i + 1;
            }
            continue;
        }
        /* Mismatch: the held-back marker prefix was ordinary text. 'L' occurs only at the
         * marker's start, so the prefix cannot overlap a new match except via c itself. */
        for (size_t k = 0; k < f->matched; k++)
            line_add(f, (uint8_t)SERIAL_MARKER[k], on_line, ctx);
        f->matched = 0;
        if (c == (uint8_t)SERIAL_MARKER[0]) {
            f->matched = 1;
            continue;
        }
        line_add(f, c, on_line, ctx);
    }
    return i;
}
