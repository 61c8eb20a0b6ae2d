# Warnings as errors for mqkit's own code only (never for dependencies' headers).
# Sanitizer builds turn MQKIT_WERROR off: instrumented code makes gcc report
# false "maybe uninitialized" warnings inside the standard library.
option(MQKIT_WERROR "Treat warnings in mqkit's own code as errors" ON)
function(mqkit_warnings target)
  # -Wno-missing-field-initializers: C++20 designated initializers that leave
  # defaulted members out are the idiom for option structs, not a mistake.
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wshadow -Wconversion
    -Wno-sign-conversion -Wno-missing-field-initializers $<$<BOOL:${MQKIT_WERROR}>:-Werror>)
endfunction()
