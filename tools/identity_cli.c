/* `identity` commands: the gateway identity in the TPM, for operators and provisioning. */
#include "identity_cli.h"

#include <fleetgw/secret_file.h>
#include "fleetgw/quote.h"
#include "fleetgw/tpm_identity.h"
#include "fleetgw/tpm_provider.h"
#include "tool_util.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

struct opts {
    const char *cmd;
    const char *tcti;
    uint32_t handle;
    const char *key_file;
    uint32_t ak_handle;
    const char *ak_key_file;
    const char *owner_auth;
    const char *out;
    const char *in;
    const char *subject;
    const char *nonce_hex;
    const char *pcrs;
    int force;
    int ak;
};

static void usage(FILE *f)
{
    fprintf(f,
            "usage: identity <command> [options]\n"
            "commands:\n"
            "  init    create the identity key once (a second run reports the same key)\n"
            "  show    print the identity key's public key (PEM); --ak: the attestation key's\n"
            "  ak      create the attestation key once and print its public key (PEM)\n"
            "  csr     --subject \"/CN=...\" --out FILE: certificate request signed in the TPM\n"
            "  quote   --nonce HEX --pcrs sha256:0,1,7 --out FILE: TPM2_Quote with the AK\n"
            "  sign    --in FILE --out SIG: ECDSA-SHA256 signature (DER) of FILE\n"
            "  seal    --in FILE --out BLOB [--pcrs SEL]: seal a secret (<= %d bytes)\n"
            "  unseal  --in BLOB --out FILE\n"
            "options:\n"
            "  --tcti CONF          TPM access (default %s; tabrmd:..., swtpm:...)\n"
            "  --handle H           persistent handle of the identity key (default 0x%08x)\n"
            "  --key-file F         identity key as a TSS2 PRIVATE KEY file instead\n"
            "  --ak-handle H        persistent handle of the attestation key (default 0x%08x)\n"
            "  --ak-key-file F      attestation key as a TSS2 PRIVATE KEY file instead\n"
            "  --owner-auth A       owner hierarchy authorization value\n"
            "  --force              replace a different object at the handle / in the file\n"
            "  --out FILE           output file (show/ak: default stdout)\n"
            "exit codes: 0 ok, 1 failure, 2 usage, 3 no TPM reachable, 4 TPM lockout,\n"
            "  5 handle holds a different key, 6 wrong authorization, 7 tpm2 provider missing,\n"
            "  8 no key yet, 9 PCR policy not satisfied\n",
            TPM_SEAL_MAX, TPM_DEFAULT_TCTI, TPM_DEFAULT_KEY_HANDLE, TPM_DEFAULT_AK_HANDLE);
}

static int exit_code(int r)
{
    switch (r) {
    case 0:
        return IDENTITY_EXIT_OK;
    case -ENODEV:
        return IDENTITY_EXIT_NO_TPM;
    case -ENOLCK:
        return IDENTITY_EXIT_LOCKOUT;
    case -EEXIST:
        return IDENTITY_EXIT_HANDLE_TAKEN;
    case -EACCES:
        return IDENTITY_EXIT_AUTH;
    case -ENOPKG:
        return IDENTITY_EXIT_NO_PROVIDER;
    case -ENOKEY:
        return IDENTITY_EXIT_NO_KEY;
    case -EKEYREJECTED:
        return IDENTITY_EXIT_POLICY;
    case -EINVAL:
        return IDENTITY_EXIT_USAGE;
    default:
        return IDENTITY_EXIT_FAIL;
    }
}

static int parse_handle(const char *s, uint32_t *out)
{
    char *end = NULL;
    errno = 0;
    unsigned long v = strtoul(s, &end, 0);
    if (errno != 0 || end == s || *end != '\0' || v < 0x81000000ul || v > 0x81fffffful)
        return -1;
    *out = (uint32_t)v;
    return 0;
}

