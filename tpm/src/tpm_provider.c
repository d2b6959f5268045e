/* tpm2-openssl provider: load, keys through OSSL_STORE, CSR. */
#include "fleetgw/tpm_provider.h"
#include "tpm_err.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/provider.h>
#include <openssl/store.h>

/* The providers are process-wide: the default one for everything, tpm2 for the signature
 * with the TPM-held key. TPM2OPENSSL_TCTI is read by the provider once, at load. */
static const char *loaded_tcti;
static char loaded_buf[256];
static OSSL_PROVIDER *prov_default, *prov_tpm2;

void tpm_provider_unload(void)
{
    /* The tpm2 provider's teardown closes its own TPM connection. */
    if (prov_tpm2 != NULL)
        (void)OSSL_PROVIDER_unload(prov_tpm2);
    if (prov_default != NULL)
        (void)OSSL_PROVIDER_unload(prov_default);
    prov_tpm2 = prov_default = NULL;
    loaded_tcti = NULL;
}

int tpm_provider_load(const char *tcti, char *err, size_t errlen)
{

    if (tcti == NULL || tcti[0] == '\0' || strlen(tcti) >= sizeof(loaded_buf)) {
        tpm_set_ssl_err(err, errlen, "no TCTI configured for the tpm2 provider");
        return -EINVAL;
    }
    if (loaded_tcti != NULL) {
        if (strcmp(loaded_tcti, tcti) != 0) {
            tpm_set_ssl_err(err, errlen,
                            "tpm2 provider already loaded for TCTI '%s', cannot switch to '%s'",
                            loaded_tcti, tcti);
            return -EBUSY;
        }
        return 0;
    }
    if (setenv("TPM2OPENSSL_TCTI", tcti, 1) != 0)
        return -errno;
    if (prov_default == NULL)
        prov_default = OSSL_PROVIDER_load(NULL, "default");
    if (prov_default == NULL) {
        tpm_set_ssl_err(err, errlen, "cannot load the OpenSSL default provider");
        return -ENOENT;
    }
    prov_tpm2 = OSSL_PROVIDER_load(NULL, "tpm2");
    if (prov_tpm2 == NULL) {
        const char *dir = getenv("OPENSSL_MODULES");
        tpm_set_ssl_err(err, errlen,
                        "cannot load the OpenSSL tpm2 provider from %s (install the Debian package "
                        "tpm2-openssl; check OPENSSL_MODULES)",
                        dir != NULL ? dir : "the default module directory");
        return -ENOPKG;
    }
    /* Hashing stays in software; signing with a TPM key goes to the TPM. */
    if (EVP_set_default_properties(NULL, "?tpm2.signature=yes") != 1) {
        tpm_set_ssl_err(err, errlen, "cannot set OpenSSL default properties for the tpm2 provider");
        return -EINVAL;
    }
    snprintf(loaded_buf, sizeof(loaded_buf), "%s", tcti);
    loaded_tcti = loaded_buf;
    return 0;
}

int tpm_provider_key(const char *uri, EVP_PKEY **ret_pkey, char *err, size_t errlen)
{
    EVP_PKEY *pkey = NULL;
    OSSL_STORE_CTX *store =
        OSSL_STORE_open_ex(uri, NULL, "?provider=tpm2", NULL, NULL, NULL, NULL, NULL);
    if (store == NULL) {
        tpm_set_ssl_err(err, errlen, "cannot open TPM key '%s' through the tpm2 provider", uri);
        return -ENOKEY;
    }
    while (pkey == NULL && !OSSL_STORE_eof(store)) {
        OSSL_STORE_INFO *info = OSSL_STORE_load(store);
        if (info == NULL)
            break;
        if (OSSL_STORE_INFO_get_type(info) == OSSL_STORE_INFO_PKEY)
            pkey = OSSL_STORE_INFO_get1_PKEY(info);
        OSSL_STORE_INFO_free(info);
    }
    OSSL_STORE_close(store);
    if (pkey == NULL) {
        tpm_set_ssl_err(err, errlen, "no private key found at '%s' in the TPM", uri);
        return -ENOKEY;
    }
    ERR_clear_error();
    *ret_pkey = pkey;
    return 0;
}

int tpm_subject_parse(const char *subject, X509_NAME **ret_name)
{
    int r = -EINVAL;
    char buf[1024];
    size_t n = 0;
    X509_NAME *name = NULL;

    if (subject == NULL || subject[0] != '/' || strlen(subject) >= sizeof(buf))
        return -EINVAL;
    name = X509_NAME_new();
    if (name == NULL)
        return -ENOMEM;
    /* Unescape into buf with '\0' as the RDN separator. */
    for (const char *p = subject + 1;; p++) {
        if (*p == '\\' && p[1] != '\0') {
            buf[n++] = *++p;
            continue;
        }
        if (*p != '/' && *p != '\0') {
            buf[n++] = *p;
            continue;
        }
        buf[n] = '\0';
        char *eq = strchr(buf, '=');
        if (eq == NULL || eq == buf || eq[1] == '\0')
            goto out;
        *eq = '\0';
        if (X509_NAME_add_entry_by_txt(name, buf, MBSTRING_UTF8, (const unsigned char *)(eq + 1),
                                       -1, -1, 0) != 1)
            goto out;
        n = 0;
        if (*p == '\0')
            break;
    }
    if (X509_NAME_entry_count(name) == 0)
        goto out;
    *ret_name = name;
    name = NULL;
    r = 0;
out:
    ERR_clear_error();
    X509_NAME_free(name);
    return r;
}

int tpm_csr_make(const char *tcti, const char *uri, const char *subject, X509_REQ **ret_req,
                 char *err, size_t errlen)
{
    int r;
    EVP_PKEY *pkey = NULL;
    X509_REQ *req = NULL;
    X509_NAME *name = NULL;

    r = tpm_subject_parse(subject, &name);
    if (r < 0) {
        tpm_set_ssl_err(err, errlen, "bad subject '%s': expected /CN=name[/O=org...]",
                        subject != NULL ? subject : "");
        goto out;
    }
    r = tpm_provider_load(tcti, err, errlen);
    if (r < 0)
        goto out;
    r = tpm_provider_key(uri, &pkey, err, errlen);
    if (r < 0)
        goto out;
    req = X509_REQ_new();
    if (req == NULL || X509_REQ_set_version(req, 0) != 1 ||
        X509_REQ_set_subject_name(req, name) != 1 || X509_REQ_set_pubkey(req, pkey) != 1) {
        tpm_set_ssl_err(err, errlen, "cannot build the certificate request");
        r = -ENOMEM;
        goto out;
    }
    if (X509_REQ_sign(req, pkey, EVP_sha256()) <= 0) {
        tpm_set_ssl_err(err, errlen, "the TPM did not sign the certificate request");
        r = -EIO;
        goto out;
    }
    if (X509_REQ_verify(req, pkey) != 1) {
        tpm_set_ssl_err(err, errlen, "the signed certificate request does not verify");
        r = -EIO;
        goto out;
    }
    *ret_req = req;
    req = NULL;
    r = 0;
out:
    X509_NAME_free(name);
    X509_REQ_free(req);
    EVP_PKEY_free(pkey);
    return r;
}
