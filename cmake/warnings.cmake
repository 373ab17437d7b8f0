# Project-wide warning and sanitizer flags, applied to smartfunnel's own targets only.
function(smartfunnel_set_warnings target)
  if(MSVC)
    target_compile_options(${target} PRIVATE /W4 $<$<BOOL:${SMARTFUNNEL_WERROR}>:/WX>)
  else()
    target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wshadow -Wconversion
      -Wno-sign-conversion $<$<BOOL:${SMARTFUNNEL_WERROR}>:-Werror>)
    # GCC 12 reports -Wrestrict false positives inside std::string concatenation at -O2/-O3
    # (GCC bug 105329); the code it points at is libstdc++'s own.
    if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU" AND CMAKE_CXX_COMPILER_VERSION VERSION_LESS 13)
      target_compile_options(${target} PRIVATE -Wno-restrict)
    endif()
  endif()
endfunction()

function(smartfunnel_sanitize target)
  if(MSVC)
    return()
  endif()
  if(SMARTFUNNEL_SANITIZE AND SMARTFUNNEL_SANITIZE_THREAD)
    message(FATAL_ERROR "SMARTFUNNEL_SANITIZE (ASan+UBSan) and SMARTFUNNEL_SANITIZE_THREAD (TSan) cannot be combined")
  endif()
  if(SMARTFUNNEL_SANITIZE_THREAD)
    target_compile_options(${target} PRIVATE -fsanitize=thread -fno-omit-frame-pointer)
    target_link_options(${target} PRIVATE -fsanitize=thread)
  endif()
  if(SMARTFUNNEL_FUZZ)
    # Coverage instrumentation for libFuzzer (clang): the fuzz binaries link -fsanitize=fuzzer.
    target_compile_options(${target} PRIVATE -fsanitize=fuzzer-no-link,address,undefined
      -fno-sanitize-recover=all -fno-omit-frame-pointer)
    target_link_options(${target} PRIVATE -fsanitize=address,undefined)
  endif()
  if(SMARTFUNNEL_SANITIZE)
    target_compile_options(${target} PRIVATE -fsanitize=address,undefined -fno-sanitize-recover=all
      -fno-omit-frame-pointer)
    target_link_options(${target} PRIVATE -fsanitize=address,undefined)
  endif()
endfunction()
