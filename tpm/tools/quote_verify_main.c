/* fleetgw-quote-verify: `fleetgw-tool quote verify` as a stand-alone program, until the tool
 * dispatcher lists the quote group. Usage: fleetgw-quote-verify --ak AK.pem --nonce HEX FILE */
#include "tool.h"

#include <stdio.h>

enum { MAX_ARGS = 32 };

int main(int argc, char **argv)
{
    static char quote[] = "quote", verify[] = "verify";
    char *args[MAX_ARGS + 2];
    if (argc < 1 || argc > MAX_ARGS) {
        fprintf(stderr, "usage: fleetgw-quote-verify --ak AK.pem --nonce HEX FILE\n");
        return TOOL_USAGE;
    }
    /* tool_quote sees "quote verify <our arguments>". */
    args[0] = quote;
    args[1] = verify;
    for (int i = 1; i < argc; i++)
        args[i + 1] = argv[i];
    args[argc + 1] = NULL;
    return tool_quote(argc + 1, args);
}
