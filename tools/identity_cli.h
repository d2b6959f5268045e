/* `identity` commands (fleetgwctl identity ...).
 * argv[0] is the group/program name, argv[1] the command. Exit codes: IDENTITY_EXIT_*. */
#ifndef FLEETGW_IDENTITY_CLI_H
#define FLEETGW_IDENTITY_CLI_H

enum {
    IDENTITY_EXIT_OK = 0,
    IDENTITY_EXIT_FAIL = 1,         /* any other failure (message says what) */
    IDENTITY_EXIT_USAGE = 2,        /* bad command line */
    IDENTITY_EXIT_NO_TPM = 3,       /* no TPM reachable through the TCTI */
    IDENTITY_EXIT_LOCKOUT = 4,      /* TPM in dictionary-attack lockout */
    IDENTITY_EXIT_HANDLE_TAKEN = 5, /* a different object at the handle / in the key file */
    IDENTITY_EXIT_AUTH = 6,         /* wrong authorization value (e.g. --owner-auth) */
    IDENTITY_EXIT_NO_PROVIDER = 7,  /* the OpenSSL tpm2 provider cannot be loaded */
    IDENTITY_EXIT_NO_KEY = 8,       /* no key yet: run `identity init` */
    IDENTITY_EXIT_POLICY = 9,       /* PCR policy not satisfied (unseal) */
};

int identity_cli_main(int argc, char **argv);

#endif
