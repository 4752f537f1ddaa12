# Generates kprim_build_info.cpp at every build (rewritten only when it changes): the git
# revision and the build's compiler, flags, type, sanitizer and peer versions, for provenance.
string(TOUPPER "${CMAKE_BUILD_TYPE}" _kprim_cfg)
set(KPRIM_BUILD_INFO_CPP ${CMAKE_BINARY_DIR}/generated/kprim_build_info.cpp)
string(REPLACE ";" "," _kprim_peers "${KPRIM_PEER_VERSIONS}")
add_custom_target(kprim_build_info
  COMMAND ${CMAKE_COMMAND}
          -DOUT=${KPRIM_BUILD_INFO_CPP}
          -DSRC=${PROJECT_SOURCE_DIR}
          "-DCOMPILER=${CMAKE_CXX_COMPILER_ID} ${CMAKE_CXX_COMPILER_VERSION}"
          "-DFLAGS=${CMAKE_CXX_FLAGS} ${CMAKE_CXX_FLAGS_${_kprim_cfg}}"
          "-DBUILD_TYPE=${CMAKE_BUILD_TYPE}"
          "-DSANITIZER=${KPRIM_SANITIZER}"
          "-DPEERS=${_kprim_peers}"
          -P ${PROJECT_SOURCE_DIR}/cmake/BuildInfoGen.cmake
  BYPRODUCTS ${KPRIM_BUILD_INFO_CPP}
  VERBATIM)
