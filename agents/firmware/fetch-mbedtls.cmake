# Fetches Debian's mbedtls source package (2.28.x) once into DEST with `apt-get source`
# (needs a deb-src entry: scripts/deps.sh adds it). Run by the build, cached in the build tree.
#   cmake -DDEST=<dir> -P fetch-mbedtls.cmake
if(EXISTS "${DEST}/src/library/sha256.c")
    return()
endif()
find_program(APT_GET apt-get)
find_program(DPKG_SOURCE dpkg-source)
if(NOT APT_GET OR NOT DPKG_SOURCE)
    message(FATAL_ERROR "fleetgw firmware: Mbed TLS is cross-built from Debian's mbedtls source "
                        "package; apt-get and dpkg-source (Debian package dpkg-dev) are needed")
endif()
set(work "${DEST}/apt")
file(REMOVE_RECURSE "${work}")
file(MAKE_DIRECTORY "${work}")
execute_process(COMMAND ${APT_GET} source --only-source mbedtls
                WORKING_DIRECTORY "${work}" RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
file(GLOB dirs LIST_DIRECTORIES true "${work}/mbedtls-2.28*")
if(NOT rc EQUAL 0 OR NOT dirs)
    message(FATAL_ERROR "fleetgw firmware: `apt-get source mbedtls` failed (exit ${rc}):\n${err}\n"
                        "Debian's mbedtls 2.28 source package is needed to cross-build Mbed TLS. "
                        "Add a deb-src entry (scripts/deps.sh does it as root), then "
                        "`apt-get update`.")
endif()
list(GET dirs 0 srcdir)
file(REMOVE_RECURSE "${DEST}/src")
file(RENAME "${srcdir}" "${DEST}/src")
get_filename_component(ver "${srcdir}" NAME)
message(STATUS "fleetgw firmware: Mbed TLS source: Debian ${ver} in ${DEST}/src")
