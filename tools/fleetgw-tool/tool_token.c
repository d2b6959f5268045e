/* fleetgw-tool token: make, verify and decode PSA attestation tokens of the three profiles
 * (RFC 9783, http://arm.com/psa/2.0.0, PSA_IOT_PROFILE_1) in COSE_Sign1 (ES256) or COSE_Mac0
 * (HMAC 256/256).
 *   token make (-k PRIV.pem | --hmac-key KEYFILE) [--profile ID] --nonce HEX
 *        --sw TYPE:MEAS:SIGNER[:VERSION[:DESC]] ... -o OUT
 *   token verify (-k KEY.pem | --hmac-key KEYFILE) [--nonce HEX] [--json] TOKEN
 *   token decode [--json] TOKEN
 * --json prints the claims twice: "claims" in fleetgw's names (hex bytes), "veraison_claims"
 * in the names and encodings of Veraison's psatoken JSON for the token's profile (base64
 * bytes, as Go's encoding/json writes them).
 * Exit codes: 0 valid, 1 invalid (reason printed), 2 usage or I/O error. A hidden
 * "token bench -k KEY.pem [-n N] TOKEN" times token_verify() for bench_proto_token.py. */
#include "tool.h"
#include "tool_util.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>

#include "fleetgw/crypto.h"
#include "fleetgw/ident.h"
#include "fleetgw/token.h"

#define FILE_MAX 8192u

static void usage(FILE *f)
{
    fprintf(f,
            "usage:\n"
            "  fleetgw-tool token make (-k PRIV.pem | --hmac-key KEYFILE) [--profile ID]\n"
            "        --nonce HEX --sw TYPE:MEAS_HEX:SIGNER_HEX[:VERSION[:DESC]]\n"
            "        [--sw ...] [--instance-id HEX] [--impl-id HEX] [--client-id N]\n"
            "        [--lifecycle N] [--boot-seed HEX] [--cert-ref TEXT]\n"
            "        [--verification-service TEXT] [--no-check] -o OUT\n"
            "      ID: tag:psacertified.org,2023:psa#tfm (default), http://arm.com/psa/2.0.0\n"
            "      or PSA_IOT_PROFILE_1 (which also needs --boot-seed of 32 bytes).\n"
            "      -k: COSE_Sign1 ES256; --hmac-key: COSE_Mac0 HMAC 256/256 with the raw key\n"
            "      bytes (32..64) in KEYFILE. Instance id defaults to 0x01 || SHA-256(public\n"
            "      key), or 0x01 || SHA-256(SHA-256(HMAC key)); implementation id to 32 zero\n"
            "      bytes; client id to 1; lifecycle to 0x3000 (secured). --no-check writes\n"
            "      the token even if the claims break the profile's rules (test tokens).\n"
            "  fleetgw-tool token verify (-k KEY.pem | --hmac-key KEYFILE) [--nonce HEX] [--json]\n"
            "        TOKEN\n"
            "      KEY.pem: a P-256 public key (or private key, its public half is used).\n"
            "  fleetgw-tool token decode [--json] TOKEN   (no signature check)\n"
            "exit codes: 0 valid, 1 invalid (reason printed), 2 usage or I/O error\n");
}

/* ---- helpers -------------------------------------------------------------------------- */

