# protohost_add_plugin(<name> SOURCES <files...> [OUTPUT_DIRECTORY <dir>])
#
# Builds <name>.so the way the host expects a plugin: a MODULE library with no
# "lib" prefix, hidden visibility (only the factory alias and the ABI record are
# exported) and no undefined symbols, so a missing symbol fails at link time and
# not inside the running host. With GCC, -fno-gnu-unique: libstdc++'s inline
# template statics (std::make_shared's tag, std::to_chars' digit tables, ...)
# would otherwise be STB_GNU_UNIQUE symbols, which make the dynamic loader mark
# the plugin NODELETE, so a plugin replaced on disk and reloaded would stay
# mapped until the host exits. (Clang never emits them.) Installed with the SDK
# for out-of-tree plugins.
function(protohost_add_plugin name)
  cmake_parse_arguments(ARG "" "OUTPUT_DIRECTORY" "SOURCES" ${ARGN})
  add_library(${name} MODULE ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE protohost::sdk)
  set_target_properties(${name} PROPERTIES
    PREFIX ""
    CXX_VISIBILITY_PRESET hidden
    VISIBILITY_INLINES_HIDDEN ON)
  target_compile_options(${name} PRIVATE $<$<CXX_COMPILER_ID:GNU>:-fno-gnu-unique>)
  target_link_options(${name} PRIVATE -Wl,--no-undefined)
  if(ARG_OUTPUT_DIRECTORY)
    set_target_properties(${name} PROPERTIES LIBRARY_OUTPUT_DIRECTORY ${ARG_OUTPUT_DIRECTORY})
  elseif(DEFINED PROTOHOST_PLUGIN_OUTPUT_DIR)
    set_target_properties(${name} PROPERTIES LIBRARY_OUTPUT_DIRECTORY ${PROTOHOST_PLUGIN_OUTPUT_DIR})
  endif()
endfunction()
