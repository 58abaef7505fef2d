#pragma once
// The fibonacci state file.
//
// Format v2 (written since issue 10's single-fsync commit): exactly 8192 bytes,
// two 4096-byte slots. A slot is unused (all zero bytes) or holds one record
// line followed by zero bytes up to the slot's end:
//
//     protohost-fibonacci v2 slot=0 gen=17 next=12345 crc32=1a2b3c4d\n
//
// slot = the slot's own number (0 or 1), gen = the write's generation (every
// write takes the highest generation in the file + 1), next = the reservation
// ceiling: the first answer number (k >= 1) a restarted host may hand out.
// crc32 (IEEE 802.3, lowercase hex) covers everything before " crc32=". The
// file's state is the valid slot with the highest generation. The writer
// overwrites in place the slot that does NOT hold the current record (pwrite
// of the whole slot + fdatasync), so a torn write spoils at most that slot.
// A slot that is neither unused nor a valid record is damaged; a file with no
// valid slot, of another size, or with a slot of another version is corrupt.
//
// Format v1 (read, then converted to v2 at start): one line,
//
//     protohost-fibonacci v1 next=12345 crc32=1a2b3c4d\n
//
// with the same meaning of next and crc32. Anything else (empty, truncated,
// trailing bytes, other version, bad checksum) is corrupt.

#include <array>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>

namespace protohost::plugins::fibonacci {

inline constexpr std::string_view kStateMagic = "protohost-fibonacci";
inline constexpr int kStateVersion = 2;
inline constexpr std::size_t kSlotBytes = 4096;  ///< one page, one filesystem block: slots never share a sector
inline constexpr std::size_t kSlotCount = 2;
inline constexpr std::size_t kStateFileBytes = kSlotBytes * kSlotCount;
/// The largest file read: a longer one is corrupt.
inline constexpr std::size_t kMaxStateFileBytes = kStateFileBytes;
/// A v1 file longer than this is corrupt (the real one is < 80 bytes).
inline constexpr std::size_t kMaxV1StateBytes = 256;

/// CRC-32 (IEEE, reflected, init and final xor 0xffffffff); "123456789" -> 0xcbf43926.
std::uint32_t crc32(std::string_view data);

/// One v2 slot (kSlotBytes bytes): the record, then zero bytes.
std::string encodeSlot(std::size_t slot, std::uint64_t gen, std::uint64_t next);
/// A whole v2 file (kStateFileBytes): the record in slot 0, slot 1 unused.
std::string encodeStateFile(std::uint64_t gen, std::uint64_t next);
/// The v1 one-line file for ceiling @p next (tests, and files of older versions).
std::string encodeStateV1(std::uint64_t next);

/// Why a state file's content was rejected.
class StateFormatError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// What a state file holds.
struct StateImage {
  int version = kStateVersion;  ///< 1: a v1 line (gen 0, slot 0); 2: the slot file
  std::uint64_t next = 1;       ///< the ceiling of the current record
  std::uint64_t gen = 0;        ///< its generation
  std::size_t slot = 0;         ///< the slot that holds it
  /// v2: per slot, empty when the slot is valid or unused, else why it is damaged.
  std::array<std::string, kSlotCount> damaged;
};

/// Decodes a v1 or v2 file; throws StateFormatError saying what is wrong when
/// no record can be trusted (one damaged v2 slot is not an error: see damaged).
StateImage decodeStateImage(std::string_view content);

/// The ceiling stored in @p content (v1 or v2); throws StateFormatError.
inline std::uint64_t decodeState(std::string_view content) { return decodeStateImage(content).next; }

}  // namespace protohost::plugins::fibonacci
