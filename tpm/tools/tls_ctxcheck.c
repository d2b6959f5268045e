/* fleetgw-tls-ctxcheck: proves that a TPM-backed TLS context leaves the rest of the process's
 * crypto alone. It builds the context with tpm_tls_ctx_new (the key in the TPM), does one
 * mutual-TLS handshake with it, then checks the process's default OpenSSL library context:
 *   - the tpm2 provider is not loaded there,
 *   - an ECDSA signature fetched there with no property query comes from the default
 *     provider,
 *   - proto's crypto_p256_verify (what fleetgwd uses for PSA tokens) accepts the given
 *     P-256 signature over the given SHA-256 digest and refuses it with one bit flipped,
 * then does a second handshake (the verification did not disturb the TPM context).
 * A first context is used for one handshake and freed with a plain SSL_CTX_free before the
 * one that is checked.
 * Exit: 0 all held, 2 usage, 3 TLS context, 4 a handshake failed, 6 a default-context check
 * failed (each failure named on stderr). */
#include "fleetgw/crypto.h"
#include "fleetgw/tpm_tls.h"
#include "tls_tool.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/provider.h>

/* Exactly 2*len hex digits into out. */
static int hex_exact(const char *s, uint8_t *out, size_t len)
{
    if (s == NULL || strlen(s) != 2 * len)
        return -1;
    for (size_t i = 0; i < len; i++) {
        unsigned v = 0;
        for (int k = 0; k < 2; k++) {
            char ch = s[2 * i + (size_t)k];
            unsigned d;
            if (ch >= '0' && ch <= '9')
                d = (unsigned)(ch - '0');
            else if (ch >= 'a' && ch <= 'f')
                d = (unsigned)(ch - 'a' + 10);
            else if (ch >= 'A' && ch <= 'F')
                d = (unsigned)(ch - 'A' + 10);
            else
                return -1;
            v = v * 16 + d;
        }
        out[i] = (uint8_t)v;
    }
    return 0;
}

/* The default-context checks; returns the number that failed. */
static int check_default_ctx(const uint8_t *pub, const uint8_t *digest, const uint8_t *sig)
{
    int failed = 0;

    if (OSSL_PROVIDER_available(NULL, "tpm2")) {
        fprintf(stderr, "tls-ctxcheck: FAIL the tpm2 provider is loaded in the default library "
                        "context\n");
        failed++;
    }
    EVP_SIGNATURE *s = EVP_SIGNATURE_fetch(NULL, "ECDSA", NULL);
    const char *prov = s != NULL ? OSSL_PROVIDER_get0_name(EVP_SIGNATURE_get0_provider(s)) : NULL;
    if (prov == NULL || strcmp(prov, "default") != 0) {
        fprintf(stderr,
                "tls-ctxcheck: FAIL ECDSA in the default library context comes from provider "
                "'%s', not 'default'\n",
                prov != NULL ? prov : "(none)");
        failed++;
    } else {
        printf("tls-ctxcheck: default context ECDSA provider: %s\n", prov);
    }
    EVP_SIGNATURE_free(s);

    if (crypto_p256_verify(pub, digest, sig) != 0) {
        fprintf(stderr, "tls-ctxcheck: FAIL proto's ECDSA P-256 verification refuses a valid "
                        "signature\n");
        failed++;
    } else {
        printf("tls-ctxcheck: proto's ECDSA P-256 verification accepts the valid signature\n");
    }
    uint8_t bad[CRYPTO_P256_SIG_LEN];
    memcpy(bad, sig, sizeof(bad));
    bad[CRYPTO_P256_SIG_LEN - 1] ^= 0x01;
    if (crypto_p256_verify(pub, digest, bad) == 0) {
        fprintf(stderr, "tls-ctxcheck: FAIL proto's ECDSA P-256 verification accepts a "
                        "corrupted signature\n");
        failed++;
    }
    return failed;
}

static const char usage[] = "usage: fleetgw-tls-ctxcheck --port P --cert C --key K --cafile CA "
                            "--tcti T --pub HEX65 --digest HEX32 --sig HEX64\n"
                            "       fleetgw-tls-ctxcheck --help | --version\n";

int main(int argc, char **argv)
{
    struct tpm_tls_config cfg = {.server_name = "127.0.0.1"};
    int port = 0, c, rc;
    const char *pub_hex = NULL, *digest_hex = NULL, *sig_hex = NULL;
    uint8_t pub[CRYPTO_P256_PUB_LEN], digest[CRYPTO_SHA256_LEN], sig[CRYPTO_P256_SIG_LEN];
    static const struct option opts[] = {TLS_TOOL_LONG_OPTIONS,
                                         {"pub", required_argument, NULL, 'P'},
                                         {"digest", required_argument, NULL, 'D'},
                                         {"sig", required_argument, NULL, 'S'},
                                         {NULL, 0, NULL, 0}};
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (tls_tool_option(c, optarg, &cfg, &port))
            continue;
        if (tls_tool_info_option(c, "fleetgw-tls-ctxcheck", usage))
            return 0;
        switch (c) {
        case 'P':
            pub_hex = optarg;
            break;
        case 'D':
            digest_hex = optarg;
            break;
        case 'S':
            sig_hex = optarg;
            break;
        default:
            fputs(usage, stderr);
            return 2;
        }
    }
    if (port <= 0 || port > 65535 || cfg.tcti == NULL || cfg.tcti[0] == '\0' ||
        hex_exact(pub_hex, pub, sizeof(pub)) < 0 ||
        hex_exact(digest_hex, digest, sizeof(digest)) < 0 ||
        hex_exact(sig_hex, sig, sizeof(sig)) < 0) {
        fprintf(stderr, "tls-ctxcheck: --port, --tcti, --pub (65 bytes hex), --digest (32) and "
                        "--sig (64, r||s) are required\n");
        fputs(usage, stderr);
        return 2;
    }
    /* A first context, used once and freed with a plain SSL_CTX_free (as fleetgwd does):
     * its private library context is closed by the next tpm_tls_ctx_new (under ASan this
     * checks that nothing of it is used after that). */
    double ms = 0;
    SSL_CTX *ctx = tls_tool_ctx("tls-ctxcheck", &cfg);
    if (ctx == NULL)
        return 3;
    rc = tls_tool_handshake("tls-ctxcheck", ctx, port, &ms);
    SSL_CTX_free(ctx);
    if (rc < 0) {
        fprintf(stderr, "tls-ctxcheck: the handshake with the first context failed\n");
        return 4;
    }
    ctx = tls_tool_ctx("tls-ctxcheck", &cfg);
    if (ctx == NULL)
        return 3;
    if (tls_tool_handshake("tls-ctxcheck", ctx, port, &ms) < 0) {
        fprintf(stderr, "tls-ctxcheck: the first mutual-TLS handshake failed\n");
        rc = 4;
        goto out;
    }
    printf("tls-ctxcheck: mutual-TLS handshake with the TPM key in %.1f ms\n", ms);
    int failed = check_default_ctx(pub, digest, sig);
    if (tls_tool_handshake("tls-ctxcheck", ctx, port, &ms) < 0) {
        fprintf(stderr, "tls-ctxcheck: the handshake after the verification failed\n");
        rc = 4;
        goto out;
    }
    printf("tls-ctxcheck: second handshake in %.1f ms\n", ms);
    rc = failed == 0 ? 0 : 6;
    if (rc == 0)
        printf("tls-ctxcheck: the default library context is untouched\n");
out:
    tpm_tls_ctx_free(ctx);
    return rc;
}
