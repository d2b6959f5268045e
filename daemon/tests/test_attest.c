/* Attestation verifier: a token made with proto's token_encode() and a P-256 key is trusted
 * only with the enrolled key, the outstanding nonce, a matching instance id, an allowed
 * lifecycle and known measurements; each refusal says why. Policy file parsing. */
#include "attest.h"
#include "check.h"
#include "check_crypto.h"

#include <errno.h>
#include <fleetgw/ident.h>
#include <fleetgw/msg.h>
#include <fleetgw/token.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint8_t meas[32], signer[32], nonce[32];

static void base_claims(struct token_claims *c, const uint8_t pub[65])
{
    unsigned int l;
    memset(c, 0, sizeof(*c));
    c->present = TOKEN_HAS_NONCE | TOKEN_HAS_INSTANCE_ID | TOKEN_HAS_PROFILE | TOKEN_HAS_CLIENT_ID |
                 TOKEN_HAS_LIFECYCLE | TOKEN_HAS_IMPL_ID | TOKEN_HAS_SW_COMPS;
    memcpy(c->nonce, nonce, 32);
    c->nonce_len = 32;
    c->instance_id[0] = 0x01;
    EVP_Digest(pub, 65, c->instance_id + 1, &l, EVP_sha256(), NULL);
    c->instance_id_len = 33;
    snprintf(c->profile, sizeof(c->profile), "%s", TOKEN_PROFILE_2023);
    c->client_id = 1;
    c->lifecycle = 0x3000;
    memset(c->impl_id, 0x55, 32);
    c->impl_id_len = 32;
    c->sw_count = 1;
    c->sw[0].present = TOKEN_SWC_MEAS_VALUE | TOKEN_SWC_SIGNER_ID | TOKEN_SWC_MEAS_TYPE;
    memcpy(c->sw[0].meas_value, meas, 32);
    c->sw[0].meas_value_len = 32;
    memcpy(c->sw[0].signer_id, signer, 32);
    c->sw[0].signer_id_len = 32;
    snprintf(c->sw[0].meas_type, sizeof(c->sw[0].meas_type), "NSPE");
}

/* Encodes claims signed by pk into an attest-evidence message. */
static size_t evidence(const struct token_claims *c, EVP_PKEY *pk, uint8_t *out, size_t cap)
{
    uint8_t tok[TOKEN_MAX_LEN];
    size_t tl = 0, ml = 0;
    struct msg m;
    if (token_encode(c, check_p256_sign, pk, tok, sizeof(tok), &tl) != TOKEN_OK)
        return 0;
    memset(&m, 0, sizeof(m));
    m.type = MSG_ATTEST_EVIDENCE;
    m.u.evidence.token = tok;
    m.u.evidence.token_len = tl;
    if (msg_encode(&m, out, cap, &ml) != MSG_OK)
        return 0;
    return ml;
}

static void hex(const uint8_t *b, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        snprintf(out + 2 * i, 3, "%02x", b[i]);
}

