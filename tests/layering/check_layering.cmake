# The host's layers (docs/design-connection-layer.md §2): every `#include "..."`
# under host/src must name a folder its own folder may use. CMake's include
# paths already make an upward include fail to compile (host/CMakeLists.txt,
# tests layering_upward_include_fails); this also catches
# "../x/Y.h", a bare "Y.h" and an include of a folder beside one's own.
#
#   cmake -DSRC=<host/src> -P check_layering.cmake
#
# Fails (exit 1) listing every offending line.

cmake_minimum_required(VERSION 3.25)

# Which folders each folder may include (its own and those below it).
set(ALLOWED_base    base)
set(ALLOWED_reactor base reactor)
set(ALLOWED_net     base reactor net)
set(ALLOWED_plugin  base reactor net plugin)
set(ALLOWED_ops     base reactor ops)
set(ALLOWED_config  base net ops config)
set(ALLOWED_root    base reactor net plugin ops config)
set(LAYERS base reactor net plugin ops config)

if(NOT SRC)
  message(FATAL_ERROR "usage: cmake -DSRC=<host/src> -P check_layering.cmake")
endif()

get_filename_component(SRC "${SRC}" ABSOLUTE)
file(GLOB_RECURSE files RELATIVE "${SRC}" "${SRC}/*.h" "${SRC}/*.cpp")
set(bad "")
set(count 0)
foreach(f IN LISTS files)
  string(REGEX MATCH "^([^/]+)/" _ "${f}")
  if(CMAKE_MATCH_1)
    set(layer "${CMAKE_MATCH_1}")
  else()
    set(layer root)
  endif()
  if(NOT DEFINED ALLOWED_${layer})
    string(APPEND bad "  ${f}: folder ${layer}/ is not a known layer (add it to check_layering.cmake)\n")
    continue()
  endif()
  file(STRINGS "${SRC}/${f}" lines REGEX "^[ \t]*#[ \t]*include[ \t]*\"")
  foreach(line IN LISTS lines)
    string(REGEX MATCH "\"([^\"]*)\"" _ "${line}")
    set(inc "${CMAKE_MATCH_1}")
    math(EXPR count "${count} + 1")
    if(inc MATCHES "^protohost/")
      continue()  # the SDK: every layer may use it
    endif()
    if(inc MATCHES "\\.\\.")
      string(APPEND bad "  ${f}: #include \"${inc}\": relative paths may not leave the folder\n")
      continue()
    endif()
    if(NOT inc MATCHES "^([^/]+)/")
      if(layer STREQUAL "root" AND EXISTS "${SRC}/${inc}")
        continue()  # the composition root's own headers
      endif()
      string(APPEND bad "  ${f}: #include \"${inc}\": name the folder (e.g. \"reactor/EventLoop.h\")\n")
      continue()
    endif()
    set(target "${CMAKE_MATCH_1}")
    if(NOT target IN_LIST LAYERS)
      string(APPEND bad "  ${f}: #include \"${inc}\": ${target}/ is not a layer of host/src\n")
    elseif(NOT target IN_LIST ALLOWED_${layer})
      string(APPEND bad "  ${f}: #include \"${inc}\": ${layer} may not include ${target}/ (may: ${ALLOWED_${layer}})\n")
    endif()
  endforeach()
endforeach()

if(bad)
  message("layering violations in ${SRC}:\n${bad}")
  message(FATAL_ERROR "layering: upward or sideways includes")
endif()
list(LENGTH files nfiles)
message(STATUS "layering: ${count} includes in ${nfiles} files follow the layers")
