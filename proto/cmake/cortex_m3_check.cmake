# Compiles every portable proto/ core source for Cortex-M3 (the firmware target) with the
# flags the firmware uses. Run as: cmake -DSRC_DIR=.. -DINCLUDE_DIR=.. -DOUT_DIR=.. -P this.
# The crypto back-ends are excluded: crypto_openssl.c is host-only and crypto_mbedtls.c needs
# the cross-built Mbed TLS headers (the host's /usr/include/mbedtls is not valid for ARM).
# A missing cross compiler is a failure, not a skip.
find_program(ARM_GCC arm-none-eabi-gcc PATHS /usr/bin)
if(NOT ARM_GCC)
    message(FATAL_ERROR "arm-none-eabi-gcc not found (install Debian's gcc-arm-none-eabi "
                        "and libnewlib-arm-none-eabi): cannot check the Cortex-M3 build")
endif()
file(GLOB sources ${SRC_DIR}/*.c)
list(FILTER sources EXCLUDE REGEX "/crypto_[a-z]+\\.c$")
if(NOT sources)
    message(FATAL_ERROR "no portable sources found in ${SRC_DIR}")
endif()
file(MAKE_DIRECTORY ${OUT_DIR})
set(failed "")
foreach(src IN LISTS sources)
    get_filename_component(stem ${src} NAME_WE)
    execute_process(
        COMMAND ${ARM_GCC} -mcpu=cortex-m3 -mthumb -Os -std=c99 -Wall -Wextra -Werror
                -ffreestanding -I${INCLUDE_DIR} -c ${src} -o ${OUT_DIR}/${stem}.o
        RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
    if(rc EQUAL 0)
        message(STATUS "cortex-m3 ok: ${stem}.c")
    else()
        message("cortex-m3 FAILED: ${stem}.c\n${out}${err}")
        list(APPEND failed ${stem}.c)
    endif()
endforeach()
if(failed)
    message(FATAL_ERROR "Cortex-M3 compile check failed for: ${failed}")
endif()
