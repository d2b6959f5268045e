/* Fuzz target: the serial-link marker scanner over arbitrary UART bytes, fed in chunks whose
 * sizes come from the input's first byte; checks the consumed counts and that a reported
 * marker really ends at the returned offset. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "serial_frame.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void sink(void *ctx, const char *line, size_t len)
{
    size_t *total = ctx;
    if (len == 0 || len > SERIAL_LINE_MAX || strlen(line) != len)
        abort();
    *total += len;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct serial_frame f;
    size_t step, off = 0, total = 0;
    if (size == 0)
        return 0;
    step = (size_t)(data[0] % 17u) + 1u;
    data++;
    size--;
    serial_frame_init(&f);
    while (off < size) {
        size_t n = size - off < step ? size - off : step;
        bool found;
        size_t used =
            serial_frame_feed(&f, data + off, n, &found, (off & 1u) ? sink : NULL, &total);
        if (used > n || (!found && used != n) || (found && used == 0))
            abort();
        if (found && off + used >= SERIAL_MARKER_LEN && memcmp(data + off + used - 1, "\n", 1) != 0)
            abort();
        off += used;
    }
    if (total > size)
        abort();
    return 0;
}
