#define _GNU_SOURCE
#include "attest.h"
#include "readfile.h"

#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <fleetgw/hex.h>
#include <fleetgw/ident.h>
#include <fleetgw/image.h>
#include <fleetgw/msg.h>
#include <fleetgw/token.h>
#include <json-c/json.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct attest_ref {
    uint8_t meas[TOKEN_MAX_HASH];
    size_t meas_len;
    uint8_t signer[TOKEN_MAX_HASH];
    size_t signer_len;
    char version[65];
};

struct attest_policy {
    unsigned lifecycles; /* bit n: lifecycle major n (0..6) allowed */
    unsigned profiles;   /* bit n: enum token_profile n allowed */
    size_t n;
    struct attest_ref refs[];
};

#define ATTEST_DEFAULT_LIFECYCLES (1u << 3) /* "secured" (lifecycle_names[3]) */
#define ATTEST_ALL_PROFILES       ((1u << TOKEN_PROFILE__COUNT) - 1u)
#define ATTEST_POLICY_MAX_TEXT    (4u * 1024 * 1024)

static const char *const lifecycle_names[] = {
    "unknown",           "assembly-and-test",         "psa-rot-provisioning", "secured",
    "non-psa-rot-debug", "recoverable-psa-rot-debug", "decommissioned"};

/* A non-empty hex string of at most cap bytes (proto's hex_decode). */
static int hex_field(const char *s, uint8_t *out, size_t cap, size_t *ret_len)
{
    size_t n = strlen(s);
    return n > 0 && hex_decode(s, n, out, cap, ret_len) == 0 ? 0 : -EINVAL;
}

static bool hash_len_ok(size_t n)
{
    return n == 32 || n == 48 || n == 64;
}

int attest_policy_parse(const char *text, size_t len, struct attest_policy **ret, char *err,
                        size_t errlen)
{
    json_tokener *tok = json_tokener_new_ex(8);
    json_object *root = NULL, *v = NULL;
    struct attest_policy *p = NULL;
    int r = -EINVAL;

    if (tok == NULL)
        return -ENOMEM;
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
    root = json_tokener_parse_ex(tok, text, (int)len);
    if (root == NULL || json_tokener_get_error(tok) != json_tokener_success ||
        json_tokener_get_parse_end(tok) != len || !json_object_is_type(root, json_type_object)) {
        snprintf(err, errlen, "not a JSON object");
        goto out;
    }
    json_object_object_foreach(root, key, val)
    {
        (void)val;
        if (strcmp(key, "lifecycles") != 0 && strcmp(key, "reference_values") != 0) {
            snprintf(err, errlen, "unknown key '%.40s'", key);
            goto out;
        }
    }
    if (!json_object_object_get_ex(root, "reference_values", &v) ||
        !json_object_is_type(v, json_type_array)) {
        snprintf(err, errlen, "'reference_values' (an array) is required");
        goto out;
    }
    size_t n = json_object_array_length(v);
    if (n > ATTEST_REFS_MAX) {
        snprintf(err, errlen, "more than %d reference values", ATTEST_REFS_MAX);
        goto out;
    }
    p = calloc(1, sizeof(*p) + n * sizeof(p->refs[0]));
    if (p == NULL) {
        r = -ENOMEM;
        goto out;
    }
    p->n = n;
    for (size_t i = 0; i < n; i++) {
        json_object *e = json_object_array_get_idx(v, i), *f;
        struct attest_ref *ref = &p->refs[i];
        if (!json_object_is_type(e, json_type_object)) {
            snprintf(err, errlen, "reference_values[%zu] is not an object", i);
            goto out;
        }
        json_object_object_foreach(e, k2, v2)
        {
            (void)v2;
            if (strcmp(k2, "measurement") != 0 && strcmp(k2, "signer_id") != 0 &&
                strcmp(k2, "version") != 0 && strcmp(k2, "description") != 0) {
                snprintf(err, errlen, "reference_values[%zu]: unknown key '%.40s'", i, k2);
                goto out;
            }
        }
        if (!json_object_object_get_ex(e, "measurement", &f) ||
            !json_object_is_type(f, json_type_string) ||
            hex_field(json_object_get_string(f), ref->meas, sizeof(ref->meas), &ref->meas_len) <
                0 ||
            !hash_len_ok(ref->meas_len)) {
            snprintf(err, errlen, "reference_values[%zu].measurement must be 32/48/64 bytes hex",
                     i);
            goto out;
        }
        if (!json_object_object_get_ex(e, "signer_id", &f) ||
            !json_object_is_type(f, json_type_string) ||
            hex_field(json_object_get_string(f), ref->signer, sizeof(ref->signer),
                      &ref->signer_len) < 0 ||
            !hash_len_ok(ref->signer_len)) {
            snprintf(err, errlen, "reference_values[%zu].signer_id must be 32/48/64 bytes hex", i);
            goto out;
        }
        if (json_object_object_get_ex(e, "version", &f)) {
            if (!json_object_is_type(f, json_type_string) ||
                (size_t)json_object_get_string_len(f) >= sizeof(ref->version)) {
                snprintf(err, errlen, "reference_values[%zu].version must be a short string", i);
                goto out;
            }
            snprintf(ref->version, sizeof(ref->version), "%s", json_object_get_string(f));
        }
    }
    p->lifecycles = ATTEST_DEFAULT_LIFECYCLES;
    p->profiles = ATTEST_ALL_PROFILES;
    if (json_object_object_get_ex(root, "lifecycles", &v)) {
        if (!json_object_is_type(v, json_type_array)) {
            snprintf(err, errlen, "'lifecycles' must be an array of names");
            goto out;
        }
        p->lifecycles = 0;
        for (size_t i = 0; i < json_object_array_length(v); i++) {
            const char *name = json_object_get_string(json_object_array_get_idx(v, i));
            size_t k;
            for (k = 0; k < sizeof(lifecycle_names) / sizeof(lifecycle_names[0]); k++)
                if (name != NULL && strcmp(name, lifecycle_names[k]) == 0)
                    break;
            if (k == sizeof(lifecycle_names) / sizeof(lifecycle_names[0])) {
                snprintf(err, errlen, "lifecycles[%zu] is not a PSA lifecycle name", i);
                goto out;
            }
            p->lifecycles |= 1u << k;
        }
    }
    *ret = p;
    p = NULL;
    r = 0;
out:
    free(p);
    json_object_put(root);
    json_tokener_free(tok);
    return r;
}

