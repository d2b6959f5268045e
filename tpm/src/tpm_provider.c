/* tpm2-openssl provider in a private library context: load, keys through OSSL_STORE, CSR. */
#include "fleetgw/tpm_provider.h"
#include "tpm_err.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/provider.h>
#include <openssl/store.h>
#include <openssl/x509.h>

struct tpm_provider {
    OSSL_LIB_CTX *libctx;
    OSSL_PROVIDER *prov_default, *prov_tpm2;
};

void tpm_provider_close(struct tpm_provider *p)
{
    if (p == NULL)
        return;
    /* The tpm2 provider's teardown closes its own TPM connection. */
    if (p->prov_tpm2 != NULL)
        (void)OSSL_PROVIDER_unload(p->prov_tpm2);
    if (p->prov_default != NULL)
        (void)OSSL_PROVIDER_unload(p->prov_default);
    OSSL_LIB_CTX_free(p->libctx);
    free(p);
}

OSSL_LIB_CTX *tpm_provider_libctx(const struct tpm_provider *p)
{
    return p->libctx;
}

/* Loads the tpm2 provider into libctx with TPM2OPENSSL_TCTI = tcti (the provider reads it
 * once, in its init), then puts the variable back as it was. */
static OSSL_PROVIDER *load_tpm2(OSSL_LIB_CTX *libctx, const char *tcti)
{
    char *saved = NULL;
    const char *old = getenv("TPM2OPENSSL_TCTI");
    if (old != NULL && (saved = strdup(old)) == NULL)
        return NULL;
    OSSL_PROVIDER *prov = NULL;
    if (setenv("TPM2OPENSSL_TCTI", tcti, 1) == 0)
        prov = OSSL_PROVIDER_load(libctx, "tpm2");
    if (saved != NULL)
        (void)setenv("TPM2OPENSSL_TCTI", saved, 1);
    else
        (void)unsetenv("TPM2OPENSSL_TCTI");
    free(saved);
    return prov;
}

int tpm_provider_open(const char *tcti, struct tpm_provider **ret, char *err, size_t errlen)
{
    int r;
    struct tpm_provider *p = NULL;

    if (tcti == NULL || tcti[0] == '\0' || ret == NULL) {
        tpm_set_err(err, errlen, "no TCTI configured for the tpm2 provider");
        r = -EINVAL;
        goto out;
    }
    p = calloc(1, sizeof(*p));
    if (p == NULL || (p->libctx = OSSL_LIB_CTX_new()) == NULL) {
        tpm_set_ssl_err(err, errlen, "cannot create an OpenSSL library context");
        r = -ENOMEM;
        goto out;
    }
    p->prov_default = OSSL_PROVIDER_load(p->libctx, "default");
    if (p->prov_default == NULL) {
        tpm_set_ssl_err(err, errlen, "cannot load the OpenSSL default provider");
        r = -ENOENT;
        goto out;
    }
    p->prov_tpm2 = load_tpm2(p->libctx, tcti);
    if (p->prov_tpm2 == NULL) {
        const char *dir = getenv("OPENSSL_MODULES");
        tpm_set_ssl_err(err, errlen,
                        "cannot load the OpenSSL tpm2 provider for TCTI '%s' from %s (install "
                        "the Debian package tpm2-openssl; check OPENSSL_MODULES)",
                        tcti, dir != NULL ? dir : "the default module directory");
        r = -ENOPKG;
        goto out;
    }
    /* Scoped to the private context: the process's default context keeps its own. */
    if (EVP_set_default_properties(p->libctx, TPM_PROVIDER_PROPQ) != 1) {
        tpm_set_ssl_err(err, errlen, "cannot set the private context's default properties");
        r = -EINVAL;
        goto out;
    }
    *ret = p;
    p = NULL;
    r = 0;
out:
    tpm_provider_close(p);
    return r;
}

int tpm_provider_key(const struct tpm_provider *p, const char *uri, EVP_PKEY **ret_pkey, char *err,
                     size_t errlen)
{
    EVP_PKEY *pkey = NULL;
    OSSL_STORE_CTX *store =
        OSSL_STORE_open_ex(uri, p->libctx, "?provider=tpm2", NULL, NULL, NULL, NULL, NULL);
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

/* req as a new X509_REQ of the process's default library context (DER round trip), so that
 * nothing in it refers to the private context once that is closed. */
static X509_REQ *req_to_default_ctx(X509_REQ *req)
{
    unsigned char *der = NULL;
    int n = i2d_X509_REQ(req, &der);
    if (n <= 0)
        return NULL;
    const unsigned char *q = der;
    X509_REQ *out = d2i_X509_REQ(NULL, &q, n);
    if (out != NULL && q != der + n) {
        X509_REQ_free(out);
        out = NULL;
    }
    OPENSSL_free(der);
    return out;
}

int tpm_csr_make(const char *tcti, const char *uri, const char *subject, X509_REQ **ret_req,
                 char *err, size_t errlen)
{
    int r;
    struct tpm_provider *prov = NULL;
    EVP_PKEY *pkey = NULL;
    EVP_MD_CTX *mctx = NULL;
    X509_REQ *req = NULL, *out_req = NULL;
    X509_NAME *name = NULL;

    r = tpm_subject_parse(subject, &name);
    if (r < 0) {
        tpm_set_ssl_err(err, errlen, "bad subject '%s': expected /CN=name[/O=org...]",
                        subject != NULL ? subject : "");
        goto out;
    }
    r = tpm_provider_open(tcti, &prov, err, errlen);
    if (r < 0)
        goto out;
    r = tpm_provider_key(prov, uri, &pkey, err, errlen);
    if (r < 0)
        goto out;
    req = X509_REQ_new_ex(prov->libctx, TPM_PROVIDER_PROPQ);
    if (req == NULL || X509_REQ_set_version(req, 0) != 1 ||
        X509_REQ_set_subject_name(req, name) != 1 || X509_REQ_set_pubkey(req, pkey) != 1 ||
        (mctx = EVP_MD_CTX_new()) == NULL) {
        tpm_set_ssl_err(err, errlen, "cannot build the certificate request");
        r = -ENOMEM;
        goto out;
    }
    if (EVP_DigestSignInit_ex(mctx, NULL, "SHA256", prov->libctx, TPM_PROVIDER_PROPQ, pkey, NULL) !=
            1 ||
        X509_REQ_sign_ctx(req, mctx) <= 0) {
        tpm_set_ssl_err(err, errlen, "the TPM did not sign the certificate request");
        r = -EIO;
        goto out;
    }
    /* Checked again in the default context, with the public key the request carries. */
    out_req = req_to_default_ctx(req);
    if (out_req == NULL || X509_REQ_verify(out_req, X509_REQ_get0_pubkey(out_req)) != 1) {
        tpm_set_ssl_err(err, errlen, "the signed certificate request does not verify");
        r = -EIO;
        goto out;
    }
    *ret_req = out_req;
    out_req = NULL;
    r = 0;
out:
    X509_NAME_free(name);
    X509_REQ_free(out_req);
    X509_REQ_free(req);
    EVP_MD_CTX_free(mctx);
    EVP_PKEY_free(pkey);
    tpm_provider_close(prov);
    return r;
}
