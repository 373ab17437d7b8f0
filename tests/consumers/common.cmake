# Shared by the consumer projects: the one consumer program, and the checks that an embedded
# (add_subdirectory / FetchContent) smartfunnel stayed a library and nothing more.

set(SMARTFUNNEL_CONSUMER_MAIN ${CMAKE_CURRENT_LIST_DIR}/main.cpp)

# The consumer program, linked to smartfunnel::smartfunnel. `version` is the smartfunnel version
# CMake reported; main.cpp checks it against version.hpp.
function(smartfunnel_consumer_add_program version)
  if(NOT TARGET smartfunnel::smartfunnel)
    message(FATAL_ERROR "consumer: smartfunnel::smartfunnel is not defined")
  endif()
  add_executable(consumer ${SMARTFUNNEL_CONSUMER_MAIN})
  # No target_compile_features here: C++20 must come from smartfunnel's usage requirements.
  target_link_libraries(consumer PRIVATE smartfunnel::smartfunnel)
  target_compile_definitions(consumer PRIVATE SMARTFUNNEL_CONSUMER_EXPECTED_VERSION="${version}")
endfunction()

# After add_subdirectory/FetchContent of the smartfunnel source tree at `source_dir`: the target
# must be the real library (not an imported one), and smartfunnel's own tests and benches, whose
# options default on only when smartfunnel is the top-level project, must not have been added.
function(smartfunnel_consumer_check_embedded source_dir)
  get_target_property(aliased smartfunnel::smartfunnel ALIASED_TARGET)
  if(NOT aliased STREQUAL "smartfunnel")
    message(FATAL_ERROR "consumer: smartfunnel::smartfunnel should alias the smartfunnel target built "
                        "from source, but ALIASED_TARGET is '${aliased}'")
  endif()
  foreach(option IN ITEMS SMARTFUNNEL_BUILD_TESTS SMARTFUNNEL_BUILD_BENCHES SMARTFUNNEL_BUILD_PYTHON)
    if(${option})
      message(FATAL_ERROR "consumer: ${option} is ON in an embedded smartfunnel; it must default OFF "
                          "when smartfunnel is not the top-level project")
    endif()
  endforeach()
  get_property(subdirs DIRECTORY ${source_dir} PROPERTY SUBDIRECTORIES)
  foreach(unwanted IN ITEMS tests benches bindings)
    if("${source_dir}/${unwanted}" IN_LIST subdirs)
      message(FATAL_ERROR "consumer: the embedded smartfunnel added its ${unwanted}/ directory")
    endif()
  endforeach()
  if(TARGET smartfunnel_tests)
    message(FATAL_ERROR "consumer: the embedded smartfunnel defined its test target smartfunnel_tests")
  endif()
  message(STATUS "consumer: embedded smartfunnel builds the library only (subdirectories: ${subdirs})")
endfunction()

# The project version smartfunnel's project() set in its own directory scope.
function(smartfunnel_consumer_embedded_version source_dir out_var)
  get_directory_property(version DIRECTORY ${source_dir} DEFINITION smartfunnel_VERSION)
  if(NOT version)
    message(FATAL_ERROR "consumer: smartfunnel_VERSION is not set in ${source_dir}")
  endif()
  set(${out_var} ${version} PARENT_SCOPE)
endfunction()
