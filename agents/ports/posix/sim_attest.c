/* fleet-sim attestation (see sim_attest.h). The private keys never leave this file: they are
 * generated here, written once to a 0600 file and only ever used to sign. */
#define _GNU_SOURCE
#include "sim_attest.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <mbedtls/bignum.h>
#include <mbedtls/ecdsa.h>
#include <mbedtls/md.h>
#include <mbedtls/platform_util.h>
#include <mbedtls/sha256.h>

#include "fleetgw/ident.h"
#include "fleetgw/image.h"
#include "fleetgw/posix_tcp.h"
#include "fleetgw/token.h"

#define SIM_PEM_MAX 1024u

int sim_crypto_init(struct sim_crypto *c)
{
    static const char pers[] = "fleet-sim IAK";
    memset(c, 0, sizeof(*c));
    mbedtls_hmac_drbg_init(&c->drbg);
    if (mbedtls_hmac_drbg_seed(&c->drbg, mbedtls_md_info_from_type(MBEDTLS_MD_SHA256),
                               posix_entropy, NULL, (const unsigned char *)pers,
                               sizeof(pers) - 1u) != 0) {
        fprintf(stderr, "fleet-sim: cannot seed the DRBG from getrandom\n");
        mbedtls_hmac_drbg_free(&c->drbg);
        return -1;
    }
    c->ready = true;
    return 0;
}

void sim_crypto_free(struct sim_crypto *c)
{
    if (c->ready)
        mbedtls_hmac_drbg_free(&c->drbg);
    c->ready = false;
}

int sim_image_load(const char *path, struct sim_image *img)
{
    struct image_info info;
    enum image_status st;
    uint8_t *buf = NULL;
    struct stat sb;
    size_t len;
    int ret = -1;
    FILE *f = fopen(path, "rbe");

    memset(img, 0, sizeof(*img));
    if (f == NULL || fstat(fileno(f), &sb) != 0) {
        fprintf(stderr, "fleet-sim: cannot read image %s: %s\n", path, strerror(errno));
        goto out;
    }
    if (!S_ISREG(sb.st_mode) || sb.st_size <= 0 || (uint64_t)sb.st_size > IMAGE_MAX_LEN) {
        fprintf(stderr, "fleet-sim: %s: not a regular file of 1..%u bytes\n", path, IMAGE_MAX_LEN);
        goto out;
    }
    len = (size_t)sb.st_size;
    buf = malloc(len);
    if (buf == NULL || fread(buf, 1, len, f) != len) {
        fprintf(stderr, "fleet-sim: cannot read image %s\n", path);
        goto out;
    }
    st = image_parse(buf, len, &info);
    if (st != IMAGE_OK) {
        fprintf(stderr, "fleet-sim: %s: not an MCUboot image: %s\n", path, image_status_str(st));
        goto out;
    }
    /* The measurement is the image hash as MCUboot computes it (header, body, protected
     * TLVs); it must equal the hash the image carries. */
    if (!info.has_sha256 || mbedtls_sha256_ret(buf, info.hashed_len, img->measurement, 0) != 0 ||
        memcmp(img->measurement, info.sha256, sizeof(img->measurement)) != 0) {
        fprintf(stderr, "fleet-sim: %s: image hash missing or wrong\n", path);
        goto out;
    }
    if (info.has_keyhash) {
        memcpy(img->signer_id, info.keyhash, sizeof(img->signer_id));
    } else if (info.pubkey_off != 0 && info.pubkey_len != 0) {
        if (mbedtls_sha256_ret(buf + info.pubkey_off, info.pubkey_len, img->signer_id, 0) != 0)
            goto out;
    } else {
        fprintf(stderr, "fleet-sim: %s: unsigned image (no key hash or public key)\n", path);
        goto out;
    }
    img->major = info.version.major;
    img->minor = info.version.minor;
    img->revision = info.version.revision;
    img->build = info.version.build;
    snprintf(img->version, sizeof(img->version), "%u.%u.%u+%lu", (unsigned)info.version.major,
             (unsigned)info.version.minor, (unsigned)info.version.revision,
             (unsigned long)info.version.build);
    ret = 0;
out:
    free(buf);
    if (f != NULL)
        fclose(f);
    return ret;
}

/* The node id from the IAK point, as the gateway derives it (proto's ident_node_id). */
static int derive_id(struct sim_iak *k)
{
    size_t olen = 0;
    const mbedtls_ecp_keypair *ec = mbedtls_pk_ec(k->key);
    if (mbedtls_ecp_point_write_binary(&ec->grp, &ec->Q, MBEDTLS_ECP_PF_UNCOMPRESSED, &olen, k->pub,
                                       sizeof(k->pub)) != 0 ||
        olen != sizeof(k->pub))
        return -1;
    return ident_node_id(k->pub, k->node_id);
}

