/* Fuzz target: control socket request lines (bytes from a local client). */
#include "control.h"

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct ctl_request req;
    char err[160];
    err[0] = '\0';
    if (ctl_parse_request((const char *)data, size, &req, err, sizeof(err)) < 0 && err[0] == '\0')
        abort(); /* every refusal carries a reason */
    return 0;
}
