#include "fleetgw_version.h"
#include "tool.h"

#include <stdio.h>
#include <string.h>

/* Command groups. Each line is added with the tool_<group>.c that implements it. */
static const struct tool_group groups[] = {
    {"key", "P-256 key pairs (PEM): gen, pub", tool_key},
    {"image", "MCUboot images: sign, verify, info", tool_image},
    {"token", "PSA attestation tokens: make, verify, decode", tool_token},
    {"quote", "TPM quotes: verify (AK signature, nonce, PCR values)", tool_quote},
    {NULL, NULL, NULL},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: fleetgw-tool <group> <command> [options]\n"
               "       fleetgw-tool --help | --version\n\ngroups:\n");
    for (const struct tool_group *g = groups; g->name != NULL; g++)
        fprintf(f, "  %-8s %s\n", g->name, g->summary);
    fprintf(f, "\nexit codes: 0 valid, 1 invalid (reason printed), 2 usage or I/O error\n");
}

int main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? TOOL_USAGE : TOOL_OK;
    }
    if (strcmp(argv[1], "--version") == 0)
        return fleetgw_print_version("fleetgw-tool");
    for (const struct tool_group *g = groups; g->name != NULL; g++)
        if (strcmp(argv[1], g->name) == 0)
            return g->run(argc - 1, argv + 1);
    fprintf(stderr, "fleetgw-tool: unknown %s '%s'\n", argv[1][0] == '-' ? "option" : "group",
            argv[1]);
    usage(stderr);
    return TOOL_USAGE;
}
