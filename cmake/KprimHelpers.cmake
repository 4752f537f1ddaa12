# Project-wide helpers: warnings on our code only, and one-line test/benchmark registration.

# -Wall -Wextra -Werror for project targets only (never for third-party headers).
# -Wno-restrict: g++ 12 at -O3 reports std::string concatenation as overlapping memcpy
# (GCC bug 105329, a false positive inside libstdc++).
add_library(kprim_warnings INTERFACE)
target_compile_options(kprim_warnings INTERFACE
  $<$<COMPILE_LANGUAGE:CXX>:-Wall -Wextra -Werror -Wno-restrict>
  $<$<COMPILE_LANGUAGE:C>:-Wall -Wextra -Werror>)
add_library(kprim::warnings ALIAS kprim_warnings)

# kprim_add_test(<name> SOURCES <files...> [LIBS <targets...>] [LABELS <labels...>] [TIMEOUT s])
# One GoogleTest executable registered as one ctest entry (gtest_main provides main()).
function(kprim_add_test name)
  cmake_parse_arguments(T "" "TIMEOUT" "SOURCES;LIBS;LABELS" ${ARGN})
  if(NOT KPRIM_BUILD_TESTS)
    return()
  endif()
  add_executable(${name} ${T_SOURCES})
  target_link_libraries(${name} PRIVATE ${T_LIBS} GTest::gtest GTest::gtest_main GTest::gmock
                        Threads::Threads kprim::testing kprim::warnings)
  add_test(NAME ${name} COMMAND ${name})
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 300)
  endif()
  set_tests_properties(${name} PROPERTIES TIMEOUT ${T_TIMEOUT} LABELS "unit;${T_LABELS}")
  kprim_emulated_test_env()
endfunction()

# Under an emulator (a cross build's CMAKE_CROSSCOMPILING_EMULATOR: qemu-aarch64 for the arm64
# presets) every test of the directory gets KPRIM_STRESS_SCALE (kprim/testing/stress.hpp: stress
# loops divided by it, same assertions) and KPRIM_EXPECT_EMULATED=1 (the emulation detection
# must say so). Deferred to the end of the directory, so tests added with plain add_test and
# ENVIRONMENT of their own (test_percpu_no_rseq, test_topology_env) are covered as well.
set(KPRIM_EMULATED_STRESS_SCALE 10 CACHE STRING
    "KPRIM_STRESS_SCALE for tests run under CMAKE_CROSSCOMPILING_EMULATOR (qemu-user)")
function(kprim_emulated_test_env)
  if(NOT CMAKE_CROSSCOMPILING_EMULATOR)
    return()
  endif()
  get_property(deferred DIRECTORY PROPERTY KPRIM_EMULATED_ENV_DEFERRED)
  if(NOT deferred)
    set_property(DIRECTORY PROPERTY KPRIM_EMULATED_ENV_DEFERRED TRUE)
    cmake_language(DEFER CALL kprim_emulated_test_env_apply)
  endif()
endfunction()
function(kprim_emulated_test_env_apply)
  get_property(tests DIRECTORY PROPERTY TESTS)
  foreach(t IN LISTS tests)
    set_property(TEST ${t} APPEND PROPERTY ENVIRONMENT
                 "KPRIM_STRESS_SCALE=${KPRIM_EMULATED_STRESS_SCALE}" "KPRIM_EXPECT_EMULATED=1")
  endforeach()
endfunction()

# kprim_add_bench(<name> SOURCES <files...> [LIBS <targets...>])
# One benchmark binary on the shared harness, plus a ctest smoke run (label: smoke).
function(kprim_add_bench name)
  cmake_parse_arguments(B "" "" "SOURCES;LIBS" ${ARGN})
  if(NOT KPRIM_BUILD_BENCH)
    return()
  endif()
  add_executable(${name} ${B_SOURCES})
  target_link_libraries(${name} PRIVATE kprim::harness ${B_LIBS} kprim::warnings)
  set_property(GLOBAL APPEND PROPERTY KPRIM_BENCH_TARGETS ${name})
  if(KPRIM_BUILD_TESTS)
    add_test(NAME smoke_${name}
             COMMAND ${name} --kprim_trial_ms=5 --kprim_threads=1,3 --benchmark_min_time=0
                     --benchmark_out=${CMAKE_CURRENT_BINARY_DIR}/smoke_${name}.json
                     --benchmark_out_format=json)
    set_tests_properties(smoke_${name} PROPERTIES TIMEOUT 300 LABELS smoke)
    kprim_emulated_test_env()
  endif()
endfunction()
