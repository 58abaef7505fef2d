// Fuzzes the fibonacci state-file decoder: any content is either rejected with
// StateFormatError or decodes to a ceiling that survives an encode/decode round trip
// (v1 and v2), and a write in place of the other slot supersedes it.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "StateFormat.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view content(reinterpret_cast<const char*>(data), size);
  using namespace protohost::plugins::fibonacci;
  try {
    const StateImage image = decodeStateImage(content);
    if (decodeState(encodeStateV1(image.next)) != image.next) std::abort();
    if (decodeState(encodeStateFile(image.gen, image.next)) != image.next) std::abort();
    // The next write in place (the other slot, one generation up) wins over the record it follows.
    if (image.version == kStateVersion && image.gen < UINT64_MAX && image.next < UINT64_MAX) {
      std::string written(content);
      const std::size_t slot = (image.slot + 1) % kSlotCount;
      written.replace(slot * kSlotBytes, kSlotBytes, encodeSlot(slot, image.gen + 1, image.next + 1));
      if (decodeState(written) != image.next + 1) std::abort();
    }
  } catch (const StateFormatError&) {
  }
  return 0;
}
