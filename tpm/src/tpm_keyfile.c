/* TSS2 PRIVATE KEY PEM files: see tpm_keyfile.h. */
#include "tpm_keyfile.h"
#include "tpm_err.h"

#include <errno.h>
#include <fleetgw/secret_file.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/asn1t.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>

#include <tss2/tss2_mu.h>

#define KEYFILE_PEM_LABEL "TSS2 PRIVATE KEY"
#define KEYFILE_OID       "2.23.133.10.1.3" /* loadable key */
#define KEYFILE_MAX       4096

typedef struct {
    ASN1_OBJECT *type;
    ASN1_BOOLEAN empty_auth;
    ASN1_INTEGER *parent;
    ASN1_OCTET_STRING *pubkey;
    ASN1_OCTET_STRING *privkey;
} FGW_TSSPRIVKEY;

/* clang-format off */
DECLARE_ASN1_FUNCTIONS(FGW_TSSPRIVKEY)

ASN1_SEQUENCE(FGW_TSSPRIVKEY) = {
    ASN1_SIMPLE(FGW_TSSPRIVKEY, type, ASN1_OBJECT),
    ASN1_EXP_OPT(FGW_TSSPRIVKEY, empty_auth, ASN1_BOOLEAN, 0),
    ASN1_SIMPLE(FGW_TSSPRIVKEY, parent, ASN1_INTEGER),
    ASN1_SIMPLE(FGW_TSSPRIVKEY, pubkey, ASN1_OCTET_STRING),
    ASN1_SIMPLE(FGW_TSSPRIVKEY, privkey, ASN1_OCTET_STRING),
    /* cppcheck-suppress unknownMacro */
} ASN1_SEQUENCE_END(FGW_TSSPRIVKEY)

IMPLEMENT_ASN1_FUNCTIONS(FGW_TSSPRIVKEY)

int tpm_keyfile_exists(const char *path)
{
    struct stat st;
    if (stat(path, &st) == 0)
        return 1;
    return errno == ENOENT ? 0 : -errno;
}
/* clang-format on */

int tpm_keyfile_read(const char *path, TPM2B_PUBLIC *pub, TPM2B_PRIVATE *priv, char *err,
                     size_t errlen)
{
    int r = -EBADMSG;
    BIO *bio = NULL;
    char *name = NULL, *header = NULL;
    unsigned char *data = NULL;
    long len = 0;
    FGW_TSSPRIVKEY *k = NULL;
    char oid[64];
    uint64_t parent = 0;

    memset(pub, 0, sizeof(*pub));
    memset(priv, 0, sizeof(*priv));
    bio = BIO_new_file(path, "r");
    if (bio == NULL) {
        r = errno != 0 ? -errno : -ENOENT;
        tpm_set_err(err, errlen, "cannot open key file %s: %s", path, strerror(-r));
        goto out;
    }
    if (PEM_read_bio(bio, &name, &header, &data, &len) != 1 ||
        strcmp(name, KEYFILE_PEM_LABEL) != 0 || len <= 0 || len > KEYFILE_MAX) {
        tpm_set_err(err, errlen, "%s is not a " KEYFILE_PEM_LABEL " PEM file", path);
        goto out;
    }
    const unsigned char *p = data;
    k = d2i_FGW_TSSPRIVKEY(NULL, &p, len);
    if (k == NULL || p != data + len || OBJ_obj2txt(oid, sizeof(oid), k->type, 1) <= 0 ||
        strcmp(oid, KEYFILE_OID) != 0 || ASN1_INTEGER_get_uint64(&parent, k->parent) != 1 ||
        (parent != TPM2_RH_OWNER && parent != 0)) {
        tpm_set_err(err, errlen, "%s: not a loadable TPM key under the owner hierarchy", path);
        goto out;
    }
    if (Tss2_MU_TPM2B_PUBLIC_Unmarshal(k->pubkey->data, (size_t)k->pubkey->length, NULL, pub) !=
            TSS2_RC_SUCCESS ||
        Tss2_MU_TPM2B_PRIVATE_Unmarshal(k->privkey->data, (size_t)k->privkey->length, NULL, priv) !=
            TSS2_RC_SUCCESS) {
        tpm_set_err(err, errlen, "%s: malformed TPM public/private parts", path);
        goto out;
    }
    r = 0;
out:
    ERR_clear_error();
    FGW_TSSPRIVKEY_free(k);
    OPENSSL_free(name);
    OPENSSL_free(header);
    OPENSSL_clear_free(data, len > 0 ? (size_t)len : 0);
    BIO_free(bio);
    return r;
}

int tpm_keyfile_write(const char *path, const TPM2B_PUBLIC *pub, const TPM2B_PRIVATE *priv,
                      int replace, char *err, size_t errlen)
{
    int r = -ENOMEM;
    uint8_t pubbuf[sizeof(TPM2B_PUBLIC)], privbuf[sizeof(TPM2B_PRIVATE)];
    size_t publen = 0, privlen = 0;
    unsigned char *der = NULL;
    int derlen = 0;
    BIO *mem = NULL;
    char *pem = NULL;
    long pemlen = 0;
    FGW_TSSPRIVKEY *k = FGW_TSSPRIVKEY_new();

    if (k == NULL)
        goto out;
    if (Tss2_MU_TPM2B_PUBLIC_Marshal(pub, pubbuf, sizeof(pubbuf), &publen) != TSS2_RC_SUCCESS ||
        Tss2_MU_TPM2B_PRIVATE_Marshal(priv, privbuf, sizeof(privbuf), &privlen) !=
            TSS2_RC_SUCCESS) {
        r = -EINVAL;
        goto out;
    }
    k->type = OBJ_txt2obj(KEYFILE_OID, 1);
    k->empty_auth = 1;
    if (k->type == NULL || ASN1_INTEGER_set_uint64(k->parent, TPM2_RH_OWNER) != 1 ||
        ASN1_OCTET_STRING_set(k->pubkey, pubbuf, (int)publen) != 1 ||
        ASN1_OCTET_STRING_set(k->privkey, privbuf, (int)privlen) != 1)
        goto out;
    derlen = i2d_FGW_TSSPRIVKEY(k, &der);
    if (derlen <= 0)
        goto out;
    /* PEM in memory, then secret_file_write(): a fresh temporary file (O_EXCL|O_NOFOLLOW,
     * 0600), fsync, rename (or link when not replacing: never overwrites): never a
     * half-written key, never an old file's mode or a symlink followed. */
    mem = BIO_new(BIO_s_mem());
    if (mem == NULL || PEM_write_bio(mem, KEYFILE_PEM_LABEL, "", der, derlen) <= 0 ||
        (pemlen = BIO_get_mem_data(mem, &pem)) <= 0) {
        r = -ENOMEM;
        goto out;
    }
    r = secret_file_write(path, pem, (size_t)pemlen, 0600, replace != 0, err, errlen);
    if (r == -EEXIST && !replace)
        tpm_set_err(err, errlen, "key file %s already exists", path);
out:
    if (mem != NULL && pemlen > 0)
        OPENSSL_cleanse(pem, (size_t)pemlen);
    BIO_free(mem);
    OPENSSL_clear_free(der, derlen > 0 ? (size_t)derlen : 0);
    FGW_TSSPRIVKEY_free(k);
    OPENSSL_cleanse(privbuf, sizeof(privbuf));
    return r;
}
