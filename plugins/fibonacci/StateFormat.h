#pragma once
// The fibonacci state file: one line,
//
//     protohost-fibonacci v1 next=12345 crc32=1a2b3c4d\n
//
// next = the reservation ceiling: the first answer number (k >= 1) a restarted
// host may hand out. crc32 (IEEE 802.3, lowercase hex) covers everything before
// " crc32=". Anything else (empty, truncated, trailing bytes, other version,
// bad checksum) is corrupt.

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>

namespace protohost::plugins::fibonacci {

inline constexpr std::string_view kStateMagic = "protohost-fibonacci";
inline constexpr int kStateVersion = 1;
/// A state file longer than this is corrupt (the real one is < 80 bytes).
inline constexpr std::size_t kMaxStateFileBytes = 256;

/// CRC-32 (IEEE, reflected, init and final xor 0xffffffff); "123456789" -> 0xcbf43926.
std::uint32_t crc32(std::string_view data);

/// The file content for ceiling @p next.
std::string encodeState(std::uint64_t next);

/// Why a state file's content was rejected.
class StateFormatError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// The ceiling stored in @p content; throws StateFormatError saying what is wrong.
std::uint64_t decodeState(std::string_view content);

}  // namespace protohost::plugins::fibonacci
