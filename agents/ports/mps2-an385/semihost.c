#include "board.h"

#define SYS_OPEN  0x01
#define SYS_CLOSE 0x02
#define SYS_WRITE 0x05
#define SYS_READ  0x06
#define SYS_SEEK  0x0A
#define SYS_FLEN  0x0C

static int semihost_call(int op, void *arg)
{
    register int r0 __asm__("r0") = op;
    register void *r1 __asm__("r1") = arg;
    __asm__ volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

static uint32_t str_len(const char *s)
{
    uint32_t n = 0;
    while (s[n] != '\0')
        n++;
    return n;
}

int semihost_open(const char *path, int mode)
{
    uint32_t a[3] = {(uint32_t)path, (uint32_t)mode, str_len(path)};
    return semihost_call(SYS_OPEN, a);
}

int semihost_close(int fd)
{
    uint32_t a[1] = {(uint32_t)fd};
    return semihost_call(SYS_CLOSE, a);
}

int semihost_seek(int fd, uint32_t pos)
{
    uint32_t a[2] = {(uint32_t)fd, pos};
    return semihost_call(SYS_SEEK, a);
}

int semihost_flen(int fd)
{
    uint32_t a[1] = {(uint32_t)fd};
    return semihost_call(SYS_FLEN, a);
}

int semihost_read(int fd, void *buf, uint32_t len)
{
    uint32_t a[3] = {(uint32_t)fd, (uint32_t)buf, len};
    return semihost_call(SYS_READ, a);
}

int semihost_write(int fd, const void *buf, uint32_t len)
{
    uint32_t a[3] = {(uint32_t)fd, (uint32_t)buf, len};
    return semihost_call(SYS_WRITE, a);
}
