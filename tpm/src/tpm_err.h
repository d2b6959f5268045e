/* The one-line reasons that the tpm/ functions write into their caller's (err, errlen)
 * buffer. Internal. */
#ifndef FLEETGW_TPM_ERR_H
#define FLEETGW_TPM_ERR_H

#include <stddef.h>

/* Formats the reason into err (nothing when err is NULL or errlen is 0). */
void tpm_set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The same, then appends " (<OpenSSL's last error>)" when OpenSSL has queued one and there
 * is room, and clears OpenSSL's error queue (not when err is NULL or errlen 0). */
void tpm_set_ssl_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
