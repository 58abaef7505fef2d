#include "plugin/PluginLibrary.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <optional>

#include <boost/dll/library_info.hpp>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "base/PluginCall.h"
#include "plugin/PluginElf.h"

namespace protohost::host {
namespace fs = std::filesystem;

std::string checkPluginFileSafety(const std::string& path, unsigned serviceUid) {
  auto check = [&](const fs::path& p, const char* what) -> std::string {
    struct stat st {};
    if (::stat(p.c_str(), &st) != 0) return {};  // missing: reported by the loader
    if (st.st_uid != 0 && st.st_uid != serviceUid)
      return std::string("refusing unsafe plugin: ") + what + " " + p.string() + " is owned by uid " +
             std::to_string(st.st_uid) + " (must be root or the service user, uid " + std::to_string(serviceUid) + ")";
    if (st.st_mode & (S_IWGRP | S_IWOTH)) {
      char mode[8];
      std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
      return std::string("refusing unsafe plugin: ") + what + " " + p.string() + " is writable by " +
             ((st.st_mode & S_IWOTH) ? "others" : "group") + " (mode " + mode + "; chmod go-w)";
    }
    return {};
  };
  fs::path file = fs::absolute(path);
  std::error_code ec;
  fs::path real = fs::canonical(file, ec);
  if (ec) real = file;
  if (auto why = check(real, "file"); !why.empty()) return why;
  return check(real.parent_path(), "directory");
}

std::string checkPluginAbi(const ProtohostPluginInfo& info) {
  if (info.magic != PROTOHOST_PLUGIN_MAGIC) return "not a protohost plugin (bad magic in protohost_plugin_info)";
  if (info.struct_size < sizeof(ProtohostPluginInfo))
    return "ABI record too small (" + std::to_string(info.struct_size) + " bytes): built against an older SDK";
  std::string host = std::to_string(PROTOHOST_SDK_VERSION_MAJOR) + "." + std::to_string(PROTOHOST_SDK_VERSION_MINOR);
  std::string plugin = std::to_string(info.sdk_major) + "." + std::to_string(info.sdk_minor);
  if (info.sdk_major != PROTOHOST_SDK_VERSION_MAJOR || info.sdk_minor > PROTOHOST_SDK_VERSION_MINOR)
    return "built against SDK " + plugin + ", host SDK is " + host;
  if (info.pointer_size != sizeof(void*))
    return "built for " + std::to_string(info.pointer_size * 8) + "-bit pointers, host is " +
           std::to_string(sizeof(void*) * 8) + "-bit";
  if (info.cxx11_abi != PROTOHOST_CXX11_ABI)
    return "built with _GLIBCXX_USE_CXX11_ABI=" + std::to_string(info.cxx11_abi) + ", host uses " +
           std::to_string(PROTOHOST_CXX11_ABI) + " (not binary compatible)";
  if (!info.compiler || std::strcmp(info.compiler, PROTOHOST_COMPILER_TAG) != 0)
    return std::string("built with ") + (info.compiler ? info.compiler : "an unknown compiler") +
           ", host with " PROTOHOST_COMPILER_TAG " (not binary compatible)";
  return {};
}

PluginLibrary::FileId PluginLibrary::fileId(const struct stat& st) {
  FileId id;
  id.dev = st.st_dev;
  id.ino = st.st_ino;
  id.size = static_cast<unsigned long long>(st.st_size);
  id.mtimeNs = static_cast<long long>(st.st_mtim.tv_sec) * 1000000000LL + st.st_mtim.tv_nsec;
  return id;
}

PluginLibrary::FileId PluginLibrary::fileId(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? fileId(st) : FileId{};
}

namespace {
// An open file, closed at scope exit.
class FileDescriptor {
 public:
  explicit FileDescriptor(int fd) : fd_(fd) {}
  ~FileDescriptor() { ::close(fd_); }
  FileDescriptor(const FileDescriptor&) = delete;
  FileDescriptor& operator=(const FileDescriptor&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

// The name the library is dlopened by: a symlink to /proc/PID/fd/FD, the very
// file whose ABI record was checked (a file put at the plugin's path since
// then is not what gets mapped, nor are its static constructors run). The name
// is new for every load, because the dynamic loader matches already-loaded
// objects by name first (an fd number, and so a /proc path, is reused; a
// replaced plugin needs a fresh mapping); it still hands back an object
// already loaded from the same file (same device and inode). A private
// directory per load (mkdtemp: 0700, ours, unpredictable) holds the symlink,
// named like the plugin; both are removed as soon as the library is mapped.
class LoadAlias {
 public:
  LoadAlias(const std::string& abs, int fd) {
    // The pid in the name tells whose it is (a test counts only its own process's).
    std::string pattern =
        (fs::temp_directory_path() / ("protohost-load-" + std::to_string(::getpid()) + "-XXXXXX")).string();
    if (!::mkdtemp(pattern.data()))
      throw PluginError(abs + ": cannot create a private directory to load it from: " + std::strerror(errno));
    dir_ = pattern;
    link_ = dir_ + "/" + fs::path(abs).filename().string();
    const std::string target = "/proc/" + std::to_string(::getpid()) + "/fd/" + std::to_string(fd);
    if (::symlink(target.c_str(), link_.c_str()) != 0) {
      int err = errno;
      ::rmdir(dir_.c_str());
      throw PluginError(abs + ": cannot link " + link_ + " to " + target + " to load it: " + std::strerror(err));
    }
  }
  ~LoadAlias() {
    ::unlink(link_.c_str());
    ::rmdir(dir_.c_str());
  }
  LoadAlias(const LoadAlias&) = delete;
  LoadAlias& operator=(const LoadAlias&) = delete;
  const std::string& path() const { return link_; }

 private:
  std::string dir_, link_;
};

// Reads and checks the ABI record from the bytes of the open file @p fd
// (PluginElf.h): nothing of the plugin runs before it passed. Returns the
// file's identity, read from the same open file.
PluginLibrary::FileId checkFileBeforeLoading(const std::string& abs, int fd, std::vector<std::string>& uniqueSymbols) {
  PluginElfInfo elf;
  if (std::optional<PluginElfError> error = readPluginElf(FileSource(fd), elf))
    throw PluginError(abs + (error->kind == PluginElfError::Kind::NotLoadable ? ": cannot load: " : ": ") + error->text);
  if (std::string why = checkPluginAbi(elf.abiRecord()); !why.empty()) throw PluginError(abs + ": " + why);
  uniqueSymbols = std::move(elf.uniqueSymbols);
  struct stat st {};
  PluginLibrary::FileId id;
  if (::fstat(fd, &st) == 0) id = PluginLibrary::fileId(st);
  return id;
}
}  // namespace

std::shared_ptr<PluginLibrary> PluginLibrary::load(const std::string& path) {
  std::error_code ec;
  std::string abs = fs::absolute(path, ec).lexically_normal().string();
  if (!fs::exists(abs, ec)) throw PluginError(abs + ": plugin file not found");
  try {
    return loadChecked(abs);
  } catch (const PluginError&) {
    throw;
  } catch (...) {  // std::filesystem_error, std::bad_alloc, or a static constructor that threw out of dlopen
    throw PluginError(abs + ": cannot load: " + describeCurrentException());
  }
}

std::shared_ptr<PluginLibrary> PluginLibrary::loadChecked(const std::string& abs) {
  const FileDescriptor file(::open(abs.c_str(), O_RDONLY | O_CLOEXEC));
  if (file.get() < 0) throw PluginError(abs + ": cannot load: " + std::strerror(errno));
  std::vector<std::string> uniqueSymbols;
  const FileId id = checkFileBeforeLoading(abs, file.get(), uniqueSymbols);
  const LoadAlias alias(abs, file.get());  // both live until Boost.DLL has the library mapped
  const std::string& loadPath = alias.path();
  // Probe with dlopen first: Boost.DLL's error codes lose dlerror()'s text.
  // RTLD_NOW makes a missing symbol fail here instead of killing the process later.
  void* probe = ::dlopen(loadPath.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!probe) {
    const char* why = ::dlerror();
    throw PluginError(abs + ": cannot load: " + (why ? why : "unknown dlopen error"));
  }
  // The record as mapped, checked once more (defence in depth).
  auto* info = static_cast<const ProtohostPluginInfo*>(::dlsym(probe, kPluginInfoSymbol));
  std::string why = info ? checkPluginAbi(*info) : "changed while loading (no protohost_plugin_info record any more)";
  if (!why.empty()) {
    ::dlclose(probe);
    throw PluginError(abs + ": " + why);
  }
  std::shared_ptr<PluginLibrary> lib(new PluginLibrary);
  lib->path_ = abs;
  lib->fileId_ = id;
  lib->uniqueSymbols_ = std::move(uniqueSymbols);
  try {
    lib->library_.load(loadPath, boost::dll::load_mode::rtld_now | boost::dll::load_mode::rtld_local);
  } catch (const std::exception& e) {
    ::dlclose(probe);
    throw PluginError(abs + ": cannot load: " + e.what());
  }
  ::dlclose(probe);  // the Boost.DLL handle keeps its own reference
  lib->info_ = &lib->library_.get<const ProtohostPluginInfo>(kPluginInfoSymbol);
  return lib;
}

PluginLibrary::~PluginLibrary() = default;

std::vector<std::string> PluginLibrary::factoryNames() const {
  std::vector<std::string> names;
  try {
    boost::dll::library_info info(path_);
    const std::string prefix = kFactoryAliasPrefix;
    for (const auto& sym : info.symbols("boostdll"))
      if (sym.rfind(prefix, 0) == 0) names.push_back(sym.substr(prefix.size()));
  } catch (const std::exception&) {
    // A loadable library whose section table cannot be read lists no factories.
  }
  return names;
}

std::unique_ptr<Factory> PluginLibrary::createFactory(const std::string& name) const {
  const std::string alias = kFactoryAliasPrefix + name;
  if (!library_.has(alias)) {
    std::string known;
    for (const auto& n : factoryNames()) known += (known.empty() ? "" : ", ") + n;
    throw PluginError(path_ + ": exports no factory \"" + name + "\" (it exports: " +
                      (known.empty() ? "none" : known) + ")");
  }
  std::unique_ptr<Factory> factory;
  if (auto failure = invokeGuarded([&] { factory = library_.get_alias<protohost::FactoryCreateFn>(alias)(); }))
    throw PluginError(path_ + ": factory \"" + name + "\" failed to construct: " + *failure);
  if (!factory) throw PluginError(path_ + ": factory \"" + name + "\" returned null");
  return factory;
}

}  // namespace protohost::host
