/* fleetgw-unbatch: the cloud side of uplink batching (docs/batch-format.md). Splits batch
 * payloads (what fleetgwd publishes on <prefix>/batch) back into one JSON line per message:
 *
 *   {"gateway":"..","batch":<first seq>,"node":"..","topic":"..","seq":N,"ts":N,
 *    "payload":"<base64>"}
 *
 * Input: each FILE (stdin when none, or "-") is one batch payload, or with --length-prefixed a
 * stream of batches each preceded by its length (4 bytes, big-endian). A batch is decoded
 * completely before any of its lines is printed, so a bad batch prints nothing; its error
 * names the file, the batch (1-based), the byte offset and what is wrong. The other batches
 * are still split. Exit codes: 0 every batch was good, 1 at least one bad batch (or a broken
 * length-prefixed stream), 2 usage or I/O error. */
#include "fleetgw_version.h"
#include "tool_util.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fleetgw/batch.h"
#include "fleetgw/cbor.h"

#define PROG "fleetgw-unbatch"
/* MQTT's largest payload (a remaining length of 268435455 minus the headers): no batch a
 * broker delivered is larger. */
#define UNBATCH_MAX_BYTES 268435455u
/* A cloud topic prefix (MQTT topics are at most 65535 bytes; fleetgw's prefixes are short). */
#define UNBATCH_PREFIX_MAX 1024u

enum { EXIT_BAD = 1, EXIT_USAGE = 2 };

struct unbatch {
    const char *prefix;
    size_t prefix_len;
    char topic[UNBATCH_PREFIX_MAX + 1 + BATCH_TAIL_MAX];
    struct batch_entry *entries; /* BATCH_ENTRIES_MAX of them */
    uint8_t *buf;
    size_t cap;
    unsigned long bad;
};

static void usage(FILE *f)
{
    fprintf(
        f,
        "usage: " PROG " [--prefix P] [--length-prefixed] [FILE...]\n"
        "       " PROG " --help | --version\n"
        "\n"
        "Splits fleetgw uplink batches (docs/batch-format.md) into one JSON line per\n"
        "message: {\"gateway\",\"batch\",\"node\",\"topic\",\"seq\",\"ts\",\"payload\"(base64)}.\n"
        "Each FILE (stdin when none, or \"-\") is one batch payload.\n"
        "\n"
        "  --prefix P         topic is P/<tail> (default: the tail alone)\n"
        "  --length-prefixed  the input is batches each preceded by a 4-byte big-endian\n"
        "                     length\n"
        "\n"
        "A bad batch prints nothing and an error naming the file, the batch (1-based),\n"
        "the byte offset and the problem; the other batches are still split.\n"
        "exit codes: 0 all good, 1 a bad batch or stream, 2 usage or I/O error\n");
}

/* Reads up to n bytes; returns how many (less only at end of file) or -1 on a read error. */
static long read_full(FILE *f, uint8_t *p, size_t n)
{
    size_t got = 0;
    while (got < n) {
        size_t r = fread(p + got, 1, n - got, f);
        if (r == 0)
            break;
        got += r;
    }
    return ferror(f) ? -1 : (long)got;
}

/* Makes room for n bytes in u->buf. */
static int reserve(struct unbatch *u, size_t n)
{
    if (n <= u->cap)
        return 0;
    size_t cap = u->cap == 0 ? 65536 : u->cap;
    while (cap < n)
        cap = cap > UNBATCH_MAX_BYTES / 2 ? UNBATCH_MAX_BYTES : cap * 2;
    uint8_t *b = realloc(u->buf, cap);
    if (b == NULL)
        return -1;
    u->buf = b;
    u->cap = cap;
    return 0;
}

static void bad(struct unbatch *u, const char *name, unsigned long index, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void bad(struct unbatch *u, const char *name, unsigned long index, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, PROG ": %s: batch %lu: ", name, index);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    u->bad++;
}

/* What is at byte `where` of a batch the decoder refused, in words: for a CBOR error what the
 * CBOR decoder says of that item, else the item itself (what a field holds). */
