#include "net/ProxyHeader.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstring>
#include <iterator>
#include <vector>

namespace protohost::host {
namespace {

constexpr std::string_view kV1Prefix = "PROXY ";
constexpr char kV2Signature[12] = {'\r', '\n', '\r', '\n', '\0', '\r', '\n', 'Q', 'U', 'I', 'T', '\n'};
constexpr std::size_t kV2HeaderSize = 16;

// v2 families and transports (the 14th byte's high and low nibble).
constexpr unsigned kFamUnspec = 0, kFamInet = 1, kFamInet6 = 2, kFamUnix = 3;
constexpr unsigned kTransportStream = 1;

// Shortest address block of a PROXY command for each family (addresses + ports).
std::size_t minV2Block(unsigned family) {
  switch (family) {
    case kFamInet: return 2 * 4 + 2 * 2;
    case kFamInet6: return 2 * 16 + 2 * 2;
    case kFamUnix: return 2 * 108;
    default: return 0;
  }
}

// For error messages: a field as printable text, cut short.
std::string shown(std::string_view s) {
  std::string out;
  for (char c : s.substr(0, 48)) {
    auto u = static_cast<unsigned char>(c);
    if (u >= 0x20 && u < 0x7f && c != '"' && c != '\\') {
      out.push_back(c);
    } else {
      static const char* hex = "0123456789abcdef";
      out += "\\x";
      out.push_back(hex[u >> 4]);
      out.push_back(hex[u & 0xf]);
    }
  }
  return "\"" + out + (s.size() > 48 ? "...\"" : "\"");
}

bool isDigit(char c) { return c >= '0' && c <= '9'; }
bool isHex(char c) { return isDigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

// A decimal number without heading zeroes, at most @p max. @p partial: @p s may
// still grow, so only what no continuation can repair is refused.
bool decimalOk(std::string_view s, unsigned long max, bool partial) {
  if (s.empty()) return partial;
  if (s.size() > 1 && s[0] == '0') return false;
  unsigned long v = 0;
  for (char c : s) {
    if (!isDigit(c)) return false;
    v = v * 10 + static_cast<unsigned long>(c - '0');
    if (v > max) return false;
  }
  return true;
}

// Could @p s (a field still growing) be the start of a dotted-quad IPv4 address?
bool ipv4Prefix(std::string_view s) {
  int parts = 1;
  std::size_t start = 0;
  for (std::size_t i = 0; i <= s.size(); ++i) {
    if (i < s.size() && s[i] != '.') continue;
    std::string_view octet = s.substr(start, i - start);
    const bool last = i == s.size();
    if (!decimalOk(octet, 255, last) || (!last && octet.empty())) return false;
    if (!last && ++parts > 4) return false;
    start = i + 1;
  }
  return true;
}

// Could @p s be the start of an IPv6 address? Character set, length and the
// shape of "::" and groups; the complete field is checked with inet_pton.
bool ipv6Prefix(std::string_view s) {
  if (s.size() > INET6_ADDRSTRLEN - 1) return false;
  std::size_t group = 0;
  bool dotted = false;
  for (char c : s) {
    if (c == ':') {
      if (dotted) return false;
      group = 0;
      continue;
    }
    if (c == '.') dotted = true;
    else if (!isHex(c)) return false;
    if (!dotted && ++group > 4) return false;
  }
  auto firstDouble = s.find("::");
  return s.find(":::") == std::string_view::npos &&
         (firstDouble == std::string_view::npos || s.find("::", firstDouble + 1) == std::string_view::npos);
}

// Parses a complete address field of @p family into canonical text.
bool parseAddress(int family, std::string_view field, std::string& out) {
  if (field.empty() || field.size() >= INET6_ADDRSTRLEN) return false;
  char text[INET6_ADDRSTRLEN] = {0};
  std::memcpy(text, field.data(), field.size());
  unsigned char bytes[sizeof(in6_addr)];
  if (::inet_pton(family, text, bytes) != 1) return false;
  char canonical[INET6_ADDRSTRLEN] = {0};
  if (!::inet_ntop(family, bytes, canonical, sizeof canonical)) return false;
  out = canonical;
  return true;
}

std::string binaryAddress(int family, const unsigned char* bytes) {
  char text[INET6_ADDRSTRLEN] = {0};
  ::inet_ntop(family, bytes, text, sizeof text);
  return text;
}

std::uint16_t bigEndian16(const unsigned char* p) { return static_cast<std::uint16_t>((p[0] << 8) | p[1]); }

}  // namespace

ProxyHeaderParser::Result ProxyHeaderParser::feed(std::string_view bytes) {
  if (status_ != Status::NeedMore) return {status_, 0};
  std::size_t i = 0;
  while (i < bytes.size()) {
    std::size_t take = 1;
    if (mode_ == Mode::V1) {
      // Up to the next LF (where the line may end) or the length limit: a
      // prefix check of the longer text covers every shorter prefix too.
      const std::size_t room = kMaxV1Line - buf_.size();
      const std::size_t lf = bytes.find('\n', i);
      take = std::min(room, (lf == std::string_view::npos ? bytes.size() : lf + 1) - i);
    } else if (mode_ == Mode::V2 && buf_.size() >= kV2HeaderSize) {
      // The fixed header was checked; the address block is taken in one piece.
      const auto* h = reinterpret_cast<const unsigned char*>(buf_.data());
      take = std::min(kV2HeaderSize + bigEndian16(h + 14) - buf_.size(), bytes.size() - i);
    }
    buf_.append(bytes.substr(i, take));
    i += take;
    Status s = step();
    if (s != Status::NeedMore) {
      status_ = s;
      return {s, i};
    }
  }
  return {Status::NeedMore, bytes.size()};
}

ProxyHeaderParser::Status ProxyHeaderParser::fail(std::string why) {
  error_ = std::move(why);
  return Status::Error;
}

ProxyHeaderParser::Status ProxyHeaderParser::step() {
  if (mode_ == Mode::Detect) {
    // The first byte tells the versions apart: 'P' (v1) or CR (v2's signature).
    if (buf_[0] == 'P') mode_ = Mode::V1;
    else if (buf_[0] == '\r') mode_ = Mode::V2;
    else return fail("not a PROXY protocol header (starts with " + shown(buf_) + ")");
  }
  if (mode_ == Mode::V2) return checkV2();
  const bool complete = buf_.back() == '\n';
  Status s = checkV1(complete);
  if (s == Status::NeedMore && buf_.size() >= kMaxV1Line)
    return fail("v1: no CRLF within " + std::to_string(kMaxV1Line) + " bytes");
  return s;
}

ProxyHeaderParser::Status ProxyHeaderParser::checkV1(bool complete) {
  std::string_view line(buf_);
  if (line.substr(0, std::min(line.size(), kV1Prefix.size())) != kV1Prefix.substr(0, std::min(line.size(), kV1Prefix.size())))
    return fail("v1: expected \"PROXY \", got " + shown(line));
  // The line ends with CRLF and nowhere else: a lone CR or LF is an error.
  if (complete) line.remove_suffix(1);  // the LF
  const std::size_t cr = line.find_first_of("\r\n");  // a CR may only come last, right before the LF
  if (cr != std::string_view::npos && cr + 1 != line.size()) return fail("v1: CR or LF inside the line");
  if (complete && (line.empty() || line.back() != '\r')) return fail("v1: line ends with LF instead of CRLF");
  const bool ended = !line.empty() && line.back() == '\r';  // the last field is closed
  if (ended) line.remove_suffix(1);
  if (line.size() < kV1Prefix.size()) {
    if (ended) return fail("v1: line ends after " + shown(line));
    return Status::NeedMore;
  }
  line.remove_prefix(kV1Prefix.size());

  // Fields separated by exactly one space. A field is closed when a space
  // follows it or the line has ended; the last one may still be growing.
  std::vector<std::string_view> fields;
  for (std::size_t start = 0;;) {
    std::size_t sp = line.find(' ', start);
    fields.push_back(line.substr(start, sp == std::string_view::npos ? std::string_view::npos : sp - start));
    if (sp == std::string_view::npos) break;
    start = sp + 1;
  }
  auto closed = [&](std::size_t i) { return i + 1 < fields.size() || ended; };

  const std::string_view proto = fields[0];
  static constexpr std::string_view kProtos[] = {"TCP4", "TCP6", "UNKNOWN"};
  if (closed(0)) {
    if (std::find(std::begin(kProtos), std::end(kProtos), proto) == std::end(kProtos))
      return fail("v1: unknown protocol " + shown(proto) + " (TCP4, TCP6 or UNKNOWN)");
  } else {
    bool prefix = std::any_of(std::begin(kProtos), std::end(kProtos),
                              [&](std::string_view p) { return p.substr(0, std::min(p.size(), proto.size())) == proto; });
    if (!prefix || proto.size() > 7) return fail("v1: unknown protocol " + shown(proto) + " (TCP4, TCP6 or UNKNOWN)");
    return Status::NeedMore;
  }
  if (proto == "UNKNOWN") {
    // The spec: the receiver ignores anything before the CRLF and uses the real endpoints.
    if (!complete) return Status::NeedMore;
    header_ = ProxyHeader{};
    header_.version = 1;
    return Status::Done;
  }

  const bool v6 = proto == "TCP6";
  static const char* const kNames[] = {"protocol", "source address", "destination address", "source port",
                                       "destination port"};
  // Field by field, so the first bad one is reported however the bytes were split.
  for (std::size_t i = 1; i < std::min<std::size_t>(fields.size(), 5); ++i) {
    const std::string_view f = fields[i];
    const bool isClosed = closed(i);
    if (isClosed && f.empty()) return fail(std::string("v1: empty ") + kNames[i] + " (fields take exactly one space)");
    bool ok = true;
    std::string canonical;
    // A complete address passes the prefix check too (which also keeps a NUL
    // from ending inet_pton's string early) and then inet_pton.
    if (i <= 2) ok = (v6 ? ipv6Prefix(f) : ipv4Prefix(f)) && (!isClosed || parseAddress(v6 ? AF_INET6 : AF_INET, f, canonical));
    else ok = decimalOk(f, 65535, !isClosed);
    if (!ok) return fail(std::string("v1: bad ") + kNames[i] + " " + shown(f) + (i > 2 ? " (0-65535, no heading zeroes)" : v6 ? " (IPv6)" : " (IPv4)"));
  }
  if (fields.size() > 5) return fail("v1: unexpected text after the destination port: " + shown(fields[5]));
  if (ended && fields.size() < 5) return fail("v1: line ends after " + std::string(kNames[fields.size() - 1]) + ": missing fields");
  if (!complete) return Status::NeedMore;

  header_ = ProxyHeader{};
  header_.version = 1;
  header_.family = v6 ? ProxyHeader::Family::Inet6 : ProxyHeader::Family::Inet4;
  header_.hasAddresses = true;
  parseAddress(v6 ? AF_INET6 : AF_INET, fields[1], header_.source.address);
  parseAddress(v6 ? AF_INET6 : AF_INET, fields[2], header_.destination.address);
  header_.source.port = static_cast<std::uint16_t>(std::stoul(std::string(fields[3])));
  header_.destination.port = static_cast<std::uint16_t>(std::stoul(std::string(fields[4])));
  return Status::Done;
}

ProxyHeaderParser::Status ProxyHeaderParser::checkV2() {
  const std::size_t n = buf_.size();
  const auto* b = reinterpret_cast<const unsigned char*>(buf_.data());
  if (n <= sizeof kV2Signature) {
    if (std::memcmp(buf_.data(), kV2Signature, n) != 0) return fail("not a PROXY protocol header (starts with " + shown(buf_) + ")");
    return Status::NeedMore;
  }
  const unsigned version = b[12] >> 4, command = b[12] & 0xfu;
  if (version != 2) return fail("v2: unsupported version " + std::to_string(version));
  if (command > 1) return fail("v2: unknown command " + std::to_string(command) + " (LOCAL or PROXY)");
  if (n < 14) return Status::NeedMore;
  const unsigned family = b[13] >> 4, transport = b[13] & 0xfu;
  if (family > kFamUnix) return fail("v2: unknown address family " + std::to_string(family));
  if (transport > 2) return fail("v2: unknown transport " + std::to_string(transport));
  if (n < kV2HeaderSize) return Status::NeedMore;
  const std::size_t block = bigEndian16(b + 14);
  if (block > kMaxV2Payload)
    return fail("v2: address block of " + std::to_string(block) + " bytes exceeds the limit of " +
                std::to_string(kMaxV2Payload));
  const bool proxy = command == 1;
  if (proxy && block < minV2Block(family))
    return fail("v2: address block of " + std::to_string(block) + " bytes is too short for family " +
                std::to_string(family) + " (needs " + std::to_string(minV2Block(family)) + ")");
  if (n < kV2HeaderSize + block) return Status::NeedMore;

  // Complete. LOCAL ignores the block (family included); TLVs after the
  // addresses are skipped.
  header_ = ProxyHeader{};
  header_.version = 2;
  header_.local = !proxy;
  if (!proxy || family == kFamUnspec) return Status::Done;
  if (family == kFamUnix) {
    header_.family = ProxyHeader::Family::Unix;
    return Status::Done;
  }
  const bool v6 = family == kFamInet6;
  header_.family = v6 ? ProxyHeader::Family::Inet6 : ProxyHeader::Family::Inet4;
  // Only TCP is meaningful on a TCP listener; UNSPEC or DGRAM falls back to
  // the real endpoints, as the spec asks of receivers without that support.
  if (transport != kTransportStream) return Status::Done;
  const unsigned char* a = b + kV2HeaderSize;
  const std::size_t addr = v6 ? 16 : 4;
  header_.hasAddresses = true;
  header_.source.address = binaryAddress(v6 ? AF_INET6 : AF_INET, a);
  header_.destination.address = binaryAddress(v6 ? AF_INET6 : AF_INET, a + addr);
  header_.source.port = bigEndian16(a + 2 * addr);
  header_.destination.port = bigEndian16(a + 2 * addr + 2);
  return Status::Done;
}

}  // namespace protohost::host
