# Warnings, hardening and sanitizer flags shared by every host target.
include(CheckCCompilerFlag)

set(FLEETGW_WARNINGS
    -Wall -Wextra -Wconversion -Wshadow -Wformat=2 -Wvla
    -Wstrict-prototypes -Wmissing-prototypes -Wno-sign-conversion)
if(FLEETGW_WERROR)
    list(APPEND FLEETGW_WARNINGS -Werror)
endif()
add_compile_options(${FLEETGW_WARNINGS})

# Hardening: stack protector, fortify, PIE, full RELRO.
add_compile_options(-fstack-protector-strong -fno-strict-aliasing)
if(NOT FLEETGW_SANITIZE AND NOT FLEETGW_LIBFUZZER)
    add_compile_definitions($<$<NOT:$<CONFIG:Debug>>:_FORTIFY_SOURCE=2>)
endif()
set(CMAKE_POSITION_INDEPENDENT_CODE ON)
add_compile_options(-fPIE)
add_link_options(-pie -Wl,-z,relro -Wl,-z,now -Wl,-z,noexecstack)

if(FLEETGW_SANITIZE OR FLEETGW_LIBFUZZER)
    add_compile_options(-fsanitize=address,undefined -fno-sanitize-recover=undefined
                        -fno-omit-frame-pointer)
    add_link_options(-fsanitize=address,undefined)
endif()
if(FLEETGW_LIBFUZZER)
    if(NOT CMAKE_C_COMPILER_ID STREQUAL "Clang")
        message(FATAL_ERROR "FLEETGW_LIBFUZZER needs clang (make fuzz sets CC=clang)")
    endif()
    add_compile_options(-fsanitize=fuzzer-no-link)
endif()