static int gen_key(mbedtls_pk_context *pk, struct sim_crypto *c)
{
    mbedtls_pk_init(pk);
    if (mbedtls_pk_setup(pk, mbedtls_pk_info_from_type(MBEDTLS_PK_ECKEY)) != 0 ||
        mbedtls_ecp_gen_key(MBEDTLS_ECP_DP_SECP256R1, mbedtls_pk_ec(*pk), mbedtls_hmac_drbg_random,
                            &c->drbg) != 0) {
        mbedtls_pk_free(pk);
        return -1;
    }
    return 0;
}

static bool is_p256(mbedtls_pk_context *pk)
{
    return mbedtls_pk_get_type(pk) == MBEDTLS_PK_ECKEY &&
           mbedtls_pk_ec(*pk)->grp.id == MBEDTLS_ECP_DP_SECP256R1;
}

int sim_iak_load_or_create(struct sim_iak *k, struct sim_crypto *c, const char *dir,
                           const char *slot)
{
    char path[4096];
    unsigned char pem[SIM_PEM_MAX];
    struct stat sb;
    int w, ret = -1;

    memset(k, 0, sizeof(*k));
    mbedtls_pk_init(&k->key);
    mbedtls_pk_init(&k->forged);
    k->crypto = c;
    w = snprintf(path, sizeof(path), "%s/%s.iak.pem", dir, slot);
    if (w < 0 || (size_t)w >= sizeof(path))
        return -1;
    if (stat(path, &sb) == 0) {
        if ((sb.st_mode & 077) != 0 || !S_ISREG(sb.st_mode)) {
            fprintf(stderr, "fleet-sim: %s: an IAK file must be a regular file of mode 0600\n",
                    path);
            return -1;
        }
        if (mbedtls_pk_parse_keyfile(&k->key, path, NULL) != 0 || !is_p256(&k->key)) {
            fprintf(stderr, "fleet-sim: %s: not a P-256 private key\n", path);
            return -1;
        }
    } else {
        int fd;
        size_t n;
        mbedtls_pk_free(&k->key);
        if (gen_key(&k->key, c) != 0 || mbedtls_pk_write_key_pem(&k->key, pem, sizeof(pem)) != 0) {
            fprintf(stderr, "fleet-sim: cannot generate an IAK for %s\n", slot);
            goto out;
        }
        n = strlen((const char *)pem);
        fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0) {
            fprintf(stderr, "fleet-sim: cannot create %s: %s\n", path, strerror(errno));
            goto out;
        }
        if (write(fd, pem, n) != (ssize_t)n || fsync(fd) != 0) {
            fprintf(stderr, "fleet-sim: cannot write %s: %s\n", path, strerror(errno));
            close(fd);
            goto out;
        }
        close(fd);
    }
    if (derive_id(k) != 0)
        goto out;
    if (mbedtls_hmac_drbg_random(&c->drbg, k->boot_seed, sizeof(k->boot_seed)) != 0)
        goto out;
    ret = 0;
out:
    mbedtls_platform_zeroize(pem, sizeof(pem));
    return ret;
}

int sim_iak_export_pub(const struct sim_iak *k, const char *dir)
{
    char path[4096];
    unsigned char pem[SIM_PEM_MAX];
    FILE *f;
    int w = snprintf(path, sizeof(path), "%s/%s.pem", dir, k->node_id);
    mbedtls_pk_context *pk = (mbedtls_pk_context *)&k->key; /* write_pubkey takes non-const */
    if (w < 0 || (size_t)w >= sizeof(path) ||
        mbedtls_pk_write_pubkey_pem(pk, pem, sizeof(pem)) != 0)
        return -1;
    f = fopen(path, "we");
    if (f == NULL) {
        fprintf(stderr, "fleet-sim: cannot create %s: %s\n", path, strerror(errno));
        return -1;
    }
    if (fputs((const char *)pem, f) < 0) {
        fclose(f);
        return -1;
    }
    return fclose(f) == 0 ? 0 : -1;
}

int sim_iak_set_bad(struct sim_iak *k, enum sim_bad bad)
{
    k->bad = bad;
    if (bad == SIM_FORGE) {
        if (gen_key(&k->forged, k->crypto) != 0)
            return -1;
        k->has_forged = true;
    }
    if (bad == SIM_REPLAY &&
        mbedtls_hmac_drbg_random(&k->crypto->drbg, k->old_nonce, sizeof(k->old_nonce)) != 0)
        return -1;
    return 0;
}

