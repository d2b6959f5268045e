/* Error reasons for the tpm/ functions: see tpm_err.h. */
#include "tpm_err.h"

#include <stdarg.h>
#include <stdio.h>

#include <openssl/err.h>

void tpm_set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (err == NULL || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

void tpm_set_ssl_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (err == NULL || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    unsigned long e = ERR_peek_last_error();
    if (e != 0 && n >= 0 && (size_t)n < errlen) {
        char buf[256];
        ERR_error_string_n(e, buf, sizeof(buf));
        snprintf(err + n, errlen - (size_t)n, " (%s)", buf);
    }
    ERR_clear_error();
}
