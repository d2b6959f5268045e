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