int attest_policy_load(const char *path, struct attest_policy **ret, char *err, size_t errlen)
{
    const char *why = NULL;
    char inner[200];
    size_t len = 0;
    int r;
    char *buf = readfile_at(AT_FDCWD, path, ATTEST_POLICY_MAX_TEXT, &len, &why, &r);
    if (buf == NULL) {
        snprintf(err, errlen, "%s: %s (a reference file is a regular file of at most 4 MiB)", path,
                 why);
        return r;
    }
    r = attest_policy_parse(buf, len, ret, inner, sizeof(inner));
    if (r < 0)
        snprintf(err, errlen, "%s: %s", path, inner);
    free(buf);
    return r;
}

int attest_signer_keys_parse(const char *text, size_t len, struct image_key *keys, size_t cap,
                             size_t *ret_n, char *err, size_t errlen)
{
    size_t blocks = 0, n = 0;
    int r = 0;
    *ret_n = 0;
    if (len > ATTEST_KEYS_MAX_TEXT) {
        snprintf(err, errlen, "larger than 64 KiB");
        return -EFBIG;
    }
    /* A NUL-terminated copy: strstr and the PEM reader see exactly len bytes. */
    char *t = malloc(len + 1);
    if (t == NULL)
        return -ENOMEM;
    memcpy(t, text, len);
    t[len] = '\0';
    for (const char *q = t; (q = strstr(q, "-----BEGIN ")) != NULL; q += 11)
        blocks++;
    if (blocks == 0 || strlen(t) != len) {
        snprintf(err, errlen,
                 blocks == 0 ? "no PEM public key (-----BEGIN PUBLIC KEY-----) in it"
                             : "a NUL byte in the text");
        free(t);
        return -EINVAL;
    }
    if (blocks > cap) {
        snprintf(err, errlen, "more than %zu keys", cap);
        free(t);
        return -EINVAL;
    }
    BIO *b = BIO_new_mem_buf(t, (int)len);
    if (b == NULL) {
        free(t);
        return -ENOMEM;
    }
    for (n = 0; n < blocks; n++) {
        EVP_PKEY *pk = PEM_read_bio_PUBKEY(b, NULL, NULL, NULL);
        char group[32] = "";
        uint8_t pt[CRYPTO_P256_PUB_LEN + 1];
        size_t plen = 0;
        bool ok = pk != NULL && EVP_PKEY_is_a(pk, "EC") &&
                  EVP_PKEY_get_utf8_string_param(pk, OSSL_PKEY_PARAM_GROUP_NAME, group,
                                                 sizeof(group), NULL) == 1 &&
                  strcmp(group, "prime256v1") == 0 &&
                  EVP_PKEY_get_octet_string_param(pk, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, pt,
                                                  sizeof(pt), &plen) == 1 &&
                  plen == CRYPTO_P256_PUB_LEN && pt[0] == 0x04;
        EVP_PKEY_free(pk);
        if (!ok) {
            snprintf(err, errlen, "key %zu is not a P-256 public key (PEM \"PUBLIC KEY\")", n + 1);
            r = -EINVAL;
            break;
        }
        memcpy(keys[n].pub, pt, CRYPTO_P256_PUB_LEN);
    }
    ERR_clear_error();
    BIO_free(b);
    free(t);
    *ret_n = r == 0 ? n : 0;
    return r;
}

