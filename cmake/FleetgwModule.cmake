# fleetgw_module(): one call wires a module the same way everywhere: its static library,
# its unit tests (ctest label "unit") and its fuzz targets (ctest label "fuzz", corpus replay).
#
#   fleetgw_module(<name>
#       SOURCES    src/a.c src/b.c        # the library (omit for a header-only/test-only module)
#       INCLUDES   include                # public include dirs (default: include if it exists)
#       LIBS       other_lib PkgConfig::X # public link dependencies
#       UNIT_TESTS tests/test_a.c ...     # each file is one test program: test_<stem>
#       FUZZ       fuzz/fuzz_a.c ...      # each file defines LLVMFuzzerTestOneInput;
#                                         # its seed corpus is fuzz/corpus/<stem>/
#   )
#
# Test programs get FLEETGW_VECTORS and FLEETGW_SOURCE_DIR in their environment and exit 77
# for a visible skip (e.g. ../shared/vectors absent on a user's clone).

set(FLEETGW_TEST_ENV
    "FLEETGW_VECTORS=${FLEETGW_VECTORS}"
    "FLEETGW_SOURCE_DIR=${CMAKE_SOURCE_DIR}"
    "FLEETGW_BUILD_DIR=${CMAKE_BINARY_DIR}"
    "ASAN_OPTIONS=detect_leaks=1:abort_on_error=1"
    "UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1")

function(fleetgw_unit_test name)
    cmake_parse_arguments(T "" "" "SOURCES;LIBS" ${ARGN})
    add_executable(${name} ${T_SOURCES})
    target_link_libraries(${name} PRIVATE fleetgw_testlib ${T_LIBS})
    set_target_properties(${name} PROPERTIES RUNTIME_OUTPUT_DIRECTORY "${CMAKE_BINARY_DIR}/tests")
    add_test(NAME unit.${name} COMMAND ${name})
    set_tests_properties(unit.${name} PROPERTIES LABELS unit SKIP_RETURN_CODE 77
                         ENVIRONMENT "${FLEETGW_TEST_ENV}")
endfunction()

function(fleetgw_fuzz_target name)
    cmake_parse_arguments(F "" "CORPUS" "SOURCES;LIBS" ${ARGN})
    add_executable(${name} ${F_SOURCES})
    target_link_libraries(${name} PRIVATE ${F_LIBS})
    set_target_properties(${name} PROPERTIES RUNTIME_OUTPUT_DIRECTORY "${CMAKE_BINARY_DIR}/fuzz")
    if(FLEETGW_LIBFUZZER)
        target_link_options(${name} PRIVATE -fsanitize=fuzzer)
        set(replay_args -runs=0 ${F_CORPUS})
    else()
        target_sources(${name} PRIVATE ${CMAKE_SOURCE_DIR}/tests/fuzz/replay_main.c)
        set(replay_args ${F_CORPUS})
    endif()
    add_test(NAME fuzz.${name} COMMAND ${name} ${replay_args})
    set_tests_properties(fuzz.${name} PROPERTIES LABELS fuzz ENVIRONMENT "${FLEETGW_TEST_ENV}")
    set_property(GLOBAL APPEND PROPERTY FLEETGW_FUZZ_TARGETS "${name}|${F_CORPUS}")
endfunction()

function(fleetgw_module name)
    cmake_parse_arguments(M "" "" "SOURCES;INCLUDES;LIBS;UNIT_TESTS;FUZZ" ${ARGN})
    if(NOT M_INCLUDES AND EXISTS "${CMAKE_CURRENT_SOURCE_DIR}/include")
        set(M_INCLUDES include)
    endif()
    if(M_SOURCES)
        add_library(${name} STATIC ${M_SOURCES})
        target_include_directories(${name} PUBLIC ${M_INCLUDES})
        target_link_libraries(${name} PUBLIC ${M_LIBS})
        set(lib ${name})
    else()
        set(lib ${M_LIBS})
    endif()
    foreach(src IN LISTS M_UNIT_TESTS)
        get_filename_component(stem ${src} NAME_WE)
        fleetgw_unit_test(${stem} SOURCES ${src} LIBS ${lib})
    endforeach()
    foreach(src IN LISTS M_FUZZ)
        get_filename_component(stem ${src} NAME_WE)
        fleetgw_fuzz_target(${stem} SOURCES ${src} LIBS ${lib}
                            CORPUS ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/corpus/${stem})
    endforeach()
endfunction()

# fleetgw_integration_test(<name> <script.py> [LABELS ...] [TIMEOUT s])
# A python3 script (Debian's /usr/bin/python3 with python3-cryptography) that drives REAL
# components through tests/harness. Exit 0 pass, 77 visible skip, anything else fails.
function(fleetgw_integration_test name script)
    cmake_parse_arguments(I "" "TIMEOUT" "LABELS" ${ARGN})
    if(NOT I_TIMEOUT)
        set(I_TIMEOUT 600)
    endif()
    add_test(NAME integration.${name} COMMAND ${FLEETGW_PYTHON} -u ${script})
    set_tests_properties(integration.${name} PROPERTIES
        LABELS "integration;${I_LABELS}" SKIP_RETURN_CODE 77 TIMEOUT ${I_TIMEOUT}
        ENVIRONMENT "${FLEETGW_TEST_ENV};PYTHONPATH=${CMAKE_SOURCE_DIR}/tests/harness;PYTHONDONTWRITEBYTECODE=1")
endfunction()
