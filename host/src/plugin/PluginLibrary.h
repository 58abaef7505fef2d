#pragma once
// One plugin shared library, loaded with Boost.DLL (RTLD_NOW | RTLD_LOCAL,
// through the descriptor it was checked from) after its ABI record was read
// from the file and checked (PluginElf.h), so a foreign or stale plugin is refused before any of its
// code (static constructors included) runs. Shared ownership: every
// factory and connection made from the library holds a reference, so the code
// stays mapped until the last object it made is gone.

#include <sys/stat.h>

#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#ifndef BOOST_DLL_USE_STD_FS
#define BOOST_DLL_USE_STD_FS
#endif
#include <boost/dll/shared_library.hpp>

#include "protohost/Factory.h"
#include "protohost/PluginAbi.h"

namespace protohost::host {

/// A plugin could not be loaded or used; what() names the path and the reason.
class PluginError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class PluginLibrary {
 public:
  /// Loads @p path (made absolute): opens it, reads and checks its ABI record
  /// from the open file, and only then dlopens that same open file (through
  /// /proc/PID/fd), so a file put at the path in between is never mapped.
  /// Throws PluginError with the reason (the file's format, the ABI mismatch,
  /// or the loader's own text, dlerror). A file replaced on disk since an
  /// older copy was loaded from the same path is mapped anew; an unchanged
  /// file gives the mapping already there. Thread: main thread.
  static std::shared_ptr<PluginLibrary> load(const std::string& path);

  /// Identity of the file as loaded (device, inode, size, mtime): a changed
  /// identity at the same path means the plugin was replaced.
  struct FileId {
    unsigned long long dev = 0, ino = 0, size = 0;
    long long mtimeNs = 0;
    bool operator==(const FileId&) const = default;
  };
  static FileId fileId(const std::string& path);
  static FileId fileId(const struct stat& st);
  const FileId& loadedFileId() const { return fileId_; }

  /// The library's GNU "unique" dynamic symbols: when not empty, the dynamic
  /// loader never unmaps it (NODELETE), so a replaced copy stays mapped until exit.
  const std::vector<std::string>& uniqueSymbols() const { return uniqueSymbols_; }

  PluginLibrary(const PluginLibrary&) = delete;
  PluginLibrary& operator=(const PluginLibrary&) = delete;
  ~PluginLibrary();

  const std::string& path() const { return path_; }
  const ProtohostPluginInfo& info() const { return *info_; }

  /// Names of the factories the library exports (from its "boostdll" section).
  std::vector<std::string> factoryNames() const;

  /// Calls the exported constructor of factory @p name. Throws PluginError when
  /// the library exports no such factory or its constructor throws.
  std::unique_ptr<Factory> createFactory(const std::string& name) const;

 private:
  PluginLibrary() = default;
  /// load() for an absolute path that exists; may throw more than PluginError.
  static std::shared_ptr<PluginLibrary> loadChecked(const std::string& abs);
  std::string path_;
  FileId fileId_;
  std::vector<std::string> uniqueSymbols_;
  boost::dll::shared_library library_;
  const ProtohostPluginInfo* info_ = nullptr;
};

/// Refuses a plugin file or directory that someone other than root or
/// @p serviceUid could have changed (like sudo and OpenSSH's StrictModes):
/// writable by group or others, or owned by another user. Returns "" when safe.
std::string checkPluginFileSafety(const std::string& path, unsigned serviceUid);

/// Checks an ABI record against the host's; returns "" when compatible, else why not.
std::string checkPluginAbi(const ProtohostPluginInfo& info);

}  // namespace protohost::host