/* The keys of a PEM file: attest_signer_keys_parse() of its text, err naming the file. */
static int load_signer_keys(const char *path, struct image_key *keys, size_t cap, size_t *ret_n,
                            char *err, size_t errlen)
{
    const char *why = NULL;
    char inner[200];
    size_t len = 0;
    int r;
    char *text = readfile_at(AT_FDCWD, path, ATTEST_KEYS_MAX_TEXT, &len, &why, &r);
    if (text == NULL) {
        snprintf(err, errlen, "%s: %s (a key file is a regular file of at most 64 KiB)", path, why);
        return r;
    }
    r = attest_signer_keys_parse(text, len, keys, cap, ret_n, inner, sizeof(inner));
    if (r < 0)
        snprintf(err, errlen, "%s: %s", path, inner);
    free(text);
    return r;
}

static int no_dot(const struct dirent *e)
{
    return e->d_name[0] != '.';
}

int attest_policy_build(const char *reference_file, const char *image_dir, const char *signer_keys,
                        attest_image_report_fn report, void *ctx, struct attest_policy **ret,
                        char *err, size_t errlen)
{
    struct attest_policy *p = NULL;
    struct dirent **names = NULL;
    int n_names = 0, dirfd = -1, r;

    if (reference_file != NULL && reference_file[0] != '\0') {
        r = attest_policy_load(reference_file, &p, err, errlen);
        if (r < 0)
            return r;
        if (p == NULL)
            return -ENOMEM; /* (attest_policy_load sets it whenever it returns 0) */
    } else {
        p = calloc(1, sizeof(*p));
        if (p == NULL)
            return -ENOMEM;
        p->lifecycles = ATTEST_DEFAULT_LIFECYCLES;
        p->profiles = ATTEST_ALL_PROFILES;
    }
    if (image_dir == NULL || image_dir[0] == '\0') {
        *ret = p;
        return 0;
    }
    struct image_key keys[IMAGE_MAX_KEYS];
    size_t n_keys = 0;
    r = load_signer_keys(signer_keys ? signer_keys : "", keys, IMAGE_MAX_KEYS, &n_keys, err,
                         errlen);
    if (r < 0)
        goto out;
    dirfd = open(image_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    n_names = dirfd < 0 ? -1 : scandirat(dirfd, ".", &names, no_dot, alphasort);
    if (n_names < 0) {
        r = -errno;
        snprintf(err, errlen, "%s: %s", image_dir, strerror(-r));
        goto out;
    }
    const struct image_verify_opts opts = {.keys = keys, .n_keys = n_keys};
    for (int i = 0; i < n_names; i++) {
        const char *name = names[i]->d_name;
        const char *why = NULL;
        size_t len = 0;
        int rerr;
        char *img = readfile_at(dirfd, name, IMAGE_MAX_LEN, &len, &why, &rerr);
        if (img == NULL) {
            if (report)
                report(ctx, name, false, why);
            continue;
        }
        struct image_result res;
        enum image_status st = image_verify((const uint8_t *)img, len, &opts, &res);
        free(img);
        if (st != IMAGE_OK) {
            if (report)
                report(ctx, name, false, image_status_str(st));
            continue;
        }
        if (p->n == ATTEST_REFS_MAX) {
            snprintf(err, errlen, "%s: more than %d reference values with the images", image_dir,
                     ATTEST_REFS_MAX);
            r = -E2BIG;
            goto out;
        }
        struct attest_policy *np = realloc(p, sizeof(*p) + (p->n + 1) * sizeof(p->refs[0]));
        if (np == NULL) {
            r = -ENOMEM;
            snprintf(err, errlen, "%s: out of memory", image_dir);
            goto out;
        }
        p = np;
        struct attest_ref *ref = &p->refs[p->n++];
        memset(ref, 0, sizeof(*ref));
        memcpy(ref->meas, res.digest, CRYPTO_SHA256_LEN);
        ref->meas_len = CRYPTO_SHA256_LEN;
        memcpy(ref->signer, res.signer_keyhash, CRYPTO_SHA256_LEN);
        ref->signer_len = CRYPTO_SHA256_LEN;
        snprintf(ref->version, sizeof(ref->version), "%u.%u.%u+%u",
                 (unsigned)res.info.version.major, (unsigned)res.info.version.minor,
                 (unsigned)res.info.version.revision, (unsigned)res.info.version.build);
        if (report)
            report(ctx, name, true, ref->version);
    }
    r = 0;
out:
    for (int i = 0; i < n_names; i++)
        free(names[i]);
    free(names);
    if (dirfd >= 0)
        close(dirfd);
    if (r < 0) {
        free(p);
        return r;
    }
    *ret = p;
    return 0;
}

int attest_policy_add(struct attest_policy **dst, const struct attest_policy *src, char *err,
                      size_t errlen)
{
    if (src == NULL || src->n == 0)
        return 0;
    if ((*dst)->n + src->n > ATTEST_REFS_MAX) {
        snprintf(err, errlen, "more than %d reference values in all", ATTEST_REFS_MAX);
        return -E2BIG;
    }
    struct attest_policy *np =
        realloc(*dst, sizeof(**dst) + ((*dst)->n + src->n) * sizeof((*dst)->refs[0]));
    if (np == NULL) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    memcpy(&np->refs[np->n], src->refs, src->n * sizeof(src->refs[0]));
    np->n += src->n;
    *dst = np;
    return 0;
}

void attest_policy_free(struct attest_policy *p)
{
    free(p);
}

size_t attest_policy_count(const struct attest_policy *p)
{
    return p ? p->n : 0;
}

int attest_policy_set_profiles(struct attest_policy *p, unsigned mask)
{
    if (p == NULL || mask == 0 || (mask & ~ATTEST_ALL_PROFILES) != 0)
        return -EINVAL;
    p->profiles = mask;
    return 0;
}

static const struct attest_ref *find_ref(const struct attest_policy *p,
                                         const struct token_sw_component *c)
{
    for (size_t i = 0; i < p->n; i++) {
        const struct attest_ref *r = &p->refs[i];
        if (r->meas_len == c->meas_value_len && r->signer_len == c->signer_id_len &&
            memcmp(r->meas, c->meas_value, r->meas_len) == 0 &&
            memcmp(r->signer, c->signer_id, r->signer_len) == 0)
            return r;
    }
    return NULL;
}

/* The version a matching reference value reports for component c: the policy's, else an
 * extra one's; NULL when neither matches. "" is a match without a version. */
static const char *match_ref(const struct attest_policy *p, const struct attest_ref_value *extra,
                             size_t n_extra, const struct token_sw_component *c)
{
    const struct attest_ref *ref = find_ref(p, c);
    if (ref != NULL)
        return ref->version;
    if (c->meas_value_len != 32 || c->signer_id_len != 32)
        return NULL;
    for (size_t i = 0; i < n_extra; i++)
        if (memcmp(extra[i].measurement, c->meas_value, 32) == 0 &&
            memcmp(extra[i].signer_id, c->signer_id, 32) == 0)
            return extra[i].version;
    return NULL;
}

void attest_evaluate(const struct attest_policy *p, const uint8_t *msgbuf, size_t len,
                     const uint8_t pub[65], const uint8_t *nonce, size_t nonce_len,
                     struct attest_result *res)
{
    attest_evaluate_extra(p, NULL, 0, msgbuf, len, pub, nonce, nonce_len, res);
}

/* The enrolled IAK: a P-256 point (COSE_Sign1) or a symmetric key (COSE_Mac0). */
struct iak {
    const uint8_t *pub;
    const uint8_t *key;
    size_t key_len;
};

static void evaluate(const struct attest_policy *p, const struct attest_ref_value *extra,
                     size_t n_extra, const uint8_t *msgbuf, size_t len, const struct iak *iak,
                     const uint8_t *nonce, size_t nonce_len, struct attest_result *res);

void attest_evaluate_extra(const struct attest_policy *p, const struct attest_ref_value *extra,
                           size_t n_extra, const uint8_t *msgbuf, size_t len, const uint8_t pub[65],
                           const uint8_t *nonce, size_t nonce_len, struct attest_result *res)
{
    const struct iak iak = {.pub = pub};
    evaluate(p, extra, n_extra, msgbuf, len, &iak, nonce, nonce_len, res);
}

void attest_evaluate_mac0(const struct attest_policy *p, const struct attest_ref_value *extra,
                          size_t n_extra, const uint8_t *msg, size_t len, const uint8_t *key,
                          size_t key_len, const uint8_t *nonce, size_t nonce_len,
                          struct attest_result *res)
{
    const struct iak iak = {.key = key, .key_len = key_len};
    evaluate(p, extra, n_extra, msg, len, &iak, nonce, nonce_len, res);
}

static void evaluate(const struct attest_policy *p, const struct attest_ref_value *extra,
                     size_t n_extra, const uint8_t *msgbuf, size_t len, const struct iak *iak,
                     const uint8_t *nonce, size_t nonce_len, struct attest_result *res)
{
    struct msg m;
    struct token_claims *c = NULL;
    uint8_t iid[IDENT_INSTANCE_ID_LEN];

    memset(res, 0, sizeof(*res));
    enum msg_err me = msg_decode(msgbuf, len, &m);
    if (me != MSG_OK || m.type != MSG_ATTEST_EVIDENCE) {
        res->code = GATE_R_BAD_EVIDENCE;
        snprintf(res->reason, sizeof(res->reason), "not an attest-evidence message (%s)",
                 me != MSG_OK ? msg_err_str(me) : msg_type_str(m.type));
        return;
    }
    if (nonce == NULL) {
        res->code = GATE_R_NONCE_MISMATCH;
        snprintf(res->reason, sizeof(res->reason),
                 "no challenge outstanding (replayed or unsolicited evidence)");
        return;
    }
    c = calloc(1, sizeof(*c));
    if (c == NULL) {
        res->code = GATE_R_INTERNAL;
        snprintf(res->reason, sizeof(res->reason), "out of memory");
        return;
    }
    enum token_err te = iak->key != NULL
                            ? token_verify_mac0(m.u.evidence.token, m.u.evidence.token_len,
                                                iak->key, iak->key_len, nonce, nonce_len, c)
                            : token_verify(m.u.evidence.token, m.u.evidence.token_len, iak->pub,
                                           nonce, nonce_len, c);
    if (te != TOKEN_OK) {
        res->code = te == TOKEN_ERR_SIGNATURE || te == TOKEN_ERR_MAC ? GATE_R_BAD_SIGNATURE
                    : te == TOKEN_ERR_NONCE_MISMATCH                 ? GATE_R_NONCE_MISMATCH
                                                                     : GATE_R_BAD_TOKEN;
        snprintf(res->reason, sizeof(res->reason), "token refused: %s", token_err_str(te));
        goto out;
    }
    snprintf(res->profile, sizeof(res->profile), "%s", token_profile_str(c->profile_id));
    /* verified (token_verify never returns TOKEN_OK without a component) */
    if (c->sw_count > 0 && c->sw[0].meas_value_len == sizeof(res->measurement) &&
        c->sw[0].signer_id_len == sizeof(res->signer_id)) {
        res->has_measurement = true;
        memcpy(res->measurement, c->sw[0].meas_value, sizeof(res->measurement));
        memcpy(res->signer_id, c->sw[0].signer_id, sizeof(res->signer_id));
    }
    if ((unsigned)c->profile_id >= (unsigned)TOKEN_PROFILE__COUNT ||
        !(p->profiles & (1u << c->profile_id))) {
        res->code = GATE_R_PROFILE;
        snprintf(res->reason, sizeof(res->reason),
                 "token profile '%s' is not in attestation.profiles", res->profile);
        goto out;
    }
    int ir = -1;
    if (iak->key != NULL) {
        uint8_t kid[IDENT_SYM_KEY_ID_LEN];
        ir = ident_sym_key_id(iak->key, iak->key_len, kid);
        ident_sym_instance_id(kid, iid);
    } else {
        ir = ident_instance_id(iak->pub, iid);
    }
    if (ir != 0 || c->instance_id_len != sizeof(iid) ||
        CRYPTO_memcmp(c->instance_id, iid, sizeof(iid)) != 0) {
        res->code = GATE_R_INSTANCE_MISMATCH;
        snprintf(res->reason, sizeof(res->reason), "instance id does not match the enrolled key");
        goto out;
    }
    unsigned major = c->lifecycle >> 12;
    if (major > 6 || !(p->lifecycles & (1u << major))) {
        res->code = GATE_R_LIFECYCLE;
        snprintf(res->reason, sizeof(res->reason), "security lifecycle '%s' is not allowed",
                 token_lifecycle_str(c->lifecycle));
        goto out;
    }
    for (size_t i = 0; i < c->sw_count; i++) {
        const char *ver = match_ref(p, extra, n_extra, &c->sw[i]);
        if (ver == NULL) {
            res->code = GATE_R_UNKNOWN_MEASUREMENT;
            snprintf(res->reason, sizeof(res->reason),
                     "unknown measurement for software component %zu%s%s%s", i,
                     c->sw[i].meas_type[0] ? " (" : "", c->sw[i].meas_type,
                     c->sw[i].meas_type[0] ? ")" : "");
            goto out;
        }
        if (i == 0)
            snprintf(res->fw_version, sizeof(res->fw_version), "%.64s",
                     ver[0] ? ver : c->sw[i].version);
    }
    res->trusted = true;
    res->code = GATE_R_ATTESTED;
    snprintf(res->reason, sizeof(res->reason),
             "signature, nonce, lifecycle and %zu software component(s) match", c->sw_count);
out:
    OPENSSL_cleanse(c, sizeof(*c));
    free(c);
}

bool attest_evidence_nonce(const uint8_t *msgbuf, size_t len, uint8_t *nonce, size_t cap,
                           size_t *ret_len)
{
    struct msg m;
    bool ok = false;

    *ret_len = 0;
    if (msg_decode(msgbuf, len, &m) != MSG_OK || m.type != MSG_ATTEST_EVIDENCE)
        return false;
    struct token_claims *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return false;
    if (token_decode(m.u.evidence.token, m.u.evidence.token_len, c) == TOKEN_OK &&
        (c->present & TOKEN_HAS_NONCE) && c->nonce_len <= cap) {
        memcpy(nonce, c->nonce, c->nonce_len);
        *ret_len = c->nonce_len;
        ok = true;
    }
    OPENSSL_cleanse(c, sizeof(*c));
    free(c);
    return ok;
}

int attest_challenge_encode(const uint8_t nonce[ATTEST_NONCE_LEN], uint32_t ttl_s, uint8_t *out,
                            size_t cap, size_t *ret_len)
{
    struct msg m;
    memset(&m, 0, sizeof(m));
    m.type = MSG_ATTEST_CHALLENGE;
    memcpy(m.u.challenge.nonce, nonce, ATTEST_NONCE_LEN);
    m.u.challenge.nonce_len = ATTEST_NONCE_LEN;
    m.u.challenge.ttl_s = ttl_s;
    enum msg_err e = msg_encode(&m, out, cap, ret_len);
    if (e == MSG_ERR_NOSPACE)
        return -ENOBUFS;
    return e == MSG_OK ? 0 : -EINVAL;
}