void sim_iak_free(struct sim_iak *k)
{
    mbedtls_pk_free(&k->key); /* zeroizes the private scalar */
    mbedtls_pk_free(&k->forged);
    k->has_forged = false;
}

/* crypto_sign_fn: ES256 with the node's key (raw r || s). */
static int sign_cb(void *ctx, const uint8_t digest[CRYPTO_SHA256_LEN],
                   uint8_t sig_rs[CRYPTO_P256_SIG_LEN])
{
    struct sim_iak *k = ctx;
    mbedtls_pk_context *pk = k->has_forged ? &k->forged : &k->key;
    const mbedtls_ecp_keypair *ec = mbedtls_pk_ec(*pk);
    mbedtls_ecp_group grp;
    mbedtls_mpi r, s;
    int ret = -1;

    mbedtls_ecp_group_init(&grp);
    mbedtls_mpi_init(&r);
    mbedtls_mpi_init(&s);
    /* mbedtls_ecdsa_sign wants a non-const group (it may precompute into it) */
    if (mbedtls_ecp_group_copy(&grp, &ec->grp) != 0 ||
        mbedtls_ecdsa_sign(&grp, &r, &s, &ec->d, digest, CRYPTO_SHA256_LEN,
                           mbedtls_hmac_drbg_random, &k->crypto->drbg) != 0 ||
        mbedtls_mpi_write_binary(&r, sig_rs, 32) != 0 ||
        mbedtls_mpi_write_binary(&s, sig_rs + 32, 32) != 0)
        goto out;
    ret = 0;
out:
    mbedtls_mpi_free(&r);
    mbedtls_mpi_free(&s);
    mbedtls_ecp_group_free(&grp);
    return ret;
}

int sim_iak_token(struct sim_iak *k, const uint8_t *nonce, size_t nonce_len, uint8_t *out,
                  size_t cap, size_t *out_len)
{
    static const char impl_label[] = "fleetgw fleet-sim implementation";
    struct token_claims *c;
    struct token_sw_component *sw;
    int ret = -1;

    if (nonce_len > TOKEN_MAX_HASH || k->image == NULL)
        return -1;
    c = calloc(1, sizeof(*c)); /* ~2.4 KB: not on the poll loop's stack */
    if (c == NULL)
        return -1;
    c->present = TOKEN_HAS_NONCE | TOKEN_HAS_INSTANCE_ID | TOKEN_HAS_PROFILE | TOKEN_HAS_BOOT_SEED |
                 TOKEN_HAS_CLIENT_ID | TOKEN_HAS_LIFECYCLE | TOKEN_HAS_IMPL_ID | TOKEN_HAS_SW_COMPS;
    if (k->bad == SIM_REPLAY) {
        memcpy(c->nonce, k->old_nonce, sizeof(k->old_nonce));
        c->nonce_len = sizeof(k->old_nonce);
    } else {
        memcpy(c->nonce, nonce, nonce_len);
        c->nonce_len = nonce_len;
    }
    if (ident_instance_id(k->pub, c->instance_id) != 0)
        goto out;
    c->instance_id_len = TOKEN_INSTANCE_ID_LEN;
    snprintf(c->profile, sizeof(c->profile), "%s", TOKEN_PROFILE_2023);
    memcpy(c->boot_seed, k->boot_seed, sizeof(k->boot_seed));
    c->boot_seed_len = sizeof(k->boot_seed);
    c->client_id = 1;       /* the non-secure application */
    c->lifecycle = 0x3000u; /* secured */
    if (mbedtls_sha256_ret((const unsigned char *)impl_label, sizeof(impl_label) - 1u, c->impl_id,
                           0) != 0)
        goto out;
    c->impl_id_len = TOKEN_IMPL_ID_LEN;
    c->sw_count = 1;
    sw = &c->sw[0];
    sw->present =
        TOKEN_SWC_MEAS_TYPE | TOKEN_SWC_MEAS_VALUE | TOKEN_SWC_VERSION | TOKEN_SWC_SIGNER_ID;
    snprintf(sw->meas_type, sizeof(sw->meas_type), "NSPE");
    memcpy(sw->meas_value, k->image->measurement, CRYPTO_SHA256_LEN);
    sw->meas_value_len = CRYPTO_SHA256_LEN;
    if (k->bad == SIM_BAD_MEASUREMENT)
        sw->meas_value[0] ^= 0x01u;
    snprintf(sw->version, sizeof(sw->version), "%s", k->image->version);
    memcpy(sw->signer_id, k->image->signer_id, CRYPTO_SHA256_LEN);
    sw->signer_id_len = CRYPTO_SHA256_LEN;
    if (token_encode(c, sign_cb, k, out, cap, out_len) == TOKEN_OK)
        ret = 0;
out:
    free(c);
    return ret;
}
