// Fuzzes the plugin ELF reader (host/src/PluginElf.h), which reads the ABI
// record of an untrusted .so file before the host loads it. Any input must be
// either read or refused with a reason, never read outside the buffer (ASan),
// and what is read must stay within the reader's own bounds. Seeds
// (corpus/plugin_elf): minimal shared objects holding only the record, built
// with `g++ -shared -nostdlib -s` (one with RELR relocations, one with a stale
// SDK version), a truncated one and a text file.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "plugin/PluginElf.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace protohost::host;
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  PluginElfInfo info;
  const std::optional<PluginElfError> error = readPluginElf(MemorySource(bytes), info);
  if (error) {
    if (error->text.empty()) std::abort();
    return 0;
  }
  if (info.record.compiler != nullptr) std::abort();  // a file address must never become a pointer
  if (info.compiler && info.compiler->size() >= 64) std::abort();
  if (info.uniqueSymbols.size() > size / 24) std::abort();  // each one is a symbol table entry in the file
  return 0;
}