int main(void)
{
    EVP_PKEY *key = EVP_EC_gen("P-256"), *other = EVP_EC_gen("P-256");
    uint8_t pub[65], opub[65], buf[3000], n2[32];
    struct token_claims c;
    struct attest_result res;
    struct attest_policy *pol = NULL;
    char policy[1024], mh[65], sh[65], err[200];
    size_t len;

    CHECK(key != NULL && other != NULL);
    (void)check_p256_pub(key, pub);
    (void)check_p256_pub(other, opub);
    CHECK(pub[0] == 0x04);
    for (int i = 0; i < 32; i++) {
        meas[i] = (uint8_t)(0xa0 + i);
        signer[i] = (uint8_t)(0x10 + i);
        nonce[i] = (uint8_t)i;
        n2[i] = (uint8_t)(i + 1);
    }
    hex(meas, 32, mh);
    hex(signer, 32, sh);
    snprintf(policy, sizeof(policy),
             "{\"lifecycles\":[\"secured\"],\"reference_values\":[{\"measurement\":\"%s\","
             "\"signer_id\":\"%s\",\"version\":\"1.2.0\",\"description\":\"app\"}]}",
             mh, sh);
    CHECK_EQ_INT(attest_policy_parse(policy, strlen(policy), &pol, err, sizeof(err)), 0);
    CHECK_EQ_INT(attest_policy_count(pol), 1);

    /* good */
    base_claims(&c, pub);
    len = evidence(&c, key, buf, sizeof(buf));
    CHECK(len > 0);
    attest_evaluate(pol, buf, len, pub, nonce, 32, &res);
    CHECK(res.trusted);
    CHECK_EQ_INT(res.code, GATE_R_ATTESTED);
    CHECK(strcmp(res.fw_version, "1.2.0") == 0);
    CHECK(res.has_measurement);
    CHECK(memcmp(res.measurement, meas, 32) == 0 && memcmp(res.signer_id, signer, 32) == 0);
    /* no extra reference value: the same verdict */
    attest_evaluate_extra(pol, NULL, 0, buf, len, pub, nonce, 32, &res);
    CHECK(res.trusted && strcmp(res.fw_version, "1.2.0") == 0 && res.has_measurement);
    /* the nonce it claims to answer, read without verifying (gate_ops.peek_nonce) */
    {
        uint8_t claimed[64];
        size_t clen = 0;
        CHECK(attest_evidence_nonce(buf, len, claimed, sizeof(claimed), &clen));
        CHECK(clen == 32 && memcmp(claimed, nonce, 32) == 0);
        CHECK(!attest_evidence_nonce(buf, len, claimed, 16, &clen) && clen == 0);
        CHECK(!attest_evidence_nonce(buf, len / 2, claimed, sizeof(claimed), &clen));
        CHECK(!attest_evidence_nonce((const uint8_t *)"\xff", 1, claimed, sizeof(claimed), &clen));
    }

    CHECK(strcmp(res.profile, TOKEN_PROFILE_2023) == 0);

    /* the TF-M field profiles verify too, and the result names the profile */
    {
        static const enum token_profile legacy[] = {TOKEN_PROFILE_PSA_2_0_0,
                                                    TOKEN_PROFILE_PSA_IOT_1};
        for (size_t k = 0; k < 2; k++) {
            base_claims(&c, pub);
            c.profile_id = legacy[k];
            snprintf(c.profile, sizeof(c.profile), "%s", token_profile_str(legacy[k]));
            if (legacy[k] == TOKEN_PROFILE_PSA_IOT_1) {
                c.present |= TOKEN_HAS_BOOT_SEED;
                memset(c.boot_seed, 0x3c, 32);
                c.boot_seed_len = 32;
            }
            size_t l2 = evidence(&c, key, buf, sizeof(buf));
            CHECK(l2 > 0);
            attest_evaluate(pol, buf, l2, pub, nonce, 32, &res);
            CHECK(res.trusted);
            CHECK(strcmp(res.profile, token_profile_str(legacy[k])) == 0);
            CHECK(res.has_measurement && memcmp(res.measurement, meas, 32) == 0);
            /* a policy that allows only the other two: quarantined with its own reason */
            unsigned others = ((1u << TOKEN_PROFILE__COUNT) - 1u) & ~(1u << legacy[k]);
            CHECK_EQ_INT(attest_policy_set_profiles(pol, others), 0);
            attest_evaluate(pol, buf, l2, pub, nonce, 32, &res);
            CHECK(!res.trusted);
            CHECK_EQ_INT(res.code, GATE_R_PROFILE);
            CHECK(strstr(res.reason, token_profile_str(legacy[k])) != NULL);
            CHECK(strstr(res.reason, "attestation.profiles") != NULL);
            CHECK(strcmp(res.profile, token_profile_str(legacy[k])) == 0);
            /* a forged token of a refused profile is still a bad signature, not a profile */
            l2 = evidence(&c, other, buf, sizeof(buf));
            attest_evaluate(pol, buf, l2, pub, nonce, 32, &res);
            CHECK_EQ_INT(res.code, GATE_R_BAD_SIGNATURE);
            CHECK(res.profile[0] == '\0');
            CHECK_EQ_INT(attest_policy_set_profiles(pol, (1u << TOKEN_PROFILE__COUNT) - 1u), 0);
        }
        CHECK_EQ_INT(attest_policy_set_profiles(pol, 0), -EINVAL);
        CHECK_EQ_INT(attest_policy_set_profiles(pol, 1u << TOKEN_PROFILE__COUNT), -EINVAL);
        CHECK_EQ_INT(attest_policy_set_profiles(NULL, 1), -EINVAL);
        /* only RFC 9783 allowed: the RFC 9783 token is still trusted */
        CHECK_EQ_INT(attest_policy_set_profiles(pol, 1u << TOKEN_PROFILE_RFC9783), 0);
        base_claims(&c, pub);
        len = evidence(&c, key, buf, sizeof(buf));
        attest_evaluate(pol, buf, len, pub, nonce, 32, &res);
        CHECK(res.trusted);
        CHECK_EQ_INT(attest_policy_set_profiles(pol, (1u << TOKEN_PROFILE__COUNT) - 1u), 0);
    }

    /* a node with a symmetric IAK: COSE_Mac0 under its key, instance id H(H(key)) */
    {
        uint8_t hkey[32], okey[32], kid[IDENT_SYM_KEY_ID_LEN], tok[TOKEN_MAX_LEN];
        size_t tl = 0, ml = 0;
        struct msg m;
        for (int i = 0; i < 32; i++) {
            hkey[i] = (uint8_t)(0x40 + i);
            okey[i] = (uint8_t)(0x41 + i);
        }
        CHECK_EQ_INT(ident_sym_key_id(hkey, sizeof(hkey), kid), 0);
        base_claims(&c, pub);
        ident_sym_instance_id(kid, c.instance_id);
        CHECK(token_encode_mac0(&c, hkey, sizeof(hkey), tok, sizeof(tok), &tl) == TOKEN_OK);
        memset(&m, 0, sizeof(m));
        m.type = MSG_ATTEST_EVIDENCE;
        m.u.evidence.token = tok;
        m.u.evidence.token_len = tl;
        CHECK(msg_encode(&m, buf, sizeof(buf), &ml) == MSG_OK);
        attest_evaluate_mac0(pol, NULL, 0, buf, ml, hkey, sizeof(hkey), nonce, 32, &res);
        CHECK(res.trusted);
        CHECK(strcmp(res.fw_version, "1.2.0") == 0 && strcmp(res.profile, TOKEN_PROFILE_2023) == 0);
        CHECK(res.has_measurement && memcmp(res.measurement, meas, 32) == 0);
        /* another key: bad MAC, nothing read */
        attest_evaluate_mac0(pol, NULL, 0, buf, ml, okey, sizeof(okey), nonce, 32, &res);
        CHECK(!res.trusted && strstr(res.reason, "MAC") != NULL);
        CHECK_EQ_INT(res.code, GATE_R_BAD_SIGNATURE);
        CHECK(!res.has_measurement);
        /* the right key, another nonce */
        attest_evaluate_mac0(pol, NULL, 0, buf, ml, hkey, sizeof(hkey), n2, 32, &res);
        CHECK_EQ_INT(res.code, GATE_R_NONCE_MISMATCH);
        /* a Mac0 token given to the Sign1 verifier, and a Sign1 token to the Mac0 one */
        attest_evaluate(pol, buf, ml, pub, nonce, 32, &res);
        CHECK_EQ_INT(res.code, GATE_R_BAD_TOKEN);
        len = evidence(&c, key, buf, sizeof(buf));
        attest_evaluate_mac0(pol, NULL, 0, buf, len, hkey, sizeof(hkey), nonce, 32, &res);
        CHECK_EQ_INT(res.code, GATE_R_BAD_TOKEN);
        /* MAC'd with the key but naming the asymmetric instance id: instance mismatch */
        base_claims(&c, pub);
        CHECK(token_encode_mac0(&c, hkey, sizeof(hkey), tok, sizeof(tok), &tl) == TOKEN_OK);
        m.u.evidence.token_len = tl;
        CHECK(msg_encode(&m, buf, sizeof(buf), &ml) == MSG_OK);
        attest_evaluate_mac0(pol, NULL, 0, buf, ml, hkey, sizeof(hkey), nonce, 32, &res);
        CHECK_EQ_INT(res.code, GATE_R_INSTANCE_MISMATCH);
        /* a key of a size HMAC 256/256 does not take */
        attest_evaluate_mac0(pol, NULL, 0, buf, ml, hkey, 16, nonce, 32, &res);
        CHECK(!res.trusted);
        base_claims(&c, pub); /* the good Sign1 evidence again, for what follows */
        len = evidence(&c, key, buf, sizeof(buf));
    }

    /* no challenge outstanding (replay / unsolicited) */
    attest_evaluate(pol, buf, len, pub, NULL, 0, &res);
    CHECK(!res.trusted && strstr(res.reason, "no challenge outstanding") != NULL);
    CHECK(!res.has_measurement);
    /* another nonce outstanding: the old evidence is refused */
    attest_evaluate(pol, buf, len, pub, n2, 32, &res);
    CHECK(!res.trusted && strstr(res.reason, "nonce") != NULL);
    CHECK_EQ_INT(res.code, GATE_R_NONCE_MISMATCH);
    CHECK(!res.has_measurement);
    /* forged: signed by another key than the enrolled one */
    len = evidence(&c, other, buf, sizeof(buf));
    attest_evaluate(pol, buf, len, pub, nonce, 32, &res);
    CHECK(!res.trusted && strstr(res.reason, "signature") != NULL);
    CHECK_EQ_INT(res.code, GATE_R_BAD_SIGNATURE);
    CHECK(!res.has_measurement);
    {
        uint8_t claimed[64];
        size_t clen = 0; /* a forged token still names its nonce: the gate judges it */
        CHECK(attest_evidence_nonce(buf, len, claimed, sizeof(claimed), &clen) && clen == 32);
    }
    /* valid signature but the instance id belongs to another key */
    base_claims(&c, opub);
    len = evidence(&c, key, buf, sizeof(buf));
    attest_evaluate(pol, buf, len, pub, nonce, 32, &res);
    CHECK(!res.trusted && strstr(res.reason, "instance id") != NULL);
    CHECK(res.has_measurement); /* signature and nonce verified */
    CHECK_EQ_INT(res.code, GATE_R_INSTANCE_MISMATCH);
    /* lifecycle not allowed */
    base_claims(&c, pub);
    c.lifecycle = 0x5000;
    len = evidence(&c, key, buf, sizeof(buf));
    attest_evaluate(pol, buf, len, pub, nonce, 32, &res);
    CHECK(!res.trusted && strstr(res.reason, "recoverable-psa-rot-debug") != NULL);
    CHECK_EQ_INT(res.code, GATE_R_LIFECYCLE);
    CHECK(res.has_measurement && memcmp(res.measurement, meas, 32) == 0);
    /* unknown measurement */
    base_claims(&c, pub);
    c.sw[0].meas_value[0] ^= 1;
    len = evidence(&c, key, buf, sizeof(buf));
    attest_evaluate(pol, buf, len, pub, nonce, 32, &res);
    CHECK(!res.trusted && strstr(res.reason, "unknown measurement for software component 0 "
                                             "(NSPE)") != NULL);
    CHECK_EQ_INT(res.code, GATE_R_UNKNOWN_MEASUREMENT);
    /* the token's measurement, not the reference value's, even though untrusted */
    CHECK(res.has_measurement && res.measurement[0] == (meas[0] ^ 1) &&
          memcmp(res.measurement + 1, meas + 1, 31) == 0 && memcmp(res.signer_id, signer, 32) == 0);
    CHECK(res.fw_version[0] == '\0');
    /* ... trusted with it as an extra reference value (OTA test mode), its version reported */
    {
        struct attest_ref_value extra[2];
        memset(extra, 0, sizeof(extra));
        memcpy(extra[0].measurement, meas, 32); /* another image: does not match */
        memcpy(extra[0].signer_id, c.sw[0].signer_id, 32);
        memcpy(extra[1].measurement, c.sw[0].meas_value, 32);
        memcpy(extra[1].signer_id, signer, 32);
        snprintf(extra[1].version, sizeof(extra[1].version), "1.3.0-test");
        attest_evaluate_extra(pol, extra, 1, buf, len, pub, nonce, 32, &res);
        CHECK(!res.trusted);
        CHECK_EQ_INT(res.code, GATE_R_UNKNOWN_MEASUREMENT);
        attest_evaluate_extra(pol, extra, 2, buf, len, pub, nonce, 32, &res);
        CHECK(res.trusted);
        CHECK_EQ_INT(res.code, GATE_R_ATTESTED);
        CHECK(strcmp(res.fw_version, "1.3.0-test") == 0);
        CHECK(res.has_measurement && res.measurement[0] == (meas[0] ^ 1));
        /* an extra value without a version: the token's component version is reported */
        extra[1].version[0] = '\0';
        attest_evaluate_extra(pol, extra, 2, buf, len, pub, nonce, 32, &res);
        CHECK(res.trusted && res.fw_version[0] == '\0');
        /* the extra value does not lift the other checks: another lifecycle, another nonce */
        c.lifecycle = 0x5000;
        len = evidence(&c, key, buf, sizeof(buf));
        attest_evaluate_extra(pol, extra, 2, buf, len, pub, nonce, 32, &res);
        CHECK(!res.trusted);
        CHECK_EQ_INT(res.code, GATE_R_LIFECYCLE);
        attest_evaluate_extra(pol, extra, 2, buf, len, pub, n2, 32, &res);
        CHECK_EQ_INT(res.code, GATE_R_NONCE_MISMATCH);
        /* the policy's value wins when both match: its version */
        base_claims(&c, pub);
        len = evidence(&c, key, buf, sizeof(buf));
        memcpy(extra[1].measurement, meas, 32);
        snprintf(extra[1].version, sizeof(extra[1].version), "9.9.9");
        attest_evaluate_extra(pol, extra, 2, buf, len, pub, nonce, 32, &res);
        CHECK(res.trusted && strcmp(res.fw_version, "1.2.0") == 0);
    }
    /* known measurement under another signer */
    base_claims(&c, pub);
    c.sw[0].signer_id[5] ^= 1;
    len = evidence(&c, key, buf, sizeof(buf));
    attest_evaluate(pol, buf, len, pub, nonce, 32, &res);
    CHECK(!res.trusted && strstr(res.reason, "unknown measurement") != NULL);
    CHECK(res.has_measurement && memcmp(res.signer_id, c.sw[0].signer_id, 32) == 0);
    /* a SHA-384 measurement is no 32-byte measurement to report */
    base_claims(&c, pub);
    memset(c.sw[0].meas_value, 0x77, 48);
    c.sw[0].meas_value_len = 48;
    len = evidence(&c, key, buf, sizeof(buf));
    attest_evaluate(pol, buf, len, pub, nonce, 32, &res);
    CHECK_EQ_INT(res.code, GATE_R_UNKNOWN_MEASUREMENT);
    CHECK(!res.has_measurement);
    /* not a message at all / another message type */
    attest_evaluate(pol, (const uint8_t *)"\xff", 1, pub, nonce, 32, &res);
    CHECK(!res.trusted && strstr(res.reason, "not an attest-evidence") != NULL);
    CHECK(!res.has_measurement);
    CHECK_EQ_INT(res.code, GATE_R_BAD_EVIDENCE);
    CHECK_EQ_INT(attest_challenge_encode(nonce, 60, buf, sizeof(buf), &len), 0);
    attest_evaluate(pol, buf, len, pub, nonce, 32, &res);
    CHECK(!res.trusted && strstr(res.reason, "not an attest-evidence") != NULL);
    CHECK(buf[0] == 0x83 && buf[1] == 0x01 && buf[2] == 0x58 && buf[3] == 0x20);

    /* policy refusals */
    struct attest_policy *bad = NULL;
    CHECK(attest_policy_parse("{}", 2, &bad, err, sizeof(err)) < 0);
    CHECK(strstr(err, "reference_values") != NULL);
    const char *p2 = "{\"reference_values\":[{\"measurement\":\"abcd\",\"signer_id\":\"ab\"}]}";
    CHECK(attest_policy_parse(p2, strlen(p2), &bad, err, sizeof(err)) < 0);
    CHECK(strstr(err, "measurement") != NULL);
    const char *p3 = "{\"lifecycles\":[\"nope\"],\"reference_values\":[]}";
    CHECK(attest_policy_parse(p3, strlen(p3), &bad, err, sizeof(err)) < 0);
    const char *p4 = "{\"reference_values\":[],\"extra\":1}";
    CHECK(attest_policy_parse(p4, strlen(p4), &bad, err, sizeof(err)) < 0);
    CHECK(bad == NULL);

    attest_policy_free(pol);
    EVP_PKEY_free(key);
    EVP_PKEY_free(other);
    return check_finish();
}
