/* fleetgw-tool quote verify --ak AK.pem --nonce HEX [--show] QUOTE.blob
 * Verifies a quote blob made by `fleetgwctl identity quote` with OpenSSL only.
 * Exit: 0 valid, 1 invalid (reason printed), 2 usage or I/O error (tool.h). */
#include "fleetgw/quote.h"
#include "tool.h"
#include "tool_util.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>

static void usage(void)
{
    fprintf(stderr, "usage: fleetgw-tool quote verify --ak AK.pem --nonce HEX [--show] FILE\n"
                    "  checks the attestation key's signature, the nonce, the TPM magic/type\n"
                    "  and that the PCR values in FILE hash to the quoted PCR digest\n");
}

static int quote_verify_cmd(int argc, char **argv)
{
    static const struct option opts[] = {{"ak", required_argument, NULL, 'a'},
                                         {"nonce", required_argument, NULL, 'n'},
                                         {"show", no_argument, NULL, 's'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *ak_path = NULL, *nonce_hex = NULL;
    int show = 0, c, rc = TOOL_USAGE;
    uint8_t nonce[QUOTE_MAX_NONCE];
    size_t nonce_len = 0;
    uint8_t *blob = NULL;
    size_t blob_len = 0;
    EVP_PKEY *ak = NULL;
    FILE *f = NULL;
    struct quote_attest info;
    struct quote_blob parsed;

    optind = 0; /* GNU getopt: full re-initialisation, callable more than once */
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'a':
            ak_path = optarg;
            break;
        case 'n':
            nonce_hex = optarg;
            break;
        case 's':
            show = 1;
            break;
        case 'h':
            usage();
            return TOOL_OK;
        default:
            usage();
            return TOOL_USAGE;
        }
    }
    if (ak_path == NULL || nonce_hex == NULL || optind != argc - 1) {
        usage();
        return TOOL_USAGE;
    }
    if (tool_hex_decode(nonce_hex, nonce, sizeof(nonce), &nonce_len) < 0) {
        fprintf(stderr, "quote verify: --nonce must be hex, at most %d bytes\n", QUOTE_MAX_NONCE);
        return TOOL_USAGE;
    }
    f = fopen(ak_path, "re");
    if (f == NULL) {
        fprintf(stderr, "quote verify: cannot open %s: %s\n", ak_path, strerror(errno));
        goto out;
    }
    ak = PEM_read_PUBKEY(f, NULL, NULL, NULL);
    fclose(f);
    if (ak == NULL) {
        fprintf(stderr, "quote verify: %s holds no PEM public key\n", ak_path);
        goto out;
    }
    blob = malloc(QUOTE_MAX_BLOB);
    if (blob == NULL)
        goto out;
    int fr = tool_read_capped(argv[optind], blob, QUOTE_MAX_BLOB, &blob_len);
    if (fr == -EFBIG) {
        fprintf(stderr, "quote verify: %s: larger than any quote blob (%d bytes)\n", argv[optind],
                QUOTE_MAX_BLOB);
        rc = TOOL_INVALID;
        goto out;
    }
    if (fr != 0) {
        fprintf(stderr, "quote verify: cannot read %s: %s\n", argv[optind], strerror(-fr));
        goto out;
    }
    enum quote_result res = quote_verify(blob, blob_len, ak, nonce, nonce_len, &info);
    if (res != QUOTE_OK) {
        printf("INVALID: %s: %s\n", argv[optind], quote_result_str(res));
        rc = TOOL_INVALID;
        goto out;
    }
    printf("VALID: %s: signed by the attestation key, nonce matches, %s\n", argv[optind],
           "PCR values match the quoted digest");
    if (show && quote_blob_parse(blob, blob_len, &parsed) == QUOTE_OK) {
        printf("clock %llu reset %u restart %u safe %u firmware 0x%016llx\n",
               (unsigned long long)info.clock, info.reset_count, info.restart_count, info.safe,
               (unsigned long long)info.firmware_version);
        for (size_t i = 0; i < parsed.npcrs; i++) {
            const char *name = quote_hash_name(parsed.pcrs[i].alg);
            printf("%s:%u=", name ? name : "?", parsed.pcrs[i].index);
            tool_print_hex(stdout, parsed.pcrs[i].value, parsed.pcrs[i].size);
            printf("\n");
        }
    }
    rc = TOOL_OK;
out:
    ERR_clear_error();
    EVP_PKEY_free(ak);
    free(blob);
    return rc;
}

int tool_quote(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "verify") == 0)
        return quote_verify_cmd(argc - 1, argv + 1);
    usage();
    return TOOL_USAGE;
}