static int parse_opts(int argc, char **argv, struct opts *o)
{
    enum {
        O_TCTI = 1,
        O_HANDLE,
        O_KEY_FILE,
        O_AK_HANDLE,
        O_AK_KEY_FILE,
        O_OWNER_AUTH,
        O_OUT,
        O_IN,
        O_SUBJECT,
        O_NONCE,
        O_PCRS,
        O_FORCE,
        O_AK,
        O_HELP
    };
    static const struct option longopts[] = {
        {"tcti", required_argument, NULL, O_TCTI},
        {"handle", required_argument, NULL, O_HANDLE},
        {"key-file", required_argument, NULL, O_KEY_FILE},
        {"ak-handle", required_argument, NULL, O_AK_HANDLE},
        {"ak-key-file", required_argument, NULL, O_AK_KEY_FILE},
        {"owner-auth", required_argument, NULL, O_OWNER_AUTH},
        {"out", required_argument, NULL, O_OUT},
        {"in", required_argument, NULL, O_IN},
        {"subject", required_argument, NULL, O_SUBJECT},
        {"nonce", required_argument, NULL, O_NONCE},
        {"pcrs", required_argument, NULL, O_PCRS},
        {"force", no_argument, NULL, O_FORCE},
        {"ak", no_argument, NULL, O_AK},
        {"help", no_argument, NULL, O_HELP},
        {NULL, 0, NULL, 0},
    };
    int c;
    optind = 0; /* GNU getopt: full re-initialisation, callable more than once */
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case O_TCTI:
            o->tcti = optarg;
            break;
        case O_HANDLE:
            if (parse_handle(optarg, &o->handle) < 0) {
                fprintf(stderr, "identity: --handle must be 0x81000000..0x81ffffff\n");
                return -1;
            }
            break;
        case O_KEY_FILE:
            o->key_file = optarg;
            break;
        case O_AK_HANDLE:
            if (parse_handle(optarg, &o->ak_handle) < 0) {
                fprintf(stderr, "identity: --ak-handle must be 0x81000000..0x81ffffff\n");
                return -1;
            }
            break;
        case O_AK_KEY_FILE:
            o->ak_key_file = optarg;
            break;
        case O_OWNER_AUTH:
            o->owner_auth = optarg;
            break;
        case O_OUT:
            o->out = optarg;
            break;
        case O_IN:
            o->in = optarg;
            break;
        case O_SUBJECT:
            o->subject = optarg;
            break;
        case O_NONCE:
            o->nonce_hex = optarg;
            break;
        case O_PCRS:
            o->pcrs = optarg;
            break;
        case O_FORCE:
            o->force = 1;
            break;
        case O_AK:
            o->ak = 1;
            break;
        case O_HELP:
            usage(stdout);
            return 1;
        default:
            return -1;
        }
    }
    if (optind != argc) {
        fprintf(stderr, "identity: unexpected argument '%s'\n", argv[optind]);
        return -1;
    }
    return 0;
}

/* Writes bytes to path (mode 0600 for secrets, else 0644), replacing it: through a fresh
 * temporary file and a rename (secret_file_write), never into an existing file (whose mode
 * would stay) or through a symlink. */
static int write_file(const char *path, const void *data, size_t len, int secret)
{
    char err[512];
    int r = secret_file_write(path, data, len, secret ? 0600 : 0644, true, err, sizeof(err));
    if (r < 0)
        fprintf(stderr, "identity: %s\n", err);
    return r;
}

static int read_file(const char *path, uint8_t *buf, size_t cap, size_t *ret_len)
{
    int r = tool_read_capped(path, buf, cap, ret_len);
    if (r == -EFBIG)
        fprintf(stderr, "identity: %s is larger than %zu bytes\n", path, cap);
    else if (r < 0)
        fprintf(stderr, "identity: cannot read %s: %s\n", path, strerror(-r));
    return r;
}

static int write_pubkey(const char *out, EVP_PKEY *pub)
{
    int r = -EIO;
    BIO *bio = out != NULL ? BIO_new_file(out, "w") : BIO_new_fp(stdout, BIO_NOCLOSE);
    if (bio == NULL) {
        fprintf(stderr, "identity: cannot create %s\n", out);
        return -EIO;
    }
    if (PEM_write_bio_PUBKEY(bio, pub) == 1 && BIO_flush(bio) == 1)
        r = 0;
    BIO_free(bio);
    return r;
}

static void key_ref(const struct opts *o, int ak, struct tpm_key_ref *ref)
{
    ref->handle = ak ? o->ak_handle : o->handle;
    ref->key_file = ak ? o->ak_key_file : o->key_file;
}

static const char *key_where(const struct tpm_key_ref *ref, char *buf, size_t len)
{
    if (ref->key_file != NULL)
        snprintf(buf, len, "key file %s", ref->key_file);
    else
        snprintf(buf, len, "persistent handle 0x%08x", ref->handle);
    return buf;
}

