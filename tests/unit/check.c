#include "check.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

unsigned check_passed;
unsigned check_failed;

void check_report(const char *file, int line, const char *expr, int ok)
{
    if (ok) {
        check_passed++;
        return;
    }
    check_failed++;
    fprintf(stderr, "%s:%d: CHECK failed: %s\n", file, line, expr);
}

int check_finish(void)
{
    printf("%u passed, %u failed\n", check_passed, check_failed);
    return check_failed == 0 && check_passed > 0 ? 0 : 1;
}

_Noreturn void check_skip(const char *why)
{
    printf("SKIP: %s\n", why);
    exit(77);
}

const char *check_vector_path(char *buf, size_t len, const char *rel)
{
    const char *dir = getenv("FLEETGW_VECTORS");
    if (dir == NULL || dir[0] == '\0')
        return NULL;
    int n = snprintf(buf, len, "%s/%s", dir, rel);
    if (n < 0 || (size_t)n >= len)
        return NULL;
    if (access(buf, R_OK) != 0)
        return NULL;
    return buf;
}

long check_read_file(const char *path, uint8_t *buf, size_t cap)
{
    FILE *f = fopen(path, "rbe");
    if (f == NULL)
        return -1;
    size_t n = fread(buf, 1, cap, f);
    int more = fgetc(f) != EOF;
    fclose(f);
    return more ? -1 : (long)n;
}

int check_hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

const char *check_read_source(const char *rel)
{
    static uint8_t buf[256 * 1024];
    char path[1024];
    const char *src = getenv("FLEETGW_SOURCE_DIR");
    snprintf(path, sizeof(path), "%s/%s", src != NULL ? src : ".", rel);
    long n = check_read_file(path, buf, sizeof(buf) - 1);
    if (n < 0) {
        fprintf(stderr, "cannot read %s (FLEETGW_SOURCE_DIR)\n", path);
        return NULL;
    }
    buf[n] = 0;
    return (const char *)buf;
}

long check_doc_example(const char *doc, const char *name, uint8_t *out, size_t cap)
{
    char marker[96];
    snprintf(marker, sizeof(marker), "<!-- example: %s -->", name);
    const char *p = strstr(doc, marker);
    if (p == NULL || (p = strstr(p, "```")) == NULL || (p = strchr(p, '\n')) == NULL)
        return -1;
    const char *end = strstr(p, "```");
    if (end == NULL)
        return -1;
    size_t n = 0;
    int hi = -1;
    for (; p < end; p++) {
        if (*p == ' ' || *p == '\n' || *p == '\r')
            continue;
        int v = check_hexval((unsigned char)*p);
        if (v < 0 || n >= cap)
            return -1;
        if (hi < 0) {
            hi = v;
        } else {
            out[n++] = (uint8_t)(hi << 4 | v);
            hi = -1;
        }
    }
    return hi < 0 ? (long)n : -1;
}
