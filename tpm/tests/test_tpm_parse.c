/* Command-line parsers of the tpm module: PCR selections and certificate subjects. */
#include "check.h"
#include "fleetgw/quote.h"
#include "fleetgw/tpm_identity.h"
#include "fleetgw/tpm_provider.h"

#include <string.h>

#include <openssl/x509.h>

static int subject_is(const char *subject, const char *oneline)
{
    X509_NAME *name = NULL;
    char buf[256];
    if (tpm_subject_parse(subject, &name) < 0)
        return 0;
    X509_NAME_oneline(name, buf, sizeof(buf));
    X509_NAME_free(name);
    return strcmp(buf, oneline) == 0;
}

int main(void)
{
    struct tpm_pcr_selection s;

    CHECK_EQ_INT(tpm_pcr_selection_parse("sha256:0,1,7", &s), 0);
    CHECK_EQ_INT(s.nbanks, 1);
    CHECK_EQ_INT(s.banks[0].alg, QUOTE_ALG_SHA256);
    CHECK_EQ_INT(s.banks[0].mask, 0x83);
    CHECK_EQ_INT(tpm_pcr_selection_parse("sha1:0+sha256:23", &s), 0);
    CHECK_EQ_INT(s.nbanks, 2);
    CHECK_EQ_INT(s.banks[0].alg, QUOTE_ALG_SHA1);
    CHECK_EQ_INT(s.banks[1].mask, 1u << 23);
    CHECK(tpm_pcr_selection_parse("sha256:24", &s) < 0);
    CHECK(tpm_pcr_selection_parse("sha256:", &s) < 0);
    CHECK_EQ_INT(tpm_pcr_selection_parse("sha256:1,,2", &s), 0); /* empty items ignored */
    CHECK_EQ_INT(s.banks[0].mask, 0x6);
    CHECK(tpm_pcr_selection_parse("md5:1", &s) < 0);
    CHECK(tpm_pcr_selection_parse("sha256:-1", &s) < 0);
    CHECK(tpm_pcr_selection_parse("sha256:1x", &s) < 0);
    CHECK(tpm_pcr_selection_parse("sha256:1+sha256:2", &s) < 0);
    CHECK(tpm_pcr_selection_parse("0,1,7", &s) < 0);
    CHECK(tpm_pcr_selection_parse("", &s) < 0);
    CHECK(tpm_pcr_selection_parse(NULL, &s) < 0);

    CHECK(subject_is("/CN=gw-1", "/CN=gw-1"));
    CHECK(subject_is("/CN=gw-1/O=Example Ltd", "/CN=gw-1/O=Example Ltd"));
    {
        X509_NAME *esc = NULL;
        CHECK_EQ_INT(tpm_subject_parse("/O=a\\/b/CN=x", &esc), 0);
        CHECK_EQ_INT(X509_NAME_entry_count(esc), 2);
        if (esc != NULL) {
            ASN1_STRING *v = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(esc, 0));
            CHECK(ASN1_STRING_length(v) == 3 && memcmp(ASN1_STRING_get0_data(v), "a/b", 3) == 0);
        }
        X509_NAME_free(esc);
    }
    X509_NAME *n = NULL;
    CHECK(tpm_subject_parse("CN=gw", &n) < 0);
    CHECK(tpm_subject_parse("/CN", &n) < 0);
    CHECK(tpm_subject_parse("/=x", &n) < 0);
    CHECK(tpm_subject_parse("/CN=", &n) < 0);
    CHECK(tpm_subject_parse("/NOSUCHATTR=x", &n) < 0);
    CHECK(n == NULL);
    return check_finish();
}
