/* Shared by fleetgw-tls-probe and fleetgw-tls-bench: see tls_tool.h. */
#include "tls_tool.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>

#include "fleetgw_version.h"

int tls_tool_option(int c, const char *arg, struct tpm_tls_config *cfg, int *port)
{
    switch (c) {
    case 'p':
        *port = (int)strtol(arg, NULL, 10);
        return 1;
    case 'c':
        cfg->cert_file = arg;
        return 1;
    case 'k':
        cfg->key = arg;
        return 1;
    case 'a':
        cfg->ca_file = arg;
        return 1;
    case 't':
        cfg->tcti = arg;
        return 1;
    case 's':
        cfg->server_name = arg;
        return 1;
    default:
        return 0;
    }
}

int tls_tool_info_option(int c, const char *prog, const char *usage)
{
    if (c == 'H')
        fputs(usage, stdout);
    else if (c == 'V')
        fleetgw_print_version(prog);
    return c == 'H' || c == 'V';
}

SSL_CTX *tls_tool_ctx(const char *prog, const struct tpm_tls_config *cfg)
{
    SSL_CTX *ctx = NULL;
    char err[512] = "";
    if (tpm_tls_ctx_new(cfg, &ctx, err, sizeof(err)) < 0) {
        fprintf(stderr, "%s: TLS context: %s\n", prog, err);
        return NULL;
    }
    return ctx;
}

void tls_tool_print_ssl_errors(const char *prog)
{
    unsigned long e;
    while ((e = ERR_get_error()) != 0) {
        char buf[256];
        ERR_error_string_n(e, buf, sizeof(buf));
        fprintf(stderr, "%s: %s\n", prog, buf);
    }
}

double tls_tool_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

int tls_tool_handshake(const char *prog, SSL_CTX *ctx, int port, double *ms)
{
    int rc = -1;
    SSL *ssl = NULL;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    double t0 = tls_tool_now_ms();
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
        goto out;
    ssl = SSL_new(ctx);
    if (ssl == NULL || SSL_set_fd(ssl, fd) != 1 || SSL_connect(ssl) != 1)
        goto out;
    *ms = tls_tool_now_ms() - t0;
    (void)SSL_shutdown(ssl);
    rc = 0;
out:
    if (rc < 0)
        tls_tool_print_ssl_errors(prog);
    SSL_free(ssl);
    if (fd >= 0)
        close(fd);
    return rc;
}
