# RCU over liburcu (kprim/rcu.hpp), included from primitives/CMakeLists.txt.
# One INTERFACE target per flavour: kprim::rcu_memb (also kprim::rcu), kprim::rcu_qsbr,
# kprim::rcu_mb, kprim::rcu_bp. Each selects its flavour for kprim/rcu.hpp, links that flavour's
# library, and turns on liburcu's inline fast paths (_LGPL_SOURCE).
#
# -fno-extern-tls-init: liburcu declares its per-thread reader state `thread_local` when
# compiled as C++, so g++ wraps every access in a check for a dynamic TLS initialiser the C
# library cannot have (a test and branch per access in rcu_read_lock()). The flag drops the
# check for extern thread_locals; sound as long as the consumer's own extern thread_locals
# (defined in another translation unit) have constant initialisers, which kprim's do.
set(_kprim_rcu_flavours memb qsbr mb bp)
foreach(_f IN LISTS _kprim_rcu_flavours)
  string(TOUPPER ${_f} _F)
  add_library(kprim_rcu_${_f} INTERFACE)
  target_link_libraries(kprim_rcu_${_f} INTERFACE kprim::primitives PkgConfig::URCU_${_F})
  target_compile_definitions(kprim_rcu_${_f} INTERFACE KPRIM_RCU_FLAVOUR_${_F}=1 _LGPL_SOURCE=1)
  target_compile_options(kprim_rcu_${_f} INTERFACE $<$<COMPILE_LANGUAGE:CXX>:-fno-extern-tls-init>)
  add_library(kprim::rcu_${_f} ALIAS kprim_rcu_${_f})
endforeach()
add_library(kprim::rcu ALIAS kprim_rcu_memb)

# liburcu-bp declares its per-thread reader struct 128-byte aligned but hands out readers from
# an arena at 32-byte offsets, so UBSan's alignment check fires inside liburcu's own inline
# rcu_read_lock() (harmless on x86-64). Code that inlines the bp fast path turns that one check
# off; it is a no-op in builds without UBSan.
set(_kprim_rcu_bp_ubsan $<$<COMPILE_LANGUAGE:CXX>:-fno-sanitize=alignment>)
target_compile_options(kprim_rcu_bp INTERFACE ${_kprim_rcu_bp_ubsan})

# Every flavour in one binary (tests and benchmarks that compare them): no flavour define, so
# kprim::rcu_flavour is memb and the others are named explicitly (synchronize_rcu<rcu_qsbr>()).
# rculfhash (liburcu-cds) comes along as the benchmarks' peer.
add_library(kprim_rcu_all INTERFACE)
target_link_libraries(kprim_rcu_all INTERFACE kprim::primitives PkgConfig::URCU_MEMB PkgConfig::URCU_QSBR
                      PkgConfig::URCU_MB PkgConfig::URCU_BP PkgConfig::URCU_CDS)
target_compile_definitions(kprim_rcu_all INTERFACE _LGPL_SOURCE=1)
target_compile_options(kprim_rcu_all INTERFACE $<$<COMPILE_LANGUAGE:CXX>:-fno-extern-tls-init> ${_kprim_rcu_bp_ubsan})
add_library(kprim::rcu_all ALIAS kprim_rcu_all)

# Tests: every flavour through the explicit-flavour API, with the debug checks forced on (death
# tests) whatever the build type; then one small binary per flavour target, checking that the
# target selects its flavour as the default.
kprim_add_test(test_rcu SOURCES tests/rcu_test.cpp LIBS kprim::rcu_all TIMEOUT 120)
if(TARGET test_rcu)
  target_compile_definitions(test_rcu PRIVATE KPRIM_DEBUG_RCU=1)
  foreach(_f IN LISTS _kprim_rcu_flavours)
    kprim_add_test(test_rcu_default_${_f} SOURCES tests/rcu_default_flavour_test.cpp LIBS kprim::rcu_${_f}
                   TIMEOUT 60)
    target_compile_definitions(test_rcu_default_${_f} PRIVATE KPRIM_EXPECT_RCU_FLAVOUR="${_f}")
  endforeach()
endif()

# RCU lists, hlists and the hash table (kprim/rculist.hpp, kprim/rcu_hashtable.hpp).
kprim_add_test(test_rculist SOURCES tests/rculist_test.cpp LIBS kprim::rcu TIMEOUT 120)
