#pragma once
// Reads a plugin's ABI record (protohost_plugin_info) from the bytes of its
// ELF file, without loading it: dlopen runs the plugin's static constructors,
// so the record must be checked before that (PluginLibrary::load). Also lists
// the file's GNU "unique" dynamic symbols, which make the dynamic loader mark
// the library NODELETE: it would never be unmapped.
//
// The file is untrusted: every offset, size and count is checked against the
// file before it is used, so a truncated or malformed file is a refusal with a
// reason, never a read outside it. ELF64, this machine and byte order only.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "protohost/PluginAbi.h"

namespace protohost::host {

/// Random-access reads from a file image.
class ByteSource {
 public:
  virtual ~ByteSource() = default;
  virtual std::uint64_t size() const = 0;
  /// Copies @p n bytes at @p offset to @p dst; false when they are not all there.
  virtual bool read(std::uint64_t offset, void* dst, std::size_t n) const = 0;
};

/// Bytes in memory (tests, fuzzing). Does not copy: @p bytes must outlive it.
class MemorySource final : public ByteSource {
 public:
  explicit MemorySource(std::string_view bytes) : bytes_(bytes) {}
  std::uint64_t size() const override { return bytes_.size(); }
  bool read(std::uint64_t offset, void* dst, std::size_t n) const override;

 private:
  std::string_view bytes_;
};

/// An open file, read with pread(2); its size is taken once, at construction.
/// Does not own @p fd.
class FileSource final : public ByteSource {
 public:
  explicit FileSource(int fd);
  std::uint64_t size() const override { return size_; }
  bool read(std::uint64_t offset, void* dst, std::size_t n) const override;

 private:
  int fd_;
  std::uint64_t size_ = 0;
};

/// What a plugin file says about itself.
struct PluginElfInfo {
  /// The record's bytes as stored; compiler is always nullptr here (see abiRecord).
  /// struct_size is capped at the size of the symbol in the file.
  ProtohostPluginInfo record{};
  /// The string the record's compiler field points to; nullopt when it points nowhere readable.
  std::optional<std::string> compiler;
  /// Names of STB_GNU_UNIQUE dynamic symbols (empty: the library can be unloaded).
  std::vector<std::string> uniqueSymbols;

  /// record with compiler pointing into this object's string (valid while it lives, unchanged).
  ProtohostPluginInfo abiRecord() const {
    ProtohostPluginInfo r = record;
    r.compiler = compiler ? compiler->c_str() : nullptr;
    return r;
  }
};

/// Why a file's record could not be read.
struct PluginElfError {
  enum class Kind {
    NotLoadable,  ///< not an ELF shared object for this host, or malformed ("invalid ELF header", "file too short", ...)
    NoRecord,     ///< a well-formed shared object without a usable protohost_plugin_info ("not a protohost plugin (...)")
  };
  Kind kind;
  std::string text;
};

/// Reads the ABI record and the unique symbols of the ELF shared object in
/// @p source into @p out. Returns nullopt on success, else why not. Any thread;
/// reads nothing but @p source.
std::optional<PluginElfError> readPluginElf(const ByteSource& source, PluginElfInfo& out);

}  // namespace protohost::host
