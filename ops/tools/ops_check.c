/* fleetgw-ops-check: runs the checks of `fleetgwctl check` (fleetgw/check.h) on a
 * configuration file. A test tool; fleetgwctl is the operator's entry point. */
#include <stdio.h>
#include <string.h>

#include "fleetgw/check.h"

int main(int argc, char **argv)
{
    const char *config = NULL;
    int json = 0;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0) {
            json = 1;
        } else if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
            config = argv[++i];
        } else {
            fprintf(stderr, "usage: fleetgw-ops-check [--config FILE] [--json]\n");
            return CHECK_EXIT_ERROR;
        }
    }
    return check_run(config, json, stdout);
}
