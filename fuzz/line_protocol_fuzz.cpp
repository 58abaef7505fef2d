// Fuzzes LineProtocol framing: the first byte picks a chunk size and a limit;
// the lines delivered must equal a reference split of the same stream.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "protohost/LineProtocol.h"
#include "protohost/testing/MemoryTransport.h"

namespace {
class Collect : public protohost::LineProtocol {
 public:
  Collect(std::string delim, std::size_t max) : LineProtocol(std::move(delim), max) {}
  void lineReceived(std::string_view line) override { lines.emplace_back(line); }
  void lineLengthExceeded(std::size_t) override {
    exceeded = true;
    transport().loseConnection();
  }
  std::vector<std::string> lines;
  bool exceeded = false;
};
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  const std::size_t chunk = 1 + data[0] % 16;
  const std::size_t max = 1 + data[1] % 64;
  const std::string delim = (data[0] & 0x80) ? "\r\n" : "\n";
  std::string stream(reinterpret_cast<const char*>(data + 2), size - 2);

  protohost::testing::MemoryTransport t;
  Collect p(delim, max);
  t.connect(p);
  t.feed(p, stream, chunk);

  // Reference: split the whole stream at once.
  std::vector<std::string> expected;
  bool overflow = false;
  std::size_t pos = 0;
  for (;;) {
    std::size_t end = stream.find(delim, pos);
    const bool crStripped = delim == "\n";
    if (end == std::string::npos) {
      // The framer only sees the unterminated rest chunk by chunk; the CR allowance
      // depends on where a chunk ends, so only lengths beyond it are certain overflows.
      if (stream.size() - pos > max + delim.size() - 1 + (crStripped ? 1 : 0)) overflow = true;
      else if (stream.size() - pos > max + delim.size() - 1) return 0;  // chunking-dependent: not checked
      break;
    }
    std::string line = stream.substr(pos, end - pos);
    if (line.size() > max + (crStripped && !line.empty() && line.back() == '\r' ? 1 : 0)) {
      overflow = true;
      break;
    }
    if (delim == "\n" && !line.empty() && line.back() == '\r') line.pop_back();
    expected.push_back(line);
    pos = end + delim.size();
  }
  if (p.lines != expected || p.exceeded != overflow) std::abort();
  return 0;
}
