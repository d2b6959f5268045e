/* The gateway identity in the TPM through tpm2-tss ESAPI. */
#include "fleetgw/tpm_identity.h"
#include "fleetgw/quote.h"
#include "tpm_keyfile.h"
#include "tpm_err.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/param_build.h>

#include <tss2/tss2_esys.h>
#include <tss2/tss2_mu.h>
#include <tss2/tss2_rc.h>
#include <tss2/tss2_tctildr.h>

struct tpm {
    TSS2_TCTI_CONTEXT *tcti;
    ESYS_CONTEXT *esys;
    char tcti_conf[256];
};

/* The TPM's response code without the handle/parameter/session number. */
static TSS2_RC rc_base(TSS2_RC rc)
{
    TSS2_RC layer = rc & TSS2_RC_LAYER_MASK;
    if (layer != TSS2_TPM_RC_LAYER && layer != TSS2_RESMGR_TPM_RC_LAYER)
        return rc;
    rc &= 0xffff;
    if (rc & TPM2_RC_FMT1)
        return rc & (TPM2_RC_FMT1 | 0x3f);
    return rc;
}

/* Maps a TSS return code to the closed errno set of tpm_identity.h and writes the reason. */
static int rc_fail(TSS2_RC rc, const char *what, char *err, size_t errlen)
{
    TSS2_RC layer = rc & TSS2_RC_LAYER_MASK;
    TSS2_RC base = rc_base(rc);
    const char *decoded = Tss2_RC_Decode(rc);

    if (layer == TSS2_TCTI_RC_LAYER ||
        (layer == TSS2_ESAPI_RC_LAYER && (rc & 0xffff) == TSS2_BASE_RC_IO_ERROR)) {
        tpm_set_err(err, errlen, "%s: lost the connection to the TPM (%s)", what, decoded);
        return -ENODEV;
    }
    if (layer == TSS2_RESMGR_RC_LAYER) {
        tpm_set_err(err, errlen, "%s: the TPM resource manager failed (%s)", what, decoded);
        return -ENODEV;
    }
    if (layer == TSS2_TPM_RC_LAYER || layer == TSS2_RESMGR_TPM_RC_LAYER) {
        switch (base) {
        case TPM2_RC_LOCKOUT:
            tpm_set_err(
                err, errlen,
                "%s: the TPM is in dictionary-attack lockout (TPM_RC_LOCKOUT): wait for the "
                "recovery time or clear it with the lockout authorization "
                "(tpm2_dictionarylockout --clear-lockout)",
                what);
            return -ENOLCK;
        case TPM2_RC_BAD_AUTH:
        case TPM2_RC_AUTH_FAIL:
            tpm_set_err(err, errlen,
                        "%s: wrong authorization value (%s): check the owner hierarchy "
                        "authorization (--owner-auth)",
                        what, decoded);
            return -EACCES;
        case TPM2_RC_POLICY_FAIL:
        case TPM2_RC_PCR_CHANGED:
            tpm_set_err(err, errlen, "%s: the policy is not satisfied: PCR values changed (%s)",
                        what, decoded);
            return -EKEYREJECTED;
        case TPM2_RC_NV_SPACE:
            tpm_set_err(err, errlen,
                        "%s: no NV space left for a persistent object: use --key-file instead",
                        what);
            return -ENOSPC;
        default:
            break;
        }
    }
    tpm_set_err(err, errlen, "%s failed: TPM response 0x%x (%s)", what, rc, decoded);
    return -EIO;
}

int tpm_open(const char *tcti, struct tpm **ret, char *err, size_t errlen)
{
    int r = -ENOMEM;
    TSS2_RC rc;
    TPM2B_DIGEST *random = NULL;
    struct tpm *t = calloc(1, sizeof(*t));

    if (tcti == NULL || tcti[0] == '\0')
        tcti = TPM_DEFAULT_TCTI;
    if (t == NULL) {
        tpm_set_err(err, errlen, "out of memory");
        goto out;
    }
    snprintf(t->tcti_conf, sizeof(t->tcti_conf), "%s", tcti);
    rc = Tss2_TctiLdr_Initialize(tcti, &t->tcti);
    if (rc != TSS2_RC_SUCCESS) {
        tpm_set_err(err, errlen,
                    "no TPM reachable through TCTI '%s' (%s): check the device/daemon and the TCTI "
                    "configuration",
                    tcti, Tss2_RC_Decode(rc));
        r = -ENODEV;
        goto out;
    }
    rc = Esys_Initialize(&t->esys, t->tcti, NULL);
    if (rc != TSS2_RC_SUCCESS) {
        tpm_set_err(err, errlen, "no TPM reachable through TCTI '%s': ESAPI initialisation (%s)",
                    tcti, Tss2_RC_Decode(rc));
        r = -ENODEV;
        goto out;
    }
    rc = Esys_GetRandom(t->esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, 8, &random);
    if (rc != TSS2_RC_SUCCESS) {
        TSS2_RC layer = rc & TSS2_RC_LAYER_MASK;
        if (layer == TSS2_TPM_RC_LAYER || layer == TSS2_RESMGR_TPM_RC_LAYER) {
            r = rc_fail(rc, "TPM self-check (GetRandom)", err, errlen);
        } else {
            tpm_set_err(err, errlen,
                        "no TPM reachable through TCTI '%s': the TPM does not answer (%s)", tcti,
                        Tss2_RC_Decode(rc));
            r = -ENODEV;
        }
        goto out;
    }
    *ret = t;
    t = NULL;
    r = 0;
out:
    Esys_Free(random);
    tpm_close(t);
    return r;
}

void tpm_close(struct tpm *t)
{
    if (t == NULL)
        return;
    if (t->esys != NULL)
        Esys_Finalize(&t->esys);
    if (t->tcti != NULL)
        Tss2_TctiLdr_Finalize(&t->tcti);
    free(t);
}

