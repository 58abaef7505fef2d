#pragma once
// Feeds the same input to a protocol once per chunk size, from 1 byte up to
// (by default) input.size() + 1, each time on a fresh protocol and a fresh
// MemoryTransport, because real peers split data anywhere. Standard library and
// SDK only (no test framework): the check callback receives the chunk size so
// the test can name it in its own assertions (e.g. with SCOPED_TRACE).
//
//     chunkfeeder::forEveryChunkSize(
//         "a\r\nb\n",
//         [] { return std::make_unique<MyLineProtocol>(); },
//         [](std::size_t chunk, MyLineProtocol& p, protohost::testing::MemoryTransport& t) {
//           SCOPED_TRACE("chunk size " + std::to_string(chunk));
//           EXPECT_EQ(p.lines, (std::vector<std::string>{"a", "b"}));
//         });

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "protohost/Protocol.h"
#include "protohost/testing/MemoryTransport.h"

namespace chunkfeeder {

/// @p input cut into consecutive pieces of @p chunk bytes (the last may be shorter).
inline std::vector<std::string_view> split(std::string_view input, std::size_t chunk) {
  if (chunk == 0) chunk = 1;
  std::vector<std::string_view> pieces;
  while (!input.empty()) {
    std::size_t n = chunk < input.size() ? chunk : input.size();
    pieces.push_back(input.substr(0, n));
    input.remove_prefix(n);
  }
  return pieces;
}

/// For chunk = 1 .. @p maxChunk (0: input.size() + 1, so one run also gets the
/// whole input in one call): builds a protocol with @p make (returning a
/// std::unique_ptr to a Protocol subclass), connects it to a fresh
/// MemoryTransport, delivers @p input with MemoryTransport::feed in pieces of
/// that size (which stops once the protocol closes, as the host does), then
/// calls check(chunk, protocol, transport). Returns the number of runs.
template <class Make, class Check>
std::size_t forEveryChunkSize(std::string_view input, Make make, Check check, std::size_t maxChunk = 0) {
  if (maxChunk == 0) maxChunk = input.size() + 1;
  std::size_t runs = 0;
  for (std::size_t chunk = 1; chunk <= maxChunk; ++chunk) {
    protohost::testing::MemoryTransport transport;
    auto protocol = make();
    static_assert(std::is_base_of_v<protohost::Protocol, std::remove_reference_t<decltype(*protocol)>>,
                  "make() must return a pointer to a protohost::Protocol");
    transport.connect(*protocol);
    transport.feed(*protocol, input, chunk);
    check(chunk, *protocol, transport);
    ++runs;
  }
  return runs;
}

/// Like forEveryChunkSize, but for a protocol whose output alone matters:
/// returns, per chunk size (index 0 = chunk size 1), what it wrote.
template <class Make>
std::vector<std::string> outputsForEveryChunkSize(std::string_view input, Make make, std::size_t maxChunk = 0) {
  std::vector<std::string> outputs;
  forEveryChunkSize(
      input, std::move(make),
      [&](std::size_t, auto&, protohost::testing::MemoryTransport& transport) {
        outputs.push_back(transport.value());
      },
      maxChunk);
  return outputs;
}

}  // namespace chunkfeeder