static int parse_long(const char *s, long long min, long long max, long long *out)
{
    char *end = NULL;
    errno = 0;
    long long v = strtoll(s, &end, 0);
    if (errno != 0 || end == s || *end != '\0' || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

static int copy_text(char dst[TOKEN_MAX_TEXT + 1], const char *src)
{
    size_t n = strlen(src);
    if (n > TOKEN_MAX_TEXT)
        return -1;
    memcpy(dst, src, n + 1);
    return 0;
}

/* ---- output --------------------------------------------------------------------------- */

/* ", \"name\": " and the value as a JSON string, when present. */
static void json_str_field(FILE *f, const char *name, const char *s, int present)
{
    if (!present)
        return;
    fprintf(f, ", \"%s\": ", name);
    tool_json_str(f, s);
}

static void json_hex_field(FILE *f, const char *name, const uint8_t *p, size_t n, int present)
{
    if (!present)
        return;
    fprintf(f, ", \"%s\": ", name);
    tool_json_hex(f, p, n);
}

/* The profile's identifier: the claim when present, else the profile the keys said. */
static const char *profile_of(const struct token_claims *c)
{
    return (c->present & TOKEN_HAS_PROFILE) ? c->profile : token_profile_str(c->profile_id);
}

static void print_claims_json(FILE *f, const struct token_claims *c)
{
    fprintf(f, "{\"profile\": ");
    tool_json_str(f, profile_of(c));
    json_hex_field(f, "nonce", c->nonce, c->nonce_len, 1);
    json_hex_field(f, "instance_id", c->instance_id, c->instance_id_len, 1);
    json_hex_field(f, "implementation_id", c->impl_id, c->impl_id_len, 1);
    fprintf(f, ", \"client_id\": %ld", (long)c->client_id);
    fprintf(f, ", \"security_lifecycle\": %lu, \"security_lifecycle_name\": \"%s\"",
            (unsigned long)c->lifecycle, token_lifecycle_str(c->lifecycle));
    json_hex_field(f, "boot_seed", c->boot_seed, c->boot_seed_len,
                   (c->present & TOKEN_HAS_BOOT_SEED) != 0);
    json_str_field(f, "certification_reference", c->cert_ref,
                   (c->present & TOKEN_HAS_CERT_REF) != 0);
    json_str_field(f, "verification_service", c->verif_service,
                   (c->present & TOKEN_HAS_VERIF_SERVICE) != 0);
    if (c->present & TOKEN_HAS_NO_SW_MEAS)
        fprintf(f, ", \"no_software_measurements\": %lu", (unsigned long)c->no_sw_measurements);
    fprintf(f, ", \"software_components\": [");
    for (size_t i = 0; i < c->sw_count; i++) {
        const struct token_sw_component *s = &c->sw[i];
        fprintf(f, "%s{\"measurement_value\": ", i ? ", " : "");
        tool_json_hex(f, s->meas_value, s->meas_value_len);
        json_hex_field(f, "signer_id", s->signer_id, s->signer_id_len, 1);
        json_str_field(f, "measurement_type", s->meas_type,
                       (s->present & TOKEN_SWC_MEAS_TYPE) != 0);
        json_str_field(f, "version", s->version, (s->present & TOKEN_SWC_VERSION) != 0);
        json_str_field(f, "measurement_description", s->meas_desc,
                       (s->present & TOKEN_SWC_MEAS_DESC) != 0);
        fputc('}', f);
    }
    fprintf(f, "]}");
}

/* ---- Veraison's names ----------------------------------------------------------------- */

/* JSON names of Veraison's psatoken (claims_p1.go: P1Claims, claims_p2.go: P2Claims, which the
 * RFC 9783 profile shares; swcomponent.go: SwComponent), one row per profile. */
struct veraison_names {
    const char *profile, *client_id, *lifecycle, *impl_id, *boot_seed, *cert_ref, *sw, *no_sw,
        *nonce, *instance_id, *vsi;
};

static const struct veraison_names veraison_names[TOKEN_PROFILE__COUNT] = {
    [TOKEN_PROFILE_RFC9783] = {"eat-profile", "psa-client-id", "psa-security-lifecycle",
                               "psa-implementation-id", "psa-boot-seed",
                               "psa-certification-reference", "psa-software-components", NULL,
                               "psa-nonce", "psa-instance-id",
                               "psa-verification-service-indicator"},
    [TOKEN_PROFILE_PSA_2_0_0] = {"eat-profile", "psa-client-id", "psa-security-lifecycle",
                                 "psa-implementation-id", "psa-boot-seed",
                                 "psa-certification-reference", "psa-software-components", NULL,
                                 "psa-nonce", "psa-instance-id",
                                 "psa-verification-service-indicator"},
    [TOKEN_PROFILE_PSA_IOT_1] = {"psa-profile", "psa-client-id", "psa-security-lifecycle",
                                 "psa-implementation-id", "psa-boot-seed", "psa-hwver",
                                 "psa-software-components", "psa-no-software-measurements",
                                 "psa-nonce", "psa-instance-id",
                                 "psa-verification-service-indicator"},
};

static void vjson_b64(FILE *f, const char *name, const uint8_t *p, size_t n, int *first)
{
    fprintf(f, "%s\"%s\": ", *first ? "" : ", ", name);
    tool_json_base64(f, p, n);
    *first = 0;
}

static void vjson_str(FILE *f, const char *name, const char *s, int *first)
{
    fprintf(f, "%s\"%s\": ", *first ? "" : ", ", name);
    tool_json_str(f, s);
    *first = 0;
}

static void print_claims_veraison(FILE *f, const struct token_claims *c)
{
    const struct veraison_names *v = &veraison_names[c->profile_id];
    int first = 1;

    fputc('{', f);
    if (c->present & TOKEN_HAS_PROFILE)
        vjson_str(f, v->profile, c->profile, &first);
    fprintf(f, "%s\"%s\": %ld, \"%s\": %lu", first ? "" : ", ", v->client_id, (long)c->client_id,
            v->lifecycle, (unsigned long)c->lifecycle);
    first = 0;
    vjson_b64(f, v->impl_id, c->impl_id, c->impl_id_len, &first);
    if (c->present & TOKEN_HAS_BOOT_SEED)
        vjson_b64(f, v->boot_seed, c->boot_seed, c->boot_seed_len, &first);
    if (c->present & TOKEN_HAS_CERT_REF)
        vjson_str(f, v->cert_ref, c->cert_ref, &first);
    if (c->present & TOKEN_HAS_SW_COMPS) {
        fprintf(f, ", \"%s\": [", v->sw);
        for (size_t i = 0; i < c->sw_count; i++) {
            const struct token_sw_component *s = &c->sw[i];
            int sf = 1;
            fprintf(f, "%s{", i ? ", " : "");
            if (s->present & TOKEN_SWC_MEAS_TYPE)
                vjson_str(f, "measurement-type", s->meas_type, &sf);
            vjson_b64(f, "measurement-value", s->meas_value, s->meas_value_len, &sf);
            if (s->present & TOKEN_SWC_VERSION)
                vjson_str(f, "version", s->version, &sf);
            vjson_b64(f, "signer-id", s->signer_id, s->signer_id_len, &sf);
            if (s->present & TOKEN_SWC_MEAS_DESC)
                vjson_str(f, "measurement-description", s->meas_desc, &sf);
            fputc('}', f);
        }
        fputc(']', f);
    }
    if ((c->present & TOKEN_HAS_NO_SW_MEAS) && v->no_sw != NULL)
        fprintf(f, ", \"%s\": %lu", v->no_sw, (unsigned long)c->no_sw_measurements);
    vjson_b64(f, v->nonce, c->nonce, c->nonce_len, &first);
    vjson_b64(f, v->instance_id, c->instance_id, c->instance_id_len, &first);
    if (c->present & TOKEN_HAS_VERIF_SERVICE)
        vjson_str(f, v->vsi, c->verif_service, &first);
    fputc('}', f);
}

static void print_claims_text(FILE *f, const struct token_claims *c)
{
    fprintf(f,
            "profile:            %s%s\nenvelope:           %s\nnonce:              ", profile_of(c),
            (c->present & TOKEN_HAS_PROFILE) ? "" : " (no profile claim)",
            c->envelope == TOKEN_ENVELOPE_MAC0 ? "COSE_Mac0, HMAC 256/256" : "COSE_Sign1, ES256");
    tool_print_hex(f, c->nonce, c->nonce_len);
    fprintf(f, "\ninstance id:        ");
    tool_print_hex(f, c->instance_id, c->instance_id_len);
    fprintf(f, "\nimplementation id:  ");
    tool_print_hex(f, c->impl_id, c->impl_id_len);
    fprintf(f, "\nclient id:          %ld\nsecurity lifecycle: 0x%04lx (%s)\n", (long)c->client_id,
            (unsigned long)c->lifecycle, token_lifecycle_str(c->lifecycle));
    if (c->present & TOKEN_HAS_BOOT_SEED) {
        fprintf(f, "boot seed:          ");
        tool_print_hex(f, c->boot_seed, c->boot_seed_len);
        fputc('\n', f);
    }
    if (c->present & TOKEN_HAS_CERT_REF)
        fprintf(f, "certification ref:  %s\n", c->cert_ref);
    if (c->present & TOKEN_HAS_VERIF_SERVICE)
        fprintf(f, "verification svc:   %s\n", c->verif_service);
    if (c->present & TOKEN_HAS_NO_SW_MEAS)
        fprintf(f, "no sw measurements: %lu\n", (unsigned long)c->no_sw_measurements);
    for (size_t i = 0; i < c->sw_count; i++) {
        const struct token_sw_component *s = &c->sw[i];
        fprintf(f, "software component %zu:\n  measurement value: ", i);
        tool_print_hex(f, s->meas_value, s->meas_value_len);
        fprintf(f, "\n  signer id:         ");
        tool_print_hex(f, s->signer_id, s->signer_id_len);
        fputc('\n', f);
        if (s->present & TOKEN_SWC_MEAS_TYPE)
            fprintf(f, "  measurement type:  %s\n", s->meas_type);
        if (s->present & TOKEN_SWC_VERSION)
            fprintf(f, "  version:           %s\n", s->version);
        if (s->present & TOKEN_SWC_MEAS_DESC)
            fprintf(f, "  description:       %s\n", s->meas_desc);
    }
}

static int report(enum token_err r, const struct token_claims *c, int json, int verified)
{
    if (json) {
        printf("{\"valid\": %s, \"signature_checked\": %s, \"reason\": ",
               r == TOKEN_OK ? "true" : "false", verified ? "true" : "false");
        tool_json_str(stdout, token_err_str(r));
        if (r == TOKEN_OK) {
            printf(", \"profile\": ");
            tool_json_str(stdout, token_profile_str(c->profile_id));
            printf(", \"envelope\": \"%s\", \"claims\": ", token_envelope_str(c->envelope));
            print_claims_json(stdout, c);
            printf(", \"veraison_claims\": ");
            print_claims_veraison(stdout, c);
        }
        printf("}\n");
    } else if (r == TOKEN_OK) {
        printf("%s\n", verified ? "token valid"
                       : c->envelope == TOKEN_ENVELOPE_MAC0
                           ? "token well-formed (MAC NOT checked)"
                           : "token well-formed (signature NOT checked)");
        print_claims_text(stdout, c);
    } else {
        printf("token invalid: %s\n", token_err_str(r));
    }
    return r == TOKEN_OK ? TOOL_OK : TOOL_INVALID;
}

/* A symmetric IAK: the raw key bytes (CRYPTO_HMAC_KEY_MIN..MAX) of a file. 0 or -1 (said). */
static int load_hmac_key(const char *path, uint8_t key[CRYPTO_HMAC_KEY_MAX], size_t *len)
{
    uint8_t buf[CRYPTO_HMAC_KEY_MAX + 1];
    size_t n = 0;
    int fr = tool_read_capped(path, buf, sizeof(buf), &n);
    if (fr == 0 && n > CRYPTO_HMAC_KEY_MAX)
        fr = -EFBIG;
    if (fr != 0 || n < CRYPTO_HMAC_KEY_MIN) {
        fprintf(stderr, "token: cannot use HMAC key %s: %s\n", path,
                fr == -EFBIG || fr == 0 ? "not 32..64 raw bytes" : strerror(-fr));
        crypto_wipe(buf, sizeof(buf));
        return -1;
    }
    memcpy(key, buf, n);
    *len = n;
    crypto_wipe(buf, sizeof(buf));
    return 0;
}

/* ---- commands ------------------------------------------------------------------------- */

enum {
    OPT_NONCE = 256,
    OPT_SW,
    OPT_INSTANCE,
    OPT_IMPL,
    OPT_CLIENT,
    OPT_LIFECYCLE,
    OPT_SEED,
    OPT_CERT,
    OPT_VSI,
    OPT_NOCHECK,
    OPT_JSON,
    OPT_HMAC,
    OPT_PROFILE,
};

static const struct option long_opts[] = {
    {"key", required_argument, NULL, 'k'},
    {"out", required_argument, NULL, 'o'},
    {"nonce", required_argument, NULL, OPT_NONCE},
    {"sw", required_argument, NULL, OPT_SW},
    {"instance-id", required_argument, NULL, OPT_INSTANCE},
    {"impl-id", required_argument, NULL, OPT_IMPL},
    {"client-id", required_argument, NULL, OPT_CLIENT},
    {"lifecycle", required_argument, NULL, OPT_LIFECYCLE},
    {"boot-seed", required_argument, NULL, OPT_SEED},
    {"cert-ref", required_argument, NULL, OPT_CERT},
    {"verification-service", required_argument, NULL, OPT_VSI},
    {"no-check", no_argument, NULL, OPT_NOCHECK},
    {"json", no_argument, NULL, OPT_JSON},
    {"hmac-key", required_argument, NULL, OPT_HMAC},
    {"profile", required_argument, NULL, OPT_PROFILE},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

/* TYPE:MEAS_HEX:SIGNER_HEX[:VERSION[:DESC]]; an empty TYPE or MEAS/SIGNER omits that field */
static int parse_sw(const char *arg, struct token_sw_component *s)
{
    char buf[1024];
    char *field[5] = {NULL, NULL, NULL, NULL, NULL};
    size_t nf = 0;
    if (strlen(arg) >= sizeof(buf))
        return -1;
    strcpy(buf, arg);
    for (char *p = buf, *tok; nf < 5 && (tok = strsep(&p, ":")) != NULL;)
        field[nf++] = tok;
    if (nf < 3)
        return -1;
    memset(s, 0, sizeof(*s));
    if (field[0][0] != '\0') {
        if (copy_text(s->meas_type, field[0]) != 0)
            return -1;
        s->present |= TOKEN_SWC_MEAS_TYPE;
    }
    if (field[1][0] != '\0') {
        if (tool_hex_decode(field[1], s->meas_value, sizeof(s->meas_value), &s->meas_value_len) !=
            0)
            return -1;
        s->present |= TOKEN_SWC_MEAS_VALUE;
    }
    if (field[2][0] != '\0') {
        if (tool_hex_decode(field[2], s->signer_id, sizeof(s->signer_id), &s->signer_id_len) != 0)
            return -1;
        s->present |= TOKEN_SWC_SIGNER_ID;
    }
    if (nf > 3 && field[3][0] != '\0') {
        if (copy_text(s->version, field[3]) != 0)
            return -1;
        s->present |= TOKEN_SWC_VERSION;
    }
    if (nf > 4 && field[4][0] != '\0') {
        if (copy_text(s->meas_desc, field[4]) != 0)
            return -1;
        s->present |= TOKEN_SWC_MEAS_DESC;
    }
    return 0;
}

static int cmd_make(int argc, char **argv)
{
    static struct token_claims c;
    const char *key_path = NULL, *out_path = NULL, *hmac_path = NULL;
    int no_check = 0, have_instance = 0, rc = TOOL_USAGE, opt;
    EVP_PKEY *pkey = NULL;
    uint8_t tok[TOKEN_MAX_LEN];
    uint8_t hkey[CRYPTO_HMAC_KEY_MAX];
    size_t len = 0, hkey_len = 0;
    long long v;

    memset(&c, 0, sizeof(c));
    c.present = TOKEN_HAS_PROFILE | TOKEN_HAS_INSTANCE_ID | TOKEN_HAS_IMPL_ID |
                TOKEN_HAS_CLIENT_ID | TOKEN_HAS_LIFECYCLE | TOKEN_HAS_SW_COMPS;
    strcpy(c.profile, TOKEN_PROFILE_2023);
    c.impl_id_len = TOKEN_IMPL_ID_LEN;
    c.client_id = 1;
    c.lifecycle = 0x3000;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "k:o:h", long_opts, NULL)) != -1) {
        switch (opt) {
        case 'k':
            key_path = optarg;
            break;
        case 'o':
            out_path = optarg;
            break;
        case OPT_HMAC:
            hmac_path = optarg;
            break;
        case OPT_PROFILE:
            c.profile_id = token_profile_from_str(optarg);
            if (c.profile_id == TOKEN_PROFILE__COUNT) {
                fprintf(stderr, "token make: unknown profile '%s'\n", optarg);
                goto bad;
            }
            if (copy_text(c.profile, token_profile_str(c.profile_id)) != 0)
                goto bad;
            break;
        case OPT_NONCE:
            if (tool_hex_decode(optarg, c.nonce, sizeof(c.nonce), &c.nonce_len) != 0)
                goto bad;
            c.present |= TOKEN_HAS_NONCE;
            break;
        case OPT_SW:
            if (c.sw_count == TOKEN_MAX_SW_COMPONENTS || parse_sw(optarg, &c.sw[c.sw_count]) != 0)
                goto bad;
            c.sw_count++;
            break;
        case OPT_INSTANCE:
            if (tool_hex_decode(optarg, c.instance_id, sizeof(c.instance_id), &c.instance_id_len) !=
                0)
                goto bad;
            have_instance = 1;
            break;
        case OPT_IMPL:
            if (tool_hex_decode(optarg, c.impl_id, sizeof(c.impl_id), &c.impl_id_len) != 0)
                goto bad;
            break;
        case OPT_CLIENT:
            if (parse_long(optarg, INT32_MIN, INT32_MAX, &v) != 0)
                goto bad;
            c.client_id = (int32_t)v;
            break;
        case OPT_LIFECYCLE:
            if (parse_long(optarg, 0, 0xffff, &v) != 0)
                goto bad;
            c.lifecycle = (uint32_t)v;
            break;
        case OPT_SEED:
            if (tool_hex_decode(optarg, c.boot_seed, sizeof(c.boot_seed), &c.boot_seed_len) != 0)
                goto bad;
            c.present |= TOKEN_HAS_BOOT_SEED;
            break;
        case OPT_CERT:
            if (copy_text(c.cert_ref, optarg) != 0)
                goto bad;
            c.present |= TOKEN_HAS_CERT_REF;
            break;
        case OPT_VSI:
            if (copy_text(c.verif_service, optarg) != 0)
                goto bad;
            c.present |= TOKEN_HAS_VERIF_SERVICE;
            break;
        case OPT_NOCHECK:
            no_check = 1;
            break;
        case 'h':
            usage(stdout);
            return TOOL_OK;
        default:
            goto bad;
        }
    }
    if ((key_path == NULL) == (hmac_path == NULL) || out_path == NULL || optind != argc) {
        fprintf(stderr, "token make: one of -k KEY and --hmac-key KEYFILE, and -o OUT, are "
                        "required, no positional arguments\n");
        goto bad;
    }
    if (key_path != NULL) {
        pkey = tool_load_key(key_path, 1);
        if (pkey == NULL)
            goto out;
    } else if (load_hmac_key(hmac_path, hkey, &hkey_len) != 0) {
        goto out;
    }
    if (!have_instance) {
        /* PSA attestation API 2.0, table 4: H(IAK) for a key pair, H(H(IAK)) for a symmetric
         * key (the Instance ID must not reveal anything usable about a secret key) */
        uint8_t pub[CRYPTO_P256_PUB_LEN];
        int ok = pkey != NULL ? tool_pub_point(pkey, pub) == 0 &&
                                    crypto_sha256(pub, sizeof(pub), c.instance_id + 1) == 0
                              : ident_sym_key_id(hkey, hkey_len, c.instance_id + 1) == 0;
        if (!ok) {
            fprintf(stderr, "token make: cannot derive the instance id\n");
            goto out;
        }
        c.instance_id[0] = 0x01;
        c.instance_id_len = TOKEN_INSTANCE_ID_LEN;
    }
    if (!no_check) {
        enum token_err r = token_check_claims(&c);
        if (r != TOKEN_OK) {
            printf("claims invalid: %s (use --no-check to write such a token anyway)\n",
                   token_err_str(r));
            rc = TOOL_INVALID;
            goto out;
        }
    }
    enum token_err r = pkey != NULL ? token_encode(&c, tool_sign_p256, pkey, tok, sizeof(tok), &len)
                                    : token_encode_mac0(&c, hkey, hkey_len, tok, sizeof(tok), &len);
    if (r != TOKEN_OK) {
        fprintf(stderr, "token make: %s\n", token_err_str(r));
        goto out;
    }
    FILE *f = fopen(out_path, "wbe");
    if (f == NULL || fwrite(tok, 1, len, f) != len) {
        fprintf(stderr, "token make: cannot write %s: %s\n", out_path, strerror(errno));
        if (f != NULL)
            fclose(f);
        goto out;
    }
    if (fclose(f) != 0) {
        fprintf(stderr, "token make: cannot write %s: %s\n", out_path, strerror(errno));
        goto out;
    }
    printf("wrote %s (%zu bytes)\n", out_path, len);
    rc = TOOL_OK;
out:
    crypto_wipe(hkey, sizeof(hkey));
    EVP_PKEY_free(pkey);
    return rc;
bad:
    usage(stderr);
    rc = TOOL_USAGE;
    goto out;
}