int tpm_set_owner_auth(struct tpm *t, const char *auth)
{
    TPM2B_AUTH a = {0};
    size_t n = auth != NULL ? strlen(auth) : 0;
    if (t == NULL || n > sizeof(a.buffer))
        return -EINVAL;
    a.size = (UINT16)n;
    if (n > 0)
        memcpy(a.buffer, auth, n);
    TSS2_RC rc = Esys_TR_SetAuth(t->esys, ESYS_TR_RH_OWNER, &a);
    OPENSSL_cleanse(&a, sizeof(a));
    return rc == TSS2_RC_SUCCESS ? 0 : -EIO;
}

int tpm_pcr_selection_parse(const char *spec, struct tpm_pcr_selection *out)
{
    char buf[256];
    char *save = NULL;
    if (out == NULL)
        return -EINVAL;
    memset(out, 0, sizeof(*out));
    if (spec == NULL || strlen(spec) >= sizeof(buf))
        return -EINVAL;
    snprintf(buf, sizeof(buf), "%s", spec);
    for (char *bank = strtok_r(buf, "+", &save); bank != NULL; bank = strtok_r(NULL, "+", &save)) {
        char *colon = strchr(bank, ':');
        char *save2 = NULL;
        if (colon == NULL || out->nbanks >= TPM_PCR_BANKS_MAX)
            return -EINVAL;
        *colon = '\0';
        uint16_t alg = quote_hash_from_name(bank);
        if (alg == 0)
            return -EINVAL;
        for (size_t i = 0; i < out->nbanks; i++)
            if (out->banks[i].alg == alg)
                return -EINVAL;
        uint32_t mask = 0;
        for (char *num = strtok_r(colon + 1, ",", &save2); num != NULL;
             num = strtok_r(NULL, ",", &save2)) {
            char *end = NULL;
            errno = 0;
            long v = strtol(num, &end, 10);
            if (errno != 0 || end == num || *end != '\0' || v < 0 || v >= QUOTE_PCR_COUNT)
                return -EINVAL;
            mask |= 1u << v;
        }
        if (mask == 0)
            return -EINVAL;
        out->banks[out->nbanks].alg = alg;
        out->banks[out->nbanks].mask = mask;
        out->nbanks++;
    }
    return out->nbanks > 0 ? 0 : -EINVAL;
}

static void selection_to_tpm(const struct tpm_pcr_selection *sel, TPML_PCR_SELECTION *out)
{
    memset(out, 0, sizeof(*out));
    if (sel == NULL)
        return;
    out->count = (UINT32)sel->nbanks;
    for (size_t i = 0; i < sel->nbanks; i++) {
        out->pcrSelections[i].hash = sel->banks[i].alg;
        out->pcrSelections[i].sizeofSelect = 3;
        out->pcrSelections[i].pcrSelect[0] = (BYTE)(sel->banks[i].mask & 0xff);
        out->pcrSelections[i].pcrSelect[1] = (BYTE)((sel->banks[i].mask >> 8) & 0xff);
        out->pcrSelections[i].pcrSelect[2] = (BYTE)((sel->banks[i].mask >> 16) & 0xff);
    }
}

/* The storage primary of the owner hierarchy: the same template as the tpm2-openssl provider
 * uses for TSS2 key files whose parent is TPM_RH_OWNER, so that the provider can load them. */
static const TPM2B_PUBLIC primary_template = {
    .publicArea =
        {
            .type = TPM2_ALG_ECC,
            .nameAlg = TPM2_ALG_SHA256,
            .objectAttributes = TPMA_OBJECT_USERWITHAUTH | TPMA_OBJECT_RESTRICTED |
                                TPMA_OBJECT_DECRYPT | TPMA_OBJECT_NODA | TPMA_OBJECT_FIXEDTPM |
                                TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN,
            .parameters.eccDetail =
                {
                    .symmetric = {.algorithm = TPM2_ALG_AES,
                                  .keyBits.aes = 128,
                                  .mode.aes = TPM2_ALG_CFB},
                    .scheme = {.scheme = TPM2_ALG_NULL},
                    .curveID = TPM2_ECC_NIST_P256,
                    .kdf = {.scheme = TPM2_ALG_NULL},
                },
        },
};

#define KEY_ATTRS                                                                                  \
    (TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN |            \
     TPMA_OBJECT_USERWITHAUTH | TPMA_OBJECT_SIGN_ENCRYPT)
/* Attributes compared when deciding whether an existing object is "our" key. */
#define KEY_ATTRS_CHECKED                                                                          \
    (KEY_ATTRS | TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_DECRYPT | TPMA_OBJECT_ADMINWITHPOLICY)

static TPMA_OBJECT kind_attrs(enum tpm_key_kind kind)
{
    return kind == TPM_KEY_AK ? (KEY_ATTRS | TPMA_OBJECT_RESTRICTED) : KEY_ATTRS;
}

static void key_template(enum tpm_key_kind kind, TPM2B_PUBLIC *out)
{
    memset(out, 0, sizeof(*out));
    out->publicArea.type = TPM2_ALG_ECC;
    out->publicArea.nameAlg = TPM2_ALG_SHA256;
    out->publicArea.objectAttributes = kind_attrs(kind);
    out->publicArea.parameters.eccDetail.symmetric.algorithm = TPM2_ALG_NULL;
    out->publicArea.parameters.eccDetail.scheme.scheme = TPM2_ALG_ECDSA;
    out->publicArea.parameters.eccDetail.scheme.details.ecdsa.hashAlg = TPM2_ALG_SHA256;
    out->publicArea.parameters.eccDetail.curveID = TPM2_ECC_NIST_P256;
    out->publicArea.parameters.eccDetail.kdf.scheme = TPM2_ALG_NULL;
}

