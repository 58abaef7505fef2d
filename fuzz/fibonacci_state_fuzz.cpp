// Fuzzes the fibonacci state-file decoder: any content is either rejected with
// StateFormatError or decodes to a ceiling that survives an encode/decode round trip.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "StateFormat.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view content(reinterpret_cast<const char*>(data), size);
  using namespace protohost::plugins::fibonacci;
  try {
    std::uint64_t next = decodeState(content);
    if (decodeState(encodeState(next)) != next) std::abort();
  } catch (const StateFormatError&) {
  }
  return 0;
}