static int open_tpm(const struct opts *o, struct tpm **ret, char *err, size_t errlen)
{
    int r = tpm_open(o->tcti, ret, err, errlen);
    if (r < 0)
        return r;
    if (o->owner_auth != NULL) {
        r = tpm_set_owner_auth(*ret, o->owner_auth);
        if (r < 0) {
            snprintf(err, errlen, "owner authorization value too long");
            tpm_close(*ret);
            *ret = NULL;
        }
    }
    return r;
}

/* init / ak: create once, then report the same key. */
static int cmd_init(const struct opts *o, int ak)
{
    char err[512] = "", where[128];
    struct tpm *t = NULL;
    struct tpm_key_ref ref;
    EVP_PKEY *pub = NULL;
    int created = 0;
    key_ref(o, ak, &ref);
    int r = open_tpm(o, &t, err, sizeof(err));
    if (r < 0)
        goto out;
    r = tpm_key_init(t, ak ? TPM_KEY_AK : TPM_KEY_IDENTITY, &ref, o->force, &created, &pub, err,
                     sizeof(err));
    if (r < 0)
        goto out;
    fprintf(stderr, "identity: %s %s at %s\n", ak ? "attestation key" : "identity key",
            created ? "created" : "already present, unchanged",
            key_where(&ref, where, sizeof(where)));
    r = write_pubkey(o->out, pub);
    if (r < 0)
        snprintf(err, sizeof(err), "cannot write the public key");
out:
    if (r < 0)
        fprintf(stderr, "identity %s: %s\n", o->cmd, err);
    EVP_PKEY_free(pub);
    tpm_close(t);
    return r;
}

static int cmd_show(const struct opts *o)
{
    char err[512] = "";
    struct tpm *t = NULL;
    struct tpm_key_ref ref;
    EVP_PKEY *pub = NULL;
    key_ref(o, o->ak, &ref);
    int r = open_tpm(o, &t, err, sizeof(err));
    if (r < 0)
        goto out;
    r = tpm_key_public(t, o->ak ? TPM_KEY_AK : TPM_KEY_IDENTITY, &ref, &pub, err, sizeof(err));
    if (r < 0)
        goto out;
    r = write_pubkey(o->out, pub);
    if (r < 0)
        snprintf(err, sizeof(err), "cannot write the public key");
out:
    if (r < 0)
        fprintf(stderr, "identity show: %s\n", err);
    EVP_PKEY_free(pub);
    tpm_close(t);
    return r;
}

static int cmd_csr(const struct opts *o)
{
    char err[768] = "", uri[512];
    struct tpm *t = NULL;
    struct tpm_key_ref ref;
    EVP_PKEY *pub = NULL;
    X509_REQ *req = NULL;
    BIO *bio = NULL;
    int r;

    if (o->subject == NULL || o->out == NULL) {
        fprintf(stderr, "identity csr: --subject \"/CN=...\" and --out FILE are required\n");
        return -EINVAL;
    }
    key_ref(o, 0, &ref);
    /* Check the TPM and the key with ESAPI first: the provider's own errors cannot tell
     * "no TPM" from "no provider". The connection is closed before the provider opens its own
     * (a TPM without a resource manager serves one connection at a time). */
    r = open_tpm(o, &t, err, sizeof(err));
    if (r < 0)
        goto out;
    r = tpm_key_public(t, TPM_KEY_IDENTITY, &ref, &pub, err, sizeof(err));
    tpm_close(t);
    t = NULL;
    if (r < 0)
        goto out;
    if (ref.key_file != NULL)
        snprintf(uri, sizeof(uri), "%s", ref.key_file);
    else
        snprintf(uri, sizeof(uri), "handle:0x%08x", ref.handle);
    r = tpm_csr_make(o->tcti != NULL ? o->tcti : TPM_DEFAULT_TCTI, uri, o->subject, &req, err,
                     sizeof(err));
    if (r < 0)
        goto out;
    if (EVP_PKEY_eq(X509_REQ_get0_pubkey(req), pub) != 1) {
        snprintf(err, sizeof(err), "the provider's key differs from the key at %s", uri);
        r = -EIO;
        goto out;
    }
    bio = BIO_new_file(o->out, "w");
    if (bio == NULL || PEM_write_bio_X509_REQ(bio, req) != 1 || BIO_flush(bio) != 1) {
        snprintf(err, sizeof(err), "cannot write %s", o->out);
        r = -EIO;
        goto out;
    }
    fprintf(stderr, "identity: certificate request for %s written to %s\n", o->subject, o->out);
out:
    if (r < 0)
        fprintf(stderr, "identity csr: %s\n", err);
    ERR_clear_error();
    BIO_free(bio);
    X509_REQ_free(req);
    EVP_PKEY_free(pub);
    tpm_close(t);
    return r;
}