static int template_matches(enum tpm_key_kind kind, const TPMT_PUBLIC *p)
{
    return p->type == TPM2_ALG_ECC && p->parameters.eccDetail.curveID == TPM2_ECC_NIST_P256 &&
           (p->objectAttributes & KEY_ATTRS_CHECKED) == kind_attrs(kind) &&
           p->parameters.eccDetail.scheme.scheme == TPM2_ALG_ECDSA && p->authPolicy.size == 0;
}

static const char *kind_name(enum tpm_key_kind kind)
{
    return kind == TPM_KEY_AK ? "attestation key" : "identity key";
}

/* EVP_PKEY (software, public only) from a TPM ECC public area. */
static int public_to_pkey(const TPMT_PUBLIC *p, EVP_PKEY **ret, char *err, size_t errlen)
{
    int r = -EBADMSG;
    uint8_t point[1 + 2 * 32];
    OSSL_PARAM_BLD *bld = NULL;
    OSSL_PARAM *params = NULL;
    EVP_PKEY_CTX *pctx = NULL;
    EVP_PKEY *pkey = NULL;
    const TPMS_ECC_POINT *q = &p->unique.ecc;

    if (p->type != TPM2_ALG_ECC || p->parameters.eccDetail.curveID != TPM2_ECC_NIST_P256 ||
        q->x.size > 32 || q->y.size > 32) {
        tpm_set_err(err, errlen, "the TPM object is not a P-256 key");
        goto out;
    }
    memset(point, 0, sizeof(point));
    point[0] = 0x04;
    memcpy(point + 1 + (32 - q->x.size), q->x.buffer, q->x.size);
    memcpy(point + 33 + (32 - q->y.size), q->y.buffer, q->y.size);
    bld = OSSL_PARAM_BLD_new();
    if (bld == NULL ||
        OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) != 1 ||
        OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point, sizeof(point)) != 1)
        goto fail;
    params = OSSL_PARAM_BLD_to_param(bld);
    pctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", "provider=default");
    if (params == NULL || pctx == NULL || EVP_PKEY_fromdata_init(pctx) != 1 ||
        EVP_PKEY_fromdata(pctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1)
        goto fail;
    *ret = pkey;
    pkey = NULL;
    r = 0;
    goto out;
fail:
    tpm_set_err(err, errlen, "cannot convert the TPM public key for OpenSSL");
    r = -EBADMSG;
out:
    ERR_clear_error();
    EVP_PKEY_free(pkey);
    EVP_PKEY_CTX_free(pctx);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    return r;
}

static int create_primary(struct tpm *t, ESYS_TR *ret, char *err, size_t errlen)
{
    TPM2B_SENSITIVE_CREATE sens = {0};
    TPM2B_DATA outside = {0};
    TPML_PCR_SELECTION pcrs = {0};
    TSS2_RC rc =
        Esys_CreatePrimary(t->esys, ESYS_TR_RH_OWNER, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE,
                           &sens, &primary_template, &outside, &pcrs, ret, NULL, NULL, NULL, NULL);
    if (rc != TSS2_RC_SUCCESS)
        return rc_fail(rc, "creating the owner storage primary (owner hierarchy)", err, errlen);
    return 0;
}

static void flush(struct tpm *t, ESYS_TR *tr)
{
    if (*tr != ESYS_TR_NONE) {
        (void)Esys_FlushContext(t->esys, *tr);
        *tr = ESYS_TR_NONE;
    }
}

static int check_handle(uint32_t handle, char *err, size_t errlen)
{
    if (handle < 0x81000000u || handle > 0x81ffffffu) {
        tpm_set_err(err, errlen, "0x%08x is not a persistent handle (0x81000000..0x81ffffff)",
                    handle);
        return -EINVAL;
    }
    return 0;
}

/* Persistent object at handle: *ret_tr (ESYS_TR_NONE when absent) and its public area. */
static int persistent_lookup(struct tpm *t, uint32_t handle, ESYS_TR *ret_tr,
                             TPM2B_PUBLIC **ret_pub, char *err, size_t errlen)
{
    ESYS_TR tr = ESYS_TR_NONE;
    TSS2_RC rc;
    *ret_tr = ESYS_TR_NONE;
    *ret_pub = NULL;
    rc = Esys_TR_FromTPMPublic(t->esys, handle, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &tr);
    if (rc != TSS2_RC_SUCCESS) {
        if (rc_base(rc) == TPM2_RC_HANDLE || rc_base(rc) == TPM2_RC_REFERENCE_H0)
            return 0; /* absent */
        return rc_fail(rc, "looking up the persistent handle", err, errlen);
    }
    rc =
        Esys_ReadPublic(t->esys, tr, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, ret_pub, NULL, NULL);
    if (rc != TSS2_RC_SUCCESS) {
        (void)Esys_TR_Close(t->esys, &tr);
        return rc_fail(rc, "reading the public area", err, errlen);
    }
    *ret_tr = tr;
    return 0;
}

/* Creates a key of this kind under a fresh storage primary; returns its public/private
 * parts and, when ret_loaded is not NULL, leaves it loaded. */
