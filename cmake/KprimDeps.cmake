# Every dependency as an imported target. Debian 12 packages only; nothing is downloaded.
find_package(Threads REQUIRED)
find_package(PkgConfig REQUIRED)
find_package(benchmark REQUIRED)
find_package(GTest REQUIRED)
find_package(TBB REQUIRED COMPONENTS tbb tbbmalloc)
find_package(mimalloc REQUIRED)
find_package(Boost REQUIRED)

pkg_check_modules(JEMALLOC REQUIRED IMPORTED_TARGET jemalloc)
pkg_check_modules(TCMALLOC REQUIRED IMPORTED_TARGET libtcmalloc_minimal)
pkg_check_modules(CK REQUIRED IMPORTED_TARGET ck)
pkg_check_modules(HWLOC REQUIRED IMPORTED_TARGET hwloc)
pkg_check_modules(URCU_MEMB REQUIRED IMPORTED_TARGET liburcu-memb)
pkg_check_modules(URCU_QSBR REQUIRED IMPORTED_TARGET liburcu-qsbr)
pkg_check_modules(URCU_MB REQUIRED IMPORTED_TARGET liburcu-mb)
pkg_check_modules(URCU_BP REQUIRED IMPORTED_TARGET liburcu-bp)
pkg_check_modules(URCU_CDS REQUIRED IMPORTED_TARGET liburcu-cds)

# Peer versions, recorded in every results file (see results/SCHEMA.md).
set(KPRIM_PEER_VERSIONS
  "benchmark=${benchmark_VERSION};gtest=${GTest_VERSION};tbb=${TBB_VERSION};mimalloc=${mimalloc_VERSION};boost=${Boost_VERSION};jemalloc=${JEMALLOC_VERSION};tcmalloc=${TCMALLOC_VERSION};ck=${CK_VERSION};hwloc=${HWLOC_VERSION};liburcu=${URCU_MEMB_VERSION}")