static int cmd_quote(const struct opts *o)
{
    char err[512] = "";
    struct tpm *t = NULL;
    struct tpm_key_ref ref;
    struct tpm_pcr_selection sel;
    uint8_t nonce[QUOTE_MAX_NONCE];
    size_t nonce_len = 0, blob_len = 0;
    uint8_t *blob = NULL;
    EVP_PKEY *pub = NULL;
    int created = 0, r;

    if (o->nonce_hex == NULL || o->pcrs == NULL || o->out == NULL) {
        fprintf(stderr, "identity quote: --nonce HEX, --pcrs SEL and --out FILE are required\n");
        return -EINVAL;
    }
    if (tool_hex_decode(o->nonce_hex, nonce, sizeof(nonce), &nonce_len) < 0 || nonce_len == 0) {
        fprintf(stderr, "identity quote: --nonce must be 1..%d bytes of hex\n", QUOTE_MAX_NONCE);
        return -EINVAL;
    }
    if (tpm_pcr_selection_parse(o->pcrs, &sel) < 0) {
        fprintf(stderr, "identity quote: --pcrs must look like sha256:0,1,7 (banks joined by +)\n");
        return -EINVAL;
    }
    blob = malloc(QUOTE_MAX_BLOB);
    if (blob == NULL)
        return -ENOMEM;
    key_ref(o, 1, &ref);
    r = open_tpm(o, &t, err, sizeof(err));
    if (r < 0)
        goto out;
    /* The AK is made on first use, like `identity ak`. */
    r = tpm_key_init(t, TPM_KEY_AK, &ref, o->force, &created, &pub, err, sizeof(err));
    if (r < 0)
        goto out;
    if (created)
        fprintf(stderr, "identity: attestation key created\n");
    r = tpm_quote(t, &ref, nonce, nonce_len, &sel, blob, QUOTE_MAX_BLOB, &blob_len, err,
                  sizeof(err));
    if (r < 0)
        goto out;
    r = write_file(o->out, blob, blob_len, 0);
    if (r < 0) {
        snprintf(err, sizeof(err), "cannot write %s", o->out);
        goto out;
    }
    fprintf(stderr, "identity: quote over %s written to %s (%zu bytes)\n", o->pcrs, o->out,
            blob_len);
out:
    if (r < 0)
        fprintf(stderr, "identity quote: %s\n", err);
    EVP_PKEY_free(pub);
    free(blob);
    tpm_close(t);
    return r;
}

static int cmd_sign(const struct opts *o)
{
    char err[512] = "";
    struct tpm *t = NULL;
    struct tpm_key_ref ref;
    uint8_t digest[32], sig[128];
    size_t sig_len = 0;
    int r = -EIO;

    if (o->in == NULL || o->out == NULL) {
        fprintf(stderr, "identity sign: --in FILE and --out SIG are required\n");
        return -EINVAL;
    }
    /* Hash the file in software (streaming), sign the digest in the TPM. */
    FILE *f = fopen(o->in, "rbe");
    if (f == NULL) {
        fprintf(stderr, "identity sign: cannot open %s: %s\n", o->in, strerror(errno));
        return -errno;
    }
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned dlen = 0;
    if (md != NULL && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1) {
        uint8_t buf[4096];
        size_t n;
        r = 0;
        while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
            if (EVP_DigestUpdate(md, buf, n) != 1)
                r = -EIO;
        if (ferror(f) || EVP_DigestFinal_ex(md, digest, &dlen) != 1 || dlen != 32)
            r = -EIO;
    }
    EVP_MD_CTX_free(md);
    fclose(f);
    if (r < 0) {
        snprintf(err, sizeof(err), "cannot hash %s", o->in);
        goto out;
    }
    key_ref(o, 0, &ref);
    r = open_tpm(o, &t, err, sizeof(err));
    if (r < 0)
        goto out;
    r = tpm_key_sign(t, &ref, digest, sig, sizeof(sig), &sig_len, err, sizeof(err));
    if (r < 0)
        goto out;
    r = write_file(o->out, sig, sig_len, 0);
    if (r < 0)
        snprintf(err, sizeof(err), "cannot write %s", o->out);
out:
    if (r < 0)
        fprintf(stderr, "identity sign: %s\n", err);
    tpm_close(t);
    return r;
}

