# Project-wide warning and sanitizer flags, applied to smartfunnel's own targets only.
function(smartfunnel_set_warnings target)
  if(MSVC)
    target_compile_options(${target} PRIVATE /W4 $<$<BOOL:${SMARTFUNNEL_WERROR}>:/WX>)
  else()
    target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wshadow -Wconversion
      -Wno-sign-conversion $<$<BOOL:${SMARTFUNNEL_WERROR}>:-Werror>)
  endif()
endfunction()

function(smartfunnel_sanitize target)
  if(SMARTFUNNEL_SANITIZE AND NOT MSVC)
    target_compile_options(${target} PRIVATE -fsanitize=address,undefined -fno-sanitize-recover=all
      -fno-omit-frame-pointer)
    target_link_options(${target} PRIVATE -fsanitize=address,undefined)
  endif()
endfunction()
