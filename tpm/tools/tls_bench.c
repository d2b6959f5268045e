/* fleetgw-tls-bench: N mutual-TLS handshakes (TCP connect + handshake + close) with a
 * context from tpm_tls_ctx_new — the key in the TPM (--tcti) or a PEM key file (no --tcti) —
 * against a TLS server on loopback. Prints "handshakes N mean_ms M min_ms A max_ms B".
 * Exit: 0 ok, 2 usage, 3 TLS context, 4 a handshake failed. */
#include "fleetgw/tpm_tls.h"
#include "tls_tool.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] = "usage: fleetgw-tls-bench --port P --cert C --key K --cafile CA "
                            "[--tcti T] [--count N]\n"
                            "       fleetgw-tls-bench --help | --version\n";

int main(int argc, char **argv)
{
    struct tpm_tls_config cfg = {.server_name = "127.0.0.1"};
    int port = 0, n = 50, c;
    static const struct option opts[] = {
        TLS_TOOL_LONG_OPTIONS, {"count", required_argument, NULL, 'n'}, {NULL, 0, NULL, 0}};
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (tls_tool_option(c, optarg, &cfg, &port))
            continue;
        if (tls_tool_info_option(c, "fleetgw-tls-bench", usage))
            return 0;
        switch (c) {
        case 'n':
            n = (int)strtol(optarg, NULL, 10);
            break;
        default:
            fputs(usage, stderr);
            return 2;
        }
    }
    if (optind != argc) {
        fprintf(stderr, "tls-bench: unexpected argument '%s'\n", argv[optind]);
        fputs(usage, stderr);
        return 2;
    }
    if (port <= 0 || port > 65535 || n <= 0 || n > 100000) {
        fprintf(stderr, "tls-bench: --port and a --count in 1..100000 are required\n");
        fputs(usage, stderr);
        return 2;
    }
    SSL_CTX *ctx = tls_tool_ctx("tls-bench", &cfg);
    if (ctx == NULL)
        return 3;
    /* Every handshake is a full one: no session resumption. */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
    double sum = 0, min = 1e18, max = 0;
    for (int i = 0; i < n; i++) {
        double ms = 0;
        if (tls_tool_handshake("tls-bench", ctx, port, &ms) < 0) {
            fprintf(stderr, "tls-bench: handshake %d failed\n", i + 1);
            tpm_tls_ctx_free(ctx);
            return 4;
        }
        sum += ms;
        min = ms < min ? ms : min;
        max = ms > max ? ms : max;
    }
    printf("handshakes %d mean_ms %.3f min_ms %.3f max_ms %.3f\n", n, sum / n, min, max);
    tpm_tls_ctx_free(ctx);
    return 0;
}