static int create_key(struct tpm *t, enum tpm_key_kind kind, TPM2B_PUBLIC **ret_pub,
                      TPM2B_PRIVATE **ret_priv, ESYS_TR *ret_loaded, char *err, size_t errlen)
{
    int r;
    ESYS_TR primary = ESYS_TR_NONE, loaded = ESYS_TR_NONE;
    TPM2B_SENSITIVE_CREATE sens = {0};
    TPM2B_DATA outside = {0};
    TPML_PCR_SELECTION pcrs = {0};
    TPM2B_PUBLIC tmpl;
    TPM2B_PUBLIC *pub = NULL;
    TPM2B_PRIVATE *priv = NULL;
    TSS2_RC rc;

    key_template(kind, &tmpl);
    r = create_primary(t, &primary, err, errlen);
    if (r < 0)
        goto out;
    rc = Esys_Create(t->esys, primary, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &sens, &tmpl,
                     &outside, &pcrs, &priv, &pub, NULL, NULL, NULL);
    if (rc != TSS2_RC_SUCCESS) {
        r = rc_fail(
            rc, kind == TPM_KEY_AK ? "creating the attestation key" : "creating the identity key",
            err, errlen);
        goto out;
    }
    if (pub == NULL || priv == NULL) {
        tpm_set_err(err, errlen, "the TPM returned no key");
        r = -EIO;
        goto out;
    }
    if (ret_loaded != NULL) {
        rc = Esys_Load(t->esys, primary, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, priv, pub,
                       &loaded);
        if (rc != TSS2_RC_SUCCESS) {
            r = rc_fail(rc, "loading the new key", err, errlen);
            goto out;
        }
        *ret_loaded = loaded;
        loaded = ESYS_TR_NONE;
    }
    *ret_pub = pub;
    *ret_priv = priv;
    pub = NULL;
    priv = NULL;
    r = 0;
out:
    flush(t, &loaded);
    flush(t, &primary);
    Esys_Free(pub);
    Esys_Free(priv);
    return r;
}

static int evict(struct tpm *t, ESYS_TR obj, uint32_t handle, ESYS_TR *ret_new, char *err,
                 size_t errlen)
{
    ESYS_TR out = ESYS_TR_NONE;
    TSS2_RC rc = Esys_EvictControl(t->esys, ESYS_TR_RH_OWNER, obj, ESYS_TR_PASSWORD, ESYS_TR_NONE,
                                   ESYS_TR_NONE, handle, &out);
    if (rc != TSS2_RC_SUCCESS)
        return rc_fail(rc, "evictcontrol on the owner hierarchy", err, errlen);
    if (ret_new != NULL)
        *ret_new = out;
    else if (out != ESYS_TR_NONE)
        (void)Esys_TR_Close(t->esys, &out);
    return 0;
}

static int init_persistent(struct tpm *t, enum tpm_key_kind kind, uint32_t handle, int force,
                           int *ret_created, EVP_PKEY **ret_pub, char *err, size_t errlen)
{
    ESYS_TR existing = ESYS_TR_NONE, loaded = ESYS_TR_NONE;
    TPM2B_PUBLIC *cur = NULL, *pub = NULL;
    TPM2B_PRIVATE *priv = NULL;
    int r = check_handle(handle, err, errlen);
    if (r < 0)
        goto out;
    r = persistent_lookup(t, handle, &existing, &cur, err, errlen);
    if (r < 0)
        goto out;
    if (existing != ESYS_TR_NONE) {
        if (template_matches(kind, &cur->publicArea)) {
            *ret_created = 0;
            r = public_to_pkey(&cur->publicArea, ret_pub, err, errlen);
            goto out;
        }
        if (!force) {
            tpm_set_err(
                err, errlen,
                "persistent handle 0x%08x already holds a different object (not a fleetgw %s):"
                " nothing was changed; choose another --handle or replace it with --force",
                handle, kind_name(kind));
            r = -EEXIST;
            goto out;
        }
        r = evict(t, existing, handle, NULL, err, errlen);
        if (r < 0)
            goto out;
        existing = ESYS_TR_NONE; /* the ESYS_TR is invalidated by the eviction */
    }
    r = create_key(t, kind, &pub, &priv, &loaded, err, errlen);
    if (r < 0)
        goto out;
    r = evict(t, loaded, handle, NULL, err, errlen);
    if (r < 0)
        goto out;
    r = public_to_pkey(&pub->publicArea, ret_pub, err, errlen);
    if (r < 0)
        goto out;
    *ret_created = 1;
out:
    if (existing != ESYS_TR_NONE)
        (void)Esys_TR_Close(t->esys, &existing);
    flush(t, &loaded);
    Esys_Free(cur);
    Esys_Free(pub);
    Esys_Free(priv);
    return r;
}

/* Loads a key file under the storage primary (proves it belongs to this TPM). */
static int load_key_file(struct tpm *t, enum tpm_key_kind kind, const char *path,
                         ESYS_TR *ret_loaded, TPM2B_PUBLIC *ret_pub, char *err, size_t errlen)
{
    TPM2B_PUBLIC pub;
    TPM2B_PRIVATE priv;
    ESYS_TR primary = ESYS_TR_NONE, loaded = ESYS_TR_NONE;
    TSS2_RC rc;
    int r = tpm_keyfile_read(path, &pub, &priv, err, errlen);
    if (r < 0)
        goto out;
    if (!template_matches(kind, &pub.publicArea)) {
        tpm_set_err(err, errlen, "%s holds a TPM key that is not a fleetgw %s", path,
                    kind_name(kind));
        r = -EEXIST;
        goto out;
    }
    if (ret_loaded != NULL) {
        r = create_primary(t, &primary, err, errlen);
        if (r < 0)
            goto out;
        rc = Esys_Load(t->esys, primary, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &priv, &pub,
                       &loaded);
        if (rc != TSS2_RC_SUCCESS) {
            r = rc_fail(rc, "loading the key file into this TPM", err, errlen);
            if (r == -EIO) { /* integrity/binding: the private part is not this TPM's */
                tpm_set_err(err, errlen, "key file %s was not made by this TPM (TPM response 0x%x)",
                            path, rc);
                r = -EEXIST;
            }
            goto out;
        }
        *ret_loaded = loaded;
        loaded = ESYS_TR_NONE;
    }
    if (ret_pub != NULL)
        *ret_pub = pub;
    r = 0;
out:
    flush(t, &loaded);
    flush(t, &primary);
    OPENSSL_cleanse(&priv, sizeof(priv));
    return r;
}