static int cmd_seal(const struct opts *o, int seal)
{
    char err[512] = "";
    struct tpm *t = NULL;
    struct tpm_pcr_selection sel;
    uint8_t in[TPM_SEAL_BLOB_MAX], out[TPM_SEAL_BLOB_MAX];
    size_t in_len = 0, out_len = 0;
    int r;

    if (o->in == NULL || o->out == NULL) {
        fprintf(stderr, "identity %s: --in FILE and --out FILE are required\n", o->cmd);
        return -EINVAL;
    }
    if (o->pcrs != NULL && (!seal || tpm_pcr_selection_parse(o->pcrs, &sel) < 0)) {
        fprintf(stderr, "identity %s: --pcrs is for seal and looks like sha256:0,7\n", o->cmd);
        return -EINVAL;
    }
    if (seal) { /* the secret to seal: refused when group or others may read it */
        char serr[512];
        r = secret_file_read(o->in, "secret to seal", in, TPM_SEAL_MAX, &in_len, serr,
                             sizeof(serr));
        if (r < 0)
            fprintf(stderr, "identity seal: %s\n", serr);
    } else {
        r = read_file(o->in, in, sizeof(in), &in_len);
    }
    if (r < 0)
        return r;
    r = open_tpm(o, &t, err, sizeof(err));
    if (r < 0)
        goto out;
    if (seal)
        r = tpm_seal(t, in, in_len, o->pcrs != NULL ? &sel : NULL, out, sizeof(out), &out_len, err,
                     sizeof(err));
    else
        r = tpm_unseal(t, in, in_len, out, sizeof(out), &out_len, err, sizeof(err));
    if (r < 0)
        goto out;
    r = write_file(o->out, out, out_len, 1);
    if (r < 0)
        snprintf(err, sizeof(err), "cannot write %s", o->out);
out:
    if (r < 0)
        fprintf(stderr, "identity %s: %s\n", o->cmd, err);
    OPENSSL_cleanse(in, sizeof(in));
    OPENSSL_cleanse(out, sizeof(out));
    tpm_close(t);
    return r;
}

int identity_cli_main(int argc, char **argv)
{
    struct opts o = {.handle = TPM_DEFAULT_KEY_HANDLE, .ak_handle = TPM_DEFAULT_AK_HANDLE};
    int r;

    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? IDENTITY_EXIT_USAGE : IDENTITY_EXIT_OK;
    }
    /* tpm2-tss logs errors on stderr by itself; the messages here say it better. */
    setenv("TSS2_LOG", "all+NONE", 0);
    o.cmd = argv[1];
    r = parse_opts(argc - 1, argv + 1, &o);
    if (r != 0) {
        if (r < 0)
            usage(stderr);
        return r < 0 ? IDENTITY_EXIT_USAGE : IDENTITY_EXIT_OK;
    }
    if (o.key_file != NULL && o.handle != TPM_DEFAULT_KEY_HANDLE) {
        fprintf(stderr, "identity: --handle and --key-file exclude each other\n");
        return IDENTITY_EXIT_USAGE;
    }
    if (strcmp(o.cmd, "init") == 0)
        r = cmd_init(&o, 0);
    else if (strcmp(o.cmd, "ak") == 0)
        r = cmd_init(&o, 1);
    else if (strcmp(o.cmd, "show") == 0)
        r = cmd_show(&o);
    else if (strcmp(o.cmd, "csr") == 0)
        r = cmd_csr(&o);
    else if (strcmp(o.cmd, "quote") == 0)
        r = cmd_quote(&o);
    else if (strcmp(o.cmd, "sign") == 0)
        r = cmd_sign(&o);
    else if (strcmp(o.cmd, "seal") == 0)
        r = cmd_seal(&o, 1);
    else if (strcmp(o.cmd, "unseal") == 0)
        r = cmd_seal(&o, 0);
    else {
        fprintf(stderr, "identity: unknown command '%s'\n", o.cmd);
        usage(stderr);
        return IDENTITY_EXIT_USAGE;
    }
    return exit_code(r);
}
