# Warnings as errors for mqkit's own code only (never for dependencies' headers).
function(mqkit_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wshadow -Wconversion
    -Wno-sign-conversion -Werror)
endfunction()
