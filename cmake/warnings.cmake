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
  if(SMARTFUNNEL_SANITIZE AND NOT MSVC)
    target_compile_options(${target} PRIVATE -fsanitize=address,undefined -fno-sanitize-recover=all
      -fno-omit-frame-pointer)
    target_link_options(${target} PRIVATE -fsanitize=address,undefined)
  endif()
endfunction()
