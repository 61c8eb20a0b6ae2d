# Warnings as errors for mqkit's own code only (never for dependencies' headers).
# Off by default so that a user's Release build never fails on a compiler's false
# positive; developers build with -DMQKIT_WERROR=ON, and .ci/run fails on any warning
# in the README's Release build's log. Sanitizer builds keep it off, because instrumented code makes gcc report
# false "maybe uninitialized" warnings inside the standard library.
option(MQKIT_WERROR "Treat warnings in mqkit's own code as errors (CI and developers turn it on)" OFF)
function(mqkit_warnings target)
  # -Wno-missing-field-initializers: C++20 designated initializers that leave
  # defaulted members out are the idiom for option structs, not a mistake.
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wshadow -Wconversion
    -Wno-sign-conversion -Wno-missing-field-initializers $<$<BOOL:${MQKIT_WERROR}>:-Werror>)
  # gcc 12 at -O3 reports -Wrestrict inside libstdc++'s own `"literal" + std::string`
  # (gcc PR 105329): a false positive in the standard library's
  # inlined code, not in ours. Only that warning, only on gcc 12.
  if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU" AND CMAKE_CXX_COMPILER_VERSION VERSION_GREATER_EQUAL 12
     AND CMAKE_CXX_COMPILER_VERSION VERSION_LESS 13)
    target_compile_options(${target} PRIVATE -Wno-restrict)
  endif()
endfunction()
