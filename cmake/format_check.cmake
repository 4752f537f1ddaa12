# format_check: the tracked C and C++ sources agree with .clang-format. Run by ctest as
#   cmake -DSOURCE_DIR=<repo> -DCLANG_FORMAT=<path or empty> -P cmake/format_check.cmake
# Fails listing the files clang-format would change and the command that applies it; skipped
# with a message when clang-format is not installed (the test's SKIP_REGULAR_EXPRESSION
# matches "format_check: SKIPPED"; cmake_language(EXIT) needs CMake 3.29, Debian 12 has 3.25).
if(NOT CLANG_FORMAT OR NOT EXISTS "${CLANG_FORMAT}")
  message("format_check: SKIPPED: clang-format not found (Debian package clang-format; ./kbench deps installs it)")
  return()
endif()

# Tracked files when this is a git checkout (new files count once added), else every source.
execute_process(COMMAND git ls-files -- "*.c" "*.cpp" "*.h" "*.hpp"
                WORKING_DIRECTORY "${SOURCE_DIR}" OUTPUT_VARIABLE files RESULT_VARIABLE rc
                ERROR_QUIET OUTPUT_STRIP_TRAILING_WHITESPACE)
if(rc EQUAL 0 AND files)
  string(REPLACE "\n" ";" files "${files}")
else()
  file(GLOB_RECURSE files RELATIVE "${SOURCE_DIR}" "${SOURCE_DIR}/primitives/*.[ch]pp"
       "${SOURCE_DIR}/allocators/*.[ch]pp" "${SOURCE_DIR}/bench/*.[ch]pp" "${SOURCE_DIR}/*.c" "${SOURCE_DIR}/*.h")
  list(FILTER files EXCLUDE REGEX "^build/")
endif()

list(FILTER files EXCLUDE REGEX "^$")
set(present "")
foreach(f IN LISTS files)
  if(EXISTS "${SOURCE_DIR}/${f}")  # a file deleted in the work tree but not yet in git is skipped
    list(APPEND present "${f}")
  endif()
endforeach()
set(files "${present}")

# One clang-format process for all files (one per file took 80 s on the loaded CI VM); with
# --Werror each difference is an "error:" line naming its file.
execute_process(COMMAND "${CLANG_FORMAT}" --style=file --dry-run --Werror ${files}
                WORKING_DIRECTORY "${SOURCE_DIR}" RESULT_VARIABLE frc OUTPUT_QUIET ERROR_VARIABLE out)
string(REGEX MATCHALL "[^\n:]+:[0-9]+:[0-9]+: error:" hits "${out}")
set(bad "")
foreach(h IN LISTS hits)
  string(REGEX REPLACE ":[0-9]+:[0-9]+: error:$" "" f "${h}")
  list(APPEND bad "${f}")
endforeach()
list(REMOVE_DUPLICATES bad)
if(NOT frc EQUAL 0 AND NOT bad)
  message(FATAL_ERROR "format_check: ${CLANG_FORMAT} failed (exit ${frc}):\n${out}")
endif()

list(LENGTH files n)
list(LENGTH bad nbad)
if(nbad GREATER 0)
  list(JOIN bad "\n  " bad_list)
  message(FATAL_ERROR "format_check: ${nbad} of ${n} files differ from .clang-format:\n  ${bad_list}\n"
          "see the changes: ${CLANG_FORMAT} --dry-run <file>; apply them: "
          "git ls-files -z -- '*.c' '*.cpp' '*.h' '*.hpp' | xargs -0 ${CLANG_FORMAT} -i")
endif()
message("format_check: ${n} files agree with .clang-format")