/* verify, decode and bench share option parsing */
static int cmd_check(int argc, char **argv, int mode /* 0 decode, 1 verify, 2 bench */)
{
    static struct token_claims c;
    static uint8_t tok[FILE_MAX];
    const char *key_path = NULL, *hmac_path = NULL;
    uint8_t nonce[TOKEN_MAX_HASH], pub[CRYPTO_P256_PUB_LEN];
    uint8_t hkey[CRYPTO_HMAC_KEY_MAX];
    size_t nonce_len = 0, n = 0, hkey_len = 0;
    int have_nonce = 0;
    long long iterations = 2000;
    int json = 0, rc = TOOL_USAGE, opt;
    EVP_PKEY *pkey = NULL;
    enum token_err r;

    optind = 1;
    while ((opt = getopt_long(argc, argv, "k:n:h", long_opts, NULL)) != -1) {
        switch (opt) {
        case 'k':
            if (mode == 0)
                goto bad;
            key_path = optarg;
            break;
        case OPT_HMAC:
            if (mode == 0)
                goto bad;
            hmac_path = optarg;
            break;
        case 'n':
            if (mode != 2 || parse_long(optarg, 1, 100000000, &iterations) != 0)
                goto bad;
            break;
        case OPT_NONCE:
            if (mode != 1)
                goto bad;
            if (tool_hex_decode(optarg, nonce, sizeof(nonce), &nonce_len) != 0)
                goto bad;
            have_nonce = 1;
            break;
        case OPT_JSON:
            json = 1;
            break;
        case 'h':
            usage(stdout);
            return TOOL_OK;
        default:
            goto bad;
        }
    }
    if (optind + 1 != argc || (mode != 0 && (key_path == NULL) == (hmac_path == NULL)))
        goto bad;
    if (hmac_path != NULL && load_hmac_key(hmac_path, hkey, &hkey_len) != 0)
        goto out;
    if (key_path != NULL) {
        pkey = tool_load_key(key_path, 0);
        if (pkey == NULL || tool_pub_point(pkey, pub) != 0) {
            fprintf(stderr, "token: cannot use key %s\n", key_path);
            goto out;
        }
    }
    int fr = tool_read_capped(argv[optind], tok, sizeof(tok), &n);
    if (fr == -EFBIG) {
        rc = report(TOKEN_ERR_NOSPACE, &c, json, mode != 0);
        goto out;
    }
    if (fr != 0) {
        fprintf(stderr, "token: cannot read %s: %s\n", argv[optind], strerror(-fr));
        goto out;
    }
    if (mode == 0) {
        r = token_decode(tok, n, &c);
    } else if (mode == 1) {
        r = hmac_path != NULL ? token_verify_mac0(tok, n, hkey, hkey_len, have_nonce ? nonce : NULL,
                                                  nonce_len, &c)
                              : token_verify(tok, n, pub, have_nonce ? nonce : NULL, nonce_len, &c);
    } else {
        /* CPU time, like "openssl speed" (which reports user CPU time unless -elapsed): on a
         * shared machine wall time would measure the neighbours, not the code. */
        struct tool_stopwatch sw;
        double cpu, wall;
        tool_stopwatch_start(&sw);
        for (long long i = 0; i < iterations; i++)
            if ((hmac_path != NULL ? token_verify_mac0(tok, n, hkey, hkey_len, NULL, 0, &c)
                                   : token_verify(tok, n, pub, NULL, 0, &c)) != TOKEN_OK) {
                printf("token invalid during bench\n");
                rc = TOOL_INVALID;
                goto out;
            }
        tool_stopwatch_read(&sw, &cpu, &wall);
        printf("{\"iterations\": %lld, \"token_bytes\": %zu, \"cpu_seconds\": %.6f, "
               "\"wall_seconds\": %.6f, \"verify_per_cpu_sec\": %.1f, "
               "\"verify_per_wall_sec\": %.1f}\n",
               iterations, n, cpu, wall, cpu > 0 ? (double)iterations / cpu : 0.0,
               wall > 0 ? (double)iterations / wall : 0.0);
        rc = TOOL_OK;
        goto out;
    }
    rc = report(r, &c, json, mode == 1);
out:
    crypto_wipe(hkey, sizeof(hkey));
    EVP_PKEY_free(pkey);
    return rc;
bad:
    usage(stderr);
    rc = TOOL_USAGE;
    goto out;
}

int tool_token(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return TOOL_USAGE;
    }
    if (strcmp(argv[1], "make") == 0)
        return cmd_make(argc - 1, argv + 1);
    if (strcmp(argv[1], "verify") == 0)
        return cmd_check(argc - 1, argv + 1, 1);
    if (strcmp(argv[1], "decode") == 0)
        return cmd_check(argc - 1, argv + 1, 0);
    if (strcmp(argv[1], "bench") == 0)
        return cmd_check(argc - 1, argv + 1, 2);
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage(stdout);
        return TOOL_OK;
    }
    fprintf(stderr, "token: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return TOOL_USAGE;
}