static int init_key_file(struct tpm *t, enum tpm_key_kind kind, const char *path, int force,
                         int *ret_created, EVP_PKEY **ret_pub, char *err, size_t errlen)
{
    TPM2B_PUBLIC cur;
    TPM2B_PUBLIC *pub = NULL;
    TPM2B_PRIVATE *priv = NULL;
    ESYS_TR loaded = ESYS_TR_NONE;
    int r = tpm_keyfile_exists(path);
    if (r < 0) {
        tpm_set_err(err, errlen, "cannot access key file %s: %s", path, strerror(-r));
        goto out;
    }
    if (r > 0) {
        r = load_key_file(t, kind, path, &loaded, &cur, err, errlen);
        if (r == 0) {
            *ret_created = 0;
            r = public_to_pkey(&cur.publicArea, ret_pub, err, errlen);
            goto out;
        }
        if (r != -EEXIST && r != -EBADMSG)
            goto out;
        if (!force) {
            char why[256];
            snprintf(why, sizeof(why), "%s", err != NULL ? err : "");
            tpm_set_err(err, errlen,
                        "key file %s exists but is not this TPM's fleetgw %s (%s): nothing was "
                        "changed; use --force to replace it",
                        path, kind_name(kind), why);
            r = -EEXIST;
            goto out;
        }
    }
    r = create_key(t, kind, &pub, &priv, NULL, err, errlen);
    if (r < 0)
        goto out;
    r = tpm_keyfile_write(path, pub, priv, force, err, errlen);
    if (r < 0)
        goto out;
    r = public_to_pkey(&pub->publicArea, ret_pub, err, errlen);
    if (r < 0)
        goto out;
    *ret_created = 1;
out:
    flush(t, &loaded);
    Esys_Free(pub);
    Esys_Free(priv);
    return r;
}

int tpm_key_init(struct tpm *t, enum tpm_key_kind kind, const struct tpm_key_ref *ref, int force,
                 int *ret_created, EVP_PKEY **ret_pub, char *err, size_t errlen)
{
    int created = 0;
    EVP_PKEY *pub = NULL;
    int r;
    if (t == NULL || ref == NULL || ret_pub == NULL)
        return -EINVAL;
    if (ref->key_file != NULL)
        r = init_key_file(t, kind, ref->key_file, force, &created, &pub, err, errlen);
    else
        r = init_persistent(t, kind, ref->handle, force, &created, &pub, err, errlen);
    if (r < 0)
        return r;
    if (ret_created != NULL)
        *ret_created = created;
    *ret_pub = pub;
    return 0;
}

/* The persistent object at handle, checked to be a fleetgw key of this kind: *ret_tr (the
 * caller closes it with Esys_TR_Close) and, when ret_pub is not NULL, its public area (the
 * caller frees it with Esys_Free). */
static int persistent_open(struct tpm *t, enum tpm_key_kind kind, uint32_t handle, ESYS_TR *ret_tr,
                           TPM2B_PUBLIC **ret_pub, char *err, size_t errlen)
{
    ESYS_TR tr = ESYS_TR_NONE;
    TPM2B_PUBLIC *cur = NULL;
    int r = check_handle(handle, err, errlen);
    if (r < 0)
        return r;
    r = persistent_lookup(t, handle, &tr, &cur, err, errlen);
    if (r < 0)
        goto out;
    if (tr == ESYS_TR_NONE) {
        tpm_set_err(err, errlen, "no %s at persistent handle 0x%08x: run `identity init` first",
                    kind_name(kind), handle);
        r = -ENOKEY;
        goto out;
    }
    if (!template_matches(kind, &cur->publicArea)) {
        tpm_set_err(err, errlen,
                    "persistent handle 0x%08x holds an object that is not a fleetgw %s", handle,
                    kind_name(kind));
        r = -EEXIST;
        goto out;
    }
    *ret_tr = tr;
    tr = ESYS_TR_NONE;
    if (ret_pub != NULL) {
        *ret_pub = cur;
        cur = NULL;
    }
    r = 0;
out:
    if (tr != ESYS_TR_NONE)
        (void)Esys_TR_Close(t->esys, &tr);
    Esys_Free(cur);
    return r;
}

int tpm_manufacturer(struct tpm *t, char out[5], char *err, size_t errlen)
{
    TPMS_CAPABILITY_DATA *cap = NULL;
    TPMI_YES_NO more = TPM2_NO;
    int r;

    if (t == NULL || out == NULL)
        return -EINVAL;
    TSS2_RC rc = Esys_GetCapability(t->esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
                                    TPM2_CAP_TPM_PROPERTIES, TPM2_PT_MANUFACTURER, 1, &more, &cap);
    if (rc != TSS2_RC_SUCCESS) {
        r = rc_fail(rc, "reading the manufacturer (GetCapability)", err, errlen);
        goto out;
    }
    if (cap == NULL || cap->data.tpmProperties.count < 1 ||
        cap->data.tpmProperties.tpmProperty[0].property != TPM2_PT_MANUFACTURER) {
        tpm_set_err(err, errlen, "the TPM reports no manufacturer property");
        r = -EIO;
        goto out;
    }
    /* Four ASCII characters in a UINT32, most significant first. */
    uint32_t v = cap->data.tpmProperties.tpmProperty[0].value;
    for (int i = 0; i < 4; i++) {
        char ch = (char)((v >> (24 - 8 * i)) & 0xffu);
        out[i] = (ch >= 0x20 && ch < 0x7f) ? ch : ' ';
    }
    out[4] = '\0';
    r = 0;
out:
    Esys_Free(cap);
    return r;
}

