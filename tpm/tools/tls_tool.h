/* What the TLS test tools (fleetgw-tls-probe, fleetgw-tls-bench, fleetgw-tls-ctxcheck) share:
 * the options that describe the client TLS context and the server's port, the context itself,
 * one handshake, OpenSSL's error queue on stderr and a monotonic clock. */
#ifndef FLEETGW_TLS_TOOL_H
#define FLEETGW_TLS_TOOL_H

#include <getopt.h>

#include "fleetgw/tpm_tls.h"

/* struct option entries for --port --cert --key --cafile --tcti --server-name, and --help
 * ('H') and --version ('V') (tls_tool_info_option). */
#define TLS_TOOL_LONG_OPTIONS                                                                      \
    {"port", required_argument, NULL, 'p'}, {"cert", required_argument, NULL, 'c'},                \
        {"key", required_argument, NULL, 'k'}, {"cafile", required_argument, NULL, 'a'},           \
        {"tcti", required_argument, NULL, 't'}, {"server-name", required_argument, NULL, 's'},     \
        {"help", no_argument, NULL, 'H'},                                                          \
    {                                                                                              \
        "version", no_argument, NULL, 'V'                                                          \
    }

/* Takes getopt_long's c and optarg when c is one of TLS_TOOL_LONG_OPTIONS (returns 1),
 * else returns 0 and changes nothing. */
int tls_tool_option(int c, const char *arg, struct tpm_tls_config *cfg, int *port);

/* --help ('H': usage on stdout) or --version ('V': "prog VERSION"): returns 1 after printing
 * (the program exits 0), else 0 and prints nothing. */
int tls_tool_info_option(int c, const char *prog, const char *usage);

/* tpm_tls_ctx_new(); on failure prints "<prog>: TLS context: <reason>" and returns NULL. */
SSL_CTX *tls_tool_ctx(const char *prog, const struct tpm_tls_config *cfg);

/* Prints and empties OpenSSL's error queue, one "<prog>: <error>" line each. */
void tls_tool_print_ssl_errors(const char *prog);

/* One full handshake with ctx to 127.0.0.1:port (TCP connect + TLS handshake, then close);
 * 0 and its duration in *ms, or -1 after printing OpenSSL's errors as "<prog>: ...". */
int tls_tool_handshake(const char *prog, SSL_CTX *ctx, int port, double *ms);

/* CLOCK_MONOTONIC in milliseconds. */
double tls_tool_now_ms(void);

#endif
