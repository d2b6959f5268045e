/* Cortex-M3 startup for the bootloader and the application: vector table, reset handler
 * (.data copy, .bss clear), reset and halt. Built with -fno-tree-loop-distribute-patterns
 * so the copy loops are not turned into memcpy calls before memory is set up. */
#include <stdint.h>

#include "board.h"

/* Linker script symbols: only their addresses mean something. */
extern uint32_t __data_load[], __data_start[], __data_end[], __bss_start[], __bss_end[];
extern uint32_t __stack_top[];
int main(void);
void Reset_Handler(void);
void Default_Handler(void);

static size_t words(const uint32_t *from, const uint32_t *to)
{
    return (size_t)((uintptr_t)to - (uintptr_t)from) / sizeof(uint32_t);
}

void Reset_Handler(void)
{
    size_t n = words(__data_start, __data_end);
    for (size_t i = 0; i < n; i++)
        __data_start[i] = __data_load[i];
    n = words(__bss_start, __bss_end);
    for (size_t i = 0; i < n; i++)
        __bss_start[i] = 0;
    (void)main();
    board_halt();
}

void Default_Handler(void)
{
    uart_puts("fault: unexpected exception, halting\n");
    board_halt();
}

/* Mbed TLS platform hooks (fleetgw_mbedtls_config.h): no libc heap, no exit. */
void *fleetgw_mbedtls_calloc_none(size_t n, size_t size);
void fleetgw_mbedtls_free_none(void *p);
void fleetgw_mbedtls_exit(int status);

void *fleetgw_mbedtls_calloc_none(size_t n, size_t size)
{
    (void)n;
    (void)size;
    return NULL;
}

void fleetgw_mbedtls_free_none(void *p)
{
    (void)p;
}

void fleetgw_mbedtls_exit(int status)
{
    (void)status;
    uart_puts("fault: Mbed TLS heap corrupted, halting\n");
    board_halt();
}

#define SCB_AIRCR (*(volatile uint32_t *)0xE000ED0Cu)

_Noreturn void board_reset(void)
{
    __asm__ volatile("dsb" ::: "memory");
    SCB_AIRCR = 0x05FA0004u; /* VECTKEY | SYSRESETREQ */
    __asm__ volatile("dsb" ::: "memory");
    for (;;)
        ;
}

_Noreturn void board_halt(void)
{
    for (;;)
        __asm__ volatile("wfi");
}

__attribute__((section(".vectors"), used)) static void (*const vectors[48])(void) = {
    (void (*)(void))(uintptr_t)__stack_top,
    Reset_Handler,
    Default_Handler,        /* NMI */
    Default_Handler,        /* HardFault */
    Default_Handler,        /* MemManage */
    Default_Handler,        /* BusFault */
    Default_Handler,        /* UsageFault */
    [11] = Default_Handler, /* SVC */
    [14] = Default_Handler, /* PendSV */
    [15] = Default_Handler, /* SysTick */
};