int tpm_key_public(struct tpm *t, enum tpm_key_kind kind, const struct tpm_key_ref *ref,
                   EVP_PKEY **ret_pub, char *err, size_t errlen)
{
    ESYS_TR tr = ESYS_TR_NONE;
    TPM2B_PUBLIC *cur = NULL;
    TPM2B_PUBLIC filepub;
    int r;
    if (t == NULL || ref == NULL || ret_pub == NULL)
        return -EINVAL;
    if (ref->key_file != NULL) {
        r = load_key_file(t, kind, ref->key_file, NULL, &filepub, err, errlen);
        if (r < 0)
            return r;
        return public_to_pkey(&filepub.publicArea, ret_pub, err, errlen);
    }
    r = persistent_open(t, kind, ref->handle, &tr, &cur, err, errlen);
    if (r < 0)
        return r;
    r = public_to_pkey(&cur->publicArea, ret_pub, err, errlen);
    (void)Esys_TR_Close(t->esys, &tr);
    Esys_Free(cur);
    return r;
}

/* A usable ESYS_TR for the key: the persistent object, or the key file loaded (transient,
 * *ret_transient = 1: the caller flushes it). */
static int key_open(struct tpm *t, enum tpm_key_kind kind, const struct tpm_key_ref *ref,
                    ESYS_TR *ret_tr, int *ret_transient, char *err, size_t errlen)
{
    int r;
    *ret_transient = 0;
    if (ref->key_file != NULL) {
        r = load_key_file(t, kind, ref->key_file, ret_tr, NULL, err, errlen);
        if (r == 0)
            *ret_transient = 1;
        return r;
    }
    return persistent_open(t, kind, ref->handle, ret_tr, NULL, err, errlen);
}

static void key_close(struct tpm *t, ESYS_TR *tr, int transient)
{
    if (*tr == ESYS_TR_NONE)
        return;
    if (transient)
        flush(t, tr);
    else
        (void)Esys_TR_Close(t->esys, tr);
    *tr = ESYS_TR_NONE;
}

static int ecdsa_to_der(const TPMS_SIGNATURE_ECDSA *e, uint8_t *out, size_t cap, size_t *ret_len)
{
    int r = -EINVAL;
    ECDSA_SIG *sig = ECDSA_SIG_new();
    BIGNUM *br = BN_bin2bn(e->signatureR.buffer, e->signatureR.size, NULL);
    BIGNUM *bs = BN_bin2bn(e->signatureS.buffer, e->signatureS.size, NULL);
    if (sig == NULL || br == NULL || bs == NULL || ECDSA_SIG_set0(sig, br, bs) != 1)
        goto out;
    br = bs = NULL;
    int n = i2d_ECDSA_SIG(sig, NULL);
    if (n <= 0 || (size_t)n > cap)
        goto out;
    unsigned char *p = out;
    if (i2d_ECDSA_SIG(sig, &p) != n)
        goto out;
    *ret_len = (size_t)n;
    r = 0;
out:
    BN_free(br);
    BN_free(bs);
    ECDSA_SIG_free(sig);
    return r;
}

int tpm_key_sign(struct tpm *t, const struct tpm_key_ref *ref, const uint8_t digest[32],
                 uint8_t *sig, size_t cap, size_t *ret_len, char *err, size_t errlen)
{
    ESYS_TR key = ESYS_TR_NONE;
    int transient = 0;
    TPM2B_DIGEST d = {.size = 32};
    TPMT_SIG_SCHEME sig_scheme = {.scheme = TPM2_ALG_ECDSA};
    TPMT_TK_HASHCHECK ticket = {.tag = TPM2_ST_HASHCHECK, .hierarchy = TPM2_RH_NULL};
    TPMT_SIGNATURE *s = NULL;
    TSS2_RC rc;
    int r;

    if (t == NULL || ref == NULL || digest == NULL || sig == NULL || ret_len == NULL)
        return -EINVAL;
    sig_scheme.details.ecdsa.hashAlg = TPM2_ALG_SHA256;
    memcpy(d.buffer, digest, 32);
    r = key_open(t, TPM_KEY_IDENTITY, ref, &key, &transient, err, errlen);
    if (r < 0)
        goto out;
    rc = Esys_Sign(t->esys, key, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &d, &sig_scheme,
                   &ticket, &s);
    if (rc != TSS2_RC_SUCCESS) {
        r = rc_fail(rc, "signing with the identity key", err, errlen);
        goto out;
    }
    r = ecdsa_to_der(&s->signature.ecdsa, sig, cap, ret_len);
    if (r < 0)
        tpm_set_err(err, errlen, "cannot encode the TPM signature");
out:
    key_close(t, &key, transient);
    Esys_Free(s);
    return r;
}

/* Reads the selected PCR values one at a time (PCR_Read returns at most 8 per call). */
static int read_pcrs(struct tpm *t, const struct tpm_pcr_selection *sel, struct quote_pcr *out,
                     size_t cap, size_t *ret_n, char *err, size_t errlen)
{
    size_t n = 0;
    for (size_t b = 0; b < sel->nbanks; b++) {
        for (unsigned idx = 0; idx < QUOTE_PCR_COUNT; idx++) {
            if (!(sel->banks[b].mask & (1u << idx)))
                continue;
            TPML_PCR_SELECTION one = {.count = 1};
            TPML_DIGEST *values = NULL;
            one.pcrSelections[0].hash = sel->banks[b].alg;
            one.pcrSelections[0].sizeofSelect = 3;
            one.pcrSelections[0].pcrSelect[idx / 8] = (BYTE)(1u << (idx % 8));
            TSS2_RC rc = Esys_PCR_Read(t->esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &one,
                                       NULL, NULL, &values);
            if (rc != TSS2_RC_SUCCESS)
                return rc_fail(rc, "reading PCRs", err, errlen);
            size_t want = quote_hash_size(sel->banks[b].alg);
            if (values->count != 1 || values->digests[0].size != want || n >= cap) {
                Esys_Free(values);
                tpm_set_err(err, errlen, "the TPM has no %s PCR bank (or PCR %u is not allocated)",
                            quote_hash_name(sel->banks[b].alg), idx);
                return -EINVAL;
            }
            out[n].alg = sel->banks[b].alg;
            out[n].index = (uint8_t)idx;
            out[n].size = (uint8_t)want;
            memcpy(out[n].value, values->digests[0].buffer, want);
            n++;
            Esys_Free(values);
        }
    }
    *ret_n = n;
    return 0;
}

