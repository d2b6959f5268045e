/* Minimal unit-test helpers: every failed CHECK prints file:line and the expression, the
 * test program prints "N passed, N failed" and exits non-zero on any failure. */
#ifndef FLEETGW_CHECK_H
#define FLEETGW_CHECK_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

extern unsigned check_passed;
extern unsigned check_failed;

void check_report(const char *file, int line, const char *expr, int ok);
int check_finish(void);
/* Returns the path of a vector file under FLEETGW_VECTORS in buf, or NULL when the vectors
 * folder is absent (the caller then skips with exit 77, after saying so). */
const char *check_vector_path(char *buf, size_t len, const char *rel);
/* Reads a whole file (at most cap bytes) into buf; returns its length or -1. */
long check_read_file(const char *path, uint8_t *buf, size_t cap);
/* Value of one hex digit (either case), or -1. */
int check_hexval(int c);
/* The text of a file under FLEETGW_SOURCE_DIR (e.g. "docs/protocol.md", at most 256 KiB) in a
 * static buffer, or NULL (reason printed). */
const char *check_read_source(const char *rel);
/* The hex digits of the first ``` block after "<!-- example: NAME -->" in doc, as bytes
 * (white space ignored); their count, or -1 when absent, not hex or longer than cap. */
long check_doc_example(const char *doc, const char *name, uint8_t *out, size_t cap);
/* Skip the whole test program visibly: prints the reason and exits 77. */
_Noreturn void check_skip(const char *why);

#define CHECK(expr) check_report(__FILE__, __LINE__, #expr, (expr) ? 1 : 0)
#define CHECK_EQ_INT(a, b)                                                                         \
    do {                                                                                           \
        long long check_a_ = (long long)(a), check_b_ = (long long)(b);                            \
        if (check_a_ != check_b_)                                                                  \
            fprintf(stderr, "  %s = %lld, %s = %lld\n", #a, check_a_, #b, check_b_);               \
        check_report(__FILE__, __LINE__, #a " == " #b, check_a_ == check_b_);                      \
    } while (0)

#endif
