find_package(EXPAT REQUIRED)
set(_weblog ${PROJECT_SOURCE_DIR}/plugins/weblog)
protohost_fuzz_target(weblog_hit
  SOURCES ${_weblog}/ClfParser.cpp ${_weblog}/XmlEscape.cpp ${_weblog}/HitFormatter.cpp
  LIBS protohost::sdk EXPAT::EXPAT)
target_include_directories(weblog_hit_replay PRIVATE ${_weblog})
if(TARGET weblog_hit_fuzzer)
  target_include_directories(weblog_hit_fuzzer PRIVATE ${_weblog})
endif()