static void describe(char *out, size_t cap, enum batch_err r, const uint8_t *b, size_t len,
                     size_t where)
{
    static const char *const major[] = {"uint",  "negative int", "byte string", "text string",
                                        "array", "map",          "tag",         "simple/float"};
    struct cbor_dec d;
    struct cbor_item it;
    cbor_dec_init(&d, b, len);
    d.off = where;
    enum cbor_err ce = cbor_next(&d, &it);
    if (ce != CBOR_OK) {
        snprintf(out, cap, "%s", cbor_err_str(ce));
        return;
    }
    if (r == BATCH_ERR_CBOR) {
        snprintf(out, cap,
                 "a %s where the format has another item or nothing (docs/batch-format.md)",
                 major[it.major]);
        return;
    }
    switch (it.major) {
    case CBOR_MAJOR_TEXT: {
        int n = it.val > 64 ? 64 : (int)it.val;
        int printable = 1;
        for (int i = 0; i < n; i++)
            printable &= it.ptr[i] >= 0x20 && it.ptr[i] != 0x7f && it.ptr[i] != '"';
        if (printable)
            snprintf(out, cap, "text \"%.*s\"%s (%" PRIu64 " bytes)", n, (const char *)it.ptr,
                     (uint64_t)n < it.val ? "..." : "", it.val);
        else
            snprintf(out, cap, "text of %" PRIu64 " bytes", it.val);
        break;
    }
    case CBOR_MAJOR_BYTES:
        snprintf(out, cap, "byte string of %" PRIu64 " bytes", it.val);
        break;
    case CBOR_MAJOR_ARRAY:
        snprintf(out, cap, "array of %" PRIu64 " items", it.val);
        break;
    default:
        snprintf(out, cap, "%s %" PRIu64, major[it.major], it.val);
        break;
    }
}

/* Decodes one batch completely, then prints its lines. Returns 0, or 1 for a bad batch. */
static int split(struct unbatch *u, const char *name, unsigned long index, const uint8_t *b,
                 size_t len, size_t file_off)
{
    struct batch_dec d;
    const char *gw = NULL;
    size_t gl = 0, count = 0, where = 0;
    enum batch_err r = batch_dec_init(&d, b, len, &gw, &gl, &count, &where);
    for (size_t i = 0; r == BATCH_OK && i < count; i++)
        r = batch_dec_next(&d, &u->entries[i], &where);
    if (r == BATCH_OK)
        r = batch_dec_end(&d, &where);
    if (r != BATCH_OK) {
        char at[64] = "";
        if (file_off > 0)
            snprintf(at, sizeof(at), " (file offset %zu)", file_off + where);
        if (len == 0)
            bad(u, name, index, "empty: a batch is at least one CBOR array");
        else if (where >= len)
            bad(u, name, index, "byte %zu%s: %s (the batch ends there: %zu bytes)", where, at,
                batch_err_str(r), len);
        else {
            char what[160];
            describe(what, sizeof(what), r, b, len, where);
            bad(u, name, index, "byte %zu%s: %s: %s", where, at, batch_err_str(r), what);
        }
        return 1;
    }
    for (size_t i = 0; i < count; i++) {
        const struct batch_entry *e = &u->entries[i];
        fputs("{\"gateway\":", stdout);
        tool_json_strn(stdout, gw, gl);
        printf(",\"batch\":%" PRIu64 ",\"node\":", u->entries[0].seq);
        tool_json_strn(stdout, e->node, e->node_len);
        fputs(",\"topic\":", stdout);
        if (u->prefix != NULL) {
            memcpy(u->topic + u->prefix_len + 1, e->tail, e->tail_len);
            tool_json_strn(stdout, u->topic, u->prefix_len + 1 + e->tail_len);
        } else {
            tool_json_strn(stdout, e->tail, e->tail_len);
        }
        printf(",\"seq\":%" PRIu64 ",\"ts\":%" PRIu64 ",\"payload\":", e->seq, e->ts);
        tool_json_base64(stdout, e->payload, e->payload_len);
        fputs("}\n", stdout);
    }
    return 0;
}

/* One batch per input. */
static int run_whole(struct unbatch *u, FILE *f, const char *name)
{
    size_t len = 0;
    for (;;) {
        if (len == UNBATCH_MAX_BYTES) {
            uint8_t more;
            if (read_full(f, &more, 1) == 0)
                break;
            bad(u, name, 1, "larger than %u bytes, the largest MQTT payload", UNBATCH_MAX_BYTES);
            return 0;
        }
        if (reserve(u, len + 65536 > UNBATCH_MAX_BYTES ? UNBATCH_MAX_BYTES : len + 65536) != 0) {
            fprintf(stderr, PROG ": %s: out of memory\n", name);
            return -1;
        }
        size_t want = u->cap - len;
        long got = read_full(f, u->buf + len, want);
        if (got < 0) {
            fprintf(stderr, PROG ": %s: read error: %s\n", name, strerror(errno));
            return -1;
        }
        len += (size_t)got;
        if ((size_t)got < want)
            break;
    }
    split(u, name, 1, u->buf, len, 0);
    return 0;
}

/* Batches each preceded by a 4-byte big-endian length. A broken frame (a length larger than
 * any MQTT payload, or the input ending inside a frame) ends this input. */
