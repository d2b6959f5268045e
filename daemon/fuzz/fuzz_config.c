/* Fuzz target: the configuration parser (JSON text from the operator's file). */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct config cfg;
    struct config_error err;
    if (config_parse("fuzz.conf", (const char *)data, size, false, &cfg, &err) < 0 &&
        err.message[0] == '\0')
        abort(); /* every refusal must explain itself */
    return 0;
}
