// Fuzzes the INI reader and the host's config validation: any bytes must give
// either a config or ConfigInvalid with "FILE:LINE: KEY:" messages, never a crash.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "config/HostConfig.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  try {
    protohost::host::HostConfig cfg = protohost::host::parseHostConfig("host.ini", "/etc/protohost", text);
    if (cfg.listeners.empty()) std::abort();  // a valid config always has a listener
  } catch (const protohost::host::ConfigInvalid& e) {
    for (const auto& m : e.errors())
      if (m.rfind("host.ini:", 0) != 0) std::abort();  // every message names file and line
  }
  return 0;
}