static int run_framed(struct unbatch *u, FILE *f, const char *name)
{
    size_t off = 0;
    for (unsigned long index = 1;; index++) {
        uint8_t hdr[4];
        long got = read_full(f, hdr, sizeof(hdr));
        if (got < 0) {
            fprintf(stderr, PROG ": %s: read error: %s\n", name, strerror(errno));
            return -1;
        }
        if (got == 0)
            return 0;
        if (got < 4) {
            bad(u, name, index, "byte %zu of the input: the input ends inside the 4-byte length",
                off);
            return 0;
        }
        size_t len = (size_t)hdr[0] << 24 | (size_t)hdr[1] << 16 | (size_t)hdr[2] << 8 | hdr[3];
        if (len > UNBATCH_MAX_BYTES) {
            bad(u, name, index,
                "byte %zu of the input: length %zu is larger than any MQTT payload (%u): not "
                "a length-prefixed stream?",
                off, len, UNBATCH_MAX_BYTES);
            return 0;
        }
        off += 4;
        if (reserve(u, len) != 0) {
            fprintf(stderr, PROG ": %s: out of memory\n", name);
            return -1;
        }
        got = read_full(f, u->buf, len);
        if (got < 0) {
            fprintf(stderr, PROG ": %s: read error: %s\n", name, strerror(errno));
            return -1;
        }
        if ((size_t)got < len) {
            bad(u, name, index, "byte %zu of the input: the length says %zu bytes, %ld are left",
                off, len, got);
            return 0;
        }
        split(u, name, index, u->buf, len, off);
        off += len;
    }
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"prefix", required_argument, NULL, 'p'},
        {"length-prefixed", no_argument, NULL, 'l'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    struct unbatch u;
    int framed = 0, c, ret = 0;

    memset(&u, 0, sizeof(u));
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
        switch (c) {
        case 'p':
            u.prefix = optarg;
            u.prefix_len = strlen(optarg);
            if (u.prefix_len == 0 || u.prefix_len > UNBATCH_PREFIX_MAX ||
                optarg[u.prefix_len - 1] == '/' || strpbrk(optarg, "+#") != NULL) {
                fprintf(stderr,
                        PROG ": --prefix '%s': not a topic prefix (1..%u bytes, no trailing "
                             "'/', no MQTT wildcard)\n",
                        optarg, UNBATCH_PREFIX_MAX);
                usage(stderr);
                return EXIT_USAGE;
            }
            break;
        case 'l':
            framed = 1;
            break;
        case 'h':
            usage(stdout);
            return 0;
        case 'V':
            return fleetgw_print_version(PROG);
        case ':':
            fprintf(stderr, PROG ": option '%s' needs a value\n", argv[optind - 1]);
            usage(stderr);
            return EXIT_USAGE;
        default:
            if (optopt != 0)
                fprintf(stderr, PROG ": unknown option '-%c'\n", optopt);
            else
                fprintf(stderr, PROG ": unknown option '%s'\n", argv[optind - 1]);
            usage(stderr);
            return EXIT_USAGE;
        }
    }
    if (u.prefix != NULL) {
        memcpy(u.topic, u.prefix, u.prefix_len);
        u.topic[u.prefix_len] = '/';
    }
    u.entries = calloc(BATCH_ENTRIES_MAX, sizeof(*u.entries));
    if (u.entries == NULL) {
        fprintf(stderr, PROG ": out of memory\n");
        return EXIT_USAGE;
    }
    static const char *const stdin_only[] = {"-"};
    const char *const *files = optind < argc ? (const char *const *)argv + optind : stdin_only;
    size_t nfiles = optind < argc ? (size_t)(argc - optind) : 1;
    for (size_t i = 0; i < nfiles && ret == 0; i++) {
        int is_stdin = strcmp(files[i], "-") == 0;
        const char *name = is_stdin ? "<stdin>" : files[i];
        FILE *f = is_stdin ? stdin : fopen(files[i], "rbe");
        if (f == NULL) {
            fprintf(stderr, PROG ": %s: %s\n", files[i], strerror(errno));
            ret = EXIT_USAGE;
            break;
        }
        if ((framed ? run_framed(&u, f, name) : run_whole(&u, f, name)) != 0)
            ret = EXIT_USAGE;
        if (!is_stdin)
            fclose(f);
        else
            clearerr(stdin);
    }
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, PROG ": writing the output: %s\n", strerror(errno));
        ret = EXIT_USAGE;
    }
    free(u.entries);
    free(u.buf);
    if (ret == 0 && u.bad > 0)
        ret = EXIT_BAD;
    return ret;
}