int tpm_quote(struct tpm *t, const struct tpm_key_ref *ak, const uint8_t *nonce, size_t nonce_len,
              const struct tpm_pcr_selection *sel, uint8_t *blob, size_t cap, size_t *ret_len,
              char *err, size_t errlen)
{
    ESYS_TR key = ESYS_TR_NONE;
    int transient = 0, r;
    TPM2B_DATA qualifying = {0};
    TPMT_SIG_SCHEME sig_scheme = {.scheme = TPM2_ALG_NULL};
    TPML_PCR_SELECTION pcrsel;
    TPM2B_ATTEST *attest = NULL;
    TPMT_SIGNATURE *sig = NULL;
    uint8_t sigbuf[QUOTE_MAX_SIG];
    size_t siglen = 0, npcrs = 0;
    struct quote_pcr *pcrs = NULL;
    TSS2_RC rc;

    if (t == NULL || ak == NULL || sel == NULL || blob == NULL || ret_len == NULL ||
        (nonce == NULL && nonce_len > 0) || sel->nbanks == 0)
        return -EINVAL;
    if (nonce_len > sizeof(qualifying.buffer)) {
        tpm_set_err(err, errlen, "nonce longer than %zu bytes", sizeof(qualifying.buffer));
        return -EINVAL;
    }
    qualifying.size = (UINT16)nonce_len;
    if (nonce_len > 0)
        memcpy(qualifying.buffer, nonce, nonce_len);
    selection_to_tpm(sel, &pcrsel);
    pcrs = calloc(QUOTE_MAX_PCRS, sizeof(*pcrs));
    if (pcrs == NULL)
        return -ENOMEM;
    r = key_open(t, TPM_KEY_AK, ak, &key, &transient, err, errlen);
    if (r < 0)
        goto out;
    rc = Esys_Quote(t->esys, key, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &qualifying,
                    &sig_scheme, &pcrsel, &attest, &sig);
    if (rc != TSS2_RC_SUCCESS) {
        r = rc_fail(rc, "TPM2_Quote with the attestation key", err, errlen);
        goto out;
    }
    r = read_pcrs(t, sel, pcrs, QUOTE_MAX_PCRS, &npcrs, err, errlen);
    if (r < 0)
        goto out;
    rc = Tss2_MU_TPMT_SIGNATURE_Marshal(sig, sigbuf, sizeof(sigbuf), &siglen);
    if (rc != TSS2_RC_SUCCESS) {
        r = rc_fail(rc, "encoding the quote signature", err, errlen);
        goto out;
    }
    if (quote_blob_encode(attest->attestationData, attest->size, sigbuf, siglen, pcrs, npcrs, blob,
                          cap, ret_len) != QUOTE_OK) {
        tpm_set_err(err, errlen, "quote does not fit the blob format");
        r = -EOVERFLOW;
        goto out;
    }
    r = 0;
out:
    key_close(t, &key, transient);
    Esys_Free(attest);
    Esys_Free(sig);
    free(pcrs);
    return r;
}

/* ---- sealing ---- */

#define SEAL_MAGIC "FGWS"

static int policy_session(struct tpm *t, TPM2_SE type, const TPML_PCR_SELECTION *pcrs,
                          ESYS_TR *ret_session, TPM2B_DIGEST **ret_digest, char *err, size_t errlen)
{
    TPMT_SYM_DEF sym = {.algorithm = TPM2_ALG_NULL};
    TPM2B_DIGEST empty = {0};
    ESYS_TR session = ESYS_TR_NONE;
    TSS2_RC rc =
        Esys_StartAuthSession(t->esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
                              ESYS_TR_NONE, NULL, type, &sym, TPM2_ALG_SHA256, &session);
    if (rc != TSS2_RC_SUCCESS)
        return rc_fail(rc, "starting a policy session", err, errlen);
    rc = Esys_PolicyPCR(t->esys, session, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &empty, pcrs);
    if (rc != TSS2_RC_SUCCESS)
        goto fail;
    if (ret_digest != NULL) {
        rc = Esys_PolicyGetDigest(t->esys, session, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
                                  ret_digest);
        if (rc != TSS2_RC_SUCCESS)
            goto fail;
    }
    *ret_session = session;
    return 0;
fail:
    (void)Esys_FlushContext(t->esys, session);
    return rc_fail(rc, "PCR policy", err, errlen);
}

