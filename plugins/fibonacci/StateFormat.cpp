#include "StateFormat.h"

#include <array>
#include <charconv>

namespace protohost::plugins::fibonacci {

namespace {

constexpr std::array<std::uint32_t, 256> makeCrcTable() {
  std::array<std::uint32_t, 256> table{};
  for (std::uint32_t i = 0; i < 256; ++i) {
    std::uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1u) ? 0xedb88320u ^ (c >> 1) : c >> 1;
    table[i] = c;
  }
  return table;
}
constexpr auto kCrcTable = makeCrcTable();

std::string hex8(std::uint32_t v) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string s(8, '0');
  for (int i = 7; i >= 0; --i) {
    s[static_cast<std::size_t>(i)] = kDigits[v & 0xfu];
    v >>= 4;
  }
  return s;
}

std::string printable(std::string_view s) {
  std::string out;
  for (char c : s.substr(0, 60)) {
    unsigned char u = static_cast<unsigned char>(c);
    if (u >= 0x20 && u < 0x7f) {
      out.push_back(c);
    } else {
      out += "\\x" + hex8(u).substr(6);
    }
  }
  if (s.size() > 60) out += "...";
  return out;
}

}  // namespace

std::uint32_t crc32(std::string_view data) {
  std::uint32_t c = 0xffffffffu;
  for (char ch : data) c = kCrcTable[(c ^ static_cast<unsigned char>(ch)) & 0xffu] ^ (c >> 8);
  return c ^ 0xffffffffu;
}

std::string encodeState(std::uint64_t next) {
  std::string body = std::string(kStateMagic) + " v" + std::to_string(kStateVersion) + " next=" + std::to_string(next);
  return body + " crc32=" + hex8(crc32(body)) + "\n";
}

std::uint64_t decodeState(std::string_view content) {
  if (content.empty()) throw StateFormatError("file is empty");
  if (content.size() > kMaxStateFileBytes)
    throw StateFormatError("file is " + std::to_string(content.size()) + " bytes, not a state record");
  if (content.substr(0, kStateMagic.size()) != kStateMagic || content.size() == kStateMagic.size() ||
      content[kStateMagic.size()] != ' ')
    throw StateFormatError("not a protohost-fibonacci state file (starts with \"" + printable(content) + "\")");
  if (content.back() != '\n') throw StateFormatError("truncated: no final newline (\"" + printable(content) + "\")");
  std::string_view line = content.substr(0, content.size() - 1);
  if (line.find('\n') != std::string_view::npos) throw StateFormatError("more than one line");

  std::string_view rest = line.substr(kStateMagic.size() + 1);
  if (rest.substr(0, 1) != "v") throw StateFormatError("missing format version");
  std::size_t sp = rest.find(' ');
  std::string_view version = rest.substr(1, sp == std::string_view::npos ? std::string_view::npos : sp - 1);
  if (version != std::to_string(kStateVersion))
    throw StateFormatError("unsupported format version \"" + printable(version) + "\" (this plugin reads v" +
                           std::to_string(kStateVersion) + ")");
  if (sp == std::string_view::npos) throw StateFormatError("truncated after the version");
  rest.remove_prefix(sp + 1);

  constexpr std::string_view kNext = "next=";
  if (rest.substr(0, kNext.size()) != kNext) throw StateFormatError("missing next=");
  rest.remove_prefix(kNext.size());
  std::size_t digitsEnd = rest.find(' ');
  if (digitsEnd == std::string_view::npos) throw StateFormatError("truncated: missing crc32=");
  std::string_view digits = rest.substr(0, digitsEnd);
  std::uint64_t next = 0;
  auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), next);
  if (digits.empty() || ec != std::errc() || ptr != digits.data() + digits.size() || digits.front() == '+')
    throw StateFormatError("next is not a number (\"" + printable(digits) + "\")");
  rest.remove_prefix(digitsEnd + 1);

  constexpr std::string_view kCrc = "crc32=";
  if (rest.substr(0, kCrc.size()) != kCrc) throw StateFormatError("missing crc32=");
  rest.remove_prefix(kCrc.size());
  if (rest.size() != 8) throw StateFormatError("crc32 must be 8 hex digits (\"" + printable(rest) + "\")");
  std::uint32_t stored = 0;
  auto [p2, ec2] = std::from_chars(rest.data(), rest.data() + rest.size(), stored, 16);
  if (ec2 != std::errc() || p2 != rest.data() + rest.size() || hex8(stored) != rest)
    throw StateFormatError("crc32 must be 8 lowercase hex digits (\"" + printable(rest) + "\")");
  std::string_view body = line.substr(0, line.size() - kCrc.size() - 8 - 1);
  std::uint32_t actual = crc32(body);
  if (actual != stored)
    throw StateFormatError("checksum mismatch (stored crc32=" + hex8(stored) + ", content has " + hex8(actual) + ")");
  if (next == 0) throw StateFormatError("next=0 is not a valid answer number (they start at 1)");
  return next;
}

}  // namespace protohost::plugins::fibonacci
