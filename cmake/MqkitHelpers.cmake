# Warnings as errors for mqkit's own code only (never for dependencies' headers).
# Off by default so that a user's Release build never fails on a compiler's false
# positive; CI and developers build with -DMQKIT_WERROR=ON. Sanitizer builds keep it off:
# false "maybe uninitialized" warnings inside the standard library.
option(MQKIT_WERROR "Treat warnings in mqkit's own code as errors (CI and developers turn it on)" OFF)
function(mqkit_warnings target)
  # -Wno-missing-field-initializers: C++20 designated initializers that leave
  # defaulted members out are the idiom for option structs, not a mistake.
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wshadow -Wconversion
    -Wno-sign-conversion -Wno-missing-field-initializers $<$<BOOL:${MQKIT_WERROR}>:-Werror>)
endfunction()
