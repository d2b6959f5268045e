/* fleetgw-identity: the `identity` commands as a stand-alone program (fleetgwctl identity
 * runs the same identity_cli_main). */
#include "fleetgw/identity_cli.h"

int main(int argc, char **argv)
{
    return identity_cli_main(argc, argv);
}