int tpm_seal(struct tpm *t, const uint8_t *secret, size_t len,
             const struct tpm_pcr_selection *policy, uint8_t *blob, size_t cap, size_t *ret_len,
             char *err, size_t errlen)
{
    ESYS_TR primary = ESYS_TR_NONE, trial = ESYS_TR_NONE;
    TPM2B_SENSITIVE_CREATE sens = {0};
    TPM2B_DATA outside = {0};
    TPML_PCR_SELECTION none = {0}, pcrs;
    TPM2B_PUBLIC tmpl = {0};
    TPM2B_PUBLIC *pub = NULL;
    TPM2B_PRIVATE *priv = NULL;
    TPM2B_DIGEST *digest = NULL;
    size_t off = 0;
    TSS2_RC rc;
    int r;

    if (t == NULL || secret == NULL || blob == NULL || ret_len == NULL || len == 0)
        return -EINVAL;
    if (len > TPM_SEAL_MAX) {
        tpm_set_err(err, errlen, "a sealed secret is at most %d bytes", TPM_SEAL_MAX);
        return -EINVAL;
    }
    selection_to_tpm(policy, &pcrs);
    tmpl.publicArea.type = TPM2_ALG_KEYEDHASH;
    tmpl.publicArea.nameAlg = TPM2_ALG_SHA256;
    tmpl.publicArea.objectAttributes = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT;
    tmpl.publicArea.parameters.keyedHashDetail.scheme.scheme = TPM2_ALG_NULL;
    if (policy != NULL && policy->nbanks > 0) {
        r = policy_session(t, TPM2_SE_TRIAL, &pcrs, &trial, &digest, err, errlen);
        if (r < 0)
            goto out;
        tmpl.publicArea.authPolicy = *digest;
    } else {
        tmpl.publicArea.objectAttributes |= TPMA_OBJECT_USERWITHAUTH;
    }
    sens.sensitive.data.size = (UINT16)len;
    memcpy(sens.sensitive.data.buffer, secret, len);
    r = create_primary(t, &primary, err, errlen);
    if (r < 0)
        goto out;
    rc = Esys_Create(t->esys, primary, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &sens, &tmpl,
                     &outside, &none, &priv, &pub, NULL, NULL, NULL);
    if (rc != TSS2_RC_SUCCESS) {
        r = rc_fail(rc, "creating the sealed object", err, errlen);
        goto out;
    }
    /* "FGWS" u16 version, TPM2B_PUBLIC, TPM2B_PRIVATE, TPML_PCR_SELECTION (policy; count 0
     * when none), all in TPM marshalling. */
    r = -EOVERFLOW;
    if (cap < 6)
        goto out;
    memcpy(blob, SEAL_MAGIC, 4);
    blob[4] = 0;
    blob[5] = 1;
    off = 6;
    if (Tss2_MU_TPM2B_PUBLIC_Marshal(pub, blob, cap, &off) != TSS2_RC_SUCCESS ||
        Tss2_MU_TPM2B_PRIVATE_Marshal(priv, blob, cap, &off) != TSS2_RC_SUCCESS ||
        Tss2_MU_TPML_PCR_SELECTION_Marshal(&pcrs, blob, cap, &off) != TSS2_RC_SUCCESS) {
        tpm_set_err(err, errlen, "sealed blob does not fit %zu bytes", cap);
        goto out;
    }
    *ret_len = off;
    r = 0;
out:
    OPENSSL_cleanse(&sens, sizeof(sens));
    flush(t, &trial);
    flush(t, &primary);
    Esys_Free(pub);
    Esys_Free(priv);
    Esys_Free(digest);
    return r;
}

int tpm_unseal(struct tpm *t, const uint8_t *blob, size_t len, uint8_t *secret, size_t cap,
               size_t *ret_len, char *err, size_t errlen)
{
    ESYS_TR primary = ESYS_TR_NONE, obj = ESYS_TR_NONE, session = ESYS_TR_NONE;
    TPM2B_PUBLIC pub = {0};
    TPM2B_PRIVATE priv = {0};
    TPML_PCR_SELECTION pcrs = {0};
    TPM2B_SENSITIVE_DATA *data = NULL;
    size_t off = 6;
    TSS2_RC rc;
    int r = -EBADMSG;

    if (t == NULL || blob == NULL || secret == NULL || ret_len == NULL)
        return -EINVAL;
    if (len < 6 || len > TPM_SEAL_BLOB_MAX || memcmp(blob, SEAL_MAGIC, 4) != 0 || blob[4] != 0 ||
        blob[5] != 1 || Tss2_MU_TPM2B_PUBLIC_Unmarshal(blob, len, &off, &pub) != TSS2_RC_SUCCESS ||
        Tss2_MU_TPM2B_PRIVATE_Unmarshal(blob, len, &off, &priv) != TSS2_RC_SUCCESS ||
        Tss2_MU_TPML_PCR_SELECTION_Unmarshal(blob, len, &off, &pcrs) != TSS2_RC_SUCCESS ||
        off != len || pcrs.count > TPM_PCR_BANKS_MAX || pub.publicArea.type != TPM2_ALG_KEYEDHASH) {
        tpm_set_err(err, errlen, "not a fleetgw sealed blob");
        goto out;
    }
    r = create_primary(t, &primary, err, errlen);
    if (r < 0)
        goto out;
    rc = Esys_Load(t->esys, primary, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &priv, &pub,
                   &obj);
    if (rc != TSS2_RC_SUCCESS) {
        r = rc_fail(rc, "loading the sealed object (sealed by another TPM?)", err, errlen);
        goto out;
    }
    if (pcrs.count > 0) {
        r = policy_session(t, TPM2_SE_POLICY, &pcrs, &session, NULL, err, errlen);
        if (r < 0)
            goto out;
    }
    rc = Esys_Unseal(t->esys, obj, session != ESYS_TR_NONE ? session : ESYS_TR_PASSWORD,
                     ESYS_TR_NONE, ESYS_TR_NONE, &data);
    if (rc != TSS2_RC_SUCCESS) {
        r = rc_fail(rc, "unsealing", err, errlen);
        goto out;
    }
    if (data->size > cap) {
        tpm_set_err(err, errlen, "unsealed secret larger than the buffer");
        r = -EOVERFLOW;
        goto out;
    }
    memcpy(secret, data->buffer, data->size);
    *ret_len = data->size;
    r = 0;
out:
    if (data != NULL) {
        OPENSSL_cleanse(data, sizeof(*data));
        Esys_Free(data);
    }
    flush(t, &session);
    flush(t, &obj);
    flush(t, &primary);
    return r;
}
