// Fuzzes the PROXY protocol header parser (host/src/ProxyHeader.h): the first
// byte picks a chunk size, the rest is what a client sends. Fed whole and fed
// in chunks, the parser must reach the same decision, consume the same header
// and report the same addresses; a header is never longer than the spec allows
// and an error always says why.
#include <arpa/inet.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "net/ProxyHeader.h"

namespace {
using protohost::host::ProxyHeader;
using protohost::host::ProxyHeaderParser;

struct Outcome {
  ProxyHeaderParser::Status status = ProxyHeaderParser::Status::NeedMore;
  std::size_t headerBytes = 0;  // Done: offset in the stream where the payload starts
  std::size_t decidedAt = 0;    // stream bytes offered up to and including the deciding piece
  ProxyHeader header;
  std::string error;
};

Outcome run(std::string_view stream, std::size_t chunk) {
  ProxyHeaderParser parser;
  Outcome out;
  std::size_t offset = 0;
  while (offset < stream.size()) {
    std::string_view piece = stream.substr(offset, chunk);
    ProxyHeaderParser::Result r = parser.feed(piece);
    if (r.consumed > piece.size()) std::abort();
    if (r.status != ProxyHeaderParser::Status::NeedMore) {
      out.status = r.status;
      out.headerBytes = offset + r.consumed;
      out.decidedAt = offset + piece.size();
      break;
    }
    if (r.consumed != piece.size()) std::abort();
    offset += piece.size();
  }
  out.header = parser.header();
  out.error = parser.error();
  return out;
}

bool validIp(const std::string& text, int family) {
  unsigned char buf[16];
  return ::inet_pton(family, text.c_str(), buf) == 1;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const std::size_t chunk = 1 + data[0] % 32;
  const std::string_view stream(reinterpret_cast<const char*>(data + 1), size - 1);

  const Outcome whole = run(stream, stream.size() ? stream.size() : 1);
  const Outcome split = run(stream, chunk);
  const Outcome bytewise = run(stream, 1);
  // Fed a byte at a time, the deciding byte is known exactly; any other split
  // must decide in the piece that holds it (an invalid prefix fails at once).
  const std::size_t piece = (bytewise.decidedAt + chunk - 1) / chunk * chunk;
  if (split.status != ProxyHeaderParser::Status::NeedMore && split.decidedAt != std::min(piece, stream.size())) std::abort();
  for (const Outcome* o : {&split, &bytewise}) {
    if (o->status != whole.status) std::abort();
    if (o->status == ProxyHeaderParser::Status::Done) {
      if (o->headerBytes != whole.headerBytes) std::abort();
      const ProxyHeader &a = o->header, &b = whole.header;
      if (a.version != b.version || a.family != b.family || a.local != b.local || a.hasAddresses != b.hasAddresses ||
          a.source.address != b.source.address || a.source.port != b.source.port ||
          a.destination.address != b.destination.address || a.destination.port != b.destination.port)
        std::abort();
    }
    if (o->status == ProxyHeaderParser::Status::Error && o->error.empty()) std::abort();
  }
  if (whole.status == ProxyHeaderParser::Status::Done) {
    const ProxyHeader& h = whole.header;
    if (h.version == 1 && whole.headerBytes > ProxyHeaderParser::kMaxV1Line) std::abort();
    if (h.version == 2 && whole.headerBytes > 16 + ProxyHeaderParser::kMaxV2Payload) std::abort();
    if (h.version != 1 && h.version != 2) std::abort();
    if (h.hasAddresses) {
      const int family = h.family == ProxyHeader::Family::Inet4 ? AF_INET : h.family == ProxyHeader::Family::Inet6 ? AF_INET6 : -1;
      if (family < 0 || !validIp(h.source.address, family) || !validIp(h.destination.address, family)) std::abort();
    }
    if (h.local && h.hasAddresses) std::abort();
  }
  return 0;
}
