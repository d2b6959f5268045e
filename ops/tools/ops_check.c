/* fleetgw-ops-check: runs the checks of `fleetgwctl check` (fleetgw/check.h) on a
 * configuration file. A test tool; fleetgwctl is the operator's entry point. */
#include <stdio.h>
#include <string.h>

#include "fleetgw/check.h"
#include "fleetgw_version.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: fleetgw-ops-check [--config FILE] [--json]\n"
               "       fleetgw-ops-check --help | --version\n");
}

int main(int argc, char **argv)
{
    const char *config = NULL;
    int json = 0;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0) {
            json = 1;
        } else if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
            config = argv[++i];
        } else if (strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(argv[i], "--version") == 0) {
            return fleetgw_print_version("fleetgw-ops-check");
        } else {
            fprintf(stderr, "fleetgw-ops-check: %s '%s'\n",
                    strcmp(argv[i], "--config") == 0 ? "missing value for" : "unknown option",
                    argv[i]);
            usage(stderr);
            return CHECK_EXIT_ERROR;
        }
    }
    return check_run(config, json, stdout);
}
