# One warning set for every target of this project, linked PRIVATE so that
# out-of-tree plugins built against the installed SDK never inherit -Werror.
if(NOT TARGET protohost_warnings)
  add_library(protohost_warnings INTERFACE)
  target_compile_options(protohost_warnings INTERFACE
    -Wall -Wextra -Wpedantic -Wshadow -Woverloaded-virtual -Wnon-virtual-dtor)
  if(PROTOHOST_WERROR)
    target_compile_options(protohost_warnings INTERFACE -Werror)
  endif()
endif()
