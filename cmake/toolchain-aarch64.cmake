# Cross build for arm64 (aarch64 Linux) on an x86-64 Debian 12 host; the `arm64`
# configure presets use it. What it needs, all without installing a single :arm64 package:
#   - g++-aarch64-linux-gnu and qemu-user (amd64 packages, apt-get install);
#   - the :arm64 builds of the libraries kprim links (gtest, benchmark, tbb, urcu, ck, ...),
#     fetched with `apt-get download` and unpacked with `dpkg-deb -x` into KPRIM_ARM64_DEPS
#     (default build/arm64-deps/root; `./kbench build --preset arm64` does it). Installing them
#     with apt would REMOVE the amd64 libck-dev/libjemalloc-dev and break the native build
#     (shared/METHOD.md, "arm64 from this x86-64 machine").
# Tests run under qemu-user (CMAKE_CROSSCOMPILING_EMULATOR): qemu keeps the host's x86 memory
# ordering, so it cannot show arm64's weaker reorderings; test_codegen's arm64 listings and the
# litmus benchmark on real arm64 hardware do.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)
set(CMAKE_LIBRARY_ARCHITECTURE aarch64-linux-gnu)

if(NOT DEFINED KPRIM_ARM64_DEPS)
  set(KPRIM_ARM64_DEPS "${CMAKE_CURRENT_LIST_DIR}/../build/arm64-deps/root")
endif()
get_filename_component(KPRIM_ARM64_DEPS "${KPRIM_ARM64_DEPS}" ABSOLUTE)
set(KPRIM_ARM64_DEPS "${KPRIM_ARM64_DEPS}" CACHE PATH "unpacked :arm64 library packages (dpkg-deb -x)")
# try_compile projects re-read this file: hand them the same directory.
list(APPEND CMAKE_TRY_COMPILE_PLATFORM_VARIABLES KPRIM_ARM64_DEPS)

# Libraries, headers and CMake packages only from the unpacked :arm64 tree and the cross
# toolchain's own sysroot; programs (pkg-config, python) from the host.
set(CMAKE_FIND_ROOT_PATH "${KPRIM_ARM64_DEPS}" /usr/aarch64-linux-gnu)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

# pkg-config: the unpacked .pc files, their /usr paths rewritten into the tree.
set(ENV{PKG_CONFIG_LIBDIR} "${KPRIM_ARM64_DEPS}/usr/lib/aarch64-linux-gnu/pkgconfig:${KPRIM_ARM64_DEPS}/usr/share/pkgconfig")
set(ENV{PKG_CONFIG_SYSROOT_DIR} "${KPRIM_ARM64_DEPS}")
set(ENV{PKG_CONFIG_PATH} "")

# Architecture-specific headers (hwloc/autogen/config.h ...) sit in usr/include/<triplet>, which
# a native compiler searches by itself and the cross compiler does not.
set(CMAKE_C_STANDARD_INCLUDE_DIRECTORIES "${KPRIM_ARM64_DEPS}/usr/include/aarch64-linux-gnu")
set(CMAKE_CXX_STANDARD_INCLUDE_DIRECTORIES "${KPRIM_ARM64_DEPS}/usr/include/aarch64-linux-gnu")

# The unpacked libraries' own dependencies (libhwloc for tbbbind, libunwind for tcmalloc ...)
# are found at link time through -rpath-link, and at run time through qemu's LD_LIBRARY_PATH.
set(kprim_arm64_libdir "${KPRIM_ARM64_DEPS}/usr/lib/aarch64-linux-gnu")
string(APPEND CMAKE_EXE_LINKER_FLAGS_INIT " -Wl,-rpath-link,${kprim_arm64_libdir}")
string(APPEND CMAKE_SHARED_LINKER_FLAGS_INIT " -Wl,-rpath-link,${kprim_arm64_libdir}")
set(CMAKE_CROSSCOMPILING_EMULATOR qemu-aarch64;-L;/usr/aarch64-linux-gnu;-E;LD_LIBRARY_PATH=${kprim_arm64_libdir})
