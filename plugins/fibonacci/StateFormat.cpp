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

namespace {

// One record line (no '\n'): magic, version, the version's fields, crc32.
struct Record {
  int version = 0;
  std::uint64_t slot = 0;
  std::uint64_t gen = 0;
  std::uint64_t next = 0;
};

std::uint64_t parseField(std::string_view& rest, std::string_view key, bool last) {
  const std::string prefix = std::string(key) + "=";
  if (rest.substr(0, prefix.size()) != prefix) throw StateFormatError("missing " + prefix);
  rest.remove_prefix(prefix.size());
  std::size_t digitsEnd = rest.find(' ');
  if (digitsEnd == std::string_view::npos)
    throw StateFormatError(last ? "truncated: missing crc32=" : "truncated after " + prefix);
  std::string_view digits = rest.substr(0, digitsEnd);
  std::uint64_t value = 0;
  auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
  if (digits.empty() || ec != std::errc() || ptr != digits.data() + digits.size() || digits.front() == '+')
    throw StateFormatError(std::string(key) + " is not a number (\"" + printable(digits) + "\")");
  rest.remove_prefix(digitsEnd + 1);
  return value;
}

Record parseRecord(std::string_view line) {
  if (line.substr(0, kStateMagic.size()) != kStateMagic || line.size() == kStateMagic.size() ||
      line[kStateMagic.size()] != ' ')
    throw StateFormatError("not a protohost-fibonacci state file (starts with \"" + printable(line) + "\")");
  std::string_view rest = line.substr(kStateMagic.size() + 1);
  if (rest.substr(0, 1) != "v") throw StateFormatError("missing format version");
  std::size_t sp = rest.find(' ');
  std::string_view version = rest.substr(1, sp == std::string_view::npos ? std::string_view::npos : sp - 1);
  Record r;
  if (version == "1") {
    r.version = 1;
  } else if (version == "2") {
    r.version = 2;
  } else {
    throw StateFormatError("unsupported format version \"" + printable(version) + "\" (this plugin reads v1 and v" +
                           std::to_string(kStateVersion) + ")");
  }
  if (sp == std::string_view::npos) throw StateFormatError("truncated after the version");
  rest.remove_prefix(sp + 1);
  if (r.version == 2) {
    r.slot = parseField(rest, "slot", false);
    r.gen = parseField(rest, "gen", false);
  }
  r.next = parseField(rest, "next", true);

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
  if (r.next == 0) throw StateFormatError("next=0 is not a valid answer number (they start at 1)");
  return r;
}

std::string withCrc(const std::string& body) { return body + " crc32=" + hex8(crc32(body)) + "\n"; }

StateImage decodeV1(std::string_view content) {
  if (content.back() != '\n') throw StateFormatError("truncated: no final newline (\"" + printable(content) + "\")");
  std::string_view line = content.substr(0, content.size() - 1);
  if (line.find('\n') != std::string_view::npos) throw StateFormatError("more than one line");
  const Record r = parseRecord(line);
  StateImage image;
  image.version = 1;
  image.next = r.next;
  return image;
}

// Empty when the slot holds a valid record (stored in @p r), "unused" when it is all zero bytes, else why not.
std::string decodeSlot(std::string_view bytes, std::size_t slot, Record& r) {
  if (bytes.find_first_not_of('\0') == std::string_view::npos) return "unused";
  const std::size_t eol = bytes.find('\n');
  if (eol == std::string_view::npos) return "no record line (\"" + printable(bytes) + "\")";
  if (bytes.substr(eol + 1).find_first_not_of('\0') != std::string_view::npos)
    return "bytes other than zero after the record";
  try {
    r = parseRecord(bytes.substr(0, eol));
  } catch (const StateFormatError& e) {
    // Another version with a valid checksum is not damage: refuse the whole file.
    if (std::string_view(e.what()).find("unsupported format version") != std::string_view::npos)
      throw StateFormatError("slot " + std::to_string(slot) + ": " + e.what());
    return e.what();
  }
  if (r.version != 2) return "a format version 1 record in a version 2 slot";
  if (r.slot != slot) return "the record says slot=" + std::to_string(r.slot);
  return "";
}

StateImage decodeV2(std::string_view content) {
  StateImage image;
  bool found = false;
  for (std::size_t i = 0; i < kSlotCount; ++i) {
    Record r;
    std::string why = decodeSlot(content.substr(i * kSlotBytes, kSlotBytes), i, r);
    if (!why.empty()) {
      if (why != "unused") image.damaged[i] = why;
      continue;
    }
    // The highest generation wins; equal generations (never written so) take the higher ceiling.
    if (!found || r.gen > image.gen || (r.gen == image.gen && r.next > image.next)) {
      image.gen = r.gen;
      image.next = r.next;
      image.slot = i;
    }
    found = true;
  }
  if (!found) {
    std::string why = "no valid record in either slot";
    for (std::size_t i = 0; i < kSlotCount; ++i)
      why += "; slot " + std::to_string(i) + ": " + (image.damaged[i].empty() ? "unused" : image.damaged[i]);
    throw StateFormatError(why);
  }
  return image;
}

}  // namespace

std::string encodeSlot(std::size_t slot, std::uint64_t gen, std::uint64_t next) {
  std::string line = withCrc(std::string(kStateMagic) + " v" + std::to_string(kStateVersion) + " slot=" +
                             std::to_string(slot) + " gen=" + std::to_string(gen) + " next=" + std::to_string(next));
  line.resize(kSlotBytes, '\0');
  return line;
}

std::string encodeStateFile(std::uint64_t gen, std::uint64_t next) {
  std::string file = encodeSlot(0, gen, next);
  file.resize(kStateFileBytes, '\0');
  return file;
}

std::string encodeStateV1(std::uint64_t next) {
  return withCrc(std::string(kStateMagic) + " v1 next=" + std::to_string(next));
}

StateImage decodeStateImage(std::string_view content) {
  if (content.empty()) throw StateFormatError("file is empty");
  if (content.size() == kStateFileBytes) return decodeV2(content);
  if (content.substr(0, kStateMagic.size() + 4) == std::string(kStateMagic) + " v2 ")
    throw StateFormatError(std::string(content.size() < kStateFileBytes ? "truncated: " : "") +
                           "a format version 2 state file is " + std::to_string(kStateFileBytes) +
                           " bytes, this one is " + std::to_string(content.size()));
  if (content.size() > kMaxV1StateBytes)
    throw StateFormatError("file is " + std::to_string(content.size()) + " bytes, not a state record (a version 2 " +
                           "state file is " + std::to_string(kStateFileBytes) + ")");
  if (content.substr(0, kStateMagic.size()) != kStateMagic || content.size() == kStateMagic.size() ||
      content[kStateMagic.size()] != ' ')
    throw StateFormatError("not a protohost-fibonacci state file (starts with \"" + printable(content) + "\")");
  return decodeV1(content);
}

}  // namespace protohost::plugins::fibonacci
